"""A flex plan's quotes scaled out (issue #10): the rides of one ``/plan`` are asked of the
zone's owner in batches (``ClusterGateway.quotes``: one ``quotes`` query per zone and batch),
not one round trip per ride, and the plan's legs are the same as with one query per ride.
Real Redis and PostgreSQL, two in-process apps on the demo city."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.dispatch.on_demand_legs import FleetOnDemand
from app.errors import ApiError
from dispatch.planner_legs import RawAnswer
from dispatch.request import RideRequest
from tests.app.conftest import services_of
from tests.app.test_dispatch_cluster import DEMO_ZONE, fresh_pg_url, gateway, owners, wait_for
from tests.app.test_plan_on_demand import MURORAN_STATION, PLAN, daytime, far_from_stops

__all__ = ["fresh_pg_url"]  # the cluster tests' fixture: a fresh database per test

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _one_per_ride(self: FleetOnDemand, reqs: list[RideRequest], now: float) -> list[RawAnswer]:
    """The previous ``FleetOnDemand._quote_all``: one owner round trip per ride."""
    gw = self.gateway
    assert self.loop is not None

    async def one(r: RideRequest) -> RawAnswer:
        try:
            return dict(await gw.quote(r))
        except ApiError as exc:
            return (exc.code, exc.message)

    async def every() -> list[RawAnswer]:
        return list(await asyncio.gather(*(one(r) for r in reqs)))

    return list(asyncio.run_coroutine_threadsafe(every(), self.loop).result(30.0))


def _legs(body: dict[str, Any]) -> list[list[tuple[Any, ...]]]:
    """Each itinerary's legs without the quote ids (a new quote each time)."""
    return [
        [
            (leg["mode"], leg["from"]["name"], leg["to"]["name"], leg["startTime"], leg["endTime"])
            for leg in it["legs"]
        ]
        for it in body["plan"]["itineraries"]
    ]


def test_a_flex_plan_asks_the_owner_in_batches_with_the_same_legs(
    fresh_pg_url: str,
    redis_url: str,
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    common = {
        "database_url": fresh_pg_url,
        "redis_url": redis_url,
        "redis_prefix": f"tsunagu-test:flexq-{time.time_ns()}:",
        "dispatch_reply_timeout_s": 30.0,
        "dispatch_lease_ttl_s": 10.0,
        "dispatch_catalog_interval_s": 1.0,
        "dispatch_reopt_interval_s": 0.0,
        "demo": True,
        "demo_riders_per_hour": 0.0,
    }
    a = make_app_client(**common)
    b = make_app_client(**common)
    wait_for(lambda: len(owners([a, b], DEMO_ZONE)) == 1)
    owner = owners([a, b], DEMO_ZONE)[0]
    asker = [a, b][1 - owner]
    origin, metres = far_from_stops([a, b][owner])
    h = auth(make_user(client=asker), asker)
    day, hhmm = daytime()
    params = {
        "fromPlace": origin,
        "toPlace": MURORAN_STATION,
        "maxWalkDistance": int(metres) - 100,
        "mode": "TRANSIT,WALK,FLEX",
        "date": day,
        "time": hhmm,
    }
    # Every query the asker sends a zone's owner, with the rides it carries.
    g = gateway(asker)
    asked: list[int] = []
    ask = g._ask

    async def counted(zone_id: str, data: dict[str, Any], **kw: Any) -> dict[str, Any] | None:
        if data.get("op") in ("quote", "quotes"):
            asked.append(len(data.get("requests", [None])))
        return await ask(zone_id, data, **kw)

    g._ask = counted  # type: ignore[method-assign]

    r = asker.get(PLAN, params=params, headers=h)
    assert r.status_code == 200, r.text
    batched = r.json()
    assert any(leg["mode"] == "FLEX" for it in batched["plan"]["itineraries"] for leg in it["legs"])
    # Before RAPTOR (the direct ride and the access rides), then every journey's rides.
    assert 1 <= len(asked) <= 2, asked
    rides = sum(asked)
    assert asked[0] > 1, asked  # the access rides of the candidate stops, together

    asked.clear()
    monkeypatch.setattr(FleetOnDemand, "_quote_all", _one_per_ride)
    r = asker.get(PLAN, params=params, headers=h)
    assert r.status_code == 200, r.text
    one_by_one = r.json()
    assert len(asked) > 2 and set(asked) == {1}, asked  # one round trip per ride
    assert len(asked) <= rides  # the batches asked no fewer rides
    assert _legs(batched) == _legs(one_by_one)
    assert batched.get("onDemand") == one_by_one.get("onDemand")
    # The asker holds no fleet: every quote came from the owner.
    assert services_of(asker).dispatcher.vehicles() == []

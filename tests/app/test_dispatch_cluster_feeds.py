"""Cluster mode with the zone sources other than operators: the demo city (one catalog row
however many processes start, its driver loop on the zone's owner only, a shared accelerated
clock) and published GTFS-Flex feeds; the GTFS-RT fleet export lists every zone's vehicles
from any process. Real Redis and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from app.dispatch_gateway import ClusterGateway
from app.dispatch_store import catalog_zones
from tests.app.conftest import services_of
from tests.conftest import PG_ADMIN_URL

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

DEMO_ZONE = "muroran-higashi"
STATION_WEST = {"lat": 42.349466, "lon": 141.0247499}  # 東室蘭駅西口
NAKAJIMA_1 = {"lat": 42.3538896, "lon": 141.0161829}  # 中島町1丁目


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    name = f"tsunagu_cluster_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def cluster(
    fresh_pg_url: str,
    redis_url: str,
    make_app_client: Callable[..., TestClient],
) -> Callable[..., TestClient]:
    prefix = f"tsunagu-test:{uuid.uuid4().hex[:8]}:"

    def start(**overrides: Any) -> TestClient:
        values: dict[str, Any] = {
            "database_url": fresh_pg_url,
            "redis_url": redis_url,
            "redis_prefix": prefix,
            "dispatch_reply_timeout_s": 5.0,
            "dispatch_lease_ttl_s": 1.0,
            "dispatch_catalog_interval_s": 0.3,
            "dispatch_reopt_interval_s": 0.0,
        }
        values.update(overrides)
        return make_app_client(**values)

    return start


def gateway(client: TestClient) -> ClusterGateway:
    g = services_of(client).dispatch
    assert isinstance(g, ClusterGateway)
    return g


def owner_of(clients: list[TestClient], zone_id: str) -> list[int]:
    return [i for i, c in enumerate(clients) if zone_id in gateway(c).worker.owned]


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_demo_city_once_driven_by_its_owner_only(
    cluster: Callable[..., TestClient],
    fresh_pg_url: str,
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
) -> None:
    demo = {"demo": True, "demo_riders_per_hour": 0.0, "demo_time_scale": 60.0}
    a = cluster(**demo)
    b = cluster(**demo)
    clients = [a, b]
    ids, _ = catalog_zones(services_of(a).engine, definitions=False)
    assert ids == [DEMO_ZONE]
    wait_for(lambda: len(owner_of(clients, DEMO_ZONE)) == 1, timeout=2)
    own = owner_of(clients, DEMO_ZONE)[0]
    owner, other = clients[own], clients[1 - own]
    city_owner, city_other = services_of(owner).demo_city, services_of(other).demo_city
    assert city_owner is not None and city_other is not None
    assert city_owner.loop is not None and city_owner.loop.running
    assert city_other.loop is None  # nobody drives the fleet twice
    assert other.get("/readyz").json()["checks"]["demo_fleet"]["driven_here"] is False
    # One accelerated clock for the cluster (its origin is shared through Redis).
    ca, cb = services_of(a).dispatcher.clock, services_of(b).dispatcher.clock
    assert ca.t0 == cb.t0 and abs(ca() - cb()) < 60.0
    # Both describe the demo; a resident quotes and books through the non-owner.
    for c in clients:
        od = c.get("/api/v1/demo").json()["on_demand"]
        assert od["zone_id"] == DEMO_ZONE and len(od["vehicles"]) == 5
    alice = make_user(client=a)
    ha = auth(alice, a)
    r = other.post(
        "/api/v1/rides",
        json={"request": {"origin": STATION_WEST, "destination": NAKAJIMA_1}},
        headers=ha,
    )
    assert r.status_code == 201, r.text
    # The GTFS-RT export of the non-owner lists the demo fleet (from the saved state).
    provider = services_of(other).feeds.fleet_provider
    wait_for(lambda: len(provider()[0]) == 5)
    vehicles, trips = provider()
    assert {v.vehicle_id for v in vehicles} == set(city_other.vehicle_ids)
    assert any(t.vehicle_id == r.json()["vehicle_id"] for t in trips)

    # The owner stops: the other takes the zone and starts driving it.
    owner.portal.call(gateway(owner).close)  # type: ignore[union-attr]
    assert city_owner.loop is None
    wait_for(lambda: owner_of(clients, DEMO_ZONE) == [1 - own], timeout=5)
    wait_for(lambda: city_other.loop is not None and city_other.loop.running)


def test_published_flex_zones_enter_the_catalog_with_one_owner_each(
    cluster: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    gtfs_dir: Path,
) -> None:
    a, b = cluster(), cluster()
    op = auth(make_user(roles=("operator",), client=a), a)
    boss = auth(make_user(roles=("dispatcher",), client=a), a)
    with (gtfs_dir / "us_cobblinc_flex.zip").open("rb") as f:
        r = a.post(
            "/api/v1/feeds/cobb/versions",
            files={"file": ("cobb.zip", f, "application/zip")},
            headers=op,
        )
    assert r.status_code == 201, r.text
    r = a.post(f"/api/v1/feeds/cobb/versions/{r.json()['id']}/publish", headers=op)
    assert r.status_code == 200, r.text
    want = ["cobb:zone_1", "cobb:zone_2", "cobb:zone_3"]
    # Leased when the publish answers (restored a moment later at most), one owner each.
    wait_for(lambda: all(len(owner_of([a, b], z)) == 1 for z in want), timeout=2)
    listed = b.get("/api/v1/fleet/zones", headers=boss).json()["zones"]
    assert sorted(z["zone_id"] for z in listed) == want
    # A vehicle added through B lands in a zone A may own; both see it.
    body = {
        "vehicle_id": "cobb-van",
        "zone_id": "cobb:zone_1",
        "depot": {"lat": 33.95, "lon": -84.55},
        "shift_end": time.time() + 3e4,
    }
    r = b.post("/api/v1/fleet/vehicles", json=body, headers=boss)
    assert r.status_code == 201, r.text
    got = a.get("/api/v1/fleet/vehicles/cobb-van", headers=boss)
    assert got.status_code == 200 and got.json()["zone_id"] == "cobb:zone_1"

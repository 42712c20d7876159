"""``/plan`` with on-demand legs in the demo city (issue #9): the bus timetable on today's dates
and the vans on the real clock meet in one itinerary; a resident far from every stop gets a van
to the bus; the quote behind the leg books as it is; refusals are stated in the rider's
language; scaled out, the legs are quoted by the zone's owner and booked from another process.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.app.conftest import services_of, settings_for
from tests.app.test_dispatch_cluster import fresh_pg_url

__all__ = ["fresh_pg_url"]  # the cluster tests' fixture: a fresh database per test

TZ = ZoneInfo("Asia/Tokyo")
MURORAN_STATION = "42.3177339,140.9736236"  # 室蘭駅前, outside the demo zone
PLAN = "/api/v1/plan"


@pytest.fixture(scope="module")
def demo_settings(tmp_path_factory: pytest.TempPathFactory, signing_key_pem: Path) -> Settings:
    return settings_for(
        tmp_path_factory.mktemp("plan-demand") / "data",
        jwt_private_key_path=signing_key_pem,
        demo=True,
        demo_riders_per_hour=0.0,
        dispatch_reopt_interval_s=0.0,
    )


@pytest.fixture(scope="module")
def client(demo_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_settings)) as c:
        yield c


def daytime() -> tuple[str, str]:
    """A date and time at which the demo's buses run and the vans can be booked: in half an
    hour in Muroran if that falls in the day, else 08:00 the next morning (within the zone's
    one-day booking horizon either way)."""
    t = dt.datetime.now(TZ) + dt.timedelta(minutes=30)
    if not 7 <= t.hour < 19:
        day = t.date() if t.hour < 7 else t.date() + dt.timedelta(days=1)
        t = dt.datetime.combine(day, dt.time(8, 0), tzinfo=TZ)
    return t.date().isoformat(), t.strftime("%H:%M")


def far_from_stops(client: TestClient) -> tuple[str, float]:
    """The point of the demo zone farthest from every bus stop (``lat,lon``, metres)."""
    services = services_of(client)
    zone = services.dispatcher.zones()[0]
    tt = services.feeds.network.timetable
    ring = np.array(zone.polygons[0][0])
    best = (0.0, 0.0, 0.0)
    for lat in np.linspace(ring[:, 1].min(), ring[:, 1].max(), 40):
        for lon in np.linspace(ring[:, 0].min(), ring[:, 0].max(), 40):
            if zone.contains(float(lat), float(lon)):
                d = float(np.min(np.hypot(tt.stop_lat - lat, (tt.stop_lon - lon) * 0.74))) * 111_000
                best = max(best, (d, float(lat), float(lon)))
    return f"{best[1]:.6f},{best[2]:.6f}", best[0]


def plan(client: TestClient, **params: Any) -> dict[str, Any]:
    day, hhmm = daytime()
    q = {"date": day, "time": hhmm, **params}
    r = client.get(PLAN, params=q)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_far_from_every_stop_a_van_to_the_bus(
    client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    origin, metres = far_from_stops(client)
    walk = int(metres) - 100  # no stop within this walk of the origin
    assert walk >= 300
    plain = plan(client, fromPlace=origin, toPlace=MURORAN_STATION, maxWalkDistance=walk)
    assert plain["error"]["id"] == "LOCATION_NOT_ACCESSIBLE" and not plain["plan"]["itineraries"]
    rider = make_user(client=client)
    h = auth(rider, client)
    day, hhmm = daytime()
    r = client.get(
        PLAN,
        params={
            "fromPlace": origin,
            "toPlace": MURORAN_STATION,
            "maxWalkDistance": walk,
            "mode": "TRANSIT,WALK,FLEX",
            "date": day,
            "time": hhmm,
        },
        headers=h,
    )
    body = r.json()
    assert r.status_code == 200 and "error" not in body, body.get("onDemand")
    assert body["onDemand"]["requested"] and body["onDemand"]["available"]
    it = body["plan"]["itineraries"][0]
    modes = [leg["mode"] for leg in it["legs"]]
    assert modes[0] == "FLEX" and "BUS" in modes and it["bookable"] is True
    van = it["legs"][0]
    bus = next(leg for leg in it["legs"] if leg["mode"] == "BUS")
    # One clock: the van's times and the bus's are on the same day, the van first.
    asked = dt.datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=TZ).timestamp() * 1000
    assert asked - 60_000 <= van["pickupWindow"]["start"] <= van["startTime"]
    assert van["startTime"] <= van["pickupWindow"]["end"]
    assert van["endTime"] + 180_000 <= bus["startTime"] < van["endTime"] + 4 * 3600_000
    assert van["zoneId"] == "muroran-higashi" and van["vehicleType"] in (
        "van",
        "autonomous_shuttle",
    )
    assert van["pickupBookingInfo"]["minimumBookingNotice"] == 0
    assert van["emissionsPerPerson"]["co2"] > 0
    # The leg's quote is the rider's and books as it is: the ride gets the announced id.
    r = client.post("/api/v1/rides", json={"quote_id": van["bookingQuoteId"]}, headers=h)
    assert r.status_code == 201, r.text
    ride = r.json()
    assert ride["ride_id"] == van["bookingRequestId"]
    assert ride["pickup_window"][0] * 1000 == pytest.approx(van["pickupWindow"]["start"], abs=1000)
    # Another resident cannot book it.
    other = auth(make_user(client=client), client)
    r = client.post("/api/v1/rides", json={"quote_id": van["bookingQuoteId"]}, headers=other)
    assert r.status_code == 404 and r.json()["error"]["code"] == "quote_unknown"


def test_refusals_in_the_riders_language(client: TestClient) -> None:
    body = plan(
        client,
        fromPlace=MURORAN_STATION,
        toPlace="42.30,140.97",
        mode="TRANSIT,WALK,ON_DEMAND",
        locale="ja",
    )
    assert body["onDemand"]["refusals"] == [
        {
            "leg": "direct",
            "reason": "outside_zone",
            "message": "オンデマンド交通の運行エリア外です。",
        }
    ]
    en = plan(client, fromPlace=MURORAN_STATION, toPlace="42.30,140.97", mode="FLEX")
    assert en["onDemand"]["refusals"][0]["message"] == "Outside the on-demand zone."
    r = client.get(
        PLAN,
        params={"fromPlace": MURORAN_STATION, "toPlace": "42.30,140.97", "mode": "FLEX,HOVERCRAFT"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_mode"


def test_no_van_leg_when_the_fleet_is_out_of_service(client: TestClient) -> None:
    """The vans' shifts ended: the plan says so instead of offering a leg nobody can drive."""
    origin, metres = far_from_stops(client)
    d = services_of(client).dispatcher
    saved = {v.vehicle_id: v.shift_end for v in d.vehicles()}
    try:
        for v in d.vehicles():
            v.shift_end = v.shift_start + 1.0
            d.zone_state(v.zone_id).arrays.invalidate(v.vehicle_id)  # the quote kernels' copy
        body = plan(
            client,
            fromPlace=origin,
            toPlace=MURORAN_STATION,
            maxWalkDistance=int(metres) - 100,
            mode="TRANSIT,WALK,FLEX",
        )
    finally:
        for v in d.vehicles():
            v.shift_end = saved[v.vehicle_id]
            d.zone_state(v.zone_id).arrays.invalidate(v.vehicle_id)
    assert body["error"]["id"] == "LOCATION_NOT_ACCESSIBLE"
    assert {r["reason"] for r in body["onDemand"]["refusals"]} == {"no_vehicle_available"}


def test_arrive_by_with_on_demand_ends_in_time(client: TestClient) -> None:
    origin, metres = far_from_stops(client)
    day, hhmm = daytime()
    t = dt.datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=TZ) + dt.timedelta(hours=1)
    r = client.get(
        PLAN,
        params={
            "fromPlace": origin,
            "toPlace": MURORAN_STATION,
            "maxWalkDistance": int(metres) - 100,
            "mode": "TRANSIT,WALK,FLEX",
            "date": t.date().isoformat(),
            "time": t.strftime("%H:%M"),
            "arriveBy": "true",
        },
    )
    its = r.json()["plan"]["itineraries"]
    assert its and all(it["endTime"] <= t.timestamp() * 1000 for it in its)
    assert any(leg["mode"] == "FLEX" for it in its for leg in it["legs"])


@pytest.mark.postgres
@pytest.mark.redis
def test_scaled_out_the_zone_owner_quotes_and_another_process_books(
    fresh_pg_url: str,
    redis_url: str,
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
) -> None:
    from tests.app.test_dispatch_cluster import DEMO_ZONE, owners, wait_for

    prefix = f"tsunagu-test:plan-{time.time_ns()}:"
    common = {
        "database_url": fresh_pg_url,
        "redis_url": redis_url,
        "redis_prefix": prefix,
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
    rider = make_user(client=asker)
    h = auth(rider, asker)
    day, hhmm = daytime()
    r = asker.get(
        PLAN,
        params={
            "fromPlace": origin,
            "toPlace": MURORAN_STATION,
            "maxWalkDistance": int(metres) - 100,
            "mode": "TRANSIT,WALK,FLEX",
            "date": day,
            "time": hhmm,
        },
        headers=h,
    )
    body = r.json()
    assert r.status_code == 200 and body["plan"]["itineraries"], body.get("onDemand")
    van = body["plan"]["itineraries"][0]["legs"][0]
    assert van["mode"] == "FLEX"
    # The asker has no fleet of its own: the quote came from the owner, and books anywhere.
    assert services_of(asker).dispatcher.vehicles() == []
    r = [a, b][owner].post(
        "/api/v1/rides",
        json={"quote_id": van["bookingQuoteId"]},
        headers=auth(rider, [a, b][owner]),
    )
    assert r.status_code == 201, r.text
    assert r.json()["ride_id"] == van["bookingRequestId"]


def test_the_zones_residents_can_ride_in_are_public(client: TestClient) -> None:
    r = client.get("/api/v1/network/zones")  # no token
    assert r.status_code == 200
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 1
    f = fc["features"][0]
    assert f["properties"]["zone_id"] == "muroran-higashi"
    assert f["properties"]["service_hours"] == [[0.0, 86400.0]]
    assert f["geometry"]["type"] == "MultiPolygon"
    # The shape is the dispatcher's own.
    zone = services_of(client).dispatcher.zones()[0]
    assert f["geometry"]["coordinates"] == [
        [[list(p) for p in ring] for ring in poly] for poly in zone.polygons
    ]
    assert "vehicles" not in str(f)

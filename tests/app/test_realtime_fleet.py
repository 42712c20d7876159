"""Tsunagu's own GTFS-RT feeds carry the dispatcher's fleet: vans, booked runs and their ETAs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from google.transit import gtfs_realtime_pb2 as pb

from app.feeds.fleet import fleet_snapshot
from gtfs.realtime import parse_feed
from tests.app.conftest import ZONE, A, B, services_of


def _van(vehicle_id: str, at: dict[str, float]) -> dict[str, Any]:
    return {
        "vehicle_id": vehicle_id,
        "zone_id": "muroran",
        "vehicle_type": "van",
        "depot": at,
        "shift_end": time.time() + 8 * 3600,
    }


def test_fleet_feeds_follow_the_dispatcher(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
) -> None:
    # No re-optimisation loop: the plan read back must be the one the booking made.
    c = make_app_client(demo=False, dispatch_reopt_interval_s=0)
    boss = auth(make_user(roles=("dispatcher",), client=c), client=c)
    rider = auth(make_user(client=c), client=c)

    # Before any vehicle: valid, empty FULL_DATASET feeds.
    for path in ("vehicle-positions.pb", "trip-updates.pb"):
        r = c.get(f"/api/v1/realtime/{path}")
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
        msg = pb.FeedMessage.FromString(r.content)
        assert msg.header.gtfs_realtime_version == "2.0" and len(msg.entity) == 0

    assert c.post("/api/v1/fleet/zones", json=ZONE, headers=boss).status_code == 201
    for vid, at in (("van-1", A), ("van-2", B)):
        r = c.post("/api/v1/fleet/vehicles", json=_van(vid, at), headers=boss)
        assert r.status_code == 201, r.text

    vp = parse_feed(c.get("/api/v1/realtime/vehicle-positions.pb").content)
    assert sorted(str(v.vehicle_id) for v in vp.vehicles) == ["van-1", "van-2"]
    van1 = next(v for v in vp.vehicles if v.vehicle_id == "van-1")
    assert (van1.latitude, van1.longitude) == pytest.approx((A["lat"], A["lon"]), abs=1e-5)
    assert van1.trip is None  # idle: no run yet
    assert parse_feed(c.get("/api/v1/realtime/trip-updates.pb").content).trip_updates == ()

    # A booked ride becomes an ADDED trip on the van that serves it, with its ETAs.
    r = c.post("/api/v1/rides", json={"request": {"origin": A, "destination": B}}, headers=rider)
    assert r.status_code == 201, r.text
    ride = r.json()
    vid, rid = ride["vehicle_id"], ride["ride_id"]
    plan = c.get(f"/api/v1/fleet/vehicles/{vid}", headers=boss).json()["plan"]
    assert [s["kind"] for s in plan] == ["pickup", "dropoff"]

    raw = pb.FeedMessage.FromString(c.get("/api/v1/realtime/trip-updates.pb").content)
    assert len(raw.entity) == 1
    tu = raw.entity[0].trip_update
    assert tu.trip.trip_id == f"ondemand-{vid}" and tu.vehicle.id == vid
    assert tu.trip.schedule_relationship == pb.TripDescriptor.ADDED
    assert tu.trip.route_id == "muroran" and len(tu.trip.start_date) == 8
    assert [u.stop_id for u in tu.stop_time_update] == [f"{rid}:pickup", f"{rid}:dropoff"]
    pick, drop = (u.arrival.time for u in tu.stop_time_update)
    now = time.time()
    # Absolute POSIX ETAs, in order, not in the past, within the ride's promised pick-up window.
    assert now - 60 <= pick <= drop < now + 8 * 3600
    lo, hi = ride["pickup_window"]
    assert lo - 1 <= pick <= hi + 1
    assert all(u.departure.time >= u.arrival.time for u in tu.stop_time_update)

    vp = parse_feed(c.get("/api/v1/realtime/vehicle-positions.pb").content)
    busy = next(v for v in vp.vehicles if v.vehicle_id == vid)
    assert busy.trip is not None and busy.trip.trip_id == f"ondemand-{vid}"
    assert busy.stop_id == f"{rid}:pickup"

    # Cancelling the ride empties the run again.
    assert c.delete(f"/api/v1/rides/{rid}", headers=rider).status_code == 200
    assert parse_feed(c.get("/api/v1/realtime/trip-updates.pb").content).trip_updates == ()


def test_snapshot_of_the_demo_fleet(make_app_client: Callable[..., TestClient]) -> None:
    """With the demo on, every demo van is in the export, as the dispatcher lists them."""
    c = make_app_client(demo=True, dispatch_reopt_interval_s=0)
    d = services_of(c).dispatcher
    vehicles, _ = fleet_snapshot(d)
    assert {v.vehicle_id for v in vehicles} == {v.vehicle_id for v in d.vehicles()}
    assert len(vehicles) > 0
    vp = parse_feed(c.get("/api/v1/realtime/vehicle-positions.pb").content)
    assert sorted(str(v.vehicle_id) for v in vp.vehicles) == sorted(v.vehicle_id for v in vehicles)


def test_snapshot_etas_are_the_dispatcher_schedule() -> None:
    """ETAs are the dispatcher's planned service starts; local start_date in the zone's offset."""
    from dispatch.dispatcher import Dispatcher
    from dispatch.request import RideRequest
    from dispatch.rides import Ride
    from dispatch.travel_times import StraightLineTravelTimes
    from dispatch.vehicle import VAN, Vehicle
    from dispatch.zone import ServiceZone

    t0 = 1_900_000_000.0  # 2030-03-17 17:46:40 UTC
    clock = [t0]
    d = Dispatcher(StraightLineTravelTimes(1.3), clock=lambda: clock[0])
    zone = ServiceZone.from_geojson("z", ZONE["geometry"], utc_offset_s=9 * 3600)  # type: ignore[arg-type]
    d.add_zone(zone)
    a, b = (A["lat"], A["lon"]), (B["lat"], B["lon"])
    d.add_vehicle(Vehicle("v1", VAN, a, t0 - 3600, t0 + 8 * 3600, a, t0 - 60, zone_id="z"))
    ride = d.request_ride(RideRequest(a, b, t0), "u1")
    assert isinstance(ride, Ride)
    v = d.vehicle("v1")
    expected = d.schedule(v, t0)
    vehicles, trips = fleet_snapshot(d)
    assert [x.vehicle_id for x in vehicles] == ["v1"]
    assert vehicles[0].timestamp == int(t0 - 60)  # when the position was known
    assert vehicles[0].stop_id == f"{ride.ride_id}:pickup"
    (trip,) = trips
    assert [e.arrival for e in trip.etas] == [round(float(x)) for x in expected]
    assert [e.departure - e.arrival for e in trip.etas] == [round(s.service_s) for s in v.plan]  # type: ignore[operator]
    assert trip.start_date == "20300318"  # 02:46 the next day in UTC+9
    assert trip.timestamp == int(t0)

"""Transfer protection (issue #9): a trip planned and booked in the demo city (a bus, then a van
from the stop it reaches) follows its bus. A GTFS-RT delay on the feeder moves the van's
pick-up and the rider is told, on the event stream and in the trip; when the van cannot wait,
the rider is told at once with the next option; a van late for its bus is reported too."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from google.transit import gtfs_realtime_pb2 as pb

from app.main import create_app
from app.settings import Settings
from app.trips.transfer_guard import TransferGuard
from tests.app.conftest import services_of, settings_for
from tests.app.test_plan_on_demand import MURORAN_STATION, daytime, far_from_stops

PB = {"Content-Type": "application/x-protobuf"}


@pytest.fixture(scope="module")
def demo_settings(tmp_path_factory: pytest.TempPathFactory, signing_key_pem: Path) -> Settings:
    return settings_for(
        tmp_path_factory.mktemp("transfers") / "data",
        jwt_private_key_path=signing_key_pem,
        demo=True,
        demo_riders_per_hour=0.0,
        dispatch_reopt_interval_s=0.0,
        trip_guard_interval_s=0.0,  # the test runs the checks itself
    )


@pytest.fixture(scope="module")
def client(demo_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(demo_settings)) as c:
        yield c


def delay(client: TestClient, operator: dict[str, str], leg: dict[str, Any], seconds: int) -> None:
    """Post a TripUpdate: the leg's bus runs ``seconds`` late from its first stop on."""
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = int(time.time())
    e = m.entity.add()
    e.id = f"late-{leg['tripId']}"
    e.trip_update.trip.trip_id = leg["tripId"]
    e.trip_update.trip.start_date = leg["serviceDate"].replace("-", "")
    e.trip_update.delay = seconds
    r = client.post(
        "/api/v1/realtime/trip-updates", content=m.SerializeToString(), headers={**PB, **operator}
    )
    assert r.status_code == 200, r.text


def book_trip(
    client: TestClient, h: dict[str, str], origin: str, dest: str, walk: int, last: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Plan with on-demand legs and book the first itinerary whose last (``last='FLEX'``) or
    first on-demand leg meets a bus; the itinerary and the booked trip."""
    day, hhmm = daytime()
    r = client.get(
        "/api/v1/plan",
        params={
            "fromPlace": origin,
            "toPlace": dest,
            "maxWalkDistance": walk,
            "mode": "TRANSIT,WALK,FLEX",
            "date": day,
            "time": hhmm,
            "numItineraries": 5,
        },
        headers=h,
    )
    its = r.json()["plan"]["itineraries"]
    pick = 0 if last == "FLEX" else 1
    it = next(
        it
        for it in its
        if [leg["mode"] for leg in it["legs"]][-1 if pick == 0 else 0] == "FLEX"
        and any(leg.get("tripId") for leg in it["legs"])
    )
    r = client.post("/api/v1/trips", json={"itinerary": it, "confirm": True}, headers=h)
    assert r.status_code == 201, r.text
    return it, r.json()


def trip_events(client: TestClient, user_id: str) -> Callable[[], dict[str, Any]]:
    sub = client.portal.call(services_of(client).bus.subscribe, [f"user.{user_id}.trip"])  # type: ignore[union-attr]

    def next_event() -> dict[str, Any]:
        ev = client.portal.call(sub.get, 60.0)  # type: ignore[union-attr]
        assert ev is not None, "no trip event in 60 s"
        return dict(ev.data)

    return next_event


def check(client: TestClient, trip: dict[str, Any] | None = None) -> int:
    """One pass of the guard: over every active trip, or over ``trip`` alone. The tests check
    their own trip: the module's trips may ride the same buses (they are planned at the same
    clock), and a delay posted for one test's bus would act on another test's trip as well."""
    guard = TransferGuard(services_of(client))
    if trip is None:
        return int(client.portal.call(guard.check_all))  # type: ignore[union-attr]
    return int(client.portal.call(guard.check, uuid.UUID(trip["id"])))  # type: ignore[union-attr]


def test_a_late_feeder_bus_moves_the_van_and_the_rider_is_told(
    client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    home, metres = far_from_stops(client)
    rider = make_user(client=client)
    h = auth(rider, client)
    operator = auth(make_user(roles=("operator",), client=client), client)
    it, trip = book_trip(client, h, MURORAN_STATION, home, int(metres) - 100, "FLEX")
    bus = [leg for leg in it["legs"] if leg.get("tripId")][-1]
    van = trip["legs"][-1]
    assert trip["state"] == "CONFIRMED" and van["legState"] == "NOT_STARTED"
    before = van["startTime"]
    events = trip_events(client, rider.id)
    assert check(client) == 0  # the module's first trip, on time: nothing to do on any
    delay(client, operator, bus, 15 * 60)
    assert check(client, trip) == 1
    ev = events()
    assert ev["type"] == "trip.pickup_moved" and ev["trip_id"] == trip["id"]
    assert ev["delay_s"] == 15 * 60 and ev["leg"] == "egress"
    # The van now comes after the late bus (its realtime arrival plus the slack).
    assert ev["eta_pickup"] >= bus["endTime"] + 15 * 60 * 1000
    assert ev["eta_pickup"] > before
    now = client.get(f"/api/v1/trips/{trip['id']}", headers=h).json()
    leg = now["legs"][-1]
    assert leg["startTime"] == ev["eta_pickup"] and leg["legState"] == "NOT_STARTED"
    assert [e["type"] for e in leg["events"]] == ["trip.pickup_moved"]
    # The same delay again changes nothing; the ride is still the rider's one booking.
    assert check(client, trip) == 0
    rides = [
        r
        for r in client.get("/api/v1/rides", headers=h).json()["rides"]
        if r["status"] == "assigned"
    ]
    assert [r["ride_id"] for r in rides] == [van["rideId"]]


def test_when_the_van_cannot_wait_the_rider_gets_the_next_option(
    client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    home, metres = far_from_stops(client)
    rider = make_user(client=client)
    h = auth(rider, client)
    operator = auth(make_user(roles=("operator",), client=client), client)
    it, trip = book_trip(client, h, MURORAN_STATION, home, int(metres) - 100, "FLEX")
    bus = [leg for leg in it["legs"] if leg.get("tripId")][-1]
    d = services_of(client).dispatcher
    # Every van's shift ends an hour after the planned pick-up: a two-hour delay is too much.
    ends = {v.vehicle_id: v.shift_end for v in d.vehicles()}
    try:
        for v in d.vehicles():
            v.shift_end = trip["legs"][-1]["startTime"] / 1000 + 3600
            d.zone_state(v.zone_id).arrays.invalidate(v.vehicle_id)  # the quote kernels' copy
        events = trip_events(client, rider.id)
        delay(client, operator, bus, 2 * 3600)
        assert check(client, trip) == 1
    finally:
        for v in d.vehicles():
            v.shift_end = ends[v.vehicle_id]
            d.zone_state(v.zone_id).arrays.invalidate(v.vehicle_id)
    ev = events()
    assert ev["type"] == "trip.connection_at_risk" and ev["leg"] == "egress"
    assert ev["reason"] == "no_vehicle_available"
    # The ride was left as it was (the rider decides), and the next option starts at the stop.
    now = client.get(f"/api/v1/trips/{trip['id']}", headers=h).json()
    assert now["legs"][-1]["startTime"] == trip["legs"][-1]["startTime"]
    opt = ev["next_option"]
    assert opt is None or opt["legs"][0]["from"]["stopId"] == bus["to"]["stopId"]


def test_a_van_late_for_its_bus_is_reported(
    client: TestClient, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    home, metres = far_from_stops(client)
    rider = make_user(client=client)
    h = auth(rider, client)
    it, trip = book_trip(client, h, home, MURORAN_STATION, int(metres) - 100, "ACCESS")
    bus = next(leg for leg in it["legs"] if leg.get("tripId"))
    van = trip["legs"][0]
    events = trip_events(client, rider.id)
    assert check(client, trip) == 0
    # The van is held up: its plan now reaches the stop after the bus leaves.
    d = services_of(client).dispatcher
    v = d.vehicle(van["vehicleId"])
    late = bus["startTime"] / 1000 + 120
    v.position_time = max(v.position_time, late - 60)
    d.update_position(v.vehicle_id, *v.position, late - 60)
    assert check(client, trip) == 1
    ev = events()
    assert ev["type"] == "trip.connection_at_risk" and ev["leg"] == "access"
    assert ev["reason"] == "vehicle_late" and ev["eta_dropoff"] > bus["startTime"] - 180_000
    assert check(client, trip) == 0  # told once

"""Transfer protection in every city (#13): with two cities published, a trip's legs are
checked against the realtime times of the city they run in, and the rider's next option is
planned there, not on the default network only (where a second city's trips are unknown)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi.testclient import TestClient
from google.transit import gtfs_realtime_pb2 as pb

from app.models.trip import Trip
from app.trips.transfer_guard import TransferGuard, leg_network, realtime_time
from tests.app.conftest import services_of
from tests.app.test_feeds_regions import two_cities

__all__ = ["two_cities"]  # the fixture, used by name

PB = {"Content-Type": "application/x-protobuf"}


def _nevada_ride(c: TestClient) -> dict[str, Any]:
    """A scheduled ride of the second city (Nevada, the GTFS sample), from /plan."""
    r = c.get(
        "/api/v1/plan",
        params={
            "fromPlace": "FUR_CREEK_RES",
            "toPlace": "BEATTY_AIRPORT",
            "date": "2008-06-02",
            "time": "06:00",
        },
    )
    assert r.status_code == 200 and r.json()["requestParameters"]["city"] == "sample", r.text
    legs = r.json()["plan"]["itineraries"][0]["legs"]
    return next(leg for leg in legs if leg.get("tripId"))


def _delay(c: TestClient, h: dict[str, str], leg: dict[str, Any], seconds: int) -> None:
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = int(time.time())
    e = m.entity.add()
    e.id = f"late-{leg['tripId']}"
    e.trip_update.trip.trip_id = leg["tripId"]
    e.trip_update.trip.start_date = leg["serviceDate"].replace("-", "")
    e.trip_update.delay = seconds
    r = c.post("/api/v1/realtime/trip-updates", content=m.SerializeToString(), headers={**PB, **h})
    assert r.status_code == 200, r.text


def test_a_second_citys_leg_gets_its_citys_realtime(
    two_cities: tuple[TestClient, dict[str, str]],
) -> None:
    c, h = two_cities
    services = services_of(c)
    reg = services.feeds
    assert reg.network.name == "kawasaki"  # the default: the larger city
    ride = _nevada_ride(c)
    assert leg_network(services, ride) is reg.networks["sample"]
    # A leg without coordinates falls back to the default network.
    bare = {**ride, "from": {"stopId": ride["from"]["stopId"]}, "to": {}}
    assert leg_network(services, bare) is reg.network
    before = realtime_time(services, ride, at_end=True)
    assert before is not None  # on the default network alone the trip is unknown: None
    sched, live = before
    assert live == sched == ride["endTime"] / 1000
    _delay(c, h, ride, 600)
    after = realtime_time(services, ride, at_end=True)
    assert after is not None and after[0] == sched and after[1] == sched + 600
    dep = realtime_time(services, ride, at_end=False)
    assert dep is not None and dep[0] == ride["startTime"] / 1000


def test_the_next_option_is_planned_in_the_legs_city(
    two_cities: tuple[TestClient, dict[str, str]],
) -> None:
    c, _ = two_cities
    ride = _nevada_ride(c)
    guard = TransferGuard(services_of(c))
    trip = Trip(
        user_id=f"rider-{uuid.uuid4().hex[:8]}",
        request_hash="x" * 64,
        state="CONFIRMED",
        itinerary={"legs": [ride]},
        legs=[],
    )
    # From the ride's first stop, leaving when it does: the Nevada planner finds the way to
    # its destination (the default network, Kawasaki, knows neither place: None there).
    t = ride["startTime"] / 1000 - 60
    option = c.portal.call(  # type: ignore[union-attr]
        lambda: guard._next_option(trip, ride, t, on_demand=False, board=True)
    )
    assert option is not None
    assert option["legs"][0]["from"]["stopId"] == ride["from"]["stopId"]
    assert option["legs"][-1]["to"]["lat"] == ride["to"]["lat"]

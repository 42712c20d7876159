"""On-demand access, egress and direct legs in the planner (routing.intermodal), against a
small fleet whose answers are computed by hand from its rules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pytest

from gtfs.geo import haversine_m
from routing.itinerary import to_otp
from routing.on_demand import (
    TRANSFER_BUFFER_S,
    OnDemandAnswer,
    OnDemandOffer,
    OnDemandRefusal,
    OnDemandRequest,
    candidate_stops,
)
from routing.options import RoutingOptions
from routing.planner import LOCATION_NOT_ACCESSIBLE, Planner, PlanPlace, PlanRequest
from routing.transit import TransitData
from tests.routing.tiny import TinyFeed, TinyTrip

DAY = dt.date(2024, 1, 1)
N = 30  # stops 0..29 along a meridian, 111 m apart (35.000 .. 35.029)
SOUTH = PlanPlace(34.98, 139.0)  # 2.2 km south of stop 0: no stop within walking distance
NORTH = PlanPlace(35.0291, 139.0)  # beside stop 29
ZONE = (34.97, 35.006, 138.99, 139.01)  # lat/lon box: SOUTH and stops 0..6
SPEED_MPS = 30 / 3.6
DETOUR = 1.3


def _drive_s(a: tuple[float, float], b: tuple[float, float]) -> float:
    m = haversine_m(np.array([a[0]]), np.array([a[1]]), np.array([b[0]]), np.array([b[1]]))[0]
    return float(m) * DETOUR / SPEED_MPS


@dataclass
class FakeFleet:
    """One van waiting at ``depot``; rules an operator sets: hours, notice, seats left."""

    depot: tuple[float, float] = (35.0, 139.0)
    hours: tuple[int, int] = (6 * 3600, 22 * 3600)
    min_notice_s: int = 0
    seats_left: int = 8
    now_s: int = 8 * 3600  # the fleet's clock, service-day seconds
    asked: list[OnDemandRequest] = field(default_factory=list)

    def _inside(self, p: tuple[float, float]) -> bool:
        return ZONE[0] <= p[0] <= ZONE[1] and ZONE[2] <= p[1] <= ZONE[3]

    def zone_at(self, lat: float, lon: float) -> str | None:
        return "z" if self._inside((lat, lon)) else None

    def stops_in_zone(self, zone_id: str) -> npt.NDArray[np.int32]:
        lat = 35.0 + 0.001 * np.arange(N)
        return np.flatnonzero((lat >= ZONE[0]) & (lat <= ZONE[1])).astype(np.int32)

    def hub_stops(self, zone_id: str) -> frozenset[int]:
        return frozenset()

    def estimate_s(self, a: tuple[float, float], b: tuple[float, float]) -> float | None:
        return _drive_s(a, b) if self._inside(a) and self._inside(b) else None

    def quote(self, day: dt.date, requests: Sequence[OnDemandRequest]) -> list[OnDemandAnswer]:
        self.asked.extend(requests)
        return [self._one(r) for r in requests]

    def _one(self, r: OnDemandRequest) -> OnDemandAnswer:
        if not (self._inside(r.origin) and self._inside(r.destination)):
            return OnDemandRefusal(r, "outside_zone", "outside")
        ride = round(_drive_s(r.origin, r.destination))
        if r.depart_at is not None:
            earliest = max(r.depart_at, self.now_s)
            pickup = max(earliest, self.now_s + round(_drive_s(self.depot, r.origin)))
        else:
            assert r.arrive_by is not None
            pickup = r.arrive_by - ride
            earliest = pickup
        if pickup - self.now_s < self.min_notice_s:
            return OnDemandRefusal(r, "insufficient_notice", "notice")
        if not self.hours[0] <= earliest < self.hours[1]:
            return OnDemandRefusal(r, "outside_service_hours", "hours")
        if self.seats_left < r.seats:
            return OnDemandRefusal(r, "no_vehicle_available", "full")
        return OnDemandOffer(
            request=r,
            pickup=r.origin,
            dropoff=r.destination,
            pickup_window=(pickup, pickup + 600),
            pickup_eta=pickup,
            dropoff_eta=pickup + ride,
            latest_arrival=pickup + 600 + 2 * ride,
            zone_id="z",
            zone_name="Zone",
            vehicle_type="van",
            vehicle_id="van-1",
            quote_id=f"q{len(self.asked)}",
            ride_id=f"r{len(self.asked)}",
            expires_at=self.now_s + 120,
        )


@pytest.fixture(scope="module")
def planner() -> Planner:
    # One line northwards through every stop, every 10 minutes from 08:00 to 09:50.
    trips = [
        TinyTrip(f"t{k}", list(range(N)), [8 * 3600 + 600 * k + 60 * i for i in range(N)])
        for k in range(12)
    ]
    back = [
        TinyTrip(
            f"b{k}", list(range(N - 1, -1, -1)), [8 * 3600 + 600 * k + 60 * i for i in range(N)]
        )
        for k in range(12)
    ]
    return Planner(TransitData(TinyFeed(N, trips + back).compile()))


def _req(
    o: PlanPlace, d: PlanPlace, t: int, *, arrive_by: bool = False, flex: bool = True
) -> PlanRequest:
    return PlanRequest(o, d, DAY, t, arrive_by, RoutingOptions(on_demand=flex))


def test_far_from_any_stop_rides_on_demand_to_the_bus(planner: Planner) -> None:
    fleet = FakeFleet()
    # Without on-demand legs the origin is cut off.
    plain = planner.plan(_req(SOUTH, NORTH, 8 * 3600, flex=False), on_demand=fleet)
    assert plain.error is not None and plain.error.id == LOCATION_NOT_ACCESSIBLE
    assert fleet.asked == []
    plan = planner.plan(_req(SOUTH, NORTH, 8 * 3600), on_demand=fleet)
    assert plan.error is None and plan.itineraries
    it = plan.itineraries[0]
    modes = [leg.mode for leg in it.legs]
    assert modes[0] == "FLEX" and "BUS" in modes
    flex, bus = it.legs[0], next(leg for leg in it.legs if leg.mode == "BUS")
    offer = flex.on_demand
    assert offer is not None and flex.origin.lat == SOUTH.lat
    # The van's real times, computed by hand: it drives from its depot at stop 0 to the rider
    # (2.2 km x 1.3 at 30 km/h), then to the stop.
    approach = round(_drive_s((35.0, 139.0), (SOUTH.lat, SOUTH.lon)))
    assert offer.pickup_eta == 8 * 3600 + approach
    assert flex.start == offer.pickup_eta and flex.end == offer.dropoff_eta
    assert flex.destination.stop_index == bus.origin.stop_index
    # The bus boarded is the first one the van reaches with the transfer buffer to spare.
    assert bus.start >= flex.end + TRANSFER_BUFFER_S
    assert bus.start - 600 < flex.end + TRANSFER_BUFFER_S
    otp = to_otp(it, DAY, "UTC")
    leg0 = otp["legs"][0]
    assert leg0["mode"] == "FLEX" and leg0["bookingQuoteId"] == offer.quote_id
    assert leg0["bookingRequestId"] == offer.ride_id and leg0["onDemand"] is True
    assert leg0["pickupWindow"]["end"] - leg0["pickupWindow"]["start"] == 600_000
    assert otp["bookable"] is True and otp["onDemand"] is True
    # Access quotes went to a handful of stops of the zone, not every stop.
    assert 1 <= len(fleet.asked) <= 7


def test_access_ride_leaves_later_when_the_bus_is_far_off(planner: Planner) -> None:
    # At 07:00 the first bus is at 08:00: the van is asked again to reach the stop just in
    # time instead of leaving the rider an hour at the pole.
    fleet = FakeFleet(now_s=7 * 3600)
    plan = planner.plan(_req(SOUTH, NORTH, 7 * 3600), on_demand=fleet)
    it = next(it for it in plan.itineraries if it.on_demand)
    van = it.legs[0]
    bus = next(leg for leg in it.legs if leg.mode == "BUS")
    assert van.end + TRANSFER_BUFFER_S <= bus.start <= van.end + TRANSFER_BUFFER_S + 600
    assert van.start > 7 * 3600 + 1800
    assert (
        van.on_demand is not None
        and van.on_demand.request.arrive_by == bus.start - TRANSFER_BUFFER_S
    )


def test_access_ride_is_booked_bound_to_its_bus(planner: Planner) -> None:
    # The bus is minutes away: the ride still leaves at once, but the quote booked must carry
    # the bus's departure, or the fleet may later insert rides that make the rider miss it.
    plan = planner.plan(_req(SOUTH, NORTH, 8 * 3600), on_demand=FakeFleet())
    it = next(it for it in plan.itineraries if it.on_demand)
    van, bus = it.legs[0], next(leg for leg in it.legs if leg.mode == "BUS")
    assert van.on_demand is not None
    asked = van.on_demand.request
    assert asked.depart_at == 8 * 3600
    assert asked.arrive_by == bus.start - TRANSFER_BUFFER_S


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        ({"seats_left": 0}, "no_vehicle_available"),
        ({"hours": (10 * 3600, 12 * 3600)}, "outside_service_hours"),
        ({"min_notice_s": 3600}, "insufficient_notice"),
    ],
)
def test_no_on_demand_itinerary_when_the_fleet_cannot_serve(
    planner: Planner, rules: dict[str, object], reason: str
) -> None:
    plan = planner.plan(_req(SOUTH, NORTH, 8 * 3600), on_demand=FakeFleet(**rules))  # type: ignore[arg-type]
    assert plan.itineraries == ()
    assert plan.error is not None and plan.error.id == LOCATION_NOT_ACCESSIBLE
    assert {r.reason for r in plan.on_demand_refusals} == {reason}
    assert all(r.role == "access" for r in plan.on_demand_refusals)


def test_outside_every_zone_says_so(planner: Planner) -> None:
    far = PlanPlace(35.5, 139.5)
    plan = planner.plan(_req(far, NORTH, 8 * 3600), on_demand=FakeFleet())
    assert [r.reason for r in plan.on_demand_refusals] == ["outside_zone"]


def test_egress_is_quoted_for_the_bus_arrival(planner: Planner) -> None:
    fleet = FakeFleet()
    plan = planner.plan(_req(NORTH, SOUTH, 8 * 3600), on_demand=fleet)
    assert plan.itineraries, plan.on_demand_refusals
    it = plan.itineraries[0]
    assert it.legs[-1].mode == "FLEX"
    bus = [leg for leg in it.legs if leg.mode == "BUS"][-1]
    flex = it.legs[-1]
    assert flex.on_demand is not None
    # Quoted for when the rider gets off, not for the time of the search.
    asked = flex.on_demand.request
    assert asked.depart_at is not None and asked.depart_at >= bus.end
    assert flex.start >= bus.end
    assert flex.destination.lat == SOUTH.lat


def test_arrive_by_ends_in_time(planner: Planner) -> None:
    t = 9 * 3600
    plan = planner.plan(_req(SOUTH, NORTH, t, arrive_by=True), on_demand=FakeFleet())
    flex = [it for it in plan.itineraries if it.on_demand]
    assert flex and all(it.end <= t for it in plan.itineraries)
    for it in flex:
        van = it.legs[0]
        bus = next(leg for leg in it.legs if leg.mode == "BUS")
        assert van.end + TRANSFER_BUFFER_S <= bus.start


def test_direct_ride_inside_one_zone(planner: Planner) -> None:
    a, b = PlanPlace(34.975, 139.0), PlanPlace(34.99, 139.005)
    plan = planner.plan(_req(a, b, 8 * 3600), on_demand=FakeFleet())
    direct = [it for it in plan.itineraries if [leg.mode for leg in it.legs] == ["FLEX"]]
    assert len(direct) == 1
    leg = direct[0].legs[0]
    assert leg.on_demand is not None and leg.co2_g == leg.on_demand.co2_g


def test_candidate_stops_mix_best_served_and_nearest() -> None:
    lat = np.array([35.0, 35.001, 35.01, 35.02, 35.03])
    lon = np.full(5, 139.0)
    served = np.array([1, 0, 5, 2, 1], dtype=np.int32)
    got = candidate_stops((35.0, 139.0), np.arange(5, dtype=np.int32), lat, lon, served, k=3)
    # Stop 1 is nearest but no line serves it; 2 is best served, 0 nearest, 3 next best.
    assert list(got) == [2, 0, 3]
    hubs = candidate_stops(
        (35.0, 139.0), np.arange(5, dtype=np.int32), lat, lon, served, frozenset({4}), k=2
    )
    assert list(hubs) == [4, 2]

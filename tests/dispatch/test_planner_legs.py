"""Itineraries with on-demand legs from a real dispatcher on the Cobb County data: CobbLinc's
Route 30 buses, the three GTFS-Flex zones of its flex feed with their real service hours and
booking rule (2 h to 24 h notice), vans added by hand. The legs appear when the fleet can
serve them and disappear, each with its reason, when it cannot."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from dispatch.dispatcher import Dispatcher
from dispatch.flex_zones import load_flex_zones
from dispatch.planner_legs import DispatcherLegs, stops_inside
from dispatch.request import RideRequest, ServiceRules
from dispatch.rides import Ride
from dispatch.travel_times import StraightLineTravelTimes
from dispatch.vehicle import VAN, Vehicle
from dispatch.zone import ServiceZone
from gtfs import compile_timetable, read_feed
from gtfs.compiled import CompiledTimetable
from routing.intermodal import EGRESS_SLACK_S
from routing.itinerary import service_day_epoch_ms, to_otp
from routing.on_demand import TRANSFER_BUFFER_S
from routing.options import RoutingOptions
from routing.planner import LOCATION_NOT_ACCESSIBLE, Planner, PlanPlace, PlanRequest
from routing.transit import TransitData

DAY = dt.date(2021, 10, 20)  # a Wednesday inside both feeds
TZ = "America/New_York"
EDT = -4 * 3600


def _epoch(hh: int, mm: int = 0) -> float:
    return dt.datetime.combine(DAY, dt.time(hh, mm), tzinfo=ZoneInfo(TZ)).timestamp()


@pytest.fixture(scope="module")
def tt(gtfs_dir: Path) -> CompiledTimetable:
    return compile_timetable(read_feed(gtfs_dir / "us_cobblinc_bus30.zip"))


@pytest.fixture(scope="module")
def planner(tt: CompiledTimetable) -> Planner:
    return Planner(TransitData(tt))


@pytest.fixture(scope="module")
def zones(gtfs_dir: Path) -> list[ServiceZone]:
    return load_flex_zones(gtfs_dir / "us_cobblinc_flex.zip", EDT)


def _zone(zones: list[ServiceZone], zid: str) -> ServiceZone:
    return next(z for z in zones if z.zone_id == zid)


def _far_point(zone: ServiceZone, tt: CompiledTimetable) -> tuple[float, float]:
    """The point of ``zone`` (on a grid) farthest from every bus stop."""
    lat0, lon0 = zone.centroid()
    best: tuple[float, float, float] | None = None
    for lat in np.linspace(lat0 - 0.02, lat0 + 0.02, 41):
        for lon in np.linspace(lon0 - 0.02, lon0 + 0.02, 41):
            if not zone.contains(float(lat), float(lon)):
                continue
            d = float(np.min(np.hypot(tt.stop_lat - lat, (tt.stop_lon - lon) * 0.83))) * 111_000
            if best is None or d > best[0]:
                best = (d, float(lat), float(lon))
    assert best is not None and best[0] > 1200, best  # farther than anyone walks
    return best[1], best[2]


def _dispatcher(zones: list[ServiceZone], now: float, vans: int = 1) -> Dispatcher:
    d = Dispatcher(StraightLineTravelTimes(1.3), ServiceRules(), clock=lambda: now)
    for z in zones:
        d.add_zone(z)
        for k in range(vans):
            c = z.centroid()
            d.add_vehicle(
                Vehicle(
                    f"{z.zone_id}-van-{k}", VAN, c, _epoch(6), _epoch(20), c, now, zone_id=z.zone_id
                )
            )
    return d


def _plan(
    planner: Planner,
    d: Dispatcher,
    zones: list[ServiceZone],
    o: tuple[float, float],
    dest: tuple[float, float],
    hh: int,
    now: float,
    *,
    flex: bool = True,
) -> tuple[object, DispatcherLegs]:
    tt = planner.tt
    legs = DispatcherLegs(d, zones, tt.stop_lat, tt.stop_lon, tt.timezone, {}, "rider", now=now)
    req = PlanRequest(
        PlanPlace(*o), PlanPlace(*dest), DAY, hh * 3600, options=RoutingOptions(on_demand=flex)
    )
    return planner.plan(req, on_demand=legs), legs


def _bus_stop_far_away(tt: CompiledTimetable, o: tuple[float, float]) -> tuple[float, float]:
    """A served stop of Route 30 more than 5 km from ``o`` (its coordinates, nudged 50 m)."""
    served = np.flatnonzero(np.diff(tt.stop_pattern_ptr) > 0)
    d = np.hypot(tt.stop_lat[served] - o[0], (tt.stop_lon[served] - o[1]) * 0.83) * 111_000
    s = int(served[np.flatnonzero(d > 5000)[0]])
    return float(tt.stop_lat[s]) + 0.0004, float(tt.stop_lon[s])


def test_zone_stops_are_the_route_30_transfer_points(
    tt: CompiledTimetable, zones: list[ServiceZone]
) -> None:
    # The feed's design: each zone feeds Route 30 at its transfer point.
    inside = {z.zone_id: stops_inside(z, tt.stop_lat, tt.stop_lon) for z in zones}
    assert all(len(v) <= 2 for v in inside.values())
    assert sum(len(v) for v in inside.values()) >= 1


def test_rider_far_from_any_stop_gets_van_plus_bus_bookable_in_one_step(
    planner: Planner, zones: list[ServiceZone], tt: CompiledTimetable
) -> None:
    zid = next(z.zone_id for z in zones if stops_inside(z, tt.stop_lat, tt.stop_lon).size)
    o = _far_point(_zone(zones, zid), tt)
    dest = _bus_stop_far_away(tt, o)
    now = _epoch(7)
    d = _dispatcher(zones, now)
    plain, _ = _plan(planner, d, zones, o, dest, 10, now, flex=False)
    assert plain.error is not None and plain.error.id == LOCATION_NOT_ACCESSIBLE  # type: ignore[attr-defined]
    plan, _ = _plan(planner, d, zones, o, dest, 10, now)
    assert plan.error is None, plan.on_demand_refusals  # type: ignore[attr-defined]
    it = plan.itineraries[0]  # type: ignore[attr-defined]
    van = it.legs[0]
    bus = next(leg for leg in it.legs if leg.mode == "BUS")
    assert van.mode == "FLEX" and van.on_demand is not None
    assert van.on_demand.zone_id == zid and van.on_demand.vehicle_id == f"{zid}-van-0"
    # The real GTFS-Flex booking rule: 2 h notice at least.
    assert van.on_demand.booking.min_notice_s == 7200
    w0, w1 = van.on_demand.pickup_window
    assert w0 <= van.start <= w1 and van.start >= 10 * 3600
    assert van.end + TRANSFER_BUFFER_S <= bus.start
    assert bus.route_short_name == "30"
    base = service_day_epoch_ms(DAY, TZ) / 1000
    otp = to_otp(it, DAY, TZ)
    assert otp["legs"][0]["pickupBookingInfo"]["message"]
    # The quote behind the leg books as it is: the van's plan gets the ride, with the window
    # the itinerary promised.
    ride = d.book(van.on_demand.quote_id, "rider", now)
    assert isinstance(ride, Ride) and ride.ride_id == van.on_demand.ride_id
    assert ride.pickup_window == (base + w0, base + w1)
    assert any(s.ride_id == ride.ride_id for s in d.vehicle(f"{zid}-van-0").plan)


def test_egress_ride_after_the_bus(
    planner: Planner, zones: list[ServiceZone], tt: CompiledTimetable
) -> None:
    zid = next(z.zone_id for z in zones if stops_inside(z, tt.stop_lat, tt.stop_lon).size)
    home = _far_point(_zone(zones, zid), tt)
    start = _bus_stop_far_away(tt, home)
    now = _epoch(7)
    plan, _ = _plan(planner, _dispatcher(zones, now), zones, start, home, 10, now)
    assert plan.itineraries, plan.on_demand_refusals  # type: ignore[attr-defined]
    it = plan.itineraries[0]  # type: ignore[attr-defined]
    bus = [leg for leg in it.legs if leg.mode == "BUS"][-1]
    van = it.legs[-1]
    assert van.mode == "FLEX" and van.start >= bus.end + EGRESS_SLACK_S


@pytest.mark.parametrize(
    ("now_hhmm", "plan_hh", "reason"),
    [
        ((9, 30), 10, "insufficient_notice"),  # 30 min ahead: the rule wants 2 h
        ((17, 0), 20, "outside_service_hours"),  # the zone runs 07:00-19:00
    ],
)
def test_rules_of_the_booking_rule_and_the_hours(
    planner: Planner,
    zones: list[ServiceZone],
    tt: CompiledTimetable,
    now_hhmm: tuple[int, int],
    plan_hh: int,
    reason: str,
) -> None:
    zid = next(z.zone_id for z in zones if stops_inside(z, tt.stop_lat, tt.stop_lon).size)
    o = _far_point(_zone(zones, zid), tt)
    now = _epoch(*now_hhmm)
    plan, _ = _plan(
        planner, _dispatcher(zones, now), zones, o, _bus_stop_far_away(tt, o), plan_hh, now
    )
    assert plan.itineraries == ()  # type: ignore[attr-defined]
    assert reason in {r.reason for r in plan.on_demand_refusals}  # type: ignore[attr-defined]


def test_no_itinerary_when_the_vans_are_full(
    planner: Planner, zones: list[ServiceZone], tt: CompiledTimetable
) -> None:
    zid = next(z.zone_id for z in zones if stops_inside(z, tt.stop_lat, tt.stop_lon).size)
    zone = _zone(zones, zid)
    o = _far_point(zone, tt)
    stop = stops_inside(zone, tt.stop_lat, tt.stop_lon)[0]
    now = _epoch(7)
    d = _dispatcher(zones, now)
    # Riders going the same way fill the zone's van around 10:00 until it takes nobody more.
    at = _epoch(10)
    booked = 0
    for k in range(60):
        r = RideRequest(
            o,
            (float(tt.stop_lat[stop]), float(tt.stop_lon[stop])),
            now,
            at,
            request_id=f"fill-{k}",
        )
        if not isinstance(d.request_ride(r, "others", now), Ride):
            break
        booked += 1
    assert 1 <= booked < 60
    plan, _ = _plan(planner, d, zones, o, _bus_stop_far_away(tt, o), 10, now)
    assert plan.itineraries == ()  # type: ignore[attr-defined]
    assert "no_vehicle_available" in {r.reason for r in plan.on_demand_refusals}  # type: ignore[attr-defined]


def test_outside_every_zone(
    planner: Planner, zones: list[ServiceZone], tt: CompiledTimetable
) -> None:
    o = (float(tt.stop_lat[0]) + 0.05, float(tt.stop_lon[0]) + 0.05)
    now = _epoch(7)
    plan, _ = _plan(planner, _dispatcher(zones, now), zones, o, _bus_stop_far_away(tt, o), 10, now)
    assert [r.reason for r in plan.on_demand_refusals] == ["outside_zone"]  # type: ignore[attr-defined]

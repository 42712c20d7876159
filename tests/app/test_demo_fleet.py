"""The demo zone is derived from Muroran's stops; its fleet, idempotent install and riders."""

from __future__ import annotations

import numpy as np
import pytest

from app.dispatch.demo_fleet import (
    DEFAULT_SPEC,
    DemoRiders,
    DemoSetupError,
    DemoZoneSpec,
    ScaledClock,
    buffered_hull,
    build_demo_zone,
    demo_vehicles,
    district_stops,
    install_demo_city,
    spread_points,
)
from app.settings import Settings
from dispatch.dispatcher import Dispatcher
from dispatch.events import MemoryEventSink
from dispatch.geo import distance_matrix_m
from dispatch.rides import RideStatus
from dispatch.simulation.invariants import plan_violations, served_violations
from dispatch.travel_times import StraightLineTravelTimes
from dispatch.vehicle import SHUTTLE, VAN
from dispatch.zone import ServiceZone
from gtfs import compile_timetable, read_feed
from gtfs.compiled import CompiledTimetable

NOW = 1_764_400_000.0  # 2025-11-29 07:06 UTC = 16:06 in Muroran
MURORAN_STATION = (42.3177339, 140.9736236)  # 室蘭駅前, 5 km west of Higashi-Muroran


@pytest.fixture(scope="module")
def tt() -> CompiledTimetable:
    path = Settings(_env_file=None).demo_feed_path  # type: ignore[call-arg]
    return compile_timetable(read_feed(path))


def _dispatcher(events: MemoryEventSink | None = None) -> Dispatcher:
    return Dispatcher(StraightLineTravelTimes(1.3), events=events, clock=lambda: NOW)


def test_district_is_the_stops_around_higashi_muroran(tt: CompiledTimetable) -> None:
    stops = district_stops(tt, "東室蘭駅", 1500.0)
    names = np.asarray(tt.stop_names).astype(str)
    anchor = np.char.startswith(names, "東室蘭駅")
    centre = (float(tt.stop_lat[anchor].mean()), float(tt.stop_lon[anchor].mean()))
    dist = distance_matrix_m([centre], stops)[0]
    assert len(stops) > 50 and dist.max() <= 1500.0
    assert dist[0] == dist.min() < 100  # the station first
    assert len(np.unique(stops, axis=0)) == len(stops)  # platforms folded into one place
    # Every stop of the network within the radius is in the district.
    all_pts = np.column_stack([tt.stop_lat, tt.stop_lon])
    inside = all_pts[distance_matrix_m([centre], all_pts)[0] <= 1500.0]
    assert {tuple(p) for p in np.round(inside, 6)} == {tuple(p) for p in stops}
    with pytest.raises(DemoSetupError, match="no stop named"):
        district_stops(tt, "存在しない駅", 1500.0)


def test_zone_contains_its_stops_and_is_buffered(tt: CompiledTimetable) -> None:
    zone, stops = build_demo_zone(tt, now=NOW)
    assert zone.zone_id == DEFAULT_SPEC.zone_id
    assert all(zone.contains(float(a), float(b)) for a, b in stops)
    ring = np.asarray(zone.polygons[0][0])
    assert ring[0].tolist() == ring[-1].tolist()
    # Every vertex lies one buffer from the district (the circles' polygon is inscribed).
    verts = ring[:-1, ::-1]
    gap = distance_matrix_m(verts, stops).min(axis=1)
    assert np.all(gap > 0.98 * DEFAULT_SPEC.buffer_m) and np.all(gap < 1.01 * DEFAULT_SPEC.buffer_m)
    assert not zone.contains(*MURORAN_STATION)
    assert zone.utc_offset_s == 9 * 3600  # Asia/Tokyo, from the feed
    assert zone.in_service(NOW) and zone.min_notice_s == 0 and zone.max_notice_s == 86400
    # A bigger district gives a zone holding the smaller one.
    big, _ = build_demo_zone(tt, DemoZoneSpec(radius_m=2500.0), now=NOW)
    assert big.cells > zone.cells


def test_geometry_helpers_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="positive"):
        buffered_hull(np.array([[42.0, 141.0]]), 0.0)
    with pytest.raises(ValueError, match="no points"):
        buffered_hull(np.zeros((0, 2)), 100.0)
    one = buffered_hull(np.array([[42.0, 141.0]]), 100.0)
    assert len(one) == 25  # a single stop still gives a (24-gon) zone
    pts = np.array([[42.0, 141.0], [42.0, 141.01], [42.0, 141.001]])
    assert spread_points(pts, 2) == [0, 1]
    assert spread_points(pts, 5) == [0, 1, 2, 0, 1]
    assert spread_points(pts, 0) == []


def test_fleet_four_vans_and_a_shuttle_at_depots_in_the_zone(tt: CompiledTimetable) -> None:
    zone, stops = build_demo_zone(tt, now=NOW)
    fleet = demo_vehicles(zone, stops, NOW)
    assert [v.vtype for v in fleet] == [VAN] * 4 + [SHUTTLE]
    assert len({v.vehicle_id for v in fleet}) == 5
    assert len({v.depot for v in fleet}) == 5
    assert all(zone.contains(*v.depot) and v.position == v.depot for v in fleet)
    assert fleet[-1].depot == (float(stops[0, 0]), float(stops[0, 1]))  # shuttle at the station
    local_midnight = NOW - (NOW + 9 * 3600) % 86400
    for v in fleet:
        assert v.shift_start == local_midnight and v.shift_end >= local_midnight + 86400
        assert v.zone_id == zone.zone_id


# An operator's own zone over central Muroran (GeoJSON order).
OPS_ZONE = {
    "type": "Polygon",
    "coordinates": [
        [
            [140.955, 42.305],
            [141.005, 42.305],
            [141.005, 42.345],
            [140.955, 42.345],
            [140.955, 42.305],
        ]
    ],
}


def test_install_once(tt: CompiledTimetable) -> None:
    d = _dispatcher()
    city = install_demo_city(d, tt)
    assert city is not None and city.created
    assert [z.zone_id for z in d.zones()] == ["muroran-higashi"]
    assert len(d.vehicles()) == 5 and city.vehicle_ids == [v.vehicle_id for v in d.vehicles()]
    again = install_demo_city(d, tt)
    assert again is not None and not again.created
    assert again.vehicle_ids == city.vehicle_ids
    assert len(d.zones()) == 1 and len(d.vehicles()) == 5


def test_operator_zones_are_left_alone(tt: CompiledTimetable) -> None:
    d = _dispatcher()
    d.add_zone(ServiceZone.from_geojson("ops", OPS_ZONE))
    assert install_demo_city(d, tt) is None
    assert [z.zone_id for z in d.zones()] == ["ops"] and d.vehicles() == []


def _run(tt: CompiledTimetable, seed: int, minutes: int) -> tuple[Dispatcher, DemoRiders]:
    sink = MemoryEventSink()
    d = _dispatcher(sink)
    city = install_demo_city(d, tt, now=NOW)
    assert city is not None
    riders = DemoRiders(d, city.zone.zone_id, city.stops, "demo-user", 60.0, seed)
    riders.step(NOW)
    for k in range(1, minutes + 1):
        riders.step(NOW + 60.0 * k)
    return d, riders


def test_riders_book_and_the_fleet_serves_them(tt: CompiledTimetable) -> None:
    d, riders = _run(tt, seed=3, minutes=90)
    s = riders.stats
    assert 40 <= s.requested <= 140  # Poisson, 60 an hour for 1.5 h
    assert s.booked > 0 and s.booked + sum(s.rejected.values()) == s.requested
    rides = d.rides()
    assert len(rides) == s.booked and all(r.user_id == "demo-user" for r in rides)
    assert sum(r.status is RideStatus.COMPLETED for r in rides) > s.booked // 2
    zone = d.zones()[0]
    assert all(
        zone.contains(*r.request.origin) and zone.contains(*r.request.destination) for r in rides
    )
    assert s.moves > 0 and s.errors == 0
    assert {v.position for v in d.vehicles()} != {v.depot for v in d.vehicles()}
    assert plan_violations(d, NOW + 90 * 60) == [] and served_violations(d) == []
    sink = d.events
    assert isinstance(sink, MemoryEventSink)
    topics = sink.topics()
    assert "user.demo-user.ride" in topics
    moved = [p for t, p in sink.events if t.startswith("fleet.vehicle.") and p["type"] == "plan"]
    assert len({tuple(p["position"]) for p in moved}) > 5
    # Same seed, same day.
    d2, riders2 = _run(tt, seed=3, minutes=90)
    assert riders2.stats.to_dict() == s.to_dict()
    assert [r.request.origin for r in d2.rides()] == [r.request.origin for r in rides]


def test_no_riders_no_time_no_requests(tt: CompiledTimetable) -> None:
    d = _dispatcher()
    city = install_demo_city(d, tt, now=NOW)
    assert city is not None
    riders = DemoRiders(d, city.zone.zone_id, city.stops, "u", 0.0)
    riders.step(NOW)
    riders.step(NOW)  # no time passed
    riders.step(NOW + 3600)
    assert riders.stats.requested == 0 and d.rides() == []
    with pytest.raises(ValueError, match="rate"):
        DemoRiders(d, city.zone.zone_id, city.stops, "u", -1.0)
    with pytest.raises(ValueError, match="user_id"):
        DemoRiders(d, city.zone.zone_id, city.stops, "", 1.0)
    with pytest.raises(ValueError, match="too close"):
        DemoRiders(d, city.zone.zone_id, city.stops[:1], "u", 1.0)


def test_scaled_clock() -> None:
    t = [100.0]
    clock = ScaledClock(60.0, lambda: t[0])
    assert clock() == 100.0
    t[0] = 102.0
    assert clock() == 100.0 + 120.0
    with pytest.raises(ValueError):
        ScaledClock(0.0)

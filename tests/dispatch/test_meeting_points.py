"""Virtual stops: riders are picked up at the nearest meeting point within walking distance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dispatch.dispatcher import Dispatcher
from dispatch.geo import point_distance_m
from dispatch.meeting_points import MeetingPoint, MeetingPoints
from dispatch.request import RideRequest, ServiceRules
from dispatch.rides import Quote, Ride
from dispatch.travel_times import StraightLineTravelTimes
from dispatch.vehicle import VAN, Vehicle
from dispatch.zone import ServiceZone

NOW = 9 * 3600.0
SQUARE = {
    "type": "Polygon",
    "coordinates": [
        [[140.93, 42.29], [141.02, 42.29], [141.02, 42.35], [140.93, 42.35], [140.93, 42.29]]
    ],
}
STATION = MeetingPoint("station", 42.3150, 140.9650, "Station square")
MARKET = MeetingPoint("market", 42.3300, 140.9900, "Market")


def _dispatcher() -> Dispatcher:
    zone = ServiceZone.from_geojson("z", SQUARE)
    zone.meeting_points = MeetingPoints([STATION, MARKET])
    d = Dispatcher(StraightLineTravelTimes(), ServiceRules(max_walk_m=400))
    d.add_zone(zone)
    d.add_vehicle(
        Vehicle("v", VAN, (42.31, 140.96), 0, NOW + 8 * 3600, (42.31, 140.96), NOW, zone_id="z")
    )
    return d


def test_trip_ends_move_to_meeting_points_within_walking_distance() -> None:
    d = _dispatcher()
    near_station = (42.3162, 140.9660)  # ~160 m away
    near_market = (42.3290, 140.9915)
    q = d.quote(RideRequest(near_station, near_market, NOW), NOW)
    assert isinstance(q, Quote)
    assert q.request.origin == (STATION.lat, STATION.lon)
    assert q.request.destination == (MARKET.lat, MARKET.lon)
    assert q.to_dict()["pickup_point"] == [STATION.lat, STATION.lon]
    # Too far from any meeting point: served door to door.
    far = (42.300, 141.010)
    q2 = d.quote(RideRequest(far, near_market, NOW), NOW)
    assert isinstance(q2, Quote) and q2.request.origin == far
    ride = d.book(q.quote_id, "u", NOW)
    assert isinstance(ride, Ride)
    assert d.vehicle("v").plan[0].latlon == (STATION.lat, STATION.lon)


def test_meeting_points_over_a_zone_and_lookup_limits() -> None:
    zone = ServiceZone.from_geojson("z", SQUARE)
    mp = MeetingPoints.over_zone(zone)
    assert len(mp.points) > 20
    assert all(zone.contains(p.lat, p.lon) for p in mp.points)
    hit = mp.nearest(42.32, 140.97, 600)
    assert hit is not None and hit[1] <= 600
    assert mp.nearest(42.32, 140.97, 1.0) is None or mp.nearest(42.32, 140.97, 1.0)[1] <= 1.0  # type: ignore[index]
    with pytest.raises(ValueError):
        MeetingPoints([])


def test_snapping_onto_the_street_graph(shared_data: Path) -> None:
    from routing.street import load_osm

    graph = load_osm(shared_data / "osm" / "us_terre_haute.osm.pbf")["drive"]
    lat0, lon0 = float(np.median(graph.lat)), float(np.median(graph.lon))
    raw = MeetingPoints(
        [MeetingPoint(f"p{k}", lat0 + 0.001 * k, lon0 - 0.001 * k) for k in range(5)]
    )
    snapped = raw.snapped(graph)
    nodes = set(zip(graph.lat.tolist(), graph.lon.tolist(), strict=True))
    for a, b in zip(raw.points, snapped.points, strict=True):
        assert (b.lat, b.lon) in nodes and b.point_id == a.point_id
        assert point_distance_m((a.lat, a.lon), (b.lat, b.lon)) < 500

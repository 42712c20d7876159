"""Itineraries built without detail, completed when shown; the vectorised polyline (#10)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Sequence
from typing import Any

import pytest

from routing.itinerary import (
    ItineraryBuilder,
    encode_polyline,
    filter_itineraries,
    path_length_m,
    ride_geometry,
    to_otp,
)
from routing.planner import Planner, PlanPlace, PlanRequest
from routing.street import StraightLineAccess
from tests.routing.conftest import FeedCase

DAY = dt.date(2020, 6, 1)


def _reference_polyline(points: Sequence[tuple[float, float]], precision: int = 5) -> str:
    """The format's definition, one value at a time (the implementation before #10)."""
    factor = 10**precision
    out: list[str] = []
    prev_lat = prev_lon = 0
    for lat, lon in points:
        ilat, ilon = round(lat * factor), round(lon * factor)
        for delta in (ilat - prev_lat, ilon - prev_lon):
            v = ~(delta << 1) if delta < 0 else delta << 1
            while v >= 0x20:
                out.append(chr((0x20 | (v & 0x1F)) + 63))
                v >>= 5
            out.append(chr(v + 63))
        prev_lat, prev_lon = ilat, ilon
    return "".join(out)


@pytest.mark.parametrize("precision", [5, 6])
def test_polyline_matches_the_scalar_definition(precision: int) -> None:
    rng = random.Random(7)
    for n in (0, 1, 2, 3, 50):
        for _ in range(100):
            pts = [
                (rng.uniform(-90, 90), rng.uniform(-180, 180))
                if rng.random() < 0.3
                else (42.3 + rng.uniform(-1e-4, 1e-4), 141.0 + rng.uniform(-1e-4, 1e-4))
                for _ in range(n)
            ]
            assert encode_polyline(pts, precision) == _reference_polyline(pts, precision)
    # Halves round to even, as Python's round(): 0.5e-5 -> 0, 1.5e-5 -> 2.
    halves = [(0.000005, -0.000015), (0.000015, 0.000025)]
    assert encode_polyline(halves) == _reference_polyline(halves)


class _CountingWalk(StraightLineAccess):
    """The straight-line model, counting walks (a street search each with OSM)."""

    calls = 0

    def walk(self, *args: Any, **kwargs: Any) -> Any:
        type(self).calls += 1
        return super().walk(*args, **kwargs)


@pytest.fixture(scope="module")
def planner(muroran: FeedCase) -> Planner:
    return Planner(muroran.data)


def _at(case: FeedCase, i: int, dlat: float = 0.0) -> PlanPlace:
    return PlanPlace(float(case.tt.stop_lat[i]) + dlat, float(case.tt.stop_lon[i]))


QUERIES = [(257, 287, 8 * 3600, False), (287, 257, 17 * 3600, False), (257, 287, 9 * 3600, True)]


@pytest.mark.parametrize(("a", "b", "t", "arrive_by"), QUERIES)
def test_shown_itineraries_are_complete(
    planner: Planner, muroran: FeedCase, a: int, b: int, t: int, arrive_by: bool
) -> None:
    req = PlanRequest(_at(muroran, a, 0.001), _at(muroran, b), DAY, t, arrive_by)
    plan = planner.plan(req)
    assert plan.itineraries
    for it in plan.itineraries:
        assert it.detailed and it.journey is not None
        full = planner.builder.build(
            it.journey, plan.origin, plan.destination, speed=1.2, day=DAY, detail=True
        )
        assert it.legs == full.legs  # shapes, distances, walking paths, intermediate stops
        rides = iter(it.journey.rides)
        for leg in it.legs:
            assert len(leg.geometry) >= 2 and leg.distance_m > 0
            if leg.transit:
                r = next(rides)
                geom = ride_geometry(muroran.tt, r.trip, r.board_pos, r.alight_pos)
                assert leg.geometry == tuple(geom)
                assert leg.distance_m == path_length_m(geom)
                assert len(leg.intermediate_stops) == r.alight_pos - r.board_pos - 1


def test_light_itineraries_filter_as_detailed_ones(muroran: FeedCase, planner: Planner) -> None:
    _CountingWalk.calls = 0
    builder = ItineraryBuilder(muroran.tt, _CountingWalk(muroran.tt.stop_lat, muroran.tt.stop_lon))
    req = PlanRequest(_at(muroran, 257, 0.001), _at(muroran, 287), DAY, 8 * 3600)
    o = planner._place(req.origin, "en", "Origin")
    d = planner._place(req.destination, "en", "Destination")
    a_stops, a_secs = planner._access(req.origin, req.options)
    e_stops, e_secs = planner._access(req.destination, req.options)
    journeys = [
        j for j in planner._search(req, a_stops, a_secs, e_stops, e_secs, None, None) if j.rides
    ]
    assert len(journeys) > 3
    light = [builder.build(j, o, d, speed=1.2, day=DAY, detail=False) for j in journeys]
    assert _CountingWalk.calls == 0  # no walking path searched for a candidate
    full = [builder.build(j, o, d, speed=1.2, day=DAY) for j in journeys]
    for li, fu in zip(light, full, strict=True):
        assert not li.detailed and fu.detailed
        assert li == dataclasses.replace(li)  # plain data
        assert [(x.start, x.end, x.mode, x.trip_id, x.co2_g) for x in li.legs] == [
            (x.start, x.end, x.mode, x.trip_id, x.co2_g) for x in fu.legs
        ]
        assert [(x.origin, x.destination) for x in li.legs] == [
            (x.origin, x.destination) for x in fu.legs
        ]
        assert all(x.geometry == () and x.intermediate_stops == () for x in li.legs)
        assert (li.walk_time, li.transfers, li.co2_g) == (fu.walk_time, fu.transfers, fu.co2_g)
    for co2 in (False, True):
        kept_light = filter_itineraries(light, 3, False, co2)
        kept_full = filter_itineraries(full, 3, False, co2)
        assert [it.trips_key() for it in kept_light] == [it.trips_key() for it in kept_full]
        shown = [builder.detailed(it, o, d, speed=1.2, day=DAY) for it in kept_light]
        assert [it.legs for it in shown] == [it.legs for it in kept_full]
        assert [to_otp(it, DAY, "Asia/Tokyo") for it in shown] == [
            to_otp(it, DAY, "Asia/Tokyo") for it in kept_full
        ]
    marked = dataclasses.replace(light[0], healthier=(60, 120), car_co2_g=900)
    again = builder.detailed(marked, o, d, speed=1.2, day=DAY)
    assert again.detailed and again.healthier == (60, 120) and again.car_co2_g == 900
    assert builder.detailed(full[0], o, d, speed=1.2, day=DAY) is full[0]

"""``to_otp``'s rendering caches and short-geometry encoder give the answer as before (#10)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

import routing.itinerary as itinerary
from routing.itinerary import (
    Itinerary,
    ItineraryBuilder,
    _encode_array,
    _encode_small,
    clear_render_caches,
    path_length_m,
    ride_geometry,
    to_otp,
)
from routing.planner import Planner, PlanPlace, PlanRequest
from routing.street import StraightLineAccess
from routing.street.directions import WalkStep, walk_steps
from tests.routing.conftest import FeedCase
from tests.routing.test_itinerary_detail import _reference_polyline

DAY = dt.date(2020, 6, 1)
TZ = "Asia/Tokyo"


def _reference_leg_parts(leg: Any) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """``legGeometry`` and ``steps`` as ``to_otp`` rendered them before the caches."""
    pts = np.asarray(leg.geometry, dtype=np.float64).reshape(-1, 2)
    geometry = {
        "points": _encode_array(pts),
        "length": len(leg.geometry),
        "geojson": {"type": "LineString", "coordinates": pts[:, ::-1].tolist()},
    }
    if leg.transit:
        return geometry, None
    steps = [step.to_otp() for step in walk_steps(leg.geometry, leg.street)]
    if leg.street is None and len(steps) == 1:
        steps[0]["distance"] = round(leg.distance_m, 1)
    return geometry, steps


def _plans(case: FeedCase) -> list[Itinerary]:
    planner = Planner(case.data)
    tt = case.tt
    rng = random.Random(3)
    out: list[Itinerary] = []
    for _ in range(12):
        a, b = rng.sample(range(tt.n_stops), 2)
        req = PlanRequest(
            PlanPlace(float(tt.stop_lat[a]) + 0.001, float(tt.stop_lon[a])),
            PlanPlace(float(tt.stop_lat[b]), float(tt.stop_lon[b]) - 0.001),
            DAY,
            rng.randint(6, 20) * 3600,
            rng.random() < 0.3,
        )
        out.extend(planner.plan(req).itineraries)
    return out


@pytest.mark.parametrize("precision", [5, 6])
def test_short_geometries_encode_as_the_vectorised_encoder(precision: int) -> None:
    rng = random.Random(11)
    for n in range(0, 17):
        for _ in range(60):
            pts = [
                (rng.uniform(-90, 90), rng.uniform(-180, 180))
                if rng.random() < 0.3
                else (42.3 + rng.uniform(-1e-4, 1e-4), 141.0 + rng.uniform(-1e-4, 1e-4))
                for _ in range(n)
            ]
            a = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
            assert _encode_small(pts, precision) == _encode_array(a, precision)
            assert _encode_small(pts, precision) == _reference_polyline(pts, precision)
    halves = [(0.000005, -0.000015), (0.000015, 0.000025), (-0.000025, 0.0)]
    assert _encode_small(halves) == _encode_array(np.asarray(halves))


def test_rendered_plans_are_unchanged_cold_and_warm(muroran: FeedCase) -> None:
    its = _plans(muroran)
    legs = [leg for it in its for leg in it.legs]
    assert len(its) >= 12 and any(leg.transit for leg in legs)
    assert any(not leg.transit for leg in legs)
    assert any(len(leg.geometry) > itinerary._SMALL_GEOMETRY for leg in legs)
    clear_render_caches()
    cold = [to_otp(it, DAY, TZ) for it in its]
    assert itinerary._geometries  # the caches were used
    warm = [to_otp(it, DAY, TZ) for it in its]
    assert json.dumps(cold) == json.dumps(warm)
    for it, out in zip(its, warm, strict=True):
        for leg, d in zip(it.legs, out["legs"], strict=True):
            geometry, steps = _reference_leg_parts(leg)
            assert json.dumps(d["legGeometry"]) == json.dumps(geometry)
            if steps is not None:
                assert json.dumps(d["steps"]) == json.dumps(steps)


def test_a_cached_walk_keeps_its_own_distance(muroran: FeedCase) -> None:
    """Two straight walks along the same points but walked over different distances: each
    says its own (the cached step is copied before the distance is written into it)."""
    walk = next(leg for it in _plans(muroran) for leg in it.legs if not leg.transit)
    longer = dataclasses.replace(walk, distance_m=walk.distance_m + 123.4)
    clear_render_caches()
    a = to_otp(Itinerary((walk,)), DAY, TZ)["legs"][0]["steps"]
    b = to_otp(Itinerary((longer,)), DAY, TZ)["legs"][0]["steps"]
    c = to_otp(Itinerary((walk,)), DAY, TZ)["legs"][0]["steps"]
    assert a[0]["distance"] == round(walk.distance_m, 1)
    assert b[0]["distance"] == round(walk.distance_m + 123.4, 1)
    assert c == a


def test_walk_steps_are_cached_per_street_graph(
    muroran: FeedCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same points on another street graph are named from that graph, not the cache."""

    class Graph:
        def __init__(self, name: str) -> None:
            self.name = name

    def steps(geometry: Sequence[tuple[float, float]], graph: Any) -> list[WalkStep]:
        lat, lon = geometry[0]
        return [WalkStep("DEPART", "NORTH", graph.name, 10.0, lat, lon)]

    monkeypatch.setattr(itinerary, "walk_steps", steps)
    walk = next(leg for it in _plans(muroran) for leg in it.legs if not leg.transit)
    clear_render_caches()
    names = []
    for graph in (Graph("Ekimae-dori"), Graph("Chuo-dori")):
        leg = dataclasses.replace(walk, street=graph)
        names.append(to_otp(Itinerary((leg,)), DAY, TZ)["legs"][0]["steps"][0]["streetName"])
    assert names == ["Ekimae-dori", "Chuo-dori"]


def test_render_caches_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(itinerary, "RENDER_CACHE_SIZE", 4)
    clear_render_caches()
    for i in range(10):
        geometry = ((42.0 + i * 1e-3, 141.0), (42.1, 141.1))
        out = itinerary._geometry_json(geometry)
        assert out["points"] == _reference_polyline(geometry)
        assert len(itinerary._geometries) <= 4
    # Points given as lists (unhashable) are rendered without the cache.
    listed: Any = [[42.0, 141.0], [42.1, 141.1]]
    assert itinerary._geometry_json(listed)["points"] == _reference_polyline(listed)


def test_cached_ride_geometries_are_each_trips_own(
    muroran: FeedCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every trip, whole and a middle piece, after all of them filled the cache: the points
    and length are those cut from its own shape (trips sharing a key share them truly)."""
    monkeypatch.setattr(itinerary, "RENDER_CACHE_SIZE", 1_000_000)
    tt = muroran.tt
    builder = ItineraryBuilder(tt, StraightLineAccess(tt.stop_lat, tt.stop_lon))
    pieces = []
    for trip in range(tt.n_trips):
        p = int(tt.trip_pattern[trip])
        n = int(tt.pattern_stop_ptr[p + 1] - tt.pattern_stop_ptr[p])
        pieces += [(trip, p, 0, n - 1), (trip, p, n // 3, max(n // 3 + 1, 2 * n // 3))]
    for piece in pieces:  # fill
        builder._ride_geometry(*piece)
    shared = len(pieces) - len(builder._ride_geometries)
    assert shared > 0  # trips do share entries
    for trip, p, a, b in pieces:
        geom, meters = builder._ride_geometry(trip, p, a, b)
        own = ride_geometry(tt, trip, a, b)
        assert geom == tuple(own)
        assert meters == path_length_m(own)

"""The straight-line model (Muroran: no OSM extract) checked against hand-computed haversine."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from routing.street import (
    CAR,
    SHUTTLE,
    InvalidCoordinates,
    StraightLineAccess,
    StraightLineTravelTimes,
    TimeOfDaySpeeds,
)

from .test_geo import hand_haversine


@pytest.fixture(scope="module")
def access(muroran_stops: pd.DataFrame) -> StraightLineAccess:
    return StraightLineAccess(muroran_stops["stop_lat"], muroran_stops["stop_lon"])


def test_nearby_stops_equal_brute_force(
    access: StraightLineAccess, muroran_stops: pd.DataFrame
) -> None:
    lat, lon = 42.3157, 140.9739  # Muroran station
    idx, sec, met = access.nearby_stops(lat, lon, max_seconds=600)
    expected = {}
    for i, (la, lo) in enumerate(
        zip(muroran_stops["stop_lat"], muroran_stops["stop_lon"], strict=True)
    ):
        s = math.ceil(hand_haversine(lat, lon, la, lo) * 1.3 / 1.2)
        if s <= 600:
            expected[i] = s
    assert len(expected) >= 5
    assert dict(zip(idx.tolist(), sec.tolist(), strict=True)) == expected
    assert np.all(np.diff(sec) >= 0)
    assert idx.dtype == np.int32 and sec.dtype == np.int32 and met.dtype == np.float64
    for i, m in zip(idx, met, strict=True):
        d = hand_haversine(lat, lon, muroran_stops["stop_lat"][i], muroran_stops["stop_lon"][i])
        assert m == pytest.approx(d * 1.3, rel=1e-9)


def test_faster_walker_reaches_more(access: StraightLineAccess) -> None:
    slow = access.nearby_stops(42.3157, 140.9739, 600, walk_speed_mps=0.8)[0]
    fast = access.nearby_stops(42.3157, 140.9739, 600, walk_speed_mps=1.6)[0]
    assert set(slow.tolist()) < set(fast.tolist())
    assert access.nearby_stops(42.3157, 140.9739, 0)[0].size == 0


def test_walk_formula(access: StraightLineAccess) -> None:
    sec, met, coords = access.walk(42.3157, 140.9739, 42.3493, 141.0284)
    d = hand_haversine(42.3157, 140.9739, 42.3493, 141.0284)
    assert met == pytest.approx(1.3 * d, rel=1e-12)
    assert sec == math.ceil(1.3 * d / 1.2)
    assert coords == [(42.3157, 140.9739), (42.3493, 141.0284)]
    sec2, met2, _ = StraightLineAccess([0.0], [0.0], detour=1.0).walk(0, 0, 0, 0.01, 1.0)
    assert met2 == pytest.approx(hand_haversine(0, 0, 0, 0.01))
    assert sec2 == math.ceil(met2)


def test_bad_input(access: StraightLineAccess) -> None:
    with pytest.raises(InvalidCoordinates):
        access.nearby_stops(120.0, 140.0, 600)
    with pytest.raises(ValueError, match="walk_speed_mps"):
        access.nearby_stops(42.3, 140.9, 600, walk_speed_mps=0)
    with pytest.raises(ValueError, match="max_seconds"):
        access.nearby_stops(42.3, 140.9, -1)
    with pytest.raises(ValueError, match="detour"):
        StraightLineAccess([42.0], [141.0], detour=0.5)
    with pytest.raises(InvalidCoordinates):
        StraightLineAccess([42.0, float("nan")], [141.0, 141.0])
    with pytest.raises(InvalidCoordinates):
        access.walk(42.3, 140.9, 42.3, 190.0)


def test_travel_time_formula() -> None:
    tt = StraightLineTravelTimes(speed_kmh=30.0, detour=1.3)
    o = np.array([[42.3157, 140.9739], [42.3493, 141.0284]])
    d = np.array([[42.3493, 141.0284], [42.3157, 140.9739], [42.33, 141.0]])
    sec, met = tt.matrix(o, d, profile=CAR, depart_s=12 * 3600)
    assert sec.shape == met.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            m = 1.3 * hand_haversine(*o[i], *d[j])
            assert met[i, j] == pytest.approx(m, rel=1e-12)
            assert sec[i, j] == pytest.approx(m / (30 / 3.6), rel=1e-12)
    np.testing.assert_allclose(met[0, 0], met[1, 1])
    # Peak hour: 0.7 of the speed.
    peak, _ = tt.matrix(o, d, profile=CAR, depart_s=8 * 3600)
    np.testing.assert_allclose(peak, sec / 0.7)
    # The shuttle is capped at its own speed, below the 30 km/h average.
    shuttle, _ = tt.matrix(o, d, profile=SHUTTLE)
    np.testing.assert_allclose(shuttle, met / (SHUTTLE.max_speed_kmh / 3.6))
    free = StraightLineTravelTimes(time_of_day=TimeOfDaySpeeds(()))
    np.testing.assert_allclose(free.matrix(o, d, profile=CAR, depart_s=8 * 3600)[0], sec)
    s, m, coords = tt.route((42.3157, 140.9739), (42.3493, 141.0284), CAR)
    assert (s, m) == (pytest.approx(sec[0, 0]), pytest.approx(met[0, 0]))
    assert coords[0] == (42.3157, 140.9739) and coords[-1] == (42.3493, 141.0284)


def test_travel_time_bad_input() -> None:
    tt = StraightLineTravelTimes()
    with pytest.raises(InvalidCoordinates):
        tt.matrix([[42.0, 141.0, 1.0]], [[42.0, 141.0]], profile=CAR)
    with pytest.raises(InvalidCoordinates):
        tt.matrix([[42.0, 241.0]], [[42.0, 141.0]], profile=CAR)
    with pytest.raises(ValueError, match="speed_kmh"):
        StraightLineTravelTimes(speed_kmh=-5)

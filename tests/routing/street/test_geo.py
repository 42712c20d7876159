"""Coordinate validation and the exact sphere radius queries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from routing.street import InvalidCoordinates, haversine_m
from routing.street.geo import EARTH_RADIUS_M, arc_m, as_latlon, as_latlon_pairs, chord_m, to_xyz


def hand_haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The haversine formula written out with :mod:`math`, independent of the code under test."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def test_one_degree_of_latitude_is_r_pi_over_180() -> None:
    assert float(haversine_m(42.0, 141.0, 43.0, 141.0)) == pytest.approx(
        EARTH_RADIUS_M * math.pi / 180, rel=1e-12
    )


def test_haversine_matches_hand_formula() -> None:
    # Muroran station to Higashi-Muroran station.
    d = float(haversine_m(42.3157, 140.9739, 42.3493, 141.0284))
    assert d == pytest.approx(hand_haversine(42.3157, 140.9739, 42.3493, 141.0284), rel=1e-12)
    assert 5_500 < d < 6_000


def test_chord_and_arc_are_inverse_and_exact() -> None:
    d = np.array([0.0, 1.0, 400.0, 12_345.0, 1e6])
    np.testing.assert_allclose(arc_m(chord_m(d)), d, rtol=1e-12, atol=1e-9)
    a, b = to_xyz([39.46, 39.47], [-87.41, -87.40])
    assert float(np.linalg.norm(a - b)) == pytest.approx(
        float(chord_m(haversine_m(39.46, -87.41, 39.47, -87.40))), rel=1e-9
    )


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(91.0, 0.0), (0.0, 181.0), (float("nan"), 0.0), (0.0, float("inf")), (-90.5, 10.0)],
)
def test_invalid_coordinates_are_refused(lat: float, lon: float) -> None:
    with pytest.raises(InvalidCoordinates, match="invalid coordinate"):
        as_latlon(lat, lon)


def test_shape_errors() -> None:
    with pytest.raises(InvalidCoordinates):
        as_latlon([1.0, 2.0], [1.0])
    with pytest.raises(InvalidCoordinates, match=r"\[n, 2\]"):
        as_latlon_pairs(np.zeros((3, 3)))
    la, lo = as_latlon_pairs([42.0, 141.0])
    assert la.tolist() == [42.0] and lo.tolist() == [141.0]

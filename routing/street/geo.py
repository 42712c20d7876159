"""Coordinate validation and exact radius queries for the street layer.

Great-circle distances and 3-D sphere coordinates come from :mod:`gtfs.geo` (haversine on a
sphere of radius :data:`EARTH_RADIUS_M`, the IUGG mean radius; for city-scale legs its error
against the WGS84 ellipsoid is below 0.5 %).

Spatial indexes (``scipy.spatial.cKDTree``) are built on points mapped onto that sphere in 3-D
(:func:`to_xyz`). The straight chord between two points grows monotonically with their
great-circle distance, so a radius query with :func:`chord_m` is exact at every latitude and
across the antimeridian, unlike a planar projection.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from gtfs.compiled import FloatArray
from gtfs.geo import EARTH_RADIUS_M, haversine_m, project_local_m
from routing.street.errors import InvalidCoordinates

__all__ = [
    "EARTH_RADIUS_M",
    "arc_m",
    "as_latlon",
    "as_latlon_pairs",
    "chord_m",
    "haversine_m",
    "to_xyz",
]


def as_latlon(lat: npt.ArrayLike, lon: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Validate coordinates and return them as 1-D float64 arrays of equal length.

    Raises
    ------
    InvalidCoordinates
        When shapes differ or a value is not finite or out of range.
    """
    la = np.atleast_1d(np.asarray(lat, dtype=np.float64)).ravel()
    lo = np.atleast_1d(np.asarray(lon, dtype=np.float64)).ravel()
    if la.shape != lo.shape:
        raise InvalidCoordinates(f"{la.size} latitudes but {lo.size} longitudes")
    bad = ~(np.isfinite(la) & np.isfinite(lo) & (np.abs(la) <= 90.0) & (np.abs(lo) <= 180.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidCoordinates(
            f"invalid coordinate ({la[i]}, {lo[i]}): latitude must be in [-90, 90] and "
            "longitude in [-180, 180]"
        )
    return la, lo


def as_latlon_pairs(points: npt.ArrayLike, what: str = "points") -> tuple[FloatArray, FloatArray]:
    """Validate an ``[n, 2]`` array of ``(lat, lon)`` rows and return its two columns."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] == 2:
        arr = arr.reshape(1, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InvalidCoordinates(f"{what} must be an [n, 2] array of (lat, lon), got {arr.shape}")
    return as_latlon(arr[:, 0], arr[:, 1])


def to_xyz(lat: npt.ArrayLike, lon: npt.ArrayLike) -> FloatArray:
    """Points on the sphere of radius :data:`EARTH_RADIUS_M` as an ``[n, 3]`` array (metres)."""
    return project_local_m(np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64))


def chord_m(distance_m: npt.ArrayLike) -> FloatArray:
    """Straight 3-D chord of a great-circle distance (for radius queries on :func:`to_xyz`)."""
    d = np.minimum(np.asarray(distance_m, dtype=np.float64), np.pi * EARTH_RADIUS_M)
    return np.asarray(2.0 * EARTH_RADIUS_M * np.sin(d / (2.0 * EARTH_RADIUS_M)))


def arc_m(chord: npt.ArrayLike) -> FloatArray:
    """Inverse of :func:`chord_m`: the great-circle distance of a 3-D chord."""
    c = np.clip(np.asarray(chord, dtype=np.float64) / (2.0 * EARTH_RADIUS_M), 0.0, 1.0)
    return np.asarray(2.0 * EARTH_RADIUS_M * np.arcsin(c))

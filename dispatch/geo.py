"""Great-circle distances, vectorised over numpy arrays of (lat, lon) degrees."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

EARTH_RADIUS_M = 6_371_008.8

FloatArray = NDArray[np.float64]


def haversine_m(
    lat1: FloatArray | float,
    lon1: FloatArray | float,
    lat2: FloatArray | float,
    lon2: FloatArray | float,
) -> FloatArray:
    """Great-circle distance in metres; the inputs broadcast like numpy arrays."""
    p1 = np.radians(lat1)
    p2 = np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2.0) ** 2
    return np.asarray(2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0))))


def distance_matrix_m(origins: npt.ArrayLike, destinations: npt.ArrayLike) -> FloatArray:
    """``(n, m)`` great-circle distances between ``(n, 2)`` and ``(m, 2)`` lat/lon arrays."""
    o = np.asarray(origins, dtype=np.float64).reshape(-1, 2)
    d = np.asarray(destinations, dtype=np.float64).reshape(-1, 2)
    return haversine_m(o[:, None, 0], o[:, None, 1], d[None, :, 0], d[None, :, 1])

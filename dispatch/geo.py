"""Distance matrices for the dispatcher, on the project's one great-circle formula
(:func:`gtfs.geo.haversine_m`)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from gtfs.geo import haversine_m

FloatArray = NDArray[np.float64]

__all__ = ["FloatArray", "distance_matrix_m", "haversine_m", "point_distance_m"]


def distance_matrix_m(origins: npt.ArrayLike, destinations: npt.ArrayLike) -> FloatArray:
    """``(n, m)`` great-circle distances between ``(n, 2)`` and ``(m, 2)`` lat/lon arrays."""
    o = np.asarray(origins, dtype=np.float64).reshape(-1, 2)
    d = np.asarray(destinations, dtype=np.float64).reshape(-1, 2)
    return haversine_m(o[:, None, 0], o[:, None, 1], d[None, :, 0], d[None, :, 1])


def point_distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lat, lon) points."""
    return float(distance_matrix_m([a], [b])[0, 0])

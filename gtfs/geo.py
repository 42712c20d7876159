"""Small vectorised geodesy helpers (haversine, local metric projection)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_M = 6_371_008.8

F64 = npt.NDArray[np.float64]


def haversine_m(lat1: F64, lon1: F64, lat2: F64, lon2: F64) -> F64:
    """Great-circle distance in metres, element-wise."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dl = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))))


def project_local_m(lat: F64, lon: F64) -> npt.NDArray[np.float64]:
    """``[n, 3]`` Earth-centred unit-sphere coordinates scaled to metres.

    Chord distances equal great-circle distances to < 0.01 % within a few km, and (unlike an
    equirectangular projection) stay correct for networks spanning several cities or feeds.
    """
    phi, lam = np.radians(lat), np.radians(lon)
    c = np.cos(phi)
    return np.column_stack([c * np.cos(lam), c * np.sin(lam), np.sin(phi)]) * EARTH_RADIUS_M

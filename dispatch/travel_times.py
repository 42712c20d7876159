"""Travel times the dispatcher needs: a small protocol, and the straight-line fallback.

The street router (``routing.street``) provides network travel times; the dispatcher only needs
``matrix(origins, destinations, speed_kmh)``, so any model that answers it can be plugged in.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from dispatch.geo import FloatArray, distance_matrix_m


class TravelTimes(Protocol):
    """Seconds to drive between points, for a vehicle whose cruising speed is ``speed_kmh``."""

    def matrix(
        self, origins: npt.ArrayLike, destinations: npt.ArrayLike, speed_kmh: float
    ) -> FloatArray:
        """``(n, m)`` seconds between ``(n, 2)`` and ``(m, 2)`` lat/lon arrays."""
        ...

    def distance_m(self, origins: npt.ArrayLike, destinations: npt.ArrayLike) -> FloatArray:
        """``(n, m)`` driving distances in metres (vehicle-km statistics)."""
        ...


class StraightLineTravelTimes:
    """Great-circle distance × a detour factor, driven at the vehicle's speed.

    The documented fallback where no street network is loaded (e.g. the Muroran demo city).

    Parameters
    ----------
    detour
        Ratio of street distance to great-circle distance (1.3 is typical of cities).
    """

    def __init__(self, detour: float = 1.3) -> None:
        if detour < 1.0:
            raise ValueError("detour factor must be >= 1")
        self.detour = detour

    def distance_m(self, origins: npt.ArrayLike, destinations: npt.ArrayLike) -> FloatArray:
        return distance_matrix_m(origins, destinations) * self.detour

    def matrix(
        self, origins: npt.ArrayLike, destinations: npt.ArrayLike, speed_kmh: float
    ) -> FloatArray:
        if speed_kmh <= 0:
            raise ValueError("speed must be positive")
        return np.asarray(self.distance_m(origins, destinations) / (speed_kmh / 3.6))

"""Adapter for callers that ask travel times by a vehicle's cruising speed.

The dispatcher's protocol (``dispatch.travel_times.TravelTimes``) is
``matrix(origins, destinations, speed_kmh) -> seconds`` and
``distance_m(origins, destinations) -> metres``. :class:`CruisingSpeedTravelTimes` answers it
from any :class:`~routing.street.interfaces.TravelTimes` (the OSM :class:`TravelTimeModel` or the
straight-line model) by capping a base profile at the requested speed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from gtfs.compiled import FloatArray
from routing.street.interfaces import TravelTimes
from routing.street.profiles import CAR, VehicleProfile
from routing.street.straight_line import check_speed


class CruisingSpeedTravelTimes:
    """``matrix(origins, destinations, speed_kmh)`` over a profile-based travel-time model.

    Parameters
    ----------
    model
        The street model (``TravelTimeModel(graph)`` or ``StraightLineTravelTimes()``).
    base
        Profile whose barred highways and speed factor apply; its cap becomes
        ``min(base.max_speed_kmh, speed_kmh)``.
    clock
        Returns the current time in seconds after midnight, for time-of-day factors;
        ``None`` means free flow.
    """

    def __init__(
        self,
        model: TravelTimes,
        *,
        base: VehicleProfile = CAR,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.model = model
        self.base = base
        self.clock = clock
        self._profiles: dict[float, VehicleProfile] = {}
        self._lock = threading.Lock()

    def profile_for(self, speed_kmh: float) -> VehicleProfile:
        """The base profile capped at ``speed_kmh`` (one object per speed, so caches are shared)."""
        speed = check_speed(speed_kmh, "speed_kmh")
        with self._lock:
            p = self._profiles.get(speed)
            if p is None:
                cap = min(self.base.max_speed_kmh, speed)
                p = replace(self.base, name=f"{self.base.name}@{cap:g}", max_speed_kmh=cap)
                self._profiles[speed] = p
        return p

    def _depart(self) -> int | None:
        return None if self.clock is None else int(self.clock())

    def matrix(
        self, origins: npt.ArrayLike, destinations: npt.ArrayLike, speed_kmh: float
    ) -> FloatArray:
        """``(n, m)`` seconds between ``(n, 2)`` and ``(m, 2)`` lat/lon arrays."""
        seconds, _ = self.model.matrix(
            origins, destinations, profile=self.profile_for(speed_kmh), depart_s=self._depart()
        )
        return np.asarray(seconds)

    def distance_m(self, origins: npt.ArrayLike, destinations: npt.ArrayLike) -> FloatArray:
        """``(n, m)`` metres along the base profile's fastest paths."""
        _, meters = self.model.matrix(
            origins, destinations, profile=self.base, depart_s=self._depart()
        )
        return np.asarray(meters)

"""The two interfaces the router and the dispatcher program against.

:class:`WalkAccess` (walking access/egress to stops) is implemented by
:class:`~routing.street.straight_line.StraightLineAccess` and
:class:`~routing.street.osm_access.OsmWalkAccess`; :class:`TravelTimes` (driving matrices and
routes) by :class:`~routing.street.straight_line.StraightLineTravelTimes` and
:class:`~routing.street.travel_times.TravelTimeModel`.
"""

from __future__ import annotations

from typing import Protocol

import numpy.typing as npt

from gtfs.compiled import FloatArray, IntArray
from routing.street.profiles import VehicleProfile

LatLon = tuple[float, float]


class WalkAccess(Protocol):
    """Walking between arbitrary points and the stops of a feed."""

    def nearby_stops(
        self, lat: float, lon: float, max_seconds: float, walk_speed_mps: float = 1.2
    ) -> tuple[IntArray, IntArray, FloatArray]:
        """Stops reachable on foot within ``max_seconds``: ``(stop_idx, seconds, meters)``,
        sorted by seconds."""
        ...

    def walk(
        self, lat1: float, lon1: float, lat2: float, lon2: float, walk_speed_mps: float = 1.2
    ) -> tuple[int, float, list[LatLon]]:
        """One walking leg: ``(seconds, meters, [(lat, lon), ...])``."""
        ...


class TravelTimes(Protocol):
    """Driving travel times for a vehicle profile."""

    def matrix(
        self,
        origins_latlon: npt.ArrayLike,
        destinations_latlon: npt.ArrayLike,
        *,
        profile: VehicleProfile,
        depart_s: int | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """Many-to-many ``(seconds[n, m], meters[n, m])``; ``inf`` where unreachable."""
        ...

    def route(
        self,
        origin: LatLon,
        dest: LatLon,
        profile: VehicleProfile,
        depart_s: int | None = None,
    ) -> tuple[float, float, list[LatLon]]:
        """One vehicle movement: ``(seconds, meters, [(lat, lon), ...])``."""
        ...

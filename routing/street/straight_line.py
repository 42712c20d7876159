"""The straight-line street model: the documented fallback when no OSM extract is configured.

No OSM extract exists for Japanese cities in this project (Muroran, the Japanese demo city, uses
this model), so street legs there are estimated as::

    meters  = haversine(a, b) * detour          # detour = 1.3 by default
    seconds = ceil(meters / walk_speed_mps)     # walking, 1.2 m/s by default (4.3 km/h)
    seconds = meters / (speed_kmh / 3.6)        # driving, speed_kmh = 30 by default

``haversine`` is the great-circle distance on a sphere of radius 6 371 008.8 m. A detour factor
of 1.3 is the usual ratio of network to crow-fly distance in a gridded or mixed urban street
pattern. Driving speed is capped by the vehicle profile and scaled by its speed factor and the
time-of-day factor (:mod:`routing.street.profiles`).

Stop searches use a KD-tree on 3-D sphere coordinates (:mod:`routing.street.geo`), never a
Python loop over stops.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from gtfs.compiled import FloatArray, IntArray
from routing.street.geo import as_latlon, as_latlon_pairs, chord_m, haversine_m, to_xyz
from routing.street.interfaces import LatLon
from routing.street.profiles import DEFAULT_PEAKS, TimeOfDaySpeeds, VehicleProfile

DEFAULT_DETOUR = 1.3
DEFAULT_WALK_SPEED_MPS = 1.2
DEFAULT_DRIVE_SPEED_KMH = 30.0


def check_speed(speed: float, what: str = "walk_speed_mps") -> float:
    """Return ``speed`` as a float, refusing zero, negative or non-finite values."""
    s = float(speed)
    if not np.isfinite(s) or s <= 0:
        raise ValueError(f"{what} must be a positive number, got {speed!r}")
    return s


def check_walk_budget(max_seconds: float, walk_speed_mps: float) -> float:
    """Return the walking speed of a ``nearby_stops`` call as a float, refusing a non-positive
    speed or a negative or non-finite ``max_seconds``."""
    speed = check_speed(walk_speed_mps)
    if not np.isfinite(max_seconds) or max_seconds < 0:
        raise ValueError(f"max_seconds must be >= 0, got {max_seconds!r}")
    return speed


def walk_seconds(meters: npt.ArrayLike, walk_speed_mps: float) -> IntArray:
    """Walking seconds, rounded up, as int32."""
    return np.ceil(np.asarray(meters, dtype=np.float64) / walk_speed_mps - 1e-9).astype(np.int32)


def reachable(
    idx: IntArray, meters: FloatArray, walk_speed_mps: float, max_seconds: float
) -> tuple[IntArray, IntArray, FloatArray]:
    """Keep the stops walkable within ``max_seconds``, nearest (then lowest index) first.

    The one ordering rule of every ``nearby_stops``, whatever measured the metres.
    """
    seconds = walk_seconds(meters, walk_speed_mps)
    keep = seconds <= max_seconds
    idx, seconds, meters = idx[keep], seconds[keep], meters[keep]
    order = np.lexsort((idx, seconds))
    return idx[order], seconds[order], meters[order]


class StraightLineAccess:
    """Walking access to stops by great-circle distance times a detour factor.

    Parameters
    ----------
    stop_lat, stop_lon
        Stop coordinates (degrees), indexed like the compiled timetable's stops.
    detour
        Ratio of walking to great-circle distance (>= 1).
    """

    def __init__(
        self, stop_lat: npt.ArrayLike, stop_lon: npt.ArrayLike, detour: float = DEFAULT_DETOUR
    ) -> None:
        if not np.isfinite(detour) or detour < 1.0:
            raise ValueError(f"detour must be >= 1, got {detour!r}")
        self.stop_lat, self.stop_lon = as_latlon(stop_lat, stop_lon)
        self.detour = float(detour)
        self._tree = cKDTree(to_xyz(self.stop_lat, self.stop_lon))

    def nearby_stops(
        self,
        lat: float,
        lon: float,
        max_seconds: float,
        walk_speed_mps: float = DEFAULT_WALK_SPEED_MPS,
    ) -> tuple[IntArray, IntArray, FloatArray]:
        """Stops within ``max_seconds`` of walking: ``(idx, seconds, meters)`` by seconds."""
        la, lo = as_latlon(lat, lon)
        speed = check_walk_budget(max_seconds, walk_speed_mps)
        radius = max_seconds * speed / self.detour
        # Inflate the chord a hair so float rounding never drops a stop on the boundary.
        cand = self._tree.query_ball_point(to_xyz(la, lo)[0], float(chord_m(radius)) + 1e-6)
        idx = np.asarray(cand, dtype=np.int32)
        meters = haversine_m(la[0], lo[0], self.stop_lat[idx], self.stop_lon[idx]) * self.detour
        return reachable(idx, meters, speed, max_seconds)

    def walk(
        self,
        lat1: float,
        lon1: float,
        lat2: float,
        lon2: float,
        walk_speed_mps: float = DEFAULT_WALK_SPEED_MPS,
    ) -> tuple[int, float, list[LatLon]]:
        """A straight walking leg: ``(seconds, meters, [start, end])``."""
        la, lo = as_latlon([lat1, lat2], [lon1, lon2])
        speed = check_speed(walk_speed_mps)
        meters = float(haversine_m(la[0], lo[0], la[1], lo[1])) * self.detour
        seconds = int(walk_seconds(meters, speed))
        return seconds, meters, [(float(la[0]), float(lo[0])), (float(la[1]), float(lo[1]))]


class StraightLineTravelTimes:
    """Driving times by great-circle distance times a detour, at a fixed average speed.

    Parameters
    ----------
    speed_kmh
        Average door-to-door driving speed before profile and time-of-day factors.
    detour
        Ratio of driven to great-circle distance (>= 1).
    time_of_day
        Congestion windows applied by ``depart_s``.
    """

    def __init__(
        self,
        speed_kmh: float = DEFAULT_DRIVE_SPEED_KMH,
        detour: float = DEFAULT_DETOUR,
        time_of_day: TimeOfDaySpeeds | None = None,
    ) -> None:
        if not np.isfinite(detour) or detour < 1.0:
            raise ValueError(f"detour must be >= 1, got {detour!r}")
        self.speed_kmh = check_speed(speed_kmh, "speed_kmh")
        self.detour = float(detour)
        self.time_of_day = (
            time_of_day if time_of_day is not None else TimeOfDaySpeeds(DEFAULT_PEAKS)
        )

    def speed_mps(self, profile: VehicleProfile, depart_s: int | None = None) -> float:
        """Effective speed of ``profile`` at ``depart_s`` (m/s)."""
        kmh = self.speed_kmh * profile.speed_factor * self.time_of_day.factor(depart_s)
        return min(kmh, profile.max_speed_kmh) / 3.6

    def matrix(
        self,
        origins_latlon: npt.ArrayLike,
        destinations_latlon: npt.ArrayLike,
        *,
        profile: VehicleProfile,
        depart_s: int | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """``(seconds[n, m], meters[n, m])`` by the straight-line formula (vectorised)."""
        olat, olon = as_latlon_pairs(origins_latlon, "origins_latlon")
        dlat, dlon = as_latlon_pairs(destinations_latlon, "destinations_latlon")
        meters = (
            haversine_m(olat[:, None], olon[:, None], dlat[None, :], dlon[None, :]) * self.detour
        )
        return meters / self.speed_mps(profile, depart_s), meters

    def route(
        self,
        origin: LatLon,
        dest: LatLon,
        profile: VehicleProfile,
        depart_s: int | None = None,
    ) -> tuple[float, float, list[LatLon]]:
        """A straight movement: ``(seconds, meters, [origin, dest])``."""
        la, lo = as_latlon([origin[0], dest[0]], [origin[1], dest[1]])
        meters = float(haversine_m(la[0], lo[0], la[1], lo[1])) * self.detour
        seconds = meters / self.speed_mps(profile, depart_s)
        return seconds, meters, [(float(la[0]), float(lo[0])), (float(la[1]), float(lo[1]))]

"""Driving times on the street network (``routing.street``) behind the dispatcher's
:class:`~dispatch.travel_times.TravelTimes` protocol.

The dispatcher keys travel times by a vehicle type's speed; each speed maps to the street
profile of that vehicle type (car, van, low-speed shuttle). The matrices here are free flow;
time-of-day speed factors are a configuration of the dispatcher
(``Dispatcher(..., speeds=TimeOfDaySpeeds)``), which drives every free-flow leg through the
zone's speed periods with the FIFO model of :mod:`dispatch.time_dependent`: a later departure
never arrives earlier, so a plan made off-peak stays consistent when its legs cross into a peak
(a simple ``free_flow / factor(departure)`` would not be FIFO).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from dispatch.geo import FloatArray
from dispatch.vehicle import CAR, SHUTTLE, VAN
from routing.street import CAR as CAR_PROFILE
from routing.street import FREE_FLOW, TravelTimeModel, VehicleProfile, load_osm
from routing.street import SHUTTLE as SHUTTLE_PROFILE
from routing.street import VAN as VAN_PROFILE

DEFAULT_PROFILES: dict[float, VehicleProfile] = {
    CAR.speed_kmh: CAR_PROFILE,
    VAN.speed_kmh: VAN_PROFILE,
    SHUTTLE.speed_kmh: SHUTTLE_PROFILE,
}


class StreetTravelTimes:
    """Adapter from ``routing.street.TravelTimeModel`` to the dispatcher's protocol.

    Parameters
    ----------
    model
        The street model (its LRU of Dijkstra rows makes repeated quotes cheap).
    profiles
        Vehicle speed (km/h, as in :class:`~dispatch.vehicle.VehicleType`) → street profile.
    """

    def __init__(
        self, model: TravelTimeModel, profiles: dict[float, VehicleProfile] | None = None
    ) -> None:
        self.model = model
        self.profiles = dict(profiles or DEFAULT_PROFILES)

    def _profile(self, speed_kmh: float) -> VehicleProfile:
        try:
            return self.profiles[speed_kmh]
        except KeyError:
            raise ValueError(f"no street profile for vehicles driving {speed_kmh} km/h") from None

    def matrix(
        self, origins: npt.ArrayLike, destinations: npt.ArrayLike, speed_kmh: float
    ) -> FloatArray:
        secs, _ = self.model.matrix(origins, destinations, profile=self._profile(speed_kmh))
        return np.asarray(secs, dtype=np.float64)

    def distance_m(self, origins: npt.ArrayLike, destinations: npt.ArrayLike) -> FloatArray:
        _, metres = self.model.matrix(origins, destinations, profile=VAN_PROFILE)
        return np.asarray(metres, dtype=np.float64)


def street_travel_times(pbf: Path) -> StreetTravelTimes:
    """Free-flow driving times on the OSM extract ``pbf`` (points off the network fall back to
    the straight-line model)."""
    graph = load_osm(pbf, ["drive"])["drive"]
    return StreetTravelTimes(
        TravelTimeModel(graph, time_of_day=FREE_FLOW, off_network="straight_line", cache_size=4096)
    )

"""Street networks: walking and driving graphs from OSM, snapping, access/egress, footpaths
and travel-time matrices.

Without an OSM extract (e.g. Muroran: no Japanese OSM extract ships with the project) every
function falls back to the straight-line model of :mod:`routing.street.straight_line`:
great-circle distance × detour 1.3, walking at 1.2 m/s, driving at 30 km/h.
"""

from routing.street.edge_snap import EdgeSnap, snap_to_edge
from routing.street.errors import (
    InvalidCoordinates,
    NoStreetPath,
    OsmLoadError,
    StreetError,
    TooFarFromNetwork,
)
from routing.street.footpaths import footpath_source, footpaths
from routing.street.geo import haversine_m
from routing.street.graph import StreetGraph, snap
from routing.street.interfaces import TravelTimes, WalkAccess
from routing.street.network import StreetNetwork
from routing.street.osm_access import OsmWalkAccess
from routing.street.osm_loader import load_osm
from routing.street.profiles import (
    CAR,
    DEFAULT_PEAKS,
    FREE_FLOW,
    PROFILES,
    SHUTTLE,
    VAN,
    TimeOfDaySpeeds,
    VehicleProfile,
)
from routing.street.straight_line import StraightLineAccess, StraightLineTravelTimes
from routing.street.travel_times import TravelTimeModel

__all__ = [
    "CAR",
    "DEFAULT_PEAKS",
    "FREE_FLOW",
    "PROFILES",
    "SHUTTLE",
    "VAN",
    "EdgeSnap",
    "InvalidCoordinates",
    "NoStreetPath",
    "OsmLoadError",
    "OsmWalkAccess",
    "StraightLineAccess",
    "StraightLineTravelTimes",
    "StreetError",
    "StreetGraph",
    "StreetNetwork",
    "TimeOfDaySpeeds",
    "TooFarFromNetwork",
    "TravelTimeModel",
    "TravelTimes",
    "VehicleProfile",
    "WalkAccess",
    "footpath_source",
    "footpaths",
    "haversine_m",
    "load_osm",
    "snap",
    "snap_to_edge",
]

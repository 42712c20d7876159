"""Street networks: walking and driving graphs from OSM, snapping, access/egress, footpaths
and travel-time matrices.

Entry points
------------
``load_osm(pbf, profiles=("walk", "drive")) -> {"walk": StreetGraph, "drive": StreetGraph}``
    pyosmium reader; CSR graphs of the largest strongly connected component.
``StreetNetwork.load(settings.osm_path, cache_dir=None)``
    One city's network or, with no extract, the straight-line model; hands out
    ``walk_access(stop_lat, stop_lon)``, ``travel_times()`` and ``footpaths()``.
``StraightLineAccess`` / ``OsmWalkAccess`` (:class:`WalkAccess`)
    ``nearby_stops(lat, lon, max_seconds, walk_speed_mps=1.2) -> (idx, seconds, meters)`` and
    ``walk(lat1, lon1, lat2, lon2, walk_speed_mps=1.2) -> (seconds, meters, coords)``.
``StraightLineTravelTimes`` / ``TravelTimeModel`` (:class:`TravelTimes`)
    ``matrix(origins[n, 2], destinations[m, 2], *, profile, depart_s=None) -> (s, m)`` and
    ``route(origin, dest, profile, depart_s=None) -> (seconds, meters, coords)``; profiles
    ``CAR``, ``VAN``, ``SHUTTLE``; time-of-day factors ``TimeOfDaySpeeds``.
``footpaths(graph_or_None, stop_lat, stop_lon, radius_m=400) -> (from, to, seconds)``
    and ``footpath_source(graph)`` for ``compile_timetable(..., footpaths=...)``.
``snap(graph, lat, lon) -> (node, distance_m)`` and ``snap_to_edge(graph, lat, lon) -> EdgeSnap``.

Errors are :class:`StreetError` subclasses (``ValueError``) with a stable ``code``:
``invalid_coordinates``, ``too_far_from_street_network``, ``no_street_path``,
``osm_unreadable``.

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

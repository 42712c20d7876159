"""Walking access and egress on a real OSM walking graph.

The query point and every stop snap to their nearest graph node (:func:`snap`); a walk is
``snap distance + shortest graph path + snap distance``, found by a bounded Dijkstra
(``limit=`` the walking budget) in scipy's compiled csgraph. Stops farther than ``max_snap_m``
from the graph are never reached on foot through it; a query point farther than that raises
:class:`TooFarFromNetwork`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from gtfs.compiled import FloatArray, IntArray
from routing.street.errors import NoStreetPath, StreetError, TooFarFromNetwork
from routing.street.geo import as_latlon, haversine_m
from routing.street.graph import StreetGraph, snap
from routing.street.interfaces import LatLon
from routing.street.shortest_paths import door_to_door, search, trace_path
from routing.street.straight_line import DEFAULT_WALK_SPEED_MPS, check_speed, walk_seconds

DEFAULT_MAX_SNAP_M = 300.0


def snap_one(graph: StreetGraph, lat: float, lon: float, max_snap_m: float) -> tuple[int, float]:
    """Snap one point, refusing points farther than ``max_snap_m`` from the graph."""
    node, dist = snap(graph, lat, lon)
    if node.size != 1:
        raise StreetError("expected a single point")
    if dist[0] > max_snap_m:
        raise TooFarFromNetwork(float(dist[0]), max_snap_m)
    return int(node[0]), float(dist[0])


class OsmWalkAccess:
    """Walking to and from stops over an OSM walking :class:`StreetGraph`.

    Parameters
    ----------
    graph
        A walking graph (``load_osm(...)["walk"]``).
    stop_lat, stop_lon
        Stop coordinates, indexed like the compiled timetable's stops.
    max_snap_m
        Farthest a point or stop may lie from the graph.
    """

    def __init__(
        self,
        graph: StreetGraph,
        stop_lat: npt.ArrayLike,
        stop_lon: npt.ArrayLike,
        *,
        max_snap_m: float = DEFAULT_MAX_SNAP_M,
    ) -> None:
        if graph.mode != "walk":
            raise ValueError(f"OsmWalkAccess needs a walking graph, got {graph.mode!r}")
        self.graph = graph
        self.stop_lat, self.stop_lon = as_latlon(stop_lat, stop_lon)
        self.max_snap_m = float(max_snap_m)
        self.stop_node, self.stop_snap_m = snap(graph, self.stop_lat, self.stop_lon)
        self.stop_on_graph = self.stop_snap_m <= self.max_snap_m

    def nearby_stops(
        self,
        lat: float,
        lon: float,
        max_seconds: float,
        walk_speed_mps: float = DEFAULT_WALK_SPEED_MPS,
    ) -> tuple[IntArray, IntArray, FloatArray]:
        """Stops within ``max_seconds`` of walking: ``(idx, seconds, meters)`` by seconds."""
        speed = check_speed(walk_speed_mps)
        if not np.isfinite(max_seconds) or max_seconds < 0:
            raise ValueError(f"max_seconds must be >= 0, got {max_seconds!r}")
        la, lo = as_latlon(lat, lon)
        node, off = snap_one(self.graph, float(la[0]), float(lo[0]), self.max_snap_m)
        budget = max_seconds * speed
        empty = np.empty(0, dtype=np.int32)
        if off > budget:
            return empty, empty, np.empty(0)
        dist, _ = search(self.graph.length_matrix, node, limit=budget - off)
        direct = haversine_m(la, lo, self.stop_lat, self.stop_lon)
        same = self.stop_node == node
        meters = door_to_door(dist[0, self.stop_node], off, self.stop_snap_m, same, direct)
        idx = np.flatnonzero(self.stop_on_graph & (meters <= budget)).astype(np.int32)
        meters = meters[idx]
        seconds = walk_seconds(meters, speed)
        keep = seconds <= max_seconds
        idx, seconds, meters = idx[keep], seconds[keep], meters[keep]
        order = np.lexsort((idx, seconds))
        return idx[order], seconds[order], meters[order]

    def walk(
        self,
        lat1: float,
        lon1: float,
        lat2: float,
        lon2: float,
        walk_speed_mps: float = DEFAULT_WALK_SPEED_MPS,
    ) -> tuple[int, float, list[LatLon]]:
        """The shortest walk: ``(seconds, meters, [(lat, lon), ...])`` from start to end."""
        speed = check_speed(walk_speed_mps)
        la, lo = as_latlon([lat1, lat2], [lon1, lon2])
        start = (float(la[0]), float(lo[0]))
        end = (float(la[1]), float(lo[1]))
        n1, off1 = snap_one(self.graph, start[0], start[1], self.max_snap_m)
        n2, off2 = snap_one(self.graph, end[0], end[1], self.max_snap_m)
        g = self.graph
        if n1 == n2:
            meters = float(
                door_to_door(0.0, off1, off2, True, haversine_m(la[0], lo[0], la[1], lo[1]))
            )
            return int(walk_seconds(meters, speed)), meters, [start, end]
        dist, pred = search(g.length_matrix, n1, predecessors=True)
        if not np.isfinite(dist[0, n2]) or pred is None:
            raise NoStreetPath("no walking path between the two points")
        path = trace_path(pred[0], n2)
        meters = off1 + float(dist[0, n2]) + off2
        coords = [start, *zip(g.lat[path].tolist(), g.lon[path].tolist(), strict=True), end]
        return int(walk_seconds(meters, speed)), meters, coords

"""Walking access and egress on a real OSM walking graph.

The query point and every stop are projected onto their nearest street segments
(:mod:`routing.street.edge_snap`); a walk is ``distance to the street + the best way along the
street network + distance from the street`` (:mod:`routing.street.door_to_door`), found by a
bounded Dijkstra (``limit=`` the walking budget) in scipy's compiled csgraph. Stops farther than
``max_snap_m`` from the street are never reached on foot through it; a query point farther than
that raises :class:`TooFarFromNetwork`.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from gtfs.compiled import FloatArray, IntArray
from routing.street.door_to_door import door_to_door, leg_coords
from routing.street.edge_snap import Links, edge_index
from routing.street.errors import NoStreetPath, TooFarFromNetwork
from routing.street.geo import as_latlon, chord_m, to_xyz
from routing.street.graph import StreetGraph
from routing.street.interfaces import LatLon
from routing.street.shortest_paths import Row, search_from_points
from routing.street.straight_line import (
    DEFAULT_WALK_SPEED_MPS,
    check_speed,
    check_walk_budget,
    reachable,
    walk_seconds,
)

DEFAULT_MAX_SNAP_M = 300.0


def check_links(links: Links, max_snap_m: float) -> None:
    """Refuse points farther than ``max_snap_m`` from the street."""
    if len(links) and float(links.off_m[:, 0].max()) > max_snap_m:
        raise TooFarFromNetwork(float(links.off_m[:, 0].max()), max_snap_m)


class OsmWalkAccess:
    """Walking to and from stops over an OSM walking :class:`StreetGraph`.

    Parameters
    ----------
    graph
        A walking graph (``load_osm(...)["walk"]``).
    stop_lat, stop_lon
        Stop coordinates, indexed like the compiled timetable's stops.
    max_snap_m
        Farthest a point or stop may lie from the street.
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
        self.index = edge_index(graph)
        self.stop_links = self.index.links(self.stop_lat, self.stop_lon)
        self.stop_on_graph = self.stop_links.off_m[:, 0] <= self.max_snap_m
        self._stop_tree = cKDTree(to_xyz(self.stop_lat, self.stop_lon))

    def _link_point(self, lat: float, lon: float) -> Links:
        links = self.index.links(lat, lon)
        check_links(links, self.max_snap_m)
        return links

    def nearby_stops(
        self,
        lat: float,
        lon: float,
        max_seconds: float,
        walk_speed_mps: float = DEFAULT_WALK_SPEED_MPS,
    ) -> tuple[IntArray, IntArray, FloatArray]:
        """Stops within ``max_seconds`` of walking: ``(idx, seconds, meters)`` by seconds."""
        speed = check_walk_budget(max_seconds, walk_speed_mps)
        la, lo = as_latlon(lat, lon)
        o = self._link_point(float(la[0]), float(lo[0]))
        budget = max_seconds * speed
        empty = np.empty(0, dtype=np.int32)
        # A walk is never shorter than the great circle: only stops inside it are candidates.
        near = np.asarray(
            self._stop_tree.query_ball_point(to_xyz(la, lo)[0], float(chord_m(budget)) + 1e-6),
            dtype=np.int64,
        )
        near = near[self.stop_on_graph[near]]
        if near.size == 0 or float(o.off_m[0, 0]) > budget:
            return empty, empty, np.empty(0)
        g = self.graph
        res = door_to_door(
            g,
            o,
            self.stop_links,
            np.zeros(near.size, dtype=np.int64),
            near,
            g.length_m,
            partial(search_from_points, g.length_matrix, limit=budget),
            off_weight=1.0,
            weight_is_length=True,
        )
        meters = res.meters
        keep = meters <= budget
        idx, meters = near[keep].astype(np.int32), meters[keep]
        return reachable(idx, meters, speed, max_seconds)

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
        o = self._link_point(float(la[0]), float(lo[0]))
        d = self._link_point(float(la[1]), float(lo[1]))
        g = self.graph
        found: list[Row] = []

        def rows(node: IntArray, cost: FloatArray, meters: FloatArray) -> list[Row]:
            found.extend(search_from_points(g.length_matrix, node, cost, meters, predecessors=True))
            return found

        zero = np.zeros(1, dtype=np.int64)
        res = door_to_door(g, o, d, zero, zero, g.length_m, rows, 1.0, weight_is_length=True)
        meters = float(res.meters[0])
        if not np.isfinite(meters):
            raise NoStreetPath("no walking path between the two points")
        coords = leg_coords(g, o, d, res, found[0])
        return int(walk_seconds(meters, speed)), meters, coords

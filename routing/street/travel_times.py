"""Driving travel times on the OSM driving graph, for the dispatcher and the simulator.

``TravelTimeModel(graph).matrix(origins, destinations, profile=CAR, depart_s=...)`` snaps every
point to the nodes the profile may use, runs one Dijkstra (scipy csgraph) per distinct snapped
origin not already cached, and reads the destinations off the result rows. Rows — seconds and
the shortest-path tree to every node for one ``(origin node, profile, time-of-day factor)`` —
are kept in an LRU cache, so re-quoting against a live fleet mostly reuses earlier searches;
metres are summed along the tree to the requested destinations (a numba kernel).

Costs: edge seconds = ``length / min(speed_kmh * speed_factor * tod_factor, max_speed_kmh)``;
the snapping offsets at both ends are driven at :data:`CONNECTOR_SPEED_KMH` (capped by the
profile); metres follow the fastest path. Unreachable pairs (e.g. a shuttle barred from the
only trunk bridge) are ``inf``. Without a graph the model delegates to
:class:`~routing.street.straight_line.StraightLineTravelTimes`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from gtfs.compiled import FloatArray, IntArray
from routing.street.errors import NoStreetPath, TooFarFromNetwork
from routing.street.geo import arc_m, as_latlon, as_latlon_pairs, haversine_m, to_xyz
from routing.street.graph import StreetGraph
from routing.street.interfaces import LatLon
from routing.street.profiles import DEFAULT_PEAKS, TimeOfDaySpeeds, VehicleProfile
from routing.street.shortest_paths import (
    SOURCE_CHUNK,
    door_to_door,
    path_lengths,
    search,
    trace_path,
)
from routing.street.straight_line import StraightLineTravelTimes

CONNECTOR_SPEED_KMH = 20.0
DEFAULT_MAX_SNAP_M = 500.0


@dataclass(eq=False)
class _ProfileView:
    """The part of the drive graph one profile may use, with its own snapping index."""

    graph: StreetGraph
    profile: VehicleProfile

    @cached_property
    def keep(self) -> npt.NDArray[np.bool_] | None:
        return self.graph.allowed(self.profile)

    @cached_property
    def nodes(self) -> IntArray:
        """Nodes of the largest strongly connected part of the usable edges (snap targets)."""
        g = self.graph
        if self.keep is None:
            return np.arange(g.n_nodes, dtype=np.int32)
        _, labels = connected_components(self.matrix(1.0), directed=True, connection="strong")
        return np.flatnonzero(labels == np.argmax(np.bincount(labels))).astype(np.int32)

    @cached_property
    def tree(self) -> cKDTree:
        return cKDTree(to_xyz(self.graph.lat[self.nodes], self.graph.lon[self.nodes]))

    def snap(self, lat: FloatArray, lon: FloatArray) -> tuple[IntArray, FloatArray]:
        chord, i = self.tree.query(to_xyz(lat, lon))
        return self.nodes[np.asarray(i)], arc_m(chord)

    def matrix(self, factor: float) -> csr_matrix:
        return self.graph.matrix(self.graph.drive_seconds(self.profile, factor), self.keep)


class TravelTimeModel:
    """Many-to-many driving times on an OSM driving graph, with an LRU of search rows.

    Parameters
    ----------
    graph
        ``load_osm(...)["drive"]``, or ``None`` for the straight-line fallback.
    time_of_day
        Congestion windows (default: 0.7 at 07-09 h and 17-19 h).
    fallback
        The straight-line model used when ``graph`` is ``None``.
    max_snap_m
        Farthest a point may lie from the streets; beyond it :class:`TooFarFromNetwork`.
    cache_size
        Search rows kept (each holds seconds and predecessors over the graph's nodes).
    off_network
        What a point beyond ``max_snap_m`` gets: ``"raise"`` (:class:`TooFarFromNetwork`) or
        ``"straight_line"`` (its rows and columns come from the fallback model).
    """

    def __init__(
        self,
        graph: StreetGraph | None = None,
        *,
        time_of_day: TimeOfDaySpeeds | None = None,
        fallback: StraightLineTravelTimes | None = None,
        max_snap_m: float = DEFAULT_MAX_SNAP_M,
        cache_size: int = 256,
        off_network: Literal["raise", "straight_line"] = "raise",
    ) -> None:
        if graph is not None and graph.mode != "drive":
            raise ValueError(f"TravelTimeModel needs a driving graph, got {graph.mode!r}")
        if cache_size < 1:
            raise ValueError("cache_size must be >= 1")
        self.graph = graph
        self.time_of_day = (
            time_of_day if time_of_day is not None else TimeOfDaySpeeds(DEFAULT_PEAKS)
        )
        self.fallback = fallback or StraightLineTravelTimes(time_of_day=self.time_of_day)
        self.max_snap_m = float(max_snap_m)
        self.cache_size = int(cache_size)
        if off_network not in ("raise", "straight_line"):
            raise ValueError(f"off_network must be 'raise' or 'straight_line', not {off_network!r}")
        self.off_network = off_network
        self._views: dict[VehicleProfile, _ProfileView] = {}
        self._matrices: dict[tuple[VehicleProfile, float], csr_matrix] = {}
        self._rows: OrderedDict[tuple[int, VehicleProfile, float], tuple[FloatArray, IntArray]]
        self._rows = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    # --- internals -----------------------------------------------------------------------------
    def _view(self, profile: VehicleProfile) -> _ProfileView:
        assert self.graph is not None
        with self._lock:
            view = self._views.get(profile)
            if view is None:
                view = self._views[profile] = _ProfileView(self.graph, profile)
        return view

    def _weights(self, profile: VehicleProfile, factor: float) -> csr_matrix:
        key = (profile, factor)
        with self._lock:
            m = self._matrices.get(key)
        if m is None:
            m = self._view(profile).matrix(factor)
            with self._lock:
                self._matrices[key] = m
        return m

    def _rows_for(
        self, nodes: IntArray, profile: VehicleProfile, factor: float
    ) -> list[tuple[FloatArray, IntArray]]:
        """Cached or freshly searched ``(seconds, predecessors)`` rows, one per node."""
        found: dict[int, tuple[FloatArray, IntArray]] = {}
        missing: list[int] = []
        with self._lock:
            for u in nodes.tolist():
                row = self._rows.get((u, profile, factor))
                if row is None:
                    missing.append(u)
                else:
                    self._rows.move_to_end((u, profile, factor))
                    found[u] = row
            self.hits += len(found)
            self.misses += len(missing)
        if missing:
            weights = self._weights(profile, factor)
            assert self.graph is not None
            for lo in range(0, len(missing), SOURCE_CHUNK):
                chunk = np.asarray(missing[lo : lo + SOURCE_CHUNK], dtype=np.int32)
                dist, pred = search(weights, chunk, predecessors=True)
                assert pred is not None
                for k, u in enumerate(chunk.tolist()):
                    found[u] = (dist[k].copy(), pred[k].copy())
            with self._lock:
                for u in missing:
                    self._rows[(u, profile, factor)] = found[u]
                while len(self._rows) > self.cache_size:
                    self._rows.popitem(last=False)
        return [found[u] for u in nodes.tolist()]

    # --- public ----------------------------------------------------------------------------------
    def cache_info(self) -> dict[str, int]:
        """Row-cache statistics: hits, misses, current size."""
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "size": len(self._rows)}

    def matrix(
        self,
        origins_latlon: npt.ArrayLike,
        destinations_latlon: npt.ArrayLike,
        *,
        profile: VehicleProfile,
        depart_s: int | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """``(seconds[n, m], meters[n, m])`` driving from every origin to every destination."""
        if self.graph is None:
            return self.fallback.matrix(
                origins_latlon, destinations_latlon, profile=profile, depart_s=depart_s
            )
        olat, olon = as_latlon_pairs(origins_latlon, "origins_latlon")
        dlat, dlon = as_latlon_pairs(destinations_latlon, "destinations_latlon")
        view = self._view(profile)
        onode, ooff = view.snap(olat, olon)
        dnode, doff = view.snap(dlat, dlon)
        o_ok, d_ok = ooff <= self.max_snap_m, doff <= self.max_snap_m
        if o_ok.all() and d_ok.all():
            return self._graph_matrix(
                olat, olon, onode, ooff, dlat, dlon, dnode, doff, profile, depart_s
            )
        if self.off_network == "raise":
            raise TooFarFromNetwork(
                float(max(ooff.max(initial=0), doff.max(initial=0))), self.max_snap_m
            )
        # Points off the network travel by the straight-line model; the rest by the graph.
        seconds, meters = self.fallback.matrix(
            np.column_stack((olat, olon)),
            np.column_stack((dlat, dlon)),
            profile=profile,
            depart_s=depart_s,
        )
        oi, di = np.flatnonzero(o_ok), np.flatnonzero(d_ok)
        if oi.size and di.size:
            s_sub, m_sub = self._graph_matrix(
                olat[oi],
                olon[oi],
                onode[oi],
                ooff[oi],
                dlat[di],
                dlon[di],
                dnode[di],
                doff[di],
                profile,
                depart_s,
            )
            seconds[np.ix_(oi, di)] = s_sub
            meters[np.ix_(oi, di)] = m_sub
        return seconds, meters

    def _graph_matrix(
        self,
        olat: FloatArray,
        olon: FloatArray,
        onode: IntArray,
        ooff: FloatArray,
        dlat: FloatArray,
        dlon: FloatArray,
        dnode: IntArray,
        doff: FloatArray,
        profile: VehicleProfile,
        depart_s: int | None,
    ) -> tuple[FloatArray, FloatArray]:
        """The matrix between snapped points (all within the snapping limit)."""
        assert self.graph is not None
        factor = self.time_of_day.factor(depart_s)
        uniq, row_of = np.unique(onode, return_inverse=True)
        rows = self._rows_for(uniq.astype(np.int32), profile, factor)
        secs_u = np.empty((len(rows), dnode.size))
        mets_u = np.empty((len(rows), dnode.size))
        for k, (dist, pred) in enumerate(rows):
            secs_u[k] = dist[dnode]
            mets_u[k] = path_lengths(self.graph, dist[None, :], pred[None, :], dnode)[0]
        conn = min(CONNECTOR_SPEED_KMH, profile.max_speed_kmh) / 3.6
        # Both ends on the same street vertex: drive straight across at connector speed.
        same = onode[:, None] == dnode[None, :]
        direct = haversine_m(olat[:, None], olon[:, None], dlat[None, :], dlon[None, :])
        meters = door_to_door(mets_u[row_of], ooff[:, None], doff[None, :], same, direct)
        conn_s = door_to_door(0.0, ooff[:, None], doff[None, :], same, direct) / conn
        seconds = np.where(same, 0.0, secs_u[row_of]) + conn_s
        return seconds, meters

    def route(
        self,
        origin: LatLon,
        dest: LatLon,
        profile: VehicleProfile,
        depart_s: int | None = None,
    ) -> tuple[float, float, list[LatLon]]:
        """The fastest drive: ``(seconds, meters, [(lat, lon), ...])`` from origin to dest."""
        if self.graph is None:
            return self.fallback.route(origin, dest, profile, depart_s)
        la, lo = as_latlon([origin[0], dest[0]], [origin[1], dest[1]])
        view = self._view(profile)
        node, off = view.snap(la, lo)
        if off.max() > self.max_snap_m:
            if self.off_network == "raise":
                raise TooFarFromNetwork(float(off.max()), self.max_snap_m)
            return self.fallback.route(origin, dest, profile, depart_s)
        conn = min(CONNECTOR_SPEED_KMH, profile.max_speed_kmh) / 3.6
        start = (float(la[0]), float(lo[0]))
        end = (float(la[1]), float(lo[1]))
        if node[0] == node[1]:
            direct = float(
                door_to_door(0.0, off[0], off[1], True, haversine_m(la[0], lo[0], la[1], lo[1]))
            )
            return direct / conn, direct, [start, end]
        factor = self.time_of_day.factor(depart_s)
        dist, pred = search(self._weights(profile, factor), node[0], predecessors=True)
        assert pred is not None
        target = int(node[1])
        if not np.isfinite(dist[0, target]):
            raise NoStreetPath(f"no {profile.name} route between the two points")
        path = trace_path(pred[0], target)
        g = self.graph
        meters = float(path_lengths(g, dist, pred, [target])[0, 0]) + float(off.sum())
        seconds = float(dist[0, target]) + float(off.sum()) / conn
        coords = [start, *zip(g.lat[path].tolist(), g.lon[path].tolist(), strict=True), end]
        return seconds, meters, coords

"""Driving travel times on the OSM driving graph, for the dispatcher and the simulator.

``TravelTimeModel(graph).matrix(origins, destinations, profile=CAR, depart_s=...)`` links
every point to the nearest street segments the profile may use (:mod:`routing.street.edge_snap`),
runs one Dijkstra (scipy csgraph) per distinct origin not already cached — from a virtual node
joined to the ends of its segments — and reads the destinations' segment ends off the result
(:mod:`routing.street.door_to_door`, which respects oneway segments). Rows — seconds and the
shortest-path tree to every node for one ``(origin, profile, time-of-day factor)`` — are kept
in an LRU cache, so re-quoting against a live fleet mostly reuses earlier
searches; metres are summed along the tree to the requested destinations (a numba kernel).

Costs: edge seconds = ``length / min(speed_kmh * speed_factor * tod_factor, max_speed_kmh)``;
the distances from the points to the street are driven at :data:`CONNECTOR_SPEED_KMH` (capped
by the profile); metres follow the fastest path. Unreachable pairs (e.g. a shuttle barred from the
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

from gtfs.compiled import FloatArray, IntArray
from routing.street.door_to_door import DoorToDoor, door_to_door, leg_coords
from routing.street.edge_snap import EdgeIndex, Links
from routing.street.errors import NoStreetPath, TooFarFromNetwork
from routing.street.geo import as_latlon, as_latlon_pairs
from routing.street.graph import StreetGraph
from routing.street.interfaces import LatLon
from routing.street.profiles import DEFAULT_PEAKS, TimeOfDaySpeeds, VehicleProfile
from routing.street.shortest_paths import Row, search_from_points
from routing.street.straight_line import StraightLineTravelTimes

CONNECTOR_SPEED_KMH = 20.0
DEFAULT_MAX_SNAP_M = 500.0
DEFAULT_CACHE_BYTES = 256 * 1024 * 1024


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
    def index(self) -> EdgeIndex:
        """Segments this profile may snap to: usable edges inside its connected part."""
        g = self.graph
        usable = np.ones(g.n_edges, dtype=bool) if self.keep is None else self.keep.copy()
        inside = np.zeros(g.n_nodes, dtype=bool)
        inside[self.nodes] = True
        usable &= inside[g.edge_source] & inside[g.indices]
        return EdgeIndex(g, usable)

    def weights(self, factor: float) -> FloatArray:
        """Per-edge seconds at ``factor``, ``inf`` on edges this profile may not use."""
        secs = self.graph.drive_seconds(self.profile, factor)
        return secs if self.keep is None else np.where(self.keep, secs, np.inf)

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
        Search rows kept (each holds seconds and predecessors over the graph's nodes:
        12 bytes per node).
    cache_bytes
        Memory bound of the row cache; it caps ``cache_size`` on big graphs.
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
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        off_network: Literal["raise", "straight_line"] = "raise",
    ) -> None:
        if graph is not None and graph.mode != "drive":
            raise ValueError(f"TravelTimeModel needs a driving graph, got {graph.mode!r}")
        if cache_size < 1 or cache_bytes < 1:
            raise ValueError("cache_size and cache_bytes must be >= 1")
        self.graph = graph
        self.time_of_day = (
            time_of_day if time_of_day is not None else TimeOfDaySpeeds(DEFAULT_PEAKS)
        )
        self.fallback = fallback or StraightLineTravelTimes(time_of_day=self.time_of_day)
        self.max_snap_m = float(max_snap_m)
        row_bytes = 12 * (graph.n_nodes if graph is not None else 1)
        self.cache_size = max(1, min(int(cache_size), int(cache_bytes) // row_bytes))
        if off_network not in ("raise", "straight_line"):
            raise ValueError(f"off_network must be 'raise' or 'straight_line', not {off_network!r}")
        self.off_network = off_network
        self._views: dict[VehicleProfile, _ProfileView] = {}
        self._matrices: dict[tuple[VehicleProfile, float], csr_matrix] = {}
        self._rows: OrderedDict[tuple[bytes, bytes, bytes, VehicleProfile, float], Row]
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
        self,
        anchor_node: IntArray,
        anchor_cost: FloatArray,
        anchor_m: FloatArray,
        profile: VehicleProfile,
        factor: float,
    ) -> list[Row]:
        """Cached or fresh searches from points given by their anchors (one row per point)."""
        keys = [
            (
                anchor_node[i].tobytes(),
                anchor_cost[i].tobytes(),
                anchor_m[i].tobytes(),
                profile,
                factor,
            )
            for i in range(anchor_node.shape[0])
        ]
        found: dict[int, Row] = {}
        missing: list[int] = []
        with self._lock:
            for i, key in enumerate(keys):
                row = self._rows.get(key)
                if row is None:
                    missing.append(i)
                else:
                    self._rows.move_to_end(key)
                    found[i] = row
            self.hits += len(found)
            self.misses += len(missing)
        if missing:
            weights = self._weights(profile, factor)
            idx = np.asarray(missing)
            rows = search_from_points(
                weights, anchor_node[idx], anchor_cost[idx], anchor_m[idx], predecessors=True
            )
            found.update(zip(missing, rows, strict=True))
            with self._lock:
                for i in missing:
                    self._rows[keys[i]] = found[i]
                while len(self._rows) > self.cache_size:
                    self._rows.popitem(last=False)
        return [found[i] for i in range(len(keys))]

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
        o, d = view.index.links(olat, olon), view.index.links(dlat, dlon)
        o_ok, d_ok = o.off_m[:, 0] <= self.max_snap_m, d.off_m[:, 0] <= self.max_snap_m
        if o_ok.all() and d_ok.all():
            return self._graph_matrix(view, o, d, depart_s)
        if self.off_network == "raise":
            worst = max(o.off_m[:, 0].max(initial=0), d.off_m[:, 0].max(initial=0))
            raise TooFarFromNetwork(float(worst), self.max_snap_m)
        # Points off the network travel by the straight-line model; the rest by the graph.
        seconds, meters = self.fallback.matrix(
            np.column_stack((olat, olon)),
            np.column_stack((dlat, dlon)),
            profile=profile,
            depart_s=depart_s,
        )
        oi, di = np.flatnonzero(o_ok), np.flatnonzero(d_ok)
        if oi.size and di.size:
            s_sub, m_sub = self._graph_matrix(view, o.take(oi), d.take(di), depart_s)
            seconds[np.ix_(oi, di)] = s_sub
            meters[np.ix_(oi, di)] = m_sub
        return seconds, meters

    def _door_to_door(
        self,
        view: _ProfileView,
        o: Links,
        d: Links,
        oi: npt.NDArray[np.int64],
        dj: npt.NDArray[np.int64],
        depart_s: int | None,
    ) -> DoorToDoor:
        factor = self.time_of_day.factor(depart_s)
        profile = view.profile
        conn = min(CONNECTOR_SPEED_KMH, profile.max_speed_kmh) / 3.6
        assert self.graph is not None
        return door_to_door(
            self.graph,
            o,
            d,
            oi,
            dj,
            view.weights(factor),
            lambda node, cost, meters: self._rows_for(node, cost, meters, profile, factor),
            off_weight=1.0 / conn,
        )

    def _graph_matrix(
        self, view: _ProfileView, o: Links, d: Links, depart_s: int | None
    ) -> tuple[FloatArray, FloatArray]:
        """The matrix between snapped points (all within the snapping limit)."""
        n, m = len(o), len(d)
        oi = np.repeat(np.arange(n, dtype=np.int64), m)
        dj = np.tile(np.arange(m, dtype=np.int64), n)
        res = self._door_to_door(view, o, d, oi, dj, depart_s)
        return res.cost.reshape(n, m), res.meters.reshape(n, m)

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
        snaps = view.index.links(la, lo)
        if snaps.off_m[:, 0].max() > self.max_snap_m:
            if self.off_network == "raise":
                raise TooFarFromNetwork(float(snaps.off_m[:, 0].max()), self.max_snap_m)
            return self.fallback.route(origin, dest, profile, depart_s)
        o, d = snaps.take([0]), snaps.take([1])
        zero = np.zeros(1, dtype=np.int64)
        res = self._door_to_door(view, o, d, zero, zero, depart_s)
        if not np.isfinite(res.cost[0]):
            raise NoStreetPath(f"no {profile.name} route between the two points")
        factor = self.time_of_day.factor(depart_s)
        oa = res.origin_anchors
        row = self._rows_for(oa.node, oa.cost, oa.meters, profile, factor)[0]
        coords = leg_coords(self.graph, o, d, res, row)
        return float(res.cost[0]), float(res.meters[0]), coords

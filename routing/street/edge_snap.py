"""Snapping points onto street segments (projection onto the nearest edge).

A point lands on the nearest *segment* (a street edge, both directions counted once), at
``frac`` of its length from the segment's first node, ``off_m`` metres off the street. Routing
from there uses both segment ends (:mod:`routing.street.door_to_door`), as OpenTripPlanner does
by splitting edges, so a stop in the middle of a long block is neither pulled to a far vertex
nor charged a detour.

The index samples every segment every :data:`SAMPLE_SPACING_M` metres into a KD-tree on 3-D
sphere coordinates; the :data:`CANDIDATES` nearest samples name candidate segments, and the exact
point-to-segment distance (local tangent plane, < 0.1 % error at street scale) picks the winner.
A wrong pick can only be a segment at most half a sample spacing farther than the true nearest.

Routing links a point to its nearest segment and, when that segment is oneway for the mode and
the point lies beside it (more than :data:`MIN_OFF_FOR_LINKS_M` off) rather than on it, to up to
two segments of other streets within :data:`LINK_SLACK_M` (:meth:`EdgeIndex.links`), as
OpenTripPlanner links to several edges: a stop beside a divided road is reachable from both
carriageways instead of forcing a loop through the next interchange, while a vehicle on a
oneway street stays on it.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, fields
from typing import Self

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from gtfs.compiled import FloatArray, IntArray
from routing.street.geo import EARTH_RADIUS_M, as_latlon, to_xyz
from routing.street.graph import StreetGraph

SAMPLE_SPACING_M = 10.0
CANDIDATES = 24
MAX_LINKS = 3
LINK_SLACK_M = 20.0
MIN_OFF_FOR_LINKS_M = 3.0
_M_PER_DEG = EARTH_RADIUS_M * np.pi / 180.0


@dataclass(frozen=True, eq=False)
class _PerPoint:
    """Arrays with one row per point (every field), as :class:`EdgeSnap` and :class:`Links`."""

    edge: IntArray

    def __len__(self) -> int:
        return int(self.edge.shape[0])

    def take(self, idx: npt.ArrayLike) -> Self:
        """The rows of a subset of the points."""
        i = np.asarray(idx)
        return type(self)(*(getattr(self, f.name)[i] for f in fields(self)))


@dataclass(frozen=True, eq=False)
class EdgeSnap(_PerPoint):
    """Where points land on the street: one entry per point."""

    edge: IntArray  # the segment's canonical directed edge u -> v
    frac: FloatArray  # 0 at u, 1 at v
    off_m: FloatArray  # distance from the point to the street
    lat: FloatArray  # the projected point
    lon: FloatArray
    point_lat: FloatArray  # the point itself
    point_lon: FloatArray


@dataclass(frozen=True, eq=False)
class Links(_PerPoint):
    """Candidate segments per point, nearest first: ``[n, S]`` arrays, unused slots have
    ``edge == -1`` and ``off_m == inf``."""

    edge: IntArray
    frac: FloatArray
    off_m: FloatArray
    lat: FloatArray
    lon: FloatArray
    point_lat: FloatArray  # [n]
    point_lon: FloatArray  # [n]

    @property
    def width(self) -> int:
        return int(self.edge.shape[1])

    def nearest(self) -> EdgeSnap:
        """The nearest segment only."""
        return EdgeSnap(
            self.edge[:, 0],
            self.frac[:, 0],
            self.off_m[:, 0],
            self.lat[:, 0],
            self.lon[:, 0],
            self.point_lat,
            self.point_lon,
        )


class EdgeIndex:
    """Spatial index of a graph's segments, optionally restricted to some edges.

    Parameters
    ----------
    graph
        The street graph.
    usable
        Edges that may be snapped to (e.g. a vehicle's allowed, connected edges); all if ``None``.
    """

    def __init__(self, graph: StreetGraph, usable: npt.NDArray[np.bool_] | None = None) -> None:
        self.graph = graph
        g = graph
        u, v = g.edge_source, g.indices
        rev = g.edge_ids(v, u)
        ok = np.ones(g.n_edges, dtype=bool) if usable is None else np.asarray(usable, dtype=bool)
        rev_ok = (rev >= 0) & ok[np.maximum(rev, 0)]
        # One canonical edge per segment: u < v when both directions are usable.
        canonical = ok & (~rev_ok | (u < v))
        self._oneway = ok & ~rev_ok  # usable in one direction only
        self.edges = np.flatnonzero(canonical).astype(np.int32)
        if self.edges.size == 0:
            raise ValueError("no street segment to snap to")
        n_s = np.ceil(g.length_m[self.edges] / SAMPLE_SPACING_M).astype(np.int64) + 1
        seg = np.repeat(np.arange(self.edges.size), n_s)
        first = np.cumsum(n_s) - n_s
        t = (np.arange(seg.size) - first[seg]) / (n_s[seg] - 1)
        e = self.edges[seg]
        lat = g.lat[u[e]] + t * (g.lat[v[e]] - g.lat[u[e]])
        lon = g.lon[u[e]] + t * (g.lon[v[e]] - g.lon[u[e]])
        self._sample_edge = e.astype(np.int32)
        self._tree = cKDTree(to_xyz(lat, lon))

    def snap(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> EdgeSnap:
        """Project each point onto its nearest segment."""
        return self.links(lat, lon, max_links=1).nearest()

    def links(
        self,
        lat: npt.ArrayLike,
        lon: npt.ArrayLike,
        max_links: int = MAX_LINKS,
        slack_m: float = LINK_SLACK_M,
    ) -> Links:
        """The nearest segment of each point and, beside a oneway segment, up to
        ``max_links - 1`` segments of other streets within ``slack_m`` metres more (the other
        carriageway of a divided road), nearest first."""
        la, lo = as_latlon(lat, lon)
        g = self.graph
        n = la.size
        k = min(CANDIDATES, self._sample_edge.size)
        _, idx = self._tree.query(to_xyz(la, lo), k=k)
        cand = self._sample_edge[np.asarray(idx).reshape(n, k)]  # [n, k]
        u, v = g.edge_source[cand], g.indices[cand]
        # Local tangent plane around each point (metres east, north).
        cos = np.cos(np.radians(la))[:, None]
        ax = (g.lon[u] - lo[:, None]) * cos * _M_PER_DEG
        ay = (g.lat[u] - la[:, None]) * _M_PER_DEG
        bx = (g.lon[v] - lo[:, None]) * cos * _M_PER_DEG
        by = (g.lat[v] - la[:, None]) * _M_PER_DEG
        dx, dy = bx - ax, by - ay
        den = dx * dx + dy * dy
        t = np.clip(-(ax * dx + ay * dy) / np.where(den > 0, den, 1.0), 0.0, 1.0)
        dist = np.hypot(ax + t * dx, ay + t * dy)
        # Sort candidates by (edge, distance) to drop repeated edges, then by distance.
        order = np.lexsort((dist, cand), axis=1) if n else np.zeros((0, k), dtype=np.int64)
        cand = np.take_along_axis(cand, order, 1)
        dist = np.take_along_axis(dist, order, 1)
        t = np.take_along_axis(t, order, 1)
        repeat = np.zeros(cand.shape, dtype=bool)
        repeat[:, 1:] = cand[:, 1:] == cand[:, :-1]
        dist = np.where(repeat, np.inf, dist)
        order = np.argsort(dist, axis=1, kind="stable")
        cand = np.take_along_axis(cand, order, 1)
        dist = np.take_along_axis(dist, order, 1)
        t = np.take_along_axis(t, order, 1)
        # Keep the nearest, then only segments of *other* streets: a segment touching a kept
        # one (the next piece of the same street) adds nothing but searches.
        picked = np.zeros((n, max_links), dtype=np.int64)
        count = np.ones(n, dtype=np.int64)
        # Only a point beside (not on) a oneway segment needs other links.
        rows = np.flatnonzero(self._oneway[cand[:, 0]] & (dist[:, 0] > MIN_OFF_FOR_LINKS_M))
        if rows.size and max_links > 1:
            sub_cand, sub_dist = cand[rows], dist[rows]
            sub_count = count[rows]
            ends = [g.edge_source[sub_cand[:, 0]], g.indices[sub_cand[:, 0]]]
            for c in range(1, k):
                cu, cv = g.edge_source[sub_cand[:, c]], g.indices[sub_cand[:, c]]
                touches = np.zeros(rows.size, dtype=bool)
                for node in ends:
                    touches |= (cu == node) | (cv == node)
                ok = (
                    ~touches
                    & (sub_count < max_links)
                    & np.isfinite(sub_dist[:, c])
                    & (sub_dist[:, c] <= sub_dist[:, 0] + slack_m)
                )
                picked[rows[ok], sub_count[ok]] = c
                sub_count += ok
                # Rows that did not pick keep pointing their new end slots at the nearest's.
                ends += [np.where(ok, cu, ends[0]), np.where(ok, cv, ends[1])]
            count[rows] = sub_count
        used = np.arange(max_links)[None, :] < count[:, None]
        e = np.where(used, np.take_along_axis(cand, picked, 1), -1).astype(np.int32)
        off = np.take_along_axis(dist, picked, 1)
        frac = np.take_along_axis(t, picked, 1)
        off = np.where(e >= 0, off, np.inf)
        frac = np.where(e >= 0, frac, 0.0)
        ee = np.maximum(e, 0)
        ue, ve = g.edge_source[ee], g.indices[ee]
        return Links(
            edge=e,
            frac=frac,
            off_m=off,
            lat=g.lat[ue] + frac * (g.lat[ve] - g.lat[ue]),
            lon=g.lon[ue] + frac * (g.lon[ve] - g.lon[ue]),
            point_lat=la,
            point_lon=lo,
        )


_INDEXES: weakref.WeakKeyDictionary[StreetGraph, EdgeIndex] = weakref.WeakKeyDictionary()
_INDEX_LOCK = threading.Lock()


def edge_index(graph: StreetGraph) -> EdgeIndex:
    """The (shared, lazily built) segment index of every edge of ``graph``."""
    with _INDEX_LOCK:
        ix = _INDEXES.get(graph)
        if ix is None:
            ix = _INDEXES[graph] = EdgeIndex(graph)
    return ix


def snap_to_edge(graph: StreetGraph, lat: npt.ArrayLike, lon: npt.ArrayLike) -> EdgeSnap:
    """Project points onto the nearest street segment of ``graph`` (vectorised)."""
    return edge_index(graph).snap(lat, lon)

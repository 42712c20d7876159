"""Shortest-path kernels on :class:`StreetGraph` CSR arrays.

Searches run in scipy's compiled Dijkstra (``scipy.sparse.csgraph.dijkstra`` with ``indices=``
and ``limit=``); the two passes it does not provide — tracing a path from the predecessor array
and summing edge lengths along a shortest-time tree — are numba kernels.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from gtfs.compiled import FloatArray, IntArray
from routing.street.geo import haversine_m
from routing.street.graph import StreetGraph, snap

SOURCE_CHUNK = 256  # sources per Dijkstra call: bounds the [k, N] result in memory


@numba.njit(cache=True)
def _trace(pred: IntArray, target: int) -> IntArray:  # pragma: no cover - compiled
    n = 0
    v = target
    while v >= 0:
        n += 1
        v = pred[v]
    out = np.empty(n, dtype=np.int32)
    v = target
    for i in range(n - 1, -1, -1):
        out[i] = v
        v = pred[v]
    return out


@numba.njit(cache=True)
def _path_lengths(
    dist: FloatArray,
    pred: IntArray,
    targets: IntArray,
    indptr: IntArray,
    indices: IntArray,
    length: FloatArray,
) -> FloatArray:  # pragma: no cover - compiled
    k, m = pred.shape[0], targets.shape[0]
    out = np.full((k, m), np.inf)
    for r in range(k):
        for j in range(m):
            v = targets[j]
            if not np.isfinite(dist[r, v]):
                continue
            total = 0.0
            p = pred[r, v]
            while p >= 0:
                for e in range(indptr[p], indptr[p + 1]):
                    if indices[e] == v:
                        total += length[e]
                        break
                v = p
                p = pred[r, v]
            out[r, j] = total
    return out


def trace_path(pred: npt.NDArray[np.int32], target: int) -> IntArray:
    """Nodes of the shortest path to ``target`` (source first) from one predecessor row."""
    return np.asarray(_trace(np.ascontiguousarray(pred, dtype=np.int32), int(target)))


def path_lengths(
    graph: StreetGraph, dist: FloatArray, pred: IntArray, targets: npt.ArrayLike
) -> FloatArray:
    """Metres along the search trees ``(dist, pred)[k, N]`` to each target: ``[k, m]``.

    ``inf`` for targets a search did not reach. Relies on edges being unique per ``(u, v)``.
    """
    return np.asarray(
        _path_lengths(
            np.ascontiguousarray(np.atleast_2d(dist), dtype=np.float64),
            np.ascontiguousarray(np.atleast_2d(pred), dtype=np.int32),
            np.ascontiguousarray(np.atleast_1d(targets), dtype=np.int32),
            graph.indptr,
            graph.indices,
            graph.length_m,
        )
    )


def search(
    matrix: csr_matrix,
    sources: npt.ArrayLike,
    limit: float = np.inf,
    predecessors: bool = False,
) -> tuple[FloatArray, IntArray | None]:
    """Dijkstra from each source: ``(dist[k, N], pred[k, N] or None)``."""
    src = np.atleast_1d(np.asarray(sources, dtype=np.int32))
    if predecessors:
        d, p = dijkstra(matrix, directed=True, indices=src, limit=limit, return_predecessors=True)
        return np.atleast_2d(d), np.atleast_2d(p).astype(np.int32)
    d = dijkstra(matrix, directed=True, indices=src, limit=limit)
    return np.atleast_2d(d), None


def door_to_door(
    graph_m: npt.ArrayLike,
    off_a: npt.ArrayLike,
    off_b: npt.ArrayLike,
    same_node: npt.ArrayLike,
    direct_m: npt.ArrayLike,
) -> FloatArray:
    """Distance between two snapped points: snap offsets plus the graph path between their nodes.

    When both points snap to the same node they are treated as across the street from each
    other: the answer is their ``direct_m`` (great-circle) distance, not twice the offset.
    """
    via = np.asarray(off_a) + np.asarray(graph_m) + np.asarray(off_b)
    return np.asarray(np.where(same_node, direct_m, via), dtype=np.float64)


def pair_distances(
    graph: StreetGraph,
    lat: FloatArray,
    lon: FloatArray,
    a: npt.NDArray[np.int64],
    b: npt.NDArray[np.int64],
    radius_m: float,
    max_snap_m: float,
    fallback: FloatArray,
) -> FloatArray:
    """Walking metres between points ``a[i]`` and ``b[i]`` on the graph, bounded by ``radius_m``.

    Snapping distances count at both ends; pairs with a point beyond ``max_snap_m`` keep their
    ``fallback`` distance; pairs farther than ``radius_m`` come back as ``inf``.
    """
    node, off = snap(graph, lat, lon)
    ok = off <= max_snap_m
    out = np.asarray(fallback, dtype=np.float64).copy()
    both = ok[a] & ok[b]
    pa, pb = a[both], b[both]
    if pa.size == 0:
        return out
    src_nodes, row_of = np.unique(node[pa], return_inverse=True)
    res = np.full(pa.size, np.inf)
    for lo in range(0, src_nodes.size, SOURCE_CHUNK):
        chunk = src_nodes[lo : lo + SOURCE_CHUNK]
        dist, _ = search(graph.length_matrix, chunk, limit=radius_m)
        sel = (row_of >= lo) & (row_of < lo + chunk.size)
        res[sel] = dist[row_of[sel] - lo, node[pb[sel]]]
    direct = haversine_m(lat[pa], lon[pa], lat[pb], lon[pb])
    out[both] = door_to_door(res, off[pa], off[pb], node[pa] == node[pb], direct)
    return out

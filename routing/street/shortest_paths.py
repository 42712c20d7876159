"""Shortest-path kernels on :class:`StreetGraph` CSR arrays.

Searches run in scipy's compiled Dijkstra (``scipy.sparse.csgraph.dijkstra`` with ``indices=``
and ``limit=``); a search from a point starts at a virtual node joined to the point's anchors
(:func:`search_from_points`). The two passes csgraph does not provide — tracing a path from the
predecessor array and summing edge lengths along a shortest-time tree — are numba kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from gtfs.compiled import FloatArray, IntArray
from routing.street.graph import StreetGraph

SOURCE_CHUNK = 256  # sources per Dijkstra call: bounds the [k, N] result in memory


@numba.njit(cache=True, nogil=True)
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


@numba.njit(cache=True, nogil=True)
def _path_lengths(
    dist: FloatArray,
    pred: IntArray,
    targets: IntArray,
    roots: IntArray,
    root_m: FloatArray,
    indptr: IntArray,
    indices: IntArray,
    length: FloatArray,
) -> FloatArray:  # pragma: no cover - compiled
    m, n = targets.shape[0], pred.shape[0]
    out = np.full(m, np.inf)
    # Paths to many targets share their beginnings: remember metres per node (-1 unknown).
    memo = np.full(n, -1.0)
    for i in range(roots.shape[0]):
        memo[roots[i]] = root_m[i]
    stack = np.empty(n, dtype=np.int64)
    for j in range(m):
        v = targets[j]
        if not np.isfinite(dist[v]):
            continue
        top = 0
        while memo[v] < 0.0 and pred[v] >= 0:
            stack[top] = v
            top += 1
            v = pred[v]
        if memo[v] < 0.0:
            memo[v] = 0.0  # a plain search source
        while top > 0:
            top -= 1
            w = stack[top]
            p = pred[w]
            for e in range(indptr[p], indptr[p + 1]):
                if indices[e] == w:
                    memo[w] = memo[p] + length[e]
                    break
        out[j] = memo[targets[j]]
    return out


@dataclass(frozen=True, eq=False)
class Row:
    """One search: cost to every node, its tree, and the metres at the tree's roots.

    A search from a point (:func:`search_from_points`) enters the graph at the point's
    anchors; those reached straight from the point are the roots (``pred == -1``), with the
    metres from the point to them.
    """

    dist: FloatArray  # [N]
    pred: IntArray | None  # [N], -1 at roots and unreached nodes
    roots: IntArray
    root_m: FloatArray


def trace_path(pred: npt.NDArray[np.int32], target: int) -> IntArray:
    """Nodes of the shortest path to ``target`` (source first) from one predecessor row."""
    return np.asarray(_trace(np.ascontiguousarray(pred, dtype=np.int32), int(target)))


def path_lengths(graph: StreetGraph, row: Row, targets: npt.ArrayLike) -> FloatArray:
    """Metres along the search tree of ``row`` to each target (``inf`` where unreached).

    Relies on edges being unique per ``(u, v)``.
    """
    if row.pred is None:
        raise ValueError("path lengths need a search run with predecessors")
    return np.asarray(
        _path_lengths(
            row.dist,
            row.pred,
            np.ascontiguousarray(np.atleast_1d(targets), dtype=np.int32),
            row.roots,
            row.root_m,
            graph.indptr,
            graph.indices,
            graph.length_m,
        )
    )


def search_from_points(
    matrix: csr_matrix,
    anchor_node: IntArray,
    anchor_cost: FloatArray,
    anchor_m: FloatArray,
    limit: float = np.inf,
    predecessors: bool = False,
) -> list[Row]:
    """One Dijkstra per point, entering the graph at its anchors (``[k, A]``, node -1 unused).

    Each point becomes a virtual source joined to its anchors by edges of the anchor costs, so
    one search (not one per anchor) covers every way into the street network.
    """
    n = matrix.shape[0]
    k = anchor_node.shape[0]
    if k == 0:
        return []
    ok = anchor_node >= 0
    pt, slot = np.nonzero(ok)
    node = anchor_node[pt, slot].astype(np.int64)
    cost = anchor_cost[pt, slot]
    meters = anchor_m[pt, slot]
    # One edge per (point, node): the cheapest.
    order = np.lexsort((cost, node, pt))
    pt, node, cost, meters = pt[order], node[order], cost[order], meters[order]
    first = np.r_[True, (pt[1:] != pt[:-1]) | (node[1:] != node[:-1])]
    pt, node, cost, meters = pt[first], node[first], cost[first], meters[first]
    counts = np.bincount(pt, minlength=k)
    base = matrix.tocsr()
    indptr = np.concatenate((base.indptr, base.indptr[-1] + np.cumsum(counts))).astype(np.int64)
    indices = np.concatenate((base.indices, node)).astype(np.int32)
    # Keep weights positive: an anchor exactly at the point costs (almost) nothing.
    data = np.concatenate((base.data, np.maximum(cost, 1e-12)))
    aug = csr_matrix((data, indices, indptr), shape=(n + k, n + k))
    src = np.arange(n, n + k, dtype=np.int32)
    if predecessors:
        d, p = dijkstra(aug, directed=True, indices=src, limit=limit, return_predecessors=True)
    else:
        d, p = dijkstra(aug, directed=True, indices=src, limit=limit), None
    d = np.atleast_2d(d)
    starts = np.r_[0, np.cumsum(counts)]
    rows = []
    for i in range(k):
        pred = None
        if p is not None:
            pred = np.atleast_2d(p)[i, :n].astype(np.int32)
            pred[pred >= n] = -1  # entered straight from the point
            pred[pred < 0] = -1
        r_node = node[starts[i] : starts[i + 1]].astype(np.int32)
        r_m = meters[starts[i] : starts[i + 1]]
        if pred is not None:
            direct = pred[r_node] < 0
            r_node, r_m = r_node[direct], r_m[direct]
        rows.append(Row(d[i, :n].copy(), pred, r_node, r_m))
    return rows

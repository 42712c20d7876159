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
from routing.street.graph import StreetGraph

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
    k, m, n = pred.shape[0], targets.shape[0], pred.shape[1]
    out = np.full((k, m), np.inf)
    memo = np.empty(n)
    stack = np.empty(n, dtype=np.int64)
    for r in range(k):
        # Paths to many targets share their beginnings: remember metres per node (-1 unknown).
        memo[:] = -1.0
        for j in range(m):
            v = targets[j]
            if not np.isfinite(dist[r, v]):
                continue
            top = 0
            while memo[v] < 0.0 and pred[r, v] >= 0:
                stack[top] = v
                top += 1
                v = pred[r, v]
            if memo[v] < 0.0:
                memo[v] = 0.0  # the search source
            while top > 0:
                top -= 1
                w = stack[top]
                p = pred[r, w]
                for e in range(indptr[p], indptr[p + 1]):
                    if indices[e] == w:
                        memo[w] = memo[p] + length[e]
                        break
            out[r, j] = memo[targets[j]]
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

"""Lower bounds towards the target for goal-directed pruning of one-to-one searches.

A backward Dijkstra from the target stops (their egress seconds as start distances) over a
relaxed network: one edge per consecutive stop pair of a pattern, timed at the shortest ride
between them over every trip (waiting, boarding rules and change times ignored), and every
footpath that the query may walk (any number of them in a row). The distance of stop ``s`` is
then no more than the time any journey needs from being at ``s`` to reaching the target, so a
label that arrives at ``s`` at ``a`` with ``a + lb[s]`` no earlier than the best known target
arrival cannot improve it and is dropped (nigiri and trip-based routers prune the same way).
Stops that cannot reach a target at all get ``BIG``: a query whose origins are all such stops
is answered at once, with no journey.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from routing.raptor.kernels import BIG
from routing.raptor.network import CONT_NOT_SEATED, IntArray, RaptorNetwork


@dataclass(frozen=True, eq=False)
class BoundGraph:
    """The relaxed network, as CSR arrays by *destination* (the Dijkstra runs backwards).

    Attributes
    ----------
    ride_ptr, ride_from, ride_s
        [S+1] / [E] / [E]: for stop ``v``, the stops ``u`` one pattern stop before it and the
        shortest ride ``u -> v`` over every trip.
    foot_ptr, foot_from, foot_idx
        [S+1] / [F] / [F]: for stop ``v``, the footpaths ``u -> v`` as indices into the
        network's footpath arrays (their seconds depend on the query's walking speed).
    """

    ride_ptr: IntArray
    ride_from: IntArray
    ride_s: IntArray
    foot_ptr: IntArray
    foot_from: IntArray
    foot_idx: IntArray

    @functools.cached_property
    def components(self) -> IntArray:
        """[S] the weakly connected component of each stop over every ride and footpath edge
        (footpaths of any length). Stops in different components have no path between them
        whatever the query, so a search between them answers "none" without a Dijkstra:
        most pairs of a network of unconnected parts (Cairns x50's uniform pairs, 96 %)."""
        n = len(self.ride_ptr) - 1
        dest = np.r_[
            np.repeat(np.arange(n), np.diff(self.ride_ptr)),
            np.repeat(np.arange(n), np.diff(self.foot_ptr)),
        ]
        src = np.r_[self.ride_from, self.foot_from].astype(np.int64)
        adj = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dest)), shape=(n, n))
        _, labels = connected_components(adj, directed=True, connection="weak")
        return labels.astype(np.int32)

    def connects(self, origins: IntArray, targets: IntArray) -> bool:
        """Whether some stop with ``origins >= 0`` shares a component with one with
        ``targets >= 0`` ([S] seconds, -1 elsewhere): False means no path at all."""
        comp = self.components
        a = comp[origins >= 0]
        b = comp[targets >= 0]
        if len(a) == 1 or len(b) == 1:  # one-to-one and one-to-many: no set operation
            return bool((b == a[0]).any()) if len(a) == 1 else bool((a == b[0]).any())
        return bool(np.intersect1d(a, b).size)


def _csr_by(dest: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(dest, kind="stable")
    ptr = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(dest, minlength=n), out=ptr[1:])
    return order, ptr


def segment_seconds(network: RaptorNetwork, st_arr: np.ndarray, st_dep: np.ndarray) -> IntArray:
    """[len(pattern_stops)] the shortest ride from each pattern stop to the next (the last stop
    of a pattern gets 0), over every trip and every row (trip copy) of ``st_arr``/``st_dep``
    ([O, N] or [N]); a copy's day shift moves both ends alike, so it does not matter."""
    n_entries = int(network.pattern_stop_ptr[-1])
    out = np.full(n_entries, BIG, dtype=np.int64)
    if network.n_trips == 0:
        return np.zeros(n_entries, dtype=np.int32)
    tptr = network.trip_st_ptr
    lengths = np.diff(tptr)
    trip_of = np.repeat(np.arange(network.n_trips), lengths)
    pat_of_trip = np.repeat(np.arange(network.n_patterns), np.diff(network.pattern_trip_ptr))
    st = np.arange(int(tptr[-1]), dtype=np.int64)
    pos = st - tptr[trip_of]
    last = pos == lengths[trip_of] - 1
    first = st[~last]
    entry = network.pattern_stop_ptr[pat_of_trip[trip_of[first]]].astype(np.int64) + pos[~last]
    arr2 = st_arr.reshape(-1, st_arr.shape[-1])
    dep2 = st_dep.reshape(-1, st_dep.shape[-1])
    # Rows that share memory (a broadcast of one schedule) are read once.
    rows = 1 if arr2.strides[0] == 0 and dep2.strides[0] == 0 else arr2.shape[0]
    seg = np.full(len(first), BIG, dtype=np.int64)
    for r in range(rows):
        seg = np.minimum(seg, arr2[r, first + 1].astype(np.int64) - dep2[r, first])
    np.minimum.at(out, entry, np.maximum(seg, 0))
    out[out >= BIG] = 0
    return out.astype(np.int32)


def build_graph(network: RaptorNetwork, segment_s: IntArray) -> BoundGraph:
    """The relaxed network of ``network`` with ride edges timed by ``segment_s``."""
    n = network.n_stops
    ptr = network.pattern_stop_ptr.astype(np.int64)
    n_entries = int(ptr[-1])
    is_last = np.zeros(n_entries, dtype=np.bool_)
    if network.n_patterns:
        is_last[ptr[1:] - 1] = True
    e = np.flatnonzero(~is_last)
    u = network.pattern_stops[e].astype(np.int64)
    v = network.pattern_stops[e + 1].astype(np.int64)
    w = segment_s[e].astype(np.int64)
    if network.has_continuations:
        # Staying seated from a trip's last stop into a trip that starts at another stop (the
        # vehicle drives there empty) is a ride edge too, of no time at least: the bound must
        # not miss it (or it would prune journeys through the continuation).
        c_ptr, c_to, c_kind, _, _ = network.continuation_arrays
        src = np.repeat(np.arange(network.n_trips), np.diff(c_ptr))
        ok = c_kind != CONT_NOT_SEATED
        pat = network.trip_pattern
        last = network.pattern_stop_ptr[pat[src[ok]] + 1] - 1
        first = network.pattern_stop_ptr[pat[c_to[ok]]]
        cu = network.pattern_stops[last].astype(np.int64)
        cv = network.pattern_stops[first].astype(np.int64)
        diff = cu != cv
        u = np.r_[u, cu[diff]]
        v = np.r_[v, cv[diff]]
        w = np.r_[w, np.zeros(int(diff.sum()), dtype=np.int64)]
    # One edge per (u, v): the shortest.
    key = v * n + u
    order = np.lexsort((w, key))
    key, w = key[order], w[order]
    keep = np.ones(len(key), dtype=np.bool_)
    keep[1:] = key[1:] != key[:-1]
    key, w = key[keep], w[keep]
    r_order, r_ptr = _csr_by((key // n).astype(np.int64), n)
    src = np.repeat(np.arange(n, dtype=np.int32), np.diff(network.transfer_ptr))
    f_order, f_ptr = _csr_by(network.transfer_to.astype(np.int64), n)
    return BoundGraph(
        ride_ptr=r_ptr,
        ride_from=(key % n)[r_order].astype(np.int32),
        ride_s=w[r_order].astype(np.int32),
        foot_ptr=f_ptr,
        foot_from=src[f_order].astype(np.int32),
        foot_idx=f_order.astype(np.int32),
    )


_SCHEDULE_GRAPHS: weakref.WeakKeyDictionary[RaptorNetwork, BoundGraph] = weakref.WeakKeyDictionary()


def schedule_graph(network: RaptorNetwork) -> BoundGraph:
    """The relaxed network of ``network``'s own (scheduled) times, built once per network."""
    g = _SCHEDULE_GRAPHS.get(network)
    if g is None:
        g = build_graph(network, segment_seconds(network, network.st_arr, network.st_dep))
        _SCHEDULE_GRAPHS[network] = g
    return g


@njit(cache=True, nogil=True)
def _push(heap_d: np.ndarray, heap_v: np.ndarray, n: int, d: int, v: int) -> int:
    i = n
    heap_d[i] = d
    heap_v[i] = v
    while i > 0:
        parent = (i - 1) >> 1
        if heap_d[parent] <= heap_d[i]:
            break
        heap_d[parent], heap_d[i] = heap_d[i], heap_d[parent]
        heap_v[parent], heap_v[i] = heap_v[i], heap_v[parent]
        i = parent
    return n + 1


@njit(cache=True, nogil=True)
def _pop(heap_d: np.ndarray, heap_v: np.ndarray, n: int) -> int:
    n -= 1
    heap_d[0] = heap_d[n]
    heap_v[0] = heap_v[n]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and heap_d[c + 1] < heap_d[c]:
            c += 1
        if heap_d[i] <= heap_d[c]:
            break
        heap_d[c], heap_d[i] = heap_d[i], heap_d[c]
        heap_v[c], heap_v[i] = heap_v[i], heap_v[c]
        i = c
    return n


@njit(cache=True, nogil=True)
def backward_dijkstra(
    ride_ptr: np.ndarray,
    ride_from: np.ndarray,
    ride_s: np.ndarray,
    foot_ptr: np.ndarray,
    foot_from: np.ndarray,
    foot_idx: np.ndarray,
    foot_s: np.ndarray,  # [F] the query's footpath seconds
    max_foot_s: int,
    target_s: np.ndarray,  # [S] egress seconds, -1 where not a target
    origin_s: np.ndarray,  # [S] access seconds, -1 where not an origin ([0]: no early stop)
) -> np.ndarray:
    """[S] shortest relaxed time from each stop to a target (``BIG`` where none is reached).

    With origins, the search stops once every origin is settled and the distance passes
    ``2 * (the farthest origin's) + 1800`` s: every stop left unsettled is at least that far,
    so that distance is its bound (valid, if looser). A label there could only survive
    pruning by a journey more than twice as long as the relaxed one plus half an hour; the
    far side of a large network is then not searched. Without origins every stop is settled.
    """
    n = target_s.shape[0]
    use_origins = origin_s.shape[0] == n
    left = 0
    if use_origins:
        for s in range(n):
            if origin_s[s] >= 0:
                left += 1
    stop_at = BIG
    dist = np.full(n, BIG, dtype=np.int32)
    done = np.zeros(n, dtype=np.bool_)
    cap = ride_from.shape[0] + foot_from.shape[0] + n + 1
    heap_d = np.empty(cap, dtype=np.int64)
    heap_v = np.empty(cap, dtype=np.int32)
    size = 0
    for s in range(n):
        if target_s[s] >= 0 and target_s[s] < dist[s]:
            dist[s] = target_s[s]
            size = _push(heap_d, heap_v, size, target_s[s], s)
    while size > 0:
        d = heap_d[0]
        v = heap_v[0]
        size = _pop(heap_d, heap_v, size)
        if done[v]:
            continue
        if d > stop_at:
            # Stop: every stop not yet settled is at least ``stop_at`` away.
            for u in range(n):
                if not done[u]:
                    dist[u] = stop_at
            break
        done[v] = True
        if use_origins and origin_s[v] >= 0:
            left -= 1
            if left == 0:
                stop_at = min(BIG - 1, 2 * d + 1800)
        for e in range(ride_ptr[v], ride_ptr[v + 1]):
            u = ride_from[e]
            c = d + ride_s[e]
            if c < dist[u]:
                dist[u] = c
                size = _push(heap_d, heap_v, size, c, u)
        for e in range(foot_ptr[v], foot_ptr[v + 1]):
            w = foot_s[foot_idx[e]]
            if w > max_foot_s:
                continue
            u = foot_from[e]
            c = d + w
            if c < dist[u]:
                dist[u] = c
                size = _push(heap_d, heap_v, size, c, u)
    return dist


_MEMO_SIZE = 16
_memo: OrderedDict[tuple[int, int, int, bytes, bytes], tuple[object, object, IntArray]] = (
    OrderedDict()
)
_memo_lock = threading.Lock()


def lower_bounds(
    network: RaptorNetwork,
    graph: BoundGraph,
    foot_s: IntArray,
    max_foot_s: int,
    target_s: IntArray,
    origin_s: IntArray | None = None,
) -> IntArray:
    """[S] lower bound of the time from each stop to the targets (``BIG``: unreachable);
    with ``origin_s`` ([S] access seconds, -1 elsewhere) the search may stop early (see
    :func:`backward_dijkstra`), and an origin gets ``BIG`` only when it cannot reach a
    target.

    The last few answers are kept (by the graph and footpath arrays' identity and the
    targets' and origins' seconds): one /plan runs a range search, several earliest-arrival
    searches and McRAPTOR between the same stops, and each asks for the same bounds (#10).
    The array returned may be shared: callers must not write to it.
    """
    origins = np.zeros(0, dtype=np.int32) if origin_s is None else origin_s
    key = (
        id(graph),
        id(foot_s),
        int(max_foot_s),
        np.ascontiguousarray(target_s).tobytes(),
        np.ascontiguousarray(origins).tobytes(),
    )
    with _memo_lock:
        hit = _memo.get(key)
        # The entry holds its graph and footpaths: their ids cannot be reused meanwhile.
        if hit is not None and hit[0] is graph and hit[1] is foot_s:
            _memo.move_to_end(key)
            return hit[2]
    dist: IntArray = backward_dijkstra(
        graph.ride_ptr,
        graph.ride_from,
        graph.ride_s,
        graph.foot_ptr,
        graph.foot_from,
        graph.foot_idx,
        foot_s,
        int(max_foot_s),
        target_s,
        origins,
    )
    with _memo_lock:
        _memo[key] = (graph, foot_s, dist)
        while len(_memo) > _MEMO_SIZE:
            _memo.popitem(last=False)
    return dist

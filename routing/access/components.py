"""Split a network into independent parts, so that a search pays only for its own part.

One RAPTOR run costs at least ``rounds x stops`` (each round starts from a copy of the previous
round's labels), whatever it reaches. A region's network is often several networks that no
ride, footpath or traveller joins (towns of one prefecture; the 25 copies of Cairns in the x50
benchmark network): a search from a cell in one of them reads and writes the labels of all the
others for nothing. Here stops are grouped into *components* — joined by a pattern (consecutive
stops), a footpath, or by one origin or one destination that can walk to both (so no journey
and no origin's or destination's figure ever spans two components) — and each component gets
its own :class:`RaptorNetwork` and :class:`QueryArrays`, with the stops renumbered. Results
equal those of the whole network exactly; only the work shrinks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from routing.raptor.network import RaptorNetwork
from routing.raptor.search import QueryArrays

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Part:
    """One component: its stops (global indices, ascending) and its own network and query."""

    stops: I32
    network: RaptorNetwork
    query: QueryArrays


def ranges(ptr: npt.NDArray[np.integer], idx: npt.NDArray[np.integer]) -> I64:
    """Concatenated ``ptr[i]..ptr[i+1]`` for every ``i`` of ``idx`` (vectorised)."""
    lo = ptr[idx].astype(np.int64)
    n = (ptr[idx + 1] - ptr[idx]).astype(np.int64)
    if n.sum() == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(lo - np.r_[0, np.cumsum(n)[:-1]], n)
    return np.arange(int(n.sum()), dtype=np.int64) + starts


def component_labels(network: RaptorNetwork, groups: list[I32] | None = None) -> I32:
    """[S] component of each stop. ``groups``: stop sets that must share a component (each
    origin's or destination's walkable stops)."""
    net = network
    s = net.n_stops
    ps = net.pattern_stops.astype(np.int64)
    ptr = net.pattern_stop_ptr.astype(np.int64)
    # Consecutive stops of a pattern: every item but each pattern's first, joined to the one before.
    first = np.zeros(len(ps), dtype=bool)
    first[ptr[:-1][ptr[:-1] < len(ps)]] = True
    a = [ps[1:][~first[1:]], np.repeat(np.arange(s), np.diff(net.transfer_ptr))]
    b = [ps[:-1][~first[1:]], net.transfer_to.astype(np.int64)]
    for g in groups or []:
        if len(g) > 1:
            a.append(np.asarray(g[1:], dtype=np.int64))
            b.append(np.full(len(g) - 1, int(g[0]), dtype=np.int64))
    rows = np.concatenate(a)
    cols = np.concatenate(b)
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(s, s))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int32)


def sub_network(network: RaptorNetwork, query: QueryArrays, stops: I32) -> Part:
    """The network and query restricted to ``stops`` (a union of components), renumbered."""
    net = network
    if net.reversed:
        raise ValueError("components are cut from a forward network")
    new_of = np.full(net.n_stops, -1, dtype=np.int64)
    new_of[stops] = np.arange(len(stops))
    first_stop = net.pattern_stops[net.pattern_stop_ptr[:-1].astype(np.int64)]
    pats = np.flatnonzero(new_of[first_stop] >= 0).astype(np.int64)
    items = ranges(net.pattern_stop_ptr, pats)
    p_len = np.diff(net.pattern_stop_ptr)[pats]
    pattern_stop_ptr = np.r_[0, np.cumsum(p_len)].astype(np.int32)
    pattern_stops = new_of[net.pattern_stops[items]].astype(np.int32)
    if (pattern_stops < 0).any():
        raise ValueError("stops must be a union of components")
    trips = ranges(net.pattern_trip_ptr, pats)
    t_len = np.diff(net.pattern_trip_ptr)[pats]
    pattern_trip_ptr = np.r_[0, np.cumsum(t_len)].astype(np.int32)
    sts = ranges(net.trip_st_ptr, trips)
    trip_st_ptr = np.r_[0, np.cumsum(np.diff(net.trip_st_ptr)[trips])].astype(np.int64)

    # stop -> (pattern, position), sorted by stop.
    n_p = len(pats)
    pat_of_item = np.repeat(np.arange(n_p, dtype=np.int32), p_len)
    pos_of_item = (np.arange(len(items)) - pattern_stop_ptr[pat_of_item]).astype(np.int32)
    order = np.lexsort((pat_of_item, pattern_stops))
    stop_pattern_ptr = np.r_[0, np.cumsum(np.bincount(pattern_stops, minlength=len(stops)))]

    src = np.repeat(np.arange(net.n_stops), np.diff(net.transfer_ptr))
    keep = new_of[src] >= 0
    t_from = new_of[src[keep]]
    t_to = new_of[net.transfer_to[keep]]
    secs = query.footpath_seconds(net)[keep]
    t_order = np.argsort(t_from, kind="stable")
    transfer_ptr = np.r_[0, np.cumsum(np.bincount(t_from, minlength=len(stops)))]

    sub = RaptorNetwork(
        n_stops=len(stops),
        pattern_stop_ptr=pattern_stop_ptr,
        pattern_stops=pattern_stops,
        pattern_trip_ptr=pattern_trip_ptr,
        trip_st_ptr=trip_st_ptr,
        st_arr=net.st_arr[sts],
        st_dep=net.st_dep[sts],
        st_board=net.st_board[sts],
        st_alight=net.st_alight[sts],
        stop_pattern_ptr=stop_pattern_ptr.astype(np.int32),
        stop_patterns=pat_of_item[order].astype(np.int32),
        stop_pattern_pos=pos_of_item[order].astype(np.int32),
        transfer_ptr=transfer_ptr.astype(np.int32),
        transfer_to=t_to[t_order].astype(np.int32),
        transfer_s=secs[t_order].astype(np.int32),
        stop_change_s=net.stop_change_s[stops],
        trip_order=np.arange(len(trips), dtype=np.int32),
        st_order=np.arange(len(sts), dtype=np.int64),
    )
    q = query
    sub_q = QueryArrays(
        active=np.ascontiguousarray(q.active[:, trips]),
        offsets=q.offsets,
        st_arr=np.ascontiguousarray(np.take(q.st_arr, sts, axis=-1)),
        st_dep=np.ascontiguousarray(np.take(q.st_dep, sts, axis=-1)),
        st_board=np.ascontiguousarray(np.take(q.st_board, sts, axis=-1)),
        st_alight=np.ascontiguousarray(np.take(q.st_alight, sts, axis=-1)),
        change_s=q.change_s[stops],
        slack=q.slack,
        max_transfer_s=q.max_transfer_s,
        fifo=q.fifo,
        max_rides=q.max_rides,
        walk_factor=1.0,  # the footpath seconds above are already scaled
        odd=None if q.odd is None else np.ascontiguousarray(q.odd[:, trips]),
        row_fifo=None if q.row_fifo is None else np.ascontiguousarray(q.row_fifo[:, pats]),
    )
    return Part(stops.astype(np.int32), sub, sub_q)

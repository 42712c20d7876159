"""Group trips into patterns (RAPTOR routes) where no trip overtakes another."""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt
import pandas as pd

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]


def assign_patterns(
    route: npt.NDArray[np.int32],
    ptr: I64,
    stops: npt.NDArray[np.int32],
    arrival: npt.NDArray[np.int32],
    departure: npt.NDArray[np.int32],
    pickup: npt.NDArray[np.int8] | None = None,
    dropoff: npt.NDArray[np.int8] | None = None,
) -> tuple[I64, I64]:
    """Pattern id of each trip and the trip order (by pattern, then first departure).

    Trips share a candidate pattern when they have the same route, stop sequence and — when
    ``pickup`` / ``dropoff`` (GTFS ``pickup_type`` / ``drop_off_type`` per stop time) are
    given — the same stops closed to boarding (type 1) and to alighting (type 1); a candidate
    is then split greedily (first-fit in departure order) wherever a trip would overtake
    (arrive or depart earlier at some stop than) the trip before it.

    Why the closed stops are part of the key: a RAPTOR pattern scan rides the earliest trip it
    can board, which is only right when every later trip alights (and boards) where it does.
    A trip that does not let passengers off at a stop in a pattern of trips that do would hide
    the later trips from that stop (OpenTripPlanner's TripPattern key holds the pickup and
    drop-off types for the same reason). Only "closed" (1) splits: the router treats the phone
    and coordinate types (2, 3) as open, so splitting on them would only multiply patterns.

    Returns
    -------
    (pattern, order): ``pattern[t]`` in ``0..P-1`` numbered in the order of ``order``.
    """
    n_trips = len(ptr) - 1
    if n_trips == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lengths = np.diff(ptr)
    # Per stop time: the stop, and the two "closed" bits folded in (stop * 4 + bits) so that
    # one row per trip compares sequence and closures at once.
    key = stops.astype(np.int64)
    if pickup is not None or dropoff is not None:
        bits = np.zeros(len(stops), np.int64)
        if pickup is not None:
            bits += 2 * (np.asarray(pickup) == 1)
        if dropoff is not None:
            bits += np.asarray(dropoff) == 1
        key = key * 4 + bits
    cand = _candidates(np.asarray(route, np.int64), np.asarray(ptr, np.int64), lengths, key)
    first_dep = departure[ptr[:-1]]
    last_arr = arrival[ptr[1:] - 1]
    order = np.lexsort((last_arr, first_dep, cand))
    sub = _split_overtaking(
        order, cand, np.asarray(ptr, np.int64), np.asarray(arrival), np.asarray(departure)
    )
    pat_key = cand.astype(np.int64) * (int(sub.max()) + 1) + sub
    pattern, _ = pd.factorize(pat_key[order])
    pat = np.empty(n_trips, np.int64)
    pat[order] = pattern
    final_order = np.lexsort((last_arr, first_dep, pat))
    return pat, final_order


def _candidates(route: I64, ptr: I64, lengths: I64, key: I64) -> I64:
    """Candidate id of each trip: equal (route, stop key sequence) share one, numbered by
    (length, then route and keys in lexicographic order).

    Trips are grouped by a hash of their sequence (each trip compared in full with its group's
    first, so a collision only adds a group), then the few groups are ordered by their
    sequences: the same numbering as a lexicographic sort of every trip's row, at a fraction of
    its cost (sorting rows of a structured dtype was 1.2 s of compiling Cairns x 50).
    """
    h = _sequence_hash(route, ptr, key)
    by_hash = np.lexsort((h, route, lengths))
    group, rep = _group_equal(by_hash, route, ptr, key, h)
    # Order the groups: by length, then route, then the keys (lexsort's last key is primary).
    g_len = lengths[rep]
    rank = np.empty(len(rep), np.int64)
    next_id = 0
    for length in np.unique(g_len):
        gs = np.flatnonzero(g_len == length)
        mat = key[ptr[rep[gs]][:, None] + np.arange(length)]
        cols = [mat[:, j] for j in range(int(length) - 1, -1, -1)]
        o = np.lexsort([*cols, route[rep[gs]]])
        rank[gs[o]] = next_id + np.arange(len(gs))
        next_id += len(gs)
    return rank[group]


@numba.njit(cache=True)
def _sequence_hash(route: I64, ptr: I64, key: I64) -> npt.NDArray[np.uint64]:
    """FNV-1a over each trip's route and stop keys."""
    n = route.shape[0]
    out = np.empty(n, np.uint64)
    prime = np.uint64(1099511628211)
    for t in range(n):
        h = np.uint64(14695981039346656037)
        h = (h ^ np.uint64(route[t] & 0xFFFFFFFFFFFF)) * prime
        for r in range(ptr[t], ptr[t + 1]):
            h = (h ^ np.uint64(key[r] & 0xFFFFFFFFFFFF)) * prime
        out[t] = h
    return out


@numba.njit(cache=True)
def _group_equal(
    by_hash: I64, route: I64, ptr: I64, key: I64, h: npt.NDArray[np.uint64]
) -> tuple[I64, I64]:
    """Group of each trip (trips sorted by length, route, hash) and the first trip of each
    group. Trips of one hash run are compared with the run's groups in full."""
    n = by_hash.shape[0]
    group = np.empty(n, np.int64)
    rep = np.empty(n, np.int64)
    n_groups = 0
    run_start_group = 0
    for k in range(n):
        t = by_hash[k]
        L = ptr[t + 1] - ptr[t]
        if k > 0:
            p = by_hash[k - 1]
            if h[p] != h[t] or route[p] != route[t] or ptr[p + 1] - ptr[p] != L:
                run_start_group = n_groups  # a new run: none of its groups exist yet
        found = -1
        for g in range(run_start_group, n_groups):
            u = rep[g]
            same = True
            for j in range(L):
                if key[ptr[u] + j] != key[ptr[t] + j]:
                    same = False
                    break
            if same:
                found = g
                break
        if found < 0:
            found = n_groups
            rep[n_groups] = t
            n_groups += 1
        group[t] = found
    return group, rep[:n_groups].copy()


@numba.njit(cache=True)
def _split_overtaking(order: I64, cand: I64, ptr: I64, arrival: I32, departure: I32) -> I64:
    """Sub-pattern of each trip: trips of a candidate, in ``order`` (first departure), go
    first-fit to the first sub-pattern whose last trip neither arrives nor departs later at
    any stop. A candidate without overtaking stays whole (every trip fits sub-pattern 0)."""
    n = order.shape[0]
    sub = np.zeros(n, np.int64)
    last = np.empty(n, np.int64)  # last trip of each sub-pattern of the current candidate
    n_last = 0
    for k in range(n):
        t = order[k]
        if k == 0 or cand[order[k - 1]] != cand[t]:
            n_last = 0
        placed = False
        for s in range(n_last):
            u = last[s]
            fits = True
            for j in range(ptr[t + 1] - ptr[t]):
                if arrival[ptr[u] + j] > arrival[ptr[t] + j] or (
                    departure[ptr[u] + j] > departure[ptr[t] + j]
                ):
                    fits = False
                    break
            if fits:
                last[s] = t
                sub[t] = s
                placed = True
                break
        if not placed:
            sub[t] = n_last
            last[n_last] = t
            n_last += 1
    return sub

"""Group trips into patterns (RAPTOR routes) where no trip overtakes another."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from gtfs.arrays import concat_ranges

I64 = npt.NDArray[np.int64]


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
    # Candidate = same route and stop sequence: rows [route, stop_1..stop_L] made unique per
    # trip length (a loop over the few distinct lengths, not over trips).
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
    cand = np.empty(n_trips, np.int64)
    next_id = 0
    for length in np.unique(lengths):
        ts = np.flatnonzero(lengths == length)
        mat = key[ptr[ts][:, None] + np.arange(length)]
        mat = np.column_stack([route[ts], mat])
        _, inv = np.unique(mat, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        cand[ts] = inv + next_id
        next_id += int(inv.max()) + 1
    first_dep = departure[ptr[:-1]]
    last_arr = arrival[ptr[1:] - 1]
    order = np.lexsort((last_arr, first_dep, cand))
    # Overtaking check on consecutive trips of a candidate (same length, so row r-m aligns).
    sorted_c = cand[order]
    same_prev = np.r_[False, sorted_c[1:] == sorted_c[:-1]]
    follow = order[same_prev]
    before = order[np.flatnonzero(same_prev) - 1]
    rows = concat_ranges(ptr[follow], lengths[follow])
    prev_rows = rows - np.repeat(ptr[follow] - ptr[before], lengths[follow])
    bad_row = (arrival[rows] < arrival[prev_rows]) | (departure[rows] < departure[prev_rows])
    bad_cands = np.unique(cand[np.repeat(follow, lengths[follow])[bad_row]])
    sub = np.zeros(n_trips, np.int64)
    for c in bad_cands:
        members = order[sorted_c == c]
        last: list[int] = []  # last trip of each sub-pattern
        for t in members:
            a = arrival[ptr[t] : ptr[t + 1]]
            d = departure[ptr[t] : ptr[t + 1]]
            for k, u in enumerate(last):
                if np.all(arrival[ptr[u] : ptr[u + 1]] <= a) and np.all(
                    departure[ptr[u] : ptr[u + 1]] <= d
                ):
                    last[k] = t
                    sub[t] = k
                    break
            else:
                sub[t] = len(last)
                last.append(int(t))
    pat_key = cand.astype(np.int64) * (int(sub.max()) + 1) + sub
    pattern, _ = pd.factorize(pat_key[order])
    pat = np.empty(n_trips, np.int64)
    pat[order] = pattern
    final_order = np.lexsort((last_arr, first_dep, pat))
    return pat, final_order

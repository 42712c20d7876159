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
) -> tuple[I64, I64]:
    """Pattern id of each trip and the trip order (by pattern, then first departure).

    Trips share a candidate pattern when they have the same route and stop sequence; a
    candidate is then split greedily (first-fit in departure order) wherever a trip would
    overtake (arrive or depart earlier at some stop than) the trip before it.

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
    cand = np.empty(n_trips, np.int64)
    next_id = 0
    for length in np.unique(lengths):
        ts = np.flatnonzero(lengths == length)
        mat = stops[ptr[ts][:, None] + np.arange(length)]
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

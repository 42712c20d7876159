"""Many origins x many departures of the one-to-all RAPTOR kernel, in one numba call.

For each origin (in parallel, ``prange``) the departures are searched latest first with the
labels kept between runs — rRAPTOR's reuse (Delling et al., 2012, §4): an arrival reachable by
leaving later is reachable by leaving now and waiting, so each earlier run only improves on the
later one. After each run the travel time to every target (a set of stops with egress walks) is
read off the labels; the median over the departures is what a planner sees, as in Conveyal R5
(a single departure time makes a map hostage to one bus's timing).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from routing.raptor import kernels

BIG = kernels.BIG


@njit(cache=True)
def _median(v: np.ndarray, n: int) -> int:
    """Median of ``v[:n]`` (sorted in place); the mean of the two middle values for even
    ``n`` (numpy's rule), ``BIG`` when it involves an unreached value."""
    for i in range(1, n):  # insertion sort: n is a dozen departures
        x = v[i]
        j = i - 1
        while j >= 0 and v[j] > x:
            v[j + 1] = v[j]
            j -= 1
        v[j + 1] = x
    m = n // 2
    if n % 2 == 1:
        return v[m]
    if v[m] >= BIG:
        return BIG
    return (v[m - 1] + v[m]) // 2


@njit(parallel=True, cache=True, nogil=True)
def median_travel_times(
    pattern_stop_ptr: np.ndarray,
    pattern_stops: np.ndarray,
    pattern_trip_ptr: np.ndarray,
    trip_st_ptr: np.ndarray,
    st_arr: np.ndarray,
    st_dep: np.ndarray,
    st_board: np.ndarray,
    st_alight: np.ndarray,
    stop_pattern_ptr: np.ndarray,
    stop_patterns: np.ndarray,
    stop_pattern_pos: np.ndarray,
    transfer_ptr: np.ndarray,
    transfer_to: np.ndarray,
    transfer_s: np.ndarray,
    active: np.ndarray,
    row_fifo: np.ndarray,
    odd_ptr: np.ndarray,
    odd_trip: np.ndarray,
    odd_copy: np.ndarray,
    offsets: np.ndarray,
    change_s: np.ndarray,
    slack: int,
    max_transfer_s: int,
    fifo: bool,
    n_rounds: int,
    departures: np.ndarray,  # [D] int32, descending
    acc_ptr: np.ndarray,  # [O+1] CSR: each origin's access stops
    acc_stop: np.ndarray,
    acc_s: np.ndarray,
    tgt_ptr: np.ndarray,  # [G+1] CSR: each target's egress stops
    tgt_stop: np.ndarray,
    tgt_s: np.ndarray,
    direct_s: np.ndarray,  # [O, G] travel without transit (walk, on-demand); BIG: none
    max_travel_s: int,  # longer is "not reached": searches stop there
    out: np.ndarray,  # [O, G] int32: median seconds, BIG when unreached
) -> None:
    """Median over ``departures`` of the travel time from each origin to each target."""
    n_orig = acc_ptr.shape[0] - 1
    n_tgt = tgt_ptr.shape[0] - 1
    n_stops = stop_pattern_ptr.shape[0] - 1
    n_dep = departures.shape[0]
    no_egress = np.full(n_stops, -1, dtype=np.int32)
    for o in prange(n_orig):
        shape = (n_rounds, n_stops)
        rtau = np.full(shape, BIG, dtype=np.int32)
        r_trip = np.zeros(shape, dtype=np.int32)
        r_board = np.zeros(shape, dtype=np.int32)
        r_alight = np.zeros(shape, dtype=np.int32)
        r_off = np.zeros(shape, dtype=np.int8)
        r_copy = np.zeros(shape, dtype=np.bool_)
        wtau = np.full(shape, BIG, dtype=np.int32)
        w_from = np.zeros(shape, dtype=np.int32)
        w_copy = np.zeros(shape, dtype=np.bool_)
        ready = np.full(shape, BIG, dtype=np.int32)
        ready_src = np.zeros(shape, dtype=np.int8)
        target_bound = np.full(n_rounds, BIG, dtype=np.int32)
        access = np.full(n_stops, -1, dtype=np.int32)
        for e in range(acc_ptr[o], acc_ptr[o + 1]):
            s = acc_stop[e]
            if access[s] < 0 or acc_s[e] < access[s]:
                access[s] = acc_s[e]
        times = np.empty((n_tgt, n_dep), dtype=np.int32)
        last = n_rounds - 1
        for j in range(n_dep):
            d = departures[j]
            # Arrivals past the horizon are pruned (the kernel's target bound). Departures run
            # latest first, so the bound only tightens: labels kept from a later run stay valid.
            for k in range(n_rounds):
                target_bound[k] = d + max_travel_s + 1
            if acc_ptr[o + 1] > acc_ptr[o]:
                kernels.raptor(
                    pattern_stop_ptr, pattern_stops, pattern_trip_ptr, trip_st_ptr, st_arr,
                    st_dep, st_board, st_alight, stop_pattern_ptr, stop_patterns,
                    stop_pattern_pos, transfer_ptr, transfer_to, transfer_s, active, row_fifo,
                    odd_ptr, odd_trip, odd_copy, offsets, change_s, slack, max_transfer_s, fifo,
                    d, access, no_egress, rtau, r_trip, r_board, r_alight, r_off, r_copy, wtau,
                    w_from, w_copy, ready, ready_src, target_bound,
                )  # fmt: skip
            for g in range(n_tgt):
                best = direct_s[o, g]
                for e in range(tgt_ptr[g], tgt_ptr[g + 1]):
                    s = tgt_stop[e]
                    a = rtau[last, s]
                    if wtau[last, s] < a:
                        a = wtau[last, s]
                    if access[s] >= 0 and d + access[s] < a:
                        a = d + access[s]
                    if a < BIG:
                        tt = a - d + tgt_s[e]
                        if tt > max_travel_s:
                            continue
                        if tt < best:
                            best = tt
                times[g, j] = best if best <= max_travel_s else BIG
        for g in range(n_tgt):
            out[o, g] = _median(times[g], n_dep)

"""McRAPTOR: Pareto journeys over (arrival time, number of rides, walking time[, CO2]).

Rounds give the number of rides; within a stop, a bag keeps the labels not dominated on
(arrival, boarding-ready time, walking seconds) by a label with no more rides (Delling, Pajor
& Werneck, 2012, §5). Labels live in one growable pool with parent pointers, so journeys are
read back after the search. The kernel is numba; only the pool's growth and the read-back are
Python.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from routing.raptor.journey import Journey, Leg, RideLeg, WalkLeg
from routing.raptor.kernels import (
    BIG,
    SEATED,
    find_trip,
    mark,
    queue_patterns,
    scan_pass,
)
from routing.raptor.network import RaptorNetwork
from routing.raptor.search import QueryArrays, _as_targets, _tighten

K_ACCESS = 1
K_RIDE = 2
K_WALK = 3
K_SEAT = 4  # a ride up to where the rider stayed seated into the next trip (in no bag)
_RB_CAP = 256  # route-bag capacity (labels riding one pattern at once)
CO2_STEP_G = 100
"""Grams per CO2 step: McRAPTOR compares CO2 in 100 g steps (a kilometre of bus), so journeys
a few grams cleaner do not multiply the Pareto set (exact grams make it explode: thousands of
journeys and seconds per query on Cairns)."""


@njit(cache=True, nogil=True)
def _insert(
    s: int,
    arr: int,
    ready: int,
    walk: int,
    co2: int,
    rnd: int,
    kind: int,
    head: np.ndarray,
    nxt: np.ndarray,
    l_arr: np.ndarray,
    l_ready: np.ndarray,
    l_walk: np.ndarray,
    l_co2: np.ndarray,
    l_round: np.ndarray,
    l_kind: np.ndarray,
    dead: np.ndarray,
    n: int,
    step: int,
    lb: np.ndarray,
    egress: np.ndarray,
    tb: np.ndarray,
    cls: int,
    l_cls: np.ndarray,
) -> bool:
    """Whether ``(arr, ready, walk, co2)`` at round ``rnd`` enters stop ``s``'s bag; if so, kills
    the labels of the same round it dominates (the caller writes label ``n``).

    Arrivals by a ride compete only with rides (and the access): a ride that a walk beats
    still has footpaths of its own to offer, which a walk (never followed by another) lacks.

    Target pruning (with ``lb`` of one entry per stop, else ``lb`` is empty): a label that
    cannot reach a target before ``arr + lb[s]`` is dropped when a journey already found
    (``tb``, see :func:`_target_prunes`) arrives strictly earlier with no more rides, walking
    or CO2 steps: every journey through the label is then strictly dominated.

    Transfer rules (``cls``, :func:`_rule_class`): a ride on a trip a rider may change from
    under a trip/route rule only competes with rides of the same trip (and they only with it):
    which boardings it can reach depends on the trip, not only on its times.
    """
    if lb.shape[0] > 0 and _target_prunes(arr + int(lb[s]), rnd, walk, co2 // step, tb):
        return False
    on_foot = kind == K_WALK
    x = head[s]
    while x >= 0:
        # The class is compared last: with no rules it always matches, and most labels
        # already fail on time (McRAPTOR ran measurably slower with it first).
        if (
            not dead[x]
            and (on_foot or l_kind[x] != K_WALK)
            and l_arr[x] <= arr
            and l_ready[x] <= ready
            and l_walk[x] <= walk
            and l_co2[x] // step <= co2 // step
            and l_cls[x] == cls
        ):
            return False
        x = nxt[x]
    x = head[s]
    while x >= 0:
        if (
            not dead[x]
            and l_round[x] >= rnd
            and (l_kind[x] == K_WALK or not on_foot)
            and arr <= l_arr[x]
            and ready <= l_ready[x]
            and walk <= l_walk[x]
            and co2 // step <= l_co2[x] // step
            and l_cls[x] == cls
        ):
            dead[x] = True
        x = nxt[x]
    nxt[n] = head[s]
    head[s] = n
    if lb.shape[0] > 0 and egress[s] >= 0:
        _target_add(arr + int(egress[s]), rnd, walk + egress[s], co2 // step, tb)
    return True


@njit(cache=True, nogil=True)
def _rule_class(trip: int, src_of: np.ndarray) -> int:
    """The dominance class of a ride label on ``trip``: the trip when a rider may change from
    it under a transfer rule (``src_of``, :attr:`RaptorNetwork.rule_arrays`), else -1."""
    if trip >= 0 and src_of[trip] >= 0:
        return trip
    return -1


@njit(cache=True, nogil=True, inline="always")
def _listed_ready(
    x: int,
    s: int,
    st: int,
    ready: int,
    slack: int,
    change_s: np.ndarray,
    transfer_s: np.ndarray,
    max_transfer_s: int,
    l_kind: np.ndarray,
    l_parent: np.ndarray,
    l_trip: np.ndarray,
    l_alight: np.ndarray,
    l_arr: np.ndarray,
    rx_flag: np.ndarray,
    rx_ptr: np.ndarray,
    rx_trip: np.ndarray,
    rx_pos: np.ndarray,
    rx_need: np.ndarray,
    rx_edge: np.ndarray,
    rule_s: np.ndarray,
) -> int:
    """When label ``x`` at stop ``s`` is ready to board the governed stop time ``st``: a ride
    label (or a walk after a ride, where a rule between two stops may govern ``st``) is ready
    after the time listed for that ride's trip and alighting position (a binary search: each
    list is sorted by both), ``BIG`` when the change is not listed (forbidden); any other
    label keeps its own ``ready``."""
    ride = x
    if l_kind[x] == K_WALK:
        if rx_flag[st] != 2:
            return ready
        ride = l_parent[x]
        if ride < 0 or l_kind[ride] != K_RIDE:
            return ready  # a walk from the origin
    elif l_kind[x] != K_RIDE:
        return ready
    trip = l_trip[ride]
    pos = l_alight[ride]
    lo = rx_ptr[st]
    hi = rx_ptr[st + 1]
    while lo < hi:
        mid = (lo + hi) >> 1
        if rx_trip[mid] < trip or (rx_trip[mid] == trip and rx_pos[mid] < pos):
            lo = mid + 1
        else:
            hi = mid
    if lo == rx_ptr[st + 1] or rx_trip[lo] != trip or rx_pos[lo] != pos:
        return BIG  # a change the rules do not list is forbidden
    # The change's time, as in kernels.rule_board (written out: a call per lookup measurably
    # slowed McRAPTOR).
    ni = rx_need[lo]
    ed = rx_edge[lo]
    if ed < 0:
        need = change_s[s] if ni < 0 else rule_s[ni]
    else:
        d = transfer_s[ed]
        if d > max_transfer_s:
            return BIG
        need = d + slack
        if ni >= 0 and rule_s[ni] > need:
            need = rule_s[ni]
    return l_arr[ride] + need


@njit(cache=True, nogil=True)
def _target_prunes(reach: int, rnd: int, walk: int, co2_steps: int, tb: np.ndarray) -> bool:
    """Whether a journey of ``tb`` arrives before ``reach`` with no more rides than ``rnd``,
    walking seconds than ``walk`` and CO2 steps than ``co2_steps`` (each only grows on the
    way to a target). ``tb`` is [5, cap+1]: rows arrival, rides, walk, CO2 steps of the target
    journeys found so far (one Pareto set); ``tb[0, cap]`` holds their number."""
    cap = tb.shape[1] - 1
    m = tb[0, cap]
    for i in range(m):
        if tb[0, i] < reach and tb[1, i] <= rnd and tb[2, i] <= walk and tb[3, i] <= co2_steps:
            return True
    return False


@njit(cache=True, nogil=True)
def _target_add(arr: int, rnd: int, walk: int, co2_steps: int, tb: np.ndarray) -> None:
    """Record a journey reaching a target in ``tb`` (see :func:`_target_prunes`), unless one
    there is no worse in every criterion; the entries it dominates go. A full table takes no
    more (pruning less is still exact). Journeys past ``max_arrival`` are never recorded: the
    caller's ``tb[4, 0]`` holds that limit."""
    if arr > tb[4, 0]:
        return
    cap = tb.shape[1] - 1
    m = tb[0, cap]
    for i in range(m):
        if tb[0, i] <= arr and tb[1, i] <= rnd and tb[2, i] <= walk and tb[3, i] <= co2_steps:
            return
    j = 0
    for i in range(m):
        if not (arr <= tb[0, i] and rnd <= tb[1, i] and walk <= tb[2, i] and co2_steps <= tb[3, i]):
            for r in range(4):
                tb[r, j] = tb[r, i]
            j += 1
    if j < cap:
        tb[0, j] = arr
        tb[1, j] = rnd
        tb[2, j] = walk
        tb[3, j] = co2_steps
        j += 1
    tb[0, cap] = j


@njit(cache=True, nogil=True)
def _walks(
    labels: np.ndarray,
    n_labels: int,
    rnd: int,
    slack: int,
    transfer_ptr: np.ndarray,
    transfer_to: np.ndarray,
    transfer_s: np.ndarray,
    max_transfer_s: int,
    max_arrival: int,
    # The label pool array by array: passed as one tuple, McRAPTOR ran ~10 % slower (measured).
    head: np.ndarray,
    nxt: np.ndarray,
    dead: np.ndarray,
    l_arr: np.ndarray,
    l_ready: np.ndarray,
    l_walk: np.ndarray,
    l_co2: np.ndarray,
    l_stop: np.ndarray,
    l_round: np.ndarray,
    l_kind: np.ndarray,
    l_parent: np.ndarray,
    n: int,
    step: int,
    marked: np.ndarray,
    mark_list: np.ndarray,
    n_mark: int,
    lb: np.ndarray,
    egress: np.ndarray,
    tb: np.ndarray,
    l_cls: np.ndarray,
    walk_cls: np.ndarray,
) -> tuple[int, int]:
    """One footpath after each of ``labels[:n_labels]``, into round ``rnd`` (boarding ready
    ``slack`` after the walk). A walk to a stop of ``walk_cls`` ([S] bool, empty without
    rules) keeps the rule class of the label it follows (:func:`_rule_class`): there a rule
    between two stops may govern a boarding, and walks after rides on different trips lead
    to different boardings. Returns ``(n, n_mark)``, the labels
    and marked stops now, or ``(-1, n_mark)`` when the label pool is full."""
    cap = l_arr.shape[0]
    for i in range(n_labels):
        x = labels[i]
        s = l_stop[x]
        for e in range(transfer_ptr[s], transfer_ptr[s + 1]):
            d = transfer_s[e]
            if d > max_transfer_s:
                continue
            t = transfer_to[e]
            a = l_arr[x] + d
            w = l_walk[x] + d
            if a > max_arrival:
                continue
            if n >= cap:
                return -1, n_mark
            cls = l_cls[x] if walk_cls.shape[0] > 0 and walk_cls[t] else -1
            if _insert(
                t, a, a + slack, w, l_co2[x], rnd, K_WALK, head, nxt, l_arr, l_ready, l_walk,
                l_co2, l_round, l_kind, dead, n, step, lb, egress, tb, cls, l_cls,
            ):  # fmt: skip
                l_cls[n] = cls
                l_arr[n] = a
                l_ready[n] = a + slack
                l_walk[n] = w
                l_co2[n] = l_co2[x]
                l_stop[n] = t
                l_round[n] = rnd
                l_kind[n] = K_WALK
                l_parent[n] = x
                dead[n] = False
                n += 1
                n_mark = mark(t, marked, mark_list, n_mark)
    return n, n_mark


@njit(cache=True, nogil=True)
def _first(d_a: int, o_a: int, t_a: int, d_b: int, o_b: int, t_b: int) -> bool:
    """Whether trip copy ``a`` (departing ``d_a`` here) is no later than ``b`` in its
    pattern's order: it departs earlier, or at the same time from a lower copy or trip."""
    return d_a < d_b or (d_a == d_b and (o_a < o_b or (o_a == o_b and t_a <= t_b)))


@njit(cache=True, nogil=True)
def _seated_chain(
    t0: int,
    o: int,
    bpos: int,
    parent: int,
    walk: int,
    co2_end: int,  # CO2 on arriving at t0's last stop
    k: int,
    running: np.ndarray,
    trip_pat: np.ndarray,
    pattern_stop_ptr: np.ndarray,
    pattern_stops: np.ndarray,
    trip_st_ptr: np.ndarray,
    st_arr: np.ndarray,
    st_dep: np.ndarray,
    st_alight: np.ndarray,
    offsets: np.ndarray,
    change_s: np.ndarray,
    pat_co2: np.ndarray,
    max_arrival: int,
    step: int,
    cont_ptr: np.ndarray,
    cont_to: np.ndarray,
    cont_kind: np.ndarray,
    chain_seen: np.ndarray,
    stack_t: np.ndarray,
    stack_l: np.ndarray,
    stack_c: np.ndarray,
    l_arr: np.ndarray,
    l_ready: np.ndarray,
    l_walk: np.ndarray,
    l_co2: np.ndarray,
    l_stop: np.ndarray,
    l_round: np.ndarray,
    l_kind: np.ndarray,
    l_parent: np.ndarray,
    l_trip: np.ndarray,
    l_board: np.ndarray,
    l_alight: np.ndarray,
    l_off: np.ndarray,
    dead: np.ndarray,
    nxt: np.ndarray,
    head: np.ndarray,
    n: int,
    new_rides: np.ndarray,
    n_new: int,
    marked: np.ndarray,
    mark_list: np.ndarray,
    n_mark: int,
    lb: np.ndarray,
    egress: np.ndarray,
    tb: np.ndarray,
    src_of: np.ndarray,
    l_cls: np.ndarray,
) -> tuple[int, int, int]:
    """Ride on from trip copy ``(t0, o)``, boarded at ``bpos`` from label ``parent``, into
    every trip the vehicle continues as (depth first, each trip once per chain): alighting
    labels as in a pattern scan (``l_board`` = ``SEATED``). Returns ``(n, n_new, n_mark)``;
    ``n`` is -1 when the pool is full."""
    cap = l_arr.shape[0]
    top = 0
    stack_t[0] = t0
    stack_l[0] = -1  # the first trip's part is written when it has a continuation
    stack_c[0] = co2_end
    chain_seen[t0] = True
    seen_n = 1
    seen_list = stack_t.copy()  # trips to unmark afterwards (at most one per trip)
    seen_list[0] = t0
    while top >= 0:
        t = stack_t[top]
        link_parent = stack_l[top]
        c_end = stack_c[top]
        top -= 1
        t_end = st_arr[o, trip_st_ptr[t + 1] - 1]
        block_done = False
        link = -1
        for e in range(cont_ptr[t], cont_ptr[t + 1]):
            u = cont_to[e]
            kind = cont_kind[e]
            if not running[o, u]:
                continue
            if kind != 1:
                if block_done:
                    continue
                block_done = True
                if kind == 2:
                    continue
            if st_dep[o, trip_st_ptr[u]] < t_end or chain_seen[u]:
                continue
            if link < 0:
                # The ride on t up to its last stop, for reading the journey back.
                if n >= cap:
                    return -1, n_new, n_mark
                pt = trip_pat[t]
                last = pattern_stop_ptr[pt + 1] - pattern_stop_ptr[pt] - 1
                link = n
                l_arr[n] = t_end + offsets[o]
                l_ready[n] = t_end + offsets[o]
                l_walk[n] = walk
                l_co2[n] = c_end
                l_stop[n] = pattern_stops[pattern_stop_ptr[pt] + last]
                l_round[n] = k
                l_kind[n] = K_SEAT
                l_parent[n] = parent if link_parent < 0 else link_parent
                l_trip[n] = t
                l_board[n] = bpos if link_parent < 0 else SEATED
                l_alight[n] = last
                l_off[n] = o
                dead[n] = True  # in no bag
                nxt[n] = -1
                n += 1
            chain_seen[u] = True
            seen_list[seen_n] = u
            seen_n += 1
            pu = trip_pat[u]
            p0 = pattern_stop_ptr[pu]
            n_pos = pattern_stop_ptr[pu + 1] - p0
            st0 = trip_st_ptr[u]
            base = c_end - pat_co2[p0]
            for j in range(1, n_pos):
                if not st_alight[o, st0 + j]:
                    continue
                a = st_arr[o, st0 + j] + offsets[o]
                if a > max_arrival:
                    continue
                s = pattern_stops[p0 + j]
                c = base + pat_co2[p0 + j]
                if n >= cap:
                    return -1, n_new, n_mark
                if _insert(
                    s, a, a + change_s[s], walk, c, k, K_RIDE, head, nxt, l_arr, l_ready, l_walk,
                    l_co2, l_round, l_kind, dead, n, step, lb, egress, tb,
                    _rule_class(u, src_of), l_cls,
                ):  # fmt: skip
                    l_cls[n] = _rule_class(u, src_of)
                    l_arr[n] = a
                    l_ready[n] = a + change_s[s]
                    l_walk[n] = walk
                    l_co2[n] = c
                    l_stop[n] = s
                    l_round[n] = k
                    l_kind[n] = K_RIDE
                    l_parent[n] = link
                    l_trip[n] = u
                    l_board[n] = SEATED
                    l_alight[n] = j
                    l_off[n] = o
                    dead[n] = False
                    new_rides[n_new] = n
                    n_new += 1
                    n += 1
                    n_mark = mark(s, marked, mark_list, n_mark)
            if cont_ptr[u] < cont_ptr[u + 1]:
                top += 1
                stack_t[top] = u
                stack_l[top] = link
                stack_c[top] = base + pat_co2[p0 + n_pos - 1]
    for i in range(seen_n):
        chain_seen[seen_list[i]] = False
    return n, n_new, n_mark


@njit(cache=True, nogil=True)
def mc_kernel(
    pattern_stop_ptr: np.ndarray,
    pattern_stops: np.ndarray,
    pattern_trip_ptr: np.ndarray,
    trip_st_ptr: np.ndarray,
    st_arr: np.ndarray,
    st_dep: np.ndarray,
    st_board: np.ndarray,  # [O, N]: a realtime skip only closes its own day's copy
    st_alight: np.ndarray,  # [O, N]
    stop_pattern_ptr: np.ndarray,
    stop_patterns: np.ndarray,
    stop_pattern_pos: np.ndarray,
    transfer_ptr: np.ndarray,
    transfer_to: np.ndarray,
    transfer_s: np.ndarray,
    active: np.ndarray,  # [O, T] the regular trip copies
    row_fifo: np.ndarray,  # [O, P]
    odd_ptr: np.ndarray,  # [P+1] CSR of the odd trip copies, ridden one by one
    odd_trip: np.ndarray,
    odd_copy: np.ndarray,
    offsets: np.ndarray,
    change_s: np.ndarray,
    slack: int,
    max_transfer_s: int,
    fifo: bool,
    departure: int,
    access_s: np.ndarray,
    max_rounds: int,
    pat_co2: np.ndarray,
    max_arrival: int,
    co2_step: int,
    # label pool (capacity C)
    l_arr: np.ndarray,
    l_ready: np.ndarray,
    l_walk: np.ndarray,
    l_co2: np.ndarray,
    l_stop: np.ndarray,
    l_round: np.ndarray,
    l_kind: np.ndarray,
    l_parent: np.ndarray,
    l_trip: np.ndarray,
    l_board: np.ndarray,
    l_alight: np.ndarray,
    l_off: np.ndarray,
    dead: np.ndarray,
    nxt: np.ndarray,
    head: np.ndarray,
    # stay-seated continuations (kernels.raptor_pruned)
    running: np.ndarray,
    trip_pat: np.ndarray,
    cont_ptr: np.ndarray,
    cont_to: np.ndarray,
    cont_kind: np.ndarray,
    # target pruning (:func:`_insert`): lb [S] or empty (off), egress [S], tb [5, cap+1]
    lb: np.ndarray,
    egress: np.ndarray,
    tb: np.ndarray,
    # trip/route transfer rules (RaptorNetwork.rule_arrays) and each label's class (_insert)
    rx_flag: np.ndarray,
    rx_ptr: np.ndarray,
    rx_trip: np.ndarray,
    rx_pos: np.ndarray,
    rx_need: np.ndarray,
    rx_edge: np.ndarray,
    src_of: np.ndarray,
    l_cls: np.ndarray,
    rule_s: np.ndarray,  # the rules' seconds for this rider (QueryArrays.rule_seconds)
    walk_cls: np.ndarray,  # [S] RaptorNetwork.rule_walk_stops, empty without rules
) -> int:
    """Fill the label pool; returns the number of labels, or -1 when the pool is full.

    A boarding a trip/route transfer rule may govern (``rx_flag``, an odd trip) is caught
    from a ride label only with the time listed for that ride's trip and stop, and never
    when the change is not listed (forbidden); labels on foot keep their own ready time,
    but where a rule between two stops may govern the boarding (``rx_flag`` 2) a walk after
    a ride is looked up as that ride's change along the footpath (:func:`_listed_ready`).

    A rider on a trip with stay-seated continuations (an odd trip, ridden alone) continues
    into each trip the vehicle runs next, in the same round; the ride's part before the
    continuation is kept as a ``K_SEAT`` label (in no bag) that the label after it points to.
    """
    cap = l_arr.shape[0]
    prune = lb.shape[0] > 0
    has_rules = rx_flag.shape[0] > 0
    n_stops = head.shape[0]
    n_pat = pattern_trip_ptr.shape[0] - 1
    n_off = offsets.shape[0]
    n = 0
    marked = np.zeros(n_stops, dtype=np.bool_)
    mark_list = np.empty(n_stops, dtype=np.int32)
    n_mark = 0
    first_pos = np.full(n_pat, BIG, dtype=np.int32)
    pat_queue = np.empty(n_pat, dtype=np.int32)
    new_rides = np.empty(cap, dtype=np.int32)
    rb_par = np.empty(_RB_CAP, dtype=np.int32)
    rb_trip = np.empty(_RB_CAP, dtype=np.int32)
    rb_o = np.empty(_RB_CAP, dtype=np.int32)
    rb_board = np.empty(_RB_CAP, dtype=np.int32)
    rb_walk = np.empty(_RB_CAP, dtype=np.int32)
    # CO2 at boarding minus the pattern's cumulative grams there: comparable along the pattern.
    rb_co2 = np.empty(_RB_CAP, dtype=np.int32)
    n_trips = trip_pat.shape[0]
    chain_seen = np.zeros(n_trips, dtype=np.bool_)
    stack_t = np.empty(n_trips + 1, dtype=np.int32)
    stack_l = np.empty(n_trips + 1, dtype=np.int32)
    stack_c = np.empty(n_trips + 1, dtype=np.int32)

    # Round 0: access labels, then one walk from each.
    n_acc = 0
    for s in range(n_stops):
        if access_s[s] < 0:
            continue
        a = departure + access_s[s]
        if n >= cap:
            return -1
        if _insert(
            s, a, a, access_s[s], 0, 0, K_ACCESS, head, nxt, l_arr, l_ready, l_walk, l_co2,
            l_round, l_kind, dead, n, co2_step, lb, egress, tb, -1, l_cls,
        ):  # fmt: skip
            l_cls[n] = -1
            l_arr[n] = a
            l_ready[n] = a
            l_walk[n] = access_s[s]
            l_co2[n] = 0
            l_stop[n] = s
            l_round[n] = 0
            l_kind[n] = K_ACCESS
            l_parent[n] = -1
            dead[n] = False
            new_rides[n_acc] = n
            n_acc += 1
            n += 1
            n_mark = mark(s, marked, mark_list, n_mark)
    # No vehicle change before the first ride: boarding is ready on arrival (no slack).
    n, n_mark = _walks(
        new_rides, n_acc, 0, 0, transfer_ptr, transfer_to, transfer_s, max_transfer_s,
        max_arrival, head, nxt, dead, l_arr, l_ready, l_walk, l_co2, l_stop, l_round, l_kind,
        l_parent, n, co2_step, marked, mark_list, n_mark, lb, egress, tb, l_cls, walk_cls,
    )  # fmt: skip
    if n < 0:
        return -1

    for k in range(1, max_rounds + 1):
        if n_mark == 0:
            break
        n_q = queue_patterns(
            mark_list, n_mark, marked, stop_pattern_ptr, stop_patterns, stop_pattern_pos,
            first_pos, pat_queue,
        )  # fmt: skip
        n_mark = 0
        n_new = 0
        for q in range(n_q):
            p = pat_queue[q]
            start = first_pos[p]
            first_pos[p] = BIG
            p0 = pattern_stop_ptr[p]
            n_pos = pattern_stop_ptr[p + 1] - p0
            t_lo = pattern_trip_ptr[p]
            t_hi = pattern_trip_ptr[p + 1]
            v_lo = odd_ptr[p]
            # Pass v_lo - 1: the pattern's regular trip copies; each further pass one odd trip
            # copy alone, as a pattern of its own (see kernels.raptor).
            for v in range(v_lo - 1, odd_ptr[p + 1]):
                fix_t, fix_o = scan_pass(v, v_lo, odd_trip, odd_copy)
                n_rb = 0
                for i in range(start, n_pos):
                    s = pattern_stops[p0 + i]
                    # Alight every route-bag label here.
                    for r in range(n_rb):
                        st = trip_st_ptr[rb_trip[r]] + i
                        if not st_alight[rb_o[r], st]:
                            continue
                        a = st_arr[rb_o[r], st] + offsets[rb_o[r]]
                        if a > max_arrival:
                            continue
                        ready = a + change_s[s]
                        c = rb_co2[r] + pat_co2[p0 + i]
                        if n >= cap:
                            return -1
                        if _insert(
                            s, a, ready, rb_walk[r], c, k, K_RIDE, head, nxt, l_arr, l_ready,
                            l_walk, l_co2, l_round, l_kind, dead, n, co2_step, lb, egress, tb,
                            _rule_class(rb_trip[r], src_of), l_cls,
                        ):  # fmt: skip
                            l_cls[n] = _rule_class(rb_trip[r], src_of)
                            l_arr[n] = a
                            l_ready[n] = ready
                            l_walk[n] = rb_walk[r]
                            l_co2[n] = c
                            l_stop[n] = s
                            l_round[n] = k
                            l_kind[n] = K_RIDE
                            l_parent[n] = rb_par[r]
                            l_trip[n] = rb_trip[r]
                            l_board[n] = rb_board[r]
                            l_alight[n] = i
                            l_off[n] = rb_o[r]
                            dead[n] = False
                            new_rides[n_new] = n
                            n_new += 1
                            n += 1
                            n_mark = mark(s, marked, mark_list, n_mark)
                    # Board: labels of the previous round at this stop join the route bag.
                    x = head[s]
                    while x >= 0:
                        if dead[x] or l_round[x] != k - 1:
                            x = nxt[x]
                            continue
                        if prune and _target_prunes(
                            l_arr[x] + int(lb[s]), k, l_walk[x], l_co2[x] // co2_step, tb
                        ):
                            # A journey found since it was labelled beats every ride from it.
                            x = nxt[x]
                            continue
                        best_t = -1
                        best_o = 0
                        best_d = BIG
                        if fix_t >= 0:
                            st = trip_st_ptr[fix_t] + i
                            d = st_dep[fix_o, st] + offsets[fix_o]
                            rdy = l_ready[x]
                            if has_rules and rx_flag[st]:
                                rdy = _listed_ready(
                                    x, s, st, rdy, slack, change_s, transfer_s, max_transfer_s,
                                    l_kind, l_parent, l_trip, l_alight, l_arr, rx_flag, rx_ptr,
                                    rx_trip, rx_pos, rx_need, rx_edge, rule_s,
                                )  # fmt: skip
                            # Not at its last stop (as in kernels.raptor_pruned).
                            if st_board[fix_o, st] and rdy <= d and i < n_pos - 1:
                                best_t = fix_t
                                best_o = fix_o
                                best_d = d
                        else:
                            for o in range(n_off):
                                off = offsets[o]
                                t, d = find_trip(
                                    t_lo, t_hi, i, l_ready[x] - off, trip_st_ptr, st_dep[o],
                                    st_board[o], active[o], fifo and row_fifo[o, p],
                                )  # fmt: skip
                                # Ties: the lower copy, first in the pattern's order.
                                if t >= 0 and d + off < best_d:
                                    best_t = t
                                    best_o = o
                                    best_d = d + off
                        if best_t >= 0:
                            w = l_walk[x]
                            c = l_co2[x] - pat_co2[p0 + i]
                            dominated = False
                            for r in range(n_rb):
                                dr = st_dep[rb_o[r], trip_st_ptr[rb_trip[r]] + i] + offsets[rb_o[r]]
                                # An equal departure dominates only from a trip copy that is
                                # first in the pattern's order (it arrives no later after).
                                if (
                                    _first(dr, rb_o[r], rb_trip[r], best_d, best_o, best_t)
                                    and rb_walk[r] <= w
                                    and rb_co2[r] // co2_step <= c // co2_step
                                ):
                                    dominated = True
                                    break
                            if not dominated:
                                m = 0
                                for r in range(n_rb):
                                    dr = (
                                        st_dep[rb_o[r], trip_st_ptr[rb_trip[r]] + i]
                                        + offsets[rb_o[r]]
                                    )
                                    if not (
                                        _first(best_d, best_o, best_t, dr, rb_o[r], rb_trip[r])
                                        and w <= rb_walk[r]
                                        and c // co2_step <= rb_co2[r] // co2_step
                                    ):
                                        rb_par[m] = rb_par[r]
                                        rb_trip[m] = rb_trip[r]
                                        rb_o[m] = rb_o[r]
                                        rb_board[m] = rb_board[r]
                                        rb_walk[m] = rb_walk[r]
                                        rb_co2[m] = rb_co2[r]
                                        m += 1
                                n_rb = m
                                if n_rb < _RB_CAP:
                                    rb_par[n_rb] = x
                                    rb_trip[n_rb] = best_t
                                    rb_o[n_rb] = best_o
                                    rb_board[n_rb] = i
                                    rb_walk[n_rb] = w
                                    rb_co2[n_rb] = c
                                    n_rb += 1
                        x = nxt[x]
                if fix_t >= 0 and n_rb > 0 and cont_ptr[fix_t] < cont_ptr[fix_t + 1]:
                    # Stay seated: each rider on this trip continues into the trips the
                    # vehicle runs next (kernels.seat_trigger's rules), as the same ride.
                    for r in range(n_rb):
                        n, n_new, n_mark = _seated_chain(
                            fix_t, rb_o[r], rb_board[r], rb_par[r], rb_walk[r],
                            rb_co2[r] + pat_co2[p0 + n_pos - 1], k, running, trip_pat,
                            pattern_stop_ptr, pattern_stops, trip_st_ptr, st_arr, st_dep,
                            st_alight, offsets, change_s, pat_co2, max_arrival, co2_step,
                            cont_ptr, cont_to, cont_kind, chain_seen, stack_t, stack_l,
                            stack_c, l_arr, l_ready, l_walk, l_co2, l_stop, l_round, l_kind,
                            l_parent, l_trip, l_board, l_alight, l_off, dead, nxt, head, n,
                            new_rides, n_new, marked, mark_list, n_mark, lb, egress, tb,
                            src_of, l_cls,
                        )  # fmt: skip
                        if n < 0:
                            return -1
        # One walk after each new ride label.
        n, n_mark = _walks(
            new_rides, n_new, k, slack, transfer_ptr, transfer_to, transfer_s, max_transfer_s,
            max_arrival, head, nxt, dead, l_arr, l_ready, l_walk, l_co2, l_stop, l_round, l_kind,
            l_parent, n, co2_step, marked, mark_list, n_mark, lb, egress, tb, l_cls, walk_cls,
        )  # fmt: skip
        if n < 0:
            return -1
    return n


class McResult:
    """The label pool of a McRAPTOR search."""

    def __init__(self, capacity: int, n_stops: int) -> None:
        self.arr = np.empty(capacity, dtype=np.int32)
        self.ready = np.empty(capacity, dtype=np.int32)
        self.walk = np.empty(capacity, dtype=np.int32)
        self.co2 = np.empty(capacity, dtype=np.int32)
        self.stop = np.empty(capacity, dtype=np.int32)
        self.round = np.empty(capacity, dtype=np.int32)
        self.kind = np.empty(capacity, dtype=np.int8)
        self.cls = np.empty(capacity, dtype=np.int32)  # dominance class (_insert)
        self.parent = np.empty(capacity, dtype=np.int32)
        self.trip = np.empty(capacity, dtype=np.int32)
        self.board = np.empty(capacity, dtype=np.int32)
        self.alight = np.empty(capacity, dtype=np.int32)
        self.off = np.empty(capacity, dtype=np.int32)
        self.dead = np.zeros(capacity, dtype=np.bool_)
        self.next = np.empty(capacity, dtype=np.int32)
        self.head = np.full(n_stops, -1, dtype=np.int32)
        self.n = 0
        self.departure = 0


def mc_raptor(
    network: RaptorNetwork,
    query: QueryArrays,
    departure: int,
    access_stops: npt.ArrayLike,
    access_s: npt.ArrayLike,
    egress_stops: npt.ArrayLike,
    egress_s: npt.ArrayLike | None = None,
    *,
    pattern_co2: npt.ArrayLike | None = None,
    max_arrival: int | None = None,
    co2_step: int = CO2_STEP_G,
    capacity: int = 1 << 15,
    prune: bool = True,
    lower_bound: npt.NDArray[np.int32] | None = None,
) -> list[Journey]:
    """Pareto-optimal journeys over (arrival, transfers, walking seconds), fastest first.

    ``pattern_co2`` (optional, e.g. :func:`routing.co2.pattern_co2_cumulative`): grams of CO2
    from each pattern's first stop to each position (one value per ``pattern_stops`` entry);
    given, CO2 is a fourth criterion and the set also keeps slower but cleaner journeys.
    ``co2_step`` (grams, :data:`CO2_STEP_G`) compares CO2 in steps of that size (floor of
    grams / step), so journeys a few grams cleaner do not multiply the set. ``max_arrival`` drops
    labels arriving later (bounds the search: with CO2 a whole day of ever later, ever cleaner
    journeys is otherwise Pareto-optimal).

    ``prune`` (the default): target pruning with lower bounds towards the targets
    (:mod:`routing.raptor.bounds`; ``lower_bound``, [S] as from
    :meth:`~routing.raptor.search.QueryArrays.lower_bounds` with these egress and access
    stops, when the caller has them already): a label is dropped once a journey found arrives
    strictly before the label could, with no more rides, walking or CO2 steps. The journeys
    returned are the same (#10: it cuts McRAPTOR's labels, not its answers).
    """
    if network.reversed:
        raise ValueError("McRAPTOR runs on the forward network")
    access = _as_targets(network.n_stops, access_stops, access_s)
    egress = _as_targets(network.n_stops, egress_stops, egress_s)
    n_ps = network.pattern_stops.shape[0]
    if pattern_co2 is None:
        co2 = np.zeros(n_ps, dtype=np.int32)
    else:
        co2 = np.ascontiguousarray(pattern_co2, dtype=np.int32)
        if co2.shape != (n_ps,):
            raise ValueError(f"pattern_co2 needs one value per pattern stop ({n_ps})")
    scan = query.scan_sets(network)
    if not prune or not (egress >= 0).any():
        lb = np.zeros(0, dtype=np.int32)
    elif lower_bound is not None:
        lb = np.ascontiguousarray(lower_bound, dtype=np.int32)
        if lb.shape != (network.n_stops,):
            raise ValueError(f"lower_bound needs one value per stop ({network.n_stops})")
    else:
        lb = query.lower_bounds(network, egress, access)
    if lb.shape[0] and not (lb[access >= 0] < BIG).any():
        return []  # no origin reaches a target
    # Target journeys found so far (see _target_prunes); tb[4, 0]: the latest arrival kept.
    tb_cap = 1024
    while True:
        tb = np.zeros((5, tb_cap + 1), dtype=np.int64)
        tb[4, 0] = BIG if max_arrival is None else int(max_arrival)
        res = McResult(capacity, network.n_stops)
        res.departure = int(departure)
        n = mc_kernel(
            network.pattern_stop_ptr, network.pattern_stops, network.pattern_trip_ptr,
            network.trip_st_ptr, query.st_arr, query.st_dep, query.st_board, query.st_alight,
            network.stop_pattern_ptr, network.stop_patterns, network.stop_pattern_pos,
            network.transfer_ptr, network.transfer_to, query.footpath_seconds(network),
            scan.active, scan.row_fifo, scan.odd_ptr, scan.odd_trip, scan.odd_copy,
            query.offsets, query.change_s, int(query.slack),
            int(query.max_transfer_s), bool(query.fifo), int(departure), access,
            int(query.max_rides), co2, BIG if max_arrival is None else int(max_arrival),
            max(1, int(co2_step)),
            res.arr, res.ready, res.walk, res.co2, res.stop, res.round, res.kind, res.parent, res.trip,
            res.board, res.alight, res.off, res.dead, res.next, res.head,
            query.active, network.trip_pattern, *network.continuation_arrays[:3], lb, egress, tb,
            *network.rule_arrays, res.cls, query.rule_seconds(network),
            network.rule_walk_stops if network.has_rules else np.zeros(0, dtype=np.bool_),
        )  # fmt: skip
        if n >= 0:
            res.n = n
            break
        capacity *= 4
    # Candidates at the targets: every live label plus its egress.
    # (arrival, rides, walk, co2, label, egress)
    cands: list[tuple[int, int, int, int, int, int]] = []
    for s in np.flatnonzero(egress >= 0).tolist():
        x = int(res.head[s])
        while x >= 0:
            e = int(egress[s])
            if not res.dead[x] and (max_arrival is None or int(res.arr[x]) + e <= max_arrival):
                cands.append(
                    (
                        int(res.arr[x]) + e,
                        int(res.round[x]),
                        int(res.walk[x]) + e,
                        int(res.co2[x]),
                        x,
                        e,
                    )
                )
            x = int(res.next[x])
    step = max(1, int(co2_step))
    pareto: list[tuple[int, int, int, int, int, int]] = []
    for c in sorted(cands):
        if not any(
            all(p[i] <= c[i] for i in range(3)) and p[3] // step <= c[3] // step for p in pareto
        ):
            pareto.append(c)
    return [_read(network, query, res, c[4], c[5]) for c in pareto]


def _read(
    network: RaptorNetwork, query: QueryArrays, res: McResult, label: int, egress_s: int
) -> Journey:
    legs: list[Leg] = []
    if egress_s > 0:
        t = int(res.arr[label])
        legs.append(WalkLeg(int(res.stop[label]), -1, t, t + egress_s))
    x = label
    while x >= 0:
        kind = int(res.kind[x])
        s = int(res.stop[x])
        par = int(res.parent[x])
        if kind == K_ACCESS:
            a = int(res.walk[x])
            if a > 0:
                legs.append(WalkLeg(-1, s, int(res.arr[x]) - a, int(res.arr[x])))
        elif kind == K_WALK:
            d = int(res.walk[x]) - int(res.walk[par])
            legs.append(WalkLeg(int(res.stop[par]), s, int(res.arr[x]) - d, int(res.arr[x])))
        else:
            trip = int(res.trip[x])
            o = int(res.off[x])
            off = int(query.offsets[o])
            st0 = int(network.trip_st_ptr[trip])
            bpos, apos = int(res.board[x]), int(res.alight[x])
            # SEATED: stayed on board from the ride before (a K_SEAT label), from its start.
            seated = bpos == SEATED
            bpos = 0 if seated else bpos
            p0 = int(network.pattern_stop_ptr[int(network.trip_pattern[trip])])
            legs.append(
                RideLeg(
                    trip=trip,
                    board_pos=bpos,
                    alight_pos=apos,
                    board_stop=int(network.pattern_stops[p0 + bpos]),
                    alight_stop=s,
                    departure=int(query.st_dep[o, st0 + bpos]) + off,
                    arrival=int(query.st_arr[o, st0 + apos]) + off,
                    day_offset=off,
                    stay_seated=seated,
                )
            )
        x = par
    legs.reverse()
    if not legs:
        t = res.departure
        s = int(res.stop[label])
        legs = [WalkLeg(s, s, t, t)]
    return Journey(tuple(_tighten(legs)))

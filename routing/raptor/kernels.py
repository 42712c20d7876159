"""Numba kernels of the RAPTOR family (Delling, Pajor & Werneck, 2012).

One forward kernel serves earliest-arrival, one-to-one (with target pruning), range
(rRAPTOR: state kept between runs of decreasing departure time) and — on the time-mirrored
network — latest-departure searches. Labels are stored per round so that journeys can be read
back without keeping the search graph.
"""

from __future__ import annotations

import numpy as np
from numba import njit

INF32 = 2**31 - 1
BIG = 2**30  # "no time": far from INF32 so adding seconds never overflows

# Sources of a boarding-ready label.
NONE = 0
ACCESS = 1
RIDE = 2  # stayed at the stop after a ride
WALK = 3
COPY = 4  # same label as the previous round
SEATED = -1  # r_board of a ride the rider stayed seated into (no boarding of its own)

# Continuation kinds (routing.raptor.network.CONT_*).
_CONT_IN_SEAT = 1
_CONT_NOT_SEATED = 2


@njit(cache=True, nogil=True)
def find_trip(
    t_lo: int,
    t_hi: int,
    pos: int,
    thr: int,
    trip_st_ptr: np.ndarray,
    st_dep: np.ndarray,
    st_board: np.ndarray,
    active: np.ndarray,
    fifo: bool,
) -> tuple[int, int]:
    """The earliest active trip of a pattern boardable at ``pos`` at or after ``thr``.

    Returns ``(trip, departure)`` or ``(-1, BIG)``. With FIFO times (the schedule) a binary
    search finds the first candidate; realtime times may overtake, so they are scanned fully.
    """
    if fifo:
        lo = t_lo
        hi = t_hi
        while lo < hi:
            mid = (lo + hi) >> 1
            if st_dep[trip_st_ptr[mid] + pos] < thr:
                lo = mid + 1
            else:
                hi = mid
        for t in range(lo, t_hi):
            st = trip_st_ptr[t] + pos
            if active[t] and st_board[st]:
                return t, st_dep[st]
        return -1, BIG
    best_t = -1
    best_d = BIG
    for t in range(t_lo, t_hi):
        st = trip_st_ptr[t] + pos
        d = st_dep[st]
        if d >= thr and d < best_d and active[t] and st_board[st]:
            best_t = t
            best_d = d
    return best_t, best_d


@njit(cache=True, nogil=True)
def mark(s: int, marked: np.ndarray, mark_list: np.ndarray, n_mark: int) -> int:
    """Mark stop ``s`` for the next round (once); returns the number of marked stops."""
    if not marked[s]:
        marked[s] = True
        mark_list[n_mark] = s
        n_mark += 1
    return n_mark


@njit(cache=True, nogil=True)
def queue_patterns(
    mark_list: np.ndarray,
    n_mark: int,
    marked: np.ndarray,
    stop_pattern_ptr: np.ndarray,
    stop_patterns: np.ndarray,
    stop_pattern_pos: np.ndarray,
    first_pos: np.ndarray,
    pat_queue: np.ndarray,
) -> int:
    """Queue the patterns through the marked stops (unmarking them) in ``pat_queue``, each from
    its earliest marked position (``first_pos``, ``BIG`` for the others); returns how many."""
    n_q = 0
    for i in range(n_mark):
        s = mark_list[i]
        marked[s] = False
        for e in range(stop_pattern_ptr[s], stop_pattern_ptr[s + 1]):
            p = stop_patterns[e]
            pos = stop_pattern_pos[e]
            if first_pos[p] == BIG:
                pat_queue[n_q] = p
                n_q += 1
            if pos < first_pos[p]:
                first_pos[p] = pos
    return n_q


@njit(cache=True, nogil=True)
def scan_pass(v: int, v_lo: int, odd_trip: np.ndarray, odd_copy: np.ndarray) -> tuple[int, int]:
    """What pass ``v`` of a pattern scan rides alone: ``(-1, 0)``, nothing, in pass
    ``v_lo - 1`` (the pattern's regular trip copies), else its odd copy ``(trip, copy)``."""
    if v < v_lo:
        return -1, 0
    return odd_trip[v], odd_copy[v]


@njit(cache=True, nogil=True)
def seat_trigger(
    t: int,
    o: int,
    bpos: int,
    k: int,
    running: np.ndarray,  # [O, T] every running trip copy
    trip_st_ptr: np.ndarray,
    st_arr: np.ndarray,  # [O, N]
    st_dep: np.ndarray,  # [O, N]
    cont_ptr: np.ndarray,
    cont_to: np.ndarray,
    cont_kind: np.ndarray,
    seat_of: np.ndarray,
    seat_round: np.ndarray,  # [O, C] earliest round each trip copy was stayed seated into
    seat_prev: np.ndarray,  # [K+1, O, C] the trip it was stayed seated into from
    seat_bpos: np.ndarray,  # [K+1, O, C] where that trip was boarded (SEATED: itself seated)
    sq_trip: np.ndarray,
    sq_copy: np.ndarray,
    n_sq: int,
) -> int:
    """Queue the trips a rider on trip copy ``(t, o)`` in round ``k`` stays seated into at its
    last stop (the same service day, leaving no earlier than ``t`` arrives), each trip copy
    once per search; returns the queue's length.

    Block candidates are in the vehicle's order: the first that runs is its next trip (a
    ``transfer_type=5`` one lets nobody stay on); in-seat rules (``4``) each count.
    """
    t_end = st_arr[o, trip_st_ptr[t + 1] - 1]
    block_done = False
    for e in range(cont_ptr[t], cont_ptr[t + 1]):
        u = cont_to[e]
        kind = cont_kind[e]
        if not running[o, u]:
            continue
        if kind != _CONT_IN_SEAT:
            if block_done:
                continue
            block_done = True
            if kind == _CONT_NOT_SEATED:
                continue
        if st_dep[o, trip_st_ptr[u]] < t_end:
            continue
        c = seat_of[u]
        if seat_round[o, c] <= k:
            continue
        seat_round[o, c] = k
        seat_prev[k, o, c] = t
        seat_bpos[k, o, c] = bpos
        sq_trip[n_sq] = u
        sq_copy[n_sq] = o
        n_sq += 1
    return n_sq


NO_BOARD = -100
""":func:`rule_board`: the boarding cannot be caught."""
HOW_LABEL = -1  # the stop's boarding-ready label of the round before
HOW_ACCESS = -2  # the origin's access
HOW_WALK0 = -3  # a walk from the origin (round 0)
HOW_WALK = -4  # a walk after a ride (the walk label of the round before)
HOW_SEATED = -5  # (src_how) the trip was stayed seated into


@njit(cache=True, nogil=True)
def rule_board(
    k: int,
    s: int,
    st: int,
    dd: int,
    n_off: int,
    departure: int,
    access_s: np.ndarray,
    wtau: np.ndarray,
    w_copy: np.ndarray,
    slack: int,
    change_s: np.ndarray,
    transfer_s: np.ndarray,
    max_transfer_s: int,
    board_limit: np.ndarray,
    trip_st_ptr: np.ndarray,
    st_arr: np.ndarray,
    st_alight: np.ndarray,
    offsets: np.ndarray,
    rx_flag: np.ndarray,
    rx_ptr: np.ndarray,
    rx_trip: np.ndarray,
    rx_pos: np.ndarray,
    rx_need: np.ndarray,
    rx_edge: np.ndarray,
    rule_s: np.ndarray,
    src_of: np.ndarray,
    src_bpos: np.ndarray,
) -> int:
    """How a rider with at most ``k - 1`` rides catches the governed boarding at stop time
    ``st`` (stop ``s``, leaving at ``dd``) in round ``k``: :data:`HOW_ACCESS`,
    :data:`HOW_WALK0`, :data:`HOW_WALK`, ``e * n_off + o`` (listed arrival ``e``, copy ``o``)
    or :data:`NO_BOARD`. A first ride leaves no later than ``board_limit[s]``. A boarding a
    rule between two stops may govern (``rx_flag`` 2) is not caught from the stop's walk
    label (which may come from a forbidden change): its list holds the walks."""
    first_ok = dd <= board_limit[s]
    if first_ok and access_s[s] >= 0 and departure + access_s[s] <= dd:
        return HOW_ACCESS
    if first_ok and wtau[0, s] <= dd:
        return HOW_WALK0
    if rx_flag[st] == 1:
        kk = k - 1
        while kk > 0 and w_copy[kk, s]:
            kk -= 1
        if kk > 0 and wtau[kk, s] + slack <= dd:
            return HOW_WALK
    ch = change_s[s]
    walks = rx_flag[st] == 2
    for e in range(rx_ptr[st], rx_ptr[st + 1]):
        # The change's time. At the same stop: the rule's (``rule_s``, already the rider's:
        # QueryArrays.rule_seconds) or the stop's change time; along a footpath (listed only
        # where ``rx_flag`` is 2, so other lists skip reading ``rx_edge``): the walk plus
        # slack, or the rule's time when longer (a rule time is the whole transfer, walk
        # included: routing.raptor.rules). Written out here: as a function called per listed
        # change (numba did not inline it) searches with dense rules ran ~5x slower.
        ni = rx_need[e]
        ed = rx_edge[e] if walks else -1
        if ed < 0:
            need = ch if ni < 0 else rule_s[ni]
        else:
            d = transfer_s[ed]
            if d > max_transfer_s:
                continue
            need = d + slack
            if ni >= 0 and rule_s[ni] > need:
                need = rule_s[ni]
        a_t = rx_trip[e]
        j = rx_pos[e]
        c = src_of[a_t]
        sa = trip_st_ptr[a_t] + j
        for o in range(n_off):
            if (
                src_bpos[k - 1, o, c] < j
                and st_alight[o, sa]
                and st_arr[o, sa] + offsets[o] + need <= dd
            ):
                return e * n_off + o
    return NO_BOARD


@njit(cache=True, nogil=True)
def raptor_pruned(
    # network
    pattern_stop_ptr: np.ndarray,
    pattern_stops: np.ndarray,
    pattern_trip_ptr: np.ndarray,
    trip_st_ptr: np.ndarray,
    st_arr: np.ndarray,  # [O, N]
    st_dep: np.ndarray,  # [O, N]
    st_board: np.ndarray,  # [O, N]
    st_alight: np.ndarray,  # [O, N]
    stop_pattern_ptr: np.ndarray,
    stop_patterns: np.ndarray,
    stop_pattern_pos: np.ndarray,
    transfer_ptr: np.ndarray,
    transfer_to: np.ndarray,
    transfer_s: np.ndarray,
    # query
    active: np.ndarray,  # [O, T] bool: the regular trip copies (odd ones excluded)
    row_fifo: np.ndarray,  # [O, P] bool: copy o of pattern p has its trips in FIFO order
    odd_ptr: np.ndarray,  # [P+1] CSR: odd trip copies of pattern p, ridden one by one
    odd_trip: np.ndarray,  # [M] their trips
    odd_copy: np.ndarray,  # [M] their copies
    offsets: np.ndarray,  # [O] int32 day shift of each trip copy
    change_s: np.ndarray,  # [S] time to change vehicles when staying at a stop
    slack: int,  # time to board after a walk from another stop
    max_transfer_s: int,
    fifo: bool,
    departure: int,
    access_s: np.ndarray,  # [S] access seconds, -1 where not an access stop
    egress_s: np.ndarray,  # [S] egress seconds, -1 where not an egress stop
    # state [K+1, S], kept between rRAPTOR runs
    rtau: np.ndarray,  # arrival by a ride
    r_trip: np.ndarray,
    r_board: np.ndarray,
    r_alight: np.ndarray,
    r_off: np.ndarray,
    r_copy: np.ndarray,
    wtau: np.ndarray,  # arrival on foot (access stop's footpath or after a ride)
    w_from: np.ndarray,
    w_copy: np.ndarray,
    ready: np.ndarray,  # earliest boarding
    ready_src: np.ndarray,  # ACCESS, RIDE (stay), WALK, COPY
    target_bound: np.ndarray,  # [K+1]
    lower_bound: np.ndarray,  # [S] time from each stop to a target at least (0: no pruning)
    board_limit: np.ndarray,  # [S] latest first boarding from a walk-only label (BIG: none)
    # stay-seated continuations (routing.raptor.network.RaptorNetwork.continuation_arrays)
    running: np.ndarray,  # [O, T] every running trip copy (regular and odd)
    trip_pat: np.ndarray,  # [T] pattern of each trip
    cont_ptr: np.ndarray,  # [T+1] CSR, all zero without continuations
    cont_to: np.ndarray,
    cont_kind: np.ndarray,
    seat_of: np.ndarray,  # [T] index of a continuation target, -1 elsewhere
    seat_round: np.ndarray,  # [O, C] state kept between rRAPTOR runs (BIG: never)
    seat_prev: np.ndarray,  # [K+1, O, C]
    seat_bpos: np.ndarray,  # [K+1, O, C]
    # trip/route transfer rules (routing.raptor.network.RaptorNetwork.rule_arrays)
    rx_flag: np.ndarray,  # [N] int8, empty without rules
    rx_ptr: np.ndarray,  # [N+1] CSR
    rx_trip: np.ndarray,
    rx_pos: np.ndarray,
    rx_need: np.ndarray,
    rx_edge: np.ndarray,
    src_of: np.ndarray,  # [T] index of a trip changed from under a rule, -1 elsewhere
    src_bpos: np.ndarray,  # [K+1, O, Cs] earliest boarding position (BIG: not ridden)
    src_how: np.ndarray,  # [K+1, O, Cs] how that boarding was reached (see rule_board)
    r_how: np.ndarray,  # [K+1, S] how each ride label's boarding was reached
    seat_how: np.ndarray,  # [K+1, O, C] how the first ride of a seated chain was boarded
    rule_s: np.ndarray,  # the rules' seconds for this rider (QueryArrays.rule_seconds)
    mark0: np.ndarray,  # [S] bool: the round-0 labels that start round 1 (empty: all)
) -> int:
    """Run RAPTOR rounds from ``departure``; returns the last round that found something.

    Round ``k`` holds labels with at most ``k`` rides: each round starts from a copy of the
    previous one (which keeps rRAPTOR's reuse of state between runs correct). Three labels
    per stop: arrival by a ride (for footpaths and targets), arrival on foot (targets) and the
    boarding-ready time (the ride arrival plus the stop's change time, or the walk arrival
    plus ``slack``). A footpath follows only a ride (or the access), as in RAPTOR; arrivals
    that cannot beat the best target arrival are pruned, and so is every label whose time plus
    its stop's ``lower_bound`` (:mod:`routing.raptor.bounds`) cannot beat it (goal direction).
    A first ride (boarded from a label that no ride made) leaves stop ``s`` no later than
    ``board_limit[s]``: range queries keep every journey's departure inside their window.
    Where a limit holds, the origin's labels (round 0) are not copied into round 1: rounds
    1..K hold arrivals after a ride only, boarded at any time, so a journey that comes back
    to a stop the origin walks to (or the origin) still boards there after the window; the
    scan takes the earlier of the two labels that may board the trip. ``mark0`` (rRAPTOR's runs,
    :func:`range_runs`): round 1 starts from these origin labels only (empty: from all).

    A pattern scan rides the earliest catchable copy among the pattern's regular trip copies
    (``active``: one FIFO chain with the same boarding/alighting stops), then each of its odd
    copies (``odd_*``) alone, so a copy that serves a stop the earlier ones skip is not missed.

    Stay-seated continuations (``block_id``, transfers.txt types 4/5): a trip with candidates
    is always an odd copy (ridden alone, so each one a rider can catch is ridden, whatever the
    earlier trips of its pattern do). A rider on it in round ``k`` stays on board into the
    trip it continues as (:func:`seat_trigger`), in the same round — no ride counted, no
    change time — and that trip is scanned from its first stop after the round's patterns
    (``r_board`` = ``SEATED``), its own continuations likewise. A trip copy is stayed seated
    into once per search, in the first round that reaches it (later rounds only repeat it).

    Trip/route transfer rules (``rx_*``): a trip whose boarding a rule may govern, and a trip
    a rider may change from there, is an odd copy (ridden alone). The second keeps a label of
    its own per trip copy (``src_bpos``: boarded at that position within ``k`` rides); a
    governed boarding is caught from an origin label, a walk, or one of the listed arrivals
    (at the stop, or a footpath away) with its own time (:func:`rule_board`), never from the
    stop's ride label, which may come from an arrival the rule forbids or delays, nor — where
    a rule between two stops may govern it — from the stop's walk label. ``r_how`` /
    ``src_how`` say which, for the read-back.
    """
    n_rounds = rtau.shape[0]
    has_rules = rx_flag.shape[0] > 0
    n_stops = rtau.shape[1]
    n_pat = pattern_trip_ptr.shape[0] - 1
    n_off = offsets.shape[0]

    marked = np.zeros(n_stops, dtype=np.bool_)
    # Stops whose labels this run changed: only they can break "round k no later than round
    # k-1" (labels left by earlier rRAPTOR runs already keep it), so only they are copied
    # from round to round, not every stop of a large network.
    touched = np.zeros(n_stops, dtype=np.bool_)
    touch_list = np.empty(n_stops, dtype=np.int32)
    n_touch = 0
    mark_list = np.empty(n_stops, dtype=np.int32)
    n_mark = 0
    in_ride = np.zeros(n_stops, dtype=np.bool_)
    ride_list = np.empty(n_stops, dtype=np.int32)
    first_pos = np.full(n_pat, BIG, dtype=np.int32)
    pat_queue = np.empty(n_pat, dtype=np.int32)
    sq_cap = max(1, n_off * seat_round.shape[1])
    sq_trip = np.empty(sq_cap, dtype=np.int32)
    sq_copy = np.empty(sq_cap, dtype=np.int32)

    # --- round 0: access, then one footpath from each access stop ------------------------------
    for s in range(n_stops):
        if access_s[s] < 0:
            continue
        c = departure + access_s[s]
        if c < ready[0, s] and c + lower_bound[s] < target_bound[0]:
            ready[0, s] = c
            ready_src[0, s] = ACCESS
            n_touch = mark(s, touched, touch_list, n_touch)
            if mark0.shape[0] == 0 or mark0[s]:
                n_mark = mark(s, marked, mark_list, n_mark)
        if egress_s[s] >= 0 and c + egress_s[s] < target_bound[0]:
            target_bound[0] = c + egress_s[s]
    for s in range(n_stops):
        if access_s[s] < 0:
            continue
        a = departure + access_s[s]
        for e in range(transfer_ptr[s], transfer_ptr[s + 1]):
            d = transfer_s[e]
            if d > max_transfer_s:
                continue
            t = transfer_to[e]
            c = a + d
            if c < wtau[0, t] and c + lower_bound[t] < target_bound[0]:
                wtau[0, t] = c
                n_touch = mark(t, touched, touch_list, n_touch)
                w_from[0, t] = s
                w_copy[0, t] = False
                if egress_s[t] >= 0 and c + egress_s[t] < target_bound[0]:
                    target_bound[0] = c + egress_s[t]
                if c < ready[0, t]:
                    ready[0, t] = c  # no vehicle change before the first ride
                    ready_src[0, t] = WALK
                    if mark0.shape[0] == 0 or mark0[t]:
                        n_mark = mark(t, marked, mark_list, n_mark)

    rounds_done = 0
    for k in range(1, n_rounds):
        # Round k starts from round k-1: "at most k rides".
        for i in range(n_touch):
            s = touch_list[i]
            if rtau[k - 1, s] < rtau[k, s]:
                rtau[k, s] = rtau[k - 1, s]
                r_copy[k, s] = True
            if k == 1 and board_limit[s] < BIG:
                # A range query's origin label (round 0: access or its footpath, boarded by the
                # window's end) stays in round 0: copied on, it would hide a later arrival here
                # after a ride, boarded at any time (a journey that comes back to board after
                # the window). The scan and rule_board read it from round 0.
                continue
            if wtau[k - 1, s] < wtau[k, s]:
                wtau[k, s] = wtau[k - 1, s]
                w_copy[k, s] = True
            if ready[k - 1, s] < ready[k, s]:
                ready[k, s] = ready[k - 1, s]
                ready_src[k, s] = COPY
        if target_bound[k - 1] < target_bound[k]:
            target_bound[k] = target_bound[k - 1]
        if has_rules:
            for o in range(n_off):
                for c in range(src_bpos.shape[2]):
                    if src_bpos[k - 1, o, c] < src_bpos[k, o, c]:
                        src_bpos[k, o, c] = src_bpos[k - 1, o, c]
                        src_how[k, o, c] = src_how[k - 1, o, c]
        if n_mark == 0:
            continue
        rounds_done = k

        # Queue the patterns through marked stops, from their earliest marked position.
        n_q = queue_patterns(
            mark_list, n_mark, marked, stop_pattern_ptr, stop_patterns, stop_pattern_pos,
            first_pos, pat_queue,
        )  # fmt: skip
        n_mark = 0

        # --- scan patterns ------------------------------------------------------------------
        n_ride = 0
        n_sq = 0
        bound = target_bound[k]
        for q in range(n_q):
            p = pat_queue[q]
            start = first_pos[p]
            first_pos[p] = BIG
            p0 = pattern_stop_ptr[p]
            n_pos = pattern_stop_ptr[p + 1] - p0
            t_lo = pattern_trip_ptr[p]
            t_hi = pattern_trip_ptr[p + 1]
            v_lo = odd_ptr[p]
            # Pass v_lo - 1 rides the pattern's regular trip copies (one FIFO order, the same
            # boarding/alighting stops), switching to an earlier one wherever it can be caught;
            # each further pass rides one odd trip copy alone, as if it were a pattern of its
            # own (a realtime skip, a trip that lets nobody off where the others do, a delay
            # that overtakes): the earliest regular trip may not serve a stop it serves.
            for v in range(v_lo - 1, odd_ptr[p + 1]):
                fix_t, fix_o = scan_pass(v, v_lo, odd_trip, odd_copy)
                cur = -1
                cur_o = 0
                cur_off = 0
                cur_board = -1
                cur_how = -1
                for i in range(start, n_pos):
                    s = pattern_stops[p0 + i]
                    if cur >= 0:
                        st = trip_st_ptr[cur] + i
                        if st_alight[cur_o, st]:
                            a = st_arr[cur_o, st] + cur_off
                            if a < rtau[k, s] and a + lower_bound[s] < bound:
                                rtau[k, s] = a
                                n_touch = mark(s, touched, touch_list, n_touch)
                                r_trip[k, s] = cur
                                r_board[k, s] = cur_board
                                r_alight[k, s] = i
                                r_off[k, s] = cur_o
                                r_copy[k, s] = False
                                if has_rules:
                                    r_how[k, s] = cur_how
                                if not in_ride[s]:
                                    in_ride[s] = True
                                    ride_list[n_ride] = s
                                    n_ride += 1
                                if egress_s[s] >= 0 and a + egress_s[s] < bound:
                                    bound = a + egress_s[s]
                                r = a + change_s[s]
                                if r < ready[k, s]:
                                    ready[k, s] = r
                                    ready_src[k, s] = RIDE
                                    n_mark = mark(s, marked, mark_list, n_mark)
                    if has_rules and fix_t >= 0 and cur < 0 and i < n_pos - 1:
                        st = trip_st_ptr[fix_t] + i
                        if rx_flag[st]:
                            # A governed boarding: its own candidates, not the stop's label.
                            if st_board[fix_o, st]:
                                dd = st_dep[fix_o, st] + offsets[fix_o]
                                if dd + lower_bound[s] < bound:
                                    how = rule_board(
                                        k, s, st, dd, n_off, departure, access_s, wtau, w_copy,
                                        slack, change_s, transfer_s, max_transfer_s,
                                        board_limit, trip_st_ptr, st_arr, st_alight, offsets,
                                        rx_flag, rx_ptr, rx_trip, rx_pos, rx_need, rx_edge,
                                        rule_s, src_of, src_bpos,
                                    )  # fmt: skip
                                    if how != NO_BOARD:
                                        cur = fix_t
                                        cur_o = fix_o
                                        cur_off = offsets[fix_o]
                                        cur_board = i
                                        cur_how = how
                            continue
                    r = ready[k - 1, s]
                    # Two labels where a range query's first ride may board: the origin's
                    # (round 0), boarded by ``lim``, and a later one after a ride (rounds
                    # 1..k-1, never a copy of round 0), boarded at any time from ``r_late``.
                    lim = BIG
                    r_late = BIG
                    if board_limit[s] < BIG:
                        lim = board_limit[s]
                        if k > 1 and ready[0, s] <= r:
                            r_late = r
                            r = ready[0, s]
                        elif k > 1:
                            lim = BIG  # the ride's label is the earlier: no limit
                    if r >= BIG or r + lower_bound[s] >= bound:
                        continue
                    if fix_t >= 0:
                        # One trip copy: board it at the first stop where it can be caught
                        # (boarding it later arrives no earlier), not at its last (where it
                        # goes nowhere: staying seated from there would be a ride of no
                        # stops).
                        if cur < 0 and i < n_pos - 1:
                            st = trip_st_ptr[fix_t] + i
                            dd = st_dep[fix_o, st] + offsets[fix_o]
                            if st_board[fix_o, st] and r <= dd and (dd <= lim or r_late <= dd):
                                cur = fix_t
                                cur_o = fix_o
                                cur_off = offsets[fix_o]
                                cur_board = i
                        continue
                    cur_d = BIG
                    if cur >= 0:
                        cur_d = st_dep[cur_o, trip_st_ptr[cur] + i] + cur_off
                        if r > cur_d:
                            continue
                    for o in range(n_off):
                        off = offsets[o]
                        if fifo and row_fifo[o, p] and t_hi > t_lo:
                            # Trips of a FIFO copy never overtake: its last trip's departure
                            # here bounds every one from above, its first from below. A copy
                            # whose trips have all left, or none of which leaves before the
                            # trip ridden, needs no binary search (the day before and the day
                            # after, at most stops of a daytime query).
                            if st_dep[o, trip_st_ptr[t_hi - 1] + i] + off < r:
                                continue
                            if cur >= 0 and st_dep[o, trip_st_ptr[t_lo] + i] + off > cur_d:
                                continue
                        t, d = find_trip(
                            t_lo, t_hi, i, r - off, trip_st_ptr, st_dep[o], st_board[o],
                            active[o], fifo and row_fifo[o, p],
                        )  # fmt: skip
                        if t < 0:
                            continue
                        d += off
                        if d > lim:
                            # Leaves after the window: a first ride may not take it, a ride
                            # from the later label may, or the first trip that label catches.
                            if r_late >= BIG:
                                continue
                            if d < r_late:
                                t, d = find_trip(
                                    t_lo, t_hi, i, r_late - off, trip_st_ptr, st_dep[o],
                                    st_board[o], active[o], fifo and row_fifo[o, p],
                                )  # fmt: skip
                                if t < 0:
                                    continue
                                d += off
                        # A tie goes to the copy first in the pattern's order (a lower trip of
                        # the same copy: FIFO, it arrives no later further on).
                        if (
                            cur < 0
                            or d < cur_d
                            or (d == cur_d and (o < cur_o or (o == cur_o and t < cur)))
                        ):
                            cur = t
                            cur_o = o
                            cur_off = off
                            cur_board = i
                            cur_d = d
                if has_rules and fix_t >= 0 and cur >= 0 and src_of[fix_t] >= 0:
                    c = src_of[fix_t]
                    if cur_board < src_bpos[k, fix_o, c]:
                        src_bpos[k, fix_o, c] = cur_board
                        src_how[k, fix_o, c] = cur_how
                if fix_t >= 0 and cur >= 0 and cont_ptr[fix_t] < cont_ptr[fix_t + 1]:
                    n_sq0 = n_sq
                    n_sq = seat_trigger(
                        fix_t, fix_o, cur_board, k, running, trip_st_ptr, st_arr, st_dep,
                        cont_ptr, cont_to, cont_kind, seat_of, seat_round, seat_prev, seat_bpos,
                        sq_trip, sq_copy, n_sq,
                    )  # fmt: skip
                    if has_rules:
                        for qq in range(n_sq0, n_sq):
                            seat_how[k, sq_copy[qq], seat_of[sq_trip[qq]]] = cur_how

        # --- stay seated: ride the queued continuations from their first stop ---------------
        qi = 0
        while qi < n_sq:
            u = sq_trip[qi]
            uo = sq_copy[qi]
            qi += 1
            p = trip_pat[u]
            p0 = pattern_stop_ptr[p]
            n_pos = pattern_stop_ptr[p + 1] - p0
            u_off = offsets[uo]
            st0 = trip_st_ptr[u]
            # Not off at its first stop: the ride there is the deadhead of the trip before
            # (and the mirror of "no boarding at a trip's last stop", so arrive-by agrees).
            for i in range(1, n_pos):
                if not st_alight[uo, st0 + i]:
                    continue
                s = pattern_stops[p0 + i]
                a = st_arr[uo, st0 + i] + u_off
                if a < rtau[k, s] and a + lower_bound[s] < bound:
                    rtau[k, s] = a
                    n_touch = mark(s, touched, touch_list, n_touch)
                    r_trip[k, s] = u
                    r_board[k, s] = SEATED
                    r_alight[k, s] = i
                    r_off[k, s] = uo
                    r_copy[k, s] = False
                    if not in_ride[s]:
                        in_ride[s] = True
                        ride_list[n_ride] = s
                        n_ride += 1
                    if egress_s[s] >= 0 and a + egress_s[s] < bound:
                        bound = a + egress_s[s]
                    r = a + change_s[s]
                    if r < ready[k, s]:
                        ready[k, s] = r
                        ready_src[k, s] = RIDE
                        n_mark = mark(s, marked, mark_list, n_mark)
            if has_rules and src_of[u] >= 0 and src_bpos[k, uo, src_of[u]] > 0:
                src_bpos[k, uo, src_of[u]] = 0
                src_how[k, uo, src_of[u]] = HOW_SEATED
            if cont_ptr[u] < cont_ptr[u + 1]:
                n_sq = seat_trigger(
                    u, uo, SEATED, k, running, trip_st_ptr, st_arr, st_dep, cont_ptr, cont_to,
                    cont_kind, seat_of, seat_round, seat_prev, seat_bpos, sq_trip, sq_copy, n_sq,
                )  # fmt: skip

        # --- one footpath after the rides ---------------------------------------------------
        for i in range(n_ride):
            s = ride_list[i]
            in_ride[s] = False
            a = rtau[k, s]
            for e in range(transfer_ptr[s], transfer_ptr[s + 1]):
                d = transfer_s[e]
                if d > max_transfer_s:
                    continue
                t = transfer_to[e]
                c = a + d
                if c < wtau[k, t] and c + lower_bound[t] < bound:
                    wtau[k, t] = c
                    n_touch = mark(t, touched, touch_list, n_touch)
                    w_from[k, t] = s
                    w_copy[k, t] = False
                    if egress_s[t] >= 0 and c + egress_s[t] < bound:
                        bound = c + egress_s[t]
                    if c + slack < ready[k, t]:
                        ready[k, t] = c + slack
                        ready_src[k, t] = WALK
                        n_mark = mark(t, marked, mark_list, n_mark)
        target_bound[k] = bound
    for i in range(n_mark):
        marked[mark_list[i]] = False
    return rounds_done


@njit(cache=True, nogil=True)
def raptor(
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
    departure: int,
    access_s: np.ndarray,
    egress_s: np.ndarray,
    rtau: np.ndarray,
    r_trip: np.ndarray,
    r_board: np.ndarray,
    r_alight: np.ndarray,
    r_off: np.ndarray,
    r_copy: np.ndarray,
    wtau: np.ndarray,
    w_from: np.ndarray,
    w_copy: np.ndarray,
    ready: np.ndarray,
    ready_src: np.ndarray,
    target_bound: np.ndarray,
) -> int:
    """:func:`raptor_pruned` without goal-directed pruning or stay-seated continuations (the
    entry point other kernels call, e.g. one-to-all searches)."""
    return raptor_pruned(
        pattern_stop_ptr, pattern_stops, pattern_trip_ptr, trip_st_ptr, st_arr, st_dep,
        st_board, st_alight, stop_pattern_ptr, stop_patterns, stop_pattern_pos, transfer_ptr,
        transfer_to, transfer_s, active, row_fifo, odd_ptr, odd_trip, odd_copy, offsets,
        change_s, slack, max_transfer_s, fifo, departure, access_s, egress_s, rtau, r_trip,
        r_board, r_alight, r_off, r_copy, wtau, w_from, w_copy, ready, ready_src, target_bound,
        np.zeros(rtau.shape[1], dtype=np.int32), np.full(rtau.shape[1], BIG, dtype=np.int32),
        active, np.zeros(trip_st_ptr.shape[0] - 1, dtype=np.int32),
        np.zeros(trip_st_ptr.shape[0], dtype=np.int32), np.zeros(0, dtype=np.int32),
        np.zeros(0, dtype=np.int8), np.full(trip_st_ptr.shape[0] - 1, -1, dtype=np.int32),
        np.full((offsets.shape[0], 0), BIG, dtype=np.int32),
        np.zeros((rtau.shape[0], offsets.shape[0], 0), dtype=np.int32),
        np.zeros((rtau.shape[0], offsets.shape[0], 0), dtype=np.int32),
        np.zeros(0, dtype=np.int8), np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32),
        np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32),
        np.full(trip_st_ptr.shape[0] - 1, -1, dtype=np.int32),
        np.zeros((rtau.shape[0], offsets.shape[0], 0), dtype=np.int32),
        np.zeros((rtau.shape[0], offsets.shape[0], 0), dtype=np.int32),
        np.zeros((1, 1), dtype=np.int32),
        np.zeros((rtau.shape[0], offsets.shape[0], 0), dtype=np.int32),
        np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.bool_),
    )  # fmt: skip


@njit(cache=True, nogil=True)
def pareto_rounds(
    rtau: np.ndarray,  # [K+1, S]
    wtau: np.ndarray,  # [K+1, S]
    access_s: np.ndarray,  # [S], -1 where not an access stop
    departure: int,
    egress_s: np.ndarray,  # [S], -1 where not a target
    targets: np.ndarray,  # the stops with egress_s >= 0
    seen: np.ndarray,  # [K+1] int64, updated; BIG everywhere when not an rRAPTOR search
) -> np.ndarray:
    """[(round, target)] of the journeys to read back: per round, the best target arrival
    (egress included) when it beats every round with fewer rides and that round's ``seen``."""
    n_rounds = rtau.shape[0]
    out = np.empty((n_rounds, 2), dtype=np.int64)
    n = 0
    prev = BIG
    for k in range(n_rounds):
        best = BIG
        best_s = -1
        for s in targets:
            a = min(rtau[k, s], wtau[k, s])
            if access_s[s] >= 0:
                a = min(a, departure + access_s[s])
            v = a + egress_s[s]
            if v < best:
                best = v
                best_s = s
        if best >= BIG or best >= prev:
            continue
        prev = best
        if best >= seen[k]:
            continue
        seen[k] = best
        out[n, 0] = k
        out[n, 1] = best_s
        n += 1
    return out[:n]


@njit(cache=True, nogil=True)
def range_runs(
    deps: np.ndarray,  # [R] int64 origin departures, latest first (repeated: one per stop)
    dep_stops: np.ndarray,  # [R] the stop each boards at (departures_in_window)
    i0: int,
    max_travel_s: int,
    seen: np.ndarray,  # [K+1] int64, pareto_rounds' memory of the earlier runs
    targets: np.ndarray,  # the stops with egress_s >= 0
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
    access_s: np.ndarray,
    egress_s: np.ndarray,
    rtau: np.ndarray,
    r_trip: np.ndarray,
    r_board: np.ndarray,
    r_alight: np.ndarray,
    r_off: np.ndarray,
    r_copy: np.ndarray,
    wtau: np.ndarray,
    w_from: np.ndarray,
    w_copy: np.ndarray,
    ready: np.ndarray,
    ready_src: np.ndarray,
    target_bound: np.ndarray,
    lower_bound: np.ndarray,
    board_limit: np.ndarray,
    running: np.ndarray,
    trip_pat: np.ndarray,
    cont_ptr: np.ndarray,
    cont_to: np.ndarray,
    cont_kind: np.ndarray,
    seat_of: np.ndarray,
    seat_round: np.ndarray,
    seat_prev: np.ndarray,
    seat_bpos: np.ndarray,
    rx_flag: np.ndarray,
    rx_ptr: np.ndarray,
    rx_trip: np.ndarray,
    rx_pos: np.ndarray,
    rx_need: np.ndarray,
    rx_edge: np.ndarray,
    src_of: np.ndarray,
    src_bpos: np.ndarray,
    src_how: np.ndarray,
    r_how: np.ndarray,
    seat_how: np.ndarray,
    rule_s: np.ndarray,
    mark0: np.ndarray,  # [S] bool scratch, all False
) -> tuple[int, np.ndarray]:
    """rRAPTOR's runs (:func:`raptor_pruned`, labels shared) from ``deps[i0]`` on, until one
    finds journeys to read back: returns the index after it and its picks
    (:func:`pareto_rounds`), else ``len(deps)`` and none. The runs that find nothing new (most
    of a range query's) cost no call from Python each: the numba call of ~60 arguments and its
    wrapper were a fixed cost per run that outweighed a small network's scan."""
    i = i0
    while i < deps.shape[0]:
        departure = deps[i]
        # Round 1 starts only at the stops where a trip leaves at this departure: at any other
        # the first trip catchable by the window's end is the one the later run caught (no
        # departure in between), whose labels are kept.
        j = i
        while j < deps.shape[0] and deps[j] == departure:
            mark0[dep_stops[j]] = True
            j += 1
        if max_travel_s > 0:
            # Nothing arriving later can count (runs go to earlier departures: only tightens).
            cap = departure + max_travel_s + 1
            for k in range(target_bound.shape[0]):
                if cap < target_bound[k]:
                    target_bound[k] = cap
        raptor_pruned(
            pattern_stop_ptr, pattern_stops, pattern_trip_ptr, trip_st_ptr, st_arr, st_dep,
            st_board, st_alight, stop_pattern_ptr, stop_patterns, stop_pattern_pos, transfer_ptr,
            transfer_to, transfer_s, active, row_fifo, odd_ptr, odd_trip, odd_copy, offsets,
            change_s, slack, max_transfer_s, fifo, departure, access_s, egress_s, rtau, r_trip,
            r_board, r_alight, r_off, r_copy, wtau, w_from, w_copy, ready, ready_src, target_bound,
            lower_bound, board_limit, running, trip_pat, cont_ptr, cont_to, cont_kind, seat_of,
            seat_round, seat_prev, seat_bpos, rx_flag, rx_ptr, rx_trip, rx_pos, rx_need, rx_edge,
            src_of, src_bpos, src_how, r_how, seat_how, rule_s, mark0,
        )  # fmt: skip
        for jj in range(i, j):
            mark0[dep_stops[jj]] = False
        i = j
        picks = pareto_rounds(rtau, wtau, access_s, departure, egress_s, targets, seen)
        if picks.shape[0] > 0:
            return i, picks
    return deps.shape[0], np.zeros((0, 2), dtype=np.int64)


@njit(cache=True, nogil=True)
def departures_in_window(
    pattern_trip_ptr: np.ndarray,
    trip_st_ptr: np.ndarray,
    st_dep: np.ndarray,  # [O, N]
    st_board: np.ndarray,  # [O, N]
    stop_pattern_ptr: np.ndarray,
    stop_patterns: np.ndarray,
    stop_pattern_pos: np.ndarray,
    active: np.ndarray,
    offsets: np.ndarray,
    access_s: np.ndarray,  # [S], -1 where not an access stop
    t0: int,
    t1: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Every origin departure time in ``[t0, t1]`` that catches a trip at an access stop, and
    that stop (one entry per trip)."""
    out = []
    at = []
    for s in range(access_s.shape[0]):
        if access_s[s] < 0:
            continue
        for e in range(stop_pattern_ptr[s], stop_pattern_ptr[s + 1]):
            p = stop_patterns[e]
            pos = stop_pattern_pos[e]
            for o in range(offsets.shape[0]):
                act = active[o]
                off = offsets[o]
                dep_o = st_dep[o]
                board_o = st_board[o]
                for t in range(pattern_trip_ptr[p], pattern_trip_ptr[p + 1]):
                    st = trip_st_ptr[t] + pos
                    dep = dep_o[st] + off - access_s[s]
                    if t0 <= dep <= t1 and act[t] and board_o[st]:
                        out.append(dep)
                        at.append(s)
    if len(out) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.array(out, dtype=np.int64), np.array(at, dtype=np.int64)


@njit(cache=True, nogil=True)
def _follows(
    a_o: int,
    a_t: int,
    b_o: int,
    b_t: int,
    n_pos: int,
    trip_st_ptr: np.ndarray,
    st_arr: np.ndarray,
    st_dep: np.ndarray,
    offsets: np.ndarray,
) -> bool:
    """Whether trip copy ``b`` may follow ``a`` in a pattern's regular order: no earlier at any
    stop; within one copy, a later trip (the binary search's order); across copies, strictly
    later everywhere (a tie between copies would leave the scan's pick to the copy index,
    which mirrors differently in the arrive-by frame)."""
    sa = trip_st_ptr[a_t]
    sb = trip_st_ptr[b_t]
    oa = offsets[a_o]
    ob = offsets[b_o]
    same = a_o == b_o
    if same and b_t < a_t:
        return False
    for i in range(n_pos):
        da = st_dep[a_o, sa + i] + oa
        db = st_dep[b_o, sb + i] + ob
        aa = st_arr[a_o, sa + i] + oa
        ab = st_arr[b_o, sb + i] + ob
        if db < da or ab < aa:
            return False
        if not same and (db == da or ab == aa):
            return False
    return True


@njit(cache=True, nogil=True)
def split_odd_copies(
    patterns: np.ndarray,  # the patterns to (re)order
    pattern_trip_ptr: np.ndarray,
    trip_st_ptr: np.ndarray,
    st_arr: np.ndarray,  # [O, N]
    st_dep: np.ndarray,  # [O, N]
    offsets: np.ndarray,  # [O]
    active: np.ndarray,  # [O, T] copies that take part
    modified: np.ndarray,  # [O, T] realtime-changed copies (preferred as the odd ones)
    odd: np.ndarray,  # [O, T] in: copies already odd (masks); out: plus the overtaking ones
    check_rows: np.ndarray,  # [O] bool: copies whose trip order row_fifo must (re)check
    sched_sorted: np.ndarray,  # [P] bool: the schedule's trips are known FIFO (else all False)
    row_fifo: np.ndarray,  # [O, P] out for the checked rows
) -> None:
    """Mark odd the trip copies that break a pattern's single FIFO order, and tell which copies
    of the pattern keep their trips sorted (where a binary search may find trips).

    The regular copies of a pattern — every copy of every trip, shifted by its day — must
    form one chain where each is no earlier than the one before at every stop, for a scan
    riding the earliest catchable copy to be exact. One pass over the copies sorted by first
    departure keeps the chain as a stack: a copy that cannot follow the top makes one of the
    two odd — the top when only the top is realtime-modified (and then the copy is tried
    against the new top), else the copy itself. Two unmodified copies of one day in trip order
    follow each other without a look at their times where the schedule is known FIFO
    (``sched_sorted``): only realtime trips and day boundaries cost a comparison.
    """
    n_off = offsets.shape[0]
    for p in patterns:
        t_lo = pattern_trip_ptr[p]
        t_hi = pattern_trip_ptr[p + 1]
        n_t = t_hi - t_lo
        if n_t == 0:
            continue
        n_pos = trip_st_ptr[t_lo + 1] - trip_st_ptr[t_lo]
        for o in range(n_off):
            if not check_rows[o]:
                continue
            ok = True
            for t in range(t_lo + 1, t_hi):
                sa = trip_st_ptr[t - 1]
                sb = trip_st_ptr[t]
                for i in range(n_pos):
                    if (
                        st_arr[o, sb + i] < st_arr[o, sa + i]
                        or st_dep[o, sb + i] < st_dep[o, sa + i]
                    ):
                        ok = False
                        break
                if not ok:
                    break
            row_fifo[o, p] = ok
        m = n_off * n_t
        keys = np.empty(m, dtype=np.int64)
        it_o = np.empty(m, dtype=np.int64)
        it_t = np.empty(m, dtype=np.int64)
        n = 0
        for o in range(n_off):
            for t in range(t_lo, t_hi):
                if active[o, t] and not odd[o, t]:
                    d0 = np.int64(st_dep[o, trip_st_ptr[t]] + offsets[o]) + 4 * 86_400
                    keys[n] = d0 * m + o * n_t + (t - t_lo)
                    it_o[n] = o
                    it_t[n] = t
                    n += 1
        stack = np.empty(n, dtype=np.int64)
        top = -1
        for j in np.argsort(keys[:n]):
            o = it_o[j]
            t = it_t[j]
            while True:
                if top < 0:
                    top += 1
                    stack[top] = j
                    break
                k = stack[top]
                ko = it_o[k]
                kt = it_t[k]
                if (
                    ko == o
                    and kt < t
                    and sched_sorted[p]
                    and not modified[o, t]
                    and not modified[ko, kt]
                ) or _follows(ko, kt, o, t, n_pos, trip_st_ptr, st_arr, st_dep, offsets):
                    top += 1
                    stack[top] = j
                    break
                if modified[it_o[k], it_t[k]] and not modified[o, t]:
                    odd[it_o[k], it_t[k]] = True
                    top -= 1
                else:
                    odd[o, t] = True
                    break


@njit(cache=True, nogil=True)
def changed_trips(
    trip_st_ptr: np.ndarray,
    arr: np.ndarray,  # [N] one day's realtime times
    dep: np.ndarray,
    sched_arr: np.ndarray,  # [N] the schedule
    sched_dep: np.ndarray,
    skipped: np.ndarray,  # [N] bool
) -> tuple[np.ndarray, np.ndarray]:
    """([T] trips whose times differ from the schedule, [T] trips with a skipped stop), in one
    branch-free pass over the stop times."""
    n_trips = trip_st_ptr.shape[0] - 1
    moved = np.zeros(n_trips, dtype=np.bool_)
    skipping = np.zeros(n_trips, dtype=np.bool_)
    for t in range(n_trips):
        m = False
        k = False
        for st in range(trip_st_ptr[t], trip_st_ptr[t + 1]):
            m |= (arr[st] != sched_arr[st]) | (dep[st] != sched_dep[st])
            k |= skipped[st]
        moved[t] = m
        skipping[t] = k
    return moved, skipping


@njit(cache=True, nogil=True)
def footpath_between(
    transfer_ptr: np.ndarray, transfer_to: np.ndarray, transfer_s: np.ndarray, u: int, s: int
) -> int:
    """Seconds of the shortest footpath ``u -> s`` (``BIG`` when there is none): the journey
    read-back's lookup of a walk label's leg."""
    best = BIG
    for e in range(transfer_ptr[u], transfer_ptr[u + 1]):
        if transfer_to[e] == s and transfer_s[e] < best:
            best = transfer_s[e]
    return best


@njit(cache=True, nogil=True)
def walk_starts(
    access_s: np.ndarray,  # [S] access seconds, -1 where not an access stop
    transfer_ptr: np.ndarray,
    transfer_to: np.ndarray,
    transfer_s: np.ndarray,
    max_transfer_s: int,
) -> np.ndarray:
    """[S] seconds from the origin to each stop by its access and at most one footpath after
    it (-1 where neither reaches): where a range query's first ride may board. A loop over
    the access stops' footpaths only, not numpy passes over every footpath of the network."""
    n = access_s.shape[0]
    out = np.full(n, -1, dtype=np.int32)
    for s in range(n):
        a = access_s[s]
        if a < 0:
            continue
        if out[s] < 0 or a < out[s]:
            out[s] = a
        for e in range(transfer_ptr[s], transfer_ptr[s + 1]):
            d = transfer_s[e]
            if d > max_transfer_s:
                continue
            t = transfer_to[e]
            if out[t] < 0 or a + d < out[t]:
                out[t] = a + d
    return out

"""Trip-to-trip and route-to-route transfer rules (transfers.txt types 1-3 naming trips or
routes) as the per-stop-time lists the kernels read (:class:`RaptorNetwork` ``rx_*``).

A rule governs a change between two vehicles at one stop: alighting trip ``A`` and boarding
trip ``B`` there needs the time of the rule that applies (:class:`gtfs.transfer_rules.
TransferRules`: the most specific one) instead of the stop's change time — 0 s for a timed
transfer (type 1), ``min_transfer_time`` for type 2 — or is impossible (type 3). Only changes
at one stop are governed: a rule between two different stops (a walk) is not read by the
router, which walks those with the footpath's time.

For every boarding a rule may govern (some rule's ``to`` side names the trip, or its route,
or is blank, at that stop) the lists give every arrival at the stop a rider may change from,
with its time; the mirrored lists (``rb_*``, arrive-by searches) give, for every arrival a rule
may govern (``from`` side), every boarding it may change to.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from gtfs.compiled import CompiledTimetable
from gtfs.transfer_rules import MIN_TIME, NOT_POSSIBLE, TransferRules


def _members(tt: CompiledTimetable, stop: int) -> set[int] | None:
    """The stops a rule stop matches (itself and its platforms); None for a blank one."""
    if stop < 0:
        return None
    return {stop, *np.flatnonzero(tt.stop_parent == stop).tolist()}


def _csr(
    n: int, items: dict[int, list[tuple[int, int, int]]]
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[np.int32]
]:
    counts = np.zeros(n, dtype=np.int64)
    for k, v in items.items():
        counts[k] = len(v)
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    flat = [x for k in sorted(items) for x in items[k]]
    arr = np.array(flat, dtype=np.int32).reshape(-1, 3)
    return ptr, arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy()


def trip_rule_transfers(tt: CompiledTimetable) -> dict[str, Any]:
    """The ``rx_*`` / ``rb_*`` fields of a forward :class:`RaptorNetwork` (empty dict when no
    rule of types 1-3 names a trip or a route)."""
    rules = TransferRules(tt)
    if len(rules) == 0 or tt.n_trips == 0:
        return {}
    n = tt.n_stop_times
    ptr = tt.trip_st_ptr.astype(np.int64)
    st_trip = np.repeat(np.arange(tt.n_trips), np.diff(ptr))
    st_pos = np.arange(n, dtype=np.int64) - ptr[st_trip]
    pat = tt.trip_pattern[st_trip].astype(np.int64)
    st_stop = tt.pattern_stops[tt.pattern_stop_ptr[pat] + st_pos]
    last = np.diff(ptr)[st_trip] - 1
    can_board = (tt.st_pickup != 1) & (st_pos < last)
    can_alight = (tt.st_dropoff != 1) & (st_pos > 0)
    route = tt.trip_route

    # The stops each rule may govern a change at, and the rules of each such stop.
    by_stop: dict[int, list[int]] = {}
    served = np.unique(st_stop).tolist()
    for x in rules.rows.tolist():
        m_from = _members(tt, int(tt.rule_from_stop[x]))
        m_to = _members(tt, int(tt.rule_to_stop[x]))
        if m_from is None:
            here = set(served) if m_to is None else m_to
        else:
            here = m_from if m_to is None else m_from & m_to
        for s in here:
            by_stop.setdefault(int(s), []).append(x)

    # A rule's outcome depends on a trip only through its id where some rule names it, else
    # through its route: changes are worked out once per such key (a route-level rule at a
    # busy stop covers thousands of trip pairs).
    named_from = set(tt.rule_from_trip[rules.rows].tolist()) - {-1}
    named_to = set(tt.rule_to_trip[rules.rows].tolist()) - {-1}

    def key(trip: int, named: set[int]) -> int:
        return trip if trip in named else -2 - int(route[trip])

    def side(x: int, trip: int, frm: bool) -> bool:
        t = int(tt.rule_from_trip[x] if frm else tt.rule_to_trip[x])
        r = int(tt.rule_from_route[x] if frm else tt.rule_to_route[x])
        return (t < 0 or t == trip) and (r < 0 or r == int(route[trip]))

    order = np.argsort(st_stop, kind="stable")
    bounds = np.searchsorted(st_stop[order], np.arange(tt.n_stops + 1))
    fwd: dict[int, list[tuple[int, int, int]]] = {}
    back: dict[int, list[tuple[int, int, int]]] = {}
    fwd_flag = np.zeros(n, dtype=np.bool_)
    back_flag = np.zeros(n, dtype=np.bool_)
    cache: dict[tuple[int, int, int], int | None] = {}
    governs: dict[tuple[int, int, bool], bool] = {}

    def need(a: int, s: int, b: int, xs: list[int]) -> int | None:
        """Seconds to change from trip a to trip b at s (-1: the stop's), None: forbidden."""
        k = (key(a, named_from), s, key(b, named_to))
        if k not in cache:
            got = rules.rule_for(a, s, b, s, xs)
            if got is None:
                cache[k] = -1
            elif got[0] == NOT_POSSIBLE:
                cache[k] = None
            else:
                cache[k] = got[1] if got[0] == MIN_TIME else 0
        return cache[k]

    def governed(trip: int, s: int, frm: bool, xs: list[int]) -> bool:
        """Whether some rule at s names ``trip`` (or its route, or nothing) on that side."""
        k = (key(trip, named_from if frm else named_to), s, frm)
        if k not in governs:
            governs[k] = any(side(x, trip, frm) for x in xs)
        return governs[k]

    for s, xs in sorted(by_stop.items()):
        sts = order[bounds[s] : bounds[s + 1]]
        boards = [int(i) for i in sts if can_board[i]]
        alights = [int(i) for i in sts if can_alight[i]]
        for bi in boards:
            b = int(st_trip[bi])
            if not governed(b, s, False, xs):
                continue
            fwd_flag[bi] = True
            items = fwd.setdefault(bi, [])
            for ai in alights:
                a = int(st_trip[ai])
                m = need(a, s, b, xs) if a != b else None
                if m is not None:
                    items.append((a, int(st_pos[ai]), m))
        for ai in alights:
            a = int(st_trip[ai])
            if not governed(a, s, True, xs):
                continue
            back_flag[ai] = True
            items = back.setdefault(ai, [])
            for bi in boards:
                b = int(st_trip[bi])
                m = need(a, s, b, xs) if a != b else None
                if m is not None:
                    items.append((b, int(st_pos[bi]), m))
    if not fwd_flag.any() and not back_flag.any():
        return {}
    f_ptr, f_trip, f_pos, f_need = _csr(n, fwd)
    b_ptr, b_trip, b_pos, b_need = _csr(n, back)
    return {
        "rx_flag": fwd_flag,
        "rx_ptr": f_ptr,
        "rx_trip": f_trip,
        "rx_pos": f_pos,
        "rx_need": f_need,
        "rb_flag": back_flag,
        "rb_ptr": b_ptr,
        "rb_trip": b_trip,
        "rb_pos": b_pos,
        "rb_need": b_need,
    }

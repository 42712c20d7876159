"""Trip-to-trip and route-to-route transfer rules (transfers.txt types 1-3 naming trips or
routes) as the per-stop-time lists the kernels read (:class:`RaptorNetwork` ``rx_*``).

A rule governs a change between two vehicles: alighting trip ``A`` at stop ``x`` and boarding
trip ``B`` at stop ``y`` needs the time of the rule that applies (:class:`gtfs.transfer_rules.
TransferRules`: the most specific one) instead of the default, or is impossible (type 3).
At one stop (``x == y``) the default is the stop's change time; between two stops (``x != y``,
also two platforms of a station the rule names) the change is the footpath ``x -> y`` and the
default is its walk plus the rider's slack. A rule time there is the whole transfer, walk
included (GTFS: ``min_transfer_time`` is "the amount of time that must be available to permit
a transfer between routes at the specified stops"), but never less than the walk plus slack:
the kernels take the larger, which also keeps the lower bounds of the goal-directed searches
(:mod:`routing.raptor.bounds`, walk times) valid. A rule between two stops no footpath joins
joins nothing: it states a time, not a path.

For every boarding a rule may govern (some rule's ``to`` side names the trip, or its route,
or is blank, at that stop) the lists give every arrival a rider may change from, with its
time: the arrivals at the same stop and, where a rule between two stops may govern the
boarding (``flag`` :data:`WALK_GOVERNED`), the arrivals at every stop with a footpath to it
— a walk label there may come from a forbidden or slower change, so the kernels do not read
it. The mirrored lists (``rb_*``, arrive-by searches) give, for every arrival a rule may govern
(``from`` side), every boarding it may change to: the same code over the other direction
(:func:`_direction`).

Rule times are stored as an index into ``rule_s`` (the distinct seconds the rules state; a
timed transfer, type 1, is 0 s), so that a query scales the few distinct values by the
rider's transfer-time factor instead of every listed change
(:meth:`routing.raptor.search.QueryArrays.rule_seconds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gtfs.compiled import CompiledTimetable
from gtfs.transfer_rules import MIN_TIME, NOT_POSSIBLE, Change, TransferRules

IntArray = npt.NDArray[np.int32]
BoolArray = npt.NDArray[np.bool_]

GOVERNED = 1
"""``rx_flag``: a rule at this stop may govern the boarding (walks to it are not governed)."""
WALK_GOVERNED = 2
"""``rx_flag``: a rule between two stops may govern the boarding: no walk label is read."""

_DEFAULT = -1  # the change's default time (stop change time, or walk plus slack)
_FORBIDDEN = -2


@dataclass(frozen=True)
class _Side:
    """One direction of the lists: the stop times a list belongs to (``own``: boardings for
    the forward lists) and those it lists (``other``: arrivals), and whether the own side is
    a rule's ``to`` side."""

    own_ok: BoolArray
    other_ok: BoolArray
    own_is_to: bool


class _Timetable:
    """The stop-time and rule arrays the lists are built from (numpy, built once)."""

    def __init__(
        self, tt: CompiledTimetable, rules: TransferRules, transfer_ptr: IntArray, to: IntArray
    ) -> None:
        n = tt.n_stop_times
        ptr = tt.trip_st_ptr.astype(np.int64)
        self.st_trip = np.repeat(np.arange(tt.n_trips), np.diff(ptr))
        self.st_pos = np.arange(n, dtype=np.int64) - ptr[self.st_trip]
        pat = tt.trip_pattern[self.st_trip].astype(np.int64)
        self.st_stop = tt.pattern_stops[tt.pattern_stop_ptr[pat] + self.st_pos].astype(np.int64)
        last = np.diff(ptr)[self.st_trip] - 1
        self.can_board = (tt.st_pickup != 1) & (self.st_pos < last)
        self.can_alight = (tt.st_dropoff != 1) & (self.st_pos > 0)
        order = np.argsort(self.st_stop, kind="stable")
        self.by_stop = order
        self.stop_bounds = np.searchsorted(self.st_stop[order], np.arange(tt.n_stops + 1))
        self.e_from = np.repeat(np.arange(tt.n_stops, dtype=np.int64), np.diff(transfer_ptr))
        self.e_to = to.astype(np.int64)
        self.rows = rules.rows
        route = tt.trip_route.astype(np.int64)
        trips = np.arange(tt.n_trips, dtype=np.int64)
        # A rule's outcome depends on a trip only through its id where some rule names it on
        # that side, else through its route: changes are worked out once per such key pair.
        named_from = np.unique(tt.rule_from_trip[self.rows])
        named_to = np.unique(tt.rule_to_trip[self.rows])
        self.key_from = np.where(np.isin(trips, named_from), trips, -2 - route)
        self.key_to = np.where(np.isin(trips, named_to), trips, -2 - route)
        # [X, T] whether each rule's side matches each trip (rules are few: hundreds).
        rft, rfr = tt.rule_from_trip[self.rows], tt.rule_from_route[self.rows]
        rtt, rtr = tt.rule_to_trip[self.rows], tt.rule_to_route[self.rows]
        self.from_match = ((rft[:, None] < 0) | (rft[:, None] == trips)) & (
            (rfr[:, None] < 0) | (rfr[:, None] == route)
        )
        self.to_match = ((rtt[:, None] < 0) | (rtt[:, None] == trips)) & (
            (rtr[:, None] < 0) | (rtr[:, None] == route)
        )
        # [X, S] the stops each rule side matches: itself and its platforms, any when blank.
        parent = tt.stop_parent.astype(np.int64)

        def members(rule_stop: npt.NDArray[np.int64]) -> BoolArray:
            s = np.arange(tt.n_stops)
            rs = rule_stop[:, None]
            return (rs < 0) | (rs == s) | ((parent >= 0) & (rs == parent))

        self.from_stops = members(tt.rule_from_stop[self.rows].astype(np.int64))
        self.to_stops = members(tt.rule_to_stop[self.rows].astype(np.int64))

    def at(self, s: int) -> npt.NDArray[np.int64]:
        """The stop times at stop ``s``."""
        return self.by_stop[self.stop_bounds[s] : self.stop_bounds[s + 1]]


def _pairs(t: _Timetable, n_stops: int) -> dict[tuple[int, int], list[int]]:
    """``(x, edge)`` -> the rule rows (file order) that may govern a change from stop ``x``
    to the same stop (``edge`` -1) or along footpath ``edge`` (``x -> e_to[edge]``)."""
    served = np.zeros(n_stops, dtype=np.bool_)
    served[t.st_stop] = True
    out: dict[tuple[int, int], list[int]] = {}
    for i, x in enumerate(t.rows.tolist()):
        for s in np.flatnonzero(t.from_stops[i] & t.to_stops[i] & served).tolist():
            out.setdefault((s, -1), []).append(x)
        walks = t.from_stops[i][t.e_from] & t.to_stops[i][t.e_to]
        for e in np.flatnonzero(walks).tolist():
            out.setdefault((int(t.e_from[e]), e), []).append(x)
    return out


def _direction(
    t: _Timetable,
    rules: TransferRules,
    pairs: dict[tuple[int, int], list[int]],
    side: _Side,
    rule_index: dict[int, int],
) -> tuple[npt.NDArray[np.int8], list[npt.NDArray[np.int64]]]:
    """The lists of one direction: ``flag`` [N] (:data:`GOVERNED`, :data:`WALK_GOVERNED`) and
    the entries ``[own stop time, other stop time, time index, footpath]`` as arrays."""
    n = len(t.st_trip)
    to_side = side.own_is_to
    own_match = t.to_match if to_side else t.from_match
    row_of = {x: i for i, x in enumerate(t.rows.tolist())}
    flag = np.zeros(n, dtype=np.int8)
    # Governed own stop times: at the own end of a pair, matched by a rule of the pair.
    for (x, e), xs in pairs.items():
        own_stop = x if e < 0 else int(t.e_to[e] if to_side else x)
        sts = t.at(own_stop)
        sts = sts[side.own_ok[sts]]
        hit = own_match[[row_of[r] for r in xs]].any(axis=0)[t.st_trip[sts]]
        flag[sts[hit]] = np.maximum(flag[sts[hit]], GOVERNED if e < 0 else WALK_GOVERNED)
    # Every own stop time governed lists the other side's stop times at its stop; a walk
    # governed one also those at every stop a footpath joins (in this direction).
    src = t.e_from if to_side else t.e_to
    dst = t.e_to if to_side else t.e_from
    walk_order = np.argsort(dst, kind="stable")
    walk_bounds = np.searchsorted(dst[walk_order], np.arange(len(t.stop_bounds)))
    gov_stops = np.unique(t.st_stop[flag > 0])
    parts: list[list[npt.NDArray[np.int64]]] = []
    for u in gov_stops.tolist():
        here = t.at(u)
        own = here[flag[here] > 0]
        walkers = own[flag[own] == WALK_GOVERNED]
        links = [(u, -1, own)]
        if len(walkers):
            for e in walk_order[walk_bounds[u] : walk_bounds[u + 1]].tolist():
                links.append((int(src[e]), e, walkers))
        for v, e, targets in links:
            x = v if to_side else u
            rows = pairs.get((x, e), [])
            others = t.at(v)
            others = others[side.other_ok[others]]
            if not len(others):
                continue
            got = _needs(t, rules, rows, targets, others, u, v, to_side, rule_index)
            if got is not None:
                parts.append([*got, np.full(len(got[0]), e, dtype=np.int64)])
    if not parts:
        return flag, [np.zeros(0, dtype=np.int64)] * 4
    return flag, [np.concatenate([p[i] for p in parts]) for i in range(4)]


def _needs(
    t: _Timetable,
    rules: TransferRules,
    rows: list[int],
    own: npt.NDArray[np.int64],
    others: npt.NDArray[np.int64],
    u: int,
    v: int,
    to_side: bool,
    rule_index: dict[int, int],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
    """Every change between the ``own`` stop times (at ``u``) and the ``others`` (at ``v``):
    ``(own, other, time index)`` without the forbidden ones and those within one trip."""
    a_sts, b_sts = (others, own) if to_side else (own, others)
    a_key = t.key_from[t.st_trip[a_sts]]
    b_key = t.key_to[t.st_trip[b_sts]]
    ua, ia, inv_a = np.unique(a_key, return_index=True, return_inverse=True)
    ub, ib, inv_b = np.unique(b_key, return_index=True, return_inverse=True)
    table = np.full((len(ua), len(ub)), _DEFAULT, dtype=np.int64)
    if rows:
        x_stop, y_stop = (v, u) if to_side else (u, v)
        for i in range(len(ua)):
            a = int(t.st_trip[a_sts[ia[i]]])
            for j in range(len(ub)):
                b = int(t.st_trip[b_sts[ib[j]]])
                got = rules.matching(Change(a, x_stop, b, y_stop), rows)
                if got >= 0:
                    ty = int(rules.tt.rule_type[got])
                    if ty == NOT_POSSIBLE:
                        table[i, j] = _FORBIDDEN
                    else:
                        m = int(rules.tt.rule_min_s[got]) if ty == MIN_TIME else 0
                        table[i, j] = rule_index[m]
    # The cartesian product own x others, in the order (own, other).
    if to_side:
        need = table[inv_a[None, :], inv_b[:, None]]  # [own (b), other (a)]
    else:
        need = table[inv_a[:, None], inv_b[None, :]]  # [own (a), other (b)]
    oi, pi = np.nonzero(
        (need != _FORBIDDEN) & (t.st_trip[own][:, None] != t.st_trip[others][None, :])
    )
    if not len(oi):
        return None
    return own[oi], others[pi], need[oi, pi]


def _csr(
    n: int, flag: npt.NDArray[np.int8], parts: list[npt.NDArray[np.int64]], t: _Timetable
) -> dict[str, Any]:
    """The CSR arrays of one direction, each list sorted by (trip, position): McRAPTOR looks a
    ride's change up by binary search."""
    own, other, need, edge = parts
    o_trip = t.st_trip[other]
    o_pos = t.st_pos[other]
    order = np.lexsort((o_pos, o_trip, own))
    counts = np.bincount(own, minlength=n)
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    return {
        "flag": flag,
        "ptr": ptr,
        "trip": o_trip[order].astype(np.int32),
        "pos": o_pos[order].astype(np.int32),
        "need": need[order].astype(np.int32),
        "edge": edge[order].astype(np.int32),
    }


def trip_rule_transfers(
    tt: CompiledTimetable, transfer_ptr: IntArray, transfer_to: IntArray
) -> dict[str, Any]:
    """The ``rx_*`` / ``rb_*`` fields and ``rule_s`` of a forward :class:`RaptorNetwork` whose
    footpaths are the CSR ``transfer_ptr`` / ``transfer_to`` (distinct stops); an empty dict
    when no rule of types 1-3 names a trip or a route."""
    rules = TransferRules(tt)
    if len(rules) == 0 or tt.n_trips == 0:
        return {}
    t = _Timetable(tt, rules, transfer_ptr, transfer_to)
    pairs = _pairs(t, tt.n_stops)
    if not pairs:
        return {}
    x = t.rows
    timed = np.where(tt.rule_type[x] == MIN_TIME, tt.rule_min_s[x], 0)
    rule_s = np.unique(timed).astype(np.int32)
    rule_index = {int(m): i for i, m in enumerate(rule_s.tolist())}
    out: dict[str, Any] = {"rule_s": rule_s}
    for prefix, side in (
        ("rx", _Side(t.can_board, t.can_alight, True)),
        ("rb", _Side(t.can_alight, t.can_board, False)),
    ):
        flag, parts = _direction(t, rules, pairs, side, rule_index)
        for name, value in _csr(tt.n_stop_times, flag, parts, t).items():
            out[f"{prefix}_{name}"] = value
    if not out["rx_flag"].any() and not out["rb_flag"].any():
        return {}
    return out

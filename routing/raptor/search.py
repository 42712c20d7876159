"""RAPTOR searches: earliest arrival, latest departure (arrive-by) and range (rRAPTOR).

All take a :class:`RaptorNetwork` and a :class:`QueryArrays` (the per-query view: which trip
copies run, realtime times, boarding restrictions), both in the same time frame. Arrive-by
searches run the forward kernel on the mirrored network (``network.reverse()``), with a
``QueryArrays`` mirrored by :meth:`QueryArrays.mirrored`.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from routing.raptor import bounds, kernels
from routing.raptor.journey import Journey, Leg, RideLeg, WalkLeg
from routing.raptor.network import BoolArray, IntArray, RaptorNetwork

BIG = kernels.BIG


@dataclass(frozen=True, eq=False)
class QueryArrays:
    """What one query may use, in a network's frame.

    Attributes
    ----------
    active
        [O, T] bool: trip ``t`` runs as copy ``o`` (a service day), e.g. the query day and the
        day before (whose trips past 24:00 reach into the query day).
    offsets
        [O] int32 seconds added to copy ``o``'s times (``-86400`` for the day before).
    st_arr, st_dep
        [O, N] times of each copy (scheduled or realtime; a broadcast view when all copies
        share the schedule).
    st_board, st_alight
        [O, N] whether boarding / alighting is allowed for this query, per copy (a realtime
        skipped stop closes only the copy of its service day; a broadcast view otherwise).
    change_s
        [S] time needed between arriving at a stop by a ride and boarding there.
    slack
        Time needed between arriving on foot and boarding.
    max_transfer_s
        Longest footpath allowed, seconds (after ``walk_factor``).
    walk_factor
        Multiplier of the network's footpath seconds (the traveller walks slower or faster
        than the speed the footpaths were computed at).
    fifo
        Trips of a pattern never overtake in ``st_*`` (binary search allowed); False makes
        every trip search a linear scan.
    max_rides
        Most vehicles in one journey (max transfers + 1).
    odd
        [O, T] bool or None: trip copies a pattern scan must ride one by one, each as if it
        were a pattern of its own (OpenTripPlanner gives a realtime-modified trip its own
        pattern for the same reason). A pattern scan rides the earliest trip copy it can
        board, which is right only when the copies it chooses from share their boarding and
        alighting stops and never overtake one another; a copy with a realtime skip, a
        pickup/drop-off type its pattern's other trips lack, or realtime times that overtake
        must be odd. :class:`routing.transit.TransitData` marks them.
    row_fifo
        [O, P] bool or None (all True): copy ``o`` of pattern ``p`` keeps its trips (odd ones
        included) in FIFO order, so a binary search may find the first catchable one.
    max_travel_s
        Longest journey counted from the search's departure (0: no limit): arrivals later than
        that are pruned like those that cannot beat the best one.
    transfer_factor, transfer_extra_s
        The rider's transfer-time factor and added seconds (:class:`routing.options.
        RoutingOptions`), already in ``change_s`` / ``slack``; :meth:`rule_seconds` applies
        them to the times transfer rules state.
    """

    active: npt.NDArray[np.bool_]
    offsets: IntArray
    st_arr: IntArray
    st_dep: IntArray
    st_board: BoolArray
    st_alight: BoolArray
    change_s: IntArray
    slack: int
    max_transfer_s: int
    fifo: bool
    max_rides: int
    walk_factor: float = 1.0
    max_travel_s: int = 0
    transfer_factor: float = 1.0
    transfer_extra_s: int = 0
    odd: npt.NDArray[np.bool_] | None = None
    row_fifo: npt.NDArray[np.bool_] | None = None
    _scaled: dict[int, IntArray] = field(default_factory=dict, compare=False, repr=False)
    _scan: dict[int, ScanSets] = field(default_factory=dict, compare=False, repr=False)
    _bounds: dict[int, bounds.BoundGraph] = field(default_factory=dict, compare=False, repr=False)

    def bound_graph(self, network: RaptorNetwork) -> bounds.BoundGraph:
        """The relaxed network that lower bounds are computed on: the network's own (built once
        per network) when every copy runs on its schedule, else one of this query's times
        (realtime; cached with the query)."""
        own = (
            self.st_arr.strides[0] == 0
            and self.st_dep.strides[0] == 0
            and np.may_share_memory(self.st_arr, network.st_arr)
            and np.may_share_memory(self.st_dep, network.st_dep)
        )
        if own:
            return bounds.schedule_graph(network)
        key = id(network)
        got = self._bounds.get(key)
        if got is None:
            seg = bounds.segment_seconds(network, self.st_arr, self.st_dep)
            got = bounds.build_graph(network, seg)
            self._bounds[key] = got
        return got

    def lower_bounds(
        self, network: RaptorNetwork, egress: IntArray, access: IntArray | None = None
    ) -> IntArray:
        """[S] lower bounds of the time from each stop to the targets of ``egress`` ([S]
        seconds, -1 where not a target); ``BIG`` where no target can be reached. With
        ``access`` (the origins, same form) the search may stop early past them
        (:func:`routing.raptor.bounds.backward_dijkstra`)."""
        return bounds.lower_bounds(
            network,
            self.bound_graph(network),
            self.footpath_seconds(network),
            self.max_transfer_s,
            egress,
            access,
        )

    def scan_sets(self, network: RaptorNetwork) -> ScanSets:
        """The kernels' view of ``active`` / ``odd`` / ``row_fifo`` on ``network`` (cached)."""
        key = id(network)
        got = self._scan.get(key)
        if got is None:
            got = ScanSets.build(network, self.active, self.odd, self.row_fifo)
            self._scan[key] = got
        return got

    def footpath_seconds(self, network: RaptorNetwork) -> IntArray:
        """The network's footpath seconds at this query's walking speed (cached)."""
        if self.walk_factor == 1.0:
            return network.transfer_s
        key = id(network)
        got = self._scaled.get(key)
        if got is None:
            got = np.ceil(network.transfer_s * self.walk_factor - 1e-9).astype(np.int32)
            self._scaled[key] = got
        return got

    def rule_seconds(self, network: RaptorNetwork) -> IntArray:
        """The seconds of ``network.rule_s`` (what trip/route transfer rules state) for this
        rider: scaled by ``transfer_factor`` (rounded up), no less than the rider's minimum
        change time, plus ``transfer_extra_s`` — as the stop change times in ``change_s``,
        since a rule's time replaces the stop's. Along a footpath the kernels take the walk
        plus ``slack`` when longer (:func:`routing.raptor.kernels.rule_board`), as for an
        ordinary walk, which the factor does not scale (the walking speed does).

        OpenTripPlanner 2 has no factor: a constrained transfer's ``minTransferTime`` plus the
        transfer slack, or the regular transfer (walk plus slacks) when that takes longer
        (``TransferConstraint.calculateTransferTargetTime``). nigiri reads no trip/route
        rules; its transfer-time settings adjust every stop change time and footpath alike,
        ``additional + max(min, duration * factor)``. Here a rule time, being a change time
        the feed states, gets what the feed's change times get.
        """
        base = network.rule_s
        if base is None or len(base) == 0:
            return np.zeros(0, dtype=np.int32)
        scaled = base
        if self.transfer_factor != 1.0:
            scaled = np.ceil(base * self.transfer_factor - 1e-9).astype(np.int32)
        floor = self.slack - self.transfer_extra_s
        return (np.maximum(scaled, floor) + self.transfer_extra_s).astype(np.int32)

    def mirrored(self, network: RaptorNetwork) -> QueryArrays:
        """This query in the frame of ``network`` (a reversed network), from forward arrays."""
        arr, dep = network.mirror_times(self.st_arr, self.st_dep)
        return QueryArrays(
            active=np.ascontiguousarray(network.mirror_trips(self.active)),
            offsets=(-self.offsets).astype(np.int32),
            st_arr=arr,
            st_dep=dep,
            st_board=network.mirror_stop_times(self.st_alight),
            st_alight=network.mirror_stop_times(self.st_board),
            change_s=self.change_s,
            slack=self.slack,
            max_transfer_s=self.max_transfer_s,
            fifo=self.fifo,
            max_rides=self.max_rides,
            walk_factor=self.walk_factor,
            max_travel_s=self.max_travel_s,
            transfer_factor=self.transfer_factor,
            transfer_extra_s=self.transfer_extra_s,
            odd=None if self.odd is None else np.ascontiguousarray(network.mirror_trips(self.odd)),
            row_fifo=self.row_fifo,  # per pattern, and patterns keep their index when mirrored
        )


@dataclass(frozen=True, eq=False)
class ScanSets:
    """What a pattern scan rides, split for the kernels.

    Attributes
    ----------
    active
        [O, T] the regular trip copies: running and not odd.
    row_fifo
        [O, P] whether a binary search may look for trips of copy ``o`` of pattern ``p``.
    odd_ptr, odd_trip, odd_copy
        CSR [P+1] / [M] / [M]: the running odd trip copies of each pattern, ridden one by one.
    """

    active: npt.NDArray[np.bool_]
    row_fifo: npt.NDArray[np.bool_]
    odd_ptr: npt.NDArray[np.int64]
    odd_trip: IntArray
    odd_copy: IntArray

    @classmethod
    def build(
        cls,
        network: RaptorNetwork,
        active: npt.NDArray[np.bool_],
        odd: npt.NDArray[np.bool_] | None,
        row_fifo: npt.NDArray[np.bool_] | None,
    ) -> ScanSets:
        n_off = active.shape[0]
        fifo = (
            np.ones((n_off, network.n_patterns), dtype=np.bool_)
            if row_fifo is None
            else np.ascontiguousarray(row_fifo, dtype=np.bool_)
        )
        running_odd = None if odd is None else odd & active
        seated_from = network.continuation_arrays[4]
        if network.has_continuations:
            # Trips a rider may stay seated on from are ridden alone (see kernels.raptor_pruned).
            running_odd = active & seated_from[None, :] | (
                False if running_odd is None else running_odd
            )
        if network.has_rules:
            # So are the trips transfer rules govern (see kernels.raptor_pruned).
            running_odd = active & network.rule_trips[None, :] | (
                False if running_odd is None else running_odd
            )
        if running_odd is None or not running_odd.any():
            empty = np.zeros(0, dtype=np.int32)
            ptr = np.zeros(network.n_patterns + 1, dtype=np.int64)
            return cls(active, fifo, ptr, empty, empty)
        # (trip, copy) pairs sorted by trip: trips are grouped by pattern, so the pattern CSR
        # is a search of the pattern's first trip.
        trip, copy = np.nonzero(running_odd.T)
        ptr = np.searchsorted(trip, network.pattern_trip_ptr).astype(np.int64)
        return cls(
            np.ascontiguousarray(active & ~running_odd),
            fifo,
            ptr,
            trip.astype(np.int32),
            copy.astype(np.int32),
        )


_POOL: dict[str, list[npt.NDArray[Any]]] = {}
_POOL_LOCK = threading.Lock()
_POOL_BLOCKS = 4
"""Blocks kept per kind, shared by every thread so that the memory kept is bounded whatever
the number of worker threads: a caller holding the previous result (``res = search()`` in a
loop) leaves one busy while the next search runs, and so does each concurrent search."""


def _block(
    kind: str, shape: tuple[int, ...], dtype: type[np.generic], fill: int | None
) -> npt.NDArray[Any]:
    """A C-contiguous array of ``shape``, filled with ``fill`` (None: left as it is).

    Reuses a pooled block that no search state holds any more (its only references are the
    pool's, the loop's and ``getrefcount``'s own: every label view keeps its base alive),
    else allocates one. A fresh block of a large network is mapped memory that page-faults
    as it is filled (0.2 ms for Cairns x50's 10 400 stops), more than the search itself; a
    reused one is only filled. Claimed under the lock: once this frame holds the block,
    another thread counts one reference more and leaves it.
    """
    with _POOL_LOCK:
        kept = _POOL.setdefault(kind, [])
        arr = None
        for cand in kept:
            if cand.shape == shape and cand.dtype == dtype and sys.getrefcount(cand) <= 3:
                arr = cand
                break
        if arr is None:
            arr = np.empty(shape, dtype=dtype)
            kept.append(arr)
            if len(kept) > _POOL_BLOCKS:
                kept.pop(0)
    if fill is not None:
        arr.fill(fill)
    return arr


class SearchState:
    """Labels of one search (per round × stop); reusable across rRAPTOR runs."""

    def __init__(
        self, n_rounds: int, n_stops: int, n_copies: int = 0, n_seat: int = 0, n_src: int = -1
    ) -> None:
        shape = (n_rounds, n_stops)
        # Trip/route transfer rules (kernels.rule_board), n_src >= 0 only with rules: a label
        # per trip copy changed from, and how each ride's boarding was reached.
        self.src_bpos = np.full((n_rounds, n_copies, max(n_src, 0)), BIG, dtype=np.int32)
        self.src_how = np.full((n_rounds, n_copies, max(n_src, 0)), -1, dtype=np.int32)
        self.r_how = np.full(shape if n_src >= 0 else (1, 1), -1, dtype=np.int32)
        # Stay-seated continuations per trip copy (kernels.seat_trigger): [O, C] and [K+1, O, C].
        self.seat_round = np.full((n_copies, n_seat), BIG, dtype=np.int32)
        self.seat_prev = np.zeros((n_rounds, n_copies, n_seat), dtype=np.int32)
        self.seat_bpos = np.zeros((n_rounds, n_copies, n_seat), dtype=np.int32)
        self.seat_how = np.full(
            (n_rounds if n_src >= 0 else 0, n_copies, n_seat), -1, dtype=np.int32
        )
        # Labels of one kind share one block (one allocation each instead of eleven: a
        # one-to-one query on a small network spends as long allocating as routing), taken
        # from a pool of blocks no earlier search still holds (_block).
        times = _block("times", (3, *shape), np.int32, BIG)
        self.rtau, self.wtau, self.ready = times[0], times[1], times[2]
        # What a ride or walk label holds is written with the label and read only where one
        # was set (the read-back skips COPY entries first), so it needs no filling: on a large
        # network filling [K+1, S] arrays is a good part of a one-to-one query.
        payload = _block("payload", (4, *shape), np.int32, None)
        self.r_trip, self.r_board, self.r_alight, self.w_from = (
            payload[0],
            payload[1],
            payload[2],
            payload[3],
        )
        small = _block("small", (4, *shape), np.int8, 0)
        self.r_off = small[0]
        self.ready_src = small[1]
        self.r_copy = small[2].view(np.bool_)
        self.w_copy = small[3].view(np.bool_)
        self.target_bound = np.full(n_rounds, BIG, dtype=np.int32)
        self.departure = 0
        self.access_s = np.zeros(n_stops, dtype=np.int32)
        #: The last run's ``board_limit`` (range queries), None without one.
        self.board_limit: IntArray | None = None

    @classmethod
    def unreached(
        cls, n_rounds: int, n_stops: int, departure: int, access: IntArray
    ) -> SearchState:
        """The labels of a search that reached nothing (no access stop can reach a target):
        read-only views of one value each, not arrays to fill, so answering "no journey" costs
        nothing per stop."""
        state = cls.__new__(cls)
        big, zero, none3, seat_round, r_how, small, no, bound = _unreached_views(n_rounds, n_stops)
        state.src_bpos = state.src_how = state.seat_prev = state.seat_bpos = none3
        state.seat_how = state.src_bpos
        state.seat_round = seat_round
        state.r_how = r_how
        state.rtau = state.wtau = state.ready = big
        state.r_trip = state.r_board = state.r_alight = state.w_from = zero
        state.r_off = state.ready_src = small
        state.r_copy = state.w_copy = no
        state.target_bound = bound
        state.departure = int(departure)
        state.access_s = access
        state.board_limit = None
        return state

    def arrivals(self, k: int = -1) -> IntArray:
        """[S] earliest arrival at each stop with at most ``k`` rides (all rounds by default);
        ``BIG`` where unreached."""
        acc = np.where(self.access_s >= 0, self.departure + self.access_s, BIG)
        return np.minimum(np.minimum(self.rtau[k], self.wtau[k]), acc).astype(np.int32)

    @property
    def best(self) -> IntArray:
        """[S] earliest arrival over all rounds (``BIG`` when unreached)."""
        return self.arrivals(-1)


@functools.lru_cache(maxsize=8)
def _unreached_views(n_rounds: int, n_stops: int) -> tuple[npt.NDArray[Any], ...]:
    """The read-only views :meth:`SearchState.unreached` hands out, made once per shape (eight
    ``broadcast_to`` calls were a fifth of a query that reaches nothing)."""
    shape = (n_rounds, n_stops)
    return (
        np.broadcast_to(np.int32(BIG), shape),
        np.broadcast_to(np.int32(0), shape),
        np.broadcast_to(np.int32(0), (n_rounds, 0, 0)),
        np.broadcast_to(np.int32(BIG), (0, 0)),
        np.broadcast_to(np.int32(-1), (1, 1)),
        np.broadcast_to(np.int8(0), shape),
        np.broadcast_to(np.False_, shape),
        np.broadcast_to(np.int32(BIG), (n_rounds,)),
    )


def _as_targets(
    n_stops: int, stops: npt.ArrayLike | None, seconds: npt.ArrayLike | None
) -> IntArray:
    egress = np.full(n_stops, -1, dtype=np.int32)
    if (
        isinstance(stops, list | tuple)
        and len(stops) == 1
        and isinstance(seconds, list | tuple)
        and len(seconds) == 1
    ):
        # One stop (the common one-to-one query): no array round trip.
        s0, sec0 = int(stops[0]), int(seconds[0])
        if not 0 <= s0 < n_stops:
            raise ValueError("stop index out of range")
        if sec0 < 0:
            raise ValueError("negative access/egress time")
        egress[s0] = sec0
        return egress
    if stops is not None:
        s = np.asarray(stops, dtype=np.int64)
        sec = np.zeros(len(s), dtype=np.int64) if seconds is None else np.asarray(seconds)
        if len(sec) != len(s):
            raise ValueError("stops and seconds differ in length")
        if len(s) and (s.min() < 0 or s.max() >= n_stops):
            raise ValueError("stop index out of range")
        if len(sec) and sec.min() < 0:
            raise ValueError("negative access/egress time")
        # Several entries for one stop: keep the shortest.
        order = np.argsort(-sec, kind="stable")
        egress[s[order]] = sec[order].astype(np.int32)
    return egress


_NO_MARK0 = np.zeros(0, dtype=np.bool_)  # raptor_pruned's round 1 starts at every origin label


def _kernel_args(
    network: RaptorNetwork,
    query: QueryArrays,
    access: IntArray,
    egress: IntArray,
    state: SearchState,
    lower_bound: IntArray | None,
    board_limit: IntArray | None,
    mark0: npt.NDArray[np.bool_] | None = None,
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """:func:`kernels.raptor_pruned`'s arguments before and after ``departure`` (the same for
    every run of a search: :func:`kernels.range_runs` takes them once for all its runs)."""
    scan = query.scan_sets(network)
    if lower_bound is None:
        lower_bound = np.zeros(network.n_stops, dtype=np.int32)
    if board_limit is None:
        board_limit = np.full(network.n_stops, BIG, dtype=np.int32)
    head = (
        network.pattern_stop_ptr,
        network.pattern_stops,
        network.pattern_trip_ptr,
        network.trip_st_ptr,
        query.st_arr,
        query.st_dep,
        query.st_board,
        query.st_alight,
        network.stop_pattern_ptr,
        network.stop_patterns,
        network.stop_pattern_pos,
        network.transfer_ptr,
        network.transfer_to,
        query.footpath_seconds(network),
        scan.active,
        scan.row_fifo,
        scan.odd_ptr,
        scan.odd_trip,
        scan.odd_copy,
        query.offsets,
        query.change_s,
        int(query.slack),
        int(query.max_transfer_s),
        bool(query.fifo),
    )
    tail = (
        access,
        egress,
        state.rtau,
        state.r_trip,
        state.r_board,
        state.r_alight,
        state.r_off,
        state.r_copy,
        state.wtau,
        state.w_from,
        state.w_copy,
        state.ready,
        state.ready_src,
        state.target_bound,
        lower_bound,
        board_limit,
        query.active,
        network.trip_pattern,
        *network.continuation_arrays[:4],
        state.seat_round,
        state.seat_prev,
        state.seat_bpos,
        *network.rule_arrays,
        state.src_bpos,
        state.src_how,
        state.r_how,
        state.seat_how,
        query.rule_seconds(network),
        _NO_MARK0 if mark0 is None else mark0,
    )
    return head, tail


def run(
    network: RaptorNetwork,
    query: QueryArrays,
    departure: int,
    access: IntArray,
    egress: IntArray,
    state: SearchState | None = None,
    lower_bound: IntArray | None = None,
    board_limit: IntArray | None = None,
) -> SearchState:
    """One RAPTOR run (the kernel), creating the state unless one is being reused.

    ``access`` / ``egress`` are [S] seconds, -1 where a stop is not an access / egress.
    ``lower_bound`` ([S], :meth:`QueryArrays.lower_bounds`) prunes labels that cannot reach a
    target before the best arrival found; None prunes against that arrival alone.
    ``board_limit`` ([S]) is the latest time a journey's first ride may leave each stop
    (range queries); None: no limit.
    """
    if state is None:
        state = SearchState(
            query.max_rides + 1,
            network.n_stops,
            len(query.offsets),
            network.n_seat_targets,
            network.n_rule_sources,
        )
    state.departure = int(departure)
    state.access_s = access
    if query.max_travel_s > 0:
        # Nothing arriving later than this can count (rRAPTOR: runs go to earlier departures,
        # so the limit only tightens from run to run).
        np.minimum(
            state.target_bound, int(departure) + query.max_travel_s + 1, out=state.target_bound
        )
    state.board_limit = board_limit
    head, tail = _kernel_args(network, query, access, egress, state, lower_bound, board_limit)
    args = (*head, int(departure), *tail)
    kernels.raptor_pruned(*args)
    return state


class _Reader:
    """Reads a journey back from the labels (legs collected last to first)."""

    def __init__(self, network: RaptorNetwork, query: QueryArrays, state: SearchState) -> None:
        self.net = network
        self.q = query
        self.st = state
        self.legs: list[Leg] = []

    def _walk_s(self, u: int, s: int) -> int:
        net = self.net
        # A compiled lookup: numpy's flatnonzero + min over the few footpaths of ``u`` cost
        # several microseconds each, and a range query reads a walk back in most journeys.
        return int(
            kernels.footpath_between(
                net.transfer_ptr, net.transfer_to, self.q.footpath_seconds(net), u, s
            )
        )

    def access(self, s: int) -> None:
        a = int(self.st.access_s[s])
        t = self.st.departure + a
        if a > 0:
            self.legs.append(WalkLeg(-1, s, t - a, t))

    def _leg(self, trip: int, o: int, bpos: int, apos: int, seated: bool) -> RideLeg:
        net = self.net
        off = int(self.q.offsets[o])
        p = int(net.trip_pattern[trip])
        p0 = int(net.pattern_stop_ptr[p])
        st0 = int(net.trip_st_ptr[trip])
        return RideLeg(
            trip=trip,
            board_pos=bpos,
            alight_pos=apos,
            board_stop=int(net.pattern_stops[p0 + bpos]),
            alight_stop=int(net.pattern_stops[p0 + apos]),
            departure=int(self.q.st_dep[o, st0 + bpos]) + off,
            arrival=int(self.q.st_arr[o, st0 + apos]) + off,
            day_offset=off,
            stay_seated=seated,
        )

    def ride(self, k: int, s: int) -> None:
        st = self.st
        while st.r_copy[k, s]:
            k -= 1
        trip = int(st.r_trip[k, s])
        bpos = int(st.r_board[k, s])
        o = int(st.r_off[k, s])
        seated = bpos == kernels.SEATED
        leg = self._leg(trip, o, 0 if seated else bpos, int(st.r_alight[k, s]), seated)
        self.legs.append(leg)
        how = int(st.r_how[k, s]) if self.net.has_rules and not seated else kernels.HOW_LABEL
        self._chain(k, o, trip, leg, how)

    def _chain(self, k: int, o: int, trip: int, leg: RideLeg, how: int) -> None:
        """The rides before ``leg`` (on ``trip``, copy ``o``, round ``k``): the chain of trips
        stayed seated through, then how its first ride was boarded."""
        st = self.st
        seated = leg.stay_seated
        seat_of = self.net.continuation_arrays[3]
        while seated:
            # Stayed seated into ``trip``: the ride before is the trip it continued from,
            # to that trip's last stop.
            c = int(seat_of[trip])
            prev = int(st.seat_prev[k, o, c])
            pb = int(st.seat_bpos[k, o, c])
            last = int(self.net.trip_st_ptr[prev + 1] - self.net.trip_st_ptr[prev]) - 1
            seated = pb == kernels.SEATED
            if not seated and self.net.has_rules:
                how = int(st.seat_how[k, o, c])
            leg = self._leg(prev, o, 0 if seated else pb, last, seated)
            self.legs.append(leg)
            trip = prev
        self.board(k, how, leg.board_stop, leg.departure)

    def board(self, k: int, how: int, s: int, dep: int) -> None:
        """How a ride of round ``k`` boarding at stop ``s`` at ``dep`` was caught
        (kernels.rule_board)."""
        if how == kernels.HOW_LABEL:
            self.ready(k - 1, s, dep)
        elif how == kernels.HOW_ACCESS:
            self.access(s)
        elif how == kernels.HOW_WALK0:
            self.walk(0, s)
        elif how == kernels.HOW_WALK:
            self.walk(k - 1, s)
        else:
            n_off = len(self.q.offsets)
            e, o = divmod(how, n_off)
            _, _, rx_trip, rx_pos, _, rx_edge, _ = self.net.rule_arrays
            trip, apos = int(rx_trip[e]), int(rx_pos[e])
            edge = int(rx_edge[e])
            if edge >= 0:
                # A change along a footpath: the walk from where the trip was left.
                net = self.net
                p = int(net.trip_pattern[trip])
                x = int(net.pattern_stops[int(net.pattern_stop_ptr[p]) + apos])
                arr = int(self.q.st_arr[o, int(net.trip_st_ptr[trip]) + apos])
                arr += int(self.q.offsets[o])
                d = int(self.q.footpath_seconds(net)[edge])
                self.legs.append(WalkLeg(x, s, arr, arr + d))
            self.source_ride(k - 1, o, trip, apos)

    def source_ride(self, k: int, o: int, trip: int, apos: int) -> None:
        """The ride on trip copy ``(trip, o)`` to position ``apos`` within ``k`` rides, read
        from the trip's own label (a trip changed from under a rule)."""
        st = self.st
        c = int(self.net.rule_arrays[6][trip])
        while k > 1 and st.src_bpos[k - 1, o, c] == st.src_bpos[k, o, c]:
            k -= 1
        bpos = int(st.src_bpos[k, o, c])
        how = int(st.src_how[k, o, c])
        seated = how == kernels.HOW_SEATED
        leg = self._leg(trip, o, bpos, apos, seated)
        self.legs.append(leg)
        self._chain(k, o, trip, leg, kernels.HOW_LABEL if seated else how)

    def walk(self, k: int, s: int) -> None:
        st = self.st
        while st.w_copy[k, s]:
            k -= 1
        u = int(st.w_from[k, s])
        d = self._walk_s(u, s)
        t = int(st.wtau[k, s])
        self.legs.append(WalkLeg(u, s, t - d, t))
        if k == 0:
            self.access(u)
        else:
            self.ride(k, u)

    def ready(self, k: int, s: int, dep: int) -> None:
        """The label a boarding at stop ``s`` at ``dep`` in round ``k + 1`` was caught from."""
        st = self.st
        lim = st.board_limit
        if k > 0 and lim is not None and lim[s] < BIG:
            # A range query keeps the origin's label in round 0 (kernels.raptor_pruned): the
            # scan boarded from it when it was the earlier and the trip left by the limit.
            r0 = int(st.ready[0, s])
            if r0 <= int(st.ready[k, s]) and r0 <= dep <= int(lim[s]):
                k = 0
        while st.ready_src[k, s] == kernels.COPY:
            k -= 1
        src = int(st.ready_src[k, s])
        if src == kernels.ACCESS:
            self.access(s)
        elif src == kernels.RIDE:
            self.ride(k, s)
        elif src == kernels.WALK:
            self.walk(k, s)
        else:
            raise RuntimeError(f"unlabelled stop {s} in round {k}")

    def arrival(self, k: int, s: int) -> None:
        st = self.st
        acc = st.departure + int(st.access_s[s]) if st.access_s[s] >= 0 else BIG
        r, w = int(st.rtau[k, s]), int(st.wtau[k, s])
        if acc <= r and acc <= w:
            self.access(s)
        elif r <= w:
            self.ride(k, s)
        else:
            self.walk(k, s)


def reconstruct(
    network: RaptorNetwork,
    query: QueryArrays,
    state: SearchState,
    k: int,
    stop: int,
    egress_s: int | None,
) -> Journey:
    """Read the journey ending at ``stop`` with at most ``k`` rides back from the labels.

    ``egress_s`` adds a final walk to the destination. On a reversed network the legs are
    mapped back to forward stops, positions and times.
    """
    reader = _Reader(network, query, state)
    if egress_s is not None and egress_s > 0:
        acc = state.departure + int(state.access_s[stop]) if state.access_s[stop] >= 0 else BIG
        t = min(int(state.rtau[k, stop]), int(state.wtau[k, stop]), acc)
        reader.legs.append(WalkLeg(stop, -1, t, t + egress_s))
    reader.arrival(k, stop)
    legs = reader.legs
    legs.reverse()
    if network.reversed:
        # A ride stayed seated into in the mirrored frame continues the ride after it in
        # forward order: the flag moves to that one.
        seated = [isinstance(leg, RideLeg) and leg.stay_seated for leg in legs]
        fwd = [_mirror_leg(network, leg) for leg in reversed(legs)]
        n = len(fwd)
        legs = [
            dataclasses.replace(leg, stay_seated=j > 0 and seated[n - j])
            if isinstance(leg, RideLeg)
            else leg
            for j, leg in enumerate(fwd)
        ]
    if not legs:
        t = int(state.departure)
        if network.reversed:
            t = -t
        legs = [WalkLeg(stop, stop, t, t)]
    return Journey(tuple(_tighten(legs)))


def _mirror_leg(network: RaptorNetwork, leg: Leg) -> Leg:
    if isinstance(leg, WalkLeg):
        return WalkLeg(leg.to_stop, leg.from_stop, -leg.arrival, -leg.departure)
    n_pos = int(np.diff(network.trip_st_ptr[leg.trip : leg.trip + 2])[0])
    return RideLeg(
        trip=int(network.trip_order[leg.trip]),
        board_pos=n_pos - 1 - leg.alight_pos,
        alight_pos=n_pos - 1 - leg.board_pos,
        board_stop=leg.alight_stop,
        alight_stop=leg.board_stop,
        departure=-leg.arrival,
        arrival=-leg.departure,
        day_offset=-leg.day_offset,
    )


def _tighten(legs: list[Leg]) -> list[Leg]:
    """Walk just in time: walks before the first ride end at its departure, walks after the
    last ride start at its arrival (waiting happens at the origin/destination, not a stop)."""
    ride_idx = [i for i, leg in enumerate(legs) if isinstance(leg, RideLeg)]
    if not ride_idx:
        # Walking only: start at the first leg's departure, chain the rest.
        out: list[Leg] = []
        t = legs[0].departure if legs else 0
        for leg in legs:
            out.append(WalkLeg(leg.from_stop, leg.to_stop, t, t + leg.seconds))  # type: ignore[union-attr]
            t += leg.seconds  # type: ignore[union-attr]
        return out
    out = list(legs)
    t = legs[ride_idx[0]].departure
    for i in range(ride_idx[0] - 1, -1, -1):
        w = legs[i]
        assert isinstance(w, WalkLeg)
        out[i] = WalkLeg(w.from_stop, w.to_stop, t - w.seconds, t)
        t -= w.seconds
    t = legs[ride_idx[-1]].arrival
    for i in range(ride_idx[-1] + 1, len(legs)):
        w = legs[i]
        assert isinstance(w, WalkLeg)
        out[i] = WalkLeg(w.from_stop, w.to_stop, t, t + w.seconds)
        t += w.seconds
    return out


@dataclass(frozen=True)
class SearchResult:
    """The labels of a finished search and the journeys read from them."""

    state: SearchState
    journeys: tuple[Journey, ...]

    @property
    def best(self) -> IntArray:
        """[S] earliest arrival (or, after ``latest_departure``, minus the latest departure)."""
        return self.state.best


def _pareto_journeys(
    network: RaptorNetwork,
    query: QueryArrays,
    state: SearchState,
    egress: IntArray,
    include_egress_leg: bool,
    seen: npt.NDArray[np.int64] | None = None,
    targets: npt.NDArray[np.int64] | None = None,
) -> list[Journey]:
    """One journey per number of rides that strictly improves the arrival at the target.

    ``seen`` ([K+1], updated) holds each round's best target arrival of the earlier runs of an
    rRAPTOR search: a round that did not improve on it still holds the journey found with a
    later departure (which dominates), so it is not read back again. ``targets`` (the stops
    with ``egress >= 0``) may be given by a caller that reads back many runs.
    """
    if targets is None:
        targets = np.flatnonzero(egress >= 0)
    if targets.size == 0:
        return []
    if seen is None:
        seen = np.full(state.rtau.shape[0], BIG, dtype=np.int64)
    picks = kernels.pareto_rounds(
        state.rtau, state.wtau, state.access_s, int(state.departure), egress, targets, seen
    )
    return [
        reconstruct(
            network, query, state, int(k), int(s), int(egress[s]) if include_egress_leg else None
        )
        for k, s in picks
    ]


def _goal(
    network: RaptorNetwork, query: QueryArrays, access: IntArray, egress: IntArray, prune: bool
) -> tuple[IntArray | None, bool]:
    """Lower bounds towards the targets (None without targets or pruning) and whether any
    access stop can reach a target at all."""
    if not prune or not (egress >= 0).any():
        return None, True
    if (access >= 0).any() and not query.bound_graph(network).connects(access, egress):
        # No origin is even weakly connected to a target: no Dijkstra needed to say so.
        return None, False
    lb = query.lower_bounds(network, egress, access)
    starts = access >= 0
    return lb, bool((lb[starts] < BIG).any())


def earliest_arrival(
    network: RaptorNetwork,
    query: QueryArrays,
    departure: int,
    access_stops: npt.ArrayLike,
    access_s: npt.ArrayLike,
    egress_stops: npt.ArrayLike | None = None,
    egress_s: npt.ArrayLike | None = None,
    *,
    prune: bool = True,
) -> SearchResult:
    """Earliest arrival from ``departure`` via the access stops.

    Without egress stops this is one-to-all (``result.best``); with them, the search prunes
    against the best arrival at a target and returns the Pareto set of journeys over
    (arrival, number of transfers). With ``prune`` (the default) it also prunes with lower
    bounds towards the targets (:mod:`routing.raptor.bounds`) and answers at once, with no
    journey, when no access stop can reach a target; ``result.best`` then holds only what the
    search needed.
    """
    egress = _as_targets(network.n_stops, egress_stops, egress_s)
    access = _as_targets(network.n_stops, access_stops, access_s)
    lb, reachable = _goal(network, query, access, egress, prune)
    if not reachable:
        empty = SearchState.unreached(query.max_rides + 1, network.n_stops, departure, access)
        return SearchResult(empty, ())
    state = run(network, query, departure, access, egress, lower_bound=lb)
    journeys = _pareto_journeys(network, query, state, egress, True)
    if query.max_travel_s > 0:  # a walk alone is not pruned by the kernel
        journeys = [j for j in journeys if j.arrival <= departure + query.max_travel_s]
    return SearchResult(state, tuple(journeys))


def latest_departure(
    reversed_network: RaptorNetwork,
    reversed_query: QueryArrays,
    arrival: int,
    egress_stops: npt.ArrayLike,
    egress_s: npt.ArrayLike,
    access_stops: npt.ArrayLike | None = None,
    access_s: npt.ArrayLike | None = None,
    *,
    prune: bool = True,
) -> SearchResult:
    """Latest departure to arrive by ``arrival`` (arrive-by), on the mirrored network.

    ``egress_*`` are the forward egress stops (where the backward search starts) and
    ``access_*`` the forward access stops (its targets). ``result.best`` holds ``-departure``
    per stop; journeys are in forward order and times. ``prune`` as in
    :func:`earliest_arrival`.
    """
    if not reversed_network.reversed:
        raise ValueError("latest_departure needs network.reverse()")
    targets = _as_targets(reversed_network.n_stops, access_stops, access_s)
    starts = _as_targets(reversed_network.n_stops, egress_stops, egress_s)
    lb, reachable = _goal(reversed_network, reversed_query, starts, targets, prune)
    if not reachable:
        empty = SearchState.unreached(
            reversed_query.max_rides + 1, reversed_network.n_stops, -int(arrival), starts
        )
        return SearchResult(empty, ())
    state = run(reversed_network, reversed_query, -arrival, starts, targets, lower_bound=lb)
    journeys = _pareto_journeys(reversed_network, reversed_query, state, targets, True)
    if reversed_query.max_travel_s > 0:
        journeys = [j for j in journeys if j.departure >= arrival - reversed_query.max_travel_s]
    return SearchResult(state, tuple(journeys))


def range_query(
    network: RaptorNetwork,
    query: QueryArrays,
    t0: int,
    window_s: int,
    access_stops: npt.ArrayLike,
    access_s: npt.ArrayLike,
    egress_stops: npt.ArrayLike,
    egress_s: npt.ArrayLike | None = None,
    *,
    prune: bool = True,
) -> list[Journey]:
    """rRAPTOR: the Pareto set of (later departure, earlier arrival, fewer transfers).

    Window semantics: a journey counts when it leaves the origin inside
    ``[t0, t0 + window_s]`` — its departure is its first boarding minus the walk before it
    (the access and at most one footpath), so "boarding inside the window" shifted by that walk.
    Among those, a journey is dropped when another departs no earlier, arrives no later and
    has no more transfers (strictly better in one). Journeys are rides: walking straight to the
    destination takes as long whenever one leaves, so it is the caller's (the planner's own
    direct walk), not a member of the set.

    Runs one RAPTOR per distinct departure in the window that catches a trip at a stop the
    origin's walk reaches, latest first, reusing the labels (Delling et al., 2012, §4), its
    first round from the stops of that departure only (elsewhere the first trip catchable is
    the one a later run caught); the first ride may not leave after the window
    (``board_limit``), so no label of a journey departing later shadows one inside it; a
    later ride may (a journey that comes back to a
    stop the origin walks to, or to the origin, boards there after the window: the kernel
    keeps the origin's labels apart from those after a ride). ``prune`` as in
    :func:`earliest_arrival` (the bounds are computed once for every run).
    """
    access = _as_targets(network.n_stops, access_stops, access_s)
    egress = _as_targets(network.n_stops, egress_stops, egress_s)
    lb, reachable = _goal(network, query, access, egress, prune)
    if not reachable:
        return []
    # Journeys may start on foot: a walk from an access stop reaches more first boardings.
    start_s = kernels.walk_starts(
        access,
        network.transfer_ptr,
        network.transfer_to,
        query.footpath_seconds(network),
        int(query.max_transfer_s),
    )
    deps, dep_stops = kernels.departures_in_window(
        network.pattern_trip_ptr,
        network.trip_st_ptr,
        query.st_dep,
        query.st_board,
        network.stop_pattern_ptr,
        network.stop_patterns,
        network.stop_pattern_pos,
        query.active,
        query.offsets,
        start_s,
        int(t0),
        int(t0 + window_s),
    )
    # Latest first; each with the stop where it boards (a run starts its first round there).
    order = np.argsort(-deps, kind="stable")
    deps = np.ascontiguousarray(deps[order])
    dep_stops = np.ascontiguousarray(dep_stops[order])
    state = SearchState(
        query.max_rides + 1,
        network.n_stops,
        len(query.offsets),
        network.n_seat_targets,
        network.n_rule_sources,
    )
    found: list[Journey] = []
    seen = np.full(query.max_rides + 1, BIG, dtype=np.int64)
    # The first ride leaves stop s (reached after a walk of start_s[s]) by the window's end.
    limit = np.where(start_s >= 0, int(t0 + window_s) + start_s, BIG).astype(np.int32)
    targets = np.flatnonzero(egress >= 0)
    state.access_s = access
    state.board_limit = limit
    mark0 = np.zeros(network.n_stops, dtype=np.bool_)
    head, tail = _kernel_args(network, query, access, egress, state, lb, limit, mark0)
    max_travel = int(query.max_travel_s)
    # The runs in one compiled loop, back in Python only to read a run's new journeys (before
    # the next run overwrites its labels).
    i = 0
    while i < len(deps):
        i, picks = kernels.range_runs(deps, dep_stops, i, max_travel, seen, targets, *head, *tail)
        if len(picks):
            state.departure = int(deps[i - 1])
            found.extend(
                reconstruct(network, query, state, int(k), int(s), int(egress[s])) for k, s in picks
            )
    return pareto_filter([j for j in found if j.rides])


def _moving(journey: Journey) -> list[Leg]:
    """The legs of ``journey`` without a standing still "walk" (a stop to itself, no time)."""
    return [
        leg
        for leg in journey.legs
        if not (isinstance(leg, WalkLeg) and leg.from_stop == leg.to_stop and leg.seconds == 0)
    ]


def via_earliest_arrival(
    network: RaptorNetwork,
    query: QueryArrays,
    departure: int,
    access_stops: npt.ArrayLike,
    access_s: npt.ArrayLike,
    via: Sequence[tuple[npt.ArrayLike, int]],
    egress_stops: npt.ArrayLike,
    egress_s: npt.ArrayLike | None = None,
    *,
    prune: bool = True,
) -> Journey | None:
    """The earliest arrival through every via stop in order, staying at each for its time.

    ``via`` holds ``(stops, stay_s)``: any of ``stops`` (e.g. a station's platforms) counts,
    and the journey leaves it no sooner than ``stay_s`` after arriving — nor sooner than the
    stop's change time when it came by a ride. Searches leg by leg: with FIFO trips, arriving
    at a via stop as early as possible never makes the rest later, so the chain of earliest
    arrivals is the earliest arrival through the stops. The transfer limit holds for each
    part; None when a part has no journey (or the whole breaks ``max_travel_s``).
    """
    legs: list[Leg] = []
    t = int(departure)
    a_stops: npt.ArrayLike = access_stops
    a_secs: npt.ArrayLike = access_s
    for stops, stay in via:
        vs = np.asarray(stops, dtype=np.int64)
        res = earliest_arrival(
            network, query, t, a_stops, a_secs, vs, np.zeros(len(vs), np.int64), prune=prune
        )
        if not res.journeys:
            return None
        part = min(res.journeys, key=lambda j: (j.arrival, j.n_transfers))
        legs.extend(_moving(part))
        last = part.legs[-1]
        at = int(last.to_stop if isinstance(last, WalkLeg) else last.alight_stop)
        if at < 0:
            at = int(vs[0])
        wait = int(stay)
        if isinstance(last, RideLeg):
            wait = max(wait, int(query.change_s[at]))
        t = part.arrival + wait
        a_stops, a_secs = [at], [0]
    res = earliest_arrival(network, query, t, a_stops, a_secs, egress_stops, egress_s, prune=prune)
    if not res.journeys:
        return None
    part = min(res.journeys, key=lambda j: (j.arrival, j.n_transfers))
    legs.extend(_moving(part))
    if not legs:
        legs = list(part.legs)
    journey = Journey(tuple(legs))
    if query.max_travel_s > 0 and journey.arrival > departure + query.max_travel_s:
        return None
    return journey


def pareto_filter(journeys: list[Journey]) -> list[Journey]:
    """Journeys not dominated on (departure later, arrival earlier, fewer transfers).

    Rides-only duplicates (same trips) keep the one departing latest.
    """
    # Each journey's criteria computed once: Journey's properties rebuild its rides on every
    # read, and the pairwise test below read them O(n^2) times (a third of a small network's
    # range query).
    uniq: dict[tuple[object, ...], tuple[int, int, int, Journey]] = {}
    for j in journeys:
        rides = j.rides
        dep, arr = j.departure, j.arrival
        key: tuple[object, ...] = (
            (tuple((r.trip, r.board_pos, r.alight_pos) for r in rides), arr)
            if rides
            else ("walk", arr - dep)
        )
        old = uniq.get(key)
        if old is None or dep > old[0]:
            n_tr = max(0, sum(1 for r in rides if not r.stay_seated) - 1)
            uniq[key] = (dep, arr, n_tr, j)
    cands = list(uniq.values())
    out = []
    for c in cands:
        dep, arr, n_tr, _ = c
        if not any(
            o_dep >= dep
            and o_arr <= arr
            and o_tr <= n_tr
            and (o_dep > dep or o_arr < arr or o_tr < n_tr)
            for o_dep, o_arr, o_tr, _ in cands
        ):
            out.append(c)
    out.sort(key=lambda c: c[:3])
    return [c[3] for c in out]

"""The router's narrow view of a timetable: plain arrays, nothing else.

The core never sees a GTFS object or a ``CompiledTimetable``; ``routing.transit`` builds a
:class:`RaptorNetwork` from one. The same structure, with times negated and every pattern read
backwards, is the *reversed* network on which a forward search computes latest departures
(arrive-by queries), so that one kernel serves both directions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int32]
Int64Array = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Int8Array = npt.NDArray[np.int8]

CONT_BLOCK = 0
"""A continuation candidate from ``block_id``: on a day, the vehicle's next trip is the first
candidate that runs; riders stay seated into it."""
CONT_IN_SEAT = 1
"""transfers.txt ``transfer_type=4``: riders may stay seated into this trip."""
CONT_NOT_SEATED = 2
"""A ``block_id`` candidate that transfers.txt ``transfer_type=5`` closes: when it is the
vehicle's next trip, riders must get off (a normal transfer)."""

INF = np.int32(2**31 - 1)
"""Unreached time. Seconds only ever lie within a few days of 0, far from overflowing."""


@dataclass(frozen=True, eq=False)
class RaptorNetwork:
    """Patterns, trips, stop times, stop→patterns and footpaths as flat CSR arrays.

    Attributes
    ----------
    n_stops
        Number of stops ``S``.
    pattern_stop_ptr, pattern_stops
        CSR [P+1] / [.] : the stop sequence of each pattern.
    pattern_trip_ptr
        [P+1]: trips of pattern ``p`` are ``pattern_trip_ptr[p]..[p+1]``, in FIFO order.
    trip_st_ptr
        [T+1]: stop times of trip ``t`` are ``trip_st_ptr[t]..[t+1]``, one per pattern stop.
    st_arr, st_dep
        [N] scheduled arrival/departure, seconds of the service day.
    st_board, st_alight
        [N] whether boarding / alighting is allowed (pickup_type/drop_off_type != 1).
    stop_pattern_ptr, stop_patterns, stop_pattern_pos
        CSR [S+1]: the patterns serving each stop and the stop's position within each.
    transfer_ptr, transfer_to, transfer_s
        CSR [S+1]: footpaths between distinct stops, seconds.
    stop_change_s
        [S] minimum time to change vehicles at a stop (transfers.txt ``from == to``).
    trip_order
        [T] the index of each trip of this network in the network it was built from (identity
        for a forward network, the mirrored position for a reversed one).
    st_order
        [N] likewise for stop times, so labels map back to the forward stop times.
    reversed
        True for the time-mirrored network used by arrive-by searches.
    cont_ptr, cont_to, cont_kind
        CSR [T+1] / [C] / [C] or None (no stay-seated continuation anywhere): the trips a
        rider on trip ``t`` may stay seated into at its last stop, in this network's time
        direction (see :data:`CONT_BLOCK`). Block candidates are listed in the order the
        vehicle runs them: on a day, the first one that runs is the vehicle's next trip.
    back_ptr, back_to, back_kind
        The same lists in the opposite time direction (the trips each trip continues from);
        :meth:`reverse` swaps the two.
    rx_flag, rx_ptr, rx_trip, rx_pos, rx_need, rx_edge
        Trip/route transfer rules (:mod:`routing.raptor.rules`) or None: ``rx_flag`` [N] int8
        marks the stop times whose boarding a transfers.txt rule may govern (``rules.GOVERNED``
        at that stop only, ``rules.WALK_GOVERNED`` also from other stops); for those, CSR
        ``rx_ptr`` [N+1] lists every arrival a rider may change from — trip ``rx_trip``,
        position ``rx_pos`` (each list sorted by both) — reached along footpath ``rx_edge``
        (an index into ``transfer_*``; -1 at the same stop), and the time it needs:
        ``rx_need`` indexes ``rule_s`` (-1: the default, the stop's change time or the walk
        plus slack); a forbidden change is not listed.
    rb_flag, rb_ptr, rb_trip, rb_pos, rb_need, rb_edge
        The same in the opposite time direction; :meth:`reverse` swaps the two.
    rule_s
        The distinct seconds the rules state (type 1: 0), which ``rx_need`` indexes.
    """

    n_stops: int
    pattern_stop_ptr: IntArray
    pattern_stops: IntArray
    pattern_trip_ptr: IntArray
    trip_st_ptr: Int64Array
    st_arr: IntArray
    st_dep: IntArray
    st_board: BoolArray
    st_alight: BoolArray
    stop_pattern_ptr: IntArray
    stop_patterns: IntArray
    stop_pattern_pos: IntArray
    transfer_ptr: IntArray
    transfer_to: IntArray
    transfer_s: IntArray
    stop_change_s: IntArray
    trip_order: IntArray
    st_order: Int64Array
    reversed: bool = False
    cont_ptr: IntArray | None = None
    cont_to: IntArray | None = None
    cont_kind: Int8Array | None = None
    back_ptr: IntArray | None = None
    back_to: IntArray | None = None
    back_kind: Int8Array | None = None
    rx_flag: Int8Array | None = None
    rx_ptr: Int64Array | None = None
    rx_trip: IntArray | None = None
    rx_pos: IntArray | None = None
    rx_need: IntArray | None = None
    rx_edge: IntArray | None = None
    rb_flag: Int8Array | None = None
    rb_ptr: Int64Array | None = None
    rb_trip: IntArray | None = None
    rb_pos: IntArray | None = None
    rb_need: IntArray | None = None
    rb_edge: IntArray | None = None
    rule_s: IntArray | None = None

    @property
    def has_rules(self) -> bool:
        """Whether a trip/route transfer rule governs some boarding."""
        return self.rx_flag is not None and bool(self.rx_flag.any())

    @cached_property
    def rule_arrays(
        self,
    ) -> tuple[Int8Array, Int64Array, IntArray, IntArray, IntArray, IntArray, IntArray]:
        """The kernels' view of the rules: ``(rx_flag, rx_ptr, rx_trip, rx_pos, rx_need,
        rx_edge, src_of)`` — ``src_of`` [T] numbers the trips a rider may change from at a governed
        boarding (they keep a label of their own), -1 elsewhere. Empty arrays (``rx_flag``
        of length 0) without rules, which the kernels read as "no rules"."""
        n_t = self.n_trips
        if not self.has_rules:
            z = np.zeros(0, dtype=np.int32)
            return (
                np.zeros(0, dtype=np.int8),
                np.zeros(1, dtype=np.int64),
                z,
                z,
                z,
                z,
                np.full(n_t, -1, dtype=np.int32),
            )
        assert self.rx_flag is not None and self.rx_ptr is not None
        assert self.rx_trip is not None and self.rx_pos is not None and self.rx_need is not None
        assert self.rx_edge is not None
        src_of = np.full(n_t, -1, dtype=np.int32)
        srcs = np.unique(self.rx_trip)
        src_of[srcs] = np.arange(len(srcs), dtype=np.int32)
        return (
            self.rx_flag,
            self.rx_ptr,
            self.rx_trip,
            self.rx_pos,
            self.rx_need,
            self.rx_edge,
            src_of,
        )

    @cached_property
    def rule_walk_stops(self) -> BoolArray:
        """[S] stops where a rule between two stops may govern a boarding (``rx_flag`` 2):
        only walks to them must keep apart by the trip they follow (McRAPTOR's classes)."""
        out = np.zeros(self.n_stops, dtype=np.bool_)
        if self.has_rules:
            assert self.rx_flag is not None
            walk_st = np.flatnonzero(self.rx_flag == 2)
            if len(walk_st):
                trip = np.searchsorted(self.trip_st_ptr, walk_st, side="right") - 1
                pos = walk_st - self.trip_st_ptr[trip]
                pat = self.trip_pattern[trip].astype(np.int64)
                out[self.pattern_stops[self.pattern_stop_ptr[pat] + pos]] = True
        return out

    @cached_property
    def n_rule_sources(self) -> int:
        """How many trips keep a label of their own for the rules (-1 without rules)."""
        return int((self.rule_arrays[6] >= 0).sum()) if self.has_rules else -1

    @cached_property
    def rule_trips(self) -> BoolArray:
        """[T] trips a rule governs a boarding of or a change from: ridden alone."""
        out = np.zeros(self.n_trips, dtype=np.bool_)
        if self.has_rules:
            flag, _, trip, _, _, _, _ = self.rule_arrays
            out[np.repeat(np.arange(self.n_trips), np.diff(self.trip_st_ptr))[flag > 0]] = True
            out[trip] = True
        return out

    @property
    def has_continuations(self) -> bool:
        """Whether any trip has a stay-seated continuation candidate."""
        return self.cont_to is not None and len(self.cont_to) > 0

    @cached_property
    def trip_pattern(self) -> IntArray:
        """[T] the pattern of each trip."""
        return np.repeat(
            np.arange(self.n_patterns, dtype=np.int32), np.diff(self.pattern_trip_ptr)
        ).astype(np.int32)

    @cached_property
    def continuation_arrays(self) -> tuple[IntArray, IntArray, Int8Array, IntArray, BoolArray]:
        """The kernels' view of the continuations: ``(cont_ptr, cont_to, cont_kind, seat_of,
        seated_from)`` — ``seat_of`` [T] numbers the trips that can be stayed seated into
        (-1 for the others), ``seated_from`` [T] marks trips with candidates. Empty lists (all
        ``cont_ptr`` zero) without continuations."""
        n_t = self.n_trips
        if not self.has_continuations:
            return (
                np.zeros(n_t + 1, dtype=np.int32),
                np.zeros(0, dtype=np.int32),
                np.zeros(0, dtype=np.int8),
                np.full(n_t, -1, dtype=np.int32),
                np.zeros(n_t, dtype=np.bool_),
            )
        assert self.cont_ptr is not None and self.cont_to is not None
        assert self.cont_kind is not None
        seat_of = np.full(n_t, -1, dtype=np.int32)
        targets = np.unique(self.cont_to)
        seat_of[targets] = np.arange(len(targets), dtype=np.int32)
        return (
            self.cont_ptr.astype(np.int32),
            self.cont_to.astype(np.int32),
            self.cont_kind.astype(np.int8),
            seat_of,
            np.diff(self.cont_ptr) > 0,
        )

    @cached_property
    def n_seat_targets(self) -> int:
        """How many trips can be stayed seated into."""
        return int((self.continuation_arrays[3] >= 0).sum())

    @property
    def n_patterns(self) -> int:
        return int(self.pattern_trip_ptr.shape[0] - 1)

    @property
    def n_trips(self) -> int:
        return int(self.trip_st_ptr.shape[0] - 1)

    @property
    def n_stop_times(self) -> int:
        return int(self.st_arr.shape[0])

    def mirror_times(self, arr: IntArray, dep: IntArray) -> tuple[IntArray, IntArray]:
        """Map forward stop-time arrays (e.g. realtime) into this network's time frame."""
        if not self.reversed:
            return arr, dep
        # np.take along the last axis: several times faster than dep[..., order] on [O, N].
        o = self.st_order
        return (
            np.negative(np.take(dep, o, axis=-1)).astype(np.int32),
            np.negative(np.take(arr, o, axis=-1)).astype(np.int32),
        )

    def mirror_stop_times(self, values: BoolArray) -> BoolArray:
        """Reorder a forward per-stop-time array (last axis, e.g. [O, N] masks) into this
        network's stop-time order."""
        return np.take(values, self.st_order, axis=-1) if self.reversed else values

    def mirror_trips(self, values: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        """Reorder a forward per-trip array (last axis) into this network's trip order."""
        return values[..., self.trip_order] if self.reversed else values

    def reverse(self) -> RaptorNetwork:
        """The time-mirrored network: a forward search on it is a backward search here.

        Every pattern is read backwards, times are negated (so departures become arrivals),
        boarding and alighting swap, trips of each pattern are reversed (which keeps them in
        FIFO order on negated times) and footpaths are transposed.
        """
        if self.reversed:
            raise ValueError("network is already reversed")
        p_ptr = self.pattern_stop_ptr.astype(np.int64)
        n_p = self.n_patterns
        lengths = np.diff(p_ptr)
        # Stops of each pattern, reversed: index i of pattern p maps to end-1-(i-start).
        pat_of_item = np.repeat(np.arange(n_p), lengths)
        item = np.arange(p_ptr[-1], dtype=np.int64)
        src_item = p_ptr[pat_of_item] + p_ptr[pat_of_item + 1] - 1 - item
        pattern_stops = self.pattern_stops[src_item].astype(np.int32)

        # Trips: pattern p's trips reversed within the pattern's block.
        t_ptr = self.pattern_trip_ptr.astype(np.int64)
        n_t = self.n_trips
        pat_of_trip = np.repeat(np.arange(n_p), np.diff(t_ptr))
        new_t = np.arange(n_t, dtype=np.int64)
        trip_order = (t_ptr[pat_of_trip] + t_ptr[pat_of_trip + 1] - 1 - new_t).astype(np.int32)
        st_len = np.diff(self.trip_st_ptr)[trip_order]
        trip_st_ptr = np.zeros(n_t + 1, dtype=np.int64)
        np.cumsum(st_len, out=trip_st_ptr[1:])
        # Stop times: trip new_t's j-th item is old trip's (len-1-j)-th item.
        trip_of_st = np.repeat(np.arange(n_t), st_len)
        j = np.arange(trip_st_ptr[-1], dtype=np.int64) - trip_st_ptr[trip_of_st]
        old_t = trip_order[trip_of_st]
        st_order = self.trip_st_ptr[old_t] + st_len[trip_of_st] - 1 - j

        # stop -> patterns: same pairs, positions mirrored.
        sp_pat = self.stop_patterns
        sp_pos = (lengths[sp_pat] - 1 - self.stop_pattern_pos).astype(np.int32)

        # Footpaths transposed (CSR by destination).
        src = np.repeat(np.arange(self.n_stops, dtype=np.int32), np.diff(self.transfer_ptr))
        order = np.argsort(self.transfer_to, kind="stable")
        transfer_to = src[order].astype(np.int32)
        transfer_s = self.transfer_s[order].astype(np.int32)
        counts = np.bincount(self.transfer_to, minlength=self.n_stops)
        transfer_ptr = np.zeros(self.n_stops + 1, dtype=np.int32)
        np.cumsum(counts, out=transfer_ptr[1:])
        edge_of = np.empty(len(order), dtype=np.int32)  # footpath index here -> mirrored
        edge_of[order] = np.arange(len(order), dtype=np.int32)

        # Continuations: the forward network's "continues from" lists are the mirrored
        # network's "continues into" lists (and the other way), with trips renumbered.
        inv = np.empty(n_t, dtype=np.int64)
        inv[trip_order] = np.arange(n_t)
        cont = _remap_csr(self.back_ptr, self.back_to, self.back_kind, trip_order, inv)
        back = _remap_csr(self.cont_ptr, self.cont_to, self.cont_kind, trip_order, inv)
        # Transfer rules: the other direction's lists, renumbered into this frame.
        lengths_t = np.diff(self.trip_st_ptr)
        rx = _remap_rules(
            self.rb_flag, self.rb_ptr, self.rb_trip, self.rb_pos, self.rb_need, self.rb_edge,
            st_order, inv, lengths_t, edge_of,
        )  # fmt: skip
        rb = _remap_rules(
            self.rx_flag, self.rx_ptr, self.rx_trip, self.rx_pos, self.rx_need, self.rx_edge,
            st_order, inv, lengths_t, edge_of,
        )  # fmt: skip

        return RaptorNetwork(
            n_stops=self.n_stops,
            pattern_stop_ptr=self.pattern_stop_ptr,
            pattern_stops=pattern_stops,
            pattern_trip_ptr=self.pattern_trip_ptr,
            trip_st_ptr=trip_st_ptr,
            st_arr=(-self.st_dep[st_order]).astype(np.int32),
            st_dep=(-self.st_arr[st_order]).astype(np.int32),
            st_board=self.st_alight[st_order],
            st_alight=self.st_board[st_order],
            stop_pattern_ptr=self.stop_pattern_ptr,
            stop_patterns=self.stop_patterns,
            stop_pattern_pos=sp_pos,
            transfer_ptr=transfer_ptr,
            transfer_to=transfer_to,
            transfer_s=transfer_s,
            stop_change_s=self.stop_change_s,
            trip_order=trip_order,
            st_order=st_order.astype(np.int64),
            reversed=True,
            cont_ptr=cont[0],
            cont_to=cont[1],
            cont_kind=cont[2],
            back_ptr=back[0],
            back_to=back[1],
            back_kind=back[2],
            rx_flag=rx[0],
            rx_ptr=rx[1],
            rx_trip=rx[2],
            rx_pos=rx[3],
            rx_need=rx[4],
            rx_edge=rx[5],
            rb_flag=rb[0],
            rb_ptr=rb[1],
            rb_trip=rb[2],
            rb_pos=rb[3],
            rb_need=rb[4],
            rb_edge=rb[5],
            rule_s=self.rule_s,
        )


def _remap_csr(
    ptr: IntArray | None,
    to: IntArray | None,
    kind: Int8Array | None,
    order: IntArray,
    inv: Int64Array,
) -> tuple[IntArray | None, IntArray | None, Int8Array | None]:
    """A per-trip CSR list renumbered: new trip ``n`` takes old trip ``order[n]``'s items,
    each item's trip mapped by ``inv`` (old -> new); items keep their order."""
    if ptr is None or to is None or kind is None:
        return None, None, None
    counts = np.diff(ptr)[order]
    new_ptr = np.zeros(len(order) + 1, dtype=np.int32)
    np.cumsum(counts, out=new_ptr[1:])
    starts = ptr[:-1][order].astype(np.int64)
    item = np.repeat(starts - new_ptr[:-1], counts) + np.arange(int(new_ptr[-1]))
    return new_ptr, inv[to[item]].astype(np.int32), kind[item].astype(np.int8)


def _remap_rules(
    flag: Int8Array | None,
    ptr: Int64Array | None,
    trip: IntArray | None,
    pos: IntArray | None,
    need: IntArray | None,
    edge: IntArray | None,
    st_order: npt.NDArray[np.int64],
    inv: Int64Array,
    lengths: Int64Array,
    edge_of: IntArray,
) -> tuple[
    Int8Array | None,
    Int64Array | None,
    IntArray | None,
    IntArray | None,
    IntArray | None,
    IntArray | None,
]:
    """Per-stop-time rule lists renumbered into the mirrored frame: new stop time ``n`` takes
    old stop time ``st_order[n]``'s items; an item's trip maps by ``inv`` (old -> new), its
    position is read from the other end (``lengths`` [T] of the old trips) and its footpath
    maps by ``edge_of`` (the same walk, transposed). Each list stays sorted by (trip,
    position): the mirrored positions of one trip reverse, so a list is re-sorted."""
    if flag is None or ptr is None or trip is None or pos is None or need is None or edge is None:
        return None, None, None, None, None, None
    counts = np.diff(ptr)[st_order]
    new_ptr = np.zeros(len(st_order) + 1, dtype=np.int64)
    np.cumsum(counts, out=new_ptr[1:])
    starts = ptr[:-1][st_order].astype(np.int64)
    item = np.repeat(starts - new_ptr[:-1], counts) + np.arange(int(new_ptr[-1]))
    old_t = trip[item]
    new_trip = inv[old_t]
    new_pos = lengths[old_t] - 1 - pos[item]
    owner = np.repeat(np.arange(len(st_order), dtype=np.int64), counts)
    order = np.lexsort((new_pos, new_trip, owner))
    item = item[order]
    e = edge[item]
    mapped = np.full(len(e), -1, dtype=np.int32)
    mapped[e >= 0] = edge_of[e[e >= 0]]
    return (
        flag[st_order],
        new_ptr,
        new_trip[order].astype(np.int32),
        new_pos[order].astype(np.int32),
        need[item].astype(np.int32),
        mapped,
    )

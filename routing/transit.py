"""Adapter from :class:`gtfs.compiled.CompiledTimetable` to the RAPTOR core's arrays.

:class:`TransitData` is built once per published timetable; it holds the forward and the
mirrored :class:`~routing.raptor.network.RaptorNetwork` and turns (service date, options,
realtime overlay) into the per-query :class:`~routing.raptor.search.QueryArrays`.

Service days: a query on date ``D`` may ride trips of ``D`` (times as they are), of ``D - 1``
(times − 86 400: the part of yesterday's trips that runs past midnight) and of ``D + 1``
(times + 86 400: tomorrow morning's trips for late-evening queries).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from gtfs.compiled import CompiledTimetable
from gtfs.footpaths import WALK_SPEED_MPS
from routing.co2 import Co2Factors
from routing.options import RoutingOptions, route_type_mode
from routing.raptor import kernels
from routing.raptor.network import (
    CONT_BLOCK,
    CONT_IN_SEAT,
    CONT_NOT_SEATED,
    BoolArray,
    IntArray,
    RaptorNetwork,
)
from routing.raptor.rules import trip_rule_transfers
from routing.raptor.search import QueryArrays

DAY = 86_400
DAY_OFFSETS = (-1, 0, 1)
"""Service days a query may use, relative to its date."""
SETUP_CACHE_ENTRIES = 8
"""Query set-ups kept per timetable. One realtime version typically needs two per query day
(forward and arrive-by), a few more with wheelchair or mode filters."""
SETUP_CACHE_BYTES = 512 * 2**20
"""Memory the kept set-ups may hold. A realtime set-up holds the times of the three copies
(2 x 3 x 4 bytes per stop time, ~45 MB on Cairns x 50), its mirror as much again."""

_Key = tuple[int, Hashable]


def footpath_speed_mps(tt: CompiledTimetable) -> float:
    """The walking speed the timetable's footpaths were timed at."""
    return float(tt.meta.get("footpaths", {}).get("walk_speed_mps", WALK_SPEED_MPS))


def _owned_bytes(q: QueryArrays) -> int:
    """Memory of ``q``'s arrays, broadcast views (a zero stride: one row for every copy) not
    counted since they hold no memory of their own."""
    arrays = (q.active, q.offsets, q.st_arr, q.st_dep, q.st_board, q.st_alight, q.odd, q.row_fifo)
    return sum(int(a.nbytes) for a in arrays if a is not None and 0 not in a.strides)


class QuerySetupCache:
    """A bounded, thread-safe LRU of query set-ups (:class:`QueryArrays`) per realtime version.

    Each set-up is built once: a query asking for one that another thread is building waits for
    it (``/plan`` runs in worker threads, and right after a realtime message every query needs
    the same new set-up). Versions only grow: the first request of a newer version drops every
    set-up of the older ones (no query can ask for them again), and a request that still
    carries an older version (it read its overlays before the change) is built for itself and
    not kept.

    Parameters
    ----------
    max_entries
        Most set-ups kept; the least recently used goes first.
    max_bytes
        Most memory the kept set-ups' own arrays may hold (least recently used first out); a
        set-up larger than that alone is returned but not kept.
    """

    def __init__(
        self, max_entries: int = SETUP_CACHE_ENTRIES, max_bytes: int = SETUP_CACHE_BYTES
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        if max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[_Key, Future[QueryArrays]] = OrderedDict()
        self._sizes: dict[_Key, int] = {}  # built entries only
        self._bytes = 0
        self._newest: int | None = None
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def stats(self) -> dict[str, int]:
        """Hits, misses (set-ups built), the entries kept and their bytes (tests, monitoring)."""
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "entries": len(self._entries),
                "bytes": self._bytes,
            }

    def _drop(self, key: _Key) -> None:
        """Forget ``key`` (call with the lock held)."""
        del self._entries[key]
        self._bytes -= self._sizes.pop(key, 0)

    def _trim(self) -> None:
        """Drop least recently used entries beyond the bounds (call with the lock held)."""
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def get(self, version: int, key: Hashable, build: Callable[[], QueryArrays]) -> QueryArrays:
        """The set-up of ``key`` at realtime ``version``, built by ``build`` on a miss.

        An exception of ``build`` reaches every query waiting for that set-up, and nothing is
        kept: the next request builds again.
        """
        full = (version, key)
        owner = False
        with self._lock:
            if self._newest is None or version > self._newest:
                self._newest = version
                for old in [k for k in self._entries if k[0] < version]:
                    self._drop(old)
            fut = self._entries.get(full)
            if fut is not None:
                self.hits += 1
                self._entries.move_to_end(full)
            else:
                self.misses += 1
                if version == self._newest:
                    fut = self._entries[full] = Future()
                    owner = True
                    self._trim()
        if fut is None:  # an older version than the newest seen: not worth keeping
            return build()
        if not owner:
            return fut.result()  # built, or being built by another thread: wait for it
        try:
            value = build()
        except BaseException as exc:
            with self._lock:
                if self._entries.get(full) is fut:
                    self._drop(full)
            fut.set_exception(exc)
            raise
        fut.set_result(value)
        with self._lock:
            if self._entries.get(full) is fut:  # not dropped meanwhile (LRU, newer version)
                size = _owned_bytes(value)
                if size > self.max_bytes:  # would evict everything else, then itself
                    self._drop(full)
                else:
                    self._sizes[full] = size
                    self._bytes += size
                    self._trim()
        return value


class TransitData:
    """A compiled timetable prepared for RAPTOR (cheap per-query masks, cached networks)."""

    def __init__(self, tt: CompiledTimetable, co2: Co2Factors | None = None) -> None:
        self.tt = tt
        #: The CO2 factors itineraries and McRAPTOR's CO2 criterion use (None: the library's
        #: fallback, :data:`routing.co2.DESNZ_2023`).
        self.co2 = co2
        # The speed the compiled footpaths were timed at: a traveller's own walking speed
        # scales them (transfers.txt minimum times too: the arrays do not tell them apart).
        self.footpath_speed_mps = footpath_speed_mps(tt)
        n_stops = tt.n_stops
        # Footpaths between distinct stops; transfers.txt "from == to" entries are minimum
        # change times at that stop.
        src = np.repeat(np.arange(n_stops, dtype=np.int32), np.diff(tt.transfer_ptr))
        to = tt.transfer_to.astype(np.int32)
        sec = tt.transfer_s.astype(np.int32)
        self_loop = src == to
        change = np.zeros(n_stops, dtype=np.int32)
        np.maximum.at(change, src[self_loop], sec[self_loop])
        keep = ~self_loop
        counts = np.bincount(src[keep], minlength=n_stops)
        ptr = np.zeros(n_stops + 1, dtype=np.int32)
        np.cumsum(counts, out=ptr[1:])
        self.stop_change_s = change
        self.forward = RaptorNetwork(
            n_stops=n_stops,
            pattern_stop_ptr=tt.pattern_stop_ptr.astype(np.int32),
            pattern_stops=tt.pattern_stops.astype(np.int32),
            pattern_trip_ptr=tt.pattern_trip_ptr.astype(np.int32),
            trip_st_ptr=tt.trip_st_ptr.astype(np.int64),
            st_arr=tt.st_arrival.astype(np.int32),
            st_dep=tt.st_departure.astype(np.int32),
            st_board=tt.st_pickup != 1,
            st_alight=tt.st_dropoff != 1,
            stop_pattern_ptr=tt.stop_pattern_ptr.astype(np.int32),
            stop_patterns=tt.stop_patterns.astype(np.int32),
            stop_pattern_pos=tt.stop_pattern_pos.astype(np.int32),
            transfer_ptr=ptr,
            transfer_to=to[keep],
            transfer_s=sec[keep],
            stop_change_s=change,
            trip_order=np.arange(tt.n_trips, dtype=np.int32),
            st_order=np.arange(tt.n_stop_times, dtype=np.int64),
            **continuations(tt),
            **trip_rule_transfers(tt, ptr, to[keep]),
        )
        self.trip_of_st = np.repeat(np.arange(tt.n_trips, dtype=np.int32), np.diff(tt.trip_st_ptr))
        self.route_modes = np.array([route_type_mode(int(x)) for x in tt.route_types])
        self._st_stop: IntArray | None = None
        self.setup_cache = QuerySetupCache()
        """Realtime query set-ups of this timetable (see :meth:`query_arrays`)."""

    @cached_property
    def backward(self) -> RaptorNetwork:
        """The mirrored network for arrive-by searches (built on first use)."""
        return self.forward.reverse()

    @cached_property
    def pattern_co2(self) -> IntArray:
        """[len(pattern_stops)] cumulative grams of CO2 along each pattern (McRAPTOR's optional
        criterion; :mod:`routing.co2`)."""
        from routing.co2 import pattern_co2_cumulative

        return pattern_co2_cumulative(self.tt, self.co2)

    @property
    def st_stop(self) -> IntArray:
        """[N] stop index of every stop time."""
        if self._st_stop is None:
            tt = self.tt
            pat = tt.trip_pattern[self.trip_of_st].astype(np.int64)
            pos = np.arange(tt.n_stop_times, dtype=np.int64) - tt.trip_st_ptr[self.trip_of_st]
            self._st_stop = tt.pattern_stops[tt.pattern_stop_ptr[pat] + pos].astype(np.int32)
        return self._st_stop

    # ---------------------------------------------------------------------------------------
    def covers(self, day: dt.date) -> bool:
        """Whether ``day`` (or the day before, for trips past midnight) is in the feed."""
        return self.tt.day_index(day) >= 0 or self.tt.day_index(day - dt.timedelta(days=1)) >= 0

    def trip_filter(self, options: RoutingOptions) -> BoolArray:
        """[T] trips allowed by the options (mode, wheelchair, bikes: none where the feed says
        nothing of bikes)."""
        tt = self.tt
        ok = np.ones(tt.n_trips, dtype=np.bool_)
        if options.modes is not None:
            route_ok = np.isin(self.route_modes, list(options.modes))
            ok &= route_ok[tt.trip_route]
        if options.wheelchair:
            ok &= tt.trip_wheelchair == 1
        if options.bikes:
            bikes = tt.trip_bikes if len(tt.trip_bikes) == tt.n_trips else None
            ok &= False if bikes is None else bikes == 1
        return ok

    def query_arrays(
        self,
        day: dt.date,
        options: RoutingOptions,
        realtime: Any | None = None,
        *,
        reverse: bool = False,
        realtime_version: int | None = None,
    ) -> QueryArrays:
        """The per-query arrays for service date ``day`` in the forward (or mirrored) frame.

        With ``realtime_version`` (the realtime source's change counter, e.g.
        ``app.feeds.realtime.RealtimeHub.version``: it must change whenever the overlays it
        stands for change, and only grow), the set-up is cached in :attr:`setup_cache` under
        (version, ``day``, the overlays' dates, the options that shape the arrays, ``reverse``):
        repeated queries share one set-up, and a new version drops the older ones. Without it
        the arrays are built for this query alone. This object is one network generation, so a
        newly published network (a new ``TransitData``) starts with an empty cache.
        """
        if realtime_version is None:
            return self._build_query_arrays(day, options, realtime, reverse=reverse)
        # Only the overlays of the three copies' dates matter (the others are ignored).
        copy_days = {day + dt.timedelta(days=d) for d in DAY_OFFSETS}
        dates = tuple(sorted({rt.service_date for rt in overlays(realtime)} & copy_days))
        key = (day, dates, options.modes, options.wheelchair, options.bikes, reverse)

        def build() -> QueryArrays:
            if reverse and dates:
                # The mirrored realtime arrays are the forward ones mirrored: share their build.
                fwd = self.query_arrays(day, options, realtime, realtime_version=realtime_version)
                return fwd.mirrored(self.backward)
            return self._build_query_arrays(day, options, realtime, reverse=reverse)

        base = self.setup_cache.get(realtime_version, key, build)
        # The cached arrays hold what the key fixes; the scalars and the change times come
        # from this query's options. The kernels' scan sets depend on the cached arrays only.
        return dataclasses.replace(base, **self._common(options), _scan=base._scan)

    def _common(self, options: RoutingOptions) -> dict[str, Any]:
        """The :class:`QueryArrays` fields set by the options alone (cheap, never cached)."""
        feed_change = self.stop_change_s
        if options.transfer_factor != 1.0:
            feed_change = np.ceil(feed_change * options.transfer_factor - 1e-9).astype(np.int32)
        extra = options.transfer_extra_s
        change = np.maximum(feed_change, np.int32(options.min_transfer_s)).astype(np.int32) + extra
        return {
            "change_s": change,
            "slack": int(options.min_transfer_s) + extra,
            "max_travel_s": options.max_travel_s,
            "max_transfer_s": options.max_walk_s,
            "fifo": True,  # row_fifo says where realtime times left a pattern unsorted
            "max_rides": options.max_rides,
            "walk_factor": self.footpath_speed_mps / options.walk_speed_mps,
            "transfer_factor": float(options.transfer_factor),
            "transfer_extra_s": int(extra),
        }

    def _build_query_arrays(
        self,
        day: dt.date,
        options: RoutingOptions,
        realtime: Any | None,
        *,
        reverse: bool,
    ) -> QueryArrays:
        """The arrays of :meth:`query_arrays`, built for one query (nothing cached).

        ``realtime`` is a :class:`gtfs.realtime.RealtimeState` (or anything with the same
        ``service_date``, ``arrival``, ``departure``, ``trip_cancelled`` and ``stop_skipped``
        arrays), or several of them (:func:`overlays`: typically those of ``day - 1``, ``day``
        and ``day + 1``). Each describes the trips of ONE service date, so it changes only the
        copy of that date: there its times replace the schedule, its cancelled trips do not
        run and its skipped stops neither board nor alight. The other copies of the same trips
        (yesterday's run past midnight, tomorrow morning's) keep their schedule unless their
        own day's overlay is given too. Overlays of other dates are ignored.

        Trip copies whose boarding/alighting stops or realtime times do not fit their
        pattern (a skip, an overtaking delay) are marked ``odd``: the kernels ride them one by
        one, as patterns of their own.
        """
        tt = self.tt
        allowed = self.trip_filter(options)
        n_off = len(DAY_OFFSETS)
        active = np.empty((n_off, tt.n_trips), dtype=np.bool_)
        offsets = np.array([d * DAY for d in DAY_OFFSETS], dtype=np.int32)
        rows: dict[int, Any] = {}
        by_date = {rt.service_date: rt for rt in overlays(realtime)}
        for i, d in enumerate(DAY_OFFSETS):
            day_i = day + dt.timedelta(days=d)
            active[i] = tt.active_trips(day_i) & allowed
            rt = by_date.get(day_i)
            if rt is not None:
                rows[i] = rt
                active[i] &= ~np.asarray(rt.trip_cancelled, dtype=np.bool_)
        board = self.forward.st_board
        alight = self.forward.st_alight
        if options.wheelchair:
            stop_ok = tt.stop_wheelchair != 2
            st_ok = stop_ok[self.st_stop]
            board = board & st_ok
            alight = alight & st_ok
        n = tt.n_stop_times
        common = self._common(options)
        if not rows:
            if reverse:
                net = self.backward
                static_odd = self._static_odd
                return QueryArrays(
                    active=np.ascontiguousarray(active[:, net.trip_order]),
                    offsets=(-offsets).astype(np.int32),
                    st_arr=np.broadcast_to(net.st_arr, (n_off, n)),
                    st_dep=np.broadcast_to(net.st_dep, (n_off, n)),
                    st_board=np.broadcast_to(alight[net.st_order], (n_off, n)),
                    st_alight=np.broadcast_to(board[net.st_order], (n_off, n)),
                    odd=None
                    if static_odd is None
                    else np.ascontiguousarray(net.mirror_trips(static_odd)),
                    row_fifo=self._static_row_fifo,
                    **common,  # type: ignore[arg-type]
                )
            return QueryArrays(
                active=active,
                offsets=offsets,
                st_arr=np.broadcast_to(self.forward.st_arr, (n_off, n)),
                st_dep=np.broadcast_to(self.forward.st_dep, (n_off, n)),
                st_board=np.broadcast_to(board, (n_off, n)),
                st_alight=np.broadcast_to(alight, (n_off, n)),
                odd=self._static_odd,
                row_fifo=self._static_row_fifo,
                **common,  # type: ignore[arg-type]
            )
        # Per-copy arrays: only the rows of the overlays' days differ from the schedule.
        fwd = self.forward
        arr = np.empty((n_off, n), dtype=np.int32)
        dep = np.empty((n_off, n), dtype=np.int32)
        modified = np.zeros((n_off, tt.n_trips), dtype=np.bool_)
        skipped_trips = np.zeros((n_off, tt.n_trips), dtype=np.bool_)
        skipped: dict[int, BoolArray] = {}
        for i in range(n_off):
            rt = rows.get(i)
            if rt is None:
                arr[i] = fwd.st_arr
                dep[i] = fwd.st_dep
                continue
            arr[i] = np.asarray(rt.arrival, dtype=np.int32)
            dep[i] = np.asarray(rt.departure, dtype=np.int32)
            skipped[i] = np.asarray(rt.stop_skipped, dtype=np.bool_)
            modified[i], skipped_trips[i] = kernels.changed_trips(
                fwd.trip_st_ptr, arr[i], dep[i], fwd.st_arr, fwd.st_dep, skipped[i]
            )
        if skipped_trips.any():
            board2 = np.repeat(board[None, :], n_off, axis=0)
            alight2 = np.repeat(alight[None, :], n_off, axis=0)
            for i, sk in skipped.items():
                board2[i] &= ~sk
                alight2[i] &= ~sk
        else:  # no skip: the masks stay one row for every copy
            board2 = np.broadcast_to(board, (n_off, n))
            alight2 = np.broadcast_to(alight, (n_off, n))
        odd = (
            np.zeros((n_off, tt.n_trips), dtype=np.bool_)
            if self._static_odd is None
            else self._static_odd.copy()
        )
        row_fifo = (
            np.ones((n_off, tt.n_patterns), dtype=np.bool_)
            if self._static_row_fifo is None
            else self._static_row_fifo.copy()
        )
        touched = modified.any(axis=0) | skipped_trips.any(axis=0)
        if touched.any():
            # Re-order the touched patterns from their static state: copies whose masks differ
            # from their pattern's (static types, realtime skips) are odd whatever their times;
            # the others must form one FIFO chain with the realtime times.
            pats = np.unique(tt.trip_pattern[touched]).astype(np.int64)
            in_pats = np.isin(tt.trip_pattern, pats)
            odd[:, in_pats] = self._mask_odd[in_pats]
            odd |= skipped_trips
            kernels.split_odd_copies(
                pats,
                self.forward.pattern_trip_ptr,
                self.forward.trip_st_ptr,
                arr,
                dep,
                offsets,
                active,
                modified,
                odd,
                np.isin(np.arange(n_off), list(rows)),  # only the overlays' rows changed order
                self._sched_sorted,
                row_fifo,
            )
        q = QueryArrays(
            active=active,
            offsets=offsets,
            st_arr=arr,
            st_dep=dep,
            st_board=board2,
            st_alight=alight2,
            odd=odd if odd.any() else None,
            row_fifo=row_fifo,
            **common,  # type: ignore[arg-type]
        )
        return q.mirrored(self.backward) if reverse else q

    def _trips_of(self, st_mask: BoolArray) -> BoolArray:
        """[T] trips with at least one stop time in ``st_mask`` ([N]).

        One reduction over each trip's contiguous stop times (every compiled trip has two or
        more, so no segment is empty)."""
        if self.tt.n_trips == 0:
            return np.zeros(0, dtype=np.bool_)
        return np.logical_or.reduceat(st_mask, self.tt.trip_st_ptr[:-1].astype(np.int64))

    @cached_property
    def _mask_odd(self) -> BoolArray:
        """[T] trips whose boarding or alighting stops differ from most trips of their pattern.

        Compiled feeds split patterns on closed pickups/drop-offs (:mod:`gtfs.patterns`), so
        this is all False there; hand-built timetables may mix them in one pattern.
        """
        tt = self.tt
        pat = tt.trip_pattern[self.trip_of_st].astype(np.int64)
        pos = np.arange(tt.n_stop_times, dtype=np.int64) - tt.trip_st_ptr[self.trip_of_st]
        entry = tt.pattern_stop_ptr[pat] + pos
        n_trips = np.diff(tt.pattern_trip_ptr).astype(np.int64)[pat]
        odd_st = np.zeros(tt.n_stop_times, dtype=np.bool_)
        for bits in (self.forward.st_board, self.forward.st_alight):
            count = np.bincount(entry, weights=bits, minlength=len(tt.pattern_stops))
            odd_st |= bits != (2 * count[entry] >= n_trips)
        return self._trips_of(odd_st)

    @cached_property
    def _static_order(self) -> tuple[npt.NDArray[np.bool_] | None, npt.NDArray[np.bool_] | None]:
        """Odd trip copies and row FIFO flags of the schedule, over every copy of every trip
        whatever the day (a subset of a chain is a chain, so this holds for any query)."""
        tt = self.tt
        n_off = len(DAY_OFFSETS)
        n = tt.n_stop_times
        odd = np.repeat(self._mask_odd[None, :], n_off, axis=0)
        row_fifo = np.ones((n_off, tt.n_patterns), dtype=np.bool_)
        kernels.split_odd_copies(
            np.arange(tt.n_patterns, dtype=np.int64),
            self.forward.pattern_trip_ptr,
            self.forward.trip_st_ptr,
            np.broadcast_to(self.forward.st_arr, (n_off, n)),
            np.broadcast_to(self.forward.st_dep, (n_off, n)),
            np.array([d * DAY for d in DAY_OFFSETS], dtype=np.int32),
            np.ones((n_off, tt.n_trips), dtype=np.bool_),
            np.zeros((n_off, tt.n_trips), dtype=np.bool_),
            odd,
            np.ones(n_off, dtype=np.bool_),
            np.zeros(tt.n_patterns, dtype=np.bool_),  # nothing known yet: compare every pair
            row_fifo,
        )
        return (odd if odd.any() else None), (None if row_fifo.all() else row_fifo)

    @property
    def _sched_sorted(self) -> npt.NDArray[np.bool_]:
        """[P] patterns whose scheduled trips are in FIFO order (all rows share the schedule)."""
        rf = self._static_row_fifo
        return np.ones(self.tt.n_patterns, dtype=np.bool_) if rf is None else rf[0]

    @property
    def _static_odd(self) -> npt.NDArray[np.bool_] | None:
        return self._static_order[0]

    @property
    def _static_row_fifo(self) -> npt.NDArray[np.bool_] | None:
        return self._static_order[1]


def _csr(lists: list[list[tuple[int, int]]]) -> tuple[IntArray, IntArray, npt.NDArray[np.int8]]:
    ptr = np.zeros(len(lists) + 1, dtype=np.int32)
    np.cumsum([len(x) for x in lists], out=ptr[1:])
    to = np.array([u for x in lists for u, _ in x], dtype=np.int32)
    kind = np.array([k for x in lists for _, k in x], dtype=np.int8)
    return ptr, to, kind


def continuations(tt: CompiledTimetable) -> dict[str, Any]:
    """The stay-seated continuations of ``tt`` as :class:`RaptorNetwork` fields (empty dict
    when there are none).

    GTFS: trips sharing a ``block_id`` are run by one vehicle, and on a service day a rider may
    stay on board from one to the next (in-seat transfer) — the next being the first later
    trip of the block that runs that day (it starts no earlier than the trip ends).
    ``transfers.txt`` trip-to-trip rules take precedence: ``transfer_type=4`` allows staying
    seated from ``from_trip_id`` into ``to_trip_id`` whatever the blocks say, ``5`` forbids it
    (the rider alights and changes as at any stop). Candidates of a trip are listed until one
    runs on every day the trip runs (later ones can never be the vehicle's next trip). The
    forward lists give the trips each trip continues into, the backward lists the trips each
    continues from (for arrive-by searches), same rules.
    """
    n_t = tt.n_trips
    fwd: list[list[tuple[int, int]]] = [[] for _ in range(n_t)]
    back: list[list[tuple[int, int]]] = [[] for _ in range(n_t)]
    if n_t == 0:
        return {}
    ptr = tt.trip_st_ptr
    start = tt.st_departure[ptr[:-1]].astype(np.int64)
    end = tt.st_arrival[ptr[1:] - 1].astype(np.int64)
    not_seated: set[tuple[int, int]] = set()
    in_seat: list[tuple[int, int]] = []
    for a, b, ty in zip(
        tt.rule_from_trip.tolist(), tt.rule_to_trip.tolist(), tt.rule_type.tolist(), strict=True
    ):
        if a >= 0 and b >= 0 and a != b:
            if ty == 4:
                in_seat.append((a, b))
            elif ty == 5:
                not_seated.add((a, b))
    covers_cache: dict[tuple[int, int], bool] = {}
    sd = tt.service_days

    def covers(u: int, t: int) -> bool:
        """Whether trip u runs on every day trip t runs."""
        key = (int(tt.trip_service[u]), int(tt.trip_service[t]))
        got = covers_cache.get(key)
        if got is None:
            got = bool(np.all(sd[key[0]] | ~sd[key[1]]))
            covers_cache[key] = got
        return got

    blocks = tt.trip_blocks if len(tt.trip_blocks) == n_t else np.zeros(0, dtype=np.str_)
    if len(blocks):
        has = np.flatnonzero(blocks != "")
        if len(has):
            order = has[np.lexsort((start[has], blocks[has]))]
            names = blocks[order]
            cuts = np.flatnonzero(names[1:] != names[:-1]) + 1
            for group in np.split(order, cuts):
                g = group.tolist()
                for i, t in enumerate(g):
                    for u in g[i + 1 :]:
                        if start[u] < end[t]:
                            continue
                        kind = CONT_NOT_SEATED if (t, u) in not_seated else CONT_BLOCK
                        fwd[t].append((u, kind))
                        if covers(u, t):
                            break
                by_end = sorted(g, key=lambda x: -end[x])
                for t in g:
                    for u in by_end:
                        if u == t or end[u] > start[t]:
                            continue
                        kind = CONT_NOT_SEATED if (u, t) in not_seated else CONT_BLOCK
                        back[t].append((u, kind))
                        if covers(u, t):
                            break
    for a, b in in_seat:
        fwd[a].append((b, CONT_IN_SEAT))
        back[b].append((a, CONT_IN_SEAT))
    if not any(fwd):
        return {}
    f_ptr, f_to, f_kind = _csr(fwd)
    b_ptr, b_to, b_kind = _csr(back)
    return {
        "cont_ptr": f_ptr,
        "cont_to": f_to,
        "cont_kind": f_kind,
        "back_ptr": b_ptr,
        "back_to": b_to,
        "back_kind": b_kind,
    }


def overlays(realtime: Any | None) -> list[Any]:
    """The realtime overlays in ``realtime``: None, one overlay (anything with a
    ``service_date``) or an iterable of them (None entries skipped)."""
    if realtime is None:
        return []
    if hasattr(realtime, "service_date"):
        return [realtime]
    return [rt for rt in realtime if rt is not None]


def overlay_for(realtime: Any | None, service_date: dt.date) -> Any | None:
    """The overlay of ``service_date`` among ``realtime`` (see :func:`overlays`), or None."""
    for rt in overlays(realtime):
        if rt.service_date == service_date:
            return rt
    return None

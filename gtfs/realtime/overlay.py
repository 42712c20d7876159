"""Apply GTFS-Realtime TripUpdates to a :class:`~gtfs.compiled.CompiledTimetable`.

The result, :class:`RealtimeState`, is an array overlay for ONE service date that the router
reads directly, with no per-query Python work:

* ``rt.arrival``, ``rt.departure``: ``int32`` [N], same shape and time convention as
  ``tt.st_arrival`` / ``tt.st_departure`` (seconds from "noon minus 12h" of the service date) —
  scheduled time + realtime delay, made non-decreasing along each trip;
* ``rt.trip_cancelled``: ``bool`` [T], the trip does not run (``CANCELED`` / ``DELETED``);
* ``rt.stop_skipped``: ``bool`` [N], the vehicle does not serve that stop time (``SKIPPED``):
  no boarding or alighting there;
* ``rt.trip_updated``: ``bool`` [T], a TripUpdate matched the trip (times may differ from the
  schedule); ``rt.delay``: ``int32`` [N], departure delay in seconds (for display).

Matching (spec "TripDescriptor"): a TripUpdate is for ``service_date`` when its ``start_date``
equals it (or is absent). It names its trip by ``trip_id``; without ``trip_id`` it is matched by
``route_id`` + ``direction_id`` + ``start_time`` (departure at the first stop), the direction
being checked when the trips' ``direction_id`` are known (see :mod:`gtfs.realtime.keys`). Stop-time updates are
matched by ``stop_sequence`` when the original GTFS values are known (``tt.st_stop_sequence``
[N]), otherwise by ``stop_id`` searched forward
along the trip, otherwise (a sequence alone) the stop_sequence is read as the 1-based position in
the trip. A frequencies.txt trip (compiled as one copy per start, ``"id@HH:MM:SS"``) is matched
by ``trip_id`` + ``start_time``: the copy starting then, or — frequency-based trips
(``exact_times=0``) only — the nearest running copy within its headway, whose times then shift
by the difference (:meth:`TripMatcher.find_instance`); in a merged network ids prefixed
``"feed_id:"`` are tried too.

Propagation (spec "StopTimeUpdate"): a stop-time update sets the arrival and departure delay at
its stop (a missing departure takes the arrival's delay and vice versa; an absolute ``time`` is
turned into a delay against the schedule); the last departure delay propagates to every later
stop until the next update. ``SKIPPED`` stops are flagged and the delay propagates through them.
``NO_DATA`` resets to the schedule until the next update. Stops before the first update keep the
trip-level ``TripUpdate.delay`` if given, else the schedule. All propagation is numpy
(forward-fill over "anchor" positions), once per feed, not per trip in Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from gtfs.compiled import BoolArray, CompiledTimetable, Int8Array, IntArray
from gtfs.realtime.messages import RealtimeFeed, StopTimeUpdate, TripUpdate

# Spread between trips in the segmented cumulative max; far above any GTFS time (< 10 days).
_TRIP_SPREAD = np.int64(1 << 24)


@dataclass(frozen=True, eq=False)
class RealtimeState:
    """Realtime overlay of one compiled timetable for one service date (immutable)."""

    service_date: dt.date
    arrival: IntArray
    departure: IntArray
    delay: IntArray
    trip_cancelled: BoolArray
    trip_updated: BoolArray
    stop_skipped: BoolArray
    timestamp: int | None = None
    matched: int = 0
    unmatched: tuple[str, ...] = ()  # entity ids that matched no trip of the service date
    warnings: tuple[str, ...] = field(default=())

    @classmethod
    def scheduled(cls, tt: CompiledTimetable, service_date: dt.date) -> RealtimeState:
        """The overlay with no realtime information: the schedule itself."""
        return cls(
            service_date=service_date,
            arrival=tt.st_arrival.astype(np.int32, copy=True),
            departure=tt.st_departure.astype(np.int32, copy=True),
            delay=np.zeros(tt.n_stop_times, dtype=np.int32),
            trip_cancelled=np.zeros(tt.n_trips, dtype=np.bool_),
            trip_updated=np.zeros(tt.n_trips, dtype=np.bool_),
            stop_skipped=np.zeros(tt.n_stop_times, dtype=np.bool_),
        )

    @property
    def n_cancelled(self) -> int:
        return int(self.trip_cancelled.sum())

    @property
    def n_updated(self) -> int:
        return int(self.trip_updated.sum())

    def summary(self) -> dict[str, object]:
        return {
            "service_date": self.service_date.isoformat(),
            "timestamp": self.timestamp,
            "matched": self.matched,
            "unmatched": len(self.unmatched),
            "trips_updated": self.n_updated,
            "trips_cancelled": self.n_cancelled,
            "stops_skipped": int(self.stop_skipped.sum()),
        }


def service_day_origin(service_date: dt.date, timezone: str) -> int:
    """POSIX time of "noon minus 12h" on ``service_date`` in ``timezone`` (GTFS time zero)."""
    noon = dt.datetime.combine(service_date, dt.time(12), tzinfo=ZoneInfo(timezone))
    return int(noon.timestamp()) - 12 * 3600


def _parse_hms(text: str) -> int | None:
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    h, m, s = (int(p) for p in parts)
    return h * 3600 + m * 60 + s


_KEY = np.int64(1 << 31)  # trip * _KEY + (stop index | stop_sequence) packs both in an int64
_NA = np.iinfo(np.int64).min  # "no value" in the vectorised event columns
_SKIPPED, _NO_DATA, _SCHEDULED = 1, 2, 0


def _sorted_keys(
    keys: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    order = np.argsort(keys, kind="stable")  # stable: equal keys keep trip order (first visit)
    return keys[order], order.astype(np.int64)


def _lookup(
    table: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]], query: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    keys, order = table
    if keys.size == 0:
        return np.full(query.shape, -1, dtype=np.int64)
    i = np.searchsorted(keys, query)
    ic = np.minimum(i, keys.size - 1)
    return np.where((i < keys.size) & (keys[ic] == query), order[ic], -1)


class TripMatcher:
    """Lookup tables from GTFS ids to compiled indices (built once per timetable)."""

    def __init__(
        self,
        tt: CompiledTimetable,
        st_stop_sequence: IntArray | None = None,
        trip_direction: Int8Array | None = None,
        trip_exact_times: Int8Array | None = None,
    ) -> None:
        self.tt = tt
        # exact_times of each frequencies.txt copy (-1 other trips); None: not known, every copy
        # is read as frequency-based (exact_times=0).
        self.trip_exact_times = (
            trip_exact_times
            if trip_exact_times is not None and len(trip_exact_times) == tt.n_trips
            else None
        )
        self._freq: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] | None = None
        self.trip_index: dict[str, int] = {str(t): i for i, t in enumerate(tt.trip_ids.tolist())}
        self.stop_index: dict[str, int] = {str(s): i for i, s in enumerate(tt.stop_ids.tolist())}
        self.route_index: dict[str, int] = {str(r): i for i, r in enumerate(tt.route_ids.tolist())}
        starts = tt.trip_st_ptr[:-1]
        # First departure of each trip, for route + start_time matching.
        self.trip_start = tt.st_departure[starts].astype(np.int32)
        self.trip_direction = (
            trip_direction if trip_direction is not None else getattr(tt, "trip_direction", None)
        )
        if st_stop_sequence is None:
            st_stop_sequence = getattr(tt, "st_stop_sequence", None)
        # Hand-built timetables carry an empty array: stop_sequence unknown.
        self.st_sequence = (
            st_stop_sequence
            if st_stop_sequence is not None and len(st_stop_sequence) == tt.n_stop_times
            else None
        )
        self.prefixes = [f"{f}:" for f in tt.feed_ids] if tt.meta.get("id_prefix") else []
        # Stop of each stop time: the pattern's stop at the same position within the trip.
        self.st_trip = np.repeat(np.arange(tt.n_trips, dtype=np.int64), np.diff(tt.trip_st_ptr))
        k = np.arange(tt.n_stop_times, dtype=np.int64) - tt.trip_st_ptr[self.st_trip]
        first = tt.pattern_stop_ptr[tt.trip_pattern[self.st_trip]].astype(np.int64)
        self.st_stop = tt.pattern_stops[first + k].astype(np.int32)
        # Sorted (trip, stop) and (trip, stop_sequence) keys: all updates located in one search.
        self._by_stop = _sorted_keys(self.st_trip * _KEY + self.st_stop)
        self._by_seq = (
            _sorted_keys(self.st_trip * _KEY + self.st_sequence.astype(np.int64))
            if self.st_sequence is not None
            else None
        )

    def _id(self, table: dict[str, int], key: str, feed_id: str | None) -> int:
        i = table.get(key, -1)
        if i >= 0:
            return i
        # Merged networks namespace ids by feed ("feed:id"); try the named feed, else each.
        for prefix in [f"{feed_id}:"] if feed_id else self.prefixes:
            i = table.get(prefix + key, -1)
            if i >= 0:
                return i
        return -1

    def stop(self, stop_id: str | None, feed_id: str | None = None) -> int:
        return -1 if stop_id is None else self._id(self.stop_index, stop_id, feed_id)

    def find_trip(self, tu: TripUpdate, active: BoolArray, feed_id: str | None = None) -> int:
        """Index of the trip ``tu`` is about, or -1."""
        return self.find_instance(tu, active, feed_id)[0]

    def _instances(
        self, trip_id: str, feed_id: str | None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(compiled trips, start seconds) of the copies of frequencies.txt trip ``trip_id``,
        sorted by start; built on first use (only feeds with frequencies pay for it)."""
        if self._freq is None:
            groups: dict[str, list[tuple[int, int]]] = {}
            for t, name in enumerate(self.tt.trip_ids.tolist()):
                base, at, hms = str(name).rpartition("@")
                start = _parse_hms(hms) if at else None
                if start is not None:
                    groups.setdefault(base, []).append((start, t))
            self._freq = {}
            for base, pairs in groups.items():
                pairs.sort()
                arr = np.asarray(pairs, dtype=np.int64)
                self._freq[base] = (arr[:, 1], arr[:, 0])
        keys = [trip_id] + (
            [f"{feed_id}:{trip_id}"] if feed_id else [p + trip_id for p in self.prefixes]
        )
        for key in keys:
            got = self._freq.get(key)
            if got is not None:
                return got
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty

    def find_instance(
        self, tu: TripUpdate, active: BoolArray, feed_id: str | None = None
    ) -> tuple[int, int]:
        """``(trip, shift)``: the compiled trip ``tu`` is about (-1: none) and, for a
        frequency-based instance named by a start_time off its expanded start, how many
        seconds later than that copy it started.

        A frequencies.txt trip is compiled as one copy per start (``"id@HH:MM:SS"``); the
        TripDescriptor names it by ``trip_id`` + ``start_time`` (spec: start_time identifies
        the instance). The copy starting exactly then is taken (``"8:05:00"`` and
        ``"08:05:00"`` alike); else, when the trip is frequency-based (``exact_times=0``, whose
        start_time may be arbitrary — the vehicle's actual first departure), the running copy
        with the nearest start, if closer than the headway around it: that instance runs
        ``shift`` seconds off its copy. A schedule-based copy (``exact_times=1``) is only
        named by its exact start.
        """
        d = tu.trip
        if d.trip_id:
            t = self._id(self.trip_index, d.trip_id, feed_id)
            if t >= 0 or not d.start_time:
                return t, 0
            start = _parse_hms(d.start_time)
            trips, starts = self._instances(d.trip_id, feed_id)
            if start is None or trips.size == 0:
                return -1, 0
            running = active[trips]
            hit = np.flatnonzero(running & (starts == start))
            if hit.size:
                return int(trips[hit[0]]), 0
            if self.trip_exact_times is not None:
                running &= self.trip_exact_times[trips] != 1
            cand = np.flatnonzero(running)
            if cand.size == 0:
                return -1, 0
            k = int(cand[np.argmin(np.abs(starts[cand] - start))])  # ties: the earlier copy
            gaps = np.diff(starts)
            around = [int(g) for g in (gaps[k - 1 : k] if k > 0 else ()) if g > 0]
            around += [int(g) for g in gaps[k : k + 1] if g > 0]
            shift = start - int(starts[k])
            if not around or abs(shift) >= min(around):
                return -1, 0
            return int(trips[k]), shift
        if d.route_id is None or d.start_time is None:
            return -1, 0
        r = self._id(self.route_index, d.route_id, feed_id)
        start = _parse_hms(d.start_time)
        if r < 0 or start is None:
            return -1, 0
        cand_mask = (self.tt.trip_route == r) & (self.trip_start == start) & active
        if d.direction_id is not None and self.trip_direction is not None:
            cand_mask &= (self.trip_direction == d.direction_id) | (self.trip_direction < 0)
        hits = np.flatnonzero(cand_mask)
        return (int(hits[0]) if hits.size else -1), 0

    def locate(
        self,
        trips: npt.NDArray[np.int64],
        sequences: npt.NDArray[np.int64],
        stops: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.int64]:
        """Global stop-time index of each update (-1: not on its trip), vectorised.

        ``sequences`` / ``stops``: the update's stop_sequence / stop index, -1 when absent.
        Tried in order: stop_sequence (when the GTFS values are known), stop (its first visit
        on the trip), stop_sequence as the 1-based position.
        """
        out = np.full(trips.shape, -1, dtype=np.int64)
        if self._by_seq is not None:
            use = sequences >= 0
            out[use] = _lookup(self._by_seq, trips[use] * _KEY + sequences[use])
        use = (out < 0) & (stops >= 0)
        out[use] = _lookup(self._by_stop, trips[use] * _KEY + stops[use])
        if self._by_seq is None:
            ptr = self.tt.trip_st_ptr
            use = (out < 0) & (sequences >= 1)
            pos = ptr[trips[use]] + sequences[use] - 1
            out[use] = np.where(pos < ptr[trips[use] + 1], pos, -1)
        return out

    def find_stop_time(
        self, t: int, sequence: int | None, stop_id: str | None, after: int, feed_id: str | None
    ) -> int:
        """Global stop-time index of one update within trip ``t``, searching from ``after``
        (a stop visited twice, e.g. a loop, resolves to the visit after the previous update)."""
        a, b = int(self.tt.trip_st_ptr[t]), int(self.tt.trip_st_ptr[t + 1])
        if sequence is not None and self.st_sequence is not None:
            hits = np.flatnonzero(self.st_sequence[a:b] == sequence)
            if hits.size:
                return a + int(hits[0])
        s = self.stop(stop_id, feed_id)
        if s >= 0:
            lo = max(a, after)
            hits = np.flatnonzero(self.st_stop[lo:b] == s)
            if hits.size:
                return lo + int(hits[0])
            hits = np.flatnonzero(self.st_stop[a:b] == s)
            return a + int(hits[0]) if hits.size else -1
        if self.st_sequence is None and sequence is not None and 1 <= sequence <= b - a:
            return a + sequence - 1
        return -1


def apply_trip_updates(
    tt: CompiledTimetable,
    updates: RealtimeFeed | Iterable[TripUpdate],
    service_date: dt.date,
    *,
    matcher: TripMatcher | None = None,
    feed_id: str | None = None,
) -> RealtimeState:
    """Build the realtime overlay of ``tt`` for ``service_date`` from TripUpdates.

    Parameters
    ----------
    tt
        The compiled (network) timetable.
    updates
        A parsed feed (its ``trip_updates`` are used) or TripUpdates.
    service_date
        The service day the overlay is for; updates for other dates are ignored.
    matcher
        Reuse lookup tables across calls on the same ``tt`` (they cost one pass over it).
    feed_id
        Also try ids namespaced as ``feed_id:id`` (merged networks).
    """
    timestamp = None
    if isinstance(updates, RealtimeFeed):
        timestamp = updates.timestamp
        trip_updates: Iterable[TripUpdate] = updates.trip_updates
    else:
        trip_updates = updates
    m = matcher if matcher is not None and matcher.tt is tt else TripMatcher(tt)
    n, n_trips = tt.n_stop_times, tt.n_trips
    origin = service_day_origin(service_date, tt.timezone)
    date_str = service_date.strftime("%Y%m%d")
    active = tt.active_trips(service_date)

    cancelled = np.zeros(n_trips, dtype=np.bool_)
    updated = np.zeros(n_trips, dtype=np.bool_)
    unmatched: list[str] = []
    matched = 0
    # Trip-level delays, and one row per stop-time update: plain lists filled by one pass over
    # the parsed messages, then everything else is array work.
    tl_trip: list[int] = []
    tl_delay: list[int] = []
    u_trip: list[int] = []
    u_ent: list[int] = []  # which TripUpdate (for the "search forward" rule)
    u_seq: list[int] = []
    u_stop: list[int] = []
    u_kind: list[int] = []
    u_vals: list[tuple[int, int, int, int]] = []  # arr delay, arr time, dep delay, dep time
    u_src: list[tuple[str, StopTimeUpdate]] = []
    na = int(_NA)
    for tu in trip_updates:
        d = tu.trip
        if d.start_date and d.start_date != date_str:
            continue
        t, shift = m.find_instance(tu, active, feed_id)
        if t < 0 or not active[t]:
            if d.schedule_relationship not in ("ADDED", "NEW", "UNSCHEDULED"):
                unmatched.append(tu.entity_id)
            continue
        matched += 1
        if d.schedule_relationship in ("CANCELED", "DELETED"):
            cancelled[t] = True
            continue
        updated[t] = True
        if tu.delay is not None or shift:
            # A frequency-based instance started `shift` s off its compiled copy: its schedule
            # is the copy's, shifted; delays are relative to that (absolute times are not).
            tl_trip.append(t)
            tl_delay.append((tu.delay or 0) + shift)
        ent = len(u_src)
        for stu in tu.stop_time_updates:
            u_trip.append(t)
            u_ent.append(ent)
            u_seq.append(stu.stop_sequence if stu.stop_sequence is not None else -1)
            u_stop.append(m.stop(stu.stop_id, feed_id))
            rel = stu.schedule_relationship
            u_kind.append(_SKIPPED if rel == "SKIPPED" else _NO_DATA if rel == "NO_DATA" else 0)
            ar, de = stu.arrival, stu.departure
            u_vals.append(
                (
                    ar.delay + shift if ar is not None and ar.delay is not None else na,
                    ar.time if ar is not None and ar.time is not None else na,
                    de.delay + shift if de is not None and de.delay is not None else na,
                    de.time if de is not None and de.time is not None else na,
                )
            )
            u_src.append((tu.entity_id, stu))

    trips = np.asarray(u_trip, dtype=np.int64)
    idx = m.locate(trips, np.asarray(u_seq, dtype=np.int64), np.asarray(u_stop, dtype=np.int64))
    ent_arr = np.asarray(u_ent, dtype=np.int64)
    # A stop visited twice on a trip: an update that lands before the previous update of the
    # same TripUpdate is re-resolved forward (rare; loops only).
    if idx.size > 1:
        back = (
            np.flatnonzero((ent_arr[1:] == ent_arr[:-1]) & (idx[1:] < idx[:-1]) & (idx[1:] >= 0))
            + 1
        )
        for j in back.tolist():
            stu = u_src[j][1]
            idx[j] = m.find_stop_time(
                int(trips[j]), stu.stop_sequence, stu.stop_id, int(idx[j - 1]), feed_id
            )
    warnings = tuple(
        f"{u_src[j][0]}: stop_sequence={u_src[j][1].stop_sequence} "
        f"stop_id={u_src[j][1].stop_id} not on its trip"
        for j in np.flatnonzero(idx < 0).tolist()
    )
    ok = idx >= 0
    kind = np.asarray(u_kind, dtype=np.int8)[ok]
    at = idx[ok]
    vals = np.asarray(u_vals, dtype=np.int64).reshape(-1, 4)[ok]

    skipped = np.zeros(n, dtype=np.bool_)
    skipped[at[kind == _SKIPPED]] = True  # the previous delay propagates through

    def delay(col: int, sched: IntArray) -> npt.NDArray[np.int64]:
        d, t = vals[:, col], vals[:, col + 1]
        from_time = np.where(t != _NA, t - origin - sched[at].astype(np.int64), _NA)
        return np.where(d != _NA, d, from_time)

    arr_d = delay(0, tt.st_arrival)
    dep_d = delay(2, tt.st_departure)
    arr_d, dep_d = np.where(arr_d == _NA, dep_d, arr_d), np.where(dep_d == _NA, arr_d, dep_d)
    timed = (kind == _SCHEDULED) & (arr_d != _NA)

    # Anchors: event id per stop time (-1 = none); every trip starts on event 0 (the schedule);
    # then trip-level delays; then stop-time updates (later assignments win).
    anchor = np.full(n, -1, dtype=np.int64)
    starts = tt.trip_st_ptr[:-1].astype(np.int64)
    anchor[starts[starts < n]] = 0
    tl = np.asarray(tl_trip, dtype=np.int64)
    anchor[tt.trip_st_ptr[tl]] = 1 + np.arange(tl.size)
    no_data = at[kind == _NO_DATA]
    anchor[no_data] = 0
    n_timed = int(timed.sum())
    anchor[at[timed]] = 1 + tl.size + np.arange(n_timed)
    ev_arr = np.concatenate([[0], np.asarray(tl_delay, dtype=np.int64), arr_d[timed]])
    ev_dep = np.concatenate([[0], np.asarray(tl_delay, dtype=np.int64), dep_d[timed]])

    # Forward-fill the last anchor along each trip (every trip starts with one).
    pos = np.arange(n, dtype=np.int64)
    last = np.maximum.accumulate(np.where(anchor >= 0, pos, 0))
    ev = anchor[last]
    arrival_delay = np.where(anchor >= 0, ev_arr[ev], ev_dep[ev])
    departure_delay = ev_dep[ev]

    arrival = tt.st_arrival.astype(np.int64) + arrival_delay
    departure = np.maximum(tt.st_departure.astype(np.int64) + departure_delay, arrival)
    # Non-decreasing along each trip: segmented cumulative max over (arr, dep) interleaved.
    inter = np.empty(2 * n, dtype=np.int64)
    inter[0::2] = arrival
    inter[1::2] = departure
    offset = np.repeat(m.st_trip * _TRIP_SPREAD, 2)
    inter = np.maximum.accumulate(inter + offset) - offset
    return RealtimeState(
        service_date=service_date,
        arrival=inter[0::2].astype(np.int32),
        departure=inter[1::2].astype(np.int32),
        delay=(inter[1::2] - tt.st_departure).astype(np.int32),
        trip_cancelled=cancelled,
        trip_updated=updated,
        stop_skipped=skipped,
        timestamp=timestamp,
        matched=matched,
        unmatched=tuple(unmatched),
        warnings=warnings,
    )

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
being checked only when the timetable carries a ``trip_direction`` array. Stop-time updates are
matched by ``stop_sequence`` when the original GTFS values are known (``st_stop_sequence`` [N],
see :func:`gtfs.realtime.sequences.stop_sequences`), otherwise by ``stop_id`` searched forward
along the trip, otherwise (a sequence alone) the stop_sequence is read as the 1-based position in
the trip. A frequency-based trip (compiled as ``"id@HH:MM:SS"``) is matched by ``trip_id`` +
``start_time``; in a merged network ids prefixed ``"feed_id:"`` are tried too.

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

from gtfs.compiled import BoolArray, CompiledTimetable, IntArray
from gtfs.realtime.messages import RealtimeFeed, StopTimeEvent, TripUpdate

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


class TripMatcher:
    """Lookup tables from GTFS ids to compiled indices (built once per timetable)."""

    def __init__(self, tt: CompiledTimetable, st_stop_sequence: IntArray | None = None) -> None:
        self.tt = tt
        self.trip_index: dict[str, int] = {str(t): i for i, t in enumerate(tt.trip_ids.tolist())}
        self.stop_index: dict[str, int] = {str(s): i for i, s in enumerate(tt.stop_ids.tolist())}
        self.route_index: dict[str, int] = {str(r): i for i, r in enumerate(tt.route_ids.tolist())}
        starts = tt.trip_st_ptr[:-1]
        # First departure of each trip, for route + start_time matching.
        self.trip_start = tt.st_departure[starts].astype(np.int32)
        self.trip_direction = getattr(tt, "trip_direction", None)
        self.st_sequence = (
            st_stop_sequence
            if st_stop_sequence is not None
            else getattr(tt, "st_stop_sequence", None)
        )
        self.prefixes = [f"{f}:" for f in tt.feed_ids] if tt.meta.get("id_prefix") else []
        # Stop of each stop time: the pattern's stop at the same position within the trip.
        trip_of_st = np.repeat(np.arange(tt.n_trips, dtype=np.int64), np.diff(tt.trip_st_ptr))
        k = np.arange(tt.n_stop_times, dtype=np.int64) - tt.trip_st_ptr[trip_of_st]
        first = tt.pattern_stop_ptr[tt.trip_pattern[trip_of_st]].astype(np.int64)
        self.st_stop = tt.pattern_stops[first + k].astype(np.int32)

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

    def find_trip(self, tu: TripUpdate, active: BoolArray, feed_id: str | None = None) -> int:
        """Index of the trip ``tu`` is about, or -1."""
        d = tu.trip
        if d.trip_id:
            t = self._id(self.trip_index, d.trip_id, feed_id)
            if t < 0 and d.start_time:
                # A frequencies.txt trip, compiled as one trip per start ("id@HH:MM:SS").
                t = self._id(self.trip_index, f"{d.trip_id}@{d.start_time}", feed_id)
            return t
        if d.route_id is None or d.start_time is None:
            return -1
        r = self._id(self.route_index, d.route_id, feed_id)
        start = _parse_hms(d.start_time)
        if r < 0 or start is None:
            return -1
        cand = (self.tt.trip_route == r) & (self.trip_start == start) & active
        if d.direction_id is not None and self.trip_direction is not None:
            cand &= self.trip_direction == d.direction_id
        hits = np.flatnonzero(cand)
        return int(hits[0]) if hits.size else -1

    def find_stop_time(
        self, t: int, sequence: int | None, stop_id: str | None, after: int, feed_id: str | None
    ) -> int:
        """Global stop-time index of an update within trip ``t`` (searching from ``after``)."""
        a, b = int(self.tt.trip_st_ptr[t]), int(self.tt.trip_st_ptr[t + 1])
        if sequence is not None and self.st_sequence is not None:
            hits = np.flatnonzero(self.st_sequence[a:b] == sequence)
            return a + int(hits[0]) if hits.size else -1
        if stop_id is not None:
            s = self._id(self.stop_index, stop_id, feed_id)
            if s < 0:
                return -1
            lo = max(a, after)
            hits = np.flatnonzero(self.st_stop[lo:b] == s)
            if hits.size:
                return lo + int(hits[0])
            hits = np.flatnonzero(self.st_stop[a:b] == s)
            return a + int(hits[0]) if hits.size else -1
        if sequence is not None and 1 <= sequence <= b - a:
            return a + sequence - 1
        return -1


def _delay(ev: StopTimeEvent | None, scheduled: int, origin: int) -> int | None:
    if ev is None:
        return None
    if ev.delay is not None:
        return ev.delay
    if ev.time is not None:
        return ev.time - origin - scheduled
    return None


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
    skipped = np.zeros(n, dtype=np.bool_)
    # Anchors: event id per stop time (-1 = none). Event 0 = "schedule" (zero delay).
    anchor = np.full(n, -1, dtype=np.int64)
    starts = tt.trip_st_ptr[:-1].astype(np.int64)
    anchor[starts[starts < n]] = 0
    ev_arr: list[int] = [0]
    ev_dep: list[int] = [0]
    unmatched: list[str] = []
    warnings: list[str] = []
    matched = 0

    for tu in trip_updates:
        d = tu.trip
        if d.start_date and d.start_date != date_str:
            continue
        t = m.find_trip(tu, active, feed_id)
        if t < 0 or not active[t]:
            if d.schedule_relationship not in ("ADDED", "NEW", "UNSCHEDULED"):
                unmatched.append(tu.entity_id)
            continue
        matched += 1
        if d.schedule_relationship in ("CANCELED", "DELETED"):
            cancelled[t] = True
            continue
        updated[t] = True
        a = int(tt.trip_st_ptr[t])
        if tu.delay is not None:
            anchor[a] = len(ev_arr)
            ev_arr.append(tu.delay)
            ev_dep.append(tu.delay)
        pos = a
        for stu in tu.stop_time_updates:
            i = m.find_stop_time(t, stu.stop_sequence, stu.stop_id, pos, feed_id)
            if i < 0:
                warnings.append(
                    f"{tu.entity_id}: stop_sequence={stu.stop_sequence} "
                    f"stop_id={stu.stop_id} not on trip {d.trip_id}"
                )
                continue
            pos = i
            rel = stu.schedule_relationship
            if rel == "SKIPPED":
                skipped[i] = True  # the previous delay propagates through
                continue
            if rel == "NO_DATA":
                anchor[i] = 0
                continue
            arr = _delay(stu.arrival, int(tt.st_arrival[i]), origin)
            dep = _delay(stu.departure, int(tt.st_departure[i]), origin)
            if arr is None and dep is None:
                continue
            anchor[i] = len(ev_arr)
            ev_arr.append(arr if arr is not None else dep)  # type: ignore[arg-type]
            ev_dep.append(dep if dep is not None else arr)  # type: ignore[arg-type]

    # Forward-fill the last anchor along each trip (every trip starts with one).
    idx = np.arange(n, dtype=np.int64)
    last = np.maximum.accumulate(np.where(anchor >= 0, idx, 0))
    ev = anchor[last]
    arr_d = np.asarray(ev_arr, dtype=np.int64)
    dep_d = np.asarray(ev_dep, dtype=np.int64)
    is_anchor = anchor >= 0
    arrival_delay = np.where(is_anchor, arr_d[ev], dep_d[ev])
    departure_delay = dep_d[ev]

    arrival = tt.st_arrival.astype(np.int64) + arrival_delay
    departure = np.maximum(tt.st_departure.astype(np.int64) + departure_delay, arrival)
    # Non-decreasing along each trip: segmented cumulative max over (arr, dep) interleaved.
    trip_of_st = np.repeat(np.arange(n_trips, dtype=np.int64), np.diff(tt.trip_st_ptr))
    inter = np.empty(2 * n, dtype=np.int64)
    inter[0::2] = arrival
    inter[1::2] = departure
    offset = np.repeat(trip_of_st * _TRIP_SPREAD, 2)
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
        warnings=tuple(warnings),
    )

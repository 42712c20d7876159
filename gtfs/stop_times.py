"""Typed stop times: sorted by trip then sequence, blanks interpolated, frequencies expanded.

Interpolation
    An intermediate stop time with neither arrival nor departure (GTFS allows it for
    non-timepoints) gets a time interpolated between the surrounding timed stops, in proportion
    to ``shape_dist_traveled`` when the whole trip has it, else to the straight-line distance
    along its stops (equal steps when the stops coincide). A stop time with only one of the two
    times gets the other one equal to it. First/last stop times without times stay ``-1``
    (``missing_trip_edge``): such trips are not routable.

Frequencies
    Every ``frequencies.txt`` row becomes concrete trips departing at ``start_time``,
    ``start_time + headway_secs``, ... while before ``end_time``, both for ``exact_times=1``
    (schedule-based) and ``exact_times=0`` (frequency-based, where the real departures drift
    around those): routing then sees ordinary trips. The template trip's own times only give
    the offsets between stops; it is replaced by its copies, named ``{trip_id}@{HH:MM:SS}``.

Flex rows
    Rows served in a zone or a stop group (``location_id`` / ``location_group_id``, a
    ``stop_id`` naming a GeoJSON location, or pickup/drop-off windows) are marked ``flex``; a trip
    with any such row is a flex trip, described by :mod:`gtfs.flex` and not fixed-route routable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from gtfs.arrays import concat_ranges, first_index
from gtfs.feed import Feed
from gtfs.geo import haversine_m
from gtfs.times import format_time, int_column, parse_times

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class TypedStopTimes:
    """Stop times grouped by trip; row ``i`` of trip ``t`` is ``trip_ptr[t] + i``."""

    trip_ids: npt.NDArray[np.object_]  # [T], after frequency expansion
    trip_row: npt.NDArray[np.int64]  # [T] row of trips.txt (template row for copies)
    trip_ptr: npt.NDArray[np.int64]  # [T+1]
    trip_flex: npt.NDArray[np.bool_]  # [T] trip has a flex row
    trip_from_frequency: npt.NDArray[np.bool_]  # [T]
    stop_ids: npt.NDArray[np.object_]  # [N] stop_id, or location_id / location_group_id
    stop_sequence: I32
    arrival: I32  # -1 unknown
    departure: I32
    pickup: npt.NDArray[np.int8]
    dropoff: npt.NDArray[np.int8]
    timepoint: npt.NDArray[np.int8]
    interpolated: npt.NDArray[np.bool_]
    flex: npt.NDArray[np.bool_]
    shape_dist: npt.NDArray[np.float64]
    source_row: npt.NDArray[np.int64]  # row of stop_times.txt
    stop_row: npt.NDArray[np.int64]  # [N] row of ``stop_ids`` in stops.txt (first), -1 if none

    @property
    def n_trips(self) -> int:
        return int(self.trip_ids.shape[0])

    def trip_of_row(self) -> npt.NDArray[np.int64]:
        """Trip index of every row [N]."""
        return np.repeat(np.arange(self.n_trips, dtype=np.int64), np.diff(self.trip_ptr))


def _stop_of_row(feed: Feed) -> pd.Series:
    st = feed.stop_times
    sid = feed.column("stop_times", "stop_id").astype(str)
    for col in ("location_id", "location_group_id"):
        if col in st.columns:
            sid = sid.where(sid != "", st[col].astype(str))
    return sid


def build_typed_stop_times(feed: Feed) -> TypedStopTimes:
    st = feed.stop_times
    trips = feed.trips
    if st.empty or trips.empty or "trip_id" not in st.columns or "trip_id" not in trips.columns:
        return _empty()
    tc = feed.codes("stop_times", "trip_id")
    if tc is not None:
        # Each distinct trip id looked up once (the reader's codes).
        trip_codes = first_index(trips["trip_id"].astype(str), tc.uniques)[tc.codes]
    else:
        trip_codes = _run_index(trips["trip_id"].astype(str), st["trip_id"].to_numpy(dtype=object))
    seq = feed.ints("stop_times", "stop_sequence", -1, np.int64)
    # Rows whose trip is unknown or sequence unusable are reported by the validator; dropped.
    keep = (trip_codes >= 0) & (seq >= 0)
    rows = np.flatnonzero(keep)
    order = rows[_trip_sequence_order(trip_codes[rows], seq[rows])]
    # Duplicated trip ids in trips.txt: rows go to the first such trip (validator reports).
    tcode = trip_codes[order]
    arr = feed.times("stop_times", "arrival_time")[0]
    dep = feed.times("stop_times", "departure_time")[0]
    arr, dep = arr[order], dep[order]
    arr = np.where(arr < 0, dep, arr).astype(np.int32)
    dep = np.where(dep < 0, arr, dep).astype(np.int32)

    stop_ids = _stop_of_row(feed).to_numpy(dtype=object)[order]
    pickup = feed.ints("stop_times", "pickup_type", 0, np.int8)[order]
    dropoff = feed.ints("stop_times", "drop_off_type", 0, np.int8)[order]
    timepoint = feed.ints("stop_times", "timepoint", -1, np.int8)[order]
    sdt = feed.numbers("stop_times", "shape_dist_traveled")[0][order]

    window = np.zeros(len(order), dtype=np.bool_)
    for col in ("start_pickup_drop_off_window", "end_pickup_drop_off_window"):
        if col in st.columns:
            window |= (st[col].astype(str) != "").to_numpy()[order]
    for col in ("location_id", "location_group_id"):
        if col in st.columns:
            window |= (st[col].astype(str) != "").to_numpy()[order]
    sc = feed.codes("stop_times", "stop_id")
    if sc is not None and not {"location_id", "location_group_id"} & set(st.columns):
        # Every row's id is its stop_id: each distinct one looked up once.
        stop_row = _stop_rows(feed, sc.uniques)[sc.codes][order]
    else:
        stop_row = _stop_rows(feed, stop_ids)
    flex = window | (stop_row < 0)

    # Trip boundaries.
    n = len(order)
    starts = np.flatnonzero(np.r_[True, tcode[1:] != tcode[:-1]]) if n else np.zeros(0, np.int64)
    ptr = np.r_[starts, n].astype(np.int64)
    trip_row = tcode[starts].astype(np.int64) if n else np.zeros(0, np.int64)
    trip_of = np.repeat(np.arange(len(starts)), np.diff(ptr))
    trip_flex = np.zeros(len(starts), dtype=np.bool_)
    if n:
        # Trips are contiguous runs of rows: one reduction per run (ufunc.at is slow).
        trip_flex = np.logical_or.reduceat(flex, ptr[:-1])

    def coords(rows: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.float64], ...]:
        return _stop_coords(feed, stop_row[rows])

    arr, dep, interp = _interpolate(arr, dep, ptr, trip_of, sdt, coords, ~flex)

    trip_ids = trips["trip_id"].astype(str).to_numpy(dtype=object)[trip_row]
    base = TypedStopTimes(
        trip_ids=trip_ids,
        trip_row=trip_row,
        trip_ptr=ptr,
        trip_flex=trip_flex,
        trip_from_frequency=np.zeros(len(trip_row), dtype=np.bool_),
        stop_ids=stop_ids,
        stop_sequence=seq[order].astype(np.int32),
        arrival=arr,
        departure=dep,
        pickup=pickup,
        dropoff=dropoff,
        timepoint=timepoint,
        interpolated=interp,
        flex=flex,
        shape_dist=sdt,
        source_row=st.index.to_numpy()[order].astype(np.int64),
        stop_row=stop_row,
    )
    return _expand_frequencies(feed, base)


def _run_index(keys: pd.Series, values: npt.NDArray[np.object_]) -> npt.NDArray[np.int64]:
    """``first_index(keys, values)`` for values that come in runs (stop_times.txt lists a
    trip's rows together): one look-up per run, the rest by comparing neighbours (~2.5x faster
    on 2 million rows)."""
    n = len(values)
    if n == 0:
        return np.zeros(0, np.int64)
    head = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    return np.repeat(first_index(keys, values[head]), np.diff(np.r_[head, n]))


def _trip_sequence_order(trip: npt.NDArray[np.int64], seq: npt.NDArray[np.int64]) -> I64:
    """``np.lexsort((seq, trip))``: rows by trip, then stop_sequence, ties in file order.

    Feeds nearly always list rows in that order already (checked in one pass); otherwise one
    stable sort of a combined key, when it fits, costs half the two-key lexsort.
    """
    n = len(trip)
    if n == 0:
        return np.zeros(0, np.int64)
    top = int(seq.max()) + 1
    if int(trip.max()) < (1 << 62) // top:
        key = trip * top + seq
        if bool(np.all(key[1:] >= key[:-1])):
            return np.arange(n, dtype=np.int64)
        return np.argsort(key, kind="stable").astype(np.int64)
    return np.lexsort((seq, trip)).astype(np.int64)


def _stop_rows(feed: Feed, stop_ids: npt.NDArray[np.object_]) -> I64:
    """Row in stops.txt of each of ``stop_ids`` (first occurrence), -1 when it names none (a
    flex location, or an unknown stop)."""
    stops = feed.stops
    if "stop_id" not in stops.columns or len(stop_ids) == 0:
        return np.full(len(stop_ids), -1, np.int64)
    # One hash look-up per row (factorizing first to look each id up once measured no faster
    # on 2 million rows and 3x slower on 40 thousand).
    return first_index(stops["stop_id"].astype(str), stop_ids)


def _empty() -> TypedStopTimes:
    z64 = np.zeros(0, np.int64)
    z32 = np.zeros(0, np.int32)
    z8 = np.zeros(0, np.int8)
    zb = np.zeros(0, np.bool_)
    zo = np.zeros(0, dtype=object)
    return TypedStopTimes(
        zo,
        z64,
        np.zeros(1, np.int64),
        zb,
        zb,
        zo,
        z32,
        z32,
        z32,
        z8,
        z8,
        z8,
        zb,
        zb,
        np.zeros(0),
        z64,
        z64,
    )


def _stop_coords(
    feed: Feed, idx: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Coordinates of the stops.txt rows ``idx`` (NaN for -1)."""
    lat = feed.numbers("stops", "stop_lat")[0]
    lon = feed.numbers("stops", "stop_lon")[0]
    ok = idx >= 0
    out_lat = np.full(len(idx), np.nan)
    out_lon = np.full(len(idx), np.nan)
    out_lat[ok] = lat[idx[ok]]
    out_lon[ok] = lon[idx[ok]]
    return out_lat, out_lon


def _interpolate(
    arr: I32,
    dep: I32,
    ptr: npt.NDArray[np.int64],
    trip_of: npt.NDArray[np.int64],
    sdt: npt.NDArray[np.float64],
    coords: Callable[[npt.NDArray[np.int64]], tuple[npt.NDArray[np.float64], ...]],
    fixed: npt.NDArray[np.bool_],
) -> tuple[I32, I32, npt.NDArray[np.bool_]]:
    """Blank times between two timed stops of a trip, in proportion to the distance along it
    (``shape_dist_traveled`` when the whole trip has it, else straight lines between the stops
    at ``coords(rows)``, looked up for the trips with blanks only)."""
    n = len(arr)
    if n == 0:
        return arr, dep, np.zeros(0, np.bool_)
    idx = np.arange(n)
    known = dep >= 0
    tstart = ptr[trip_of]
    tend = ptr[trip_of + 1]
    prev = np.maximum.accumulate(np.where(known, idx, -1))
    nxt = np.minimum.accumulate(np.where(known, idx, n)[::-1])[::-1]
    todo = ~known & fixed & (prev >= tstart) & (nxt < tend)
    if not todo.any():
        return arr, dep, np.zeros(n, np.bool_)
    # Distance along the trips with blanks: shape_dist_traveled when the whole trip has it,
    # else geometry (only these trips' rows are measured: most trips have no blank).
    trips = np.unique(trip_of[todo])
    lengths = ptr[trips + 1] - ptr[trips]
    rows = concat_ranges(ptr[trips], lengths)
    lat, lon = coords(rows)
    step = np.zeros(len(rows))
    step[1:] = haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])
    step[np.cumsum(lengths) - lengths] = 0.0  # each trip starts at 0
    geo_rows = np.cumsum(np.nan_to_num(step))
    has_sdt = np.logical_and.reduceat(~np.isnan(sdt[rows]), np.cumsum(lengths) - lengths)
    dist = np.full(n, np.nan)
    dist[rows] = np.where(np.repeat(has_sdt, lengths), sdt[rows], geo_rows)
    i = np.flatnonzero(todo)
    p, q = prev[i], nxt[i]
    span = dist[q] - dist[p]
    frac_d = np.divide(dist[i] - dist[p], span, out=np.zeros(len(i)), where=span > 0)
    frac_i = (i - p) / (q - p)
    frac = np.where(span > 0, np.clip(frac_d, 0.0, 1.0), frac_i)
    t = np.rint(dep[p] + (arr[q] - dep[p]) * frac).astype(np.int32)
    arr = arr.copy()
    dep = dep.copy()
    arr[i] = t
    dep[i] = t
    return arr, dep, todo


def _expand_frequencies(feed: Feed, base: TypedStopTimes) -> TypedStopTimes:
    fq = feed.table("frequencies")
    if fq.empty or "trip_id" not in fq.columns:
        return base
    t_index = first_index(base.trip_ids, fq["trip_id"].astype(str))
    start, _ = parse_times(feed.column("frequencies", "start_time"))
    end, _ = parse_times(feed.column("frequencies", "end_time"))
    headway = int_column(fq, "headway_secs", 0, np.int64)
    ok = (t_index >= 0) & (start >= 0) & (end > start) & (headway > 0)
    if not ok.any():
        return base
    t_index, start, end, headway = t_index[ok], start[ok], end[ok], headway[ok]
    count = -((start.astype(np.int64) - end) // headway)  # ceil((end - start) / headway)
    copy_tpl = np.repeat(t_index, count)
    first_copy = np.repeat(np.cumsum(count) - count, count)
    copy_start = np.repeat(start, count) + (np.arange(count.sum()) - first_copy) * np.repeat(
        headway, count
    )
    ptr = base.trip_ptr
    lengths = np.diff(ptr)[copy_tpl]
    rows = concat_ranges(ptr[copy_tpl], lengths)
    t0 = base.departure[ptr[copy_tpl]]
    shift = np.repeat(copy_start - t0, lengths)
    templates = np.zeros(base.n_trips, dtype=np.bool_)
    templates[t_index] = True
    keep_trips = np.flatnonzero(~templates)
    keep_rows = np.flatnonzero(~templates[base.trip_of_row()])
    all_rows = np.concatenate([keep_rows, rows]).astype(np.int64)
    all_shift = np.concatenate([np.zeros(len(keep_rows), np.int64), shift])
    lengths_all = np.concatenate([np.diff(ptr)[keep_trips], lengths])
    new_ptr = np.r_[0, np.cumsum(lengths_all)].astype(np.int64)
    names = np.array(
        [
            f"{base.trip_ids[t]}@{format_time(int(s))}"
            for t, s in zip(copy_tpl, copy_start, strict=True)
        ],
        dtype=object,
    )

    def shifted(a: I32) -> I32:
        v = a[all_rows].astype(np.int64)
        return np.where(v >= 0, v + all_shift, v).astype(np.int32)

    return TypedStopTimes(
        trip_ids=np.concatenate([base.trip_ids[keep_trips], names]),
        trip_row=np.concatenate([base.trip_row[keep_trips], base.trip_row[copy_tpl]]),
        trip_ptr=new_ptr,
        trip_flex=np.concatenate([base.trip_flex[keep_trips], base.trip_flex[copy_tpl]]),
        trip_from_frequency=np.r_[
            np.zeros(len(keep_trips), np.bool_), np.ones(len(copy_tpl), np.bool_)
        ],
        stop_ids=base.stop_ids[all_rows],
        stop_sequence=base.stop_sequence[all_rows],
        arrival=shifted(base.arrival),
        departure=shifted(base.departure),
        pickup=base.pickup[all_rows],
        dropoff=base.dropoff[all_rows],
        timepoint=base.timepoint[all_rows],
        interpolated=base.interpolated[all_rows],
        flex=base.flex[all_rows],
        shape_dist=base.shape_dist[all_rows],
        source_row=base.source_row[all_rows],
        stop_row=base.stop_row[all_rows],
    )

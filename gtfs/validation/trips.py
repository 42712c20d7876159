"""Stop-time sequences of each trip: times, edges, distances, speeds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gtfs.arrays import first_index
from gtfs.feed import Feed
from gtfs.geo import haversine_m
from gtfs.notices import NoticeSink
from gtfs.times import int_column

#: Speeds above these (km/h) between consecutive stops are suspicious (gtfs-validator's).
MAX_SPEED_KMH = {
    0: 100.0,
    1: 150.0,
    2: 500.0,
    3: 150.0,
    4: 150.0,
    5: 150.0,
    6: 150.0,
    7: 150.0,
    11: 150.0,
    12: 150.0,
}
DEFAULT_MAX_SPEED_KMH = 200.0


def check_stop_times(feed: Feed, sink: NoticeSink, location_ids: set[str]) -> None:
    st = feed.stop_times
    if st.empty or not {"trip_id", "stop_sequence"} <= set(st.columns):
        return
    fn = "stop_times.txt"
    seq = feed.ints("stop_times", "stop_sequence", -1, np.int64)
    trip = st["trip_id"].astype(str).to_numpy()
    tcode, _ = pd.factorize(trip)
    order = np.lexsort((seq, tcode))
    df = st  # sorted views are taken through `order`, never by copying the table
    tc = tcode[order]
    arr = feed.times("stop_times", "arrival_time")[0]
    dep = feed.times("stop_times", "departure_time")[0]
    arr, dep = arr[order], dep[order]
    n = len(df)
    first = np.r_[True, tc[1:] != tc[:-1]]
    last = np.r_[tc[1:] != tc[:-1], True]
    # Flex rows (zones, windows) have no times by design.
    flex = np.zeros(n, np.bool_)
    for col in (
        "start_pickup_drop_off_window",
        "end_pickup_drop_off_window",
        "location_id",
        "location_group_id",
    ):
        if col in df.columns:
            flex |= (df[col].astype(str) != "").to_numpy()[order]
    if location_ids and "stop_id" in df.columns:
        flex |= df["stop_id"].astype(str).isin(location_ids).to_numpy()[order]
    key_cols = [c for c in ("trip_id", "stop_sequence", "stop_id") if c in df.columns]

    def rows(mask: np.ndarray, *extra: str) -> pd.DataFrame:
        cols = key_cols + [c for c in extra if c in df.columns]
        return df.iloc[order[mask]][cols]

    only_one = ((arr < 0) != (dep < 0)) & ~flex
    sink.add_rows(
        "stop_time_with_only_arrival_or_departure_time",
        rows(only_one, "arrival_time", "departure_time"),
        filename=fn,
    )
    both_missing = (arr < 0) & (dep < 0) & ~flex
    sink.add_rows(
        "missing_trip_edge",
        rows(both_missing & (first | last), "arrival_time", "departure_time"),
        filename=fn,
    )
    if "timepoint" in df.columns:
        tp = feed.ints("stop_times", "timepoint", -1, np.int8)[order]
        sink.add_rows(
            "stop_time_timepoint_without_times", rows((tp == 1) & both_missing), filename=fn
        )
    after = (arr >= 0) & (dep >= 0) & (dep < arr)
    sink.add_rows(
        "stop_time_with_departure_before_arrival_time",
        rows(after, "arrival_time", "departure_time"),
        filename=fn,
    )
    # Arrival before the previous timed departure of the same trip.
    idx = np.arange(n)
    timed = dep >= 0
    prev_timed = np.maximum.accumulate(np.where(timed, idx, -1))
    prev_timed = np.r_[-1, prev_timed[:-1]]
    tstart = np.maximum.accumulate(np.where(first, idx, 0))
    has_prev = (prev_timed >= tstart) & (prev_timed >= 0)
    cur = np.where(arr >= 0, arr, dep)
    before = has_prev & (cur >= 0) & (cur < dep[np.maximum(prev_timed, 0)])
    sink.add_rows(
        "stop_time_with_arrival_before_previous_departure_time",
        rows(before, "arrival_time", "departure_time"),
        filename=fn,
    )
    # Trips with fewer than two stops are not usable (gtfs-validator: unusable_trip).
    counts = np.bincount(tc)
    single = first & (counts[tc] < 2)
    sink.add_rows("unusable_trip", rows(single), filename=fn)
    # Trips without any stop time are unusable too.
    trips = feed.trips
    if "trip_id" in trips.columns:
        empty = ~trips["trip_id"].astype(str).isin(pd.unique(trip)).to_numpy()
        if empty.any():
            sink.add_rows("unusable_trip", trips.loc[empty, ["trip_id"]], filename="trips.txt")
    # shape_dist_traveled must increase along the trip.
    if "shape_dist_traveled" in df.columns:
        sdt = feed.numbers("stop_times", "shape_dist_traveled")[0][order]
        prev = np.r_[np.nan, sdt[:-1]]
        dec = ~first & ~np.isnan(sdt) & ~np.isnan(prev) & (sdt <= prev)
        sink.add_rows(
            "decreasing_or_equal_stop_time_distance", rows(dec, "shape_dist_traveled"), filename=fn
        )
    _fast_travel(feed, sink, df, order, first, cur, dep, flex, key_cols)


def _fast_travel(
    feed: Feed,
    sink: NoticeSink,
    df: pd.DataFrame,
    order: np.ndarray,
    first: np.ndarray,
    cur: np.ndarray,
    dep: np.ndarray,
    flex: np.ndarray,
    key_cols: list[str],
) -> None:
    stops = feed.stops
    if stops.empty or "stop_id" not in df.columns or "stop_id" not in stops.columns:
        return
    si = first_index(stops["stop_id"].astype(str), df["stop_id"].astype(str))[order]
    lat = np.where(si >= 0, feed.numbers("stops", "stop_lat")[0][si], np.nan)
    lon = np.where(si >= 0, feed.numbers("stops", "stop_lon")[0][si], np.nan)
    d = np.r_[np.nan, haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:])]
    prev_dep = np.r_[-1, dep[:-1]]
    dt_s = cur - prev_dep
    ok = ~first & (cur >= 0) & (prev_dep >= 0) & ~flex & ~np.r_[False, flex[:-1]] & ~np.isnan(d)
    # Route type of each row: trips -> routes.
    trips, routes = feed.trips, feed.routes
    rt = np.full(len(df), 3)
    if {"trip_id", "route_id"} <= set(trips.columns) and "route_id" in routes.columns:
        ti = first_index(trips["trip_id"].astype(str), df["trip_id"].astype(str))[order]
        ri = first_index(
            routes["route_id"].astype(str),
            trips["route_id"].astype(str).to_numpy()[np.maximum(ti, 0)],
        )
        rtypes = int_column(routes, "route_type", 3, np.int64)
        rt = np.where((ti >= 0) & (ri >= 0), rtypes[np.maximum(ri, 0)], 3)
    lut = np.full(max(int(rt.max(initial=0)), max(MAX_SPEED_KMH)) + 1, DEFAULT_MAX_SPEED_KMH)
    for k, v in MAX_SPEED_KMH.items():
        lut[k] = v
    vmax = lut[np.clip(rt, 0, None)] / 3.6
    # Same-minute times give dt=0: gtfs-validator allows 1 minute of rounding.
    fast = ok & (d > 0) & (d / np.maximum(dt_s, 60) > vmax)
    if fast.any():
        r = df.iloc[order[fast]][key_cols].assign(
            distance_m=np.round(d[fast], 1),
            speed_kmh=np.round(d[fast] / np.maximum(dt_s[fast], 60) * 3.6, 1),
        )
        sink.add_rows("fast_travel_between_consecutive_stops", r, filename="stop_times.txt")

"""Pattern keys hold the stops closed to boarding / alighting (pickup/drop_off_type 1).

A RAPTOR pattern scan rides the earliest boardable trip of a pattern; a trip of the same stop
sequence that lets nobody off at a stop must therefore not share a pattern with trips that do,
or the later trips would be hidden from that stop.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from gtfs import compile_timetable, read_feed
from gtfs.patterns import assign_patterns
from tests.gtfs.test_compile import check_invariants

HEAD = "trip_id,arrival_time,departure_time,stop_id,stop_sequence,pickup_type,drop_off_type"
TRIPS = "route_id,service_id,trip_id\nR1,WK,T1\nR1,WK,T2\nR1,WK,T3\n"


def _stop_times(t1_drop_s2: int, t3_pick_s1: int = 0) -> str:
    return (
        f"{HEAD}\n"
        f"T1,08:00:00,08:00:00,S1,1,0,0\nT1,08:05:00,08:05:00,S2,2,0,{t1_drop_s2}\n"
        "T1,08:10:00,08:10:00,S3,3,0,0\n"
        "T2,08:30:00,08:30:00,S1,1,0,0\nT2,08:35:00,08:35:00,S2,2,0,0\n"
        "T2,08:40:00,08:40:00,S3,3,0,0\n"
        f"T3,09:00:00,09:00:00,S1,1,{t3_pick_s1},0\nT3,09:05:00,09:05:00,S2,2,0,0\n"
        "T3,09:10:00,09:10:00,S3,3,0,0\n"
    )


def _patterns(tt: object) -> dict[str, int]:
    return dict(zip(tt.trip_ids.tolist(), tt.trip_pattern.tolist(), strict=True))  # type: ignore[attr-defined]


def test_closed_drop_off_splits_the_pattern(make_feed: Callable[..., Path]) -> None:
    files = {"stop_times.txt": _stop_times(1), "trips.txt": TRIPS}
    tt = compile_timetable(read_feed(make_feed(files)))
    check_invariants(tt)
    pat = _patterns(tt)
    assert pat["T2"] == pat["T3"] != pat["T1"]
    assert tt.n_patterns == 2
    # Every trip of a pattern has the same closed stops.
    for p in range(tt.n_patterns):
        a, b = tt.pattern_trip_ptr[p], tt.pattern_trip_ptr[p + 1]
        n = int(np.diff(tt.pattern_stop_ptr)[p])
        rows = tt.trip_st_ptr[a:b, None] + np.arange(n)
        assert (tt.st_dropoff[rows] == 1).all(axis=0).tolist() == (
            (tt.st_dropoff[rows] == 1).any(axis=0).tolist()
        )


def test_closed_pickup_splits_and_open_types_do_not(make_feed: Callable[..., Path]) -> None:
    tt = compile_timetable(
        read_feed(make_feed({"stop_times.txt": _stop_times(0, 1), "trips.txt": TRIPS}))
    )
    pat = _patterns(tt)
    assert pat["T1"] == pat["T2"] != pat["T3"]
    # Types 2 and 3 (phone the agency, coordinate with the driver) still serve the stop: the
    # router treats them as open, so they do not split patterns.
    tt = compile_timetable(
        read_feed(make_feed({"stop_times.txt": _stop_times(2, 3), "trips.txt": TRIPS}))
    )
    assert tt.n_patterns == 1
    assert sorted(tt.st_dropoff.tolist()).count(2) == 1  # the type itself is kept per stop time


def test_assign_patterns_without_types_keeps_the_stop_sequence_key() -> None:
    ptr = np.array([0, 2, 4], np.int64)
    stops = np.array([0, 1, 0, 1], np.int32)
    t = np.array([0, 60, 600, 660], np.int32)
    route = np.zeros(2, np.int32)
    same, _ = assign_patterns(route, ptr, stops, t, t)
    assert same[0] == same[1]
    drop = np.array([0, 1, 0, 0], np.int8)
    split, _ = assign_patterns(route, ptr, stops, t, t, None, drop)
    assert split[0] != split[1]
    pick = np.array([1, 0, 0, 0], np.int8)
    split, _ = assign_patterns(route, ptr, stops, t, t, pick, None)
    assert split[0] != split[1]

"""Interpolation of blank times and expansion of frequencies.txt into concrete trips."""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gtfs import compile_timetable, read_feed

ST_HEAD = "trip_id,arrival_time,departure_time,stop_id,stop_sequence"
# S1 -> S2 500 m, S2 -> S3 500 m, S3 -> S4 1000 m (all on one meridian).
STOPS = (
    "stop_id,stop_name,stop_lat,stop_lon\n"
    "S1,a,35.0,139.0\nS2,b,35.0045,139.0\nS3,c,35.0090,139.0\nS4,d,35.0180,139.0\n"
)


def _times(path: Path, trip: str = "T1") -> list[int]:
    ts = read_feed(path).typed_stop_times
    t = int(np.flatnonzero(ts.trip_ids == trip)[0])
    return ts.arrival[ts.trip_ptr[t] : ts.trip_ptr[t + 1]].tolist()


def test_interpolates_by_straight_line_distance(make_feed: Callable[..., Path]) -> None:
    st = f"{ST_HEAD}\nT1,08:00:00,08:00:00,S1,1\nT1,,,S2,2\nT1,,,S3,3\nT1,08:20:00,08:20:00,S4,4\nT2,08:00:00,08:00:00,S1,1\nT2,08:10:00,08:10:00,S2,2\n"
    times = _times(make_feed({"stops.txt": STOPS, "stop_times.txt": st}))
    assert times == [8 * 3600, 8 * 3600 + 300, 8 * 3600 + 600, 8 * 3600 + 1200]


def test_interpolates_by_shape_dist_when_present(make_feed: Callable[..., Path]) -> None:
    st = (
        f"{ST_HEAD},shape_dist_traveled,timepoint\n"
        "T1,08:00:00,08:00:00,S1,1,0,1\nT1,,,S2,2,900,0\nT1,,,S3,3,950,0\nT1,08:10:00,08:10:00,S4,4,1000,1\n"
        "T2,08:00:00,08:00:00,S1,1,,\nT2,08:10:00,08:10:00,S2,2,,\n"
    )
    times = _times(make_feed({"stops.txt": STOPS, "stop_times.txt": st}))
    assert times == [28800, 28800 + 540, 28800 + 570, 28800 + 600]


def test_only_one_time_is_copied(make_feed: Callable[..., Path]) -> None:
    st = f"{ST_HEAD}\nT1,08:00:00,,S1,1\nT1,08:05:00,08:06:00,S2,2\nT1,,08:10:00,S3,3\nT2,08:00:00,08:00:00,S1,1\nT2,08:10:00,08:10:00,S2,2\n"
    ts = read_feed(make_feed({"stops.txt": STOPS, "stop_times.txt": st})).typed_stop_times
    assert ts.departure[:3].tolist() == [28800, 29160, 29400]
    assert ts.arrival[:3].tolist() == [28800, 29100, 29400]


def test_frequencies_expand_like_the_spec(gtfs_dir: Path) -> None:
    """google_sample: expected copies computed from the raw frequencies.txt."""
    path = gtfs_dir / "google_sample.zip"
    with zipfile.ZipFile(path) as zf:
        freq = list(csv.DictReader(io.StringIO(zf.read("frequencies.txt").decode("utf-8-sig"))))
        trips = list(csv.DictReader(io.StringIO(zf.read("trips.txt").decode("utf-8-sig"))))

    def secs(t: str) -> int:
        h, m, s = (int(x) for x in t.split(":"))
        return h * 3600 + m * 60 + s

    copies = sum(
        math.ceil((secs(r["end_time"]) - secs(r["start_time"])) / int(r["headway_secs"]))
        for r in freq
    )
    templates = {r["trip_id"] for r in freq}
    tt = compile_timetable(read_feed(path))
    assert tt.n_trips == len(trips) - len(templates) + copies
    assert tt.meta["frequency_trips"] == copies
    # CITY1 from 06:00 every 30 min until 07:59:59: 06:00, 06:30, 07:00, 07:30.
    starts = sorted(
        int(tt.st_departure[tt.trip_st_ptr[i]])
        for i, t in enumerate(tt.trip_ids)
        if t.startswith("CITY1@0")
    )
    assert starts[:4] == [6 * 3600, 6 * 3600 + 1800, 7 * 3600, 7 * 3600 + 1800]
    assert "CITY1@06:00:00" in set(tt.trip_ids.tolist()) and "CITY1" not in set(
        tt.trip_ids.tolist()
    )


def test_exact_times_zero_and_one_both_expand(make_feed: Callable[..., Path]) -> None:
    fq = "trip_id,start_time,end_time,headway_secs,exact_times\nT1,06:00:00,07:00:00,900,1\nT2,10:00:00,10:30:00,600,0\n"
    tt = compile_timetable(read_feed(make_feed({"frequencies.txt": fq})))
    ids = set(tt.trip_ids.tolist())
    assert {"T1@06:00:00", "T1@06:45:00", "T2@10:00:00", "T2@10:20:00"} <= ids
    assert tt.n_trips == 4 + 3
    t = int(np.flatnonzero(tt.trip_ids == "T1@06:45:00")[0])
    # Offsets between stops copied from the template (5 min each).
    assert tt.st_arrival[tt.trip_st_ptr[t] : tt.trip_st_ptr[t + 1]].tolist() == [
        24300,
        24600,
        24900,
    ]


def test_rows_sorted_by_trip_then_sequence_whatever_the_file_order() -> None:
    from gtfs.stop_times import _trip_sequence_order

    rng = np.random.default_rng(7)
    for top in (10, 2**40):  # the combined key, and sequences too large for it (lexsort)
        trip = rng.integers(0, 50, 500).astype(np.int64)
        seq = rng.integers(0, top, 500).astype(np.int64)
        seq[::7] = seq[1::7][: len(seq[::7])]  # ties keep file order
        assert _trip_sequence_order(trip, seq).tolist() == np.lexsort((seq, trip)).tolist()
        o = np.lexsort((seq, trip))
        assert _trip_sequence_order(trip[o], seq[o]).tolist() == list(range(500))  # in order


def test_stop_rows_and_trip_lookup_match_plain_lookups(
    make_feed: Callable[..., Path], gtfs_dir: Path
) -> None:
    from gtfs.arrays import first_index

    # T1's rows are split in two runs; X is no stop (a flex-like row); S2 is listed twice.
    stops = STOPS + "S2,again,36.0,140.0\n"
    st = (
        f"{ST_HEAD}\nT1,08:00:00,08:00:00,S1,1\nT2,08:00:00,08:00:00,S2,1\n"
        "T1,08:10:00,08:10:00,X,2\nT2,08:10:00,08:10:00,S3,2\nT1,08:20:00,08:20:00,S2,3\n"
    )
    paths = [make_feed({"stops.txt": stops, "stop_times.txt": st}), gtfs_dir / "google_sample.zip"]
    for path in paths:
        feed = read_feed(path)
        ts = feed.typed_stop_times
        want = first_index(feed.stops["stop_id"].astype(str), ts.stop_ids)
        assert ts.stop_row.tolist() == want.tolist()
        assert np.array_equal(ts.flex, ts.stop_row < 0)
        trips = feed.trips["trip_id"].astype(str).to_numpy()
        assert all(
            trips[r] == t.split("@")[0] for r, t in zip(ts.trip_row, ts.trip_ids, strict=True)
        )
    assert ts.n_trips > 0
    feed = read_feed(paths[0])
    ts = feed.typed_stop_times
    assert ts.trip_ids.tolist() == ["T1", "T2"]
    assert ts.stop_ids.tolist() == ["S1", "X", "S2", "S2", "S3"]
    assert ts.stop_row.tolist() == [0, -1, 1, 1, 2]

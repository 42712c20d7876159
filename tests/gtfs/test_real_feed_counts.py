"""Figures of real feeds checked against an independent reading of the raw files.

The expected values are computed here with ``zipfile`` + ``csv`` straight from the zips, not
with the package's reader, and compared with what ``read_feed`` / ``compile_timetable`` give.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from gtfs import compile_timetable, read_feed

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def raw_rows(zip_path: Path, name: str) -> list[dict[str, str]]:
    with zipfile.ZipFile(zip_path) as zf:
        if name not in zf.namelist():
            return []
        text = zf.read(name).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def active_services(zip_path: Path, day: dt.date) -> set[str]:
    ymd = day.strftime("%Y%m%d")
    active = {
        r["service_id"]
        for r in raw_rows(zip_path, "calendar.txt")
        if r["start_date"] <= ymd <= r["end_date"] and r[WEEKDAYS[day.weekday()]].strip() == "1"
    }
    for r in raw_rows(zip_path, "calendar_dates.txt"):
        if r["date"] == ymd:
            if r["exception_type"].strip() == "1":
                active.add(r["service_id"])
            elif r["exception_type"].strip() == "2":
                active.discard(r["service_id"])
    return active


# (feed, a service day to count trips on)
CASES = [
    ("jp_donan_bus_muroran.zip", dt.date(2020, 6, 3)),
    ("jp_kumagaya_yuyubus.zip", dt.date(2024, 7, 6)),
    ("au_cairns.zip", dt.date(2014, 6, 9)),  # a calendar_dates holiday (Queen's Birthday)
]


@pytest.mark.parametrize(("name", "day"), CASES)
def test_counts_match_raw_files(gtfs_dir: Path, name: str, day: dt.date) -> None:
    path = gtfs_dir / name
    stops = raw_rows(path, "stops.txt")
    trips = raw_rows(path, "trips.txt")
    stop_times = raw_rows(path, "stop_times.txt")
    per_trip = Counter(r["trip_id"] for r in stop_times)
    expected_connections = sum(n - 1 for n in per_trip.values())
    services = active_services(path, day)
    expected_active = sum(1 for t in trips if t["service_id"] in services)
    assert expected_active > 0  # the chosen day is a service day

    feed = read_feed(path)
    assert len(feed.stops) == len(stops)
    assert len(feed.trips) == len(trips)
    assert len(feed.stop_times) == len(stop_times)

    tt = compile_timetable(feed)
    assert tt.n_stops == len(stops)
    assert tt.n_trips == len(trips)
    assert tt.n_stop_times == len(stop_times)
    connections = int(((tt.trip_st_ptr[1:] - tt.trip_st_ptr[:-1]) - 1).sum())
    assert connections == expected_connections
    assert int(tt.active_trips(day).sum()) == expected_active
    # Trip ids and their stop counts survive compilation unchanged.
    compiled_counts = dict(
        zip(tt.trip_ids.tolist(), (tt.trip_st_ptr[1:] - tt.trip_st_ptr[:-1]).tolist(), strict=True)
    )
    assert compiled_counts == dict(per_trip)
    # Per-trip attributes follow their trips.
    raw_trip = {t["trip_id"]: t for t in trips}
    for i in range(0, tt.n_trips, 97):
        r = raw_trip[str(tt.trip_ids[i])]
        assert tt.trip_directions[i] == (int(r["direction_id"]) if r.get("direction_id") else -1)
        assert tt.trip_blocks[i] == r.get("block_id", "")
        assert tt.trip_headsigns[i] == r.get("trip_headsign", "")
        assert tt.trip_service[i] == int(np.flatnonzero(tt.service_ids == r["service_id"])[0])
    # GTFS stop_sequence carried per stop time, in increasing order within each trip.
    first = stop_times[0]
    t0 = int(np.flatnonzero(tt.trip_ids == first["trip_id"])[0])
    seqs = tt.st_stop_sequence[tt.trip_st_ptr[t0] : tt.trip_st_ptr[t0 + 1]].tolist()
    assert seqs == sorted(
        int(r["stop_sequence"]) for r in stop_times if r["trip_id"] == first["trip_id"]
    )


def test_readme_figures(gtfs_dir: Path) -> None:
    """The data README's figures (706 stops / 541 trips / 20,594 stop_times for Muroran...)."""
    m = read_feed(gtfs_dir / "jp_donan_bus_muroran.zip")
    assert (len(m.stops), len(m.routes), len(m.trips), len(m.stop_times)) == (706, 74, 541, 20594)
    c = read_feed(gtfs_dir / "au_cairns.zip")
    assert (len(c.stops), len(c.routes), len(c.trips), len(c.stop_times)) == (416, 22, 1339, 37790)


def test_cairns_times_past_midnight_and_blank_times(gtfs_dir: Path) -> None:
    path = gtfs_dir / "au_cairns.zip"
    raw = raw_rows(path, "stop_times.txt")
    blanks = [r for r in raw if r["departure_time"] == ""]
    assert len(blanks) == 65
    late = max(int(r["arrival_time"].split(":")[0]) for r in raw if r["arrival_time"])
    assert late >= 24
    tt = compile_timetable(read_feed(path))
    assert int(tt.st_arrival.max()) >= 24 * 3600
    assert tt.meta["interpolated_stop_times"] == 65
    # Every compiled trip is timed and non-decreasing after interpolation.
    inner = np.ones(tt.n_stop_times, dtype=bool)
    inner[tt.trip_st_ptr[:-1]] = False
    assert (tt.st_arrival >= 0).all()
    assert (tt.st_arrival[1:][inner[1:]] >= tt.st_departure[:-1][inner[1:]]).all()


@pytest.mark.parametrize("name", ["au_cairns.zip", "jp_donan_bus_muroran.zip"])
def test_shapes_match_raw_files(gtfs_dir: Path, name: str) -> None:
    """Every shape's points, in shape_pt_sequence order, and each trip's shape_id."""
    path = gtfs_dir / name
    pts: dict[str, list[tuple[int, float, float]]] = {}
    for r in raw_rows(path, "shapes.txt"):
        pts.setdefault(r["shape_id"], []).append(
            (int(r["shape_pt_sequence"]), float(r["shape_pt_lat"]), float(r["shape_pt_lon"]))
        )
    assert pts
    tt = compile_timetable(read_feed(path))
    assert sorted(tt.shape_ids.tolist()) == sorted(pts)
    for i, sid in enumerate(tt.shape_ids.tolist()):
        want = sorted(pts[sid])
        a, b = int(tt.shape_ptr[i]), int(tt.shape_ptr[i + 1])
        np.testing.assert_allclose(tt.shape_lat[a:b], [p[1] for p in want], atol=1e-6)
        np.testing.assert_allclose(tt.shape_lon[a:b], [p[2] for p in want], atol=1e-6)
    raw_shape = {t["trip_id"]: t.get("shape_id", "") for t in raw_rows(path, "trips.txt")}
    for i, tid in enumerate(tt.trip_ids.tolist()):
        s = int(tt.trip_shape[i])
        assert (str(tt.shape_ids[s]) if s >= 0 else "") == raw_shape[tid]

"""A headway edit on a route run partly by ``frequencies.txt``: the frequency rows' headways are
scaled, the scheduled trips thinned or filled in, and service levels count both (hand-computed)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

import gtfs
from app.planning.scenarios import ChangeHeadway, apply_edits
from gtfs.service_levels import TimeBand, compute_service_levels
from tests.gtfs.conftest import BASE_FEED, write_zip

DAY = dt.date(2030, 1, 7)  # a Monday: BASE_FEED's WK service runs
AM = TimeBand("am", 7 * 3600, 9 * 3600)
LATE = TimeBand("late", 10 * 3600, 12 * 3600)


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> gtfs.Feed:
    """R1: template F every 10 min 07:00-09:00 (12 trips) and scheduled trips at 10:00, 10:20,
    10:40, 11:00; R2: template G every 15 min 07:00-08:00 (4 trips), which no edit touches."""
    files: dict[str, str | bytes] = dict(BASE_FEED)
    files["routes.txt"] = (
        "route_id,agency_id,route_short_name,route_long_name,route_type\n"
        "R1,A,1,One,3\nR2,A,2,Two,3\n"
    )
    sched = ["S1", "S2", "S3"]
    trips = ["route_id,service_id,trip_id,direction_id", "R1,WK,F,0", "R2,WK,G,0"]
    rows = ["trip_id,arrival_time,departure_time,stop_id,stop_sequence"]
    for tid, start in (("F", 7 * 60), ("G", 7 * 60)):
        for k, s in enumerate(sched):
            m = start + 5 * k
            rows.append(
                f"{tid},{m // 60:02d}:{m % 60:02d}:00,{m // 60:02d}:{m % 60:02d}:00,{s},{k}"
            )
    for i, start in enumerate((600, 620, 640, 660)):
        tid = f"S{i}"
        trips.append(f"R1,WK,{tid},0")
        for k, s in enumerate(sched):
            m = start + 5 * k
            rows.append(
                f"{tid},{m // 60:02d}:{m % 60:02d}:00,{m // 60:02d}:{m % 60:02d}:00,{s},{k}"
            )
    files["trips.txt"] = "\n".join(trips) + "\n"
    files["stop_times.txt"] = "\n".join(rows) + "\n"
    files["frequencies.txt"] = (
        "trip_id,start_time,end_time,headway_secs,exact_times\n"
        "F,07:00:00,09:00:00,600,1\n"
        "G,07:00:00,08:00:00,900,1\n"
    )
    return gtfs.read_feed(write_zip(tmp_path_factory.mktemp("fq") / "f.zip", files))


def _route(feed: gtfs.Feed, route: str, band: TimeBand) -> dict[str, float]:
    sl = compute_service_levels(feed, DAY, (band,))
    r = sl.routes[sl.routes["route_id"] == route]
    assert len(r) == 1
    return {"trips": int(r["num_trips"].iloc[0]), "mean_headway": float(r["mean_headway"].iloc[0])}


def _departures(feed: gtfs.Feed, prefix: str) -> list[int]:
    """First departures (s) of the expanded trips whose ids start with ``prefix``."""
    ts = feed.typed_stop_times
    first = ts.departure[ts.trip_ptr[:-1]]
    return sorted(int(d) for t, d in zip(ts.trip_ids, first, strict=True) if t.startswith(prefix))


def test_service_levels_count_frequency_trips(feed: gtfs.Feed) -> None:
    # 07:00..08:50 every 10 min: 12 trips, 10 min apart.
    assert _route(feed, "R1", AM) == {"trips": 12, "mean_headway": 10.0}
    assert _route(feed, "R2", AM) == {"trips": 4, "mean_headway": 15.0}
    assert _route(feed, "R1", LATE) == {"trips": 4, "mean_headway": 20.0}


def test_doubling_the_headway_scales_frequencies_and_thins_scheduled_trips(
    feed: gtfs.Feed,
) -> None:
    out = apply_edits(feed, [ChangeHeadway(op="headway", route_id="R1", factor=2)])
    fq = out.tables["frequencies"].set_index("trip_id")["headway_secs"]
    assert fq.to_dict() == {"F": "1200", "G": "900"}  # R2 untouched
    assert feed.tables["frequencies"].set_index("trip_id")["headway_secs"]["F"] == "600"
    # The template stays (its stop times drive every departure).
    assert "F" in set(out.trips["trip_id"])
    assert _departures(out, "F") == [7 * 3600 + 1200 * n for n in range(6)]
    assert _route(out, "R1", AM) == {"trips": 6, "mean_headway": 20.0}
    # Scheduled: every second trip kept, 10:00 and 10:40.
    assert sorted(set(out.trips["trip_id"]) - {"F", "G"}) == ["S0", "S2"]
    assert _route(out, "R1", LATE) == {"trips": 2, "mean_headway": 40.0}
    assert _route(out, "R2", AM) == {"trips": 4, "mean_headway": 15.0}


def test_halving_the_headway_doubles_both_kinds_of_trip(feed: gtfs.Feed) -> None:
    out = apply_edits(feed, [ChangeHeadway(op="headway", route_id="R1", factor=0.5)])
    assert out.tables["frequencies"].set_index("trip_id")["headway_secs"]["F"] == "300"
    assert _departures(out, "F") == [7 * 3600 + 300 * n for n in range(24)]
    assert _route(out, "R1", AM) == {"trips": 24, "mean_headway": 5.0}
    # 4 scheduled + one halfway between each two: 10:00, 10:10, ..., 11:00.
    assert _route(out, "R1", LATE) == {"trips": 7, "mean_headway": 10.0}
    # No template copied: a copy would run its own 24 trips.
    assert not any("~h" in t for t in out.trips["trip_id"] if t.startswith("F"))


def test_a_factor_not_a_whole_number_scales_the_headway_exactly(feed: gtfs.Feed) -> None:
    out = apply_edits(feed, [ChangeHeadway(op="headway", route_id="R1", factor=1.5)])
    assert out.tables["frequencies"].set_index("trip_id")["headway_secs"]["F"] == "900"
    # 07:00..08:45 every 15 min: 8 trips.
    got = _departures(out, "F")
    assert got == [7 * 3600 + 900 * n for n in range(8)]
    assert np.all(np.diff(got) == 900)


def test_a_frequency_row_without_a_valid_headway_is_left_alone(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = dict(BASE_FEED)
    files["frequencies.txt"] = "trip_id,start_time,end_time,headway_secs\nT1,08:00:00,09:00:00,\n"
    f = gtfs.read_feed(write_zip(tmp_path / "f.zip", files))
    out = apply_edits(f, [ChangeHeadway(op="headway", route_id="R1", factor=2)])
    assert out.tables["frequencies"]["headway_secs"].tolist() == [""]
    # T1 is a (broken) frequency trip: only T2 is scheduled, kept as the first of its run.
    assert sorted(out.trips["trip_id"]) == ["T1", "T2"]

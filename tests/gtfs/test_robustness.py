"""Odd and broken feeds: read, validate and compile answer notices, never an exception."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gtfs import compile_timetable, read_feed, validate_feed
from tests.gtfs.conftest import BASE_FEED

CASES: dict[str, tuple[dict[str, str | None], str]] = {
    "only_agency": ({k: None for k in BASE_FEED if k != "agency.txt"}, "missing_required_file"),
    "no_stops": ({"stops.txt": None}, "missing_required_file"),
    "stop_times_without_columns": ({"stop_times.txt": "trip_id\nT1\n"}, "missing_required_column"),
    "stop_times_empty": ({"stop_times.txt": ""}, "empty_file"),
    "stop_times_header_only": ({"stop_times.txt": "trip_id,stop_id,stop_sequence\n"}, "empty_file"),
    "trips_without_route": ({"trips.txt": "trip_id\nT1\n"}, "missing_required_column"),
    "stops_without_coordinates": ({"stops.txt": "stop_id\nS1\nS2\nS3\n"}, "stop_without_location"),
    "calendar_without_columns": ({"calendar.txt": "service_id\nWK\n"}, "missing_required_column"),
    "bad_sequence": (
        {
            "stop_times.txt": "trip_id,arrival_time,departure_time,stop_id,stop_sequence\nT1,08:00:00,08:00:00,S1,x\nT1,08:00:00,08:00:00,S2,1\n"
        },
        "invalid_integer",
    ),
    "duplicate_stop": (
        {"stops.txt": BASE_FEED["stops.txt"] + "S1,dup,35,139,0,\n"},
        "duplicate_key",
    ),
    "parent_cycle": (
        {
            "stops.txt": "stop_id,stop_lat,stop_lon,parent_station\nS1,35,139,S2\nS2,35,139,S1\nS3,35,139,\n"
        },
        "parent_station_not_a_station",
    ),
    "frequencies_broken": ({"frequencies.txt": "trip_id,start_time\nT1,x\n"}, "invalid_time"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_feed_gives_errors_not_exceptions(make_feed: Callable[..., Path], case: str) -> None:
    files, code = CASES[case]
    feed = read_feed(make_feed(files))
    report = validate_feed(feed)
    assert code in report.codes()
    assert report.has_errors  # publishing is blocked
    tt = compile_timetable(feed)  # still compiles what is usable
    assert tt.n_stops == len(feed.stops)
    feed.stop_readings()
    assert feed.flex.services == []

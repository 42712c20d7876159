"""Helpers for building small GTFS zips in ``tmp_path``."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

#: A tiny valid feed: two stops 500 m apart, one route, two trips, one weekday calendar.
BASE_FEED: dict[str, str] = {
    "agency.txt": "agency_id,agency_name,agency_url,agency_timezone\nA,Agency,https://a.example,Asia/Tokyo\n",
    "stops.txt": (
        "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station\n"
        "S1,One,35.0000,139.0000,0,\n"
        "S2,Two,35.0045,139.0000,0,\n"
        "S3,Three,35.0090,139.0000,0,\n"
    ),
    "routes.txt": "route_id,agency_id,route_short_name,route_long_name,route_type\nR1,A,1,Line,3\n",
    "trips.txt": "route_id,service_id,trip_id\nR1,WK,T1\nR1,WK,T2\n",
    "stop_times.txt": (
        "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
        "T1,08:00:00,08:00:00,S1,1\n"
        "T1,08:05:00,08:05:00,S2,2\n"
        "T1,08:10:00,08:10:00,S3,3\n"
        "T2,25:00:00,25:00:00,S1,1\n"
        "T2,25:05:00,25:05:00,S2,2\n"
        "T2,25:10:00,25:10:00,S3,3\n"
    ),
    "calendar.txt": (
        "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
        "WK,1,1,1,1,1,0,0,20300101,20301231\n"
    ),
}


def write_zip(path: Path, files: dict[str, str | bytes], *, prefix: str = "") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(prefix + name, data)
    return path


@pytest.fixture
def make_feed(tmp_path: Path) -> Callable[..., Path]:
    """``make_feed(**overrides)``: BASE_FEED with files replaced (``None`` removes one)."""
    counter = iter(range(1000))

    def make(files: dict[str, str | bytes | None] | None = None, *, prefix: str = "") -> Path:
        merged: dict[str, str | bytes] = dict(BASE_FEED)
        for k, v in (files or {}).items():
            if v is None:
                merged.pop(k, None)
            else:
                merged[k] = v
        return write_zip(tmp_path / f"feed{next(counter)}.zip", merged, prefix=prefix)

    return make

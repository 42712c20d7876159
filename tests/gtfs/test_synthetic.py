"""The synthetic network builder (reused by the router benchmark) and the feed writer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from gtfs import compile_timetable, read_feed
from gtfs.synthetic import replicate_feed, scaled_feed
from gtfs.writer import write_feed


def test_replicate_space_and_time(make_feed: Callable[..., Path], tmp_path: Path) -> None:
    feed = read_feed(make_feed())
    big = replicate_feed(feed, space=3, time=2)
    assert len(big.stops) == 9 and len(big.trips) == 12 and len(big.stop_times) == 36
    assert big.stops["stop_id"].is_unique and big.trips["trip_id"].is_unique
    # Round trip through a real zip, then compile: 6x trips, copies not linked by footpaths.
    tt = compile_timetable(read_feed(write_feed(big, tmp_path / "big.zip")), footpath_radius_m=600)
    base = compile_timetable(feed, footpath_radius_m=600)
    assert tt.n_trips == 6 * base.n_trips and tt.n_stop_times == 6 * base.n_stop_times
    assert len(tt.transfer_to) == 3 * len(base.transfer_to)
    t = int(np.flatnonzero(tt.trip_ids == "T1~s1~t1")[0])
    assert tt.st_departure[tt.trip_st_ptr[t]] == 8 * 3600 + 1800  # shifted by 30 min
    lon = tt.stop_lon[tt.stop_ids == "S1~s2"][0]
    assert lon == pytest.approx(141.0)


def test_scaled_cairns(gtfs_dir: Path) -> None:
    cairns = read_feed(gtfs_dir / "au_cairns.zip")
    big = scaled_feed(cairns, 4)
    assert len(big.stop_times) == 4 * len(cairns.stop_times)
    assert len(big.stops) == 2 * len(cairns.stops)
    tt = compile_timetable(big)
    assert tt.n_trips == 4 * 1339 and tt.meta["interpolated_stop_times"] == 4 * 65

"""Session fixtures: the real feeds compiled once, their router data and raw references."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import gtfs
from gtfs.compiled import CompiledTimetable
from routing.transit import TransitData
from tests.routing.reference import RawFeed, Reference

FEEDS = {
    "muroran": "jp_donan_bus_muroran.zip",
    "cairns": "au_cairns.zip",
    "nyc": "us_nyc_subway_2routes.zip",
}


@dataclass
class FeedCase:
    name: str
    path: Path
    tt: CompiledTimetable
    data: TransitData
    ref: Reference


def footpath_rows(tt: CompiledTimetable) -> list[tuple[str, str, int]]:
    src = np.repeat(np.arange(tt.n_stops), np.diff(tt.transfer_ptr))
    return [
        (str(tt.stop_ids[a]), str(tt.stop_ids[b]), int(s))
        for a, b, s in zip(src, tt.transfer_to, tt.transfer_s, strict=True)
    ]


_CACHE: dict[str, FeedCase] = {}


def load_case(gtfs_dir: Path, name: str) -> FeedCase:
    if name not in _CACHE:
        path = gtfs_dir / FEEDS[name]
        tt = gtfs.compile_timetable(gtfs.read_feed(path))
        _CACHE[name] = FeedCase(
            name, path, tt, TransitData(tt), Reference(RawFeed.load(path), footpath_rows(tt))
        )
    return _CACHE[name]


@pytest.fixture(scope="session", params=list(FEEDS))
def feed_case(request: pytest.FixtureRequest, gtfs_dir: Path) -> FeedCase:
    return load_case(gtfs_dir, request.param)


@pytest.fixture(scope="session")
def muroran(gtfs_dir: Path) -> FeedCase:
    return load_case(gtfs_dir, "muroran")


@pytest.fixture(scope="session")
def cairns(gtfs_dir: Path) -> FeedCase:
    return load_case(gtfs_dir, "cairns")

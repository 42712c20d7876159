"""Real street data shared by the street tests: both OSM extracts and the Terre Haute stops."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from routing.street import StreetGraph, load_osm


def read_stops(path: Path) -> pd.DataFrame:
    """``stops.txt`` of a GTFS zip (only located stops)."""
    with zipfile.ZipFile(path) as z, z.open("stops.txt") as f:
        stops = pd.read_csv(f, dtype={"stop_id": str})
    return stops[np.isfinite(stops["stop_lat"]) & np.isfinite(stops["stop_lon"])].reset_index()


@pytest.fixture(scope="session")
def terre_haute_pbf(shared_data: Path) -> Path:
    return shared_data / "osm" / "us_terre_haute.osm.pbf"


@pytest.fixture(scope="session")
def cobb_pbf(shared_data: Path) -> Path:
    return shared_data / "osm" / "us_cobb_county_filtered.osm.pbf"


@pytest.fixture(scope="session")
def terre_haute(terre_haute_pbf: Path) -> dict[str, StreetGraph]:
    return load_osm(terre_haute_pbf)


@pytest.fixture(scope="session")
def cobb(cobb_pbf: Path) -> dict[str, StreetGraph]:
    return load_osm(cobb_pbf)


@pytest.fixture(scope="session")
def th_stops(gtfs_dir: Path) -> pd.DataFrame:
    return read_stops(gtfs_dir / "us_terre_haute.zip")


@pytest.fixture(scope="session")
def muroran_stops(gtfs_dir: Path) -> pd.DataFrame:
    return read_stops(gtfs_dir / "jp_donan_bus_muroran.zip")

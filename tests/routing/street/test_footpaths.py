"""Footpaths between nearby stops, straight-line and on the OSM walking graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gtfs.footpaths import Footpaths
from routing.street import OsmWalkAccess, StreetGraph, footpath_source, footpaths, haversine_m

from .test_geo import hand_haversine


def test_straight_line_footpaths_match_brute_force(muroran_stops: pd.DataFrame) -> None:
    lat, lon = muroran_stops["stop_lat"].to_numpy(), muroran_stops["stop_lon"].to_numpy()
    a, b, sec = footpaths(None, lat, lon, radius_m=300)
    got = {(int(i), int(j)): int(s) for i, j, s in zip(a, b, sec, strict=True)}
    d = haversine_m(lat[:, None], lon[:, None], lat[None, :], lon[None, :]) * 1.3
    i, j = np.nonzero((d <= 300) & ~np.eye(len(lat), dtype=bool))
    assert len(i) > 50
    assert set(got) == set(zip(i.tolist(), j.tolist(), strict=True))
    for (p, q), s in list(got.items())[:50]:
        assert s == int(np.ceil(hand_haversine(lat[p], lon[p], lat[q], lon[q]) * 1.3 / 1.2 - 1e-9))
    assert np.all(np.diff(a) >= 0)
    assert a.dtype == b.dtype == sec.dtype == np.int32


def test_stops_without_coordinates_are_skipped() -> None:
    a, b, _sec = footpaths(None, [42.0, np.nan, 42.0001], [141.0, np.nan, 141.0])
    assert a.tolist() == [0, 2] and b.tolist() == [2, 0]
    assert footpaths(None, [], [])[0].size == 0
    with pytest.raises(ValueError, match="radius_m"):
        footpaths(None, [42.0], [141.0], radius_m=-1)


def test_osm_footpaths(terre_haute: dict[str, StreetGraph], th_stops: pd.DataFrame) -> None:
    g = terre_haute["walk"]
    lat, lon = th_stops["stop_lat"].to_numpy(), th_stops["stop_lon"].to_numpy()
    a, b, sec = footpaths(g, lat, lon, radius_m=400)
    assert a.size > 20
    assert np.all(a != b)
    gc = haversine_m(lat[a], lon[a], lat[b], lon[b])
    assert np.all(sec >= np.floor(gc / 1.2)), "never faster than the great circle"
    assert np.all(sec <= np.ceil(400 / 1.2))
    # Both directions, same time (walking graphs are symmetric).
    fwd = dict(zip(zip(a.tolist(), b.tolist(), strict=True), sec.tolist(), strict=True))
    assert all(fwd[(j, i)] == s for (i, j), s in fwd.items())
    # Each agrees with a single walk on the same graph.
    access = OsmWalkAccess(g, lat, lon)
    for i, j in list(fwd)[:10]:
        assert access.walk(lat[i], lon[i], lat[j], lon[j])[0] == fwd[(i, j)]
    # With no graph the straight-line model answers instead.
    assert footpaths(None, lat, lon, radius_m=400)[0].size > 0


def test_footpath_source_feeds_the_compiler(
    terre_haute: dict[str, StreetGraph], gtfs_dir: Path
) -> None:
    source = footpath_source(terre_haute["walk"], radius_m=400)
    fp = source(np.array([39.4667, 39.4669, 41.0]), np.array([-87.4139, -87.4139, -87.4]))
    assert isinstance(fp, Footpaths)
    compile_mod = pytest.importorskip("gtfs.compile")
    reader = pytest.importorskip("gtfs.reader")
    feed = reader.read_feed(gtfs_dir / "us_terre_haute.zip")
    tt = compile_mod.compile_timetable(feed, footpaths=source)
    a, b, sec = footpaths(terre_haute["walk"], tt.stop_lat, tt.stop_lon, radius_m=400)
    assert a.size
    for i, j, s in zip(a[:20], b[:20], sec[:20], strict=True):
        row = slice(tt.transfer_ptr[i], tt.transfer_ptr[i + 1])
        hits = np.flatnonzero(tt.transfer_to[row] == j)
        assert hits.size == 1
        # transfers.txt or parent-station rules may override; a plain footpath keeps its time.
        assert tt.transfer_s[row][hits[0]] <= s


def test_off_network_stops_keep_straight_line_footpaths(
    terre_haute: dict[str, StreetGraph],
) -> None:
    # Two stops 5 km south of the extract's streets, 100 m apart, and one on the network.
    lat = np.array([39.20, 39.2009, 39.4667])
    lon = np.array([-87.41, -87.41, -87.4139])
    a, b, sec = footpaths(terre_haute["walk"], lat, lon, radius_m=400)
    assert a.tolist() == [0, 1] and b.tolist() == [1, 0]
    expected = int(np.ceil(float(haversine_m(lat[0], lon[0], lat[1], lon[1])) * 1.3 / 1.2 - 1e-9))
    assert sec.tolist() == [expected, expected]


def test_street_transfer_seconds_never_undercut_the_streets(
    terre_haute: dict[str, StreetGraph], gtfs_dir: Path
) -> None:
    """Terre Haute compiled with straight-line footpaths, re-timed on its OSM walking graph:
    no transfer gets shorter, changes at one stop keep their time, and a re-timed transfer
    takes exactly the street walk between its stops."""
    import gtfs
    from routing.street.footpaths import street_transfer_seconds
    from routing.street.osm_access import OsmWalkAccess

    graph = terre_haute["walk"]
    tt = gtfs.compile_timetable(gtfs.read_feed(gtfs_dir / "us_terre_haute.zip"))
    args = (tt.stop_lat, tt.stop_lon, tt.transfer_ptr, tt.transfer_to, tt.transfer_s)
    new = street_transfer_seconds(graph, *args, 1.2)
    old = tt.transfer_s
    assert new.shape == old.shape and np.all(new >= old)
    src = np.repeat(np.arange(tt.n_stops), np.diff(tt.transfer_ptr))
    same = src == tt.transfer_to
    assert np.array_equal(new[same], old[same])
    longer = np.flatnonzero(new > old)
    assert longer.size > 0  # some crow-fly footpaths cross a block or a barrier
    access = OsmWalkAccess(graph, tt.stop_lat, tt.stop_lon)
    for e in longer[:: max(1, longer.size // 20)]:
        a, b = int(src[e]), int(tt.transfer_to[e])
        secs, _, _ = access.walk(
            float(tt.stop_lat[a]), float(tt.stop_lon[a]), float(tt.stop_lat[b]),
            float(tt.stop_lon[b]), 1.2,
        )  # fmt: skip
        assert abs(int(new[e]) - secs) <= 1, (a, b, int(new[e]), secs)
    with pytest.raises(ValueError, match="do not match"):
        street_transfer_seconds(graph, tt.stop_lat[:-1], tt.stop_lon[:-1], *args[2:])

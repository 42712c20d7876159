"""Compiled timetables: CSR invariants, patterns without overtaking, services, transfers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from gtfs import CompiledTimetable, FeedError, Footpaths, compile_timetable, read_feed
from gtfs.footpaths import DETOUR_FACTOR, WALK_SPEED_MPS
from gtfs.geo import haversine_m
from tests.gtfs.conftest import BASE_FEED

ST_HEAD = "trip_id,arrival_time,departure_time,stop_id,stop_sequence"


def check_invariants(tt: CompiledTimetable) -> None:
    """Every structural promise of gtfs/compiled.py."""
    P, T, S = tt.n_patterns, tt.n_trips, tt.n_stops
    assert tt.pattern_stop_ptr.shape == (P + 1,) and tt.pattern_trip_ptr.shape == (P + 1,)
    assert tt.pattern_trip_ptr[-1] == T and tt.trip_st_ptr[-1] == tt.n_stop_times
    assert tt.stop_pattern_ptr.shape == (S + 1,) and tt.transfer_ptr.shape == (S + 1,)
    for name in ("pattern_stops", "trip_pattern", "stop_patterns", "transfer_to", "st_arrival"):
        assert getattr(tt, name).dtype == np.int32, name
    assert tt.trip_st_ptr.dtype == np.int64
    # Trips of pattern p are contiguous and sorted by first departure.
    trip_pat = np.repeat(np.arange(P), np.diff(tt.pattern_trip_ptr))
    assert (trip_pat == tt.trip_pattern).all()
    first_dep = tt.st_departure[tt.trip_st_ptr[:-1]]
    same = trip_pat[1:] == trip_pat[:-1]
    assert (first_dep[1:][same] >= first_dep[:-1][same]).all()
    # Each trip has exactly its pattern's stop count; no trip overtakes the one before it.
    lengths = np.diff(tt.trip_st_ptr)
    assert (lengths == np.diff(tt.pattern_stop_ptr)[tt.trip_pattern]).all()
    for p in range(P):
        a, b = tt.pattern_trip_ptr[p], tt.pattern_trip_ptr[p + 1]
        n = int(tt.pattern_stop_ptr[p + 1] - tt.pattern_stop_ptr[p])
        rows = tt.trip_st_ptr[a:b]
        arr = tt.st_arrival[rows[:, None] + np.arange(n)]
        dep = tt.st_departure[rows[:, None] + np.arange(n)]
        assert (np.diff(arr, axis=0) >= 0).all() and (np.diff(dep, axis=0) >= 0).all()
        assert (tt.trip_route[a:b] == tt.pattern_route[p]).all()
    # stop -> pattern CSR is the inverse of pattern_stops.
    for s in range(S):
        for k in range(tt.stop_pattern_ptr[s], tt.stop_pattern_ptr[s + 1]):
            p, pos = tt.stop_patterns[k], tt.stop_pattern_pos[k]
            assert tt.pattern_stops[tt.pattern_stop_ptr[p] + pos] == s
    assert tt.stop_pattern_ptr[-1] == len(tt.pattern_stops)
    assert (tt.transfer_s >= 0).all()


@pytest.mark.parametrize(
    "name",
    ["au_cairns.zip", "jp_donan_bus_muroran.zip", "us_nyc_subway_2routes.zip", "google_sample.zip"],
)
def test_real_feed_invariants(gtfs_dir: Path, name: str) -> None:
    check_invariants(compile_timetable(read_feed(gtfs_dir / name)))


def test_overtaking_trips_split_into_patterns(make_feed: Callable[..., Path]) -> None:
    # T2 leaves after T1 but arrives before it (an express on the same stops).
    st = (
        f"{ST_HEAD}\nT1,08:00:00,08:00:00,S1,1\nT1,08:20:00,08:20:00,S2,2\nT1,08:40:00,08:40:00,S3,3\n"
        "T2,08:05:00,08:05:00,S1,1\nT2,08:10:00,08:10:00,S2,2\nT2,08:15:00,08:15:00,S3,3\n"
        "T3,09:00:00,09:00:00,S1,1\nT3,09:20:00,09:20:00,S2,2\nT3,09:40:00,09:40:00,S3,3\n"
    )
    trips = "route_id,service_id,trip_id\nR1,WK,T1\nR1,WK,T2\nR1,WK,T3\n"
    tt = compile_timetable(read_feed(make_feed({"stop_times.txt": st, "trips.txt": trips})))
    assert tt.n_patterns == 2
    check_invariants(tt)
    pat = dict(zip(tt.trip_ids.tolist(), tt.trip_pattern.tolist(), strict=True))
    assert pat["T1"] == pat["T3"] != pat["T2"]


def test_times_and_service_days(make_feed: Callable[..., Path]) -> None:
    cd = "service_id,date,exception_type\nWK,20300105,1\nWK,20300107,2\n"
    tt = compile_timetable(read_feed(make_feed({"calendar_dates.txt": cd})))
    assert tt.service_start == dt.date(2030, 1, 1)
    assert tt.last_service_date == dt.date(2030, 12, 31)
    t2 = int(np.flatnonzero(tt.trip_ids == "T2")[0])
    assert tt.st_departure[tt.trip_st_ptr[t2]] == 25 * 3600  # past midnight kept as 25:00
    assert tt.active_trips(dt.date(2030, 1, 2)).all()  # Wednesday
    assert tt.active_trips(dt.date(2030, 1, 5)).all()  # Saturday added by calendar_dates
    assert not tt.active_trips(dt.date(2030, 1, 6)).any()  # Sunday
    assert not tt.active_trips(dt.date(2030, 1, 7)).any()  # Monday removed
    assert not tt.active_trips(dt.date(2031, 1, 1)).any()  # outside the range


def test_save_load_round_trip(gtfs_dir: Path, tmp_path: Path) -> None:
    tt = compile_timetable(read_feed(gtfs_dir / "us_nyc_subway_2routes.zip"))
    p = tmp_path / "tt.npz"
    tt.save(p)
    back = CompiledTimetable.load(p)
    for f in (
        "stop_ids",
        "trip_ids",
        "st_arrival",
        "transfer_to",
        "transfer_s",
        "service_days",
        "shape_lat",
        "pattern_stops",
        "rule_type",
    ):
        assert np.array_equal(getattr(tt, f), getattr(back, f)), f
    assert back.service_start == tt.service_start and back.meta == tt.meta
    assert back.timezone == "America/New_York"


def _transfer(tt: CompiledTimetable, a: str, b: str) -> int | None:
    ia = int(np.flatnonzero(tt.stop_ids == a)[0])
    ib = int(np.flatnonzero(tt.stop_ids == b)[0])
    lo, hi = tt.transfer_ptr[ia], tt.transfer_ptr[ia + 1]
    hit = np.flatnonzero(tt.transfer_to[lo:hi] == ib)
    return int(tt.transfer_s[lo + hit[0]]) if len(hit) else None


def test_straight_line_footpaths(make_feed: Callable[..., Path]) -> None:
    feed = read_feed(make_feed())
    tt = compile_timetable(feed, footpath_radius_m=600)
    d = float(
        haversine_m(np.array([35.0]), np.array([139.0]), np.array([35.0045]), np.array([139.0]))[0]
    )
    assert d == pytest.approx(500, abs=2)
    assert _transfer(tt, "S1", "S2") == int(np.ceil(d * DETOUR_FACTOR / WALK_SPEED_MPS))
    assert _transfer(tt, "S2", "S1") == _transfer(tt, "S1", "S2")
    assert _transfer(tt, "S1", "S3") is None  # 1 km: beyond the radius
    assert len(compile_timetable(feed, footpath_radius_m=100).transfer_to) == 0


def test_transfers_txt_types(make_feed: Callable[..., Path]) -> None:
    tr = (
        "from_stop_id,to_stop_id,transfer_type,min_transfer_time,from_trip_id,to_trip_id\n"
        "S1,S2,3,,,\n"  # not possible: removes the footpath
        "S2,S3,2,120,,\n"  # minimum time, even beyond the radius
        "S2,S2,2,90,,\n"  # a minimum change time at one stop
        "S3,S1,1,,,\n"  # timed
        "S3,S3,4,,T1,T2\n"  # in-seat: a rule
        "S1,S3,0,,,\n"  # recommended: walking time, even beyond the radius
        "S1,S1,5,,T2,T1\n"  # in-seat not allowed: a rule
    )
    tt = compile_timetable(read_feed(make_feed({"transfers.txt": tr})), footpath_radius_m=600)
    assert _transfer(tt, "S1", "S2") is None
    assert _transfer(tt, "S2", "S1") is not None  # only one direction was forbidden
    assert _transfer(tt, "S2", "S3") == 120
    assert _transfer(tt, "S2", "S2") == 90
    assert _transfer(tt, "S3", "S1") == 0
    d = float(
        haversine_m(np.array([35.0]), np.array([139.0]), np.array([35.009]), np.array([139.0]))[0]
    )  # S1 -> S3, about 1 km
    assert d > 600
    assert _transfer(tt, "S1", "S3") == int(np.ceil(d * DETOUR_FACTOR / WALK_SPEED_MPS))
    assert tt.rule_type.tolist() == [4, 5]
    pairs = [
        (str(tt.trip_ids[f]), str(tt.trip_ids[t]), str(tt.stop_ids[s]))
        for f, t, s in zip(tt.rule_from_trip, tt.rule_to_trip, tt.rule_from_stop, strict=True)
    ]
    assert pairs == [("T1", "T2", "S3"), ("T2", "T1", "S1")]
    assert (tt.rule_from_route == -1).all()


def test_parent_station_siblings(make_feed: Callable[..., Path]) -> None:
    stops = (
        "stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station,wheelchair_boarding\n"
        "ST,Station,35.0,139.0,1,,1\n"
        "S1,P1,35.0,139.0,0,ST,0\n"
        "S2,P2,35.0,139.02,0,ST,2\n"  # 1.8 km away, still a sibling
        "S3,Far,35.1,139.0,0,,\n"
    )
    tt = compile_timetable(read_feed(make_feed({"stops.txt": stops})), footpath_radius_m=50)
    sib = _transfer(tt, "S1", "S2")
    assert sib is not None and sib > 1000
    assert tt.stop_parent.tolist() == [-1, 0, 0, -1]
    assert tt.stop_wheelchair.tolist()[:3] == [1, 1, 2]  # S1 inherits from its station


def test_multi_feed_prefixes_and_cross_feed_footpaths(make_feed: Callable[..., Path]) -> None:
    a = read_feed(make_feed(), feed_id="a")
    near = BASE_FEED["stops.txt"].replace("139.0000", "139.0010")  # ~90 m east
    b = read_feed(make_feed({"stops.txt": near}), feed_id="b")
    tt = compile_timetable([a, b], footpath_radius_m=200)
    assert tt.feed_ids == ("a", "b")
    assert tt.stop_ids.tolist()[:4] == ["a:S1", "a:S2", "a:S3", "b:S1"]
    assert set(tt.trip_ids.tolist()) == {"a:T1", "a:T2", "b:T1", "b:T2"}
    assert set(tt.service_ids.tolist()) == {"a:WK", "b:WK"}
    assert _transfer(tt, "a:S1", "b:S1") is not None
    check_invariants(tt)
    with pytest.raises(FeedError) as e:
        compile_timetable([a, a])
    assert e.value.code == "duplicate_feed_id"


def test_given_footpaths(make_feed: Callable[..., Path]) -> None:
    feed = read_feed(make_feed())
    tt = compile_timetable(
        feed,
        footpaths=Footpaths(
            np.array([0], np.int32), np.array([2], np.int32), np.array([77], np.int32)
        ),
    )
    assert _transfer(tt, "S1", "S3") == 77 and _transfer(tt, "S1", "S2") is None

    def from_coords(lat: np.ndarray, lon: np.ndarray) -> Footpaths:
        assert len(lat) == 3
        return Footpaths(np.array([1], np.int32), np.array([0], np.int32), np.array([5], np.int32))

    assert _transfer(compile_timetable(feed, footpaths=from_coords), "S2", "S1") == 5
    with pytest.raises(FeedError):
        compile_timetable(feed, footpaths=(np.array([0]), np.array([99]), np.array([1])))


def test_broken_trips_are_dropped_not_crashing(make_feed: Callable[..., Path]) -> None:
    st = (
        f"{ST_HEAD}\nT1,08:00:00,08:00:00,S1,1\nT1,,,S2,2\n"  # missing last time
        "T2,08:00:00,08:00:00,S1,1\nT2,07:00:00,07:00:00,S2,2\n"  # goes back in time
    )
    tt = compile_timetable(read_feed(make_feed({"stop_times.txt": st})))
    assert tt.n_trips == 0 and tt.meta["dropped_trips"] == 2
    check_invariants(tt)


def test_real_feeds_of_one_area_merge(gtfs_dir: Path) -> None:
    """CobbLinc bus 30 + MARTA 856 + CobbLinc flex (same area, same dates) as one network."""
    names = ["us_cobblinc_bus30", "us_marta_bus856", "us_cobblinc_flex"]
    feeds = [read_feed(gtfs_dir / f"{n}.zip") for n in names]
    tt = compile_timetable(feeds)
    single = [compile_timetable(f) for f in feeds]
    assert tt.feed_ids == tuple(names)
    assert tt.n_trips == sum(s.n_trips for s in single)
    assert tt.meta["feed_stop_offsets"] == [0, 187, 353, 357]
    feed_of = np.searchsorted(tt.meta["feed_stop_offsets"], np.arange(tt.n_stops), side="right") - 1
    src = np.repeat(np.arange(tt.n_stops), np.diff(tt.transfer_ptr))
    assert (feed_of[src] != feed_of[tt.transfer_to]).sum() > 0  # walks between the two agencies
    check_invariants(tt)

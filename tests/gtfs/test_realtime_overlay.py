"""TripUpdates applied to the compiled Muroran timetable (real trips of a real feed)."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from google.transit import gtfs_realtime_pb2 as pb

from gtfs.compile import compile_timetable
from gtfs.compiled import CompiledTimetable
from gtfs.feed import Feed
from gtfs.reader import read_feed
from gtfs.realtime import (
    RealtimeState,
    TripMatcher,
    apply_trip_updates,
    parse_feed,
    service_day_origin,
)

DAY = dt.date(2020, 11, 30)  # a Monday inside Muroran's calendar


@pytest.fixture(scope="module")
def muroran(gtfs_dir: Path) -> tuple[CompiledTimetable, np.ndarray]:
    feed = read_feed(gtfs_dir / "jp_donan_bus_muroran.zip")
    tt = compile_timetable(feed)
    return tt, tt.st_stop_sequence


def _long_trips(tt: CompiledTimetable, n: int = 2) -> list[int]:
    active = np.flatnonzero(tt.active_trips(DAY) & (np.diff(tt.trip_st_ptr) >= 8))
    assert active.size >= n
    return [int(t) for t in active[:n]]


def _msg() -> pb.FeedMessage:
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = service_day_origin(DAY, "Asia/Tokyo") + 8 * 3600
    return m


def _stop_id(tt: CompiledTimetable, matcher: TripMatcher, i: int) -> str:
    return str(tt.stop_ids[matcher.st_stop[i]])


def test_delay_propagates_downstream(muroran: tuple[CompiledTimetable, np.ndarray]) -> None:
    tt, _ = muroran
    t, other = _long_trips(tt)
    m = TripMatcher(tt)
    a, b = int(tt.trip_st_ptr[t]), int(tt.trip_st_ptr[t + 1])
    msg = _msg()
    e = msg.entity.add()
    e.id = "e1"
    e.trip_update.trip.trip_id = str(tt.trip_ids[t])
    e.trip_update.trip.start_date = DAY.strftime("%Y%m%d")
    stu = e.trip_update.stop_time_update.add()
    stu.stop_id = _stop_id(tt, m, a + 3)
    stu.arrival.delay = 300  # departure absent: takes the arrival's delay
    rt = apply_trip_updates(tt, parse_feed(msg.SerializeToString()), DAY, matcher=m)
    assert rt.matched == 1 and rt.unmatched == ()
    assert rt.arrival.shape == tt.st_arrival.shape and rt.arrival.dtype == np.int32
    # Upstream of the first update: schedule. From it on: +300 s to the end of the trip.
    np.testing.assert_array_equal(rt.arrival[a : a + 3], tt.st_arrival[a : a + 3])
    np.testing.assert_array_equal(rt.arrival[a + 3 : b], tt.st_arrival[a + 3 : b] + 300)
    np.testing.assert_array_equal(rt.departure[a + 3 : b], tt.st_departure[a + 3 : b] + 300)
    assert rt.trip_updated[t] and rt.trip_updated.sum() == 1
    # Other trips are untouched.
    oa, ob = int(tt.trip_st_ptr[other]), int(tt.trip_st_ptr[other + 1])
    np.testing.assert_array_equal(rt.departure[oa:ob], tt.st_departure[oa:ob])
    mask = np.ones(tt.n_stop_times, dtype=bool)
    mask[a:b] = False
    np.testing.assert_array_equal(rt.arrival[mask], tt.st_arrival[mask])


def test_later_update_overrides_and_times_never_decrease(
    muroran: tuple[CompiledTimetable, np.ndarray],
) -> None:
    tt, seq = muroran
    t = _long_trips(tt)[0]
    a, b = int(tt.trip_st_ptr[t]), int(tt.trip_st_ptr[t + 1])
    m = TripMatcher(tt, seq)
    origin = service_day_origin(DAY, tt.timezone)
    msg = _msg()
    e = msg.entity.add()
    e.id = "e1"
    e.trip_update.trip.trip_id = str(tt.trip_ids[t])
    s1 = e.trip_update.stop_time_update.add()
    s1.stop_sequence = int(seq[a + 1])  # matched by the feed's own stop_sequence
    s1.departure.delay = 600
    s2 = e.trip_update.stop_time_update.add()
    s2.stop_sequence = int(seq[a + 5])
    # An absolute time 10 minutes EARLY: converted to a delay against the schedule.
    s2.arrival.time = origin + int(tt.st_arrival[a + 5]) - 600
    rt = apply_trip_updates(tt, parse_feed(msg.SerializeToString()), DAY, matcher=m)
    assert rt.departure[a + 1] == tt.st_departure[a + 1] + 600
    # Between the updates the +600 propagates; after the second, -600 (but never below the
    # previous departure, so the trip stays runnable).
    np.testing.assert_array_equal(rt.arrival[a + 2 : a + 5], tt.st_arrival[a + 2 : a + 5] + 600)
    assert rt.arrival[a + 5] >= rt.departure[a + 4]
    assert rt.arrival[b - 1] == max(tt.st_arrival[b - 1] - 600, rt.departure[b - 2])
    times = np.empty(2 * (b - a), dtype=np.int64)
    times[0::2], times[1::2] = rt.arrival[a:b], rt.departure[a:b]
    assert (np.diff(times) >= 0).all()


def test_trip_level_delay_and_no_data(muroran: tuple[CompiledTimetable, np.ndarray]) -> None:
    tt, _ = muroran
    t = _long_trips(tt)[0]
    a, b = int(tt.trip_st_ptr[t]), int(tt.trip_st_ptr[t + 1])
    m = TripMatcher(tt)
    msg = _msg()
    e = msg.entity.add()
    e.id = "e1"
    e.trip_update.trip.trip_id = str(tt.trip_ids[t])
    e.trip_update.delay = 120
    s = e.trip_update.stop_time_update.add()
    s.stop_id = _stop_id(tt, m, a + 4)
    s.schedule_relationship = pb.TripUpdate.StopTimeUpdate.NO_DATA
    rt = apply_trip_updates(tt, parse_feed(msg.SerializeToString()), DAY, matcher=m)
    np.testing.assert_array_equal(rt.departure[a : a + 4], tt.st_departure[a : a + 4] + 120)
    # From NO_DATA on: the schedule, pushed only where the delayed vehicle cannot yet be there
    # (times never decrease along the trip).
    prev = int(rt.departure[a + 3])
    for k in range(a + 4, b):
        arr = max(int(tt.st_arrival[k]), prev)
        prev = max(int(tt.st_departure[k]), arr)
        assert (int(rt.arrival[k]), int(rt.departure[k])) == (arr, prev), k
    assert rt.departure[b - 1] == tt.st_departure[b - 1]  # the delay has been absorbed


def test_cancelled_trip_and_skipped_stop(muroran: tuple[CompiledTimetable, np.ndarray]) -> None:
    tt, _ = muroran
    t, u = _long_trips(tt)
    m = TripMatcher(tt)
    msg = _msg()
    c = msg.entity.add()
    c.id = "cancel"
    c.trip_update.trip.trip_id = str(tt.trip_ids[t])
    c.trip_update.trip.schedule_relationship = pb.TripDescriptor.CANCELED
    s = msg.entity.add()
    s.id = "skip"
    s.trip_update.trip.trip_id = str(tt.trip_ids[u])
    ua = int(tt.trip_st_ptr[u])
    d = s.trip_update.stop_time_update.add()
    d.stop_id = _stop_id(tt, m, ua + 1)
    d.departure.delay = 90
    k = s.trip_update.stop_time_update.add()
    k.stop_id = _stop_id(tt, m, ua + 2)
    k.schedule_relationship = pb.TripUpdate.StopTimeUpdate.SKIPPED
    rt = apply_trip_updates(tt, parse_feed(msg.SerializeToString()), DAY, matcher=m)
    assert rt.trip_cancelled[t] and rt.n_cancelled == 1
    assert rt.stop_skipped[ua + 2] and int(rt.stop_skipped.sum()) == 1
    # The delay propagates through the skipped stop.
    assert rt.departure[ua + 3] == tt.st_departure[ua + 3] + 90
    assert rt.summary()["trips_cancelled"] == 1


def test_match_by_route_and_start_time(muroran: tuple[CompiledTimetable, np.ndarray]) -> None:
    tt, _ = muroran
    t = _long_trips(tt)[0]
    a = int(tt.trip_st_ptr[t])
    start = int(tt.st_departure[a])
    msg = _msg()
    e = msg.entity.add()
    e.id = "by-route"
    e.trip_update.trip.route_id = str(tt.route_ids[tt.trip_route[t]])
    e.trip_update.trip.start_time = f"{start // 3600:02d}:{start // 60 % 60:02d}:{start % 60:02d}"
    e.trip_update.trip.start_date = DAY.strftime("%Y%m%d")
    e.trip_update.delay = 45
    rt = apply_trip_updates(tt, parse_feed(msg.SerializeToString()), DAY)
    assert rt.trip_updated[t]
    assert rt.departure[a] == start + 45


def test_other_dates_and_unknown_trips(muroran: tuple[CompiledTimetable, np.ndarray]) -> None:
    tt, _ = muroran
    t = _long_trips(tt)[0]
    msg = _msg()
    e = msg.entity.add()
    e.id = "tomorrow"
    e.trip_update.trip.trip_id = str(tt.trip_ids[t])
    e.trip_update.trip.start_date = (DAY + dt.timedelta(days=1)).strftime("%Y%m%d")
    e.trip_update.delay = 999
    x = msg.entity.add()
    x.id = "nope"
    x.trip_update.trip.trip_id = "no-such-trip"
    x.trip_update.delay = 1
    rt = apply_trip_updates(tt, parse_feed(msg.SerializeToString()), DAY)
    assert rt.unmatched == ("nope",) and rt.matched == 0
    np.testing.assert_array_equal(rt.arrival, tt.st_arrival)
    sched = RealtimeState.scheduled(tt, DAY)
    np.testing.assert_array_equal(sched.departure, tt.st_departure)
    assert not sched.trip_cancelled.any() and not sched.stop_skipped.any()


def test_frequency_trip_matched_by_start_time(gtfs_dir: Path) -> None:
    feed = read_feed(gtfs_dir / "google_sample.zip")
    tt = compile_timetable(feed)
    expanded = [i for i, x in enumerate(tt.trip_ids.tolist()) if "@" in x]
    assert expanded, "google_sample has frequencies.txt trips"
    t = expanded[1]
    trip_id, start = str(tt.trip_ids[t]).split("@")
    day = next(
        tt.service_start + dt.timedelta(days=d)
        for d in range(tt.service_days.shape[1])
        if tt.active_trips(tt.service_start + dt.timedelta(days=d))[t]
    )
    msg = _msg()
    e = msg.entity.add()
    e.id = "freq"
    e.trip_update.trip.trip_id = trip_id
    e.trip_update.trip.start_time = start
    e.trip_update.delay = 30
    rt = apply_trip_updates(tt, parse_feed(msg.SerializeToString()), day)
    assert rt.trip_updated[t] and rt.trip_updated.sum() == 1


def test_stop_visited_twice_resolves_forward(
    muroran: tuple[CompiledTimetable, np.ndarray],
) -> None:
    """A loop trip passes one stop twice: an update by stop_id after an update further along
    the trip means the second visit (spec: updates are ordered along the trip)."""
    tt, _ = muroran
    m = TripMatcher(tt)
    loop = None
    for t in np.flatnonzero(tt.active_trips(DAY)).tolist():
        a, b = int(tt.trip_st_ptr[t]), int(tt.trip_st_ptr[t + 1])
        stops = m.st_stop[a:b]
        _, first, counts = np.unique(stops, return_index=True, return_counts=True)
        rep = np.flatnonzero(counts > 1)
        if rep.size:
            k1 = int(first[rep[0]])
            k2 = int(np.flatnonzero(stops == stops[k1])[1])
            if k2 - k1 > 2:
                loop = (t, a, b, k1, k2)
                break
    assert loop is not None, "Muroran has loop trips"
    t, a, b, k1, k2 = loop
    msg = _msg()
    e = msg.entity.add()
    e.id = "loop"
    e.trip_update.trip.trip_id = str(tt.trip_ids[t])
    s1 = e.trip_update.stop_time_update.add()
    s1.stop_id = _stop_id(tt, m, a + k1 + 1)
    s1.departure.delay = 60
    s2 = e.trip_update.stop_time_update.add()
    s2.stop_id = _stop_id(tt, m, a + k2)  # same stop as position k1
    s2.departure.delay = 240
    rt = apply_trip_updates(tt, parse_feed(msg.SerializeToString()), DAY, matcher=m)
    assert rt.warnings == ()
    assert rt.departure[a + k2 - 1] == tt.st_departure[a + k2 - 1] + 60
    assert rt.departure[a + k2] == tt.st_departure[a + k2] + 240
    assert rt.departure[a + k1] == tt.st_departure[a + k1]


def test_sparse_stop_sequences_match_the_feed_values(gtfs_dir: Path) -> None:
    """King County numbers stops 2, 7, 13...: stop_sequence must mean the feed's value."""
    feed = read_feed(gtfs_dir / "us_king_county_2016.zip")
    tt = compile_timetable(feed)
    seq = tt.st_stop_sequence
    day = next(
        tt.service_start + dt.timedelta(days=d)
        for d in range(tt.service_days.shape[1])
        if tt.active_trips(tt.service_start + dt.timedelta(days=d)).any()
    )
    t = int(np.flatnonzero(tt.active_trips(day) & (np.diff(tt.trip_st_ptr) > 6))[0])
    a = int(tt.trip_st_ptr[t])
    assert seq[a + 3] != 4  # sparse: position and sequence differ
    msg = _msg()
    e = msg.entity.add()
    e.id = "kc"
    e.trip_update.trip.trip_id = str(tt.trip_ids[t])
    s = e.trip_update.stop_time_update.add()
    s.stop_sequence = int(seq[a + 3])
    s.arrival.delay = 180
    rt = apply_trip_updates(
        tt, parse_feed(msg.SerializeToString()), day, matcher=TripMatcher(tt, seq)
    )
    assert rt.arrival[a + 2] == tt.st_arrival[a + 2]
    assert rt.arrival[a + 3] == tt.st_arrival[a + 3] + 180


def test_route_match_checks_direction(muroran: tuple[CompiledTimetable, np.ndarray]) -> None:
    tt, _ = muroran
    t = _long_trips(tt)[0]
    start = int(tt.st_departure[tt.trip_st_ptr[t]])
    directions = np.zeros(tt.n_trips, dtype=np.int8)
    directions[t] = 1
    m = TripMatcher(tt, trip_direction=directions)

    def update(direction: int) -> RealtimeState:
        msg = _msg()
        e = msg.entity.add()
        e.id = f"dir{direction}"
        e.trip_update.trip.route_id = str(tt.route_ids[tt.trip_route[t]])
        e.trip_update.trip.direction_id = direction
        e.trip_update.trip.start_time = (
            f"{start // 3600:02d}:{start // 60 % 60:02d}:{start % 60:02d}"
        )
        e.trip_update.delay = 30
        return apply_trip_updates(tt, parse_feed(msg.SerializeToString()), DAY, matcher=m)

    assert update(1).trip_updated[t]
    assert not update(0).trip_updated[t]


@pytest.fixture(scope="module")
def sample(gtfs_dir: Path) -> tuple[CompiledTimetable, dt.date, Feed]:
    """google_sample: CITY1 every 30 min from 06:00, every 10 min from 08:00 (exact_times
    blank = 0, frequency-based)."""
    feed = read_feed(gtfs_dir / "google_sample.zip")
    tt = compile_timetable(feed)
    t = int(np.flatnonzero(tt.trip_ids == "CITY1@06:30:00")[0])
    day = next(
        tt.service_start + dt.timedelta(days=d)
        for d in range(tt.service_days.shape[1])
        if tt.active_trips(tt.service_start + dt.timedelta(days=d))[t]
    )
    return tt, day, feed


def _freq_update(start_time: str, **kw: object) -> pb.FeedMessage:
    msg = _msg()
    e = msg.entity.add()
    e.id = "freq"
    e.trip_update.trip.trip_id = "CITY1"
    e.trip_update.trip.start_time = start_time
    for k, v in kw.items():
        setattr(e.trip_update, k, v)
    return msg


def _copy(tt: CompiledTimetable, name: str) -> tuple[int, int, int]:
    t = int(np.flatnonzero(tt.trip_ids == name)[0])
    return t, int(tt.trip_st_ptr[t]), int(tt.trip_st_ptr[t + 1])


def test_frequency_instance_by_start_time(
    sample: tuple[CompiledTimetable, dt.date, Feed],
) -> None:
    tt, day, _ = sample
    t, a, b = _copy(tt, "CITY1@06:30:00")
    # GTFS times may drop the hour's leading zero: "6:30:00" names the 06:30 copy.
    rt = apply_trip_updates(tt, parse_feed(_freq_update("6:30:00").SerializeToString()), day)
    assert rt.trip_updated[t] and rt.trip_updated.sum() == 1 and rt.matched == 1
    np.testing.assert_array_equal(rt.departure[a:b], tt.st_departure[a:b])
    # exact_times=0: the bus that really left at 06:33 is the 06:30 instance, 3 min later.
    rt = apply_trip_updates(tt, parse_feed(_freq_update("06:33:00").SerializeToString()), day)
    assert rt.trip_updated[t] and rt.trip_updated.sum() == 1
    np.testing.assert_array_equal(rt.departure[a:b], tt.st_departure[a:b] + 180)
    # Its delays are relative to that start: +60 s on top of the 3 min.
    msg = _freq_update("06:33:00", delay=60)
    rt = apply_trip_updates(tt, parse_feed(msg.SerializeToString()), day)
    np.testing.assert_array_equal(rt.departure[a:b], tt.st_departure[a:b] + 240)
    msg = _freq_update("06:33:00")
    stu = msg.entity[0].trip_update.stop_time_update.add()
    stu.stop_sequence = int(tt.st_stop_sequence[a + 2])
    stu.departure.delay = 60
    rt = apply_trip_updates(tt, parse_feed(msg.SerializeToString()), day)
    np.testing.assert_array_equal(rt.departure[a : a + 2], tt.st_departure[a : a + 2] + 180)
    np.testing.assert_array_equal(rt.departure[a + 2 : b], tt.st_departure[a + 2 : b] + 240)
    # Absolute times stay absolute.
    msg = _freq_update("06:33:00")
    stu = msg.entity[0].trip_update.stop_time_update.add()
    stu.stop_sequence = int(tt.st_stop_sequence[b - 1])
    origin = service_day_origin(day, tt.timezone)
    stu.arrival.time = origin + int(tt.st_arrival[b - 1]) + 500
    rt = apply_trip_updates(tt, parse_feed(msg.SerializeToString()), day)
    assert int(rt.arrival[b - 1]) == int(tt.st_arrival[b - 1]) + 500
    # 06:44 is nearer the 06:30 copy than the 07:00 one (30-min headway there)...
    rt = apply_trip_updates(tt, parse_feed(_freq_update("06:44:00").SerializeToString()), day)
    assert rt.trip_updated[t]
    # ...08:04 names the 08:00 copy (10-min headway), 08:06 the 08:10 one, 4 min early.
    t8, a8, b8 = _copy(tt, "CITY1@08:10:00")
    rt = apply_trip_updates(tt, parse_feed(_freq_update("08:06:00").SerializeToString()), day)
    assert rt.trip_updated[t8] and rt.trip_updated.sum() == 1
    np.testing.assert_array_equal(rt.departure[a8:b8], tt.st_departure[a8:b8] - 240)
    # Far from every copy (after the last one, beyond its headway) or garbled: unmatched.
    for bad in ("23:30:00", "6h30", "25:61"):
        rt = apply_trip_updates(tt, parse_feed(_freq_update(bad).SerializeToString()), day)
        assert rt.unmatched == ("freq",) and not rt.trip_updated.any()
    # Without start_time a frequency trip names no instance.
    msg = _msg()
    e = msg.entity.add()
    e.id = "freq"
    e.trip_update.trip.trip_id = "CITY1"
    rt = apply_trip_updates(tt, parse_feed(msg.SerializeToString()), day)
    assert rt.unmatched == ("freq",)


def test_schedule_based_frequency_trip_needs_its_exact_start(
    sample: tuple[CompiledTimetable, dt.date, Feed], tmp_path: Path
) -> None:
    from gtfs.realtime.keys import RealtimeKeys, trip_exact_times

    tt, day, feed = sample
    exact0 = trip_exact_times(tt, [feed])
    is_copy = np.char.find(tt.trip_ids.astype(str), "@") >= 0
    assert (exact0[is_copy] == 0).all() and (exact0[~is_copy] == -1).all()
    # The same feed declared exact_times=1 (schedule-based): copies are named exactly.
    fq = feed.tables["frequencies"].copy()
    fq["exact_times"] = "1"
    feed1 = _with_table(feed, "frequencies", fq)
    keys = RealtimeKeys.build(tt, [feed1])
    assert keys.trip_exact_times is not None and (keys.trip_exact_times[is_copy] == 1).all()
    m = TripMatcher(tt, trip_exact_times=keys.trip_exact_times)
    t, _, _ = _copy(tt, "CITY1@06:30:00")
    rt = apply_trip_updates(
        tt, parse_feed(_freq_update("06:33:00").SerializeToString()), day, matcher=m
    )
    assert rt.unmatched == ("freq",)
    rt = apply_trip_updates(
        tt, parse_feed(_freq_update("06:30:00").SerializeToString()), day, matcher=m
    )
    assert rt.trip_updated[t]
    # Saved and loaded with the network; keys saved before exact_times existed load as unknown.
    keys.save(tmp_path / "k.npz")
    back = RealtimeKeys.load(tmp_path / "k.npz")
    np.testing.assert_array_equal(back.trip_exact_times, keys.trip_exact_times)  # type: ignore[arg-type]
    np.savez(tmp_path / "old.npz", trip_direction=keys.trip_direction)
    assert RealtimeKeys.load(tmp_path / "old.npz").trip_exact_times is None


def _with_table(feed: Feed, name: str, table: pd.DataFrame) -> Feed:
    """A shallow copy of ``feed`` with one table replaced (the fixture's feed stays intact)."""
    out = copy.copy(feed)
    out.tables = {**feed.tables, name: table}
    return out

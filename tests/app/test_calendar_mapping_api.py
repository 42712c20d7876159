"""The demo city's 2020 calendar mapped onto today's dates, through the registry and the API.

The clock is pinned on the registry (``FeedRegistry.clock``, which every network it builds
uses) and the published network rebuilt, as a restart on that day would.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pydantic
import pytest
from fastapi.testclient import TestClient

from app.feeds.registry import FeedRegistry
from app.settings import Settings
from gtfs.compiled import CompiledTimetable
from tests.app.conftest import settings_for

TOKYO = ZoneInfo("Asia/Tokyo")
TODAY = dt.date(2027, 6, 14)  # a Monday, far from the feed's 2020-04-01..2021-04-01
SOURCE = dt.date(2020, 6, 15)  # the Monday nearest to 2020-06-14
NOW = dt.datetime(2027, 6, 14, 10, 0, tzinfo=TOKYO)


def _pin(client: TestClient, now: dt.datetime) -> tuple[FeedRegistry, list[dt.datetime]]:
    """Pin the registry's clock to ``now`` (a mutable cell) and rebuild its network."""
    reg: FeedRegistry = client.app.state.services.feeds  # type: ignore[attr-defined]
    cell = [now]
    reg.clock = lambda: cell[0]
    reg.load_published()
    return reg, cell


@pytest.fixture
def demo(make_app_client: Callable[..., TestClient]) -> TestClient:
    """The demo city (Muroran) without its simulated fleet."""
    return make_app_client(demo=True, demo_fleet=False)


def _a_long_daytime_trip(tt: CompiledTimetable, day: dt.date) -> int:
    """A trip running on ``day`` with more than 6 stops, leaving between 07:00 and 18:00."""
    dep = tt.st_departure[tt.trip_st_ptr[:-1]]
    ok = tt.active_trips(day) & (np.diff(tt.trip_st_ptr) > 6) & (dep > 7 * 3600)
    return int(np.flatnonzero(ok & (dep < 18 * 3600))[0])


def _hhmm(secs: int) -> str:
    return f"{secs // 3600:02d}:{secs % 3600 // 60:02d}"


def _tokyo_date(ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ms / 1000, TOKYO).date()


def test_network_states_the_mapping(demo: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="tsunagu.feeds"):
        reg, _ = _pin(demo, NOW)
    logged = [r.getMessage() for r in caplog.records if "feed calendar mapped" in r.getMessage()]
    assert len(logged) == 1 and "2027-06-07..2027-08-13" in logged[0]
    assert "today 2027-06-14 runs the trips of 2020-06-15" in logged[0]
    info = demo.get("/api/v1/network").json()
    assert info["service_date"] == info["demo_service_date"] == TODAY.isoformat()
    cm = info["calendar_mapping"]
    assert cm["today"] == "2027-06-14"
    assert cm["window"] == ["2027-06-07", "2027-08-13"]
    assert cm["feed_range"] == ["2020-04-01", "2021-04-01"]
    assert cm["source_dates"][TODAY.isoformat()] == SOURCE.isoformat()
    assert len(cm["source_dates"]) == 68 and "weekday" in cm["rule"]
    for d, s in cm["source_dates"].items():
        assert dt.date.fromisoformat(d).weekday() == dt.date.fromisoformat(s).weekday()
    assert info["service_start"] == "2020-04-01" and info["service_end"] == "2027-08-13"
    # The feeds' own calendar is still what the version records and what is on disk.
    net = reg.network
    assert net.feed_timetable is not None and net.feed_timetable.service_days.shape[1] == 366
    np.testing.assert_array_equal(
        net.timetable.active_trips(TODAY),  # type: ignore[union-attr]
        net.feed_timetable.active_trips(SOURCE),
    )


def test_plan_for_now_without_a_date_rides_todays_buses(demo: TestClient) -> None:
    reg, _ = _pin(demo, NOW)
    tt = reg.network.timetable
    assert tt is not None
    t = _a_long_daytime_trip(tt, TODAY)
    p = int(tt.trip_pattern[t])
    stops = tt.pattern_stops[tt.pattern_stop_ptr[p] : tt.pattern_stop_ptr[p + 1]]
    a = int(tt.trip_st_ptr[t])
    board, alight = str(tt.stop_ids[stops[1]]), str(tt.stop_ids[stops[-1]])
    sched = int(tt.st_departure[a + 1])
    r = demo.get(
        "/api/v1/plan",
        params={"fromPlace": board, "toPlace": alight, "time": _hhmm(sched - 60),
                "numItineraries": 5},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["requestParameters"]["date"] == TODAY.isoformat()
    its = body["plan"]["itineraries"]
    assert its
    for it in its:
        assert _tokyo_date(it["startTime"]) == TODAY and _tokyo_date(it["endTime"]) == TODAY
        for leg in it["legs"]:
            assert _tokyo_date(leg["startTime"]) == TODAY
            if leg["transitLeg"]:
                assert leg["serviceDate"] == TODAY.isoformat()
    # The mapped trip itself, at its timetable time on today's clock.
    midnight = dt.datetime.combine(TODAY, dt.time(12), tzinfo=TOKYO) - dt.timedelta(hours=12)
    legs = [leg for it in its for leg in it["legs"] if leg.get("tripId") == str(tt.trip_ids[t])]
    assert legs and legs[0]["startTime"] == int(midnight.timestamp() + sched) * 1000


def test_the_feeds_own_dates_still_plan(demo: TestClient) -> None:
    reg, _ = _pin(demo, NOW)
    tt = reg.network.timetable
    assert tt is not None
    t = _a_long_daytime_trip(tt, SOURCE)
    p = int(tt.trip_pattern[t])
    stops = tt.pattern_stops[tt.pattern_stop_ptr[p] : tt.pattern_stop_ptr[p + 1]]
    sched = int(tt.st_departure[int(tt.trip_st_ptr[t]) + 1])
    r = demo.get(
        "/api/v1/plan",
        params={"fromPlace": str(tt.stop_ids[stops[1]]), "toPlace": str(tt.stop_ids[stops[-1]]),
                "date": SOURCE.isoformat(), "time": _hhmm(sched - 60)},
    )  # fmt: skip
    its = r.json()["plan"]["itineraries"]
    assert its and all(_tokyo_date(it["startTime"]) == SOURCE for it in its)
    # Between the feed and the window nothing runs.
    r = demo.get(
        "/api/v1/plan",
        params={"fromPlace": str(tt.stop_ids[stops[1]]), "toPlace": str(tt.stop_ids[stops[-1]]),
                "date": "2024-06-17", "time": _hhmm(sched - 60), "mode": "BUS"},
    )  # fmt: skip
    assert not [
        leg for it in r.json()["plan"]["itineraries"] for leg in it["legs"] if leg["transitLeg"]
    ]


def _trip_update(tt: CompiledTimetable, seq: Any, t: int, day: dt.date, delay: int) -> bytes:
    from google.transit import gtfs_realtime_pb2 as pb

    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    m.header.timestamp = int(time.time())
    e = m.entity.add()
    e.id = f"late-{day:%Y%m%d}"
    e.trip_update.trip.trip_id = str(tt.trip_ids[t])
    e.trip_update.trip.start_date = day.strftime("%Y%m%d")
    stu = e.trip_update.stop_time_update.add()
    stu.stop_sequence = int(seq[tt.trip_st_ptr[t] + 1])
    stu.departure.delay = delay
    return bytes(m.SerializeToString())


def test_a_realtime_delay_for_today_shows_on_todays_plan(
    demo: TestClient, make_user: Any, auth: Any
) -> None:
    reg, _ = _pin(demo, NOW)
    net = reg.network
    tt = net.timetable
    assert tt is not None and net.rt_keys is not None
    seq = tt.st_stop_sequence if len(tt.st_stop_sequence) == tt.n_stop_times else None
    assert seq is not None
    t = _a_long_daytime_trip(tt, TODAY)
    operator = make_user(roles=("operator",), client=demo)
    r = demo.post(
        "/api/v1/realtime/trip-updates",
        content=_trip_update(tt, seq, t, TODAY, 420),
        headers={"Content-Type": "application/x-protobuf", **auth(operator, demo)},
    )
    assert r.status_code == 200, r.text
    # The overlay of today is built from today's mapped trips and matches the update.
    state = reg.realtime_state()
    assert state is not None and state.service_date == TODAY
    assert state.summary()["matched"] == 1, state.summary()
    # An overlay for the source date does not see it (its start_date is today).
    assert reg.realtime_state(SOURCE).summary()["matched"] == 0
    p = int(tt.trip_pattern[t])
    stops = tt.pattern_stops[tt.pattern_stop_ptr[p] : tt.pattern_stop_ptr[p + 1]]
    sched = int(tt.st_departure[int(tt.trip_st_ptr[t]) + 1])
    r = demo.get(
        "/api/v1/plan",
        params={"fromPlace": str(tt.stop_ids[stops[1]]), "toPlace": str(tt.stop_ids[stops[-1]]),
                "time": _hhmm(sched - 60), "numItineraries": 5},
    )  # fmt: skip
    legs = [
        leg
        for it in r.json()["plan"]["itineraries"]
        for leg in it["legs"]
        if leg.get("tripId") == str(tt.trip_ids[t])
    ]
    assert legs and all(leg["realTime"] and leg["departureDelay"] == 420 for leg in legs)
    assert all(leg["startTime"] - leg["scheduledStartTime"] == 420_000 for leg in legs)
    assert all(_tokyo_date(leg["startTime"]) == TODAY for leg in legs)


def test_off_serves_the_feeds_own_calendar(make_app_client: Callable[..., TestClient]) -> None:
    c = make_app_client(demo=True, demo_fleet=False, calendar_mapping="off")
    reg, _ = _pin(c, NOW)
    assert reg.network.calendar_mapping is None and reg.network.feed_timetable is None
    info = c.get("/api/v1/network").json()
    assert info["calendar_mapping"] is None
    assert info["service_date"] == SOURCE.isoformat()  # the service-date rule's fallback
    assert info["service_end"] == "2021-04-01"
    assert not reg.network.timetable.active_trips(TODAY).any()  # type: ignore[union-attr]
    # The day moving on changes nothing either.
    assert reg.remap_calendar_if_due() is False


def test_the_window_follows_the_clock(demo: TestClient) -> None:
    reg, cell = _pin(demo, NOW)
    gen = reg.network.generation
    assert reg.sync_with_database() is False  # same day: nothing to do
    cell[0] = NOW + dt.timedelta(days=1)
    assert reg.sync_with_database() is True
    net = reg.network
    assert net.generation == gen + 1 and net.calendar_mapping is not None
    tomorrow = TODAY + dt.timedelta(days=1)
    assert net.calendar_mapping.today == tomorrow and net.service_date == tomorrow
    assert net.calendar_mapping.window[1] == tomorrow + dt.timedelta(days=60)
    assert net.feed_timetable is not None and net.feed_timetable.service_days.shape[1] == 366
    assert reg.remap_calendar_if_due() is False
    # Back inside the feed's calendar: the feed's own timetable again, no mapping.
    cell[0] = dt.datetime(2020, 6, 15, 10, 0, tzinfo=TOKYO)
    assert reg.remap_calendar_if_due() is True
    net = reg.network
    assert net.calendar_mapping is None and net.feed_timetable is None
    assert net.timetable is not None and net.timetable.service_days.shape[1] == 366
    assert net.service_date == SOURCE
    assert reg.remap_calendar_if_due() is False


def test_an_unknown_mode_is_refused(demo: TestClient) -> None:
    reg: FeedRegistry = demo.app.state.services.feeds  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="calendar_mapping"):
        FeedRegistry(reg.engine, reg.store.root.parent, calendar_mapping="always")
    with pytest.raises(pydantic.ValidationError):
        settings_for(reg.store.root.parent, calendar_mapping="always")
    assert Settings.model_fields["calendar_mapping"].default == "auto"

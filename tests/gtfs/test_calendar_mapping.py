"""The feed's calendar mapped onto today's dates, on the real Muroran GTFS-JP feed
(calendar 2020-04-01..2021-04-01)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from gtfs import compile_timetable, read_feed
from gtfs.calendar_mapping import (
    DAYS_AHEAD,
    DAYS_BACK,
    RULE,
    map_calendar,
    nearest_service_date,
    service_range,
)
from gtfs.compiled import CompiledTimetable

TODAY = dt.date(2026, 12, 7)  # a Monday, years after the feed's calendar
FIRST, LAST = dt.date(2020, 4, 1), dt.date(2021, 4, 1)


@pytest.fixture(scope="module")
def muroran(gtfs_dir: Path) -> CompiledTimetable:
    return compile_timetable(read_feed(gtfs_dir / "jp_donan_bus_muroran.zip"))


def _days(a: dt.date, b: dt.date) -> list[dt.date]:
    return [a + dt.timedelta(days=k) for k in range((b - a).days + 1)]


def test_feed_range(muroran: CompiledTimetable) -> None:
    assert service_range(muroran) == (FIRST, LAST)


def test_mapped_dates_run_their_source_dates_trips(muroran: CompiledTimetable) -> None:
    mapped, mapping = map_calendar(muroran, TODAY)
    assert mapping is not None and mapped is not muroran
    w0, w1 = TODAY - dt.timedelta(days=DAYS_BACK), TODAY + dt.timedelta(days=DAYS_AHEAD)
    assert mapping.window == (w0, w1) and mapping.today == TODAY
    assert mapping.feed_range == (FIRST, LAST)
    # Every date of the window is outside the feed, so every one is mapped.
    assert sorted(mapping.source_dates) == _days(w0, w1)
    assert mapping.source_dates[TODAY] == dt.date(2020, 12, 7)
    weekdays_with_trips = set()
    for d, s in mapping.source_dates.items():
        assert s.weekday() == d.weekday(), (d, s)
        assert FIRST <= s <= LAST
        assert s == nearest_service_date(muroran, d)  # the service-date rule, date by date
        want = muroran.active_trips(s)
        assert want.any(), s
        np.testing.assert_array_equal(mapped.active_trips(d), want)
        weekdays_with_trips.add(d.weekday())
    assert weekdays_with_trips == set(range(7))
    # New Year: 2027-01-01 (a Friday) runs the Friday nearest to 2021-01-01's anniversary.
    assert mapping.source_dates[dt.date(2027, 1, 1)] == dt.date(2021, 1, 1)
    # Outside the window (and between the feed and the window) nothing runs.
    for d in (w0 - dt.timedelta(days=1), w1 + dt.timedelta(days=1), dt.date(2023, 6, 1)):
        assert not mapped.active_trips(d).any(), d


def test_original_dates_are_unchanged(muroran: CompiledTimetable) -> None:
    mapped, mapping = map_calendar(muroran, TODAY)
    assert mapping is not None
    assert mapped.service_start == muroran.service_start
    n = muroran.service_days.shape[1]
    np.testing.assert_array_equal(mapped.service_days[:, :n], muroran.service_days)
    # The matrix grows by the gap: it now ends on the window's last day.
    assert mapped.last_service_date == mapping.window[1]
    assert muroran.service_days.shape[1] == n  # the input is not modified
    # Every other array is shared, not copied.
    assert mapped.trip_ids is muroran.trip_ids and mapped.st_departure is muroran.st_departure


def test_a_feed_covering_today_is_left_untouched(muroran: CompiledTimetable) -> None:
    for today in (FIRST, dt.date(2020, 11, 29), LAST):
        mapped, mapping = map_calendar(muroran, today)
        assert mapped is muroran and mapping is None


def test_holidays_are_stepped_over_as_the_rule_does(muroran: CompiledTimetable) -> None:
    days = muroran.service_days.copy()
    days[:, muroran.day_index(dt.date(2020, 12, 7))] = False  # a holiday: nothing runs
    tt = dataclasses.replace(muroran, service_days=days)
    mapped, mapping = map_calendar(tt, TODAY)
    assert mapping is not None
    src = mapping.source_dates[TODAY]
    assert src in (dt.date(2020, 11, 30), dt.date(2020, 12, 14))
    assert src == nearest_service_date(tt, TODAY)
    np.testing.assert_array_equal(mapped.active_trips(TODAY), tt.active_trips(src))
    assert mapped.active_trips(TODAY).any()
    # The holiday itself stays a day without trips.
    assert not mapped.active_trips(dt.date(2020, 12, 7)).any()


def test_window_overlapping_the_feed_maps_only_the_dates_after_it(
    muroran: CompiledTimetable,
) -> None:
    today = LAST + dt.timedelta(days=3)
    mapped, mapping = map_calendar(muroran, today)
    assert mapping is not None
    assert min(mapping.source_dates) == LAST + dt.timedelta(days=1)
    for d in _days(today - dt.timedelta(days=DAYS_BACK), LAST):
        assert d not in mapping.source_dates
        np.testing.assert_array_equal(mapped.active_trips(d), muroran.active_trips(d))
    for d, s in mapping.source_dates.items():
        assert s.weekday() == d.weekday() and FIRST <= s <= LAST
        np.testing.assert_array_equal(mapped.active_trips(d), muroran.active_trips(s))


def test_a_today_before_the_feed_extends_the_matrix_backwards(
    muroran: CompiledTimetable,
) -> None:
    today = dt.date(2019, 6, 3)  # a Monday
    mapped, mapping = map_calendar(muroran, today, days_back=2, days_ahead=5)
    assert mapping is not None
    assert mapped.service_start == today - dt.timedelta(days=2)
    assert mapping.window == (today - dt.timedelta(days=2), today + dt.timedelta(days=5))
    assert len(mapping.source_dates) == 8
    for d in _days(FIRST, LAST):
        np.testing.assert_array_equal(mapped.active_services(d), muroran.active_services(d))
    src = mapping.source_dates[today]
    assert src.weekday() == today.weekday() and FIRST <= src <= LAST
    np.testing.assert_array_equal(mapped.active_trips(today), muroran.active_trips(src))


def test_an_absurd_gap_is_not_bridged(muroran: CompiledTimetable) -> None:
    mapped, mapping = map_calendar(muroran, dt.date(2050, 1, 3))
    assert mapped is muroran and mapping is None
    mapped, mapping = map_calendar(muroran, TODAY, max_gap_days=365)
    assert mapped is muroran and mapping is None
    # Just within the limit it is.
    gap = (TODAY - dt.timedelta(days=DAYS_BACK) - LAST).days
    assert map_calendar(muroran, TODAY, max_gap_days=gap)[1] is not None


def test_a_feed_without_trips_is_left_untouched(muroran: CompiledTimetable) -> None:
    tt = dataclasses.replace(muroran, service_days=np.zeros_like(muroran.service_days))
    mapped, mapping = map_calendar(tt, TODAY)
    assert mapped is tt and mapping is None
    assert nearest_service_date(tt, TODAY) is None


def test_a_negative_window_is_refused(muroran: CompiledTimetable) -> None:
    with pytest.raises(ValueError, match="negative"):
        map_calendar(muroran, TODAY, days_back=-1)
    with pytest.raises(ValueError, match="negative"):
        map_calendar(muroran, TODAY, days_ahead=-1)


def test_mapping_json(muroran: CompiledTimetable) -> None:
    _, mapping = map_calendar(muroran, TODAY, days_back=1, days_ahead=1)
    assert mapping is not None
    assert mapping.to_json() == {
        "rule": RULE,
        "today": "2026-12-07",
        "feed_range": ["2020-04-01", "2021-04-01"],
        "window": ["2026-12-06", "2026-12-08"],
        "source_dates": {
            "2026-12-06": "2020-12-06",
            "2026-12-07": "2020-12-07",
            "2026-12-08": "2020-12-08",
        },
    }

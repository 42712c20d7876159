"""The demo city: Muroran is imported and published on first start, and its service date."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.feeds.service_date import pick_service_date
from app.services import Services
from gtfs import compile_timetable, read_feed
from gtfs.compiled import CompiledTimetable


@pytest.fixture(scope="module")
def muroran_tt(gtfs_dir: Path) -> CompiledTimetable:
    return compile_timetable(read_feed(gtfs_dir / "jp_donan_bus_muroran.zip"))


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        ("2026-11-29", "2020-11-29"),  # Sunday -> the Sunday on the same month/day
        ("2027-03-31", "2021-03-31"),
        ("2026-01-01", "2020-12-31"),  # Thursday: 2021-01-01 is a Friday, so the day before
        ("2028-02-29", "2021-03-02"),  # leap day, outside the range in 2020
        ("2030-04-02", "2021-03-30"),  # anniversary after the end: back by whole weeks
        ("2020-06-01", "2020-06-01"),  # inside the calendar: today itself
    ],
)
def test_service_date_rule(muroran_tt: CompiledTimetable, today: str, expected: str) -> None:
    got = pick_service_date(muroran_tt, dt.date.fromisoformat(today))
    assert got == dt.date.fromisoformat(expected)
    assert got.weekday() == dt.date.fromisoformat(today).weekday()


def test_service_date_skips_days_without_trips(muroran_tt: CompiledTimetable) -> None:
    days = muroran_tt.service_days.copy()
    holiday = muroran_tt.day_index(dt.date(2020, 11, 29))
    days[:, holiday] = False
    tt = dataclasses.replace(muroran_tt, service_days=days)
    got = pick_service_date(tt, dt.date(2026, 11, 29))
    assert got in (dt.date(2020, 12, 6), dt.date(2020, 11, 22))
    assert tt.active_trips(got).any()


def test_demo_is_loaded_once(make_app_client: Callable[..., TestClient]) -> None:
    c = make_app_client(demo=True)
    reg = c.app.state.services.feeds  # type: ignore[attr-defined]
    info = c.get("/api/v1/network").json()
    assert [p["feed_id"] for p in info["published"]] == ["muroran"]
    assert info["counts"]["stops"] >= 700 and info["counts"]["trips"] == 541
    assert info["timezone"] == "Asia/Tokyo"
    assert info["service_start"] == "2020-04-01"
    # The 2020 calendar is mapped onto today's dates (TSUNAGU_CALENDAR_MAPPING=auto): the
    # service date is today, running the trips of a same-weekday date inside the feed.
    day = dt.date.fromisoformat(info["demo_service_date"])
    today_tokyo = dt.datetime.now(dt.timezone(dt.timedelta(hours=9))).date()
    assert day == today_tokyo
    source = dt.date.fromisoformat(info["calendar_mapping"]["source_dates"][day.isoformat()])
    assert dt.date(2020, 4, 1) <= source <= dt.date(2021, 4, 1)
    assert source.weekday() == today_tokyo.weekday()
    assert "weekday" in info["service_date_rule"]
    gj = c.get("/api/v1/network/geojson").json()
    kinds = [f["properties"]["kind"] for f in gj["features"]]
    assert kinds.count("stop") > 400 and kinds.count("route") > 10
    assert reg.compiles == 1

    # A second process on the same database and data dir: nothing re-imported or recompiled.
    c2 = make_app_client(demo=True)
    services: Services = c2.app.state.services  # type: ignore[attr-defined]
    assert services.feeds.compiles == 0
    assert len(services.feeds.list_versions("muroran")) == 1
    assert c2.get("/api/v1/network").json()["published"] == info["published"]


def start_together(start: Callable[..., TestClient], n: int, **overrides: Any) -> list[TestClient]:
    """``n`` app instances (``start(**overrides)``) whose start-ups begin at the same moment,
    one thread each, as the workers of ``tsunagu serve --workers n`` do; a failed start-up is
    re-raised here."""
    started: list[TestClient] = []
    errors: list[BaseException] = []
    gate = threading.Barrier(n)

    def run() -> None:
        gate.wait()
        try:
            started.append(start(**overrides))
        except BaseException as exc:  # re-raised below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return started


def test_demo_first_run_once_on_sqlite_when_started_together(
    make_app_client: Callable[..., TestClient],
) -> None:
    """Two instances on one SQLite file start at once: the first-run import is serialised by
    a file lock in the shared data dir, so one version is published (the PostgreSQL advisory
    lock is tested in ``test_dispatch_cluster.py``)."""
    started = start_together(make_app_client, 2, demo=True)
    regs = [c.app.state.services.feeds for c in started]  # type: ignore[attr-defined]
    assert [(v.id, v.status) for v in regs[0].list_versions("muroran")] == [(1, "published")]
    assert sum(r.compiles for r in regs) == 1
    assert [[p.version_id for p in r.network.versions] for r in regs] == [[1], [1]]


def test_demo_off_or_missing_file_starts_empty(
    make_app_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    c = make_app_client(demo=False)
    assert c.get("/api/v1/network").json()["published"] == []
    assert c.get("/api/v1/network/geojson").json()["features"] == []
    c2 = make_app_client(demo=True, demo_feed_path=tmp_path / "missing.zip")
    assert c2.get("/api/v1/network").json()["published"] == []
    assert c2.get("/readyz").status_code in (200, 503)


def test_service_date_follows_the_clock(muroran_tt: CompiledTimetable) -> None:
    """Inside the calendar the default date is today in Asia/Tokyo, and moves at midnight."""
    from app.feeds.network import Network

    now = [dt.datetime(2020, 11, 29, 14, 30, tzinfo=dt.UTC)]  # 23:30 in Muroran
    net = Network(timetable=muroran_tt, clock=lambda: now[0])
    assert net.service_date == dt.date(2020, 11, 29)
    now[0] += dt.timedelta(hours=1)  # 00:30 the next day in Muroran
    assert net.service_date == dt.date(2020, 11, 30)
    now[0] = dt.datetime(2026, 11, 29, 3, 0, tzinfo=dt.UTC)
    assert net.service_date == dt.date(2020, 11, 29)
    assert Network(timetable=None).service_date is None


def test_service_date_when_the_weekday_never_runs(muroran_tt: CompiledTimetable) -> None:
    """A feed without Sunday service: a Sunday today maps to the nearest day with trips."""
    days = muroran_tt.service_days.copy()
    dates = [muroran_tt.service_start + dt.timedelta(days=i) for i in range(days.shape[1])]
    days[:, [i for i, d in enumerate(dates) if d.weekday() == 6]] = False
    tt = dataclasses.replace(muroran_tt, service_days=days)
    got = pick_service_date(tt, dt.date(2026, 11, 29))  # a Sunday
    assert got in (dt.date(2020, 11, 28), dt.date(2020, 11, 30))
    assert tt.active_trips(got).any()

"""Booked rides survive an app restart: zones, vehicles, plans and rides are saved in the
database (SQLite and PostgreSQL) and restored into the dispatcher; residents keep their history."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.dispatch.store import zone_from_json, zone_to_json
from app.models.dispatch import RideRecord, ZoneItemRecord, ZoneStateRecord
from dispatch.meeting_points import MeetingPoint, MeetingPoints
from dispatch.simulation.invariants import plan_violations
from dispatch.zone import ServiceZone
from tests.app.conftest import both_backends, services_of
from tests.app.test_rides_api import ZONE, A, B, forget_saved_dispatch

C = {"lat": 42.32, "lon": 140.975}
__all__ = ["forget_saved_dispatch"]  # autouse: each test starts with no saved zone


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    """A PostgreSQL database of this test's own, not the session's: other tests leave rows in
    that one (a published feed whose files went with their data dir, zones), and the restarts
    here restore whatever the database holds (CI failed on another test's feed)."""
    return str(request.getfixturevalue("empty_database_url")) if backend == "postgres" else ""


def _setup(c: TestClient, h: dict[str, str]) -> None:
    assert c.post("/api/v1/fleet/zones", json=ZONE, headers=h).status_code == 201
    r = c.post(
        "/api/v1/fleet/vehicles",
        json={
            "vehicle_id": "van-1",
            "zone_id": "muroran",
            "vehicle_type": "van",
            "depot": A,
            "shift_end": time.time() + 8 * 3600,
        },
        headers=h,
    )
    assert r.status_code == 201, r.text


def _book(c: TestClient, h: dict[str, str], o: dict[str, float], d: dict[str, float]) -> str:
    r = c.post("/api/v1/rides", json={"request": {"origin": o, "destination": d}}, headers=h)
    assert r.status_code == 201, r.text
    return str(r.json()["ride_id"])


@both_backends
def test_restart_restores_plans_rides_and_history(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
) -> None:
    c1 = make_app_client()
    boss, alice, bob = make_user(roles=("dispatcher",)), make_user(), make_user()
    hb, ha, hbob = auth(boss, c1), auth(alice, c1), auth(bob, c1)
    _setup(c1, hb)
    kept = _book(c1, ha, A, B)
    gone = _book(c1, hbob, B, C)
    assert c1.delete(f"/api/v1/rides/{gone}", headers=hbob).json()["status"] == "cancelled"
    plan_before = [
        (s["kind"], s["ride_id"])
        for s in c1.get("/api/v1/fleet/vehicles/van-1", headers=hb).json()["plan"]
    ]
    assert plan_before == [("pickup", kept), ("dropoff", kept)]

    # A second process starting now (the first one may have crashed: no shutdown save needed).
    c2 = make_app_client()
    d2 = services_of(c2).dispatcher
    assert [z.zone_id for z in d2.zones()] == ["muroran"]
    v = d2.vehicle("van-1")
    assert [(s.kind.value, s.ride_id) for s in v.plan] == plan_before
    restored = d2.ride(kept)
    assert restored is not None and restored.status.value == "assigned"
    assert restored.vehicle_id == "van-1"
    hb2, ha2, hbob2 = auth(boss, c2), auth(alice, c2), auth(bob, c2)
    assert c2.get(f"/api/v1/rides/{kept}", headers=ha2).json()["status"] == "assigned"
    assert [r["ride_id"] for r in c2.get("/api/v1/rides", headers=ha2).json()["rides"]] == [kept]
    hist = c2.get("/api/v1/rides", headers=hbob2).json()["rides"]
    assert [(r["ride_id"], r["status"]) for r in hist] == [(gone, "cancelled")]
    # The restored plan is live: a new booking is inserted around it, every promise kept.
    third = _book(c2, hbob2, C, B)
    assert {s.ride_id for s in d2.vehicle("van-1").plan} == {kept, third}
    assert plan_violations(d2, d2.clock()) == []
    # Driver events keep being saved: the ride's status follows it into the database.
    ev = "/api/v1/fleet/vehicles/van-1/events"
    assert c2.post(ev, json={"type": "boarded", "ride_id": kept}, headers=hb2).status_code == 200
    engine = services_of(c2).engine
    with Session(engine) as db:
        rec = db.get(RideRecord, kept)
        assert rec is not None and rec.status == "onboard" and rec.user_id == alice.id
        assert db.get(ZoneStateRecord, "muroran") is not None
    # A third process sees the passenger onboard.
    d3 = services_of(make_app_client()).dispatcher
    assert kept in d3.vehicle("van-1").onboard
    assert d3.ride(kept) is not None and d3.ride(kept).status.value == "onboard"  # type: ignore[union-attr]


@both_backends
def test_unreadable_saved_zone_is_skipped(
    make_app_client: Callable[..., TestClient],
) -> None:
    c1 = make_app_client()
    with Session(services_of(c1).engine) as db:
        db.add(ZoneStateRecord(zone_id="broken", zone={"zone_id": "broken"}, state="{}"))
        db.commit()
    c2 = make_app_client()  # starts anyway
    assert services_of(c2).dispatcher.zones() == []
    assert c2.get("/api/v1/health").status_code in (200, 404)
    with Session(services_of(c2).engine) as db:
        assert db.exec(select(ZoneStateRecord)).all()


def test_zone_definition_round_trips() -> None:
    z = ServiceZone.from_geojson(
        "z",
        ZONE["geometry"],  # type: ignore[arg-type]
        name="Z",
        service_hours=[(6 * 3600.0, 22 * 3600.0)],
        min_notice_s=60.0,
        max_notice_s=3600.0,
        utc_offset_s=9 * 3600.0,
    )
    z.meeting_points = MeetingPoints([MeetingPoint("m1", 42.31, 140.96, "Station")])
    back = zone_from_json(zone_to_json(z))
    assert back.polygons == z.polygons and back.cells == z.cells
    assert (back.name, back.service_hours, back.min_notice_s, back.max_notice_s) == (
        "Z",
        [(21600.0, 79200.0)],
        60.0,
        3600.0,
    )
    assert back.utc_offset_s == 9 * 3600.0
    assert back.meeting_points is not None
    assert [(p.point_id, p.name) for p in back.meeting_points.points] == [("m1", "Station")]


# --- row-by-row zone state (issue #10) ----------------------------------------------------------
def _store_engine(database_url: str, tmp_path: Any) -> Any:
    from app.db import create_db_engine, upgrade_database

    engine = create_db_engine(database_url or f"sqlite:///{tmp_path}/store.db")
    upgrade_database(engine)
    return engine


def _zone_with_rides(n: int) -> tuple[Any, list[Any]]:
    """20 vans, ``n`` rides booked, and requests for more."""
    from bench.zone_state import _zone

    return _zone(n)


def _item_writes(engine: Any) -> list[str]:
    import sqlalchemy as sa

    seen: list[str] = []

    def spy(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "dispatch_zone" in statement and statement.lstrip().upper().startswith(
            ("INSERT", "UPDATE", "DELETE")
        ):
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", spy)
    return seen


@both_backends
def test_a_command_writes_only_what_it_changed(database_url: str, tmp_path: Any) -> None:
    """A booking's save writes the zone row, the booked van and the rides it carries, never the
    whole zone: the same number of item rows and about the same bytes in a zone of 10 rides
    as in one of 300 (the whole 911 KB snapshot was rewritten after every command)."""
    from app.dispatch.store import insert_zone, save_zones

    engine = _store_engine(database_url, tmp_path)
    try:
        written: dict[int, tuple[int, int]] = {}
        for n in (10, 300):
            d, todo = _zone_with_rides(n)
            with engine.begin() as conn:
                conn.execute(ZoneItemRecord.__table__.delete())  # type: ignore[attr-defined]
                conn.execute(ZoneStateRecord.__table__.delete())  # type: ignore[attr-defined]
            insert_zone(engine, d.zones()[0])
            save_zones(engine, d, ["muroran"], {"muroran": 0})
            seen = _item_writes(engine)
            booked = next(
                r
                for r in (d.request_ride(q, q.user_id, now=8 * 3600.0) for q in todo)
                if not hasattr(r, "reason")
            )
            save_zones(engine, d, ["muroran"], {"muroran": 0})
            van_rides = sum(1 for r in d.rides() if r.vehicle_id == booked.vehicle_id)
            items = [s for s in seen if "dispatch_zone_items" in s]
            assert len(items) <= van_rides + 3  # the van, its rides, the new ride, meta
            written[n] = (len(items), van_rides)
        assert written[300][0] < 300 / 5
    finally:
        engine.dispose()


@both_backends
def test_row_by_row_saves_restore_exactly_the_live_state(database_url: str, tmp_path: Any) -> None:
    """After bookings, a cancellation and vehicle events each followed by a row-by-row save,
    the state loaded (a takeover) is exactly the live zone's snapshot; a stale owner's save
    is refused and writes nothing."""
    import pytest as _pytest

    from app.dispatch.store import (
        StaleZoneError,
        insert_zone,
        load_zone_state,
        save_zones,
        take_zone_state,
    )
    from dispatch.dispatcher import Dispatcher
    from dispatch.scale_out import restore_zone, zone_snapshot
    from dispatch.travel_times import StraightLineTravelTimes

    engine = _store_engine(database_url, tmp_path)
    try:
        d, todo = _zone_with_rides(40)
        with engine.begin() as conn:
            conn.execute(ZoneItemRecord.__table__.delete())  # type: ignore[attr-defined]
            conn.execute(ZoneStateRecord.__table__.delete())  # type: ignore[attr-defined]
        insert_zone(engine, d.zones()[0])
        epoch, _ = take_zone_state(engine, "muroran")
        save_zones(engine, d, ["muroran"], {"muroran": epoch})
        now = 8 * 3600.0
        for q in todo[:5]:
            d.request_ride(q, q.user_id, now=now)
            save_zones(engine, d, ["muroran"], {"muroran": epoch})
        d.cancel(d.rides()[3].ride_id, now=now)
        save_zones(engine, d, ["muroran"], {"muroran": epoch})
        van = next(v for v in d.vehicles() if v.plan)
        first = van.plan[0]
        t = max(first.earliest, now)
        d.arrived(van.vehicle_id, first.ride_id, t)
        d.boarded(van.vehicle_id, first.ride_id, t + 10)
        save_zones(engine, d, ["muroran"], {"muroran": epoch})
        d.update_position(van.vehicle_id, first.lat + 0.001, first.lon, t + 20)
        save_zones(engine, d, ["muroran"], {"muroran": epoch})
        live = zone_snapshot(d, "muroran")
        assert load_zone_state(engine, "muroran") == live
        fresh = Dispatcher(StraightLineTravelTimes(1.3))
        restore_zone(fresh, d.zones()[0], load_zone_state(engine, "muroran"))
        assert zone_snapshot(fresh, "muroran") == live
        # A successor took the zone over: the stalled owner's next save changes nothing.
        take_zone_state(engine, "muroran")
        d.cancel(d.rides()[5].ride_id, now=now)
        with _pytest.raises(StaleZoneError):
            save_zones(engine, d, ["muroran"], {"muroran": epoch})
        assert load_zone_state(engine, "muroran") == live
    finally:
        engine.dispose()

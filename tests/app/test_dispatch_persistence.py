"""Booked rides survive an app restart: zones, vehicles, plans and rides are saved in the
database (SQLite and PostgreSQL) and restored into the dispatcher; residents keep their history."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.dispatch_store import zone_from_json, zone_to_json
from app.models.dispatch import RideRecord, ZoneStateRecord
from dispatch.meeting_points import MeetingPoint, MeetingPoints
from dispatch.simulation.invariants import plan_violations
from dispatch.zone import ServiceZone
from tests.app.conftest import both_backends, services_of
from tests.app.test_rides_api import ZONE, A, B, forget_saved_dispatch

C = {"lat": 42.32, "lon": 140.975}
__all__ = ["forget_saved_dispatch"]  # autouse: each test starts with no saved zone


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

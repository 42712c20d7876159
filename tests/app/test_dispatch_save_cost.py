"""What a zone owner's save costs after a command (issue #10): statements without the ORM's
unit of work, the ride records upserted without being read first, and still exactly the
records and items the dispatcher holds."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from app.models.dispatch import RideRecord, ZoneItemRecord, ZoneStateRecord
from tests.app.conftest import both_backends
from tests.app.test_dispatch_persistence import _store_engine, _zone_with_rides


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    """A PostgreSQL database of this test's own (the zone rows are deleted and rewritten)."""
    return str(request.getfixturevalue("empty_database_url")) if backend == "postgres" else ""


def _statements(engine: Any) -> list[str]:
    seen: list[str] = []

    def spy(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()).upper())

    sa.event.listen(engine, "before_cursor_execute", spy)
    return seen


def _records(engine: Any) -> dict[str, RideRecord]:
    with Session(engine) as db:
        return {r.ride_id: r for r in db.exec(select(RideRecord)).all()}


@both_backends
def test_a_save_upserts_ride_records_without_reading_them(database_url: str, tmp_path: Any) -> None:
    from app.dispatch.store import insert_zone, save_zones, take_zone_state

    engine = _store_engine(database_url, tmp_path)
    try:
        d, todo = _zone_with_rides(30)
        with engine.begin() as conn:
            conn.execute(ZoneItemRecord.__table__.delete())  # type: ignore[attr-defined]
            conn.execute(ZoneStateRecord.__table__.delete())  # type: ignore[attr-defined]
            conn.execute(RideRecord.__table__.delete())  # type: ignore[attr-defined]
        insert_zone(engine, d.zones()[0])
        epoch, _ = take_zone_state(engine, "muroran")
        epochs = {"muroran": epoch}
        save_zones(engine, d, ["muroran"], epochs, drop_finished=True)
        first = _records(engine)
        assert set(first) == {r.ride_id for r in d.rides()}

        seen = _statements(engine)
        now = 8 * 3600.0
        booked = next(
            r
            for r in (d.request_ride(q, q.user_id, now=now) for q in todo)
            if not hasattr(r, "reason")
        )
        save_zones(engine, d, ["muroran"], epochs, drop_finished=True)
        # Before: the changed rides' records were SELECTed (JSON decoded) and flushed by the
        # ORM one by one; now one upsert writes them all.
        assert not [s for s in seen if s.startswith("SELECT") and "DISPATCH_RIDES" in s]
        upserts = [s for s in seen if s.startswith("INSERT INTO DISPATCH_RIDES")]
        assert len(upserts) >= 1 and all("ON CONFLICT" in s for s in upserts)
        # The zone row: one statement locks, stamps and fences it (a SELECT ... FOR UPDATE
        # and an UPDATE rewriting the unchanged definition before).
        zone_row = [s for s in seen if "DISPATCH_ZONE_STATES" in s]
        assert len(zone_row) == 1 and zone_row[0].startswith("UPDATE"), zone_row
        assert "RETURNING" in zone_row[0]
        recs = _records(engine)
        for r in d.rides():
            rec = recs[r.ride_id]
            assert rec.ride == r.to_dict()
            assert (rec.user_id, rec.zone_id, rec.status) == (r.user_id, r.zone_id, r.status.value)
            assert rec.vehicle_id == r.vehicle_id and rec.booked_at == r.booked_at
        assert recs[booked.ride_id].status == "assigned"

        # A cancellation: its record updated (rider and booking time kept), its item gone.
        d.cancel(booked.ride_id, now=now)
        save_zones(engine, d, ["muroran"], epochs, drop_finished=True)
        rec = _records(engine)[booked.ride_id]
        assert rec.status == "cancelled" and rec.ride["status"] == "cancelled"
        assert (rec.user_id, rec.booked_at) == (booked.user_id, booked.booked_at)
        assert d.ride(booked.ride_id) is None  # finished: forgotten once saved
        with Session(engine) as db:
            items = set(
                db.exec(
                    select(ZoneItemRecord.item_id).where(ZoneItemRecord.zone_id == "muroran")
                ).all()
            )
        assert f"r:{booked.ride_id}" not in items
        assert {f"r:{r.ride_id}" for r in d.rides()} <= items

        # A changed definition is written, the row's identity (instance) and epoch kept.
        with Session(engine) as db:
            row = db.get(ZoneStateRecord, "muroran")
            assert row is not None
            instance = row.zone["instance"]
        d.zones()[0].name = "Muroran (renamed)"
        save_zones(engine, d, ["muroran"], epochs, drop_finished=True)
        with Session(engine) as db:
            row = db.get(ZoneStateRecord, "muroran")
            assert row is not None
            assert row.zone["name"] == "Muroran (renamed)"
            assert (row.zone["instance"], row.zone["epoch"]) == (instance, epoch)
    finally:
        engine.dispose()

"""The emissions service's database: engine, migrations, and its tables' reads and writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app import db
from app.emissions.models import VERSION_TABLE, TakenTrip

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Any:
    """The Alembic configuration of the emissions chain (no ini file)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Apply the emissions chain's pending migrations (safe with several processes at once)."""
    from alembic import command

    with db.startup_lock(engine, "emissions-migrate"):
        cfg = alembic_config()
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()


def current_revision(engine: Engine) -> str | None:
    """The emissions chain's revision in ``engine``'s database (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return ctx.get_current_revision()


class AlreadyRecorded(Exception):
    """The resident already recorded this itinerary."""

    def __init__(self, existing: TakenTrip) -> None:
        super().__init__(str(existing.id))
        self.existing = existing


def insert_taken_trip(engine: Engine, trip: TakenTrip) -> TakenTrip:
    """Write ``trip``; :class:`AlreadyRecorded` when the user recorded the same itinerary."""
    try:
        with db.session_scope(engine) as session:
            session.add(trip)
        return trip
    except IntegrityError:
        with Session(engine) as session:
            existing = session.exec(
                select(TakenTrip).where(
                    TakenTrip.user_id == trip.user_id, TakenTrip.fingerprint == trip.fingerprint
                )
            ).first()
        if existing is None:  # not the unique constraint: a real error
            raise
        raise AlreadyRecorded(existing) from None


def taken_trips(engine: Engine, user_id: str, month: str) -> list[TakenTrip]:
    """The user's recorded trips of ``month`` (``YYYY-MM``), in departure order."""
    with Session(engine) as session:
        return list(
            session.exec(
                select(TakenTrip)
                .where(TakenTrip.user_id == user_id, TakenTrip.month == month)
                .order_by(col(TakenTrip.started_at))
            ).all()
        )


def delete_taken_trip(engine: Engine, user_id: str, trip_id: Any) -> bool:
    """Delete one of the user's recorded trips; False when they have none by that id."""
    with db.session_scope(engine) as session:
        result = session.execute(
            sa.delete(TakenTrip).where(
                col(TakenTrip.id) == trip_id, col(TakenTrip.user_id) == user_id
            )
        )
        return bool(getattr(result, "rowcount", 0))


def head_revision() -> str | None:
    """The newest revision of the emissions chain."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()

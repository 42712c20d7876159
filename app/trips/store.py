"""The ``trips`` table: synchronous reads and conditional writes (call them in a thread).

Every state change is one conditional ``UPDATE ... WHERE state = <expected>``: of two processes
(or a request and the sweeper) racing to move one trip, exactly one sees its row count at 1
and goes on; the other re-reads the row.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.db import session_scope
from app.models.identity import utcnow
from app.models.trip import Trip

__all__ = [
    "claim_expired",
    "claim_release",
    "expired_ids",
    "get_trip",
    "insert_trip",
    "list_trips",
    "release_ids",
    "trip_by_key",
    "unresolved_ids",
    "update_trip",
]


def insert_trip(engine: Engine, trip: Trip) -> Trip:
    """Write a new trip (``IntegrityError`` when its idempotency key is taken)."""
    with session_scope(engine) as db:
        db.add(trip)
        db.flush()
        db.refresh(trip)
        db.expunge(trip)
    return trip


def get_trip(engine: Engine, trip_id: uuid.UUID) -> Trip | None:
    with Session(engine, expire_on_commit=False) as db:
        return db.get(Trip, trip_id)


def trip_by_key(engine: Engine, user_id: str, key: str) -> Trip | None:
    with Session(engine, expire_on_commit=False) as db:
        stmt = select(Trip).where(Trip.user_id == user_id, Trip.idempotency_key == key)
        return db.exec(stmt).first()


def list_trips(engine: Engine, user_id: str, limit: int = 100) -> list[Trip]:
    """The user's trips, newest first."""
    with Session(engine, expire_on_commit=False) as db:
        stmt = (
            select(Trip)
            .where(Trip.user_id == user_id)
            .order_by(col(Trip.created_at).desc(), col(Trip.id))
            .limit(limit)
        )
        return list(db.exec(stmt).all())


def update_trip(
    engine: Engine,
    trip_id: uuid.UUID,
    *,
    states: Collection[str],
    when_in_progress: bool | None = None,
    not_expired_at: dt.datetime | None = None,
    **values: Any,
) -> bool:
    """Set ``values`` on the trip if its state is one of ``states`` (and, when given, its
    ``in_progress`` flag is ``when_in_progress``, and it has not expired at ``not_expired_at``); whether the
    row was changed."""
    table = Trip.__table__  # type: ignore[attr-defined]
    cond = [table.c.id == trip_id, table.c.state.in_(list(states))]
    if when_in_progress is not None:
        cond.append(table.c.in_progress == when_in_progress)
    if not_expired_at is not None:
        cond.append(sa.or_(table.c.expires_at.is_(None), table.c.expires_at >= not_expired_at))
    with engine.begin() as conn:
        res = conn.execute(sa.update(table).where(*cond).values(updated_at=utcnow(), **values))
        return int(res.rowcount) == 1


def expired_ids(engine: Engine, now: dt.datetime, limit: int = 100) -> list[uuid.UUID]:
    """PENDING trips whose ``expires_at`` has passed (candidates: claim each one)."""
    with Session(engine) as db:
        stmt = (
            select(Trip.id)
            .where(Trip.state == "PENDING", col(Trip.expires_at) < now)
            .order_by(col(Trip.expires_at))
            .limit(limit)
        )
        return list(db.exec(stmt).all())


def claim_expired(engine: Engine, trip_id: uuid.UUID, now: dt.datetime, lease_s: float) -> bool:
    """Move an expired PENDING trip to EXPIRED, its rides to release by this process for
    ``lease_s``; False when another process (or the booking itself) got there first."""
    table = Trip.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        res = conn.execute(
            sa.update(table)
            .where(table.c.id == trip_id, table.c.state == "PENDING", table.c.expires_at < now)
            .values(
                state="EXPIRED",
                in_progress=False,
                release_pending=True,
                claimed_until=now + dt.timedelta(seconds=lease_s),
                error={"code": "expired", "message": "the hold expired", "details": None},
                updated_at=now,
            )
        )
        return int(res.rowcount) == 1


def release_ids(engine: Engine, now: dt.datetime, limit: int = 100) -> list[uuid.UUID]:
    """Trips whose rides still need releasing and that nobody is handling."""
    with Session(engine) as db:
        stmt = (
            select(Trip.id)
            .where(
                col(Trip.release_pending).is_(True),
                sa.or_(col(Trip.claimed_until).is_(None), col(Trip.claimed_until) < now),
            )
            .limit(limit)
        )
        return list(db.exec(stmt).all())


def claim_release(engine: Engine, trip_id: uuid.UUID, now: dt.datetime, lease_s: float) -> bool:
    """Take the release of a trip's rides for ``lease_s`` (False: someone else has it)."""
    table = Trip.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        res = conn.execute(
            sa.update(table)
            .where(
                table.c.id == trip_id,
                table.c.release_pending.is_(True),
                sa.or_(table.c.claimed_until.is_(None), table.c.claimed_until < now),
            )
            .values(claimed_until=now + dt.timedelta(seconds=lease_s), updated_at=now)
        )
        return int(res.rowcount) == 1


def unresolved_ids(engine: Engine, limit: int = 100) -> list[uuid.UUID]:
    """PENDING trips not being booked now: some may wait for a queued (202) leg."""
    with Session(engine) as db:
        stmt = (
            select(Trip.id)
            .where(Trip.state == "PENDING", col(Trip.in_progress).is_(False))
            .limit(limit)
        )
        return list(db.exec(stmt).all())

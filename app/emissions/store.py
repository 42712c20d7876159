"""The emissions service's database: engine, migrations, and its tables' reads and writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app import db
from app.emissions import commute
from app.emissions.commute import Ends as Ends  # ``((lat, lon), (lat, lon))``
from app.emissions.models import VERSION_TABLE, TakenTrip, TripMode
from app.secondary import MigrationChain

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


#: The emissions chain (its own version table, beside the app's ``alembic_version``).
CHAIN = MigrationChain(MIGRATIONS_DIR, VERSION_TABLE, "emissions-migrate")


def alembic_config() -> Any:
    """The Alembic configuration of the emissions chain (no ini file)."""
    return CHAIN.config()


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Apply the emissions chain's pending migrations (safe with several processes at once)."""
    CHAIN.upgrade(engine, revision)


def current_revision(engine: Engine) -> str | None:
    """The emissions chain's revision in ``engine``'s database (None: never migrated)."""
    return CHAIN.current_revision(engine)


class AlreadyRecorded(Exception):
    """The resident already recorded this itinerary."""

    def __init__(self, existing: TakenTrip) -> None:
        super().__init__(str(existing.id))
        self.existing = existing


def trip_modes(trip: TakenTrip, ends: Ends | None) -> list[TripMode]:
    """The trip's distance and CO2 by mode (its legs summed per mode), with its ends."""
    by_mode: dict[str, list[float]] = {}
    for leg in trip.legs:
        acc = by_mode.setdefault(str(leg["mode"]), [0.0, 0.0])
        acc[0] += float(leg["distance"])
        acc[1] += float(leg["co2"])
    (a, b) = ends if ends is not None else ((None, None), (None, None))
    return [
        TripMode(
            trip_id=trip.id,
            user_id=trip.user_id,
            month=trip.month,
            mode=mode,
            distance_m=dist,
            co2_g=int(co2),
            from_lat=a[0],
            from_lon=a[1],
            to_lat=b[0],
            to_lon=b[1],
        )
        for mode, (dist, co2) in by_mode.items()
    ]


def insert_taken_trip(engine: Engine, trip: TakenTrip, ends: Ends | None = None) -> TakenTrip:
    """Write ``trip``, its rows by mode (:func:`trip_modes`, with ``ends``) and its share of
    the commute totals (:func:`app.emissions.commute.add_trip`) in one transaction;
    :class:`AlreadyRecorded` when the user recorded the same itinerary."""
    try:
        with db.session_scope(engine) as session:
            session.add(trip)
            session.flush()
            modes = trip_modes(trip, ends)
            session.add_all(modes)
            session.flush()
            commute.add_trip(session.connection(), trip.user_id, modes, ends)
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
    """Delete one of the user's recorded trips (and recompute their commute totals of its
    month); False when they have none by that id."""
    with db.session_scope(engine) as session:
        result = session.execute(
            sa.delete(TakenTrip)
            .where(col(TakenTrip.id) == trip_id, col(TakenTrip.user_id) == user_id)
            .returning(col(TakenTrip.month))
        )
        months = [str(m) for m in result.scalars().all()]
        if months:
            session.execute(sa.delete(TripMode).where(col(TripMode.trip_id) == trip_id))
            commute.rebuild(session.connection(), user_id=user_id, months=months)
        return bool(months)


def head_revision() -> str | None:
    """The newest revision of the emissions chain."""
    return CHAIN.head_revision()

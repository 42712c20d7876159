"""Where the ledger finds the mobility core's completed trips and rides.

The emissions service does not own bookings: it reads them. :class:`MobilityRecords` is the
narrow interface the ledger needs; :class:`DatabaseMobility` implements it over the mobility
core's tables (``trips``, ``dispatch_rides``, ``dispatch_zone_items``) in the app's database,
read only. In the main process that is the app's engine; run on its own
(``tsunagu serve --service emissions``) the service opens ``DATABASE_URL`` for these reads only
(it keeps its own tables in ``TSUNAGU_EMISSIONS_DATABASE_URL``) and shares no session state.
Another implementation (an HTTP client of the core, an event consumer filling a table of its
own) can replace it through :class:`app.emissions.service.EmissionsService`.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.models.dispatch import RideRecord, ZoneItemRecord
from app.models.trip import Trip

#: Ride statuses whose passengers were (or still are) in the vehicle.
ON_BOARD_STATUSES = ("completed", "onboard")


class MobilityRecords(Protocol):
    """The mobility core's records the ledger reads."""

    def completed_rides(self, user_id: str) -> list[dict[str, Any]]:
        """The user's completed rides (``Ride.to_dict()``)."""
        ...

    def vehicle_rides(self, vehicle_id: str, start: float, end: float) -> list[dict[str, Any]]:
        """Rides picked up by ``vehicle_id`` and on board at some moment of ``[start, end]``
        (unix seconds), the ride itself included."""
        ...

    def vehicle_type(self, vehicle_id: str) -> str | None:
        """The vehicle's type name (``van``...), None when unknown."""
        ...

    def confirmed_trips(self, user_id: str) -> list[dict[str, Any]]:
        """The user's CONFIRMED trips: ``{"id", "itinerary", "legs"}``."""
        ...


class DatabaseMobility:
    """:class:`MobilityRecords` over the mobility core's tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def completed_rides(self, user_id: str) -> list[dict[str, Any]]:
        with Session(self.engine) as db:
            rows = db.exec(
                select(RideRecord).where(
                    RideRecord.user_id == user_id, RideRecord.status == "completed"
                )
            ).all()
        return [dict(r.ride) for r in rows]

    def vehicle_rides(self, vehicle_id: str, start: float, end: float) -> list[dict[str, Any]]:
        with Session(self.engine) as db:
            rows = db.exec(
                select(RideRecord).where(
                    RideRecord.vehicle_id == vehicle_id,
                    col(RideRecord.status).in_(ON_BOARD_STATUSES),
                    # Booked before the ride ended: the rest cannot have shared it.
                    col(RideRecord.booked_at) <= end,
                )
            ).all()
        out = []
        for r in rows:
            ride = dict(r.ride)
            up, down = ride.get("picked_up_at"), ride.get("dropped_off_at")
            if up is None or float(up) > end:
                continue
            if down is not None and float(down) < start:
                continue
            out.append(ride)
        return out

    def vehicle_type(self, vehicle_id: str) -> str | None:
        with Session(self.engine) as db:
            row = db.exec(
                select(ZoneItemRecord).where(ZoneItemRecord.item_id == f"v:{vehicle_id}")
            ).first()
        if row is None:
            return None
        try:
            name = json.loads(row.data)["vtype"]["name"]
        except (ValueError, KeyError, TypeError):
            return None
        return str(name) if isinstance(name, str) else None

    def confirmed_trips(self, user_id: str) -> list[dict[str, Any]]:
        with Session(self.engine) as db:
            rows = db.exec(
                select(Trip).where(Trip.user_id == user_id, Trip.state == "CONFIRMED")
            ).all()
        return [{"id": str(t.id), "itinerary": t.itinerary, "legs": t.legs} for t in rows]


def has_mobility_tables(engine: Engine) -> bool:
    """Whether ``engine``'s database holds the mobility core's tables."""
    names = set(sa.inspect(engine).get_table_names())
    return {"trips", "dispatch_rides"} <= names


def completed_rides_of(
    records: MobilityRecords, user_ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """Completed rides of many users at once (one query on the core's tables when it can)."""
    if isinstance(records, DatabaseMobility):
        out: dict[str, list[dict[str, Any]]] = {}
        with Session(records.engine) as db:
            for chunk in _chunks(user_ids):
                rows = db.exec(
                    select(RideRecord).where(
                        col(RideRecord.user_id).in_(chunk), RideRecord.status == "completed"
                    )
                ).all()
                for r in rows:
                    out.setdefault(str(r.user_id), []).append(dict(r.ride))
        return out
    return {u: rides for u in user_ids if (rides := records.completed_rides(u))}


def confirmed_trips_of(
    records: MobilityRecords, user_ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """CONFIRMED trips of many users at once (one query on the core's tables when it can)."""
    if isinstance(records, DatabaseMobility):
        out: dict[str, list[dict[str, Any]]] = {}
        with Session(records.engine) as db:
            for chunk in _chunks(user_ids):
                rows = db.exec(
                    select(Trip).where(col(Trip.user_id).in_(chunk), Trip.state == "CONFIRMED")
                ).all()
                for t in rows:
                    out.setdefault(str(t.user_id), []).append(
                        {"id": str(t.id), "itinerary": t.itinerary, "legs": t.legs}
                    )
        return out
    return {u: trips for u in user_ids if (trips := records.confirmed_trips(u))}


def ended_rides_of(
    engine: Engine, user_ids: list[str], statuses: tuple[str, ...], since: dt.datetime
) -> list[tuple[str, str, str, dt.datetime]]:
    """``(user, ride, status, updated_at)`` of the users' rides in ``statuses`` last updated
    at or after ``since`` (the core's ``dispatch_rides``; ``updated_at`` in UTC), oldest
    first."""
    out: list[tuple[str, str, str, dt.datetime]] = []
    with Session(engine) as db:
        for chunk in _chunks(user_ids):
            rows = db.exec(
                select(RideRecord).where(
                    col(RideRecord.user_id).in_(chunk),
                    col(RideRecord.status).in_(statuses),
                    col(RideRecord.updated_at) >= since,
                )
            ).all()
            for r in rows:
                at = r.updated_at if r.updated_at.tzinfo else r.updated_at.replace(tzinfo=dt.UTC)
                out.append((str(r.user_id), str(r.ride_id), str(r.status), at))
    out.sort(key=lambda row: row[3])
    return out


def _chunks(items: list[str], size: int = 900) -> list[list[str]]:
    """``items`` in lists short enough for SQLite's bound-parameter limit."""
    return [items[i : i + size] for i in range(0, len(items), size)]

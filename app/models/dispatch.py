"""On-demand dispatch state that survives a restart: zone snapshots and residents' rides.

``dispatch_zone_states`` holds one row per service zone: its definition and the JSON snapshot
of its vehicles, plans and rides (``dispatch.scale_out.zone_snapshot``), from which start-up
restores the dispatcher. ``dispatch_rides`` holds every ride with its latest status: a
resident's ride history, kept after the zone or the ride leaves the dispatcher.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models.identity import utcnow


class ZoneStateRecord(SQLModel, table=True):
    """The last saved state of one service zone."""

    __tablename__ = "dispatch_zone_states"

    zone_id: str = Field(primary_key=True, max_length=128)
    zone: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    state: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    updated_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False)
    )


class RideRecord(SQLModel, table=True):
    """One booked ride and its latest status (``dispatch.rides.Ride.to_dict`` in ``ride``)."""

    __tablename__ = "dispatch_rides"

    ride_id: str = Field(primary_key=True, max_length=128)
    user_id: str = Field(max_length=128, index=True)
    zone_id: str = Field(max_length=128)
    vehicle_id: str = Field(max_length=128)
    status: str = Field(max_length=16)
    booked_at: float
    ride: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    updated_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False)
    )


class ZoneItemRecord(SQLModel, table=True):
    """One item of a zone's live state: a vehicle (``v:<id>``, ``dataclasses.asdict``), a ride
    (``r:<id>``) or the zone's versions and demand (``meta``), as JSON text.

    A save writes only the items a command changed (``app.dispatch.store.save_zone_items``),
    so a command costs the same whatever the zone's size; ``seq`` keeps the order the
    dispatcher holds them in, so a restore rebuilds exactly the state saved."""

    __tablename__ = "dispatch_zone_items"

    zone_id: str = Field(primary_key=True, max_length=128)
    item_id: str = Field(primary_key=True, max_length=160)
    seq: int
    data: str = Field(sa_column=sa.Column(sa.Text, nullable=False))

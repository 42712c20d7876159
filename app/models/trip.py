"""Trips: a planned itinerary a resident booked, its on-demand legs reserved together.

One row per trip (``trips``), its legs as a small JSON list (each on-demand leg's dispatcher
quote, expected ride id and booking progress), so a trip's state and its legs change in one
conditional UPDATE. ``(user_id, idempotency_key)`` is unique: a retried booking finds the row
its first attempt wrote, in any process.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.models.identity import utcnow


def _ts(nullable: bool = False) -> Any:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class Trip(SQLModel, table=True):
    """One booked (or attempted) trip; see ``app.trips.service`` for the state machine."""

    __tablename__ = "trips"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_trips_user_id_idempotency_key"),
        sa.Index("ix_trips_state_expires_at", "state", "expires_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: str = Field(max_length=128, index=True)
    #: The client's ``Idempotency-Key`` (None: the request had none).
    idempotency_key: str | None = Field(default=None, max_length=200)
    #: SHA-256 of the request body, so a key reused with another body is recognised.
    request_hash: str = Field(max_length=64)
    #: TOMP booking state: PENDING, CONFIRMED, REJECTED, CANCELLED, EXPIRED.
    state: str = Field(max_length=16)
    #: The client asked for confirmation (at booking or later): a PENDING trip whose legs all
    #: end up booked becomes CONFIRMED.
    confirm_requested: bool = False
    #: A process is booking the legs right now (a duplicate request waits for it).
    in_progress: bool = False
    #: Rides of this trip may still hold seats although the trip no longer wants them.
    release_pending: bool = False
    #: A process handles this row's release until then (others leave it alone).
    claimed_until: dt.datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    itinerary: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    legs: list[dict[str, Any]] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    #: The status code of the booking's answer (replayed for a retry), None while booking.
    http_status: int | None = None
    #: ``{"code", "message", "details"}`` of a refusal.
    error: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    #: A PENDING trip expires then (the hold, or a booking that never finished).
    expires_at: dt.datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_ts())
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_column=_ts())

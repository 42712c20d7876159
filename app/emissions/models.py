"""The emissions service's tables, on a metadata of their own (:data:`metadata`).

They are not on ``SQLModel.metadata``: the app's Alembic chain (``app/migrations``) never sees
them, and the service migrates them with its own chain (``app/emissions/migrations``, version
table ``emissions_alembic_version``) into whichever database it is given
(``TSUNAGU_EMISSIONS_DATABASE_URL``, the app's by default). Add tables by subclassing
:class:`EmissionsModel` and writing a revision in ``app/emissions/migrations/versions``
(``tests/app/emissions/test_migrations.py`` fails while a table has none).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from app.models.identity import utcnow


class EmissionsModel(SQLModel, registry=registry()):
    """Base of every emissions table (its own metadata)."""


metadata = EmissionsModel.metadata

#: The emissions chain's Alembic version table (beside the app's ``alembic_version``).
VERSION_TABLE = "emissions_alembic_version"


class TakenTrip(EmissionsModel, table=True):
    """A planned itinerary the resident says they took (``POST /api/v1/emissions/trips``).

    The CO2 is computed by the service from the itinerary's legs and the city's factors when
    the trip is recorded (never taken from the client), with the factors' name kept beside it.
    """

    __tablename__ = "emissions_taken_trips"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "fingerprint", name="uq_emissions_taken_trips_user_fp"),
        sa.Index("ix_emissions_taken_trips_user_month", "user_id", "month"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: str = Field(max_length=128)
    #: SHA-256 of the itinerary's legs (modes, times, places): the same trip is recorded once.
    fingerprint: str = Field(max_length=64)
    #: ``YYYY-MM`` of the departure in the city's time zone.
    month: str = Field(max_length=7)
    started_at: dt.datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    ended_at: dt.datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    distance_m: float
    co2_g: int
    car_distance_m: float
    car_co2_g: int
    #: Per leg: mode, distance_m, co2_g, factor (value, unit, source, year).
    legs: list[dict[str, Any]] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    factors: str = Field(max_length=200)
    created_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False)
    )

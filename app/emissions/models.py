"""The emissions service's tables, on a metadata of their own (:data:`metadata`).

They are not on ``SQLModel.metadata``: the app's Alembic chain (``app/migrations``) never sees
them, and the service migrates them with its own chain (``app/emissions/migrations``, version
table ``emissions_alembic_version``) into whichever database it is given
(``TSUNAGU_EMISSIONS_DATABASE_URL``, the app's by default). Add tables by subclassing
:class:`EmissionsModel` and writing a revision in ``app/emissions/migrations/versions``
(``tests/app/emissions/test_migrations.py`` fails while a table has none). ``tsunagu backup``
archives them apart from the app's tables (``db/emissions/``); ``tsunagu restore`` puts them
back into the configured emissions database.
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


class TripMode(EmissionsModel, table=True):
    """A recorded trip's distance and CO2 by mode, with the trip's two ends.

    One row per (trip, mode) — a walk, a bus ride and a walk give ``WALK`` and ``BUS`` rows —
    written with the :class:`TakenTrip`. They are the source of the company reports'
    running commute totals (:class:`CommuteTotal`, rebuilt from these rows when a consent is
    granted or a trip deleted), so nothing parses every trip's legs. Rows of trips recorded
    before this table existed have no ends (NULL): they never count as commute trips.
    """

    __tablename__ = "emissions_trip_modes"
    __table_args__ = (sa.Index("ix_emissions_trip_modes_user_month", "user_id", "month"),)

    id: int | None = Field(default=None, primary_key=True)
    trip_id: uuid.UUID = Field(index=True)
    user_id: str = Field(max_length=128)
    month: str = Field(max_length=7)
    mode: str = Field(max_length=32)
    distance_m: float
    co2_g: int
    from_lat: float | None = None
    from_lon: float | None = None
    to_lat: float | None = None
    to_lon: float | None = None


class CommuteTotal(EmissionsModel, table=True):
    """A consenting employee's commute trips for one company in one month by one mode: the
    running total the Category 7 report reads (:mod:`app.emissions.commute`).

    Kept with the trip-mode rows in the same transaction (trip recorded or deleted, consent
    granted or revoked); ``trips`` counts trip-mode rows (a trip per mode it uses).
    """

    __tablename__ = "emissions_commute_totals"

    company_id: uuid.UUID = Field(primary_key=True)
    user_id: str = Field(max_length=128, primary_key=True)
    month: str = Field(max_length=7, primary_key=True)
    mode: str = Field(max_length=32, primary_key=True)
    distance_m: float
    co2_g: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    trips: int


class Company(EmissionsModel, table=True):
    """A company registered by a company admin, with its site (the commute's work end)."""

    __tablename__ = "emissions_companies"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    admin_user_id: str = Field(max_length=128, index=True)
    site_lat: float
    site_lon: float
    #: Employees in all (those without the app included): the report's coverage.
    headcount: int | None = None
    #: The company's electricity supplier (a key of the factor table's ``electricity``).
    electricity_supplier: str | None = Field(default=None, max_length=64)
    created_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False)
    )


class Invitation(EmissionsModel, table=True):
    """An invitation to share commute data with a company (a secret code to accept)."""

    __tablename__ = "emissions_invitations"
    __table_args__ = (sa.UniqueConstraint("code", name="uq_emissions_invitations_code"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    company_id: uuid.UUID = Field(index=True)
    code: str = Field(max_length=64)
    label: str = Field(default="", max_length=200)
    created_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False)
    )
    accepted_by: str | None = Field(default=None, max_length=128)
    accepted_at: dt.datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=True)
    )


class Consent(EmissionsModel, table=True):
    """A resident's consent to share their commute data with one company (revocable)."""

    __tablename__ = "emissions_consents"
    __table_args__ = (
        sa.UniqueConstraint("company_id", "user_id", name="uq_emissions_consents_company_user"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    company_id: uuid.UUID = Field(index=True)
    user_id: str = Field(max_length=128, index=True)
    granted_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False)
    )
    #: Set when the resident revokes: from then on nothing of theirs is in any report.
    revoked_at: dt.datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=True)
    )


class Survey(EmissionsModel, table=True):
    """A commute survey answer (average-data method): the employee's own or uploaded by the
    company admin for an employee without the app (``user_id`` NULL, ``ref`` their label)."""

    __tablename__ = "emissions_surveys"
    __table_args__ = (
        sa.UniqueConstraint("company_id", "ref", name="uq_emissions_surveys_company_ref"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    company_id: uuid.UUID = Field(index=True)
    #: ``user:<id>`` for an employee's own answer, ``upload:<label>`` for the admin's.
    ref: str = Field(max_length=240)
    user_id: str | None = Field(default=None, max_length=128)
    mode: str = Field(max_length=32)
    one_way_km: float
    days_per_week: float
    home_lat: float | None = None
    home_lon: float | None = None
    updated_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False)
    )


class EnergyUse(EmissionsModel, table=True):
    """A company's fuel or electricity use in one month (Scope 1 and 2)."""

    __tablename__ = "emissions_energy_use"
    __table_args__ = (
        sa.UniqueConstraint(
            "company_id", "month", "energy", "supplier", name="uq_emissions_energy_use_key"
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    company_id: uuid.UUID = Field(index=True)
    month: str = Field(max_length=7)
    #: A fuel of the factor table (Scope 1) or ``electricity`` (Scope 2).
    energy: str = Field(max_length=32)
    #: The electricity supplier (``""`` for fuels).
    supplier: str = Field(default="", max_length=64)
    quantity: float
    unit: str = Field(max_length=8)

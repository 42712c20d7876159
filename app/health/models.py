"""The health service's tables, on a metadata of their own (:data:`metadata`).

Like the emissions service's, they are not on ``SQLModel.metadata``: the app's Alembic chain never
sees them, and the service migrates them with its own chain (``app/health/migrations``, version
table ``health_alembic_version``) into ``TSUNAGU_HEALTH_DATABASE_URL`` (the app's database by
default). Health data stay in these tables only: no other service reads them. ``tsunagu
backup`` archives them apart from the app's tables (``db/health/``) and ``tsunagu restore``
puts them back into the configured health database (``tests/app/health/test_migrations.py``
fails while a table has no migration).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from app.models.identity import utcnow


class HealthModel(SQLModel, registry=registry()):
    """Base of every health table (its own metadata)."""


metadata = HealthModel.metadata

#: The health chain's Alembic version table.
VERSION_TABLE = "health_alembic_version"


def _ts(nullable: bool = False) -> Any:
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable)


class Observation(HealthModel, table=True):
    """One recorded checkup value of a resident (a FHIR Observation when exported)."""

    __tablename__ = "health_observations"
    __table_args__ = (sa.Index("ix_health_observations_user_kind", "user_id", "kind"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: str = Field(max_length=128)
    #: A key of :data:`app.health.fhir.KINDS`, or ``blood_pressure``.
    kind: str = Field(max_length=32)
    #: ``{"value": x}``, ``{"code": c}`` or ``{"systolic": s, "diastolic": d}``.
    values: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON, nullable=False))
    effective_at: dt.datetime = Field(sa_column=_ts())
    #: Who recorded it: the resident, or staff with consent.
    recorded_by: str = Field(max_length=128)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_ts())


class Organisation(HealthModel, table=True):
    """A recipient organisation: the city health department, a clinic, a care provider."""

    __tablename__ = "health_organisations"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    #: city_health | clinic | care_provider
    kind: str = Field(max_length=20)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=_ts())


class Member(HealthModel, table=True):
    """A health-staff user acting for an organisation."""

    __tablename__ = "health_org_members"

    organisation_id: uuid.UUID = Field(
        foreign_key="health_organisations.id", primary_key=True, ondelete="CASCADE"
    )
    user_id: str = Field(max_length=128, primary_key=True)


class Consent(HealthModel, table=True):
    """A resident's opt-in: one recipient, one purpose, until ``expires_at`` or revocation."""

    __tablename__ = "health_consents"
    __table_args__ = (sa.Index("ix_health_consents_recipient", "recipient_type", "recipient_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    resident_id: str = Field(max_length=128, index=True)
    #: organisation | user
    recipient_type: str = Field(max_length=16)
    recipient_id: str = Field(max_length=128)
    #: records | records_write | activity | watch_over
    purpose: str = Field(max_length=20)
    granted_at: dt.datetime = Field(default_factory=utcnow, sa_column=_ts())
    expires_at: dt.datetime = Field(sa_column=_ts())
    revoked_at: dt.datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class AuditEntry(HealthModel, table=True):
    """Someone other than the resident read their health data or acted for them."""

    __tablename__ = "health_audit"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    resident_id: str = Field(max_length=128, index=True)
    actor_id: str = Field(max_length=128)
    #: read | write | book_ride | change_ride | cancel_ride
    action: str = Field(max_length=20)
    #: What was read or done: observations, risk, activity, ride:<id>...
    resource: str = Field(max_length=200)
    consent_id: uuid.UUID | None = None
    at: dt.datetime = Field(default_factory=utcnow, sa_column=_ts())


class WatchNotice(HealthModel, table=True):
    """A watcher was told that a resident's booked ride was completed or missed (once)."""

    __tablename__ = "health_watch_notices"
    __table_args__ = (
        sa.UniqueConstraint("watcher_id", "ride_id", "event", name="uq_health_watch_notice"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    watcher_id: str = Field(max_length=128, index=True)
    resident_id: str = Field(max_length=128)
    ride_id: str = Field(max_length=128)
    #: ride.completed | ride.missed
    event: str = Field(max_length=20)
    at: dt.datetime = Field(default_factory=utcnow, sa_column=_ts())

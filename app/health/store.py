"""The health service's database: its migration chain and its tables' reads and writes.

Every function is blocking (call it from a thread). Nothing here logs a value.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app import db
from app.health.models import (
    VERSION_TABLE,
    AuditEntry,
    Consent,
    Member,
    Observation,
    Organisation,
    WatchNotice,
)
from app.secondary import MigrationChain

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
CHAIN = MigrationChain(MIGRATIONS_DIR, VERSION_TABLE, "health-migrate")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def aware(t: dt.datetime) -> dt.datetime:
    """``t`` with UTC attached when the database returned it naive (SQLite)."""
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


# --- observations ----------------------------------------------------------------------------
def add_observations(engine: Engine, rows: list[Observation]) -> list[Observation]:
    with db.session_scope(engine) as session:
        for r in rows:
            session.add(r)
    return rows


def observations(engine: Engine, user_id: str) -> list[Observation]:
    """The resident's values, oldest first."""
    with Session(engine) as session:
        return list(
            session.exec(
                select(Observation)
                .where(Observation.user_id == user_id)
                .order_by(col(Observation.effective_at), col(Observation.created_at))
            ).all()
        )


def delete_observation(engine: Engine, user_id: str, obs_id: uuid.UUID) -> bool:
    with db.session_scope(engine) as session:
        result = session.execute(
            sa.delete(Observation).where(
                col(Observation.id) == obs_id, col(Observation.user_id) == user_id
            )
        )
        return bool(getattr(result, "rowcount", 0))


# --- organisations ---------------------------------------------------------------------------
def add_organisation(engine: Engine, org: Organisation) -> Organisation:
    with db.session_scope(engine) as session:
        session.add(org)
    return org


def organisations(engine: Engine) -> list[Organisation]:
    with Session(engine) as session:
        return list(session.exec(select(Organisation).order_by(col(Organisation.name))).all())


def organisation(engine: Engine, org_id: uuid.UUID) -> Organisation | None:
    with Session(engine) as session:
        return session.get(Organisation, org_id)


def add_member(engine: Engine, org_id: uuid.UUID, user_id: str) -> bool:
    """False when the user already belongs to the organisation."""
    try:
        with db.session_scope(engine) as session:
            session.add(Member(organisation_id=org_id, user_id=user_id))
        return True
    except IntegrityError:
        return False


def memberships(engine: Engine, user_id: str) -> list[str]:
    """The ids of the organisations ``user_id`` acts for."""
    with Session(engine) as session:
        rows = session.exec(select(Member).where(Member.user_id == user_id)).all()
    return [str(m.organisation_id) for m in rows]


# --- consents --------------------------------------------------------------------------------
def add_consent(engine: Engine, consent: Consent) -> Consent:
    with db.session_scope(engine) as session:
        session.add(consent)
    return consent


def consents_of(engine: Engine, resident_id: str) -> list[Consent]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(Consent)
                .where(Consent.resident_id == resident_id)
                .order_by(col(Consent.granted_at))
            ).all()
        )


def revoke(engine: Engine, resident_id: str, consent_id: uuid.UUID) -> Consent | None:
    """Revoke one of the resident's consents (at once); None when they have none by that id."""
    with db.session_scope(engine) as session:
        c = session.get(Consent, consent_id)
        if c is None or c.resident_id != resident_id:
            return None
        if c.revoked_at is None:
            c.revoked_at = now()
            session.add(c)
        session.flush()
        session.refresh(c)
        session.expunge(c)
        return c


def active_consent(
    engine: Engine,
    resident_id: str,
    purpose: str,
    recipients: list[tuple[str, str]],
) -> Consent | None:
    """The resident's consent in force for ``purpose`` to one of ``recipients``
    (``(type, id)`` pairs), or None."""
    if not recipients:
        return None
    t = now()
    with Session(engine) as session:
        rows = session.exec(
            select(Consent).where(
                Consent.resident_id == resident_id,
                Consent.purpose == purpose,
                col(Consent.revoked_at).is_(None),
            )
        ).all()
    for c in rows:
        if (c.recipient_type, c.recipient_id) in recipients and aware(c.expires_at) > t:
            return c
    return None


def consenting_residents(
    engine: Engine, recipients: list[tuple[str, str]], purposes: tuple[str, ...]
) -> dict[str, list[Consent]]:
    """Residents with a consent in force to one of ``recipients`` for one of ``purposes``."""
    out: dict[str, list[Consent]] = {}
    if not recipients:
        return out
    t = now()
    with Session(engine) as session:
        rows = session.exec(
            select(Consent).where(
                col(Consent.purpose).in_(purposes), col(Consent.revoked_at).is_(None)
            )
        ).all()
    for c in rows:
        if (c.recipient_type, c.recipient_id) in recipients and aware(c.expires_at) > t:
            out.setdefault(c.resident_id, []).append(c)
    return out


# --- audit -----------------------------------------------------------------------------------
def audit(
    engine: Engine,
    resident_id: str,
    actor_id: str,
    action: str,
    resource: str,
    consent_id: uuid.UUID | None,
) -> None:
    with db.session_scope(engine) as session:
        session.add(
            AuditEntry(
                resident_id=resident_id,
                actor_id=actor_id,
                action=action,
                resource=resource[:200],
                consent_id=consent_id,
            )
        )


def audit_of(engine: Engine, resident_id: str) -> list[AuditEntry]:
    """The resident's audit log, newest first."""
    with Session(engine) as session:
        return list(
            session.exec(
                select(AuditEntry)
                .where(AuditEntry.resident_id == resident_id)
                .order_by(col(AuditEntry.at).desc())
            ).all()
        )


# --- watch-over ------------------------------------------------------------------------------
def watchers_of(engine: Engine, resident_id: str) -> list[str]:
    """Users holding the resident's ``watch_over`` consent in force."""
    t = now()
    with Session(engine) as session:
        rows = session.exec(
            select(Consent).where(
                Consent.resident_id == resident_id,
                Consent.purpose == "watch_over",
                Consent.recipient_type == "user",
                col(Consent.revoked_at).is_(None),
            )
        ).all()
    return sorted({c.recipient_id for c in rows if aware(c.expires_at) > t})


def watch_grants(engine: Engine) -> dict[str, dict[str, dt.datetime]]:
    """Every ``watch_over`` consent in force to a user: resident -> watcher -> the earliest
    grant (UTC) among that watcher's consents in force."""
    t = now()
    with Session(engine) as session:
        rows = session.exec(
            select(Consent).where(
                Consent.purpose == "watch_over",
                Consent.recipient_type == "user",
                col(Consent.revoked_at).is_(None),
            )
        ).all()
    out: dict[str, dict[str, dt.datetime]] = {}
    for c in rows:
        if aware(c.expires_at) <= t:
            continue
        watchers = out.setdefault(c.resident_id, {})
        granted = aware(c.granted_at)
        if c.recipient_id not in watchers or granted < watchers[c.recipient_id]:
            watchers[c.recipient_id] = granted
    return out


def add_notice(engine: Engine, notice: WatchNotice) -> bool:
    """Record a notice; False when this watcher was already told of this ride's event (another
    process, or the same event seen twice)."""
    try:
        with db.session_scope(engine) as session:
            session.add(notice)
        return True
    except IntegrityError:
        return False


def notices(engine: Engine, watcher_id: str, resident_id: str) -> list[WatchNotice]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(WatchNotice)
                .where(WatchNotice.watcher_id == watcher_id, WatchNotice.resident_id == resident_id)
                .order_by(col(WatchNotice.at).desc())
            ).all()
        )


# --- erasure ---------------------------------------------------------------------------------
def delete_resident(engine: Engine, resident_id: str) -> dict[str, int]:
    """Delete everything the service holds about the resident; the rows deleted per table."""
    counts: dict[str, int] = {}
    with db.session_scope(engine) as session:
        for name, stmt in (
            ("observations", sa.delete(Observation).where(col(Observation.user_id) == resident_id)),
            ("consents", sa.delete(Consent).where(col(Consent.resident_id) == resident_id)),
            ("audit", sa.delete(AuditEntry).where(col(AuditEntry.resident_id) == resident_id)),
            (
                "watchNotices",
                sa.delete(WatchNotice).where(col(WatchNotice.resident_id) == resident_id),
            ),
        ):
            result: Any = session.execute(stmt)
            counts[name] = int(getattr(result, "rowcount", 0) or 0)
    return counts

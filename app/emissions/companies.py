"""Companies, invitations, consents, surveys and energy use: the company tables' reads and writes.

A company admin registers a company (its site is the work end of its employees' commutes)
and invites employees; a resident accepts an invitation with its code, which records their
consent to share commute data with that company only. A consent is revoked at once
(:func:`revoke_consent`): from then on nothing of theirs — trips or survey — is in any of the
company's reports, past months included. Accepting a new invitation of the same company
grants it again.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app import db
from app.emissions import commute
from app.emissions.models import Company, Consent, EnergyUse, Invitation, Survey
from app.models.identity import utcnow


class InvitationError(ValueError):
    """An invitation that cannot be accepted: ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def create_company(engine: Engine, company: Company) -> Company:
    """Write a new company."""
    with db.session_scope(engine) as session:
        session.add(company)
    return company


def get_company(engine: Engine, company_id: uuid.UUID) -> Company | None:
    """The company, or None."""
    with Session(engine) as session:
        return session.get(Company, company_id)


def companies_of_admin(engine: Engine, user_id: str | None) -> list[Company]:
    """Companies the user administers (all of them for ``None``: the platform admin)."""
    with Session(engine) as session:
        query = select(Company).order_by(col(Company.created_at))
        if user_id is not None:
            query = query.where(Company.admin_user_id == user_id)
        return list(session.exec(query).all())


def all_companies(engine: Engine) -> list[Company]:
    """Every registered company."""
    return companies_of_admin(engine, None)


def create_invitation(engine: Engine, company_id: uuid.UUID, label: str) -> Invitation:
    """A new invitation with a secret code (what the employee is sent)."""
    invitation = Invitation(company_id=company_id, code=secrets.token_urlsafe(18), label=label)
    with db.session_scope(engine) as session:
        session.add(invitation)
    return invitation


def invitations(engine: Engine, company_id: uuid.UUID) -> list[Invitation]:
    """The company's invitations, oldest first."""
    with Session(engine) as session:
        return list(
            session.exec(
                select(Invitation)
                .where(Invitation.company_id == company_id)
                .order_by(col(Invitation.created_at))
            ).all()
        )


def accept_invitation(engine: Engine, code: str, user_id: str) -> tuple[Company, Consent]:
    """The resident accepts: their consent to that company is granted (again), and their
    commute totals for it computed from every trip they recorded (past months included).

    Raises
    ------
    InvitationError
        ``not_found`` for an unknown code, ``invitation_used`` when another resident already
        accepted it.
    """
    with db.session_scope(engine) as session:
        invitation = session.exec(select(Invitation).where(Invitation.code == code)).first()
        if invitation is None:
            raise InvitationError("not_found", "No such invitation.")
        if invitation.accepted_by is not None and invitation.accepted_by != user_id:
            raise InvitationError(
                "invitation_used", "This invitation was accepted by someone else."
            )
        company = session.get(Company, invitation.company_id)
        if company is None:
            raise InvitationError("not_found", "No such invitation.")
        now = utcnow()
        invitation.accepted_by = user_id
        invitation.accepted_at = invitation.accepted_at or now
        session.add(invitation)
        consent = session.exec(
            select(Consent).where(
                Consent.company_id == invitation.company_id, Consent.user_id == user_id
            )
        ).first()
        if consent is None:
            consent = Consent(company_id=invitation.company_id, user_id=user_id, granted_at=now)
        elif consent.revoked_at is not None:
            consent.granted_at, consent.revoked_at = now, None
        session.add(consent)
        session.flush()
        commute.rebuild(session.connection(), company_id=company.id, user_id=user_id)
        session.refresh(company)
        return company, consent


def revoke_consent(engine: Engine, company_id: uuid.UUID, user_id: str) -> bool:
    """Revoke the user's consent to the company now (their commute totals for it deleted);
    False when they had none active."""
    with db.session_scope(engine) as session:
        commute.drop(session.connection(), company_id, user_id)
        result = session.execute(
            sa.update(Consent)
            .where(
                col(Consent.company_id) == company_id,
                col(Consent.user_id) == user_id,
                col(Consent.revoked_at).is_(None),
            )
            .values(revoked_at=utcnow())
        )
        return bool(getattr(result, "rowcount", 0))


def consents_of_user(engine: Engine, user_id: str) -> list[tuple[Consent, Company]]:
    """The user's consents (active and revoked) with their companies."""
    with Session(engine) as session:
        rows = session.exec(
            select(Consent, Company)
            .join(Company, col(Company.id) == col(Consent.company_id))
            .where(Consent.user_id == user_id)
            .order_by(col(Consent.granted_at))
        ).all()
        return [(c, k) for c, k in rows]


def has_consent(engine: Engine, company_id: uuid.UUID, user_id: str) -> bool:
    """Whether the user shares their commute with the company now."""
    return user_id in set(active_employees(engine, company_id))


def active_employees(engine: Engine, company_id: uuid.UUID) -> list[str]:
    """User ids of the employees who consent now, sorted."""
    with Session(engine) as session:
        rows = session.exec(
            select(Consent.user_id).where(
                Consent.company_id == company_id, col(Consent.revoked_at).is_(None)
            )
        ).all()
    return sorted(str(r) for r in rows)


def employee_counts(engine: Engine, company_id: uuid.UUID) -> dict[str, int]:
    """Consents active and revoked, for the company's view (counts only)."""
    with Session(engine) as session:
        rows = session.exec(
            select(Consent.revoked_at).where(Consent.company_id == company_id)
        ).all()
    active = sum(1 for r in rows if r is None)
    return {"consenting": active, "revoked": len(rows) - active}


# --- surveys -------------------------------------------------------------------------------------
def upsert_surveys(engine: Engine, rows: Sequence[Survey]) -> None:
    """Write survey answers, replacing those with the same (company, ref)."""
    with db.session_scope(engine) as session:
        for row in rows:
            old = session.exec(
                select(Survey).where(Survey.company_id == row.company_id, Survey.ref == row.ref)
            ).first()
            if old is not None:
                session.delete(old)
                session.flush()
            session.add(row)


def surveys(engine: Engine, company_id: uuid.UUID) -> list[Survey]:
    """The company's survey answers usable now: uploaded ones and those of employees who
    consent now (a revoked employee's own answer is left out)."""
    active = set(active_employees(engine, company_id))
    with Session(engine) as session:
        rows = session.exec(
            select(Survey).where(Survey.company_id == company_id).order_by(col(Survey.ref))
        ).all()
    return [s for s in rows if s.user_id is None or s.user_id in active]


def survey_of(engine: Engine, company_id: uuid.UUID, user_id: str) -> Survey | None:
    """The employee's own answer to the company's survey."""
    with Session(engine) as session:
        return session.exec(
            select(Survey).where(Survey.company_id == company_id, Survey.ref == f"user:{user_id}")
        ).first()


def delete_survey(engine: Engine, company_id: uuid.UUID, ref: str) -> bool:
    """Delete one survey answer; False when there is none."""
    with db.session_scope(engine) as session:
        result = session.execute(
            sa.delete(Survey).where(col(Survey.company_id) == company_id, col(Survey.ref) == ref)
        )
        return bool(getattr(result, "rowcount", 0))


# --- energy use ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnergyRow:
    """One month's use of one energy (validated by the caller)."""

    month: str
    energy: str
    supplier: str
    quantity: float
    unit: str


def upsert_energy(engine: Engine, company_id: uuid.UUID, rows: Iterable[EnergyRow]) -> int:
    """Write energy use, replacing the same (month, energy, supplier); returns the count."""
    n = 0
    with db.session_scope(engine) as session:
        for row in rows:
            session.execute(
                sa.delete(EnergyUse).where(
                    col(EnergyUse.company_id) == company_id,
                    col(EnergyUse.month) == row.month,
                    col(EnergyUse.energy) == row.energy,
                    col(EnergyUse.supplier) == row.supplier,
                )
            )
            session.add(
                EnergyUse(
                    company_id=company_id,
                    month=row.month,
                    energy=row.energy,
                    supplier=row.supplier,
                    quantity=row.quantity,
                    unit=row.unit,
                )
            )
            n += 1
    return n


def energy_use(engine: Engine, company_id: uuid.UUID, months: Sequence[str]) -> list[EnergyUse]:
    """The company's energy use in ``months``, by month then energy."""
    with Session(engine) as session:
        return list(
            session.exec(
                select(EnergyUse)
                .where(EnergyUse.company_id == company_id, col(EnergyUse.month).in_(list(months)))
                .order_by(col(EnergyUse.month), col(EnergyUse.energy), col(EnergyUse.supplier))
            ).all()
        )

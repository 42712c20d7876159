"""User accounts: creation, lookup, roles, and the admin bootstrap.

Functions take an open ``Session`` and never commit: the caller commits once per unit of work,
so a failure half-way leaves nothing written.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.db import startup_lock
from app.errors import ApiError
from app.identity.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, Passwords
from app.identity.roles import ALL_ROLES, Role
from app.models.identity import User

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
LOCALES = ("ja", "en")


def normalize_email(raw: str) -> str:
    """``raw`` trimmed and lower-cased; 422 ``invalid_email`` when it is not an address."""
    email = raw.strip().lower()
    if len(email) > 320 or not _EMAIL.match(email):
        raise ApiError(422, "invalid_email", "Not a valid email address.", {"email": raw})
    return email


def check_password_policy(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ApiError(
            422,
            "weak_password",
            f"Passwords have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters.",
        )


def check_roles(roles: Iterable[str]) -> list[str]:
    """``roles`` sorted and de-duplicated; 422 ``unknown_role`` for a name not in ``Role``."""
    unique = sorted(set(roles))
    unknown = [r for r in unique if r not in ALL_ROLES]
    if unknown:
        raise ApiError(
            422,
            "unknown_role",
            f"Unknown role(s): {', '.join(unknown)}.",
            {"allowed": sorted(ALL_ROLES)},
        )
    return unique


def find_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def create_user(
    session: Session,
    passwords: Passwords,
    *,
    email: str,
    password: str,
    display_name: str | None = None,
    locale: str = "ja",
    roles: Iterable[str] = (Role.RESIDENT.value,),
    company_id: uuid.UUID | None = None,
) -> User:
    """Add a user (flushed, not committed); 409 ``email_taken`` when the email exists."""
    normalized = normalize_email(email)
    check_password_policy(password)
    if locale not in LOCALES:
        raise ApiError(422, "invalid_locale", f"Locale must be one of {', '.join(LOCALES)}.")
    if find_by_email(session, normalized) is not None:
        raise ApiError(409, "email_taken", "An account with this email already exists.")
    user = User(
        email=normalized,
        display_name=(display_name or normalized.split("@")[0]).strip()[:200],
        locale=locale,
        roles=check_roles(roles),
        company_id=company_id,
        password_hash=passwords.hash(password),
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent sign-up with the same email won the race
        session.rollback()
        raise ApiError(409, "email_taken", "An account with this email already exists.") from exc
    return user


def ensure_admin(
    engine: Engine, passwords: Passwords, email: str, password: str, *, reset_password: bool
) -> tuple[User, bool]:
    """Make sure an admin with ``email`` exists (idempotent). Returns ``(user, created)``.

    An existing account gets the admin role; its password is replaced only when
    ``reset_password`` (the explicit CLI command), never by the start-up bootstrap.

    Safe when every worker of a cluster runs it at once on a fresh database: bootstrappers
    take turns under ``startup_lock``, so the first creates the account and the others find
    it. A sign-up of the same email by a request (which takes no lock) can still win the
    insert; then the transaction is rolled back and the account it created is promoted.
    """
    with startup_lock(engine, "admin-bootstrap"):
        try:
            return _ensure_admin_once(
                engine, passwords, email, password, reset_password=reset_password
            )
        except (ApiError, IntegrityError) as exc:
            if isinstance(exc, ApiError) and exc.code != "email_taken":
                raise
        # The account exists now (the session that lost the race was rolled back): promote it.
        user, _ = _ensure_admin_once(
            engine, passwords, email, password, reset_password=reset_password
        )
        return user, False


def _ensure_admin_once(
    engine: Engine, passwords: Passwords, email: str, password: str, *, reset_password: bool
) -> tuple[User, bool]:
    """One attempt of ``ensure_admin`` in one transaction (raises on a lost insert race)."""
    with Session(engine, expire_on_commit=False) as session:
        user = find_by_email(session, email)
        created = user is None
        if user is None:
            user = create_user(
                session,
                passwords,
                email=email,
                password=password,
                display_name="Administrator",
                roles=[Role.ADMIN.value],
            )
        else:
            user.roles = check_roles([*user.roles, Role.ADMIN.value])
            user.disabled = False
            if reset_password:
                check_password_policy(password)
                user.password_hash = passwords.hash(password)
            session.add(user)
        session.commit()
        return user, created

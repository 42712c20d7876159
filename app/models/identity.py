"""Identity tables: users, sign-in sessions with their refresh tokens, and JWT signing keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Now, timezone-aware (every timestamp in the database is UTC)."""
    return datetime.now(UTC)


def _ts(nullable: bool = False, index: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(sa.DateTime(timezone=True), nullable=nullable, index=index)


class User(SQLModel, table=True):
    """A person known to Tsunagu. ``email`` is stored lower-cased, which makes it unique
    case-insensitively on every backend."""

    __tablename__ = "users"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    display_name: str = Field(max_length=200)
    #: For a dispatcher finding a resident who books by telephone; digits (and a leading +)
    #: only, so a search matches however the number was written.
    phone: str | None = Field(default=None, max_length=32, index=True)
    locale: str = Field(default="ja", max_length=8)
    roles: list[str] = Field(
        default_factory=lambda: ["resident"], sa_column=sa.Column(sa.JSON, nullable=False)
    )
    company_id: uuid.UUID | None = Field(default=None, index=True)
    password_hash: str | None = Field(default=None, max_length=512)
    disabled: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())


class AuthSession(SQLModel, table=True):
    """One sign-in (a refresh-token family). Revoking it ends every token issued for it."""

    __tablename__ = "auth_sessions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    revoked_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))
    revoked_reason: str | None = Field(default=None, max_length=40)


class RefreshToken(SQLModel, table=True):
    """A refresh token, stored only as its SHA-256. ``used_at`` is set when it is rotated; a
    second use of the same token is a replay and revokes the whole session."""

    __tablename__ = "refresh_tokens"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    session_id: uuid.UUID = Field(foreign_key="auth_sessions.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    expires_at: datetime = Field(sa_column=_ts())
    used_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))


class SigningKey(SQLModel, table=True):
    """An RSA key that signs access tokens. Kept in the database so every app process signs and
    verifies with the same keys; retired keys stay published until their tokens have expired."""

    __tablename__ = "signing_keys"

    kid: str = Field(primary_key=True, max_length=64)
    private_pem: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    public_jwk: dict = Field(sa_column=sa.Column(sa.JSON, nullable=False))  # type: ignore[type-arg]
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts())
    retired_at: datetime | None = Field(default=None, sa_column=_ts(nullable=True))

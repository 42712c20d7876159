"""Sign-in sessions: login, refresh-token rotation with reuse detection, logout.

Each login opens an ``AuthSession`` (a refresh-token family). Refreshing marks the presented
token used and issues a new one in the same family; presenting a used token again means it was
stolen or replayed, so the whole family is revoked (OAuth 2.0 Security BCP, section 4.14).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from app.db import as_utc
from app.identity.token_cache import note_changed_user, note_revoked_session
from app.identity.tokens import LocalTokens, unauthorized
from app.models.identity import AuthSession, RefreshToken, User, utcnow


@dataclass(frozen=True)
class TokenPair:
    """What a client gets at login and refresh."""

    access_token: str
    refresh_token: str
    expires_in: int
    refresh_expires_in: int
    token_type: str = "bearer"


def hash_refresh_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class SessionManager:
    """Opens, rotates and revokes sign-in sessions. Methods take an open database session and
    commit it themselves (revocation on reuse must persist even though the call fails)."""

    def __init__(self, tokens: LocalTokens, *, refresh_ttl_s: int) -> None:
        self.tokens = tokens
        self.refresh_ttl_s = refresh_ttl_s

    def _new_refresh(self, db: Session, session_id: uuid.UUID) -> str:
        raw = secrets.token_urlsafe(32)
        db.add(
            RefreshToken(
                session_id=session_id,
                token_hash=hash_refresh_token(raw),
                expires_at=utcnow() + timedelta(seconds=self.refresh_ttl_s),
            )
        )
        return raw

    def open(self, db: Session, user: User) -> TokenPair:
        """A new session for ``user`` (added to ``db``; the caller commits)."""
        auth = AuthSession(user_id=user.id)
        db.add(auth)
        db.flush()
        refresh = self._new_refresh(db, auth.id)
        db.flush()
        return TokenPair(
            access_token=self.tokens.issue(user, auth.id),
            refresh_token=refresh,
            expires_in=self.tokens.ttl_s,
            refresh_expires_in=self.refresh_ttl_s,
        )

    def _revoke(self, db: Session, session_id: object, reason: str) -> None:
        note_revoked_session(db, session_id)  # its cached access tokens go at commit
        db.execute(
            sa.update(AuthSession)
            .where(col(AuthSession.id) == session_id, col(AuthSession.revoked_at).is_(None))
            .values(revoked_at=utcnow(), revoked_reason=reason)
        )

    def refresh(self, db: Session, raw: str) -> TokenPair:
        """Rotate ``raw``: a new pair, or 401 (``token_invalid``, ``token_expired``,
        ``token_reused``, the last revoking the session)."""
        row = db.exec(
            select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(raw))
        ).first()
        if row is None:
            raise unauthorized("token_invalid", "Unknown refresh token.")
        auth = db.get(AuthSession, row.session_id)
        if auth is None or auth.revoked_at is not None:
            raise unauthorized("token_invalid", "This session has ended; sign in again.")
        now = utcnow()
        already_used = row.used_at is not None
        # Conditional update: of two concurrent refreshes with one token, exactly one wins.
        claimed = db.execute(
            sa.update(RefreshToken)
            .where(col(RefreshToken.id) == row.id, col(RefreshToken.used_at).is_(None))
            .values(used_at=now)
        )
        if already_used or claimed.rowcount != 1:  # type: ignore[attr-defined]
            db.rollback()
            self._revoke(db, row.session_id, "refresh_token_reuse")
            db.commit()
            raise unauthorized(
                "token_reused",
                "This refresh token was already used; the session is revoked. Sign in again.",
            )
        if as_utc(row.expires_at) <= now:
            db.rollback()
            raise unauthorized("token_expired", "The refresh token has expired; sign in again.")
        user = db.get(User, auth.user_id)
        if user is None or user.disabled:
            db.rollback()
            raise unauthorized("token_invalid", "This account is disabled.")
        new_raw = self._new_refresh(db, auth.id)
        pair = TokenPair(
            access_token=self.tokens.issue(user, auth.id),
            refresh_token=new_raw,
            expires_in=self.tokens.ttl_s,
            refresh_expires_in=self.refresh_ttl_s,
        )
        db.commit()
        return pair

    def logout(self, db: Session, raw: str) -> None:
        """Revoke the session of refresh token ``raw`` (idempotent for a known token)."""
        row = db.exec(
            select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(raw))
        ).first()
        if row is None:
            raise unauthorized("token_invalid", "Unknown refresh token.")
        self._revoke(db, row.session_id, "logout")
        db.commit()

    def revoke_all(self, db: Session, user_id: object, reason: str) -> None:
        """End every session of a user (password change, disabling); the caller commits."""
        note_changed_user(db, user_id)  # their cached access tokens go at commit
        db.execute(
            sa.update(AuthSession)
            .where(col(AuthSession.user_id) == user_id, col(AuthSession.revoked_at).is_(None))
            .values(revoked_at=utcnow(), revoked_reason=reason)
        )

    def prune(self, db: Session, *, keep_revoked_s: int = 7 * 24 * 3600) -> tuple[int, int]:
        """Delete expired refresh tokens, then sessions revoked more than ``keep_revoked_s``
        ago or left without tokens. Returns ``(tokens, sessions)`` deleted; commits."""
        now = utcnow()
        tokens = db.execute(
            sa.delete(RefreshToken).where(col(RefreshToken.expires_at) < now)
        ).rowcount  # type: ignore[attr-defined]
        live = select(RefreshToken.session_id).distinct()
        sessions = db.execute(
            sa.delete(AuthSession).where(
                sa.or_(
                    col(AuthSession.revoked_at) < now - timedelta(seconds=keep_revoked_s),
                    col(AuthSession.id).not_in(live),
                )
            )
        ).rowcount  # type: ignore[attr-defined]
        db.commit()
        return int(tokens), int(sessions)

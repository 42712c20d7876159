"""RSA signing keys for access tokens, kept in the database and published as a JWKS.

Every app process reads the same ``signing_keys`` table, so tokens signed by one process verify
in all of them. The current key is the newest one not retired; ``rotate`` adds a key and retires
the others, which stay published (and keep verifying) until tokens signed with them have expired.
Processes re-read the table periodically and whenever a token names an unknown ``kid``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.db import as_utc, startup_lock
from app.models.identity import SigningKey, utcnow

ALGORITHM = "RS256"
KEY_SIZE = 2048


@dataclass(frozen=True)
class LoadedKey:
    """A signing key ready for use."""

    kid: str
    private_key: rsa.RSAPrivateKey
    public_jwk: dict[str, Any]
    created_at: datetime
    retired_at: datetime | None

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 thumbprint of an RSA JWK (used as its ``kid``)."""
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _row_for(private_key: rsa.RSAPrivateKey) -> SigningKey:
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    kid = jwk_thumbprint(jwk)
    jwk.pop("key_ops", None)  # RFC 7517 4.3: "use" and "key_ops" should not appear together
    jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return SigningKey(kid=kid, private_pem=pem, public_jwk=jwk)


def _load(row: SigningKey) -> LoadedKey:
    key = serialization.load_pem_private_key(row.private_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"signing key {row.kid} is not an RSA key")
    return LoadedKey(
        kid=row.kid,
        private_key=key,
        public_jwk=dict(row.public_jwk),
        created_at=as_utc(row.created_at),
        retired_at=as_utc(row.retired_at) if row.retired_at else None,
    )


class KeyStore:
    """The signing keys of this deployment (thread-safe).

    Parameters
    ----------
    engine
        The database holding ``signing_keys``.
    publish_retired_s
        How long a retired key stays published (at least the access-token lifetime).
    reload_interval_s
        How often the table is re-read to pick up keys rotated by another process.
    """

    def __init__(
        self, engine: Engine, *, publish_retired_s: int, reload_interval_s: float = 30.0
    ) -> None:
        self._engine = engine
        self._publish_retired_s = publish_retired_s
        self._reload_interval_s = reload_interval_s
        self._lock = threading.Lock()
        self._keys: dict[str, LoadedKey] = {}
        self._current: LoadedKey | None = None
        self._loaded_at = 0.0

    @classmethod
    def open(
        cls, engine: Engine, *, access_token_ttl_s: int, import_pem: Path | None = None
    ) -> KeyStore:
        """Load the keys, creating the first one (or importing ``import_pem``) when needed.

        Every worker of a cluster opens the store at start: the check-then-create runs under
        ``startup_lock``, so workers starting together on a fresh database agree on one key
        (without it each would make its own, or the importers of one PEM would collide on
        its ``kid``).
        """
        store = cls(engine, publish_retired_s=access_token_ttl_s + 3600)
        with startup_lock(engine, "signing-keys"):
            if import_pem is not None and import_pem.exists():
                store.import_pem(import_pem.read_bytes())
            store.reload()
            if store._current is None:
                store.rotate()
        return store

    # --- reading ----------------------------------------------------------------------------
    def reload(self) -> None:
        """Re-read the table (keys retired too long ago are no longer published)."""
        horizon = utcnow() - timedelta(seconds=self._publish_retired_s)
        with Session(self._engine) as session:
            rows = session.exec(select(SigningKey).order_by(col(SigningKey.created_at))).all()
        keys = [_load(r) for r in rows]
        published = {k.kid: k for k in keys if k.retired_at is None or k.retired_at > horizon}
        active = [k for k in keys if k.retired_at is None]
        with self._lock:
            self._keys = published
            self._current = active[-1] if active else None
            self._loaded_at = time.monotonic()

    def _reload_if_stale(self, max_age_s: float) -> None:
        if time.monotonic() - self._loaded_at > max_age_s:
            self.reload()

    def current(self) -> LoadedKey:
        """The key to sign new tokens with."""
        self._reload_if_stale(self._reload_interval_s)
        if self._current is None:
            self.rotate()
        assert self._current is not None
        return self._current

    def public_key(self, kid: str) -> rsa.RSAPublicKey | None:
        """The published public key named ``kid``, or None."""
        key = self._keys.get(kid)
        if key is None:
            # Perhaps another process rotated; re-read, but at most once a second.
            self._reload_if_stale(1.0)
            key = self._keys.get(kid)
        return key.public_key if key else None

    def refresh_if_stale(self) -> None:
        """Re-read the table when the last read is older than the reload interval (a token
        verified in full calls it, so rotations by other processes reach the cache)."""
        self._reload_if_stale(self._reload_interval_s)

    def published(self, kid: str) -> bool | None:
        """Whether ``kid`` is published, as last read; None when that read is older than the
        reload interval (the caller re-reads through :meth:`public_key`). Never reads the
        database itself: the token cache asks it on the event loop."""
        if time.monotonic() - self._loaded_at > self._reload_interval_s:
            return None
        return kid in self._keys

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set of every published key (public parts only)."""
        self._reload_if_stale(self._reload_interval_s)
        with self._lock:
            keys = sorted(self._keys.values(), key=lambda k: k.created_at, reverse=True)
        return {"keys": [k.public_jwk for k in keys]}

    # --- writing ----------------------------------------------------------------------------
    def rotate(self) -> LoadedKey:
        """Create a new current key and retire the others (they stay published a while)."""
        row = _row_for(rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE))
        kid = row.kid
        self._make_current(row)
        return self._keys[kid]

    def import_pem(self, pem: bytes) -> str:
        """Make an existing PEM RSA private key the current key (no-op if already stored)."""
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("jwt_private_key_path must hold an RSA private key")
        row = _row_for(key)
        kid = row.kid
        with Session(self._engine) as session:
            if session.get(SigningKey, kid) is not None:
                return kid
        self._make_current(row)
        return kid

    def _make_current(self, row: SigningKey) -> None:
        now = utcnow()
        with Session(self._engine, expire_on_commit=False) as session:
            for old in session.exec(
                select(SigningKey).where(col(SigningKey.retired_at).is_(None))
            ).all():
                old.retired_at = now
                session.add(old)
            session.add(row)
            session.commit()
        self.reload()

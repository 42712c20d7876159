"""Access tokens: issuing built-in RS256 JWTs and verifying them (or an external OIDC issuer's).

A verifier turns a bearer token into a ``Principal`` or raises ``ApiError(401, ...)`` with code
``token_expired`` or ``token_invalid`` (tampered, unknown key, wrong issuer or audience, revoked
session).
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any, Protocol

import jwt
from sqlalchemy import select
from sqlalchemy.engine import Engine

from app.errors import ApiError
from app.identity.keys import ALGORITHM, KeyStore
from app.identity.principal import Principal
from app.identity.token_cache import TokenCache
from app.models.identity import AuthSession, User, utcnow

_CHALLENGE = 'Bearer error="invalid_token"'
# Asymmetric algorithms accepted from an external issuer; never "none" or HMAC.
OIDC_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]
LEEWAY_S = 30


def unauthorized(code: str, message: str) -> ApiError:
    """A 401 in the error shape with the ``WWW-Authenticate: Bearer`` challenge."""
    challenge = "Bearer" if code == "token_missing" else _CHALLENGE
    return ApiError(401, code, message, headers={"WWW-Authenticate": challenge})


class TokenVerifier(Protocol):
    """Anything that turns a bearer token into a Principal."""

    def verify(self, token: str) -> Principal: ...


def _decode_errors(exc: Exception) -> ApiError:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return unauthorized("token_expired", "The access token has expired; refresh it.")
    if isinstance(exc, jwt.InvalidAudienceError):
        return unauthorized("token_invalid", "The access token is for another audience.")
    if isinstance(exc, jwt.InvalidIssuerError):
        return unauthorized("token_invalid", "The access token is from another issuer.")
    return unauthorized("token_invalid", "The access token is invalid.")


class LocalTokens:
    """Tsunagu's own access tokens, signed with the keys in the database."""

    def __init__(
        self,
        keys: KeyStore,
        engine: Engine,
        *,
        issuer: str,
        audience: str,
        ttl_s: int,
        cache: TokenCache | None = None,
    ) -> None:
        self.keys = keys
        self._engine = engine
        self.issuer = issuer
        self.audience = audience
        self.ttl_s = ttl_s
        #: Verified tokens (issue #10); None: every request is checked in the database.
        self.cache = cache

    def issue(self, user: User, session_id: uuid.UUID) -> str:
        """A signed access token for ``user`` within sign-in session ``session_id``."""
        key = self.keys.current()
        now = utcnow()
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user.id),
            "iat": now,
            "nbf": now,
            "exp": now + timedelta(seconds=self.ttl_s),
            "jti": uuid.uuid4().hex,
            "sid": str(session_id),
            "email": user.email,
            "roles": sorted(user.roles),
        }
        return jwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})

    def decode(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token`` (signature, kid, iss, aud, exp)."""
        return self._decode(token)[0]

    def _decode(self, token: str) -> tuple[dict[str, Any], str]:
        """:meth:`decode`, and the ``kid`` of the key that verified the token."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise unauthorized("token_invalid", "The access token is malformed.") from exc
        kid = header.get("kid")
        public = self.keys.public_key(kid) if isinstance(kid, str) else None
        if public is None or not isinstance(kid, str):
            raise unauthorized("token_invalid", "The access token is signed by an unknown key.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                public,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "sub", "iss", "aud", "sid"]},
            )
        except jwt.InvalidTokenError as exc:
            raise _decode_errors(exc) from exc
        return claims, kid

    def cached(self, token: str) -> Principal | None:
        """The principal of ``token`` if it was verified lately and nothing revoked it since
        (:class:`~app.identity.token_cache.TokenCache`), else None: no I/O, so the event
        loop may call it before handing a miss to :meth:`verify` in a worker thread."""
        if self.cache is None:
            return None
        return self.cache.get(token, self._published)

    def _published(self, kid: str) -> bool | None:
        return self.keys.published(kid)

    def verify(self, token: str) -> Principal:
        hit = self.cached(token)
        if hit is not None:
            return hit
        cache = self.cache
        generation = cache.generation if cache is not None else 0
        checked = time.monotonic()
        principal, claims = self._verify(token)
        if cache is not None:
            cache.put(
                token,
                principal,
                session_id=str(claims["sid"]),
                kid=str(claims["kid"]),
                exp=float(claims["exp"]),
                generation=generation,
                checked=checked,
            )
        return principal

    def _verify(self, token: str) -> tuple[Principal, dict[str, Any]]:
        """Signature, claims, and the session and account in the database."""
        self.keys.refresh_if_stale()
        claims, kid = self._decode(token)
        try:
            sid = uuid.UUID(str(claims["sid"]))
            uid = uuid.UUID(str(claims["sub"]))
        except ValueError as exc:
            raise unauthorized("token_invalid", "The access token is invalid.") from exc
        # One primary-key lookup: makes logout and disabling a user take effect at once. A
        # single statement with plain columns, no ORM objects: every authenticated request
        # runs it (#10).
        stmt = (
            select(  # type: ignore[call-overload]
                AuthSession.user_id, AuthSession.revoked_at, User.id, User.disabled, User.roles
            )
            .select_from(AuthSession)
            .outerjoin(User, User.id == uid)
            .where(AuthSession.id == sid)
        )
        with self._engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None or row[0] != uid or row[1] is not None:
            raise unauthorized("token_invalid", "The session of this token has ended.")
        if row[2] is None or row[3]:
            raise unauthorized("token_invalid", "The account of this token is disabled.")
        principal = Principal(user_id=str(uid), email=claims.get("email"), roles=frozenset(row[4]))
        return principal, {**claims, "kid": kid}


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """The value at a dotted claim path (``realm_access.roles`` for Keycloak), or None."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


class OidcTokens:
    """Tokens of an external OpenID Connect issuer, checked against its JWKS (cached)."""

    def __init__(
        self, *, issuer: str, jwks_url: str, audience: str, roles_claim: str = "roles"
    ) -> None:
        # Issuers are compared without a trailing slash: operators paste ".../realms/x/" while
        # Keycloak signs ".../realms/x" (and Auth0 the other way round).
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.roles_claim = roles_claim
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=10)

    def verify(self, token: str) -> Principal:
        try:
            signing_key = self._jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise ApiError(
                503, "identity_provider_unavailable", "The identity provider cannot be reached."
            ) from exc
        except (jwt.PyJWKClientError, jwt.InvalidTokenError) as exc:
            raise unauthorized(
                "token_invalid", "The access token is not signed by a key of the issuer."
            ) from exc
        try:
            claims = jwt.decode(
                token,
                signing_key.key,
                algorithms=OIDC_ALGORITHMS,
                audience=self.audience,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.InvalidTokenError as exc:
            raise _decode_errors(exc) from exc
        iss = claims["iss"]
        if not isinstance(iss, str) or iss.rstrip("/") != self.issuer:
            raise _decode_errors(jwt.InvalidIssuerError("Invalid issuer"))
        raw_roles = claim_at(claims, self.roles_claim)
        roles = (
            frozenset(r for r in raw_roles if isinstance(r, str))
            if isinstance(raw_roles, list)
            else frozenset()
        )
        email = claims.get("email")
        return Principal(
            user_id=str(claims["sub"]),
            email=email if isinstance(email, str) else None,
            roles=roles,
        )

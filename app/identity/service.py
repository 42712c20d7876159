"""The identity service: everything identity needs at run time, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from app.identity.keys import KeyStore
from app.identity.passwords import Passwords
from app.identity.rate_limit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from app.identity.sessions import SessionManager
from app.identity.token_cache import TokenCache
from app.identity.tokens import LocalTokens, OidcTokens, TokenVerifier
from app.settings import Settings


def discover_jwks_url(issuer: str) -> str:
    """``jwks_uri`` from the issuer's OpenID discovery document (when not configured).

    The document must name ``issuer`` as its ``issuer`` (OpenID Connect Discovery 1.0, 4.3;
    a trailing slash aside): one naming another issuer is refused, its keys never trusted.
    """
    import httpx

    url = f"{issuer}/.well-known/openid-configuration"
    try:
        response = httpx.get(url, timeout=10)
        response.raise_for_status()
        document = response.json()
        stated, jwks_uri = document["issuer"], document["jwks_uri"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(
            f"cannot discover the JWKS of {issuer} ({exc!r}); set TSUNAGU_OIDC_JWKS_URL"
        ) from exc
    if not isinstance(stated, str) or stated.rstrip("/") != issuer.rstrip("/"):
        raise RuntimeError(
            f"the OpenID discovery document at {url} names issuer {stated!r}, not {issuer!r}: "
            "refused (check TSUNAGU_OIDC_ISSUER)"
        )
    return str(jwks_uri)


@dataclass
class Identity:
    """Passwords, signing keys, sessions, the token verifier and the login rate limiter.

    ``verifier`` checks the built-in tokens, or only the external issuer's when
    ``settings.oidc_issuer`` is set (then local sign-up and login are disabled).
    """

    passwords: Passwords
    keys: KeyStore
    tokens: LocalTokens
    sessions: SessionManager
    verifier: TokenVerifier
    rate_limiter: RateLimiter
    external: bool

    @property
    def token_cache(self) -> TokenCache | None:
        """The verified built-in tokens (None with an external issuer: nothing to revoke)."""
        return None if self.external else self.tokens.cache

    @classmethod
    def build(cls, settings: Settings, engine: Engine) -> Identity:
        """Blocking (key creation, Redis client): call it from a worker thread when async."""
        keys = KeyStore.open(
            engine,
            access_token_ttl_s=settings.access_token_ttl_s,
            import_pem=settings.jwt_private_key_path,
        )
        tokens = LocalTokens(
            keys,
            engine,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_s=settings.access_token_ttl_s,
            cache=TokenCache(),
        )
        verifier: TokenVerifier = tokens
        if settings.oidc_issuer:
            issuer = settings.oidc_issuer.rstrip("/")
            verifier = OidcTokens(
                issuer=settings.oidc_issuer,
                jwks_url=settings.oidc_jwks_url or discover_jwks_url(issuer),
                audience=settings.oidc_audience or settings.jwt_audience,
                roles_claim=settings.oidc_roles_claim,
            )
        limiter: RateLimiter = (
            RedisRateLimiter(
                settings.redis_url,
                settings.login_rate_limit_per_minute,
                prefix=settings.redis_prefix,
            )
            if settings.redis_url
            else MemoryRateLimiter(settings.login_rate_limit_per_minute)
        )
        return cls(
            passwords=Passwords(fast=settings.environment == "test"),
            keys=keys,
            tokens=tokens,
            sessions=SessionManager(tokens, refresh_ttl_s=settings.refresh_token_ttl_s),
            verifier=verifier,
            rate_limiter=limiter,
            external=bool(settings.oidc_issuer),
        )

    def close(self) -> None:
        self.rate_limiter.close()

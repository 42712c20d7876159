"""Sign-up, login, token refresh and logout; the JWKS and OpenID discovery documents."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas import PUBLIC, OpenModel, error_responses
from app.db import SessionDep, as_utc
from app.errors import ApiError
from app.identity import accounts
from app.identity.deps import CurrentPrincipal
from app.identity.passwords import MAX_PASSWORD_LENGTH
from app.identity.rate_limit import login_key
from app.identity.sessions import TokenPair
from app.identity.tokens import unauthorized
from app.models.identity import User
from app.models.request_model import RequestModel
from app.services import Services, ServicesDep

#: Local sign-in answers 404 local_auth_disabled behind an external identity provider.
router = APIRouter(prefix="/auth", tags=["auth"], responses=PUBLIC | error_responses(404, 413))
well_known_router = APIRouter(tags=["auth"], responses=error_responses(503))

Locale = Annotated[str, Field(pattern="^(ja|en)$")]


class SignupIn(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "email": "hanako@example.org",
                "password": "correct horse battery",
                "display_name": "Hanako",
                "locale": "ja",
            }
        }
    )

    email: str = Field(max_length=320)
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)
    display_name: str | None = Field(default=None, max_length=200)
    locale: Locale = "ja"


class LoginIn(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {"email": "hanako@example.org", "password": "correct horse battery"}
        }
    )

    email: str = Field(max_length=320)
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)


class RefreshIn(RequestModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class PasswordChangeIn(RequestModel):
    current_password: str = Field(max_length=MAX_PASSWORD_LENGTH)
    new_password: str = Field(max_length=MAX_PASSWORD_LENGTH)


class TokensOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_expires_in: int

    @classmethod
    def of(cls, pair: TokenPair) -> TokensOut:
        return cls(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            token_type=pair.token_type,
            expires_in=pair.expires_in,
            refresh_expires_in=pair.refresh_expires_in,
        )


class UserOut(BaseModel):
    """A user as the API shows it (never the password hash)."""

    id: str
    email: str | None
    display_name: str
    locale: str
    roles: list[str]
    company_id: str | None = None
    disabled: bool = False
    created_at: str | None = None
    phone: str | None = None

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=str(user.id),
            email=user.email,
            display_name=user.display_name,
            locale=user.locale,
            roles=sorted(user.roles),
            company_id=str(user.company_id) if user.company_id else None,
            disabled=user.disabled,
            created_at=as_utc(user.created_at).isoformat() if user.created_at else None,
            phone=user.phone,
        )


class Jwks(OpenModel):
    """A JSON Web Key Set (RFC 7517): the public RSA keys, newest first."""

    keys: list[dict[str, Any]]


class OpenIdConfiguration(OpenModel):
    issuer: str
    jwks_uri: str
    token_endpoint: str
    id_token_signing_alg_values_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    subject_types_supported: list[str]
    response_types_supported: list[str]
    grant_types_supported: list[str]
    claims_supported: list[str]


class SignupOut(BaseModel):
    user: UserOut
    tokens: TokensOut


def _local_only(services: Services) -> None:
    if services.identity.external:
        raise ApiError(
            404,
            "local_auth_disabled",
            "Sign-in is handled by the external identity provider "
            f"{services.settings.oidc_issuer}.",
        )


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/signup", status_code=status.HTTP_201_CREATED, responses=error_responses(409))
def signup(body: SignupIn, services: ServicesDep, db: SessionDep) -> SignupOut:
    """Create a resident account and sign it in (one transaction: all or nothing)."""
    _local_only(services)
    identity = services.identity
    user = accounts.create_user(
        db,
        identity.passwords,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        locale=body.locale,
    )
    pair = identity.sessions.open(db, user)
    db.commit()
    return SignupOut(user=UserOut.of(user), tokens=TokensOut.of(pair))


@router.post("/login", responses=error_responses(401, 403, 429))
def login(body: LoginIn, request: Request, services: ServicesDep, db: SessionDep) -> TokensOut:
    """Exchange email and password for an access token and a refresh token."""
    _local_only(services)
    identity = services.identity
    decision = identity.rate_limiter.hit(login_key(body.email, _client_ip(request)))
    if not decision.allowed:
        raise ApiError(
            429,
            "too_many_attempts",
            "Too many login attempts; try again later.",
            {"retry_after_s": decision.retry_after_s},
            headers={"Retry-After": str(decision.retry_after_s)},
        )
    user = accounts.find_by_email(db, body.email)
    ok = identity.passwords.verify(user.password_hash if user else None, body.password)
    if user is None or not ok:
        raise unauthorized("invalid_credentials", "Wrong email or password.")
    if user.disabled:
        raise ApiError(403, "account_disabled", "This account is disabled.")
    if user.password_hash and identity.passwords.needs_rehash(user.password_hash):
        user.password_hash = identity.passwords.hash(body.password)
        db.add(user)
    pair = identity.sessions.open(db, user)
    db.commit()
    return TokensOut.of(pair)


@router.post("/refresh", responses=error_responses(401))
def refresh(body: RefreshIn, services: ServicesDep, db: SessionDep) -> TokensOut:
    """Rotate a refresh token: a new pair; reusing an old refresh token ends the session."""
    _local_only(services)
    return TokensOut.of(services.identity.sessions.refresh(db, body.refresh_token))


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(401))
def logout(body: RefreshIn, services: ServicesDep, db: SessionDep) -> Response:
    """End the session of this refresh token: its access and refresh tokens stop working."""
    _local_only(services)
    services.identity.sessions.logout(db, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/password", responses=error_responses(401, 403))
def change_password(
    body: PasswordChangeIn, principal: CurrentPrincipal, services: ServicesDep, db: SessionDep
) -> TokensOut:
    """Change one's password: every other session ends; a fresh pair is returned."""
    _local_only(services)
    identity = services.identity
    user = db.get(User, uuid.UUID(principal.user_id))
    if user is None or not identity.passwords.verify(user.password_hash, body.current_password):
        raise unauthorized("invalid_credentials", "The current password is wrong.")
    accounts.check_password_policy(body.new_password)
    user.password_hash = identity.passwords.hash(body.new_password)
    db.add(user)
    identity.sessions.revoke_all(db, user.id, "password_changed")
    pair = identity.sessions.open(db, user)
    db.commit()
    return TokensOut.of(pair)


def _jwks(services: Services, response: Response) -> dict[str, Any]:
    # Verifiers may cache briefly; rotation keeps old keys published longer than this.
    response.headers["Cache-Control"] = "public, max-age=300"
    return services.keys.jwks()


@router.get("/jwks", response_model=Jwks)
def jwks(services: ServicesDep, response: Response) -> dict[str, Any]:
    """The public keys that verify Tsunagu's access tokens (JWKS)."""
    return _jwks(services, response)


@well_known_router.get("/.well-known/jwks.json", response_model=Jwks)
def well_known_jwks(services: ServicesDep, response: Response) -> dict[str, Any]:
    """The public keys that verify Tsunagu's access tokens (JWKS)."""
    return _jwks(services, response)


@well_known_router.get("/.well-known/openid-configuration", response_model=OpenIdConfiguration)
def openid_configuration(request: Request, services: ServicesDep) -> dict[str, Any]:
    """Minimal OpenID discovery: issuer, JWKS location, token endpoint, algorithms."""
    base = str(request.base_url).rstrip("/")
    return {
        "issuer": services.settings.jwt_issuer,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "token_endpoint": f"{base}/api/v1/auth/login",
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "subject_types_supported": ["public"],
        "response_types_supported": ["token"],
        "grant_types_supported": ["password", "refresh_token"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "email", "roles", "sid"],
    }


__all__ = ["UserOut", "router", "well_known_router"]

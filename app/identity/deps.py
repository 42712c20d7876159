"""FastAPI dependencies for authentication and authorisation — the contract other routers use.

    from app.identity.deps import CurrentPrincipal, require_roles

    @router.get("/things")
    def list_things(principal: CurrentPrincipal) -> ...: ...          # any signed-in user

    @router.post("/vehicles", dependencies=[Depends(require_roles("operator"))])
    def add_vehicle(...) -> ...: ...                                   # operator (or admin)

    @router.get("/stream")
    async def stream(request: Request, token: str) -> ...:
        principal = principal_from_token(token, request)              # SSE / WebSocket

Failures answer in the error shape: 401 ``token_missing`` / ``token_expired`` /
``token_invalid`` with ``WWW-Authenticate: Bearer``; 403 ``forbidden`` ("requires role X").
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from app.errors import ApiError
from app.identity.principal import Principal
from app.identity.tokens import unauthorized

__all__ = [
    "CurrentPrincipal",
    "OptionalPrincipal",
    "Principal",
    "get_optional_principal",
    "get_principal",
    "principal_from_token",
    "require_roles",
]

_bearer = HTTPBearer(auto_error=False, description="An access token from /api/v1/auth/login.")


def _verifier(request: Request) -> Any:
    services = getattr(request.app.state, "services", None)
    if services is None:
        raise ApiError(503, "unavailable", "The service is starting.")
    return services.verifier


def principal_from_token(token: str, request: Request) -> Principal:
    """The principal of a raw access token (for SSE / WebSocket query parameters).

    Raises ``ApiError(401, "token_missing" | "token_expired" | "token_invalid")``.
    """
    if not token or not token.strip():
        raise unauthorized("token_missing", "An access token is required.")
    return _verifier(request).verify(token.strip())  # type: ignore[no-any-return]


async def get_optional_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    """The caller, or None when no token was sent (a bad token is still a 401)."""
    if credentials is None:
        if request.headers.get("authorization"):
            raise unauthorized("token_invalid", "Use 'Authorization: Bearer <token>'.")
        return None
    verifier = _verifier(request)
    token = credentials.credentials
    # A token verified lately and not revoked since is answered here, without a thread (#10).
    cached = getattr(verifier, "cached", None)
    hit = cached(token) if cached is not None else None
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    # Verification may read the database (session revocation): keep it off the event loop.
    return await run_in_threadpool(verifier.verify, token)  # type: ignore[no-any-return]


async def get_principal(
    principal: Annotated[Principal | None, Depends(get_optional_principal)],
) -> Principal:
    """The signed-in caller (401 ``token_missing`` without ``Authorization: Bearer``)."""
    if principal is None:
        raise unauthorized("token_missing", "An access token is required (Authorization: Bearer).")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(get_optional_principal)]


def require_roles(*roles: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency admitting callers holding any of ``roles`` (admin always passes);
    others get 403 ``forbidden``. It returns the Principal, so it can also be a parameter::

        def handler(p: Annotated[Principal, Depends(require_roles("dispatcher"))]): ...
    """
    if not roles:
        raise ValueError("require_roles needs at least one role")
    needed = " or ".join(roles)

    async def _check(principal: CurrentPrincipal) -> Principal:
        if not principal.has_any(*roles):
            raise ApiError(
                403, "forbidden", f"requires role {needed}", {"required_roles": list(roles)}
            )
        return principal

    return _check

"""The identity contract other routers use: CurrentPrincipal, require_roles,
principal_from_token — and refresh rotation under concurrency."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.errors import ApiError
from app.identity.deps import CurrentPrincipal, Principal, principal_from_token, require_roles
from app.models.identity import User
from tests.app.conftest import TestUser, assert_error, both_backends, services_of


def _mount_probe_routes(client: TestClient) -> None:
    router = APIRouter(prefix="/api/v1/probe")

    @router.get("/who")
    def who(principal: CurrentPrincipal) -> dict[str, object]:
        return {"user_id": principal.user_id, "roles": sorted(principal.roles)}

    @router.get("/dispatch", dependencies=[Depends(require_roles("dispatcher", "operator"))])
    def dispatch_only() -> dict[str, str]:
        return {"ok": "yes"}

    @router.get("/health-staff")
    def health_only(
        principal: Annotated[Principal, Depends(require_roles("health_staff"))],
    ) -> dict[str, str]:
        return {"user_id": principal.user_id}

    @router.get("/stream")
    def stream(request: Request, token: str = "") -> dict[str, str]:
        return {"user_id": principal_from_token(token, request).user_id}

    app = client.app
    app.include_router(router)  # type: ignore[attr-defined]
    # The SPA catch-all must stay last so it does not shadow the probe routes.
    routes = app.router.routes  # type: ignore[attr-defined]
    catch_all = [r for r in routes if getattr(r, "path", "") == "/{path:path}"]
    for r in catch_all:
        routes.remove(r)
        routes.append(r)


def test_require_roles_and_admin_passes(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Callable[..., dict[str, str]]
) -> None:
    _mount_probe_routes(app_client)
    resident = make_user()
    dispatcher = make_user(roles=["dispatcher"])
    admin = make_user(roles=["admin"])
    r = app_client.get("/api/v1/probe/dispatch", headers=auth(resident))
    err = assert_error(r, 403, "forbidden")
    assert err["message"] == "requires role dispatcher or operator"
    assert app_client.get("/api/v1/probe/dispatch", headers=auth(dispatcher)).status_code == 200
    assert app_client.get("/api/v1/probe/dispatch", headers=auth(admin)).status_code == 200
    assert_error(app_client.get("/api/v1/probe/health-staff", headers=auth(dispatcher)), 403)
    ok = app_client.get("/api/v1/probe/health-staff", headers=auth(admin))
    assert ok.json() == {"user_id": admin.id}
    assert_error(app_client.get("/api/v1/probe/dispatch"), 401, "token_missing")
    who = app_client.get("/api/v1/probe/who", headers=auth(dispatcher)).json()
    assert who == {"user_id": dispatcher.id, "roles": ["dispatcher"]}


def test_principal_from_query_token(
    app_client: TestClient, make_user: Callable[..., TestUser], token_for: Callable[..., str]
) -> None:
    _mount_probe_routes(app_client)
    user = make_user()
    r = app_client.get("/api/v1/probe/stream", params={"token": token_for(user)})
    assert r.json() == {"user_id": user.id}
    assert_error(app_client.get("/api/v1/probe/stream"), 401, "token_missing")
    assert_error(
        app_client.get("/api/v1/probe/stream", params={"token": "garbage"}), 401, "token_invalid"
    )


def test_principal_has_any() -> None:
    p = Principal(user_id="u", email=None, roles=frozenset({"dispatcher"}))
    assert p.has_any("dispatcher", "operator") and not p.has_any("health_staff")
    root = Principal(user_id="r", email=None, roles=frozenset({"admin"}))
    assert root.has_any("health_staff") and root.is_admin
    try:
        require_roles()
    except ValueError:
        pass
    else:  # pragma: no cover
        raise AssertionError("require_roles() without roles must be refused")


@both_backends
def test_concurrent_refresh_with_one_token_has_one_winner(
    app_client: TestClient, make_user: Callable[..., TestUser]
) -> None:
    services = services_of(app_client)
    user = make_user()
    with Session(services.engine, expire_on_commit=False) as db:
        row = db.get(User, uuid.UUID(user.id))
        assert row is not None
        pair = services.identity.sessions.open(db, row)
        db.commit()
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def attempt() -> None:
        with Session(services.engine, expire_on_commit=False) as db:
            barrier.wait()
            try:
                services.identity.sessions.refresh(db, pair.refresh_token)
                outcomes.append("ok")
            except ApiError as exc:
                outcomes.append(exc.code)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1, outcomes
    assert set(outcomes) - {"ok"} <= {"token_reused", "token_invalid"}

"""Bad input to every identity write endpoint answers 4xx in the error shape and leaves the
database exactly as it was — on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.models.identity import AuthSession, RefreshToken, User
from tests.app.conftest import TestUser, assert_error, both_backends, services_of

pytestmark = both_backends

JSON = {"content-type": "application/json"}
Auth = Callable[..., dict[str, str]]


def _snapshot(client: TestClient) -> dict[str, Any]:
    """Every identity row that a write endpoint could touch."""
    with Session(services_of(client).engine) as db:
        users = sorted(
            (str(u.id), u.email, u.display_name, u.locale, tuple(u.roles), u.disabled,
             str(u.company_id), u.password_hash)
            for u in db.exec(select(User)).all()
        )  # fmt: skip
        sessions = sorted(
            (str(s.id), s.revoked_at is not None) for s in db.exec(select(AuthSession)).all()
        )
        tokens = db.exec(select(sa.func.count()).select_from(RefreshToken)).one()
    return {"users": users, "sessions": sessions, "refresh_tokens": tokens}


def _bad_bodies(valid: dict[str, Any], field: str, wrong: Any) -> list[tuple[bytes, int, str]]:
    """(raw body, status, code): malformed, truncated, not an object, an unknown field beside
    valid ones, a wrong type beside valid ones, and an oversized body."""
    import json

    good = json.dumps(valid).encode()
    return [
        (b"{not json", 400, "malformed_json"),
        (good[:-1], 400, "malformed_json"),
        (b"[1, 2]", 422, "validation_error"),
        (b'"text"', 422, "validation_error"),
        (json.dumps({**valid, "is_admin": True}).encode(), 422, "validation_error"),
        (json.dumps({**valid, field: wrong}).encode(), 422, "validation_error"),
        (json.dumps({**valid, "padding": "x" * 5_000}).encode(), 413, "payload_too_large"),
    ]


@pytest.fixture
def client(make_app_client: Callable[..., TestClient]) -> TestClient:
    return make_app_client(max_body_bytes=4_000)


def test_bad_signups_write_nothing(client: TestClient) -> None:
    before = _snapshot(client)
    valid = {"email": "new@example.org", "password": "password-123", "display_name": "New"}
    for body, status, code in _bad_bodies(valid, "display_name", {"a": 1}):
        r = client.post("/api/v1/auth/signup", content=body, headers=JSON)
        assert_error(r, status, code)
        assert _snapshot(client) == before, body[:60]
    # Not JSON at all: a form post is refused without creating anything.
    r = client.post("/api/v1/auth/signup", data={"email": "x@example.org", "password": "p" * 10})
    assert_error(r, 422, "validation_error")
    assert _snapshot(client) == before
    # The same body, valid, does create the user (the checks above could have failed).
    assert client.post("/api/v1/auth/signup", json=valid).status_code == 201
    assert len(_snapshot(client)["users"]) == len(before["users"]) + 1


def test_bad_profile_updates_change_nothing(
    client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    user = make_user(client=client)
    headers = {**auth(user, client), **JSON}
    before = _snapshot(client)
    valid = {"display_name": "Changed", "locale": "en"}
    for body, status, code in _bad_bodies(valid, "locale", "xx-not-a-locale"):
        assert_error(client.patch("/api/v1/users/me", content=body, headers=headers), status, code)
        assert _snapshot(client) == before, body[:60]
    assert client.patch("/api/v1/users/me", json=valid, headers=headers).status_code == 200
    assert _snapshot(client) != before


def test_bad_admin_updates_change_nothing(
    client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    admin, bob = make_user(roles=["admin"], client=client), make_user(client=client)
    headers = {**auth(admin, client), **JSON}
    before = _snapshot(client)
    for body, status, code in _bad_bodies({"roles": ["dispatcher"]}, "roles", "dispatcher"):
        r = client.patch(f"/api/v1/users/{bob.id}/roles", content=body, headers=headers)
        assert_error(r, status, code)
        assert _snapshot(client) == before, body[:60]
    for roles in (["dispatcher", "wizard"], []):
        r = client.patch(f"/api/v1/users/{bob.id}/roles", json={"roles": roles}, headers=headers)
        assert_error(r, 422)
        assert _snapshot(client) == before, roles
    # Valid fields first, then a refusal (the last admin cannot be disabled): the company
    # change made before the refusal is rolled back with it.
    company = str(uuid.uuid4())
    r = client.patch(
        f"/api/v1/users/{admin.id}", json={"company_id": company, "disabled": True}, headers=headers
    )
    assert_error(r, 409, "last_admin")
    assert _snapshot(client) == before
    r = client.patch(f"/api/v1/users/{bob.id}", json={"company_id": "not-a-uuid"}, headers=headers)
    assert_error(r, 422, "validation_error")
    assert _snapshot(client) == before
    r = client.patch(
        f"/api/v1/users/{bob.id}/roles", json={"roles": ["dispatcher"]}, headers=headers
    )
    assert r.status_code == 200 and _snapshot(client) != before

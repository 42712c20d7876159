"""Users API: own profile, reading others (self or admin), role management — both backends."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.app.conftest import TestUser, assert_error, both_backends

pytestmark = both_backends

Auth = Callable[..., dict[str, str]]


def test_resident_cannot_read_another_resident(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    alice, bob = make_user(), make_user()
    own = app_client.get(f"/api/v1/users/{alice.id}", headers=auth(alice))
    assert own.status_code == 200 and own.json()["email"] == alice.email
    r = app_client.get(f"/api/v1/users/{bob.id}", headers=auth(alice))
    assert_error(r, 403, "forbidden")
    assert bob.email not in r.text
    # A nonexistent id is also 403 for a resident: existence is not leaked.
    assert_error(app_client.get(f"/api/v1/users/{uuid.uuid4()}", headers=auth(alice)), 403)
    assert_error(app_client.get("/api/v1/users/not-a-uuid", headers=auth(alice)), 422)


def test_admin_reads_anyone(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    admin, bob = make_user(roles=["admin"]), make_user()
    r = app_client.get(f"/api/v1/users/{bob.id}", headers=auth(admin))
    assert r.status_code == 200 and r.json()["id"] == bob.id
    missing = app_client.get(f"/api/v1/users/{uuid.uuid4()}", headers=auth(admin))
    assert_error(missing, 404, "user_not_found")
    listing = app_client.get("/api/v1/users", params={"role": "admin"}, headers=auth(admin))
    assert listing.status_code == 200
    assert admin.id in [u["id"] for u in listing.json()["items"]]
    assert bob.id not in [u["id"] for u in listing.json()["items"]]
    assert_error(app_client.get("/api/v1/users", headers=auth(bob)), 403, "forbidden")


def test_admin_sets_roles_and_next_token_carries_them(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    admin, carol = make_user(roles=["admin"]), make_user()
    path = f"/api/v1/users/{carol.id}/roles"
    r = app_client.patch(path, json={"roles": ["dispatcher", "resident"]}, headers=auth(admin))
    assert r.status_code == 200, r.text
    assert r.json()["roles"] == ["dispatcher", "resident"]
    login = app_client.post(
        "/api/v1/auth/login", json={"email": carol.email, "password": carol.password}
    )
    me = app_client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    assert me.json()["roles"] == ["dispatcher", "resident"]

    assert_error(
        app_client.patch(path, json={"roles": ["pilot"]}, headers=auth(admin)), 422, "unknown_role"
    )
    assert_error(app_client.patch(path, json={"roles": []}, headers=auth(admin)), 422)
    # Only admins manage roles; a dispatcher cannot promote themself.
    assert_error(
        app_client.patch(path, json={"roles": ["admin"]}, headers=auth(carol)), 403, "forbidden"
    )
    missing = f"/api/v1/users/{uuid.uuid4()}/roles"
    assert_error(app_client.patch(missing, json={"roles": ["resident"]}, headers=auth(admin)), 404)


def test_last_admin_cannot_be_demoted(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    admin = make_user(roles=["admin"])
    # Other tests on the shared PostgreSQL database leave admins behind: demote them first.
    listing = app_client.get(
        "/api/v1/users", params={"role": "admin", "limit": 500}, headers=auth(admin)
    ).json()["items"]
    for other in listing:
        if other["id"] != admin.id:
            r = app_client.patch(
                f"/api/v1/users/{other['id']}/roles",
                json={"roles": ["resident"]},
                headers=auth(admin),
            )
            assert r.status_code == 200
    r = app_client.patch(
        f"/api/v1/users/{admin.id}/roles", json={"roles": ["resident"]}, headers=auth(admin)
    )
    assert_error(r, 409, "last_admin")


def test_update_own_profile(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    user = make_user()
    r = app_client.patch(
        "/api/v1/users/me", json={"display_name": "Taro", "locale": "en"}, headers=auth(user)
    )
    assert (
        r.status_code == 200 and r.json()["locale"] == "en" and r.json()["display_name"] == "Taro"
    )
    assert_error(
        app_client.patch("/api/v1/users/me", json={"locale": "de"}, headers=auth(user)), 422
    )
    assert_error(
        app_client.patch("/api/v1/users/me", json={"roles": ["admin"]}, headers=auth(user)),
        422,
        "validation_error",
    )


def test_disabling_a_user_ends_their_sessions(
    app_client: TestClient, make_user: Callable[..., TestUser], auth: Auth
) -> None:
    admin, dave = make_user(roles=["admin"]), make_user()
    company = str(uuid.uuid4())
    headers = auth(dave)
    assert app_client.get("/api/v1/users/me", headers=headers).status_code == 200
    r = app_client.patch(
        f"/api/v1/users/{dave.id}",
        json={"disabled": True, "company_id": company},
        headers=auth(admin),
    )
    assert r.status_code == 200 and r.json()["disabled"] and r.json()["company_id"] == company
    assert_error(app_client.get("/api/v1/users/me", headers=headers), 401, "token_invalid")

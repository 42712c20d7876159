"""Sign-up, login, tokens, refresh rotation, logout, rate limiting — on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from tests.app.conftest import TestUser, assert_error, both_backends, services_of

pytestmark = both_backends

ME = "/api/v1/users/me"


def login(client: TestClient, email: str, password: str) -> dict:  # type: ignore[type-arg]
    r = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_signup_login_me(app_client: TestClient) -> None:
    email = f"Hanako.{uuid.uuid4().hex[:6]}@Example.JP"
    r = app_client.post(
        "/api/v1/auth/signup",
        json={"email": email, "password": "muroran-2026", "display_name": "花子", "locale": "ja"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["user"]["email"] == email.lower()
    assert body["user"]["roles"] == ["resident"]
    assert "password" not in json.dumps(body["user"])
    tokens = login(app_client, email.upper(), "muroran-2026")  # email is case-insensitive
    me = app_client.get(ME, headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == body["user"]["id"]
    assert me.json()["display_name"] == "花子"
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["sub"] == body["user"]["id"] and claims["roles"] == ["resident"]
    assert {"iss", "aud", "exp", "iat", "kid"} <= set(claims) | set(
        jwt.get_unverified_header(tokens["access_token"])
    )


def test_signup_is_always_resident_and_email_unique(app_client: TestClient) -> None:
    email = f"dup-{uuid.uuid4().hex[:6]}@example.org"
    r = app_client.post(
        "/api/v1/auth/signup", json={"email": email, "password": "password-1", "roles": ["admin"]}
    )
    assert_error(r, 422, "validation_error")  # roles is not a sign-up field
    assert (
        app_client.post(
            "/api/v1/auth/signup", json={"email": email, "password": "password-1"}
        ).status_code
        == 201
    )
    again = app_client.post(
        "/api/v1/auth/signup", json={"email": email.upper(), "password": "password-2"}
    )
    assert_error(again, 409, "email_taken")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"email": "not-an-email", "password": "password-1"}, "invalid_email"),
        ({"email": "a@b.org", "password": "short"}, "weak_password"),
        ({"email": "a@b.org", "password": "password-1", "locale": "fr"}, "validation_error"),
        ({"email": "a@b.org"}, "validation_error"),
    ],
)
def test_signup_bad_input(app_client: TestClient, body: dict, code: str) -> None:  # type: ignore[type-arg]
    assert_error(app_client.post("/api/v1/auth/signup", json=body), 422, code)


def test_wrong_password_and_unknown_email_are_401(
    app_client: TestClient, make_user: Callable[..., TestUser]
) -> None:
    user = make_user()
    for email, password in [(user.email, "wrong-password"), ("nobody@example.org", "x" * 10)]:
        r = app_client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert_error(r, 401, "invalid_credentials")


def test_missing_token_is_401_with_challenge(app_client: TestClient) -> None:
    r = app_client.get(ME)
    assert_error(r, 401, "token_missing")
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert_error(app_client.get(ME, headers={"Authorization": "Basic abc"}), 401, "token_invalid")
    assert_error(app_client.get(ME, headers=bearer("not.a.jwt")), 401, "token_invalid")


def _claims(user: TestUser, sid: str, **over: object) -> dict:  # type: ignore[type-arg]
    now = datetime.now(UTC)
    base = {
        "iss": "tsunagu",
        "aud": "tsunagu",
        "sub": user.id,
        "sid": sid,
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "roles": list(user.roles),
    }
    base.update(over)
    return base


def test_expired_tampered_and_foreign_tokens_are_401(
    app_client: TestClient, make_user: Callable[..., TestUser], token_for: Callable[..., str]
) -> None:
    user = make_user()
    good = token_for(user)
    assert app_client.get(ME, headers=bearer(good)).status_code == 200
    sid = jwt.decode(good, options={"verify_signature": False})["sid"]
    key = services_of(app_client).keys.current()
    old = datetime.now(UTC) - timedelta(hours=1)
    expired = jwt.encode(
        _claims(user, sid, iat=old, exp=old + timedelta(minutes=15)),
        key.private_key,
        algorithm="RS256",
        headers={"kid": key.kid},
    )
    r = app_client.get(ME, headers=bearer(expired))
    assert_error(r, 401, "token_expired")
    assert "invalid_token" in r.headers["www-authenticate"]

    # Tampered: claim admin in the payload, keep the signature.
    head, payload, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["admin"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert_error(app_client.get(ME, headers=bearer(f"{head}.{forged}.{sig}")), 401, "token_invalid")

    # Signed by another key, even one claiming the real kid.
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for kid in (key.kid, "someone-else"):
        foreign = jwt.encode(_claims(user, sid), other, algorithm="RS256", headers={"kid": kid})
        assert_error(app_client.get(ME, headers=bearer(foreign)), 401, "token_invalid")

    # Right key, wrong audience / issuer; and the "none" algorithm.
    for over in ({"aud": "someone-else"}, {"iss": "evil"}):
        bad = jwt.encode(
            _claims(user, sid, **over), key.private_key, algorithm="RS256", headers={"kid": key.kid}
        )
        assert_error(app_client.get(ME, headers=bearer(bad)), 401, "token_invalid")
    unsigned = jwt.encode(_claims(user, sid, roles=["admin"]), "", algorithm="none")
    assert_error(app_client.get(ME, headers=bearer(unsigned)), 401, "token_invalid")


def test_refresh_rotation_and_reuse_detection(
    app_client: TestClient, make_user: Callable[..., TestUser]
) -> None:
    user = make_user()
    first = login(app_client, user.email, user.password)
    r = app_client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert app_client.get(ME, headers=bearer(second["access_token"])).status_code == 200

    # Replaying the rotated token: reuse detected, the whole family is revoked.
    replay = app_client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_error(replay, 401, "token_reused")
    after = app_client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert_error(after, 401, "token_invalid")
    assert_error(app_client.get(ME, headers=bearer(second["access_token"])), 401, "token_invalid")

    # Another login is a separate family and still works.
    third = login(app_client, user.email, user.password)
    assert app_client.get(ME, headers=bearer(third["access_token"])).status_code == 200
    unknown = app_client.post("/api/v1/auth/refresh", json={"refresh_token": "nope"})
    assert_error(unknown, 401, "token_invalid")


def test_expired_refresh_token(
    app_client: TestClient,
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
) -> None:
    short = make_app_client(refresh_token_ttl_s=1)
    user = make_user(client=short)
    tokens = login(short, user.email, user.password)
    time.sleep(1.2)
    r = short.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_error(r, 401, "token_expired")


def test_logout_revokes_access_and_refresh(
    app_client: TestClient, make_user: Callable[..., TestUser]
) -> None:
    user = make_user()
    tokens = login(app_client, user.email, user.password)
    other = login(app_client, user.email, user.password)  # a second device
    r = app_client.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 204
    assert_error(app_client.get(ME, headers=bearer(tokens["access_token"])), 401, "token_invalid")
    refresh = app_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert_error(refresh, 401, "token_invalid")
    assert app_client.get(ME, headers=bearer(other["access_token"])).status_code == 200
    assert_error(
        app_client.post("/api/v1/auth/logout", json={"refresh_token": "unknown"}),
        401,
        "token_invalid",
    )


def test_login_rate_limit(
    make_app_client: Callable[..., TestClient], make_user: Callable[..., TestUser]
) -> None:
    client = make_app_client(login_rate_limit_per_minute=3)
    user = make_user(client=client)
    for _ in range(3):
        r = client.post("/api/v1/auth/login", json={"email": user.email, "password": "wrong-pw-1"})
        assert r.status_code == 401
    r = client.post("/api/v1/auth/login", json={"email": user.email, "password": user.password})
    err = assert_error(r, 429, "too_many_attempts")
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert err["details"]["retry_after_s"] == int(r.headers["retry-after"])
    # Another email from the same client is counted separately.
    other = make_user(client=client)
    assert (
        client.post(
            "/api/v1/auth/login", json={"email": other.email, "password": other.password}
        ).status_code
        == 200
    )


@pytest.mark.redis
def test_login_rate_limit_shared_through_redis(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    redis_url: str,
    redis_prefix: str,
) -> None:
    one = make_app_client(
        login_rate_limit_per_minute=3, redis_url=redis_url, redis_prefix=redis_prefix
    )
    two = make_app_client(
        login_rate_limit_per_minute=3, redis_url=redis_url, redis_prefix=redis_prefix
    )
    user = make_user(client=one)
    attempt = {"email": user.email, "password": user.password}
    assert one.post("/api/v1/auth/login", json=attempt).status_code == 200
    assert two.post("/api/v1/auth/login", json=attempt).status_code == 200
    assert one.post("/api/v1/auth/login", json=attempt).status_code == 200
    r = two.post("/api/v1/auth/login", json=attempt)  # the 4th attempt, on the other instance
    assert_error(r, 429, "too_many_attempts")
    assert int(r.headers["retry-after"]) >= 1


def test_disabled_user_cannot_log_in(
    app_client: TestClient, make_user: Callable[..., TestUser]
) -> None:
    user = make_user()
    services = services_of(app_client)
    from sqlmodel import Session

    from app.models.identity import User

    with Session(services.engine) as db:
        row = db.get(User, uuid.UUID(user.id))
        assert row is not None
        row.disabled = True
        db.add(row)
        db.commit()
    r = app_client.post("/api/v1/auth/login", json={"email": user.email, "password": user.password})
    assert_error(r, 403, "account_disabled")


def test_change_password_ends_other_sessions(
    app_client: TestClient, make_user: Callable[..., TestUser]
) -> None:
    user = make_user()
    laptop = login(app_client, user.email, user.password)
    phone = login(app_client, user.email, user.password)
    path = "/api/v1/auth/password"
    wrong = {"current_password": "not-it-at-all", "new_password": "brand-new-pass"}
    assert_error(
        app_client.post(path, json=wrong, headers=bearer(laptop["access_token"])),
        401,
        "invalid_credentials",
    )
    weak = {"current_password": user.password, "new_password": "short"}
    assert_error(
        app_client.post(path, json=weak, headers=bearer(laptop["access_token"])),
        422,
        "weak_password",
    )
    good = {"current_password": user.password, "new_password": "brand-new-pass"}
    r = app_client.post(path, json=good, headers=bearer(laptop["access_token"]))
    assert r.status_code == 200, r.text
    assert app_client.get(ME, headers=bearer(r.json()["access_token"])).status_code == 200
    assert_error(app_client.get(ME, headers=bearer(phone["access_token"])), 401, "token_invalid")
    assert_error(app_client.get(ME, headers=bearer(laptop["access_token"])), 401, "token_invalid")
    assert_error(app_client.post(path, json=good), 401, "token_missing")
    old = app_client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": user.password}
    )
    assert_error(old, 401, "invalid_credentials")
    assert login(app_client, user.email, "brand-new-pass")["access_token"]


def test_jwks_may_be_cached_briefly(app_client: TestClient) -> None:
    r = app_client.get("/.well-known/jwks.json")
    assert r.headers["cache-control"] == "public, max-age=300"

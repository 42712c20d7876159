"""The cache of verified access tokens (issue #10): a verified token is answered without a
database look-up, and every way a token stops being good still stops it at once: logout,
refresh-token reuse, password change, disabling, a role change (admin route or any ORM change),
key rotation, expiry; another process is told on the event bus, and re-checks in any case
within ``recheck_s``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import jwt
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlmodel import Session

from app.identity.principal import Principal
from app.identity.token_cache import TokenCache
from app.identity.tokens import LocalTokens
from app.models.identity import AuthSession, SigningKey, User
from tests.app.conftest import TestUser, assert_error, both_backends, services_of

ME = "/api/v1/users/me"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client: TestClient, user: TestUser) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"email": user.email, "password": user.password})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def local_tokens(client: TestClient) -> LocalTokens:
    tokens = services_of(client).identity.tokens
    assert tokens.cache is not None
    return tokens


@contextmanager
def statements(client: TestClient) -> Iterator[list[str]]:
    """The SQL statements the app's engine runs meanwhile."""
    engine = services_of(client).engine
    seen: list[str] = []

    def note(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        seen.append(sql)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def session_lookups(seen: list[str]) -> int:
    return sum("auth_sessions" in s for s in seen)


@both_backends
def test_a_verified_token_is_answered_without_a_lookup(
    app_client: TestClient, make_user: Callable[..., TestUser], token_for: Callable[..., str]
) -> None:
    token = token_for(make_user())
    tokens = local_tokens(app_client)
    first = tokens.verify(token)
    with statements(app_client) as seen:
        again = tokens.verify(token)
        assert tokens.cached(token) == first
    assert again == first
    assert session_lookups(seen) == 0  # before the cache: one look-up per request
    # Through the API too (the principal comes from the cache, on the event loop).
    with statements(app_client) as seen:
        assert app_client.get(ME, headers=bearer(token)).status_code == 200
    assert session_lookups(seen) == 0


@both_backends
def test_logout_reuse_and_password_change_end_cached_tokens(
    app_client: TestClient, make_user: Callable[..., TestUser]
) -> None:
    user = make_user()
    a, b, c = login(app_client, user), login(app_client, user), login(app_client, user)
    for t in (a, b, c):  # cached now
        assert app_client.get(ME, headers=bearer(t["access_token"])).status_code == 200
    # Logout ends that session's tokens, not the others'.
    r = app_client.post("/api/v1/auth/logout", json={"refresh_token": a["refresh_token"]})
    assert r.status_code == 204
    assert_error(app_client.get(ME, headers=bearer(a["access_token"])), 401, "token_invalid")
    assert app_client.get(ME, headers=bearer(b["access_token"])).status_code == 200
    # Reusing a rotated refresh token revokes its session.
    path = "/api/v1/auth/refresh"
    assert app_client.post(path, json={"refresh_token": b["refresh_token"]}).status_code == 200
    assert_error(app_client.post(path, json={"refresh_token": b["refresh_token"]}), 401)
    assert_error(app_client.get(ME, headers=bearer(b["access_token"])), 401, "token_invalid")
    # A password change ends every other session.
    d = login(app_client, user)
    assert app_client.get(ME, headers=bearer(d["access_token"])).status_code == 200
    change = {"current_password": user.password, "new_password": "another-good-password"}
    r = app_client.post("/api/v1/auth/password", json=change, headers=bearer(d["access_token"]))
    assert r.status_code == 200, r.text
    assert_error(app_client.get(ME, headers=bearer(c["access_token"])), 401, "token_invalid")
    assert_error(app_client.get(ME, headers=bearer(d["access_token"])), 401, "token_invalid")


@both_backends
def test_disabling_and_role_changes_reach_cached_tokens(
    app_client: TestClient, make_user: Callable[..., TestUser], token_for: Callable[..., str]
) -> None:
    admin = token_for(make_user(roles=("admin",)))
    user = make_user()
    token = token_for(user)
    audit = "/api/v1/dispatcher/audit"
    assert_error(app_client.get(audit, headers=bearer(token)), 403, "forbidden")  # cached
    r = app_client.patch(
        f"/api/v1/users/{user.id}/roles",
        json={"roles": ["resident", "dispatcher"]},
        headers=bearer(admin),
    )
    assert r.status_code == 200, r.text
    assert app_client.get(audit, headers=bearer(token)).status_code == 200
    # Any ORM change of the account, not only the API's (here: the role taken back directly).
    with Session(services_of(app_client).engine) as db:
        row = db.get(User, uuid.UUID(user.id))
        assert row is not None
        row.roles = ["resident"]
        db.add(row)
        db.commit()
    assert_error(app_client.get(audit, headers=bearer(token)), 403, "forbidden")
    r = app_client.patch(f"/api/v1/users/{user.id}", json={"disabled": True}, headers=bearer(admin))
    assert r.status_code == 200, r.text
    assert_error(app_client.get(ME, headers=bearer(token)), 401, "token_invalid")


@both_backends
def test_key_rotation_and_expiry(
    app_client: TestClient, make_user: Callable[..., TestUser], token_for: Callable[..., str]
) -> None:
    tokens = local_tokens(app_client)
    keys = services_of(app_client).keys
    token = token_for(make_user())
    assert app_client.get(ME, headers=bearer(token)).status_code == 200
    kid = jwt.get_unverified_header(token)["kid"]
    # Rotated: the old key is retired but still published, its tokens verify until they expire.
    keys.rotate()
    assert tokens.cached(token) is not None
    assert app_client.get(ME, headers=bearer(token)).status_code == 200
    # The key no longer published (retired long ago, or removed): its cached tokens stop.
    with Session(services_of(app_client).engine) as db:
        db.execute(sa.delete(SigningKey).where(SigningKey.kid == kid))  # type: ignore[arg-type]
        db.commit()
    keys.reload()
    assert tokens.cached(token) is None
    assert_error(app_client.get(ME, headers=bearer(token)), 401, "token_invalid")
    # Expiry: an entry is not answered past the token's exp.
    other = token_for(make_user())
    assert tokens.cache is not None
    p = tokens.verify(other)
    sid = jwt.decode(other, options={"verify_signature": False})["sid"]
    cache = tokens.cache
    cache.put(
        other,
        p,
        session_id=sid,
        kid=keys.current().kid,
        exp=time.time() - 1,
        generation=cache.generation,
        checked=time.monotonic(),
    )
    assert tokens.cached(other) is None


@both_backends
def test_a_revocation_missed_is_rechecked(
    app_client: TestClient, make_user: Callable[..., TestUser], token_for: Callable[..., str]
) -> None:
    """A revocation this process was not told of (another process's, its bus message lost; here
    written straight to the table) takes effect once the entry is ``recheck_s`` old."""
    tokens = local_tokens(app_client)
    assert tokens.cache is not None
    token = token_for(make_user())
    assert app_client.get(ME, headers=bearer(token)).status_code == 200
    sid = uuid.UUID(jwt.decode(token, options={"verify_signature": False})["sid"])
    with services_of(app_client).engine.begin() as conn:
        conn.execute(
            sa.update(AuthSession)
            .where(AuthSession.id == sid)  # type: ignore[arg-type]
            .values(revoked_at=sa.func.now())
        )
    assert app_client.get(ME, headers=bearer(token)).status_code == 200  # not told: cached
    tokens.cache.recheck_s = 0.0
    assert_error(app_client.get(ME, headers=bearer(token)), 401, "token_invalid")


def test_a_check_racing_a_revocation_is_not_kept() -> None:
    cache = TokenCache(max_entries=2)
    p = Principal(user_id="u1", email=None, roles=frozenset({"resident"}))
    gen = cache.generation
    cache.forget(sessions=["s1"])  # a revocation committed while the check ran
    args = {"session_id": "s1", "kid": "k", "exp": time.time() + 60, "checked": time.monotonic()}
    cache.put("t1", p, generation=gen, **args)  # type: ignore[arg-type]
    assert cache.get("t1", lambda kid: True) is None
    cache.put("t1", p, generation=cache.generation, **args)  # type: ignore[arg-type]
    assert cache.get("t1", lambda kid: True) == p
    assert cache.get("t1", lambda kid: None) is None  # the key store stale: verify in full
    # Bounded: the least recently used goes first.
    for t in ("a", "b", "c"):
        cache.put(t, p, generation=cache.generation, **args)  # type: ignore[arg-type]
    assert len(cache) == 2 and cache.get("a", lambda kid: True) is None
    cache.forget(users=["u1"])
    assert len(cache) == 0


@pytest.mark.redis
def test_other_processes_forget_a_revoked_session_through_the_bus(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    token_for: Callable[..., str],
    redis_url: str,
    redis_prefix: str,
) -> None:
    one = make_app_client(redis_url=redis_url, redis_prefix=redis_prefix)
    two = make_app_client(redis_url=redis_url, redis_prefix=redis_prefix)
    token = token_for(make_user(client=one), client=one)
    assert two.get(ME, headers=bearer(token)).status_code == 200
    cache_two = local_tokens(two).cache
    assert cache_two is not None and local_tokens(two).cached(token) is not None
    sid = jwt.decode(token, options={"verify_signature": False})["sid"]
    # What process one publishes when it revokes (the other caches of this test process
    # would otherwise be told directly, not through Redis).
    cache_one = local_tokens(one).cache
    assert cache_one is not None
    cache_one.announce([sid], [])
    deadline = time.monotonic() + 5
    while local_tokens(two).cached(token) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert local_tokens(two).cached(token) is None

"""Several app processes starting at once on one fresh database (issue #2, scale-out).

``tsunagu serve --workers N`` starts N processes that each migrate, create the first signing
key and bootstrap the admin. Threads stand in for the processes here: each builds its own app
(own engine, own pool) on the same fresh database, released together by a barrier.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from app import db
from app.errors import ApiError
from app.identity import accounts
from app.identity.passwords import Passwords
from app.identity.roles import Role
from app.main import create_app
from app.models.identity import SigningKey, User
from tests.app.conftest import DEFAULT_PASSWORD, both_backends, settings_for

ADMIN_EMAIL = "root@example.org"
WORKERS = 3


def _start_together(count: int, make: Any) -> tuple[list[TestClient], list[BaseException]]:
    """Enter ``count`` app clients built by ``make(i)`` at the same moment, one per thread."""
    barrier = threading.Barrier(count)
    clients: list[TestClient] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        client = TestClient(create_app(make(i)))
        barrier.wait()
        try:
            client.__enter__()
        except BaseException as exc:  # collected and asserted by the caller
            with lock:
                errors.append(exc)
            return
        with lock:
            clients.append(client)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a start-up hung"
    return clients, errors


@both_backends
@pytest.mark.parametrize("key_source", ["generated", "imported"])
def test_workers_starting_together_share_one_admin_and_one_key(
    empty_database_url: str, tmp_path: Path, signing_key_pem: Path, key_source: str
) -> None:
    pem = signing_key_pem if key_source == "imported" else None
    clients, errors = _start_together(
        WORKERS,
        lambda i: settings_for(
            tmp_path / f"worker{i}",
            empty_database_url,
            admin_email=ADMIN_EMAIL,
            admin_password=DEFAULT_PASSWORD,
            jwt_private_key_path=pem,
        ),
    )
    try:
        assert errors == [], errors
        assert len(clients) == WORKERS
        engine = db.create_db_engine(empty_database_url)
        try:
            assert db.current_revision(engine) == db.head_revision()
            with Session(engine) as s:
                admins = s.exec(select(User).where(User.email == ADMIN_EMAIL)).all()
                keys = s.exec(select(SigningKey)).all()
        finally:
            engine.dispose()
        assert len(admins) == 1 and Role.ADMIN.value in admins[0].roles
        assert len(keys) == 1 and keys[0].retired_at is None
        # Every worker signs with that key and publishes the same set, so a token from one
        # verifies in all; and the admin can log in through any of them.
        jwks = [c.get("/.well-known/jwks.json").json() for c in clients]
        assert all(j == jwks[0] for j in jwks) and [k["kid"] for k in jwks[0]["keys"]] == [
            keys[0].kid
        ]
        body = {"email": ADMIN_EMAIL, "password": DEFAULT_PASSWORD}
        for c in clients:
            assert c.post("/api/v1/auth/login", json=body).status_code == 200
    finally:
        for c in clients:
            c.__exit__(None, None, None)


@both_backends
def test_concurrent_admin_bootstraps_create_one_admin(empty_database_url: str) -> None:
    """``ensure_admin`` alone, many callers at once: one creates, the others promote/find."""
    engine = db.create_db_engine(empty_database_url)
    db.upgrade_database(engine)
    passwords = Passwords(fast=True)
    barrier = threading.Barrier(4)
    results: list[tuple[User, bool]] = []
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            results.append(
                accounts.ensure_admin(
                    engine, passwords, ADMIN_EMAIL, DEFAULT_PASSWORD, reset_password=False
                )
            )
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert sorted(created for _, created in results) == [False, False, False, True]
        assert len({u.id for u, _ in results}) == 1
    finally:
        engine.dispose()


@both_backends
def test_bootstrap_losing_the_insert_to_a_signup_promotes_that_account(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sign-up (which takes no start-up lock) inserts the admin's email between the
    bootstrap's look-up and its insert: the bootstrap rolls back, re-reads, promotes."""
    engine = db.create_db_engine(empty_database_url)
    db.upgrade_database(engine)
    passwords = Passwords(fast=True)
    real_find = accounts.find_by_email
    raced: list[bool] = []

    def find_then_signup(session: Session, email: str) -> User | None:
        found = real_find(session, email)
        if found is None and not raced:
            raced.append(True)
            with Session(engine) as other:  # the concurrent sign-up, committed first
                accounts.create_user(other, passwords, email=email, password="signup-pass-1")
                other.commit()
        return found

    monkeypatch.setattr(accounts, "find_by_email", find_then_signup)
    try:
        user, created = accounts.ensure_admin(
            engine, passwords, ADMIN_EMAIL, DEFAULT_PASSWORD, reset_password=False
        )
        assert raced == [True] and created is False
        with Session(engine) as s:
            rows = s.exec(select(User).where(col(User.email) == ADMIN_EMAIL)).all()
        assert len(rows) == 1 and rows[0].id == user.id
        assert sorted(rows[0].roles) == sorted([Role.ADMIN.value, Role.RESIDENT.value])
        # Not reset_password: the sign-up's own password stays.
        assert passwords.verify(rows[0].password_hash, "signup-pass-1")
    finally:
        engine.dispose()


def test_other_errors_of_the_bootstrap_are_not_swallowed(tmp_path: Path) -> None:
    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'x.db'}")
    db.upgrade_database(engine)
    try:
        with pytest.raises(ApiError) as err:
            accounts.ensure_admin(
                engine, Passwords(fast=True), "not-an-email", DEFAULT_PASSWORD, reset_password=False
            )
        assert err.value.code == "invalid_email"
    finally:
        engine.dispose()


@both_backends
def test_startup_lock_excludes_other_holders(empty_database_url: str) -> None:
    """While one engine holds the lock, another engine's ``startup_lock`` waits for it."""
    engines = [db.create_db_engine(empty_database_url) for _ in range(2)]
    order: list[str] = []
    held = threading.Event()

    def second() -> None:
        held.wait()
        with db.startup_lock(engines[1], "t"):
            order.append("second")

    t = threading.Thread(target=second)
    t.start()
    try:
        with db.startup_lock(engines[0], "t"):
            held.set()
            t.join(timeout=0.5)
            assert t.is_alive(), "the second holder did not wait"
            order.append("first")
        t.join(timeout=30)
        assert order == ["first", "second"]
        with engines[0].connect() as conn:  # released: usable again at once
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        held.set()
        t.join()
        for e in engines:
            e.dispose()

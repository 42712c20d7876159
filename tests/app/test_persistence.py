"""Migrations, engine settings, transactional writes — on SQLite and the real PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app import db
from app.models import metadata
from app.models.identity import AuthSession, User
from tests.app.conftest import assert_error, both_backends

IDENTITY_TABLES = {"users", "auth_sessions", "refresh_tokens", "signing_keys"}


@both_backends
def test_migrations_apply_on_empty_db_and_are_idempotent(empty_database_url: str) -> None:
    engine = db.create_db_engine(empty_database_url)
    try:
        assert db.current_revision(engine) is None
        db.upgrade_database(engine)
        assert db.current_revision(engine) == db.head_revision()
        assert set(sa.inspect(engine).get_table_names()) >= IDENTITY_TABLES
        db.upgrade_database(engine)  # again: nothing to do, no error
        assert db.current_revision(engine) == db.head_revision()
        from alembic import command

        command.downgrade(db.alembic_config(engine), "base")
        assert not IDENTITY_TABLES & set(sa.inspect(engine).get_table_names())
        db.upgrade_database(engine)
        assert set(sa.inspect(engine).get_table_names()) >= IDENTITY_TABLES
    finally:
        engine.dispose()


@both_backends
def test_models_match_migrations(empty_database_url: str) -> None:
    """Every table in app.models has a migration (else: alembic revision --autogenerate)."""
    engine = db.create_db_engine(empty_database_url)
    try:
        db.upgrade_database(engine)
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, metadata)
        assert diff == [], f"models and migrations differ: {diff}"
    finally:
        engine.dispose()


@both_backends
def test_concurrent_upgrades_do_not_collide(empty_database_url: str) -> None:
    """Several processes starting at once on one database all come up."""
    engines = [db.create_db_engine(empty_database_url) for _ in range(3)]
    errors: list[BaseException] = []

    def run(engine: sa.Engine) -> None:
        try:
            db.upgrade_database(engine)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert db.current_revision(engines[0]) == db.head_revision()
    finally:
        for e in engines:
            e.dispose()


def test_sqlite_runs_wal_with_foreign_keys(tmp_path: Path) -> None:
    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()


@both_backends
def test_foreign_keys_are_enforced(app_client: TestClient) -> None:
    engine = app_client.app.state.services.engine  # type: ignore[attr-defined]
    with Session(engine) as s, pytest.raises(sa.exc.IntegrityError):
        s.add(AuthSession(user_id=uuid.uuid4()))
        s.commit()


@both_backends
def test_failed_signup_leaves_nothing_half_written(
    make_app_client: Callable[..., TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user row is flushed, then opening the session fails: the user must not exist."""
    client = make_app_client(raise_server_exceptions=False)
    services = client.app.state.services  # type: ignore[attr-defined]
    email = f"half-{uuid.uuid4().hex[:8]}@example.org"
    real_open = services.identity.sessions.open

    def failing_open(session: Session, user: User) -> None:
        assert session.exec(select(User).where(User.email == email)).first() is not None
        raise RuntimeError("disk full")

    monkeypatch.setattr(services.identity.sessions, "open", failing_open)
    body = {"email": email, "password": "password-123"}
    assert_error(client.post("/api/v1/auth/signup", json=body), 500, "internal_error")
    with Session(services.engine) as s:
        assert s.exec(select(User).where(User.email == email)).first() is None
        assert s.exec(select(sa.func.count()).select_from(AuthSession)).one() >= 0

    monkeypatch.setattr(services.identity.sessions, "open", real_open)
    assert client.post("/api/v1/auth/signup", json=body).status_code == 201


@both_backends
def test_migrate_on_start_applies_schema(app_client: TestClient, app_settings: object) -> None:
    engine = app_client.app.state.services.engine  # type: ignore[attr-defined]
    assert db.current_revision(engine) == db.head_revision()


def test_postgres_urls_get_the_psycopg_driver(tmp_path: Path) -> None:
    from tests.app.conftest import settings_for

    s = settings_for(tmp_path, "postgres://u@h/db")
    assert s.effective_database_url == "postgresql+psycopg://u@h/db"
    assert settings_for(tmp_path).effective_database_url.endswith("tsunagu.db")

"""The ``tsunagu`` command: db upgrade/current, create-admin, keys rotate/list, serve parsing."""

from __future__ import annotations

import io
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session, col, select

from app import cli, db
from app.models.identity import AuthSession
from app.settings import Settings
from tests.app.conftest import REPO_ROOT_FOR_TESTS, TestUser, both_backends, services_of


@both_backends
def test_db_upgrade_and_current(
    app_settings: Settings, capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    if backend == "sqlite":  # on SQLite the database is brand new: `current` reports it empty
        assert cli.main(["db", "current"], settings=app_settings) == 1
    assert cli.main(["db", "upgrade"], settings=app_settings) == 0
    assert f"revision {db.head_revision()}" in capsys.readouterr().out
    assert cli.main(["db", "current"], settings=app_settings) == 0


@both_backends
def test_create_admin_then_login(
    app_settings: Settings,
    make_app_client: Callable[..., TestClient],
    capsys: pytest.CaptureFixture[str],
) -> None:
    email = f"Chief-{uuid.uuid4().hex[:6]}@Example.org"
    argv = ["create-admin", "--email", email, "--password", "first-password"]
    assert cli.main(argv, settings=app_settings) == 0
    assert "created admin" in capsys.readouterr().out
    client = make_app_client()
    r = client.post("/api/v1/auth/login", json={"email": email, "password": "first-password"})
    assert r.status_code == 200, r.text
    me = client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
    )
    assert me.json()["roles"] == ["admin"]

    # Again: idempotent, and the explicit command resets the password.
    argv[-1] = "second-password"
    assert cli.main(argv, settings=app_settings) == 0
    assert "updated admin" in capsys.readouterr().out
    r = client.post("/api/v1/auth/login", json={"email": email, "password": "second-password"})
    assert r.status_code == 200


def test_create_admin_bad_input(app_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli.main(
            ["create-admin", "--email", "nope", "--password", "long-enough"], settings=app_settings
        )
        == 2
    )
    assert "Not a valid email" in capsys.readouterr().err
    assert (
        cli.main(
            ["create-admin", "--email", "a@b.org", "--password", "short"], settings=app_settings
        )
        == 2
    )
    with pytest.raises(SystemExit):
        cli.main(["create-admin", "--password", "x"], settings=app_settings)


def _can_log_in(settings: Settings, email: str, password: str) -> bool:
    from app.identity.accounts import find_by_email
    from app.identity.passwords import Passwords

    engine = db.engine_for(settings)
    try:
        with Session(engine) as s:
            user = find_by_email(s, email)
            return user is not None and Passwords(fast=True).verify(user.password_hash, password)
    finally:
        engine.dispose()


def test_create_admin_asks_for_the_password_twice(
    app_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """#10: without --password the password is asked at a prompt (twice), never taken from
    the command line, where process lists and shell history show it."""
    monkeypatch.delenv("TSUNAGU_ADMIN_PASSWORD", raising=False)
    answers = iter(["prompted-password", "prompted-password", "one-password", "another-one"])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "Password: ") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    email = f"prompt-{uuid.uuid4().hex[:6]}@example.org"
    assert cli.main(["create-admin", "--email", email], settings=app_settings) == 0
    assert len(prompts) == 2 and "created admin" in capsys.readouterr().out
    assert _can_log_in(app_settings, email, "prompted-password")
    # Two different answers: nothing changes.
    assert cli.main(["create-admin", "--email", email], settings=app_settings) == 2
    assert "differ" in capsys.readouterr().err
    assert _can_log_in(app_settings, email, "prompted-password")


def test_create_admin_reads_the_password_from_stdin(
    app_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_prompt(prompt: str = "") -> str:
        raise AssertionError("no prompt with --password-stdin")

    monkeypatch.setattr("getpass.getpass", no_prompt)
    monkeypatch.setattr("sys.stdin", io.StringIO("piped-password\n"))
    email = f"stdin-{uuid.uuid4().hex[:6]}@example.org"
    argv = ["create-admin", "--email", email, "--password-stdin"]
    assert cli.main(argv, settings=app_settings) == 0
    captured = capsys.readouterr()
    assert "created admin" in captured.out and "warning" not in captured.err
    assert _can_log_in(app_settings, email, "piped-password")
    # --password still works, with a warning; it cannot be combined with --password-stdin.
    argv = ["create-admin", "--email", email, "--password", "argv-password"]
    assert cli.main(argv, settings=app_settings) == 0
    assert "process lists" in capsys.readouterr().err
    assert _can_log_in(app_settings, email, "argv-password")
    with pytest.raises(SystemExit):
        cli.main([*argv, "--password-stdin"], settings=app_settings)


@both_backends
def test_keys_rotate_is_seen_by_a_running_app(
    app_client: TestClient, app_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    before = services_of(app_client).keys.current().kid
    assert cli.main(["keys", "rotate"], settings=app_settings) == 0
    new_kid = capsys.readouterr().out.split()[3].rstrip(";")
    services_of(app_client).keys.reload()
    kids = [k["kid"] for k in app_client.get("/.well-known/jwks.json").json()["keys"]]
    assert kids[0] == new_kid and before in kids
    assert cli.main(["keys", "list"], settings=app_settings) == 0
    assert f"{new_kid}  (current)" in capsys.readouterr().out


def test_console_script_help() -> None:
    """The real entry point parses (no server started)."""
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT_FOR_TESTS,
        check=True,
    ).stdout
    for flag in ("--demo", "--no-demo", "--host", "--port", "--workers"):
        assert flag in out


def test_serve_refuses_several_workers_without_redis(
    app_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without Redis each worker would have its own events and login counters: refused before
    any server starts."""
    assert cli.main(["serve", "--workers", "2", "--port", "1"], settings=app_settings) == 2
    assert "REDIS_URL" in capsys.readouterr().err


def test_serve_keeps_idle_connections_longer_than_clients_do(
    app_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn closes an idle connection after 5 s by default, httpx reuses one for 5 s: a
    request sent as the server closed its connection got no answer (a reset). The server's
    idle limit is a setting, 65 s by default, passed to uvicorn."""
    import uvicorn

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    assert cli.main(["serve", "--port", "1"], settings=app_settings) == 0
    assert seen["timeout_keep_alive"] == 65
    custom = app_settings.model_copy(update={"keep_alive_s": 120})
    assert cli.main(["serve", "--port", "1"], settings=custom) == 0
    assert seen["timeout_keep_alive"] == 120
    with pytest.raises(ValueError, match="keep_alive_s"):
        Settings(keep_alive_s=0)


@both_backends
def test_auth_prune_removes_only_dead_sessions(
    app_client: TestClient,
    app_settings: Settings,
    make_user: Callable[..., TestUser],
    capsys: pytest.CaptureFixture[str],
) -> None:
    user = make_user()
    live = app_client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": user.password}
    ).json()
    dead = app_client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": user.password}
    ).json()
    app_client.post("/api/v1/auth/logout", json={"refresh_token": dead["refresh_token"]})
    engine = services_of(app_client).engine
    with Session(engine) as db:  # age the revocation and the dead session's token
        db.execute(
            sa.update(AuthSession)
            .where(col(AuthSession.revoked_at).is_not(None))
            .values(revoked_at=datetime.now(UTC) - timedelta(days=30))
        )
        db.commit()
    assert cli.main(["auth", "prune"], settings=app_settings) == 0
    assert "sessions" in capsys.readouterr().out
    me = app_client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {live['access_token']}"}
    )
    assert me.status_code == 200
    r = app_client.post("/api/v1/auth/refresh", json={"refresh_token": live["refresh_token"]})
    assert r.status_code == 200
    with Session(engine) as db:
        assert (
            db.exec(select(AuthSession).where(col(AuthSession.revoked_at).is_not(None))).all() == []
        )


def test_config_lists_every_setting_with_secrets_masked(
    app_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = app_settings.model_copy(
        update={
            "admin_password": "hunter2-secret",
            "database_url": "postgresql://tsunagu:pg-secret@db.internal:5432/tsunagu",
        }
    )
    assert cli.main(["config"], settings=settings) == 0
    out = capsys.readouterr().out
    assert "hunter2-secret" not in out and "pg-secret" not in out
    assert "postgresql://tsunagu:***@db.internal:5432/tsunagu" in out
    assert cli.main(["config", "--markdown"], settings=settings) == 0
    table = capsys.readouterr().out.splitlines()[2:]
    assert len(table) == len(Settings.model_fields)
    for name, row in zip(Settings.model_fields, table, strict=True):
        assert name.upper() in row.split("|")[1]
        assert row.split("|")[3].strip(), f"setting {name} has no description"
    assert "| `DATABASE_URL` | empty |" in "\n".join(table)


def test_settings_repr_shows_no_secret(tmp_path: Path) -> None:
    """#10: repr() of the settings (in a traceback, a debug log) showed the admin password;
    it is a SecretStr now and the passwords of the database and Redis URLs are masked."""
    settings = Settings(
        data_dir=tmp_path,
        admin_password="hunter2-secret",  # type: ignore[arg-type]
        database_url="postgresql://tsunagu:pg-secret@db.internal:5432/tsunagu",
        redis_url="redis://:redis-secret@cache.internal:6379/0",
    )
    for text in (repr(settings), str(settings)):
        for secret in ("hunter2-secret", "pg-secret", "redis-secret"):
            assert secret not in text, text
    assert "hunter2-secret" not in settings.model_dump_json()
    assert "postgresql://tsunagu:***@db.internal" in repr(settings)
    assert isinstance(settings.admin_password, SecretStr)
    assert settings.admin_password.get_secret_value() == "hunter2-secret"
    # The values in force are still the real ones.
    assert "pg-secret" in settings.effective_database_url


def test_config_masks_secret_settings_and_shows_empty_ones_empty(
    app_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = app_settings.model_copy(update={"admin_password": SecretStr("hunter2-secret")})
    assert cli.main(["config"], settings=settings) == 0
    out = capsys.readouterr().out
    assert "hunter2-secret" not in out
    (line,) = [x for x in out.splitlines() if x.startswith("TSUNAGU_ADMIN_PASSWORD ")]
    assert "***" in line and "(default: empty)" in line
    assert cli.main(["config", "--markdown"], settings=settings) == 0
    assert "| `TSUNAGU_ADMIN_PASSWORD` | empty |" in capsys.readouterr().out

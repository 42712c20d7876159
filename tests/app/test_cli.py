"""The ``tsunagu`` command: db upgrade/current, create-admin, keys rotate/list, serve parsing."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from app import cli, db
from app.settings import Settings
from tests.app.conftest import REPO_ROOT_FOR_TESTS, both_backends, services_of


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

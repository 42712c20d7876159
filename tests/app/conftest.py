"""Fixtures for testing the app layer against real backends.

Reusable by every app test (import nothing; pytest injects them):

``app_client``
    A ``TestClient`` on a fresh app (lifespan entered), its own tmp ``data_dir``, SQLite by
    default. Run a test module on SQLite AND the real PostgreSQL with
    ``pytestmark = both_backends`` (``from tests.app.conftest import both_backends``).
``make_app_client(**settings_overrides)``
    Another client (another "process") on the same database and data dir as ``app_client``
    unless overridden, e.g. ``make_app_client(redis_url=redis_url)``; closed at teardown.
``app_settings``
    The ``Settings`` of ``app_client`` (``environment="test"``: fast Argon2).
``make_user(email=None, password=..., roles=("resident",), client=None)`` -> ``TestUser``
    A user written straight to the database of ``client`` (``app_client`` by default).
``token_for(user, client=None)`` -> ``str``
    A valid access token for ``user`` (a real session, as a login would open).
``auth(user, client=None)`` -> ``dict``
    ``{"Authorization": "Bearer ..."}`` for ``user``.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session

from app.identity import accounts
from app.main import create_app
from app.services import Services
from app.settings import Settings
from tests.conftest import PG_ADMIN_URL

DEFAULT_PASSWORD = "correct horse battery"
REPO_ROOT_FOR_TESTS = Path(__file__).resolve().parents[2]

both_backends = pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@dataclass(frozen=True)
class TestUser:
    """A user created by ``make_user`` (with the clear-text password, for login tests)."""

    __test__ = False  # not a test class

    id: str
    email: str
    password: str
    roles: tuple[str, ...]


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` unless a test is parametrised (``both_backends``)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    """Empty (SQLite file in the tmp data dir) or the session's real PostgreSQL database."""
    if backend == "postgres":
        return str(request.getfixturevalue("pg_database_url"))
    return ""


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A brand-new, never-migrated database of the backend under test (dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"tsunagu_empty_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settings_for(data_dir: Path, database_url: str = "", **overrides: Any) -> Settings:
    """Test settings: isolated data dir, no demo, no Redis, no admin bootstrap, fast hashing."""
    values: dict[str, Any] = {
        "environment": "test",
        "data_dir": data_dir,
        "database_url": database_url,
        "redis_url": "",
        "demo": False,
        "admin_email": "",
        "admin_password": "",
        "oidc_issuer": "",
        "jwt_private_key_path": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def signing_key_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One RSA key for the session's test apps: importing it is cheaper than generating one
    per app (``test_keys.py`` covers generation on first start)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("keys") / "jwt.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str, signing_key_pem: Path) -> Settings:
    return settings_for(tmp_path / "data", database_url, jwt_private_key_path=signing_key_pem)


@pytest.fixture
def make_app_client(app_settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """Factory of extra app instances; ``raise_server_exceptions=False`` to see 500s."""
    opened: list[TestClient] = []

    def factory(raise_server_exceptions: bool = True, **overrides: Any) -> TestClient:
        if isinstance(overrides.get("admin_password"), str):  # model_copy does not validate
            overrides["admin_password"] = SecretStr(overrides["admin_password"])
        settings = app_settings.model_copy(update=overrides) if overrides else app_settings
        client = TestClient(create_app(settings), raise_server_exceptions=raise_server_exceptions)
        client.__enter__()
        opened.append(client)
        return client

    yield factory
    for client in reversed(opened):
        client.__exit__(None, None, None)


@pytest.fixture
def app_client(make_app_client: Callable[..., TestClient]) -> TestClient:
    return make_app_client()


def services_of(client: TestClient) -> Services:
    return client.app.state.services  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def make_user(app_client: TestClient) -> Callable[..., TestUser]:
    def factory(
        email: str | None = None,
        password: str = DEFAULT_PASSWORD,
        roles: tuple[str, ...] | list[str] = ("resident",),
        client: TestClient | None = None,
        **fields: Any,
    ) -> TestUser:
        services = services_of(client or app_client)
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.org"
        with Session(services.engine) as db:
            user = accounts.create_user(
                db,
                services.identity.passwords,
                email=email,
                password=password,
                roles=roles,
                **fields,
            )
            db.commit()
            return TestUser(str(user.id), user.email, password, tuple(user.roles))

    return factory


@pytest.fixture
def token_for(app_client: TestClient) -> Callable[..., str]:
    def issue(user: TestUser, client: TestClient | None = None) -> str:
        services = services_of(client or app_client)
        with Session(services.engine) as db:
            from app.models.identity import User

            row = db.get(User, uuid.UUID(user.id))
            assert row is not None, f"no user {user.id} in this app's database"
            pair = services.identity.sessions.open(db, row)
            db.commit()
        return pair.access_token

    return issue


@pytest.fixture
def auth(token_for: Callable[..., str]) -> Callable[..., dict[str, str]]:
    def headers(user: TestUser, client: TestClient | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_for(user, client)}"}

    return headers


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """Check the one error shape (and no stack trace); returns the ``error`` object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert "Traceback" not in response.text
    if code is not None:
        assert error["code"] == code, error
    return error  # type: ignore[no-any-return]


# A square on-demand zone over central Muroran and two points inside it, for the dispatch API
# tests (rides, fleet, GTFS-RT export of the fleet).
ZONE = {
    "zone_id": "muroran",
    "name": "Muroran",
    "geometry": {
        "type": "Polygon",
        "coordinates": [
            [
                [140.955, 42.305],
                [141.005, 42.305],
                [141.005, 42.345],
                [140.955, 42.345],
                [140.955, 42.305],
            ]
        ],
    },
}
A = {"lat": 42.31, "lon": 140.96}
B = {"lat": 42.33, "lon": 140.99}


def stop_processes(procs: list[subprocess.Popen[bytes]], redis_url: str, prefix: str) -> None:
    """End app processes a test spawned (terminated, killed after 10 s), then delete the
    test's Redis keys (those under ``prefix``)."""
    import redis

    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


def app_process_env(
    database_url: str,
    redis_url: str,
    redis_prefix: str,
    admin_email: str,
    admin_password: str,
    **settings: str,
) -> dict[str, str]:
    """The environment of an app process a test spawns (``uvicorn``): this checkout on the
    path, the given database, Redis (keys under ``redis_prefix``) and admin, test mode, no
    demo; none of the caller's own ``TSUNAGU_*`` settings, then ``settings`` (full variable
    names, e.g. ``TSUNAGU_DISPATCH_LEASE_TTL_S="10"``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
    env.update(
        PYTHONPATH=str(REPO_ROOT_FOR_TESTS),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        TSUNAGU_REDIS_PREFIX=redis_prefix,
        TSUNAGU_ENVIRONMENT="test",
        TSUNAGU_DEMO="false",
        TSUNAGU_ADMIN_EMAIL=admin_email,
        TSUNAGU_ADMIN_PASSWORD=admin_password,
    )
    env.update(settings)
    return env

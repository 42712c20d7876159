"""The emissions service run as its own process (``tsunagu serve --service emissions``).

The main app's JWKS is served on a local port by an in-process HTTP server; the emissions
process checks tokens against it only: the identity store's token passes, a token signed by
another key and an expired one are 401.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from app.settings import Settings
from tests.app.conftest import REPO_ROOT_FOR_TESTS, TestUser, services_of
from tests.conftest import free_port


@pytest.fixture
def jwks_url(app_client: TestClient) -> Iterator[str]:
    """The main app's JWKS on a local port."""
    document = json.dumps(services_of(app_client).keys.jwks()).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()
    server.server_close()


@contextmanager
def standalone_service(
    service: str,
    app_settings: Settings,
    jwks_url: str,
    tmp_path: Path,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """``tsunagu serve --service <service>`` in a subprocess with its own database (the core's
    records read from the app's ``DATABASE_URL``) and the app's JWKS; its URL once ready.
    ``env`` adds to (or overrides) the process's environment (``REDIS_URL``...)."""
    port = free_port()
    env = {
        **os.environ,
        "TSUNAGU_ENVIRONMENT": "test",
        "TSUNAGU_DATA_DIR": str(tmp_path / f"{service}-data"),
        f"TSUNAGU_{service.upper()}_DATABASE_URL": f"sqlite:///{tmp_path / f'{service}.db'}",
        "DATABASE_URL": app_settings.effective_database_url,
        "TSUNAGU_IDENTITY_JWKS_URL": jwks_url,
        "TSUNAGU_JWT_ISSUER": app_settings.jwt_issuer,
        "TSUNAGU_JWT_AUDIENCE": app_settings.jwt_audience,
        "TSUNAGU_OIDC_ISSUER": "",
        "TSUNAGU_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--service", service, "--port", str(port)],
        cwd=REPO_ROOT_FOR_TESTS,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"the {service} service exited: {out}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the {service} service did not become ready")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def emissions_url(app_settings: Settings, jwks_url: str, tmp_path: Path) -> Iterator[str]:
    with standalone_service("emissions", app_settings, jwks_url, tmp_path) as url:
        yield url


def test_tokens_through_jwks_only(
    emissions_url: str,
    app_client: TestClient,
    app_settings: Settings,
    make_user: Callable[..., TestUser],
    token_for: Callable[..., str],
) -> None:
    me = make_user()
    ledger = f"{emissions_url}/api/v1/emissions/me/ledger?month=2026-12"
    good = httpx.get(ledger, headers={"Authorization": f"Bearer {token_for(me)}"}, timeout=10)
    assert good.status_code == 200, good.text
    assert good.json()["trips"] == 0

    now = dt.datetime.now(dt.UTC)
    claims = {
        "iss": app_settings.jwt_issuer,
        "aud": app_settings.jwt_audience,
        "sub": me.id,
        "iat": now,
        "exp": now + dt.timedelta(minutes=5),
        "sid": str(uuid.uuid4()),
        "roles": ["resident"],
    }
    key = services_of(app_client).keys.current()
    # the same claims signed by a key the identity store never published
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, foreign, algorithm="RS256", headers={"kid": key.kid})
    unknown_kid = jwt.encode(claims, foreign, algorithm="RS256", headers={"kid": "nobody"})
    # the identity store's own key, but expired (beyond the 30 s leeway)
    expired = jwt.encode(
        {**claims, "iat": now - dt.timedelta(hours=1), "exp": now - dt.timedelta(minutes=5)},
        key.private_key,
        algorithm="RS256",
        headers={"kid": key.kid},
    )
    for token, code in (
        (forged, "token_invalid"),
        (unknown_kid, "token_invalid"),
        (expired, "token_expired"),
    ):
        r = httpx.get(ledger, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == code
    assert httpx.get(ledger, timeout=10).status_code == 401
    # only the emissions router is served
    assert httpx.get(f"{emissions_url}/api/v1/plan", timeout=10).status_code == 404
    # it records trips in its own database
    ms = int(dt.datetime(2026, 12, 3, tzinfo=dt.UTC).timestamp()) * 1000
    it = {
        "legs": [
            {
                "mode": "RAIL",
                "from": {"lat": 42.30, "lon": 141.0},
                "to": {"lat": 42.40, "lon": 141.0},
                "distance": 12000.0,
                "startTime": ms,
                "endTime": ms + 900_000,
            }
        ]
    }
    auth = {"Authorization": f"Bearer {token_for(me)}"}
    r = httpx.post(
        f"{emissions_url}/api/v1/emissions/trips", json={"itinerary": it}, headers=auth, timeout=10
    )
    assert r.status_code == 201 and r.json()["co2"]["co2"] == 204  # 17 g x 12 km
    assert httpx.get(ledger, headers=auth, timeout=10).json()["co2"]["co2"] == 204


def test_serve_emissions_needs_jwks(app_settings: Settings) -> None:
    from app import cli

    settings = app_settings.model_copy(update={"identity_jwks_url": ""})
    assert cli.main(["serve", "--service", "emissions", "--port", "1"], settings=settings) == 2

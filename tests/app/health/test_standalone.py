"""The health service run as its own process (``tsunagu serve --service health``): tokens
checked through the identity store's JWKS only; a token it did not sign is 401."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from app.settings import Settings
from tests.app.conftest import TestUser, services_of
from tests.app.emissions.test_standalone import jwks_url, standalone_service

__all__ = ["jwks_url"]  # the JWKS server fixture, shared with the emissions test


@pytest.fixture
def health_url(app_settings: Settings, jwks_url: str, tmp_path: Path) -> Iterator[str]:
    with standalone_service("health", app_settings, jwks_url, tmp_path) as url:
        yield url


def test_tokens_through_jwks_only(
    health_url: str,
    app_client: TestClient,
    app_settings: Settings,
    make_user: Callable[..., TestUser],
    token_for: Callable[..., str],
) -> None:
    me = make_user()
    auth = {"Authorization": f"Bearer {token_for(me)}"}
    r = httpx.post(
        f"{health_url}/api/v1/health/me/checkups",
        json={"weight_kg": 61.5},
        headers=auth,
        timeout=10,
    )
    assert r.status_code == 201, r.text
    mine = httpx.get(f"{health_url}/api/v1/health/me/observations", headers=auth, timeout=10)
    assert mine.json()["latest"]["weight"]["value"] == 61.5
    now = dt.datetime.now(dt.UTC)
    claims = {
        "iss": app_settings.jwt_issuer,
        "aud": app_settings.jwt_audience,
        "sub": me.id,
        "iat": now,
        "exp": now + dt.timedelta(minutes=5),
        "sid": str(uuid.uuid4()),
        "roles": ["resident", "health_staff"],
    }
    key = services_of(app_client).keys.current()
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, foreign, algorithm="RS256", headers={"kid": key.kid})
    for path in ("/me/observations", f"/residents/{me.id}/observations", "/me/audit"):
        r = httpx.get(
            f"{health_url}/api/v1/health{path}",
            headers={"Authorization": f"Bearer {forged}"},
            timeout=10,
        )
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "token_invalid"
    # only the health router; booking for a resident needs the main process
    assert httpx.get(f"{health_url}/api/v1/rides", timeout=10).status_code == 404
    other = make_user()
    c = httpx.post(
        f"{health_url}/api/v1/health/me/consents",
        json={
            "recipient": {"type": "user", "id": other.id},
            "purpose": "watch_over",
            "expires_at": (now + dt.timedelta(days=3)).isoformat(),
        },
        headers=auth,
        timeout=10,
    )
    assert c.status_code == 201, c.text
    r = httpx.post(
        f"{health_url}/api/v1/health/watch/{me.id}/rides",
        json={"origin": {"lat": 42.3, "lon": 141.0}, "destination": {"lat": 42.31, "lon": 141.0}},
        headers={"Authorization": f"Bearer {token_for(other)}"},
        timeout=10,
    )
    assert r.status_code == 501 and r.json()["error"]["code"] == "not_in_this_process"


def test_serve_health_needs_jwks(app_settings: Settings) -> None:
    from app import cli

    settings = app_settings.model_copy(update={"identity_jwks_url": ""})
    assert cli.main(["serve", "--service", "health", "--port", "1"], settings=settings) == 2

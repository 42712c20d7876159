"""The health service run as its own process (``tsunagu serve --service health``): tokens
checked through the identity store's JWKS only; a token it did not sign is 401."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from app.settings import Settings
from tests.app.conftest import A, B, TestUser, services_of
from tests.app.emissions.test_standalone import jwks_url, standalone_service
from tests.app.test_dispatch_cluster import (  # noqa: F401 - fixtures used by name
    Cluster,
    add_fleet,
    cluster,
    fresh_pg_url,
    staff_and_rider,
    warm_kernels,
)

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


@pytest.mark.postgres
@pytest.mark.redis
def test_standalone_service_tells_watchers_of_the_cores_rides_over_redis(
    cluster: Cluster,  # noqa: F811
    fresh_pg_url: str,  # noqa: F811
    redis_url: str,
    app_settings: Settings,
    jwks_url: str,
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> None:
    """The core (an app process on PostgreSQL and Redis) completes a booked ride; the health
    service run alone, on its own database and the same Redis, hears the ride event, records
    the watcher's notice and publishes it on the watcher's stream, which the core's bus
    delivers. The core's own (embedded) health tables hold no consent, so the notice can only
    come from the standalone service."""
    core = cluster()
    prefix = services_of(core).settings.redis_prefix
    resident, hboss, hres = staff_and_rider(core, make_user, auth)
    watcher = make_user(client=core)
    hwatch = auth(watcher, core)
    zone = f"z-{uuid.uuid4().hex[:6]}"
    add_fleet(core, hboss, zone)
    env = {"REDIS_URL": redis_url, "TSUNAGU_REDIS_PREFIX": prefix, "DATABASE_URL": fresh_pg_url}
    with standalone_service("health", app_settings, jwks_url, tmp_path, env) as url:
        ready = httpx.get(f"{url}/readyz", timeout=10).json()
        assert ready["database"]["events"] == "listening"
        h = f"{url}/api/v1/health"
        expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
        consent = {"recipient": {"type": "user", "id": watcher.id}, "purpose": "watch_over",
                   "expires_at": expires}  # fmt: skip
        r = httpx.post(f"{h}/me/consents", json=consent, headers=hres, timeout=10)
        assert r.status_code == 201, r.text

        # The watcher's stream, read through the core's bus (as its SSE endpoint does).
        subscribed = threading.Event()

        async def watch_events() -> list[dict[str, Any]]:
            import asyncio

            bus = services_of(core).bus
            async with bus.subscribe([f"user.{watcher.id}.watch"]) as sub:
                subscribed.set()
                event = await asyncio.wait_for(sub.__anext__(), timeout=60)
                return [event.data]

        assert core.portal is not None
        pending = core.portal.start_task_soon(watch_events)
        assert subscribed.wait(30)
        body = {"request": {"origin": A, "destination": B}}
        r = core.post("/api/v1/rides", json=body, headers=hres)
        assert r.status_code == 201, r.text
        rid = r.json()["ride_id"]
        ev = f"/api/v1/fleet/vehicles/{zone}-van0/events"
        for step in ({"type": "boarded", "ride_id": rid}, {"type": "alighted", "ride_id": rid}):
            assert core.post(ev, json=step, headers=hboss).status_code == 200
        assert core.get(f"/api/v1/rides/{rid}", headers=hres).json()["status"] == "completed"

        got = pending.result(timeout=60)
        assert [(g["type"], g["residentId"], g["rideId"]) for g in got] == [
            ("ride.completed", resident.id, rid)
        ]
        assert set(got[0]) == {"type", "residentId", "rideId", "at"}  # no place, no time
        notices_url = f"{h}/watch/{resident.id}/notices"
        deadline = time.monotonic() + 30
        while True:
            notices = httpx.get(notices_url, headers=hwatch, timeout=10).json()["notices"]
            if notices or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert [(n["type"], n["rideId"]) for n in notices] == [("ride.completed", rid)]
        # nobody else is told: the resident's own stream of notices is not theirs to read
        r = httpx.get(f"{h}/watch/{resident.id}/notices", headers=hres, timeout=10)
        assert r.status_code == 403


def test_standalone_service_serves_with_redis_away_and_says_so(
    app_client: TestClient,
    app_settings: Settings,
    jwks_url: str,
    make_user: Callable[..., TestUser],
    token_for: Callable[..., str],
    tmp_path: Path,
) -> None:
    """Redis unreachable at start: the service still starts (after a bounded wait) and serves
    checkups; its readiness says the event bus is connecting."""
    from tests.conftest import free_port

    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    env = {"REDIS_URL": dead, "TSUNAGU_REDIS_PREFIX": "tsunagu-test:away:"}
    with standalone_service("health", app_settings, jwks_url, tmp_path, env) as url:
        ready = httpx.get(f"{url}/readyz", timeout=10).json()
        assert ready["ready"] is True and ready["database"]["events"] == "connecting"
        me = make_user()
        r = httpx.post(
            f"{url}/api/v1/health/me/checkups",
            json={"weight_kg": 58.25},
            headers={"Authorization": f"Bearer {token_for(me)}"},
            timeout=10,
        )
        assert r.status_code == 201, r.text

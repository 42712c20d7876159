"""Watch-over booking with the health service run as its own process (#12).

Two real processes: the mobility core (``uvicorn app.main``, its own SQLite database, no
demo) and ``tsunagu serve --service health`` (its own database, the core's JWKS, the core's URL
in ``TSUNAGU_CORE_URL``; the core has the health service's URL in
``TSUNAGU_HEALTH_SERVICE_URL``). A watcher with the resident's consent books, moves and
cancels the resident's ride through the health service: the ride is in the resident's account
in the core, and both sides' audit logs name the watcher. Without consent (or after it was
revoked) the health service and the core itself refuse; a retry with the same key books once;
the core away answers 503 with Retry-After.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.errors import ApiError
from app.health.watch_rides import CoreRides
from app.settings import Settings
from tests.app.conftest import (
    REPO_ROOT_FOR_TESTS,
    ZONE,
    A,
    B,
    TestUser,
    app_process_env,
    assert_error,
)
from tests.app.test_events_api import _spawn, _wait_ready
from tests.conftest import free_port

ADMIN = "boss@example.org"
PASSWORD = "correct horse battery staple"
RETRY_AFTER_S = 7


@dataclass
class Processes:
    core: str
    health: str
    core_proc: subprocess.Popen[bytes]


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    core_port, health_port = free_port(), free_port()
    core, health = f"http://127.0.0.1:{core_port}", f"http://127.0.0.1:{health_port}"
    core_db = f"sqlite:///{tmp_path / 'core.db'}"
    core_env = app_process_env(
        core_db,
        "",
        "unused:",
        ADMIN,
        PASSWORD,
        TSUNAGU_DATA_DIR=str(tmp_path / "core"),
        TSUNAGU_HEALTH_SERVICE_URL=health,
        TSUNAGU_LOG_LEVEL="WARNING",
    )
    core_log = tmp_path / "core.log"
    core_proc = _spawn(core_port, core_env, core_log)
    procs = [core_proc]
    try:
        _wait_ready(core_proc, core, core_log, timeout=120)
        health_env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
        health_env.update(
            PYTHONPATH=str(REPO_ROOT_FOR_TESTS),
            TSUNAGU_ENVIRONMENT="test",
            TSUNAGU_DATA_DIR=str(tmp_path / "health"),
            TSUNAGU_HEALTH_DATABASE_URL=f"sqlite:///{tmp_path / 'health.db'}",
            DATABASE_URL=core_db,  # the core's records, read only (active travel)
            REDIS_URL="",
            TSUNAGU_IDENTITY_JWKS_URL=f"{core}/.well-known/jwks.json",
            TSUNAGU_CORE_URL=core,
            TSUNAGU_SERVICE_RETRY_AFTER_S=str(RETRY_AFTER_S),
            TSUNAGU_LOG_LEVEL="WARNING",
        )
        health_log = tmp_path / "health.log"
        serve = ["serve", "--service", "health", "--host", "127.0.0.1", "--port"]
        with health_log.open("wb") as out:
            health_proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", *serve, str(health_port)],
                cwd=REPO_ROOT_FOR_TESTS,
                env=health_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        procs.append(health_proc)
        _wait_ready(health_proc, health, health_log, timeout=60)
        yield Processes(core, health, core_proc)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _login(core: str, email: str, password: str) -> dict[str, str]:
    r = httpx.post(
        f"{core}/api/v1/auth/login", json={"email": email, "password": password}, timeout=30
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _signup(core: str) -> tuple[str, dict[str, str]]:
    email = f"user-{uuid.uuid4().hex[:10]}@example.org"
    r = httpx.post(
        f"{core}/api/v1/auth/signup",
        json={"email": email, "password": PASSWORD, "locale": "en"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return body["user"]["id"], {"Authorization": f"Bearer {body['tokens']['access_token']}"}


def _grant(health: str, h: dict[str, str], watcher: str) -> str:
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
    consent = {"recipient": {"type": "user", "id": watcher}, "purpose": "watch_over",
               "expires_at": expires}  # fmt: skip
    r = httpx.post(f"{health}/api/v1/health/me/consents", json=consent, headers=h, timeout=30)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == code, error
    return error


def test_watcher_books_changes_and_cancels_through_the_standalone_health_service(
    processes: Processes,
) -> None:
    core, health = processes.core, processes.health
    boss = _login(core, ADMIN, PASSWORD)
    zone = f"z-{uuid.uuid4().hex[:6]}"
    r = httpx.post(
        f"{core}/api/v1/fleet/zones", json={**ZONE, "zone_id": zone}, headers=boss, timeout=60
    )
    assert r.status_code == 201, r.text
    van = {"vehicle_id": f"{zone}-van0", "zone_id": zone, "depot": A,
           "shift_end": time.time() + 8 * 3600}  # fmt: skip
    r = httpx.post(f"{core}/api/v1/fleet/vehicles", json=van, headers=boss, timeout=60)
    assert r.status_code == 201, r.text
    resident, hres = _signup(core)
    watcher, hwatch = _signup(core)
    stranger, hstranger = _signup(core)
    consent_id = _grant(health, hres, watcher)

    watch = f"{health}/api/v1/health/watch/{resident}/rides"
    request = {"origin": A, "destination": B}
    key = {"Idempotency-Key": f"book-{uuid.uuid4().hex}"}
    r = httpx.post(watch, json=request, headers={**hwatch, **key}, timeout=120)
    assert r.status_code == 201, r.text
    ride_id = r.json()["ride_id"]
    assert r.json()["status"] == "assigned"
    # the ride is the resident's, in the core
    mine = httpx.get(f"{core}/api/v1/rides", headers=hres, timeout=30).json()["rides"]
    assert [x["ride_id"] for x in mine] == [ride_id]
    assert httpx.get(f"{core}/api/v1/rides", headers=hwatch, timeout=30).json()["rides"] == []

    # a retry with the same key books once (the first answer again)
    again = httpx.post(watch, json=request, headers={**hwatch, **key}, timeout=120)
    assert again.status_code == 201, again.text
    assert again.json()["ride_id"] == ride_id
    mine = httpx.get(f"{core}/api/v1/rides", headers=hres, timeout=30).json()["rides"]
    assert len(mine) == 1

    # move the pick-up, then cancel, through the health service
    later = time.time() + 1800
    r = httpx.patch(
        f"{watch}/{ride_id}", json={"earliest_pickup": later}, headers=hwatch, timeout=120
    )
    assert r.status_code == 200, r.text
    assert r.json()["pickup_window"][0] >= later - 1
    r = httpx.delete(f"{watch}/{ride_id}", headers=hwatch, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"

    # without consent: the health service refuses, and so does the core called directly
    _error(httpx.post(watch, json=request, headers=hstranger, timeout=30), 403, "no_consent")
    direct = f"{core}/api/v1/rides/on-behalf/{resident}"
    _error(httpx.post(direct, json=request, headers=hstranger, timeout=30), 403, "no_consent")
    # the resident needs no one's consent, and books as themselves
    _error(httpx.post(direct, json=request, headers=hres, timeout=30), 403, "no_consent")

    # both audit logs name the watcher (the resident's own in the health service)
    entries = httpx.get(f"{health}/api/v1/health/me/audit", headers=hres, timeout=30).json()
    acts = sorted(
        (e["action"], e["resource"], e["actorId"], e["consentId"]) for e in entries["entries"]
    )
    assert acts == [
        ("book_ride", f"ride:{ride_id}", watcher, consent_id),
        ("cancel_ride", f"ride:{ride_id}", watcher, consent_id),
        ("change_ride", f"ride:{ride_id}", watcher, consent_id),
    ]
    log = httpx.get(f"{core}/api/v1/dispatcher/audit", headers=boss, timeout=30).json()
    core_acts = sorted(
        (e["action"], e["target_id"], e["actor_id"], e["outcome"])
        for e in log["entries"]
        if e["action"].startswith("watch_")
    )
    assert core_acts == sorted(
        [
            ("watch_book_ride", resident, watcher, "done"),
            ("watch_change_ride", ride_id, watcher, "done"),
            ("watch_cancel_ride", ride_id, watcher, "done"),
            ("watch_book_ride", resident, stranger, "no_consent"),
            ("watch_book_ride", resident, resident, "no_consent"),
        ]
    )
    booked = next(e for e in log["entries"] if e["action"] == "watch_book_ride"
                  and e["outcome"] == "done")  # fmt: skip
    assert booked["details"]["ride_id"] == ride_id
    assert booked["details"]["consent_id"] == consent_id

    # revoked: the core's own check refuses at once
    r = httpx.delete(f"{health}/api/v1/health/me/consents/{consent_id}", headers=hres, timeout=30)
    assert r.status_code == 200, r.text
    _error(httpx.post(direct, json=request, headers=hwatch, timeout=30), 403, "no_consent")
    _error(httpx.post(watch, json=request, headers=hwatch, timeout=30), 403, "no_consent")

    # the core away: 503 with Retry-After (the key to retry with), never 500
    _grant(health, hres, watcher)
    processes.core_proc.terminate()
    processes.core_proc.wait(10)
    r = httpx.post(watch, json=request, headers=hwatch, timeout=60)
    error = _error(r, 503, "core_unavailable")
    assert r.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert error["details"]["idempotencyKey"]
    # nothing was booked, so nothing was audited
    entries = httpx.get(f"{health}/api/v1/health/me/audit", headers=hres, timeout=30).json()
    assert sum(e["action"] == "book_ride" for e in entries["entries"]) == 1


# --- in one process, and the calls between the services -------------------------------------
def _fleet(client: TestClient, h: dict[str, str]) -> None:
    r = client.post("/api/v1/fleet/zones", json=ZONE, headers=h)
    assert r.status_code == 201, r.text
    van = {"vehicle_id": "van0", "zone_id": ZONE["zone_id"], "depot": A,
           "shift_end": time.time() + 8 * 3600}  # fmt: skip
    assert client.post("/api/v1/fleet/vehicles", json=van, headers=h).status_code == 201


def test_core_checks_the_embedded_consent_in_the_main_process(
    app_client: TestClient,
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
) -> None:
    """No health service URL: the core reads the consent of the health service in its own
    process; the on-behalf booking is the resident's, a stranger is refused."""
    _fleet(app_client, auth(make_user(roles=("dispatcher",))))
    resident, watcher, stranger = make_user(), make_user(), make_user()
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    consent = {"recipient": {"type": "user", "id": watcher.id}, "purpose": "watch_over",
               "expires_at": expires}  # fmt: skip
    r = app_client.post("/api/v1/health/me/consents", json=consent, headers=auth(resident))
    assert r.status_code == 201, r.text
    url = f"/api/v1/rides/on-behalf/{resident.id}"
    request = {"origin": A, "destination": B}
    r = app_client.post(url, json=request, headers=auth(watcher))
    assert r.status_code == 201, r.text
    rides = app_client.get("/api/v1/rides", headers=auth(resident)).json()["rides"]
    assert [x["ride_id"] for x in rides] == [r.json()["ride_id"]]
    assert_error(app_client.post(url, json=request, headers=auth(stranger)), 403, "no_consent")
    r = app_client.delete(f"{url}/{r.json()['ride_id']}", headers=auth(stranger))
    assert_error(r, 403, "no_consent")


def test_core_answers_503_when_the_health_service_is_away(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    auth: Callable[..., dict[str, str]],
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    core = make_app_client(health_service_url=dead, service_retry_after_s=9)
    resident, watcher = make_user(client=core), make_user(client=core)
    r = core.post(
        f"/api/v1/rides/on-behalf/{resident.id}",
        json={"origin": A, "destination": B},
        headers=auth(watcher, core),
    )
    assert_error(r, 503, "health_unavailable")
    assert r.headers["Retry-After"] == "9"


async def test_forwarded_call_is_repeated_with_the_same_key(app_settings: Settings) -> None:
    """A booking lost in transit is sent again with the same Idempotency-Key (the core books
    it once); a core failing twice is 503 with the key to retry with."""
    settings = app_settings.model_copy(update={"core_url": "http://core.invalid"})
    seen: list[tuple[str, str, str]] = []
    answers: list[Any] = [
        httpx.ConnectError("refused"),
        httpx.Response(201, json={"ride_id": "r1"}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(
            (request.url.path, request.headers["idempotency-key"], request.headers["authorization"])
        )
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]

    core = CoreRides(settings, transport=httpx.MockTransport(handler))
    got = await core.book("tok", "res-1", {"origin": A}, None)
    assert got.status_code == 201 and got.body == {"ride_id": "r1"} and not got.replayed
    assert len(seen) == 2 and seen[0] == seen[1]
    assert seen[0] == ("/api/v1/rides/on-behalf/res-1", got.idempotency_key, "Bearer tok")

    answers[:] = [httpx.Response(500, json={}), httpx.Response(502, json={})]
    with pytest.raises(ApiError) as failed:
        await core.cancel("tok", "res-1", "r1", "key-1")
    assert failed.value.status_code == 503 and failed.value.code == "core_unavailable"
    assert failed.value.details == {"idempotencyKey": "key-1"}
    assert failed.value.headers == {"Retry-After": str(settings.service_retry_after_s)}
    # a refusal of the core is passed on as it is, never repeated
    answers[:] = [httpx.Response(409, json={"error": {"code": "not_cancellable",
                                                      "message": "picked up"}})]  # fmt: skip
    with pytest.raises(ApiError) as refused:
        await core.cancel("tok", "res-1", "r1", "key-2")
    assert (refused.value.status_code, refused.value.code) == (409, "not_cancellable")
    assert answers == []
    # an id cannot lead the watcher's token to another route of the core
    answers[:] = [httpx.Response(200, json={"status": "cancelled"})]
    raw: list[bytes] = []

    def recording(request: httpx.Request) -> httpx.Response:
        raw.append(request.url.raw_path)
        return handler(request)

    core = CoreRides(settings, transport=httpx.MockTransport(recording))
    await core.cancel("tok", "../../users/me", "x?y", None)
    assert raw == [b"/api/v1/rides/on-behalf/..%2F..%2Fusers%2Fme/x%3Fy"]

"""Trips with several processes on the real PostgreSQL and Redis (cluster gateway): a retry
with one Idempotency-Key sent to two processes at once books once; a trip held through a
process that is then SIGKILLed leaves no orphaned hold (the other process's sweeper expires it
and its ride is cancelled in the dispatcher)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis.asyncio as aioredis
from fastapi.testclient import TestClient

from dispatch.scale_out import lease_key
from tests.app.conftest import (
    ZONE,
    A,
    B,
    app_process_env,
    services_of,
    settings_for,
    stop_processes,
)
from tests.app.test_dispatch_cluster import (  # noqa: F401 - fixtures used by name
    Cluster,
    add_fleet,
    cluster,
    fresh_pg_url,
    one_owner,
    staff_and_rider,
    warm_kernels,
)
from tests.app.test_events_api import _free_port, _spawn, _wait_ready
from tests.app.trips_helpers import TRIPS, flex_leg, itinerary, transit_leg

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

RIDES = "/api/v1/rides"
FLEET = "/api/v1/fleet"


def test_one_key_sent_to_two_processes_at_once_books_once(
    cluster: Cluster,  # noqa: F811
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
) -> None:
    a, b = cluster(), cluster()
    rider, hboss, _ = staff_and_rider(a, make_user, auth)
    hr = {"a": auth(rider, a), "b": auth(rider, b)}
    zid = f"z-{uuid.uuid4().hex[:6]}"
    add_fleet(a, hboss, zid)
    one_owner([a, b], zid)
    q = b.post(f"{RIDES}/quote", json={"origin": A, "destination": B}, headers=hr["b"])
    assert q.status_code == 200, q.text
    # The planner's quote carries its request id; the cluster gateway keeps it with the quote.
    g = services_of(b).dispatch
    raw = b.portal.call(g.redis.get, g._key(f"quote.{q.json()['quote_id']}"))  # type: ignore[union-attr]
    rid = json.loads(raw)["request"]["request_id"]
    itin = itinerary(transit_leg(), flex_leg({**q.json(), "request_id": rid}))
    answers: list[Any] = []
    gate = threading.Barrier(4)

    def send(client: TestClient, h: dict[str, str]) -> None:
        gate.wait()
        body = {"itinerary": itin}
        answers.append(client.post(TRIPS, json=body, headers={**h, "Idempotency-Key": "k1"}))

    threads = [threading.Thread(target=send, args=(c, hr[n])) for c, n in ((a, "a"), (b, "b")) * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in answers] == [201] * 4, [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert all(r.json()["state"] == "CONFIRMED" for r in answers)
    plan = a.get(f"{FLEET}/vehicles/{zid}-van0", headers=hboss).json()["plan"]
    assert [s["ride_id"] for s in plan] == [rid, rid]
    assert len(b.get(TRIPS, headers=hr["b"]).json()["trips"]) == 1
    # Sequential retries on either process: the same answer again.
    for c, n in ((a, "a"), (b, "b")):
        r = c.post(TRIPS, json={"itinerary": itin}, headers={**hr[n], "Idempotency-Key": "k1"})
        assert r.status_code == 201 and r.json()["id"] == answers[0].json()["id"]


# --- two real uvicorn processes, the one that held the trip killed with SIGKILL ---------------
ADMIN = "trips-boss@example.org"
PASSWORD = "correct horse battery staple"


@pytest.fixture
async def processes(
    tmp_path: Path,
    fresh_pg_url: str,  # noqa: F811
    redis_url: str,
    redis_prefix: str,
) -> AsyncIterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    env = app_process_env(
        fresh_pg_url,
        redis_url,
        redis_prefix,
        ADMIN,
        PASSWORD,
        TSUNAGU_DISPATCH_LEASE_TTL_S="10",
        TSUNAGU_DISPATCH_REPLY_TIMEOUT_S="30",
        TSUNAGU_DISPATCH_CATALOG_INTERVAL_S="1",
        TSUNAGU_DISPATCH_REOPT_INTERVAL_S="0",
        TSUNAGU_TRIP_HOLD_S="4",
        TSUNAGU_TRIP_SWEEP_INTERVAL_S="0.5",
    )
    from app.services import Services

    # Migrations, admin and signing keys once, as a deployment does before scaling out.
    prepared = await Services.start(
        settings_for(tmp_path / "prepare", fresh_pg_url, admin_email=ADMIN, admin_password=PASSWORD)
    )
    await prepared.stop()
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for name in ("a", "b"):
            port = _free_port()
            log = tmp_path / f"app-{name}.log"
            proc = _spawn(port, {**env, "TSUNAGU_DATA_DIR": str(tmp_path / name)}, log)
            procs.append((f"http://127.0.0.1:{port}", proc))
            await asyncio.to_thread(_wait_ready, proc, procs[-1][0], log)
        yield procs
    finally:
        stop_processes([proc for _, proc in procs], redis_url, redis_prefix)


def _trip_row(pg_url: str, trip_id: str) -> tuple[str, bool]:
    url = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT state, release_pending FROM trips WHERE id = %s", (trip_id,)
        ).fetchone()
    assert row is not None
    return str(row[0]), bool(row[1])


@pytest.mark.slow
async def test_sigkill_after_a_hold_leaves_no_orphaned_seat(
    processes: list[tuple[str, subprocess.Popen[bytes]]],
    fresh_pg_url: str,  # noqa: F811
    redis_url: str,
    redis_prefix: str,
) -> None:
    (base_a, proc_a), (base_b, _) = processes
    async with (
        httpx.AsyncClient(base_url=base_a, timeout=120) as a,
        httpx.AsyncClient(base_url=base_b, timeout=120) as b,
    ):
        r = await a.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
        assert r.status_code == 200, r.text
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        zid = f"z-{uuid.uuid4().hex[:6]}"
        r = await a.post(f"{FLEET}/zones", json={**ZONE, "zone_id": zid}, headers=h)
        assert r.status_code == 201, r.text
        body = {"vehicle_id": "van-0", "zone_id": zid, "depot": A, "shift_end": time.time() + 3e4}
        r = await b.post(f"{FLEET}/vehicles", json=body, headers=h)
        assert r.status_code == 201, r.text
        q = await a.post(f"{RIDES}/quote", json={"origin": A, "destination": B}, headers=h)
        assert q.status_code == 200, q.text
        redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            raw = await redis.get(f"{redis_prefix}dispatch.quote.{q.json()['quote_id']}")
            rid = json.loads(raw)["request"]["request_id"]
            # Held through A: the seat is in the vehicle's plan.
            itin = itinerary(flex_leg({**q.json(), "request_id": rid}))
            r = await a.post(TRIPS, json={"itinerary": itin, "confirm": False}, headers=h)
            assert r.status_code == 201, r.text
            trip = r.json()
            assert trip["state"] == "PENDING"
            plan = (await b.get(f"{FLEET}/vehicles/van-0", headers=h)).json()["plan"]
            assert [s["ride_id"] for s in plan] == [rid, rid]
            owned_by_a = zid in (await a.get("/readyz")).json()["checks"]["dispatch"]["owned"]

            proc_a.send_signal(signal.SIGKILL)
            proc_a.wait(60)
            if owned_by_a:  # end the dead owner's lease now, as its expiry would
                await redis.delete(redis_prefix + lease_key(zid))
        finally:
            await redis.aclose()

        # B's sweeper (not a read: the row is watched in the database) expires the hold...
        end = time.monotonic() + 120
        while _trip_row(fresh_pg_url, trip["id"]) != ("EXPIRED", False):
            assert time.monotonic() < end, _trip_row(fresh_pg_url, trip["id"])
            await asyncio.sleep(0.2)
        # ... and the ride is cancelled in the dispatcher: no seat is held any more.
        got = (await b.get(f"{RIDES}/{rid}", headers=h)).json()
        assert got["status"] == "cancelled", got
        plan = (await b.get(f"{FLEET}/vehicles/van-0", headers=h)).json()["plan"]
        assert plan == []
        r = await b.post(f"{TRIPS}/{trip['id']}/confirm", headers=h)
        assert r.status_code == 409 and r.json()["error"]["code"] == "expired"
        got = (await b.get(f"{TRIPS}/{trip['id']}", headers=h)).json()
        assert got["state"] == "EXPIRED" and got["legs"][0]["legState"] == "CANCELLED"

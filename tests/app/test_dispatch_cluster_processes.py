"""Two real ``uvicorn`` app processes behind one Redis and one PostgreSQL share the on-demand
dispatcher, and the owner of the zone is killed with SIGKILL (no shutdown code runs at all):
the survivor takes the zone over when the lease expires, with every booking, and a booking made
meanwhile completes (201 at once, or 202 pending then assigned). No ride is assigned twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.app.conftest import ZONE, A, B, settings_for
from tests.app.test_events_api import _free_port, _spawn, _wait_ready
from tests.conftest import PG_ADMIN_URL

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]

ADMIN = "boss@example.org"
PASSWORD = "correct horse battery staple"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    name = f"tsunagu_cluster_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def processes(
    tmp_path: Path, fresh_pg_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
    env.update(
        PYTHONPATH=str(REPO),
        DATABASE_URL=fresh_pg_url,
        REDIS_URL=redis_url,
        TSUNAGU_REDIS_PREFIX=redis_prefix,
        TSUNAGU_ENVIRONMENT="test",
        TSUNAGU_DEMO="false",
        TSUNAGU_ADMIN_EMAIL=ADMIN,
        TSUNAGU_ADMIN_PASSWORD=PASSWORD,
        TSUNAGU_DISPATCH_LEASE_TTL_S="2",
        TSUNAGU_DISPATCH_REPLY_TIMEOUT_S="1",
        TSUNAGU_DISPATCH_CATALOG_INTERVAL_S="0.5",
        TSUNAGU_DISPATCH_REOPT_INTERVAL_S="0",
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
        for _, proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for _, proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        import redis

        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=redis_prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()


async def _owned(c: httpx.AsyncClient) -> list[str]:
    r = await c.get("/readyz")
    return list(r.json()["checks"]["dispatch"]["owned"])


async def test_sigkill_of_the_owner_loses_no_booking(
    processes: list[tuple[str, subprocess.Popen[bytes]]],
) -> None:
    (base_a, _), (base_b, _) = processes
    async with (
        httpx.AsyncClient(base_url=base_a, timeout=30) as a,
        httpx.AsyncClient(base_url=base_b, timeout=30) as b,
    ):
        r = await a.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
        assert r.status_code == 200, r.text
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        zid = f"z-{uuid.uuid4().hex[:6]}"
        r = await a.post("/api/v1/fleet/zones", json={**ZONE, "zone_id": zid}, headers=h)
        assert r.status_code == 201, r.text
        for k in range(2):
            body = {
                "vehicle_id": f"van-{k}",
                "zone_id": zid,
                "depot": A,
                "shift_end": time.time() + 8 * 3600,
            }
            r = await b.post("/api/v1/fleet/vehicles", json=body, headers=h)
            assert r.status_code == 201, r.text
        rides: list[str] = []
        for client in (a, b, a, b):
            r = await client.post(
                "/api/v1/rides", json={"request": {"origin": A, "destination": B}}, headers=h
            )
            assert r.status_code == 201, r.text
            rides.append(r.json()["ride_id"])
        owned = [await _owned(a), await _owned(b)]
        assert sorted(zid in o for o in owned) == [False, True]
        owner = 0 if zid in owned[0] else 1
        survivor = (a, b)[1 - owner]
        killed = processes[owner][1]
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)

        # Booked on the survivor at once, while the dead owner's lease still runs.
        r = await survivor.post(
            "/api/v1/rides", json={"request": {"origin": B, "destination": A}}, headers=h
        )
        assert r.status_code in (201, 202), r.text
        late = r.json()["request_id"] if r.status_code == 202 else r.json()["ride_id"]
        rides.append(late)
        end = time.monotonic() + 20
        while zid not in await _owned(survivor):
            assert time.monotonic() < end, "the survivor never took the zone over"
            await asyncio.sleep(0.2)
        end = time.monotonic() + 20
        while True:
            statuses = [
                (await survivor.get(f"/api/v1/rides/{rid}", headers=h)).json()["status"]
                for rid in rides
            ]
            if statuses == ["assigned"] * len(rides):
                break
            assert time.monotonic() < end, statuses
            await asyncio.sleep(0.2)
        fleet: list[dict[str, Any]] = (
            await survivor.get("/api/v1/fleet/vehicles", params={"zone_id": zid}, headers=h)
        ).json()["vehicles"]
        in_plans = [s["ride_id"] for v in fleet for s in v["plan"]]
        assert sorted(in_plans) == sorted(rides * 2)  # each ride once: a pick-up and a drop-off
        carriers: dict[str, set[str]] = {}
        for v in fleet:
            for s in v["plan"]:
                carriers.setdefault(s["ride_id"], set()).add(v["vehicle_id"])
        assert all(len(vs) == 1 for vs in carriers.values()), carriers

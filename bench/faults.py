"""Faults under traffic (issue #10): Redis restarted, PostgreSQL connections dropped, the zone
owner killed with SIGKILL mid-command, an app process restarted.

Run ``python -m bench.faults [--json PATH] [--fault NAME ...] [--residents N]``. For each fault
it starts a redis-server of its own (its own port and directory, append-only file on), a fresh
PostgreSQL database and two ``tsunagu serve`` processes (``python -m app.cli serve``) on them;
adds an on-demand zone over central Muroran with ``--vans`` vans; signs up ``--residents``
simulated residents, half on each process, who book rides in one step (50 %), cancel one of
their live bookings (35 %) and list their rides (15 %) with a short think time; and injects the
fault while they do:

* ``redis_restart``: redis-server stopped (SIGTERM), started again ~2 s later on the same port
  and directory;
* ``postgres_drop``: ``pg_terminate_backend`` of every connection of the app processes to their
  database, ``--pg-drops`` times ~1.5 s apart;
* ``owner_sigkill``: the zone's owner (found from the zone's lease key in Redis) killed with
  SIGKILL while a burst of bookings is in flight; the survivor takes the zone over when the
  lease expires;
* ``process_restart``: the zone's owner stopped with SIGTERM (it hands the zone over), then
  started again on the same port.

A resident whose process refuses connections (stopped, killed) is served by the other one, as
a load balancer would; a request the dying process accepted but never answered counts as "no
answer". Per fault it prints the requests, the answers by status, the errors by status, 503s
without ``Retry-After``, the recovery time (from the end of the fault to the first booking
answered 201), then settles (no booking pending, bounded) and reconciles every booking answered
201/202 with ``dispatch_rides`` and the vehicles' plans (read as an admin through the API), with
``bench.load``'s reconciliation, and checks that Redis holds no pending booking record.
``tests/app/test_faults.py`` runs the same scenarios with small traffic and asserts on them.

Everything stays on 127.0.0.1 and is bounded (requests, per-request timeout, phase deadlines).
The processes and the redis-server are stopped and the database dropped at the end of each
fault, on failure and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from bench.load import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    API,
    PG_ADMIN_URL,
    REPO,
    Booking,
    _dist_m,
    _free_port,
    _loopback,
    fleet_and_rows,
    reconcile,
)

FAULTS = ("redis_restart", "postgres_drop", "owner_sigkill", "process_restart")
ZONE_ID = "faults"
# A square over central Muroran (lon, lat), as the app tests' zone.
WEST, EAST, SOUTH, NORTH = 140.955, 141.005, 42.305, 42.345
ZONE_GEOMETRY = {
    "type": "Polygon",
    "coordinates": [[[WEST, SOUTH], [EAST, SOUTH], [EAST, NORTH], [WEST, NORTH], [WEST, SOUTH]]],
}
RESIDENT_PASSWORD = "faults-bench-resident-9"
REQUEST_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 300.0


class RedisServer(Protocol):
    """A redis-server that can be stopped and started again (``tests.conftest.OwnRedis``)."""

    @property
    def url(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Config:
    residents: int = 8
    think_s: float = 0.5
    vans: int = 4
    before_s: float = 4.0  # traffic before the fault
    after_s: float = 10.0  # traffic after the fault (and until a booking succeeded again)
    recover_timeout_s: float = 90.0  # most traffic time after the fault waiting for a 201
    settle_s: float = 120.0
    max_requests: int = 5000
    burst: int = 8  # bookings in flight when the owner is killed
    pg_drops: int = 3
    lease_ttl_s: float = 6.0
    reply_timeout_s: float = 5.0
    reopt_interval_s: float = 60.0
    seed: int = 1


@dataclass
class Answer:
    endpoint: str
    process: int  # the process that answered (or did not)
    status: int  # 0: no answer (connection lost, timeout)
    t_sent: float  # seconds since the traffic started
    t_done: float
    retry_after: str | None = None
    code: str | None = None  # the error body's code


# --- the servers --------------------------------------------------------------------------------
class Servers:
    """Two app processes on a fresh database and the given Redis (a prefix of their own)."""

    def __init__(self, redis: RedisServer, work_dir: Path, cfg: Config) -> None:
        _loopback(PG_ADMIN_URL)
        _loopback(redis.url)
        self.redis = redis
        self.work_dir = work_dir
        self.cfg = cfg
        tag = uuid.uuid4().hex[:10]
        self.db_name = f"tsunagu_faults_{tag}"
        self.prefix = f"tsunagu-faults:{tag}:"
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        self.database_url = (
            f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{self.db_name}"
        )
        self.plain_database_url = f"{base}/{self.db_name}"
        self.ports = [_free_port(), _free_port()]
        self.bases = [f"http://127.0.0.1:{p}" for p in self.ports]
        self.procs: list[subprocess.Popen[bytes] | None] = [None, None]
        self.logs = [work_dir / "app-a.log", work_dir / "app-b.log"]
        self.db_created = False

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
        env.update(
            PYTHONPATH=str(REPO),
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis.url,
            TSUNAGU_REDIS_PREFIX=self.prefix,
            TSUNAGU_DATA_DIR=str(self.work_dir / "data"),
            TSUNAGU_ENVIRONMENT="test",  # fast password hashing for the residents' sign-ups
            TSUNAGU_DEMO="false",
            TSUNAGU_ADMIN_EMAIL=ADMIN_EMAIL,
            TSUNAGU_ADMIN_PASSWORD=ADMIN_PASSWORD,
            TSUNAGU_ACCESS_TOKEN_TTL_S="7200",
            TSUNAGU_LOG_LEVEL="WARNING",
            TSUNAGU_DISPATCH_LEASE_TTL_S=str(self.cfg.lease_ttl_s),
            TSUNAGU_DISPATCH_REPLY_TIMEOUT_S=str(self.cfg.reply_timeout_s),
            TSUNAGU_DISPATCH_REOPT_INTERVAL_S=str(self.cfg.reopt_interval_s),
            TSUNAGU_DISPATCH_CATALOG_INTERVAL_S="1",
        )
        return env

    def start(self) -> None:
        """Create the database; start A (it migrates, creates the admin), then B."""
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.db_created = True
        for i in (0, 1):
            self.spawn(i)
            self.wait_ready(i)

    def spawn(self, i: int) -> None:
        with self.logs[i].open("ab") as out:
            self.procs[i] = subprocess.Popen(
                [
                    *(sys.executable, "-m", "app.cli", "serve"),
                    *("--host", "127.0.0.1", "--port", str(self.ports[i])),
                ],
                cwd=REPO,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, i: int, timeout: float = READY_TIMEOUT_S) -> None:
        proc = self.procs[i]
        assert proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"app process {i} exited:\n{self.log_tail(i)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.bases[i]}/readyz", timeout=5).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"app process {i} not ready in {timeout:.0f} s:\n{self.log_tail(i)}")

    def log_tail(self, i: int, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.logs[i].read_text(errors="replace")[-chars:]
        return ""

    def signal(self, i: int, sig: int, wait_s: float = 60.0) -> None:
        """Send ``sig`` to process ``i`` and wait for it to exit."""
        proc = self.procs[i]
        assert proc is not None
        proc.send_signal(sig)
        proc.wait(wait_s)
        self.procs[i] = None

    def owner(self, zone_id: str) -> int | None:
        """The index of the process holding the zone's lease (worker ids are ``p<pid>-...``)."""
        import redis

        from dispatch.scale_out import lease_key

        client = redis.Redis.from_url(self.redis.url)
        try:
            value = client.get(self.prefix + lease_key(zone_id))
        finally:
            client.close()
        if not value:
            return None
        head = (value.decode() if isinstance(value, bytes) else str(value)).split("-", 1)[0]
        for i, proc in enumerate(self.procs):
            if proc is not None and head == f"p{proc.pid}":
                return i
        return None

    def pending_records(self) -> list[str]:
        """Ids of Redis's pending-booking records of this cluster (none once all are handled)."""
        import redis

        client = redis.Redis.from_url(self.redis.url, decode_responses=True)
        try:
            return [str(k) for k in client.hkeys(self.prefix + "dispatch.pending")]
        finally:
            client.close()

    def drop_pg_connections(self) -> int:
        """Terminate every connection to the database but ours; how many were terminated."""
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.db_name,),
            ).fetchall()
        return sum(1 for (ok,) in rows if ok)

    def up(self) -> list[int]:
        return [i for i, p in enumerate(self.procs) if p is not None and p.poll() is None]

    def close(self) -> None:
        """Stop the processes, drop the database."""
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            if proc is None:
                continue
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs = [None, None]
        if self.db_created:
            with contextlib.suppress(Exception):
                import psycopg

                with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            self.db_created = False


# --- the residents ------------------------------------------------------------------------------
@dataclass
class Resident:
    index: int
    home: int
    headers: dict[str, str]
    mine: list[Booking] = field(default_factory=list)
    gave_up: set[str] = field(default_factory=set)  # cancels answered ambiguously, then refused


class Traffic:
    """Residents booking, cancelling and listing on both processes until ``stop`` is set."""

    def __init__(self, servers: Servers, cfg: Config) -> None:
        self.servers = servers
        self.cfg = cfg
        self.answers: list[Answer] = []
        self.bookings: dict[str, Booking] = {}
        self.residents: list[Resident] = []
        self.refusals: dict[str, str] = {}  # booking answered 202, refused later -> reason
        self.started = 0
        self.t0 = time.monotonic()
        self.stop = asyncio.Event()
        self.clients: list[httpx.AsyncClient] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def __aenter__(self) -> Traffic:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        self.clients = [
            httpx.AsyncClient(base_url=b, timeout=REQUEST_TIMEOUT_S, limits=limits)
            for b in self.servers.bases
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for c in self.clients:
            await c.aclose()

    async def call(
        self, home: int, endpoint: str, method: str, url: str, **kw: Any
    ) -> httpx.Response | None:
        """Send to ``home``; a refused connection (nothing sent) goes to the other process."""
        self.started += 1
        for i in (home, 1 - home):
            t = self.now()
            try:
                r = await self.clients[i].request(method, url, **kw)
            except httpx.ConnectError:
                continue  # the process is down: the load balancer sends it elsewhere
            except httpx.HTTPError:
                self.answers.append(Answer(endpoint, i, 0, t, self.now()))
                return None
            code = None
            if r.status_code >= 400:
                with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                    code = str(r.json()["error"]["code"])
            self.answers.append(
                Answer(
                    endpoint, i, r.status_code, t, self.now(), r.headers.get("retry-after"), code
                )
            )
            return r
        self.answers.append(Answer(endpoint, home, 0, self.now(), self.now(), code="refused"))
        return None

    def budget(self) -> bool:
        return self.started < self.cfg.max_requests and not self.stop.is_set()

    async def admin_headers(self, i: int = 0) -> dict[str, str]:
        r = await self.clients[i].post(
            f"{API}/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    async def setup(self) -> None:
        """The zone and its vans (through A), the residents signed up on their processes."""
        h = await self.admin_headers(0)
        c = self.clients[0]
        r = await c.post(
            f"{API}/fleet/zones",
            json={"zone_id": ZONE_ID, "name": "Faults", "geometry": ZONE_GEOMETRY},
            headers=h,
        )
        r.raise_for_status()
        for k in range(self.cfg.vans):
            depot = {"lat": SOUTH + 0.005 + 0.003 * k, "lon": WEST + 0.005 + 0.004 * k}
            r = await self.clients[k % 2].post(
                f"{API}/fleet/vehicles",
                json={
                    "vehicle_id": f"van-{k}",
                    "zone_id": ZONE_ID,
                    "depot": depot,
                    "shift_end": time.time() + 8 * 3600,
                },
                headers=h,
            )
            r.raise_for_status()
        for i in range(self.cfg.residents):
            home = i % 2
            r = await self.clients[home].post(
                f"{API}/auth/signup",
                json={
                    "email": f"resident-{i}-{uuid.uuid4().hex[:6]}@example.org",
                    "password": RESIDENT_PASSWORD,
                },
            )
            r.raise_for_status()
            token = r.json()["tokens"]["access_token"]
            self.residents.append(Resident(i, home, {"Authorization": f"Bearer {token}"}))

    def ride_body(self, rng: random.Random) -> dict[str, Any]:
        def point() -> tuple[float, float]:
            return (
                round(rng.uniform(SOUTH + 0.002, NORTH - 0.002), 6),
                round(rng.uniform(WEST + 0.002, EAST - 0.002), 6),
            )

        a, b = point(), point()
        for _ in range(20):
            if _dist_m(a, b) >= 800:
                break
            b = point()
        return {
            "request": {
                "origin": {"lat": a[0], "lon": a[1]},
                "destination": {"lat": b[0], "lon": b[1]},
            }
        }

    async def book(self, res: Resident, rng: random.Random, home: int | None = None) -> None:
        r = await self.call(
            res.home if home is None else home,
            "book",
            "POST",
            f"{API}/rides",
            json=self.ride_body(rng),
            headers=res.headers,
        )
        if r is not None and r.status_code in (201, 202):
            data = r.json()
            rid = str(data.get("ride_id") or data.get("request_id"))
            b = Booking(rid, res.index, r.status_code)
            self.bookings[rid] = b
            res.mine.append(b)

    async def cancel(self, res: Resident, b: Booking) -> None:
        r = await self.call(
            res.home, "cancel", "DELETE", f"{API}/rides/{b.ride_id}", headers=res.headers
        )
        if r is None or r.status_code >= 500:
            b.expect = "cancel_unknown"  # it may still be applied later
        elif r.status_code in (200, 202):  # 202 cancelling: queued durably, applied in turn
            b.expect = "cancelled"
        elif b.expect == "cancel_unknown":
            res.gave_up.add(b.ride_id)  # an earlier cancel may have been applied: either state
        else:
            b.expect = "settled"  # 409 not_cancellable, 404 a 202 refused: stays as it is

    async def resident(self, res: Resident) -> None:
        rng = random.Random(self.cfg.seed * 100_003 + res.index)
        await asyncio.sleep(rng.uniform(0, self.cfg.think_s))
        while self.budget():
            x = rng.random()
            cancellable = [
                b
                for b in res.mine
                if b.expect in ("live", "cancel_unknown") and b.ride_id not in res.gave_up
            ]
            if x < 0.5 or (x < 0.85 and not cancellable):
                await self.book(res, rng)
            elif x < 0.85:
                await self.cancel(res, rng.choice(cancellable))
            else:
                await self.call(res.home, "list", "GET", f"{API}/rides", headers=res.headers)
            think = min(rng.expovariate(1 / self.cfg.think_s), 4 * self.cfg.think_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), think)

    async def burst(self, process: int, n: int) -> list[asyncio.Task[None]]:
        """``n`` bookings sent to ``process`` at once (by the first residents); their tasks."""
        rng = random.Random(self.cfg.seed * 7 + len(self.answers))
        tasks = [
            asyncio.create_task(self.book(self.residents[k % len(self.residents)], rng, process))
            for k in range(n)
        ]
        await asyncio.sleep(0)  # let them start
        return tasks

    def first_booked_after(self, t: float) -> float | None:
        """When the first booking sent at or after ``t`` was answered 201 (None: none yet)."""
        done = [
            a.t_done
            for a in self.answers
            if a.endpoint == "book" and a.status == 201 and a.t_sent >= t
        ]
        return min(done) if done else None


# --- faults -------------------------------------------------------------------------------------
@dataclass
class FaultWindow:
    start: float = 0.0  # traffic clock when the fault began
    end: float = 0.0  # ... and when it was over (the service may still be recovering)
    faulted_process: int | None = None  # killed or restarted
    detail: dict[str, Any] = field(default_factory=dict)


async def fault_redis_restart(tr: Traffic, w: FaultWindow) -> None:
    w.start = tr.now()
    await asyncio.to_thread(tr.servers.redis.stop)
    await asyncio.sleep(2.0)
    await asyncio.to_thread(tr.servers.redis.start)
    w.end = tr.now()


async def fault_postgres_drop(tr: Traffic, w: FaultWindow) -> None:
    w.start = tr.now()
    dropped = []
    for k in range(tr.cfg.pg_drops):
        if k:
            await asyncio.sleep(1.5)
        dropped.append(await asyncio.to_thread(tr.servers.drop_pg_connections))
    w.detail["connections_terminated"] = dropped
    w.end = tr.now()


async def fault_owner_sigkill(tr: Traffic, w: FaultWindow) -> None:
    owner = await asyncio.to_thread(tr.servers.owner, ZONE_ID)
    if owner is None:
        raise RuntimeError("nobody owns the zone before the kill")
    w.faulted_process = owner
    tasks = await tr.burst(owner, tr.cfg.burst)
    await asyncio.sleep(0.05)  # some of the burst's commands are being handled
    w.start = tr.now()
    await asyncio.to_thread(tr.servers.signal, owner, signal.SIGKILL)
    w.end = tr.now()
    await asyncio.gather(*tasks)
    deadline = time.monotonic() + 60 + 2 * tr.cfg.lease_ttl_s
    while (new := await asyncio.to_thread(tr.servers.owner, ZONE_ID)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the survivor never took the zone over")
        await asyncio.sleep(0.2)
    w.detail["new_owner"] = new
    w.detail["takeover_s"] = round(tr.now() - w.end, 2)


async def fault_process_restart(tr: Traffic, w: FaultWindow) -> None:
    owner = await asyncio.to_thread(tr.servers.owner, ZONE_ID)
    i = 0 if owner is None else owner
    w.faulted_process = i
    w.start = tr.now()
    await asyncio.to_thread(tr.servers.signal, i, signal.SIGTERM)
    w.detail["stopped_s"] = round(tr.now() - w.start, 2)
    await asyncio.to_thread(tr.servers.spawn, i)
    await asyncio.to_thread(tr.servers.wait_ready, i)
    w.end = tr.now()
    w.detail["restarted_s"] = round(w.end - w.start, 2)


INJECT: dict[str, Callable[[Traffic, FaultWindow], Awaitable[None]]] = {
    "redis_restart": fault_redis_restart,
    "postgres_drop": fault_postgres_drop,
    "owner_sigkill": fault_owner_sigkill,
    "process_restart": fault_process_restart,
}


# --- one run ------------------------------------------------------------------------------------
PENDING_RECORDS_WAIT_S = 40.0
"""How long the gateways' pending sweep gets to resolve records an outage left behind (it runs
every few seconds and calls a handled booking's outcome lost after 15 s)."""


async def records_left(servers: Any, timeout_s: float) -> int:
    """Pending-booking records still in Redis once the sweep had ``timeout_s`` to resolve
    them (0 as soon as none is left)."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = len(await asyncio.to_thread(servers.pending_records))
        if left == 0 or time.monotonic() > deadline:
            return left
        await asyncio.sleep(1.0)


async def settle(tr: Traffic, base: str, settle_s: float) -> list[str]:
    """Wait (bounded) until no accepted booking is pending; record each one's final status.
    The ids still pending at the deadline."""
    async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT_S) as c:
        r = await c.post(
            f"{API}/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        r.raise_for_status()
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        gate = asyncio.Semaphore(8)

        async def status(b: Booking) -> None:
            async with gate:
                r = await c.get(f"{API}/rides/{b.ride_id}", headers=h)
            body = r.json() if r.status_code == 200 else {}
            b.final_status = str(body.get("status")) if body else f"http_{r.status_code}"
            if b.final_status == "rejected":
                tr.refusals[b.ride_id] = str(body.get("reason"))

        deadline = time.monotonic() + settle_s
        todo = list(tr.bookings.values())
        while True:
            await asyncio.gather(*(status(b) for b in todo))
            todo = [b for b in todo if b.final_status in ("pending", "http_503")]
            if not todo or time.monotonic() > deadline:
                return [b.ride_id for b in todo]
            await asyncio.sleep(1.0)


async def reconciled(tr: Traffic, base: str) -> dict[str, Any]:
    """``bench.load.reconcile`` of the bookings, read again a few times while it finds problems
    (a save in flight between the two reads)."""
    result: dict[str, Any] = {}
    for attempt in range(4):
        vehicles, rows = await fleet_and_rows(base, tr.servers.plain_database_url, ZONE_ID)
        result = reconcile(list(tr.bookings.values()), rows, vehicles)
        result["reads"] = attempt + 1
        if not result["lost_or_stuck"] and not result["double_booked"]:
            break
        await asyncio.sleep(2)
    return result


def summarise(tr: Traffic, w: FaultWindow) -> dict[str, Any]:
    statuses = Counter(str(a.status) for a in tr.answers)
    errors = Counter(str(a.status) for a in tr.answers if a.status >= 400 or a.status == 0)
    by_endpoint: dict[str, dict[str, int]] = {}
    for a in tr.answers:
        by_endpoint.setdefault(a.endpoint, Counter())[str(a.status)] += 1  # type: ignore[index]
    first_ok = tr.first_booked_after(w.end)
    served = tr.first_booked_after(w.start)
    unanswered = [a for a in tr.answers if a.status == 0]
    return {
        "requests": len(tr.answers),
        "statuses": dict(sorted(statuses.items())),
        "errors_by_status": dict(sorted(errors.items())),
        "by_endpoint": {k: dict(sorted(v.items())) for k, v in sorted(by_endpoint.items())},
        "errors_5xx_not_503": sum(1 for a in tr.answers if a.status >= 500 and a.status != 503),
        "503_without_retry_after": sum(
            1 for a in tr.answers if a.status == 503 and not a.retry_after
        ),
        "error_codes": dict(
            sorted(Counter(f"{a.status} {a.code}" for a in tr.answers if a.code).items())
        ),
        "no_answer": len(unanswered),
        "no_answer_by_process": dict(sorted(Counter(str(a.process) for a in unanswered).items())),
        "fault": {
            "start_s": round(w.start, 2),
            "end_s": round(w.end, 2),
            "faulted_process": w.faulted_process,
            **w.detail,
        },
        "recovery_s": None if first_ok is None else round(first_ok - w.end, 2),
        "first_201_after_fault_start_s": None if served is None else round(served - w.start, 2),
        "answers": [asdict(a) for a in tr.answers],
    }


async def run_fault(name: str, servers: Servers, cfg: Config) -> dict[str, Any]:
    """Start the servers, drive traffic across the fault, settle and reconcile."""
    t = time.monotonic()
    await asyncio.to_thread(servers.start)
    start_s = time.monotonic() - t
    w = FaultWindow()
    async with Traffic(servers, cfg) as tr:
        await tr.setup()
        tr.t0 = time.monotonic()
        tasks = [asyncio.create_task(tr.resident(r)) for r in tr.residents]
        try:
            await asyncio.sleep(cfg.before_s)
            await INJECT[name](tr, w)
            # Traffic goes on for after_s, and until a booking sent after the fault succeeded.
            end = time.monotonic() + cfg.after_s
            hard = time.monotonic() + cfg.recover_timeout_s
            while time.monotonic() < hard and tr.budget():
                if time.monotonic() >= end and tr.first_booked_after(w.end) is not None:
                    break
                await asyncio.sleep(0.2)
        finally:
            tr.stop.set()
            _, late = await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT_S + 10)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        up = servers.up()
        if not up:
            raise RuntimeError("no app process left to settle on")
        base = servers.bases[up[0]]
        still_pending = await settle(tr, base, cfg.settle_s)
        recon = await reconciled(tr, base)
        res = summarise(tr, w)
    res.update(
        fault_name=name,
        start_s=round(start_s, 1),
        traffic_s=round(tr.now(), 1),
        bookings_accepted=len(tr.bookings),
        bookings_202=sum(1 for b in tr.bookings.values() if b.status_code == 202),
        refused_after_202=dict(sorted(Counter(tr.refusals.values()).items())),
        still_pending=still_pending,
        pending_records_left=await records_left(servers, PENDING_RECORDS_WAIT_S),
        reconciliation=recon,
        lost_or_stuck=recon["lost_or_stuck"],
        double_booked=recon["double_booked"],
    )
    return res


def run_one(name: str, redis: RedisServer, work_dir: Path, cfg: Config) -> dict[str, Any]:
    """One fault on servers of its own (``redis`` started here and stopped at the end)."""
    redis.start()
    servers = Servers(redis, work_dir, cfg)
    try:
        return asyncio.run(run_fault(name, servers, cfg))
    except BaseException:
        for i in (0, 1):
            print(f"--- app process {i} log (tail) ---\n{servers.log_tail(i)}", file=sys.stderr)
        raise
    finally:
        servers.close()
        with contextlib.suppress(Exception):
            redis.stop()


# --- report -------------------------------------------------------------------------------------
def report(res: dict[str, Any]) -> None:
    rc = res["reconciliation"]
    f = res["fault"]
    print(
        f"{res['fault_name']}: {res['requests']} requests in {res['traffic_s']:.0f} s, "
        f"fault at {f['start_s']:.1f}-{f['end_s']:.1f} s { ({k: v for k, v in f.items() if k not in ('start_s', 'end_s')}) }"
    )
    print(f"  answers {res['statuses']}")
    print(
        f"  errors by status {res['errors_by_status']} (0 = no answer); codes {res['error_codes']}"
    )
    print(
        f"  5xx other than 503: {res['errors_5xx_not_503']}; 503 without Retry-After: "
        f"{res['503_without_retry_after']}; recovery (fault over -> first 201): "
        f"{res['recovery_s']} s (fault began -> first 201: "
        f"{res['first_201_after_fault_start_s']} s)"
    )
    print(
        f"  bookings accepted {res['bookings_accepted']} ({res['bookings_202']} answered 202, "
        f"refused later: {res['refused_after_202']}); "
        f"outcomes {rc.get('outcomes')}; lost or stuck {res['lost_or_stuck']}, double-booked "
        f"{res['double_booked']}, problems {rc.get('problem_counts')}, still pending "
        f"{len(res['still_pending'])}, pending records left in Redis {res['pending_records_left']}, "
        f"DB rides no client was told of {rc.get('db_rides_not_booked_by_clients')}"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--fault", choices=FAULTS, action="append", help="one fault (repeatable)")
    ap.add_argument("--residents", type=int, default=40)
    ap.add_argument("--think", type=float, default=0.5, help="mean think time (s)")
    ap.add_argument("--vans", type=int, default=10)
    ap.add_argument("--before", type=float, default=15.0, help="traffic before the fault (s)")
    ap.add_argument("--after", type=float, default=30.0, help="traffic after the fault (s)")
    ap.add_argument("--burst", type=int, default=20, help="bookings in flight at the SIGKILL")
    ap.add_argument("--max-requests", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep-logs", action="store_true", help="keep the app processes' logs")
    a = ap.parse_args(argv)
    if a.residents < 1 or a.think <= 0 or a.vans < 1 or a.before < 0 or a.after < 0:
        ap.error("--residents, --think and --vans must be positive, --before/--after >= 0")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    # The test suite's redis-server helper (it imports nothing of the app).
    sys.path.insert(0, str(REPO))
    from tests.conftest import OwnRedis

    a = parse_args(argv)
    cfg = Config(
        residents=a.residents,
        think_s=a.think,
        vans=a.vans,
        before_s=a.before,
        after_s=a.after,
        burst=a.burst,
        max_requests=a.max_requests,
        seed=a.seed,
    )
    results: dict[str, Any] = {}
    for name in a.fault or FAULTS:
        work = Path(tempfile.mkdtemp(prefix=f"tsunagu-faults-{name}-"))
        try:
            (work / "redis").mkdir()
            res = run_one(name, OwnRedis(work / "redis"), work, cfg)
        except KeyboardInterrupt:
            print("bench.faults: interrupted; cleaned up", file=sys.stderr)
            return 130
        finally:
            if a.keep_logs:
                print(f"logs kept in {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
        report(res)
        results[name] = res
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The live service under load (issue #10): two ``tsunagu serve`` processes, simulated residents.

Run ``python -m bench.load [--json PATH] [--quick] [--users N] [--duration S]``. It starts two
app processes (``python -m app.cli serve``) on one fresh PostgreSQL database and one Redis key
prefix, with the demo city (Muroran) and its on-demand zone around Higashi-Muroran station and
no simulated demo riders; waits for ``/readyz`` and warms both up (a plan, an on-demand plan,
a quote: the numba kernels compile on first use). Then ``--users`` residents (default 200;
``--quick``: 50 for 60 s), half on each process, sign up and loop with think time for
``--duration`` seconds (default 300):

* 70 % ``GET /api/v1/plan`` between random Muroran stops or places (a share with
  ``mode=TRANSIT,WALK,FLEX``, on-demand legs quoted from the live fleet);
* 20 % ``POST /api/v1/rides/quote`` inside the demo zone, then ``POST /api/v1/rides`` with the
  quote id;
* 10 % ``DELETE /api/v1/rides/{id}`` of one of their live bookings (a plan when they have none).

Think time is exponential, mean ``--think`` (3 s), at most 4x that; ``--flex-share`` (0.25) of
the plans ask for on-demand legs. The zone runs ``--vans`` vans (20, as in the issue's
measurements: the demo's default 4 would refuse most quotes) and its shuttle, in real time; the
dispatcher's other settings are the defaults (re-optimisation every 60 s). The client runs on
the same machine as the servers and takes part of its CPU: the load average is reported.

Before the residents, ``--backlog`` commands (default 200: bookings, each followed by its
cancellation) are put on the zone's stream at once and timed until the zone owner recorded
every outcome: its drain rate in commands/s, a per-command cost much less noisy on a shared
machine than the latencies under load.

It prints requests/s and p50/p95/p99 per endpoint, answers by status code, the zone owner's peak
memory (``VmHWM`` of the process holding the zone's lease, sampled ``VmRSS`` as well), then
reconciles: every booking a client got 201/202 for is in ``dispatch_rides`` exactly once and in
exactly one vehicle's plan, or completed / cancelled as its client expects; no vehicle's plan
over capacity and no ride in two plans; none still pending once the run has settled. Targets
(0 5xx, p95 <= 300 ms for plan, book and cancel, owner memory <= 1 GB, 0 double-booked, 0 lost
or stuck) are printed next to the figures with PASS/MISS; nothing is asserted.

Everything stays on 127.0.0.1 and is bounded (duration, request count, per-request timeout,
drain and settle deadlines). The processes are stopped, the database dropped and the Redis keys
deleted at the end, on failure and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import httpx

REPO = Path(__file__).resolve().parent.parent
DEMO_FEED = REPO / "app" / "demo_data" / "jp_donan_bus_muroran.zip"
PG_ADMIN_URL = os.environ.get(
    "TSUNAGU_BENCH_PG", os.environ.get("TSUNAGU_TEST_PG", "postgresql://127.0.0.1:5432/test")
)
REDIS_URL = os.environ.get(
    "TSUNAGU_BENCH_REDIS", os.environ.get("TSUNAGU_TEST_REDIS", "redis://127.0.0.1:6379/0")
)
ADMIN_EMAIL = "load-admin@example.org"
ADMIN_PASSWORD = "load-bench-admin-password"
RESIDENT_PASSWORD = "load-bench-resident-9"
DEMO_ZONE = "muroran-higashi"
STATION = (42.3487, 141.0261)  # Higashi-Muroran station

API = "/api/v1"
TARGET_P95_MS = 300.0
TARGET_OWNER_MB = 1024.0
REQUEST_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 600.0
WARM_TIMEOUT_S = 600.0
DRAIN_S = 60.0
SETTLE_S = 90.0
BACKLOG_PREFIX = "backlog-"  # ride ids of the drain measurement's bookings
BACKLOG_TIMEOUT_S = 300.0
# Statuses a booking's client treats as still live (the ride should be in a plan or done).
LIVE = {"assigned", "onboard"}
DONE = {"completed", "no_show"}


# --- figures ------------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) by linear interpolation; None for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass
class Sample:
    endpoint: str
    status: int  # 0: no answer (timeout, connection error)
    ms: float
    #: When it was sent (``time.monotonic()``) and to which process (its base URL): where in
    #: the run the slow ones fall (``--samples``).
    sent: float = 0.0
    server: str = ""


@dataclass
class Recorder:
    samples: list[Sample] = field(default_factory=list)
    #: What unanswered requests ended with, by endpoint ("quote ReadTimeout": n): a timeout,
    #: a refused connection and a connection the server dropped are different bugs.
    no_answer_kinds: Counter[str] = field(default_factory=Counter)

    def add(
        self, endpoint: str, status: int, ms: float, sent: float = 0.0, server: str = ""
    ) -> None:
        self.samples.append(Sample(endpoint, status, ms, sent, server))

    def add_no_answer(
        self, endpoint: str, error: BaseException, ms: float, sent: float = 0.0, server: str = ""
    ) -> None:
        self.add(endpoint, 0, ms, sent, server)
        self.no_answer_kinds[f"{endpoint} {type(error).__name__}"] += 1

    def write_csv(self, path: Path) -> None:
        """Every request: seconds from the first one sent, endpoint, status, ms, server."""
        t0 = min((s.sent for s in self.samples), default=0.0)
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["t_s", "endpoint", "status", "ms", "server"])
            for s in sorted(self.samples, key=lambda s: s.sent):
                w.writerow([f"{s.sent - t0:.3f}", s.endpoint, s.status, f"{s.ms:.1f}", s.server])

    def summary(self, elapsed_s: float) -> dict[str, Any]:
        by: dict[str, list[Sample]] = defaultdict(list)
        for s in self.samples:
            by[s.endpoint].append(s)
        endpoints: dict[str, Any] = {}
        for name in sorted(by):
            ss = by[name]
            ms = [s.ms for s in ss if s.status]
            endpoints[name] = {
                "count": len(ss),
                "per_s": round(len(ss) / elapsed_s, 2) if elapsed_s > 0 else None,
                "p50_ms": _r(percentile(ms, 50)),
                "p95_ms": _r(percentile(ms, 95)),
                "p99_ms": _r(percentile(ms, 99)),
                "statuses": {str(k): v for k, v in sorted(Counter(s.status for s in ss).items())},
            }
        errors = Counter(str(s.status) for s in self.samples if s.status >= 400 or s.status == 0)
        return {
            "requests": len(self.samples),
            "requests_per_s": round(len(self.samples) / elapsed_s, 2) if elapsed_s > 0 else None,
            "endpoints": endpoints,
            "errors_by_status": dict(sorted(errors.items())),
            "errors_5xx": sum(1 for s in self.samples if s.status >= 500),
            "no_answer": sum(1 for s in self.samples if s.status == 0),
            "no_answer_kinds": dict(sorted(self.no_answer_kinds.items())),
        }

    def pct(self, q: float, *endpoints: str) -> float | None:
        """The ``q``-th percentile of the answered requests to ``endpoints`` (ms)."""
        ms = [s.ms for s in self.samples if s.endpoint in endpoints and s.status]
        return _r(percentile(ms, q))


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


# --- reconciliation -----------------------------------------------------------------------------
@dataclass
class Booking:
    """A booking a client was answered 201 or 202 for, and what that client expects of it."""

    ride_id: str
    user: int
    status_code: int  # 201 or 202
    expect: str = "live"  # live | cancelled | cancel_unknown (the cancel got no clear answer)
    final_status: str | None = None  # GET /rides/{id} once the run settled


def reconcile(
    bookings: Sequence[Booking],
    db_rows: Sequence[dict[str, Any]],
    vehicles: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """Check the clients' bookings against the database and the vehicles' plans.

    ``db_rows``: ``dispatch_rides`` rows (``ride_id``, ``status``, ``vehicle_id``, ``seats``,
    ``wheelchairs``). ``vehicles``: the ``GET /fleet/vehicles`` shape (``plan`` of stops with
    ``ride_id`` and ``kind``, ``onboard`` ride ids, ``seats``, ``wheelchair_spaces``).

    ``double_booked``: rides in two or more vehicles' plans plus vehicles whose plan goes over
    capacity at some stop. ``lost_or_stuck``: bookings absent from the database (unless refused
    after a 202), present more than once, still pending, live but in no plan, or not in the
    state their client expects (cancelled but still planned, or cancelled without being asked).
    """
    rows_by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in db_rows:
        rows_by[str(row["ride_id"])].append(row)
    planned_in: dict[str, set[str]] = defaultdict(set)
    for v in vehicles:
        vid = str(v["vehicle_id"])
        for s in v.get("plan", []):
            planned_in[str(s["ride_id"])].add(vid)
        for rid in v.get("onboard", []):
            planned_in[str(rid)].add(vid)

    problems: dict[str, list[str]] = defaultdict(list)
    outcomes: Counter[str] = Counter()
    for b in bookings:
        rows = rows_by.get(b.ride_id, [])
        if b.final_status == "pending":
            problems["stuck_pending"].append(b.ride_id)
            continue
        if not rows:
            if b.status_code == 202 and b.final_status == "rejected":
                outcomes["refused_after_202"] += 1
            else:
                problems["missing_from_db"].append(b.ride_id)
            continue
        if len(rows) > 1:
            problems["duplicated_in_db"].append(b.ride_id)
        status = str(rows[0]["status"])
        outcomes[status] += 1
        in_plans = planned_in.get(b.ride_id, set())
        if status in LIVE:
            if b.expect == "cancelled":
                problems["cancel_not_applied"].append(b.ride_id)
            elif not in_plans:
                problems["live_in_no_plan"].append(b.ride_id)
            elif in_plans != {str(rows[0]["vehicle_id"])}:
                problems["plan_vehicle_mismatch"].append(b.ride_id)
        elif status == "cancelled":
            if b.expect in ("live", "settled"):
                problems["cancelled_unasked"].append(b.ride_id)
            if in_plans:
                problems["cancelled_still_planned"].append(b.ride_id)
        elif status in DONE:
            if in_plans:
                problems["done_still_planned"].append(b.ride_id)
        else:
            problems[f"status_{status}"].append(b.ride_id)

    two_plans = sorted(rid for rid, vids in planned_in.items() if len(vids) > 1)
    seats = {
        str(r["ride_id"]): (int(r.get("seats", 1)), int(r.get("wheelchairs", 0))) for r in db_rows
    }
    over: list[str] = []
    for v in vehicles:
        load_s = load_w = 0
        unknown = False
        for rid in v.get("onboard", []):
            s, w = seats.get(str(rid), (0, 0))
            load_s, load_w = load_s + s, load_w + w
        peak_s, peak_w = load_s, load_w
        for stop in v.get("plan", []):
            rid = str(stop["ride_id"])
            if rid not in seats:
                unknown = True
                continue
            s, w = seats[rid]
            sign = 1 if stop["kind"] == "pickup" else -1
            load_s, load_w = load_s + sign * s, load_w + sign * w
            peak_s, peak_w = max(peak_s, load_s), max(peak_w, load_w)
        if unknown:
            problems["plan_ride_unknown"].append(str(v["vehicle_id"]))
        if peak_s > int(v["seats"]) or peak_w > int(v.get("wheelchair_spaces", 0)):
            over.append(str(v["vehicle_id"]))
    known = {b.ride_id for b in bookings}
    unexpected = sorted(
        rid for rid in rows_by if rid not in known and not rid.startswith(BACKLOG_PREFIX)
    )
    lost_or_stuck = sum(len(v) for k, v in problems.items() if k != "plan_ride_unknown")
    return {
        "bookings": len(bookings),
        "bookings_202": sum(1 for b in bookings if b.status_code == 202),
        "outcomes": dict(sorted(outcomes.items())),
        "double_booked": len(two_plans) + len(over),
        "rides_in_two_plans": two_plans,
        "vehicles_over_capacity": over,
        "lost_or_stuck": lost_or_stuck,
        "problems": {k: sorted(v)[:20] for k, v in sorted(problems.items())},
        "problem_counts": {k: len(v) for k, v in sorted(problems.items())},
        "db_rides_not_booked_by_clients": len(unexpected),
    }


# --- places -------------------------------------------------------------------------------------
def muroran_stops(feed: Path = DEMO_FEED) -> list[tuple[str, float, float]]:
    """``(stop_id, lat, lon)`` of the demo feed's stops."""
    with zipfile.ZipFile(feed) as z, z.open("stops.txt") as f:
        rows = csv.DictReader(io.TextIOWrapper(f, encoding="utf-8-sig"))
        return [(r["stop_id"], float(r["stop_lat"]), float(r["stop_lon"])) for r in rows]


def _in_ring(lat: float, lon: float, ring: Sequence[Sequence[float]]) -> bool:
    inside = False
    n = len(ring)
    for i in range(n):
        x1, y1 = ring[i][0], ring[i][1]
        x2, y2 = ring[(i + 1) % n][0], ring[(i + 1) % n][1]
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def in_multipolygon(lat: float, lon: float, polygons: Sequence[Any]) -> bool:
    """GeoJSON MultiPolygon coordinates (``[lon, lat]``): outer ring in, no hole."""
    return any(
        _in_ring(lat, lon, poly[0]) and not any(_in_ring(lat, lon, h) for h in poly[1:])
        for poly in polygons
    )


def zone_points(polygons: Sequence[Any], n: int, rng: random.Random) -> list[tuple[float, float]]:
    """``n`` random ``(lat, lon)`` inside the zone (rejection sampling in its bounding box)."""
    lons = [p[0] for poly in polygons for ring in poly for p in ring]
    lats = [p[1] for poly in polygons for ring in poly for p in ring]
    out: list[tuple[float, float]] = []
    for _ in range(n * 1000):
        if len(out) >= n:
            break
        lat, lon = rng.uniform(min(lats), max(lats)), rng.uniform(min(lons), max(lons))
        if in_multipolygon(lat, lon, polygons):
            out.append((round(lat, 6), round(lon, 6)))
    return out


def _dist_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    kx = 111_320.0 * math.cos(math.radians(a[0]))
    return math.hypot((a[1] - b[1]) * kx, (a[0] - b[0]) * 111_320.0)


# --- the cluster --------------------------------------------------------------------------------
def _loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"bench.load talks to loopback servers only, not {url}")


def _free_port() -> int:
    """A free port below the kernel's ephemeral range (see ``tests.conftest.free_port``)."""
    import socket

    try:
        high = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        high = 32768
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.randrange(20_000, max(high, 20_001))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free localhost port")


class Cluster:
    """Two app processes (``processes``: 1 for bench.request_cost) on a database and a Redis
    prefix of their own; ``close`` undoes all."""

    def __init__(
        self,
        vans: int,
        keep_logs: bool = False,
        processes: int = 2,
        settings: dict[str, str] | None = None,
    ) -> None:
        _loopback(PG_ADMIN_URL)
        _loopback(REDIS_URL)
        self.vans = vans
        self.keep_logs = keep_logs
        self.processes = processes
        self.settings = dict(settings or {})  # extra app settings (``--set``), e.g. an A/B run
        tag = uuid.uuid4().hex[:10]
        self.db_name = f"tsunagu_load_{tag}"
        self.prefix = f"tsunagu-load:{tag}:"
        self.data_dir = Path(tempfile.mkdtemp(prefix="tsunagu-load-"))
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        self.database_url = (
            f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{self.db_name}"
        )
        self.plain_database_url = f"{base}/{self.db_name}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.bases: list[str] = []
        self.logs: list[Path] = []
        self.db_created = False
        self.stopping = False  # set on Ctrl-C / SIGTERM: a start in progress gives up

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
        env.update(
            PYTHONPATH=str(REPO),
            DATABASE_URL=self.database_url,
            REDIS_URL=REDIS_URL,
            TSUNAGU_REDIS_PREFIX=self.prefix,
            TSUNAGU_DATA_DIR=str(self.data_dir / "data"),  # shared: feed artifacts
            TSUNAGU_DEMO="true",
            TSUNAGU_DEMO_FLEET="true",
            TSUNAGU_DEMO_RIDERS_PER_HOUR="0",
            TSUNAGU_DISPATCH_DEMO_VEHICLES=str(self.vans),
            TSUNAGU_ADMIN_EMAIL=ADMIN_EMAIL,
            TSUNAGU_ADMIN_PASSWORD=ADMIN_PASSWORD,
            TSUNAGU_ACCESS_TOKEN_TTL_S="7200",
            TSUNAGU_LOG_LEVEL="WARNING",
        )
        env.update({f"TSUNAGU_{k.upper()}": v for k, v in self.settings.items()})
        return env

    def start(self) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.db_created = True
        # The first process migrates, creates the admin and imports the demo city, as a
        # deployment prepares the database before scaling out; the second then joins.
        for name in "ab"[: self.processes]:
            if self.stopping:
                raise KeyboardInterrupt
            port = _free_port()
            log = self.data_dir / f"app-{name}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "app.cli",
                        "serve",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                    ],
                    cwd=REPO,
                    env=self.env(),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            self.procs.append(proc)
            self.logs.append(log)
            self.bases.append(f"http://127.0.0.1:{port}")
            self._wait_ready(len(self.procs) - 1)

    def _wait_ready(self, i: int) -> None:
        proc, base, log = self.procs[i], self.bases[i], self.logs[i]
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.stopping:
                raise KeyboardInterrupt
            if proc.poll() is not None:
                raise RuntimeError(f"app process {i} exited:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"app process {i} not ready in {READY_TIMEOUT_S:.0f}s")

    def owner_pids(self) -> list[int]:
        """Pids of the processes holding a zone lease now (worker ids are ``p<pid>-...``)."""
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        try:
            pids = []
            for key in client.scan_iter(match=f"{self.prefix}dispatch.lease.*"):
                value = client.get(key)
                if value:
                    text = value.decode() if isinstance(value, bytes) else str(value)
                    head = text.split("-", 1)[0]
                    if head.startswith("p") and head[1:].isdigit():
                        pids.append(int(head[1:]))
            return pids
        finally:
            client.close()

    def close(self) -> None:
        """Stop the processes, delete the Redis keys, drop the database, remove the data dir."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=self.prefix + "*", count=1000))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i : i + 500])
            client.close()
        if self.db_created:
            with contextlib.suppress(Exception):
                import psycopg

                with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        if self.keep_logs:
            print(f"logs kept in {self.data_dir}")
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def rss_mb(pid: int) -> dict[str, float]:
    """``VmRSS`` and ``VmHWM`` (peak) of a process, in MB (empty once it is gone)."""
    out: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024.0
    return out


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # utime and stime are fields 14 and 15 of proc(5); the split starts at field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the residents ------------------------------------------------------------------------------
@dataclass
class World:
    """What the residents draw their trips from."""

    stops: list[tuple[str, float, float]]
    zone_pts: list[tuple[float, float]]
    service_date: str
    zone_id: str


@dataclass
class Options:
    users: int
    duration_s: float
    think_s: float
    flex_share: float
    max_requests: int
    seed: int
    backlog: int = 0
    samples: Path | None = None  # every request as CSV (``--samples``)


class Load:
    def __init__(self, cluster: Cluster, world: World, opts: Options) -> None:
        self.cluster = cluster
        self.world = world
        self.opts = opts
        self.rec = Recorder()
        self.bookings: dict[str, Booking] = {}
        self.requests_started = 0
        self.actions: Counter[str] = Counter()
        self.signup_gate = asyncio.Semaphore(8)

    def _budget(self) -> bool:
        if self.requests_started >= self.opts.max_requests:
            return False
        self.requests_started += 1
        return True

    async def call(
        self, client: httpx.AsyncClient, endpoint: str, method: str, url: str, **kw: Any
    ) -> httpx.Response | None:
        sent, server = time.monotonic(), str(client.base_url)
        t = time.perf_counter()
        try:
            r = await client.request(method, url, **kw)
        except httpx.HTTPError as e:
            self.rec.add_no_answer(endpoint, e, (time.perf_counter() - t) * 1000, sent, server)
            return None
        self.rec.add(endpoint, r.status_code, (time.perf_counter() - t) * 1000, sent, server)
        return r

    def plan_params(self, rng: random.Random) -> tuple[str, dict[str, Any]]:
        w = self.world

        def place() -> str:
            sid, lat, lon = rng.choice(w.stops)
            if rng.random() < 0.5:
                return sid
            # A door near a stop (within ~400 m).
            return f"{lat + rng.uniform(-0.003, 0.003):.6f},{lon + rng.uniform(-0.004, 0.004):.6f}"

        params: dict[str, Any] = {
            "fromPlace": place(),
            "toPlace": place(),
            "date": w.service_date,
            "time": f"{rng.randint(6, 20):02d}:{rng.randint(0, 59):02d}",
        }
        if rng.random() < self.opts.flex_share:
            # From or to a door inside the on-demand zone, so that a van leg can be quoted.
            lat, lon = rng.choice(w.zone_pts)
            params["fromPlace" if rng.random() < 0.5 else "toPlace"] = f"{lat},{lon}"
            params["mode"] = "TRANSIT,WALK,FLEX"
            return "plan_flex", params
        return "plan", params

    async def resident(self, i: int, client: httpx.AsyncClient, deadline: float) -> None:
        rng = random.Random(self.opts.seed * 100_003 + i)
        await asyncio.sleep(rng.uniform(0, min(10.0, self.opts.duration_s / 6)))
        if time.monotonic() >= deadline or not self._budget():
            return
        async with self.signup_gate:
            r = await self.call(
                client,
                "signup",
                "POST",
                f"{API}/auth/signup",
                json={
                    "email": f"resident-{i}-{uuid.uuid4().hex[:6]}@example.org",
                    "password": RESIDENT_PASSWORD,
                },
            )
        if r is None or r.status_code != 201:
            return
        headers = {"Authorization": f"Bearer {r.json()['tokens']['access_token']}"}
        mine: list[Booking] = []
        while time.monotonic() < deadline:
            think = min(rng.expovariate(1 / self.opts.think_s), 4 * self.opts.think_s)
            await asyncio.sleep(max(0.0, min(think, deadline - time.monotonic())))
            if time.monotonic() >= deadline or not self._budget():
                return
            x = rng.random()
            live = [b for b in mine if b.expect == "live"]
            if x < 0.7 or (x >= 0.9 and not live):
                self.actions["plan"] += 1
                endpoint, params = self.plan_params(rng)
                await self.call(client, endpoint, "GET", f"{API}/plan", params=params)
            elif x < 0.9:
                self.actions["book"] += 1
                await self.book(client, headers, rng, i, mine)
            else:
                self.actions["cancel"] += 1
                b = rng.choice(live)
                r = await self.call(
                    client, "cancel", "DELETE", f"{API}/rides/{b.ride_id}", headers=headers
                )
                if r is None or r.status_code >= 500 or r.status_code == 202:
                    # 202: queued while the zone changes owner; it may yet be refused.
                    b.expect = "cancel_unknown"
                elif r.status_code == 200:
                    b.expect = "cancelled"
                else:  # 409 not_cancellable (picked up), 404 (a 202 refused): stays as it is
                    b.expect = "settled"

    async def book(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        rng: random.Random,
        i: int,
        mine: list[Booking],
    ) -> None:
        pts = self.world.zone_pts
        a = rng.choice(pts)
        b = rng.choice(pts)
        for _ in range(20):
            if _dist_m(a, b) >= 500:
                break
            b = rng.choice(pts)
        body = {"origin": {"lat": a[0], "lon": a[1]}, "destination": {"lat": b[0], "lon": b[1]}}
        q = await self.call(
            client, "quote", "POST", f"{API}/rides/quote", json=body, headers=headers
        )
        if q is None or q.status_code != 200 or not self._budget():
            return
        r = await self.call(
            client,
            "book",
            "POST",
            f"{API}/rides",
            json={"quote_id": q.json()["quote_id"]},
            headers=headers,
        )
        if r is not None and r.status_code in (201, 202):
            data = r.json()
            rid = str(data.get("ride_id") or data.get("request_id"))
            booking = Booking(rid, i, r.status_code)
            self.bookings[rid] = booking
            mine.append(booking)

    async def run(self) -> float:
        """Drive the residents; the load phase's elapsed seconds."""
        limits = httpx.Limits(
            max_connections=self.opts.users, max_keepalive_connections=self.opts.users
        )
        clients = [
            httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT_S, limits=limits)
            for base in self.cluster.bases
        ]
        try:
            t0 = time.monotonic()
            deadline = t0 + self.opts.duration_s
            tasks = [
                asyncio.create_task(self.resident(i, clients[i % len(clients)], deadline))
                for i in range(self.opts.users)
            ]
            _, late = await asyncio.wait(tasks, timeout=self.opts.duration_s + DRAIN_S)
            for t in late:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return time.monotonic() - t0
        finally:
            for c in clients:
                await c.aclose()


# --- phases -------------------------------------------------------------------------------------
async def warm_up(base: str, world_zone: list[tuple[float, float]], service_date: str) -> None:
    """One plan, one on-demand plan and one quote per process: the kernels compile here."""
    async with httpx.AsyncClient(base_url=base, timeout=WARM_TIMEOUT_S) as c:
        params = {
            "fromPlace": "42.3158,140.9738",
            "toPlace": "42.3466,141.0240",
            "time": "08:00",
            "date": service_date,
        }
        (await c.get(f"{API}/plan", params=params)).raise_for_status()
        flex = {
            **params,
            "fromPlace": f"{world_zone[0][0]},{world_zone[0][1]}",
            "mode": "TRANSIT,WALK,FLEX",
        }
        await c.get(f"{API}/plan", params=flex)
        r = await c.post(
            f"{API}/auth/signup",
            json={
                "email": f"warm-{uuid.uuid4().hex[:8]}@example.org",
                "password": RESIDENT_PASSWORD,
            },
        )
        r.raise_for_status()
        h = {"Authorization": f"Bearer {r.json()['tokens']['access_token']}"}
        a, b = world_zone[0], world_zone[-1]
        await c.post(
            f"{API}/rides/quote",
            headers=h,
            json={"origin": {"lat": a[0], "lon": a[1]}, "destination": {"lat": b[0], "lon": b[1]}},
        )


async def discover(base: str, seed: int) -> World:
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        net = (await c.get(f"{API}/network")).json()
        demo = (await c.get(f"{API}/demo")).json()
    od = demo.get("on_demand") or {}
    if not od.get("geometry"):
        raise RuntimeError(f"the demo has no on-demand zone: {demo}")
    polygons = od["geometry"]["coordinates"]
    pts = zone_points(polygons, 200, random.Random(seed))
    if not in_multipolygon(*STATION, polygons):
        print(f"note: Higashi-Muroran station {STATION} is not inside the demo zone")
    return World(
        stops=muroran_stops(),
        zone_pts=pts,
        service_date=str(net.get("demo_service_date") or net["service_date"]),
        zone_id=str(od.get("zone_id") or DEMO_ZONE),
    )


async def drain_backlog(cluster: Cluster, world: World, n: int, seed: int) -> dict[str, Any]:
    """Put ``n`` commands on the zone's stream at once (bookings of random trips in the zone,
    each followed by its cancellation, so the zone's plans end as they were) and time them
    until the owner recorded every outcome: the owner's drain rate, commands/s."""
    import redis.asyncio as aioredis

    from app.events.redis_bus import RedisEventBus
    from dispatch.request import RideRequest
    from dispatch.scale_out import book_message, zone_stream

    rng = random.Random(seed)
    now = time.time()
    msgs: list[dict[str, Any]] = []
    for k in range((n + 1) // 2):
        a = rng.choice(world.zone_pts)
        b = rng.choice(world.zone_pts)
        for _ in range(20):
            if _dist_m(a, b) >= 500:
                break
            b = rng.choice(world.zone_pts)
        rid = f"{BACKLOG_PREFIX}{uuid.uuid4().hex[:12]}"
        req = RideRequest(
            origin=a,
            destination=b,
            requested_at=now,
            earliest_pickup=now + 900 + 30 * k,
            request_id=rid,
            user_id="load-backlog",
        )
        msgs += [book_message(req), {"op": "cancel", "ride_id": rid}]
    msgs = msgs[:n]
    corrs = [uuid.uuid4().hex for _ in msgs]
    bus = RedisEventBus(REDIS_URL, prefix=cluster.prefix)
    await bus.start()
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    keys = [f"{cluster.prefix}dispatch.outcome.{c}" for c in corrs]
    try:
        t0 = time.perf_counter()
        for m, corr in zip(msgs, corrs, strict=True):
            await bus.enqueue(
                zone_stream(world.zone_id), {**m, "zone_id": world.zone_id, "corr": corr}
            )
        queued_s = time.perf_counter() - t0
        done = 0
        while time.perf_counter() - t0 < BACKLOG_TIMEOUT_S:
            done = int(await client.exists(*keys))
            if done == len(keys):
                break
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - t0
        outs = [json.loads(v) for v in await client.mget(keys) if v is not None]
    finally:
        await client.aclose()
        await bus.close()
    kinds = Counter(
        "booked"
        if o.get("status") == "assigned"
        else o.get("status") or o.get("rejected") or o.get("error")
        for o in outs
    )
    return {
        "commands": len(msgs),
        "handled": done,
        "queued_s": round(queued_s, 3),
        "drain_s": round(elapsed, 3),
        "commands_per_s": round(done / elapsed, 1) if elapsed > 0 else None,
        "outcomes": dict(sorted((str(k), v) for k, v in kinds.items())),
    }


async def settle(base: str, load: Load) -> None:
    """Wait until no booking is pending (bounded), then record every booking's final status."""
    async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT_S) as c:
        r = await c.post(
            f"{API}/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        r.raise_for_status()
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        gate = asyncio.Semaphore(16)

        async def status(b: Booking) -> None:
            async with gate:
                r = await c.get(f"{API}/rides/{b.ride_id}", headers=h)
            b.final_status = (
                str(r.json().get("status")) if r.status_code == 200 else f"http_{r.status_code}"
            )

        deadline = time.monotonic() + SETTLE_S
        todo = list(load.bookings.values())
        while True:
            await asyncio.gather(*(status(b) for b in todo))
            todo = [b for b in todo if b.final_status == "pending"]
            if not todo or time.monotonic() > deadline:
                return
            await asyncio.sleep(2)


async def fleet_and_rows(
    base: str, plain_db_url: str, zone_id: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The vehicles' plans (as the admin) and the ``dispatch_rides`` rows, read back to back."""
    import psycopg

    async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT_S) as c:
        r = await c.post(
            f"{API}/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        r.raise_for_status()
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        v = await c.get(f"{API}/fleet/vehicles", headers=h)
        v.raise_for_status()
        vehicles = list(v.json()["vehicles"])

    def rows() -> list[dict[str, Any]]:
        with psycopg.connect(plain_db_url) as conn:
            cur = conn.execute("SELECT ride_id, status, vehicle_id, ride FROM dispatch_rides")
            out = []
            for ride_id, status, vehicle_id, ride in cur.fetchall():
                ride = ride if isinstance(ride, dict) else json.loads(ride)
                out.append(
                    {
                        "ride_id": ride_id,
                        "status": status,
                        "vehicle_id": vehicle_id,
                        "seats": ride.get("seats", 1),
                        "wheelchairs": ride.get("wheelchairs", 0),
                    }
                )
            return out

    return vehicles, await asyncio.to_thread(rows)


async def reconcile_settled(cluster: Cluster, load: Load) -> dict[str, Any]:
    """Reconcile; a ride whose status changes between the two reads (a van moving on) makes a
    transient mismatch, so a result with problems is read again a few times before it counts:
    over more than the apps' save interval (10 s), since a ride dropped off in memory leaves
    the van's plan at once but reaches ``dispatch_rides`` at the next save."""
    result: dict[str, Any] = {}
    for attempt in range(6):
        vehicles, rows = await fleet_and_rows(
            cluster.bases[0], cluster.plain_database_url, load.world.zone_id
        )
        result = reconcile(list(load.bookings.values()), rows, vehicles)
        result["reads"] = attempt + 1
        if not result["lost_or_stuck"] and not result["double_booked"]:
            break
        await asyncio.sleep(3)
    return result


class MemoryWatch:
    """Samples both processes' ``VmRSS`` every second and which of them owns a zone, and
    counts the CPU each app process and this client took meanwhile (in cores: CPU seconds
    per second), to tell where the machine's cores went."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.peak_rss: dict[int, float] = defaultdict(float)
        self.owners: set[int] = set()
        self.task: asyncio.Task[None] | None = None
        self.cpu0: dict[int, float | None] = {}
        self.t0 = 0.0

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                self.owners.update(await asyncio.to_thread(self.cluster.owner_pids))
            for p in self.cluster.procs:
                rss = rss_mb(p.pid).get("VmRSS")
                if rss is not None:
                    self.peak_rss[p.pid] = max(self.peak_rss[p.pid], rss)
            await asyncio.sleep(1.0)

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.cpu0 = {p.pid: cpu_s(p.pid) for p in self.cluster.procs}
        self.cpu0[os.getpid()] = cpu_s(os.getpid())
        self.task = asyncio.create_task(self._loop())

    def _cores(self, pid: int, elapsed: float) -> float | None:
        before, after = self.cpu0.get(pid), cpu_s(pid)
        if before is None or after is None or elapsed <= 0:
            return None
        return round((after - before) / elapsed, 2)

    async def stop(self) -> dict[str, Any]:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        elapsed = time.monotonic() - self.t0
        procs: dict[str, Any] = {}
        for name, p in zip("ab", self.cluster.procs, strict=False):
            hwm = rss_mb(p.pid).get("VmHWM")
            procs[name] = {
                "pid": p.pid,
                "owner": p.pid in self.owners,
                "peak_rss_mb_sampled": round(self.peak_rss.get(p.pid, 0.0), 1),
                "vm_hwm_mb": None if hwm is None else round(hwm, 1),
                "cpu_cores": self._cores(p.pid, elapsed),
            }
        owners = [v for v in procs.values() if v["owner"]] or list(procs.values())
        peak = max(
            (max(v["vm_hwm_mb"] or 0.0, v["peak_rss_mb_sampled"]) for v in owners), default=0.0
        )
        return {
            "processes": procs,
            "peak_owner_rss_mb": round(peak, 1),
            "client_cpu_cores": self._cores(os.getpid(), elapsed),
        }


def targets(res: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target with its figure and PASS/MISS (a missing figure misses)."""

    def le(value: float | None, limit: float) -> bool:
        return value is not None and value <= limit

    rows = {
        "errors_5xx": (res["errors_5xx"], "== 0", res["errors_5xx"] == 0),
        "p95_ms_plan": (
            res["p95_ms_plan"],
            f"<= {TARGET_P95_MS:g}",
            le(res["p95_ms_plan"], TARGET_P95_MS),
        ),
        "p95_ms_book": (
            res["p95_ms_book"],
            f"<= {TARGET_P95_MS:g}",
            le(res["p95_ms_book"], TARGET_P95_MS),
        ),
        "p95_ms_cancel": (
            res["p95_ms_cancel"],
            f"<= {TARGET_P95_MS:g}",
            le(res["p95_ms_cancel"], TARGET_P95_MS),
        ),
        "peak_owner_rss_mb": (
            res["peak_owner_rss_mb"],
            f"<= {TARGET_OWNER_MB:g}",
            le(res["peak_owner_rss_mb"], TARGET_OWNER_MB),
        ),
        "double_booked": (res["double_booked"], "== 0", res["double_booked"] == 0),
        "lost_or_stuck": (res["lost_or_stuck"], "== 0", res["lost_or_stuck"] == 0),
    }
    return {k: {"value": v, "target": t, "pass": ok} for k, (v, t, ok) in rows.items()}


def report(res: dict[str, Any]) -> None:
    o = res["config"]
    print(
        f"bench.load: {o['users']} residents, {o['duration_s']:g} s, 2 processes, "
        f"{o['vans']} vans; load average before {res['load_average_before']}, "
        f"after {res['load_average_after']}"
    )
    print(
        f"requests {res['requests']} in {res['elapsed_s']:.1f} s: {res['requests_per_s']} /s; "
        f"actions {res['actions']}"
    )
    print(
        f"{'endpoint':<10} {'count':>6} {'/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        "  statuses"
    )
    for name, e in res["endpoints"].items():

        def f(x: float | None) -> str:
            return "-" if x is None else f"{x:.1f}"

        print(
            f"{name:<10} {e['count']:>6} {e['per_s']:>7} {f(e['p50_ms']):>8} {f(e['p95_ms']):>8} "
            f"{f(e['p99_ms']):>8}  {e['statuses']}"
        )
    print(f"errors by status: {res['errors_by_status']} (0 = no answer)")
    if res.get("no_answer_kinds"):
        print(f"no answer: {res['no_answer_kinds']}")
    if res.get("backlog"):
        b = res["backlog"]
        print(
            f"owner drain: {b['handled']} of {b['commands']} commands in {b['drain_s']} s: "
            f"{b['commands_per_s']} commands/s (load average {b['load_average']}); "
            f"outcomes {b['outcomes']}"
        )
    print(f"memory: {res['memory']['processes']}")
    print(f"client CPU: {res['memory'].get('client_cpu_cores')} cores")
    rc = res["reconciliation"]
    print(
        f"reconciliation: {rc.get('bookings')} bookings ({rc.get('bookings_202')} answered 202), "
        f"outcomes {rc.get('outcomes')}, problems {rc.get('problem_counts')}, "
        f"DB rides no client booked {rc.get('db_rides_not_booked_by_clients')}"
    )
    print("targets:")
    for k, t in res["targets"].items():
        print(
            f"  {k:<18} {t['value']!s:>10}  target {t['target']:<8} "
            f"{'PASS' if t['pass'] else 'MISS'}"
        )


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def bench(cluster: Cluster, opts: Options, vans: int) -> dict[str, Any]:
    load_before = _load_average()
    t = time.monotonic()
    await asyncio.to_thread(cluster.start)
    started_s = time.monotonic() - t
    world = await discover(cluster.bases[0], opts.seed)
    t = time.monotonic()
    for base in cluster.bases:
        await warm_up(base, world.zone_pts, world.service_date)
    warm_s = time.monotonic() - t
    backlog: dict[str, Any] = {}
    if opts.backlog > 0:
        backlog = await drain_backlog(cluster, world, opts.backlog, opts.seed)
        backlog["load_average"] = _load_average()
        print(f"backlog: {backlog}", flush=True)
    print(
        f"cluster ready in {started_s:.0f} s, warmed up in {warm_s:.0f} s; "
        f"{opts.users} residents for {opts.duration_s:g} s ...",
        flush=True,
    )
    load = Load(cluster, world, opts)
    watch = MemoryWatch(cluster)
    watch.start()
    try:
        elapsed = await load.run()
        await settle(cluster.bases[1], load)
        recon = await reconcile_settled(cluster, load)
    finally:
        memory = await watch.stop()
    summary = load.rec.summary(elapsed)
    if opts.samples is not None:
        load.rec.write_csv(opts.samples)
    res: dict[str, Any] = {
        "config": {
            "users": opts.users,
            "duration_s": opts.duration_s,
            "think_s": opts.think_s,
            "flex_share": opts.flex_share,
            "max_requests": opts.max_requests,
            "seed": opts.seed,
            "vans": vans,
            "processes": 2,
            "database": cluster.db_name,
            "redis_prefix": cluster.prefix,
            "settings": cluster.settings,
        },
        "load_average_before": load_before,
        "load_average_after": _load_average(),
        "start_s": round(started_s, 1),
        "warm_up_s": round(warm_s, 1),
        "elapsed_s": round(elapsed, 1),
        "actions": dict(load.actions),
        "backlog": backlog,
        "owner_commands_per_s": backlog.get("commands_per_s"),
        **summary,
        "memory": memory,
        "peak_owner_rss_mb": memory["peak_owner_rss_mb"],
        "reconciliation": recon,
        "double_booked": recon["double_booked"],
        "lost_or_stuck": recon["lost_or_stuck"],
    }
    # Flat figures per endpoint (/plan: with and without FLEX together).
    for name, endpoints in (
        ("plan", ("plan", "plan_flex")),
        ("quote", ("quote",)),
        ("book", ("book",)),
        ("cancel", ("cancel",)),
        ("signup", ("signup",)),
    ):
        for q in (50, 95, 99):
            res[f"p{q}_ms_{name}"] = load.rec.pct(q, *endpoints)
    res["targets"] = targets(res)
    return res


def _interrupter(cluster: Cluster) -> Any:
    """A SIGINT / SIGTERM handler: a start in progress (in a thread) gives up, the main thread
    gets KeyboardInterrupt, and ``main`` cleans up."""

    def handler(signum: int, frame: FrameType | None) -> None:
        cluster.stopping = True
        raise KeyboardInterrupt(f"signal {signum}")

    return handler


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--quick", action="store_true", help="60 s and 50 residents (unless given)")
    ap.add_argument("--users", type=int, default=None, help="residents (default 200, quick 50)")
    ap.add_argument("--duration", type=float, default=None, help="seconds (default 300, quick 60)")
    ap.add_argument("--think", type=float, default=3.0, help="mean think time (s)")
    ap.add_argument("--flex-share", type=float, default=0.25, help="share of plans with FLEX")
    ap.add_argument("--vans", type=int, default=20, help="vans of the demo zone")
    ap.add_argument(
        "--max-requests", type=int, default=None, help="request budget (default users * duration)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an app setting for both processes (e.g. plan_threads=40), repeatable",
    )
    ap.add_argument(
        "--backlog", type=int, default=200, help="commands of the drain measurement (0: none)"
    )
    ap.add_argument("--keep-logs", action="store_true", help="keep the app processes' logs")
    ap.add_argument(
        "--samples", type=Path, help="write every request (time, endpoint, status, ms) as CSV"
    )
    a = ap.parse_args(argv)
    a.users = a.users if a.users is not None else (50 if a.quick else 200)
    a.duration = a.duration if a.duration is not None else (60.0 if a.quick else 300.0)
    if a.backlog < 0:
        ap.error("--backlog is a number of commands (0: no drain measurement)")
    if a.users < 1 or a.duration <= 0 or a.think <= 0 or a.vans < 1:
        ap.error("--users, --duration, --think and --vans must be positive")
    if not 0.0 <= a.flex_share <= 1.0:
        ap.error("--flex-share is a share (0..1)")
    if a.max_requests is None:
        a.max_requests = int(a.users * a.duration)
    a.settings = {}
    for item in a.set:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            ap.error(f"--set takes NAME=VALUE, not {item!r}")
        a.settings[name.strip()] = value
    return a


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(argv)
    opts = Options(
        a.users, a.duration, a.think, a.flex_share, a.max_requests, a.seed, a.backlog, a.samples
    )
    cluster = Cluster(a.vans, keep_logs=a.keep_logs, settings=a.settings)
    sigs = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, _interrupter(cluster)) for sig in sigs}
    try:
        res = asyncio.run(bench(cluster, opts, a.vans))
    except KeyboardInterrupt:
        print("bench.load: interrupted; cleaning up", file=sys.stderr)
        return 130
    except BaseException:
        for i, log in enumerate(cluster.logs):
            with contextlib.suppress(OSError):
                tail = log.read_text()[-2000:]
                print(f"--- app process {i} log (tail) ---\n{tail}", file=sys.stderr)
        raise
    finally:
        for sig in sigs:  # a second Ctrl-C must not stop the clean-up
            signal.signal(sig, signal.SIG_IGN)
        cluster.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    report(res)
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

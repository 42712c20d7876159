"""CPU cost of one request per endpoint, on one served app process (issue #10).

Run ``python -m bench.request_cost [--n 40] [--json PATH] [--baseline PATH] [--profile DIR]``.

It starts one ``tsunagu serve`` process as ``bench.load`` does (the demo city, its on-demand
zone with ``--vans`` vans, PostgreSQL and Redis, a database and key prefix of its own), warms
it up, then sends ``--n`` requests of each kind *one after another* (no concurrency): a transit
``/plan``, a ``/plan`` with FLEX, a quote, a booking, a cancellation and a sign-up, with the
trips ``bench.load``'s residents draw. For each request it reads the server's CPU time before
and after:

* ``cpu_ms`` — the sum of ``/proc/<pid>/task/*/schedstat`` run times (nanoseconds, every live
  thread of the process). The median over the ``--n`` requests is the figure: on a shared,
  noisy machine the wall time of a request swings with the other processes' load, its CPU time
  much less, and one request in the middle of a background burst (the zone's re-optimisation,
  the demo vans moving) does not move a median.
* ``cpu_ms_total`` — ``utime + stime`` of ``/proc/<pid>/stat`` over the whole batch, divided by
  ``--n``: it counts threads that ended meanwhile too (argon2's lanes), at 10 ms resolution.
* the server's background CPU while idle (ms per s) is measured first and printed, not
  subtracted.

``--profile DIR`` then runs each kind once more under ``py-spy record`` (sampling the server
process, raw collapsed stacks into ``DIR/<kind>.txt``) and prints each kind's top functions by
inclusive and by self samples. ``--baseline PATH`` (a ``--json`` of an earlier run, e.g. of
the previous commit) prints each median's ratio to it. The load average is printed with every
figure. Everything stays on 127.0.0.1 and is cleaned up at the end, as ``bench.load`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.load import (
    API,
    RESIDENT_PASSWORD,
    Cluster,
    Load,
    Options,
    World,
    _dist_m,
    _interrupter,
    discover,
    rss_mb,
    warm_up,
)

KINDS = ("plan", "plan_flex", "quote", "book", "cancel", "signup")
_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def thread_cpu_ns(pid: int) -> int:
    """Run time of every live thread of ``pid`` (ns, ``/proc/<pid>/task/*/schedstat``)."""
    total = 0
    base = Path(f"/proc/{pid}/task")
    for task in base.iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):  # the thread ended meanwhile
            continue
    return total


def process_cpu_s(pid: int) -> float:
    """``utime + stime`` of ``pid`` (seconds; ended threads included)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_S


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class Driver:
    """Sequential requests of each kind against one served process."""

    def __init__(self, client: httpx.AsyncClient, world: World, pid: int, seed: int) -> None:
        self.client = client
        self.world = world
        self.pid = pid
        self.rng = random.Random(seed)
        self.headers: dict[str, str] = {}
        self.ride_ids: list[str] = []
        self.quote_ids: list[str] = []
        self.load_plain = Load(None, world, Options(1, 1, 1, 0.0, 1, seed))  # type: ignore[arg-type]
        self.load_flex = Load(None, world, Options(1, 1, 1, 1.0, 1, seed))  # type: ignore[arg-type]

    async def timed(
        self, call: Callable[[], Awaitable[httpx.Response]]
    ) -> tuple[float, float, int, httpx.Response]:
        """``(cpu_ms, wall_ms, status, response)`` of one request."""
        c0 = thread_cpu_ns(self.pid)
        t0 = time.perf_counter()
        r = await call()
        wall = (time.perf_counter() - t0) * 1000
        cpu = (thread_cpu_ns(self.pid) - c0) / 1e6
        return cpu, wall, r.status_code, r

    async def signup(self) -> httpx.Response:
        return await self.client.post(
            f"{API}/auth/signup",
            json={
                "email": f"cost-{uuid.uuid4().hex[:10]}@example.org",
                "password": RESIDENT_PASSWORD,
            },
        )

    async def sign_in(self) -> None:
        r = await self.signup()
        r.raise_for_status()
        self.headers = {"Authorization": f"Bearer {r.json()['tokens']['access_token']}"}

    def _trip(self) -> dict[str, Any]:
        pts = self.world.zone_pts
        a = self.rng.choice(pts)
        b = self.rng.choice(pts)
        for _ in range(20):
            if _dist_m(a, b) >= 500:
                break
            b = self.rng.choice(pts)
        return {"origin": {"lat": a[0], "lon": a[1]}, "destination": {"lat": b[0], "lon": b[1]}}

    async def one(self, kind: str) -> tuple[float, float, int]:
        c = self.client
        if kind in ("plan", "plan_flex"):
            load = self.load_flex if kind == "plan_flex" else self.load_plain
            _, params = load.plan_params(self.rng)
            cpu, wall, st, _ = await self.timed(lambda: c.get(f"{API}/plan", params=params))
        elif kind == "quote":
            body = self._trip()
            cpu, wall, st, r = await self.timed(
                lambda: c.post(f"{API}/rides/quote", json=body, headers=self.headers)
            )
            if st == 200:
                self.quote_ids.append(str(r.json()["quote_id"]))
        elif kind == "book":
            if not self.quote_ids:  # a quote first (not timed)
                await self.one("quote")
                if not self.quote_ids:
                    return float("nan"), float("nan"), 0
            qid = self.quote_ids.pop()
            cpu, wall, st, r = await self.timed(
                lambda: c.post(f"{API}/rides", json={"quote_id": qid}, headers=self.headers)
            )
            if st in (201, 202):
                data = r.json()
                self.ride_ids.append(str(data.get("ride_id") or data.get("request_id")))
        elif kind == "cancel":
            if not self.ride_ids:
                await self.one("book")
                if not self.ride_ids:
                    return float("nan"), float("nan"), 0
            rid = self.ride_ids.pop()
            cpu, wall, st, _ = await self.timed(
                lambda: c.delete(f"{API}/rides/{rid}", headers=self.headers)
            )
        elif kind == "signup":
            cpu, wall, st, _ = await self.timed(self.signup)
        else:
            raise ValueError(kind)
        return cpu, wall, st

    async def batch(self, kind: str, n: int) -> dict[str, Any]:
        """``n`` requests of ``kind``; cancel and book prepare what they need untimed."""
        cpus: list[float] = []
        walls: list[float] = []
        statuses: Counter[int] = Counter()
        total = 0.0
        for _ in range(n):
            if kind == "book" and not self.quote_ids:
                await self.one("quote")
            if kind == "cancel" and not self.ride_ids:
                await self.one("book")
            p0 = process_cpu_s(self.pid)
            cpu, wall, st = await self.one(kind)
            total += process_cpu_s(self.pid) - p0
            statuses[st] += 1
            if cpu == cpu:  # not NaN
                cpus.append(cpu)
                walls.append(wall)
        return {
            "n": len(cpus),
            "cpu_ms": round(statistics.median(cpus), 2) if cpus else None,
            "cpu_ms_p90": round(sorted(cpus)[int(0.9 * (len(cpus) - 1))], 2) if cpus else None,
            "cpu_ms_total": round(total * 1000 / max(1, n), 2),
            "wall_ms": round(statistics.median(walls), 2) if walls else None,
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "load_average": load_average(),
        }


def _frame_name(frame: str) -> str:
    """``function (path/file.py:line)`` -> ``function file.py`` (lines of a function merged)."""
    name, _, where = frame.partition(" (")
    return f"{name} {where.rstrip(')').rsplit('/', 1)[-1].rsplit(':', 1)[0]}"


def summarize_profile(path: Path, top: int = 14) -> list[str]:
    """Top functions of a py-spy raw (collapsed stacks) profile, inclusive and self."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame_name(f) for f in stack.split(";")]
        for f in set(frames):
            inclusive[f] += count
        own[frames[-1]] += count
    if not total:
        return ["  (no samples)"]
    out = [f"  {total} samples; inclusive:"]
    out += [f"    {100 * c / total:5.1f}%  {f}" for f, c in inclusive.most_common(top)]
    out.append("  self:")
    out += [f"    {100 * c / total:5.1f}%  {f}" for f, c in own.most_common(top)]
    return out


async def run(cluster: Cluster, a: argparse.Namespace) -> dict[str, Any]:
    await asyncio.to_thread(cluster.start)
    base = cluster.bases[0]
    pid = cluster.procs[0].pid
    world = await discover(base, a.seed)
    await warm_up(base, world.zone_pts, world.service_date)
    res: dict[str, Any] = {"n": a.n, "vans": a.vans, "load_average_before": load_average()}
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        d = Driver(client, world, pid, a.seed)
        await d.sign_in()
        for kind in a.kinds:  # one untimed round: first-use caches of each path
            await d.one(kind)
        c0, t0 = thread_cpu_ns(pid), time.perf_counter()
        await asyncio.sleep(a.idle)
        res["idle_cpu_ms_per_s"] = round(
            (thread_cpu_ns(pid) - c0) / 1e6 / (time.perf_counter() - t0), 2
        )
        res["kinds"] = {}
        for kind in a.kinds:
            res["kinds"][kind] = await d.batch(kind, a.n)
            print(f"{kind}: {res['kinds'][kind]}", flush=True)
        res["rss_mb"] = rss_mb(pid)
        if a.profile:
            a.profile.mkdir(parents=True, exist_ok=True)
            res["profiles"] = {}
            for kind in a.kinds:
                out = a.profile / f"{kind}.txt"
                spy = subprocess.Popen(
                    [
                        shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                        "record",
                        "-p",
                        str(pid),
                        "-r",
                        "250",
                        "-f",
                        "raw",
                        "-o",
                        str(out),
                        "--nonblocking",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                await asyncio.sleep(1.0)  # attached
                await d.batch(kind, a.n)
                spy.send_signal(signal.SIGINT)
                try:
                    spy.wait(30)
                except subprocess.TimeoutExpired:
                    spy.kill()
                    spy.wait(5)
                res["profiles"][kind] = str(out)
    res["load_average_after"] = load_average()
    return res


def report(res: dict[str, Any], baseline: dict[str, Any] | None) -> None:
    print(
        f"bench.request_cost: {res['n']} sequential requests per kind, one process, "
        f"{res['vans']} vans; load average before {res['load_average_before']}, "
        f"after {res['load_average_after']}; idle server CPU {res['idle_cpu_ms_per_s']} ms/s; "
        f"RSS {res.get('rss_mb')}"
    )
    print(
        f"{'kind':<10} {'cpu ms':>8} {'p90':>8} {'total':>8} {'wall ms':>8}"
        f"{'  vs base' if baseline else ''}  statuses  load average"
    )
    for kind, k in res["kinds"].items():
        ratio = ""
        if baseline:
            b = baseline.get("kinds", {}).get(kind, {}).get("cpu_ms")
            ratio = f"  {k['cpu_ms'] / b:7.2f}x" if b and k["cpu_ms"] is not None else "        -"
        print(
            f"{kind:<10} {k['cpu_ms']!s:>8} {k['cpu_ms_p90']!s:>8} {k['cpu_ms_total']!s:>8} "
            f"{k['wall_ms']!s:>8}{ratio}  {k['statuses']}  {k['load_average']}"
        )
    for kind, path in res.get("profiles", {}).items():
        print(f"profile {kind} ({path}):")
        p = Path(path)
        print("\n".join(summarize_profile(p) if p.exists() else ["  (py-spy wrote nothing)"]))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=40, help="requests per kind")
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated of {KINDS}")
    ap.add_argument("--vans", type=int, default=20)
    ap.add_argument("--idle", type=float, default=5.0, help="seconds of idle measurement")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--baseline", type=Path, help="an earlier --json: print the ratios")
    ap.add_argument("--profile", type=Path, help="py-spy profiles of each kind into this dir")
    a = ap.parse_args(argv)
    a.kinds = [k for k in a.kinds.split(",") if k]
    unknown = [k for k in a.kinds if k not in KINDS]
    if unknown:
        ap.error(f"unknown kinds {unknown}; known: {KINDS}")
    if a.n < 1 or a.vans < 1 or a.idle <= 0:
        ap.error("--n, --vans and --idle must be positive")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(argv)
    baseline = json.loads(a.baseline.read_text()) if a.baseline else None
    cluster = Cluster(a.vans, processes=1)
    sigs = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, _interrupter(cluster)) for sig in sigs}
    try:
        res = asyncio.run(run(cluster, a))
    except KeyboardInterrupt:
        print("bench.request_cost: interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        for sig in sigs:
            signal.signal(sig, signal.SIG_IGN)
        cluster.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    report(res, baseline)
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

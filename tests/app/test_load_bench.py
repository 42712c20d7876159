"""``python -m bench.load`` (issue #10): the reconciliation's verdicts on made-up plans and
database rows, and a tiny real run (two app processes on the real PostgreSQL and Redis) for its
JSON keys, its accounting of every booking and its clean-up (also on Ctrl-C). Speed is never
checked here: the figures are the benchmark's to report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from bench.load import (
    Booking,
    Recorder,
    cpu_s,
    in_multipolygon,
    parse_args,
    percentile,
    reconcile,
    targets,
    zone_points,
)
from tests.conftest import PG_ADMIN_URL, REDIS_TEST_URL

REPO = Path(__file__).resolve().parents[2]
KEYS = (
    "errors_5xx",
    "p95_ms_plan",
    "p95_ms_book",
    "p95_ms_cancel",
    "peak_owner_rss_mb",
    "double_booked",
    "lost_or_stuck",
    "requests_per_s",
    "errors_by_status",
    "endpoints",
    "p50_ms_plan",
    "p99_ms_plan",
    "p50_ms_book",
    "p99_ms_book",
    "p50_ms_cancel",
    "p99_ms_cancel",
    "targets",
)


def van(
    vid: str, plan: list[tuple[str, str]], onboard: Sequence[str] = (), seats: int = 2
) -> dict[str, Any]:
    return {
        "vehicle_id": vid,
        "seats": seats,
        "wheelchair_spaces": 0,
        "onboard": list(onboard),
        "plan": [{"ride_id": r, "kind": k} for r, k in plan],
    }


def row(rid: str, status: str = "assigned", vid: str = "v1", seats: int = 1) -> dict[str, Any]:
    return {"ride_id": rid, "status": status, "vehicle_id": vid, "seats": seats, "wheelchairs": 0}


# --- reconciliation on made-up data ---------------------------------------------------------------
def test_consistent_state_has_no_problem() -> None:
    bookings = [
        Booking("r1", 0, 201),
        Booking("r2", 1, 202, final_status="assigned"),
        Booking("r3", 2, 201, expect="cancelled"),
        Booking("r4", 3, 201),
        Booking("r5", 4, 202, final_status="rejected"),  # refused after 202: not lost
        Booking("r6", 5, 201, expect="cancel_unknown"),
    ]
    rows = [row("r1"), row("r2", vid="v2"), row("r3", "cancelled"), row("r4", "completed")]
    rows.append(row("r6", "cancelled"))
    vehicles = [
        van("v1", [("r1", "pickup"), ("r1", "dropoff")]),
        van("v2", [("r2", "dropoff")], onboard=["r2"]),
    ]
    out = reconcile(bookings, rows, vehicles)
    assert out["lost_or_stuck"] == 0, out
    assert out["double_booked"] == 0, out
    assert out["outcomes"] == {
        "assigned": 2,
        "cancelled": 2,
        "completed": 1,
        "refused_after_202": 1,
    }
    assert out["db_rides_not_booked_by_clients"] == 0


def test_lost_stuck_and_wrong_states_are_counted() -> None:
    bookings = [
        Booking("gone", 0, 201),  # not in the database
        Booking("stuck", 1, 202, final_status="pending"),
        Booking("unplanned", 2, 201),  # assigned but in no plan
        Booking("still", 3, 201, expect="cancelled"),  # cancelled by its client, still assigned
        Booking("ghost", 4, 201, expect="cancelled"),  # cancelled in the DB but still planned
        Booking("unasked", 5, 201),  # cancelled though its client never asked
        Booking("wrongvan", 6, 201),  # planned on another vehicle than the database says
    ]
    rows = [
        row("unplanned"),
        row("still"),
        row("ghost", "cancelled"),
        row("unasked", "cancelled"),
        row("wrongvan", vid="v1"),
        row("other"),
    ]
    vehicles = [
        van("v1", [("still", "pickup"), ("still", "dropoff"), ("ghost", "pickup")]),
        van("v2", [("wrongvan", "pickup"), ("wrongvan", "dropoff"), ("other", "pickup")]),
    ]
    out = reconcile(bookings, rows, vehicles)
    assert out["problem_counts"] == {
        "missing_from_db": 1,
        "stuck_pending": 1,
        "live_in_no_plan": 1,
        "cancel_not_applied": 1,
        "cancelled_still_planned": 1,
        "cancelled_unasked": 1,
        "plan_vehicle_mismatch": 1,
    }
    assert out["lost_or_stuck"] == 7
    assert out["db_rides_not_booked_by_clients"] == 1
    assert out["double_booked"] == 0


def test_a_ride_in_two_plans_and_an_overfull_van_are_double_booked() -> None:
    bookings = [Booking(r, 0, 201) for r in ("a", "b", "c", "d")]
    rows = [row("a"), row("b", vid="v2"), row("c", vid="v2"), row("d", "onboard", vid="v2")]
    vehicles = [
        van("v1", [("a", "pickup"), ("a", "dropoff")]),
        # Two seats: d on board, then b and c picked up before anyone alights -> 3.
        van(
            "v2",
            [
                *[("b", "pickup"), ("c", "pickup"), ("a", "pickup"), ("d", "dropoff")],
                *[("b", "dropoff"), ("c", "dropoff"), ("a", "dropoff")],
            ],
            onboard=["d"],
        ),
    ]
    out = reconcile(bookings, rows, vehicles)
    assert out["rides_in_two_plans"] == ["a"]
    assert out["vehicles_over_capacity"] == ["v2"]
    assert out["double_booked"] == 2
    # The same van with b and c one after the other holds.
    vehicles[1]["plan"] = [
        {"ride_id": r, "kind": k}
        for r, k in [
            *[("d", "dropoff"), ("b", "pickup"), ("b", "dropoff")],
            *[("c", "pickup"), ("c", "dropoff")],
        ]
    ]
    vehicles[0]["plan"] = []
    out = reconcile(bookings[1:], rows[1:], vehicles)
    assert out["double_booked"] == 0 and out["lost_or_stuck"] == 0, out


def test_figures_helpers() -> None:
    assert percentile([], 95) is None
    assert percentile([5.0], 99) == 5.0
    assert percentile([float(x) for x in range(1, 101)], 50) == pytest.approx(50.5)
    rec = Recorder()
    for ms, status in ((10.0, 200), (20.0, 200), (30.0, 503), (40.0, 0)):
        rec.add("plan", status, ms)
    s = rec.summary(2.0)
    assert s["requests"] == 4 and s["requests_per_s"] == 2.0
    assert s["errors_5xx"] == 1 and s["errors_by_status"] == {"0": 1, "503": 1}
    assert s["endpoints"]["plan"]["statuses"] == {"0": 1, "200": 2, "503": 1}
    assert rec.pct(50, "plan") == 20.0  # the unanswered request has no latency
    assert s["no_answer_kinds"] == {}
    rec.add_no_answer("quote", httpx.ReadTimeout("timed out"), 30_000.4)
    rec.add_no_answer("quote", httpx.ReadTimeout("timed out"), 30_000.0)
    rec.add_no_answer("book", httpx.RemoteProtocolError("closed"), 12.0)
    s = rec.summary(2.0)
    assert s["no_answer"] == 4 and s["errors_by_status"]["0"] == 4
    assert s["no_answer_kinds"] == {  # what each unanswered request ended with
        "book RemoteProtocolError": 1,
        "quote ReadTimeout": 2,
    }
    square = [[[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]]]
    assert in_multipolygon(0.5, 0.5, square) and not in_multipolygon(1.5, 0.5, square)
    import random

    assert all(in_multipolygon(*p, square) for p in zone_points(square, 50, random.Random(1)))
    a = parse_args(["--quick"])
    assert (a.users, a.duration) == (50, 60.0)
    a = parse_args([])
    assert (a.users, a.duration, a.max_requests, a.backlog) == (200, 300.0, 60_000, 200)
    assert a.settings == {}
    a = parse_args(["--set", "plan_threads=8", "--set", "gil_switch_interval_ms=5"])
    assert a.settings == {"plan_threads": "8", "gil_switch_interval_ms": "5"}
    with pytest.raises(SystemExit):
        parse_args(["--set", "plan_threads"])  # no value: refused, not ignored
    assert cpu_s(os.getpid()) is not None and cpu_s(2**22 + 12345) is None
    res = {
        "errors_5xx": 0,
        "p95_ms_plan": 301.0,
        "p95_ms_book": None,
        "p95_ms_cancel": 12.0,
        "peak_owner_rss_mb": 900.0,
        "double_booked": 0,
        "lost_or_stuck": 1,
    }
    verdict = {k: t["pass"] for k, t in targets(res).items()}
    assert verdict == {
        "errors_5xx": True,
        "p95_ms_plan": False,
        "p95_ms_book": False,  # no figure: missed, not passed
        "p95_ms_cancel": True,
        "peak_owner_rss_mb": True,
        "double_booked": True,
        "lost_or_stuck": False,
    }


# --- a tiny real run ------------------------------------------------------------------------------
def _load_databases() -> set[str]:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'tsunagu\\_load\\_%'"
        ).fetchall()
    return {str(r[0]) for r in rows}


def _load_redis_keys(prefix: str) -> int:
    client = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        return sum(1 for _ in client.scan_iter(match=f"{prefix}*", count=1000))
    finally:
        client.close()


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_tiny_run_reports_every_figure_and_reconciles(
    tmp_path: Path, pg_database_url: str, redis_url: str
) -> None:
    out = tmp_path / "load.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.load",
            "--users",
            "6",
            "--duration",
            "15",
            "--backlog",
            "20",
            "--set",
            "plan_threads=2",
            "--json",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    missing = [k for k in KEYS if k not in res]
    assert not missing, missing
    assert "PASS" in proc.stdout or "MISS" in proc.stdout
    assert set(res["targets"]) == {
        "errors_5xx",
        "p95_ms_plan",
        "p95_ms_book",
        "p95_ms_cancel",
        "peak_owner_rss_mb",
        "double_booked",
        "lost_or_stuck",
    }
    assert res["requests"] > 6 and res["endpoints"]["signup"]["count"] == 6
    assert res["peak_owner_rss_mb"] > 0
    # The run records the settings it gave both processes, and counts the CPU they took.
    assert res["config"]["settings"] == {"plan_threads": "2"}
    assert all(p["cpu_cores"] > 0 for p in res["memory"]["processes"].values()), res["memory"]
    assert res["memory"]["client_cpu_cores"] > 0
    # The owner's drain of a backlog: every command handled (10 bookings, their cancels).
    assert res["backlog"]["commands"] == res["backlog"]["handled"] == 20, res["backlog"]
    assert res["owner_commands_per_s"] > 0
    # Every booking a client got is accounted for: in an outcome or in a problem.
    rc = res["reconciliation"]
    unfound = sum(rc["problem_counts"].get(k, 0) for k in ("stuck_pending", "missing_from_db"))
    assert sum(rc["outcomes"].values()) + unfound == rc["bookings"], rc
    # What already holds must keep holding at this size: no seat twice, nothing lost.
    assert res["double_booked"] == 0, rc
    assert res["lost_or_stuck"] == 0, rc
    # Cleaned up: its database dropped, its Redis keys deleted.
    assert res["config"]["database"] not in _load_databases()
    assert _load_redis_keys(res["config"]["redis_prefix"]) == 0


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_ctrl_c_cleans_up(pg_database_url: str, redis_url: str) -> None:
    before = _load_databases()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.load", "--users", "2", "--duration", "120"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300
        while not (_load_databases() - before) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.2)
        created = _load_databases() - before
        assert len(created) == 1, f"the benchmark created no database of its own: {created}"
        time.sleep(3)  # an app process is starting
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, output
    (name,) = created
    assert name not in _load_databases()
    assert _load_redis_keys(f"tsunagu-load:{name.removeprefix('tsunagu_load_')}:") == 0

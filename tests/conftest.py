"""Fixtures shared by the whole suite: real data, and the real PostgreSQL and Redis servers.

Each test session gets its own PostgreSQL database and its own Redis key prefix, so several
suites (developers, CI) can run on one machine at once without seeing each other's data.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("TSUNAGU_SHARED_DATA", REPO.parent / "shared" / "data"))
# The suite starts hundreds of apps in one process: frozen start-up heaps (gc.freeze) would
# keep each app's cycles alive to the end. tests/app/test_gc_freeze.py turns it on.
os.environ.setdefault("TSUNAGU_GC_FREEZE_ON_START", "false")
PG_ADMIN_URL = os.environ.get("TSUNAGU_TEST_PG", "postgresql://127.0.0.1:5432/test")
REDIS_TEST_URL = os.environ.get("TSUNAGU_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _ephemeral_ports_start() -> int:
    """First port of the kernel's ephemeral range (Linux; 32768 where it cannot be read)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A localhost TCP port free now, for a server (often a subprocess) that binds it later.

    Picked at random *below* the kernel's ephemeral range: a port handed out by ``bind(0)``
    can be given again, before our server binds it, to any outgoing connection of this or
    another suite on the machine (a server's start-up takes seconds under load); the kernel
    never hands out ports below the range, and chance keeps concurrent suites apart.
    """
    high = max(_ephemeral_ports_start(), 20_001)
    for _ in range(1000):
        port = 20_000 + secrets.randbelow(high - 20_000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken: try another
            return port
    raise RuntimeError("no free localhost port below the ephemeral range")


class OwnRedis:
    """A redis-server of a test's own (or a benchmark's), on its own port, that can be stopped
    and restarted (append-only file on, as a deployment that keeps its streams across a
    restart). ``python -m bench.faults`` uses it too, so it imports nothing of the app."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.dir = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis
        import redis.exceptions as rx

        exe = shutil.which("redis-server")
        assert exe is not None, "redis-server is not installed"
        self.proc = subprocess.Popen(
            [
                *(exe, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--dir", str(self.dir), "--appendonly", "yes", "--save", ""),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except rx.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
            self.proc = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A redis-server of the test's own (:class:`OwnRedis`), started; stopped at teardown."""
    r = OwnRedis(tmp_path)
    r.start()
    yield r
    r.stop()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``: the real feeds, OSM extracts and DARP instances."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA} (set TSUNAGU_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def gtfs_dir(shared_data: Path) -> Path:
    return shared_data / "gtfs"


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the real server, dropped at the end of the session."""
    import psycopg

    name = f"tsunagu_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis server (fails loudly if it is down: CI starts it)."""
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"Redis not reachable at {REDIS_TEST_URL}: {exc}")
    finally:
        client.close()
    return REDIS_TEST_URL


@pytest.fixture
def redis_prefix() -> str:
    """A key/channel prefix unique to one test, so concurrent suites never collide."""
    return f"tsunagu-test:{uuid.uuid4().hex[:8]}:"

"""A real Tsunagu server (uvicorn subprocess, demo city, SQLite) and Debian's chromium.

The server runs exactly as ``make run`` runs it — the built frontend, the demo feed imported
and published on first start — on a free localhost port with a throw-away data directory.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ADMIN = ("admin@tsunagu.test", "admin-password-123")


def _warm_up(base: str) -> None:
    """Run a trip plan and an on-demand quote once before the browser tests.

    Their first run compiles the planner's and the dispatcher's numba kernels: more than a
    minute on a loaded machine whose kernel cache is cold (a clean clone, or a source file
    just edited), far beyond a browser wait. Paid here, under a generous bound.
    """
    with httpx.Client(base_url=base, timeout=600) as c:
        net = c.get("/api/v1/network").json()
        r = c.get(
            "/api/v1/plan",
            params={
                "fromPlace": "42.3158,140.9738",
                "toPlace": "42.3466,141.0240",
                "time": "08:00",
                "date": net.get("demo_service_date") or net["service_date"],
            },
        )
        r.raise_for_status()
        r = c.post(
            "/api/v1/auth/signup",
            json={
                "email": f"warm-up-{uuid.uuid4().hex[:8]}@example.org",
                "password": "warm-up-password-9",
            },
        )
        r.raise_for_status()
        token = r.json()["tokens"]["access_token"]
        r = c.post(
            "/api/v1/rides/quote",
            json={
                "origin": {"lat": 42.3487, "lon": 141.0261},
                "destination": {"lat": 42.3440, "lon": 141.0180},
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        # An offer, or a rejection (409) if the demo vans are busy: either way the kernels ran.
        assert r.status_code in (200, 409), r.text


@contextlib.contextmanager
def serve(data_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """A demo server on a free port with its data in ``data_dir``, ready and warmed up; its
    base URL. ``extra_env``: settings of its own (e.g. no simulated riders)."""
    if not (REPO / "frontend" / "dist" / "index.html").is_file():
        pytest.fail("frontend/dist is not built: run `make install` (npm run build) first")
    port = free_port()  # the server binds it only after its first-run demo import
    env = {
        **os.environ,
        "TSUNAGU_DATA_DIR": str(data_dir),
        "TSUNAGU_DEMO": "true",
        "TSUNAGU_ADMIN_EMAIL": ADMIN[0],
        "TSUNAGU_ADMIN_PASSWORD": ADMIN[1],
        # One server for the whole browser session: its tests log the same administrator in
        # far more than 10 times a minute (the limit itself is tested in test_rate_limit.py).
        "TSUNAGU_LOGIN_RATE_LIMIT_PER_MINUTE": "100000",
        "DATABASE_URL": "",
        "REDIS_URL": "",
        **(extra_env or {}),
    }
    log = (data_dir / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "serve",
            "--demo",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # first start imports the demo city: be patient
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {(data_dir / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready: {(data_dir / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        _warm_up(base)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(tmp_path_factory.mktemp("server")) as base:
        yield base


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed (make system-deps)")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


@contextlib.contextmanager
def guarded_page(browser: object, base: str) -> Iterator[object]:
    """A page in a fresh browser context on ``base``; any request leaving localhost is blocked
    and recorded (``page.outside_requests``)."""
    ctx = browser.new_context(base_url=base, locale="ja-JP")  # type: ignore[attr-defined]
    outside: list[str] = []

    def guard(route: object) -> None:
        url = route.request.url  # type: ignore[attr-defined]
        if url.startswith(("http://127.0.0.1", "http://localhost", "data:", "blob:")):
            route.continue_()  # type: ignore[attr-defined]
        else:
            outside.append(url)
            route.abort()  # type: ignore[attr-defined]

    ctx.route("**/*", guard)
    # Generous waits: CI machines are small and shared; a wait only lasts as long as needed.
    ctx.set_default_timeout(30_000)
    pg = ctx.new_page()
    pg.outside_requests = outside  # type: ignore[attr-defined]
    try:
        yield pg
    finally:
        ctx.close()


@pytest.fixture
def page(browser: object, live_server: str) -> Iterator[object]:
    """A fresh browser context per test; any request leaving localhost is blocked and recorded."""
    with guarded_page(browser, live_server) as pg:
        yield pg


def api_token(base: str, email: str, password: str) -> str:
    r = httpx.post(f"{base}/api/v1/auth/login", json={"email": email, "password": password})
    r.raise_for_status()
    return str(r.json()["access_token"])

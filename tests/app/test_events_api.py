"""The live-events HTTP API: SSE stream auth and delivery, service alerts, and scale-out.

SSE responses never end, so they are read from a real uvicorn server (in this event loop for
the in-process back-end; two subprocesses sharing Redis and PostgreSQL for scale-out), not
from an in-memory test client that would wait for the body to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlmodel import Session

from app.api import events as events_api
from app.api.events import _frames as _sse_frames
from app.api.events import token_expiry
from app.events import EventBus, InProcessEventBus
from app.identity import accounts
from app.main import create_app
from tests.app.conftest import app_process_env, assert_error, settings_for, stop_processes
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
ADMIN = "admin@example.com"
# Generous bounds for answers of a server on a small, loaded CI machine: a wait only lasts as
# long as needed, and a stall of a few seconds must not fail a test.
HTTP_TIMEOUT_S = 60.0


# --- helpers ----------------------------------------------------------------------------------
def _free_port() -> int:
    """A port for a server subprocess (see :func:`tests.conftest.free_port`)."""
    return free_port()


@dataclass
class Frame:
    """One Server-Sent Events frame (``comment`` holds a ``:`` line such as a keep-alive)."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    comment: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


async def _frames(response: httpx.Response) -> AsyncIterator[Frame]:
    frame, data = Frame(), list[str]()
    async for line in response.aiter_lines():
        if line == "":
            if data or frame.event != "message" or frame.id:
                frame.data = "\n".join(data)
                yield frame
            frame, data = Frame(), []
        elif line.startswith(":"):
            yield Frame(comment=line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "event":
                frame.event = value
            elif name == "id":
                frame.id = value


async def _next(
    frames: AsyncIterator[Frame], timeout: float = 30.0, *, comments: bool = False
) -> Frame:
    """The next frame (skipping keep-alive comments unless ``comments``) within ``timeout``."""

    async def get() -> Frame:
        async for frame in frames:
            if comments or frame.comment is None:
                return frame
        raise AssertionError("stream ended")

    return await asyncio.wait_for(get(), timeout)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _login(client: httpx.Client | httpx.AsyncClient, email: str) -> Any:
    return client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})


# --- in-process server (in-process event bus, SQLite) ------------------------------------------
@dataclass
class Live:
    app: FastAPI
    client: httpx.AsyncClient
    tokens: dict[str, str]  # role → access token
    user_ids: dict[str, str]

    @property
    def bus(self) -> EventBus:
        return self.app.state.services.bus  # type: ignore[no-any-return]


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    settings = settings_for(
        tmp_path, admin_email=ADMIN, admin_password=PASSWORD, event_keepalive_s=1.0
    )
    app = create_app(settings)
    # Bound here and handed to uvicorn: no other process can take the port in between.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = asyncio.get_running_loop().time() + 120  # start-up runs migrations: be patient
    while not (server.started or task.done()):
        assert asyncio.get_running_loop().time() < deadline, "uvicorn did not start"
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start"
    services = app.state.services
    user_ids: dict[str, str] = {}
    with Session(services.engine) as db:
        for role in ("resident", "dispatcher", "operator"):
            user = accounts.create_user(
                db,
                services.identity.passwords,
                email=f"{role}@example.com",
                password=PASSWORD,
                roles=[role],
            )
            user_ids[role] = str(user.id)
        db.commit()
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=HTTP_TIMEOUT_S
    ) as client:
        tokens = {}
        for role, email in [
            ("admin", ADMIN),
            ("resident", "resident@example.com"),
            ("dispatcher", "dispatcher@example.com"),
            ("operator", "operator@example.com"),
        ]:
            r = await _login(client, email)
            assert r.status_code == 200, r.text
            tokens[role] = r.json()["access_token"]
        try:
            yield Live(app, client, tokens, user_ids)
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 60)
            sock.close()


@contextlib.asynccontextmanager
async def _open_stream(
    client: httpx.AsyncClient, topics: str, token: str, *, in_query: bool = False
) -> AsyncIterator[AsyncIterator[Frame]]:
    params = {"topics": topics}
    headers = {}
    if in_query:
        params["access_token"] = token
    else:
        headers = _bearer(token)
    async with client.stream(
        "GET", "/api/v1/events/stream", params=params, headers=headers
    ) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = _frames(response)
        ready = await _next(frames)
        assert ready.event == "ready"
        yield frames


async def test_stream_rejects_missing_and_bad_tokens(live: Live) -> None:
    c = live.client
    assert_error(await c.get("/api/v1/events/stream"), 401, "token_missing")
    assert_error(
        await c.get("/api/v1/events/stream", headers=_bearer("not.a.jwt")), 401, "token_invalid"
    )
    assert_error(
        await c.get("/api/v1/events/stream", params={"access_token": "garbage"}),
        401,
        "token_invalid",
    )
    assert_error(
        await c.get("/api/v1/events/stream", headers={"Authorization": "Basic dXNlcjpwdw=="}),
        401,
        "token_invalid",
    )
    r = await c.get("/api/v1/events/stream")
    assert r.headers.get("www-authenticate", "").startswith("Bearer")
    assert_error(await c.post("/api/v1/events/alerts", json={"title": "x"}), 401)
    assert_error(await c.get("/api/v1/events/topics"), 401)


async def test_stream_forbids_topics_the_caller_may_not_see(live: Live) -> None:
    c, t = live.client, live.tokens
    cases = [
        ("resident", "fleet.*"),
        ("resident", "public.*,user.someone-else.*"),
        ("resident", "*"),
        ("resident", "user.*"),
        ("dispatcher", "feeds.*"),
        ("operator", "internal.*"),
    ]
    for role, topics in cases:
        r = await c.get(
            "/api/v1/events/stream", params={"topics": topics}, headers=_bearer(t[role])
        )
        assert_error(r, 403, "forbidden")
        assert r.json()["error"]["details"]["forbidden_topics"]
    for topics in ["bad topic", " , ", "a..b", ",".join(f"public.t{i}" for i in range(30))]:
        r = await c.get(
            "/api/v1/events/stream", params={"topics": topics}, headers=_bearer(t["admin"])
        )
        assert_error(r, 400, "invalid_topics")
    r = await c.get(
        "/api/v1/events/stream", params={"topics": "x" * 3000}, headers=_bearer(t["admin"])
    )
    assert_error(r, 422)


async def test_topics_endpoint(live: Live) -> None:
    r = await live.client.get("/api/v1/events/topics", headers=_bearer(live.tokens["resident"]))
    assert r.status_code == 200
    assert r.json()["namespaces"] == ["public", f"user.{live.user_ids['resident']}"]
    r = await live.client.get("/api/v1/events/topics", headers=_bearer(live.tokens["admin"]))
    assert r.json()["namespaces"] == ["*"]


async def test_alert_published_over_http_reaches_sse_subscriber(live: Live) -> None:
    c, t = live.client, live.tokens
    async with _open_stream(c, "public.*,user.me.*", t["resident"]) as frames:
        r = await c.post(
            "/api/v1/events/alerts",
            json={
                "title": "室蘭線 運休",
                "message": "大雪のため",
                "severity": "severe",
                "route_ids": ["R1"],
            },
            headers=_bearer(t["operator"]),
        )
        assert r.status_code == 201, r.text
        sent = r.json()
        assert sent["topic"] == "public.alerts"
        frame = await _next(frames)
        assert frame.event == "message" and frame.id == sent["id"]
        got = frame.json()
        assert got == sent
        assert got["data"]["title"] == "室蘭線 運休"
        assert got["data"]["published_by"] == live.user_ids["operator"]
        # user.me.* is the caller's own namespace, and only it.
        await live.bus.publish(f"user.{live.user_ids['operator']}.trip", {"n": 0})
        await live.bus.publish(f"user.{live.user_ids['resident']}.trip", {"n": 1})
        await live.bus.publish("fleet.v1", {"n": 2})
        await live.bus.publish("public.other", {"n": 3})
        got_n = [(await _next(frames)).json()["data"]["n"] for _ in range(2)]
        assert got_n == [1, 3]


async def test_stream_with_access_token_query_and_keepalive(live: Live) -> None:
    async with _open_stream(
        live.client, "fleet.*", live.tokens["dispatcher"], in_query=True
    ) as frames:
        ping = await _next(frames, timeout=30, comments=True)  # keep-alive every 1 s here
        assert ping.comment is not None
        await live.bus.publish("fleet.vehicle.v7", {"lat": 42.3})
        frame = await _next(frames)
        assert frame.json()["topic"] == "fleet.vehicle.v7"


async def test_client_disconnect_unsubscribes(live: Live) -> None:
    before = live.bus.subscriber_count
    async with _open_stream(live.client, "public.*", live.tokens["resident"]):
        assert live.bus.subscriber_count == before + 1
    # The server notices the disconnect asynchronously: wait for it (liveness bound only).
    deadline = asyncio.get_running_loop().time() + 60
    while live.bus.subscriber_count != before:
        assert asyncio.get_running_loop().time() < deadline, live.bus.subscriber_count
        await asyncio.sleep(0.05)
    # The bus still works for everyone else.
    async with _open_stream(live.client, "public.*", live.tokens["resident"]) as frames:
        await live.bus.publish("public.alerts", {"title": "still alive"})
        assert (await _next(frames)).json()["data"]["title"] == "still alive"


async def test_alerts_validation_and_roles(live: Live) -> None:
    c, t = live.client, live.tokens
    for role in ("resident", "dispatcher"):
        r = await c.post("/api/v1/events/alerts", json={"title": "x"}, headers=_bearer(t[role]))
        assert_error(r, 403, "forbidden")
    for body in [
        {},
        {"title": ""},
        {"title": "x", "severity": "apocalyptic"},
        {"title": "x", "unknown": 1},
        {"title": "x" * 201},
        {"title": "x", "route_ids": [""]},
    ]:
        r = await c.post("/api/v1/events/alerts", json=body, headers=_bearer(t["operator"]))
        assert_error(r, 422, "validation_error")
    r = await c.post(
        "/api/v1/events/alerts",
        content=b"{not json",
        headers={**_bearer(t["operator"]), "Content-Type": "application/json"},
    )
    assert_error(r, 400, "malformed_json")
    r = await c.post("/api/v1/events/alerts", json={"title": "ok"}, headers=_bearer(t["admin"]))
    assert r.status_code == 201
    assert r.json()["data"]["severity"] == "warning"


async def test_closed_bus_answers_503(live: Live) -> None:
    await live.bus.close()  # e.g. shutting down, or the back-end is gone
    r = await live.client.post(
        "/api/v1/events/alerts", json={"title": "x"}, headers=_bearer(live.tokens["operator"])
    )
    assert_error(r, 503, "events_unavailable")
    r = await live.client.get(
        "/api/v1/events/stream",
        params={"topics": "public.*"},
        headers=_bearer(live.tokens["admin"]),
    )
    assert_error(r, 503, "events_unavailable")


async def test_slow_client_is_told_how_many_events_were_dropped() -> None:
    bus = InProcessEventBus(queue_size=2)
    await bus.start()
    sub = bus.subscribe(["public.*"])
    for i in range(5):
        await bus.publish("public.alerts", {"i": i})
    frames = _sse_frames(sub)
    assert (await anext(frames))["event"] == "ready"
    assert await anext(frames) == {"event": "dropped", "data": '{"dropped": 3}'}
    kept = [json.loads((await anext(frames))["data"])["data"]["i"] for _ in range(2)]
    assert kept == [3, 4]
    await bus.close()
    with pytest.raises(StopAsyncIteration):  # bus closed: the stream ends
        await anext(frames)
    assert sub.closed


async def test_stream_ends_when_the_token_expires(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    expiry = token_expiry(live.tokens["resident"])
    ttl = live.app.state.settings.access_token_ttl_s
    assert expiry is not None and ttl - 120 < expiry - time.time() <= ttl
    assert token_expiry("not-a-jwt") is None
    # The stream's clock runs ahead by ``skew``: the token expires when the test says so, not
    # when a stall of the loaded machine happens to make it (an expiry 0.3 s away on the real
    # clock could pass before the event below is read, and "expired" would come instead).
    skew = [0.0]
    monkeypatch.setattr(events_api, "time", SimpleNamespace(time=lambda: time.time() + skew[0]))
    bus = InProcessEventBus()
    await bus.start()
    sub = bus.subscribe(["public.*"])
    expires_at = time.time() + 3600
    frames = _sse_frames(sub, expires_at)
    assert (await anext(frames))["event"] == "ready"
    await bus.publish("public.alerts", {"n": 1})
    assert json.loads((await anext(frames))["data"])["data"] == {"n": 1}
    # Now 0.3 s before the expiry: the stream, waiting for an event that never comes, wakes
    # up at the expiry and ends.
    skew[0] = expires_at - 0.3 - time.time()
    last = await asyncio.wait_for(anext(frames), 30)
    assert last["event"] == "expired"
    with pytest.raises(StopAsyncIteration):
        await anext(frames)
    assert sub.closed and bus.subscriber_count == 0
    await bus.close()


# --- scale-out: two app processes, one Redis, one PostgreSQL -----------------------------------
def _spawn(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.main:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_ready(proc: subprocess.Popen[bytes], base: str, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"app process exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"app process not ready in {timeout}s:\n{log.read_text()[-3000:]}")


@pytest.fixture
async def two_processes(
    tmp_path: Path, pg_database_url: str, redis_url: str, redis_prefix: str
) -> AsyncIterator[tuple[str, str]]:
    env = app_process_env(
        pg_database_url, redis_url, redis_prefix, ADMIN, PASSWORD, TSUNAGU_EVENT_KEEPALIVE_S="2"
    )
    # Prepare the shared database once here (migrations, admin, signing keys), as a deployment
    # does before scaling out, so both processes can then start at the same time.
    from app.services import Services

    prepared = await Services.start(
        settings_for(
            tmp_path / "prepare", pg_database_url, admin_email=ADMIN, admin_password=PASSWORD
        )
    )
    await prepared.stop()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ports = {name: _free_port() for name in ("a", "b")}
        logs = {name: tmp_path / f"app-{name}.log" for name in ports}
        for name, port in ports.items():
            proc_env = {**env, "TSUNAGU_DATA_DIR": str(tmp_path / name)}
            procs.append(_spawn(port, proc_env, logs[name]))
        bases = [f"http://127.0.0.1:{port}" for port in ports.values()]
        for proc, base, log in zip(procs, bases, logs.values(), strict=True):
            await asyncio.to_thread(_wait_ready, proc, base, log)
        yield bases[0], bases[1]
    finally:
        stop_processes(procs, redis_url, redis_prefix)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
async def test_alert_published_on_one_process_reaches_subscriber_on_another(
    two_processes: tuple[str, str],
) -> None:
    base_a, base_b = two_processes
    async with (
        httpx.AsyncClient(base_url=base_a, timeout=HTTP_TIMEOUT_S) as a,
        httpx.AsyncClient(base_url=base_b, timeout=HTTP_TIMEOUT_S) as b,
    ):
        r = await _login(a, ADMIN)  # signed in on A ...
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        # ... the token is honoured on B (keys in the shared database), and the stream on B
        # gets what A publishes (Redis pub/sub).
        async with _open_stream(b, "public.*", token) as frames_b:
            r = await a.post(
                "/api/v1/events/alerts",
                json={"title": "Scale-out", "severity": "info"},
                headers=_bearer(token),
            )
            assert r.status_code == 201, r.text
            frame = await _next(frames_b, timeout=30)
            assert frame.json() == r.json()
        assert_error(await b.get("/api/v1/events/stream", headers=_bearer("x.y.z")), 401)

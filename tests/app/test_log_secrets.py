"""No secret reaches the server log (#10): ``tsunagu serve`` as deployed (uvicorn, its access
log off) runs a resident's session — sign up, a failed and a good login, the event stream with
``?access_token=``, a plan, a token refresh — and its whole log output is scanned for the
passwords and tokens. Each request is logged once, by the app's own request log, with the
query's secrets redacted (uvicorn's access log used to come back through the root logger and
log every request a second time, the SSE token in clear)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.app.conftest import REPO_ROOT_FOR_TESTS
from tests.conftest import free_port

PASSWORD = "correct-horse-battery-staple-42"
WRONG_PASSWORD = "wrong-horse-battery-staple-42"
ADMIN_PASSWORD = "admin-secret-hunter2-xyz"


def _serve(tmp_path: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
    env.update(
        PYTHONPATH=str(REPO_ROOT_FOR_TESTS),
        DATABASE_URL="",
        REDIS_URL="",
        TSUNAGU_ENVIRONMENT="test",
        TSUNAGU_DEMO="false",
        TSUNAGU_DATA_DIR=str(tmp_path / "data"),
        TSUNAGU_LOG_JSON="true",
        TSUNAGU_LOG_LEVEL="INFO",
        TSUNAGU_EVENT_KEEPALIVE_S="0.5",
        TSUNAGU_ADMIN_EMAIL="admin@example.org",
        TSUNAGU_ADMIN_PASSWORD=ADMIN_PASSWORD,
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT_FOR_TESTS,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _records(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _requests(log: Path) -> list[dict[str, Any]]:
    return [r for r in _records(log.read_text()) if r.get("event") == "request"]


def _wait(check: Any, what: str, log: Path, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, f"{what}:\n{log.read_text()[-3000:]}"
        time.sleep(0.1)


def test_a_session_leaves_no_password_or_token_in_the_log(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "serve.log"
    proc = _serve(tmp_path, port, log)
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        _wait(ready, "not ready", log, timeout=300)
        with httpx.Client(base_url=base, timeout=30) as c:
            email = "rider@example.org"
            r = c.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
            assert r.status_code == 201, r.text
            r = c.post("/api/v1/auth/login", json={"email": email, "password": WRONG_PASSWORD})
            assert r.status_code == 401, r.text
            r = c.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            assert r.status_code == 200, r.text
            tokens = r.json()
            access, refresh = tokens["access_token"], tokens["refresh_token"]
            stream = f"/api/v1/events/stream?topics=public.*&access_token={access}"
            with c.stream("GET", stream) as s:
                assert s.status_code == 200
                for line in s.iter_lines():
                    if line.startswith("event: ready"):
                        break
            bearer = {"Authorization": f"Bearer {access}"}
            plan = c.get(
                "/api/v1/plan",
                params={"fromPlace": "42.31,140.96", "toPlace": "42.33,140.99", "token": access},
                headers=bearer,
            )
            assert plan.status_code in (200, 503), plan.text  # 503: no timetable here
            r = c.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
            assert r.status_code == 200, r.text
            new_access = r.json()["access_token"]

        # The stream's line is written when the server notices the client left (a keep-alive).
        def stream_logged() -> bool:
            return any(x.get("path") == "/api/v1/events/stream" for x in _requests(log))

        _wait(stream_logged, "the event stream's request was not logged", log)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    text = log.read_text()
    for secret in (PASSWORD, WRONG_PASSWORD, ADMIN_PASSWORD, access, refresh, new_access):
        assert secret not in text, f"a secret is in the log:\n{text}"
    # The token's signature alone (what a log shipper might split off) is absent too.
    assert access.rsplit(".", 1)[1] not in text

    requests = _requests(log)
    seen = [(r["method"], r["path"]) for r in requests if r["path"] != "/readyz"]
    assert sorted(seen) == sorted(
        [
            ("POST", "/api/v1/auth/signup"),
            ("POST", "/api/v1/auth/login"),
            ("POST", "/api/v1/auth/login"),
            ("GET", "/api/v1/events/stream"),
            ("GET", "/api/v1/plan"),
            ("POST", "/api/v1/auth/refresh"),
        ]
    ), requests
    (sse,) = [r for r in requests if r["path"] == "/api/v1/events/stream"]
    assert sse["query"] == "topics=public.*&access_token=***"
    (planned,) = [r for r in requests if r["path"] == "/api/v1/plan"]
    assert "token=***" in planned["query"] and "fromPlace=42.31" in planned["query"]
    # Nothing from uvicorn's access log (it would repeat every request).
    assert not [r for r in _records(text) if r.get("logger") == "uvicorn.access"]
    assert '" 200' not in text

"""Bad input answers a clear error in the one shape; middleware (body limits, request ids)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from app.errors import install_error_handlers
from app.middleware import BodyLimitMiddleware, install_middleware
from app.settings import Settings
from tests.app.conftest import TestUser, assert_error
from tests.conftest import free_port

LOGIN = "/api/v1/auth/login"
JSON = {"content-type": "application/json"}


def test_malformed_json_is_400(app_client: TestClient) -> None:
    r = app_client.post(LOGIN, content=b'{"email": "a@b.org", "password": ', headers=JSON)
    assert_error(r, 400, "malformed_json")


def test_unknown_fields_and_wrong_types_are_422(app_client: TestClient) -> None:
    r = app_client.post(LOGIN, json={"email": "a@b.org", "password": "password-1", "admin": True})
    err = assert_error(r, 422, "validation_error")
    assert any(d["loc"][-1] == "admin" and d["type"] == "extra_forbidden" for d in err["details"])
    r = app_client.post(LOGIN, json={"email": ["a@b.org"], "password": 12345678})
    err = assert_error(r, 422, "validation_error")
    assert {d["loc"][-1] for d in err["details"]} == {"email", "password"}
    assert_error(app_client.post(LOGIN, json=["not", "an", "object"]), 422, "validation_error")


def test_oversized_body_is_413(make_app_client: Callable[..., TestClient]) -> None:
    client = make_app_client(max_body_bytes=2_000)
    body = {"email": "a@b.org", "password": "p" * 5_000}
    err = assert_error(client.post(LOGIN, json=body), 413, "payload_too_large")
    assert err["details"] == {"limit_bytes": 2_000}


def test_body_limit_counts_streamed_bytes(make_app_client: Callable[..., TestClient]) -> None:
    """No Content-Length (chunked): the limit applies to the bytes as they arrive."""
    client = make_app_client(max_body_bytes=2_000)

    def chunks() -> Iterator[bytes]:
        yield b'{"email": "a@b.org", "password": "'
        for _ in range(10):
            yield b"p" * 500
        yield b'"}'

    r = client.post(LOGIN, content=chunks(), headers=JSON)
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert_error(r, 413, "payload_too_large")


def test_uploads_have_their_own_limit(make_app_client: Callable[..., TestClient]) -> None:
    client = make_app_client(max_body_bytes=1_000, max_upload_bytes=50_000)

    @client.app.post("/api/v1/test-upload")  # type: ignore[attr-defined,untyped-decorator]
    async def upload(request: Request) -> dict[str, int]:
        form = await request.form()
        data = await form["file"].read()  # type: ignore[union-attr]
        return {"size": len(data)}

    ok = client.post("/api/v1/test-upload", files={"file": ("feed.zip", b"z" * 20_000)})
    assert ok.status_code == 200 and ok.json() == {"size": 20_000}
    big = client.post("/api/v1/test-upload", files={"file": ("feed.zip", b"z" * 60_000)})
    assert_error(big, 413, "payload_too_large")
    raw = client.post(
        "/api/v1/test-upload", content=b"z" * 60_000, headers={"content-type": "application/zip"}
    )
    assert_error(raw, 413, "payload_too_large")


def test_limit_by_content_type() -> None:
    mw = BodyLimitMiddleware(lambda *a: None, max_body_bytes=10, max_upload_bytes=99)  # type: ignore[arg-type]
    assert mw.limit_for("application/json") == 10
    assert mw.limit_for(None) == 10
    assert mw.limit_for("multipart/form-data; boundary=x") == 99
    assert mw.limit_for("Application/Zip") == 99


def test_request_id_is_echoed_or_assigned(app_client: TestClient) -> None:
    r = app_client.get("/healthz", headers={"X-Request-ID": "trace-123"})
    assert r.headers["x-request-id"] == "trace-123"
    fresh = app_client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert fresh.headers["x-request-id"] != "bad id\twith spaces"
    assert len(fresh.headers["x-request-id"]) == 32
    assert app_client.get("/nope/../api/v1/x").headers["x-request-id"]


def test_unexpected_error_is_500_without_stack_trace(
    make_app_client: Callable[..., TestClient],
    make_user: Callable[..., TestUser],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = make_app_client(raise_server_exceptions=False)
    user = make_user(client=client)
    identity = client.app.state.services.identity  # type: ignore[attr-defined]

    def broken(*_: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(identity.sessions, "open", broken)
    r = client.post(LOGIN, json={"email": user.email, "password": user.password})
    assert_error(r, 500, "internal_error")
    assert "secret internal detail" not in r.text


def test_unknown_routes_and_methods(app_client: TestClient) -> None:
    assert_error(app_client.get("/api/v1/no-such-thing"), 404, "not_found")
    assert_error(app_client.get("/.well-known/nothing"), 404, "not_found")
    assert_error(app_client.delete("/api/v1/users/me"), 405)


def test_a_500_closes_the_connection_cleanly(app_settings: Settings) -> None:
    """#10: after an unexpected error uvicorn drops the connection, so the 500 must say
    ``Connection: close`` (a client reusing the connection otherwise meets a reset). A real
    uvicorn server on loopback, with a throwaway route that raises."""
    app = FastAPI()
    install_error_handlers(app)
    install_middleware(app, app_settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/ok")
        first = conn.getresponse()
        assert first.status == 200 and first.read() == b'{"ok":true}'
        conn.request("GET", "/boom")  # the same, kept-alive connection
        r = conn.getresponse()
        body = json.loads(r.read())
        assert r.status == 500 and body["error"]["code"] == "internal_error"
        assert (r.getheader("connection") or "").lower() == "close"
        conn.close()
        # The server keeps serving new connections.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/ok")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)

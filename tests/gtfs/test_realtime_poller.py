"""Polling a GTFS-RT URL served by a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gtfs.realtime import FetchError, RealtimeFeed, RealtimePoller, fetch_feed


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        srv = self.server
        srv.hits += 1
        if self.path == "/slow":
            # Answers only once the client has given up (a fixed delay could be outlasted by a
            # stall of the client between sending and reading, and then no timeout happens).
            srv.release.wait(60)
        if self.path == "/broken":
            self.send_response(500)
            self.end_headers()
            return
        body = srv.body if self.path != "/garbage" else b"<html>oops</html>"
        if self.headers.get("If-None-Match") == '"v1"' and self.path == "/feed":
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("ETag", '"v1"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    body: bytes = b""
    hits: int = 0
    release: threading.Event


@pytest.fixture(scope="module")
def server(shared_data: Path) -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.release = threading.Event()
    srv.body = (shared_data / "gtfs-rt" / "us_king_county_vehicle_positions_1.pb").read_bytes()
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


def _url(srv: _Server, path: str) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}{path}"


def test_fetch_once(server: _Server) -> None:
    feed = fetch_feed(_url(server, "/feed"), timeout_s=5)
    assert len(feed.vehicles) == 627


@pytest.mark.parametrize("path", ["/broken", "/garbage"])
def test_fetch_errors(server: _Server, path: str) -> None:
    with pytest.raises(FetchError):
        fetch_feed(_url(server, path), timeout_s=5)


def test_fetch_timeout(server: _Server) -> None:
    server.release.clear()
    try:
        with pytest.raises(FetchError, match="Timeout"):
            fetch_feed(_url(server, "/slow"), timeout_s=0.2)
    finally:
        server.release.set()


def test_connection_refused() -> None:
    with pytest.raises(FetchError):
        fetch_feed("http://127.0.0.1:9/feed", timeout_s=1)


def test_poller_delivers_then_uses_etag(server: _Server) -> None:
    got: list[RealtimeFeed] = []
    done = threading.Event()

    def on_feed(feed: RealtimeFeed) -> None:
        got.append(feed)
        done.set()

    # A generous per-request timeout: a first fetch timed out on a loaded machine would get
    # no ETag, and the feed would rightly be delivered twice.
    poller = RealtimePoller(_url(server, "/feed"), on_feed, interval_s=0.05, timeout_s=30)
    poller.start()
    try:
        assert done.wait(60)  # liveness bound, not a speed claim
        deadline = time.monotonic() + 30  # liveness bound, not a speed claim
        while poller.polls < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        poller.stop()
    assert not poller.running
    assert poller.polls >= 3
    # Later polls are answered 304 (ETag), so the same feed is delivered once.
    assert len(got) == 1 and len(got[0].vehicles) == 627


def test_poller_survives_errors(server: _Server) -> None:
    errors: list[Exception] = []
    poller = RealtimePoller(
        _url(server, "/broken"),
        lambda f: None,
        interval_s=0.05,
        timeout_s=30,  # only the HTTP 500 may fail a poll, not a timeout of a loaded machine
        on_error=errors.append,
    )
    poller.start()
    deadline = time.monotonic() + 30  # liveness bound, not a speed claim
    while len(errors) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    poller.stop()
    assert len(errors) >= 2 and poller.failures >= 2
    assert "HTTP 500" in (poller.last_error or "")


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        RealtimePoller("http://127.0.0.1/", lambda f: None, interval_s=0)

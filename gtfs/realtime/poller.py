"""Poll a GTFS-Realtime URL on an interval, in a background thread.

Each successful fetch is parsed and handed to ``on_feed``; failures (HTTP errors, timeouts,
bytes that are not a FeedMessage) go to ``on_error`` and polling continues — a flaky producer
never stops the consumer. ``If-Modified-Since``/ETag are honoured so an unchanged feed costs
one 304.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import httpx

from gtfs.realtime.messages import RealtimeFeed, RealtimeParseError, parse_feed

log = logging.getLogger("gtfs.realtime.poller")


class FetchError(RuntimeError):
    """The URL did not answer a feed (network, HTTP status, or not GTFS-RT)."""


def fetch_feed(
    url: str,
    *,
    timeout_s: float = 10.0,
    client: httpx.Client | None = None,
    max_bytes: int = 50_000_000,
) -> RealtimeFeed:
    """Fetch and parse one FeedMessage from ``url``."""
    own = client is None
    c = client or httpx.Client(timeout=timeout_s, follow_redirects=True)
    try:
        r = c.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from exc
    finally:
        if own:
            c.close()
    if r.status_code != 200:
        raise FetchError(f"{url}: HTTP {r.status_code}")
    if len(r.content) > max_bytes:
        raise FetchError(f"{url}: {len(r.content)} bytes exceeds {max_bytes}")
    try:
        return parse_feed(r.content)
    except RealtimeParseError as exc:
        raise FetchError(f"{url}: {exc}") from exc


class RealtimePoller:
    """Fetch ``url`` every ``interval_s`` seconds until :meth:`stop`.

    Parameters
    ----------
    url
        The GTFS-RT endpoint.
    on_feed
        Called with each new parsed feed (from the poller thread).
    interval_s, timeout_s
        Time between polls and per-request timeout.
    on_error
        Called with the exception of a failed poll; defaults to logging it.
    """

    def __init__(
        self,
        url: str,
        on_feed: Callable[[RealtimeFeed], None],
        *,
        interval_s: float = 30.0,
        timeout_s: float = 10.0,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        if interval_s <= 0 or timeout_s <= 0:
            raise ValueError("interval_s and timeout_s must be positive")
        self.url = url
        self.on_feed = on_feed
        self.on_error = on_error
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.polls = 0
        self.failures = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._etag: str | None = None
        self._last_modified: str | None = None

    def poll_once(self, client: httpx.Client) -> RealtimeFeed | None:
        """One fetch; ``None`` when the server says the feed did not change (304)."""
        headers = {}
        if self._etag:
            headers["If-None-Match"] = self._etag
        if self._last_modified:
            headers["If-Modified-Since"] = self._last_modified
        try:
            r = client.get(self.url, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise FetchError(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        if r.status_code == 304:
            return None
        if r.status_code != 200:
            raise FetchError(f"{self.url}: HTTP {r.status_code}")
        try:
            feed = parse_feed(r.content)
        except RealtimeParseError as exc:
            raise FetchError(f"{self.url}: {exc}") from exc
        self._etag = r.headers.get("etag")
        self._last_modified = r.headers.get("last-modified")
        return feed

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout_s, follow_redirects=True) as client:
            while not self._stop.is_set():
                self.polls += 1
                try:
                    feed = self.poll_once(client)
                    # Cleared before the feed is handed on, so no reader sees the feed
                    # ingested next to the error of an earlier poll.
                    self.last_error = None
                    if feed is not None:
                        self.on_feed(feed)
                except Exception as exc:  # the poller must survive anything a producer sends
                    # The error first: a reader (status API) that sees the count go up also
                    # sees what failed.
                    self.last_error = str(exc)
                    self.failures += 1
                    if self.on_error is not None:
                        self.on_error(exc)
                    else:
                        log.warning("realtime poll failed: %s", exc)
                self._stop.wait(self.interval_s)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="gtfs-rt-poller", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s if timeout_s is not None else self.timeout_s + 1)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

"""Login throttling: at most N attempts per minute per (email, client IP).

In memory for a single process; in Redis when ``redis_url`` is set, so every process of a
deployment counts against one limit. Fixed one-minute windows, counted atomically.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

log = structlog.get_logger("tsunagu.identity.rate_limit")

WINDOW_S = 60


@dataclass(frozen=True)
class Decision:
    """Whether an attempt may proceed, and if not, how long to wait."""

    allowed: bool
    retry_after_s: int


class RateLimiter(Protocol):
    def hit(self, key: str) -> Decision:
        """Count one attempt for ``key``."""
        ...

    def close(self) -> None: ...


def login_key(email: str, client_ip: str) -> str:
    """A stable key for an (email, IP) pair that does not store the email in clear."""
    return hashlib.sha256(f"{email.strip().lower()}|{client_ip}".encode()).hexdigest()[:32]


class MemoryRateLimiter:
    """Per-process counters (thread-safe); stale windows are pruned as new ones open."""

    def __init__(
        self, limit: int, window_s: int = WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock  # injectable: tests move time without sleeping
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}

    def hit(self, key: str) -> Decision:
        now = self._clock()
        with self._lock:
            start, count = self._windows.get(key, (now, 0))
            if now - start >= self.window_s:
                start, count = now, 0
            count += 1
            self._windows[key] = (start, count)
            if len(self._windows) > 10_000:
                self._prune(now)
        if count <= self.limit:
            return Decision(True, 0)
        return Decision(False, max(1, math.ceil(start + self.window_s - now)))

    def _prune(self, now: float) -> None:
        for k in [k for k, (s, _) in self._windows.items() if now - s >= self.window_s]:
            del self._windows[k]

    def close(self) -> None:
        self._windows.clear()


# INCR and set the expiry on the first hit, in one atomic step; returns (count, ms to reset).
_HIT_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
"""


class RedisRateLimiter:
    """Counters in Redis shared by every process. If Redis fails, attempts are allowed (and
    logged): an outage of the limiter must not lock everyone out."""

    def __init__(self, url: str, limit: int, *, prefix: str, window_s: int = WINDOW_S) -> None:
        import redis

        self.limit = limit
        self.window_s = window_s
        self.prefix = f"{prefix}ratelimit:login:"
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = self._client.register_script(_HIT_SCRIPT)

    def hit(self, key: str) -> Decision:
        import redis

        try:
            count, ttl_ms = self._script(keys=[self.prefix + key], args=[self.window_s * 1000])
        except redis.RedisError as exc:
            log.warning("rate_limit_unavailable", error=type(exc).__name__)
            return Decision(True, 0)
        if int(count) <= self.limit:
            return Decision(True, 0)
        return Decision(False, max(1, math.ceil(int(ttl_ms) / 1000)))

    def close(self) -> None:
        self._client.close()

"""Zone leases and snapshots for the scaled-out dispatcher (see :mod:`dispatch.scale_out`):
Redis keys with an expiry, taken and renewed atomically, or in-process stand-ins with the same
semantics (single-process deployments and tests).

Each lease carries a fencing token: a number that grows every time the lease changes hands
(``KEYS[1]`` plus ``:fence``, never expiring). ``acquire`` answers it (0 when another owner holds
the lease): a worker that sees its token change lost the lease in between, even if it holds
the lease again now, and must not act on the zone state it has in memory."""

from __future__ import annotations

import threading
import time
from typing import Any

_ACQUIRE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return tonumber(redis.call('get', KEYS[2]) or '0')
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('incr', KEYS[2])
end
return 0
"""
# Renew only (the keeper thread): never takes a lease, so a renewal racing a release cannot
# take the zone back after it was given away.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return tonumber(redis.call('get', KEYS[2]) or '0')
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class RedisLeaseStore:
    """Zone leases as Redis keys with an expiry, taken and renewed atomically (Lua).

    Parameters
    ----------
    client
        An asyncio Redis client (the event loop's calls).
    prefix
        Prepended to every key.
    sync_client
        A blocking Redis client for :meth:`renew_sync`: the lease keeper thread renews through
        it, so a renewal never waits for an event loop busy with other work (issue #10).
    """

    def __init__(self, client: Any, prefix: str = "tsunagu:", sync_client: Any = None) -> None:
        self.client = client
        self.prefix = prefix
        self.sync_client = sync_client

    @property
    def renews_in_thread(self) -> bool:
        """Whether :meth:`renew_sync` works (a blocking client was given)."""
        return self.sync_client is not None

    def _keys(self, key: str) -> tuple[str, str]:
        return self.prefix + key, self.prefix + key + ":fence"

    async def acquire(self, key: str, owner: str, ttl_ms: int) -> int:
        """Take or renew the lease: its fencing token, 0 while another owner holds it."""
        res = await self.client.eval(_ACQUIRE, 2, *self._keys(key), owner, int(ttl_ms))
        return int(res)

    def renew_sync(self, key: str, owner: str, ttl_ms: int) -> int:
        """Extend a lease ``owner`` holds, from any thread (blocking; needs ``sync_client``):
        its fencing token, 0 when ``owner`` does not hold it (never takes it)."""
        if self.sync_client is None:
            raise RuntimeError("RedisLeaseStore has no sync_client")
        return int(self.sync_client.eval(_RENEW, 2, *self._keys(key), owner, int(ttl_ms)))

    async def release(self, key: str, owner: str) -> None:
        await self.client.eval(_RELEASE, 1, self.prefix + key, owner)


class RedisStateStore:
    """Zone snapshots as Redis strings."""

    def __init__(self, client: Any, prefix: str = "tsunagu:") -> None:
        self.client = client
        self.prefix = prefix

    async def load(self, key: str) -> str | None:
        raw = await self.client.get(self.prefix + key)
        return None if raw is None else raw.decode() if isinstance(raw, bytes) else str(raw)

    async def save(self, key: str, value: str) -> None:
        await self.client.set(self.prefix + key, value)


class MemoryLeaseStore:
    """In-process leases (single-process deployments and tests), same semantics as Redis."""

    def __init__(self, clock: Any = None) -> None:
        self.clock = clock or time.monotonic
        self._leases: dict[str, tuple[str, float]] = {}
        self._fences: dict[str, int] = {}
        # The keeper thread renews while the event loop takes or releases.
        self._mutex = threading.Lock()

    def _acquire(self, key: str, owner: str, ttl_ms: int, *, take: bool) -> int:
        with self._mutex:
            now = self.clock()
            held = self._leases.get(key)
            if held is not None and held[1] > now:
                if held[0] != owner:
                    return 0
            elif not take:
                return 0
            else:  # free or expired: the lease changes hands (or is taken again)
                self._fences[key] = self._fences.get(key, 0) + 1
            self._leases[key] = (owner, now + ttl_ms / 1000.0)
            return self._fences[key]

    async def acquire(self, key: str, owner: str, ttl_ms: int) -> int:
        """Take or renew the lease: its fencing token, 0 while another owner holds it."""
        return self._acquire(key, owner, ttl_ms, take=True)

    def renew_sync(self, key: str, owner: str, ttl_ms: int) -> int:
        """Extend a lease ``owner`` holds (any thread): its token, 0 if not held."""
        return self._acquire(key, owner, ttl_ms, take=False)

    async def release(self, key: str, owner: str) -> None:
        with self._mutex:
            held = self._leases.get(key)
            if held is not None and held[0] == owner:
                del self._leases[key]


class MemoryStateStore:
    """In-process zone snapshots."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}

    async def load(self, key: str) -> str | None:
        return self._data.get(key)

    async def save(self, key: str, value: str) -> None:
        self._data[key] = value

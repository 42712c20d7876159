"""Zone leases and snapshots for the scaled-out dispatcher (see :mod:`dispatch.scale_out`):
Redis keys with an expiry, taken and renewed atomically, or in-process stand-ins with the same
semantics (single-process deployments and tests)."""

from __future__ import annotations

from typing import Any

_ACQUIRE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class RedisLeaseStore:
    """Zone leases as Redis keys with an expiry, taken and renewed atomically (Lua)."""

    def __init__(self, client: Any, prefix: str = "tsunagu:") -> None:
        self.client = client
        self.prefix = prefix

    async def acquire(self, key: str, owner: str, ttl_ms: int) -> bool:
        res = await self.client.eval(_ACQUIRE, 1, self.prefix + key, owner, int(ttl_ms))
        return bool(int(res))

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
        import time

        self.clock = clock or time.monotonic
        self._leases: dict[str, tuple[str, float]] = {}

    async def acquire(self, key: str, owner: str, ttl_ms: int) -> bool:
        now = self.clock()
        held = self._leases.get(key)
        if held is not None and held[0] != owner and held[1] > now:
            return False
        self._leases[key] = (owner, now + ttl_ms / 1000.0)
        return True

    async def release(self, key: str, owner: str) -> None:
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

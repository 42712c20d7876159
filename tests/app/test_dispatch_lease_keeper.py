"""Zone leases under CPU starvation (issue #10): the owner renews from a thread of its own, so
an event loop blocked for longer than a lease lives does not hand the zone to another process;
a killed owner's lease still ends after its lifetime; a worker whose lease changed hands while
it handled a batch saves and acks nothing of it (fencing). Real Redis, and the in-process store.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

import dispatch.scale_out as scale_out
from app.dispatch.leases import MemoryLeaseStore, MemoryStateStore, RedisLeaseStore
from app.events import RedisEventBus
from dispatch.scale_out import LeaseKeeper, ZoneWorker, book_message, lease_key, zone_stream
from tests.app.test_dispatch_scale_out import (
    ZONES,
    _seed_fleet,
    _warm,
    new_dispatcher,
    request,
)

ROOT = Path(__file__).resolve().parents[2]
# Short enough that the old renewal (on the blocked loop) lets it end during the block.
TTL_MS = 2000
BLOCK_S = 2.5 * TTL_MS / 1000


@pytest.fixture
def sync_redis(redis_url: str, redis_prefix: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    keys = list(client.scan_iter(match=f"{redis_prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
async def cluster(
    redis_url: str, redis_prefix: str, sync_redis: redis.Redis
) -> AsyncIterator[tuple[RedisEventBus, RedisLeaseStore, MemoryStateStore]]:
    """A real Redis bus and lease store (the keeper thread's own blocking client)."""
    bus = RedisEventBus(redis_url, prefix=redis_prefix)
    await bus.start()
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    state = MemoryStateStore()
    await _seed_fleet(state)
    _warm()
    yield bus, RedisLeaseStore(client, redis_prefix, sync_client=sync_redis), state
    await client.aclose()
    await bus.close()


def _hog(seconds: float, how: str) -> None:
    """Block the calling thread (the event loop): asleep, or burning CPU in Python (holding
    the GIL but for the interpreter's switch interval)."""
    end = time.monotonic() + seconds
    if how == "sleep":
        time.sleep(seconds)
        return
    n = 0
    while time.monotonic() < end:
        n += sum(k * k for k in range(1000))


@pytest.mark.redis
@pytest.mark.parametrize("how", ["sleep", "cpu"])
async def test_blocked_event_loop_keeps_the_lease(
    cluster: tuple[RedisEventBus, RedisLeaseStore, MemoryStateStore], how: str
) -> None:
    """The owner's loop blocked for 2.5 lease lifetimes: nobody else can take the zone, and the
    owner goes on serving it afterwards (before #10 the lease ended during the block)."""
    bus, leases, state = cluster
    east = ZONES[0]
    w1 = ZoneWorker("w1", [east], new_dispatcher, bus, leases, state, TTL_MS, reclaim_idle_ms=0)
    assert await w1.run_once() == 0 and w1.owned == {"east"}
    _hog(BLOCK_S, how)
    assert not await leases.acquire(lease_key("east"), "rival", TTL_MS)
    await bus.enqueue(zone_stream("east"), book_message(request(east, 0)))
    assert await w1.run_once() == 1
    assert w1.outcomes[-1]["status"] == "assigned"
    assert w1.owned == {"east"}
    await w1.stop()
    # A clean stop releases at once, and the thread no longer renews it.
    assert await leases.acquire(lease_key("east"), "rival", TTL_MS)


_HOLDER = """
import sys, time, redis
from app.dispatch.leases import RedisLeaseStore
from dispatch.scale_out import LeaseKeeper
url, prefix, key, ttl = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
client = redis.Redis.from_url(url, decode_responses=True)
store = RedisLeaseStore(None, prefix, sync_client=client)
client.set(prefix + key, "holder", px=ttl)
token = client.incr(prefix + key + ":fence")
keeper = LeaseKeeper(store.renew_sync, "holder", ttl)
keeper.hold(key, token, time.monotonic())
print("held", token, flush=True)
time.sleep(3600)
"""


@pytest.mark.redis
async def test_a_killed_owner_still_hands_the_zone_over(
    redis_url: str, redis_prefix: str, sync_redis: redis.Redis
) -> None:
    """The keeper thread lives and dies with its process: a live holder keeps the lease past
    its lifetime, a SIGKILLed one loses it after at most that lifetime (no clean release)."""
    key = lease_key("east")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, redis_url, redis_prefix, key, str(TTL_MS)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert holder.stdout is not None
        words = holder.stdout.readline().split()
        assert words[0] == "held"
        token = int(words[1])
        leases = RedisLeaseStore(None, redis_prefix, sync_client=sync_redis)
        time.sleep(BLOCK_S)  # longer than the lease lives: only renewals keep it
        assert leases.renew_sync(key, "holder", TTL_MS) == token  # still the holder's
        assert sync_redis.get(redis_prefix + key) == "holder"
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        killed_at = time.monotonic()
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            store = RedisLeaseStore(client, redis_prefix)
            taken = 0
            # Bounded by many lifetimes (a loaded machine); it ends after one.
            while not taken and time.monotonic() - killed_at < 20 * TTL_MS / 1000:
                taken = await store.acquire(key, "survivor", TTL_MS)
                time.sleep(0.05)
        finally:
            await client.aclose()
        assert taken == token + 1  # taken over, under a new fencing token
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(30)


def _steal(leases: Any, sync_redis: redis.Redis, prefix: str, key: str) -> None:
    """The lease changes hands (as after an expiry): another owner takes it, a new token."""
    if isinstance(leases, MemoryLeaseStore):
        leases._leases.pop(key, None)
        assert leases._acquire(key, "rival", 60_000, take=True)
        return
    sync_redis.set(prefix + key, "rival", px=60_000)
    sync_redis.incr(prefix + key + ":fence")


@pytest.mark.parametrize("backend", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def test_a_worker_that_lost_its_lease_mid_batch_does_not_act(
    cluster: tuple[RedisEventBus, RedisLeaseStore, MemoryStateStore],
    sync_redis: redis.Redis,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    backend: str,
) -> None:
    """Fencing: the lease changes hands while a batch is being handled (the worker was slow);
    the batch is neither saved nor acked, the worker leaves the zone, and the new owner books
    the ride exactly once."""
    bus, redis_leases, state = cluster
    leases: Any = MemoryLeaseStore() if backend == "memory" else redis_leases
    east = ZONES[0]
    key = lease_key("east")
    w1 = ZoneWorker("w1", [east], new_dispatcher, bus, leases, state, TTL_MS, reclaim_idle_ms=0)
    assert await w1.run_once() == 0 and w1.owned == {"east"}
    saved_before = await state.load("dispatch.state.east")
    real = scale_out.handle_batch

    def slow_batch(*args: Any, **kw: Any) -> Any:
        out = real(*args, **kw)
        _steal(leases, sync_redis, redis_prefix, key)
        return out

    monkeypatch.setattr(scale_out, "handle_batch", slow_batch)
    await bus.enqueue(zone_stream("east"), book_message(request(east, 0)))
    assert await w1.run_once() == 0
    assert w1.owned == set()
    assert await bus.pending(zone_stream("east"), "dispatch") == 1  # left for the new owner
    assert await state.load("dispatch.state.east") == saved_before  # nothing saved
    monkeypatch.setattr(scale_out, "handle_batch", real)

    rival = ZoneWorker(
        "rival", [east], new_dispatcher, bus, leases, state, TTL_MS, reclaim_idle_ms=0
    )
    assert await rival.run_once() == 1
    assert [r.ride_id for r in rival.dispatcher.rides()] == ["east-0"]
    assert await bus.pending(zone_stream("east"), "dispatch") == 0
    # w1 cannot take the zone back while the rival holds it.
    assert await w1.run_once() == 0 and w1.owned == set()
    await rival.stop()
    await w1.stop()


async def test_a_lease_that_changed_hands_in_between_is_not_acted_on() -> None:
    """A worker whose lease ended, was taken by another and given back, holds it again but
    under a new token: its zone state may be stale, so it drops the zone before acting and
    takes it afresh (restored from the store) on its next pass."""
    clock = [0.0]
    leases = MemoryLeaseStore(clock=lambda: clock[0])
    state = MemoryStateStore()
    await _seed_fleet(state)
    from app.events import InProcessEventBus

    bus = InProcessEventBus()
    await bus.start()
    east = ZONES[0]
    w1 = ZoneWorker("w1", [east], new_dispatcher, bus, leases, state, TTL_MS, reclaim_idle_ms=0)
    w1.keeper = None  # the fencing token alone (the thread would renew on the fake clock)
    try:
        assert await w1.run_once() == 0 and w1.owned == {"east"}
        taken: list[str] = []

        async def on_acquire(zid: str) -> None:
            taken.append(zid)

        w1.on_acquire = on_acquire
        clock[0] += 10.0  # expired
        assert await leases.acquire(lease_key("east"), "other", TTL_MS)
        await leases.release(lease_key("east"), "other")
        await bus.enqueue(zone_stream("east"), book_message(request(east, 0)))
        # The pass re-takes the lease (a new token): the zone is dropped and restored.
        assert await w1.run_once() == 0 and w1.owned == set()
        assert await w1.run_once() == 1 and w1.owned == {"east"} and taken == ["east"]
    finally:
        await w1.stop()
        await bus.close()


def test_keeper_validity_follows_confirmed_renewals() -> None:
    """A lease is surely held until its last confirmed renewal's send time plus its lifetime,
    less the margin; a renewal answered with another token (or 0) ends it at once; a frozen
    process (no renewal at all) stops acting before the lease can end."""
    clock = [100.0]
    answers: list[int] = []
    keeper = LeaseKeeper(lambda k, o, t: answers.pop(0), "w", 3000, clock=lambda: clock[0])
    keeper.hold("k", 7, clock[0])
    keeper._stop.set()  # the thread ends: renew_all is called by hand
    assert keeper.valid("k", 7) and not keeper.valid("k", 8) and not keeper.valid("x", 7)
    clock[0] += 3.0 - keeper.margin  # frozen for a whole lifetime less the margin
    assert not keeper.valid("k", 7)
    answers.append(7)
    keeper.renew_all()
    assert keeper.valid("k", 7)
    clock[0] += 1.0
    answers.append(0)  # another owner holds it
    keeper.renew_all()
    assert not keeper.valid("k", 7)

    def broken(*_: Any) -> int:
        raise redis.ConnectionError("redis away")

    keeper.renew = broken
    keeper.hold("k", 9, clock[0])
    keeper.renew_all()  # an outage only stops the renewals: the lease runs out
    assert keeper.valid("k", 9)
    clock[0] += 3.0
    assert not keeper.valid("k", 9)
    keeper.close()

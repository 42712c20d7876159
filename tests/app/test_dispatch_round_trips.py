"""Round trips a booking or a cancellation no longer makes scaled out (issue #10): a rider's
cancellation reads the ride once (the route's check that the caller may see it hands the ride
to the gateway, which used to read it again: for a ride the asking process does not own, a
database look-up and a Redis round trip more); a command a process asks of a zone it owns
itself is answered without a trip through Redis (the outcome is recorded all the same)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.app.test_dispatch_cluster import (
    RIDES,
    A,
    B,
    Cluster,
    DropReplies,
    add_fleet,
    cluster,
    fresh_pg_url,
    gateway,
    owners,
    staff_and_rider,
    warm_kernels,
)

__all__ = ["cluster", "fresh_pg_url", "warm_kernels"]  # fixtures
pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def test_a_cancel_reads_the_ride_once(
    cluster: Cluster,
    make_user: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = cluster()
    _, hb, ha = staff_and_rider(a, make_user, auth)
    zid = f"z-{uuid.uuid4().hex[:6]}"
    add_fleet(a, hb, zid)
    b = cluster()
    assert owners([a, b], zid) == [0]
    booked = b.post(RIDES, json={"request": {"origin": A, "destination": B}}, headers=ha)
    assert booked.status_code == 201, booked.text
    rid = booked.json()["ride_id"]
    g = gateway(b)
    reads: list[str] = []
    ride = g.ride

    async def counted(ride_id: str) -> Any:
        reads.append(ride_id)
        return await ride(ride_id)

    monkeypatch.setattr(g, "ride", counted)
    r = b.delete(f"{RIDES}/{rid}", headers=ha)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert reads == [rid]  # the route's read only (two before)
    # Someone else's ride is still not theirs to see, let alone cancel.
    other = auth(make_user(client=b), b)
    assert b.delete(f"{RIDES}/{rid}", headers=other).status_code == 404


def test_a_command_to_the_own_zone_is_answered_without_redis(
    cluster: Cluster, make_user: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    a = cluster()
    _, hb, ha = staff_and_rider(a, make_user, auth)
    zid = f"z-{uuid.uuid4().hex[:6]}"
    add_fleet(a, hb, zid)
    assert owners([a], zid) == [0]
    g = gateway(a)
    published = DropReplies(g.owner.bus, lambda corr: None)  # counts (and drops) replies
    g.owner.bus = published
    before = len(a.portal.call(g.redis.keys, g._key("outcome.*")))  # type: ignore[union-attr]
    booked = a.post(RIDES, json={"request": {"origin": A, "destination": B}}, headers=ha)
    assert booked.status_code == 201, booked.text  # a dropped reply would be a 30 s wait
    rid = booked.json()["ride_id"]
    r = a.delete(f"{RIDES}/{rid}", headers=ha)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert published.dropped == 0  # before: one reply published per command
    # The outcomes are still recorded (for an asker whose wait ended, as a lost reply's).
    records = a.portal.call(g.redis.keys, g._key("outcome.*"))  # type: ignore[union-attr]
    assert len(records) == before + 2


async def test_a_batch_started_while_the_keeper_holds_the_lease_asks_redis_once() -> None:
    """The zone task used to renew the lease before each batch and again after handling it;
    the keeper thread renews it anyway, so only the fencing check after the handling (before
    the save and the acks) is a round trip now. A lease that changed hands while the batch
    was handled is still caught there (test_dispatch_lease_keeper)."""
    from app.dispatch.leases import MemoryLeaseStore, MemoryStateStore
    from app.events import InProcessEventBus
    from dispatch.scale_out import ZoneWorker, book_message, zone_stream
    from tests.app.test_dispatch_scale_out import ZONES, _seed_fleet, _warm, new_dispatcher
    from tests.app.test_dispatch_scale_out import request as ride_request

    leases, state, bus = MemoryLeaseStore(), MemoryStateStore(), InProcessEventBus()
    await bus.start()
    await _seed_fleet(state)
    _warm()
    east = ZONES[0]
    # A long lease: the keeper's own passes (every third of it) stay out of the count.
    w = ZoneWorker("w1", [east], new_dispatcher, bus, leases, state, 600_000, reclaim_idle_ms=0)
    asked: list[str] = []
    acquire = leases.acquire

    async def counted(key: str, owner: str, ttl_ms: int) -> int:
        asked.append(key)
        return await acquire(key, owner, ttl_ms)

    try:
        w.start()
        deadline = asyncio.get_running_loop().time() + 30
        while "east" not in w.owned or "east" not in w._tasks:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        leases.acquire = counted  # type: ignore[method-assign]
        await bus.enqueue(zone_stream("east"), book_message(ride_request(east, 0)))
        while not w.outcomes:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        assert w.outcomes[-1]["status"] == "assigned"
        assert len(asked) == 1, asked  # two before: one more ahead of the batch
    finally:
        await w.stop()
        await bus.close()


async def test_after_an_error_a_batch_renews_the_lease_before_it_is_applied() -> None:
    """After a Redis restart the first command on each pooled connection fails (the server
    closed it and the clients do not retry). The renewal a batch skips while the keeper holds
    the lease used to meet that failure before the batch was applied; skipped, the fencing
    renewal after it met it, with the booking applied in memory (GET /rides answered it
    assigned) but not saved, acked nor recorded: its ``dispatch.pending`` record stayed
    (test_outage's Redis restart, #10). So after an error the zone task renews first, and
    skips the renewal again once one has succeeded."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from app.dispatch.leases import MemoryLeaseStore, MemoryStateStore
    from app.events import InProcessEventBus
    from dispatch.scale_out import ZoneWorker, book_message, zone_stream
    from tests.app.test_dispatch_scale_out import ZONES, _seed_fleet, _warm, new_dispatcher
    from tests.app.test_dispatch_scale_out import request as ride_request

    leases, state, bus = MemoryLeaseStore(), MemoryStateStore(), InProcessEventBus()
    await bus.start()
    await _seed_fleet(state)
    _warm()
    east = ZONES[0]
    # A long lease (the keeper's passes stay out of the way); messages reclaimed at once.
    w = ZoneWorker("w1", [east], new_dispatcher, bus, leases, state, 600_000, reclaim_idle_ms=0)
    first, second = ride_request(east, 0), ride_request(east, 1)
    read, acquire = bus.read, leases.acquire
    outage = asyncio.Event()
    applied_at_failure: list[bool] = []  # the failed renewal: was the booking applied?
    asked: list[str] = []

    async def read_through_outage(*args: Any, **kwargs: Any) -> Any:
        if not outage.is_set():  # Redis stopped under the zone task's blocking read
            outage.set()
            raise RedisConnectionError("Connection closed by server.")
        return await read(*args, **kwargs)

    async def acquire_on_a_stale_connection(key: str, owner: str, ttl_ms: int) -> int:
        asked.append(key)
        if not applied_at_failure:  # the first lease call after the restart
            applied_at_failure.append(w.dispatcher.ride(str(first.request_id)) is not None)
            raise RedisConnectionError("Connection closed by server.")
        return await acquire(key, owner, ttl_ms)

    async def until(done: Callable[[], bool]) -> None:
        deadline = asyncio.get_running_loop().time() + 30
        while not done():
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)

    try:
        w.start()
        await until(lambda: "east" in w.owned and "east" in w._tasks)
        bus.read = read_through_outage  # type: ignore[method-assign]
        leases.acquire = acquire_on_a_stale_connection  # type: ignore[method-assign]
        await until(outage.is_set)
        await bus.enqueue(zone_stream("east"), book_message(first))
        await until(lambda: len(w.outcomes) == 1)
        assert w.outcomes[0]["status"] == "assigned"
        # Failed ahead of the batch (before: after it, the booking applied but not recorded).
        assert applied_at_failure == [False]
        # Once a renewal went through, a batch starts without one again.
        asked.clear()
        await bus.enqueue(zone_stream("east"), book_message(second))
        await until(lambda: len(w.outcomes) == 2)
        assert w.outcomes[1]["status"] == "assigned"
        assert len(asked) == 1, asked
    finally:
        await w.stop()
        await bus.close()

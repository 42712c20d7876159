"""Scale-out: dispatcher workers share zones through leases and work queues; a worker that
crashes mid-batch loses no request and none is booked twice. In-process and real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from app.dispatch_service import (
    MemoryLeaseStore,
    MemoryStateStore,
    RedisLeaseStore,
    RedisStateStore,
)
from app.events import InProcessEventBus, RedisEventBus
from dispatch.dispatcher import Dispatcher
from dispatch.request import RideRequest
from dispatch.scale_out import ZoneWorker, book_message, zone_snapshot, zone_stream
from dispatch.travel_times import StraightLineTravelTimes
from dispatch.vehicle import VAN, Vehicle
from dispatch.zone import ServiceZone

NOW = 9 * 3600.0


def _square(lon0: float, lat0: float) -> dict[str, Any]:
    c = [
        [lon0, lat0],
        [lon0 + 0.04, lat0],
        [lon0 + 0.04, lat0 + 0.03],
        [lon0, lat0 + 0.03],
        [lon0, lat0],
    ]
    return {"type": "Polygon", "coordinates": [c]}


ZONES = [
    ServiceZone.from_geojson("east", _square(140.96, 42.30)),
    ServiceZone.from_geojson("west", _square(140.90, 42.30)),
]


def new_dispatcher() -> Dispatcher:
    return Dispatcher(StraightLineTravelTimes(1.3), clock=lambda: NOW)


def request(zone: ServiceZone, k: int) -> RideRequest:
    lon0 = zone.polygons[0][0][0][0]
    return RideRequest(
        origin=(42.305 + 0.002 * (k % 5), lon0 + 0.005),
        destination=(42.325, lon0 + 0.035 - 0.002 * (k % 3)),
        requested_at=NOW,
        earliest_pickup=NOW + 600 + 300 * k,
        user_id=f"u{k}",
        request_id=f"{zone.zone_id}-{k}",
    )


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def backends(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Any, Any, Any]]:
    if request.param == "memory":
        bus: Any = InProcessEventBus()
        await bus.start()
        yield bus, MemoryLeaseStore(), MemoryStateStore()
        await bus.close()
        return
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    bus = RedisEventBus(url, prefix=prefix)
    await bus.start()
    client = aioredis.Redis.from_url(url)
    yield bus, RedisLeaseStore(client, prefix), RedisStateStore(client, prefix)
    keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    await bus.close()


async def _seed_fleet(state: Any) -> None:
    """The operator's fleet: two vans per zone, saved as each zone's first snapshot."""
    d = new_dispatcher()
    for z in ZONES:
        d.add_zone(z)
        c = z.centroid()
        for k in range(2):
            d.add_vehicle(
                Vehicle(
                    f"{z.zone_id}-van{k}",
                    VAN,
                    c,
                    NOW - 3600,
                    NOW + 8 * 3600,
                    c,
                    NOW,
                    zone_id=z.zone_id,
                )
            )
        await state.save(f"dispatch.state.{z.zone_id}", zone_snapshot(d, z.zone_id))


async def test_one_owner_per_zone_and_crash_loses_nothing(backends: tuple[Any, Any, Any]) -> None:
    bus, leases, state = backends
    await _seed_fleet(state)
    # Compile the insertion kernel first: a multi-second JIT would outlive the short test lease.
    warm = new_dispatcher()
    warm.add_zone(ZONES[0])
    warm.add_vehicle(
        Vehicle(
            "w", VAN, ZONES[0].centroid(), 0, NOW + 3600, ZONES[0].centroid(), NOW, zone_id="east"
        )
    )
    warm.quote(request(ZONES[0], 0))
    kw = {"lease_ttl_ms": 1000, "reclaim_idle_ms": 100}
    w1 = ZoneWorker("w1", ZONES, new_dispatcher, bus, leases, state, **kw)
    w2 = ZoneWorker("w2", ZONES, new_dispatcher, bus, leases, state, **kw)
    east = ZONES[0]
    for k in range(4):
        await bus.enqueue(zone_stream("east"), book_message(request(east, k)))
    assert await w1.run_once() == 4
    assert await w2.run_once() == 0  # w1 holds both leases
    assert w1.owned == {"east", "west"} and w2.owned == set()

    # w1 crashes in its next batch: the first message is handled and snapshotted, its ack
    # never happens; the others were delivered to w1 and never handled.
    for k in range(4, 10):
        await bus.enqueue(zone_stream("east"), book_message(request(east, k)))

    async def crash(*_: Any, **__: Any) -> bool:
        raise ConnectionError("worker w1 died")

    w1.queue = type("Dying", (), {"read": bus.read, "reclaim": bus.reclaim, "ack": crash})()
    with pytest.raises(ConnectionError):
        await w1.run_once()
    await asyncio.sleep(1.2)  # w1's leases expire, its pending messages go idle

    handled = await w2.run_once()
    assert w2.owned == {"east", "west"}
    assert handled == 6  # all six reclaimed; the snapshotted one is recognised as done
    assert sum(1 for o in w2.outcomes if o.get("redelivered")) == 1
    rides = w2.dispatcher.rides()
    ids = [r.ride_id for r in rides]
    assert len(ids) == len(set(ids))
    rejected = {o["request_id"] for o in w2.outcomes if "rejected" in o}
    assert set(ids) | rejected == {f"east-{k}" for k in range(10)}
    for v in w2.dispatcher.vehicles("east"):
        assert [s.ride_id for s in v.plan].count(v.plan[0].ride_id if v.plan else "") in (0, 2)
    # Nothing is left pending for the group.
    assert await bus.pending(zone_stream("east"), "dispatch") == 0
    await w2.release()
    assert w2.owned == set()

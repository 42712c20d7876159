"""Scale-out: dispatcher workers share zones through leases and work queues; a worker that
crashes mid-batch loses no request and none is booked twice. In-process and real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

import pytest
import redis.asyncio as aioredis

from app.dispatch.leases import (
    MemoryLeaseStore,
    MemoryStateStore,
    RedisLeaseStore,
    RedisStateStore,
)
from app.events import InProcessEventBus, RedisEventBus
from dispatch.dispatcher import Dispatcher
from dispatch.request import RideRequest
from dispatch.scale_out import (
    ZoneWorker,
    _join,
    book_message,
    book_quote_message,
    handle,
    lease_key,
    needs_snapshot,
    remove_zone_message,
    state_key,
    zone_name,
    zone_snapshot,
    zone_stream,
)
from dispatch.travel_times import StraightLineTravelTimes
from dispatch.vehicle import VAN, Vehicle
from dispatch.zone import ServiceZone

NOW = 9 * 3600.0
# Leases that never expire during a test, however loaded the machine: where a takeover is the
# point, the test ends the lease explicitly (release) instead of waiting for its expiry.
LONG_LEASE_MS = 60_000
# The started (v2) workers' lease: as safe from a stall, with a keeper period (a third) short
# enough that a stop whose cancellation a Redis call swallowed ends soon (at the next pass).
KEEPER_LEASE_MS = 15_000


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
    # A long lease: a stall on a loaded machine must not hand w1's zones to w2 early; the
    # crash below ends w1's leases explicitly instead.
    kw: dict[str, Any] = {"lease_ttl_ms": LONG_LEASE_MS, "reclaim_idle_ms": 100}
    w1 = ZoneWorker("w1", ZONES, new_dispatcher, bus, leases, state, **kw)
    w2 = ZoneWorker("w2", ZONES, new_dispatcher, bus, leases, state, **kw)
    east = ZONES[0]
    for k in range(4):
        await bus.enqueue(zone_stream("east"), book_message(request(east, k)))
    assert await w1.run_once() == 4
    assert await w2.run_once() == 0  # w1 holds both leases
    assert w1.owned == {"east", "west"} and w2.owned == set()

    # w1 crashes in its next batch: the six messages are handled and snapshotted together
    # (one save per batch), their ack never happens.
    for k in range(4, 10):
        await bus.enqueue(zone_stream("east"), book_message(request(east, k)))

    async def crash(*_: Any, **__: Any) -> bool:
        raise ConnectionError("worker w1 died")

    w1.queue = type("Dying", (), {"read": bus.read, "reclaim": bus.reclaim, "ack": crash})()
    with pytest.raises(ConnectionError):
        await w1.run_once()
    for z in ZONES:  # w1's leases end (as their expiry would)
        await leases.release(lease_key(z.zone_id), "w1")
    # Its pending messages go idle: idle time only grows, so this holds however slow we are.
    await asyncio.sleep(0.2)

    handled = await w2.run_once()
    assert w2.owned == {"east", "west"}
    assert handled == 6  # all six reclaimed, and recognised as done (they were saved)
    # Every booking of the crashed batch was saved: each is recognised, none assigned anew.
    redelivered = {o["ride_id"] for o in w2.outcomes if o.get("redelivered")}
    first = {f"east-{k}" for k in range(4)}
    assert redelivered and redelivered == {
        r.ride_id for r in w2.dispatcher.rides() if r.ride_id not in first
    }
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


# --- ZoneWorker v2: keeper, one task per zone, catalog, hooks ------------------------------------
class ListCatalog:
    """A catalog the test edits (the app's is the dispatch_zone_states table)."""

    def __init__(self, zones: list[ServiceZone]) -> None:
        self.list = list(zones)

    async def zones(self) -> list[ServiceZone]:
        return list(self.list)


class Recorder:
    """The hooks of one worker, recorded."""

    def __init__(self) -> None:
        self.acquired: list[str] = []
        self.released: list[str] = []
        self.outcomes: list[tuple[str, dict[str, Any], dict[str, Any]]] = []

    async def on_acquire(self, zid: str) -> None:
        self.acquired.append(zid)

    async def on_release(self, zid: str) -> None:
        self.released.append(zid)

    async def on_outcome(self, zid: str, data: dict[str, Any], out: dict[str, Any]) -> None:
        self.outcomes.append((zid, data, out))


def v2_worker(
    name: str, bus: Any, leases: Any, state: Any, catalog: ListCatalog, rec: Recorder, **kw: Any
) -> ZoneWorker:
    values: dict[str, Any] = {
        "lease_ttl_ms": KEEPER_LEASE_MS,
        "reclaim_idle_ms": 600,
        "catalog": catalog,
        "catalog_interval_s": 0.05,
        "block_ms": 100,
        "snapshot_interval_s": 3600.0,  # only explicit saves (save_owned) in these tests
        "on_acquire": rec.on_acquire,
        "on_release": rec.on_release,
        "on_outcome": rec.on_outcome,
    }
    values.update(kw)
    return ZoneWorker(name, [], new_dispatcher, bus, leases, state, **values)


async def until(check: Any, timeout: float = 60.0, *, poke: Any = None) -> None:
    """Wait for ``check()`` (generously: a slow, loaded machine); ``poke()`` is called before
    each look (e.g. a worker's ``wake``, so its keeper need not wait out its period)."""
    end = asyncio.get_running_loop().time() + timeout
    while True:
        if poke is not None:
            poke()
        if check():
            return
        assert asyncio.get_running_loop().time() < end, "condition not met in time"
        await asyncio.sleep(0.02)


def wake_all(*workers: ZoneWorker) -> Any:
    """A ``poke`` that runs each worker's keeper pass now."""

    def poke() -> None:
        for w in workers:
            w.wake()

    return poke


def _warm() -> None:
    warm = new_dispatcher()
    warm.add_zone(ZONES[0])
    c = ZONES[0].centroid()
    warm.add_vehicle(Vehicle("w", VAN, c, 0, NOW + 3600, c, NOW, zone_id="east"))
    warm.quote(request(ZONES[0], 0))


async def test_v2_keeper_tasks_catalog_hooks_and_takeover(backends: tuple[Any, Any, Any]) -> None:
    bus, leases, state = backends
    await _seed_fleet(state)
    _warm()
    east, west = ZONES
    catalog = ListCatalog([east])
    r1, r2 = Recorder(), Recorder()
    w1 = v2_worker("w1", bus, leases, state, catalog, r1)
    w2 = v2_worker("w2", bus, leases, state, catalog, r2)
    await w1.sync()
    w1.start()
    await w2.sync()
    w2.start()
    assert w1.owned == {"east"} and w2.owned == set() and r1.acquired == ["east"]

    # Commands reach the owner's task (blocked on the stream) and come back through the hook.
    for k in range(3):
        await bus.enqueue(zone_stream("east"), book_message(request(east, k)))
    await until(lambda: len(r1.outcomes) == 3)
    assert [o["ride_id"] for _, _, o in r1.outcomes] == ["east-0", "east-1", "east-2"]
    assert all(
        o["status"] == "assigned" and o["ride"]["zone_id"] == "east" for *_, o in r1.outcomes
    )

    # A zone added to the catalog at run time gets exactly one owner.
    catalog.list.append(west)
    await until(lambda: "west" in w1.owned | w2.owned, poke=wake_all(w1, w2))
    assert not (w1.owned & w2.owned)

    # A position is acked without a snapshot; the periodic snapshot saves it.
    van = "east-van0"
    msg = {"op": "vehicle_event", "vehicle_id": van, "type": "position", "t": NOW + 5}
    await bus.enqueue(zone_stream("east"), {**msg, "lat": 42.31, "lon": 140.97})
    await until(lambda: len(r1.outcomes) == 4)
    assert r1.outcomes[-1][2] == {"vehicle_id": van}
    saved = json.loads(await state.load(state_key("east")) or "{}")
    assert [v["position"] for v in saved["vehicles"] if v["vehicle_id"] == van] != [[42.31, 140.97]]
    await w1.save_owned()
    saved = json.loads(await state.load(state_key("east")) or "{}")
    assert [v["position"] for v in saved["vehicles"] if v["vehicle_id"] == van] == [[42.31, 140.97]]

    # w1 crashes (no release, no save): w2 takes east over once the lease ends, with every
    # ride, and handles what was queued meanwhile.
    await w1.stop(release=False)
    assert "east" in r1.released
    await bus.enqueue(zone_stream("east"), book_message(request(east, 3)))
    await bus.enqueue(zone_stream("east"), {"op": "cancel", "ride_id": "east-1"})
    assert "east" not in w2.owned  # the crashed owner's lease still holds
    for z in ZONES:  # ... until its leases end (as their expiry would)
        await leases.release(lease_key(z.zone_id), "w1")
    await until(lambda: w2.owned == {"east", "west"}, poke=wake_all(w2))
    await until(lambda: len(r2.outcomes) >= 2)
    assert [o.get("ride_id") for _, _, o in r2.outcomes[-2:]] == ["east-3", "east-1"]
    assert r2.outcomes[-1][2]["status"] == "cancelled"
    rides = {r.ride_id: r.status.value for r in w2.dispatcher.rides()}
    assert rides == {
        "east-0": "assigned",
        "east-1": "cancelled",
        "east-2": "assigned",
        "east-3": "assigned",
    }
    assert "east" in r2.acquired

    # A clean stop releases at once: a new worker owns both zones on its first pass.
    await w2.stop()
    w3 = v2_worker("w3", bus, leases, state, catalog, Recorder())
    await w3.sync()
    assert w3.owned == {"east", "west"}
    assert len(w3.dispatcher.rides()) == 4
    await w3.stop()


async def test_v2_takeover_keeps_command_order(backends: tuple[Any, Any, Any]) -> None:
    """A booking delivered to an owner that died before handling it is handled by the next
    owner *before* the cancellation queued after it."""
    bus, leases, state = backends
    await _seed_fleet(state)
    _warm()
    east = ZONES[0]
    assert await leases.acquire(lease_key("east"), "dead", LONG_LEASE_MS)
    await bus.enqueue(zone_stream("east"), book_message(request(east, 0)))
    assert len(await bus.read(zone_stream("east"), "dispatch", "dead", block_ms=0)) == 1
    await bus.enqueue(zone_stream("east"), {"op": "cancel", "ride_id": "east-0"})
    await leases.release(lease_key("east"), "dead")  # the dead owner's lease ends
    rec = Recorder()
    w = v2_worker("w", bus, leases, state, ListCatalog([east]), rec)
    await w.sync()
    w.start()
    await until(lambda: len(rec.outcomes) == 2)
    assert [o["status"] for _, _, o in rec.outcomes] == ["assigned", "cancelled"]
    assert await bus.pending(zone_stream("east"), "dispatch") == 0
    await w.stop()


def test_handle_ops_and_refusals() -> None:
    d = new_dispatcher()
    east = ZONES[0]
    d.add_zone(east)
    c = east.centroid()
    van = Vehicle("v1", VAN, c, NOW - 3600, NOW + 8 * 3600, c, NOW, zone_id="east")
    assert handle(d, {"op": "add_vehicle", "vehicle": asdict(van)}) == {"vehicle_id": "v1"}
    assert handle(d, {"op": "add_vehicle", "vehicle": asdict(van)})["error"] == "vehicle_exists"
    # Quote, then book the quote: the ride id is the request id; a redelivery is recognised.
    req = request(east, 0)
    q = handle(d, {"op": "quote", "request": asdict(req)})
    assert q["request_id"] == "east-0" and q["quote"]["vehicle_id"] == "v1"
    msg = book_quote_message(q["quote"]["quote_id"], "u0", "east-0")
    first = handle(d, msg)
    assert first["ride_id"] == "east-0" and first["status"] == "assigned"
    assert handle(d, msg)["redelivered"] is True
    # Someone else replaying the quote id learns nothing about the ride.
    other = handle(d, book_quote_message(q["quote"]["quote_id"], "intruder", "east-0"))
    assert other["rejected"] == "quote_unknown" and "ride" not in other
    assert handle(d, book_quote_message("nope", "u1", "r-x"))["rejected"] == "quote_unknown"
    with pytest.raises(ValueError):
        book_quote_message("q", "u", "")
    # Vehicle events.
    ev = {"op": "vehicle_event", "vehicle_id": "v1", "t": NOW + 1}
    assert handle(d, {**ev, "type": "position", "lat": 42.31, "lon": 140.97}) == {
        "vehicle_id": "v1"
    }
    assert d.vehicle("v1").position == (42.31, 140.97)
    assert handle(d, {**ev, "type": "boarded", "ride_id": "nope"})["error"] == "no_such_stop"
    assert handle(d, {**ev, "type": "teleported"})["error"] == "invalid_message"
    assert (
        handle(d, {**ev, "vehicle_id": "ghost", "type": "position", "lat": 1, "lon": 1})["error"]
        == "unknown_vehicle"
    )
    # Rejections and malformed messages are outcomes, never exceptions.
    far = RideRequest(
        origin=(35.0, 139.0), destination=(35.1, 139.1), requested_at=NOW, request_id="f"
    )
    assert handle(d, {"op": "quote", "request": asdict(far)})["rejected"] == "outside_zone"
    assert handle(d, {"op": "cancel", "ride_id": "nope"})["error"] == "unknown_ride"
    assert handle(d, {"op": "book"})["error"] == "invalid_message"
    assert handle(d, {"op": "fly"})["error"] == "invalid_message"
    assert needs_snapshot({"op": "cancel"}) and not needs_snapshot({**ev, "type": "position"})


def test_zone_names_are_valid_topic_words() -> None:
    assert zone_stream("cobb:zone_1") == "dispatch.zone.cobb:zone_1"
    odd = zone_name("a zone/with spaces")
    assert odd.startswith("z") and odd == zone_name("a zone/with spaces")
    assert zone_name("a..b") != "a..b" and lease_key("a b").endswith(zone_name("a b"))


async def test_v2_corrupt_state_and_catalog_outage_cost_only_themselves(
    backends: tuple[Any, Any, Any],
) -> None:
    bus, leases, state = backends
    await _seed_fleet(state)
    await state.save(state_key("west"), "{not json")
    catalog = ListCatalog(ZONES)
    rec = Recorder()
    w = v2_worker("w", bus, leases, state, catalog, rec)
    await w.sync()
    w.start()
    # West cannot be restored: released (another worker may try), east is served.
    assert w.owned == {"east"}
    assert [z.zone_id for z in w.dispatcher.zones()] == ["east"]
    assert await leases.acquire(lease_key("west"), "other", 1000)
    await leases.release(lease_key("west"), "other")
    await bus.enqueue(zone_stream("east"), book_message(request(ZONES[0], 0)))
    await until(lambda: len(rec.outcomes) == 1)
    assert rec.outcomes[0][2]["status"] == "assigned"

    # The catalog cannot be read: east's lease is still renewed at every keeper pass. The
    # lease is ended behind the worker's back after the outage began, so only a renewal made
    # during the outage lets the worker hold it again.
    failed: list[int] = []

    async def down() -> list[ServiceZone]:
        failed.append(1)
        raise ConnectionError("database away")

    catalog.zones = down  # type: ignore[method-assign]
    w.catalog_interval_s = 0.0  # re-read at every pass
    await until(lambda: len(failed) >= 1, poke=wake_all(w))
    await leases.release(lease_key("east"), "w")
    seen = len(failed)
    await until(lambda: len(failed) >= seen + 2, poke=wake_all(w))
    assert w.owned == {"east"}
    assert not await leases.acquire(lease_key("east"), "other", 1000)
    await w.stop()


async def test_remove_zone_refused_with_vehicles_then_done_without(
    backends: tuple[Any, Any, Any],
) -> None:
    """``remove_zone`` on the zone's queue: its owner refuses while vans serve it; once they
    are gone it forgets the zone (empty snapshot, lease released, never leased again)."""
    bus, leases, state = backends
    await _seed_fleet(state)
    w = ZoneWorker("w1", ZONES, new_dispatcher, bus, leases, state, lease_ttl_ms=LONG_LEASE_MS)
    await bus.enqueue(zone_stream("east"), remove_zone_message(None))
    assert await w.run_once() == 1
    assert w.outcomes[-1]["error"] == "zone_in_use"
    assert w.owned == {"east", "west"}
    # w1 stops (saving and releasing both zones); the vans leave east (a snapshot without
    # them); w2 takes the zones over and the removal goes through.
    await w.stop()
    d = new_dispatcher()
    d.add_zone(ZONES[0])
    await state.save(state_key("east"), zone_snapshot(d, "east"))
    w2 = ZoneWorker("w2", ZONES, new_dispatcher, bus, leases, state, lease_ttl_ms=LONG_LEASE_MS)
    await bus.enqueue(zone_stream("east"), remove_zone_message(None))
    assert await w2.run_once() == 1
    assert w2.outcomes[-1] == {"zone_id": "east", "removed": True}
    assert w2.owned == {"west"} and set(w2.zones) == {"west"}
    assert [z.zone_id for z in w2.dispatcher.zones()] == ["west"]
    assert await state.load(state_key("east")) == ""
    assert await leases.acquire(lease_key("east"), "someone", 1000)  # released
    assert not needs_snapshot(remove_zone_message(None))


async def _empty_east(state: Any) -> None:
    """East's saved state without vans (a zone can be removed only then)."""
    d = new_dispatcher()
    d.add_zone(ZONES[0])
    await state.save(state_key("east"), zone_snapshot(d, "east"))


async def test_commands_queued_behind_a_removal_are_refused(
    backends: tuple[Any, Any, Any],
) -> None:
    """A booking (and any command) queued after ``remove_zone`` would stay unread forever:
    nobody serves a removed zone. Its owner refuses them ``zone_removed`` and acks them, both
    those read in the removal's batch and those still unread; the zone task does the same."""
    bus, leases, state = backends
    await _seed_fleet(state)
    await _empty_east(state)
    east = ZONES[0]
    w = ZoneWorker("w1", ZONES, new_dispatcher, bus, leases, state, lease_ttl_ms=LONG_LEASE_MS)
    try:
        await bus.enqueue(zone_stream("east"), remove_zone_message(None))
        await bus.enqueue(zone_stream("east"), book_message(request(east, 0)))
        await bus.enqueue(zone_stream("east"), {"op": "cancel", "ride_id": "east-0"})
        assert await w.run_once() == 1
        assert w.outcomes[0] == {"zone_id": "east", "removed": True}
        assert [o.get("error") for o in w.outcomes[1:]] == ["zone_removed", "zone_removed"]
        assert await bus.pending(zone_stream("east"), "dispatch") == 0
        assert await bus.read(zone_stream("east"), "dispatch", "x", block_ms=0) == []
    finally:
        await w.stop()

    # The same through the zone task of a started worker: the book's outcome reaches the hook.
    await _seed_fleet(state)
    await _empty_east(state)
    rec = Recorder()
    catalog = ListCatalog(ZONES)
    w2 = v2_worker("w2", bus, leases, state, catalog, rec)
    try:
        await w2.sync()
        w2.start()
        await bus.enqueue(zone_stream("east"), remove_zone_message(None))
        await bus.enqueue(zone_stream("east"), book_message(request(east, 1)))
        await until(lambda: len(rec.outcomes) == 2)
        (_, _, removed), (_, data, refused) = rec.outcomes
        assert removed["removed"] is True
        assert data["request"]["request_id"] == "east-1" and refused["error"] == "zone_removed"
        catalog.list = [ZONES[1]]  # the app's zone store deletes the catalog row itself
        await until(lambda: "east" not in w2.owned)
        assert await bus.pending(zone_stream("east"), "dispatch") == 0
    finally:
        await w2.stop()


async def test_a_command_reaching_a_removed_zone_later_is_refused_by_refuse_removed(
    backends: tuple[Any, Any, Any],
) -> None:
    """A process whose catalog was not re-read yet queues a booking after the zone's
    removal: ``refuse_removed`` (the asker's worker, on its reply timeout) refuses it once
    the catalog no longer lists the zone, holding the zone's lease meanwhile; while the zone
    is listed, or leased by another worker, it leaves the stream alone."""
    bus, leases, state = backends
    east, west = ZONES
    catalog = ListCatalog([east, west])
    rec = Recorder()
    w = v2_worker("w", bus, leases, state, catalog, rec)
    try:
        await w.sync()
        assert w.owned == {"east", "west"}
        assert await w.refuse_removed("east") == 0  # listed and owned: the owner serves it
        assert await leases.acquire(lease_key("east"), "w", 5000)  # still its own
        catalog.list = [west]
        await w.sync()  # the removal, as another process saw it: east dropped and released
        assert w.owned == {"west"}
        # A booking reaches the stream now: nobody reads it.
        await bus.enqueue(zone_stream("east"), book_message(request(east, 0)))
        assert await leases.acquire(lease_key("east"), "other", 5000)
        assert await w.refuse_removed("east") == 0  # someone holds the lease: not touched
        await leases.release(lease_key("east"), "other")
        assert await w.refuse_removed("east") == 1
        (zid, data, out) = rec.outcomes[-1]
        assert zid == "east" and data["op"] == "book" and out["error"] == "zone_removed"
        assert await bus.pending(zone_stream("east"), "dispatch") == 0
        assert await leases.acquire(lease_key("east"), "someone", 1000)  # released again
        assert w.owned == {"west"} and "east" not in w.zones
        # Without a catalog a worker cannot tell a removed zone: never.
        plain = ZoneWorker("p", [], new_dispatcher, bus, leases, state)
        assert await plain.refuse_removed("east") == 0
    finally:
        await w.stop()


class SwallowingLeases:
    """Leases whose next renewal, once armed, waits and swallows a cancellation delivered
    meanwhile, as redis-py now and then does with a command: the call returns normally, the
    task's cancellation pending."""

    def __init__(self, leases: Any) -> None:
        self.leases = leases
        self.armed = False
        self.inside = asyncio.Event()
        self.swallowed = 0

    async def acquire(self, key: str, owner: str, ttl_ms: int) -> bool:
        if self.armed:
            self.inside.set()
            try:
                await asyncio.sleep(30.0)
            except asyncio.CancelledError:
                self.armed = False
                self.swallowed += 1
        return bool(await self.leases.acquire(key, owner, ttl_ms))

    async def release(self, key: str, owner: str) -> None:
        await self.leases.release(key, owner)


async def test_stop_returns_when_a_lease_call_swallowed_the_cancellation(
    backends: tuple[Any, Any, Any],
) -> None:
    """``stop()`` cancels the keeper during a lease renewal that swallows the cancellation:
    the keeper's loop still ends at its next pass, so ``stop()`` returns instead of waiting
    for it forever."""
    bus, leases, state = backends
    swallowing = SwallowingLeases(leases)
    w = v2_worker("w", bus, swallowing, state, ListCatalog(ZONES), Recorder())
    await w.sync()
    w.start()
    swallowing.armed = True
    w.wake()  # the keeper's next pass now, not a period later
    await asyncio.wait_for(swallowing.inside.wait(), 60.0)
    keeper = w._keeper
    assert keeper is not None
    try:
        await asyncio.wait_for(w.stop(release=False), 60.0)
    finally:
        keeper.cancel()  # a keeper that ran on (the bug) is stopped for the next tests
    assert swallowing.swallowed == 1 and keeper.done()


async def test_join_swallows_the_joined_tasks_cancellation_only() -> None:
    inner = asyncio.create_task(asyncio.sleep(30))
    await asyncio.sleep(0)
    inner.cancel()
    await _join(inner)  # the zone task we cancelled: its CancelledError is not ours
    assert inner.cancelled()

    inner = asyncio.create_task(asyncio.sleep(30))
    went_on: list[bool] = []

    async def keeper() -> None:
        await _join(inner)
        went_on.append(True)

    outer = asyncio.create_task(keeper())
    await asyncio.sleep(0.01)
    outer.cancel()  # the keeper itself is cancelled while it waits
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert went_on == [] and inner.cancelled()


class SlowToStopQueue:
    """A work queue whose blocking read ends slowly when cancelled (like a Redis read)."""

    def __init__(self, bus: Any) -> None:
        self.bus = bus
        self.reading = asyncio.Event()
        self.cancelled = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.bus, name)

    async def read(self, *args: Any, **kwargs: Any) -> list[Any]:
        self.reading.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled.set()
            await asyncio.sleep(0.3)
            raise
        return []


async def test_stop_while_the_keeper_drops_a_zone_returns() -> None:
    """Regression: the keeper losing a lease waits for the zone task to end; ``stop()`` then
    cancelled the keeper, whose wait swallowed that cancellation, and ``stop()`` never
    returned (a CI run hung in a scale-out test)."""
    bus = InProcessEventBus()
    await bus.start()
    leases, state = MemoryLeaseStore(), MemoryStateStore()
    await _seed_fleet(state)
    queue = SlowToStopQueue(bus)
    w = v2_worker("w", queue, leases, state, ListCatalog(ZONES[:1]), Recorder())
    await w.sync()
    await until(lambda: w.owned == {"east"})
    w.start()
    await asyncio.wait_for(queue.reading.wait(), 60)  # the zone task is blocked in its read

    async def lost(zid: str) -> bool:
        return False

    w._renew = lost  # type: ignore[method-assign]
    w.wake()  # the keeper's next pass finds the lease lost and drops the zone
    await asyncio.wait_for(queue.cancelled.wait(), 60)
    await asyncio.wait_for(w.stop(release=False), 60)
    assert w.owned == set()
    await bus.close()

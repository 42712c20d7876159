"""Finished rides leave a zone owner's live state (issue #10): once a ride is completed,
cancelled or a no-show and its end is saved in the ride history (``dispatch_rides``), the
owner forgets it and its row leaves ``dispatch_zone_items``, so the live state and a restore
hold the live work only, however long the zone has run. A command redelivered after a crash
for such a ride is still recognised (from the history), and so is a vehicle event that ended
one. A zone owner on a SQLite database with the in-process bus (the same code as on Redis)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from app.db import create_db_engine
from app.dispatch.cluster_gateway import ClusterGateway
from app.dispatch.db_adapters import DbRideHistory, DbZoneStore
from app.dispatch.leases import MemoryLeaseStore
from app.dispatch.store import insert_zone, load_zone_state, save_zones
from app.events import InProcessEventBus
from app.models.dispatch import RideRecord, ZoneItemRecord, ZoneStateRecord
from dispatch.scale_out import ZoneWorker, book_message, lease_key, restore_zone, zone_stream
from dispatch.vehicle import VAN, Vehicle
from tests.app.test_dispatch_scale_out import LONG_LEASE_MS, NOW, ZONES, new_dispatcher, request

EAST = ZONES[0]


def _engine(tmp_path: Path) -> Engine:
    """The zone catalog and two vans of zone ``east`` saved, as an operator left them."""
    engine = create_db_engine(f"sqlite:///{tmp_path}/dispatch.db")
    tables = [t.__table__ for t in (ZoneStateRecord, RideRecord, ZoneItemRecord)]  # type: ignore[attr-defined,union-attr]
    SQLModel.metadata.create_all(engine, tables=tables)
    insert_zone(engine, EAST)
    d = new_dispatcher()
    d.add_zone(EAST)
    c = EAST.centroid()
    for k in range(2):
        d.add_vehicle(
            Vehicle(f"east-van{k}", VAN, c, NOW - 3600, NOW + 8 * 3600, c, NOW, zone_id="east")
        )
    save_zones(engine, d, ["east"])
    return engine


def _worker(name: str, engine: Engine, bus: Any, leases: Any, **kw: Any) -> ZoneWorker:
    return ZoneWorker(
        name,
        [EAST],
        new_dispatcher,
        bus,
        leases,
        lease_ttl_ms=LONG_LEASE_MS,
        zone_store=DbZoneStore(engine),
        history=DbRideHistory(engine),
        **kw,
    )


def _items(engine: Engine) -> list[str]:
    with Session(engine) as db:
        rows = db.exec(select(ZoneItemRecord.item_id).where(ZoneItemRecord.zone_id == "east"))
        return sorted(rows)


def _records(engine: Engine) -> dict[str, str]:
    with Session(engine) as db:
        return {r.ride_id: r.status for r in db.exec(select(RideRecord)).all()}


async def test_the_live_state_stays_bounded_over_many_finished_rides(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    bus = InProcessEventBus()
    await bus.start()
    w = _worker("w1", engine, bus, MemoryLeaseStore())
    try:
        for k in range(30):
            await bus.enqueue(zone_stream("east"), book_message(request(EAST, k)))
            await bus.enqueue(zone_stream("east"), {"op": "cancel", "ride_id": f"east-{k}"})
        handled = 0
        while handled < 60:
            n = await w.run_once()
            assert n > 0
            handled += n
        cancelled = [o["ride_id"] for o in w.outcomes if o.get("status") == "cancelled"]
        assert len(cancelled) >= 20  # the two vans take most of them before they are cancelled
        # The history has every one, ended; the live state none of them.
        assert {rid: _records(engine)[rid] for rid in cancelled} == dict.fromkeys(
            cancelled, "cancelled"
        )
        assert w.dispatcher.rides() == []
        assert _items(engine) == ["meta", "v:east-van0", "v:east-van1"]
        restored = new_dispatcher()
        restore_zone(restored, EAST, load_zone_state(engine, "east"))
        assert restored.rides() == [] and len(restored.vehicles()) == 2

        # A live ride stays live (and saved) next to them.
        await bus.enqueue(zone_stream("east"), book_message(request(EAST, 40)))
        assert await w.run_once() == 1
        assert [r.ride_id for r in w.dispatcher.rides()] == ["east-40"]
        assert "r:east-40" in _items(engine)
    finally:
        await w.stop()
        await bus.close()
        engine.dispose()


async def test_a_redelivered_command_of_a_finished_ride_is_recognised(tmp_path: Path) -> None:
    """The owner books and cancels a ride in one batch, saves (the ride, finished, leaves the
    live state) and dies before its ack: its successor gets both commands again and finds the
    ride in the history, so the booking is not made a second time."""
    engine = _engine(tmp_path)
    bus = InProcessEventBus()
    await bus.start()
    leases = MemoryLeaseStore()
    w1 = _worker("w1", engine, bus, leases)
    w2 = _worker("w2", engine, bus, leases, reclaim_idle_ms=100)
    try:
        await bus.enqueue(zone_stream("east"), book_message(request(EAST, 0)))
        await bus.enqueue(zone_stream("east"), {"op": "cancel", "ride_id": "east-0"})

        async def crash(*_: Any, **__: Any) -> bool:
            raise ConnectionError("worker w1 died")

        w1.queue = type("Dying", (), {"read": bus.read, "reclaim": bus.reclaim, "ack": crash})()
        try:
            await w1.run_once()
        except ConnectionError:
            pass
        else:
            raise AssertionError("the ack should have failed")
        assert _records(engine) == {"east-0": "cancelled"}  # saved before the ack
        await leases.release(lease_key("east"), "w1")
        await asyncio.sleep(0.2)  # its messages go idle: reclaimable

        assert await w2.run_once() == 2
        booked, cancelled = w2.outcomes
        assert booked["redelivered"] and booked["ride"]["status"] == "cancelled"
        assert cancelled["redelivered"] and cancelled["status"] == "cancelled"
        assert w2.dispatcher.rides() == []
        assert all(not v.plan for v in w2.dispatcher.vehicles("east"))
        assert await bus.pending(zone_stream("east"), "dispatch") == 0

        # A cancellation of a finished ride delivered for the first time is refused as before.
        await bus.enqueue(zone_stream("east"), {"op": "cancel", "ride_id": "east-0"})
        assert await w2.run_once() == 1
        assert w2.outcomes[-1]["error"] == "not_cancellable"
    finally:
        await w1.stop(release=False)
        await w2.stop()
        await bus.close()
        engine.dispose()


async def test_a_vehicle_event_that_ended_a_ride_is_found_in_the_history(tmp_path: Path) -> None:
    """A drop-off whose outcome was lost: the ride it completed is no longer in the zone's
    saved state, and the asker's look-up recognises the event from the ride's record."""
    engine = _engine(tmp_path)
    bus = InProcessEventBus()
    await bus.start()
    w = _worker("w1", engine, bus, MemoryLeaseStore())
    try:
        await bus.enqueue(zone_stream("east"), book_message(request(EAST, 0)))
        assert await w.run_once() == 1
        ride = w.dispatcher.ride("east-0")
        assert ride is not None
        vid, t0 = ride.vehicle_id, ride.pickup_window[0]
        t1 = t0 + 900.0
        for kind, t in (("arrived", t0), ("boarded", t0), ("alighted", t1)):
            msg = {"op": "vehicle_event", "vehicle_id": vid, "type": kind, "t": t}
            await bus.enqueue(zone_stream("east"), {**msg, "ride_id": "east-0"})
        assert await w.run_once() == 3
        assert all("error" not in o for o in w.outcomes), w.outcomes
        assert _records(engine) == {"east-0": "completed"}
        assert "r:east-0" not in _items(engine)

        services = SimpleNamespace(
            engine=engine,
            bus=bus,
            settings=SimpleNamespace(redis_prefix="t:", dispatch_reply_timeout_s=1.0),
        )
        g = ClusterGateway(services, w, redis=None)
        alighted = {"op": "vehicle_event", "vehicle_id": vid, "type": "alighted"}
        found = g._vehicle_outcome("east", {**alighted, "ride_id": "east-0", "t": t1})
        assert found is not None and found["vehicle_id"] == vid
        # Another drop-off time is not this event's trace.
        assert g._vehicle_outcome("east", {**alighted, "ride_id": "east-0", "t": t1 + 5}) is None
    finally:
        await w.stop()
        await bus.close()
        engine.dispose()


def test_a_save_without_drop_keeps_finished_rides(tmp_path: Path) -> None:
    """One process without Redis (``LocalGateway``) answers rides from its dispatcher only:
    its saves keep finished rides."""
    engine = _engine(tmp_path)
    d = new_dispatcher()
    restore_zone(d, EAST, load_zone_state(engine, "east"))
    ride = d.request_ride(request(EAST, 0), "u0")
    d.cancel("east-0")
    save_zones(engine, d, ["east"])
    assert d.ride("east-0") is ride
    with Session(engine) as db:
        ids = db.exec(select(ZoneItemRecord.item_id).where(col(ZoneItemRecord.zone_id) == "east"))
        assert "r:east-0" in set(ids)
    engine.dispose()

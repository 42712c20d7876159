"""The dispatcher's state in the database, so a restart loses no booked ride.

Each zone is saved as a row of ``dispatch_zone_states`` (its definition and the snapshot of
``dispatch.scale_out.zone_snapshot``: vehicles, plans, onboard passengers, rides, versions) and
each ride as a row of ``dispatch_rides`` (latest status, for residents' history). Start-up
restores every saved zone into the dispatcher (``dispatch.scale_out.restore_zone``, which calls
``Dispatcher.restore_ride``) before the published feeds and the demo add theirs, so they find
the zone in place and keep its vehicles and bookings.

Saving is synchronous (call it in a worker thread): after every booking, cancellation and
vehicle event, every ``interval`` seconds (re-optimised plans, vehicles moving) and at shutdown.

Row by row (issue #10): a zone's live state is kept in ``dispatch_zone_items``, one row per
vehicle, per ride and one for the zone's versions and demand. A save writes only the items
whose content changed since this process's last save of the zone (cheap fingerprints of the
mutable fields tell which, :func:`save_zone_items`), and the ride records of those rides
only, so a command costs the same in a zone of 10 rides as in one of 700 (it rewrote the
whole snapshot, 911 KB, before). The first save after a takeover or a restart rewrites the
zone once. Loading assembles the same snapshot ``dispatch.scale_out.restore_zone`` always
read, in the dispatcher's order (``seq``), so a restore gives exactly the state saved; a zone
without item rows (saved before this table existed) loads its ``state`` snapshot, which the
first row-by-row save empties. Fencing is unchanged: the zone's row is locked and its epoch
checked in the transaction that writes the items. A zone owner of cluster mode saves with
``drop_finished``: a finished ride (completed, cancelled, no-show) keeps only its
``dispatch_rides`` record and leaves the items and the owner's memory, so the live state is
the size of the live work, not of the zone's past.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
import weakref
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog
from sqlalchemy import bindparam
from sqlalchemy import delete as sa_delete
from sqlalchemy import update as sa_update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.db import session_scope
from app.models.dispatch import RideRecord, ZoneItemRecord, ZoneStateRecord
from app.models.identity import utcnow
from dispatch.dispatcher import FINISHED_STATUSES, Dispatcher, ZoneState
from dispatch.meeting_points import MeetingPoint, MeetingPoints
from dispatch.rides import Ride
from dispatch.scale_out import restore_zone
from dispatch.vehicle import Vehicle
from dispatch.zone import ServiceZone

log = structlog.get_logger("tsunagu.dispatch.store")


def zone_to_json(z: ServiceZone) -> dict[str, Any]:
    """The zone's definition (meeting points included) as JSON."""
    mp = z.meeting_points
    return {
        "zone_id": z.zone_id,
        "name": z.name,
        "polygons": z.polygons,
        "service_hours": z.service_hours,
        "min_notice_s": z.min_notice_s,
        "max_notice_s": z.max_notice_s,
        "utc_offset_s": z.utc_offset_s,
        "meeting_points": None
        if mp is None
        else [[p.point_id, p.lat, p.lon, p.name] for p in mp.points],
    }


def zone_from_json(d: dict[str, Any]) -> ServiceZone:
    """Inverse of :func:`zone_to_json`."""
    zone = ServiceZone(
        zone_id=d["zone_id"],
        name=d["name"],
        polygons=[
            [[(float(a), float(b)) for a, b in ring] for ring in poly] for poly in d["polygons"]
        ],
        service_hours=[(float(a), float(b)) for a, b in d["service_hours"]],
        min_notice_s=float(d["min_notice_s"]),
        max_notice_s=float(d["max_notice_s"]),
        utc_offset_s=float(d["utc_offset_s"]),
    )
    if d.get("meeting_points") is not None:
        zone.meeting_points = MeetingPoints(
            [MeetingPoint(str(i), float(a), float(b), str(n)) for i, a, b, n in d["meeting_points"]]
        )
    return zone


class StaleZoneError(Exception):
    """Another process took the zone over since this one did (its fencing epoch is newer):
    this process's state of the zone must not be saved."""


#: Keys of a catalog row's zone JSON that are not the zone's definition (kept by saves).
CATALOG_KEYS = ("instance", "source")


def _canonical(zone_json: Any) -> str:
    """A zone JSON as text, the same for the dict saved and the one read back (tuples come
    back as lists; keys in any order)."""
    return json.dumps(zone_json, sort_keys=True)


def _epoch(row: ZoneStateRecord | None) -> int:
    return int((row.zone or {}).get("epoch", 0)) if row is not None else 0


def save_zones(
    engine: Engine,
    d: Dispatcher,
    zone_ids: list[str] | None = None,
    epochs: dict[str, int] | None = None,
    *,
    drop_finished: bool = False,
) -> int:
    """Save the zones ``zone_ids`` (every zone when None, forgetting the zones this
    dispatcher served and no longer does) and their rides, in one transaction; returns the
    number of zones saved.
    Each zone is saved row by row (:func:`save_zone_items`: only what changed).

    With ``epochs`` (cluster mode: the epoch :func:`take_zone_state` gave this process for
    each zone) a zone row is locked and written only if its epoch is still this process's:
    an owner that stalled past its lease cannot overwrite its successor's state
    (:class:`StaleZoneError`, nothing written).

    With ``drop_finished`` (a zone owner of cluster mode, whose look-ups fall back to the ride
    history) finished rides leave the live state: their records are written with their end,
    their item rows deleted, and once committed the dispatcher forgets them, so a zone's live
    state (and a restore) holds its live work only, however long it has run."""
    zones = {z.zone_id: z for z in d.zones()}
    wanted = list(zones) if zone_ids is None else [z for z in zone_ids if z in zones]
    now = utcnow()
    done: list[tuple[_Written, dict[str, tuple[Any, str, int]], set[str], list[str]]] = []
    locks = [_zone_lock(d, zid) for zid in wanted]
    catalog = False  # whether a row was inserted, deleted or given a new definition
    for lock in locks:
        lock.acquire()
    try:
        with session_scope(engine) as db:
            for zid in wanted:
                epoch = None if epochs is None else epochs.get(zid)
                zone_json = zone_to_json(zones[zid])
                # One round trip locks the row (as SELECT ... FOR UPDATE did), stamps the save
                # and answers the zone JSON (its fencing epoch) without the possibly large
                # legacy snapshot column; a stale owner's stamp is rolled back with the rest.
                found = db.execute(
                    sa_update(_STATES)
                    .where(_STATES.c.zone_id == zid)
                    .values(updated_at=now)
                    .returning(_STATES.c.zone, _STATES.c.state != "")
                ).first()
                if epochs is not None:
                    row_epoch = int((found[0] or {}).get("epoch", 0)) if found else 0
                    if found is None or row_epoch != epoch:
                        raise StaleZoneError(f"zone {zid} was taken over (epoch {row_epoch})")
                    zone_json["epoch"] = epoch
                if found is None:
                    db.add(ZoneStateRecord(zone_id=zid, zone=zone_json, state=""))
                    catalog = True
                else:
                    for key in CATALOG_KEYS:  # the row's identity and source outlive every save
                        if key in (found[0] or {}):
                            zone_json[key] = found[0][key]
                    values: dict[str, Any] = {}
                    if _canonical(zone_json) != _canonical(found[0]):  # the definition changed
                        values["zone"] = zone_json
                        catalog = True
                    if found[1]:  # a legacy snapshot: the items replace it from now on
                        values["state"] = ""
                    if values:
                        db.execute(
                            sa_update(_STATES).where(_STATES.c.zone_id == zid).values(**values)
                        )
                done.append(save_zone_items(db, d, zid, epoch, now, drop_finished))
            if zone_ids is None:
                # Only the rows of zones this process served (restored or saved) and has
                # removed since: a zone it never had is another process's, or one it skipped
                # (the demo zone with the demo off), and its vehicles and rides must stay.
                served = _served(d)
                for row in db.exec(select(ZoneStateRecord.zone_id)).all():
                    if row not in zones and row in served:
                        db.execute(
                            sa_delete(ZoneItemRecord).where(col(ZoneItemRecord.zone_id) == row)
                        )
                        db.execute(
                            sa_delete(ZoneStateRecord).where(col(ZoneStateRecord.zone_id) == row)
                        )
                        catalog = True
        with _GUARD:
            served = _SERVED.setdefault(d, set())
            if zone_ids is None:
                served.intersection_update(zones)  # the removed zones' rows are gone now
            served.update(wanted)
        for written, items, gone, finished in done:  # committed: remember what rows hold
            written.items.update(items)
            for iid in gone:
                written.items.pop(iid, None)
            d.forget_rides(finished)  # their ends are saved (a ride never comes back to life)
    except BaseException:
        for zid in wanted:  # unknown what the rows hold: the next save rewrites the zone
            _forget(d, zid)
        raise
    finally:
        for lock in locks:
            lock.release()
    if catalog:  # committed
        catalog_changed(engine)
    return len(wanted)


# --- row-by-row zone state ----------------------------------------------------------------------
@dataclass
class _Written:
    """What this process last wrote of one zone: item id -> (fingerprint, JSON, seq)."""

    epoch: int | None
    items: dict[str, tuple[Any, str, int]] = field(default_factory=dict)
    fresh: bool = True  # nothing written yet: the zone's rows are rewritten whole


_WRITTEN: weakref.WeakKeyDictionary[Dispatcher, dict[str, _Written]] = weakref.WeakKeyDictionary()
_LOCKS: weakref.WeakKeyDictionary[Dispatcher, dict[str, threading.Lock]] = (
    weakref.WeakKeyDictionary()
)
_GUARD = threading.Lock()
META = "meta"


#: The zones each dispatcher has served (restored or saved): the only rows a save of every
#: zone may delete once the dispatcher no longer has them.
_SERVED: weakref.WeakKeyDictionary[Dispatcher, set[str]] = weakref.WeakKeyDictionary()


def _served(d: Dispatcher) -> set[str]:
    with _GUARD:
        return set(_SERVED.get(d, ()))


def _zone_lock(d: Dispatcher, zid: str) -> threading.Lock:
    """One save of a zone at a time (the periodic save and a command's may overlap)."""
    with _GUARD:
        return _LOCKS.setdefault(d, {}).setdefault(zid, threading.Lock())


def _forget(d: Dispatcher, zid: str) -> None:
    with _GUARD:
        _WRITTEN.get(d, {}).pop(zid, None)


def _vehicle_print(zs: ZoneState, v: Vehicle) -> tuple[Any, ...]:
    """Changes whenever the vehicle's saved form does: every plan or onboard change bumps its
    version (``Dispatcher._plan_changed``), the rest are its own mutable fields."""
    return (
        zs.versions.get(v.vehicle_id),
        v.position,
        v.position_time,
        v.heading,
        v.shift_start,
        v.shift_end,
        len(v.plan),
        len(v.onboard),
    )


def _ride_print(r: Ride) -> tuple[Any, ...]:
    """Every mutable field of a ride (its request never changes)."""
    return (
        r.status,
        r.vehicle_id,
        len(r.history),
        r.pickup_window,
        r.latest_arrival,
        r.eta_pickup,
        r.eta_dropoff,
        r.picked_up_at,
        r.dropped_off_at,
        r.arrived_at,
        r.max_ride_s,
    )


def save_zone_items(
    db: Session,
    d: Dispatcher,
    zid: str,
    epoch: int | None,
    now: Any,
    drop_finished: bool = False,
) -> tuple[_Written, dict[str, tuple[Any, str, int]], set[str], list[str]]:
    """Write, in ``db``'s transaction, the items of zone ``zid`` that changed since this
    process last saved it under ``epoch`` (all of them, replacing the zone's rows, on the first
    save), and the ride records of the rides written. With ``drop_finished`` a finished ride
    is no item (its row goes) and only its record is written. Returns what to remember once
    the transaction commits: ``(record, items written, item ids deleted, finished ride ids
    saved)``."""
    with _GUARD:
        zones = _WRITTEN.setdefault(d, {})
        written = zones.get(zid)
        if written is None or written.epoch != epoch:
            written = zones[zid] = _Written(epoch)
    fresh = written.fresh or not written.items
    prev = {} if fresh else written.items
    seq = max((it[2] for it in prev.values()), default=-1) + 1
    changed: dict[str, tuple[Any, str, int]] = {}
    rides_out: list[Ride] = []
    finished: list[str] = []
    zs = d.zone_state(zid)
    with zs.lock:
        present: set[str] = {META}
        for v in zs.vehicles.values():
            iid = f"v:{v.vehicle_id}"
            present.add(iid)
            fp = _vehicle_print(zs, v)
            old = prev.get(iid)
            if old is None or old[0] != fp:
                text = json.dumps(asdict(v))
                if old is None or old[1] != text:
                    changed[iid] = (fp, text, old[2] if old else seq)
                    seq += old is None
        for r in d.rides():
            if r.zone_id != zid:
                continue
            iid = f"r:{r.ride_id}"
            fp = _ride_print(r)
            old = prev.get(iid)
            if drop_finished and r.status in FINISHED_STATUSES:
                # Read under the zone's lock: its end (final, never changed again) is what
                # the record gets, so the ride may be forgotten once this commits.
                if old is None or old[0] != fp:
                    rides_out.append(r)
                finished.append(r.ride_id)
                continue
            present.add(iid)
            if old is None or old[0] != fp:
                text = json.dumps(asdict(r))
                if old is None or old[1] != text:
                    changed[iid] = (fp, text, old[2] if old else seq)
                    seq += old is None
                    rides_out.append(r)
        meta = json.dumps({"versions": zs.versions, "demand": zs.demand})
        old = prev.get(META)
        if old is None or old[1] != meta:
            changed[META] = (None, meta, -1)
    gone = set() if fresh else set(prev) - present
    # Core statements, each one executemany, no ORM objects or unit of work: a save runs
    # after every batch of commands, on the zone owner's critical path (#10).
    if fresh:
        db.execute(
            sa_delete(ZoneItemRecord).where(col(ZoneItemRecord.zone_id) == zid),
            execution_options=_NO_SYNC,
        )
        new_items = list(changed.items())
        written.fresh = False
    else:
        if gone:
            db.execute(
                sa_delete(ZoneItemRecord).where(
                    col(ZoneItemRecord.zone_id) == zid, col(ZoneItemRecord.item_id).in_(gone)
                ),
                execution_options=_NO_SYNC,
            )
        updates = [{"z": zid, "i": iid, "d": it[1]} for iid, it in changed.items() if iid in prev]
        if updates:  # one executemany (a batch of commands changes many items)
            db.execute(_UPDATE_ITEM, updates)
        new_items = [(iid, it) for iid, it in changed.items() if iid not in prev]
    if new_items:
        db.execute(
            _ITEMS.insert(),
            [
                {"zone_id": zid, "item_id": iid, "seq": it[2], "data": it[1]}
                for iid, it in new_items
            ],
        )
    _save_ride_records(db, rides_out, now)
    return written, changed, gone, finished


_ITEMS = ZoneItemRecord.__table__  # type: ignore[attr-defined]
_RIDES = RideRecord.__table__  # type: ignore[attr-defined]
_STATES = ZoneStateRecord.__table__  # type: ignore[attr-defined]
#: ORM-enabled UPDATE/DELETE without matching the session's objects (it holds none of them).
_NO_SYNC = {"synchronize_session": False}
_UPDATE_ITEM = (
    sa_update(_ITEMS)
    .where(_ITEMS.c.zone_id == bindparam("z"), _ITEMS.c.item_id == bindparam("i"))
    .values(data=bindparam("d"))
)


def _save_ride_records(db: Session, rides: list[Ride], now: Any) -> None:
    """Insert or update the ``dispatch_rides`` record of each ride in ``rides``: one upsert
    (executemany), without reading the records first (the items' fingerprints already said
    which rides changed). A record keeps its rider, zone and booking time."""
    if not rides:
        return
    rows = [
        {
            "ride_id": r.ride_id,
            "user_id": r.user_id,
            "zone_id": r.zone_id,
            "vehicle_id": r.vehicle_id,
            "status": r.status.value,
            "booked_at": r.booked_at,
            "ride": r.to_dict(),
            "updated_at": now,
        }
        for r in rides
    ]
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(_RIDES)
    stmt = stmt.on_conflict_do_update(
        index_elements=[_RIDES.c.ride_id],
        set_={k: stmt.excluded[k] for k in ("vehicle_id", "status", "ride", "updated_at")},
    )
    db.execute(stmt, rows)


def _items_snapshot(db: Session, zid: str) -> str | None:
    """The snapshot (``dispatch.scale_out.zone_snapshot``'s form) assembled from the zone's
    item rows, in the order saved; None when the zone has no item row."""
    rows = db.exec(
        select(ZoneItemRecord.item_id, ZoneItemRecord.data)
        .where(ZoneItemRecord.zone_id == zid)
        .order_by(col(ZoneItemRecord.seq), col(ZoneItemRecord.item_id))
    ).all()
    if not rows:
        return None
    vehicles, rides, meta = [], [], "{}"
    for iid, data in rows:
        if iid == META:
            meta = data
        elif iid.startswith("v:"):
            vehicles.append(data)
        else:
            rides.append(data)
    m = json.loads(meta)
    return (
        f'{{"vehicles": [{", ".join(vehicles)}], "rides": [{", ".join(rides)}], '
        f'"versions": {json.dumps(m.get("versions", {}))}, '
        f'"demand": {json.dumps(m.get("demand", {}))}}}'
    )


def restore_zones(engine: Engine, d: Dispatcher, skip: Collection[str] = ()) -> list[str]:
    """Add every saved zone the dispatcher lacks (but those in ``skip``), with its vehicles,
    plans and rides; a zone whose row cannot be read is skipped (logged), never fatal. Returns
    the restored zone ids."""
    present = {z.zone_id for z in d.zones()} | set(skip)
    with Session(engine) as db:
        rows = [
            (row, _items_snapshot(db, row.zone_id) or row.state)
            for row in db.exec(select(ZoneStateRecord).order_by(col(ZoneStateRecord.zone_id)))
            if row.zone_id not in present
        ]
    restored: list[str] = []
    for row, text in rows:
        try:
            restore_zone(d, zone_from_json(row.zone), text)
        except Exception as exc:  # a bad row must not keep the app from starting
            log.warning("dispatch_zone_not_restored", zone=row.zone_id, error=repr(exc))
            if row.zone_id in {z.zone_id for z in d.zones()}:
                d.remove_zone(row.zone_id)
            continue
        restored.append(row.zone_id)
    with _GUARD:
        _SERVED.setdefault(d, set()).update(restored)
    if restored:
        log.info("dispatch_zones_restored", zones=restored, rides=len(d.rides()))
    return restored


# --- the zone catalog of cluster mode (app.dispatch.gateway) ------------------------------------
def insert_zone(
    engine: Engine, zone: ServiceZone, state: str = "", *, source: str | None = None
) -> bool:
    """Add ``zone`` to the catalog with the snapshot ``state`` unless a row exists; returns
    whether this call inserted it. Several processes may insert the same zone at once (a
    published flex feed, the demo): the loser of the unique-key race gets False, not an error.
    The row gets a random ``instance`` (see :func:`zone_instance`) and, when given, its
    ``source`` (``"flex"``: a published feed's zone, see :func:`catalog_zone_ids`).
    """
    with Session(engine) as db:
        if db.get(ZoneStateRecord, zone.zone_id) is not None:
            # A row this process's catalog may not list yet: read it again (no need to tell
            # the others, whoever inserted the row did).
            _catalog_cache(engine).invalidate()
            return False
        zone_json = {**zone_to_json(zone), "instance": uuid.uuid4().hex}
        if source is not None:
            zone_json["source"] = source
        # Item rows left by a zone of the same id deleted without them are not this zone's.
        db.execute(sa_delete(ZoneItemRecord).where(col(ZoneItemRecord.zone_id) == zone.zone_id))
        db.add(ZoneStateRecord(zone_id=zone.zone_id, zone=zone_json, state=state))
        try:
            db.commit()
        except IntegrityError:
            db.rollback()
            _catalog_cache(engine).invalidate()
            return False
    catalog_changed(engine)
    return True


def catalog_zones(
    engine: Engine, known: Collection[str] = (), *, definitions: bool = True
) -> tuple[list[str], list[Any]]:
    """Every catalogued zone id, and the definitions of those not in ``known`` (none with
    ``definitions=False``; the state column, possibly large, is never read).

    Answered from this process's cache of the catalog (:class:`_CatalogCache`) while it is
    fresh: a ``/plan`` with FLEX legs and the zone keeper read the catalog all the time, and
    it changes only through the writers of this module, which invalidate it (#10).

    Returns
    -------
    ids, zones
        All zone ids (sorted); :class:`ServiceZone` of the new ones (unreadable rows skipped,
        logged).
    """
    ids, rows = _catalog_cache(engine).read(engine)
    zones: list[ServiceZone] = []
    if definitions:
        for zid in ids:
            if zid in known:
                continue
            try:
                zones.append(zone_from_json(dict(rows[zid])))
            except Exception as exc:  # one bad row must not hide the others
                log.warning("dispatch_zone_unreadable", zone=zid, error=repr(exc))
    return list(ids), zones


# --- this process's cache of the zone catalog (#10) -----------------------------------------------
#: Where a process tells the others that it changed the zone catalog (a row inserted, deleted,
#: or a zone's definition rewritten): they read it again at their next look.
CATALOG_TOPIC = "dispatch.catalog.changed"
#: Longest time the cached catalog is answered without reading the table again: bounds how late
#: another process's change is seen when its bus message is lost (Redis restarting), or made
#: by something that does not tell (a restore of a backup, a hand-made SQL change).
CATALOG_RECHECK_S = 5.0


class _CatalogCache:
    """The catalog rows (id -> zone JSON) of one engine, as last read (thread-safe).

    A read racing an invalidation (rows read before a writer's commit, stored after its
    invalidation) is not kept: every invalidation bumps the generation and a read is stored
    only if the generation did not move meanwhile (as ``app.identity.token_cache`` does).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.generation = 0
        self.ids: tuple[str, ...] | None = None
        self.rows: dict[str, Any] = {}
        self.read_at = 0.0  # time.monotonic() of the read cached
        #: Tells this engine's own invalidations apart on the bus (several apps in one process
        #: have an engine each, on one database: each is told as another process would be).
        self.origin = uuid.uuid4().hex

    def invalidate(self) -> None:
        with self.lock:
            self.generation += 1
            self.ids = None
            self.rows = {}

    def read(self, engine: Engine) -> tuple[tuple[str, ...], dict[str, Any]]:
        """``(ids sorted, {id: zone JSON})``: cached while fresh, else read in one query."""
        with self.lock:
            if self.ids is not None and time.monotonic() - self.read_at <= CATALOG_RECHECK_S:
                return self.ids, self.rows
            generation = self.generation
        started = time.monotonic()
        with Session(engine) as db:
            found = db.exec(
                select(ZoneStateRecord.zone_id, ZoneStateRecord.zone).order_by(
                    col(ZoneStateRecord.zone_id)
                )
            ).all()
        ids = tuple(zid for zid, _ in found)
        rows = {zid: zone for zid, zone in found}
        with self.lock:
            if self.generation == generation:
                self.ids, self.rows, self.read_at = ids, rows, started
        return ids, rows


_CATALOGS: weakref.WeakKeyDictionary[Engine, _CatalogCache] = weakref.WeakKeyDictionary()


def _catalog_cache(engine: Engine) -> _CatalogCache:
    with _GUARD:
        cache = _CATALOGS.get(engine)
        if cache is None:
            cache = _CATALOGS[engine] = _CatalogCache()
        return cache


@dataclass
class _Feed:
    """A started app's bus, on which its process's catalog changes are told to the others."""

    engine: Engine
    bus: Any
    loop: asyncio.AbstractEventLoop


_FEEDS: list[_Feed] = []
_PUBLISHING: set[asyncio.Task[Any]] = set()


def catalog_changed(engine: Engine) -> None:
    """After a commit that changed the catalog through ``engine``: forget the cached catalog
    of this engine at once and tell the other processes on the bus (from any thread; waited
    for, bounded, from a worker thread, so the caller answers after they were told)."""
    cache = _catalog_cache(engine)
    cache.invalidate()
    data = {"origin": cache.origin}
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    with _GUARD:
        feeds = list(_FEEDS)
    for feed in feeds:
        if feed.loop.is_closed():
            continue
        if running is feed.loop:  # on the loop itself: cannot wait here
            task = feed.loop.create_task(feed.bus.publish(CATALOG_TOPIC, data))
            _PUBLISHING.add(task)
            task.add_done_callback(_PUBLISHING.discard)
            continue
        try:
            fut = asyncio.run_coroutine_threadsafe(feed.bus.publish(CATALOG_TOPIC, data), feed.loop)
            fut.result(2.0)
        except Exception as exc:  # the others re-read within CATALOG_RECHECK_S anyway
            log.warning("dispatch_catalog_change_not_published", error=repr(exc))


async def _listen(cache: _CatalogCache, sub: Any) -> None:
    async for ev in sub:
        if (ev.data or {}).get("origin") != cache.origin:
            cache.invalidate()


async def start_catalog_feed(services: Any) -> None:
    """Start-up hook: this process tells the others of its catalog changes on the event bus
    and forgets its cached catalog when another process changed it."""
    bus = getattr(services, "bus", None)
    if bus is None:
        return
    engine = services.engine
    cache = _catalog_cache(engine)
    sub = bus.subscribe([CATALOG_TOPIC])
    feed = _Feed(engine, bus, asyncio.get_running_loop())
    with _GUARD:
        _FEEDS.append(feed)
    # Whatever changed before the subscription took effect is read afresh.
    cache.invalidate()
    task = asyncio.create_task(_listen(cache, sub), name="dispatch-catalog-changes")

    async def stop() -> None:
        with _GUARD:
            if feed in _FEEDS:
                _FEEDS.remove(feed)
        sub.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    services.on_stop.append(stop)


def catalog_zone_ids(engine: Engine, source: str) -> list[str]:
    """The catalogued zones inserted with ``source`` (sorted; the state column is not read)."""
    with Session(engine) as db:
        rows = db.exec(select(ZoneStateRecord.zone_id, ZoneStateRecord.zone)).all()
    return sorted(zid for zid, zone in rows if (zone or {}).get("source") == source)


def zone_instance(engine: Engine, zone_id: str) -> tuple[bool, str | None]:
    """``(exists, instance)`` of a catalog row. The instance is drawn when the row is inserted
    and kept by every save: a command meant for a zone that was removed and added again (a
    flex feed unpublished, then published again) is recognised by its older instance (None for
    rows inserted before instances existed)."""
    with Session(engine) as db:
        row = db.get(ZoneStateRecord, zone_id)
        if row is None:
            return False, None
        return True, (row.zone or {}).get("instance")


def delete_zone(engine: Engine, zone_id: str, epoch: int, instance: str | None) -> bool:
    """Delete a zone's catalog row (its owner, on a ``remove_zone`` command); its rides'
    records stay (residents' history). Fenced like :func:`save_zones`: raises
    :class:`StaleZoneError` when another process took the zone over since this owner did.
    Returns False (nothing deleted) when the row is missing or another instance than
    ``instance``."""
    with session_scope(engine) as db:
        row = db.get(ZoneStateRecord, zone_id, with_for_update=True)
        if row is None or (row.zone or {}).get("instance") != instance:
            return False
        if _epoch(row) != epoch:
            raise StaleZoneError(f"zone {zone_id} was taken over (epoch {_epoch(row)})")
        db.execute(sa_delete(ZoneItemRecord).where(col(ZoneItemRecord.zone_id) == zone_id))
        db.delete(row)
    catalog_changed(engine)
    return True


def take_zone_state(engine: Engine, zone_id: str) -> tuple[int, str | None]:
    """Take a zone over: bump its fencing epoch (row locked) and read its saved state.
    Returns ``(epoch, state)``: the epoch :func:`save_zones` requires from this owner; the
    state None when the row is missing or holds no snapshot yet."""
    with session_scope(engine) as db:
        row = db.get(ZoneStateRecord, zone_id, with_for_update=True)
        if row is None:
            return 0, None
        epoch = _epoch(row) + 1
        row.zone = {**row.zone, "epoch": epoch}
        db.add(row)
        return epoch, _items_snapshot(db, zone_id) or row.state or None


def load_zone_state(engine: Engine, zone_id: str) -> str | None:
    """The saved snapshot of a zone (None without a row, or an empty snapshot)."""
    with Session(engine) as db:
        row = db.get(ZoneStateRecord, zone_id)
        if row is None:
            return None
        return _items_snapshot(db, zone_id) or row.state or None


def saved_rides(engine: Engine, ride_ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """``{ride_id: (user_id, Ride.to_dict())}`` of those of ``ride_ids`` saved (one query)."""
    if not ride_ids:
        return {}
    with Session(engine) as db:
        rows = db.exec(select(RideRecord).where(col(RideRecord.ride_id).in_(ride_ids))).all()
        return {r.ride_id: (r.user_id, dict(r.ride)) for r in rows}


def saved_ride(engine: Engine, ride_id: str) -> tuple[str, dict[str, Any]] | None:
    """``(user_id, Ride.to_dict())`` of one saved ride, or None."""
    with Session(engine) as db:
        rec = db.get(RideRecord, ride_id)
        return None if rec is None else (rec.user_id, dict(rec.ride))


def ride_history(engine: Engine, user_id: str) -> list[dict[str, Any]]:
    """A resident's saved rides (``Ride.to_dict``), newest first."""
    with Session(engine) as db:
        rows = db.exec(
            select(RideRecord)
            .where(RideRecord.user_id == user_id)
            .order_by(col(RideRecord.booked_at).desc())
        ).all()
    return [dict(r.ride) for r in rows]

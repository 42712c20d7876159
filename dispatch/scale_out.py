"""Several dispatcher workers sharing the zones: work queues, zone leases, state snapshots.

Requests for a zone (book, cancel, vehicle events) are appended to the work queue
``dispatch.zone.<zone_id>`` (Redis Streams in production, consumed by the group ``dispatch``).
One worker at a time owns a zone: it holds the zone's lease (a key with an expiry, renewed at
every pass). On taking a zone over, a worker loads the zone's last snapshot; after handling each
message it saves the snapshot *then* acks, so a crash at any point loses nothing:

* crash before the snapshot: the message stays pending, the next owner reclaims it and handles
  it on the state that does not contain it yet;
* crash between snapshot and ack: the next owner reclaims it, and the booking is recognised as
  already done (ride ids are the request ids), so nothing is assigned twice.

Only the protocols live here (``dispatch`` never imports ``app``); the app provides them on its
event bus and Redis (``app.dispatch_service``).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Protocol

from dispatch.dispatcher import Dispatcher, DispatchError
from dispatch.request import RideRequest
from dispatch.rides import Rejection, Ride, RideStatus
from dispatch.vehicle import VEHICLE_TYPES, Onboard, Stop, StopKind, Vehicle, VehicleType
from dispatch.zone import ServiceZone

GROUP = "dispatch"


def zone_stream(zone_id: str) -> str:
    return f"dispatch.zone.{zone_id}"


def lease_key(zone_id: str) -> str:
    return f"dispatch.lease.{zone_id}"


class QueueMessage(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def data(self) -> dict[str, Any]: ...


class WorkQueue(Protocol):
    """Durable work queues with consumer groups (the app's event bus)."""

    async def enqueue(self, stream: str, data: dict[str, Any]) -> str: ...

    async def read(
        self, stream: str, group: str, consumer: str, *, count: int = 10, block_ms: int = 1000
    ) -> list[Any]: ...

    async def ack(self, stream: str, group: str, message_id: str) -> bool: ...

    async def reclaim(
        self, stream: str, group: str, consumer: str, *, min_idle_ms: int, count: int = 10
    ) -> list[Any]: ...


class LeaseStore(Protocol):
    """Exclusive, expiring ownership of a key."""

    async def acquire(self, key: str, owner: str, ttl_ms: int) -> bool:
        """Take or renew the lease; False while another owner holds it."""
        ...

    async def release(self, key: str, owner: str) -> None: ...


class StateStore(Protocol):
    """Where zone snapshots live (JSON text)."""

    async def load(self, key: str) -> str | None: ...

    async def save(self, key: str, value: str) -> None: ...


# --- snapshots ----------------------------------------------------------------------------------
def _vtype_of(d: dict[str, Any]) -> VehicleType:
    return VEHICLE_TYPES.get(d["name"]) or VehicleType(**d)


def zone_snapshot(d: Dispatcher, zone_id: str) -> str:
    """Vehicles (plans, onboard), rides, versions and demand of one zone, as JSON."""
    zs = d.zone_state(zone_id)
    with zs.lock:
        vehicles = [asdict(v) for v in zs.vehicles.values()]
        rides = [asdict(r) for r in d.rides() if r.zone_id == zone_id]
        return json.dumps(
            {"vehicles": vehicles, "rides": rides, "versions": zs.versions, "demand": zs.demand}
        )


def restore_zone(d: Dispatcher, zone: ServiceZone, text: str | None) -> None:
    """Add ``zone`` to ``d`` with the state of the snapshot ``text`` (empty zone if None)."""
    d.add_zone(zone)
    if not text:
        return
    snap = json.loads(text)
    for vd in snap["vehicles"]:
        plan = [Stop(**{**s, "kind": StopKind(s["kind"])}) for s in vd.pop("plan")]
        onboard = {k: Onboard(**o) for k, o in vd.pop("onboard").items()}
        v = Vehicle(
            **{
                **vd,
                "vtype": _vtype_of(vd["vtype"]),
                "depot": tuple(vd["depot"]),
                "position": tuple(vd["position"]),
                "heading": tuple(vd["heading"]) if vd.get("heading") else None,
            }
        )
        v.plan = plan
        v.onboard = onboard
        d.add_vehicle(v)
    for rd in snap["rides"]:
        req = rd.pop("request")
        req = RideRequest(
            **{**req, "origin": tuple(req["origin"]), "destination": tuple(req["destination"])}
        )
        d.restore_ride(
            Ride(
                **{
                    **rd,
                    "request": req,
                    "status": RideStatus(rd["status"]),
                    "pickup_window": tuple(rd["pickup_window"]),
                    "history": [tuple(h) for h in rd["history"]],
                }
            )
        )
    zs = d.zone_state(zone.zone_id)
    zs.versions.update({k: int(v) for k, v in snap["versions"].items()})
    zs.demand = Counter(snap["demand"])


# --- messages -----------------------------------------------------------------------------------
def book_message(request: RideRequest) -> dict[str, Any]:
    """A booking request for the zone's queue (``request_id`` is required: it is the ride id)."""
    if not request.request_id:
        raise ValueError("a queued booking needs a request_id (it makes redelivery idempotent)")
    r = asdict(request)
    return {"op": "book", "request": r}


def handle(d: Dispatcher, data: dict[str, Any]) -> dict[str, Any]:
    """Apply one queued message to the zone's dispatcher; returns the outcome."""
    op = data.get("op")
    if op == "book":
        rd = data["request"]
        req = RideRequest(
            **{**rd, "origin": tuple(rd["origin"]), "destination": tuple(rd["destination"])}
        )
        done = d.ride(req.request_id)
        if done is not None:  # redelivered after the snapshot: already booked
            return {"ride_id": done.ride_id, "status": done.status.value, "redelivered": True}
        res = d.request_ride(req, req.user_id)
        if isinstance(res, Rejection):
            if req.user_id:
                d.events.publish(
                    f"user.{req.user_id}.ride",
                    {"type": "rejected", "request_id": req.request_id, "reason": res.reason.value},
                )
            return {"request_id": req.request_id, "rejected": res.reason.value}
        return {"ride_id": res.ride_id, "status": res.status.value}
    if op == "cancel":
        try:
            ride = d.cancel(str(data["ride_id"]))
        except DispatchError as exc:
            return {"ride_id": data.get("ride_id"), "error": exc.code}
        return {"ride_id": ride.ride_id, "status": ride.status.value}
    return {"error": f"unknown op {op!r}"}


class ZoneWorker:
    """One dispatcher worker: owns the zones whose lease it holds, drains their queues.

    Parameters
    ----------
    worker_id
        Unique per process (the consumer name and the lease owner).
    zones
        Every zone of the service; the worker serves those it can lease.
    make_dispatcher
        Builds this worker's (empty) dispatcher.
    """

    def __init__(
        self,
        worker_id: str,
        zones: list[ServiceZone],
        make_dispatcher: Callable[[], Dispatcher],
        queue: WorkQueue,
        leases: LeaseStore,
        state: StateStore,
        lease_ttl_ms: int = 10_000,
        reclaim_idle_ms: int = 5_000,
    ) -> None:
        self.worker_id = worker_id
        self.zones = {z.zone_id: z for z in zones}
        self.dispatcher = make_dispatcher()
        self.queue = queue
        self.leases = leases
        self.state = state
        self.lease_ttl_ms = lease_ttl_ms
        self.reclaim_idle_ms = reclaim_idle_ms
        self.owned: set[str] = set()
        self.outcomes: list[dict[str, Any]] = []

    async def run_once(self, block_ms: int = 0) -> int:
        """Renew/take leases, then handle the waiting messages of owned zones; returns count."""
        handled = 0
        for zid, zone in self.zones.items():
            held = await self.leases.acquire(lease_key(zid), self.worker_id, self.lease_ttl_ms)
            if held and zid not in self.owned:
                text = await self.state.load(f"dispatch.state.{zid}")
                await asyncio.to_thread(restore_zone, self.dispatcher, zone, text)
                self.owned.add(zid)
            elif not held and zid in self.owned:
                self.dispatcher.remove_zone(zid)
                self.owned.discard(zid)
            if not held:
                continue
            stream = zone_stream(zid)
            msgs = await self.queue.reclaim(
                stream, GROUP, self.worker_id, min_idle_ms=self.reclaim_idle_ms
            )
            msgs += await self.queue.read(stream, GROUP, self.worker_id, block_ms=block_ms)
            for m in msgs:
                # Renew before each message: a worker that lost its zone must not write the
                # new owner's snapshot (the message stays pending for the new owner).
                if not await self.leases.acquire(lease_key(zid), self.worker_id, self.lease_ttl_ms):
                    self.dispatcher.remove_zone(zid)
                    self.owned.discard(zid)
                    break
                out = await asyncio.to_thread(handle, self.dispatcher, m.data)
                snap = await asyncio.to_thread(zone_snapshot, self.dispatcher, zid)
                await self.state.save(f"dispatch.state.{zid}", snap)
                await self.queue.ack(stream, GROUP, m.id)
                self.outcomes.append(out)
                handled += 1
        return handled

    async def release(self) -> None:
        """Give every lease back (clean shutdown: another worker can take over at once)."""
        for zid in list(self.owned):
            await self.leases.release(lease_key(zid), self.worker_id)
            self.dispatcher.remove_zone(zid)
        self.owned.clear()

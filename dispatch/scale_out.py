"""Several dispatcher workers sharing the zones: work queues, zone leases, state snapshots.

Commands for a zone (book, cancel, vehicle events, new vehicles) are appended to the work queue
``dispatch.zone.<zone_id>`` (Redis Streams in production, consumed by the group ``dispatch``).
One worker at a time owns a zone: it holds the zone's lease (a key with an expiry, renewed by a
lease keeper thread every third of its lifetime, :class:`LeaseKeeper`, so a starved event loop
does not lose it; checked before each batch and again before saving it, with a fencing token,
so a worker that lost the lease never acts beside the next owner). On taking a zone over, a
worker loads the zone's last snapshot. It reads the commands waiting in the stream (at most
:data:`COMMAND_BATCH`), handles them in order, saves the zone once *then* acks them all, so a
crash at any point loses nothing:

* crash before the save: the messages stay pending, the next owner reclaims them and handles
  them on the state that does not contain them yet;
* crash between save and ack: the next owner reclaims them, and each booking is recognised as
  already done (ride ids are the request ids), so nothing is assigned twice.

Position reports are the exception: they are acked without a snapshot (a lost position is
replaced by the next one) and saved with the periodic snapshot of the owned zones.

A removed zone (``remove_zone``) is served by nobody: the commands left in its stream are
refused (``zone_removed``) by the owner right after the removal, and one that reaches it later
by the worker of the process that sent it (:meth:`ZoneWorker.refuse_removed`).

:class:`ZoneWorker` runs one asyncio task per owned zone, blocked on that zone's stream, and a
lease keeper that also re-reads the zone catalog (zones added at run time are picked up).
Only the protocols live here (``dispatch`` never imports ``app``); the app provides them on its
event bus, Redis and database (``app.dispatch.service``). A command flows one way: the API's
``app.dispatch.cluster_gateway`` builds it here (the ``*_message`` functions) and sends it to
the zone's stream; the owner's :class:`ZoneWorker` applies it (:func:`handle`) and saves the
zone (``app.dispatch.db_adapters``); ``app.dispatch.zone_owner`` acks it, records its outcome
and replies to the asker.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any, Protocol

from dispatch.dispatcher import Dispatcher, DispatchError
from dispatch.request import RideRequest
from dispatch.rides import Quote, Rejection, RejectReason, Ride, RideStatus
from dispatch.vehicle import VEHICLE_TYPES, Onboard, Stop, StopKind, Vehicle, VehicleType
from dispatch.zone import ServiceZone

GROUP = "dispatch"
RECLAIM_BATCH = 100
#: Most commands of a zone handled together, then saved once and acked together (issue #10):
#: the save, a database transaction, cost about 20 times the handling of a booking, so one save
#: per command capped a zone at a few dozen commands a second. A batch is what queued while
#: the previous one was handled: a quiet zone still handles its commands one at a time.
COMMAND_BATCH = 32
#: Outcomes a worker keeps in ``ZoneWorker.outcomes`` (at least; for tests and tools).
KEPT_OUTCOMES = 1000
#: Seconds before a worker tries again to restore a zone whose saved state failed to load.
BROKEN_RETRY_S = 60.0
log = logging.getLogger("tsunagu.dispatch.scale_out")


_NAME_RE = re.compile(r"^[A-Za-z0-9_\-:]+(\.[A-Za-z0-9_\-:]+)*$")


def zone_name(zone_id: str) -> str:
    """``zone_id`` as one word of a stream or topic name: itself when it is made of letters,
    digits, ``_-:.`` (operators' and flex zones), else ``"z" + sha1`` (a GTFS location id may
    hold any character; the same id always gives the same name in every process)."""
    if len(zone_id) <= 120 and _NAME_RE.match(zone_id):
        return zone_id
    return "z" + hashlib.sha1(zone_id.encode()).hexdigest()


def zone_stream(zone_id: str) -> str:
    return f"dispatch.zone.{zone_name(zone_id)}"


def lease_key(zone_id: str) -> str:
    return f"dispatch.lease.{zone_name(zone_id)}"


def state_key(zone_id: str) -> str:
    """Key of a zone's snapshot in a key-value :class:`StateStore`."""
    return f"dispatch.state.{zone_name(zone_id)}"


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
    """Exclusive, expiring ownership of a key.

    A store may also offer ``renew_sync(key, owner, ttl_ms) -> int`` (blocking, any thread,
    extends only a lease ``owner`` holds; unless its ``renews_in_thread`` is False): the worker
    then renews from a thread of its own (:class:`LeaseKeeper`), so a lease outlives an event
    loop starved by other work."""

    async def acquire(self, key: str, owner: str, ttl_ms: int) -> int | bool:
        """Take or renew the lease: its fencing token (grows each time the lease changes
        hands; ``True`` from a store without tokens), 0/False while another owner holds it."""
        ...

    async def release(self, key: str, owner: str) -> None: ...


class StateStore(Protocol):
    """Key-value snapshots (JSON text): memory or Redis (see :class:`KeyValueZoneStore`)."""

    async def load(self, key: str) -> str | None: ...

    async def save(self, key: str, value: str) -> None: ...


class ZoneStore(Protocol):
    """Where a worker loads a zone's state on takeover and saves it after each command.

    The app's store is the database (zone row and ride records in one transaction), so it
    takes the dispatcher and snapshots the zone itself.
    """

    async def load(self, zone_id: str) -> str | None: ...

    async def save(self, d: Dispatcher, zone_id: str) -> None: ...

    async def delete(self, zone_id: str, instance: str | None) -> bool:
        """Forget the zone (a ``remove_zone`` command; in the app: its catalog row). False
        when the stored zone is another ``instance`` than the command was meant for (removed
        and added again since): nothing is deleted."""
        ...


class Catalog(Protocol):
    """Every zone of the service (the app's ``dispatch_zone_states`` table)."""

    async def zones(self) -> list[ServiceZone]: ...


class KeyValueZoneStore:
    """A :class:`ZoneStore` over a key-value :class:`StateStore` (key ``dispatch.state.<id>``)."""

    def __init__(self, state: StateStore) -> None:
        self.state = state

    async def load(self, zone_id: str) -> str | None:
        return await self.state.load(state_key(zone_id))

    async def save(self, d: Dispatcher, zone_id: str) -> None:
        snap = await asyncio.to_thread(zone_snapshot, d, zone_id)
        await self.state.save(state_key(zone_id), snap)

    async def delete(self, zone_id: str, instance: str | None) -> bool:
        # StateStore has no delete and no instances: an empty snapshot restores an empty zone.
        await self.state.save(state_key(zone_id), "")
        return True


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


def vehicle_from_dict(vd: dict[str, Any]) -> Vehicle:
    """Inverse of ``dataclasses.asdict(vehicle)`` (the snapshot and ``add_vehicle`` form)."""
    vd = dict(vd)
    plan = [Stop(**{**s, "kind": StopKind(s["kind"])}) for s in vd.pop("plan", [])]
    onboard = {k: Onboard(**o) for k, o in vd.pop("onboard", {}).items()}
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
    return v


def request_from_dict(rd: dict[str, Any]) -> RideRequest:
    """Inverse of ``dataclasses.asdict(request)``."""
    return RideRequest(
        **{**rd, "origin": tuple(rd["origin"]), "destination": tuple(rd["destination"])}
    )


def restore_zone(d: Dispatcher, zone: ServiceZone, text: str | None) -> None:
    """Add ``zone`` to ``d`` with the state of the snapshot ``text`` (empty zone if None)."""
    d.add_zone(zone)
    if not text:
        return
    snap = json.loads(text)
    for vd in snap["vehicles"]:
        d.add_vehicle(vehicle_from_dict(vd))
    for rd in snap["rides"]:
        req = request_from_dict(rd.pop("request"))
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


def book_quote_message(quote_id: str, user_id: str, request_id: str) -> dict[str, Any]:
    """Book the quote ``quote_id`` (issued by the zone's owner); ``request_id`` is the ride id
    the quote's request carries, so a redelivered booking is recognised."""
    if not request_id:
        raise ValueError("a queued booking needs a request_id (it makes redelivery idempotent)")
    return {"op": "book_quote", "quote_id": quote_id, "user_id": user_id, "request_id": request_id}


def quotes_message(requests: list[RideRequest]) -> dict[str, Any]:
    """The query ``quotes``: several rides quoted in one owner round trip (a flex plan's
    access, egress and direct rides); answered ``{"answers": [...]}``, one ``quote`` outcome
    (:func:`handle`) per request, in order."""
    return {"op": "quotes", "requests": [asdict(r) for r in requests]}


def cancel_message(ride_id: str, user_id: str = "", reason: str = "") -> dict[str, Any]:
    """Cancel ``ride_id``. ``user_id``: the rider's own cancellation (answered 202 before the
    owner's turn, see ``app.dispatch.cluster_gateway``): idempotent, so one that finds the ride
    already cancelled (a console's cancellation or an earlier request went first) is done,
    not refused; ``reason``: a dispatcher's, told to the rider."""
    msg: dict[str, Any] = {"op": "cancel", "ride_id": ride_id, "reason": reason}
    if user_id:
        msg["user_id"] = user_id
    return msg


def move_pickup_message(ride_id: str, earliest_pickup: float) -> dict[str, Any]:
    """Pick ``ride_id`` up no earlier than ``earliest_pickup`` (its feeder runs late)."""
    return {"op": "move_pickup", "ride_id": ride_id, "earliest_pickup": earliest_pickup}


def vehicle_event_message(
    vehicle_id: str,
    kind: str,
    t: float,
    lat: float | None = None,
    lon: float | None = None,
    ride_id: str | None = None,
) -> dict[str, Any]:
    """A vehicle's event: ``kind`` position (``lat``, ``lon``), arrived, boarded, alighted or
    no_show (``ride_id``), at ``t``."""
    msg: dict[str, Any] = {"op": "vehicle_event", "vehicle_id": vehicle_id, "type": kind, "t": t}
    msg.update({"lat": lat, "lon": lon, "ride_id": ride_id})
    return msg


def add_vehicle_message(vehicle: Vehicle) -> dict[str, Any]:
    """A vehicle joins its zone's fleet (``vehicle.zone_id``)."""
    return {"op": "add_vehicle", "vehicle": asdict(vehicle)}


def reassign_message(ride_id: str, vehicle_id: str) -> dict[str, Any]:
    """A dispatcher moves a booked ride to ``vehicle_id`` (:data:`CONSOLE_OPS`)."""
    return {"op": "reassign", "ride_id": ride_id, "vehicle_id": vehicle_id}


def no_show_message(ride_id: str, reason: str = "") -> dict[str, Any]:
    """A dispatcher marks a rider a no-show (:data:`CONSOLE_OPS`)."""
    return {"op": "mark_no_show", "ride_id": ride_id, "reason": reason}


def vehicle_service_message(vehicle_id: str, action: str) -> dict[str, Any]:
    """A dispatcher takes a vehicle out of service, sends it to its depot or puts it back
    (``action``: out_of_service, to_depot, in_service; :data:`CONSOLE_OPS`)."""
    return {"op": "vehicle_service", "vehicle_id": vehicle_id, "action": action}


def booking_refusal(data: dict[str, Any], out: dict[str, Any]) -> dict[str, Any] | None:
    """A booking the owner could not even try (``error``: a malformed message, its zone
    removed) as a refusal like any other (what the asker and ``GET /rides/{id}`` answer and
    its rider is told); None for any other message or outcome."""
    named = ride_named(data)
    if data.get("op") not in ("book", "book_quote") or "error" not in out or named is None:
        return None
    rid, user = named
    return {
        "request_id": rid,
        "rejected": str(out["error"]),
        "message": str(out.get("message", "")),
        "new_quote": None,
        "user_id": user,
    }


def remove_zone_message(instance: str | None) -> dict[str, Any]:
    """Remove the zone from the service (``ZoneStore.delete``), refused while it has vehicles
    or live rides. ``instance``: the stored zone's identity when the command was sent (a zone
    removed and added again since is not removed by this command)."""
    return {"op": "remove_zone", "instance": instance}


def needs_snapshot(data: dict[str, Any]) -> bool:
    """Whether a message's outcome must be in the snapshot before its ack (all but positions:
    a lost position is replaced by the next report, and a removed zone has no snapshot)."""
    op = data.get("op")
    return not ((op == "vehicle_event" and data.get("type") == "position") or op == "remove_zone")


def _ride_outcome(res: Ride | Rejection, request_id: str, user_id: str) -> dict[str, Any]:
    if isinstance(res, Rejection):
        return {
            "request_id": request_id,
            "rejected": res.reason.value,
            "message": res.message,
            "new_quote": res.new_quote.to_dict() if res.new_quote is not None else None,
            "user_id": user_id,
        }
    return {"ride_id": res.ride_id, "status": res.status.value, "ride": res.to_dict()}


def _notify_rejected(d: Dispatcher, user_id: str, request_id: str, reason: str) -> None:
    # The rider may have been answered "pending" (no reply in time): tell them on their topic.
    if user_id:
        d.events.publish(
            f"user.{user_id}.ride",
            {"type": "rejected", "request_id": request_id, "reason": reason},
        )


def handle(d: Dispatcher, data: dict[str, Any]) -> dict[str, Any]:
    """Apply one queued message (or one query) to the zone's dispatcher; returns the outcome.

    Ops: ``book`` (a request), ``book_quote`` (a quote this dispatcher issued), ``cancel``,
    ``move_pickup`` (a ride's pick-up no earlier than a time: its feeder runs late),
    ``vehicle_event`` (position, arrived, boarded, alighted, no_show), ``add_vehicle``, a
    dispatcher's :data:`CONSOLE_OPS` and the queries ``quote`` and ``quotes``. Refusals are outcomes (``rejected`` / ``error`` keys), never exceptions.
    """
    op = data.get("op")
    try:
        return _handle(d, op, data)
    except DispatchError as exc:
        return {"error": exc.code, "message": exc.message}
    except (KeyError, TypeError, ValueError) as exc:  # a malformed message is refused, not retried
        return {"error": "invalid_message", "message": f"{op}: {exc!r}"}


def _handle(d: Dispatcher, op: Any, data: dict[str, Any]) -> dict[str, Any]:
    if op == "book":
        req = request_from_dict(data["request"])
        done = d.ride(req.request_id)
        if done is not None:  # redelivered after the snapshot: already booked
            return {**_ride_outcome(done, req.request_id, req.user_id), "redelivered": True}
        res = d.request_ride(req, req.user_id)
        if isinstance(res, Rejection):
            _notify_rejected(d, req.user_id, req.request_id, res.reason.value)
        return _ride_outcome(res, req.request_id, req.user_id)
    if op == "book_quote":
        rid, user = str(data["request_id"]), str(data.get("user_id", ""))
        done = d.ride(rid)
        if done is not None and (not user or done.user_id == user):
            return {**_ride_outcome(done, rid, user), "redelivered": True}
        if done is not None:  # someone else's quote id is as good as unknown
            return _ride_outcome(
                Rejection(RejectReason.QUOTE_UNKNOWN, "unknown or already used quote"), rid, user
            )
        res = d.book(str(data["quote_id"]), user)
        if isinstance(res, Rejection):
            _notify_rejected(d, user, rid, res.reason.value)
        return _ride_outcome(res, rid, user)
    if op == "cancel":
        rid = str(data["ride_id"])
        done = d.ride(rid)
        if data.get("user_id") and done is not None and done.status is RideStatus.CANCELLED:
            # A rider's cancellation queued while another went first: done once, not refused.
            return {"ride_id": rid, "status": done.status.value, "ride": done.to_dict()}
        ride = d.cancel(rid, reason=str(data.get("reason") or ""))
        return {"ride_id": ride.ride_id, "status": ride.status.value, "ride": ride.to_dict()}
    if op in CONSOLE_OPS:
        return _handle_console(d, op, data)
    if op == "move_pickup":
        moved = d.move_pickup(str(data["ride_id"]), float(data["earliest_pickup"]))
        if isinstance(moved, Rejection):
            return {"rejected": moved.reason.value, "message": moved.message, "new_quote": None}
        return {"ride_id": moved.ride_id, "status": moved.status.value, "ride": moved.to_dict()}
    if op == "vehicle_event":
        vid, kind, t = str(data["vehicle_id"]), str(data["type"]), float(data["t"])
        if kind == "position":
            d.update_position(vid, float(data["lat"]), float(data["lon"]), t)
        elif kind in ("arrived", "boarded", "alighted", "no_show"):
            getattr(d, kind)(vid, str(data["ride_id"]), t)
        else:
            return {"error": "invalid_message", "message": f"unknown vehicle event {kind!r}"}
        return {"vehicle_id": vid}
    if op == "add_vehicle":
        v = vehicle_from_dict(data["vehicle"])
        d.add_vehicle(v)
        return {"vehicle_id": v.vehicle_id}
    if op == "quote":
        q: Quote | Rejection = d.quote(request_from_dict(data["request"]))
        if isinstance(q, Rejection):
            return {"rejected": q.reason.value, "message": q.message, "new_quote": None}
        return {"quote": q.to_dict(), "request_id": q.request.request_id}
    if op == "quotes":
        return {"answers": [handle(d, {"op": "quote", "request": r}) for r in data["requests"]]}
    return {"error": "invalid_message", "message": f"unknown op {op!r}"}


#: A dispatcher's interventions from the console (``app.api.dispatcher``), as zone commands.
CONSOLE_OPS = frozenset({"reassign", "mark_no_show", "vehicle_service"})


def _handle_console(d: Dispatcher, op: str, data: dict[str, Any]) -> dict[str, Any]:
    """``reassign`` (a ride to ``vehicle_id``), ``mark_no_show`` (with ``reason``),
    ``vehicle_service`` (``action``: out_of_service, to_depot, in_service)."""
    if op == "reassign":
        res = d.reassign(str(data["ride_id"]), str(data["vehicle_id"]))
        if isinstance(res, Rejection):
            return {"rejected": res.reason.value, "message": res.message, "new_quote": None}
        return {"ride_id": res.ride_id, "status": res.status.value, "ride": res.to_dict()}
    if op == "mark_no_show":
        ride = d.mark_no_show(str(data["ride_id"]), reason=str(data.get("reason") or ""))
        return {"ride_id": ride.ride_id, "status": ride.status.value, "ride": ride.to_dict()}
    vid, action = str(data["vehicle_id"]), str(data["action"])
    if action == "in_service":
        d.return_to_service(vid)
        return {"vehicle_id": vid, "moved": {}, "cancelled": []}
    if action not in ("out_of_service", "to_depot"):
        return {"error": "invalid_message", "message": f"unknown vehicle action {action!r}"}
    change = d.take_out_of_service(vid, to_depot=action == "to_depot")
    return {"vehicle_id": vid, "moved": change.moved, "cancelled": change.cancelled}


ZoneHook = Callable[[str], Awaitable[None]]
OutcomeHook = Callable[[str, dict[str, Any], dict[str, Any]], Awaitable[None]]
#: ``(zone_id, [(message id, data, outcome)])``: acks a saved batch and records its outcomes.
BatchHook = Callable[[str, list[tuple[str, dict[str, Any], dict[str, Any]]]], Awaitable[None]]


class RideHistory(Protocol):
    """Rides as saved for good (the app's ``dispatch_rides``): where a zone's finished rides
    are found once they left its live state."""

    async def rides(self, ride_ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """``{ride_id: (user_id, Ride.to_dict())}`` of those of ``ride_ids`` saved."""
        ...


def ride_named(data: dict[str, Any]) -> tuple[str, str] | None:
    """``(ride id, user id)`` a booking or cancellation is about (``""``: no user given)."""
    op = data.get("op")
    if op == "book":
        req = data.get("request") or {}
        return str(req.get("request_id", "")), str(req.get("user_id") or "")
    if op == "book_quote":
        return str(data.get("request_id", "")), str(data.get("user_id") or "")
    if op == "cancel":
        return str(data.get("ride_id", "")), ""
    return None


def _from_history(
    data: dict[str, Any], saved: tuple[str, dict[str, Any]], redelivered: bool
) -> dict[str, Any]:
    """The outcome of a booking or cancellation whose ride finished and left the live state,
    from its saved record: what :func:`handle` answers while the ride is live."""
    rid, user = ride_named(data) or ("", "")
    owner, ride = saved
    done = {"ride_id": rid, "status": ride["status"], "ride": ride, "redelivered": True}
    if data.get("op") == "cancel":
        if ride["status"] == RideStatus.CANCELLED.value and (redelivered or data.get("user_id")):
            # This very cancellation, saved before its ack was lost; or a rider's own,
            # queued while another went first (idempotent, see cancel_message).
            return done
        msg = f"a ride that is {ride['status']} cannot be cancelled"
        return {"error": "not_cancellable", "message": msg}
    if not user or owner == user:
        return done
    return _ride_outcome(
        Rejection(RejectReason.QUOTE_UNKNOWN, "unknown or already used quote"), rid, user
    )


def handle_batch(
    d: Dispatcher,
    batch: list[dict[str, Any]],
    saved: dict[int, tuple[tuple[str, dict[str, Any]], bool]] | None = None,
) -> tuple[list[dict[str, Any]], Exception | None]:
    """:func:`handle` each message of ``batch`` in order (one worker-thread hop for all).
    ``saved``: message index -> (the saved record of the ride it names, whether the message
    is a redelivery), for rides not live when the batch was read; one still not live when its
    turn comes is answered from the record (:func:`_from_history`). Returns the outcomes of
    those handled and, when one raised (a bug, not a refusal), its exception: the messages
    before it are saved and acked, it and those after stay queued."""
    outs: list[dict[str, Any]] = []
    for k, data in enumerate(batch):
        try:
            found = saved.get(k) if saved else None
            named = ride_named(data)
            if found is not None and named is not None and d.ride(named[0]) is None:
                outs.append(_from_history(data, found[0], found[1]))
            else:
                outs.append(handle(d, data))
        except Exception as exc:
            return outs, exc
    return outs, None


def command_batches(msgs: list[Any]) -> list[list[Any]]:
    """``msgs`` in order, cut into batches of at most :data:`COMMAND_BATCH`; a ``remove_zone``
    goes alone (the commands after it are refused, not handled)."""
    out: list[list[Any]] = []
    cur: list[Any] = []
    for m in msgs:
        if m.data.get("op") == "remove_zone":
            if cur:
                out.append(cur)
                cur = []
            out.append([m])
            continue
        cur.append(m)
        if len(cur) == COMMAND_BATCH:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def _stop_if_cancelled() -> None:
    """Raise ``CancelledError`` when this task was cancelled yet runs on: redis-py (8.1 on
    Python 3.11) now and then swallows a cancellation delivered during a command (see
    ``app.events.bus``), and a worker loop that went on would leave ``stop()`` waiting for it
    forever. Called at the top of each pass of the worker's loops."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _join(task: asyncio.Task[Any]) -> None:
    """Wait for a task this worker cancelled to end, whatever it raised.

    A ``CancelledError`` coming out of ``task`` is swallowed, but not one aimed at the caller:
    the keeper drops zones from inside its own pass, and swallowing the keeper's cancellation
    there left ``stop()`` waiting forever for a keeper that kept running.
    """
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except Exception:  # the task's own failure was logged where it happened
        pass


class LeaseLost(Exception):
    """The zone's lease was lost while a batch was being handled: nothing of it is saved or
    acked (the messages stay pending for the new owner)."""


class LeaseKeeper:
    """Renews a worker's leases from a dedicated thread, every third of their lifetime.

    An owner's event loop (or thread pool) can be starved for seconds by CPU-bound work (the
    /plan searches of a loaded process); a renewal queued behind it came after the lease's
    expiry and another process took the zone over while this one still served it (issue #10).
    This thread needs only the GIL for a moment and the blocking ``renew``; it dies with the
    process, so a killed owner's leases still end after their lifetime.

    It also tells until when a lease is surely held (:meth:`valid`): the send time of its last
    confirmed renewal plus the lifetime, less a safety margin. Another process can take the
    lease only after that, so a worker that checks :meth:`valid` before acting never acts at
    the same time as the next owner, even when the whole process was frozen (its thread too).

    Parameters
    ----------
    renew
        ``renew(key, owner, ttl_ms)``: extend the lease if ``owner`` holds it; its fencing
        token, 0 if not held (blocking).
    owner
        The lease owner (the worker id).
    ttl_ms
        Lease lifetime.
    clock
        Monotonic clock (seconds).
    """

    def __init__(
        self,
        renew: Callable[[str, str, int], int],
        owner: str,
        ttl_ms: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.renew = renew
        self.owner = owner
        self.ttl_ms = ttl_ms
        self.clock = clock
        self.period = ttl_ms / 3000.0
        # Stop acting this long before the lease could end: a check and the action after it
        # (a save, an ack) are not one step.
        self.margin = ttl_ms / 5000.0
        self._held: dict[str, tuple[int, float]] = {}  # key -> (token, surely held until)
        #: Renewals that failed (Redis away), ever: a worker that saw it change since its own
        #: last lease round trip cannot be sure Redis answers (ZoneWorker._surely_held).
        self.failures = 0
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, key: str, token: int, sent: float) -> None:
        """Keep ``key`` (taken or confirmed with ``token`` by a call sent at ``sent``)."""
        with self._mutex:
            old = self._held.get(key)
            until = sent + self.ttl_ms / 1000.0 - self.margin
            if old is not None and old[0] == token:
                until = max(until, old[1])
            self._held[key] = (token, until)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._run, name=f"lease-keeper-{self.owner}", daemon=True
                )
                self._thread.start()

    def drop(self, key: str) -> None:
        """Stop renewing ``key`` (released, lost, or a crash imitated)."""
        with self._mutex:
            self._held.pop(key, None)

    def valid(self, key: str, token: int) -> bool:
        """Whether ``key`` is surely still held with ``token`` (no other owner can act)."""
        with self._mutex:
            held = self._held.get(key)
        return held is not None and held[0] == token and self.clock() < held[1]

    def close(self) -> None:
        """Stop the thread (the leases then end after their lifetime unless released)."""
        with self._mutex:
            self._held.clear()
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.period + 1.0)

    def renew_all(self) -> None:
        """One round of renewals (the thread's loop; tests call it directly)."""
        with self._mutex:
            keys = list(self._held.items())
        for key, (token, _) in keys:
            sent = self.clock()
            try:
                got = int(self.renew(key, self.owner, self.ttl_ms))
            except Exception:  # Redis away: the lease runs out unless a later renewal lands
                log.warning("lease renewal of %s failed", key, exc_info=True)
                self.failures += 1
                continue
            with self._mutex:
                if self._held.get(key, (None,))[0] != token:
                    continue  # dropped or taken again meanwhile: the loop's record stands
                if got == token:
                    self._held[key] = (token, sent + self.ttl_ms / 1000.0 - self.margin)
                else:  # another owner (or the lease ended and changed hands): never act again
                    self._held[key] = (token, -float("inf"))
                    log.warning("lease %s lost by %s", key, self.owner)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.renew_all()


class ZoneWorker:
    """One dispatcher worker: owns the zones whose lease it holds, drains their queues.

    Two ways to drive it: :meth:`run_once` (one sequential pass, for tests and tools), or
    :meth:`start` (a lease keeper task plus one task per owned zone blocked on its stream).

    Parameters
    ----------
    worker_id
        Unique per process (the consumer name and the lease owner).
    zones
        The zones of the service known at start; the worker serves those it can lease.
    make_dispatcher
        Builds this worker's (empty) dispatcher; it holds only the owned zones.
    queue, leases
        Work queues (the event bus) and zone leases.
    state
        Key-value snapshot store (wrapped in :class:`KeyValueZoneStore`); ignored when
        ``zone_store`` is given.
    lease_ttl_ms
        Lease lifetime: a crashed owner's zones are taken over after at most this long.
    reclaim_idle_ms
        Messages pending this long are reclaimed by the zone's owner (a dead owner's batch).
    zone_store
        Where zone states live (the app's database); overrides ``state``.
    catalog
        Re-read every ``catalog_interval_s`` by the keeper: new zones are leased, zones gone
        from it are released.
    block_ms
        How long a zone task blocks on its stream per read.
    snapshot_interval_s
        Owned zones are saved this often (positions, re-optimised plans).
    on_acquire, on_release
        Awaited after a zone is taken over (restored) / before it leaves the dispatcher.
    on_outcome
        Awaited with ``(zone_id, message data, outcome)`` after each ack (replies, pending
        records); its failures are logged, never retried.
    history
        Where finished rides are found once they left the live state (the app drops them
        after each save): a redelivered booking or cancellation of one is recognised there.
    on_batch
        When given, awaited with ``(zone_id, [(message id, data, outcome)])`` once a batch of
        commands is saved, *instead of* the acks and ``on_outcome``: it acks the messages and
        records their outcomes (the app does both in one Redis transaction). When it fails
        the messages stay pending and are handled again (recognised as done).
    """

    def __init__(
        self,
        worker_id: str,
        zones: list[ServiceZone],
        make_dispatcher: Callable[[], Dispatcher],
        queue: WorkQueue,
        leases: LeaseStore,
        state: StateStore | None = None,
        lease_ttl_ms: int = 10_000,
        reclaim_idle_ms: int = 5_000,
        *,
        zone_store: ZoneStore | None = None,
        catalog: Catalog | None = None,
        catalog_interval_s: float = 2.0,
        block_ms: int = 1000,
        snapshot_interval_s: float = 10.0,
        on_acquire: ZoneHook | None = None,
        on_release: ZoneHook | None = None,
        on_outcome: OutcomeHook | None = None,
        on_batch: BatchHook | None = None,
        history: RideHistory | None = None,
    ) -> None:
        if zone_store is None:
            if state is None:
                raise ValueError("give a state store or a zone store")
            zone_store = KeyValueZoneStore(state)
        self.worker_id = worker_id
        self.zones = {z.zone_id: z for z in zones}
        self.dispatcher = make_dispatcher()
        self.queue = queue
        self.leases = leases
        self.zone_store = zone_store
        self.catalog = catalog
        self.catalog_interval_s = catalog_interval_s
        self.lease_ttl_ms = lease_ttl_ms
        self.reclaim_idle_ms = reclaim_idle_ms
        self.block_ms = block_ms
        self.snapshot_interval_s = snapshot_interval_s
        self.on_acquire = on_acquire
        self.on_release = on_release
        self.on_outcome = on_outcome
        self.on_batch = on_batch
        self.history = history
        # The zone commands' own threads: in asyncio's default pool (6 threads on 2 cores,
        # shared with the process's quotes and database look-ups) a batch queued behind them.
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"zones-{worker_id}")
        self.owned: set[str] = set()
        #: The latest outcomes (tests and tools read them; bounded: a zone runs for months).
        self.outcomes: list[dict[str, Any]] = []
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._keeper: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._pass_lock = asyncio.Lock()
        self._last_catalog = -float("inf")
        self._last_snapshot = time.monotonic()
        self._dirty: set[str] = set()
        self._broken: dict[str, float] = {}  # zone -> when to try restoring it again
        # Fencing: the token of each owned zone's lease when it was taken; a different token
        # later means the lease changed hands in between (the zone state here is stale).
        self._tokens: dict[str, int] = {}
        # Errors met by the zone tasks and the lease round trips (Redis or the database away)
        # and, per zone, the error counts (this worker's, the keeper thread's) when a lease
        # round trip that confirmed it was sent: a batch starts without renewing first only
        # while neither changed since (_surely_held, #10).
        self._errors = 0
        self._confirmed: dict[str, tuple[int, int]] = {}
        renew_sync = getattr(leases, "renew_sync", None)
        self.keeper: LeaseKeeper | None = None
        if callable(renew_sync) and getattr(leases, "renews_in_thread", True):
            self.keeper = LeaseKeeper(renew_sync, worker_id, lease_ttl_ms)

    # --- ownership --------------------------------------------------------------------------
    def _lock(self, zid: str) -> asyncio.Lock:
        return self._locks.setdefault(zid, asyncio.Lock())

    async def _renew(self, zid: str) -> bool:
        """Take or renew the zone's lease; for an owned zone, False also when the lease changed
        hands since it was taken (a new token) or is not surely held (:class:`LeaseKeeper`):
        the caller then drops the zone without acting (fencing)."""
        key = lease_key(zid)
        sent = time.monotonic()
        errors = self._error_counts()
        try:
            token = int(await self.leases.acquire(key, self.worker_id, self.lease_ttl_ms))
        except Exception:
            self._errors += 1
            raise
        if not token:
            return False
        if zid in self.owned:
            known = self._tokens.get(zid)
            if known is not None and token != known:
                log.warning("zone %s: lease changed hands since taken by %s", zid, self.worker_id)
                return False
            if self.keeper is not None and not self.keeper.valid(key, token):
                return False
        self._tokens[zid] = token
        if self.keeper is not None:
            self.keeper.hold(key, token, sent)
        self._confirmed[zid] = errors
        return True

    def _error_counts(self) -> tuple[int, int]:
        """This worker's errors and its keeper thread's failed renewals so far."""
        return self._errors, self.keeper.failures if self.keeper is not None else 0

    def _surely_held(self, zid: str) -> bool:
        """Whether the keeper thread surely holds the lease of the owned zone ``zid`` under
        the token it was taken with (:meth:`LeaseKeeper.valid`), and Redis answered this
        worker's last lease round trip with no error met since (zone task or keeper thread),
        without asking Redis.

        After an outage the first command on each of the client's pooled connections fails
        (the server closed them; the clients do not retry). The renewal ahead of a batch met
        that failure before the batch was applied; skipped, the failure hit the fencing renewal
        after it: the batch applied in memory (GET /rides showed the booking assigned) but
        neither saved, acked nor recorded, its ``dispatch.pending`` record left until the
        message was reclaimed (#10). So after any error the next batch renews first."""
        token = self._tokens.get(zid)
        keeper = self.keeper
        return (
            keeper is not None
            and token is not None
            and zid in self.owned
            and self._confirmed.get(zid) == self._error_counts()
            and keeper.valid(lease_key(zid), token)
        )

    async def _release(self, zid: str) -> None:
        """Give the zone's lease back (the keeper thread stops renewing it first)."""
        self._unhold(zid)
        await self.leases.release(lease_key(zid), self.worker_id)

    def _unhold(self, zid: str) -> None:
        self._tokens.pop(zid, None)
        self._confirmed.pop(zid, None)
        if self.keeper is not None:
            self.keeper.drop(lease_key(zid))

    async def _take(self, zid: str) -> None:
        """Restore a newly leased zone from its last saved state."""
        text = await self.zone_store.load(zid)
        await asyncio.to_thread(restore_zone, self.dispatcher, self.zones[zid], text)
        self.owned.add(zid)
        log.info("zone %s taken by %s", zid, self.worker_id)
        if self.on_acquire is not None:
            try:
                await self.on_acquire(zid)
            except Exception:  # a hook must not cost the zone its owner
                log.exception("on_acquire of %s failed", zid)

    async def _drop(self, zid: str, *, release: bool) -> None:
        """Forget an owned zone (lease lost, or released): its task ends first, so no message
        is half-handled; messages it had read stay pending for the next owner."""
        task = self._tasks.pop(zid, None)
        current = asyncio.current_task()
        if zid in self.owned and self.on_release is not None:
            try:
                await self.on_release(zid)
            except Exception:
                log.exception("on_release of %s failed", zid)
        async with self._lock(zid):
            if task is not None and task is not current:
                task.cancel()
            if zid in self.owned:
                self.owned.discard(zid)
                with contextlib.suppress(DispatchError):
                    self.dispatcher.remove_zone(zid)
                self._dirty.discard(zid)
                log.info("zone %s left by %s", zid, self.worker_id)
        if task is not None and task is not current:
            await _join(task)
        if release:
            await self._release(zid)
        else:  # lost (or a crash imitated): not renewed any more, it ends after its lifetime
            self._unhold(zid)

    # --- one message ------------------------------------------------------------------------
    async def _remove(self, zid: str, data: dict[str, Any]) -> dict[str, Any]:
        """The ``remove_zone`` command (the lease is held): refused while the zone has vehicles
        or live rides (removing it would drop them) or when the stored zone is another
        instance; else the zone store forgets it and so does this worker (it is dropped and
        its lease released after the ack, by the caller)."""
        d = self.dispatcher
        live = [
            r
            for r in d.rides()
            if r.zone_id == zid and r.status in (RideStatus.ASSIGNED, RideStatus.ONBOARD)
        ]
        if d.vehicles(zid) or live:
            return {"error": "zone_in_use", "message": f"zone {zid} has vehicles or rides"}
        if not await self.zone_store.delete(zid, data.get("instance")):
            return {"error": "zone_changed", "message": f"zone {zid} was added again since"}
        self.zones.pop(zid, None)  # not leased again (the catalog no longer lists it either)
        log.info("zone %s removed by %s", zid, self.worker_id)
        return {"zone_id": zid, "removed": True}

    def _remember(self, *outs: dict[str, Any]) -> None:
        self.outcomes.extend(outs)
        if len(self.outcomes) > 2 * KEPT_OUTCOMES:
            del self.outcomes[:-KEPT_OUTCOMES]

    async def _tell(self, zid: str, data: dict[str, Any], out: dict[str, Any]) -> None:
        """Record ``out`` and hand it to ``on_outcome`` (whose failures are only logged)."""
        self._remember(out)
        if self.on_outcome is not None:
            try:
                await self.on_outcome(zid, data, out)
            except Exception:
                log.exception("on_outcome of %s failed", zid)

    async def _process(self, zid: str, msg: Any) -> dict[str, Any]:
        """Handle, snapshot, ack, then tell ``on_outcome`` (the lease is held). After a
        removal, the commands left in the zone's stream are refused (:meth:`_refuse_queued`)."""
        if msg.data.get("op") == "remove_zone":
            out = await self._remove(zid, msg.data)
        else:
            out = await asyncio.to_thread(handle, self.dispatcher, msg.data)
        if needs_snapshot(msg.data):
            await self.zone_store.save(self.dispatcher, zid)
        else:
            self._dirty.add(zid)
        await self.queue.ack(zone_stream(zid), GROUP, msg.id)
        await self._tell(zid, msg.data, out)
        if out.get("removed"):
            try:
                await self._refuse_queued(zid)
            except Exception:  # the zone is gone all the same; askers refuse what is left
                log.exception("refusing the commands left for removed zone %s failed", zid)
        return out

    async def _process_batch(self, zid: str, msgs: list[Any]) -> list[dict[str, Any]]:
        """Handle ``msgs`` in order, save the zone once, then ack them and tell their outcomes
        (the lease is held); a ``remove_zone`` comes alone (:meth:`_process`). Crash safety is
        the one-command case's: nothing is acked before the save holding its effect, and a
        command handled again after a crash is recognised as done (:func:`handle`)."""
        if len(msgs) == 1 and msgs[0].data.get("op") == "remove_zone":
            return [await self._process(zid, msgs[0])]
        saved = await self._saved_rides(msgs)
        run = functools.partial(handle_batch, self.dispatcher, [m.data for m in msgs], saved)
        outs, failure = await asyncio.get_running_loop().run_in_executor(self._pool, run)
        done = list(zip(msgs, outs, strict=False))
        # Fencing: the batch may have waited long for the pool; if the lease changed hands
        # meanwhile, another owner may act on the zone now, so nothing of it is saved or acked.
        if done and not await self._renew(zid):
            raise LeaseLost(zid)
        if done:
            if any(needs_snapshot(m.data) for m, _ in done):
                await self.zone_store.save(self.dispatcher, zid)
            else:
                self._dirty.add(zid)
            await self._finish(zid, done)
        if failure is not None:
            raise failure
        return outs

    async def _saved_rides(
        self, msgs: list[Any]
    ) -> dict[int, tuple[tuple[str, dict[str, Any]], bool]]:
        """The saved records of the finished rides ``msgs`` may name (:func:`handle_batch`'s
        ``saved``): those of cancellations and of redelivered bookings whose ride is not live
        (a booking delivered for the first time cannot have been handled). One look-up for
        the batch, none when no message needs it."""
        if self.history is None:
            return {}
        wanted: dict[int, tuple[str, bool]] = {}
        for k, m in enumerate(msgs):
            named = ride_named(m.data)
            again = int(getattr(m, "deliveries", 1)) > 1
            if named is None or not named[0] or self.dispatcher.ride(named[0]) is not None:
                continue
            if m.data.get("op") == "cancel" or again:
                wanted[k] = (named[0], again)
        if not wanted:
            return {}
        found = await self.history.rides(sorted({rid for rid, _ in wanted.values()}))
        return {k: (found[rid], again) for k, (rid, again) in wanted.items() if rid in found}

    async def _finish(self, zid: str, done: list[tuple[Any, dict[str, Any]]]) -> None:
        """Ack the saved commands and tell their outcomes: through ``on_batch`` (one round
        trip) when given, else an ack and ``on_outcome`` each."""
        if self.on_batch is not None:
            self._remember(*(out for _, out in done))
            await self.on_batch(zid, [(m.id, m.data, out) for m, out in done])
            return
        stream = zone_stream(zid)
        for m, _ in done:
            await self.queue.ack(stream, GROUP, m.id)
        for m, out in done:
            await self._tell(zid, m.data, out)

    async def _refuse_queued(self, zid: str) -> int:
        """Answer every command left in the stream of the removed zone ``zid`` with the error
        ``zone_removed`` and ack it (the zone's lease is held, so nobody else reads it): no
        process serves a removed zone, and a booking left there would stay pending forever.
        ``on_outcome`` comes before the ack: a crash in between only repeats the refusal.
        Returns how many were refused."""
        stream, refused = zone_stream(zid), 0
        while True:
            # Those read but not handled (the rest of the batch holding the removal) first.
            msgs = await self.queue.reclaim(
                stream, GROUP, self.worker_id, min_idle_ms=0, count=RECLAIM_BATCH
            )
            msgs = msgs or await self.queue.read(
                stream, GROUP, self.worker_id, count=RECLAIM_BATCH, block_ms=0
            )
            if not msgs:
                return refused
            for m in msgs:
                out = {"error": "zone_removed", "message": f"zone {zid} was removed"}
                await self._tell(zid, m.data, out)
                await self.queue.ack(stream, GROUP, m.id)
                refused += 1
            log.info("%d command(s) for removed zone %s refused", len(msgs), zid)

    async def refuse_removed(self, zid: str) -> int:
        """Refuse the commands queued for ``zid`` if it is no longer in the catalog (one that
        reached its stream after the owner's removal, from a process whose catalog was not
        re-read yet). The zone's lease is taken for the time: a zone added again meanwhile
        is left to its owner. Returns how many were refused (0 without a catalog). Call it
        only for a zone the service no longer has: a catalog that leaves zones out for this
        worker (the app's ``skip``) cannot tell those from removed ones."""
        if self.catalog is None:
            return 0
        # Mostly the zone is listed (its owner was only slow): answered without waiting for
        # the keeper's pass, which may be restoring zones taken over.
        if any(z.zone_id == zid for z in await self.catalog.zones()):
            return 0
        # The keeper's lock: its pass must not take the zone while its lease is held here;
        # the zone's: the owner that removed it may still be refusing its queue.
        async with self._pass_lock:
            await self._refresh_catalog(True)
            if zid in self.zones:
                return 0
            async with self._lock(zid):
                if not await self._renew(zid):
                    return 0
                try:
                    return await self._refuse_queued(zid)
                finally:
                    await self._release(zid)

    async def run_once(self, block_ms: int = 0) -> int:
        """Renew/take leases, then handle the waiting messages of owned zones; returns count."""
        handled = 0
        for zid in list(self.zones):
            held = await self._renew(zid)
            if held and zid not in self.owned:
                await self._take(zid)
            elif not held and zid in self.owned:
                await self._drop(zid, release=False)
            if not held:
                continue
            stream = zone_stream(zid)
            msgs = await self.queue.reclaim(
                stream, GROUP, self.worker_id, min_idle_ms=self.reclaim_idle_ms
            )
            msgs += await self.queue.read(
                stream, GROUP, self.worker_id, count=COMMAND_BATCH, block_ms=block_ms
            )
            for batch in command_batches(msgs):
                # Renew before each batch: a worker that lost its zone must not write the
                # new owner's snapshot (the messages stay pending for the new owner).
                if not await self._renew(zid):
                    await self._drop(zid, release=False)
                    break
                try:
                    outs = await self._process_batch(zid, batch)
                except LeaseLost:
                    await self._drop(zid, release=False)
                    break
                handled += len(outs)
                if any(o.get("removed") for o in outs):
                    await self._drop(zid, release=True)
                    break
        return handled

    # --- running ----------------------------------------------------------------------------
    async def _serve(self, zid: str) -> None:
        """The zone's task: reclaim stale messages now and then, block on new ones."""
        stream = zone_stream(zid)
        next_reclaim = 0.0
        # On takeover every pending message is reclaimed at once, whatever its idle time, and
        # handled before any new one: the commands of a ride keep their order (a booking left
        # pending by a dead owner comes before its cancellation). The lease guarantees that
        # the previous owner no longer handles them.
        takeover = True
        while zid in self.owned:
            _stop_if_cancelled()
            try:
                msgs: list[Any] = []
                now = time.monotonic()
                if takeover or now >= next_reclaim:
                    idle = 0 if takeover else self.reclaim_idle_ms
                    msgs = await self.queue.reclaim(
                        stream, GROUP, self.worker_id, min_idle_ms=idle, count=RECLAIM_BATCH
                    )
                    takeover = takeover and len(msgs) == RECLAIM_BATCH
                    next_reclaim = now + self.reclaim_idle_ms / 2000.0
                if not msgs:
                    msgs = await self.queue.read(
                        stream, GROUP, self.worker_id, count=COMMAND_BATCH, block_ms=self.block_ms
                    )
                for batch in command_batches(msgs):
                    async with self._lock(zid):
                        if zid not in self.owned:
                            return
                        removed = False
                        # The keeper thread renews the lease; while it surely holds it and no
                        # error came since the last renewal here, no round trip is needed to
                        # start a batch (the one after handling it, in _process_batch, still
                        # fences the save and the acks, #10).
                        lost = not (self._surely_held(zid) or await self._renew(zid))
                        if not lost:
                            try:
                                outs = await self._process_batch(zid, batch)
                                removed = any(o.get("removed") for o in outs)
                            except LeaseLost:
                                lost = True
                    if lost or removed:
                        # A removed zone's later messages were refused by _process.
                        await self._drop(zid, release=removed)
                        return
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis or the database away: the message stays pending
                log.exception("zone %s worker error; retrying", zid)
                # Redis may have restarted: its next batch renews the lease before it is
                # applied (_surely_held), so a stale connection fails it untouched.
                self._errors += 1
                await asyncio.sleep(min(1.0, self.lease_ttl_ms / 3000.0))

    async def _refresh_catalog(self, force: bool) -> None:
        if self.catalog is None:
            return
        now = time.monotonic()
        if not force and now - self._last_catalog < self.catalog_interval_s:
            return
        self._last_catalog = now
        zones = await self.catalog.zones()
        fresh = {z.zone_id: z for z in zones}
        for zid in [z for z in self.zones if z not in fresh]:
            if zid in self.owned:
                await self._drop(zid, release=True)
        # A definition seen before keeps its object (its H3 cells are already computed).
        self.zones = {zid: self.zones.get(zid, z) for zid, z in fresh.items()}

    async def pass_once(self, *, refresh: bool = False) -> None:
        """One keeper pass: catalog, leases (renew, lose, take), periodic snapshots."""
        async with self._pass_lock:
            try:
                await self._refresh_catalog(refresh)
            except Exception:  # the database away: renew the leases of the zones known
                log.exception("catalog re-read failed; keeping the zones known")
            now = time.monotonic()
            # Owned zones first: their renewals must not wait behind restoring new ones.
            for zid in sorted(self.zones, key=lambda z: z not in self.owned):
                if zid not in self.owned and self._broken.get(zid, 0.0) > now:
                    continue
                held = await self._renew(zid)
                if not held and zid in self.owned:
                    await self._drop(zid, release=False)
                    # Fenced (the lease changed hands, or lapsed, since it was taken) but
                    # perhaps free or ours again now: then taken afresh, restored, at once.
                    held = await self._renew(zid)
                if held and zid not in self.owned and await self._try_take(zid):
                    self._tasks[zid] = asyncio.create_task(
                        self._serve(zid), name=f"dispatch-zone-{zid}"
                    )
            if now - self._last_snapshot >= self.snapshot_interval_s:
                self._last_snapshot = now
                await self.save_owned()

    async def _try_take(self, zid: str) -> bool:
        """Take a leased zone; a state that cannot be restored (a corrupt row) costs only that
        zone: it is released, logged, and tried again after ``BROKEN_RETRY_S``."""
        try:
            async with self._lock(zid):
                await self._take(zid)
        except Exception:
            log.exception("zone %s could not be restored; retried in %.0f s", zid, BROKEN_RETRY_S)
            self._broken[zid] = time.monotonic() + BROKEN_RETRY_S
            if zid in {z.zone_id for z in self.dispatcher.zones()}:
                self.dispatcher.remove_zone(zid)
            await self._release(zid)
            return False
        self._broken.pop(zid, None)
        return True

    async def save_owned(self) -> None:
        """Snapshot every owned zone (re-optimised plans, positions), lease checked first."""
        for zid in sorted(self.owned):
            if self._lock(zid).locked():
                # A message is being handled: it saves the zone itself, and waiting here would
                # hold up the keeper's lease renewals for every other zone.
                continue
            async with self._lock(zid):
                if zid not in self.owned or not await self._renew(zid):
                    continue
                try:
                    await self.zone_store.save(self.dispatcher, zid)
                    self._dirty.discard(zid)
                except Exception:  # the next pass retries
                    log.exception("snapshot of zone %s failed", zid)

    async def _keep(self) -> None:
        period = self.lease_ttl_ms / 3000.0
        while True:
            _stop_if_cancelled()
            try:
                await self.pass_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis or the database away: try again next period
                log.exception("lease keeper pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), period)
            self._wake.clear()

    def start(self) -> None:
        """Start the lease keeper (the first pass runs at once)."""
        if self._keeper is None:
            self._keeper = asyncio.create_task(
                self._keep(), name=f"dispatch-keeper-{self.worker_id}"
            )

    def wake(self) -> None:
        """Run the keeper's next pass now (another worker released zones: take them at once)."""
        self._wake.set()

    async def sync(self) -> None:
        """A keeper pass now, the catalog re-read first: a zone just added to the catalog is
        owned by some worker (this one if nobody else holds it) when this returns."""
        await self.pass_once(refresh=True)

    def owns(self, zone_id: str) -> bool:
        return zone_id in self.owned

    async def stop(self, *, release: bool = True) -> None:
        """Stop the keeper and the zone tasks; save and release the zones (clean shutdown:
        another worker takes over at once). ``release=False`` imitates a crash (tests)."""
        if self._keeper is not None:
            self._keeper.cancel()
            await _join(self._keeper)
            self._keeper = None
        if release:
            await self.save_owned()
        for zid in list(self.owned):
            await self._drop(zid, release=release)
        for task in list(self._tasks.values()):
            task.cancel()
        self._tasks.clear()
        if self.keeper is not None:
            self.keeper.close()

    async def release(self) -> None:
        """Give every lease back (clean shutdown: another worker can take over at once)."""
        for zid in list(self.owned):
            await self._drop(zid, release=True)
        self.owned.clear()

"""The one door of the HTTP API to the on-demand dispatcher: ``services.dispatch``.

Two implementations of :class:`DispatchGateway`:

* :class:`LocalGateway` (no ``REDIS_URL``): one process, one in-memory ``Dispatcher``; calls go
  straight to it (in a worker thread) and every change is saved to the database (``persist``).
* :class:`ClusterGateway` (``REDIS_URL`` set): several processes share the zones. Each zone is
  owned by exactly one process at a time (a Redis lease, ``dispatch.scale_out.ZoneWorker``);
  the zone catalog is the ``dispatch_zone_states`` table. Commands (book, cancel, vehicle
  events, new vehicles) go through the zone's durable stream ``dispatch.zone.<zone>`` with a
  ``reply_to`` topic (``dispatch.reply.<process>``) and a correlation id; the owner handles
  them, saves, acks and publishes the outcome. Queries (quotes, vehicles with live ETAs) are
  answered locally when this process owns the zone, else asked on ``dispatch.query.<zone>``.
  The owner records each command's outcome under its correlation id before replying. No
  answer in ``dispatch_reply_timeout_s``: the command may have been handled and only its
  reply lost, so its recorded outcome (a success or a refusal) is answered; without a record,
  what the zone's save shows (an owner that died between saving and recording: the saved ride
  of a booking or cancellation, a ride's status history for a vehicle event, a new vehicle).
  Otherwise a booking answers 202 ``pending`` (it stays queued and completes when an owner
  takes the zone over; the rider gets ``user.<id>.ride``), other calls 503 ``dispatch_busy``.
  Commands left in the stream of a removed zone (nobody serves it) are refused
  ``zone_removed``: by the owner right after the removal, and by the asker of one that came
  later (``ZoneWorker.refuse_removed``).

Redis keys (under ``redis_prefix``): ``dispatch.quote.<quote_id>`` (zone and request of a
quote, expiring), ``dispatch.pending`` (hash of bookings not yet handled),
``dispatch.outcome.<corr>`` (a command's outcome, expiring after :data:`OUTCOME_TTL_S`),
``dispatch.refused.<request_id>`` (a refused booking's outcome, expiring after
:data:`REFUSED_TTL_S`: a refusal leaves no ride in the database) and ``dispatch.vehicles``
(hash vehicle id -> zone id).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from app.dispatch.store import (
    catalog_zones,
    delete_zone,
    insert_zone,
    load_zone_state,
    ride_history,
    save_zones,
    saved_ride,
    saved_rides,
    take_zone_state,
    zone_instance,
)
from app.errors import ApiError
from dispatch.dispatcher import Dispatcher, DispatchError
from dispatch.request import RideRequest
from dispatch.rides import Rejection, RejectReason, Ride
from dispatch.scale_out import (
    GROUP,
    ZoneWorker,
    add_vehicle_message,
    book_message,
    book_quote_message,
    booking_refusal,
    cancel_message,
    handle,
    move_pickup_message,
    quotes_message,
    remove_zone_message,
    request_from_dict,
    restore_zone,
    ride_named,
    vehicle_event_message,
    zone_name,
    zone_stream,
)
from dispatch.vehicle import Vehicle
from dispatch.zone import ServiceZone

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = structlog.get_logger("tsunagu.dispatch.gateway")
ZoneHook = Callable[[str], Awaitable[None]]
#: Published by a process that released its zones on a clean stop.
RELEASED_TOPIC = "dispatch.released"

#: How long a refused booking's outcome is kept (GET /rides/{id} answers it to its rider).
REFUSED_TTL_S = 600.0
#: How long the outcome of a command is kept under its correlation id, for an asker whose
#: reply was lost. The asker reads it once, right after its reply timeout, so a short life is
#: enough; every command (vehicle positions included) leaves one, so it must stay short.
OUTCOME_TTL_S = 120.0
#: Seconds between passes over the pending bookings (:meth:`ClusterGateway.sweep_pending`).
PENDING_SWEEP_S = 5.0
#: A pending booking handled (its zone's stream drained) with no outcome after this long had
#: its outcome lost in an outage (:meth:`ClusterGateway.sweep_pending`).
PENDING_LOST_AFTER_S = 15.0
#: How long a rider's cancellation of a booked ride waits for the zone owner's answer (200
#: with the cancelled ride, or 409) before it is answered 202 ``cancelling``: it is in the
#: zone's durable stream by then, and the owner applies it in its turn (the rider is told on
#: ``user.<id>.ride``). Under load the owner's queue holds seconds of bookings; a cancellation
#: must not wait them out and then answer 503 (issue #10).
CANCEL_WAIT_S = 1.0
#: Ride statuses no cancellation can change (answered 409 without asking the owner).
FINAL_STATUSES = ("cancelled", "completed", "no_show", "rejected")
#: The ride status a vehicle event leaves in the ride's history (at the event's time).
EVENT_STATUS = {"boarded": "onboard", "alighted": "completed", "no_show": "no_show"}

BUSY_MESSAGE = (
    "no dispatcher process answered for this zone in time (it is being taken over); "
    "the command is queued and completes when a process owns the zone"
)


# --- answers ------------------------------------------------------------------------------------
def rejection_error(r: Rejection) -> ApiError:
    """The HTTP error of a refused quote or booking (409, 404 quote_unknown, 422 invalid)."""
    return _rejected(r.reason.value, r.message, r.new_quote.to_dict() if r.new_quote else None)


def _rejected(reason: str, message: str, new_quote: dict[str, Any] | None) -> ApiError:
    status = {
        RejectReason.INVALID_REQUEST.value: 422,
        RejectReason.QUOTE_UNKNOWN.value: 404,
    }.get(reason, 409)
    details: dict[str, Any] = {"reason": reason}
    if new_quote is not None:
        details["new_quote"] = new_quote
    return ApiError(status, reason, message, details)


def dispatch_error(code: str, message: str) -> ApiError:
    """``unknown_*`` -> 404, a failure of the zone's owner -> 500, any other refusal -> 409
    (the code is the dispatcher's)."""
    if code == "internal_error":
        return ApiError(500, code, message)
    return ApiError(404 if code.startswith("unknown") else 409, code, message)


def busy() -> ApiError:
    return ApiError(503, "dispatch_busy", BUSY_MESSAGE)


def vehicle_view(d: Dispatcher, v: Vehicle) -> dict[str, Any]:
    """A vehicle with its plan and live ETAs (the ``/fleet/vehicles`` shape)."""
    times = d.schedule(v, d.clock())
    return {
        "vehicle_id": v.vehicle_id,
        "zone_id": v.zone_id,
        "vehicle_type": v.vtype.name,
        "seats": v.vtype.seats,
        "wheelchair_spaces": v.vtype.wheelchair_spaces,
        "position": list(v.position),
        "depot": list(v.depot),
        "shift": [v.shift_start, v.shift_end],
        "in_service": v.in_service,
        "planned_shift_end": v.shift_end if v.in_service else v.off_duty_shift_end,
        "onboard": sorted(v.onboard),
        "plan": [
            {
                "ride_id": s.ride_id,
                "kind": s.kind.value,
                "lat": s.lat,
                "lon": s.lon,
                "window": [s.earliest, s.latest],
                "eta": float(b),
            }
            for s, b in zip(v.plan, times, strict=True)
        ],
    }


class Booked:
    """A booking's answer: 201 with the ride, or 202 with the pending record."""

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        self.status_code = status_code
        self.body = body


class VehicleEvents(Protocol):
    """``vehicle_event`` of both gateways (they subclass this): the message the zone's owner
    handles (``handle``), given to the gateway's ``_vehicle_event``."""

    async def _vehicle_event(self, msg: dict[str, Any]) -> dict[str, Any]: ...

    async def vehicle_event(
        self,
        vehicle_id: str,
        kind: str,
        t: float,
        lat: float | None = None,
        lon: float | None = None,
        ride_id: str | None = None,
    ) -> dict[str, Any]:
        """Apply a vehicle's event; its view (plan, live ETAs) after it."""
        return await self._vehicle_event(
            vehicle_event_message(vehicle_id, kind, t, lat, lon, ride_id)
        )


class DispatchGateway(VehicleEvents, Protocol):
    """What the API routes ask of the on-demand dispatcher (see the module docstring)."""

    dispatcher: Dispatcher

    def now(self) -> float: ...

    async def quote(self, request: RideRequest) -> dict[str, Any]: ...

    async def quotes(self, requests: list[RideRequest]) -> list[dict[str, Any] | ApiError]:
        """:meth:`quote` of each request, in order: a quote, or the error it would raise
        (scaled out: one round trip per zone owner for them all)."""
        ...

    async def book_quote(self, quote_id: str, user_id: str) -> Booked: ...

    async def book_request(self, request: RideRequest) -> Booked: ...

    async def ride(self, ride_id: str) -> tuple[str, dict[str, Any]] | None:
        """``(user_id, ride)`` of a booked or pending ride, or None."""
        ...

    async def rides_of(self, user_id: str) -> list[dict[str, Any]]: ...

    async def cancel(self, ride_id: str) -> dict[str, Any]: ...

    async def move_pickup(self, ride_id: str, earliest_pickup: float) -> dict[str, Any]:
        """Move a booked ride's pick-up to no earlier than ``earliest_pickup`` (unix s); its
        ride as it now is, or ApiError (409 with the reason) when no vehicle can."""
        ...

    async def zones(self) -> list[ServiceZone]: ...

    async def add_zone(self, zone: ServiceZone) -> None: ...

    async def vehicles(self, zone_id: str | None) -> list[dict[str, Any]]: ...

    async def vehicle(self, vehicle_id: str) -> dict[str, Any]: ...

    async def add_vehicle(self, vehicle: Vehicle) -> dict[str, Any]: ...

    async def live_rides(self) -> list[dict[str, Any]]: ...

    async def zone_of_vehicle(self, vehicle_id: str) -> str: ...

    async def command(
        self, zone_id: str, msg: dict[str, Any], action_id: str | None = None
    ) -> dict[str, Any]:
        """A console command's outcome (``rejected`` / ``error`` keys included). ``action_id``
        (the request's ``Idempotency-Key``): a retry of the same command is answered the
        first attempt's outcome, never applied twice."""
        ...


def _merge_rides(*groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rides by id, the first group winning (live > saved > pending), newest first."""
    out: dict[str, dict[str, Any]] = {}
    for group in groups:
        for r in group:
            out.setdefault(r["ride_id"], r)
    return sorted(out.values(), key=lambda r: r["booked_at"], reverse=True)


# --- one process ----------------------------------------------------------------------------------
async def persist(services: Any, zone_ids: list[str] | None = None) -> None:
    """Save the dispatcher's zones (``zone_ids``, or all) and rides; a failed save is logged
    (the next one retries) and never fails the caller's request.

    In cluster mode (``services.dispatch`` is an ``app.dispatch.gateway.ClusterGateway``) only
    the zones this process owns are saved, under their leases: another process's rows are
    never overwritten nor deleted.
    """
    worker = getattr(getattr(services, "dispatch", None), "worker", None)
    if worker is not None:
        await worker.save_owned()
        return
    d = getattr(services, "dispatcher", None)
    engine = getattr(services, "engine", None)
    if d is None or engine is None:
        return
    try:
        await asyncio.to_thread(save_zones, engine, d, zone_ids)
    except Exception as exc:
        log.warning("dispatch_save_failed", zones=zone_ids, error=repr(exc))


class LocalGateway(VehicleEvents):
    """Direct calls on this process's dispatcher, saved after each change (no Redis)."""

    def __init__(self, services: Any, dispatcher: Dispatcher) -> None:
        self.services = services
        self.dispatcher = dispatcher

    def now(self) -> float:
        return float(self.dispatcher.clock())

    async def quote(self, request: RideRequest) -> dict[str, Any]:
        q = await asyncio.to_thread(self.dispatcher.quote, request)
        if isinstance(q, Rejection):
            raise rejection_error(q)
        return q.to_dict()

    async def quotes(self, requests: list[RideRequest]) -> list[dict[str, Any] | ApiError]:
        out: list[dict[str, Any] | ApiError] = []
        for r in requests:
            try:
                out.append(await self.quote(r))
            except ApiError as exc:
                out.append(exc)
        return out

    async def _booked(self, res: Ride | Rejection) -> Booked:
        if isinstance(res, Rejection):
            raise rejection_error(res)
        await persist(self.services, [res.zone_id])  # the booking survives a restart
        return Booked(201, res.to_dict())

    async def book_quote(self, quote_id: str, user_id: str) -> Booked:
        return await self._booked(await asyncio.to_thread(self.dispatcher.book, quote_id, user_id))

    async def book_request(self, request: RideRequest) -> Booked:
        d = self.dispatcher
        return await self._booked(await asyncio.to_thread(d.request_ride, request, request.user_id))

    async def ride(self, ride_id: str) -> tuple[str, dict[str, Any]] | None:
        r = self.dispatcher.ride(ride_id)
        return None if r is None else (r.user_id, r.to_dict())

    async def rides_of(self, user_id: str) -> list[dict[str, Any]]:
        live = [r.to_dict() for r in self.dispatcher.rides(user_id)]
        saved: list[dict[str, Any]] = []
        engine = getattr(self.services, "engine", None)
        if engine is not None:
            saved = await asyncio.to_thread(ride_history, engine, user_id)
        return _merge_rides(live, saved)

    async def cancel(self, ride_id: str) -> dict[str, Any]:
        try:
            ride = await asyncio.to_thread(self.dispatcher.cancel, ride_id)
        except DispatchError as exc:
            raise ApiError(409, exc.code, exc.message) from exc
        await persist(self.services, [ride.zone_id])
        return ride.to_dict()

    async def move_pickup(self, ride_id: str, earliest_pickup: float) -> dict[str, Any]:
        try:
            res = await asyncio.to_thread(self.dispatcher.move_pickup, ride_id, earliest_pickup)
        except DispatchError as exc:
            raise ApiError(
                404 if exc.code == "unknown_ride" else 409, exc.code, exc.message
            ) from exc
        if isinstance(res, Rejection):
            raise rejection_error(res)
        await persist(self.services, [res.zone_id])
        return res.to_dict()

    async def zones(self) -> list[ServiceZone]:
        return self.dispatcher.zones()

    async def add_zone(self, zone: ServiceZone) -> None:
        try:
            self.dispatcher.add_zone(zone)
        except DispatchError as exc:
            raise dispatch_error(exc.code, exc.message) from exc
        await persist(self.services, [zone.zone_id])

    async def vehicles(self, zone_id: str | None) -> list[dict[str, Any]]:
        d = self.dispatcher
        try:
            return [vehicle_view(d, v) for v in d.vehicles(zone_id)]
        except DispatchError as exc:
            raise dispatch_error(exc.code, exc.message) from exc

    async def vehicle(self, vehicle_id: str) -> dict[str, Any]:
        try:
            return vehicle_view(self.dispatcher, self.dispatcher.vehicle(vehicle_id))
        except DispatchError as exc:
            raise dispatch_error(exc.code, exc.message) from exc

    async def add_vehicle(self, vehicle: Vehicle) -> dict[str, Any]:
        try:
            self.dispatcher.add_vehicle(vehicle)
        except DispatchError as exc:
            raise dispatch_error(exc.code, exc.message) from exc
        await persist(self.services, [vehicle.zone_id])
        return vehicle_view(self.dispatcher, vehicle)

    async def _vehicle_event(self, msg: dict[str, Any]) -> dict[str, Any]:
        d = self.dispatcher
        out = await asyncio.to_thread(handle, d, msg)  # the owner's code path in cluster mode
        if "error" in out:
            raise dispatch_error(str(out["error"]), str(out.get("message", "")))
        v = d.vehicle(str(msg["vehicle_id"]))
        if msg["type"] != "position":  # positions are saved periodically; statuses at once
            await persist(self.services, [v.zone_id])
        return vehicle_view(d, v)

    # --- a dispatcher's console (app.api.dispatcher) -------------------------------------------
    async def live_rides(self) -> list[dict[str, Any]]:
        """Every ride the dispatcher holds, as ``Ride.to_dict`` with its ``user_id``."""
        return [{**r.to_dict(), "user_id": r.user_id} for r in self.dispatcher.rides()]

    async def zone_of_vehicle(self, vehicle_id: str) -> str:
        try:
            return self.dispatcher.vehicle(vehicle_id).zone_id
        except DispatchError as exc:
            raise dispatch_error(exc.code, exc.message) from exc

    async def command(
        self, zone_id: str, msg: dict[str, Any], action_id: str | None = None
    ) -> dict[str, Any]:
        """Apply a console command (``dispatch.scale_out.CONSOLE_OPS``, ``cancel``) through
        the zone owner's code path; its outcome (``rejected`` / ``error`` keys included).
        In one process nothing is lost between the owner and the asker: a retry under the
        same ``Idempotency-Key`` is answered by the idempotency layer (``app.idempotency``)."""
        out = await asyncio.to_thread(handle, self.dispatcher, msg)
        if "error" not in out and "rejected" not in out:
            await persist(self.services, [zone_id])
        return out


# --- several processes ------------------------------------------------------------------------------
class DbZoneStore:
    """Zone states in ``dispatch_zone_states`` (+ ``dispatch_rides``), one transaction a save,
    fenced: loading a zone (taking it over) bumps its epoch, and a save by an owner whose epoch
    is no longer the row's fails (``StaleZoneError``) instead of overwriting its successor."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.epochs: dict[str, int] = {}
        # Saves in threads of their own, not queued in asyncio's default pool (6 threads on 2
        # cores) behind the process's quotes and look-ups: a zone's commands wait for them.
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="zone-saves")

    async def load(self, zone_id: str) -> str | None:
        epoch, state = await asyncio.to_thread(take_zone_state, self.engine, zone_id)
        self.epochs[zone_id] = epoch
        return state

    async def save(self, d: Dispatcher, zone_id: str) -> None:
        # Finished rides leave the owner's live state once saved (DbRideHistory has them).
        epochs = {zone_id: self.epochs.get(zone_id, -1)}
        save = functools.partial(save_zones, self.engine, d, [zone_id], epochs, drop_finished=True)
        await asyncio.get_running_loop().run_in_executor(self._pool, save)

    async def delete(self, zone_id: str, instance: str | None) -> bool:
        epoch = self.epochs.get(zone_id, -1)
        return await asyncio.to_thread(delete_zone, self.engine, zone_id, epoch, instance)


class DbRideHistory:
    """The zone owner's :class:`dispatch.scale_out.RideHistory`: ``dispatch_rides``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def rides(self, ride_ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        return await asyncio.to_thread(saved_rides, self.engine, ride_ids)


class DbCatalog:
    """The zone catalog: every row of ``dispatch_zone_states`` but ``skip`` (definitions are
    parsed once per process; a re-read fetches only the ids and the new rows)."""

    def __init__(self, engine: Engine, skip: frozenset[str] = frozenset()) -> None:
        self.engine = engine
        self.skip = skip
        self._zones: dict[str, ServiceZone] = {}

    async def zones(self) -> list[ServiceZone]:
        ids, new = await asyncio.to_thread(catalog_zones, self.engine, set(self._zones))
        # A zone gone from the table is forgotten: added again, its definition is read anew.
        self._zones = {i: z for i, z in self._zones.items() if i in ids}
        self._zones.update((z.zone_id, z) for z in new)
        return [self._zones[i] for i in ids if i in self._zones and i not in self.skip]


def new_process_id() -> str:
    """This process's consumer name and lease owner (unique across hosts and restarts)."""
    return f"p{os.getpid()}-{uuid.uuid4().hex[:8]}"


class ClusterGateway(VehicleEvents):
    """Zones shared by the processes behind one Redis and one database (module docstring).

    Parameters
    ----------
    services
        The process's services (``engine``, ``bus``, ``settings``).
    worker
        This process's :class:`ZoneWorker` (its dispatcher holds the owned zones).
    redis
        An asyncio Redis client (``decode_responses=True``) for quotes, pending bookings and
        the vehicle index.
    """

    def __init__(self, services: Any, worker: ZoneWorker, redis: Any) -> None:
        self.services = services
        self.worker = worker
        self.dispatcher = worker.dispatcher
        self.redis = redis
        self.bus = services.bus
        s = services.settings
        self.prefix: str = s.redis_prefix
        self.reply_timeout_s: float = s.dispatch_reply_timeout_s
        self.reply_topic = f"dispatch.reply.{worker.worker_id}"
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._answering: set[asyncio.Task[None]] = set()
        self._subs: list[Any] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.acquire_hooks: list[ZoneHook] = []
        self.release_hooks: list[ZoneHook] = []
        # The owner's quotes and reads in one thread of their own: in asyncio's default pool
        # (6 threads on 2 cores) a burst of flex quotes took the zone's lock between each
        # command of a batch and most of the CPU, so commands (cancellations) waited behind
        # them. One thread leaves the commands' threads (ZoneWorker) the priority.
        self._query_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zone-queries")

    async def add_zone_hooks(self, on_acquire: ZoneHook, on_release: ZoneHook) -> None:
        """Run ``on_acquire(zone_id)`` for every zone this process takes (now, for those it
        already owns) and ``on_release`` before it leaves one (the demo's driver loop)."""
        self.acquire_hooks.append(on_acquire)
        self.release_hooks.append(on_release)
        for zid in sorted(self.worker.owned):
            await on_acquire(zid)

    # --- keys --------------------------------------------------------------------------------
    def _key(self, name: str) -> str:
        return f"{self.prefix}dispatch.{name}"

    # --- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen for replies and queries, take the free zones, start the lease keeper."""
        replies = self.bus.subscribe([self.reply_topic])
        queries = self.bus.subscribe(["dispatch.query.*"])
        released = self.bus.subscribe([RELEASED_TOPIC])
        self._subs = [replies, queries, released]
        self._tasks = [
            asyncio.create_task(self._listen_replies(replies), name="dispatch-replies"),
            asyncio.create_task(self._listen_queries(queries), name="dispatch-queries"),
            asyncio.create_task(self._listen_released(released), name="dispatch-released"),
            asyncio.create_task(
                self._sweep_pending_forever(PENDING_SWEEP_S), name="dispatch-pending-sweep"
            ),
        ]
        self.loop = asyncio.get_running_loop()
        await self.worker.sync()
        self.worker.start()

    def sync_from_thread(self, timeout_s: float = 30.0) -> None:
        """:meth:`ZoneWorker.sync` from a worker thread (publishing a feed), waited for: the
        zones just added to the catalog have an owner when this returns."""
        if self.loop is None or self.loop.is_closed():
            return
        fut = asyncio.run_coroutine_threadsafe(self.worker.sync(), self.loop)
        try:
            fut.result(timeout_s)
        except Exception as exc:  # the keeper picks the zones up at its next pass anyway
            log.warning("dispatch_sync_failed", error=repr(exc))

    async def remove_zone(self, zone_id: str) -> str:
        """Ask the zone's owner to remove it from the catalog (a flex zone whose feed is no
        longer published): ``"removed"`` (or it was already gone), ``"kept"`` when the owner
        refuses (it has vehicles or rides) or nobody answers in time and the zone is still
        listed. This process forgets it at once; the others at their next catalog read."""
        exists, instance = await asyncio.to_thread(zone_instance, self.services.engine, zone_id)
        if exists:
            out = await self._ask(zone_id, remove_zone_message(instance), durable=True)
            # zone_removed: an earlier removal went first (another process's feed sync).
            if out is not None and out.get("error") not in (None, "zone_removed"):
                log.info("dispatch_zone_kept", zone=zone_id, reason=out["error"])
                return "kept"
            if out is None and zone_id in await self._catalog():
                return "kept"  # still queued: the owner removes it when it gets there
        await self.worker.sync()
        return "removed"

    def remove_zones_from_thread(self, zone_ids: list[str]) -> dict[str, str]:
        """:meth:`remove_zone` of each zone at once, from a worker thread (a feed sync), waited
        for; ``{zone_id: "removed" | "kept"}`` (kept: the loop is gone or failed)."""
        loop = self.loop
        # A loop that stopped (the process shutting down) would never run the removal.
        if loop is None or loop.is_closed() or not loop.is_running() or not zone_ids:
            return dict.fromkeys(zone_ids, "kept")

        async def remove_all() -> list[str]:
            return list(await asyncio.gather(*(self.remove_zone(z) for z in zone_ids)))

        try:
            fut = asyncio.run_coroutine_threadsafe(remove_all(), loop)
            # The owner's answer, plus a few database round trips and a keeper pass.
            return dict(zip(zone_ids, fut.result(self.reply_timeout_s + 10.0), strict=True))
        except Exception as exc:  # tried again at the next sync
            log.warning("dispatch_zone_removal_failed", zones=zone_ids, error=repr(exc))
            return dict.fromkeys(zone_ids, "kept")

    async def close(self, *, release: bool = True) -> None:
        """Stop the worker (saving and releasing its zones), the listeners and Redis; the
        other processes are told, so they take the zones over at once."""
        released = sorted(self.worker.owned)
        await self.worker.stop(release=release)
        if release and released:
            with contextlib.suppress(Exception):  # they take them at their next pass anyway
                await self.bus.publish(RELEASED_TOPIC, {"zones": released})
        for sub in self._subs:
            sub.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for fut in self._waiting.values():
            fut.cancel()
        self._query_pool.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    async def _listen_replies(self, sub: Any) -> None:
        async for event in sub:
            fut = self._waiting.pop(str(event.data.get("corr", "")), None)
            if fut is not None and not fut.done():
                fut.set_result(event.data.get("outcome") or {})

    async def _listen_released(self, sub: Any) -> None:
        async for _ in sub:
            self.worker.wake()

    async def _listen_queries(self, sub: Any) -> None:
        async for event in sub:
            data = event.data
            if self.worker.owns(str(data.get("zone_id"))) and data.get("reply_to"):
                # Held until done: the loop keeps only weak references to tasks.
                task = asyncio.create_task(self._answer_query(data))
                self._answering.add(task)
                task.add_done_callback(self._answered)

    def _answered(self, task: asyncio.Task[None]) -> None:
        self._answering.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("dispatch_query_reply_failed", error=repr(task.exception()))

    async def _answer_query(self, data: dict[str, Any]) -> None:
        try:
            out = await self._run_query(data)
        except Exception as exc:  # answer rather than leave the asker waiting
            log.warning("dispatch_query_failed", op=data.get("op"), error=repr(exc))
            out = {"error": "internal_error", "message": "the zone's owner failed to answer"}
        await self.bus.publish(str(data["reply_to"]), {"corr": data.get("corr"), "outcome": out})

    async def _run_query(self, data: dict[str, Any]) -> dict[str, Any]:
        """:meth:`_query_locally` in the queries' thread (``__init__``)."""
        run = functools.partial(self._query_locally, data)
        return await asyncio.get_running_loop().run_in_executor(self._query_pool, run)

    def _query_locally(self, data: dict[str, Any]) -> dict[str, Any]:
        """A read or a quote on the owned zone (in a worker thread)."""
        d = self.dispatcher
        op = data.get("op")
        try:
            if op == "vehicles":
                return {"vehicles": [vehicle_view(d, v) for v in d.vehicles(data["zone_id"])]}
            if op == "vehicle":
                return {"vehicle": vehicle_view(d, d.vehicle(str(data["vehicle_id"])))}
            if op == "rides":  # the console's request list
                zid = str(data["zone_id"])
                rides = [r for r in d.rides() if r.zone_id == zid]
                return {"rides": [{**r.to_dict(), "user_id": r.user_id} for r in rides]}
        except DispatchError as exc:
            return {"error": exc.code, "message": exc.message}
        return handle(d, data)

    async def on_outcome(self, zone_id: str, data: dict[str, Any], out: dict[str, Any]) -> None:
        """Owner side, after the ack of one command (a zone's removal, a refusal of a removed
        zone's command): :meth:`on_batch` of that command alone, acked already."""
        await self._record_outcomes(zone_id, [(None, data, out)])

    async def on_batch(
        self, zone_id: str, done: list[tuple[str, dict[str, Any], dict[str, Any]]]
    ) -> None:
        """Owner side, once a batch of commands is saved: ack them and record their outcomes
        in one transaction, then reply (``ZoneWorker``'s ``on_batch``)."""
        await self._record_outcomes(zone_id, list(done))

    def _final_outcome(
        self, data: dict[str, Any], out: dict[str, Any]
    ) -> tuple[dict[str, Any], str]:
        """What the asker is answered, and the rider to tell of a refusal (or ""): a booking
        the owner could not even try (a malformed message, its zone removed) becomes a
        refusal like any other, so its rider is told (the dispatcher told those it refused
        itself) and GET /rides/{id} says so; a vehicle command carries the vehicle's view."""
        op = data.get("op")
        refusal = booking_refusal(data, out)
        if refusal is not None:
            return refusal, str(refusal["user_id"])
        vehicle_ops = ("add_vehicle", "vehicle_event", "vehicle_service")
        if data.get("reply_to") and op in vehicle_ops and "error" not in out:
            d = self.dispatcher
            with contextlib.suppress(DispatchError):  # removed meanwhile: no view
                return {**out, "vehicle": vehicle_view(d, d.vehicle(out["vehicle_id"]))}, ""
        return out, ""

    async def _record_outcomes(
        self, zone_id: str, done: list[tuple[str | None, dict[str, Any], dict[str, Any]]]
    ) -> None:
        """Ack the commands (those with a message id) and record each outcome under its
        correlation id (the asker reads it when the reply is lost), a booking's refusal and
        the removal of its pending record, all in one transaction: seen together or not at
        all (Redis away in between would leave a booking pending for good; what a lost
        transaction leaves, sweep_pending resolves). Then index new vehicles, tell riders
        refused without the dispatcher's word, and reply."""
        finals = [(data, *self._final_outcome(data, out)) for _, data, out in done]
        ids = [mid for mid, _, _ in done if mid is not None]
        async with self.redis.pipeline(transaction=True) as pipe:
            if ids:
                pipe.xack(self.bus._key(zone_stream(zone_id)), GROUP, *ids)
            for data, out, _ in finals:
                corr, op = data.get("corr"), data.get("op")
                if corr:
                    key = self._key(f"outcome.{corr}")
                    pipe.set(key, json.dumps(out), px=int(OUTCOME_TTL_S * 1000))
                if data.get("console_key"):  # a console command's, for its retries
                    key = str(data["console_key"])
                    pipe.set(key, json.dumps(out), px=int(REFUSED_TTL_S * 1000))
                named = ride_named(data)
                if op in ("book", "book_quote") and named is not None:
                    rid = named[0]
                    if "rejected" in out:
                        key = self._key(f"refused.{rid}")
                        pipe.set(key, json.dumps(out), px=int(REFUSED_TTL_S * 1000))
                    pipe.hdel(self._key("pending"), rid)
                if op == "add_vehicle" and "error" not in out:
                    pipe.hset(self._key("vehicles"), out["vehicle_id"], zone_id)
                if op == "cancel":  # applied or refused: no longer "cancelling"
                    pipe.hdel(self._key("cancels"), str(data.get("ride_id", "")))
            await pipe.execute()
        # One after another: concurrent publishes exhaust the bus's connection pool under
        # load (measured: MaxConnectionsError), and a lost reply costs its asker a timeout.
        for data, out, tell in finals:
            try:
                if data.get("reply_to"):
                    reply = {"corr": data.get("corr"), "outcome": out}
                    await self.bus.publish(str(data["reply_to"]), reply)
                if tell:  # once GET /rides/{id} answers the refusal
                    event = {"type": "rejected", "request_id": out["request_id"]}
                    await self.bus.publish(
                        f"user.{tell}.ride", {**event, "reason": out["rejected"]}
                    )
                refused = out.get("error") not in (None, "unknown_ride")  # unknown: refused booking
                if data.get("op") == "cancel" and data.get("user_id") and refused:
                    # The rider may have been answered 202 cancelling: the ride goes on.
                    event = {"type": "cancel_refused", "ride_id": data.get("ride_id")}
                    await self.bus.publish(
                        f"user.{data['user_id']}.ride", {**event, "reason": out["error"]}
                    )
            except Exception as exc:  # the asker reads the recorded outcome instead
                log.warning("dispatch_reply_failed", zone=zone_id, error=repr(exc))

    # --- pending bookings a lost transaction left behind ------------------------------------
    def pending_stale_s(self) -> float:
        """A pending record older than this, its zone's stream drained and no outcome seen,
        was handled with its outcome lost: a handled command's outcome is written within
        milliseconds of its ack."""
        return PENDING_LOST_AFTER_S

    async def _stream_drained(self, zone_id: str) -> bool:
        """Whether every command ever queued for ``zone_id`` has been read and acked (no
        owner will ever handle a booking that is not handled by now)."""
        key = self.bus._key(zone_stream(zone_id))
        try:
            groups = await self.redis.xinfo_groups(key)
            info = await self.redis.xinfo_stream(key)
        except Exception:  # no such stream (never used): nothing queued
            return True
        for g in groups:
            if g.get("name") == GROUP:
                caught_up = g.get("last-delivered-id") == info.get("last-generated-id")
                return int(g.get("pending", 0)) == 0 and caught_up
        return False  # queued, never read by an owner: not drained

    async def sweep_pending(self) -> int:
        """Resolve stale pending records (module docstring): a booking whose ride is saved or
        whose refusal is recorded only loses its record; one that was handled (its zone's
        stream is drained) with neither is refused ``outcome_lost`` and its rider told, so no
        booking shows pending for good. The number of records resolved."""
        now = self.now()
        done = 0
        for rid, value in (await self.redis.hgetall(self._key("pending"))).items():
            rec = json.loads(value)
            ride = rec["ride"]
            age = now - float(ride.get("booked_at") or now)
            saved = await asyncio.to_thread(saved_ride, self.services.engine, str(rid))
            refused = await self.redis.exists(self._key(f"refused.{rid}"))
            if saved is None and not refused:
                if age < self.pending_stale_s() or not await self._stream_drained(
                    str(ride["zone_id"])
                ):
                    continue  # still queued: its owner will answer it
                user = str(rec.get("user_id", ""))
                out = {
                    "request_id": rid,
                    "rejected": "outcome_lost",
                    "message": "the booking's outcome was lost in an outage; please book again",
                    "new_quote": None,
                    "user_id": user,
                }
                key = self._key(f"refused.{rid}")
                await self.redis.set(key, json.dumps(out), px=int(REFUSED_TTL_S * 1000), nx=True)
                if user:
                    await self.bus.publish(
                        f"user.{user}.ride",
                        {"type": "rejected", "request_id": rid, "reason": "outcome_lost"},
                    )
                log.warning("dispatch_pending_refused", ride=rid, reason="outcome_lost")
            await self.redis.hdel(self._key("pending"), rid)
            done += 1
        return done

    async def sweep_cancels(self) -> int:
        """Remove the ``cancelling`` claims a lost outcome transaction (or a failed enqueue)
        left: older than :meth:`pending_stale_s` with their zone's stream drained, the
        cancellation was handled (or never queued) and the saved ride tells the truth. The
        number removed."""
        now = self.now()
        done = 0
        for rid, value in (await self.redis.hgetall(self._key("cancels"))).items():
            rec = json.loads(value)
            if now - float(rec.get("at") or now) < self.pending_stale_s():
                continue
            if not await self._stream_drained(str(rec.get("zone_id", ""))):
                continue  # still queued: its owner will record it
            await self.redis.hdel(self._key("cancels"), rid)
            log.warning("dispatch_cancel_claim_swept", ride=rid)
            done += 1
        return done

    async def _sweep_pending_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.sweep_pending()
                await self.sweep_cancels()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or the database away: the next pass retries
                log.warning("dispatch_pending_sweep_failed", error=repr(exc))

    async def on_acquire(self, zone_id: str) -> None:
        """Index the zone's vehicles (commands for them find the zone from any process), then
        the hooks."""
        vids = [v.vehicle_id for v in self.dispatcher.vehicles(zone_id)]
        if vids:
            await self.redis.hset(self._key("vehicles"), mapping=dict.fromkeys(vids, zone_id))
        for hook in self.acquire_hooks:
            await hook(zone_id)

    async def on_release(self, zone_id: str) -> None:
        for hook in self.release_hooks:
            await hook(zone_id)

    # --- asking the owner -----------------------------------------------------------------------
    async def _ask(
        self,
        zone_id: str,
        data: dict[str, Any],
        *,
        durable: bool,
        record: tuple[str, str, str] | None = None,
        wait: float | None = None,
        console_key: str | None = None,
    ) -> dict[str, Any] | None:
        """Send a command (durable stream) or a query (pub/sub) for ``zone_id``; the owner's
        outcome, or None after ``wait`` seconds (``dispatch_reply_timeout_s`` by default; 0:
        only queue the command). A command's outcome may have been recorded while its reply
        was lost: it is read then (:meth:`_recorded`). ``record`` (hash key, field, value) is
        written in one transaction with the command."""
        corr = uuid.uuid4().hex
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[corr] = fut
        msg = {**data, "zone_id": zone_id, "reply_to": self.reply_topic, "corr": corr}
        if console_key is not None:  # where the owner also records its outcome
            msg["console_key"] = console_key
        try:
            if durable and record is not None:
                await self.bus.enqueue_recorded(zone_stream(zone_id), msg, record)
            elif durable:
                await self.bus.enqueue(zone_stream(zone_id), msg)
            else:
                await self.bus.publish(f"dispatch.query.{zone_name(zone_id)}", msg)
            if wait == 0.0:
                return None  # queued; its outcome comes in the owner's turn
            return await asyncio.wait_for(fut, self.reply_timeout_s if wait is None else wait)
        except TimeoutError:
            pass
        finally:
            self._waiting.pop(corr, None)
        return await self._recorded(zone_id, corr) if durable else None

    async def _recorded(self, zone_id: str, corr: str) -> dict[str, Any] | None:
        """The outcome the owner recorded for the command ``corr`` (``on_outcome``), or None
        while it is not handled. A zone no longer in the catalog is served by nobody: the
        commands left in its stream are refused first (this one included)."""
        key = self._key(f"outcome.{corr}")
        raw = await self.redis.get(key)
        if raw is None:
            try:
                # The table, not this process's catalog: a zone it skips is not removed.
                exists, _ = await asyncio.to_thread(zone_instance, self.services.engine, zone_id)
                if not exists and await self.worker.refuse_removed(zone_id):
                    raw = await self.redis.get(key)
            except Exception as exc:  # the database away: the command stays queued
                log.warning("dispatch_refuse_removed_failed", zone=zone_id, error=repr(exc))
        return None if raw is None else dict(json.loads(raw))

    async def _query(self, zone_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """A read or a quote: locally when this process owns the zone, else from its owner."""
        if self.worker.owns(zone_id):
            return await self._run_query({**data, "zone_id": zone_id})
        out = await self._ask(zone_id, data, durable=False)
        if out is None:
            raise busy()
        if "error" in out:
            raise dispatch_error(str(out["error"]), str(out.get("message", "")))
        return out

    async def _catalog(self) -> dict[str, ServiceZone]:
        assert self.worker.catalog is not None
        return {z.zone_id: z for z in await self.worker.catalog.zones()}

    async def _zone_for(self, request: RideRequest) -> ServiceZone | None:
        """The zone serving ``request`` (the first by id holding both ends); the catalog is
        read again before answering "none" (a zone added elsewhere a moment ago)."""
        for zones in (self.worker.zones, await self._catalog()):
            for z in sorted(zones.values(), key=lambda z: z.zone_id):
                if z.contains(*request.origin) and z.contains(*request.destination):
                    return z
        return None

    def _refuse(self, request: RideRequest) -> ApiError:
        """Why no zone takes ``request``, in the dispatcher's own order of checks (invalid,
        same place, outside every zone): a dispatcher without zones answers it."""
        r = Dispatcher(
            self.dispatcher.travel, self.dispatcher.rules, speeds=self.dispatcher.speeds
        ).quote(request, self.now())
        assert isinstance(r, Rejection)
        return rejection_error(r)

    # --- outcomes of commands whose reply was lost --------------------------------------------
    # The owner records every outcome (``on_outcome``) before anything else shows it, so a
    # command without a recorded outcome was at most saved, by an owner that died before
    # recording it (it is handled again by the next owner): these find what the save shows.
    async def _booking_outcome(self, request_id: str, user_id: str) -> dict[str, Any] | None:
        """The saved ride of a booking (the ride id is the request id), None if not saved (a
        refusal saves nothing: it is recorded with the outcome)."""
        saved = await asyncio.to_thread(saved_ride, self.services.engine, request_id)
        if saved is not None and saved[0] == user_id:
            return {"ride": saved[1]}
        return None

    def _vehicle_outcome(self, zone_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """A vehicle command without a recorded outcome, looked up in the zone's saved state
        (in a worker thread): the vehicle's view (ETAs from now) when the state shows it
        done, else None. A status event is recognised by the entry it leaves in its ride's
        history (status at the event's time) or, for one that ended the ride (which then left
        the live state), by the ride's saved record; a new vehicle by its presence (its id was
        free when asked). Arrivals and positions leave no such trace: never recognised."""
        op, zone = data.get("op"), self.worker.zones.get(zone_id)
        if zone is None or (op == "vehicle_event" and data.get("type") not in EVENT_STATUS):
            return None
        text = load_zone_state(self.services.engine, zone_id)
        if text is None:
            return None
        scratch = self._scratch()
        restore_zone(scratch, zone, text)
        if op == "add_vehicle":
            vid = str(data["vehicle"]["vehicle_id"])
        elif op == "vehicle_event":
            vid = str(data["vehicle_id"])
            rid, t = str(data["ride_id"]), float(data["t"])
            ride = scratch.ride(rid)
            entry = (t, EVENT_STATUS[str(data["type"])])
            if ride is not None and entry not in ride.history:
                return None
            if ride is None and not self._ended_by(rid, entry):
                return None
        else:
            return None
        try:
            return {"vehicle_id": vid, "vehicle": vehicle_view(scratch, scratch.vehicle(vid))}
        except DispatchError:  # not (or no longer) in the saved state
            return None

    def _ended_by(self, ride_id: str, entry: tuple[float, str]) -> bool:
        """Whether the saved record of a ride no longer live shows the end ``entry`` (time,
        status) gave it: completed at its drop-off time, or a no-show (in a worker thread)."""
        saved = saved_ride(self.services.engine, ride_id)
        if saved is None or saved[1].get("status") != entry[1]:
            return False
        return entry[1] != "completed" or saved[1].get("dropped_off_at") == entry[0]

    def _scratch(self) -> Dispatcher:
        """An empty dispatcher to read saved zone states into, with this process's travel
        model, rules, clock and speed periods (so its ETAs match the owner's)."""
        d = self.dispatcher
        return Dispatcher(d.travel, d.rules, clock=d.clock, speeds=d.speeds)

    # --- rides ------------------------------------------------------------------------------------
    def now(self) -> float:
        return float(self.dispatcher.clock())

    async def quote(self, request: RideRequest) -> dict[str, Any]:
        (out,) = await self.quotes([request])
        if isinstance(out, ApiError):
            raise out
        return out

    async def quotes(self, requests: list[RideRequest]) -> list[dict[str, Any] | ApiError]:
        """Quotes of several rides (a flex plan's): one ``quotes`` query per zone, all zones
        at once, so a plan costs its zone's owner one round trip, not one per ride (issue
        #10); each answer is a quote or the error :meth:`quote` raises. Each quote's zone and
        request are kept (``dispatch.quote.<id>``) for booking it from any process."""
        # A request id now, so booking a quote is idempotent under redelivery.
        reqs = [replace(r, request_id=r.request_id or uuid.uuid4().hex) for r in requests]
        out: list[dict[str, Any] | ApiError | None] = [None] * len(reqs)
        by_zone: dict[str, list[int]] = {}
        for k, r in enumerate(reqs):
            zone = await self._zone_for(r)
            if zone is None:
                out[k] = self._refuse(r)
            else:
                by_zone.setdefault(zone.zone_id, []).append(k)

        async def ask(zone_id: str, ks: list[int]) -> None:
            try:
                got = await self._query(zone_id, quotes_message([reqs[k] for k in ks]))
            except ApiError as exc:  # no owner in time, or its failure: every ride of it
                for k in ks:
                    out[k] = exc
                return
            for k, a in zip(ks, got["answers"], strict=True):
                if "rejected" in a:
                    out[k] = _rejected(str(a["rejected"]), str(a.get("message", "")), None)
                elif "error" in a:
                    out[k] = dispatch_error(str(a["error"]), str(a.get("message", "")))
                else:
                    out[k] = dict(a["quote"])

        await asyncio.gather(*(ask(z, ks) for z, ks in by_zone.items()))
        quoted = [(reqs[k], q) for k, q in enumerate(out) if isinstance(q, dict)]
        if quoted:
            async with self.redis.pipeline(transaction=False) as pipe:
                for r, q in quoted:
                    # Kept past the quote's expiry: the owner re-checks a stale quote when
                    # it is booked.
                    ttl_s = max(float(q["expires_at"]) - self.now(), 0.0) + 600.0
                    record = {
                        "zone_id": q["zone_id"],
                        "request": asdict(r),
                        "pickup_window": q["pickup_window"],
                    }
                    key = self._key(f"quote.{q['quote_id']}")
                    pipe.set(key, json.dumps(record), px=int(ttl_s * 1000))
                await pipe.execute()
        return [q if q is not None else busy() for q in out]

    def _pending(
        self, zone_id: str, request: RideRequest, window: list[float] | None = None
    ) -> dict[str, Any]:
        """The booking's pending record (visible to GET /rides from any process until its
        owner handles it; written with the command by :meth:`_book`). Its pick-up window is
        the quote's, or the requested pick-up time (clients show the window of every ride)."""
        asked = request.earliest_pickup or request.requested_at
        ride = {
            "ride_id": request.request_id,
            "request_id": request.request_id,
            "status": "pending",
            "zone_id": zone_id,
            "vehicle_id": None,
            "origin": list(request.origin),
            "destination": list(request.destination),
            "seats": request.seats,
            "wheelchairs": request.wheelchairs,
            "pickup_window": window or [asked, asked],
            "latest_arrival": request.latest_arrival,
            "eta_pickup": None,
            "eta_dropoff": None,
            "booked_at": request.requested_at,
        }
        return ride

    async def _book(
        self, zone_id: str, msg: dict[str, Any], pending: dict[str, Any], user_id: str
    ) -> Booked:
        # The pending record goes with the command, in one transaction: a Redis outage at any
        # point leaves both or neither (never a booking shown pending that nobody will handle).
        value = json.dumps({"user_id": user_id, "ride": pending})
        record = (self._key("pending"), str(pending["request_id"]), value)
        out = await self._ask(zone_id, msg, durable=True, record=record)
        if out is None:
            out = await self._booking_outcome(str(pending["request_id"]), user_id)
        if out is None:
            return Booked(202, {"request_id": pending["request_id"], "status": "pending"})
        if "rejected" in out:
            raise _rejected(str(out["rejected"]), str(out.get("message", "")), out.get("new_quote"))
        if "error" in out:
            raise dispatch_error(str(out["error"]), str(out.get("message", "")))
        return Booked(201, out["ride"])

    async def book_quote(self, quote_id: str, user_id: str) -> Booked:
        raw = await self.redis.get(self._key(f"quote.{quote_id}"))
        if raw is None:  # never issued, expired long ago, or already booked
            raise rejection_error(
                Rejection(RejectReason.QUOTE_UNKNOWN, "unknown or already used quote")
            )
        rec = json.loads(raw)
        zid = str(rec["zone_id"])
        req = replace(request_from_dict(rec["request"]), user_id=user_id, requested_at=self.now())
        pending = self._pending(zid, req, rec.get("pickup_window"))
        msg = book_quote_message(quote_id, user_id, req.request_id)
        return await self._book(zid, msg, pending, user_id)

    async def book_request(self, request: RideRequest) -> Booked:
        request = replace(request, request_id=request.request_id or uuid.uuid4().hex)
        zone = await self._zone_for(request)
        if zone is None:
            raise self._refuse(request)
        pending = self._pending(zone.zone_id, request)
        return await self._book(zone.zone_id, book_message(request), pending, request.user_id)

    async def _pending_rides(self) -> list[tuple[str, dict[str, Any]]]:
        raw = await self.redis.hgetall(self._key("pending"))
        out = []
        for value in raw.values():
            rec = json.loads(value)
            out.append((str(rec["user_id"]), rec["ride"]))
        return out

    async def ride(self, ride_id: str) -> tuple[str, dict[str, Any]] | None:
        found = await self._ride(ride_id)
        live = found is not None and found[1]["status"] in ("pending", "assigned")
        if live and await self.redis.hexists(self._key("cancels"), ride_id):
            assert found is not None
            return found[0], {**found[1], "status": "cancelling"}
        return found

    async def _ride(self, ride_id: str) -> tuple[str, dict[str, Any]] | None:
        """A ride as its owner last saved it (or holds it live, here), a pending booking,
        or a refused one; without the cancellation queued for it (:meth:`ride`)."""
        live = self.dispatcher.ride(ride_id)
        if live is not None:
            return live.user_id, live.to_dict()
        saved = await asyncio.to_thread(saved_ride, self.services.engine, ride_id)
        if saved is not None:
            return saved
        raw = await self.redis.hget(self._key("pending"), ride_id)
        if raw is not None:
            rec = json.loads(raw)
            return str(rec["user_id"]), dict(rec["ride"])
        # A pending booking the owner refused: its outcome, for as long as it is kept.
        refused = await self.redis.get(self._key(f"refused.{ride_id}"))
        if refused is None:
            return None
        out = json.loads(refused)
        return str(out.get("user_id", "")), {
            "ride_id": ride_id,
            "request_id": ride_id,
            "status": "rejected",
            "reason": out.get("rejected"),
            "message": out.get("message", ""),
        }

    async def rides_of(self, user_id: str) -> list[dict[str, Any]]:
        live = [r.to_dict() for r in self.dispatcher.rides(user_id)]
        saved = await asyncio.to_thread(ride_history, self.services.engine, user_id)
        pending = [r for u, r in await self._pending_rides() if u == user_id]
        rides = _merge_rides(live, saved, pending)
        cancels = await self.redis.hkeys(self._key("cancels"))
        return [
            {**r, "status": "cancelling"}
            if r["ride_id"] in cancels and r["status"] in ("pending", "assigned")
            else r
            for r in rides
        ]

    @staticmethod
    def _refused_booking(ride: dict[str, Any]) -> ApiError:
        return ApiError(
            409,
            "not_cancellable",
            f"the booking was refused ({ride.get('reason')}): there is nothing to cancel",
            {"reason": ride.get("reason"), "message": ride.get("message", "")},
        )

    async def cancel(self, ride_id: str) -> dict[str, Any]:
        """Cancel a rider's ride: the cancelled ride (200), 409 when it can no longer be
        cancelled, or the ride with status ``cancelling`` (202) when its cancellation is queued
        in the zone's durable stream but not applied yet: at once for a booking still pending
        (it is ahead in the stream, so the cancellation is applied right after it), after
        :data:`CANCEL_WAIT_S` for a booked ride whose owner is busy. One cancellation per ride
        is queued (the ``dispatch.cancels`` hash, claimed first): a retry meanwhile answers
        202 again; the owner removes the claim when it records the outcome."""
        found = await self.ride(ride_id)
        if found is None:
            raise ApiError(404, "not_found", "no such ride")
        user_id, ride = found
        status = str(ride["status"])
        if status == "rejected":  # a pending booking the owner refused: no ride, no zone
            raise self._refused_booking(ride)
        if status == "cancelling":  # queued already: the same answer (idempotent)
            return ride
        if status in FINAL_STATUSES or status == "onboard":
            msg = f"a ride that is {status} cannot be cancelled"
            raise ApiError(409, "not_cancellable", msg)
        zid = str(ride["zone_id"])
        claim = json.dumps({"user_id": user_id, "zone_id": zid, "at": self.now()})
        if not await self.redis.hsetnx(self._key("cancels"), ride_id, claim):
            return {**ride, "status": "cancelling"}  # a concurrent retry queued it
        wait = 0.0 if status == "pending" else min(CANCEL_WAIT_S, self.reply_timeout_s)
        try:
            out = await self._ask(zid, cancel_message(ride_id, user_id), durable=True, wait=wait)
        except Exception:
            # Not queued (Redis away): nothing speaks for a cancellation that is not coming
            # (what an outage leaves, sweep_pending removes).
            with contextlib.suppress(Exception):
                await self.redis.hdel(self._key("cancels"), ride_id)
            raise
        if out is None:
            # Cancelled since it was read: by this command, its reply and record lost (the
            # owner died between its save and its record).
            saved = await asyncio.to_thread(saved_ride, self.services.engine, ride_id)
            if saved is not None and saved[1]["status"] == "cancelled":
                return dict(saved[1])
            return {**ride, "status": "cancelling"}
        if out.get("error") == "unknown_ride" and status == "pending":
            # The booking was refused while the cancellation was queued behind it.
            now = await self.ride(ride_id)
            if now is not None and now[1]["status"] == "rejected":
                raise self._refused_booking(now[1])
            raise ApiError(404, "not_found", "no such ride")
        if "error" in out:
            raise ApiError(409, str(out["error"]), str(out.get("message", "")))
        return dict(out["ride"])

    async def move_pickup(self, ride_id: str, earliest_pickup: float) -> dict[str, Any]:
        found = await self.ride(ride_id)
        if found is None or "zone_id" not in found[1]:
            raise ApiError(404, "unknown_ride", "no such ride")
        msg = move_pickup_message(ride_id, earliest_pickup)
        out = await self._ask(str(found[1]["zone_id"]), msg, durable=True)
        if out is None:
            raise busy()
        if "rejected" in out:
            raise _rejected(str(out["rejected"]), str(out.get("message", "")), None)
        if "error" in out:
            raise ApiError(409, str(out["error"]), str(out.get("message", "")))
        return dict(out["ride"])

    # --- fleet ------------------------------------------------------------------------------------
    async def zones(self) -> list[ServiceZone]:
        return list((await self._catalog()).values())

    async def add_zone(self, zone: ServiceZone) -> None:
        """Insert the catalog row, then take the zone here unless another process already
        did: some process owns it when this returns."""
        created = await asyncio.to_thread(insert_zone, self.services.engine, zone)
        if not created:
            raise dispatch_error("zone_exists", f"zone {zone.zone_id} already exists")
        await self.worker.sync()

    async def _zone_of_vehicle(self, vehicle_id: str) -> str:
        zid = await self.redis.hget(self._key("vehicles"), vehicle_id)
        if zid is None:
            raise dispatch_error("unknown_vehicle", f"no vehicle {vehicle_id!r}")
        return str(zid)

    async def vehicles(self, zone_id: str | None) -> list[dict[str, Any]]:
        catalog = await self._catalog()
        if zone_id is not None and zone_id not in catalog:
            raise dispatch_error("unknown_zone", f"no zone {zone_id!r}")
        ids = [zone_id] if zone_id is not None else sorted(catalog)
        answers = await asyncio.gather(*(self._query(z, {"op": "vehicles"}) for z in ids))
        return [v for a in answers for v in a["vehicles"]]

    async def vehicle(self, vehicle_id: str) -> dict[str, Any]:
        zid = await self._zone_of_vehicle(vehicle_id)
        out = await self._query(zid, {"op": "vehicle", "vehicle_id": vehicle_id})
        return dict(out["vehicle"])

    async def _command(self, zone_id: str, data: dict[str, Any]) -> dict[str, Any]:
        out = await self._ask(zone_id, data, durable=True)
        if out is None:
            out = await asyncio.to_thread(self._vehicle_outcome, zone_id, data)
        if out is None:
            raise busy()
        if "error" in out:
            raise dispatch_error(str(out["error"]), str(out.get("message", "")))
        return dict(out["vehicle"])

    async def add_vehicle(self, vehicle: Vehicle) -> dict[str, Any]:
        if vehicle.zone_id not in await self._catalog():
            raise dispatch_error("unknown_zone", f"no zone {vehicle.zone_id!r}")
        if await self.redis.hexists(self._key("vehicles"), vehicle.vehicle_id):
            raise dispatch_error("vehicle_exists", f"vehicle {vehicle.vehicle_id} exists")
        return await self._command(vehicle.zone_id, add_vehicle_message(vehicle))

    async def _vehicle_event(self, msg: dict[str, Any]) -> dict[str, Any]:
        zid = await self._zone_of_vehicle(str(msg["vehicle_id"]))
        return await self._command(zid, msg)

    # --- a dispatcher's console (app.api.dispatcher) -------------------------------------------
    async def live_rides(self) -> list[dict[str, Any]]:
        """Every live ride of every zone (each owner answers for its own), and the bookings
        queued while their zone changes owner (status ``pending``), with ``user_id``."""
        ids = sorted(await self._catalog())
        answers = await asyncio.gather(*(self._query(z, {"op": "rides"}) for z in ids))
        live = [r for a in answers for r in a["rides"]]
        known = {r["ride_id"] for r in live}
        pending = [
            {**r, "user_id": u} for u, r in await self._pending_rides() if r["ride_id"] not in known
        ]
        return live + pending

    async def zone_of_vehicle(self, vehicle_id: str) -> str:
        return await self._zone_of_vehicle(vehicle_id)

    async def command(
        self, zone_id: str, msg: dict[str, Any], action_id: str | None = None
    ) -> dict[str, Any]:
        """A console command queued for the zone's owner; its outcome. The owner records it
        under the command's correlation id and, given an ``action_id`` (the request's
        ``Idempotency-Key``), under ``dispatch.console.<action>`` for :data:`REFUSED_TTL_S`
        (``action``: the key and the command's fingerprint). A reply lost: the recorded
        outcome, else what the zone's save shows (:meth:`_console_outcome`: an owner that
        died between its save and its record). A retry with the same key is answered the
        first attempt's outcome (waiting for it while it is queued), never applied twice.
        503 ``dispatch_busy`` only while nothing shows the command handled (it stays queued
        and is applied in the owner's turn; a retry with the key then answers its outcome)."""
        key = self._console_key(msg, action_id) if action_id else None
        if key is not None and not await self.redis.set(
            key, json.dumps(None), nx=True, px=int(REFUSED_TTL_S * 1000)
        ):
            # Asked before under this key: its outcome, or wait for it (queued still).
            out = await self._console_recorded(key, self.reply_timeout_s)
            if out is None:
                raise busy()
            return out
        try:
            out = await self._ask(zone_id, msg, durable=True, console_key=key)
        except Exception:
            if key is not None:  # not queued: a retry may send it again
                with contextlib.suppress(Exception):
                    await self.redis.delete(key)
            raise
        if out is None and key is not None:
            out = await self._console_recorded(key, 0.0)
        if out is None:
            out = await asyncio.to_thread(self._console_outcome, zone_id, msg)
        if out is None:
            raise busy()
        return out

    def _console_key(self, msg: dict[str, Any], action_id: str) -> str:
        """Where the outcome of the console command ``msg`` sent under ``action_id`` is
        recorded: the same key and another command (a reused key) are another action."""
        text = json.dumps([action_id, msg], sort_keys=True, default=str)
        return self._key(f"console.{hashlib.sha256(text.encode()).hexdigest()[:32]}")

    async def _console_recorded(self, key: str, wait_s: float) -> dict[str, Any] | None:
        """The outcome recorded under ``key`` (null while the command is queued), polled
        for up to ``wait_s``."""
        end = asyncio.get_running_loop().time() + wait_s
        while True:
            raw = await self.redis.get(key)
            out = json.loads(raw) if raw is not None else None
            if out is not None or asyncio.get_running_loop().time() >= end:
                return dict(out) if out is not None else None
            await asyncio.sleep(0.1)

    def _console_outcome(self, zone_id: str, msg: dict[str, Any]) -> dict[str, Any] | None:
        """A console command without a recorded outcome, looked up in what the zone's owner
        saved (in a worker thread): a ride reassigned to the vehicle asked for, marked a
        no-show or cancelled; a vehicle whose service state is the one asked for (its view;
        which rides moved is not saved: none listed). None when the save does not show it."""
        op = msg.get("op")
        if op in ("reassign", "mark_no_show", "cancel"):
            saved = saved_ride(self.services.engine, str(msg["ride_id"]))
            if saved is None:
                return None
            ride = saved[1]
            done = {
                "reassign": ride.get("status") == "assigned"
                and ride.get("vehicle_id") == msg.get("vehicle_id"),
                "mark_no_show": ride.get("status") == "no_show",
                "cancel": ride.get("status") == "cancelled",
            }[str(op)]
            return (
                {"ride_id": ride["ride_id"], "status": ride["status"], "ride": ride}
                if done
                else None
            )
        if op != "vehicle_service":
            return None
        zone = self.worker.zones.get(zone_id)
        text = load_zone_state(self.services.engine, zone_id) if zone is not None else None
        if zone is None or text is None:
            return None
        scratch = self._scratch()
        restore_zone(scratch, zone, text)
        vid = str(msg["vehicle_id"])
        try:
            v = scratch.vehicle(vid)
        except DispatchError:
            return None
        if v.in_service != (msg.get("action") == "in_service"):
            return None
        return {
            "vehicle_id": vid,
            "moved": {},
            "cancelled": [],
            "vehicle": vehicle_view(scratch, v),
        }

    # --- the whole fleet for the GTFS-RT export ---------------------------------------------------
    def others_dispatcher(self) -> Dispatcher:
        """A scratch dispatcher with the zones other processes own, restored from their last
        saved state (synchronous: call in a thread)."""
        scratch = self._scratch()
        owned = set(self.worker.owned)
        for zid, zone in sorted(self.worker.zones.items()):
            if zid in owned:
                continue
            try:
                restore_zone(scratch, zone, load_zone_state(self.services.engine, zid))
            except Exception as exc:  # a bad snapshot must not empty the whole feed
                log.warning("fleet_zone_unreadable", zone=zid, error=repr(exc))
        return scratch


async def start_cluster(
    services: Any, make_dispatcher: Callable[[], Dispatcher], skip: frozenset[str]
) -> ClusterGateway:
    """Build and start this process's :class:`ClusterGateway` (``settings.redis_url`` set):
    its dispatcher holds only the zones it owns; zones in ``skip`` are never served."""
    import redis
    import redis.asyncio as aioredis

    from app.dispatch.leases import RedisLeaseStore

    s = services.settings
    client = aioredis.Redis.from_url(s.redis_url, decode_responses=True)
    ttl_ms = int(s.dispatch_lease_ttl_s * 1000)
    # The lease keeper thread's own blocking connection: renewals never wait for the event
    # loop, which /plan work can starve for longer than a lease lives (#10). Its timeout keeps
    # a Redis outage from holding the thread past the next renewal.
    renew_client = redis.Redis.from_url(
        s.redis_url,
        decode_responses=True,
        socket_timeout=max(0.5, s.dispatch_lease_ttl_s / 3),
        socket_connect_timeout=max(0.5, s.dispatch_lease_ttl_s / 3),
    )
    gateway: ClusterGateway | None = None

    async def on_outcome(zid: str, data: dict[str, Any], out: dict[str, Any]) -> None:
        assert gateway is not None
        await gateway.on_outcome(zid, data, out)

    async def on_batch(zid: str, done: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
        assert gateway is not None
        await gateway.on_batch(zid, done)

    async def on_acquire(zid: str) -> None:
        assert gateway is not None
        await gateway.on_acquire(zid)

    async def on_release(zid: str) -> None:
        assert gateway is not None
        await gateway.on_release(zid)

    worker = ZoneWorker(
        new_process_id(),
        [],
        make_dispatcher,
        services.bus,
        RedisLeaseStore(client, s.redis_prefix, sync_client=renew_client),
        lease_ttl_ms=ttl_ms,
        # A dead owner's batch is reclaimable once its lease has expired.
        reclaim_idle_ms=ttl_ms,
        zone_store=DbZoneStore(services.engine),
        catalog=DbCatalog(services.engine, skip),
        catalog_interval_s=s.dispatch_catalog_interval_s,
        block_ms=1000,
        snapshot_interval_s=s.dispatch_persist_interval_s,
        on_acquire=on_acquire,
        on_release=on_release,
        on_outcome=on_outcome,
        on_batch=on_batch,
        history=DbRideHistory(services.engine),
    )
    gateway = ClusterGateway(services, worker, client)
    await gateway.start()
    log.info("dispatch_cluster_started", process=worker.worker_id, zones=sorted(worker.owned))
    return gateway

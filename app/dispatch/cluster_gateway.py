"""The API side of a scaled-out city: :class:`ClusterGateway` sends commands and waits for them.

Several processes share the zones behind one Redis and one database; each zone is owned by
exactly one process at a time (a Redis lease, ``dispatch.scale_out.ZoneWorker``) and the zone
catalog is the ``dispatch_zone_states`` table. A command flows one way and its answer back:

1. an API route calls :class:`ClusterGateway` (book, cancel, vehicle events, new vehicles,
   console actions), which builds the message (``dispatch.scale_out``'s ``*_message``) and
   sends it to the zone's durable stream ``dispatch.zone.<zone>`` with a ``reply_to`` topic
   (``dispatch.reply.<process>``) and a correlation id (:meth:`ClusterGateway._ask`);
2. the zone's owner (``ZoneWorker`` in whichever process holds the lease) applies it and
   saves the zone, then :mod:`app.dispatch.zone_owner` acks it, records its outcome under the
   correlation id (:mod:`app.dispatch.cluster_records`) and publishes the reply;
3. the reply wakes the waiting route here. With no answer in ``dispatch_reply_timeout_s``
   the command may have been handled and only its reply lost, so its recorded outcome (a
   success or a refusal) is answered; without a record, what the zone's save shows
   (:mod:`app.dispatch.saved_outcomes`: an owner that died between saving and recording).
   Otherwise a booking answers 202 ``pending`` (it stays queued and completes when an owner
   takes the zone over; the rider gets ``user.<id>.ride``), other calls 503
   ``dispatch_busy``. Commands left in the stream of a removed zone (nobody serves it) are
   refused ``zone_removed``: by the owner right after the removal, and by the asker of one
   that came later (``ZoneWorker.refuse_removed``).

Queries (quotes, vehicles with live ETAs) go the same way on ``dispatch.query.<zone>``
(pub/sub, not kept), or straight to this process's :class:`~app.dispatch.zone_owner.ZoneOwner`
when it owns the zone. What an outage leaves between a command and its record,
:mod:`app.dispatch.pending_sweep` resolves. :func:`start_cluster` wires one process: its
worker, its owner side and this gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

import structlog

from app.dispatch.cluster_records import REFUSED_TTL_S, RecordKeys
from app.dispatch.db_adapters import DbCatalog, DbRideHistory, DbZoneStore
from app.dispatch.gateway import (
    Booked,
    VehicleEvents,
    _rejected,
    busy,
    dispatch_error,
    merge_rides,
    rejection_error,
)
from app.dispatch.pending_sweep import PENDING_SWEEP_S, PendingSweeper
from app.dispatch.saved_outcomes import (
    SavedZone,
    booking_outcome,
    console_outcome,
    vehicle_outcome,
)
from app.dispatch.store import (
    insert_zone,
    load_zone_state,
    ride_history,
    saved_ride,
    zone_instance,
)
from app.dispatch.zone_owner import ZoneHook, ZoneOwner
from app.errors import ApiError
from dispatch.dispatcher import Dispatcher
from dispatch.request import RideRequest
from dispatch.rides import Rejection, RejectReason
from dispatch.scale_out import (
    ZoneWorker,
    add_vehicle_message,
    book_message,
    book_quote_message,
    cancel_message,
    move_pickup_message,
    quotes_message,
    remove_zone_message,
    request_from_dict,
    restore_zone,
    zone_name,
    zone_stream,
)
from dispatch.vehicle import Vehicle
from dispatch.zone import ServiceZone

log = structlog.get_logger("tsunagu.dispatch.gateway")
#: Published by a process that released its zones on a clean stop.
RELEASED_TOPIC = "dispatch.released"
#: How long a rider's cancellation of a booked ride waits for the zone owner's answer (200
#: with the cancelled ride, or 409) before it is answered 202 ``cancelling``: it is in the
#: zone's durable stream by then, and the owner applies it in its turn (the rider is told on
#: ``user.<id>.ride``). Under load the owner's queue holds seconds of bookings; a cancellation
#: must not wait them out and then answer 503 (issue #10).
CANCEL_WAIT_S = 1.0
#: Ride statuses no cancellation can change (answered 409 without asking the owner).
FINAL_STATUSES = ("cancelled", "completed", "no_show", "rejected")


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
        self._key = RecordKeys(self.prefix)
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._subs: list[Any] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        # This process's side as an owner: it answers the queries of the zones it owns, also
        # this gateway's own (:meth:`_query`), and records outcomes (:func:`start_cluster`).
        self.owner = ZoneOwner(worker, redis, self.bus, self.prefix)
        # Commands this process asks of the zones it owns are answered without Redis.
        self.owner.local_replies = (self.reply_topic, self._deliver)
        self.sweeper = PendingSweeper(redis, self.bus, services.engine, self.prefix, self.now)

    async def add_zone_hooks(self, on_acquire: ZoneHook, on_release: ZoneHook) -> None:
        """:meth:`ZoneOwner.add_zone_hooks <app.dispatch.zone_owner.ZoneOwner.add_zone_hooks>`
        (the demo's driver loop)."""
        await self.owner.add_zone_hooks(on_acquire, on_release)

    # --- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen for replies and (the owner side) queries, take the free zones, start the
        lease keeper and the pending sweep."""
        replies = self.bus.subscribe([self.reply_topic])
        released = self.bus.subscribe([RELEASED_TOPIC])
        self._subs = [replies, released]
        self.owner.start()
        self._tasks = [
            asyncio.create_task(self._listen_replies(replies), name="dispatch-replies"),
            asyncio.create_task(self._listen_released(released), name="dispatch-released"),
            asyncio.create_task(
                self.sweeper.run_forever(PENDING_SWEEP_S), name="dispatch-pending-sweep"
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
        await self.owner.close()
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    async def _listen_replies(self, sub: Any) -> None:
        async for event in sub:
            self._deliver(event.data)

    def _deliver(self, reply: dict[str, Any]) -> None:
        """Wake the route waiting for ``reply`` (``{"corr", "outcome"}``), if it still waits:
        from this process's reply topic, or from its own zone owner directly."""
        fut = self._waiting.pop(str(reply.get("corr", "")), None)
        if fut is not None and not fut.done():
            fut.set_result(reply.get("outcome") or {})

    async def _listen_released(self, sub: Any) -> None:
        async for _ in sub:
            self.worker.wake()

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
        """The outcome the owner recorded for the command ``corr`` (``ZoneOwner.on_batch``),
        or None while it is not handled. A zone no longer in the catalog is served by nobody:
        the commands left in its stream are refused first (this one included)."""
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
            return await self.owner.run_query({**data, "zone_id": zone_id})
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

    # --- outcomes of commands whose reply was lost (app.dispatch.saved_outcomes) -------------
    async def _booking_outcome(self, request_id: str, user_id: str) -> dict[str, Any] | None:
        """:func:`~app.dispatch.saved_outcomes.booking_outcome` in this process's database."""
        return await booking_outcome(self.services.engine, request_id, user_id)

    def _saved_zone(self, zone_id: str) -> SavedZone:
        """Where the save of ``zone_id`` (as this process's catalog defines it) is read."""
        zone = self.worker.zones.get(zone_id)
        return SavedZone(self.services.engine, zone_id, zone, self._scratch)

    def _vehicle_outcome(self, zone_id: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """:func:`~app.dispatch.saved_outcomes.vehicle_outcome` (in a worker thread)."""
        return vehicle_outcome(self._saved_zone(zone_id), data)

    def _console_outcome(self, zone_id: str, msg: dict[str, Any]) -> dict[str, Any] | None:
        """:func:`~app.dispatch.saved_outcomes.console_outcome` (in a worker thread)."""
        return console_outcome(self._saved_zone(zone_id), msg)

    def _scratch(self) -> Dispatcher:
        """An empty dispatcher to read saved zone states into, with this process's travel
        model, rules, clock and speed periods (so its ETAs match the owner's)."""
        d = self.dispatcher
        return Dispatcher(d.travel, d.rules, clock=d.clock, speeds=d.speeds)

    # --- what an outage left (app.dispatch.pending_sweep) ---------------------------------------
    async def sweep_pending(self) -> int:
        """:meth:`PendingSweeper.sweep_pending <app.dispatch.pending_sweep.PendingSweeper>`:
        the number of stale pending bookings resolved."""
        return await self.sweeper.sweep_pending()

    async def sweep_cancels(self) -> int:
        """:meth:`PendingSweeper.sweep_cancels <app.dispatch.pending_sweep.PendingSweeper>`:
        the number of stale cancellation claims removed."""
        return await self.sweeper.sweep_cancels()

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
        rides = merge_rides(live, saved, pending)
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

    async def cancel(
        self, ride_id: str, found: tuple[str, dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Cancel a rider's ride: the cancelled ride (200), 409 when it can no longer be
        cancelled, or the ride with status ``cancelling`` (202) when its cancellation is queued
        in the zone's durable stream but not applied yet: at once for a booking still pending
        (it is ahead in the stream, so the cancellation is applied right after it), after
        :data:`CANCEL_WAIT_S` for a booked ride whose owner is busy. One cancellation per ride
        is queued (the ``dispatch.cancels`` hash, claimed first): a retry meanwhile answers
        202 again; the owner removes the claim when it records the outcome. ``found``: the
        ride as the caller has just read it with :meth:`ride` (the route, checking that the
        caller may see it): not read a second time (a database or Redis round trip, #10)."""
        if found is None:
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
            # (what an outage leaves, the pending sweep removes).
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
        history=DbRideHistory(services.engine),
    )
    gateway = ClusterGateway(services, worker, client)
    # The worker applies and saves each batch; its owner side acks, records and replies.
    owner = gateway.owner
    worker.on_acquire, worker.on_release = owner.on_acquire, owner.on_release
    worker.on_outcome, worker.on_batch = owner.on_outcome, owner.on_batch
    await gateway.start()
    log.info("dispatch_cluster_started", process=worker.worker_id, zones=sorted(worker.owned))
    return gateway

"""The zone owner's side of a scaled-out city: recording outcomes, replying, answering queries.

A command flows API route -> :mod:`app.dispatch.cluster_gateway` (the asker) -> the zone's
durable stream -> ``dispatch.scale_out.ZoneWorker`` of the process holding the zone's lease
(it applies a batch with ``handle`` and saves the zone, :mod:`app.dispatch.db_adapters`) ->
:class:`ZoneOwner` (this module) -> the asker's ``reply_to`` topic. This module is the last
step: once a batch is saved, :meth:`ZoneOwner.on_batch` acks it and records every outcome
(:mod:`app.dispatch.cluster_records`) in one Redis transaction, then publishes the replies
(a reply to this process's own gateway is handed to it directly, ``local_replies``) and
tells riders of refusals. Queries (quotes, vehicles with live ETAs, the console's rides)
come on ``dispatch.query.<zone>`` (or straight from this process's gateway when it owns the
zone) and are answered by :meth:`ZoneOwner.run_query`, off the commands' threads.

Nothing here sends a command or waits for one: that is the asker's side.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from app.dispatch.cluster_records import OUTCOME_TTL_S, REFUSED_TTL_S, RecordKeys
from app.dispatch.gateway import vehicle_view
from dispatch.dispatcher import DispatchError
from dispatch.scale_out import GROUP, ZoneWorker, booking_refusal, handle, ride_named, zone_stream

log = structlog.get_logger("tsunagu.dispatch.gateway")
ZoneHook = Callable[[str], Awaitable[None]]
#: Where other processes ask the owner of ``<zone>`` (``dispatch.query.<zone>``).
QUERY_TOPICS = "dispatch.query.*"


class ZoneOwner:
    """What this process does for the zones it owns, once their commands are applied.

    Parameters
    ----------
    worker
        This process's :class:`~dispatch.scale_out.ZoneWorker` (its dispatcher holds the owned
        zones); its ``on_batch``, ``on_outcome``, ``on_acquire`` and ``on_release`` are this
        owner's methods of those names (:func:`app.dispatch.cluster_gateway.start_cluster`).
    redis
        An asyncio Redis client (``decode_responses=True``) for the outcome records.
    bus
        The app's event bus (replies, riders' events; ``bus._key`` names the streams).
    prefix
        The deployment's ``redis_prefix``.
    """

    def __init__(self, worker: ZoneWorker, redis: Any, bus: Any, prefix: str) -> None:
        self.worker = worker
        self.dispatcher = worker.dispatcher
        self.redis = redis
        self.bus = bus
        self._key = RecordKeys(prefix)
        self.acquire_hooks: list[ZoneHook] = []
        self.release_hooks: list[ZoneHook] = []
        self._answering: set[asyncio.Task[None]] = set()
        self._sub: Any = None
        self._listener: asyncio.Task[None] | None = None
        # The owner's quotes and reads in one thread of their own: in asyncio's default pool
        # (6 threads on 2 cores) a burst of flex quotes took the zone's lock between each
        # command of a batch and most of the CPU, so commands (cancellations) waited behind
        # them. One thread leaves the commands' threads (ZoneWorker) the priority.
        self._query_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zone-queries")
        #: ``(topic, deliver)``: replies to this process's own gateway (its ``reply_to``
        #: topic) are handed to ``deliver`` instead of going through Redis and back (#10).
        self.local_replies: tuple[str, Callable[[dict[str, Any]], None]] | None = None

    def start(self) -> None:
        """Answer the queries other processes send for the zones this one owns."""
        self._sub = self.bus.subscribe([QUERY_TOPICS])
        self._listener = asyncio.create_task(
            self._listen_queries(self._sub), name="dispatch-queries"
        )

    async def close(self) -> None:
        """Stop answering queries (the worker has stopped: nothing is owned any more)."""
        if self._sub is not None:
            self._sub.close()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        self._query_pool.shutdown(wait=False, cancel_futures=True)

    async def add_zone_hooks(self, on_acquire: ZoneHook, on_release: ZoneHook) -> None:
        """Run ``on_acquire(zone_id)`` for every zone this process takes (now, for those it
        already owns) and ``on_release`` before it leaves one (the demo's driver loop)."""
        self.acquire_hooks.append(on_acquire)
        self.release_hooks.append(on_release)
        for zid in sorted(self.worker.owned):
            await on_acquire(zid)

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
            out = await self.run_query(data)
        except Exception as exc:  # answer rather than leave the asker waiting
            log.warning("dispatch_query_failed", op=data.get("op"), error=repr(exc))
            out = {"error": "internal_error", "message": "the zone's owner failed to answer"}
        await self.bus.publish(str(data["reply_to"]), {"corr": data.get("corr"), "outcome": out})

    async def run_query(self, data: dict[str, Any]) -> dict[str, Any]:
        """:meth:`_query_locally` in the queries' thread (``__init__``): the answer to a query
        from another process (:meth:`_answer_query`) or from this one's gateway, when it
        owns the zone."""
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

    async def _reply(self, topic: str, reply: dict[str, Any]) -> None:
        """Publish a command's reply on the asker's topic; to this process's own gateway
        straight (the outcome is recorded already: the same as a reply lost on the way)."""
        local = self.local_replies
        if local is not None and topic == local[0]:
            local[1](reply)
            return
        await self.bus.publish(topic, reply)

    async def _record_outcomes(
        self, zone_id: str, done: list[tuple[str | None, dict[str, Any], dict[str, Any]]]
    ) -> None:
        """Ack the commands (those with a message id) and record each outcome under its
        correlation id (the asker reads it when the reply is lost), a booking's refusal and
        the removal of its pending record, all in one transaction: seen together or not at
        all (Redis away in between would leave a booking pending for good; what a lost
        transaction leaves, app.dispatch.pending_sweep resolves). Then index new vehicles, tell riders
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
                    await self._reply(str(data["reply_to"]), reply)
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

"""The sweeper of a scaled-out city: no booking left pending, no cancellation left claimed.

A command flows API route -> :mod:`app.dispatch.cluster_gateway` (writes the pending booking or
the ``cancelling`` claim in one transaction with the command) -> the zone's stream -> its owner
-> :mod:`app.dispatch.zone_owner` (acks, records the outcome and removes the record in one
transaction) -> the reply. An outage between the owner's ack and its record transaction leaves
a record that nothing will remove; :class:`PendingSweeper`, run by every process's gateway,
resolves it once it is old and the zone's stream is drained (no owner will handle it later):
a booking whose ride is saved or whose refusal is recorded only loses its record; one with
neither is refused ``outcome_lost`` and its rider told.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog

from app.dispatch.cluster_records import REFUSED_TTL_S, RecordKeys
from app.dispatch.store import saved_ride
from dispatch.scale_out import GROUP, zone_stream

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = structlog.get_logger("tsunagu.dispatch.gateway")

#: Seconds between passes over the pending bookings (:meth:`PendingSweeper.sweep_pending`).
PENDING_SWEEP_S = 5.0
#: A pending booking handled (its zone's stream drained) with no outcome after this long had
#: its outcome lost in an outage (:meth:`PendingSweeper.sweep_pending`).
PENDING_LOST_AFTER_S = 15.0


class PendingSweeper:
    """Resolves the pending bookings and cancellation claims an outage left behind.

    Parameters
    ----------
    redis
        An asyncio Redis client (``decode_responses=True``).
    bus
        The app's event bus (riders' events; ``bus._key`` names the zones' streams).
    engine
        The database holding the saved rides.
    prefix
        The deployment's ``redis_prefix``.
    clock
        The dispatcher's clock (unix seconds): records are aged on it.
    """

    def __init__(
        self,
        redis: Any,
        bus: Any,
        engine: Engine,
        prefix: str,
        clock: Callable[[], float],
    ) -> None:
        self.redis = redis
        self.bus = bus
        self.engine = engine
        self.clock = clock
        self._key = RecordKeys(prefix)

    def now(self) -> float:
        return float(self.clock())

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
            saved = await asyncio.to_thread(saved_ride, self.engine, str(rid))
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

    async def run_forever(self, interval_s: float = PENDING_SWEEP_S) -> None:
        """:meth:`sweep_pending` and :meth:`sweep_cancels` every ``interval_s``, until
        cancelled (the gateway's lifetime)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.sweep_pending()
                await self.sweep_cancels()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or the database away: the next pass retries
                log.warning("dispatch_pending_sweep_failed", error=repr(exc))

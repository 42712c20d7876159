"""Trips: an itinerary's on-demand legs reserved together or not at all (TOMP-API states).

Booking state (``Trip.state``)::

    PENDING ──> CONFIRMED ──> CANCELLED
       │──────> REJECTED   (a leg refused: every leg already booked is released)
       │──────> CANCELLED  (the rider cancelled a hold)
       └──────> EXPIRED    (the hold, or a booking a crash left unfinished, timed out)

Leg state (on-demand legs, derived from the live ride): assigned / pending -> NOT_STARTED,
onboard -> IN_USE, completed -> FINISHED, cancelled / no_show / refused -> CANCELLED.

The trip row is written first (PENDING, ``in_progress``, every on-demand leg with its quote id
and expected ride id, ``expires_at`` = now + hold), then each leg is booked through
``services.dispatch``; so a process dying at any point leaves a row the sweeper expires,
releasing the rides by their ids. Every state change is a conditional UPDATE from the expected
state (``app.trips.store``): a booking racing the sweeper, two processes sweeping, or two
requests cancelling never both win. A state that gives seats back sets ``release_pending`` in
the same UPDATE; it is cleared once every ride is released, so a release that failed (the
dispatcher busy, the process killed) is retried by a later sweep.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import time
import uuid
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError

from app.db import as_utc
from app.errors import ApiError
from app.identity.principal import Principal
from app.identity.roles import Role
from app.models.identity import utcnow
from app.models.trip import Trip
from app.trips import store

log = structlog.get_logger("tsunagu.trips")

#: How long a process keeps the release of one trip's rides to itself before another may
#: retry it (far more than a release takes, even with cluster reply timeouts).
RELEASE_LEASE_S = 120.0


class TripState(StrEnum):
    """TOMP-API booking states."""

    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


class LegState(StrEnum):
    """TOMP-API leg states."""

    NOT_STARTED = "NOT_STARTED"
    IN_USE = "IN_USE"
    FINISHED = "FINISHED"
    CANCELLED = "CANCELLED"


#: A ride's status (``dispatch.rides.RideStatus``, plus the cluster gateway's ``pending`` and
#: ``rejected``) as the state of its leg.
RIDE_LEG_STATE: dict[str, LegState] = {
    "pending": LegState.NOT_STARTED,
    "assigned": LegState.NOT_STARTED,
    "onboard": LegState.IN_USE,
    "completed": LegState.FINISHED,
    "cancelled": LegState.CANCELLED,
    "no_show": LegState.CANCELLED,
    "rejected": LegState.CANCELLED,
}

#: States that give the trip's seats back.
RELEASING = (TripState.REJECTED, TripState.CANCELLED, TripState.EXPIRED)


def trip_topic(user_id: str) -> str:
    """The event topic of a user's trips (visible to that user: ``user.<id>.*``)."""
    return f"user.{user_id}.trip"


def is_on_demand(leg: dict[str, Any]) -> bool:
    """Whether an itinerary leg is an on-demand ride to reserve."""
    return leg.get("onDemand") is True or leg.get("mode") == "FLEX"


def on_demand_legs(itinerary: dict[str, Any]) -> list[dict[str, Any]]:
    """The booking records of the itinerary's on-demand legs, in travel order."""
    return [
        {
            "index": i,
            "quote_id": str(leg["bookingQuoteId"]),
            # The ride the booking creates has the quote's request id (Dispatcher._commit):
            # known before booking, so a crash right after it still leaves the id to cancel.
            "ride_id": str(leg["bookingRequestId"]),
            "booking": "none",  # none -> booked | pending (queued, 202) | refused
            "released": False,
        }
        for i, leg in enumerate(itinerary["legs"])
        if is_on_demand(leg)
    ]


def request_hash(itinerary: dict[str, Any], confirm: bool) -> str:
    """A fingerprint of a booking request (an idempotency key reused with another body)."""
    blob = json.dumps({"itinerary": itinerary, "confirm": confirm}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _ms(t: dt.datetime | float | None) -> int | None:
    if t is None:
        return None
    if isinstance(t, dt.datetime):
        return int(as_utc(t).timestamp() * 1000)
    return round(float(t) * 1000)


def _expired(trip: Trip, now: dt.datetime) -> bool:
    return trip.expires_at is not None and as_utc(trip.expires_at) < now


class TripService:
    """Trips of one app process, over its database and dispatch gateway.

    Parameters
    ----------
    services
        The process's ``app.services.Services`` (``engine``, ``settings``, ``dispatch``,
        ``bus``).
    """

    def __init__(self, services: Any) -> None:
        self.services = services
        self.engine = services.engine
        self.hold_s: float = float(services.settings.trip_hold_s)
        self.wait_s: float = float(services.settings.trip_idempotency_wait_s)

    # --- helpers ----------------------------------------------------------------------------
    def _gateway(self) -> Any:
        g = getattr(self.services, "dispatch", None)
        if g is None:
            raise ApiError(503, "unavailable", "the on-demand dispatcher is not running")
        return g

    async def get(self, trip_id: uuid.UUID) -> Trip:
        trip = await asyncio.to_thread(store.get_trip, self.engine, trip_id)
        if trip is None:  # rows are never deleted: only a caller's bad id gets here
            raise ApiError(404, "not_found", "no such trip")
        return trip

    async def _update(self, trip_id: uuid.UUID, **kw: Any) -> bool:
        return await asyncio.to_thread(store.update_trip, self.engine, trip_id, **kw)

    async def publish(self, trip: Trip, **extra: Any) -> None:
        """Tell the rider about the trip's new state (``trip.<state>``)."""
        bus = getattr(self.services, "bus", None)
        if bus is None:
            return
        payload = {"type": f"trip.{trip.state.lower()}", "trip_id": str(trip.id), **extra}
        payload["state"] = trip.state
        try:
            await bus.publish(trip_topic(trip.user_id), payload)
        except Exception as exc:  # a lost live event must never undo a booking
            log.warning("trip_event_failed", trip=str(trip.id), error=type(exc).__name__)

    def _lease(self, now: dt.datetime) -> dt.datetime:
        return now + dt.timedelta(seconds=RELEASE_LEASE_S)

    # --- reading ----------------------------------------------------------------------------
    async def visible(self, who: Principal, trip_id: uuid.UUID, *, staff: bool = True) -> Trip:
        """The trip if ``who`` may see it (its rider; with ``staff`` dispatchers and admins
        too), else 404 as if it did not exist."""
        trip = await asyncio.to_thread(store.get_trip, self.engine, trip_id)
        allowed = trip is not None and (
            trip.user_id == who.user_id or (staff and who.has_any(Role.DISPATCHER.value))
        )
        if trip is None or not allowed:
            raise ApiError(404, "not_found", "no such trip")
        return trip

    async def mine(self, user_id: str) -> list[dict[str, Any]]:
        """The user's trips, newest first, each resolved and with its live legs."""
        trips = await asyncio.to_thread(store.list_trips, self.engine, user_id)
        return [await self.view(await self.resolve(t)) for t in trips]

    async def _ride_of(self, trip: Trip, ride_id: str) -> dict[str, Any] | None:
        """The live ride of one of the trip's legs (None: unknown, or not the rider's)."""
        g = getattr(self.services, "dispatch", None)
        if g is None:
            return None
        try:
            found = await g.ride(ride_id)
        except Exception as exc:  # the dispatcher away: the leg shows what the trip knows
            log.warning("trip_ride_unreadable", ride=ride_id, error=type(exc).__name__)
            return None
        # The ride id came from the client: never show (or act on) another rider's ride.
        if found is None or found[0] != trip.user_id:
            return None
        return dict(found[1])

    async def _leg_view(self, trip: Trip, rec: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "bookingQuoteId": rec["quote_id"],
            "rideId": rec["ride_id"],
            "bookingState": rec["booking"],
            # Transfer protection's word on this leg (app.trips.transfer_guard).
            "events": list(rec.get("events", [])),
        }
        ride = None if rec["booking"] == "refused" else await self._ride_of(trip, rec["ride_id"])
        if ride is None:
            gone = trip.state in RELEASING or rec["booking"] == "refused"
            out["legState"] = LegState.CANCELLED if gone else LegState.NOT_STARTED
            return out
        status = str(ride.get("status", ""))
        out["rideStatus"] = status
        out["legState"] = RIDE_LEG_STATE.get(status, LegState.NOT_STARTED)
        if ride.get("vehicle_id"):
            out["vehicleId"] = ride["vehicle_id"]
        if ride.get("eta_pickup") is not None:
            out["startTime"] = _ms(ride["eta_pickup"])
        if ride.get("eta_dropoff") is not None:
            out["endTime"] = _ms(ride["eta_dropoff"])
        window = ride.get("pickup_window")
        if window:
            out["pickupWindow"] = {"start": _ms(window[0]), "end": _ms(window[1])}
        if ride.get("latest_arrival") is not None:
            out["latestArrivalTime"] = _ms(ride["latest_arrival"])
        return out

    async def view(self, trip: Trip) -> dict[str, Any]:
        """The trip as the API shows it: transit legs as planned, on-demand legs with their
        live ride (vehicle, ETAs, pick-up window) and leg state."""
        records = {int(r["index"]): r for r in trip.legs}
        legs: list[dict[str, Any]] = []
        for i, leg in enumerate(trip.itinerary.get("legs", [])):
            out = dict(leg)
            if i in records:
                out.update(await self._leg_view(trip, records[i]))
            legs.append(out)
        return {
            "id": str(trip.id),
            "userId": trip.user_id,
            "state": trip.state,
            "confirmRequested": trip.confirm_requested,
            "createdAt": _ms(trip.created_at),
            "updatedAt": _ms(trip.updated_at),
            "expiresAt": _ms(trip.expires_at) if trip.state == TripState.PENDING else None,
            "error": trip.error,
            "itinerary": {k: v for k, v in trip.itinerary.items() if k != "legs"},
            "legs": legs,
        }

    async def _fail(self, trip: Trip, status: int | None = None) -> ApiError:
        """The error answer of a trip that did not go through (its body in ``details``)."""
        err = trip.error or {"code": "conflict", "message": f"the trip is {trip.state}"}
        details = {**(err.get("details") or {}), "trip": await self.view(trip)}
        return ApiError(status or trip.http_status or 409, err["code"], err["message"], details)

    async def answer(self, trip: Trip) -> tuple[int, dict[str, Any]]:
        """The booking's answer (for a retry too): its status code and the trip; raises the
        error answer of a refused or expired booking."""
        status = trip.http_status
        if status is None:  # a booking a crash left unfinished, resolved since
            status = {TripState.PENDING: 202, TripState.CONFIRMED: 201}.get(
                TripState(trip.state), 409
            )
        if status >= 400:
            raise await self._fail(trip, status)
        return status, await self.view(trip)

    # --- booking ----------------------------------------------------------------------------
    async def book(
        self, user_id: str, itinerary: dict[str, Any], confirm: bool, key: str | None
    ) -> tuple[int, dict[str, Any]]:
        """Reserve the itinerary's on-demand legs together (see the module docstring).

        Returns
        -------
        tuple
            The status code (201 booked or held, 202 a leg queued by the cluster gateway)
            and the trip.

        Raises
        ------
        ApiError
            409 with the trip in ``details`` when a leg is refused (the trip is REJECTED) or
            the hold expired meanwhile; 422 ``idempotency_key_reused``; 409 ``in_progress``.
        """
        legs = on_demand_legs(itinerary)
        fingerprint = request_hash(itinerary, confirm)
        g = self._gateway() if legs else None
        now = utcnow()
        trip = Trip(
            user_id=user_id,
            idempotency_key=key,
            request_hash=fingerprint,
            state=TripState.PENDING if legs else TripState.CONFIRMED,
            confirm_requested=confirm,
            in_progress=bool(legs),
            itinerary=itinerary,
            legs=legs,
            http_status=None if legs else 201,
            expires_at=now + dt.timedelta(seconds=self.hold_s) if legs else None,
        )
        try:
            trip = await asyncio.to_thread(store.insert_trip, self.engine, trip)
        except IntegrityError:
            if key is None:
                raise
            return await self._replay(user_id, key, fingerprint)
        if not legs:  # nothing to reserve
            await self.publish(trip)
            return await self.answer(trip)
        return await self._reserve(trip, g)

    async def _replay(self, user_id: str, key: str, fingerprint: str) -> tuple[int, dict[str, Any]]:
        """A retry: the first attempt's trip and answer, once that attempt is over."""
        deadline = time.monotonic() + self.wait_s
        while True:
            trip = await asyncio.to_thread(store.trip_by_key, self.engine, user_id, key)
            if trip is None:  # the key's row cannot vanish: rows are never deleted
                raise ApiError(409, "in_progress", "the first request is still being handled")
            if trip.request_hash != fingerprint:
                raise ApiError(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request body",
                )
            if trip.in_progress:
                trip = await self.resolve(trip)  # a crashed attempt ends at its expiry
            if not trip.in_progress:
                return await self.answer(trip)
            if time.monotonic() >= deadline:
                raise ApiError(409, "in_progress", "the first request is still being handled")
            await asyncio.sleep(0.1)

    async def _reserve(self, trip: Trip, g: Any) -> tuple[int, dict[str, Any]]:
        legs = [dict(r) for r in trip.legs]
        for rec in legs:
            try:
                # A ride of that id already exists (a quote booked before, by another trip):
                # this trip did not make it, so it must never release it either.
                if await g.ride(rec["ride_id"]) is not None:
                    raise ApiError(409, "already_booked", "this quote was booked already")
                res = await g.book_quote(rec["quote_id"], trip.user_id)
            except ApiError as exc:
                rec["booking"] = "refused"
                return await self._refused(trip, legs, rec, exc)
            except Exception as exc:  # the dispatcher unreachable: refuse, release the rest
                log.exception("trip_leg_booking_failed", trip=str(trip.id))
                rec["booking"] = "refused"
                error = ApiError(
                    503, "dispatch_unavailable", f"booking failed: {type(exc).__name__}"
                )
                return await self._refused(trip, legs, rec, error)
            if res.status_code == 202:  # queued behind a zone takeover: reserved, unconfirmed
                rec["booking"], rec["ride_id"] = "pending", str(res.body["request_id"])
            else:
                rec["booking"], rec["ride_id"] = "booked", str(res.body["ride_id"])
            # Progress saved at once: the real ride id, should the process die now.
            if not await self._update(trip.id, states=[TripState.PENDING], legs=legs):
                return await self._overtaken(trip, legs)
        now = utcnow()
        values: dict[str, Any] = {"in_progress": False, "legs": legs}
        if any(r["booking"] == "pending" for r in legs):
            status = 202  # the sweeper (or a read) settles it through dispatch.ride()
            values.update(http_status=202, expires_at=now + dt.timedelta(seconds=self.hold_s))
        elif trip.confirm_requested:
            status = 201
            values.update(http_status=201, state=TripState.CONFIRMED, expires_at=None)
        else:
            status = 201  # a hold: the seats are in the vehicles' plans until expires_at
            values.update(http_status=201, expires_at=now + dt.timedelta(seconds=self.hold_s))
        if not await self._update(trip.id, states=[TripState.PENDING], **values):
            return await self._overtaken(trip, legs)
        trip = await self.get(trip.id)
        if trip.state == TripState.CONFIRMED:
            await self.publish(trip)
        return status, await self.view(trip)

    async def _refused(
        self, trip: Trip, legs: list[dict[str, Any]], rec: dict[str, Any], exc: ApiError
    ) -> tuple[int, dict[str, Any]]:
        """A leg was refused: the trip is REJECTED with its reason, every booked leg
        released."""
        now = utcnow()
        # The refused leg and those after it were never booked by this trip: nothing of
        # theirs to release (their ride ids may be another trip's).
        for later in legs[legs.index(rec) :]:
            later["released"] = True
        details = {"leg": rec["index"], "reason": exc.code}
        if isinstance(exc.details, dict) and exc.details.get("new_quote"):
            details["new_quote"] = exc.details["new_quote"]
        error = {"code": exc.code, "message": exc.message, "details": details}
        status = 503 if exc.status_code >= 500 else 409
        moved = await self._update(
            trip.id,
            states=[TripState.PENDING],
            state=TripState.REJECTED,
            in_progress=False,
            release_pending=True,
            claimed_until=self._lease(now),
            legs=legs,
            http_status=status,
            error=error,
        )
        if not moved:
            return await self._overtaken(trip, legs)
        trip = await self.get(trip.id)
        await self.release(trip)
        trip = await self.get(trip.id)
        await self.publish(trip, reason=exc.code)
        raise await self._fail(trip)

    async def _overtaken(
        self, trip: Trip, legs: list[dict[str, Any]]
    ) -> tuple[int, dict[str, Any]]:
        """The trip left PENDING while its legs were being booked (the sweeper expired it):
        the rides booked since the sweeper read the row are released here too."""
        await self._release_rides(trip.user_id, legs)
        await self._update(trip.id, states=list(RELEASING), in_progress=False, http_status=409)
        raise await self._fail(await self.get(trip.id), 409)

    # --- releasing seats --------------------------------------------------------------------
    async def _release_ride(self, user_id: str, ride_id: str) -> bool:
        """Cancel one of the trip's rides if it still holds seats; False when it could not be
        done now (retry later)."""
        g = getattr(self.services, "dispatch", None)
        if g is None:
            return False
        try:
            found = await g.ride(ride_id)
        except Exception as exc:
            log.warning("trip_release_read_failed", ride=ride_id, error=type(exc).__name__)
            return False
        # Never booked (a refusal, a crash before it), or not this rider's: nothing to free.
        if found is None or found[0] != user_id:
            return True
        # Cancelled, refused, done, or the rider is aboard: no seat to give back.
        if found[1].get("status") not in ("assigned", "pending"):
            return True
        try:
            await g.cancel(ride_id)
        except ApiError as exc:
            # Gone or started meanwhile; anything else (dispatch_busy) is retried.
            return exc.code in ("unknown_ride", "not_found", "not_cancellable")
        except Exception as exc:
            log.warning("trip_release_failed", ride=ride_id, error=type(exc).__name__)
            return False
        return True

    async def _release_rides(self, user_id: str, legs: list[dict[str, Any]]) -> bool:
        """Release every leg's ride (each marked ``released``); whether all were."""
        done = True
        for rec in legs:
            if rec.get("released"):
                continue
            if await self._release_ride(user_id, str(rec["ride_id"])):
                rec["released"] = True
            else:
                done = False
        return done

    async def release(self, trip: Trip) -> bool:
        """Release the rides of a trip that gives its seats back (REJECTED, CANCELLED,
        EXPIRED) and clear ``release_pending`` once all are; else a later sweep retries."""
        legs = [dict(r) for r in trip.legs]
        done = await self._release_rides(trip.user_id, legs)
        values: dict[str, Any] = {"legs": legs, "claimed_until": None}
        if done:
            values["release_pending"] = False
        await self._update(trip.id, states=[trip.state], **values)
        if not done:
            log.warning("trip_release_incomplete", trip=str(trip.id))
        return done

    # --- settling ---------------------------------------------------------------------------
    async def resolve(self, trip: Trip) -> Trip:
        """Bring a PENDING trip up to date: expired (past ``expires_at``: its rides released)
        or, when legs were queued (202), settled from their rides. Returns the trip as now."""
        if trip.state != TripState.PENDING:
            return trip
        now = utcnow()
        if _expired(trip, now):
            claimed = await asyncio.to_thread(
                store.claim_expired, self.engine, trip.id, now, RELEASE_LEASE_S
            )
            trip = await self.get(trip.id)
            if claimed:
                await self.release(trip)
                trip = await self.get(trip.id)
                await self.publish(trip, reason="expired")
            return trip
        if not trip.in_progress and any(r["booking"] == "pending" for r in trip.legs):
            return await self._settle(trip)
        return trip

    async def _settle(self, trip: Trip) -> Trip:
        """Legs queued by the cluster gateway (202): booked or refused since?"""
        legs = [dict(r) for r in trip.legs]
        refused: dict[str, Any] | None = None
        for rec in legs:
            if rec["booking"] != "pending":
                continue
            ride = await self._ride_of(trip, str(rec["ride_id"]))
            if ride is None or ride.get("status") == "pending":
                continue  # still queued
            if ride.get("status") == "rejected":
                rec["booking"], rec["released"] = "refused", True
                reason = str(ride.get("reason") or "rejected")
                refused = {
                    "code": reason,
                    "message": str(ride.get("message") or "the booking was refused"),
                    "details": {"leg": rec["index"], "reason": reason},
                }
                break
            rec["booking"] = "booked"
        now = utcnow()
        if refused is not None:
            moved = await self._update(
                trip.id,
                states=[TripState.PENDING],
                in_progress=False,
                state=TripState.REJECTED,
                release_pending=True,
                claimed_until=self._lease(now),
                legs=legs,
                error=refused,
            )
            trip = await self.get(trip.id)
            if moved:
                await self.release(trip)
                trip = await self.get(trip.id)
                await self.publish(trip, reason=refused["code"])
            return trip
        values: dict[str, Any] = {"legs": legs}
        settled = all(r["booking"] == "booked" for r in legs)
        if settled and trip.confirm_requested:
            values.update(state=TripState.CONFIRMED, expires_at=None)
        moved = await self._update(
            trip.id,
            states=[TripState.PENDING],
            when_in_progress=False,
            not_expired_at=now,
            **values,
        )
        trip = await self.get(trip.id)
        if moved and trip.state == TripState.CONFIRMED:
            await self.publish(trip)
        return trip

    # --- confirming and cancelling ----------------------------------------------------------
    async def confirm(self, who: Principal, trip_id: uuid.UUID) -> tuple[int, dict[str, Any]]:
        """Confirm a held trip: 200 CONFIRMED (again for a confirmed one), 202 while a leg is
        still queued (confirmed once it is booked), 409 ``expired`` past the hold, 409
        ``in_progress`` / ``not_pending`` otherwise."""
        trip = await self.resolve(await self.visible(who, trip_id, staff=False))
        if trip.state == TripState.CONFIRMED:
            return 200, await self.view(trip)
        if trip.state == TripState.EXPIRED:
            raise ApiError(409, "expired", "the hold expired", {"trip": await self.view(trip)})
        if trip.state != TripState.PENDING:
            raise ApiError(
                409,
                "not_pending",
                f"a {trip.state} trip cannot be confirmed",
                {"trip": await self.view(trip)},
            )
        if trip.in_progress:
            raise ApiError(409, "in_progress", "the trip is still being booked")
        now = utcnow()
        if any(r["booking"] == "pending" for r in trip.legs):
            await self._update(trip.id, states=[TripState.PENDING], confirm_requested=True)
            return 202, await self.view(await self.get(trip.id))
        moved = await self._update(
            trip.id,
            states=[TripState.PENDING],
            when_in_progress=False,
            not_expired_at=now,
            state=TripState.CONFIRMED,
            confirm_requested=True,
            expires_at=None,
        )
        if not moved:  # expired (or cancelled) a moment ago: answer what it is now
            return await self.confirm(who, trip_id)
        trip = await self.get(trip.id)
        await self.publish(trip)
        return 200, await self.view(trip)

    async def cancel(self, who: Principal, trip_id: uuid.UUID) -> dict[str, Any]:
        """Cancel a PENDING or CONFIRMED trip: every not-yet-started on-demand leg is
        cancelled; 409 ``not_cancellable`` when a ride is already under way or the trip is
        over."""
        trip = await self.resolve(await self.visible(who, trip_id))
        if trip.state not in (TripState.PENDING, TripState.CONFIRMED):
            raise ApiError(
                409,
                "not_cancellable",
                f"a {trip.state} trip cannot be cancelled",
                {"trip": await self.view(trip)},
            )
        if trip.in_progress:
            raise ApiError(409, "in_progress", "the trip is still being booked")
        for rec in trip.legs:
            ride = await self._ride_of(trip, str(rec["ride_id"]))
            if ride is not None and ride.get("status") == "onboard":
                raise ApiError(
                    409,
                    "not_cancellable",
                    "the rider is already on board of a leg",
                    {"trip": await self.view(trip), "leg": rec["index"]},
                )
        now = utcnow()
        moved = await self._update(
            trip.id,
            states=[trip.state],
            when_in_progress=False,
            state=TripState.CANCELLED,
            release_pending=True,
            claimed_until=self._lease(now),
        )
        if not moved:  # changed meanwhile (expired, cancelled by another request)
            return await self.cancel(who, trip_id)
        trip = await self.get(trip.id)
        await self.release(trip)
        trip = await self.get(trip.id)
        await self.publish(trip)
        return await self.view(trip)

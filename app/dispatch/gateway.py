"""The one door of the HTTP API to the on-demand dispatcher: ``services.dispatch``.

What the API routes ask of it (:class:`DispatchGateway`), the answers they get
(:class:`Booked`, the :class:`~app.errors.ApiError` of a refusal) and the vehicle view both
implementations give. The implementations, each in a module of its own:

* :mod:`app.dispatch.local_gateway` (no ``REDIS_URL``): one process, one in-memory
  ``Dispatcher``; calls go straight to it (in a worker thread) and every change is saved to the
  database (``persist``).
* :mod:`app.dispatch.cluster_gateway` (``REDIS_URL`` set): several processes share the zones,
  each zone owned by exactly one process at a time (a Redis lease). A command flows one way
  and its answer back:

  1. API route -> :class:`~app.dispatch.cluster_gateway.ClusterGateway` builds the message
     (``dispatch.scale_out``'s ``*_message``) and sends it to the zone's durable stream
     ``dispatch.zone.<zone>`` with a ``reply_to`` topic and a correlation id (queries: on
     ``dispatch.query.<zone>``, or locally when this process owns the zone);
  2. the zone's owner, ``dispatch.scale_out.ZoneWorker``, reads a batch, applies it
     (``handle``), saves the zone (:mod:`app.dispatch.db_adapters`);
  3. :class:`~app.dispatch.zone_owner.ZoneOwner` acks the batch, records each outcome
     (:mod:`app.dispatch.cluster_records`) and publishes the replies;
  4. the asker's gateway hands the reply to the waiting route; with no reply in time it reads
     the recorded outcome, else what the save shows (:mod:`app.dispatch.saved_outcomes`),
     else answers 202 ``pending`` (a booking) or 503 ``dispatch_busy``;
     :mod:`app.dispatch.pending_sweep` resolves what an outage left in between.
"""

from __future__ import annotations

from typing import Any, Protocol

from app.errors import ApiError
from dispatch.dispatcher import Dispatcher
from dispatch.request import RideRequest
from dispatch.rides import Rejection, RejectReason
from dispatch.scale_out import vehicle_event_message
from dispatch.vehicle import Vehicle
from dispatch.zone import ServiceZone

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

    async def cancel(
        self, ride_id: str, found: tuple[str, dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Cancel a ride. ``found``: ``ride(ride_id)`` as the caller has just read it (one
        look-up fewer), else it is read here."""
        ...

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


def merge_rides(*groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rides by id, the first group winning (live > saved > pending), newest first."""
    out: dict[str, dict[str, Any]] = {}
    for group in groups:
        for r in group:
            out.setdefault(r["ride_id"], r)
    return sorted(out.values(), key=lambda r: r["booked_at"], reverse=True)

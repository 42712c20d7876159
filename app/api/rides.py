"""Residents' on-demand rides: quote, book, read, cancel (``/api/v1/rides``).

A resident sees only their own rides (another user's ride answers 404, as if it did not
exist); dispatchers see every ride. A rejection answers 409 with the machine-readable reason as
the error code (``outside_zone``, ``no_vehicle_available``, ...); bad input answers 422.

Every call goes through ``services.dispatch`` (``app.dispatch.gateway``). With several
processes (``REDIS_URL``) a booking the zone's owner does not answer in time answers 202
``{"request_id", "status": "pending"}``: it completes when a process takes the zone over (the
rider gets ``user.<id>.ride``; ``GET /rides/{request_id}`` shows it pending until then).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ConfigDict, Field, model_validator

from app.api.schemas import AUTHED, OpenModel, error_responses
from app.dispatch.gateway import DispatchGateway, rejection_error
from app.errors import ApiError
from app.identity.deps import CurrentPrincipal, Principal
from app.identity.roles import Role
from app.models.request_model import RequestModel
from app.services import ServicesDep
from dispatch.dispatcher import Dispatcher
from dispatch.request import RideRequest

__all__ = ["booking_city", "dispatcher_of", "gateway_of", "rejection_error", "router"]

router = APIRouter(prefix="/rides", tags=["rides"], responses=AUTHED | error_responses(404, 409))


class QuoteOut(OpenModel):
    """An offer; book it with ``POST /rides {"quote_id"}`` before ``expires_at``."""

    quote_id: str
    request_id: str
    zone_id: str
    pickup_point: list[float]
    dropoff_point: list[float]
    vehicle_id: str
    vehicle_type: str
    pickup_window: list[float] = Field(description="(earliest, latest) Unix seconds")
    latest_arrival: float
    eta_pickup: float
    eta_dropoff: float
    max_ride_s: float
    direct_s: float
    expires_at: float


class RideOut(OpenModel):
    """A ride: ``status`` pending (queued, only ``request_id``), assigned, onboard, completed,
    cancelled, no_show. Fields a status does not have are absent."""

    status: str
    ride_id: str | None = None
    request_id: str | None = None
    zone_id: str | None = None
    vehicle_id: str | None = None
    origin: list[float] | None = None
    destination: list[float] | None = None
    seats: int | None = None
    wheelchairs: int | None = None
    pickup_window: list[float] | None = None
    latest_arrival: float | None = None
    eta_pickup: float | None = None
    eta_dropoff: float | None = None
    picked_up_at: float | None = None
    dropped_off_at: float | None = None
    arrived_at: float | None = None
    booked_at: float | None = None


class RideList(OpenModel):
    rides: list[RideOut]


class LatLon(RequestModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class RideRequestIn(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "origin": {"lat": 42.3152, "lon": 140.9737},
                "destination": {"lat": 42.3305, "lon": 140.9988},
                "seats": 1,
            }
        }
    )

    origin: LatLon
    destination: LatLon
    earliest_pickup: float | None = Field(None, description="Unix seconds; leave now if absent.")
    latest_arrival: float | None = Field(None, description="Unix seconds (arrive-by).")
    seats: int | None = Field(
        None,
        ge=0,
        le=20,
        description=(
            "Seated passengers. If absent: 1, or 0 when wheelchairs > 0 (a wheelchair user "
            "rides in the wheelchair space, not in a seat; add seats for companions)."
        ),
    )
    wheelchairs: int = Field(0, ge=0, le=4, description="Passengers in wheelchairs.")

    @model_validator(mode="after")
    def _someone(self) -> RideRequestIn:
        if self.party_seats + self.wheelchairs < 1:
            raise ValueError("a ride needs at least one passenger (seats + wheelchairs >= 1)")
        return self

    @property
    def party_seats(self) -> int:
        """The seats the group takes: as given, else 1, or 0 for a wheelchair user alone."""
        if self.seats is not None:
            return self.seats
        return 0 if self.wheelchairs > 0 else 1

    def to_request(self, user_id: str, now: float) -> RideRequest:
        return RideRequest(
            origin=(self.origin.lat, self.origin.lon),
            destination=(self.destination.lat, self.destination.lon),
            requested_at=now,
            earliest_pickup=self.earliest_pickup,
            latest_arrival=self.latest_arrival,
            seats=self.party_seats,
            wheelchairs=self.wheelchairs,
            user_id=user_id,
        )


class BookIn(RequestModel):
    """Either ``quote_id`` (book a quote) or a request (quote and book in one step)."""

    quote_id: str | None = Field(None, min_length=1, max_length=64)
    request: RideRequestIn | None = None

    @model_validator(mode="after")
    def _one(self) -> BookIn:
        if (self.quote_id is None) == (self.request is None):
            raise ValueError("give exactly one of quote_id and request")
        return self


def booking_city(services: Any, request: RideRequestIn) -> Any | None:
    """The published network (city) a ride is booked in: the region
    holding its pick-up and drop-off (``FeedRegistry.network_at``), the only one when a single
    city is published; None when no city holds either place (the dispatcher then answers
    ``outside_zone`` as for anyone) or no network is published.

    Raises
    ------
    ApiError
        422 ``different_networks`` (as ``GET /plan``) when the places lie in two cities'
        networks: each city's on-demand zones are its own and no ride runs between cities.
    """
    reg = getattr(services, "feeds", None)
    if reg is None or not reg.networks:
        return None
    if len(reg.networks) == 1:
        return reg.network
    found = [reg.network_at(p.lat, p.lon) for p in (request.origin, request.destination)]
    names = sorted({n.name for n in found if n is not None})
    if len(names) > 1:
        raise ApiError(
            422,
            "different_networks",
            "The pick-up and drop-off are in different cities' networks ("
            + ", ".join(names)
            + "); no ride runs between them. Book within one city.",
            {"networks": [n.name if n is not None else None for n in found]},
        )
    return next((n for n in found if n is not None), None)


def dispatcher_of(services: Any) -> Dispatcher:
    """This process's dispatcher (503 while it is not running)."""
    d = services.dispatcher
    if d is None:
        raise ApiError(503, "unavailable", "the on-demand dispatcher is not running")
    return d  # type: ignore[no-any-return]


def gateway_of(services: Any) -> DispatchGateway:
    """The API's door to the dispatcher (503 while it is not running)."""
    g = getattr(services, "dispatch", None)
    if g is None:
        raise ApiError(503, "unavailable", "the on-demand dispatcher is not running")
    return g  # type: ignore[no-any-return]


async def _visible(g: DispatchGateway, ride_id: str, who: Principal) -> tuple[str, dict[str, Any]]:
    """``(user_id, ride)`` of a ride the caller may see (404 otherwise)."""
    found = await g.ride(ride_id)
    if found is None or (found[0] != who.user_id and not who.has_any(Role.DISPATCHER.value)):
        raise ApiError(404, "not_found", "no such ride")
    return found


async def _visible_ride(g: DispatchGateway, ride_id: str, who: Principal) -> dict[str, Any]:
    return (await _visible(g, ride_id, who))[1]


@router.post("/quote", response_model=QuoteOut, responses=error_responses(413))
async def quote(
    body: RideRequestIn, who: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    """An offer (pick-up window, arrival promise, expiry) or 409 with the rejection reason;
    422 ``different_networks`` when the places lie in two cities' networks."""
    booking_city(services, body)
    g = gateway_of(services)
    return await g.quote(body.to_request(who.user_id, g.now()))


@router.post(
    "",
    status_code=201,
    response_model=RideOut,
    responses={
        202: {"model": RideOut, "description": "Queued while the zone changes owner."},
        **error_responses(413),
    },
    response_model_exclude_unset=True,
)
async def book(
    body: BookIn, who: CurrentPrincipal, services: ServicesDep, response: Response
) -> dict[str, Any]:
    """Book a quote, or a request in one step; the ride is assigned to a vehicle (201), or
    queued while its zone changes owner (202 ``pending``). A request whose places lie in two
    cities' networks is 422 ``different_networks`` (a quote was checked when it was made)."""
    g = gateway_of(services)
    if body.quote_id is not None:
        res = await g.book_quote(body.quote_id, who.user_id)
    else:
        assert body.request is not None
        booking_city(services, body.request)
        res = await g.book_request(body.request.to_request(who.user_id, g.now()))
    response.status_code = res.status_code
    return res.body


@router.get("", response_model=RideList, response_model_exclude_unset=True)
async def my_rides(who: CurrentPrincipal, services: ServicesDep) -> dict[str, Any]:
    """The caller's rides, newest first: live ones, pending ones, and past ones from the
    database (rides of zones the dispatcher no longer serves included)."""
    return {"rides": await gateway_of(services).rides_of(who.user_id)}


@router.get("/{ride_id}", response_model=RideOut, response_model_exclude_unset=True)
async def get_ride(ride_id: str, who: CurrentPrincipal, services: ServicesDep) -> dict[str, Any]:
    return await _visible_ride(gateway_of(services), ride_id, who)


CANCEL_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "model": RideOut,
        "description": "The cancellation is queued (status ``cancelling``): the zone's owner "
        "applies it in its turn and the rider is told (``cancelled``, or ``cancel_refused`` "
        "when the ride was picked up first). Sending it again answers the same.",
    }
}


def cancel_answer(ride: dict[str, Any], response: Response) -> dict[str, Any]:
    """A cancellation's answer: 202 while it is queued (``cancelling``), else 200."""
    if ride.get("status") == "cancelling":
        response.status_code = 202
    return ride


@router.delete(
    "/{ride_id}",
    response_model=RideOut,
    response_model_exclude_unset=True,
    responses=CANCEL_RESPONSES,
)
async def cancel_ride(
    ride_id: str, who: CurrentPrincipal, services: ServicesDep, response: Response
) -> dict[str, Any]:
    """Cancel a ride not yet picked up (409 ``not_cancellable`` otherwise); 202
    ``cancelling`` when its zone's owner is busy (scaled out): queued, applied in order."""
    g = gateway_of(services)
    found = await _visible(g, ride_id, who)
    # The ride as just read goes along: the gateway does not look it up a second time (#10).
    return cancel_answer(await g.cancel(ride_id, found=found), response)


# --- on a watched resident's behalf ----------------------------------------------------------
# A watcher (family member, care worker) acts on a resident's ride with the resident's
# watch-over consent; the health service run alone forwards its watch-over calls here with the
# watcher's own token (design: app.health.watch_rides). The core checks the token itself (the
# principal is the watcher) and the consent with the health service on every call, never a
# claim of the caller; every attempt is written to the dispatch audit log with the watcher as
# actor. The ride is the resident's (their list, their notifications).
class PickupChangeIn(RequestModel):
    earliest_pickup: float = Field(description="Unix seconds: the new earliest pick-up.")


async def _on_behalf_audit(
    services: Any,
    who: Principal,
    action: str,
    kind: str,
    target: str,
    outcome: str,
    details: dict[str, Any],
) -> None:
    from app.dispatch.console import record_action

    await record_action(services.engine, who, action, kind, target, "watch-over", outcome, details)


async def _on_behalf(
    services: Any,
    request: Request,
    who: Principal,
    resident_id: str,
    action: str,
    kind: str,
    target: str,
) -> str:
    """The consent id allowing ``who`` to act for the resident; a refusal is audited."""
    from app.dispatch.console import users_by_id
    from app.health.watch_rides import watch_consent

    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    details: dict[str, Any] = {"resident": resident_id}
    try:
        consent_id = await watch_consent(services, token, who, resident_id)
        users = await asyncio.to_thread(users_by_id, services.engine, {resident_id})
        resident = users.get(resident_id)
        if resident is None or resident.disabled:
            raise ApiError(404, "user_not_found", "No such resident.", {"id": resident_id})
    except ApiError as exc:
        if exc.status_code in (403, 404):  # an outage is not a refusal of the watcher
            await _on_behalf_audit(services, who, action, kind, target, exc.code, details)
        raise
    return consent_id


OnBehalfRun = Callable[[DispatchGateway], Awaitable[tuple[dict[str, Any], dict[str, Any]]]]


async def _act_on_behalf(
    services: Any,
    request: Request,
    who: Principal,
    resident_id: str,
    action: str,
    target: tuple[str, str],
    details: dict[str, Any],
    run: OnBehalfRun,
) -> dict[str, Any]:
    """Check the watcher's consent (:func:`_on_behalf`), ``run`` the call on the gateway and
    audit it with the caller as actor: refused with the error's code, else ``done`` with the
    details ``run`` adds. ``target``: (kind, id) of what is acted on. Returns ``run``'s
    answer."""
    kind, target_id = target
    consent_id = await _on_behalf(services, request, who, resident_id, action, kind, target_id)
    details = {"resident": resident_id, "consent_id": consent_id, **details}
    try:
        out, more = await run(gateway_of(services))
    except ApiError as exc:
        await _on_behalf_audit(services, who, action, kind, target_id, exc.code, details)
        raise
    await _on_behalf_audit(services, who, action, kind, target_id, "done", {**details, **more})
    return out


@router.post(
    "/on-behalf/{resident_id}",
    status_code=201,
    response_model=RideOut,
    responses={
        202: {"model": RideOut, "description": "Queued while the zone changes owner."},
        **error_responses(403, 413, 422, 503),
    },
    response_model_exclude_unset=True,
)
async def book_on_behalf(
    resident_id: str,
    body: RideRequestIn,
    who: CurrentPrincipal,
    services: ServicesDep,
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Book a ride in a watched resident's account (the caller holds the resident's
    watch-over consent, checked with the health service: 403 ``no_consent`` otherwise);
    audited with the caller as actor. Send an ``Idempotency-Key``: a retry books once. The
    places must lie in one city's network (422 ``different_networks``, audited)."""

    async def run(g: DispatchGateway) -> tuple[dict[str, Any], dict[str, Any]]:
        city = booking_city(services, body)
        res = await g.book_request(body.to_request(resident_id, g.now()))
        response.status_code = res.status_code
        ride = res.body
        return ride, {
            "ride_id": ride.get("ride_id") or ride.get("request_id"),
            "status": ride["status"],
            "city": city.name if city is not None else None,
        }

    target = ("user", resident_id)
    return await _act_on_behalf(
        services, request, who, resident_id, "watch_book_ride", target, {}, run
    )


async def _residents_ride(g: DispatchGateway, resident_id: str, ride_id: str) -> None:
    found = await g.ride(ride_id)
    if found is None or found[0] != resident_id:
        raise ApiError(404, "not_found", "No such ride of this resident.")


@router.patch(
    "/on-behalf/{resident_id}/{ride_id}",
    response_model=RideOut,
    responses=error_responses(403, 503),
    response_model_exclude_unset=True,
)
async def change_on_behalf(
    resident_id: str,
    ride_id: str,
    body: PickupChangeIn,
    who: CurrentPrincipal,
    services: ServicesDep,
    request: Request,
) -> dict[str, Any]:
    """Move the pick-up of a watched resident's ride (watch-over consent); audited."""

    async def run(g: DispatchGateway) -> tuple[dict[str, Any], dict[str, Any]]:
        await _residents_ride(g, resident_id, ride_id)
        return await g.move_pickup(ride_id, body.earliest_pickup), {}

    details = {"earliest_pickup": body.earliest_pickup}
    return await _act_on_behalf(
        services, request, who, resident_id, "watch_change_ride", ("ride", ride_id), details, run
    )


@router.delete(
    "/on-behalf/{resident_id}/{ride_id}",
    response_model=RideOut,
    responses={**CANCEL_RESPONSES, **error_responses(403, 503)},
    response_model_exclude_unset=True,
)
async def cancel_on_behalf(
    resident_id: str,
    ride_id: str,
    who: CurrentPrincipal,
    services: ServicesDep,
    request: Request,
    response: Response,
) -> dict[str, Any]:
    """Cancel a watched resident's ride (watch-over consent); audited."""

    async def run(g: DispatchGateway) -> tuple[dict[str, Any], dict[str, Any]]:
        await _residents_ride(g, resident_id, ride_id)
        return cancel_answer(await g.cancel(ride_id), response), {}

    return await _act_on_behalf(
        services, request, who, resident_id, "watch_cancel_ride", ("ride", ride_id), {}, run
    )

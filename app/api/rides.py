"""Residents' on-demand rides: quote, book, read, cancel (``/api/v1/rides``).

A resident sees only their own rides (another user's ride answers 404, as if it did not
exist); dispatchers see every ride. A rejection answers 409 with the machine-readable reason as
the error code (``outside_zone``, ``no_vehicle_available``, ...); bad input answers 422.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from pydantic import Field, model_validator

from app.dispatch_service import persist
from app.dispatch_store import ride_history
from app.errors import ApiError
from app.identity.deps import CurrentPrincipal, Principal
from app.identity.roles import Role
from app.models.request_model import RequestModel
from app.services import ServicesDep
from dispatch.dispatcher import Dispatcher, DispatchError
from dispatch.request import RideRequest
from dispatch.rides import Rejection, RejectReason, Ride

router = APIRouter(prefix="/rides", tags=["rides"])


class LatLon(RequestModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class RideRequestIn(RequestModel):
    origin: LatLon
    destination: LatLon
    earliest_pickup: float | None = Field(None, description="Unix seconds; leave now if absent.")
    latest_arrival: float | None = Field(None, description="Unix seconds (arrive-by).")
    seats: int = Field(1, ge=0, le=20)
    wheelchairs: int = Field(0, ge=0, le=4)

    @model_validator(mode="after")
    def _someone(self) -> RideRequestIn:
        if self.seats + self.wheelchairs < 1:
            raise ValueError("a ride needs at least one passenger (seats + wheelchairs >= 1)")
        return self

    def to_request(self, user_id: str, now: float) -> RideRequest:
        return RideRequest(
            origin=(self.origin.lat, self.origin.lon),
            destination=(self.destination.lat, self.destination.lon),
            requested_at=now,
            earliest_pickup=self.earliest_pickup,
            latest_arrival=self.latest_arrival,
            seats=self.seats,
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


def dispatcher_of(services: Any) -> Dispatcher:
    d = services.dispatcher
    if d is None:
        raise ApiError(503, "unavailable", "the on-demand dispatcher is not running")
    return d  # type: ignore[no-any-return]


def rejection_error(r: Rejection) -> ApiError:
    status = {
        RejectReason.INVALID_REQUEST: 422,
        RejectReason.QUOTE_UNKNOWN: 404,
    }.get(r.reason, 409)
    details: dict[str, Any] = {"reason": r.reason.value}
    if r.new_quote is not None:
        details["new_quote"] = r.new_quote.to_dict()
    return ApiError(status, r.reason.value, r.message, details)


def _visible_ride(d: Dispatcher, ride_id: str, who: Principal) -> Ride:
    ride = d.ride(ride_id)
    if ride is None or (ride.user_id != who.user_id and not who.has_any(Role.DISPATCHER.value)):
        raise ApiError(404, "not_found", "no such ride")
    return ride


@router.post("/quote")
async def quote(
    body: RideRequestIn, who: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    """An offer (pick-up window, arrival promise, expiry) or 409 with the rejection reason."""
    d = dispatcher_of(services)
    q = await asyncio.to_thread(d.quote, body.to_request(who.user_id, d.clock()))
    if isinstance(q, Rejection):
        raise rejection_error(q)
    return q.to_dict()


@router.post("", status_code=201)
async def book(body: BookIn, who: CurrentPrincipal, services: ServicesDep) -> dict[str, Any]:
    """Book a quote, or a request in one step; the ride is assigned to a vehicle."""
    d = dispatcher_of(services)
    if body.quote_id is not None:
        res: Ride | Rejection = await asyncio.to_thread(d.book, body.quote_id, who.user_id)
    else:
        assert body.request is not None
        req = body.request.to_request(who.user_id, d.clock())
        res = await asyncio.to_thread(d.request_ride, req, who.user_id)
    if isinstance(res, Rejection):
        raise rejection_error(res)
    await persist(services, [res.zone_id])  # the booking survives a restart
    return res.to_dict()


@router.get("")
async def my_rides(who: CurrentPrincipal, services: ServicesDep) -> dict[str, Any]:
    """The caller's rides, newest first: live ones, and past ones from the database (rides of
    zones the dispatcher no longer serves included)."""
    d = dispatcher_of(services)
    live = {r.ride_id: r.to_dict() for r in d.rides(who.user_id)}
    saved = []
    if getattr(services, "engine", None) is not None:
        saved = await asyncio.to_thread(ride_history, services.engine, who.user_id)
    rides = list(live.values()) + [r for r in saved if r["ride_id"] not in live]
    rides.sort(key=lambda r: r["booked_at"], reverse=True)
    return {"rides": rides}


@router.get("/{ride_id}")
async def get_ride(ride_id: str, who: CurrentPrincipal, services: ServicesDep) -> dict[str, Any]:
    d = dispatcher_of(services)
    return _visible_ride(d, ride_id, who).to_dict()


@router.delete("/{ride_id}")
async def cancel_ride(ride_id: str, who: CurrentPrincipal, services: ServicesDep) -> dict[str, Any]:
    """Cancel a ride not yet picked up (409 ``not_cancellable`` otherwise)."""
    d = dispatcher_of(services)
    _visible_ride(d, ride_id, who)
    try:
        ride = await asyncio.to_thread(d.cancel, ride_id)
    except DispatchError as exc:
        raise ApiError(409, exc.code, exc.message) from exc
    await persist(services, [ride.zone_id])
    return ride.to_dict()

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

from typing import Any

from fastapi import APIRouter, Response
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

__all__ = ["dispatcher_of", "gateway_of", "rejection_error", "router"]

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


async def _visible_ride(g: DispatchGateway, ride_id: str, who: Principal) -> dict[str, Any]:
    found = await g.ride(ride_id)
    if found is None or (found[0] != who.user_id and not who.has_any(Role.DISPATCHER.value)):
        raise ApiError(404, "not_found", "no such ride")
    return found[1]


@router.post("/quote", response_model=QuoteOut, responses=error_responses(413))
async def quote(
    body: RideRequestIn, who: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    """An offer (pick-up window, arrival promise, expiry) or 409 with the rejection reason."""
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
    queued while its zone changes owner (202 ``pending``)."""
    g = gateway_of(services)
    if body.quote_id is not None:
        res = await g.book_quote(body.quote_id, who.user_id)
    else:
        assert body.request is not None
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


@router.delete("/{ride_id}", response_model=RideOut, response_model_exclude_unset=True)
async def cancel_ride(ride_id: str, who: CurrentPrincipal, services: ServicesDep) -> dict[str, Any]:
    """Cancel a ride not yet picked up (409 ``not_cancellable`` otherwise)."""
    g = gateway_of(services)
    await _visible_ride(g, ride_id, who)
    return await g.cancel(ride_id)

"""Trips (``/api/v1/trips``): book a planned itinerary in one step, TOMP-API states.

``POST /trips`` ``{"itinerary": <one itinerary of GET /plan>, "confirm": true}`` reserves all
the itinerary's on-demand legs (``mode: FLEX`` / ``onDemand: true``, each with its dispatcher
``bookingQuoteId`` and ``bookingRequestId``) or none of them:

* 201 CONFIRMED (``confirm: true``), or 201 PENDING held until ``expiresAt``
  (``confirm: false``; ``POST /trips/{id}/confirm`` confirms, 409 ``expired`` after it);
* 202 PENDING when a leg was queued by a zone takeover (cluster mode): settled later;
* 409 with the leg's refusal reason (``no_vehicle_available``, ``quote_changed``,
  ``quote_unknown``...) and the REJECTED trip in ``error.details.trip``: every leg already
  booked was released.

An ``Idempotency-Key`` header makes a retry (same user, same key) answer the first attempt's
trip and status code without booking again (422 ``idempotency_key_reused`` with another body,
409 ``in_progress`` if the first attempt is still running after a short wait).

Residents see only their own trips (another user's answers 404); dispatchers and admins may
read and cancel any. State changes are published on ``user.<id>.trip``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.api.schemas import AUTHED, OpenModel, error_responses
from app.identity.deps import CurrentPrincipal
from app.models.request_model import RequestModel
from app.services import ServicesDep
from app.trips.service import TripService, is_on_demand

router = APIRouter(prefix="/trips", tags=["trips"], responses=AUTHED | error_responses(404, 409))


class TripOut(OpenModel):
    """A trip (TOMP-API states): ``state`` PENDING, CONFIRMED, REJECTED, CANCELLED, EXPIRED;
    ``legs`` as booked, each on-demand one with its live ride."""

    id: str
    userId: str | None = None
    state: str
    confirmRequested: bool | None = None
    createdAt: int | None = None
    updatedAt: int | None = None
    expiresAt: int | None = Field(None, description="epoch ms; while PENDING (held)")
    error: dict[str, Any] | None = None
    itinerary: dict[str, Any] | None = None
    legs: list[dict[str, Any]]


class TripList(OpenModel):
    trips: list[TripOut]


_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": TripOut, "description": "A leg was queued by a zone takeover."}
}

MAX_LEGS = 50


class LegIn(BaseModel):
    """One itinerary leg as ``/plan`` gives it: its other fields are kept as they are."""

    model_config = ConfigDict(extra="allow")

    mode: str = Field(min_length=1, max_length=64)
    onDemand: bool | None = None
    bookingQuoteId: str | None = Field(None, min_length=1, max_length=64)
    bookingRequestId: str | None = Field(None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _bookable(self) -> LegIn:
        if is_on_demand(self.model_dump()) and not (self.bookingQuoteId and self.bookingRequestId):
            raise ValueError("an on-demand leg needs its bookingQuoteId and bookingRequestId")
        return self


class ItineraryIn(BaseModel):
    """One itinerary of ``GET /plan`` (fields other than ``legs`` are kept as they are)."""

    model_config = ConfigDict(extra="allow")

    legs: list[LegIn] = Field(min_length=1, max_length=MAX_LEGS)

    @model_validator(mode="after")
    def _distinct_quotes(self) -> ItineraryIn:
        quotes = [leg.bookingQuoteId for leg in self.legs if is_on_demand(leg.model_dump())]
        if len(set(quotes)) != len(quotes):
            raise ValueError("two on-demand legs share a bookingQuoteId")
        rides = [leg.bookingRequestId for leg in self.legs if is_on_demand(leg.model_dump())]
        if len(set(rides)) != len(rides):
            raise ValueError("two on-demand legs share a bookingRequestId")
        return self


class TripIn(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "itinerary": {
                    "legs": [
                        {
                            "mode": "FLEX",
                            "onDemand": True,
                            "bookingQuoteId": "q-3f2a9c",
                            "bookingRequestId": "r-81d0e4",
                        },
                        {"mode": "BUS", "transitLeg": True},
                    ]
                },
                "confirm": True,
            }
        }
    )

    itinerary: ItineraryIn
    confirm: bool = Field(True, description="false: hold the seats until expiresAt.")


IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
]


@router.post(
    "",
    status_code=201,
    response_model=TripOut,
    responses=_ACCEPTED | error_responses(413),
    response_model_exclude_unset=True,
)
async def book_trip(
    body: TripIn,
    who: CurrentPrincipal,
    services: ServicesDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Reserve the itinerary's on-demand legs, all or none (module docstring)."""
    itinerary = body.itinerary.model_dump(mode="json", exclude_unset=True)
    status, trip = await TripService(services).book(
        who.user_id, itinerary, body.confirm, idempotency_key
    )
    response.status_code = status
    return trip


@router.get("", response_model=TripList, response_model_exclude_unset=True)
async def my_trips(who: CurrentPrincipal, services: ServicesDep) -> dict[str, Any]:
    """The caller's trips, newest first, each with its legs' live state."""
    return {"trips": await TripService(services).mine(who.user_id)}


@router.get("/{trip_id}", response_model=TripOut, response_model_exclude_unset=True)
async def get_trip(
    trip_id: uuid.UUID, who: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    svc = TripService(services)
    return await svc.view(await svc.resolve(await svc.visible(who, trip_id)))


@router.post(
    "/{trip_id}/confirm",
    response_model=TripOut,
    responses=_ACCEPTED,
    response_model_exclude_unset=True,
)
async def confirm_trip(
    trip_id: uuid.UUID, who: CurrentPrincipal, services: ServicesDep, response: Response
) -> dict[str, Any]:
    """Confirm a held (PENDING) trip: 200 CONFIRMED; 409 ``expired`` after its hold."""
    status, trip = await TripService(services).confirm(who, trip_id)
    response.status_code = status
    return trip


@router.delete("/{trip_id}", response_model=TripOut, response_model_exclude_unset=True)
async def cancel_trip(
    trip_id: uuid.UUID, who: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    """Cancel the trip's not-yet-started on-demand legs (409 ``not_cancellable`` once a
    ride is under way or the trip is over)."""
    return await TripService(services).cancel(who, trip_id)


@router.post("/{trip_id}/cancel", response_model=TripOut, response_model_exclude_unset=True)
async def cancel_trip_post(
    trip_id: uuid.UUID, who: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    """``DELETE /trips/{id}`` for clients that cannot send DELETE."""
    return await TripService(services).cancel(who, trip_id)

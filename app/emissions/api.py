"""``/api/v1/emissions``: factors, trips residents took, and each resident's monthly ledger.

* ``GET /emissions/factors`` (public): the city's factor table with every factor's source.
* ``POST /emissions/trips`` ``{"itinerary": <an itinerary of /plan>}``: the resident took this
  planned itinerary; its CO2 is computed here from the legs and the city's factors (201).
  409 ``already_recorded`` for the same itinerary twice, 422 for one not taken yet, with an
  on-demand leg (booked rides come from the dispatcher's record), an unknown mode or an
  implausible distance.
* ``DELETE /emissions/trips/{id}``: forget one of the caller's recorded trips.
* ``GET /emissions/me/ledger?month=YYYY-MM[&format=csv]``: the caller's completed trips of the
  month with totals, the same trips by car and the saving. Only ever the caller's own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from app.api.schemas import AUTHED, BODY, PUBLIC, error_responses
from app.emissions import store
from app.emissions.calculator import (
    ItineraryError,
    endpoints,
    legs_of,
    price_itinerary,
)
from app.emissions.ledger import ledger_csv, month_of, parse_month
from app.emissions.models import TakenTrip
from app.emissions.service import EmissionsService
from app.errors import ApiError
from app.identity.deps import CurrentPrincipal

router = APIRouter(prefix="/emissions", tags=["emissions"])

#: A trip may be marked as taken this long before its planned end (a rider arriving early).
EARLY_END_S = 15 * 60


def get_emissions(request: Request) -> EmissionsService:
    """The emissions service of this process (503 while starting)."""
    services = getattr(request.app.state, "services", None)
    service = getattr(services, "emissions", None)
    if service is None:
        raise ApiError(503, "unavailable", "The emissions service is starting.")
    return service  # type: ignore[no-any-return]


EmissionsDep = Annotated[EmissionsService, Depends(get_emissions)]


class TakenTripIn(BaseModel):
    """A planned itinerary the resident took (as ``GET /api/v1/plan`` returned it)."""

    itinerary: dict[str, Any] = Field(description="One itinerary of /plan (OTP's shape)")


def _include_company_routes() -> None:
    from app.emissions.company_api import router as company_router

    router.include_router(company_router)


@router.get("/factors", responses=PUBLIC)
async def factors(service: EmissionsDep) -> dict[str, Any]:
    """The city's CO2 factors, each with its value, unit, source and year."""
    return service.table.model_dump()


def _fingerprint(itinerary: dict[str, Any]) -> str:
    legs = [
        {
            "mode": leg.get("mode"),
            "start": leg.get("startTime"),
            "end": leg.get("endTime"),
            "from": [leg.get("from", {}).get("lat"), leg.get("from", {}).get("lon")],
            "to": [leg.get("to", {}).get("lat"), leg.get("to", {}).get("lon")],
            "trip": leg.get("tripId"),
        }
        for leg in legs_of(itinerary)
    ]
    return hashlib.sha256(json.dumps(legs, sort_keys=True, default=str).encode()).hexdigest()


def _times(itinerary: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    legs = legs_of(itinerary)
    try:
        start = dt.datetime.fromtimestamp(float(legs[0]["startTime"]) / 1000.0, tz=dt.UTC)
        end = dt.datetime.fromtimestamp(float(legs[-1]["endTime"]) / 1000.0, tz=dt.UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
        raise ItineraryError("invalid_itinerary", "legs need startTime/endTime (epoch ms)") from exc
    if end < start:
        raise ItineraryError("invalid_itinerary", "the itinerary ends before it starts")
    return start, end


def _taken(
    user_id: str, itinerary: dict[str, Any], service: EmissionsService
) -> tuple[TakenTrip, store.Ends]:
    start, end = _times(itinerary)
    now = dt.datetime.now(dt.UTC)
    if end > now + dt.timedelta(seconds=EARLY_END_S):
        raise ItineraryError("not_taken_yet", "the itinerary has not been travelled yet")
    ends = endpoints(itinerary)
    priced = price_itinerary(service.table, itinerary)
    trip = TakenTrip(
        user_id=user_id,
        fingerprint=_fingerprint(itinerary),
        month=month_of(start, service.ledger.tz),
        started_at=start,
        ended_at=end,
        distance_m=priced.distance_m,
        co2_g=priced.co2_g,
        car_distance_m=priced.car_distance_m,
        car_co2_g=priced.car_co2_g,
        legs=[leg.as_json() for leg in priced.legs],
        factors=service.table.name[:200],
    )
    return trip, ends


def _taken_json(t: TakenTrip) -> dict[str, Any]:
    return {
        "id": str(t.id),
        "kind": "planned",
        "month": t.month,
        "startTime": t.started_at.isoformat(),
        "endTime": t.ended_at.isoformat(),
        "distance": round(t.distance_m, 1),
        "co2": {"co2": t.co2_g, "unit": "g"},
        "carCo2": {"co2": t.car_co2_g, "unit": "g", "distance": round(t.car_distance_m, 1)},
        "co2Saving": {"co2": t.car_co2_g - t.co2_g, "unit": "g"},
        "legs": t.legs,
        "factors": t.factors,
    }


@router.post("/trips", status_code=201, responses={**AUTHED, **BODY, **error_responses(409)})
async def record_trip(
    body: TakenTripIn, who: CurrentPrincipal, service: EmissionsDep
) -> dict[str, Any]:
    """Record a planned itinerary the caller took; answers its CO2, car CO2 and saving."""
    try:
        trip, ends = _taken(who.user_id, body.itinerary, service)
    except ItineraryError as exc:
        raise ApiError(422, exc.code, exc.message) from exc
    try:
        saved = await asyncio.to_thread(store.insert_taken_trip, service.engine, trip, ends)
    except store.AlreadyRecorded as exc:
        raise ApiError(
            409,
            "already_recorded",
            "This itinerary is already in your ledger.",
            {"id": str(exc.existing.id)},
        ) from exc
    return _taken_json(saved)


@router.delete("/trips/{trip_id}", responses={**AUTHED, **error_responses(404)})
async def forget_trip(
    trip_id: uuid.UUID, who: CurrentPrincipal, service: EmissionsDep
) -> dict[str, Any]:
    """Remove one of the caller's recorded trips (404 for any other id)."""
    gone = await asyncio.to_thread(store.delete_taken_trip, service.engine, who.user_id, trip_id)
    if not gone:
        raise ApiError(404, "not_found", "No such trip in your ledger.")
    return {"id": str(trip_id), "deleted": True}


@router.get(
    "/me/ledger",
    response_model=None,
    responses={
        **AUTHED,
        200: {
            "description": "The ledger (JSON), or with format=csv one CSV row per trip and a "
            "total row.",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        },
    },
)
async def my_ledger(
    who: CurrentPrincipal,
    service: EmissionsDep,
    month: Annotated[str | None, Query(description="YYYY-MM; the current month by default")] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> dict[str, Any] | Response:
    """The caller's completed trips of a month, totals and the saving against driving."""
    if month is None:
        month = month_of(dt.datetime.now(dt.UTC), service.ledger.tz)
    try:
        parse_month(month)
    except ValueError as exc:
        raise ApiError(400, "invalid_month", "month must be YYYY-MM (e.g. 2026-12)") from exc
    summary = await asyncio.to_thread(service.ledger.summary, who.user_id, month)
    if format == "csv":
        return Response(
            ledger_csv(summary),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="co2-{month}.csv"'},
        )
    return summary


_include_company_routes()

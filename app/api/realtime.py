"""GTFS-Realtime in and out.

* ``POST /realtime/trip-updates`` (operator): a protobuf ``FeedMessage`` with TripUpdates, as
  the raw body or as a ``.pb`` file in the multipart field ``file``; it becomes (FULL_DATASET)
  or updates (DIFFERENTIAL, by entity id) the source's part of the realtime overlay of the
  published network.
* ``GET /realtime/vehicle-positions.pb`` and ``/realtime/trip-updates.pb`` (public): Tsunagu's
  on-demand fleet as standard GTFS-RT, from ``services.feeds.fleet_provider``.
* ``GET /realtime/status``: what was last ingested and the overlay summary.
* ``GET /realtime/alerts`` and ``/realtime/vehicles`` (public): the ingested feeds' active
  service alerts (in the requested language) and transit vehicle positions, as JSON.

A POSTed FeedMessage may carry TripUpdates, VehiclePositions and Alerts together.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from app.api.feeds import announce, registry_of
from app.api.schemas import AUTHED, PUBLIC, OpenModel, error_responses
from app.errors import ApiError
from app.identity.deps import require_roles
from app.identity.principal import Principal
from app.services import ServicesDep
from gtfs.realtime import (
    RealtimeParseError,
    trip_updates_bytes,
    vehicle_positions_bytes,
)

router = APIRouter(prefix="/realtime", tags=["realtime"], responses=PUBLIC)
PROTOBUF = "application/x-protobuf"
_BINARY = {"type": "string", "format": "binary"}
_PROTOBUF_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {PROTOBUF: {"schema": _BINARY}},
        "description": "A GTFS-Realtime FeedMessage (protobuf).",
    }
}


class MessageResult(OpenModel):
    incrementality: str
    upserted: int
    deleted: int
    ignored: bool
    notices: list[Any]


class IngestOut(MessageResult):
    source: str
    trip_updates: int
    overlay: dict[str, Any] | None


class PollerOut(OpenModel):
    url: str
    polls: int
    failures: int
    last_error: str | None


class RealtimeStatus(OpenModel):
    ingested: int
    received_at: str | None
    feed_timestamp: int | None
    sources: list[str]
    trip_updates: int
    last_messages: dict[str, MessageResult]
    overlay: dict[str, Any] | None
    pollers: list[PollerOut]


class AlertOut(OpenModel):
    id: str
    source: str
    cause: Any
    effect: Any
    header: str
    description: str
    active_periods: list[list[Any]]
    informed_entities: list[dict[str, Any]]


class AlertList(OpenModel):
    at: int
    alerts: list[AlertOut]


class TransitVehicle(OpenModel):
    source: str
    vehicle_id: str | None
    label: str | None
    lat: float | None
    lon: float | None
    bearing: float | None
    speed: float | None
    timestamp: int | None
    trip_id: str | None
    route_id: str | None
    stop_id: str | None
    current_status: Any


class TransitVehicleList(OpenModel):
    vehicles: list[TransitVehicle] = Field(description="Positions of the ingested feeds.")


@router.post(
    "/trip-updates",
    response_model=IngestOut,
    responses=AUTHED | error_responses(413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A GTFS-Realtime FeedMessage: the raw protobuf body, or a `.pb` "
            "file in the multipart field `file`.",
            "content": {
                PROTOBUF: {"schema": _BINARY},
                "application/octet-stream": {"schema": _BINARY},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": _BINARY},
                        "required": ["file"],
                    }
                },
            },
        }
    },
)
async def ingest_trip_updates(
    request: Request,
    services: ServicesDep,
    _: Annotated[Principal, Depends(require_roles("operator"))],
    source: Annotated[
        str, Query(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Producer name")
    ] = "default",
) -> dict[str, Any]:
    """Ingest a FeedMessage from ``source``. A FULL_DATASET message replaces that source's
    previous entities; a DIFFERENTIAL one upserts its entities and removes its ``is_deleted``
    ones by entity id (the rest stay). Other sources (e.g. other agencies) are untouched.
    The answer says what changed and lists notices (e.g. a delete of an unknown entity)."""
    reg = registry_of(services)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        # A .pb file from a form (the operator console); a raw body otherwise (curl, producers).
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ApiError(422, "file_missing", "Send the .pb file in the form field 'file'.")
        body = await upload.read()
    else:
        body = await request.body()
    if not body:
        raise ApiError(422, "empty_body", "Send a GTFS-Realtime FeedMessage as the body.")
    try:
        feed, merged = await run_in_threadpool(reg.realtime.ingest_message, body, source)
    except RealtimeParseError as exc:
        raise ApiError(422, "invalid_gtfs_rt", str(exc)) from exc
    state = await run_in_threadpool(reg.realtime_state)
    overlays = await run_in_threadpool(reg.realtime_overlays)
    if len(overlays) > 1:  # several cities: the overlay of the one the feed matches best
        best = max(overlays, key=lambda n: (overlays[n] or {}).get("matched", 0))
        state = await run_in_threadpool(reg.realtime_state, None, reg.networks[best])
    result = {
        "source": source,
        "incrementality": merged.incrementality,
        "trip_updates": len(feed.trip_updates),
        "upserted": merged.upserted,
        "deleted": merged.deleted,
        "ignored": merged.ignored,
        "notices": list(merged.notices),
        "overlay": state.summary() if state is not None else None,
        "overlays": overlays,
    }
    await announce(services, "feeds.realtime", result)
    return result


@router.get("/status", response_model=RealtimeStatus, responses=error_responses(404))
async def realtime_status(
    services: ServicesDep,
    date: Annotated[dt.date | None, Query(description="Service date (default: network's)")] = None,
    network: Annotated[
        str | None,
        Query(
            max_length=64,
            description="The city (network) of `overlay`; default: the "
            "default network. `overlays` has every city's.",
        ),
    ] = None,
) -> dict[str, Any]:
    reg = registry_of(services)
    net = reg.network_named(network) if network else None
    state = await run_in_threadpool(reg.realtime_state, date, net)
    return {
        **reg.realtime.status(),
        "overlay": state.summary() if state is not None else None,
        "overlays": await run_in_threadpool(reg.realtime_overlays, date),
        "pollers": [
            {"url": p.url, "polls": p.polls, "failures": p.failures, "last_error": p.last_error}
            for p in reg.pollers
        ],
    }


@router.get("/alerts", response_model=AlertList)
async def alerts(
    services: ServicesDep,
    lang: Annotated[str, Query(max_length=16, description="Preferred language (ja, en...)")] = "",
    at: Annotated[int | None, Query(description="POSIX time (default: now)")] = None,
) -> dict[str, Any]:
    """Service alerts of the ingested GTFS-RT feeds that are active ``at`` (public)."""
    when = int(time.time()) if at is None else at
    out = []
    for source, feed in sorted(registry_of(services).realtime.feeds.items()):
        for a in feed.alerts:
            if not a.is_active(when):
                continue
            desc = a.description_text
            out.append(
                {
                    "id": a.entity_id,
                    "source": source,
                    "cause": a.cause,
                    "effect": a.effect,
                    "header": a.text(lang),
                    "description": desc.get(lang) or desc.get("") or next(iter(desc.values()), ""),
                    "active_periods": [list(p) for p in a.active_periods],
                    "informed_entities": [
                        {
                            k: v
                            for k, v in {
                                "agency_id": e.agency_id,
                                "route_id": e.route_id,
                                "route_type": e.route_type,
                                "direction_id": e.direction_id,
                                "trip_id": e.trip.trip_id if e.trip else None,
                                "stop_id": e.stop_id,
                            }.items()
                            if v is not None
                        }
                        for e in a.informed_entities
                    ],
                }
            )
    return {"at": when, "alerts": out}


@router.get("/vehicles", response_model=TransitVehicleList)
async def transit_vehicles(services: ServicesDep) -> dict[str, Any]:
    """Transit vehicle positions of the ingested GTFS-RT feeds, as JSON for the maps."""
    out = []
    for source, feed in sorted(registry_of(services).realtime.feeds.items()):
        for v in feed.vehicles:
            out.append(
                {
                    "source": source,
                    "vehicle_id": v.vehicle_id,
                    "label": v.label,
                    "lat": v.latitude,
                    "lon": v.longitude,
                    "bearing": v.bearing,
                    "speed": v.speed,
                    "timestamp": v.timestamp,
                    "trip_id": v.trip.trip_id if v.trip else None,
                    "route_id": v.trip.route_id if v.trip else None,
                    "stop_id": v.stop_id,
                    "current_status": v.current_status,
                }
            )
    return {"vehicles": out}


def _fleet(services: Any) -> tuple[list[Any], list[Any]]:
    provider = registry_of(services).fleet_provider
    if provider is None:
        return [], []
    vehicles, trips = provider()
    return list(vehicles), list(trips)


@router.get("/vehicle-positions.pb", response_class=Response, responses=_PROTOBUF_ANSWER)
async def vehicle_positions(services: ServicesDep) -> Response:
    """The on-demand fleet's VehiclePositions (GTFS-RT protobuf)."""
    vehicles, _ = await run_in_threadpool(_fleet, services)
    return Response(vehicle_positions_bytes(vehicles), media_type=PROTOBUF)


@router.get("/trip-updates.pb", response_class=Response, responses=_PROTOBUF_ANSWER)
async def trip_updates(services: ServicesDep) -> Response:
    """The on-demand fleet's TripUpdates with ETAs (GTFS-RT protobuf)."""
    _, trips = await run_in_threadpool(_fleet, services)
    return Response(trip_updates_bytes(trips), media_type=PROTOBUF)

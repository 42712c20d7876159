"""The dispatcher's view of the on-demand service (``/api/v1/fleet``): zones, vehicles with
their plans and ETAs, and the vehicle events endpoint drivers' apps and shuttles report to.

Every route needs the ``dispatcher`` role (``admin`` passes too). Calls go through
``services.dispatch`` (``app.dispatch.gateway``): with several processes a zone's owner that
does not answer in time gives 503 ``dispatch_busy`` (a queued command still completes later).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import Field, field_validator

from app.api.rides import LatLon, gateway_of
from app.api.schemas import AUTHED, OpenModel, error_responses
from app.errors import ApiError
from app.identity.deps import Principal, require_roles
from app.identity.roles import Role
from app.models.request_model import RequestModel
from app.services import ServicesDep
from dispatch.meeting_points import MeetingPoint, MeetingPoints
from dispatch.vehicle import VEHICLE_TYPES, Vehicle
from dispatch.zone import ServiceZone

router = APIRouter(prefix="/fleet", tags=["fleet"], responses=AUTHED | error_responses(404, 409))
_BODY = error_responses(413)


class MeetingPointOut(OpenModel):
    point_id: str
    lat: float
    lon: float
    name: str


class ZoneOut(OpenModel):
    zone_id: str
    name: str
    geometry: dict[str, Any] = Field(description="GeoJSON MultiPolygon")
    service_hours: list[list[float]]
    min_notice_s: float
    max_notice_s: float
    h3_cells: int
    meeting_points: list[MeetingPointOut]


class ZoneList(OpenModel):
    zones: list[ZoneOut]


class VehicleOut(OpenModel):
    """A vehicle with its plan (stops with ETAs), shift and position."""

    vehicle_id: str


class VehicleList(OpenModel):
    vehicles: list[VehicleOut]


class VehicleEventOut(OpenModel):
    """What the event changed (the ride, the vehicle's next stop...)."""


#: Service hours are seconds after local midnight; a window may run past 24:00 (a night
#: service) but no further than the end of the next day.
MAX_SERVICE_HOUR_S = 2 * 86400.0

#: Shift bounds and event times must lie within this many seconds of the dispatcher's clock
#: (a year): a time like 1e300 would otherwise enter the plans (and overflow what reads them).
MAX_TIME_SKEW_S = 366 * 86400.0

DispatcherPrincipal = Annotated[Principal, Depends(require_roles(Role.DISPATCHER.value))]


def check_time(name: str, t: float, now: float) -> None:
    """422 ``invalid_time`` unless ``t`` (Unix seconds) is within a year of ``now``."""
    if not abs(t - now) <= MAX_TIME_SKEW_S:  # NaN too
        raise ApiError(
            422,
            "invalid_time",
            f"{name} must be Unix seconds within {MAX_TIME_SKEW_S / 86400:.0f} days of now",
            {"field": name, "now": now},
        )


class MeetingPointIn(RequestModel):
    point_id: str = Field(min_length=1, max_length=64)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    name: str = Field("", max_length=200)


class ZoneIn(RequestModel):
    zone_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field("", max_length=200)
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon")
    service_hours: list[tuple[float, float]] = Field(
        default_factory=lambda: [(0.0, 86400.0)],
        description="(start, end) windows, seconds after local midnight, 0 <= start < end <= "
        "172800 (a window may run past midnight).",
    )
    min_notice_s: float = Field(0.0, ge=0)
    max_notice_s: float = Field(7 * 86400.0, gt=0)
    utc_offset_s: float = Field(0.0, ge=-14 * 3600, le=14 * 3600)
    meeting_points: list[MeetingPointIn] | Literal["h3"] | None = Field(
        None,
        description="Virtual stops: a list, or 'h3' to lay one out every ~460 m; none = door to door.",
    )

    @field_validator("service_hours")
    @classmethod
    def _hours(cls, hours: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for start, end in hours:
            if not 0.0 <= start < end <= MAX_SERVICE_HOUR_S:
                raise ValueError(
                    f"service hours ({start:g}, {end:g}) must satisfy 0 <= start < end <= "
                    f"{MAX_SERVICE_HOUR_S:.0f} (seconds after local midnight, at most 2 days)"
                )
        return hours


class VehicleIn(RequestModel):
    vehicle_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    zone_id: str = Field(min_length=1, max_length=64)
    vehicle_type: Literal["car", "van", "autonomous_shuttle"] = "van"
    depot: LatLon
    shift_start: float | None = Field(None, description="Unix seconds; now if absent.")
    shift_end: float


class VehicleEventIn(RequestModel):
    type: Literal["position", "arrived", "boarded", "alighted", "no_show"]
    t: float | None = Field(None, description="Unix seconds; now if absent.")
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    ride_id: str | None = Field(None, min_length=1, max_length=64)


def _zone_out(z: ServiceZone) -> dict[str, Any]:
    return {
        "zone_id": z.zone_id,
        "name": z.name,
        "geometry": {"type": "MultiPolygon", "coordinates": z.polygons},
        "service_hours": z.service_hours,
        "min_notice_s": z.min_notice_s,
        "max_notice_s": z.max_notice_s,
        "h3_cells": len(z.cells),
        "meeting_points": [
            {"point_id": p.point_id, "lat": p.lat, "lon": p.lon, "name": p.name}
            for p in (z.meeting_points.points if z.meeting_points is not None else [])
        ],
    }


@router.get("/zones", response_model=ZoneList)
async def zones(_: DispatcherPrincipal, services: ServicesDep) -> dict[str, Any]:
    return {"zones": [_zone_out(z) for z in await gateway_of(services).zones()]}


@router.post("/zones", status_code=201, response_model=ZoneOut, responses=_BODY)
async def add_zone(body: ZoneIn, _: DispatcherPrincipal, services: ServicesDep) -> dict[str, Any]:
    """Add a service zone drawn as GeoJSON."""
    g = gateway_of(services)
    try:
        zone = ServiceZone.from_geojson(
            body.zone_id,
            body.geometry,
            name=body.name,
            service_hours=[(float(a), float(b)) for a, b in body.service_hours],
            min_notice_s=body.min_notice_s,
            max_notice_s=body.max_notice_s,
            utc_offset_s=body.utc_offset_s,
        )
    except (ValueError, TypeError) as exc:
        raise ApiError(422, "invalid_zone", str(exc)) from exc
    if body.meeting_points == "h3":
        zone.meeting_points = MeetingPoints.over_zone(zone)
    elif body.meeting_points:
        outside = [p.point_id for p in body.meeting_points if not zone.contains(p.lat, p.lon)]
        if outside:
            raise ApiError(
                422, "invalid_zone", "meeting points must lie in the zone", {"outside": outside}
            )
        zone.meeting_points = MeetingPoints(
            [MeetingPoint(p.point_id, p.lat, p.lon, p.name) for p in body.meeting_points]
        )
    await g.add_zone(zone)
    return _zone_out(zone)


@router.get("/vehicles", response_model=VehicleList)
async def vehicles(
    _: DispatcherPrincipal,
    services: ServicesDep,
    zone_id: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Every vehicle (of one zone) with its plan and ETAs."""
    return {"vehicles": await gateway_of(services).vehicles(zone_id)}


@router.post("/vehicles", status_code=201, response_model=VehicleOut, responses=_BODY)
async def add_vehicle(
    body: VehicleIn, _: DispatcherPrincipal, services: ServicesDep
) -> dict[str, Any]:
    g = gateway_of(services)
    now = g.now()
    start = now if body.shift_start is None else body.shift_start
    if body.shift_end <= start:
        raise ApiError(422, "invalid_shift", "the shift must end after it starts")
    check_time("shift_start", start, now)
    check_time("shift_end", body.shift_end, now)
    depot = (body.depot.lat, body.depot.lon)
    # An unknown zone is left to the dispatcher (404 unknown_zone).
    zone = next((z for z in await g.zones() if z.zone_id == body.zone_id), None)
    if zone is not None and not zone.contains(*depot):
        raise ApiError(
            422,
            "invalid_depot",
            f"the depot must lie in zone {body.zone_id} (vehicles start and end shifts there)",
            {"depot": [body.depot.lat, body.depot.lon]},
        )
    v = Vehicle(
        body.vehicle_id,
        VEHICLE_TYPES[body.vehicle_type],
        depot,
        start,
        body.shift_end,
        depot,
        start,
        zone_id=body.zone_id,
    )
    return await g.add_vehicle(v)


@router.get("/vehicles/{vehicle_id}", response_model=VehicleOut)
async def vehicle(vehicle_id: str, _: DispatcherPrincipal, services: ServicesDep) -> dict[str, Any]:
    return await gateway_of(services).vehicle(vehicle_id)


@router.post("/vehicles/{vehicle_id}/events", response_model=VehicleEventOut, responses=_BODY)
async def vehicle_event(
    vehicle_id: str, body: VehicleEventIn, _: DispatcherPrincipal, services: ServicesDep
) -> dict[str, Any]:
    """A driver's app or a shuttle reports: position, arrived (at the next planned stop, that
    of ``ride_id``), boarded, alighted, no-show.

    A time ``t`` more than a year from now answers 422 ``invalid_time``; a position farther
    than 5 km from the zone's area 422 ``implausible_position``;
    an arrival at a stop that is not the next one 409 ``not_next_stop``; a no-show before the
    driver waited at the pick-up 409 ``no_show_too_early`` / ``no_show_too_far``.
    """
    g = gateway_of(services)
    t = g.now() if body.t is None else body.t
    check_time("t", t, g.now())
    if body.type == "position":
        if body.lat is None or body.lon is None:
            raise ApiError(422, "validation_error", "a position event needs lat and lon")
    elif body.ride_id is None:
        raise ApiError(422, "validation_error", f"a {body.type} event needs ride_id")
    try:
        return await g.vehicle_event(vehicle_id, body.type, t, body.lat, body.lon, body.ride_id)
    except ApiError as exc:
        # The zone's owner vets positions (it knows the vehicle's zone); a bad one is bad input.
        if exc.code == "implausible_position":
            raise ApiError(422, exc.code, exc.message, exc.details) from exc
        raise

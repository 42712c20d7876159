"""The dispatcher's view of the on-demand service (``/api/v1/fleet``): zones, vehicles with
their plans and ETAs, and the vehicle events endpoint drivers' apps and shuttles report to.

Every route needs the ``dispatcher`` role (``admin`` passes too).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from app.api.rides import LatLon, dispatcher_of
from app.dispatch_service import persist
from app.errors import ApiError
from app.identity.deps import Principal, require_roles
from app.identity.roles import Role
from app.models.request_model import RequestModel
from app.services import ServicesDep
from dispatch.dispatcher import Dispatcher, DispatchError
from dispatch.meeting_points import MeetingPoint, MeetingPoints
from dispatch.vehicle import VEHICLE_TYPES, Vehicle
from dispatch.zone import ServiceZone

router = APIRouter(prefix="/fleet", tags=["fleet"])

DispatcherPrincipal = Annotated[Principal, Depends(require_roles(Role.DISPATCHER.value))]


class MeetingPointIn(RequestModel):
    point_id: str = Field(min_length=1, max_length=64)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    name: str = Field("", max_length=200)


class ZoneIn(RequestModel):
    zone_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field("", max_length=200)
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon")
    service_hours: list[tuple[float, float]] = Field(default_factory=lambda: [(0.0, 86400.0)])
    min_notice_s: float = Field(0.0, ge=0)
    max_notice_s: float = Field(7 * 86400.0, gt=0)
    utc_offset_s: float = Field(0.0, ge=-14 * 3600, le=14 * 3600)
    meeting_points: list[MeetingPointIn] | Literal["h3"] | None = Field(
        None,
        description="Virtual stops: a list, or 'h3' to lay one out every ~460 m; none = door to door.",
    )


class VehicleIn(RequestModel):
    vehicle_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    zone_id: str = Field(min_length=1, max_length=64)
    vehicle_type: Literal["car", "van", "autonomous_shuttle"] = "van"
    depot: LatLon
    shift_start: float | None = Field(None, description="Unix seconds; now if absent.")
    shift_end: float


class VehicleEventIn(RequestModel):
    type: Literal["position", "boarded", "alighted", "no_show"]
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


def _vehicle_out(d: Dispatcher, v: Vehicle) -> dict[str, Any]:
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


def _fail(exc: DispatchError) -> ApiError:
    status = 404 if exc.code.startswith("unknown") else 409
    return ApiError(status, exc.code, exc.message)


@router.get("/zones")
async def zones(_: DispatcherPrincipal, services: ServicesDep) -> dict[str, Any]:
    return {"zones": [_zone_out(z) for z in dispatcher_of(services).zones()]}


@router.post("/zones", status_code=201)
async def add_zone(body: ZoneIn, _: DispatcherPrincipal, services: ServicesDep) -> dict[str, Any]:
    """Add a service zone drawn as GeoJSON."""
    d = dispatcher_of(services)
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
    try:
        d.add_zone(zone)
    except DispatchError as exc:
        raise _fail(exc) from exc
    await persist(services, [zone.zone_id])
    return _zone_out(zone)


@router.get("/vehicles")
async def vehicles(
    _: DispatcherPrincipal,
    services: ServicesDep,
    zone_id: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Every vehicle (of one zone) with its plan and ETAs."""
    d = dispatcher_of(services)
    try:
        return {"vehicles": [_vehicle_out(d, v) for v in d.vehicles(zone_id)]}
    except DispatchError as exc:
        raise _fail(exc) from exc


@router.post("/vehicles", status_code=201)
async def add_vehicle(
    body: VehicleIn, _: DispatcherPrincipal, services: ServicesDep
) -> dict[str, Any]:
    d = dispatcher_of(services)
    start = d.clock() if body.shift_start is None else body.shift_start
    if body.shift_end <= start:
        raise ApiError(422, "invalid_shift", "the shift must end after it starts")
    depot = (body.depot.lat, body.depot.lon)
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
    try:
        d.add_vehicle(v)
    except DispatchError as exc:
        raise _fail(exc) from exc
    await persist(services, [v.zone_id])
    return _vehicle_out(d, v)


@router.get("/vehicles/{vehicle_id}")
async def vehicle(vehicle_id: str, _: DispatcherPrincipal, services: ServicesDep) -> dict[str, Any]:
    d = dispatcher_of(services)
    try:
        return _vehicle_out(d, d.vehicle(vehicle_id))
    except DispatchError as exc:
        raise _fail(exc) from exc


@router.post("/vehicles/{vehicle_id}/events")
async def vehicle_event(
    vehicle_id: str, body: VehicleEventIn, _: DispatcherPrincipal, services: ServicesDep
) -> dict[str, Any]:
    """A driver's app or a shuttle reports: position, boarded, alighted, no-show."""
    d = dispatcher_of(services)
    t = d.clock() if body.t is None else body.t
    try:
        if body.type == "position":
            if body.lat is None or body.lon is None:
                raise ApiError(422, "validation_error", "a position event needs lat and lon")
            await asyncio.to_thread(d.update_position, vehicle_id, body.lat, body.lon, t)
        else:
            if body.ride_id is None:
                raise ApiError(422, "validation_error", f"a {body.type} event needs ride_id")
            action = {"boarded": d.boarded, "alighted": d.alighted, "no_show": d.no_show}[body.type]
            await asyncio.to_thread(action, vehicle_id, body.ride_id, t)
        v = d.vehicle(vehicle_id)
        if body.type != "position":  # positions are saved periodically; statuses at once
            await persist(services, [v.zone_id])
        return _vehicle_out(d, v)
    except DispatchError as exc:
        raise _fail(exc) from exc

"""The dispatcher console's API (``/api/v1/dispatcher``): what a dispatcher sees and does.

Reads: the open and active rides named by their places and riders, each vehicle's plan (stops,
ETAs, load), live KPIs, the rides whose promise is at risk, residents found by name or
telephone, the audit log. Actions: move a ride to another vehicle, cancel a ride with a
reason, mark a no-show, take a vehicle out of service / send it to its depot / put it back,
add a vehicle to a shift, book a ride in a resident's account (a telephone booking).

Every route needs the ``dispatcher`` role (``admin`` passes too). Every action, done or
refused, is written to the audit log (``dispatch_audit``) with who did it. Actions go through
``services.dispatch`` as zone commands (``dispatch.scale_out.handle``): in this process, or
queued for the zone's owner when scaled out (503 ``dispatch_busy`` if it does not answer).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response
from pydantic import Field

from app.api.fleet import DispatcherPrincipal, VehicleIn
from app.api.fleet import add_vehicle as fleet_add_vehicle
from app.api.plan import network_planner
from app.api.rides import RideOut, RideRequestIn, booking_city, gateway_of
from app.api.schemas import AUTHED, OpenModel, error_responses
from app.dispatch.console import (
    OPEN_STATUSES,
    PlaceNamer,
    find_residents,
    kpis,
    read_audit,
    record_action,
    rides_since,
    risk_of,
    users_by_id,
)
from app.dispatch.gateway import DispatchGateway, _rejected, dispatch_error
from app.errors import ApiError
from app.feeds.dispatch_zones import zones_of_network
from app.identity.deps import Principal
from app.models.identity import User
from app.models.request_model import RequestModel
from app.services import ServicesDep
from dispatch.scale_out import (
    cancel_message,
    no_show_message,
    reassign_message,
    vehicle_service_message,
)

router = APIRouter(
    prefix="/dispatcher", tags=["dispatcher"], responses=AUTHED | error_responses(404, 409)
)
_BODY = error_responses(413)

Reason = Annotated[str, Field(min_length=1, max_length=500)]

#: The city (network) a list is for: only the rides, vehicles and KPIs of the on-demand zones
#: lying in it (``GET /network`` ``networks``); every zone when absent.
City = Annotated[
    str | None,
    Query(
        max_length=64,
        description="only the zones lying in this city: a network (region) name or a feed "
        "of it, as listed by `GET /network` `networks`; 404 `unknown_network` when none is "
        "published by that name (as `GET /plan?city=`); default: every zone",
    ),
]
_CITY = error_responses(404)


class RidesOut(OpenModel):
    """Open (assigned) and active (on board) rides, soonest pick-up first, each with
    ``rider``, ``pickup_place``, ``dropoff_place`` and ``risk`` (late, at_risk or null)."""

    now: float
    utc_offset_s: float
    rides: list[dict[str, Any]]


class PlansOut(OpenModel):
    """Every vehicle with its plan: each stop's place, rider, ETA, window, load after it."""

    now: float
    utc_offset_s: float
    vehicles: list[dict[str, Any]]


class KpisOut(OpenModel):
    now: float
    requests: int
    served_share: float | None
    mean_wait_s: float | None
    occupancy: float | None
    at_risk: int
    late: int


class AlertsOut(OpenModel):
    """Rides whose live ETA breaks (``late``) or nearly breaks (``at_risk``) their promise."""

    now: float
    utc_offset_s: float
    alerts: list[dict[str, Any]]


class ResidentsOut(OpenModel):
    residents: list[dict[str, Any]]


class AuditOut(OpenModel):
    entries: list[dict[str, Any]]


class ActionOut(OpenModel):
    """What the action did (``ride`` or ``vehicle``, ``moved``/``cancelled`` rides) and its
    ``audit`` entry."""

    audit: dict[str, Any]


class ReassignIn(RequestModel):
    vehicle_id: str = Field(min_length=1, max_length=64)
    reason: str = Field("", max_length=500)


class ReasonIn(RequestModel):
    reason: Reason


class OptionalReasonIn(RequestModel):
    reason: str = Field("", max_length=500)


class ServiceIn(RequestModel):
    action: Literal["out_of_service", "to_depot", "in_service"]
    reason: str = Field("", max_length=500)


class AddVehicleIn(VehicleIn):
    reason: str = Field("", max_length=500)


class BookForIn(RequestModel):
    request: RideRequestIn
    reason: str = Field("", max_length=500, description="e.g. 'booked by telephone'")


# --- helpers ----------------------------------------------------------------------------------
async def _audit(
    services: Any,
    who: Principal,
    action: str,
    kind: str,
    target: str,
    reason: str,
    outcome: str = "done",
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return await record_action(services.engine, who, action, kind, target, reason, outcome, details)


async def _refused(
    services: Any, who: Principal, action: str, kind: str, target: str, reason: str, exc: ApiError
) -> ApiError:
    """Record a refused action; the error to raise."""
    await _audit(services, who, action, kind, target, reason, exc.code, {"message": exc.message})
    return exc


def _outcome_error(out: dict[str, Any]) -> ApiError | None:
    if "rejected" in out:
        return _rejected(str(out["rejected"]), str(out.get("message", "")), None)
    if "error" in out:
        return dispatch_error(str(out["error"]), str(out.get("message", "")))
    return None


class CityView:
    """What one of the console's lists is limited to: the zones of a city (every zone when
    no city is asked for), the local time to show, and the network naming the places."""

    def __init__(self, zone_ids: set[str] | None, utc_offset_s: float, network: Any) -> None:
        self.zone_ids = zone_ids
        self.utc_offset_s = utc_offset_s
        self.network = network

    def holds(self, item: dict[str, Any]) -> bool:
        """Whether a ride or vehicle (by its ``zone_id``) is in the view."""
        return self.zone_ids is None or str(item.get("zone_id")) in self.zone_ids


async def _city_view(services: Any, g: DispatchGateway, city: str | None) -> CityView:
    """The view of ``city`` (None: every zone, times in the first zone's local time, places
    named after the default network's stops); 404 ``unknown_network`` for a name no
    published network or feed has, as ``GET /plan?city=`` and ``GET /network?network=``."""
    zones = await g.zones()
    if not city:
        return CityView(None, float(zones[0].utc_offset_s) if zones else 0.0, None)
    reg = services.feeds
    if reg is None:
        raise ApiError(404, "unknown_network", "No network is published.", {"param": "city"})
    try:
        net = reg.network_named(city)
    except ApiError as exc:
        details = {"param": "city", **(exc.details or {})}
        raise ApiError(exc.status_code, exc.code, exc.message, details) from exc
    mine = zones_of_network(reg, zones, net)
    # The city's own local time: Nevada's rides are not shown on Muroran's clock.
    offset = float(mine[0].utc_offset_s) if mine else 0.0
    return CityView({z.zone_id for z in mine}, offset, net)


async def _namer(services: Any, network: Any = None) -> PlaceNamer | None:
    """Names places after the stops of ``network`` (a city), else of the default network."""
    try:
        np_ = await network_planner(services, network)
    except ApiError:  # no network published: places by coordinates
        return None
    namer = np_.extra.get("console_places")
    if namer is None:
        tt = np_.planner.tt
        ja = [str(n) for n in tt.stop_names]
        en_map = np_.translations.get("en", {})
        en = [en_map.get(i, ja[i]) for i in range(len(ja))]
        namer = PlaceNamer(tt.stop_lat, tt.stop_lon, ja, en)
        np_.extra["console_places"] = namer
    return namer  # type: ignore[no-any-return]


def _place(namer: PlaceNamer | None, point: list[float] | None) -> dict[str, Any] | None:
    if point is None:
        return None
    if namer is None:
        return {"lat": point[0], "lon": point[1], "name_ja": None, "name_en": None}
    return namer.name(float(point[0]), float(point[1]))


def _rider(users: dict[str, User], user_id: str) -> dict[str, Any]:
    u = users.get(user_id)
    if u is None:
        return {"user_id": user_id, "display_name": None, "phone": None}
    return {"user_id": user_id, "display_name": u.display_name, "phone": u.phone}


async def _ride_zone(g: DispatchGateway, ride_id: str) -> tuple[str, dict[str, Any]]:
    found = await g.ride(ride_id)
    if found is None or "zone_id" not in found[1]:
        raise ApiError(404, "unknown_ride", "no such ride")
    return str(found[1]["zone_id"]), found[1]


async def _annotated_rides(
    services: Any, rides: list[dict[str, Any]], network: Any = None
) -> list[dict[str, Any]]:
    namer = await _namer(services, network)
    users = await asyncio.to_thread(
        users_by_id, services.engine, {str(r.get("user_id", "")) for r in rides}
    )
    out = []
    for r in rides:
        out.append(
            {
                **r,
                "rider": _rider(users, str(r.get("user_id", ""))),
                "pickup_place": _place(namer, r.get("origin")),
                "dropoff_place": _place(namer, r.get("destination")),
                "risk": risk_of(r),
            }
        )
    return out


# --- reads ------------------------------------------------------------------------------------
@router.get("/rides", response_model=RidesOut, responses=_CITY)
async def open_rides(
    _: DispatcherPrincipal, services: ServicesDep, city: City = None
) -> dict[str, Any]:
    """Open and active rides (of ``city``'s zones), soonest pick-up (or drop-off, on board)
    first."""
    g = gateway_of(services)
    view = await _city_view(services, g, city)
    live = [r for r in await g.live_rides() if r.get("status") in OPEN_STATUSES and view.holds(r)]
    rides = await _annotated_rides(services, live, view.network)
    rides.sort(
        key=lambda r: float(
            (r.get("eta_pickup") if r["status"] == "assigned" else r.get("eta_dropoff")) or 0.0
        )
    )
    return {"now": g.now(), "utc_offset_s": view.utc_offset_s, "rides": rides}


@router.get("/vehicles", response_model=PlansOut, responses=_CITY)
async def plans(_: DispatcherPrincipal, services: ServicesDep, city: City = None) -> dict[str, Any]:
    """Every vehicle (of ``city``'s zones) and its plan: stops with places, riders, ETAs,
    windows and the load (seats and wheelchairs taken) when the vehicle leaves each stop."""
    g = gateway_of(services)
    view = await _city_view(services, g, city)
    vehicles = [v for v in await g.vehicles(None) if view.holds(v)]
    rides = {r["ride_id"]: r for r in await g.live_rides()}
    namer = await _namer(services, view.network)
    users = await asyncio.to_thread(
        users_by_id, services.engine, {str(r.get("user_id", "")) for r in rides.values()}
    )
    for v in vehicles:
        seats = sum(int(rides.get(rid, {}).get("seats") or 0) for rid in v["onboard"])
        wc = sum(int(rides.get(rid, {}).get("wheelchairs") or 0) for rid in v["onboard"])
        v["load"] = {"seats": seats, "wheelchairs": wc}
        for s in v["plan"]:
            r = rides.get(s["ride_id"], {})
            sign = 1 if s["kind"] == "pickup" else -1
            seats += sign * int(r.get("seats") or 0)
            wc += sign * int(r.get("wheelchairs") or 0)
            s["load_after"] = {"seats": seats, "wheelchairs": wc}
            s["place"] = _place(namer, [s["lat"], s["lon"]])
            s["rider"] = _rider(users, str(r.get("user_id", "")))
            s["late"] = s["eta"] > s["window"][1]
    vehicles.sort(key=lambda v: v["vehicle_id"])
    return {"now": g.now(), "utc_offset_s": view.utc_offset_s, "vehicles": vehicles}


def _local_midnight(now: float, utc_offset_s: float) -> float:
    return now - ((now + utc_offset_s) % 86400.0)


@router.get("/kpis", response_model=KpisOut, responses=_CITY)
async def live_kpis(
    _: DispatcherPrincipal, services: ServicesDep, city: City = None
) -> dict[str, Any]:
    """Today's (local day of the zone, of ``city``'s zones) requests, served share, mean
    wait, and the fleet's occupancy now; with the number of rides at risk and late.
    Definitions: ``app.dispatch.console.kpis``."""
    g = gateway_of(services)
    now = g.now()
    view = await _city_view(services, g, city)
    since = _local_midnight(now, view.utc_offset_s)
    live = [r for r in await g.live_rides() if view.holds(r)]
    saved = await asyncio.to_thread(rides_since, services.engine, since)
    merged = {r["ride_id"]: r for r in saved if view.holds(r)}
    merged.update({r["ride_id"]: r for r in live})  # live wins: it is newer
    rides = list(merged.values())
    vehicles = [v for v in await g.vehicles(None) if view.holds(v)]
    out = kpis(rides, vehicles, since)
    risks = [risk_of(r) for r in live]
    out.update(now=now, at_risk=risks.count("at_risk"), late=risks.count("late"))
    return out


@router.get("/alerts", response_model=AlertsOut, responses=_CITY)
async def alerts(
    _: DispatcherPrincipal, services: ServicesDep, city: City = None
) -> dict[str, Any]:
    """Rides (of ``city``'s zones) whose promised window is at risk or already broken, the
    worst first."""
    g = gateway_of(services)
    view = await _city_view(services, g, city)
    live = [r for r in await g.live_rides() if risk_of(r) is not None and view.holds(r)]
    rides = await _annotated_rides(services, live, view.network)
    rides.sort(key=lambda r: (r["risk"] != "late", float(r.get("eta_pickup") or 0.0)))
    return {"now": g.now(), "utc_offset_s": view.utc_offset_s, "alerts": rides}


@router.get("/residents", response_model=ResidentsOut)
async def residents(
    _: DispatcherPrincipal,
    services: ServicesDep,
    q: Annotated[str, Query(min_length=2, max_length=100, description="name, e-mail or phone")],
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> dict[str, Any]:
    """Residents whose name or e-mail contains ``q``, or whose telephone number contains
    its digits (a resident calling to book)."""
    found = await asyncio.to_thread(find_residents, services.engine, q, limit)
    return {"residents": found}


@router.get("/audit", response_model=AuditOut)
async def audit_log(
    _: DispatcherPrincipal,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    target_id: Annotated[str | None, Query(max_length=160)] = None,
) -> dict[str, Any]:
    """The dispatchers' actions, newest first: who, what, on what, why, and the outcome."""
    return {"entries": await asyncio.to_thread(read_audit, services.engine, limit, target_id)}


# --- actions ----------------------------------------------------------------------------------
#: A retried action (``Idempotency-Key``) is answered its first attempt's recorded outcome by
#: the gateway (``DispatchGateway.command``), not applied twice nor answered 503.
IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", max_length=255, include_in_schema=False)
]


async def _zone_command(
    services: Any,
    who: Principal,
    action: str,
    target: tuple[str, str],
    reason: str,
    msg: dict[str, Any],
    idempotency_key: str | None,
) -> dict[str, Any]:
    """Send a console command for ``target`` (kind ``ride`` or ``vehicle``, id) to its zone's
    owner; its outcome, or the refusal (any error on the way included) audited and raised."""
    g = gateway_of(services)
    kind, target_id = target
    try:
        if kind == "ride":
            zone_id, _ = await _ride_zone(g, target_id)
        else:
            zone_id = await g.zone_of_vehicle(target_id)
        out = await g.command(zone_id, msg, action_id=idempotency_key)
    except ApiError as exc:
        raise await _refused(services, who, action, kind, target_id, reason, exc) from exc
    err = _outcome_error(out)
    if err is not None:
        raise await _refused(services, who, action, kind, target_id, reason, err)
    return out


async def _ride_command(
    services: Any,
    who: Principal,
    action: str,
    ride_id: str,
    reason: str,
    msg: dict[str, Any],
    idempotency_key: str | None,
) -> dict[str, Any]:
    out = await _zone_command(
        services, who, action, ("ride", ride_id), reason, msg, idempotency_key
    )
    found = await gateway_of(services).ride(ride_id)
    rider = found[0] if found is not None else ""
    users = await asyncio.to_thread(users_by_id, services.engine, {rider})
    details = {k: out["ride"].get(k) for k in ("vehicle_id", "status")}
    # The log stays readable after the ride leaves the open list: whose ride it was.
    details["rider"] = _rider(users, rider)["display_name"]
    entry = await _audit(services, who, action, "ride", ride_id, reason, details=details)
    return {"ride": out["ride"], "audit": entry}


@router.post("/rides/{ride_id}/reassign", response_model=ActionOut, responses=_BODY)
async def reassign(
    ride_id: str,
    body: ReassignIn,
    who: DispatcherPrincipal,
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Move a booked ride to ``vehicle_id``; 409 ``no_vehicle_available`` when that vehicle
    cannot keep its promised window (nothing changes)."""
    msg = reassign_message(ride_id, body.vehicle_id)
    return await _ride_command(
        services, who, "reassign", ride_id, body.reason, msg, idempotency_key
    )


@router.post("/rides/{ride_id}/cancel", response_model=ActionOut, responses=_BODY)
async def cancel(
    ride_id: str,
    body: ReasonIn,
    who: DispatcherPrincipal,
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Cancel a ride not yet picked up, with a reason the rider is told."""
    msg = cancel_message(ride_id, reason=body.reason)
    return await _ride_command(services, who, "cancel", ride_id, body.reason, msg, idempotency_key)


@router.post("/rides/{ride_id}/no-show", response_model=ActionOut, responses=_BODY)
async def no_show(
    ride_id: str,
    body: OptionalReasonIn,
    who: DispatcherPrincipal,
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Mark a no-show (once the pick-up window has opened; 409 ``no_show_too_early``)."""
    msg = no_show_message(ride_id, body.reason)
    return await _ride_command(services, who, "no_show", ride_id, body.reason, msg, idempotency_key)


@router.post("/vehicles/{vehicle_id}/service", response_model=ActionOut, responses=_BODY)
async def vehicle_service(
    vehicle_id: str,
    body: ServiceIn,
    who: DispatcherPrincipal,
    services: ServicesDep,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Take a vehicle out of service, send it to its depot, or put it back in service. Out
    of service, its rides not yet picked up go to other vehicles that keep their promise, or
    are cancelled (``cancelled``; their riders are told)."""
    action = body.action
    msg = vehicle_service_message(vehicle_id, action)
    target = ("vehicle", vehicle_id)
    out = await _zone_command(services, who, action, target, body.reason, msg, idempotency_key)
    details = {"moved": out.get("moved", {}), "cancelled": out.get("cancelled", [])}
    entry = await _audit(services, who, action, "vehicle", vehicle_id, body.reason, details=details)
    g = gateway_of(services)
    return {**details, "vehicle": await g.vehicle(vehicle_id), "audit": entry}


@router.post("/vehicles", status_code=201, response_model=ActionOut, responses=_BODY)
async def add_vehicle(
    body: AddVehicleIn, who: DispatcherPrincipal, services: ServicesDep
) -> dict[str, Any]:
    """Add a vehicle to a shift (``shift_start`` now if absent, ``shift_end``) at a depot in
    its zone."""
    try:
        v = await fleet_add_vehicle(body, who, services)
    except ApiError as exc:
        raise await _refused(
            services, who, "add_vehicle", "vehicle", body.vehicle_id, body.reason, exc
        ) from exc
    details = {"zone_id": body.zone_id, "shift": v.get("shift"), "type": body.vehicle_type}
    entry = await _audit(
        services, who, "add_vehicle", "vehicle", body.vehicle_id, body.reason, details=details
    )
    return {"vehicle": v, "audit": entry}


@router.post(
    "/residents/{user_id}/rides",
    status_code=201,
    response_model=ActionOut,
    responses={
        202: {"model": ActionOut, "description": "Queued (zone changing owner)."},
        **_BODY,
        **error_responses(422),
    },
)
async def book_for(
    user_id: uuid.UUID,
    body: BookForIn,
    who: DispatcherPrincipal,
    services: ServicesDep,
    response: Response,
) -> dict[str, Any]:
    """Book a ride in a resident's account (they called by telephone), through the same
    booking path as their own: the ride is theirs (their list, their notifications). The
    places must lie in one city's network: 422 ``different_networks`` otherwise (as
    ``GET /plan``; audited as refused); the audit entry names the city."""
    g = gateway_of(services)
    target = str(user_id)
    users = await asyncio.to_thread(users_by_id, services.engine, {target})
    user = users.get(target)
    if user is None or user.disabled:
        raise ApiError(404, "user_not_found", "No such resident.", {"id": target})
    reason = body.reason or "booked by telephone"
    try:
        city = booking_city(services, body.request)
        res = await g.book_request(body.request.to_request(target, g.now()))
    except ApiError as exc:
        raise await _refused(services, who, "book_on_behalf", "user", target, reason, exc) from exc
    ride = res.body
    details = {
        "ride_id": ride.get("ride_id") or ride.get("request_id"),
        "status": ride["status"],
        "resident": user.display_name,
        "city": city.name if city is not None else None,
    }
    entry = await _audit(services, who, "book_on_behalf", "user", target, reason, details=details)
    response.status_code = res.status_code
    return {"ride": RideOut.model_validate(ride).model_dump(exclude_unset=True), "audit": entry}

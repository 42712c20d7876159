"""The planning API (role ``city_planner``; admins pass): service levels, accessibility, hubs
and scenarios over the published network. See :mod:`app.planning.service` for what is kept.

Times of day are seconds after midnight of the feed's service day; dates are the feed's own
(default: its busiest day in the first week, chosen by gtfs-kit).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from app.api.schemas import AUTHED, BODY, error_responses
from app.errors import ApiError
from app.identity.deps import Principal, require_roles
from app.planning.demo import zone_provider
from app.planning.scenarios import EditError, ScenarioSpec, run_scenario
from app.planning.service import DESTINATIONS, POPULATION, PlanningService, planning_of
from gtfs.service_levels import (
    DEFAULT_BANDS,
    cells_geojson,
    geojson_text,
    parse_bands,
)
from routing.access import (
    OnDemand,
    cell_times,
    departure_times,
    isochrone,
    population_share,
    read_destinations,
    read_population,
)
from routing.access.hubs import rank_hubs

Planner = Annotated[Principal, Depends(require_roles("city_planner"))]
FeedQuery = Annotated[
    str | None, Query(max_length=64, description="a published feed (default: the first)")
]

router = APIRouter(prefix="/planning", tags=["planning"], responses={**AUTHED, **BODY})
GEOJSON = "application/geo+json"
MAX_UPLOAD = 8 * 2**20


def _svc(request: Request) -> PlanningService:
    return planning_of(request.app)


def _services(request: Request) -> Any:
    return request.app.state.services


def _engine(request: Request) -> Any:
    return _services(request).engine


@router.get("/network")
async def planning_network(
    request: Request,
    _: Planner,
    feed: FeedQuery = None,
) -> dict[str, Any]:
    """The published feeds planners may analyse (``feeds``, by feed id) and the chosen one
    (``feed``, default the first): its default analysis date, routes, and what is uploaded."""
    svc = _svc(request)
    feeds = await run_in_threadpool(svc.published_feeds, _services(request))
    v = await run_in_threadpool(svc.view, _services(request), feed)
    dest = await run_in_threadpool(svc.destinations, _engine(request))
    pop = await run_in_threadpool(svc.population, _engine(request))
    routes = v.feed.routes
    return {
        "feed_id": v.feed_id,
        "version_id": v.published.version_id,
        "feeds": [{"feed_id": f.feed_id, "version_id": f.version_id} for f in feeds],
        "default_date": v.default_day.isoformat(),
        "routes": [
            {
                "route_id": str(r["route_id"]),
                "name": str(r.get("route_short_name") or r.get("route_long_name") or ""),
            }
            for r in routes.to_dict("records")
        ],
        "stops": int(v.timetable.n_stops),
        "bbox": [
            float(v.timetable.stop_lon.min()),
            float(v.timetable.stop_lat.min()),
            float(v.timetable.stop_lon.max()),
            float(v.timetable.stop_lat.max()),
        ],
        "destinations": 0 if dest is None else len(dest[1]),
        "destination_kinds": [] if dest is None else dest[1].kinds(),
        "population_cells": 0 if pop is None else len(pop[1].people),
    }


@router.get(
    "/service-levels",
    responses={200: {"content": {"text/csv": {}, GEOJSON: {}}}},
)
async def service_levels(
    request: Request,
    _: Planner,
    level: Literal["routes", "stops", "hexagons"] = "routes",
    format: Literal["json", "csv", "geojson"] = "json",
    date: dt.date | None = None,
    bands: Annotated[str | None, Query(description="name=HH:MM-HH:MM,...")] = None,
    band: str | None = None,
    resolution: Annotated[int, Query(ge=5, le=11)] = 8,
    feed: FeedQuery = None,
) -> Any:
    """Trips, headways (min), service hours and km, first/last departures per route or stop
    and time band (gtfs-kit); stops summed on H3 hexagons; JSON, CSV or GeoJSON."""
    try:
        bs = parse_bands(bands) if bands else DEFAULT_BANDS
    except ValueError as exc:
        raise ApiError(422, "invalid_bands", str(exc)) from exc
    svc = _svc(request)
    sl = await run_in_threadpool(svc.service_levels, _services(request), date, bs, feed)
    names = [b.name for b in bs]
    if band is not None and band not in names:
        raise ApiError(422, "invalid_band", f"band must be one of {names}")
    if level == "hexagons":
        hb = band or names[0]
        if format == "csv":
            return Response(sl.hexagons(hb, resolution).to_csv(index=False), media_type="text/csv")
        gj = cells_geojson(sl.hexagons(hb, resolution))
        if format == "geojson":
            return Response(geojson_text(gj), media_type=GEOJSON)
        return {"date": sl.date.isoformat(), "band": hb, "hexagons": gj}
    df = sl.routes if level == "routes" else sl.stops
    if band is not None:
        df = df[df["band"] == band]
    if format == "csv":
        return Response(
            df.to_csv(index=False),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{level}.csv"'},
        )
    if format == "geojson":
        gj = sl.routes_geojson(band) if level == "routes" else sl.stops_geojson(band)
        return Response(geojson_text(gj), media_type=GEOJSON)
    rows = json.loads(df.to_json(orient="records", force_ascii=False))
    return {"date": sl.date.isoformat(), "bands": names, "rows": rows}


@router.get("/hubs")
async def hubs(
    request: Request,
    _: Planner,
    date: dt.date | None = None,
    top: Annotated[int, Query(ge=1, le=500)] = 20,
    feed: FeedQuery = None,
) -> dict[str, Any]:
    """Stops ranked as hubs: betweenness in the stop/route graph (networkx) and departures."""
    svc = _svc(request)
    v = await run_in_threadpool(svc.view, _services(request), feed)
    day = date or v.default_day
    try:
        df = await run_in_threadpool(rank_hubs, v.data, day, top)
    except ValueError as exc:
        raise ApiError(422, "no_service", str(exc)) from exc
    return {
        "feed": v.feed_id,
        "date": day.isoformat(),
        "hubs": json.loads(df.to_json(orient="records", force_ascii=False)),
    }


async def _body_text(request: Request) -> str:
    body = await request.body()
    if len(body) > MAX_UPLOAD:
        raise ApiError(413, "too_large", f"uploads are limited to {MAX_UPLOAD} bytes")
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        f = form.get("file")
        if f is None or isinstance(f, str):
            raise ApiError(422, "invalid_upload", "multipart upload needs a 'file' part")
        body = await f.read()
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError(422, "invalid_upload", "uploads must be UTF-8 text") from exc


@router.put("/destinations")
async def upload_destinations(request: Request, who: Planner) -> dict[str, Any]:
    """Destinations as CSV (``name, kind, lat, lon``) or a GeoJSON FeatureCollection of points
    (``name``, ``kind`` properties); replaces the previous upload for every planner (kept in
    the database)."""
    text = await _body_text(request)
    try:
        dest = read_destinations(text)
    except ValueError as exc:
        raise ApiError(422, "invalid_destinations", str(exc)) from exc
    summary = {"destinations": len(dest), "kinds": dest.kinds()}
    uid = await run_in_threadpool(
        _svc(request).save_upload, _engine(request), DESTINATIONS, text, dest, summary, who
    )
    return {**summary, "id": str(uid)}


@router.get("/destinations", responses={200: {"content": {GEOJSON: {}}}, **error_responses(404)})
async def destinations(request: Request, _: Planner) -> Response:
    d = await run_in_threadpool(_svc(request).destinations, _engine(request))
    if d is None:
        raise ApiError(404, "no_destinations", "No destinations are uploaded yet.")
    return Response(geojson_text(d[1].to_geojson()), media_type=GEOJSON)


@router.put("/population")
async def upload_population(request: Request, who: Planner) -> dict[str, Any]:
    """A census grid as CSV: JIS mesh code, population (e-Stat's mesh files; header optional);
    replaces the previous upload for every planner (kept in the database)."""
    text = await _body_text(request)
    try:
        pop = read_population(text)
    except ValueError as exc:
        raise ApiError(422, "invalid_population", str(exc)) from exc
    summary = {"cells": len(pop.people), "residents": int(pop.people.sum())}
    uid = await run_in_threadpool(
        _svc(request).save_upload, _engine(request), POPULATION, text, pop, summary, who
    )
    return {**summary, "id": str(uid)}


class Window(BaseModel):
    feed: str | None = Field(
        None, max_length=64, description="a published feed (default: the first)"
    )
    date: dt.date | None = None
    start: int = Field(8 * 3600, ge=0, le=36 * 3600, description="seconds after midnight")
    window_min: int = Field(60, ge=1, le=240)
    departures: int = Field(12, ge=1, le=60)
    resolution: int = Field(9, ge=6, le=10)
    on_demand: bool = Field(False, description="add the live on-demand zones' rides")
    wait_min: int = Field(10, ge=0, le=60)


class IsochroneQuery(Window):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    max_minutes: int = Field(60, ge=1, le=180)


class AccessQuery(Window):
    minutes: int = Field(30, ge=1, le=180)
    kind: str | None = None


async def _on_demand(request: Request, q: Window, tt: Any) -> OnDemand | None:
    if not q.on_demand:
        return None
    gateway = getattr(_services(request), "dispatch", None)
    zones = [] if gateway is None else await gateway.zones()
    if not zones:
        raise ApiError(422, "no_zone", "No on-demand zone is running.")
    return OnDemand(zone_provider(tt, list(zones), []), wait_s=q.wait_min * 60)


@router.post("/isochrone", responses={200: {"content": {GEOJSON: {}}}})
async def post_isochrone(request: Request, q: IsochroneQuery, _: Planner) -> Response:
    """H3 cells reached from a point: median minutes over the departure window."""
    svc = _svc(request)
    eng = await run_in_threadpool(svc.engine, _services(request), q.date, q.feed)
    od = await _on_demand(request, q, eng.data.tt)
    deps = departure_times(q.start, q.window_min * 60, q.departures)
    iso = await run_in_threadpool(
        isochrone, eng, q.lat, q.lon, deps, q.resolution, q.max_minutes, od
    )
    rows = [{"h3": c, "minutes": m} for c, m in iso.items()]
    import pandas as pd

    gj = cells_geojson(pd.DataFrame(rows, columns=["h3", "minutes"]))
    return Response(geojson_text(gj), media_type=GEOJSON)


@router.post("/access")
async def post_access(request: Request, q: AccessQuery, _: Planner) -> dict[str, Any]:
    """Median minutes from every H3 cell to the nearest uploaded destination (of ``kind``),
    and, with a population grid uploaded, the share of residents within ``minutes`` of each
    destination kind."""
    svc = _svc(request)
    got_dest = await run_in_threadpool(svc.destinations, _engine(request))
    if got_dest is None:
        raise ApiError(422, "no_destinations", "Upload destinations first (PUT /destinations).")
    dest = got_dest[1]
    if q.kind is not None:
        if q.kind not in dest.kinds():
            raise ApiError(422, "unknown_kind", f"kind must be one of {dest.kinds()}")
        dest = dest.of_kind(q.kind)
    eng = await run_in_threadpool(svc.engine, _services(request), q.date, q.feed)
    od = await _on_demand(request, q, eng.data.tt)
    deps = departure_times(q.start, q.window_min * 60, q.departures)
    ct = await run_in_threadpool(cell_times, eng, dest, deps, q.resolution, od)
    import numpy as np
    import pandas as pd

    mins = ct.nearest_minutes()
    df = pd.DataFrame({"h3": ct.cells, "minutes": np.round(mins, 1)})
    shares: list[dict[str, Any]] = []
    got_pop = await run_in_threadpool(svc.population, _engine(request))
    if got_pop is not None:
        got = await run_in_threadpool(population_share, eng, got_pop[1], dest, deps, q.minutes, od)
        shares = [s.as_dict() for s in got]
    return {
        "date": eng.day.isoformat(),
        "cells": cells_geojson(df),
        "reached_cells": int(np.isfinite(mins).sum()),
        "within_cells": int((np.nan_to_num(mins, nan=np.inf) <= q.minutes).sum()),
        "shares": shares,
    }


@router.post("/scenarios", responses=error_responses(409))
async def create_scenario(request: Request, spec: ScenarioSpec, who: Planner) -> dict[str, Any]:
    """Edit a copy of the published network, run both, compare (blocking: seconds to a
    minute). The published network is never changed. The scenario (definition, status,
    comparison, who ran it) is kept in the database and shared by every planner."""
    svc = _svc(request)
    engine = _engine(request)
    dest = await run_in_threadpool(svc.destinations, engine)
    if dest is None:
        raise ApiError(422, "no_destinations", "Upload destinations first (PUT /destinations).")
    pop = await run_in_threadpool(svc.population, engine)
    v = await run_in_threadpool(svc.view, _services(request), spec.feed)
    spec = spec.model_copy(update={"feed": v.feed_id})  # kept: which feed it copied
    spec_json = spec.model_dump(mode="json")
    sid = await run_in_threadpool(
        svc.start_scenario, engine, spec_json, who, dest[0], None if pop is None else pop[0]
    )
    try:
        out = await run_in_threadpool(
            run_scenario, v.feed, spec, dest[1], None if pop is None else pop[1]
        )
    except ValueError as exc:  # EditError included: the planner's input, nothing to keep
        await run_in_threadpool(svc.discard_scenario, engine, sid)
        code = "invalid_edit" if isinstance(exc, EditError) else "invalid_scenario"
        raise ApiError(422, code, str(exc)) from exc
    except Exception as exc:
        # Kept as failed, so the planner's list shows what happened to the run.
        await run_in_threadpool(svc.finish_scenario, engine, sid, None, repr(exc))
        raise
    out["feed_version"] = v.published.version_id
    await run_in_threadpool(svc.finish_scenario, engine, sid, out)
    got = await run_in_threadpool(svc.scenario, engine, str(sid))
    assert got is not None  # just written
    return got


@router.get("/scenarios")
async def list_scenarios(request: Request, _: Planner) -> dict[str, Any]:
    """Every planner's scenarios, newest first (id, name, status, date, who and when)."""
    rows = await run_in_threadpool(_svc(request).list_scenarios, _engine(request))
    return {"scenarios": rows}


@router.get("/scenarios/{scenario_id}", responses=error_responses(404))
async def get_scenario(request: Request, scenario_id: str, _: Planner) -> dict[str, Any]:
    """A scenario: its definition (``spec``), status and, once done, its comparison."""
    got = await run_in_threadpool(_svc(request).scenario, _engine(request), scenario_id)
    if got is None:
        raise ApiError(404, "not_found", "No such scenario.")
    return got


@router.delete("/scenarios/{scenario_id}", responses=error_responses(403, 404))
async def delete_scenario(request: Request, scenario_id: str, who: Planner) -> dict[str, Any]:
    """Delete a scenario: its author or an administrator (others 403). Who deleted it and
    when is kept (audit); it is no longer listed nor fetched."""
    return await run_in_threadpool(
        _svc(request).delete_scenario, _engine(request), scenario_id, who
    )

"""Stops: search by name or kana reading, nearest stops (H3 index), departure boards.

``GET /api/v1/stops?q=`` matches stop names and GTFS-JP readings (hiragana and katakana are
treated alike, full/half width too); ``GET /api/v1/stops/nearest?lat=&lon=`` finds stops by an
H3 cell index; ``GET /api/v1/stops/{stop_id}/departures`` lists the next departures with
realtime times, delays and cancellations when a realtime feed is ingested.
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from typing import Any

import h3
import numpy as np
from fastapi import APIRouter, Query
from pydantic import Field

from app.api.plan import (
    NetworkPlanner,
    network_planner,
    parse_date,
    parse_time,
    realtime_days,
)
from app.api.schemas import PUBLIC, OpenModel, error_responses
from app.errors import ApiError
from app.feeds.network import feed_stop_ranges
from app.services import ServicesDep
from routing.itinerary import service_day_epoch_ms
from routing.options import route_type_mode
from routing.transit import DAY, DAY_OFFSETS, overlay_for

router = APIRouter(prefix="/stops", tags=["stops"], responses=PUBLIC)


class StopOut(OpenModel):
    stopId: str
    name: str
    nameReading: str | None
    lat: float
    lon: float
    parentStation: str | None
    wheelchairBoarding: int
    served: bool
    routes: list[str] | None = Field(
        None, description="with group=true: the names of the routes serving the place"
    )


class NearStop(StopOut):
    distance: float = Field(description="metres")


class StopSearch(OpenModel):
    query: str
    stops: list[StopOut]
    total: int


class NearStops(OpenModel):
    stops: list[NearStop]


class Departure(OpenModel):
    stopId: str
    tripId: str
    routeId: str
    routeShortName: str | None
    routeLongName: str | None
    mode: str
    headsign: str | None
    serviceDate: str
    scheduledDeparture: int = Field(description="epoch ms")
    departure: int = Field(description="epoch ms, realtime when known")
    departureDelay: int = Field(description="seconds")
    realTime: bool
    cancelled: bool


class DepartureBoard(OpenModel):
    """``error`` (OTP's shape) says why a board outside the feed's dates is empty."""

    stop: StopOut
    date: str
    departures: list[Departure]


H3_RES = 9  # cells of ~0.1 km²: a few stops each in a city
_H3_EDGE_M = 201.0  # average edge length at resolution 9 (upper side), metres


def normalize(text: str) -> str:
    """Search key: NFKC, lower case, katakana folded to hiragana, spaces removed."""
    t = unicodedata.normalize("NFKC", text).lower()
    t = "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in t)
    return "".join(t.split())


def _search_index(np_: NetworkPlanner) -> tuple[list[str], list[str]]:
    idx = np_.extra.get("search")
    if idx is None:
        tt = np_.planner.tt
        names = [normalize(str(n)) for n in tt.stop_names]
        reads = [normalize(np_.readings.get(i, "")) for i in range(tt.n_stops)]
        for lang, tr in np_.translations.items():
            del lang
            for i, v in tr.items():
                names[i] = names[i] + "\x00" + normalize(v)
        idx = (names, reads)
        np_.extra["search"] = idx
    return idx  # type: ignore[no-any-return]


def _h3_index(np_: NetworkPlanner) -> dict[str, list[int]]:
    idx = np_.extra.get("h3")
    if idx is None:
        tt = np_.planner.tt
        idx = {}
        ok = np.isfinite(tt.stop_lat) & np.isfinite(tt.stop_lon)
        for i in np.flatnonzero(ok).tolist():
            cell = h3.latlng_to_cell(float(tt.stop_lat[i]), float(tt.stop_lon[i]), H3_RES)
            idx.setdefault(cell, []).append(i)
        np_.extra["h3"] = idx
    return idx  # type: ignore[no-any-return]


def _haversine(lat: float, lon: float, lats: np.ndarray, lons: np.ndarray) -> np.ndarray:
    p1, p2 = math.radians(lat), np.radians(lats)
    dp, dl = p2 - p1, np.radians(lons - lon)
    a = np.sin(dp / 2) ** 2 + math.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * 6371008.8 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


async def _planner_for(services: Any, feed: str | None) -> tuple[NetworkPlanner, int, int]:
    """The planner of ``feed``'s network (a region, or one feed of it: then only that feed's
    stops ``[lo, hi)``), or of the default network; 404 ``unknown_feed``."""
    if feed is None:
        np_ = await network_planner(services)
        return np_, 0, np_.planner.tt.n_stops
    reg = services.feeds
    try:
        net = reg.network_named(feed) if reg is not None else None
    except ApiError:
        raise ApiError(404, "unknown_feed", f"No published feed {feed!r}.") from None
    np_ = await network_planner(services, net)
    if feed == np_.network.name:
        return np_, 0, np_.planner.tt.n_stops
    lo, hi = feed_stop_ranges(np_.planner.tt)[feed]
    return np_, lo, hi


async def find_stop(services: Any, stop_id: str) -> tuple[NetworkPlanner, int]:
    """The network holding ``stop_id`` (the default network first, then the other regions;
    ``feed:stop`` names a stop of that feed) and its index; 404 ``unknown_stop``."""
    default = await network_planner(services)
    i = default.stop_index.get(stop_id)
    if i is not None:
        return default, i
    reg = services.feeds
    feed, _, rest = stop_id.partition(":")
    for net in reg.networks.values():
        np_ = default if net is default.network else await network_planner(services, net)
        i = np_.stop_index.get(stop_id)
        if i is None and rest and any(p.feed_id == feed for p in net.versions):
            i = np_.stop_index.get(rest)
        if i is not None:
            return np_, i
    raise ApiError(404, "unknown_stop", f"Unknown stop id {stop_id!r}.")


def _stop_json(np_: NetworkPlanner, i: int, lang: str = "ja") -> dict[str, Any]:
    tt = np_.planner.tt
    name = str(tt.stop_names[i])
    if lang != "ja":
        name = np_.translations.get(lang, {}).get(i, name)
    parent = int(tt.stop_parent[i])
    return {
        "stopId": str(tt.stop_ids[i]),
        "name": name,
        "nameReading": np_.readings.get(i),
        "lat": float(tt.stop_lat[i]),
        "lon": float(tt.stop_lon[i]),
        "parentStation": str(tt.stop_ids[parent]) if parent >= 0 else None,
        "wheelchairBoarding": int(tt.stop_wheelchair[i]),
        "served": bool(tt.stop_pattern_ptr[i + 1] > tt.stop_pattern_ptr[i]),
    }


@router.get("", response_model=StopSearch, responses=error_responses(404))
async def search_stops(
    services: ServicesDep,
    q: str = Query(..., min_length=1, max_length=100, description="name or kana reading"),
    limit: int = Query(20, ge=1, le=200),
    locale: str = Query("ja", pattern=r"^[a-zA-Z]{2}([-_][a-zA-Z]{2,4})?$"),
    feed: str | None = Query(
        None,
        max_length=64,
        description="only this city's stops: a network (region) name or one feed of it; "
        "default: the default network",
    ),
    group: bool = Query(
        False,
        description="one entry per place: a station stands for its platforms, with the "
        "routes serving any of them (a place picker's list)",
    ),
) -> dict[str, Any]:
    """Stops whose name (or reading) contains ``q``; prefix matches first."""
    np_, lo, hi = await _planner_for(services, feed)
    key = normalize(q)
    if not key:
        raise ApiError(400, "invalid_query", "The search text is empty.", {"param": "q"})
    names, reads = _search_index(np_)
    scored: list[tuple[int, int, str, int]] = []
    for i, (n, r) in enumerate(zip(names[lo:hi], reads[lo:hi], strict=True), start=lo):
        if n.startswith(key) or r.startswith(key):
            scored.append((0, len(n), n, i))
        elif key in n or key in r:
            scored.append((1, len(n), n, i))
    scored.sort()
    lang = locale[:2].lower()
    if group:
        return _grouped(np_, q, [i for *_, i in scored], limit, lang)
    return {
        "query": q,
        "stops": [_stop_json(np_, i, lang) for *_, i in scored[:limit]],
        "total": len(scored),
    }


def _children(np_: NetworkPlanner) -> dict[int, list[int]]:
    kids = np_.extra.get("children")
    if kids is None:
        kids = {}
        for i, p in enumerate(np_.planner.tt.stop_parent.tolist()):
            if p >= 0:
                kids.setdefault(int(p), []).append(i)
        np_.extra["children"] = kids
    return kids  # type: ignore[no-any-return]


def _place_routes(np_: NetworkPlanner, stops: list[int]) -> list[str]:
    """Names of the routes whose patterns call at any of ``stops``, in network order."""
    tt = np_.planner.tt
    routes: set[int] = set()
    for s in stops:
        pats = tt.stop_patterns[tt.stop_pattern_ptr[s] : tt.stop_pattern_ptr[s + 1]]
        routes.update(tt.pattern_route[pats].tolist())
    names: list[str] = []
    for r in sorted(routes):
        name = str(tt.route_short_names[r]) or str(tt.route_long_names[r])
        if name and name not in names:
            names.append(name)
    return names


def _grouped(
    np_: NetworkPlanner, q: str, matches: list[int], limit: int, lang: str
) -> dict[str, Any]:
    """Matches folded into places: a platform stands under its station, a place once."""
    tt = np_.planner.tt
    kids = _children(np_)
    places: list[int] = []
    seen: set[int] = set()
    for i in matches:
        parent = int(tt.stop_parent[i])
        place = parent if parent >= 0 else i
        if place not in seen:
            seen.add(place)
            places.append(place)
    out = []
    for p in places[:limit]:
        d = _stop_json(np_, p, lang)
        routes = _place_routes(np_, [p, *kids.get(p, [])])
        d["routes"] = routes
        d["served"] = bool(routes)
        out.append(d)
    return {"query": q, "stops": out, "total": len(places)}


@router.get("/nearest", response_model=NearStops)
async def nearest_stops(
    services: ServicesDep,
    lat: float = Query(..., ge=-90, le=90),
    lon: float = Query(..., ge=-180, le=180),
    radius: float = Query(500.0, gt=0, le=5000, description="metres"),
    limit: int = Query(10, ge=1, le=100),
) -> dict[str, Any]:
    """Stops within ``radius`` metres, nearest first (H3 cells around the point), of the
    network (city) whose area holds the point."""
    reg = services.feeds
    net = reg.network_at(lat, lon) if reg is not None else None
    np_ = await network_planner(services, net)
    index = _h3_index(np_)
    tt = np_.planner.tt
    k = math.ceil(radius / (_H3_EDGE_M * 1.5)) + 1
    cells = h3.grid_disk(h3.latlng_to_cell(lat, lon, H3_RES), k)
    cand = np.array([i for c in cells for i in index.get(c, ())], dtype=np.int64)
    if cand.size == 0:
        return {"stops": []}
    dist = _haversine(lat, lon, tt.stop_lat[cand], tt.stop_lon[cand])
    keep = dist <= radius
    cand, dist = cand[keep], dist[keep]
    order = np.argsort(dist, kind="stable")[:limit]
    out = []
    for j in order.tolist():
        d = _stop_json(np_, int(cand[j]))
        d["distance"] = round(float(dist[j]), 1)
        out.append(d)
    return {"stops": out}


@router.get("/{stop_id}", response_model=StopOut, responses=error_responses(404))
async def get_stop(services: ServicesDep, stop_id: str) -> dict[str, Any]:
    """One stop, in whichever city's network holds it."""
    np_, i = await find_stop(services, stop_id)
    return _stop_json(np_, i)


@router.get("/{stop_id}/departures", response_model=DepartureBoard, responses=error_responses(404))
async def departures(
    services: ServicesDep,
    stop_id: str,
    date: str | None = None,
    time: str | None = None,
    window: int = Query(3 * 3600, ge=60, le=24 * 3600, description="seconds"),
    limit: int = Query(20, ge=1, le=200),
) -> dict[str, Any]:
    """The next departures at a stop (and its platforms when it is a station)."""
    np_, i = await find_stop(services, stop_id)
    tt = np_.planner.tt
    from app.api.plan import _now_in

    now = _now_in(tt.timezone)
    day = parse_date(date, np_.network.service_date or now.date())
    t0 = parse_time(time, now.hour * 3600 + now.minute * 60 + now.second)
    stops = np.flatnonzero((tt.stop_parent == i) | (np.arange(tt.n_stops) == i))
    # Each run's realtime is in its own service date's overlay: yesterday's runs past midnight
    # and tomorrow's early ones (both on this board) read those of day - 1 and day + 1.
    rts = realtime_days(services, day, np_.network)
    board = np_.planner.data.forward.st_board
    rows: list[dict[str, Any]] = []
    base = service_day_epoch_ms(day, tt.timezone)
    for s in stops.tolist():
        for e in range(int(tt.stop_pattern_ptr[s]), int(tt.stop_pattern_ptr[s + 1])):
            p = int(tt.stop_patterns[e])
            pos = int(tt.stop_pattern_pos[e])
            n_pos = int(tt.pattern_stop_ptr[p + 1] - tt.pattern_stop_ptr[p])
            if pos == n_pos - 1:
                continue  # arrivals only
            trips = np.arange(int(tt.pattern_trip_ptr[p]), int(tt.pattern_trip_ptr[p + 1]))
            st = tt.trip_st_ptr[trips] + pos
            for d_off in DAY_OFFSETS:
                sday = day + dt.timedelta(days=d_off)
                active = tt.active_trips(sday)[trips] & board[st]
                rt = overlay_for(rts, sday)
                sched = tt.st_departure[st] + d_off * DAY
                live = (rt.departure[st] + d_off * DAY) if rt is not None else sched
                sel = active & (live >= t0) & (live <= t0 + window)
                for j in np.flatnonzero(sel).tolist():
                    t = int(trips[j])
                    r = int(tt.trip_route[t])
                    cancelled = rt is not None and bool(rt.trip_cancelled[t])
                    skipped = rt is not None and bool(rt.stop_skipped[st[j]])
                    rows.append(
                        {
                            "stopId": str(tt.stop_ids[s]),
                            "tripId": str(tt.trip_ids[t]),
                            "routeId": str(tt.route_ids[r]),
                            "routeShortName": str(tt.route_short_names[r]) or None,
                            "routeLongName": str(tt.route_long_names[r]) or None,
                            "mode": route_type_mode(int(tt.route_types[r])),
                            "headsign": str(tt.trip_headsigns[t]) or None,
                            "serviceDate": sday.isoformat(),
                            "scheduledDeparture": base + int(sched[j]) * 1000,
                            "departure": base + int(live[j]) * 1000,
                            "departureDelay": int(live[j] - sched[j]),
                            "realTime": rt is not None and bool(rt.trip_updated[t]),
                            "cancelled": cancelled or skipped,
                            "_t": int(live[j]),
                        }
                    )
    rows.sort(key=lambda row: (row["_t"], row["tripId"]))
    for row in rows:
        del row["_t"]
    body: dict[str, Any] = {
        "stop": _stop_json(np_, i),
        "date": day.isoformat(),
        "departures": rows[:limit],
    }
    if not np_.planner.data.covers(day):
        # Say why the board is empty (the plan endpoint's OTP error, same id and wording).
        from routing.planner import OUTSIDE_SERVICE_PERIOD, PlanError, plan_message

        body["error"] = PlanError(
            OUTSIDE_SERVICE_PERIOD, plan_message(OUTSIDE_SERVICE_PERIOD)
        ).as_otp()
    return body

"""``GET /api/v1/plan``: OpenTripPlanner-style trip planning over the published network.

Parameters follow OTP's REST planner (``fromPlace``/``toPlace`` as ``lat,lon`` or a stop id,
``date``, ``time``, ``arriveBy``, ``maxWalkDistance``, ``walkSpeed``, ``maxTransfers``,
``minTransferTime``, ``wheelchair``, ``mode``, ``numItineraries``, ``locale``; plus
``optimizeCo2``) and so does the answer (``plan.itineraries[].legs[]``, with OTP 2's
``emissionsPerPerson.co2`` in grams). A query that is well formed but cannot be served
(date outside the feed, no stop within walking distance, no connection) answers 200 with no
itinerary and OTP's ``error`` object; malformed input answers 400 (a date beyond
1900-01-01..2199-12-31 too: ``invalid_date``), an unknown stop id 404.

``healthierMinutes=N`` (0..30, 0 = off) is the "healthier" preference: up to N minutes later
than the fastest arrival (earlier than the latest departure with ``arriveBy``) are accepted for
more walking. The itinerary walking the most within them (getting off one or more stops
earlier, walking to a farther stop of the same line, or walking all the way, on a walking
budget N minutes longer than ``maxWalkDistance``; see ``routing.planner.Planner._healthier``)
comes first, marked ``healthier: {extraTime, extraWalkTime}`` (seconds against the fastest),
added beside the ``numItineraries`` others; none is marked when nothing walks more in time.

Query options (``routing.options.RoutingOptions``): ``maxTravelTime`` (minutes, 0 = none),
``transferFactor`` (x the feed's change times) and ``transferSlack`` (seconds added to every
change), ``bikes`` (trips with ``bikes_allowed=1`` only), ``stationMatch`` (a stop stands for
its whole station), ``minJourneys`` (the search window widens, up to 6 h, until it holds N
journeys) and ``via`` (repeatable, ``stopId`` or ``stopId@minutes`` to stay; depart-at only).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time as _time
from dataclasses import dataclass, field
from types import UnionType
from typing import Any, Union, get_args, get_origin
from zoneinfo import ZoneInfo

import anyio.to_thread
import pydantic_core
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from app.api.schemas import PUBLIC, OpenModel, error_responses
from app.errors import ApiError
from app.identity.deps import OptionalPrincipal, Principal
from app.services import ServicesDep
from app.street_graphs import walk_graph
from routing.itinerary import Place, service_day_epoch_ms, to_otp
from routing.options import TRANSIT_MODES, RoutingOptions
from routing.planner import Planner, PlanPlace, PlanRequest
from routing.transit import DAY_OFFSETS, TransitData, footpath_speed_mps

router = APIRouter(tags=["plan"], responses=PUBLIC)


class PlanPlaceOut(OpenModel):
    name: str | None
    lat: float
    lon: float


class WalkStepOut(OpenModel):
    """One turn-by-turn step of a walk leg (OTP's ``steps``)."""

    relativeDirection: str = Field(
        description="DEPART, CONTINUE, SLIGHTLY_LEFT/RIGHT, LEFT/RIGHT, HARD_LEFT/RIGHT"
    )
    absoluteDirection: str = Field(description="compass direction: NORTH, NORTHEAST...")
    streetName: str | None = Field(description="the way's OSM name; null when it has none")
    bogusName: bool = Field(description="true when the way has no name")
    distance: float = Field(description="metres along this step")
    lat: float
    lon: float


class Leg(OpenModel):
    """One leg (OTP's shape): ``mode`` WALK, BUS, RAIL... or FLEX (an on-demand ride, with
    ``bookingQuoteId``, ``bookingRequestId``, ``pickupWindow``...); other fields as OTP's."""

    mode: str
    startTime: int = Field(description="epoch ms")
    endTime: int = Field(description="epoch ms")
    distance: float = Field(description="metres")
    transitLeg: bool
    from_: dict[str, Any] = Field(alias="from")
    to: dict[str, Any]
    steps: list[WalkStepOut] | None = Field(
        default=None,
        description="walk legs on a street graph: turn-by-turn steps; absent otherwise",
    )
    interlineWithPreviousLeg: bool | None = Field(
        default=None,
        description="scheduled rides: true when the rider stays on board from the previous leg "
        "(the same vehicle continues as this trip: block_id or an in-seat transfer), no "
        "transfer; absent on walks and on-demand legs",
    )


class Itinerary(OpenModel):
    """One itinerary (OTP's shape); ``fare`` when the feed's fares price it."""

    duration: int = Field(description="seconds")
    startTime: int = Field(description="epoch ms")
    endTime: int = Field(description="epoch ms")
    walkDistance: float
    transfers: int
    legs: list[Leg]


class PlanBody(OpenModel):
    date: int = Field(description="epoch ms of the query's time")
    from_: PlanPlaceOut = Field(alias="from")
    to: PlanPlaceOut
    itineraries: list[Itinerary]


class PlanOut(OpenModel):
    """OpenTripPlanner's ``/plan`` answer; ``error`` (``id``, ``msg``, ``message``...) when no
    itinerary could be found, ``onDemand`` (``refusals``) when FLEX was asked."""

    requestParameters: dict[str, Any]
    plan: PlanBody
    debugOutput: dict[str, Any]


# --- the answer's JSON without validating it (#10) -------------------------------------------
#: How one declared field is written: (key, kind, nested model) with kind "float" or "int"
#: (coerced as pydantic's lax mode does), "model" or "models" (nested), or "any" (as it is).
_FieldSpec = tuple[str, str, type[BaseModel] | None]
_specs: dict[type[BaseModel], tuple[tuple[_FieldSpec, ...], frozenset[str]]] = {}


def _spec(model: type[BaseModel]) -> tuple[tuple[_FieldSpec, ...], frozenset[str]]:
    """The declared fields of ``model`` in order (see :data:`_FieldSpec`), and their keys."""
    hit = _specs.get(model)
    if hit is not None:
        return hit
    fields: list[_FieldSpec] = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        args = [a for a in get_args(ann) if a is not type(None)]
        base = args[0] if get_origin(ann) in (Union, UnionType) and len(args) == 1 else ann
        kind, sub = "any", None
        if base is float:
            kind = "float"
        elif base is int:
            kind = "int"
        elif isinstance(base, type) and issubclass(base, BaseModel):
            kind, sub = "model", base
        elif get_origin(base) is list:
            (item,) = get_args(base)
            if isinstance(item, type) and issubclass(item, BaseModel):
                kind, sub = "models", item
        fields.append((info.alias or name, kind, sub))
    hit = _specs[model] = (tuple(fields), frozenset(key for key, _, _ in fields))
    return hit


def _as_dumped(value: Any, model: type[BaseModel]) -> Any:
    """``value`` (a dict of ``model``'s shape) as ``model`` validates and dumps it with
    ``by_alias`` and ``exclude_unset``: the declared fields present first, in declared order
    (floats and ints coerced as in lax mode), then the others as they came."""
    if not isinstance(value, dict):
        return value
    fields, declared = _spec(model)
    out: dict[str, Any] = {}
    for key, kind, sub in fields:
        if key not in value:
            continue
        v = value[key]
        if kind == "float" and isinstance(v, int):
            v = float(v)
        elif kind == "int" and isinstance(v, float) and v.is_integer():
            v = int(v)
        elif kind == "model" and sub is not None:
            v = _as_dumped(v, sub)
        elif kind == "models" and sub is not None and isinstance(v, list):
            v = [_as_dumped(x, sub) for x in v]
        out[key] = v
    for key, v in value.items():
        if key not in declared:
            out[key] = v
    return out


def plan_json(body: dict[str, Any]) -> bytes:
    """The ``/plan`` answer's bytes: as FastAPI's ``response_model=PlanOut`` path writes them
    (validated, dumped by alias without unset fields), without the validation, which
    re-checked every leg of a body the endpoint itself built (#10)."""
    return pydantic_core.to_json(_as_dumped(body, PlanOut))


# --- the planner of the published network (one per network snapshot) --------------------------
@dataclass
class NetworkPlanner:
    """A planner and the stop look-ups of one published network snapshot."""

    network: Any
    planner: Planner
    stop_index: dict[str, int]
    readings: dict[int, str] = field(default_factory=dict)
    translations: dict[str, dict[int, str]] = field(default_factory=dict)
    fares: dict[str, Any] = field(default_factory=dict)  # gtfs.fares.FareTable by feed id
    extra: dict[str, Any] = field(default_factory=dict)  # lazily built indexes (H3, search)


_lock = threading.Lock()
#: The planner of each region's network (by network name), rebuilt when its snapshot changes.
_planners: dict[str, NetworkPlanner] = {}
_current: NetworkPlanner | None = None  # the planner that served the last query (tests read it)


def _load_feed_extras(
    services: Any, network: Any
) -> tuple[dict[int, str], dict[str, dict[int, str]], dict[str, Any]]:
    """Kana readings (GTFS-JP ``ja-Hrkt``) and other translations of stop names, and each
    published feed's fares (``gtfs.fares.FareTable`` by feed id: ids in the merged network are
    prefixed ``feed:`` when several feeds are published)."""
    from gtfs.fares import FareTable
    from gtfs.japan import READING_LANG
    from gtfs.reader import read_feed

    tt = network.timetable
    index = {str(s): i for i, s in enumerate(tt.stop_ids)}
    readings: dict[int, str] = {}
    translations: dict[str, dict[int, str]] = {}
    fares: dict[str, Any] = {}
    reg = services.feeds
    for v in network.versions:
        try:
            feed = read_feed(reg.store.original(v.version_id), feed_id=v.feed_id)
            table = feed.stop_readings()
            fares[v.feed_id] = FareTable(feed)
        except Exception:  # readings and fares are niceties: a feed that cannot be re-read has none
            continue
        for sid, lang, name in table[["stop_id", "lang", "name"]].itertuples(index=False):
            # Ids are prefixed only where two feeds of the network share one.
            i = index.get(f"{v.feed_id}:{sid}", index.get(str(sid)))
            if i is None:
                continue
            if lang == READING_LANG:
                readings[i] = str(name)
            elif lang != "ja":
                translations.setdefault(str(lang), {})[i] = str(name)
    return readings, translations, fares


def add_fares(itinerary: dict[str, Any], fares: dict[str, Any]) -> None:
    """Each transit leg's fare (GTFS / GTFS-JP fares v1: the cheapest matching rule) and the
    itinerary's total, in place. ``fare.complete`` is false when a ride has no known fare (the
    total then counts the priced rides only)."""
    total = 0.0
    currency: str | None = None
    complete = True
    for leg in itinerary["legs"]:
        if not leg.get("transitLeg") or leg.get("onDemand"):
            continue
        route, a, b = leg.get("routeId"), leg["from"].get("stopId"), leg["to"].get("stopId")
        feed_id, route, a, b = _unprefix(fares, str(route), str(a), str(b))
        # Unprefixed ids of a network of several feeds are unique: the feed whose table
        # prices the ride is the one.
        tables = [fares[feed_id]] if feed_id in fares else list(fares.values())
        fare = next((f for t in tables if (f := t.fare(route, a, b)) is not None), None)
        if fare is None:
            complete = False
            continue
        leg["fare"] = {"fareId": fare.fare_id, "price": fare.price, "currency": fare.currency}
        total += fare.price
        currency = currency or fare.currency
    if currency is not None:
        itinerary["fare"] = {"total": total, "currency": currency, "complete": complete}


def _priced(itinerary: dict[str, Any], fares: dict[str, Any]) -> dict[str, Any]:
    add_fares(itinerary, fares)
    return itinerary


def _unprefix(fares: dict[str, Any], route: str, a: str, b: str) -> tuple[str, str, str, str]:
    """(feed id, route, stop, stop) with the merged network's ``feed:`` prefixes taken off."""
    if len(fares) == 1:
        (only,) = fares
        strip = f"{only}:"
        if route.startswith(strip) and a.startswith(strip):
            return only, route[len(strip) :], a[len(strip) :], b[len(strip) :]
        return only, route, a, b
    feed_id, _, rest = route.partition(":")
    if feed_id not in fares:  # not prefixed (no id of it is shared with another feed)
        return "", route, a, b
    n = len(feed_id) + 1
    return feed_id, rest, a[n:], b[n:]


def _build(services: Any, network: Any) -> NetworkPlanner:
    tt = network.timetable
    readings, translations, fares = _load_feed_extras(services, network)
    walk = None
    graph = walk_graph(services.settings.osm_path)
    if graph is not None:
        import dataclasses

        from routing.street.footpaths import street_transfer_seconds
        from routing.street.osm_access import OsmWalkAccess

        walk = OsmWalkAccess(graph, tt.stop_lat, tt.stop_lon)
        # Transfers between stops take at least their walk on the streets.
        speed = footpath_speed_mps(tt)
        secs = street_transfer_seconds(
            graph, tt.stop_lat, tt.stop_lon, tt.transfer_ptr, tt.transfer_to, tt.transfer_s, speed
        )
        tt = dataclasses.replace(tt, transfer_s=secs)
    from app.emissions.factors import planner_factors

    co2 = planner_factors(services.settings)  # the city's CO2 factors (app.emissions)
    planner = Planner(TransitData(tt, co2), walk, readings=readings, translations=translations)
    return NetworkPlanner(
        network=network,
        planner=planner,
        stop_index={str(s): i for i, s in enumerate(tt.stop_ids)},
        readings=readings,
        translations=translations,
        fares=fares,
    )


async def network_planner(services: Any, network: Any = None) -> NetworkPlanner:
    """The planner of a published network (built on first use per network snapshot):
    ``network`` (a :class:`~app.feeds.network.Network`, or a region or feed name), else the
    default network (``services.feeds.network``)."""
    reg = services.feeds
    if reg is None:
        raise ApiError(503, "unavailable", "The feed registry is not running.")
    if network is None:
        network = reg.network
    elif isinstance(network, str):
        network = reg.network_named(network)
    if network is None or network.timetable is None:
        raise ApiError(503, "no_network", "No timetable is published yet.")
    global _current
    key = network.name
    cur = _planners.get(key)
    if cur is not None and cur.network is network:
        _current = cur
        return cur

    def build() -> NetworkPlanner:
        with _lock:
            cur = _planners.get(key)
            if cur is not None and cur.network is network:
                return cur
            built = _build(services, network)
            served = reg.networks
            for name in [n for n in _planners if n not in served]:  # withdrawn regions
                del _planners[name]
            _planners[key] = built
            return built

    _current = await run_in_threadpool(build)
    return _current


def _coords_of(value: str) -> tuple[float, float] | None:
    """The ``lat,lon`` of a place as :func:`parse_place` reads it, or None (a stop id)."""
    text = value.split("::", 1)[1] if "::" in value else value
    m = _COORD.match(text)
    return _float_pair(text) if m is None else (float(m.group(1)), float(m.group(2)))


async def _network_of_place(services: Any, value: str) -> Any | None:
    """The network a place lies in: the region whose area holds its coordinates, or the one
    with its stop id (``feed:stop`` too); None when none does."""
    reg = services.feeds
    coords = _coords_of(value.strip())
    if coords is not None:
        return reg.network_at(*coords)
    text = (value.split("::", 1)[1] if "::" in value else value).strip()
    feed, _, rest = text.partition(":")
    for net in reg.networks.values():
        np_ = await network_planner(services, net)
        if text in np_.stop_index or (
            rest and rest in np_.stop_index and any(p.feed_id == feed for p in net.versions)
        ):
            return net
    return None


async def plan_network(services: Any, city: str | None, *places: str) -> NetworkPlanner:
    """The planner of the network a query is for: ``city`` (a region or feed name) when
    given, else the region holding the places (the default network when none does).

    Places in two different regions answer 422 ``different_networks``: each region is a
    network of its own, and no trip runs between them.
    """
    reg = services.feeds
    if reg is None:
        raise ApiError(503, "unavailable", "The feed registry is not running.")
    if city:
        return await network_planner(services, reg.network_named(city))
    if len(reg.networks) <= 1:
        return await network_planner(services)
    found = [await _network_of_place(services, p) for p in places]
    names = {n.name: n for n in found if n is not None}
    if len(names) > 1:
        raise ApiError(
            422,
            "different_networks",
            "The places are in different cities' networks ("
            + ", ".join(sorted(names))
            + "); no trip runs between them. Plan within one city.",
            {"networks": [n.name if n is not None else None for n in found]},
        )
    if names:
        return await network_planner(services, next(iter(names.values())))
    return await network_planner(services)


def realtime_for(services: Any, day: dt.date, network: Any = None) -> Any:
    """The realtime overlay of ``day`` on ``network`` (the default network when None), or
    None (realtime is optional)."""
    reg = services.feeds
    try:
        if reg is None:
            return None
        return reg.realtime_state(day) if network is None else reg.realtime_state(day, network)
    except Exception:
        return None


def realtime_days(services: Any, day: dt.date, network: Any = None) -> list[Any]:
    """The realtime overlays of ``day - 1``, ``day`` and ``day + 1`` that exist.

    A plan on ``day`` rides yesterday's runs past midnight and tomorrow morning's runs too;
    each run's delays, skips and cancellations are in its own service date's overlay.
    """
    return realtime_days_versioned(services, day, network)[0]


def realtime_days_versioned(
    services: Any, day: dt.date, network: Any = None
) -> tuple[list[Any], int | None]:
    """:func:`realtime_days` and the realtime version they were read at, or None when it
    cannot be told (no hub, or a message arrived while they were read).

    The version keys the planner's cached query set-up, so it must be the version of exactly
    these overlays: it is read before and after them, and a change in between gives None
    (this query builds its own set-up; the next one reads the new version).
    """
    hub = getattr(services.feeds, "realtime", None)
    before = _hub_version(hub)
    found = (realtime_for(services, day + dt.timedelta(days=d), network) for d in DAY_OFFSETS)
    rts = [rt for rt in found if rt is not None]
    after = _hub_version(hub)
    return rts, (before if before is not None and before == after else None)


def _hub_version(hub: Any) -> int | None:
    """The realtime hub's version, or None (no hub, or one that fails to say)."""
    if hub is None:
        return None
    try:
        return int(hub.version)
    except Exception:  # realtime is optional: a failing hub just means no cached set-up
        return None


# --- parsing ------------------------------------------------------------------------------------
_COORD = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$")
_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([aApP][mM])?\s*$")


def _float_pair(text: str) -> tuple[float, float] | None:
    """``text`` as two numbers ``a,b`` in any float spelling (``1e5``, ``nan``), or None."""
    parts = text.split(",")
    if len(parts) != 2:
        return None
    try:
        return float(parts[0]), float(parts[1])
    except ValueError:
        return None


def parse_place(value: str, np_: NetworkPlanner, what: str) -> PlanPlace:
    """``lat,lon``, ``name::lat,lon``, a stop id, or ``name::stopId`` (OTP's forms)."""
    name = None
    text = value.strip()
    if "::" in text:
        name, text = text.split("::", 1)
        name = name.strip() or None
        text = text.strip()
    if not text:
        raise ApiError(400, "invalid_place", f"{what} is empty.", {"param": what})
    m = _COORD.match(text)
    coords = _float_pair(text) if m is None else (float(m.group(1)), float(m.group(2)))
    if coords is not None:
        lat, lon = coords
        # NaN fails every comparison, so it is refused here too.
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ApiError(
                400, "invalid_place", f"{what} coordinates are out of range.", {"param": what}
            )
        return PlanPlace(lat=lat, lon=lon, name=name)
    stop_id = text.split(":", 1)[1] if text not in np_.stop_index and ":" in text else text
    idx = np_.stop_index.get(text, np_.stop_index.get(stop_id))
    if idx is None:
        raise ApiError(
            404, "unknown_stop", f"Unknown stop id in {what}: {text!r}.", {"param": what}
        )
    tt = np_.planner.tt
    return PlanPlace(lat=float(tt.stop_lat[idx]), lon=float(tt.stop_lon[idx]), stop=idx, name=name)


def parse_via(values: list[str], np_: NetworkPlanner) -> tuple[tuple[int, int], ...]:
    """``stopId`` or ``stopId@minutes`` per value → ``(stop index, stay seconds)``."""
    if len(values) > 3:
        raise ApiError(400, "invalid_via", "At most 3 via stops.", {"param": "via"})
    out = []
    for v in values:
        text, _, minutes = v.strip().rpartition("@") if "@" in v else (v.strip(), "", "0")
        try:
            stay = int(minutes)
        except ValueError:
            stay = -1
        if not text or not 0 <= stay <= 360:
            raise ApiError(
                400, "invalid_via", f"via must be stopId or stopId@minutes (0..360): {v!r}.",
                {"param": "via"},
            )  # fmt: skip
        place = parse_place(text, np_, "via")
        if place.stop is None:
            raise ApiError(400, "invalid_via", f"via must name a stop: {v!r}.", {"param": "via"})
        out.append((place.stop, stay * 60))
    return tuple(out)


# Dates the planner accepts; a well-formed date beyond them answers 400 invalid_date, one
# inside them but outside the published feeds 200 with OTP's OUTSIDE_SERVICE_PERIOD.
MIN_DATE = dt.date(1900, 1, 1)
MAX_DATE = dt.date(2199, 12, 31)


def parse_date(value: str | None, default: dt.date) -> dt.date:
    if value is None or not value.strip():
        return default
    v = value.strip()
    for fmt in ("%Y-%m-%d", "%m-%d-%Y", "%Y%m%d"):
        try:
            day = dt.datetime.strptime(v, fmt).date()
        except ValueError:
            continue
        if not MIN_DATE <= day <= MAX_DATE:  # day arithmetic near year 1 or 9999 overflows
            raise ApiError(
                400,
                "invalid_date",
                f"Date {value!r} is outside {MIN_DATE}..{MAX_DATE}.",
                {"param": "date"},
            )
        return day
    raise ApiError(
        400, "invalid_date", f"Malformed date {value!r}; use YYYY-MM-DD.", {"param": "date"}
    )


def parse_time(value: str | None, default: int) -> int:
    """Seconds after the start of the service day; ``HH:MM[:SS]`` (hours up to 47), am/pm."""
    if value is None or not value.strip():
        return default
    m = _TIME.match(value)
    if not m:
        raise ApiError(
            400, "invalid_time", f"Malformed time {value!r}; use HH:MM.", {"param": "time"}
        )
    h, mi, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    ampm = m.group(4)
    if ampm:
        if not 1 <= h <= 12:
            raise ApiError(400, "invalid_time", f"Malformed time {value!r}.", {"param": "time"})
        h = h % 12 + (12 if ampm.lower() == "pm" else 0)
    if mi > 59 or s > 59 or h > 47:
        raise ApiError(400, "invalid_time", f"Malformed time {value!r}.", {"param": "time"})
    return h * 3600 + mi * 60 + s


ON_DEMAND_MODES = frozenset({"FLEX", "ON_DEMAND"})
"""Mode names asking for on-demand legs (OTP's ``FLEX``; ``ON_DEMAND`` as an alias)."""


def wants_on_demand(value: str | None) -> bool:
    """Whether ``mode`` asks for on-demand legs (``TRANSIT,WALK,FLEX``)."""
    if value is None:
        return False
    return bool({p.strip().upper() for p in value.split(",")} & ON_DEMAND_MODES)


def parse_modes(value: str | None) -> frozenset[str] | None:
    """OTP ``mode``: ``TRANSIT,WALK`` (all), or explicit transit modes (``BUS,WALK``); ``FLEX``
    (or ``ON_DEMAND``) adds on-demand legs and says nothing of the transit modes."""
    if value is None or not value.strip():
        return None
    parts = {p.strip().upper() for p in value.split(",") if p.strip()} - ON_DEMAND_MODES
    if not parts:
        return None
    unknown = parts - TRANSIT_MODES - {"TRANSIT", "WALK"}
    if unknown:
        raise ApiError(
            400,
            "invalid_mode",
            f"Unknown mode(s): {', '.join(sorted(unknown))}.",
            {"param": "mode"},
        )
    if "TRANSIT" in parts:
        return None
    transit = parts & TRANSIT_MODES
    return frozenset(transit) if transit else frozenset()


def _now_in(tz: str) -> dt.datetime:
    try:
        return dt.datetime.now(ZoneInfo(tz))
    except Exception:
        return dt.datetime.now(dt.UTC)


def _place_json(p: Place) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "lat": p.lat, "lon": p.lon}
    if p.stop_id is not None:
        out["stopId"] = p.stop_id
    if p.reading:
        out["nameReading"] = p.reading
    return out


# --- the endpoint -----------------------------------------------------------------------------------
def _refusals_json(plan: Any, locale: str) -> list[dict[str, Any]]:
    from app.i18n import on_demand_message

    return [
        {
            "leg": r.role,
            "reason": r.reason,
            "message": on_demand_message(r.reason, locale, r.message),
        }
        for r in plan.on_demand_refusals
    ]


async def on_demand_provider(
    services: Any, np_: NetworkPlanner, who: Principal | None
) -> Any | None:
    """The live fleet as the planner's on-demand provider, or None without a dispatcher."""
    gateway = getattr(services, "dispatch", None)
    if gateway is None or getattr(services, "dispatcher", None) is None:
        return None
    import asyncio

    from app.dispatch.on_demand_legs import FleetOnDemand
    from app.feeds.dispatch_zones import zones_of_network

    # A zone belongs to the city it lies in: another city's vans never serve this plan.
    zones = zones_of_network(services.feeds, await gateway.zones(), np_.network)
    return FleetOnDemand(
        services,
        zones,
        np_.planner.tt,
        np_.extra,
        user_id=who.user_id if who is not None else "",
        loop=asyncio.get_running_loop(),
    )


@router.get(
    "/plan",
    response_model=PlanOut,
    response_model_by_alias=True,
    response_model_exclude_unset=True,  # a leg without steps has none, not "steps": null
    responses=error_responses(401, 404, 422),
)
async def plan(
    services: ServicesDep,
    who: OptionalPrincipal,
    fromPlace: str = Query(..., description="lat,lon or a stop id"),
    toPlace: str = Query(..., description="lat,lon or a stop id"),
    date: str | None = Query(None, description="YYYY-MM-DD (default: the network's service date)"),
    time: str | None = Query(None, description="HH:MM[:SS] (default: now)"),
    arriveBy: bool = False,
    maxWalkDistance: float = Query(1000.0, ge=0, le=20_000),
    walkSpeed: float = Query(1.2, ge=0.1, le=5.0),
    maxTransfers: int = Query(5, ge=0, le=15),
    minTransferTime: int = Query(0, ge=0, le=3600),
    wheelchair: bool = False,
    mode: str | None = Query(
        None,
        description="TRANSIT,WALK (default), e.g. BUS,WALK; add FLEX for on-demand rides quoted "
        "from the live fleet (access, egress and direct legs)",
    ),
    numItineraries: int = Query(3, ge=1, le=20),
    searchWindow: int = Query(3600, ge=0, le=6 * 3600),
    optimizeCo2: bool = Query(False, description="CO2 as a fourth criterion (cleaner options)"),
    healthierMinutes: int = Query(
        0,
        ge=0,
        le=30,
        description="Accept up to this many minutes more for more walking (e.g. get off one "
        "stop earlier); that itinerary comes first, marked `healthier`",
    ),
    locale: str = Query("en", pattern=r"^[a-zA-Z]{2}([-_][a-zA-Z]{2,4})?$"),
    maxTravelTime: int = Query(
        0, ge=0, le=2880, description="Longest journey in minutes from leaving (0: no limit)"
    ),
    transferFactor: float = Query(
        1.0, ge=1.0, le=5.0, description="Multiplier of the feed's minimum change times"
    ),
    transferSlack: int = Query(
        0, ge=0, le=1800, description="Seconds added to every change of vehicle"
    ),
    bikes: bool = Query(False, description="Only trips that take bikes (bikes_allowed=1)"),
    stationMatch: bool = Query(
        False, description="A stop given stands for its whole station (parent and platforms)"
    ),
    minJourneys: int = Query(
        0, ge=0, le=20, description="Widen the search window (up to 6 h) until it holds N"
    ),
    via: list[str] = Query(
        [],
        description="Stops to pass in order (depart-at queries): a stop id, optionally "
        "with @minutes to stay there, e.g. via=S12@10; at most 3",
    ),
    city: str | None = Query(
        None,
        max_length=64,
        description="The network (region, or one of its feeds) to plan in; default: the one "
        "holding the places (422 different_networks when they lie in two)",
    ),
) -> Response:
    """Itineraries between two places (OTP's ``/plan``) within one city's network."""
    t_start = _time.perf_counter()
    np_ = await plan_network(services, city, fromPlace, toPlace)
    tt = np_.planner.tt
    origin = parse_place(fromPlace, np_, "fromPlace")
    dest = parse_place(toPlace, np_, "toPlace")
    now = _now_in(tt.timezone)
    default_day = np_.network.service_date or now.date()
    day = parse_date(date, default_day)
    secs = parse_time(time, now.hour * 3600 + now.minute * 60 + now.second)
    modes = parse_modes(mode)
    flex = wants_on_demand(mode)
    try:
        options = RoutingOptions(
            max_transfers=maxTransfers,
            min_transfer_s=minTransferTime,
            walk_speed_mps=walkSpeed,
            max_walk_m=maxWalkDistance,
            wheelchair=wheelchair,
            modes=modes,
            num_itineraries=numItineraries,
            search_window_s=searchWindow,
            optimize_co2=optimizeCo2,
            on_demand=flex,
            healthier_s=healthierMinutes * 60,
            max_travel_s=maxTravelTime * 60,
            transfer_factor=transferFactor,
            transfer_extra_s=transferSlack,
            bikes=bikes,
            station_match=stationMatch,
            min_journeys=minJourneys,
            via=parse_via(via, np_),
        )
    except ValueError as exc:
        raise ApiError(400, "invalid_options", str(exc)) from exc
    lang = locale[:2].lower()
    req = PlanRequest(origin, dest, day, secs, arriveBy, options, lang)
    rt, rt_version = realtime_days_versioned(services, day, np_.network)
    provider = await on_demand_provider(services, np_, who) if flex else None

    def plan_and_render() -> bytes:
        # Rendering (shapes, steps, fares) and the answer's bytes are made in the worker
        # thread too, not on the event loop, where they held up the zone owner's commands and
        # every other request (serialising alone was ~12 % of a zone owner's event-loop time
        # under bench.load, #10).
        result = np_.planner.plan(req, rt, realtime_version=rt_version, on_demand=provider)
        itineraries = [
            _priced(to_otp(it, day, tt.timezone), np_.fares) for it in result.itineraries
        ]
        body: dict[str, Any] = {
            "requestParameters": {
                "fromPlace": fromPlace,
                "toPlace": toPlace,
                "date": day.isoformat(),
                "time": f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}",
                "arriveBy": arriveBy,
                "maxWalkDistance": maxWalkDistance,
                "walkSpeed": walkSpeed,
                "maxTransfers": maxTransfers,
                "minTransferTime": minTransferTime,
                "wheelchair": wheelchair,
                "mode": mode or "TRANSIT,WALK",
                "numItineraries": numItineraries,
                "optimizeCo2": optimizeCo2,
                "healthierMinutes": healthierMinutes,
                "maxTravelTime": maxTravelTime,
                "transferFactor": transferFactor,
                "transferSlack": transferSlack,
                "bikes": bikes,
                "stationMatch": stationMatch,
                "minJourneys": minJourneys,
                "via": via,
                "locale": lang,
                "city": np_.network.name,
            },
            "plan": {
                "date": service_day_epoch_ms(day, tt.timezone) + secs * 1000,
                "from": _place_json(result.origin),
                "to": _place_json(result.destination),
                "itineraries": itineraries,
            },
            "debugOutput": {"totalTime": round((_time.perf_counter() - t_start) * 1000, 1)},
        }
        if result.error is not None:
            body["error"] = result.error.as_otp()
        if flex:
            body["onDemand"] = {
                "requested": True,
                "available": provider is not None,
                "refusals": _refusals_json(result, lang),
            }
        # The bytes response_model=PlanOut gave (tests/app/test_plan_json.py), without its
        # validation; PlanOut still documents the answer.
        return plan_json(body)

    content = await anyio.to_thread.run_sync(plan_and_render, limiter=services.plan_limiter)
    return Response(content=content, media_type="application/json")

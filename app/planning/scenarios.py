"""Scenarios: a copy of the published network, edited, run and compared with the original.

A scenario never touches the published network: its edits apply to copies of the feed's
tables (:func:`apply_edits`), compiled into a timetable of its own. Running it
(:func:`run_scenario`) measures, for the published network and for the scenario alike:

* service: bus-km and bus-hours of the day (gtfs-kit, :mod:`gtfs.service_levels`);
* accessibility: median minutes from every H3 cell of the area to the nearest destination
  (:mod:`routing.access`), the population share within N minutes of each destination kind when
  a census grid is given;
* on-demand: a simulated day of each added zone (``dispatch.simulation``: generated Poisson
  demand or replayed requests) — served share, waits, vehicle-km and vehicle-hours;
* CO2 (bus-km x a bus's grams per km; the vans' grams per km from :mod:`routing.co2`
  factors) and operating cost (bus-km, bus-hours, vehicle-km and vehicle-hours at unit costs);

and compares them: a table (published, scenario, difference) and a map (per cell: both medians,
the difference, and ``lost`` / ``gained`` / ``slower`` / ``faster`` / ``same``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, field_validator

from app.planning.demo import zone_provider
from dispatch.dispatcher import Dispatcher
from dispatch.request import RideRequest
from dispatch.simulation.demand import DemandModel, generate_requests, read_requests_csv
from dispatch.simulation.simulator import Simulator
from dispatch.travel_times import StraightLineTravelTimes
from dispatch.vehicle import VAN, Vehicle
from dispatch.zone import ServiceZone
from gtfs import compile_timetable
from gtfs.feed import Feed
from gtfs.service_levels import TimeBand, compute_service_levels
from gtfs.times import format_time, parse_times
from routing.access import (
    AccessEngine,
    Destinations,
    OnDemand,
    Population,
    cell_times,
    departure_times,
    population_share,
)
from routing.co2 import DESNZ_2023, Co2Factors
from routing.transit import TransitData

DAY_BAND = (TimeBand("day", 0, 30 * 3600),)
BUS_G_PER_KM = 860.0
"""A diesel route bus: ~3 km per litre (Japanese route-bus fleet averages) x 2.58 kg CO2/L."""


# --- the scenario as the planner writes it ------------------------------------------------------
class DropRoute(BaseModel):
    op: Literal["drop_route"]
    route_id: str


class ShortenRoute(BaseModel):
    """Cut every trip of the route to the part between ``from_stop_id`` and ``to_stop_id``
    (either may be omitted: the trip's own end)."""

    op: Literal["shorten_route"]
    route_id: str
    from_stop_id: str | None = None
    to_stop_id: str | None = None


class ChangeHeadway(BaseModel):
    """Multiply the route's headway: 2 keeps every second trip of each direction, 0.5 adds a
    trip halfway between each two consecutive ones. Frequency-based trips (``frequencies.txt``)
    get their ``headway_secs`` multiplied by the factor itself."""

    op: Literal["headway"]
    route_id: str
    factor: float = Field(gt=0.05, le=20)


class AddZone(BaseModel):
    """An on-demand zone: a polygon ``[[lon, lat], ...]``, service hours (seconds after
    midnight), vehicles and a fare."""

    op: Literal["add_zone"]
    name: str = "On-demand zone"
    polygon: list[tuple[float, float]] = Field(min_length=3, max_length=500)
    hours: tuple[int, int] = (7 * 3600, 20 * 3600)
    vehicles: int = Field(3, ge=1, le=200)
    fare: float = Field(300.0, ge=0)
    demand_per_hour: float = Field(6.0, ge=0, le=2000)
    demand_csv: str | None = Field(
        None,
        max_length=5_000_000,
        description="Replayed demand instead of generated: the simulator's requests CSV "
        "(dispatch.simulation.demand.CSV_FIELDS; times in seconds after local midnight).",
    )

    @field_validator("polygon")
    @classmethod
    def _closed_ring(cls, v: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for lon, lat in v:
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise ValueError("polygon points are [lon, lat] in degrees")
        return v if v[0] == v[-1] else [*v, v[0]]

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= v[0] < v[1] <= 48 * 3600:
            raise ValueError("hours must satisfy 0 <= start < end <= 48:00")
        return v


Edit = DropRoute | ShortenRoute | ChangeHeadway | AddZone


class UnitCosts(BaseModel):
    """Operating cost per unit (the city's currency)."""

    bus_km: float = Field(300.0, ge=0)
    bus_hour: float = Field(6000.0, ge=0)
    vehicle_km: float = Field(40.0, ge=0)
    vehicle_hour: float = Field(3000.0, ge=0)
    bus_g_per_km: float = Field(BUS_G_PER_KM, ge=0)


class Analysis(BaseModel):
    """When and how accessibility is measured."""

    date: dt.date | None = None
    start: int = Field(8 * 3600, ge=0, le=36 * 3600)
    window_min: int = Field(60, ge=1, le=240)
    departures: int = Field(12, ge=1, le=60)
    minutes: int = Field(30, ge=1, le=180)
    resolution: int = Field(9, ge=6, le=10)
    wait_s: int = Field(600, ge=0, le=3600)


class ScenarioSpec(BaseModel):
    name: str = Field("Scenario", max_length=200)
    feed: str | None = Field(
        None,
        max_length=64,
        description="The published feed the scenario copies (default: the first published); "
        "recorded in the kept scenario.",
    )
    edits: list[Edit] = Field(default_factory=list, max_length=100)
    unit_costs: UnitCosts = Field(default_factory=UnitCosts)
    analysis: Analysis = Field(default_factory=Analysis)
    seed: int = 1


class EditError(ValueError):
    """An edit that does not fit the network (unknown route, stop not on the route)."""


# --- edits ---------------------------------------------------------------------------------------
def _copy(feed: Feed) -> Feed:
    return Feed(
        tables={k: v.copy() for k, v in feed.tables.items()},
        files=dict(feed.files),
        feed_id=feed.feed_id,
        source=f"scenario:{feed.source}",
    )


def _route_trips(feed: Feed, route_id: str) -> pd.Series:
    trips = feed.tables.get("trips", pd.DataFrame())
    if route_id not in set(feed.column("routes", "route_id")):
        raise EditError(f"no route {route_id!r} in the network")
    return trips.loc[trips["route_id"] == route_id, "trip_id"]


def _drop_trips(feed: Feed, trip_ids: set[str]) -> None:
    t = feed.tables
    t["trips"] = t["trips"][~t["trips"]["trip_id"].isin(trip_ids)]
    t["stop_times"] = t["stop_times"][~t["stop_times"]["trip_id"].isin(trip_ids)]
    if "frequencies" in t:
        t["frequencies"] = t["frequencies"][~t["frequencies"]["trip_id"].isin(trip_ids)]


def apply_edits(feed: Feed, edits: list[Edit]) -> Feed:
    """A copy of ``feed`` with the route edits applied (zones are not feed edits).

    Raises
    ------
    EditError
        When an edit names a route or stop the network does not have.
    """
    out = _copy(feed)
    t = out.tables
    for e in edits:
        if isinstance(e, DropRoute):
            _drop_trips(out, set(_route_trips(out, e.route_id)))
            t["routes"] = t["routes"][t["routes"]["route_id"] != e.route_id]
        elif isinstance(e, ShortenRoute):
            trips = set(_route_trips(out, e.route_id))
            st = t["stop_times"]
            mine = st[st["trip_id"].isin(trips)].copy()
            mine["_seq"] = pd.to_numeric(mine["stop_sequence"])
            mine = mine.sort_values(["trip_id", "_seq"])
            keep = pd.Series(True, index=mine.index)
            for stop, first in ((e.from_stop_id, True), (e.to_stop_id, False)):
                if stop is None:
                    continue
                if stop not in set(mine["stop_id"]):
                    raise EditError(f"stop {stop!r} is not on route {e.route_id!r}")
                at = mine["stop_id"].eq(stop)
                seen = at.groupby(mine["trip_id"]).cumsum()
                has = at.groupby(mine["trip_id"]).transform("any")
                if first:  # from the stop on
                    keep &= ~has | (seen >= 1)
                else:  # up to and including the stop
                    keep &= ~has | (seen == 0) | at & (seen == 1)
            kept = mine[keep]
            short = kept.groupby("trip_id").size()
            gone = set(short[short < 2].index) | (trips - set(kept["trip_id"]))
            st = pd.concat([st[~st["trip_id"].isin(trips)], kept.drop(columns="_seq")])
            t["stop_times"] = st.sort_index()
            _drop_trips(out, gone)
        elif isinstance(e, ChangeHeadway):
            _change_headway(out, set(_route_trips(out, e.route_id)), e.factor)
    return out


def _scale_frequencies(feed: Feed, trips: set[str], factor: float) -> set[str]:
    """Multiply ``headway_secs`` of the ``frequencies.txt`` rows of ``trips`` by ``factor``
    (at least one second); the frequency-based trips among ``trips``.

    A frequency trip's stop times are a template run at every headway, so dropping or copying
    the template (what scheduled trips get) would remove or double the whole period's service.
    """
    fq = feed.tables.get("frequencies")
    if fq is None or fq.empty or "trip_id" not in fq.columns:
        return set()
    mine = fq["trip_id"].isin(trips)
    if not mine.any():
        return set()
    fq = fq.copy()
    h = pd.to_numeric(fq.loc[mine, "headway_secs"], errors="coerce")
    scaled = (h * factor).round().clip(lower=1)
    # A row with no valid headway is left as it was (the reader skips it either way).
    fq.loc[mine, "headway_secs"] = [
        old if np.isnan(v) else str(int(v))
        for old, v in zip(fq.loc[mine, "headway_secs"], scaled, strict=True)
    ]
    feed.tables["frequencies"] = fq
    return set(fq.loc[mine, "trip_id"])


def _change_headway(feed: Feed, trips: set[str], factor: float) -> None:
    trips = trips - _scale_frequencies(feed, trips, factor)
    if not trips:
        return
    t = feed.tables
    st = t["stop_times"]
    first = st[st["trip_id"].isin(trips)].copy()
    first["_seq"] = pd.to_numeric(first["stop_sequence"])
    first = first.sort_values("_seq").drop_duplicates("trip_id")
    secs, _ = parse_times(
        first["departure_time"].where(first["departure_time"] != "", first["arrival_time"])
    )
    first["_start"] = secs
    tr = t["trips"].set_index("trip_id")
    direction = (
        tr["direction_id"] if "direction_id" in tr.columns else pd.Series("", index=tr.index)
    )
    first["_dir"] = first["trip_id"].map(direction).fillna("")
    first = first.sort_values(["_dir", "_start"])
    if factor >= 1:
        step = max(1, round(factor))
        rank = first.groupby("_dir").cumcount()
        _drop_trips(feed, set(first.loc[rank % step != 0, "trip_id"]))
        return
    n = max(1, round(1 / factor))
    new_trips = []
    new_st = []
    for _, g in first.groupby("_dir"):
        starts = g["_start"].to_numpy()
        ids = g["trip_id"].to_numpy()
        for i in range(len(ids) - 1):
            gap = int(starts[i + 1] - starts[i])
            for k in range(1, n):
                shift = gap * k // n
                tid = f"{ids[i]}~h{k}"
                row = t["trips"][t["trips"]["trip_id"] == ids[i]].copy()
                row["trip_id"] = tid
                new_trips.append(row)
                rows = st[st["trip_id"] == ids[i]].copy()
                rows["trip_id"] = tid
                for col in ("arrival_time", "departure_time"):
                    s, _ = parse_times(rows[col])
                    rows[col] = [format_time(int(x) + shift) if x >= 0 else "" for x in s]
                new_st.append(rows)
    if new_trips:
        t["trips"] = pd.concat([t["trips"], *new_trips], ignore_index=True)
        t["stop_times"] = pd.concat([st, *new_st], ignore_index=True)


# --- measuring one network ------------------------------------------------------------------------
@dataclass
class NetworkFigures:
    """What one network (published or scenario) gives, on the analysis day."""

    bus_km: float
    bus_hours: float
    trips: int
    cells: list[str]
    cell_lat: np.ndarray
    cell_lon: np.ndarray
    nearest_min: np.ndarray  # per cell, NaN unreached
    shares: list[dict[str, Any]]
    on_demand: dict[str, Any] = field(default_factory=dict)


def least_used_route(feed: Feed, day: dt.date) -> str:
    """The route with the fewest trips on ``day`` (ties: the fewest service hours)."""
    sl = compute_service_levels(feed, day, DAY_BAND)
    r = sl.routes.sort_values(["num_trips", "service_duration", "route_id"])
    if r.empty:
        raise EditError("no route runs that day")
    return str(r.iloc[0]["route_id"])


def analysis_day(feed: Feed, spec: ScenarioSpec) -> dt.date:
    if spec.analysis.date is not None:
        return spec.analysis.date
    import gtfs_kit as gk

    from gtfs.service_levels import to_gtfs_kit

    gf = to_gtfs_kit(feed)
    week = gf.get_first_week()
    best = gk.compute_busiest_date(gf, week)
    return dt.datetime.strptime(best, "%Y%m%d").date()


def zones_of(spec: ScenarioSpec, tz_offset_s: float) -> list[tuple[AddZone, ServiceZone]]:
    out = []
    for i, e in enumerate(spec.edits):
        if isinstance(e, AddZone):
            z = ServiceZone(
                zone_id=f"scenario-zone-{i + 1}",
                name=e.name,
                polygons=[[list(e.polygon)]],
                service_hours=[(float(e.hours[0]), float(e.hours[1]))],
                utc_offset_s=tz_offset_s,
            )
            out.append((e, z))
    return out


def replayed_requests(text: str, midnight: float) -> list[RideRequest]:
    """Requests of a simulator CSV (times after local midnight), on the day's clock.

    Raises
    ------
    EditError
        On a CSV the simulator's reader refuses (the line and column named).
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demand.csv"
        path.write_text(text, encoding="utf-8")
        try:
            rows = read_requests_csv(path)
        except ValueError as exc:
            raise EditError(f"replayed demand: {exc}") from exc
    return [
        dataclasses.replace(
            r,
            requested_at=r.requested_at + midnight,
            earliest_pickup=None if r.earliest_pickup is None else r.earliest_pickup + midnight,
            latest_arrival=None if r.latest_arrival is None else r.latest_arrival + midnight,
        )
        for r in rows
    ]


def simulate_zone(
    edit: AddZone, zone: ServiceZone, day_epoch: float, seed: int, factors: Co2Factors
) -> dict[str, Any]:
    """A simulated day of the zone: generated Poisson demand over its hours."""
    start = day_epoch + edit.hours[0] - zone.utc_offset_s
    end = day_epoch + edit.hours[1] - zone.utc_offset_s
    d = Dispatcher(StraightLineTravelTimes(1.3), clock=lambda: start)
    d.add_zone(zone)
    rng = np.random.default_rng(seed)
    depots = zone.random_points(rng, edit.vehicles)
    for j in range(edit.vehicles):
        p = (float(depots[j, 0]), float(depots[j, 1]))
        d.add_vehicle(
            Vehicle(f"{zone.zone_id}-v{j + 1}", VAN, p, start, end, p, start, zone_id=zone.zone_id)
        )
    if edit.demand_csv is not None:
        reqs = replayed_requests(edit.demand_csv, start - edit.hours[0])
    else:
        reqs = generate_requests(
            zone, DemandModel(rate_per_hour=edit.demand_per_hour), start, end - 1800, seed
        )
    res = Simulator(d, reqs, step_s=60.0, check_invariants=False).run(start, end + 3600)
    k = res.kpis
    hours = edit.vehicles * (edit.hours[1] - edit.hours[0]) / 3600.0
    return {
        "zone": zone.zone_id,
        "name": edit.name,
        "demand": "replayed" if edit.demand_csv is not None else "generated",
        "requests": k.requests,
        "served": k.served,
        "served_share": round(k.service_rate, 4),
        "mean_wait_min": round(k.mean_wait_min, 2),
        "p95_wait_min": round(k.p95_wait_min, 2),
        "vehicle_km": round(k.vehicle_km, 2),
        "vehicle_hours": round(hours, 2),
        "fare_revenue": round(k.served * edit.fare, 2),
        "co2_kg": round(k.vehicle_km * factors.vehicle_grams_per_km(VAN.name) / 1000.0, 2),
    }


def measure(
    feed: Feed,
    spec: ScenarioSpec,
    day: dt.date,
    destinations: Destinations,
    population: Population | None,
    factors: Co2Factors,
    with_zones: bool,
) -> NetworkFigures:
    """The figures of ``feed`` (and, ``with_zones``, the spec's zones) on ``day``."""
    a = spec.analysis
    sl = compute_service_levels(feed, day, DAY_BAND)
    tt = compile_timetable(feed)
    engine = AccessEngine(TransitData(tt), day)
    deps = departure_times(a.start, a.window_min * 60, a.departures)
    od = None
    sims: dict[str, Any] = {}
    if with_zones:
        from app.dispatch.demo_fleet import utc_offset_s

        day_epoch = dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()
        offset = utc_offset_s(tt.timezone, day_epoch)
        zs = zones_of(spec, offset)
        if zs:
            # No fleet: the estimate drives at the default 30 km/h (a van's speed is close).
            od = OnDemand(zone_provider(tt, [z for _, z in zs], []), wait_s=a.wait_s)
            for i, (e, z) in enumerate(zs):
                sims[z.zone_id] = simulate_zone(e, z, day_epoch, spec.seed + i, factors)
    ct = cell_times(engine, destinations, deps, a.resolution, od)
    shares = []
    if population is not None:
        shares = [
            s.as_dict()
            for s in population_share(engine, population, destinations, deps, a.minutes, od)
        ]
    r = sl.routes
    return NetworkFigures(
        bus_km=float(r["service_distance"].sum()),
        bus_hours=float(r["service_duration"].sum()),
        trips=int(r["num_trips"].sum()),
        cells=ct.cells,
        cell_lat=ct.lat,
        cell_lon=ct.lon,
        nearest_min=ct.nearest_minutes(),
        shares=shares,
        on_demand=sims,
    )


# --- comparison -----------------------------------------------------------------------------------
def _status(a: float, b: float) -> str:
    if np.isnan(a) and np.isnan(b):
        return "unreached"
    if np.isnan(b):
        return "lost"
    if np.isnan(a):
        return "gained"
    if b > a + 0.5:
        return "slower"
    if b < a - 0.5:
        return "faster"
    return "same"


def compare(base: NetworkFigures, scen: NetworkFigures, spec: ScenarioSpec) -> dict[str, Any]:
    """The comparison table and the difference map (GeoJSON of H3 cells)."""
    import h3

    uc = spec.unit_costs
    minutes = spec.analysis.minutes
    b_of = {c: i for i, c in enumerate(base.cells)}
    s_of = {c: i for i, c in enumerate(scen.cells)}
    feats = []
    counts = {k: 0 for k in ("lost", "gained", "slower", "faster", "same", "unreached")}
    for c in sorted(set(b_of) | set(s_of)):
        a = float(base.nearest_min[b_of[c]]) if c in b_of else float("nan")
        b = float(scen.nearest_min[s_of[c]]) if c in s_of else float("nan")
        st = _status(a, b)
        counts[st] += 1
        ring = [[lon, lat] for lat, lon in h3.cell_to_boundary(c)]
        ring.append(ring[0])
        feats.append(
            {
                "type": "Feature",
                "id": c,
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {
                    "h3": c,
                    "published_min": None if np.isnan(a) else round(a, 1),
                    "scenario_min": None if np.isnan(b) else round(b, 1),
                    "delta_min": None if np.isnan(a) or np.isnan(b) else round(b - a, 1),
                    "status": st,
                },
            }
        )

    def within(f: NetworkFigures) -> int:
        return int(np.sum(np.nan_to_num(f.nearest_min, nan=np.inf) <= minutes))

    def od_sum(f: NetworkFigures, key: str) -> float:
        return float(sum(z[key] for z in f.on_demand.values()))

    def cost(f: NetworkFigures) -> float:
        return (
            f.bus_km * uc.bus_km
            + f.bus_hours * uc.bus_hour
            + od_sum(f, "vehicle_km") * uc.vehicle_km
            + od_sum(f, "vehicle_hours") * uc.vehicle_hour
        )

    def co2(f: NetworkFigures) -> float:
        return f.bus_km * uc.bus_g_per_km / 1000.0 + od_sum(f, "co2_kg")

    rows: list[tuple[str, str, float, float]] = [
        ("bus_trips", "trips", base.trips, scen.trips),
        ("bus_km", "km", base.bus_km, scen.bus_km),
        ("bus_hours", "h", base.bus_hours, scen.bus_hours),
        ("on_demand_requests", "requests", od_sum(base, "requests"), od_sum(scen, "requests")),
        ("on_demand_served", "rides", od_sum(base, "served"), od_sum(scen, "served")),
        ("on_demand_vehicle_km", "km", od_sum(base, "vehicle_km"), od_sum(scen, "vehicle_km")),
        (
            "on_demand_vehicle_hours",
            "h",
            od_sum(base, "vehicle_hours"),
            od_sum(scen, "vehicle_hours"),
        ),
        ("fare_revenue", "currency", od_sum(base, "fare_revenue"), od_sum(scen, "fare_revenue")),
        ("co2_kg", "kg", co2(base), co2(scen)),
        ("operating_cost", "currency", cost(base), cost(scen)),
        (
            "cells_reaching_destination",
            "cells",
            int(np.isfinite(base.nearest_min).sum()),
            int(np.isfinite(scen.nearest_min).sum()),
        ),
        (f"cells_within_{minutes}_min", "cells", within(base), within(scen)),
    ]
    for sb, ss in zip(base.shares, scen.shares, strict=True):
        rows.append((f"share_within_{minutes}_min:{sb['kind']}", "share", sb["share"], ss["share"]))
        rows.append(
            (f"residents_within_{minutes}_min:{sb['kind']}", "people", sb["reached"], ss["reached"])
        )
    table = [
        {
            "metric": m,
            "unit": u,
            "published": round(float(a), 4),
            "scenario": round(float(b), 4),
            "difference": round(float(b) - float(a), 4),
        }
        for m, u, a, b in rows
    ]
    return {
        "table": table,
        "map": {"type": "FeatureCollection", "features": feats},
        "cells": counts,
        "on_demand": list(scen.on_demand.values()),
    }


def run_scenario(
    published: Feed,
    spec: ScenarioSpec,
    destinations: Destinations,
    population: Population | None = None,
    factors: Co2Factors | None = None,
) -> dict[str, Any]:
    """Edit a copy of ``published``, measure both, compare (see the module docstring).

    Raises
    ------
    EditError
        On an edit the network cannot take.
    """
    t0 = time.perf_counter()
    factors = factors or DESNZ_2023
    edited = apply_edits(published, spec.edits)
    day = analysis_day(published, spec)
    base = measure(published, spec, day, destinations, population, factors, with_zones=False)
    scen = measure(edited, spec, day, destinations, population, factors, with_zones=True)
    out = compare(base, scen, spec)
    out["date"] = day.isoformat()
    out["name"] = spec.name
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out

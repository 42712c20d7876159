"""Intermodal trips on a simulated day: residents plan bus + on-demand itineraries quoted from
the live fleet, book them, and the fleet drives; were the promises kept?

Two cities:

* **Muroran** (the demo city, ``app/demo_data/jp_donan_bus_muroran.zip``, Wednesday
  2020-06-10, Asia/Tokyo): the demo on-demand zone around Higashi-Muroran station
  (``app.dispatch.demo_fleet.build_demo_zone``), ``--vehicles`` vans at depots spread over its stops.
* **Cobb County** (``us_cobblinc_bus30.zip`` + ``us_marta_bus856.zip``, Wednesday 2021-10-20,
  America/New_York): the CobbLinc GTFS-Flex zones (``us_cobblinc_flex.zip``: 07:00-19:00,
  2 h to 24 h booking notice), ``--vehicles`` vans per zone at random depots. Residents live in
  the zones holding a served stop (zones 1 and 2; zone 3 holds none, so no bus can be reached
  from it by van).

Both use the straight-line models (walking: the planner's default; driving:
``StraightLineTravelTimes(1.3)``), not OSM.

Residents (seeded): two thirds live at a point of a zone far from its stops (the farthest of a
few draws from the nearest served stop) and travel to a point near a random served stop of the
network; one third travel the other way. Departures are spread over the service day; each plans
``min notice + 5..30 min`` ahead of its departure with ``RoutingOptions(on_demand=True)``
through :class:`dispatch.planner_legs.DispatcherLegs` at the simulated "now", takes the first
itinerary holding an on-demand leg and books its legs (``Dispatcher.book``); if one is
refused the others are cancelled. The simulator (:class:`dispatch.simulation.simulator.
Simulator`, invariants checked at every step) drives the fleet through the day; residents plan
in its per-step hook, so quotes meet plans as they really are at that moment.

A promise is **kept** when the ride was picked up inside the promised window and, for an
access leg, dropped at the stop no later than the planned bus leaves (less the walk between
them; no slack added), for an egress leg, picked up no earlier than the bus arrives (plus the
walk). ``promise_kept_share`` counts booked legs.

**Schedule-only** (OpenTripPlanner's GTFS-Flex way): the same residents plan at the same
moments with legs offered from the zone's service hours, booking notice and the direct drive
estimate, without asking the fleet (a ride leaves at the asked time, within the same
10-minute window the dispatcher promises, and takes the direct drive). Their rides are then
booked on a fresh copy of the fleet by the simulator (``request_ride`` with earliest pick-up =
the promised pick-up, at the moment of planning) and judged the same way:
``schedule_only_kept_share`` over the legs booked; ``*_of_promised`` counts a refused booking
as a broken promise too.

Timing: the same queries (asked at 08:00, leaving 10-60 min after the booking notice: 08:10-09:00
in Muroran, 10:10-11:00 in Cobb County) planned with on-demand legs and
transit-only (``on_demand=False``), on a fleet of ``--timing-vehicles`` vans per zone, each
holding about two booked rides; ``plan_p50_ms`` / ``plan_p95_ms`` are medians over
``--repeats`` runs. ``door_to_door_minutes_saved_median``: for residents who got an on-demand
itinerary, the transit-only plan's earliest arrival minus the on-demand one's, in minutes
(residents with no transit-only itinerary are counted as ``transit_unreachable``).

Run ``python -m bench.intermodal [--json PATH] [--quick] [--residents N] [--vehicles N]
[--timing-vehicles N] [--seed S]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from app.dispatch.demo_fleet import DEFAULT_SPEC, build_demo_zone, demo_vehicles, utc_offset_s
from dispatch.dispatcher import Dispatcher
from dispatch.flex_zones import load_flex_zones
from dispatch.planner_legs import DispatcherLegs, stops_inside
from dispatch.request import RideRequest
from dispatch.rides import Rejection, Ride, RideStatus
from dispatch.simulation.invariants import TOL
from dispatch.simulation.scenario import build_dispatcher
from dispatch.simulation.simulator import Simulator
from dispatch.travel_times import StraightLineTravelTimes
from dispatch.vehicle import VAN
from dispatch.zone import ServiceZone
from gtfs import compile_timetable, read_feed
from gtfs.compiled import CompiledTimetable
from gtfs.geo import haversine_m
from routing.itinerary import Itinerary, ItineraryLeg, service_day_epoch_ms
from routing.on_demand import OnDemandAnswer, OnDemandOffer, OnDemandRefusal, OnDemandRequest
from routing.options import RoutingOptions
from routing.planner import Plan, Planner, PlanPlace, PlanRequest
from routing.transit import TransitData

REPO = Path(__file__).resolve().parent.parent
GTFS = REPO.parent / "shared" / "data" / "gtfs"
MURORAN_FEED = REPO / "app" / "demo_data" / "jp_donan_bus_muroran.zip"
COBB_FEEDS = (GTFS / "us_cobblinc_bus30.zip", GTFS / "us_marta_bus856.zip")
COBB_FLEX = GTFS / "us_cobblinc_flex.zip"

STEP_S = 30.0  # simulated seconds per step of the fleet
FAR_FROM_STOPS_M = 400.0  # a zone resident this far from any served stop is "far"
ORIGIN_DRAWS = 20  # draws per resident to find a far point (the farthest is kept)
NEAR_STOP_M = 150.0  # the network end lies this close to a served stop at most
ACCESS_SHARE = 2 / 3  # residents leaving the zone (the others come into it)
LEAD_S = (5 * 60, 30 * 60)  # planned this long before departure, on top of the notice
TIMING_T0 = 8 * 3600  # the fleet's "now" of the timing runs (service-day seconds)
RIDES_PER_VEHICLE = 2  # booked rides per vehicle before the timing runs


# --- cities -----------------------------------------------------------------------------------
@dataclass
class City:
    """One city's network, zones and the recipe of its fleet."""

    name: str
    tt: CompiledTimetable
    planner: Planner
    zones: list[ServiceZone]
    day: dt.date
    base: float  # unix seconds of service-day second 0
    departures: tuple[int, int]  # service-day seconds residents leave between
    make_fleet: Callable[[int], Dispatcher]  # vehicles per zone -> a fresh dispatcher
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def served(self) -> npt.NDArray[np.int64]:
        return np.flatnonzero(np.diff(self.tt.stop_pattern_ptr) > 0)

    def home_zones(self) -> list[ServiceZone]:
        """Zones holding a served stop: a van can bring their residents to a bus."""
        served = set(self.served.tolist())
        return [
            z
            for z in self.zones
            if served & set(stops_inside(z, self.tt.stop_lat, self.tt.stop_lon).tolist())
        ]

    def provider(self, d: Dispatcher, user_id: str, now: float) -> DispatcherLegs:
        return DispatcherLegs(
            d, self.zones, self.tt.stop_lat, self.tt.stop_lon, self.tt.timezone, self.cache,
            user_id, now=now,
        )  # fmt: skip


def muroran(seed: int) -> City:
    """The demo city: the demo zone, vans spread over its stops."""
    tt = compile_timetable(read_feed(MURORAN_FEED))
    day = dt.date(2020, 6, 10)
    base = service_day_epoch_ms(day, tt.timezone) / 1000.0
    zone, stops = build_demo_zone(tt, now=base + 12 * 3600)

    def fleet(n: int) -> Dispatcher:
        d = Dispatcher(StraightLineTravelTimes(1.3), clock=lambda: base)
        d.add_zone(zone)
        spec = replace(DEFAULT_SPEC, fleet=((VAN, n),), shift_days=1.0)
        for v in demo_vehicles(zone, stops, base + 6 * 3600, spec):
            d.add_vehicle(v)
        return d

    return City("muroran", tt, Planner(TransitData(tt)), [zone], day, base,
                (7 * 3600, 20 * 3600), fleet)  # fmt: skip


def cobb(seed: int) -> City:
    """Cobb County: CobbLinc route 30 and MARTA 856, the CobbLinc flex zones."""
    tt = compile_timetable([read_feed(p) for p in COBB_FEEDS])
    day = dt.date(2021, 10, 20)
    base = service_day_epoch_ms(day, tt.timezone) / 1000.0
    zones = load_flex_zones(COBB_FLEX, utc_offset_s(tt.timezone, base + 12 * 3600))

    def fleet(n: int) -> Dispatcher:
        shift = (base + 6.5 * 3600, base + 21 * 3600)
        return build_dispatcher(zones, n, shift, seed, travel=StraightLineTravelTimes(1.3))

    return City("cobb_county", tt, Planner(TransitData(tt)), zones, day, base,
                (9 * 3600, 18 * 3600 + 1800), fleet)  # fmt: skip


# --- residents --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Resident:
    """One trip: where from and to, when to leave (service-day s), when planned (unix s)."""

    rid: str
    origin: tuple[float, float]
    destination: tuple[float, float]
    depart_s: int
    plan_at: float


def _nearest_stop_m(city: City, p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Distance of each point of ``p`` (n x 2) to its nearest served stop."""
    s = city.served
    d = haversine_m(
        p[:, 0:1], p[:, 1:2], city.tt.stop_lat[s][None, :], city.tt.stop_lon[s][None, :]
    )
    return np.asarray(d.min(axis=1), dtype=np.float64)


def draw_residents(
    city: City, n: int, seed: int, departures: tuple[int, int] | None = None
) -> list[Resident]:
    """``n`` seeded residents of ``city``, sorted by planning time."""
    rng = np.random.default_rng(seed)
    homes = city.home_zones()
    lo, hi = departures or city.departures
    served = city.served
    out: list[Resident] = []
    for k in range(n):
        zone = homes[int(rng.integers(len(homes)))]
        pts = zone.random_points(rng, ORIGIN_DRAWS)
        dist = _nearest_stop_m(city, pts)
        # The first draw far enough, else the farthest: many residents far from any stop.
        far = np.flatnonzero(dist >= FAR_FROM_STOPS_M)
        i = int(far[0]) if far.size else int(np.argmax(dist))
        home = (float(pts[i, 0]), float(pts[i, 1]))
        s = int(served[rng.integers(served.size)])
        r, a = NEAR_STOP_M * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
        lat = float(city.tt.stop_lat[s]) + r * np.cos(a) / 111_320.0
        lon = float(city.tt.stop_lon[s]) + r * np.sin(a) / (111_320.0 * np.cos(np.radians(lat)))
        o, d = (home, (lat, lon)) if rng.random() < ACCESS_SHARE else ((lat, lon), home)
        depart = int(rng.integers(lo, hi))
        lead = zone.min_notice_s + float(rng.integers(*LEAD_S))
        out.append(Resident(f"{city.name}-{k}", o, d, depart, city.base + depart - lead))
    out.sort(key=lambda r: (r.plan_at, r.rid))
    return out


def plan_request(r: Resident, city: City, on_demand: bool) -> PlanRequest:
    return PlanRequest(
        PlanPlace(*r.origin),
        PlanPlace(*r.destination),
        city.day,
        r.depart_s,
        options=RoutingOptions(on_demand=on_demand),
    )


# --- promises ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LegPromise:
    """What the rider of one on-demand leg was promised (unix seconds)."""

    ride_id: str
    role: str  # "access" | "egress" | "direct"
    window: tuple[float, float]
    dropoff_by: float | None = None  # access: the planned bus leaves then (less the walk)
    pickup_from: float | None = None  # egress: the bus arrives then (plus the walk)


def _is_transit(leg: ItineraryLeg) -> bool:
    return leg.mode not in ("WALK", "FLEX")


def promises(it: Itinerary, base: float, ride_ids: Sequence[str]) -> list[LegPromise]:
    """The promise of every on-demand leg of ``it`` (``ride_ids``: their rides, in order)."""
    legs = it.legs
    flex = [k for k, leg in enumerate(legs) if leg.on_demand is not None]
    out: list[LegPromise] = []
    for k, ride_id in zip(flex, ride_ids, strict=True):
        offer = legs[k].on_demand
        assert offer is not None
        window = (base + offer.pickup_window[0], base + offer.pickup_window[1])
        after = next((j for j in range(k + 1, len(legs)) if _is_transit(legs[j])), None)
        before = next((j for j in range(k - 1, -1, -1) if _is_transit(legs[j])), None)
        if after is not None:
            walk = sum(leg.end - leg.start for leg in legs[k + 1 : after])
            out.append(
                LegPromise(ride_id, "access", window, dropoff_by=base + legs[after].start - walk)
            )
        elif before is not None:
            walk = sum(leg.end - leg.start for leg in legs[before + 1 : k])
            out.append(
                LegPromise(ride_id, "egress", window, pickup_from=base + legs[before].end + walk)
            )
        else:
            out.append(LegPromise(ride_id, "direct", window))
    return out


def broken(p: LegPromise, ride: Ride | None) -> str | None:
    """How the ride of ``p`` broke its promise (see the module docstring), None if kept."""
    if ride is None or ride.status is not RideStatus.COMPLETED:
        return "not_served"
    up, down = ride.picked_up_at, ride.dropped_off_at
    assert up is not None and down is not None
    if not p.window[0] - TOL <= up <= p.window[1] + TOL:
        return "pickup_outside_window"
    if p.dropoff_by is not None and down > p.dropoff_by + TOL:
        return "missed_the_bus"
    if p.pickup_from is not None and up < p.pickup_from - TOL:
        return "pickup_before_the_bus"
    return None


def kept(p: LegPromise, ride: Ride | None) -> bool:
    """Whether the ride of ``p`` was served as promised."""
    return broken(p, ride) is None


# --- schedule-only legs -----------------------------------------------------------------------
class ScheduleOnlyLegs:
    """On-demand legs from the zones' schedule alone (as OpenTripPlanner offers GTFS-Flex):
    service hours, booking notice and the direct drive; the fleet is never asked.

    Zones, stops and drive estimates are those of ``legs`` (a :class:`DispatcherLegs`).
    """

    def __init__(self, legs: DispatcherLegs, base: float, window_s: float) -> None:
        self.legs = legs
        self.base = base
        self.window_s = window_s

    def zone_at(self, lat: float, lon: float) -> str | None:
        return self.legs.zone_at(lat, lon)

    def stops_in_zone(self, zone_id: str) -> npt.NDArray[np.int32]:
        return self.legs.stops_in_zone(zone_id)

    def hub_stops(self, zone_id: str) -> frozenset[int]:
        return self.legs.hub_stops(zone_id)

    def estimate_s(
        self, origin: tuple[float, float], destination: tuple[float, float]
    ) -> float | None:
        return self.legs.estimate_s(origin, destination)

    def quote(self, day: dt.date, requests: Sequence[OnDemandRequest]) -> list[OnDemandAnswer]:
        return [self._one(r) for r in requests]

    def _one(self, r: OnDemandRequest) -> OnDemandAnswer:
        zid = self.zone_at(*r.origin)
        drive = self.estimate_s(r.origin, r.destination)
        if zid is None or drive is None:
            return OnDemandRefusal(r, "outside_zone", "not inside one zone")
        zone = self.legs.zones[zid]
        ride = round(drive)
        pickup = r.depart_at if r.depart_at is not None else (r.arrive_by or 0) - ride
        if not zone.in_service(self.base + pickup):
            return OnDemandRefusal(r, "outside_service_hours", "no service at that time")
        if self.base + pickup - self.legs.now() < zone.min_notice_s:
            return OnDemandRefusal(r, "insufficient_notice", "book earlier")
        window = (pickup, pickup + round(self.window_s))
        return OnDemandOffer(
            request=r,
            pickup=r.origin,
            dropoff=r.destination,
            pickup_window=window,
            pickup_eta=pickup,
            dropoff_eta=pickup + ride,
            latest_arrival=window[1] + ride,
            zone_id=zid,
            zone_name=zone.name,
            vehicle_type="van",
            vehicle_id="",
            quote_id="",
            ride_id=uuid.uuid4().hex,
            expires_at=pickup,
        )


# --- a simulated day --------------------------------------------------------------------------
@dataclass
class DayResult:
    """What happened to the residents of one approach on one day."""

    residents: int = 0
    planned: int = 0
    with_on_demand: int = 0
    booked: int = 0  # residents whose every on-demand leg was booked
    no_on_demand_reasons: Counter[str] = field(default_factory=Counter)
    booking_refused: Counter[str] = field(default_factory=Counter)
    legs_promised: int = 0
    legs: list[LegPromise] = field(default_factory=list)  # booked legs
    legs_kept: int = 0
    broken: Counter[str] = field(default_factory=Counter)
    violations: int = 0
    saved_min: list[float] = field(default_factory=list)
    transit_unreachable: int = 0
    roles: Counter[str] = field(default_factory=Counter)

    def judge(self, d: Dispatcher) -> None:
        """Count the booked legs kept, and how the others broke, once the day is over."""
        causes = [broken(p, d.ride(p.ride_id)) for p in self.legs]
        self.legs_kept = causes.count(None)
        self.broken = Counter(c for c in causes if c is not None)

    def kept_share(self) -> float | None:
        return self.legs_kept / len(self.legs) if self.legs else None

    def kept_share_of_promised(self) -> float | None:
        return self.legs_kept / self.legs_promised if self.legs_promised else None


def _chosen(plan: Plan) -> Itinerary | None:
    return next((it for it in plan.itineraries if it.on_demand), None)


def _count_plan(res: DayResult, plan: Plan) -> Itinerary | None:
    res.residents += 1
    res.planned += bool(plan.itineraries)
    it = _chosen(plan)
    if it is None:
        reasons = {r.reason for r in plan.on_demand_refusals} or {"dominated"}
        res.no_on_demand_reasons.update(reasons)
        return None
    res.with_on_demand += 1
    return it


def live_day(city: City, residents: list[Resident], vehicles: int) -> DayResult:
    """Residents plan and book from the live fleet while the simulator drives it."""
    d = city.make_fleet(vehicles)
    res = DayResult()
    todo = list(residents)

    def plan_due(now: float) -> int:
        while todo and todo[0].plan_at < now:
            r = todo.pop(0)
            prov = city.provider(d, r.rid, now)
            plan = city.planner.plan(plan_request(r, city, True), on_demand=prov)
            it = _count_plan(res, plan)
            if it is None:
                continue
            transit = city.planner.plan(plan_request(r, city, False))
            if transit.itineraries:
                best = min(x.end for x in transit.itineraries)
                res.saved_min.append((best - it.end) / 60.0)
            else:
                res.transit_unreachable += 1
            _book_live(d, it, r.rid, now, city.base, res)
        return 0  # no rebalancing move

    # The simulator's per-step hook (its rebalancing slot) is where residents plan: after
    # the vehicles drove to "now", as a resident's phone would see the fleet.
    sim = Simulator(d, [], step_s=STEP_S, rebalance=plan_due, rebalance_every_s=STEP_S)
    start = min(r.plan_at for r in residents) - STEP_S
    end = max(city.base + r.depart_s for r in residents)
    out = sim.run(start, end)
    res.violations = len(out.violations)
    res.judge(d)
    return res


def _book_live(
    d: Dispatcher, it: Itinerary, user: str, now: float, base: float, res: DayResult
) -> None:
    """Book every on-demand leg of ``it``; release them all if one is refused."""
    offers = [leg.on_demand for leg in it.legs if leg.on_demand is not None]
    res.legs_promised += len(offers)
    rides: list[Ride] = []
    for offer in offers:
        got = d.book(offer.quote_id, user, now)
        if isinstance(got, Rejection):
            res.booking_refused[got.reason.value] += 1
            for ride in rides:
                d.cancel(ride.ride_id, now)
            return
        rides.append(got)
    res.booked += 1
    for p in promises(it, base, [r.ride_id for r in rides]):
        res.legs.append(p)
        res.roles[p.role] += 1


def schedule_only_day(city: City, residents: list[Resident], vehicles: int) -> DayResult:
    """The same residents planned from the schedule; their rides booked on a fresh fleet."""
    d = city.make_fleet(vehicles)
    res = DayResult()
    requests: list[RideRequest] = []
    pending: list[LegPromise] = []
    groups: list[list[str]] = []  # the ride ids of each resident's itinerary
    for r in residents:
        prov = ScheduleOnlyLegs(
            city.provider(d, r.rid, r.plan_at), city.base, d.rules.window_after_s
        )
        it = _count_plan(res, city.planner.plan(plan_request(r, city, True), on_demand=prov))
        if it is None:
            continue
        offers = [leg.on_demand for leg in it.legs if leg.on_demand is not None]
        res.legs_promised += len(offers)
        for offer in offers:
            requests.append(
                RideRequest(
                    origin=offer.pickup,
                    destination=offer.dropoff,
                    requested_at=r.plan_at,
                    earliest_pickup=city.base + offer.pickup_eta,
                    user_id=r.rid,
                    request_id=offer.ride_id,
                )
            )
        groups.append([o.ride_id for o in offers])
        pending += promises(it, city.base, groups[-1])
    requests.sort(key=lambda q: (q.requested_at, q.request_id))
    sim = Simulator(d, requests, step_s=STEP_S)
    start = min(r.plan_at for r in residents) - STEP_S
    out = sim.run(start, max(city.base + r.depart_s for r in residents))
    res.violations = len(out.violations)
    res.booking_refused.update(rej.reason.value for rej in sim.rejections)
    booked_ids = {ride.ride_id for ride in d.rides()}
    res.legs = [p for p in pending if p.ride_id in booked_ids]
    res.roles.update(p.role for p in res.legs)
    res.booked = sum(all(i in booked_ids for i in ids) for ids in groups)
    res.judge(d)
    return res


# --- timing -----------------------------------------------------------------------------------
def loaded_fleet(city: City, vehicles: int, seed: int) -> Dispatcher:
    """A fleet of ``vehicles`` per zone holding about :data:`RIDES_PER_VEHICLE` booked rides
    each (rides inside the zone, picked up in the hour after the zone's booking notice from the
    timing runs' "now", when the timed queries leave)."""
    d = city.make_fleet(vehicles)
    rng = np.random.default_rng(seed)
    now = city.base + TIMING_T0
    for z in d.zones():
        for k in range(vehicles * RIDES_PER_VEHICLE):
            a, b = z.random_points(rng, 2)
            pickup = now + z.min_notice_s + float(rng.integers(0, 3600))
            d.request_ride(
                RideRequest(
                    (a[0], a[1]), (b[0], b[1]), now, pickup, request_id=f"load-{z.zone_id}-{k}"
                ),
                now=now,
            )
    return d


def time_plans(
    city: City, vehicles: int, n_queries: int, repeats: int, seed: int
) -> dict[str, Any]:
    """Plan latency with on-demand legs and transit-only on the same queries."""
    d = loaded_fleet(city, vehicles, seed)
    # Asked at TIMING_T0 for the hour after the notice, where the loaded rides are too.
    t0 = TIMING_T0 + round(max(z.min_notice_s for z in city.zones))
    queries = draw_residents(city, n_queries, seed + 1, (t0 + 600, t0 + 3600))
    now = city.base + TIMING_T0

    def one(r: Resident, on_demand: bool) -> float:
        t = time.perf_counter()
        prov = city.provider(d, r.rid, now)
        city.planner.plan(plan_request(r, city, on_demand), on_demand=prov)
        return time.perf_counter() - t

    for r in queries[:3]:  # warm-up: numba kernels compiled or loaded from the cache
        one(r, True)
        one(r, False)
    runs: list[tuple[float, float, float, float]] = []
    for _ in range(repeats):
        flex: list[float] = []
        plain: list[float] = []
        for k, r in enumerate(queries):
            # Alternate which runs first, so neither profits from the other's warm caches.
            order = (True, False) if k % 2 == 0 else (False, True)
            for on_demand in order:
                (flex if on_demand else plain).append(one(r, on_demand))
        a, b = np.asarray(flex) * 1000.0, np.asarray(plain) * 1000.0
        runs.append(
            (
                float(np.percentile(a, 50)),
                float(np.percentile(a, 95)),
                float(np.percentile(b, 50)),
                float(np.percentile(b, 95)),
            )
        )
    med = [statistics.median(x[i] for x in runs) for i in range(4)]
    return {
        "plan_p50_ms": round(med[0], 2),
        "plan_p95_ms": round(med[1], 2),
        "plan_p50_ms_transit_only": round(med[2], 2),
        "plan_p95_ms_transit_only": round(med[3], 2),
        "timing_vehicles_per_zone": vehicles,
        "timing_queries": n_queries,
        "timing_repeats": repeats,
        "timing_booked_rides": len(d.rides()),
    }


# --- report -----------------------------------------------------------------------------------
def _round(x: float | None, nd: int = 4) -> float | None:
    return None if x is None else round(x, nd)


def run_city(
    city: City, n_residents: int, vehicles: int, timing: tuple[int, int, int], seed: int
) -> dict[str, Any]:
    """Every figure of one city (the keys of the JSON)."""
    residents = draw_residents(city, n_residents, seed)
    t = time.perf_counter()
    live = live_day(city, residents, vehicles)
    sched = schedule_only_day(city, residents, vehicles)
    wall = time.perf_counter() - t
    out: dict[str, Any] = {
        "residents": live.residents,
        "vehicles_per_zone": vehicles,
        "planned": live.planned,
        "with_on_demand": live.with_on_demand,
        "booked": live.booked,
        "legs_promised": live.legs_promised,
        "legs_booked": len(live.legs),
        "legs_kept": live.legs_kept,
        "legs_by_role": dict(live.roles),
        "refused_at_planning_by_reason": dict(live.no_on_demand_reasons),
        "refused_at_booking_by_reason": dict(live.booking_refused),
        "broken_by_cause": dict(live.broken),
        "promise_kept_share": _round(live.kept_share()),
        "promise_kept_share_of_promised": _round(live.kept_share_of_promised()),
        "schedule_only_with_on_demand": sched.with_on_demand,
        "schedule_only_legs_promised": sched.legs_promised,
        "schedule_only_legs_booked": len(sched.legs),
        "schedule_only_legs_kept": sched.legs_kept,
        "schedule_only_refused_at_booking_by_reason": dict(sched.booking_refused),
        "schedule_only_broken_by_cause": dict(sched.broken),
        "schedule_only_kept_share": _round(sched.kept_share()),
        "schedule_only_kept_share_of_promised": _round(sched.kept_share_of_promised()),
        "door_to_door_minutes_saved_median": (
            round(statistics.median(live.saved_min), 2) if live.saved_min else None
        ),
        "door_to_door_compared": len(live.saved_min),
        "transit_unreachable": live.transit_unreachable,
        "invariant_violations": live.violations + sched.violations,
        "simulation_wall_s": round(wall, 1),
    }
    out.update(time_plans(city, *timing, seed))
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {n}" for k, n in sorted(v.items())) or "-"
    return str(v)


def print_table(results: dict[str, dict[str, Any]]) -> None:
    names = list(results)
    keys = list(results[names[0]])
    width = max(len(k) for k in keys)
    print(f"{'':{width}}  " + "  ".join(f"{n:>24}" for n in names))
    for k in keys:
        print(f"{k:{width}}  " + "  ".join(f"{_fmt(results[n][k]):>24}" for n in names))


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    ap.add_argument("--quick", action="store_true", help="a small run (40 residents, 20 vans)")
    ap.add_argument("--residents", type=int, default=None, help="residents per city (400)")
    ap.add_argument("--vehicles", type=int, default=None, help="vans per zone, day (10)")
    ap.add_argument(
        "--timing-vehicles", type=int, default=None, help="vans per zone, timing runs (200)"
    )
    ap.add_argument("--timing-queries", type=int, default=None, help="queries per run (200)")
    ap.add_argument("--repeats", type=int, default=None, help="timing runs (3)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--city", choices=("muroran", "cobb_county"), action="append")
    a = ap.parse_args(argv)
    quick = a.quick
    n_res = a.residents or (40 if quick else 400)
    vans = a.vehicles or (20 if quick else 10)
    timing = (
        a.timing_vehicles or (20 if quick else 200),
        a.timing_queries or (20 if quick else 200),
        a.repeats or (2 if quick else 3),
    )
    builders = {"muroran": muroran, "cobb_county": cobb}
    results: dict[str, dict[str, Any]] = {}
    for name in a.city or list(builders):
        city = builders[name](a.seed)
        results[name] = run_city(city, n_res, vans, timing, a.seed)
    print_table(results)
    if a.json:
        a.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()

"""A whole city's simulated day, zone by zone, as the scaled-out service runs it.

The city is a grid of square service zones. Each zone is owned by one worker, as in the
scaled-out dispatcher (:mod:`dispatch.scale_out`): a worker holds one live
:class:`~dispatch.dispatcher.Dispatcher` for the zones it owns and, step by step, quotes and
books their requests, drives their vehicles and re-optimises each zone's plans. Zones share
nothing (a ride starts and ends in one zone), so workers run as separate processes.

The fleet is shared out to the zones in proportion to their demand (central zones are busier,
as a city's are), and works three overlapping shifts. The invariants (windows, capacity,
ride-time limits, vehicle hours, no ride lost or doubled) are checked by the simulator's
checker on every worker's plans during the day and on everything served at its end.
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dispatch.dispatcher import Dispatcher
from dispatch.optimize.alns import warm_up
from dispatch.reoptimize import reoptimise_zone
from dispatch.request import RideRequest, ServiceRules
from dispatch.rides import Quote, Rejection
from dispatch.simulation.simulator import Simulator, lost_or_duplicated
from dispatch.travel_times import StraightLineTravelTimes
from dispatch.vehicle import VAN, Vehicle
from dispatch.zone import ServiceZone

#: The city's centre (any mid-latitude city: the travel model is straight-line).
CITY_CENTER = (40.75, -73.98)
#: Shifts ``(start, end, share of the fleet)`` in seconds after midnight: early, middle, late.
SHIFTS = (
    (5.5 * 3600, 15.5 * 3600, 0.4),
    (10.5 * 3600, 20.5 * 3600, 0.3),
    (14.5 * 3600, 24.5 * 3600, 0.3),
)
KM_PER_DEG_LAT = 111.32


@dataclass(frozen=True)
class CityLayout:
    """Square zones of ``side_km`` on a ``rows`` x ``cols`` grid around ``center``."""

    rows: int = 4
    cols: int = 5
    side_km: float = 4.0
    center: tuple[float, float] = CITY_CENTER

    def zones(self) -> list[ServiceZone]:
        """The zones, row by row (ids ``z<row><col>``), served all day."""
        dlat = self.side_km / KM_PER_DEG_LAT
        dlon = dlat / math.cos(math.radians(self.center[0]))
        lat0 = self.center[0] - self.rows * dlat / 2
        lon0 = self.center[1] - self.cols * dlon / 2
        out = []
        for r in range(self.rows):
            for c in range(self.cols):
                a, b = lat0 + r * dlat, lon0 + c * dlon
                ring = [(b, a), (b + dlon, a), (b + dlon, a + dlat), (b, a + dlat), (b, a)]
                out.append(ServiceZone(f"z{r}{c}", f"zone {r},{c}", [[ring]]))
        return out

    def weights(self) -> list[float]:
        """Each zone's share of the demand: busiest in the centre, a third of it at the edge."""
        out = []
        rc, cc = (self.rows - 1) / 2, (self.cols - 1) / 2
        spread = max(self.rows, self.cols) / 2
        for r in range(self.rows):
            for c in range(self.cols):
                d2 = ((r - rc) ** 2 + (c - cc) ** 2) / spread**2
                out.append(0.35 + math.exp(-d2))
        return out


def share_out(total: int, weights: list[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainders; at least 1 each)."""
    w = np.asarray(weights, dtype=np.float64)
    exact = total * w / w.sum()
    n = np.maximum(np.floor(exact).astype(np.int64), 1)
    rest = total - int(n.sum())
    for k in np.argsort(-(exact - np.floor(exact)))[: max(rest, 0)]:
        n[k] += 1
    return [int(x) for x in n]


def assign_zones(vehicles: list[int], workers: int) -> list[list[int]]:
    """Zone indices per worker, balancing vehicles (the work grows with them)."""
    loads = [0] * workers
    out: list[list[int]] = [[] for _ in range(workers)]
    for k in sorted(range(len(vehicles)), key=lambda k: -vehicles[k]):
        w = loads.index(min(loads))
        out[w].append(k)
        loads[w] += vehicles[k]
    return out


def zone_fleet(zone: ServiceZone, n: int, rng: np.random.Generator) -> list[Vehicle]:
    """``n`` vans at random depots of ``zone``, shared out to :data:`SHIFTS`."""
    counts = share_out(n, [s[2] for s in SHIFTS]) if n >= len(SHIFTS) else [n, 0, 0]
    depots = zone.random_points(rng, n)
    out = []
    k = 0
    for (start, end, _), m in zip(SHIFTS, counts, strict=True):
        for _ in range(m):
            p = (float(depots[k, 0]), float(depots[k, 1]))
            out.append(
                Vehicle(f"{zone.zone_id}-v{k}", VAN, p, start, end, p, start, zone_id=zone.zone_id)
            )
            k += 1
    return out


def planned_m(d: Dispatcher, zone_id: str) -> float:
    """Metres the zone's vehicles still plan to drive: from where they are through every
    planned stop back to the depot (the re-optimiser's objective)."""
    total = 0.0
    for v in d.vehicles(zone_id):
        if v.plan:
            pts = np.array([v.position, *(s.latlon for s in v.plan), v.depot], dtype=np.float64)
            total += float(np.trace(d.travel.distance_m(pts[:-1], pts[1:])))
    return total


@dataclass
class WorkerResult:
    """What one zone owner reports after the day (raw values: the city merges them)."""

    zones: list[str]
    vehicles: int
    requests: int
    served: int
    rejected: dict[str, int]
    waits_s: list[float]
    detours: list[float]
    vehicle_km: float
    empty_km: float
    quote_s: list[float]
    book_s: list[float]
    reopt_passes: int = 0
    reopt_applied: int = 0
    reopt_saved_m: float = 0.0
    reopt_planned_m: float = 0.0
    reopt_wall_s: float = 0.0
    violations: list[str] = field(default_factory=list)
    simulated_s: float = 0.0
    #: Simulated steps, and checks of every plan in force against the invariants.
    steps: int = 0
    plan_checks: int = 0
    wall_s: float = 0.0
    #: Seconds loading or compiling the solver's kernels before the day (not in ``wall_s``).
    warmup_s: float = 0.0
    peak_rss_mb: float = 0.0


def run_worker(
    zones: list[ServiceZone],
    vehicles: list[int],
    requests: list[RideRequest],
    seed: int,
    *,
    start_s: float = 5.0 * 3600,
    end_s: float = 24.0 * 3600,
    step_s: float = 60.0,
    reopt_every_s: float | None = 900.0,
    reopt_limit_s: float = 0.3,
    check_every_s: float = 60.0,
) -> WorkerResult:
    """One zone owner's day: its zones, ``vehicles[k]`` vans in zone ``k``, its requests.

    ``reopt_every_s`` None: insertion only. Re-optimisation is ALNS with ``reopt_limit_s`` a
    zone a pass, off the booking path as in the live service; its gain is the planned driving
    it removes (metres before minus after the pass).
    """
    t_warm = time.perf_counter()
    if reopt_every_s:
        # Load (or, with a stale numba cache, compile) the ALNS kernels before the day: the
        # first pass would otherwise carry it (minutes when compiling on a loaded machine).
        warm_up()
    warmup_s = time.perf_counter() - t_warm
    t_wall = time.perf_counter()
    rng = np.random.default_rng(seed)
    d = Dispatcher(StraightLineTravelTimes(1.3), ServiceRules(), clock=lambda: start_s)
    for z, n in zip(zones, vehicles, strict=True):
        d.add_zone(z)
        for v in zone_fleet(z, n, rng):
            d.add_vehicle(v)
    res = WorkerResult(
        zones=[z.zone_id for z in zones],
        vehicles=sum(vehicles),
        requests=len(requests),
        served=0,
        rejected={},
        waits_s=[],
        detours=[],
        vehicle_km=0.0,
        empty_km=0.0,
        quote_s=[],
        book_s=[],
    )

    def reoptimise(now: float) -> int:
        applied = 0
        for z in zones:
            before = planned_m(d, z.zone_id)
            t = time.perf_counter()
            n = reoptimise_zone(d, z.zone_id, now, reopt_limit_s, "alns")
            res.reopt_wall_s += time.perf_counter() - t
            res.reopt_passes += 1
            res.reopt_planned_m += before
            if n:
                res.reopt_saved_m += before - planned_m(d, z.zone_id)
            applied += n
        return applied

    sim = Simulator(
        d,
        requests,
        step_s=step_s,
        check_invariants=True,
        check_every_s=check_every_s,
        reoptimise=reoptimise if reopt_every_s else None,
        reopt_every_s=reopt_every_s or 900.0,
    )
    out = sim.run(start_s, end_s)
    res.violations = out.violations + lost_or_duplicated(d, requests, len(sim.rejections))
    res.served = out.kpis.served
    res.rejected = out.kpis.rejected
    done = [r for r in d.rides() if r.picked_up_at is not None and r.dropped_off_at is not None]
    res.waits_s = [float(r.picked_up_at or 0.0) - r.request.departure for r in done]
    res.detours = [
        (float(r.dropped_off_at or 0.0) - float(r.picked_up_at or 0.0)) / max(r.direct_s, 1.0)
        for r in done
    ]
    res.vehicle_km = sim.vehicle_km
    res.empty_km = sim.empty_km
    res.quote_s = sim.quote_s
    res.book_s = sim.book_s
    res.reopt_applied = sim.reopt_applied
    res.simulated_s = out.steps * step_s
    res.steps = out.steps
    res.plan_checks = sim.plan_checks
    res.wall_s = time.perf_counter() - t_wall
    res.warmup_s = warmup_s
    # ru_maxrss is in kilobytes on Linux: the peak of this process (one worker).
    res.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return res


def merge(results: list[WorkerResult], wall_s: float) -> dict[str, Any]:
    """The city's figures from its workers' results (``wall_s``: the whole parallel run)."""
    waits = np.array([w for r in results for w in r.waits_s])
    detours = np.array([x for r in results for x in r.detours])
    quotes = np.array([q for r in results for q in r.quote_s]) * 1e3
    books = np.array([b for r in results for b in r.book_s if math.isfinite(b)]) * 1e3
    requests = sum(r.requests for r in results)
    served = sum(r.served for r in results)
    km = sum(r.vehicle_km for r in results)
    rejected: dict[str, int] = {}
    for r in results:
        for k, n in r.rejected.items():
            rejected[k] = rejected.get(k, 0) + n
    simulated = max((r.simulated_s for r in results), default=0.0)
    planned = sum(r.reopt_planned_m for r in results)
    violations = [v for r in results for v in r.violations]

    def pct(a: np.ndarray, q: float) -> float:
        return float(np.percentile(a, q)) if len(a) else 0.0

    return {
        "zones": sum(len(r.zones) for r in results),
        "workers": len(results),
        "vehicles": sum(r.vehicles for r in results),
        "requests": requests,
        "served": served,
        "served_share": served / requests if requests else 0.0,
        "rejected": rejected,
        "mean_wait_min": float(waits.mean() / 60) if len(waits) else 0.0,
        "p95_wait_min": pct(waits, 95) / 60,
        "mean_detour": float(detours.mean()) if len(detours) else 0.0,
        "p95_detour": pct(detours, 95),
        "vehicle_km": km,
        "vehicle_km_per_served": km / served if served else 0.0,
        "empty_km_share": sum(r.empty_km for r in results) / km if km else 0.0,
        "reopt_passes": sum(r.reopt_passes for r in results),
        "reopt_vehicles_replanned": sum(r.reopt_applied for r in results),
        "reopt_saved_km": sum(r.reopt_saved_m for r in results) / 1000.0,
        "reopt_saved_share_of_planned": (
            sum(r.reopt_saved_m for r in results) / planned if planned else 0.0
        ),
        "reopt_wall_s": sum(r.reopt_wall_s for r in results),
        "quotes": len(quotes),
        "quote_p50_ms": pct(quotes, 50),
        "quote_p95_ms": pct(quotes, 95),
        "book_p95_ms": pct(books, 95),
        "violations": len(violations),
        "worker_steps": [r.steps for r in results],
        "worker_plan_checks": [r.plan_checks for r in results],
        "violation_examples": violations[:5],
        "simulated_h": simulated / 3600.0,
        "wall_s": wall_s,
        "speedup_vs_real_time": simulated / wall_s if wall_s else 0.0,
        "worker_wall_s": [r.wall_s for r in results],
        "worker_warmup_s": [r.warmup_s for r in results],
        "reopt_wall_per_pass_s": (
            sum(r.reopt_wall_s for r in results) / max(1, sum(r.reopt_passes for r in results))
        ),
        "peak_rss_mb_max_worker": max((r.peak_rss_mb for r in results), default=0.0),
        "peak_rss_mb_all_workers": sum(r.peak_rss_mb for r in results),
    }


def zone_quote_latency(
    n_vehicles: int,
    requests_per_vehicle_hour: float,
    vehicles_per_km2: float,
    seed: int,
    *,
    warm_s: float = 1800.0,
    measure_s: float = 900.0,
    min_quotes: int = 200,
    step_s: float = 60.0,
    prune: bool = True,
) -> dict[str, float]:
    """Quote and booking latency of one zone owner with ``n_vehicles`` in its zone.

    The zone's area grows with the fleet (``vehicles_per_km2``, the city's density), all
    vehicles are on shift, and requests arrive at ``requests_per_vehicle_hour`` each (the
    city's peak), so plans are as full as at the peak. The zone is driven for ``warm_s``
    simulated seconds, then quotes and bookings are timed for ``measure_s`` more (longer if
    needed for about ``min_quotes`` quotes), with the
    vehicles moving and reporting positions as in the day. ``prune``: the quote's spatial
    pruning of candidate vehicles (:mod:`dispatch.plan_arrays`), on or off.
    """
    from dispatch.simulation.demand import CityDemand, generate_city_requests

    side = math.sqrt(n_vehicles / vehicles_per_km2)
    t0 = 17.0 * 3600
    measure_s = max(measure_s, 3600.0 * min_quotes / (requests_per_vehicle_hour * n_vehicles))
    zone = CityLayout(rows=1, cols=1, side_km=side).zones()[0]
    hours = (warm_s + measure_s) / 3600.0
    flat = tuple(1.0 for _ in range(24))
    demand = CityDemand(
        total=round(requests_per_vehicle_hour * n_vehicles * 24),
        profile=flat,
        start_s=0.0,
        end_s=24 * 3600.0,
        prebooked_share=0.0,
    )
    # A flat profile over the day, kept in [t0, t0 + hours): the rate holds all along.
    day = generate_city_requests([zone], [1.0], demand, seed)
    requests = [r for r in day if t0 <= r.requested_at < t0 + hours * 3600]
    rng = np.random.default_rng(seed)
    d = Dispatcher(StraightLineTravelTimes(1.3), ServiceRules(), clock=lambda: t0)
    d.add_zone(zone)
    depots = zone.random_points(rng, n_vehicles)
    for k in range(n_vehicles):
        p = (float(depots[k, 0]), float(depots[k, 1]))
        d.add_vehicle(Vehicle(f"v{k}", VAN, p, t0, t0 + 8 * 3600, p, t0, zone_id=zone.zone_id))
    arrays = d.zone_state(zone.zone_id).arrays
    arrays.prune = prune
    # Vehicles the kernel evaluated for each quote, after pruning (one entry per quote, in
    # request order like ``sim.quote_s``): what the pruning left of the fleet.
    candidates: list[int] = []
    quote = d.quote

    def counted_quote(request: RideRequest, now: float | None = None) -> Quote | Rejection:
        arrays.last_candidates = 0  # a request refused before the kernel evaluates none
        q = quote(request, now)
        candidates.append(arrays.last_candidates)
        return q

    setattr(d, "quote", counted_quote)  # noqa: B010 (an instance's method, for this run only)
    sim = Simulator(d, requests, step_s=step_s, check_invariants=False)
    t = time.perf_counter()
    sim.run(t0, t0 + hours * 3600)
    wall = time.perf_counter() - t
    measured = [k for k, r in enumerate(requests) if r.requested_at >= t0 + warm_s]
    q = np.array([sim.quote_s[k] for k in measured]) * 1e3
    b = np.array([sim.book_s[k] for k in measured]) * 1e3
    b = b[np.isfinite(b)]
    c = np.array([candidates[k] for k in measured], dtype=np.float64)
    stops = sum(len(v.plan) for v in d.vehicles())
    return {
        "vehicles": n_vehicles,
        "zone_side_km": side,
        "requests": len(requests),
        "quotes_timed": len(q),
        "served_share": sum(r.dropped_off_at is not None for r in d.rides())
        / max(len(requests), 1),
        "quote_p50_ms": float(np.median(q)) if len(q) else 0.0,
        "quote_p95_ms": float(np.percentile(q, 95)) if len(q) else 0.0,
        "book_p95_ms": float(np.percentile(b, 95)) if len(b) else 0.0,
        "quotes_per_s": 1e3 / float(np.mean(q)) if len(q) else 0.0,
        "candidates_mean": float(c.mean()) if len(c) else 0.0,
        "candidates_share": float(c.mean()) / n_vehicles if len(c) else 0.0,
        "stops_left": stops,
        "wall_s": wall,
    }

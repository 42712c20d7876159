"""Re-optimisation of the live plans of one zone, off the request path.

The zone's state (vehicles where they are at "now", onboard groups, every booked ride with its
promised window) becomes a :class:`dispatch.problem.Problem`; the OR-Tools solver is warm-started
from the plans in force with a time limit. The new plans replace the old ones only when they
pass ``check``, serve every ride, keep every promised window (they are hard windows of the
problem), cost less driving, and no plan of the zone changed meanwhile. A solver time-out or any
doubt leaves the plans in force.

A mixed fleet (e.g. vans at 28 km/h and an autonomous shuttle at 16 km/h) is re-optimised as
one problem: it holds one travel-time matrix per distinct speed of the zone's vehicles on shift
(a travel *profile*), each vehicle is scheduled on its own profile, so a ride may move from the
shuttle to a van (or back) whenever that is feasible for the receiving vehicle and cheaper. The
objective is the distance driven (vehicle-km, the same for every vehicle), so moving a ride to
a faster vehicle is worth it only if it saves driving, not merely time.

The problem is ``asap`` (:class:`dispatch.problem.Problem`): vehicles leave now and wait only
for a window to open, as the dispatcher drives them; a plan that needed a vehicle to idle
before a pick-up to keep a ride time would be refused by ``_feasible_plan`` anyway.

Late plans (issue #5): when a plan in force can no longer keep a promise (a vehicle delayed,
a position jump), that is exactly when moving rides to another vehicle helps. Each broken bound
is relaxed to what the plans in force achieve (:class:`Relaxed`: a stop's lateness, a ride's
excess ride time, a return after the shift becomes the bound), the zone is solved under those
bounds, and a new plan is accepted only if, driven through the speed periods, no late stop is
later than in the plans in force and every promise not already broken still holds.

Problem size (issue #10): the OR-Tools model and the ALNS arrays grow with the square of the
stops in the problem (about 0.5 GB for 1,440 nodes). A zone whose plans hold more than
``max_stops`` stops (:data:`MAX_PROBLEM_STOPS`; a zone of 20 vans booked through the day
holds 1,400) is re-optimised on its *near term*: each vehicle's plan is cut where the vehicle
is empty after about the ``max_stops`` earliest stops of the zone, the problem holds only the
stops before the cuts, and each vehicle must reach the first stop after its cut (its problem
end node) no later than it starts serving it in the plan in force; the stops after the cut
stay as they are, appended to the new plan, which the dispatcher checks whole. Later stops
come into the problem in later passes, as the day moves on.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog

from dispatch.dispatcher import Dispatcher, DispatchError
from dispatch.optimize.alns import solve_alns
from dispatch.optimize.isolated import shutdown as isolated_shutdown
from dispatch.optimize.isolated import solve_ortools_isolated
from dispatch.optimize.kernel_data import kernel_data
from dispatch.optimize.ortools_model import solve_ortools
from dispatch.optimize.schedule import schedule_routes
from dispatch.problem import Problem, Request, Solution, check, solution_cost
from dispatch.problem import Vehicle as PVehicle
from dispatch.rebalance import rebalance_zone
from dispatch.travel_times import StraightLineTravelTimes
from dispatch.vehicle import Stop, StopKind, Vehicle

log = structlog.get_logger("dispatch.reoptimize")

#: Most planned stops put into one problem (see the module docstring: near-term cut).
MAX_PROBLEM_STOPS = 600


# Slack added to a relaxed bound: the numba schedule and the dispatcher's simulation of the
# same plan agree to rounding only, and a plan must not be refused for a microsecond.
_RELAX_SLACK_S = 1e-3


@dataclass
class Relaxed:
    """Bounds relaxed beyond the promises, for plans in force that already break them.

    Each map holds only what the plans in force do not keep; everything else keeps its promise.
    """

    #: ``id(stop)`` -> latest start of service (the promise's ``latest`` is smaller).
    latest: dict[int, float] = field(default_factory=dict)
    #: ride id -> longest ride, drop-off start minus pick-up start (as ``Stop.max_ride_s``).
    max_ride: dict[str, float] = field(default_factory=dict)
    #: vehicle id -> latest return to the depot (the shift's end is earlier).
    shift_end: dict[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.latest or self.max_ride or self.shift_end)

    def merged(self, other: Relaxed) -> Relaxed:
        """The looser of both bounds, entry by entry."""

        def loosest(a: dict[Any, float], b: dict[Any, float]) -> dict[Any, float]:
            return {k: max(a.get(k, -np.inf), b.get(k, -np.inf)) for k in a.keys() | b.keys()}

        return Relaxed(
            loosest(self.latest, other.latest),
            loosest(self.max_ride, other.max_ride),
            loosest(self.shift_end, other.shift_end),
        )

    def stop_latest(self, s: Stop) -> float:
        return max(s.latest, self.latest.get(id(s), -np.inf))

    def ride_limit(self, s: Stop) -> float:
        return max(s.max_ride_s, self.max_ride.get(s.ride_id, -np.inf))

    def end_of(self, v: Vehicle) -> float:
        return max(v.shift_end, self.shift_end.get(v.vehicle_id, -np.inf))

    def relax_plan(self, v: Vehicle, plan: list[Stop]) -> tuple[Vehicle, list[Stop]]:
        """Copies of ``v`` and ``plan`` carrying the relaxed bounds (for the dispatcher's own
        check; the stops installed keep their promised windows)."""
        stops = [
            dataclasses.replace(s, latest=self.stop_latest(s), max_ride_s=self.ride_limit(s))
            for s in plan
        ]
        return dataclasses.replace(v, shift_end=self.end_of(v)), stops


@dataclass
class ZoneProblem:
    """The problem of one zone and how to map its nodes back to stops."""

    problem: Problem
    vehicles: list[Vehicle]
    versions: dict[str, int]
    node_stop: dict[int, Stop]
    current: list[list[int]]
    #: vehicle id -> the stops of its plan after the near-term cut (kept as they are).
    suffix: dict[str, list[Stop]] = field(default_factory=dict)


def near_term_cuts(
    plans: dict[str, list[Stop]], onboard: Mapping[str, Collection[str]], max_stops: int
) -> dict[str, int]:
    """Where to cut each vehicle's plan so the problem holds about ``max_stops`` stops: after
    the last point where the vehicle is empty (every ride picked up before it, onboard ones
    included, dropped off before it) among its stops up to the ``max_stops // 2``-th earliest
    pick-up window of the zone; at its first empty point after that when it has none (a ride
    is never split by a cut). Vehicles with ``max_stops`` stops or fewer in all: no cut."""
    if sum(len(p) for p in plans.values()) <= max_stops:
        return {vid: len(p) for vid, p in plans.items()}
    opens = sorted(s.earliest for p in plans.values() for s in p if s.kind is StopKind.PICKUP)
    limit = opens[max(0, min(len(opens), max_stops // 2) - 1)] if opens else np.inf
    cuts: dict[str, int] = {}
    for vid, plan in plans.items():
        riding = set(onboard.get(vid, ()))
        empty = [] if riding else [0]  # stop counts after which the vehicle is empty
        near = len(plan)  # stops up to the first pick-up beyond the limit
        for i, s in enumerate(plan):
            if s.kind is StopKind.PICKUP:
                if s.earliest > limit and near == len(plan):
                    near = i
                riding.add(s.ride_id)
            else:
                riding.discard(s.ride_id)
            if not riding:
                empty.append(i + 1)
        before = [c for c in empty if c <= near]
        cuts[vid] = before[-1] if before else min(c for c in empty if c > near)
    return cuts


def build_problem(
    d: Dispatcher,
    zone_id: str,
    now: float,
    vehicle_ids: Collection[str] | None = None,
    peak_aware: bool = True,
    relaxed: Relaxed | None = None,
    max_stops: int = MAX_PROBLEM_STOPS,
) -> ZoneProblem | None:
    """The live state of the zone's vehicles on shift (only ``vehicle_ids`` when given) as one
    DARP problem; None when there is nothing to improve.

    Travel profile ``q`` is the travel-time matrix at the ``q``-th distinct speed of those
    vehicles (slowest first); each vehicle uses the profile of its own speed. The matrices are
    free-flow times divided by the zone's slowest time-of-day speed factor until the last
    planned window closes (``peak_aware``; ``False``: free flow), so that legs falling in a
    peak still fit. The cost matrix is the driving distance in metres
    (``d.travel.distance_m``), shared by every vehicle. ``relaxed`` loosens the bounds the
    plans in force already break (see :func:`reoptimise_zone`). A zone with more than
    ``max_stops`` planned stops gets its near-term problem (module docstring).
    """
    relaxed = relaxed or Relaxed()
    zs = d.zone_state(zone_id)
    with zs.lock:
        vehicles = [
            v
            for v in zs.vehicles.values()
            if now < v.shift_end and (vehicle_ids is None or v.vehicle_id in vehicle_ids)
        ]
        versions = {v.vehicle_id: zs.versions[v.vehicle_id] for v in vehicles}
        plans = {v.vehicle_id: list(v.plan) for v in vehicles}
        onboard = {v.vehicle_id: dict(v.onboard) for v in vehicles}
        positions = {v.vehicle_id: v.position for v in vehicles}
        starts = {v.vehicle_id: max(now, v.position_time, v.shift_start) for v in vehicles}
        cuts = near_term_cuts(plans, onboard, max_stops)
        # Vehicle id -> (first stop after the cut, its start of service in the plan in force).
        resume = {
            v.vehicle_id: (plans[v.vehicle_id][c], float(d.schedule(v, now)[c]))
            for v in vehicles
            if (c := cuts[v.vehicle_id]) < len(plans[v.vehicle_id])
        }
    suffix = {vid: plans[vid][cuts[vid] :] for vid in resume}
    plans = {vid: plan[: cuts[vid]] for vid, plan in plans.items()}
    if sum(len(p) for p in plans.values()) < 4:
        return None
    speeds = sorted({v.vtype.speed_kmh for v in vehicles})
    profile_of = {s: q for q, s in enumerate(speeds)}
    pts: list[tuple[float, float]] = []
    early: list[float] = []
    late: list[float] = []
    service: list[float] = []
    load: list[tuple[int, int]] = []
    node_stop: dict[int, Stop] = {}

    def node(p: tuple[float, float], e: float, lt: float, s: float, ld: tuple[int, int]) -> int:
        pts.append(p)
        early.append(e)
        late.append(lt)
        service.append(s)
        load.append(ld)
        return len(pts) - 1

    requests: list[Request] = []
    pvehicles: list[PVehicle] = []
    current: list[list[int]] = []
    horizon = max(relaxed.end_of(v) for v in vehicles)
    for k, v in enumerate(vehicles):
        vid = v.vehicle_id
        start = node(positions[vid], starts[vid], starts[vid], 0.0, (0, 0))
        if vid in resume:
            # Cut plan: the vehicle must be at the first stop after the cut no later than it
            # starts serving it now (waiting for its window changes nothing after it).
            first, by = resume[vid]
            end = node(first.latlon, starts[vid], by, 0.0, (0, 0))
        else:
            end = node(v.depot, starts[vid], relaxed.end_of(v), 0.0, (0, 0))
        pvehicles.append(
            PVehicle(
                start,
                end,
                (v.vtype.seats, v.vtype.wheelchair_spaces),
                starts[vid],
                relaxed.end_of(v),
                profile=profile_of[v.vtype.speed_kmh],
            )
        )
        route: list[int] = []
        pick_node: dict[str, int] = {}
        for s in plans[vid]:
            ld = (s.seats, s.wheelchairs)
            latest, max_ride = relaxed.stop_latest(s), relaxed.ride_limit(s)
            if s.kind is StopKind.PICKUP:
                n = node(s.latlon, s.earliest, latest, s.service_s, ld)
                pick_node[s.ride_id] = n
            else:
                n = node(
                    s.latlon,
                    s.earliest if s.ride_id in pick_node else 0.0,
                    latest,
                    s.service_s,
                    (-ld[0], -ld[1]),
                )
                if s.ride_id in pick_node:
                    # Problem ride time excludes the pick-up dwell; ours includes it.
                    requests.append(Request(pick_node[s.ride_id], n, max_ride - s.service_s))
                else:
                    ob = onboard[vid][s.ride_id]
                    p = node(positions[vid], 0.0, horizon, 0.0, ld)
                    remaining = ob.picked_up_at + max_ride - starts[vid]
                    requests.append(Request(p, n, max(remaining, 0.0), onboard_vehicle=k))
            node_stop[n] = s
            route.append(n)
        current.append(route)
    arr = np.array(pts, dtype=np.float64)
    dist = d.travel.distance_m(arr, arr)
    if type(d.travel) is StraightLineTravelTimes:
        # Its times are its distances at each speed (the same arithmetic as its ``matrix``):
        # one distance matrix serves every profile and the cost, instead of one per call
        # (the largest share of a live pass's time outside the solver at 100 vehicles).
        travel = np.stack([dist / (speed / 3.6) for speed in speeds])
    else:
        travel = np.stack([d.travel.matrix(arr, arr, speed) for speed in speeds])
    if peak_aware:
        last = max(relaxed.stop_latest(s) for plan in plans.values() for s in plan)
        travel = travel / d.slowest_speed_factor(now, max(now, last), zone_id)
    problem = Problem.build(
        travel,
        early,
        late,
        service,
        np.array(load, dtype=np.int64),
        requests,
        pvehicles,
        cost=dist,
        # Vehicles drive as the dispatcher runs them (``_feasible_plan``): no waiting beyond a
        # window's opening, so a plan the solver finds is one the dispatcher accepts.
        asap=True,
        name=f"zone {zone_id} at {now:.0f}",
    )
    return ZoneProblem(problem, vehicles, versions, node_stop, current, suffix)


def _solve(
    p: Problem,
    warm: Solution,
    time_limit_s: float,
    solver: str,
    iterations: int | None,
    zone_id: str,
    isolate: bool = False,
) -> Solution | None:
    """OR-Tools warm-started from the plans in force (in a worker process with ``isolate``:
    :mod:`dispatch.optimize.isolated`); ALNS (same contract) when OR-Tools gives up on the
    model or when asked for (``iterations`` makes ALNS deterministic)."""
    if solver == "ortools":
        try:
            if isolate:
                return solve_ortools_isolated(p, time_limit_s, warm)
            return solve_ortools(p, time_limit_s=time_limit_s, warm_start=warm)
        except Exception as exc:  # e.g. "CP Solver fail" on a tight live model
            log.info("ortools_failed_trying_alns", zone=zone_id, error=repr(exc))
    try:
        return solve_alns(p, time_limit_s=time_limit_s, warm_start=warm, iterations=iterations)
    except Exception as exc:  # a solver failure must leave the plans in force
        log.warning("reoptimisation_failed", zone=zone_id, error=repr(exc))
        return None


def reoptimise_zone(
    d: Dispatcher,
    zone_id: str,
    now: float,
    time_limit_s: float = 1.0,
    solver: str = "ortools",
    iterations: int | None = None,
    max_stops: int = MAX_PROBLEM_STOPS,
    isolate: bool = False,
) -> int:
    """One re-optimisation pass over every vehicle of the zone on shift, whatever its speed;
    returns the number of vehicles whose plan was replaced.

    ``isolate``: run OR-Tools in a worker process (:mod:`dispatch.optimize.isolated`), so a
    live service's other threads are not frozen for the search (it holds the GIL).

    ``solver`` is ``"ortools"`` (falls back to ALNS when OR-Tools fails) or ``"alns"``
    (``iterations`` makes it deterministic); ``time_limit_s`` bounds the solver; a zone with
    more than ``max_stops`` planned stops is re-optimised on its near term (module docstring).

    Raises
    ------
    ValueError
        On an unknown ``solver``.
    """
    if solver not in ("ortools", "alns"):
        raise ValueError(f"unknown solver {solver!r}")
    zp = build_problem(d, zone_id, now, max_stops=max_stops)
    if zp is None:
        return 0
    times, ok = schedule_routes(kernel_data(zp.problem), zp.current)
    if not all(ok):
        # The plans in force do not fit the peak's slowest speed everywhere (they are checked
        # leg by leg through the speed periods): plan on free-flow times instead; the
        # dispatcher's time-dependent check still refuses a plan a peak would make late.
        zp = build_problem(d, zone_id, now, peak_aware=False, max_stops=max_stops)
        assert zp is not None
        times, ok = schedule_routes(kernel_data(zp.problem), zp.current)
    accept: Callable[[Dispatcher, Vehicle, list[Stop], float], bool] = _feasible_plan
    relaxed = Relaxed()
    if not all(ok):
        # The plans in force are late already: their lateness becomes the bound (see
        # ``_late_problem``), and a new plan may not make any of it worse.
        late = _late_problem(d, zone_id, now, max_stops)
        if late is None:
            return 0
        zp, times, relaxed = late

        def accept(dd: Dispatcher, v: Vehicle, plan: list[Stop], t: float) -> bool:
            return _feasible_relaxed(dd, v, plan, t, relaxed)

    p = zp.problem
    warm = Solution(routes=zp.current, times=times, cost=solution_cost(p, zp.current))
    sol = _solve(p, warm, time_limit_s, solver, iterations, zone_id, isolate)
    # Costs are metres driven: a new plan must save at least one metre to be worth a swap.
    if sol is None or sol.unserved or check(p, sol) or sol.cost >= warm.cost - 1.0:
        return 0
    new_plans = {
        v.vehicle_id: [zp.node_stop[n] for n in route if n in zp.node_stop]
        + zp.suffix.get(v.vehicle_id, [])
        for v, route in zip(zp.vehicles, sol.routes, strict=True)
    }
    changed = {
        vid: plan
        for vid, plan in new_plans.items()
        if [id(s) for s in plan]
        != [id(s) for s in zp.vehicles[[v.vehicle_id for v in zp.vehicles].index(vid)].plan]
    }
    if not changed:
        return 0
    if relaxed:
        log.info(
            "reoptimising_late_plans",
            zone=zone_id,
            late_stops=len(relaxed.latest),
            long_rides=len(relaxed.max_ride),
            late_returns=len(relaxed.shift_end),
        )
    # ``accept`` drives each plan through the zone's speed periods itself (under the relaxed
    # bounds when plans in force are late): the dispatcher's strict re-check of that would
    # refuse a plan for lateness it does not worsen.
    return d.replace_plans(zone_id, changed, zp.versions, now, accept, checks_speed_periods=True)


def _feasible_plan(d: Dispatcher, v: Vehicle, plan: list[Stop], now: float) -> bool:
    """Our own model agrees the plan keeps every window, capacity and ride time, strictly
    (driven through the zone's speed periods): a re-optimised plan uses none of the slack
    tolerated for plans already in force."""
    return d.feasible_plan(v, plan, now)


def _feasible_relaxed(
    d: Dispatcher, v: Vehicle, plan: list[Stop], now: float, relaxed: Relaxed
) -> bool:
    """``_feasible_plan`` under ``relaxed``: a stop late in the plans in force may be as late
    as it is there, never later; every other promise holds strictly."""
    rv, rplan = relaxed.relax_plan(v, plan)
    return d.feasible_plan(rv, rplan, now)


def in_force_excess(d: Dispatcher, zone_id: str, now: float) -> Relaxed:
    """What the plans in force of the zone's vehicles on shift break, in the dispatcher's own
    model (legs driven through the zone's speed periods, as ``Dispatcher.schedule``): each late
    stop with its start of service, each ride over its ride time with that time, each vehicle
    back after its shift with its return."""
    zs = d.zone_state(zone_id)
    with zs.lock:
        vehicles = [v for v in zs.vehicles.values() if now < v.shift_end]
        plans = {v.vehicle_id: list(v.plan) for v in vehicles}
        picked_before = {
            v.vehicle_id: {r: o.picked_up_at for r, o in v.onboard.items()} for v in vehicles
        }
        times = {v.vehicle_id: d.schedule(v, now) for v in vehicles}
    out = Relaxed()
    for v in vehicles:
        vid, plan, b = v.vehicle_id, plans[v.vehicle_id], times[v.vehicle_id]
        if not plan:
            continue
        late = b > np.array([s.latest for s in plan])
        for i in np.flatnonzero(late):
            out.latest[id(plan[i])] = float(b[i]) + _RELAX_SLACK_S
        picked = dict(picked_before[vid])
        for s, t in zip(plan, b, strict=True):
            if s.kind is StopKind.PICKUP:
                picked[s.ride_id] = float(t)
            elif s.ride_id in picked and t - picked[s.ride_id] > s.max_ride_s:
                out.max_ride[s.ride_id] = float(t) - picked[s.ride_id] + _RELAX_SLACK_S
        leg = float(d.travel.matrix([plan[-1].latlon], [v.depot], v.vtype.speed_kmh)[0, 0])
        back = zs.profile.arrive(float(b[-1]) + plan[-1].service_s, leg)
        if back > v.shift_end:
            out.shift_end[vid] = back + _RELAX_SLACK_S
    return out


def _problem_excess(zp: ZoneProblem, times: list[np.ndarray]) -> Relaxed:
    """What the plans in force break in the problem's own model (``times`` from
    ``schedule_routes`` of ``zp.current``, depot start and end included)."""
    out = Relaxed()
    picked: dict[str, float] = {}
    for k, (v, route) in enumerate(zip(zp.vehicles, zp.current, strict=True)):
        b = times[k]
        for i, n in enumerate(route):
            s = zp.node_stop[n]
            t = float(b[i + 1])
            if t > s.latest:
                out.latest[id(s)] = t + _RELAX_SLACK_S
            if s.kind is StopKind.PICKUP:
                picked[s.ride_id] = t
            else:
                start = picked.get(s.ride_id)
                if start is None:  # onboard: the ride started before this problem's start
                    ob = v.onboard.get(s.ride_id)
                    start = ob.picked_up_at if ob is not None else t
                if t - start > s.max_ride_s:
                    out.max_ride[s.ride_id] = t - start + _RELAX_SLACK_S
        if float(b[-1]) > v.shift_end:
            out.shift_end[v.vehicle_id] = float(b[-1]) + _RELAX_SLACK_S
    return out


def _late_problem(
    d: Dispatcher, zone_id: str, now: float, max_stops: int = MAX_PROBLEM_STOPS
) -> tuple[ZoneProblem, list[np.ndarray], Relaxed] | None:
    """The zone's problem on free-flow times with every bound the plans in force break relaxed
    to what they achieve, its schedule of the plans in force, and the relaxation the new plans
    are checked against; None when even so the plans in force do not fit (e.g. capacity).

    The problem's bounds are the looser of what the plans in force achieve in the dispatcher's
    model and in the problem's (free-flow times can lengthen a ride that waits at a later
    stop), so the plans in force are a feasible warm start; the acceptance check uses the
    dispatcher's model alone, so no new plan is later than the plans in force there.
    """
    excess = in_force_excess(d, zone_id, now)
    # Bounds wide open: the plans in force's own free-flow schedule, whatever it breaks.
    probe = build_problem(
        d, zone_id, now, peak_aware=False, relaxed=_wide_open(d, zone_id), max_stops=max_stops
    )
    if probe is None:
        return None
    probe_times, probe_ok = schedule_routes(kernel_data(probe.problem), probe.current)
    if not all(probe_ok):
        return None  # not a matter of time (capacity): nothing to relax
    zp = build_problem(
        d,
        zone_id,
        now,
        peak_aware=False,
        relaxed=excess.merged(_problem_excess(probe, probe_times)),
        max_stops=max_stops,
    )
    if zp is None:
        return None
    times, ok = schedule_routes(kernel_data(zp.problem), zp.current)
    if not all(ok):
        log.info("late_plans_not_relaxable", zone=zone_id)
        return None
    return zp, times, excess


def _wide_open(d: Dispatcher, zone_id: str) -> Relaxed:
    """Bounds a day past every shift's end: nothing a plan in force does can break them."""
    zs = d.zone_state(zone_id)
    with zs.lock:
        vehicles = list(zs.vehicles.values())
    far = max((v.shift_end for v in vehicles), default=0.0) + 86400.0
    out = Relaxed()
    for v in vehicles:
        out.shift_end[v.vehicle_id] = far
        for s in v.plan:
            out.latest[id(s)] = far
            out.max_ride[s.ride_id] = far
    return out


class ReoptimizationLoop:
    """A background thread re-optimising every zone each ``interval_s`` seconds, then (if
    ``rebalance``) sending idle vehicles toward expected demand."""

    def __init__(
        self,
        d: Dispatcher,
        interval_s: float = 30.0,
        time_limit_s: float = 2.0,
        rebalance: bool = True,
        isolate: bool = False,
    ) -> None:
        self.d = d
        self.interval_s = interval_s
        self.time_limit_s = time_limit_s
        self.rebalance = rebalance
        self.isolate = isolate
        self.applied = 0
        self.moves = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reoptimise", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        if self.isolate:
            isolated_shutdown()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.run_pass()

    def run_pass(self) -> None:
        """Re-optimise (and rebalance) every zone the dispatcher serves at the pass's start.

        A zone removed meanwhile (in cluster mode, released by this process: another one took
        it over, or it left the catalog) is skipped with an info line: that is no failure.
        Any other error is logged with its traceback; the pass goes on with the next zone.
        """
        for z in self.d.zones():
            try:
                now = self.d.clock()
                self.applied += reoptimise_zone(
                    self.d, z.zone_id, now, self.time_limit_s, isolate=self.isolate
                )
                if self.rebalance:
                    self.moves += rebalance_zone(self.d, z.zone_id, now)
            except DispatchError as exc:
                if exc.code != "unknown_zone":
                    log.exception("reoptimisation_pass_failed", zone=z.zone_id)
                else:
                    log.info("reoptimisation_zone_gone", zone=z.zone_id)
            except Exception:  # keep the loop alive; the plans in force stay
                log.exception("reoptimisation_pass_failed", zone=z.zone_id)

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
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import structlog

from dispatch.dispatcher import Dispatcher, DispatchError
from dispatch.optimize.alns import solve_alns
from dispatch.optimize.kernel_data import kernel_data
from dispatch.optimize.ortools_model import solve_ortools
from dispatch.optimize.schedule import schedule_routes
from dispatch.problem import Problem, Request, Solution, check, solution_cost
from dispatch.problem import Vehicle as PVehicle
from dispatch.rebalance import rebalance_zone
from dispatch.vehicle import Stop, StopKind, Vehicle

log = structlog.get_logger("dispatch.reoptimize")


@dataclass
class ZoneProblem:
    """The problem of one zone and how to map its nodes back to stops."""

    problem: Problem
    vehicles: list[Vehicle]
    versions: dict[str, int]
    node_stop: dict[int, Stop]
    current: list[list[int]]


def build_problem(
    d: Dispatcher,
    zone_id: str,
    now: float,
    vehicle_ids: Collection[str] | None = None,
    peak_aware: bool = True,
) -> ZoneProblem | None:
    """The live state of the zone's vehicles on shift (only ``vehicle_ids`` when given) as one
    DARP problem; None when there is nothing to improve.

    Travel profile ``q`` is the travel-time matrix at the ``q``-th distinct speed of those
    vehicles (slowest first); each vehicle uses the profile of its own speed. The matrices are
    free-flow times divided by the zone's slowest time-of-day speed factor until the last
    planned window closes (``peak_aware``; ``False``: free flow), so that legs falling in a
    peak still fit. The cost matrix is the driving distance in metres
    (``d.travel.distance_m``), shared by every vehicle.
    """
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
    horizon = max(v.shift_end for v in vehicles)
    for k, v in enumerate(vehicles):
        vid = v.vehicle_id
        start = node(positions[vid], starts[vid], starts[vid], 0.0, (0, 0))
        end = node(v.depot, starts[vid], v.shift_end, 0.0, (0, 0))
        pvehicles.append(
            PVehicle(
                start,
                end,
                (v.vtype.seats, v.vtype.wheelchair_spaces),
                starts[vid],
                v.shift_end,
                profile=profile_of[v.vtype.speed_kmh],
            )
        )
        route: list[int] = []
        pick_node: dict[str, int] = {}
        for s in plans[vid]:
            ld = (s.seats, s.wheelchairs)
            if s.kind is StopKind.PICKUP:
                n = node(s.latlon, s.earliest, s.latest, s.service_s, ld)
                pick_node[s.ride_id] = n
            else:
                n = node(
                    s.latlon,
                    s.earliest if s.ride_id in pick_node else 0.0,
                    s.latest,
                    s.service_s,
                    (-ld[0], -ld[1]),
                )
                if s.ride_id in pick_node:
                    # Problem ride time excludes the pick-up dwell; ours includes it.
                    requests.append(Request(pick_node[s.ride_id], n, s.max_ride_s - s.service_s))
                else:
                    ob = onboard[vid][s.ride_id]
                    p = node(positions[vid], 0.0, horizon, 0.0, ld)
                    remaining = ob.picked_up_at + s.max_ride_s - starts[vid]
                    requests.append(Request(p, n, max(remaining, 0.0), onboard_vehicle=k))
            node_stop[n] = s
            route.append(n)
        current.append(route)
    arr = np.array(pts, dtype=np.float64)
    travel = np.stack([d.travel.matrix(arr, arr, speed) for speed in speeds])
    if peak_aware:
        last = max(s.latest for plan in plans.values() for s in plan)
        travel = travel / d.slowest_speed_factor(now, max(now, last), zone_id)
    problem = Problem.build(
        travel,
        early,
        late,
        service,
        np.array(load, dtype=np.int64),
        requests,
        pvehicles,
        cost=d.travel.distance_m(arr, arr),
        # Vehicles drive as the dispatcher runs them (``_feasible_plan``): no waiting beyond a
        # window's opening, so a plan the solver finds is one the dispatcher accepts.
        asap=True,
        name=f"zone {zone_id} at {now:.0f}",
    )
    return ZoneProblem(problem, vehicles, versions, node_stop, current)


def _solve(
    p: Problem,
    warm: Solution,
    time_limit_s: float,
    solver: str,
    iterations: int | None,
    zone_id: str,
) -> Solution | None:
    """OR-Tools warm-started from the plans in force; ALNS (same contract) when OR-Tools gives
    up on the model or when asked for (``iterations`` makes ALNS deterministic)."""
    if solver == "ortools":
        try:
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
) -> int:
    """One re-optimisation pass over every vehicle of the zone on shift, whatever its speed;
    returns the number of vehicles whose plan was replaced.

    ``solver`` is ``"ortools"`` (falls back to ALNS when OR-Tools fails) or ``"alns"``
    (``iterations`` makes it deterministic); ``time_limit_s`` bounds the solver.

    Raises
    ------
    ValueError
        On an unknown ``solver``.
    """
    if solver not in ("ortools", "alns"):
        raise ValueError(f"unknown solver {solver!r}")
    zp = build_problem(d, zone_id, now)
    if zp is None:
        return 0
    times, ok = schedule_routes(kernel_data(zp.problem), zp.current)
    if not all(ok):
        # The plans in force do not fit the peak's slowest speed everywhere (they are checked
        # leg by leg through the speed periods): plan on free-flow times instead; the
        # dispatcher's time-dependent check still refuses a plan a peak would make late.
        zp = build_problem(d, zone_id, now, peak_aware=False)
        assert zp is not None
        times, ok = schedule_routes(kernel_data(zp.problem), zp.current)
    if not all(ok):
        return 0  # the plans in force are late already: nothing safe to compare against
    p = zp.problem
    warm = Solution(routes=zp.current, times=times, cost=solution_cost(p, zp.current))
    sol = _solve(p, warm, time_limit_s, solver, iterations, zone_id)
    # Costs are metres driven: a new plan must save at least one metre to be worth a swap.
    if sol is None or sol.unserved or check(p, sol) or sol.cost >= warm.cost - 1.0:
        return 0
    new_plans = {
        v.vehicle_id: [zp.node_stop[n] for n in route if n in zp.node_stop]
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
    return d.replace_plans(zone_id, changed, zp.versions, now, _feasible_plan)


def _feasible_plan(d: Dispatcher, v: Vehicle, plan: list[Stop], now: float) -> bool:
    """Our own model agrees the plan keeps every window, capacity and ride time, strictly
    (driven through the zone's speed periods): a re-optimised plan uses none of the slack
    tolerated for plans already in force."""
    return d.feasible_plan(v, plan, now)


class ReoptimizationLoop:
    """A background thread re-optimising every zone each ``interval_s`` seconds, then (if
    ``rebalance``) sending idle vehicles toward expected demand."""

    def __init__(
        self,
        d: Dispatcher,
        interval_s: float = 30.0,
        time_limit_s: float = 2.0,
        rebalance: bool = True,
    ) -> None:
        self.d = d
        self.interval_s = interval_s
        self.time_limit_s = time_limit_s
        self.rebalance = rebalance
        self.applied = 0
        self.moves = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reoptimise", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

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
                self.applied += reoptimise_zone(self.d, z.zone_id, now, self.time_limit_s)
                if self.rebalance:
                    self.moves += rebalance_zone(self.d, z.zone_id, now)
            except DispatchError as exc:
                if exc.code != "unknown_zone":
                    log.exception("reoptimisation_pass_failed", zone=z.zone_id)
                else:
                    log.info("reoptimisation_zone_gone", zone=z.zone_id)
            except Exception:  # keep the loop alive; the plans in force stay
                log.exception("reoptimisation_pass_failed", zone=z.zone_id)

"""Fleet minimisation by route elimination (Ropke & Pisinger 2006; Nagata & Bräysy 2009).

When a plan serves every request and the fixed cost per vehicle dominates the objective
(Li & Lim: vehicles first, distance second), plain ALNS rarely walks from ``m`` to ``m - 1``
vehicles: the plans in between leave requests unserved, each at a penalty far above any
distance saving, and the ``m - 1`` plans are often longer. Route elimination searches on one
vehicle fewer directly: it removes a whole route, restricts the problem to the vehicles left
(:func:`restrict_fleet`) and lets ALNS minimise the unserved requests first (their penalty
dominates its objective). When everything is served again the smaller plan is kept and
another route goes; when an attempt fails the next route is tried, and the time left goes to
distance on the fleet found.

:func:`solve_fleet_min` runs the three phases (ALNS on the whole fleet, elimination,
distance) within one time budget, on the same clock as :func:`dispatch.optimize.alns.solve_alns`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from dispatch.optimize.alns import AlnsParams, solve_alns
from dispatch.optimize.hybrid import SEED_STRIDE
from dispatch.optimize.kernel_data import kernel_data
from dispatch.optimize.schedule import schedule_routes
from dispatch.problem import Problem, Solution, check, solution_cost


@dataclass(frozen=True)
class FleetParams:
    """Time shares and limits of :func:`solve_fleet_min` (set for Li & Lim's 100 tasks in
    10 s: the first phase reaches within a vehicle of the best count, one removal takes a few
    seconds).

    Attributes
    ----------
    first_share
        Share of the budget for ALNS on the whole fleet before any route is removed: the
        elimination starts from a plan that is already compact.
    slice_share
        Share of the budget of one ALNS run on the smaller fleet; an attempt runs such slices
        (each warm-started from the last) until every request is served or its own share
        is spent. Short slices let an attempt stop soon after it succeeds.
    attempt_share
        Largest share of the budget one route removal may take before the next route is tried.
    attempts
        Routes tried per fleet size before the elimination stops (fewest requests first).
    distance_share
        Share of the budget kept for the final distance search on the fleet found.
    """

    first_share: float = 0.25
    slice_share: float = 0.05
    attempt_share: float = 0.3
    attempts: int = 2
    distance_share: float = 0.15

    def __post_init__(self) -> None:
        for name in ("first_share", "slice_share", "attempt_share", "distance_share"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"FleetParams.{name} must be in (0, 1), got {value}")
        if self.first_share + self.distance_share >= 1.0:
            raise ValueError("FleetParams: first_share + distance_share must leave time to remove")
        if self.slice_share > self.attempt_share:
            raise ValueError("FleetParams: slice_share cannot exceed attempt_share")
        if self.attempts < 1:
            raise ValueError(f"FleetParams.attempts must be >= 1, got {self.attempts}")


def restrict_fleet(problem: Problem, keep: Sequence[int]) -> Problem:
    """``problem`` with only the vehicles ``keep`` (in that order): vehicle ``j`` of the result
    is vehicle ``keep[j]`` of ``problem``; onboard and fixed assignments are renumbered.

    Raises
    ------
    ValueError
        If ``keep`` names a vehicle out of range or twice, or drops a vehicle that carries an
        onboard request or has a request fixed to it (the smaller problem could not serve it).
    """
    idx = np.asarray(list(keep), dtype=np.int64)
    k = problem.n_vehicles
    if idx.size and (idx.min() < 0 or idx.max() >= k):
        raise ValueError(f"restrict_fleet: vehicle index out of range [0, {k})")
    if np.unique(idx).size != idx.size:
        raise ValueError("restrict_fleet: a vehicle is named twice")
    new_index = np.full(k, -1, dtype=np.int64)
    new_index[idx] = np.arange(idx.size)
    pinned = np.concatenate([problem.onboard_vehicle, problem.fixed_vehicle])
    pinned = pinned[pinned >= 0]
    if np.any(new_index[pinned] < 0):
        raise ValueError("restrict_fleet: a dropped vehicle carries or is fixed to a request")

    def renumber(a: np.ndarray) -> np.ndarray:
        return np.where(a >= 0, new_index[np.maximum(a, 0)], -1)

    return replace(
        problem,
        start_node=problem.start_node[idx],
        end_node=problem.end_node[idx],
        start_time=problem.start_time[idx],
        shift_end=problem.shift_end[idx],
        max_duration=problem.max_duration[idx],
        capacity=problem.capacity[idx].reshape(idx.size, problem.n_dims),
        vehicle_profile=problem.vehicle_profile[idx],
        onboard_vehicle=renumber(problem.onboard_vehicle),
        fixed_vehicle=renumber(problem.fixed_vehicle),
    )


def _plan(problem: Problem, routes: list[list[int]], solver: str) -> Solution:
    """A :class:`Solution` of ``problem`` with these routes (one per vehicle), scheduled anew;
    requests on no route are unserved."""
    times, _ = schedule_routes(kernel_data(problem), routes)
    served = {node for route in routes for node in route}
    unserved = [r for r in range(problem.n_requests) if int(problem.delivery[r]) not in served]
    return Solution(
        routes=routes,
        times=times,
        unserved=unserved,
        cost=solution_cost(problem, routes),
        solver=solver,
    )


def _to_sub(sub: Problem, keep: Sequence[int], sol: Solution) -> Solution:
    """The routes of ``sol`` (a plan of ``problem``) on the vehicles ``keep`` of ``sub``; the
    requests of the other routes become unserved."""
    return _plan(sub, [list(sol.routes[k]) for k in keep], "fleet")


def _from_sub(problem: Problem, keep: Sequence[int], sol: Solution) -> Solution:
    """A plan of the smaller problem (vehicles ``keep``) as a plan of ``problem``."""
    routes: list[list[int]] = [[] for _ in range(problem.n_vehicles)]
    for j, k in enumerate(keep):
        routes[k] = list(sol.routes[j])
    return _plan(problem, routes, "alns+fleet")


def _dominates(problem: Problem, sol: Solution) -> bool:
    """Whether the fixed vehicle cost dominates: it exceeds the plan's whole distance, so a
    plan on one vehicle fewer is better even if its routes are much longer (Li & Lim's
    hierarchical objective); with a smaller fixed cost, ALNS weighs vehicles and distance
    itself."""
    return problem.vehicle_fixed_cost > sol.cost > 0.0


def solve_fleet_min(
    problem: Problem,
    time_limit_s: float = 30.0,
    seed: int = 0,
    cpu_time: bool = False,
    params: AlnsParams | None = None,
    fleet: FleetParams | None = None,
) -> Solution:
    """ALNS with a route-elimination phase: fewest vehicles first, then distance.

    1. :func:`~dispatch.optimize.alns.solve_alns` on the whole fleet for
       ``fleet.first_share`` of the budget.
    2. While the plan serves every request and the fixed vehicle cost dominates its
       distance: drop a used route (fewest requests first, up to ``fleet.attempts`` routes
       per fleet size), restrict the problem to the other used vehicles and run ALNS slices
       warm-started from the rest of the plan, whose objective puts the unserved requests
       first. A plan that serves everyone on fewer vehicles is kept and the next route goes.
    3. The rest of the budget (at least ``fleet.distance_share``): ALNS on the fleet found,
       for distance.

    Without a fixed vehicle cost this is :func:`~dispatch.optimize.alns.solve_alns`.

    Parameters
    ----------
    problem
        The problem; vehicles carrying onboard or fixed requests are never removed.
    time_limit_s
        Budget of the whole run (every phase), wall-clock or CPU seconds (``cpu_time``).
    seed
        Random seed (the phases and attempts use seeds derived from it).
    cpu_time
        Measure the budget in CPU seconds of this process.
    params
        ALNS tuning for every phase.
    fleet
        Time shares of the phases.

    Raises
    ------
    ValueError
        If ``time_limit_s`` is not positive and finite.
    """
    if not 0.0 < time_limit_s < float("inf"):
        raise ValueError(f"time_limit_s must be positive and finite, got {time_limit_s}")
    fp = fleet or FleetParams()
    if problem.vehicle_fixed_cost <= 0.0 or problem.n_requests == 0:
        return solve_alns(problem, time_limit_s, seed=seed, params=params, cpu_time=cpu_time)
    clock = time.process_time if cpu_time else time.perf_counter
    t0 = clock()

    def left() -> float:
        return time_limit_s - (clock() - t0)

    sol = solve_alns(
        problem, fp.first_share * time_limit_s, seed=seed, params=params, cpu_time=cpu_time
    )
    iterations = sol.stats.get("iterations", 0.0)
    pinned = set(problem.onboard_vehicle[problem.onboard_vehicle >= 0].tolist())
    pinned |= set(problem.fixed_vehicle[problem.fixed_vehicle >= 0].tolist())
    removed = tried = slices = 0
    start_vehicles = sol.n_vehicles_used
    reserve = fp.distance_share * time_limit_s
    # Elimination: each pass removes one route or gives up on this fleet size.
    while not sol.unserved and _dominates(problem, sol) and left() > reserve:
        used = [k for k in range(problem.n_vehicles) if sol.routes[k]]
        if len(used) <= 1:
            break
        # Fewest requests first: the fewest to re-insert, the likeliest to fit elsewhere.
        order = sorted((k for k in used if k not in pinned), key=lambda k: (len(sol.routes[k]), k))
        found = None
        for k in order[: fp.attempts]:
            if left() <= reserve:
                break
            tried += 1
            keep = [v for v in used if v != k]
            sub = restrict_fleet(problem, keep)
            cur = _to_sub(sub, keep, sol)
            spent = 0.0
            while cur.unserved and spent < fp.attempt_share * time_limit_s:
                budget = min(fp.slice_share * time_limit_s, left() - reserve)
                if budget <= 0.0:
                    break
                t1 = clock()
                # A new seed per slice: a slice warm-started from the last one's plan would
                # otherwise replay its random choices.
                cur = solve_alns(
                    sub,
                    budget,
                    seed=seed + SEED_STRIDE * tried + slices,
                    warm_start=cur,
                    params=params,
                    cpu_time=cpu_time,
                )
                spent += clock() - t1
                iterations += cur.stats.get("iterations", 0.0)
                slices += 1
            if not cur.unserved:
                found = _from_sub(problem, keep, cur)
                break
        if found is None:
            break
        sol = found
        removed += 1
    # Distance: the rest of the budget on the vehicles in use (the others would stay empty:
    # one more vehicle costs more than any distance it saves).
    # A plan still leaving requests out keeps the whole fleet.
    final_left = left()
    used = [k for k in range(problem.n_vehicles) if sol.routes[k] or sol.unserved]
    if final_left > 0.0 and used:
        sub = restrict_fleet(problem, used)
        best = solve_alns(
            sub,
            final_left,
            seed=seed + 1,
            warm_start=_to_sub(sub, used, sol),
            params=params,
            cpu_time=cpu_time,
        )
        iterations += best.stats.get("iterations", 0.0)
        sol = _from_sub(problem, used, best)
    sol.solver = "alns+fleet"
    sol.stats = {
        "seconds": clock() - t0,
        "iterations": iterations,
        "fleet_start_vehicles": float(start_vehicles),
        "fleet_removed": float(removed),
        "fleet_attempts": float(tried),
        "fleet_slices": float(slices),
    }
    violations = check(problem, sol)
    if violations:
        raise RuntimeError(f"fleet minimisation produced an infeasible plan: {violations[:3]}")
    return sol

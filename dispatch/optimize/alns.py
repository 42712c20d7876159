"""Adaptive large neighbourhood search for the DARP / PDPTW (Ropke & Pisinger 2006 style).

Ruin (random, worst, related, route removal) and recreate (greedy, noisy greedy, regret-2,
regret-3) with simulated-annealing acceptance and adaptive operator weights; a single-request
relocation descent then a 2-opt* descent (tails of two routes swapped where both vehicles are
empty: whole trips move between vehicles) polish every new best plan, one 2-opt* pass improves
every feasible candidate before the acceptance test, and the search returns
to the best plan after ``restart_after`` iterations without improvement. Every route is
scheduled by the eight-step method (ride times, windows, duration). Inner loops are numba
(:mod:`dispatch.optimize.alns_kernels`); this module drives them under a time limit.

Determinism: the temperature always follows a per-iteration schedule, so a seed replays
exactly up to where the clock cuts the run. With ``iterations`` given, the cooling spans them.
Without it, the first :data:`CALIBRATION` iterations run at the initial temperature and are
timed; the cooling then spans the iteration count the rest of the budget is estimated to hold,
rounded down to a coarse geometric grid (:func:`planned_iterations`), so runs of one seed on a
machine a few per cent faster or slower cool over the same iterations and find the same plans;
iterations left over when the cooling ends run at its final temperature. A quarter of the way
through, the plan is made once more (longer only) on the rate measured since the calibration.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from dispatch.optimize import alns_kernels as ak
from dispatch.optimize.kernel_data import KernelData, kernel_data
from dispatch.optimize.route_pool import RoutePool
from dispatch.optimize.schedule import schedule_routes
from dispatch.optimize.shared_best import SharedBest
from dispatch.problem import Problem, Request, Solution, Vehicle, check, solution_cost


@dataclass(frozen=True)
class AlnsParams:
    """Tuning of :func:`solve_alns` (defaults tuned on the Cordeau 'a' instances)."""

    start_worse: float = 0.01  # initial temperature accepts +1 % with probability 1/2
    end_ratio: float = 0.002  # final temperature / initial temperature
    q_min: int = 2
    q_fraction: float = 0.12  # at most this share of requests removed per iteration
    q_cap: int = 30
    segment: int = 100
    reaction: float = 0.1
    noise: float = 0.025  # noisy-greedy amplitude, in units of the largest cost
    chunk: int = 25
    restart_after: int = 2000  # iterations without a new best before returning to the best
    descent_passes: int = 3  # single-request relocation passes on every new best (0: off)
    two_opt_passes: int = 2  # 2-opt* (tail exchange at empty-vehicle points) passes on new bests
    two_opt_always: int = 1  # 2-opt* passes on every feasible candidate, before acceptance (0: off)
    # Route-pool set partitioning (:mod:`dispatch.optimize.route_pool`): at these shares of
    # the time budget (timed runs of at least ``pool_min_s`` only: the model needs a moment),
    # each with ``pool_share`` of the budget. Off by default: on pr05 (120 requests, 10 and
    # 30 s) the 2-7 thousand routes ALNS met held no better partition than its own plan
    # (CP-SAT proved it optimal), so the share only cost iterations (#16).
    pool_at: tuple[float, ...] = ()
    pool_share: float = 0.03
    pool_min_s: float = 2.0
    # Searches run in parallel on one instance (``shared`` in :func:`solve_alns`) exchange
    # their best plans every this share of the run. Measured (#16; pr05, pr06, pr09, pr10, two
    # searches of 30 CPU s, seeds 1-4, mean gap): every tenth 1.24 % (15 runs), every quarter
    # 1.34 % (8), every twentieth 1.65 % (7), never (independent searches) 1.45 % (16).
    share_every: float = 0.1


#: A plan as the kernels hold it: ``(routes, rlen, rveh, rcost)`` (:mod:`.alns_kernels`).
State = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

#: Iterations timed at the initial temperature before a timed run fixes its cooling schedule.
CALIBRATION = 200
#: Ratio between consecutive planned iteration counts (:func:`planned_iterations`).
PLAN_GRID = 2.0**0.125


def planned_iterations(done: int, per_iteration_s: float, remaining_s: float) -> int:
    """Iterations a timed run cools over: those done plus 95 % of what the remaining budget
    holds at the measured rate, rounded down to a power of :data:`PLAN_GRID` (at least
    ``done + 1``).

    Rounding to a coarse grid keeps the schedule, hence the search, identical for a seed when
    the measured rate varies by a few per cent (a shared machine); the 5 % margin and the
    rounding leave the cooling a little time to end before the clock does.
    """
    if per_iteration_s <= 0.0 or not math.isfinite(per_iteration_s):
        raise ValueError(f"per_iteration_s must be positive and finite, got {per_iteration_s}")
    estimate = done + 0.95 * max(0.0, remaining_s) / per_iteration_s
    if estimate < 1.0:
        return done + 1
    grid = PLAN_GRID ** math.floor(math.log(estimate) / math.log(PLAN_GRID) + 1e-9)
    return max(done + 1, int(grid))


def explain_unserved(problem: Problem, P: KernelData, r: int) -> str:
    """Why request ``r`` could not be served: alone on any allowed vehicle, or in the plan."""
    reasons: list[str] = []
    ob = int(problem.onboard_vehicle[r])
    fx = int(problem.fixed_vehicle[r])
    allowed = [ob] if ob >= 0 else ([fx] if fx >= 0 else range(problem.n_vehicles))
    pu, de = int(problem.pickup[r]), int(problem.delivery[r])
    for k in allowed:
        route = [de] if ob >= 0 else [pu, de]
        _, ok = schedule_routes(P, [route if v == k else [] for v in range(problem.n_vehicles)])
        if ok[k]:
            return "no feasible insertion into the plan (vehicles busy)"
        start = int(problem.start_node[k])
        first = pu if ob < 0 else de
        earliest = (
            max(problem.start_time[k], problem.early[start])
            + problem.vehicle_travel(k)[start, first]
        )
        if earliest > P[2][first, 1] + 1e-7:
            reasons.append(f"vehicle {k} cannot reach node {first} before its window closes")
        elif ob < 0 and np.any(problem.load[pu] > problem.capacity[k]):
            reasons.append(f"load exceeds vehicle {k} capacity")
        else:
            reasons.append(f"vehicle {k}: time window / ride time / shift infeasible")
    return "infeasible on any vehicle: " + "; ".join(reasons[:3])


def _solution_from_state(
    problem: Problem,
    P: KernelData,
    routes: np.ndarray,
    rlen: np.ndarray,
    rveh: np.ndarray,
    explain: bool = True,
) -> Solution:
    plan = [[int(x) for x in routes[k, 1 : rlen[k] - 1]] for k in range(problem.n_vehicles)]
    times, _ = schedule_routes(P, plan)
    unserved = [int(r) for r in np.flatnonzero(rveh < 0)]
    return Solution(
        routes=plan,
        times=times,
        unserved=unserved,
        unserved_reasons=(
            {r: explain_unserved(problem, P, r) for r in unserved} if explain else {}
        ),
        cost=solution_cost(problem, plan),
        solver="alns",
    )


def rank(problem: Problem, sol: Solution) -> tuple[int, float]:
    """Hierarchical objective: unserved first, then routing + vehicle cost."""
    return len(sol.unserved), sol.cost + problem.vehicle_fixed_cost * sol.n_vehicles_used


_compiled = False


def warm_up() -> None:
    """Compile (or load from numba's cache) every ALNS kernel on a tiny problem.

    Called before the solver starts its clock: a cold process would otherwise spend 20-60 s of
    a live re-optimisation or benchmark budget in the JIT and return the warm start unchanged.
    """
    global _compiled
    if _compiled:
        return
    _compiled = True  # set first: the call below re-enters solve_alns
    x = np.array([0.0, 0.0, 2.0, 5.0, 1.0, 4.0])
    load = np.array([0, 0, 1, -1, 1, -1])
    tiny = Problem.build(
        np.abs(x[:, None] - x[None, :]),
        early=np.zeros(6),
        late=np.full(6, 100.0),
        service=np.zeros(6),
        load=load,
        requests=[Request(2, 3, max_ride=10.0), Request(4, 5, max_ride=10.0)],
        vehicles=[Vehicle(start_node=0, end_node=1, capacity=[2])],
    )
    solve_alns(tiny, time_limit_s=60.0, seed=0, iterations=20)


def _recombine(
    problem: Problem,
    P: KernelData,
    pool: RoutePool,
    best: State,
    cur: State,
    fstate: np.ndarray,
    fixed: float,
    penalty: float,
    time_limit_s: float,
    stats: dict[str, float],
) -> None:
    """Set partitioning over the pooled routes; a better plan becomes the best and current."""
    pool.add_state(best[0], best[1])
    incumbent = _solution_from_state(problem, P, *best[:3], explain=False)
    stats["pool_runs"] += 1
    sol = pool.solve(incumbent, time_limit_s)
    if sol is None:
        return
    for k, route in enumerate(sol.routes):
        seq = [int(problem.start_node[k]), *route, int(problem.end_node[k])]
        best[0][k, :] = 0
        best[0][k, : len(seq)] = seq
        best[1][k] = len(seq)
    saved = float(fstate[1])
    obj = _adopt(problem, P, best, cur, fstate, fixed, penalty)
    stats["pool_improvements"] += 1
    stats["pool_saved"] += saved - obj


def _adopt(
    problem: Problem,
    P: KernelData,
    best: State,
    cur: State,
    fstate: np.ndarray,
    fixed: float,
    penalty: float,
) -> float:
    """Make the plan written into ``best``'s routes and lengths the best and current one:
    its requests' vehicles, route costs and objective follow. Returns the objective."""
    routes, rlen, rveh, rcost = best
    node_req = problem.node_request()
    rveh[:] = -1
    for k in range(problem.n_vehicles):
        for node in routes[k, 1 : rlen[k] - 1]:
            rveh[node_req[node]] = k
        rcost[k] = ak.route_cost(P, routes, rlen, k, fixed)
    obj = float(ak.objective(rcost, rveh, penalty))
    for dst, src in zip(cur, best, strict=True):
        dst[...] = src
    fstate[0] = obj
    fstate[1] = obj
    return obj


def solve_alns(
    problem: Problem,
    time_limit_s: float = 30.0,
    seed: int = 0,
    iterations: int | None = None,
    warm_start: Solution | None = None,
    params: AlnsParams | None = None,
    cpu_time: bool = False,
    shared: SharedBest | None = None,
) -> Solution:
    """Solve ``problem`` with ALNS; never returns a plan worse than a feasible ``warm_start``.

    Parameters
    ----------
    time_limit_s
        Wall-clock budget (construction included).
    seed
        Random seed.
    iterations
        Planned iteration count (deterministic cooling); ``None``: cool over the time limit.
    warm_start
        A plan to start from (e.g. the live plan). If the search finds nothing better in time,
        it is returned unchanged.
    cpu_time
        Measure the budget in CPU seconds of this process instead of wall-clock seconds
        (benchmarks on a shared machine: "30 s on one core").
    shared
        The best plan of searches running in parallel on the same problem: every
        ``params.share_every`` of the run (of ``iterations`` if given, else of the budget)
        this search publishes its best there, or takes
        the board's as its best and current plan when that is better (the cooling goes on).
        The exchanges follow the clock, so a seed no longer replays exactly.
    """
    warm_up()
    clock = time.process_time if cpu_time else time.perf_counter
    t0 = clock()
    prm = params or AlnsParams()
    P = kernel_data(problem)
    n_veh, n_req = problem.n_vehicles, problem.n_requests
    width = 2 * n_req + 2
    routes = np.zeros((n_veh, width), dtype=np.int64)
    rlen = np.full(n_veh, 2, dtype=np.int64)
    rveh = np.full(n_req, -1, dtype=np.int64)
    routes[:, 0] = problem.start_node
    routes[:, 1] = problem.end_node
    node_req = problem.node_request()
    fixed = float(problem.vehicle_fixed_cost)
    penalty = 1000.0 * (2.0 * float(problem.cost.max(initial=0.0)) * max(1, n_req) + fixed + 1.0)
    warm_ok = False
    if warm_start is not None:
        warm_ok = not check(problem, warm_start)
        for k, route in enumerate(warm_start.routes):
            seq = [int(problem.start_node[k]), *route, int(problem.end_node[k])]
            routes[k, : len(seq)] = seq
            rlen[k] = len(seq)
            for node in route:
                rveh[node_req[node]] = k
        _, ok = schedule_routes(P, [list(r) for r in warm_start.routes])
        for k in range(n_veh):
            if not ok[k]:
                # Our scheduler cannot certify this warm route: its requests are re-inserted.
                rveh[rveh == k] = -1
                routes[k, 0:2] = (problem.start_node[k], problem.end_node[k])
                rlen[k] = 2
    ak.seed_rng(seed)
    rcost = np.array([ak.route_cost(P, routes, rlen, k, fixed) for k in range(n_veh)])
    bank = np.flatnonzero(rveh < 0).astype(np.int64)
    ak.repair(P, routes, rlen, rveh, rcost, bank, 2, 0.0, fixed)
    obj = float(ak.objective(rcost, rveh, penalty))
    distance = float(rcost.sum()) - fixed * int((rlen > 2).sum())
    temp0 = prm.start_worse * max(distance, 1e-9) / math.log(2.0)
    fstate = np.array([obj, obj, temp0, 1.0])
    # Cooling spans ``plan`` iterations: given, or fixed after the calibration (timed runs).
    plan = iterations
    calibrated = (0, 0.0)  # iterations done and clock when the schedule was first fixed
    replan_at = 0  # iteration at which a timed run plans its cooling again (0: no more)
    cooled_obj: float | None = None  # best objective when the planned cooling ended
    first_plan = 0  # the timed run's plan before its second one
    if iterations is not None:
        fstate[3] = prm.end_ratio ** (1.0 / max(1, iterations))
    best = (routes.copy(), rlen.copy(), rveh.copy(), rcost.copy())
    weights = np.ones((2, 4))
    scores = np.zeros((2, 4))
    counts = np.zeros((2, 4))
    q_max = max(prm.q_min, min(prm.q_cap, int(prm.q_fraction * n_req)))
    iparams = np.array(
        [
            min(prm.q_min, max(1, n_req)),
            q_max,
            prm.segment,
            0,
            0,
            prm.restart_after,
            prm.descent_passes,
            prm.two_opt_passes,
            prm.two_opt_always,
            0,
        ],
        dtype=np.int64,
    )
    scale = max(1.0, float(problem.travel.max(initial=0.0)))
    fparams = np.array(
        [
            fixed,
            penalty,
            prm.noise * float(problem.cost.max(initial=0.0)),
            prm.reaction,
            scale,
            scale,
        ]
    )
    done = 0
    t_first = clock() - t0  # construction done: iterations are timed from here
    pool = None
    pool_at = list(prm.pool_at)
    if prm.pool_at and iterations is None and time_limit_s >= prm.pool_min_s and n_req > 1:
        pool = RoutePool(problem, P)
    pool_stats = {"pool_runs": 0.0, "pool_improvements": 0.0, "pool_saved": 0.0}
    # Candidate routes recorded by the kernel for the pool (no rows: nothing recorded).
    pool_rows = prm.chunk * n_veh if pool is not None else 0
    pool_routes = np.zeros((pool_rows, width), dtype=np.int64)
    pool_meta = np.zeros((pool_rows, 2), dtype=np.int64)
    share_at = prm.share_every if shared is not None else math.inf
    taken = 0  # plans taken from the parallel searches' board
    while n_req > 0:
        elapsed = clock() - t0
        if elapsed >= time_limit_s or (iterations is not None and done >= iterations):
            break
        # Progress through the run: its planned iterations, or else its budget.
        progress = done / iterations if iterations is not None else elapsed / time_limit_s
        if progress >= share_at and shared is not None:
            share_at = progress + prm.share_every
            if shared.exchange(float(fstate[1]), best[0], best[1]) is not None:
                _adopt(problem, P, best, (routes, rlen, rveh, rcost), fstate, fixed, penalty)
                iparams[4] = 0  # a new best: the restart counter starts again
                taken += 1
        if pool is not None:
            pool.add_state(routes, rlen)
            pool.add_recorded(pool_routes, pool_meta, int(iparams[9]))
            iparams[9] = 0
            if pool_at and elapsed >= pool_at[0] * time_limit_s:
                pool_at.pop(0)
                _recombine(problem, P, pool, best, (routes, rlen, rveh, rcost), fstate, fixed,
                           penalty, min(prm.pool_share * time_limit_s,
                                        time_limit_s - elapsed), pool_stats)  # fmt: skip
        n = prm.chunk if iterations is None else min(prm.chunk, iterations - done)
        if iterations is None:
            per_it = (elapsed - t_first) / done if done else np.inf
            if (
                plan is None
                and done
                and (done >= CALIBRATION or elapsed - t_first >= 0.05 * time_limit_s)
            ):
                # Calibrated (the time test only ends it on runs too short or slow to
                # replay anyway, e.g. a live pass on a large zone): fix the schedule.
                plan = planned_iterations(done, max(per_it, 1e-9), time_limit_s - elapsed)
                fstate[3] = prm.end_ratio ** (1.0 / (plan - done))
                calibrated = (done, elapsed)
                first_plan = plan
                replan_at = calibrated[0] + (plan - calibrated[0]) // 4
            elif replan_at and plan is not None and done >= replan_at:
                # Early iterations run slower (new bests are polished by the descents), so
                # the first plan is short (on pr10 the cooling ended at 64 % of the budget):
                # plan again once, on the rate since the calibration. Both plans sit on the
                # grid, so a seed still replays the same search.
                replan_at = 0
                rate = (elapsed - calibrated[1]) / max(1, done - calibrated[0])
                new_plan = planned_iterations(done, max(rate, 1e-9), time_limit_s - elapsed)
                if new_plan > plan and fstate[2] > 0.0:
                    plan = new_plan
                    end_temp = temp0 * prm.end_ratio
                    fstate[3] = (end_temp / fstate[2]) ** (1.0 / (plan - done))
            elif plan is not None and done >= plan:
                if cooled_obj is None:
                    cooled_obj = float(fstate[1])
                fstate[2] = temp0 * prm.end_ratio  # cooled: stay at the final temperature
                fstate[3] = 1.0
            # Chunks end at the calibration, the second plan and the end of the cooling.
            boundary = CALIBRATION if plan is None else (replan_at or plan)
            if boundary > done:
                n = min(n, boundary - done)
            # A chunk must not overrun the budget: on a live zone of 100 vehicles one
            # iteration can take 20-50 ms, and 25 of them more than a whole 0.3 s pass. The
            # first iteration is timed alone; then a chunk takes at most a fifth of the budget.
            n = max(1, min(n, int(min(time_limit_s - elapsed, 0.2 * time_limit_s) / per_it)))
        ak.alns_chunk(
            P,
            routes,
            rlen,
            rveh,
            rcost,
            *best,
            fstate,
            weights,
            scores,
            counts,
            iparams,
            fparams,
            n,
            pool_routes,
            pool_meta,
        )
        done += n
    sol = _solution_from_state(problem, P, *best[:3])
    sol.stats = {"iterations": float(done), "seconds": clock() - t0}
    if plan is not None:
        sol.stats["planned_iterations"] = float(plan)
        if first_plan:
            sol.stats["first_planned_iterations"] = float(first_plan)
    if cooled_obj is not None:
        # Reproducible for a seed (the iterations after it depend on the clock).
        sol.stats["cooled_objective"] = cooled_obj
    if shared is not None:
        sol.stats["plans_taken"] = float(taken)
    if pool is not None:
        sol.stats |= {**pool_stats, "pool_routes": float(len(pool))}
    violations = check(problem, sol)
    if (
        warm_start is not None
        and warm_ok
        and (violations or rank(problem, warm_start) <= rank(problem, sol))
    ):
        return warm_start
    if violations:
        raise RuntimeError(f"ALNS produced an infeasible plan: {violations[:3]}")
    return sol

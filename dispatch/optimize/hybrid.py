"""The default static solver: ALNS, then OR-Tools local search warm-started from its best.

ALNS builds plans request by request (its 2-opt* moves whole trips only at points where
a vehicle is empty), so a better plan that needs two requests moved *together* (each alone
breaks a ride time) is out of its reach; OR-Tools' pair operators (relocate / exchange of
pickup-delivery pairs under its time-dimension propagation) find those moves from a good
start. Rounds alternate the two, each warm-started from the best plan
so far; the result is never worse than the warm start.

With ``workers > 1`` the ALNS phase of a round runs that many independent searches at once
(this process and forked ones, seeds apart) and the round goes on from the best: annealing
runs of one instance differ by one or two per cent between seeds, so the best of two is
the cheapest use of a second core.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor

from dispatch.optimize.alns import AlnsParams, rank, solve_alns
from dispatch.optimize.ortools_model import solve_ortools
from dispatch.problem import Problem, Solution, check

#: Seed distance between the parallel ALNS searches of a round.
SEED_STRIDE = 7919
#: From this many requests on, ALNS runs with :data:`LARGE_PARAMS` unless given params.
LARGE_N = 100
#: Larger removals and a warmer end for large instances: :class:`AlnsParams`' defaults were
#: tuned on Cordeau 'a' (up to 96 requests). On pr06, pr09 and pr10 (108-144 requests; ALNS
#: alone, 21 CPU s, seeds 1 and 7920) at most 25 % / 40 removed (against 12 % / 30) gave a
#: mean gap of 2.52 % against 3.72 % (better on 5 of the 6 runs) with half the iterations.
#: Cooling to 5 % of the initial temperature (against 0.2 %) keeps the search moving to the
#: end: on pr05, pr06, pr09 and pr10 (ALNS alone, 30 CPU s, seeds 1-4, 16 runs a setting)
#: the mean gap was 2.24 % cooling to 0.2 %, 1.87 % to 2 %, 1.76 % to 5 %, 2.04 % to 10 % (#16).
LARGE_PARAMS = AlnsParams(q_fraction=0.25, q_cap=40, end_ratio=0.05)
#: The OR-Tools polish's share of the budget below :data:`LARGE_N` requests (from it on: none).
#: The polish never improved ALNS's plan on a pr instance (pr01-pr10 at 30 s, and 7 earlier
#: runs), so on large instances its share goes to ALNS instead (#16).
POLISH_SHARE = 0.3


def _parallel_alns(
    problem: Problem,
    time_limit_s: float,
    seed: int,
    warm_start: Solution | None,
    params: AlnsParams | None,
    cpu_time: bool,
    workers: int,
) -> Solution:
    """Best of ``workers`` ALNS runs (seeds ``seed + w * SEED_STRIDE``), ``workers - 1`` of them
    in forked processes (the numba kernels compiled here are inherited, not rebuilt)."""
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=workers - 1, mp_context=ctx) as pool:
        futures = [
            pool.submit(
                solve_alns,
                problem,
                time_limit_s=time_limit_s,
                seed=seed + w * SEED_STRIDE,
                warm_start=warm_start,
                params=params,
                cpu_time=cpu_time,
            )
            for w in range(1, workers)
        ]
        sols = [
            solve_alns(
                problem,
                time_limit_s=time_limit_s,
                seed=seed,
                warm_start=warm_start,
                params=params,
                cpu_time=cpu_time,
            )
        ]
        sols += [f.result() for f in futures]
    best = min(sols, key=lambda s: rank(problem, s))
    if best is warm_start:
        return best
    best.stats = {**best.stats, "iterations": sum(s.stats.get("iterations", 0.0) for s in sols)}
    return best


def solve(
    problem: Problem,
    time_limit_s: float = 30.0,
    seed: int = 0,
    warm_start: Solution | None = None,
    rounds: int = 1,
    polish_share: float | None = None,
    params: AlnsParams | None = None,
    cpu_time: bool = False,
    workers: int = 1,
) -> Solution:
    """Solve ``problem`` in ``time_limit_s`` seconds: ``rounds`` x (ALNS, OR-Tools polish).

    ``polish_share`` of each round goes to OR-Tools (wall clock, its own timer; ``None``:
    :data:`POLISH_SHARE` below :data:`LARGE_N` requests, none from it on); ALNS uses
    ``cpu_time`` as in :func:`~dispatch.optimize.alns.solve_alns`, in ``workers`` parallel
    searches (one per core; their iterations add up in ``stats``); ``params`` ``None``: the
    ALNS defaults, or :data:`LARGE_PARAMS` from :data:`LARGE_N` requests on. Returns the best
    plan that passes :func:`~dispatch.problem.check` (the warm start itself if nothing beats
    it).
    """
    if polish_share is None:
        polish_share = POLISH_SHARE if problem.n_requests < LARGE_N else 0.0
    if rounds < 1 or not 0.0 <= polish_share < 1.0:
        raise ValueError("rounds must be >= 1 and polish_share in [0, 1)")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if params is None and problem.n_requests >= LARGE_N:
        params = LARGE_PARAMS
    t0 = time.perf_counter()
    best = warm_start
    per_round = time_limit_s / rounds
    stats: dict[str, float] = {"iterations": 0.0}
    for rnd in range(rounds):
        if workers > 1:
            sol = _parallel_alns(
                problem, per_round * (1.0 - polish_share), seed + rnd, best, params, cpu_time,
                workers,
            )  # fmt: skip
        else:
            sol = solve_alns(
                problem,
                time_limit_s=per_round * (1.0 - polish_share),
                seed=seed + rnd,
                warm_start=best,
                params=params,
                cpu_time=cpu_time,
            )
        stats["iterations"] += sol.stats.get("iterations", 0.0)
        if best is None or rank(problem, sol) < rank(problem, best):
            best = sol
        if polish_share > 0.0:
            pol = solve_ortools(problem, time_limit_s=per_round * polish_share, warm_start=best)
            if not check(problem, pol) and rank(problem, pol) < rank(problem, best):
                best = pol
    assert best is not None
    if best is warm_start:
        return best
    best.stats = {**best.stats, **stats, "seconds": time.perf_counter() - t0}
    best.solver = f"hybrid({best.solver})"
    return best

"""The default static solver: ALNS, then OR-Tools local search warm-started from its best.

ALNS builds plans request by request (its 2-opt* moves whole trips only at points where
a vehicle is empty), so a better plan that needs two requests moved *together* (each alone
breaks a ride time) is out of its reach; OR-Tools' pair operators (relocate / exchange of
pickup-delivery pairs under its time-dimension propagation) find those moves from a good
start. Rounds alternate the two, each warm-started from the best plan
so far; the result is never worse than the warm start.
"""

from __future__ import annotations

import time

from dispatch.optimize.alns import AlnsParams, rank, solve_alns
from dispatch.optimize.ortools_model import solve_ortools
from dispatch.problem import Problem, Solution, check


def solve(
    problem: Problem,
    time_limit_s: float = 30.0,
    seed: int = 0,
    warm_start: Solution | None = None,
    rounds: int = 1,
    polish_share: float = 0.3,
    params: AlnsParams | None = None,
    cpu_time: bool = False,
) -> Solution:
    """Solve ``problem`` in ``time_limit_s`` seconds: ``rounds`` x (ALNS, OR-Tools polish).

    ``polish_share`` of each round goes to OR-Tools (wall clock, its own timer); ALNS uses
    ``cpu_time`` as in :func:`~dispatch.optimize.alns.solve_alns`. Returns the best plan that
    passes :func:`~dispatch.problem.check` (the warm start itself if nothing beats it).
    """
    if rounds < 1 or not 0.0 <= polish_share < 1.0:
        raise ValueError("rounds must be >= 1 and polish_share in [0, 1)")
    t0 = time.perf_counter()
    best = warm_start
    per_round = time_limit_s / rounds
    stats: dict[str, float] = {"iterations": 0.0}
    for rnd in range(rounds):
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

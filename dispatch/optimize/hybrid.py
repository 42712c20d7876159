"""The default static solver: ALNS with :data:`STATIC_PARAMS`, optionally followed by an
OR-Tools local search warm-started from its best.

The polish was meant for moves ALNS cannot make: ALNS builds plans request by request (its
2-opt* moves whole trips only at points where a vehicle is empty), while OR-Tools' pair
operators (relocate / exchange of pickup-delivery pairs under its time-dimension
propagation) move two requests together. Measured, it never improved ALNS's plan on a 'pr'
instance, and on the Cordeau 'a' ones its 30 % of the budget did less than the same time
given to ALNS (see :data:`STATIC_PARAMS`), so it only runs when a caller gives it a share.
Rounds alternate the two, each warm-started from the best plan so far; the result is never
worse than the warm start.

With ``workers > 1`` the ALNS phase of a round runs that many searches at once (this process
and forked ones, seeds apart) and the round goes on from the best. Every
``params.share_every`` of the run the searches exchange their best plans through shared memory
(:class:`~dispatch.optimize.shared_best.SharedBest`): a search behind takes the better plan
and cools on from it, so the second core works on the best region found so far rather than
on its own seed's to the end (measured: see ``AlnsParams.share_every``). The exchanges follow
each search's clock, so a seed does not replay a parallel solve exactly.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from multiprocessing.connection import Connection
from typing import Any

from dispatch.optimize.alns import AlnsParams, rank, solve_alns
from dispatch.optimize.ortools_model import solve_ortools
from dispatch.optimize.shared_best import SharedBest
from dispatch.problem import Problem, Solution, check

#: Seed distance between the parallel ALNS searches of a round.
SEED_STRIDE = 7919
#: ALNS settings of a static solve of a whole budget (unless given params): larger removals
#: and a warmer end than :class:`AlnsParams`' defaults, which serve the live re-optimisation's
#: short passes. Measured (#16; mean gap to the best known, one search of 30 CPU s a run):
#:
#: * at most 25 % / 40 requests removed (against 12 % / 30): pr06, pr09 and pr10 (21 s, 2
#:   seeds) 2.52 % against 3.72 %; pr05, pr06, pr09 and pr10 (seeds 1-2) 1.89 % against
#:   35 % / 60: 2.22 %, and 15 % / 25: 2.57 %;
#: * cooling to 5 % of the initial temperature (against 0.2 %): pr05, pr06, pr09 and pr10
#:   (seeds 1-4) 2.24 % cooling to 0.2 %, 1.87 % to 2 %, 1.76 % to 5 %, 2.04 % to 10 %;
#: * on the smaller instances too, and without the OR-Tools polish: pr01-pr04, pr07 and pr08
#:   (seed 1) 0.43 % against 1.22 % with the defaults and a 30 % polish; a3-36 ... a8-96
#:   (seeds 1-2, 12 runs) 0.13 % against 0.28 %.
STATIC_PARAMS = AlnsParams(q_fraction=0.25, q_cap=40, end_ratio=0.05)


def _search(conn: Connection, problem: Problem, kwargs: dict[str, Any]) -> None:
    """One parallel search of :func:`_parallel_alns`, in its own process: the plan, or the
    exception, goes back through ``conn``."""
    try:
        conn.send(solve_alns(problem, **kwargs))
    except BaseException as exc:  # re-raised by the parent
        conn.send(exc)
    finally:
        conn.close()


def _parallel_alns(
    problem: Problem,
    time_limit_s: float,
    seed: int,
    warm_start: Solution | None,
    params: AlnsParams,
    cpu_time: bool,
    workers: int,
) -> Solution:
    """Best of ``workers`` ALNS runs (seeds ``seed + w * SEED_STRIDE``), ``workers - 1`` of them
    in forked processes (the numba kernels compiled here are inherited, not rebuilt), sharing
    their best plans every ``params.share_every`` of the budget (``0``: independent runs)."""
    fork = "fork" in mp.get_all_start_methods()
    ctx = mp.get_context("fork") if fork else mp.get_context("spawn")
    shared = None
    if params.share_every > 0.0:
        shared = SharedBest(ctx, problem.n_vehicles, 2 * problem.n_requests + 2)
    common: dict[str, Any] = {
        "time_limit_s": time_limit_s,
        "warm_start": warm_start,
        "params": params,
        "cpu_time": cpu_time,
        "shared": shared,
    }
    children = []
    for w in range(1, workers):
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_search,
            args=(send, problem, {**common, "seed": seed + w * SEED_STRIDE}),
            daemon=True,
        )
        proc.start()
        send.close()
        children.append((proc, recv))
    try:
        sols = [solve_alns(problem, seed=seed, **common)]
        for proc, recv in children:
            try:
                got = recv.recv()
            except EOFError as exc:
                proc.join(timeout=5.0)
                raise RuntimeError(
                    f"a parallel search ended without a plan (exit code {proc.exitcode})"
                ) from exc
            if isinstance(got, BaseException):
                raise got
            sols.append(got)
    finally:
        for proc, recv in children:
            recv.close()
            proc.join(timeout=5.0)
            if proc.is_alive():
                proc.kill()
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
    polish_share: float = 0.0,
    params: AlnsParams | None = None,
    cpu_time: bool = False,
    workers: int = 1,
) -> Solution:
    """Solve ``problem`` in ``time_limit_s`` seconds: ``rounds`` x (ALNS, OR-Tools polish).

    ``polish_share`` of each round goes to OR-Tools (wall clock, its own timer; by default
    none); ALNS uses ``cpu_time`` as in :func:`~dispatch.optimize.alns.solve_alns`, in
    ``workers`` parallel searches (one per core; their iterations add up in ``stats``), with
    ``params`` (``None``: :data:`STATIC_PARAMS`). Returns the best plan that passes
    :func:`~dispatch.problem.check` (the warm start itself if nothing beats it).
    """
    if rounds < 1 or not 0.0 <= polish_share < 1.0:
        raise ValueError("rounds must be >= 1 and polish_share in [0, 1)")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if params is None:
        params = STATIC_PARAMS
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

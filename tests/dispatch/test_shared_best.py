"""The parallel searches' board: exchange rules, across processes, and inside ALNS."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest

from dispatch.instances import read_best_known, read_cordeau
from dispatch.optimize.alns import AlnsParams, solve_alns
from dispatch.optimize.shared_best import SharedBest
from dispatch.problem import Problem, Solution, check, solution_cost

CTX = mp.get_context("fork")


def _state(problem: Problem, sol: Solution) -> tuple[np.ndarray, np.ndarray]:
    """``sol`` as the ALNS state's routes and lengths."""
    routes = np.zeros((problem.n_vehicles, 2 * problem.n_requests + 2), dtype=np.int64)
    rlen = np.zeros(problem.n_vehicles, dtype=np.int64)
    for k, route in enumerate(sol.routes):
        seq = [int(problem.start_node[k]), *route, int(problem.end_node[k])]
        routes[k, : len(seq)] = seq
        rlen[k] = len(seq)
    return routes, rlen


def test_the_better_plan_is_published_and_the_worse_side_takes_it() -> None:
    board = SharedBest(CTX, 2, 4)
    assert board.objective == np.inf
    a = np.arange(8, dtype=np.int64).reshape(2, 4)
    alen = np.array([4, 3], dtype=np.int64)
    assert board.exchange(10.0, a, alen) is None  # published: the board was empty
    assert board.objective == 10.0
    b = np.zeros((2, 4), dtype=np.int64)
    blen = np.array([2, 2], dtype=np.int64)
    assert board.exchange(12.0, b, blen) == 10.0  # worse: takes the board's plan
    assert (b == a).all() and (blen == alen).all()
    assert board.exchange(10.0, b, blen) is None  # equal: keeps its own
    c = np.full((2, 4), 7, dtype=np.int64)
    assert board.exchange(9.0, c, blen) is None  # better: published
    assert board.objective == 9.0
    with pytest.raises(ValueError, match="shape"):
        board.exchange(1.0, np.zeros((3, 4), dtype=np.int64), blen)


def _publish(board: SharedBest) -> None:
    board.exchange(5.0, np.full((2, 3), 4, dtype=np.int64), np.array([3, 2], dtype=np.int64))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_plan_published_in_another_process_reaches_this_one(method: str) -> None:
    ctx = mp.get_context("fork") if method == "fork" else mp.get_context("spawn")
    board = SharedBest(ctx, 2, 3)
    proc = ctx.Process(target=_publish, args=(board,))
    proc.start()
    proc.join(timeout=60)
    assert proc.exitcode == 0
    routes = np.zeros((2, 3), dtype=np.int64)
    rlen = np.zeros(2, dtype=np.int64)
    assert board.exchange(6.0, routes, rlen) == 5.0
    assert (routes == 4).all() and list(rlen) == [3, 2]


def test_alns_goes_on_from_a_better_plan_on_the_board(shared_data: Path) -> None:
    problem = read_cordeau(shared_data / "darp" / "cordeau2006_a" / "a4-48.txt")
    best = read_best_known(shared_data / "darp" / "best_known.csv")["a4-48"].cost
    good = solve_alns(problem, time_limit_s=30.0, seed=1, iterations=3000)
    board = SharedBest(CTX, problem.n_vehicles, 2 * problem.n_requests + 2)
    board.exchange(good.cost, *_state(problem, good))
    # 30 iterations alone end far from the good plan; with the board, at it or better.
    params = AlnsParams(share_every=0.001)
    alone = solve_alns(problem, time_limit_s=30.0, seed=2, iterations=30, params=params)
    assert alone.cost > good.cost + 1e-6
    sol = solve_alns(problem, time_limit_s=30.0, seed=2, iterations=30, params=params, shared=board)
    assert sol.stats["plans_taken"] >= 1
    assert check(problem, sol) == [] and sol.unserved == []
    assert solution_cost(problem, sol.routes) == pytest.approx(sol.cost)
    assert sol.cost <= good.cost + 1e-6 and sol.cost >= best - 1e-3
    # A search better than the board publishes its plans and takes nothing.
    board2 = SharedBest(CTX, problem.n_vehicles, 2 * problem.n_requests + 2)
    board2.exchange(1e12, *_state(problem, alone))
    sol2 = solve_alns(
        problem, time_limit_s=30.0, seed=1, iterations=300, params=params, shared=board2
    )
    assert sol2.stats["plans_taken"] == 0
    assert sol2.cost - 1e-6 <= board2.objective < 1e12  # its last chunk may have improved

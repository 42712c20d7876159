"""Route-pool set partitioning: feasible plans only, never worse than its incumbent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dispatch.instances import read_cordeau
from dispatch.optimize.alns import AlnsParams, solve_alns
from dispatch.optimize.kernel_data import kernel_data
from dispatch.optimize.route_pool import RoutePool, vehicle_classes
from dispatch.optimize.schedule import schedule_routes
from dispatch.problem import Problem, Solution, check, solution_cost
from tests.dispatch.test_optimize import _crossed_pairs, _kernel_state, _live_problem


@pytest.fixture(scope="module")
def a2_16(shared_data: Path) -> Problem:
    return read_cordeau(shared_data / "darp" / "cordeau2006_a" / "a2-16.txt")


def _plan(p: Problem, routes: list[list[int]]) -> Solution:
    times, ok = schedule_routes(kernel_data(p), routes)
    assert all(ok)
    return Solution(routes=routes, times=times, cost=solution_cost(p, routes))


def test_identical_vehicles_share_a_class_distinct_ones_do_not(a2_16: Problem) -> None:
    assert vehicle_classes(kernel_data(a2_16)).tolist() == [0, 0]
    assert vehicle_classes(kernel_data(_live_problem())).tolist() == [0, 1]


def test_partition_recombines_routes_of_several_plans(a2_16: Problem) -> None:
    plans = [solve_alns(a2_16, time_limit_s=30.0, seed=s, iterations=60) for s in range(4)]
    worst = max(plans, key=lambda s: s.cost)
    pool = RoutePool(a2_16, kernel_data(a2_16))
    for s in plans:
        pool.add_solution(s)
    assert 0 < len(pool) <= 8
    sol = pool.solve(worst, time_limit_s=10.0)
    best_input = min(s.cost for s in plans)
    if worst.cost > best_input + 1e-6:
        assert sol is not None  # the best plan's own routes are a better partition
    if sol is not None:
        assert check(a2_16, sol) == [] and sol.unserved == []
        assert sol.cost <= best_input + 1e-6
        # Every route it uses came out of the pool.
        pooled = {route for _, route in pool.routes}
        assert all(tuple(r) in pooled for r in sol.routes if r)


def test_nothing_better_in_the_pool_gives_none(a2_16: Problem) -> None:
    sol = solve_alns(a2_16, time_limit_s=30.0, seed=1, iterations=100)
    pool = RoutePool(a2_16, kernel_data(a2_16))
    assert pool.solve(sol, time_limit_s=5.0) is None  # its own routes only
    assert len(pool) == sum(1 for r in sol.routes if r)


def test_crossed_trips_are_swapped_between_distinct_vehicles() -> None:
    p, crossed = _crossed_pairs()
    P = kernel_data(p)
    pool = RoutePool(p, P)
    # The swapped routes were met on their own vehicles in some other plan.
    routes, rlen, _, _ = _kernel_state(p, [[4, 5], [6, 7]])
    assert pool.add_state(routes, rlen) == 2
    assert pool.add_state(routes, rlen) == 0  # already pooled
    sol = pool.solve(_plan(p, crossed), time_limit_s=5.0)
    assert sol is not None and sol.routes == [[4, 5], [6, 7]]
    assert sol.cost == pytest.approx(8.0) and check(p, sol) == []


def test_a_route_met_on_one_vehicle_is_not_given_to_another_class() -> None:
    p, crossed = _crossed_pairs()
    pool = RoutePool(p, kernel_data(p))
    # [4, 5] met on vehicle 1 (x=20) only: the cheap plan needs it on vehicle 0.
    routes, rlen, _, _ = _kernel_state(p, [[], [4, 5]])
    pool.add_state(routes, rlen)
    sol = pool.solve(_plan(p, crossed), time_limit_s=5.0)
    assert sol is None


def test_onboard_request_stays_on_its_vehicle() -> None:
    p = _live_problem()
    inc = solve_alns(p, time_limit_s=30.0, seed=0, iterations=50)
    assert check(p, inc) == []
    pool = RoutePool(p, kernel_data(p))
    pool.add_solution(inc)
    # Keys of routes holding the onboard request (2) are pinned to vehicle 0 (owner -1).
    node_req = p.node_request()
    for owner, route in pool.routes:
        if 2 in node_req[list(route)].tolist():
            assert owner == -1
    sol = pool.solve(inc, time_limit_s=5.0)
    assert sol is None  # the incumbent alone: nothing better


def test_pool_stops_growing_at_its_cap(a2_16: Problem) -> None:
    pool = RoutePool(a2_16, kernel_data(a2_16), max_routes=1)
    sol = solve_alns(a2_16, time_limit_s=30.0, seed=0, iterations=30)
    assert pool.add_solution(sol) == 1 and len(pool) == 1


def test_unserved_requests_may_be_picked_up_again(a2_16: Problem) -> None:
    full = solve_alns(a2_16, time_limit_s=30.0, seed=0, iterations=100)
    assert full.unserved == []
    # An incumbent dropping the first route's requests: the pool serves them again.
    dropped = [[], full.routes[1]] if full.routes[0] else [full.routes[0], []]
    inc = _plan(a2_16, dropped)
    node_req = a2_16.node_request()
    served = {int(node_req[n]) for r in dropped for n in r}
    inc.unserved = [r for r in range(a2_16.n_requests) if r not in served]
    pool = RoutePool(a2_16, kernel_data(a2_16))
    pool.add_solution(full)
    sol = pool.solve(inc, time_limit_s=5.0)
    assert sol is not None and sol.unserved == [] and check(a2_16, sol) == []


def test_timed_alns_runs_the_partitioning_and_stays_feasible(a2_16: Problem) -> None:
    prm = AlnsParams(pool_at=(0.3, 0.6), pool_min_s=0.5, pool_share=0.1)
    sol = solve_alns(a2_16, time_limit_s=1.5, seed=0, params=prm)
    assert check(a2_16, sol) == [] and sol.unserved == []
    assert sol.stats["pool_runs"] >= 1 and sol.stats["pool_routes"] > 0
    # Deterministic runs (iterations given) keep no pool: they replay exactly.
    det = solve_alns(a2_16, time_limit_s=30.0, seed=0, iterations=50, params=prm)
    assert "pool_runs" not in det.stats
    # Off by default: a timed run keeps no pool (and records no routes).
    plain = solve_alns(a2_16, time_limit_s=2.0, seed=0)
    assert "pool_routes" not in plain.stats and check(a2_16, plain) == []
    assert np.isfinite(det.cost)

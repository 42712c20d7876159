"""Fleet minimisation by route elimination (dispatch.optimize.fleet)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench import darp
from dispatch.instances import read_lilim
from dispatch.optimize.fleet import FleetParams, restrict_fleet, solve_fleet_min
from dispatch.problem import Problem, Request, Vehicle, check
from tests.dispatch.test_problem import line_problem

# Depot at 0 (nodes 0, 1), then three requests along the line: one vehicle can serve all.
XS3 = [0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
REQS3 = [Request(2, 3), Request(4, 5), Request(6, 7)]


def three_vehicle_problem(fixed: float = 1000.0) -> Problem:
    vehicles = [Vehicle(start_node=0, end_node=1, capacity=[1]) for _ in range(3)]
    return replace(
        line_problem(XS3, REQS3, vehicles, late=np.full(8, 100.0)), vehicle_fixed_cost=fixed
    )


def test_restrict_fleet_keeps_named_vehicles_and_renumbers_pins() -> None:
    vehicles = [
        Vehicle(start_node=0, end_node=1, capacity=[1], shift_end=50.0),
        Vehicle(start_node=0, end_node=1, capacity=[2], shift_end=60.0),
        Vehicle(start_node=0, end_node=1, capacity=[3], shift_end=70.0),
    ]
    reqs = [Request(2, 3, fixed_vehicle=2), Request(4, 5), Request(6, 7)]
    p = line_problem(XS3, reqs, vehicles, late=np.full(8, 100.0))
    sub = restrict_fleet(p, [2, 0])
    assert sub.n_vehicles == 2 and sub.n_requests == 3
    assert sub.capacity[:, 0].tolist() == [3, 1]
    assert sub.shift_end.tolist() == [70.0, 50.0]
    assert sub.fixed_vehicle.tolist() == [0, -1, -1]  # vehicle 2 is now vehicle 0
    assert sub.onboard_vehicle.tolist() == [-1, -1, -1]


def test_restrict_fleet_refuses_bad_vehicle_lists() -> None:
    reqs = [Request(2, 3, fixed_vehicle=1), Request(4, 5), Request(6, 7)]
    vehicles = [Vehicle(start_node=0, end_node=1, capacity=[1]) for _ in range(3)]
    p = line_problem(XS3, reqs, vehicles, late=np.full(8, 100.0))
    with pytest.raises(ValueError, match="out of range"):
        restrict_fleet(p, [0, 3])
    with pytest.raises(ValueError, match="twice"):
        restrict_fleet(p, [1, 1])
    with pytest.raises(ValueError, match="fixed to a request"):
        restrict_fleet(p, [0, 2])


def test_fleet_params_and_budget_are_checked() -> None:
    with pytest.raises(ValueError, match="first_share"):
        FleetParams(first_share=0.0)
    with pytest.raises(ValueError, match="leave time"):
        FleetParams(first_share=0.6, distance_share=0.5)
    with pytest.raises(ValueError, match="slice_share"):
        FleetParams(slice_share=0.4, attempt_share=0.3)
    with pytest.raises(ValueError, match="attempts"):
        FleetParams(attempts=0)
    with pytest.raises(ValueError, match="time_limit_s"):
        solve_fleet_min(three_vehicle_problem(), time_limit_s=0.0)
    with pytest.raises(ValueError, match="time_limit_s"):
        solve_fleet_min(three_vehicle_problem(), time_limit_s=float("inf"))


def test_fleet_min_serves_all_on_one_vehicle() -> None:
    p = three_vehicle_problem()
    sol = solve_fleet_min(p, time_limit_s=1.0, seed=0)
    assert check(p, sol) == [] and sol.unserved == []
    assert sol.n_vehicles_used == 1
    assert sol.solver == "alns+fleet" and sol.stats["iterations"] > 0


def test_fleet_min_without_fixed_cost_is_plain_alns() -> None:
    p = three_vehicle_problem(fixed=0.0)
    sol = solve_fleet_min(p, time_limit_s=0.5, seed=0)
    assert check(p, sol) == [] and sol.solver == "alns"


@pytest.mark.slow
def test_fleet_min_reaches_nine_vehicles_on_lc103(shared_data: Path) -> None:
    # Plain ALNS ends with 10 vehicles here on the bench's 10 CPU s (seed 0); the best known
    # plan has 9, about 200 distance units longer, and route elimination finds such a plan.
    p = read_lilim(shared_data / "darp" / "lilim_100" / "lc103.txt")
    sol = solve_fleet_min(p, time_limit_s=10.0, seed=0, cpu_time=True)
    assert check(p, sol) == [] and sol.unserved == []
    assert sol.n_vehicles_used == 9
    assert sol.stats["fleet_start_vehicles"] == 10 and sol.stats["fleet_removed"] == 1


def test_bench_darp_lilim_runs_route_elimination(tmp_path: Path) -> None:
    out = tmp_path / "lilim.json"
    darp.main(
        ["--set", "lilim", "--instances", "lc101", "--lilim-time-limit", "1", "--json", str(out)]
    )
    (row,) = json.loads(out.read_text())["lilim"]
    assert row["alns"]["solver"] == "alns+fleet"
    assert row["alns"]["feasible"] and row["alns"]["unserved"] == 0

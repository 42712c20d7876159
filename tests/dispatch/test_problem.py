"""The DARP problem model and its independent feasibility check, on hand-built tiny cases."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from dispatch.problem import Problem, Request, Solution, Vehicle, check, solution_cost

# Stops on a line: node 0 = depot start, 1 = depot end, then (pickup, delivery) pairs.
XS = [0.0, 0.0, 2.0, 5.0, 1.0, 4.0]


def line_problem(
    xs: Sequence[float] = XS,
    requests: Sequence[Request] | None = None,
    vehicles: Sequence[Vehicle] | None = None,
    late: npt.ArrayLike | None = None,
    early: npt.ArrayLike | None = None,
    service: float = 0.0,
) -> Problem:
    """Nodes on a line, travel time = distance; default: 2 requests, 1 vehicle of capacity 2."""
    x = np.asarray(xs, dtype=np.float64)
    travel = np.abs(x[:, None] - x[None, :])
    n = len(xs)
    if requests is None:
        requests = [Request(2, 3, max_ride=10.0), Request(4, 5, max_ride=10.0)]
    if vehicles is None:
        vehicles = [Vehicle(start_node=0, end_node=1, capacity=[2])]
    load = np.zeros(n, dtype=np.int64)
    for q in requests:
        load[q.pickup], load[q.delivery] = 1, -1
    svc = np.full(n, service)
    svc[[0, 1]] = 0.0
    return Problem.build(
        travel,
        early=np.zeros(n) if early is None else early,
        late=np.full(n, 100.0) if late is None else late,
        service=svc,
        load=load,
        requests=requests,
        vehicles=vehicles,
    )


def two_speed_problem(rule: str) -> Problem:
    """A fast vehicle (0, profile 0: half the distance) and a slow one (1, profile 1: twice the
    distance), one request that only the fast vehicle can serve under ``rule`` ("window",
    "ride" or "shift"), although the slow vehicle is closer and so cheaper (cost = distance).

    Nodes on a line: 0/1 fast start/end (x=0), 2/3 slow start/end (x=7), 4 pickup (x=10),
    5 delivery (x=14). The slow vehicle reaches the pickup at t=6, delivers at 14 (ride 8) and
    is back at 28; the fast one at 5, 7 (ride 2) and 14.
    """
    x = np.array([0.0, 0.0, 7.0, 7.0, 10.0, 14.0])
    dist = np.abs(x[:, None] - x[None, :])
    late = np.full(6, 100.0)
    max_ride, shift_end = 100.0, 100.0
    if rule == "window":
        late[4] = 5.5
    elif rule == "ride":
        max_ride = 5.0
    elif rule == "shift":
        shift_end = 20.0
    else:
        raise ValueError(rule)
    return Problem.build(
        np.stack([dist / 2.0, dist * 2.0]),
        early=np.zeros(6),
        late=late,
        service=np.zeros(6),
        load=[0, 0, 0, 0, 1, -1],
        requests=[Request(4, 5, max_ride=max_ride)],
        vehicles=[
            Vehicle(0, 1, capacity=[1], shift_end=shift_end, profile=0),
            Vehicle(2, 3, capacity=[1], shift_end=shift_end, profile=1),
        ],
        cost=dist,
    )


def earliest_times(p: Problem, k: int, route: Sequence[int]) -> np.ndarray:
    """Start-of-service times of ``[start, *route, end]`` driving without waiting."""
    seq = [int(p.start_node[k]), *route, int(p.end_node[k])]
    t = [max(p.start_time[k], p.early[seq[0]])]
    for a, b in itertools.pairwise(seq):
        t.append(max(t[-1] + p.service[a] + p.vehicle_travel(k)[a, b], p.early[b]))
    return np.array(t)


def plan(p: Problem, routes: list[list[int]], unserved: Sequence[int] = ()) -> Solution:
    times = [earliest_times(p, k, r) for k, r in enumerate(routes)]
    return Solution(routes, times, list(unserved), cost=solution_cost(p, routes))


def kinds(violations: list[str]) -> set[str]:
    return {v.split(":")[0] for v in violations}


def test_feasible_plan_has_no_violation() -> None:
    p = line_problem()
    sol = plan(p, [[4, 2, 5, 3]])
    assert check(p, sol) == []
    assert sol.cost == pytest.approx(10.0)  # 0 -> 1 -> 2 -> 4 -> 5 -> 0


def test_capacity_violation() -> None:
    p = line_problem(vehicles=[Vehicle(0, 1, capacity=[1])])
    assert "capacity" in kinds(check(p, plan(p, [[4, 2, 5, 3]])))
    assert check(p, plan(p, [[4, 5, 2, 3]])) == []


def test_multi_dimensional_capacity() -> None:
    # Second dimension: request 1 needs a wheelchair space the vehicle does not have.
    p0 = line_problem()
    load = np.concatenate([p0.load, np.zeros_like(p0.load)], axis=1)
    load[4, 1], load[5, 1] = 1, -1
    p = Problem.build(
        p0.travel[0],
        p0.early,
        p0.late,
        p0.service,
        load,
        [Request(2, 3), Request(4, 5)],
        [Vehicle(0, 1, capacity=[2, 0])],
    )
    assert "capacity" in kinds(check(p, plan(p, [[4, 5, 2, 3]])))


def test_precedence_violation() -> None:
    p = line_problem()
    assert "precedence" in kinds(check(p, plan(p, [[3, 2, 4, 5]])))


def test_pairing_violation() -> None:
    p = line_problem(vehicles=[Vehicle(0, 1, capacity=[2]), Vehicle(0, 1, capacity=[2])])
    assert "pairing" in kinds(check(p, plan(p, [[2, 4, 5], [3]])))


def test_time_window_violation() -> None:
    late = np.full(6, 100.0)
    late[3] = 4.0  # request 0 must be delivered by t=4 (direct: t=5)
    p = line_problem(late=late)
    assert "time window" in kinds(check(p, plan(p, [[2, 3, 4, 5]])))


def test_ride_time_violation() -> None:
    p = line_problem(requests=[Request(2, 3, max_ride=4.0), Request(4, 5, max_ride=10.0)])
    # 0 -> 2 (t=2) -> 1 (t=3) -> 4 (t=6) -> 5 (t=7): request 0 rides 5 > 4.
    assert "ride time" in kinds(check(p, plan(p, [[2, 4, 5, 3]])))
    assert check(p, plan(p, [[4, 2, 5, 3]])) == []


def test_route_duration_and_shift_end() -> None:
    p = line_problem(vehicles=[Vehicle(0, 1, capacity=[2], max_duration=8.0, shift_end=9.0)])
    got = kinds(check(p, plan(p, [[4, 2, 5, 3]])))  # takes 10, returns at 10
    assert {"route duration", "shift end"} <= got


def test_unserved_must_be_reported() -> None:
    p = line_problem()
    assert "unserved" in kinds(check(p, plan(p, [[4, 5]])))
    assert check(p, plan(p, [[4, 5]], unserved=[0])) == []
    assert any("reported unserved" in v for v in check(p, plan(p, [[4, 5]], unserved=[0, 1])))


def test_schedule_inconsistent_with_travel_times() -> None:
    p = line_problem()
    sol = plan(p, [[4, 2, 5, 3]])
    sol.times[0][2] -= 0.5  # starts node 2 before the vehicle can get there
    assert "schedule" in kinds(check(p, sol))


def test_cost_mismatch_and_shapes() -> None:
    p = line_problem()
    sol = plan(p, [[4, 2, 5, 3]])
    sol.cost += 1.0
    assert "cost" in kinds(check(p, sol))
    bad = plan(p, [[4, 2, 5, 3]])
    bad.times[0] = bad.times[0][:-1]
    assert any("schedule has" in v for v in check(p, bad))
    assert check(p, Solution([], [])) != []


def test_duplicate_and_foreign_nodes() -> None:
    p = line_problem()
    assert any("more than once" in v for v in check(p, plan(p, [[4, 2, 5, 3, 3]])))
    assert any("not a request node" in v for v in check(p, plan(p, [[0, 4, 2, 5, 3]])))


def test_onboard_and_fixed_vehicle() -> None:
    vehicles = [Vehicle(0, 1, capacity=[2]), Vehicle(0, 1, capacity=[2])]
    early = np.zeros(6)
    early[4] = 3.0
    p = line_problem(
        requests=[Request(2, 3, max_ride=5.5, onboard_vehicle=0), Request(4, 5)],
        vehicles=vehicles,
        early=early,
    )
    assert check(p, plan(p, [[3], [4, 5]])) == []
    assert "onboard" in kinds(check(p, plan(p, [[4, 5], [3]])))
    # The remaining ride limit counts from the vehicle's start: 0 -> 4 (wait to 3) -> 5 -> 3
    # delivers at t=7 > 5.5.
    assert "ride time" in kinds(check(p, plan(p, [[4, 5, 3], []])))
    assert any("visited again" in v for v in check(p, plan(p, [[2, 3], [4, 5]])))
    assert "unserved" in kinds(check(p, plan(p, [[], [4, 5]])))
    assert p.initial_load()[0].tolist() == [1]
    fixed = line_problem(
        requests=[Request(2, 3), Request(4, 5, fixed_vehicle=1)], vehicles=vehicles
    )
    assert "fixed assignment" in kinds(check(fixed, plan(fixed, [[4, 5, 2, 3], []])))
    assert check(fixed, plan(fixed, [[2, 3], [4, 5]])) == []


def test_departure_before_start_time() -> None:
    p = line_problem(vehicles=[Vehicle(0, 1, capacity=[2], start_time=3.0)])
    sol = plan(p, [[4, 2, 5, 3]])
    assert check(p, sol) == []
    sol.times[0] = sol.times[0] - 3.0
    assert any("before its start" in v for v in check(p, sol))


@pytest.mark.parametrize(
    "change",
    [
        {"travel": np.zeros((3, 3))},
        {"early": np.zeros(5)},
        {"pickup": np.array([2, 2])},
        {"start_node": np.array([2])},
        {"fixed_vehicle": np.array([3, -1])},
        {"capacity": np.array([[2, 2]])},
        {"late": np.full(6, -1.0)},
    ],
)
def test_problem_validation_rejects_bad_arrays(change: dict[str, np.ndarray]) -> None:
    p = line_problem()
    fields = {f: getattr(p, f) for f in p.__dataclass_fields__}
    fields.update(change)
    with pytest.raises(ValueError):
        Problem(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rule", "reason"),
    [("window", "time window"), ("ride", "ride time"), ("shift", "shift end")],
)
def test_each_vehicle_is_checked_on_its_own_travel_profile(rule: str, reason: str) -> None:
    p = two_speed_problem(rule)
    assert p.n_profiles == 2 and p.vehicle_profile.tolist() == [0, 1]
    assert np.array_equal(p.vehicle_travel(1), p.travel[1])
    fast, slow = plan(p, [[4, 5], []]), plan(p, [[], [4, 5]])
    assert check(p, fast) == []
    assert slow.cost < fast.cost  # the slow vehicle would be cheaper: only speed rules it out
    assert kinds(check(p, slow)) == {reason}
    # The slow vehicle cannot borrow the fast profile's times either.
    borrowed = Solution([[], [4, 5]], [np.zeros(2), np.array([0.0, 1.5, 3.5, 7.0])], cost=slow.cost)
    got = check(p, borrowed)
    assert "schedule" in kinds(got)
    assert any("(profile 1)" in v for v in got)


def test_single_profile_forms_are_equivalent() -> None:
    p = line_problem()
    assert p.travel.shape == (1, 6, 6) and p.n_profiles == 1
    assert p.vehicle_profile.tolist() == [0]
    fields = {f: getattr(p, f) for f in p.__dataclass_fields__}
    # A 2-D matrix and no profiles given directly to the constructor: one profile for all.
    fields.update(travel=p.travel[0], vehicle_profile=np.zeros(0, dtype=np.int64))
    q = Problem(**fields)  # type: ignore[arg-type]
    assert q.travel.shape == (1, 6, 6) and q.vehicle_profile.tolist() == [0]
    sol = plan(q, [[4, 2, 5, 3]])
    assert check(q, sol) == check(p, sol) == []


def test_several_profiles_need_a_cost_matrix() -> None:
    p = two_speed_problem("window")
    with pytest.raises(ValueError, match="cost is required"):
        Problem.build(
            p.travel, p.early, p.late, p.service, p.load, [Request(4, 5)], [Vehicle(0, 1, [1])]
        )


@pytest.mark.parametrize(
    "change",
    [
        {"vehicle_profile": np.array([0, 2])},  # profile index out of range
        {"vehicle_profile": np.array([-1, 0])},
        {"vehicle_profile": np.array([0, 1, 1])},  # not one per vehicle
        {"travel": np.zeros((2, 6, 5))},  # not square
        {"travel": np.zeros((0, 6, 6))},  # no profile
        {"travel": np.zeros((2, 2, 6, 6))},
        {"cost": np.zeros((2, 6, 6))},  # one cost matrix for every vehicle
    ],
)
def test_profile_validation_rejects_bad_arrays(change: dict[str, np.ndarray]) -> None:
    p = two_speed_problem("window")
    fields = {f: getattr(p, f) for f in p.__dataclass_fields__}
    fields.update(change)
    with pytest.raises(ValueError):
        Problem(**fields)  # type: ignore[arg-type]


def wait_problem(asap: bool) -> Problem:
    """Request 0 (x=1 -> x=3, ride <= 4) and request 1 (x=2, opens at t=10 -> x=4, ride <= 3).

    Picking up both before delivering request 0 costs 8 but needs the vehicle to wait *before*
    the first pickup (Cordeau's scheduling delays it to t=9); a vehicle driving as soon as
    possible (``asap``) picks request 0 up at t=1 and must deliver it first (cost 10).
    """
    early = np.zeros(6)
    early[4] = 10.0
    p = line_problem(
        [0.0, 0.0, 1.0, 3.0, 2.0, 4.0],
        requests=[Request(2, 3, max_ride=4.0), Request(4, 5, max_ride=3.0)],
        early=early,
    )
    fields = {f: getattr(p, f) for f in p.__dataclass_fields__}
    return Problem(**{**fields, "asap": asap})  # type: ignore[arg-type]


def test_asap_vehicles_never_wait_to_shorten_a_ride() -> None:
    lazy, asap = wait_problem(False), wait_problem(True)
    both_first = Solution([[2, 4, 3, 5]], [np.array([0.0, 9.0, 10.0, 11.0, 12.0, 16.0])], cost=8.0)
    assert check(lazy, both_first) == []
    assert kinds(check(asap, both_first)) == {"waiting"}  # waits at the start, not at t=10
    # Driven as soon as possible, the same route breaks request 0's ride time.
    assert kinds(check(asap, plan(asap, [[2, 4, 3, 5]]))) == {"ride time"}
    assert check(asap, plan(asap, [[2, 3, 4, 5]])) == []
    late_start = plan(asap, [[2, 3, 4, 5]])
    late_start.times[0] = late_start.times[0] + 0.5
    assert any("departs at 0.500, not at 0.000" in v for v in check(asap, late_start))

"""Re-optimisation: replaces plans only when feasible, complete, cheaper and still current."""

from __future__ import annotations

import time

import numpy as np
import pytest

from dispatch.dispatcher import Dispatcher
from dispatch.problem import solution_cost
from dispatch.reoptimize import (
    ReoptimizationLoop,
    build_problem,
    reoptimise_zone,
    speed_classes,
)
from dispatch.request import RideRequest
from dispatch.rides import Ride
from dispatch.simulation.invariants import plan_violations
from dispatch.simulation.scenario import MURORAN_ZONE, build_dispatcher
from dispatch.vehicle import SHUTTLE, VAN, Vehicle
from dispatch.zone import ServiceZone

NOW = 8 * 3600.0


def _booked(seed: int, n: int = 14) -> tuple[Dispatcher, list[Ride]]:
    zone = ServiceZone.from_geojson("muroran", MURORAN_ZONE)
    d = build_dispatcher([zone], 3, (NOW - 600, NOW + 6 * 3600), seed)
    rng = np.random.default_rng(seed)
    pts = zone.random_points(rng, 2 * n)
    rides = []
    for k in range(n):
        r = d.request_ride(
            RideRequest(
                origin=(float(pts[2 * k, 0]), float(pts[2 * k, 1])),
                destination=(float(pts[2 * k + 1, 0]), float(pts[2 * k + 1, 1])),
                requested_at=NOW,
                earliest_pickup=NOW + 300 + 240 * k,
                request_id=f"r{k}",
                user_id="u",
            ),
            now=NOW,
        )
        if isinstance(r, Ride):
            rides.append(r)
    return d, rides


def _driving(d: Dispatcher) -> float:
    zp = build_problem(d, "muroran", NOW)
    assert zp is not None
    return solution_cost(zp.problem, zp.current)


def test_reoptimisation_keeps_every_promise_and_never_costs_more() -> None:
    applied_any = False
    for seed in (1, 2, 3):
        d, rides = _booked(seed)
        assert len(rides) >= 8
        before = _driving(d)
        windows = {r.ride_id: (r.pickup_window, r.latest_arrival) for r in rides}
        # OR-Tools (time-limited, so whether it improves depends on the machine) for seeds 1
        # and 3; deterministic ALNS for seed 2, which does improve: a real replacement is
        # exercised on any machine.
        if seed == 2:
            applied = reoptimise_zone(d, "muroran", NOW, solver="alns", iterations=300)
        else:
            applied = reoptimise_zone(d, "muroran", NOW, time_limit_s=1.0)
        applied_any |= applied > 0
        after = _driving(d)
        assert after <= before + 1e-6
        if applied:
            assert after < before
        assert plan_violations(d, NOW) == []
        for r in rides:  # promises are never rewritten
            assert (r.pickup_window, r.latest_arrival) == windows[r.ride_id]
            holders = [
                v.vehicle_id for v in d.vehicles() if any(s.ride_id == r.ride_id for s in v.plan)
            ]
            assert holders == [r.vehicle_id]
    assert applied_any  # the test exercised a real replacement


def test_replacement_is_all_or_nothing() -> None:
    d, _ = _booked(5)
    zs = d.zone_state("muroran")
    v = next(v for v in d.vehicles() if len(v.plan) >= 2)
    plan = list(reversed(v.plan))
    stale = {vid: ver - 1 for vid, ver in zs.versions.items()}
    assert d.replace_plans("muroran", {v.vehicle_id: plan}, stale, NOW, lambda *_: True) == 0
    assert (
        d.replace_plans("muroran", {v.vehicle_id: plan}, dict(zs.versions), NOW, lambda *_: False)
        == 0
    )
    assert plan_violations(d, NOW) == []


def test_background_loop_runs_off_the_request_path() -> None:
    d, _ = _booked(2)
    d.clock = lambda: NOW
    loop = ReoptimizationLoop(d, interval_s=0.05, time_limit_s=0.3)
    loop.start()
    time.sleep(1.0)
    # Requests keep being answered while the loop works.
    r = d.quote(RideRequest((42.31, 140.96), (42.33, 140.99), NOW, earliest_pickup=NOW + 600), NOW)
    loop.stop()
    assert r is not None
    assert plan_violations(d, NOW) == []


def test_alns_with_fixed_iterations_is_reproducible() -> None:
    results = []
    for _ in range(2):
        d, _rides = _booked(4)
        before = _driving(d)
        applied = reoptimise_zone(d, "muroran", NOW, time_limit_s=30, solver="alns", iterations=300)
        results.append((applied, _driving(d), [[s.ride_id for s in v.plan] for v in d.vehicles()]))
        assert _driving(d) <= before + 1e-6
        assert plan_violations(d, NOW) == []
    assert results[0] == results[1]
    with pytest.raises(ValueError):
        reoptimise_zone(d, "muroran", NOW, solver="magic")


def _mixed(seed: int, n: int = 20) -> tuple[Dispatcher, list[Ride]]:
    """One van and three slow autonomous shuttles in one zone, ``n`` rides booked."""
    zone = ServiceZone.from_geojson("muroran", MURORAN_ZONE)
    d = build_dispatcher([zone], 1, (NOW - 600, NOW + 6 * 3600), seed)
    rng = np.random.default_rng(seed + 100)
    depots = zone.random_points(rng, 3)
    for k in range(3):
        p = (float(depots[k, 0]), float(depots[k, 1]))
        d.add_vehicle(
            Vehicle(
                f"shuttle-{k}",
                SHUTTLE,
                p,
                NOW - 600,
                NOW + 6 * 3600,
                p,
                NOW - 600,
                zone_id="muroran",
            )
        )
    pts = zone.random_points(rng, 2 * n)
    rides = []
    for k in range(n):
        r = d.request_ride(
            RideRequest(
                origin=(float(pts[2 * k, 0]), float(pts[2 * k, 1])),
                destination=(float(pts[2 * k + 1, 0]), float(pts[2 * k + 1, 1])),
                requested_at=NOW,
                earliest_pickup=NOW + 300 + 180 * k,
                request_id=f"r{k}",
                user_id="u",
            ),
            now=NOW,
        )
        if isinstance(r, Ride):
            rides.append(r)
    return d, rides


def test_mixed_fleet_is_reoptimised_one_speed_class_at_a_time() -> None:
    applied_total = 0
    shuttle_changed = False
    for seed in (1, 2, 3):
        d, rides = _mixed(seed)
        classes = speed_classes(d, "muroran", NOW)
        assert [sorted(c) for c in classes] == [
            ["shuttle-0", "shuttle-1", "shuttle-2"],
            sorted(v.vehicle_id for v in d.vehicles() if v.vtype is VAN),
        ]
        assert build_problem(d, "muroran", NOW) is None  # one matrix cannot serve two speeds
        kind = {v.vehicle_id: v.vtype.name for v in d.vehicles()}
        before_kind = {r.ride_id: kind[str(r.vehicle_id)] for r in rides}
        windows = {r.ride_id: (r.pickup_window, r.latest_arrival) for r in rides}
        shuttle_plans = {
            v.vehicle_id: [id(s) for s in v.plan] for v in d.vehicles() if v.vtype is SHUTTLE
        }
        applied = reoptimise_zone(d, "muroran", NOW, solver="alns", iterations=300)
        applied_total += applied
        shuttle_changed |= any(
            [id(s) for s in v.plan] != shuttle_plans[v.vehicle_id]
            for v in d.vehicles()
            if v.vtype is SHUTTLE
        )
        assert plan_violations(d, NOW) == []
        for r in rides:
            assert (r.pickup_window, r.latest_arrival) == windows[r.ride_id]
            assert kind[str(r.vehicle_id)] == before_kind[r.ride_id]  # stays in its class
            holders = [
                v.vehicle_id for v in d.vehicles() if any(s.ride_id == r.ride_id for s in v.plan)
            ]
            assert holders == [r.vehicle_id]
    assert applied_total > 0 and shuttle_changed  # the slow class too was re-optimised


def test_each_speed_class_uses_its_own_travel_times() -> None:
    d, _ = _mixed(1)
    for ids in speed_classes(d, "muroran", NOW):
        zp = build_problem(d, "muroran", NOW, ids)
        if zp is None:
            continue
        speed = zp.vehicles[0].vtype.speed_kmh
        pts = np.array([s.latlon for s in zp.node_stop.values()], dtype=np.float64)
        n0 = sorted(zp.node_stop)[:2]
        want = d.travel.matrix(pts[:2], pts[:2], speed)
        assert np.allclose(zp.problem.travel[np.ix_(n0, n0)], want)


def _plans(d: Dispatcher) -> dict[str, list[int]]:
    return {v.vehicle_id: [id(s) for s in v.plan] for v in d.vehicles()}


@pytest.mark.parametrize("outcome", ["timeout", "no_solution", "partial", "worse"])
def test_a_solver_time_out_or_bad_answer_leaves_the_plans_in_force(
    monkeypatch: pytest.MonkeyPatch, outcome: str
) -> None:
    import dispatch.reoptimize as reopt
    from dispatch.problem import Solution

    d, _ = _booked(2)
    before = _plans(d)
    zp = build_problem(d, "muroran", NOW)
    assert zp is not None

    def solver(p: object, **_: object) -> Solution | None:
        if outcome == "timeout":
            raise TimeoutError("time limit reached before a first solution")
        if outcome == "no_solution":
            return None
        # Every route emptied: cheaper, but serving nobody ("partial"), or the same plans at
        # a made-up higher cost ("worse").
        assert zp is not None
        if outcome == "partial":
            routes: list[list[int]] = [[] for _ in zp.current]
            return Solution(routes=routes, times=[], unserved=[0], cost=0.0)
        return Solution(routes=zp.current, times=[], cost=1e12)

    monkeypatch.setattr(reopt, "solve_ortools", solver)
    monkeypatch.setattr(reopt, "solve_alns", solver)
    assert reoptimise_zone(d, "muroran", NOW, time_limit_s=0.01) == 0
    assert _plans(d) == before
    assert plan_violations(d, NOW) == []


def test_a_real_solver_cut_short_never_breaks_the_plans() -> None:
    d, rides = _booked(3)
    before = _driving(d)
    windows = {r.ride_id: (r.pickup_window, r.latest_arrival) for r in rides}
    reoptimise_zone(d, "muroran", NOW, time_limit_s=0.001)
    assert _driving(d) <= before + 1e-6
    assert plan_violations(d, NOW) == []
    assert {r.ride_id: (r.pickup_window, r.latest_arrival) for r in rides} == windows

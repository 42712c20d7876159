"""Re-optimisation: replaces plans only when feasible, complete, cheaper and still current."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from typing import Any

import numpy as np
import pytest
from structlog.testing import capture_logs

from dispatch.dispatcher import Dispatcher, DispatchError
from dispatch.problem import solution_cost
from dispatch.reoptimize import ReoptimizationLoop, ZoneProblem, build_problem, reoptimise_zone
from dispatch.request import RideRequest
from dispatch.rides import Rejection, Ride
from dispatch.simulation.invariants import plan_violations
from dispatch.simulation.scenario import MURORAN_ZONE, build_dispatcher
from dispatch.time_dependent import parse_speed_windows
from dispatch.vehicle import SHUTTLE, VAN, Stop, Vehicle, VehicleType
from dispatch.zone import ServiceZone
from routing.street import TimeOfDaySpeeds

NOW = 8 * 3600.0


def _request(
    d: Dispatcher, a: np.ndarray, b: np.ndarray, earliest_pickup: float, request_id: str
) -> Ride | Rejection:
    """Ask ``d`` at NOW for a ride from point ``a`` to point ``b`` (``(lat, lon)`` rows)."""
    return d.request_ride(
        RideRequest(
            origin=(float(a[0]), float(a[1])),
            destination=(float(b[0]), float(b[1])),
            requested_at=NOW,
            earliest_pickup=earliest_pickup,
            request_id=request_id,
            user_id="u",
        ),
        now=NOW,
    )


def _book_pairs(d: Dispatcher, pts: np.ndarray, n: int, every_s: float) -> list[Ride]:
    """Request ``n`` rides between consecutive pairs of ``pts``, pick-ups ``every_s`` apart
    from NOW + 5 min; the ones booked."""
    rides = []
    for k in range(n):
        r = _request(d, pts[2 * k], pts[2 * k + 1], NOW + 300 + every_s * k, f"r{k}")
        if isinstance(r, Ride):
            rides.append(r)
    return rides


def _promises(rides: list[Ride]) -> dict[str, tuple[tuple[float, float], float]]:
    """What each ride was promised: its pick-up window and latest arrival."""
    return {r.ride_id: (r.pickup_window, r.latest_arrival) for r in rides}


def _assert_each_held_by_its_vehicle(d: Dispatcher, rides: list[Ride]) -> None:
    """Every ride is in the plan of its own vehicle, and of no other."""
    for r in rides:
        holders = [
            v.vehicle_id for v in d.vehicles() if any(s.ride_id == r.ride_id for s in v.plan)
        ]
        assert holders == [r.vehicle_id]


def _booked(
    seed: int, n: int = 14, speeds: TimeOfDaySpeeds | None = None
) -> tuple[Dispatcher, list[Ride]]:
    zone = ServiceZone.from_geojson("muroran", MURORAN_ZONE)
    d = build_dispatcher([zone], 3, (NOW - 600, NOW + 6 * 3600), seed, speeds=speeds)
    rng = np.random.default_rng(seed)
    return d, _book_pairs(d, zone.random_points(rng, 2 * n), n, 240)


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
        windows = _promises(rides)
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
        assert _promises(rides) == windows  # promises are never rewritten
        _assert_each_held_by_its_vehicle(d, rides)
    assert applied_any  # the test exercised a real replacement


def test_the_live_loop_solves_in_a_worker_process_with_the_same_guarantees() -> None:
    """``isolate``: OR-Tools runs in a worker process (it holds the GIL for its whole search,
    which froze the owner's event loop); the plans it brings back pass the same checks, and a
    worker that died is replaced and the pass falls back without touching the plans."""
    from concurrent.futures.process import BrokenProcessPool

    from dispatch.optimize import isolated

    try:
        d, rides = _booked(3)
        before = _driving(d)
        windows = _promises(rides)
        zp = build_problem(d, "muroran", NOW)
        assert zp is not None
        # The raw search's cost depends on how much CPU its 1 s got (a loaded CI machine gave one
        # above the insertion plan's); what must hold is the pass's guarantee below.
        sol = isolated.solve_ortools_isolated(zp.problem, 1.0)
        assert not sol.unserved and sol.cost > 0
        reoptimise_zone(d, "muroran", NOW, time_limit_s=1.0, isolate=True)
        assert _driving(d) <= before + 1e-6
        assert plan_violations(d, NOW) == []
        assert _promises(rides) == windows
        _assert_each_held_by_its_vehicle(d, rides)
        # A killed worker: the call fails, the next one gets a new worker.
        pool = isolated._executor()
        for pid in list(pool._processes):  # type: ignore[attr-defined]
            import os
            import signal

            os.kill(pid, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            isolated.solve_ortools_isolated(zp.problem, 0.5)
        again = isolated.solve_ortools_isolated(zp.problem, 0.5)
        assert not again.unserved and again.cost > 0
    finally:
        isolated.shutdown()


def test_the_solver_worker_yields_the_cpu_to_requests() -> None:
    """The isolated search keeps a core busy for its whole time limit: it runs at the lowest
    priority, so that the service's requests on a small machine do not wait behind it (#10)."""
    import os

    from dispatch.optimize import isolated

    try:
        own = os.nice(0)
        worker = isolated._executor().submit(os.nice, 0).result(timeout=120)
        assert worker == min(own + isolated.WORKER_NICE, 19)
        assert worker > own or own == 19
    finally:
        isolated.shutdown()


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


def test_a_zone_released_during_a_pass_is_skipped_quietly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cluster mode: this process releases a zone (taken over, or removed from the catalog)
    while a pass is under way; the pass meets ``unknown_zone`` for it, logs one info line
    (no traceback) and goes on with the next zone. Other refusals keep their traceback."""
    d, _ = _booked(2)
    d.add_zone(ServiceZone.from_geojson("other", MURORAN_ZONE))
    d.clock = lambda: NOW
    loop = ReoptimizationLoop(d, time_limit_s=0.3, rebalance=False)
    real = reoptimise_zone
    asked: list[str] = []

    def releasing(
        dd: Dispatcher, zone_id: str, now: float, limit: float, isolate: bool = False
    ) -> int:
        asked.append(zone_id)
        if zone_id == "muroran":
            dd.remove_zone("muroran")  # released by the lease keeper mid-pass
        return real(dd, zone_id, now, limit)

    monkeypatch.setattr("dispatch.reoptimize.reoptimise_zone", releasing)
    with capture_logs() as logs:
        loop.run_pass()
    assert asked == ["muroran", "other"]
    assert logs == [{"event": "reoptimisation_zone_gone", "zone": "muroran", "log_level": "info"}]

    def refusing(
        dd: Dispatcher, zone_id: str, now: float, limit: float, isolate: bool = False
    ) -> int:
        raise DispatchError("unknown_vehicle", "gone")

    monkeypatch.setattr("dispatch.reoptimize.reoptimise_zone", refusing)
    with capture_logs() as logs:
        loop.run_pass()
    assert [(e["event"], e["log_level"], e.get("exc_info")) for e in logs] == [
        ("reoptimisation_pass_failed", "error", True)
    ]


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
    return d, _book_pairs(d, zone.random_points(rng, 2 * n), n, 180)


def test_mixed_fleet_is_reoptimised_as_one_problem() -> None:
    applied_total = 0
    moved_between_kinds = 0
    for seed in (1, 2, 3):
        d, rides = _mixed(seed)
        before = _driving(d)
        kind = {v.vehicle_id: v.vtype.name for v in d.vehicles()}
        before_kind = {r.ride_id: kind[str(r.vehicle_id)] for r in rides}
        windows = _promises(rides)
        applied = reoptimise_zone(d, "muroran", NOW, solver="alns", iterations=300)
        applied_total += applied
        after = _driving(d)
        assert after <= before + 1e-6
        if applied:
            assert after < before
        assert plan_violations(d, NOW) == []
        assert _promises(rides) == windows
        _assert_each_held_by_its_vehicle(d, rides)
        moved_between_kinds += sum(kind[str(r.vehicle_id)] != before_kind[r.ride_id] for r in rides)
    assert applied_total > 0
    assert moved_between_kinds > 0  # rides do cross between the van and the shuttles now


def test_each_vehicle_uses_the_travel_times_of_its_speed() -> None:
    d, _ = _mixed(1)
    zp = build_problem(d, "muroran", NOW)
    assert zp is not None
    p = zp.problem
    assert p.n_profiles == 2  # shuttle (16 km/h) and van (28 km/h), slowest first
    speeds = [SHUTTLE.speed_kmh, VAN.speed_kmh]
    assert [speeds[q] for q in p.vehicle_profile] == [v.vtype.speed_kmh for v in zp.vehicles]
    nodes = sorted(zp.node_stop)[:3]
    pts = np.array([zp.node_stop[n].latlon for n in nodes], dtype=np.float64)
    for k, v in enumerate(zp.vehicles):
        want = d.travel.matrix(pts, pts, v.vtype.speed_kmh)
        assert np.allclose(p.vehicle_travel(k)[np.ix_(nodes, nodes)], want)
    # One cost for every vehicle: metres driven.
    assert np.allclose(p.cost[np.ix_(nodes, nodes)], d.travel.distance_m(pts, pts))


def _one_vehicle(
    seed: int, n_points: int, vtype: VehicleType = VAN, speeds: TimeOfDaySpeeds | None = None
) -> tuple[Dispatcher, Vehicle, np.ndarray]:
    """The zone with one vehicle, and ``n_points`` random points in it, nearest its depot first."""
    zone = ServiceZone.from_geojson("muroran", MURORAN_ZONE)
    d = build_dispatcher([zone], 1, (NOW - 600, NOW + 6 * 3600), seed, vtype=vtype, speeds=speeds)
    v = d.vehicles()[0]
    pts = zone.random_points(np.random.default_rng(seed), n_points)
    return d, v, pts[np.argsort(np.hypot(*(pts - np.array(v.depot)).T))]


def _shuttle_ride_and_a_van_nearby() -> tuple[Dispatcher, Ride]:
    """A shuttle far from a ride it was booked on (the only vehicle then); a van then comes on
    shift right at the ride's origin, so the ride is cheaper on the van, and feasible."""
    d, shuttle, far = _one_vehicle(7, 200, vtype=SHUTTLE)
    rides = []
    for k in range(2):
        # Two short rides far from the shuttle's depot: one origin, two nearby destinations.
        r = _request(d, far[-1], far[-2 - k], NOW + 1800 + 900 * k, f"r{k}")
        assert isinstance(r, Ride) and r.vehicle_id == shuttle.vehicle_id
        rides.append(r)
    origin = (float(far[-1, 0]), float(far[-1, 1]))
    d.add_vehicle(
        Vehicle(
            "van-0", VAN, origin, NOW - 600, NOW + 6 * 3600, origin, NOW - 600, zone_id="muroran"
        )
    )
    return d, rides[0]


@pytest.mark.parametrize("solver", ["alns", "ortools"])
def test_a_ride_moves_from_the_shuttle_to_a_cheaper_van(solver: str) -> None:
    d, ride = _shuttle_ride_and_a_van_nearby()
    before = _driving(d)
    window = _promises([ride])
    applied = reoptimise_zone(d, "muroran", NOW, time_limit_s=2.0, solver=solver, iterations=200)
    assert applied == 2  # the shuttle's plan and the van's
    assert ride.vehicle_id == "van-0"
    assert {s.ride_id for s in d.vehicle("van-0").plan} == {"r0", "r1"}
    assert d.vehicle("muroran-v0").plan == []  # the shuttle has nothing left to do
    assert _driving(d) < before
    assert _promises([ride]) == window
    assert plan_violations(d, NOW) == []


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
    windows = _promises(rides)
    reoptimise_zone(d, "muroran", NOW, time_limit_s=0.001)
    assert _driving(d) <= before + 1e-6
    assert plan_violations(d, NOW) == []
    assert _promises(rides) == windows


@pytest.mark.parametrize(
    ("windows", "peak_aware"),
    [
        # The whole morning is one peak: planning at its speed fits the plans in force.
        ("07:00-12:00=0.7", [True]),
        # A short, strong peak later on: slowing every leg to it does not fit the plans in
        # force, so the pass plans on free-flow times (the dispatcher's check guards).
        ("09:00-09:30=0.5", [True, False]),
    ],
)
def test_reoptimisation_through_speed_periods_keeps_every_promise(
    monkeypatch: pytest.MonkeyPatch, windows: str, peak_aware: list[bool]
) -> None:
    import dispatch.reoptimize as reopt

    d, rides = _booked(2, speeds=parse_speed_windows(windows))
    zp = build_problem(d, "muroran", NOW)
    free = build_problem(d, "muroran", NOW, peak_aware=False)
    assert zp is not None and free is not None
    last = max(s.latest for v in d.vehicles() for s in v.plan)
    factor = d.slowest_speed_factor(NOW, last, "muroran")
    assert factor < 1.0
    assert np.allclose(zp.problem.travel * factor, free.problem.travel)
    calls: list[bool] = []

    def spy(
        dd: Dispatcher, zone_id: str, now: float, peak_aware: bool = True, **kw: Any
    ) -> ZoneProblem | None:
        calls.append(peak_aware)
        return build_problem(dd, zone_id, now, peak_aware=peak_aware, **kw)

    monkeypatch.setattr(reopt, "build_problem", spy)
    before = _driving(d)
    windows_before = _promises(rides)
    reoptimise_zone(d, "muroran", NOW, solver="alns", iterations=300)
    assert calls == peak_aware
    assert _driving(d) <= before + 1e-6
    assert plan_violations(d, NOW) == []
    assert _promises(rides) == windows_before


# --- plans in force already late (issue #5) ---------------------------------------------------
def _late_van_and_an_idle_one(
    speeds: TimeOfDaySpeeds | None = None, idle_van: bool = True, n: int = 2
) -> tuple[Dispatcher, list[Ride]]:
    """Two rides booked on the zone's only van, near its depot; the van's GPS then jumps to the
    far end of the zone (it was not where the dispatcher thought), so its pick-ups are late; a
    second van comes on shift idle at the first van's depot, next to the rides."""
    d, van, by_distance = _one_vehicle(11, 300, speeds=speeds)
    rides = []
    for k in range(n):
        r = _request(d, by_distance[k], by_distance[3 + k], NOW + 60 + 60 * k, f"r{k}")
        assert isinstance(r, Ride) and r.vehicle_id == van.vehicle_id
        rides.append(r)
    far = by_distance[-1]
    d.update_position(van.vehicle_id, float(far[0]), float(far[1]), NOW)
    if idle_van:
        depot = van.depot
        d.add_vehicle(
            Vehicle(
                "van-1", VAN, depot, NOW - 600, NOW + 6 * 3600, depot, NOW - 600, zone_id="muroran"
            )
        )
    return d, rides


def _etas(rides: list[Ride]) -> dict[str, tuple[float, float]]:
    return {r.ride_id: (r.eta_pickup, r.eta_dropoff) for r in rides}


def _assert_no_later(r: Ride, before: dict[str, tuple[float, float]]) -> None:
    """Neither of ``r``'s ETAs is later than its promise or than it was (``before``)."""
    assert r.eta_pickup <= max(r.pickup_window[1], before[r.ride_id][0]) + 1e-6
    assert r.eta_dropoff <= max(r.latest_arrival, before[r.ride_id][1]) + 1e-6


@pytest.mark.parametrize("solver", ["alns", "ortools"])
def test_late_rides_move_to_an_idle_vehicle(solver: str) -> None:
    d, rides = _late_van_and_an_idle_one()
    before = _etas(rides)
    windows = _promises(rides)
    late = [r for r in rides if r.eta_pickup > r.pickup_window[1]]
    assert late, "the scenario must start with a late pick-up"
    assert plan_violations(d, NOW) != []
    with capture_logs() as logs:
        applied = reoptimise_zone(
            d, "muroran", NOW, time_limit_s=2.0, solver=solver, iterations=200
        )
    assert applied == 2  # the late van's plan and the idle van's
    assert any(e["event"] == "reoptimising_late_plans" for e in logs)
    for r in late:
        assert r.vehicle_id == "van-1"
        assert r.eta_pickup < before[r.ride_id][0] - 60.0  # the late ride's ETA improves
    for r in rides:  # nothing gets later than its promise or than it was
        _assert_no_later(r, before)
    assert _promises(rides) == windows  # promises unchanged
    _assert_each_held_by_its_vehicle(d, rides)
    # Here the idle van is right there: every promise is kept again.
    assert plan_violations(d, NOW) == []


def test_late_rides_move_also_through_speed_periods() -> None:
    d, rides = _late_van_and_an_idle_one(speeds=parse_speed_windows("07:00-12:00=0.7"))
    before = _etas(rides)
    assert plan_violations(d, NOW) != []
    assert reoptimise_zone(d, "muroran", NOW, solver="alns", iterations=200) == 2
    assert all(r.vehicle_id == "van-1" for r in rides)
    for r in rides:
        assert r.eta_pickup <= max(r.pickup_window[1], before[r.ride_id][0]) + 1e-6
    assert plan_violations(d, NOW) == []


def test_a_late_zone_with_nowhere_better_gets_no_later() -> None:
    """The late van alone: whatever the pass does, no stop ends later than in force."""
    d, rides = _late_van_and_an_idle_one(idle_van=False)
    before = _etas(rides)
    reoptimise_zone(d, "muroran", NOW, solver="alns", iterations=200)
    for r in rides:
        assert r.vehicle_id == "muroran-v0"
        _assert_no_later(r, before)


def test_relaxed_check_allows_the_lateness_in_force_and_nothing_worse() -> None:
    from dispatch.reoptimize import _feasible_relaxed, in_force_excess

    d, _ = _late_van_and_an_idle_one(idle_van=False)
    van = d.vehicle("muroran-v0")
    excess = in_force_excess(d, "muroran", NOW)
    late_stops = [s for s in van.plan if id(s) in excess.latest]
    assert late_stops and all(excess.latest[id(s)] > s.latest for s in late_stops)
    assert not d.feasible_plan(van, van.plan, NOW)  # the strict check refuses the plan in force
    assert _feasible_relaxed(d, van, van.plan, NOW, excess)  # not for lateness it has already
    # Serving r1 first makes r0's (late) pick-up later still: refused.
    by_ride = {(s.ride_id, s.kind.value): s for s in van.plan}
    worse = [by_ride[("r1", k)] for k in ("pickup", "dropoff")] + [
        by_ride[("r0", k)] for k in ("pickup", "dropoff")
    ]
    assert id(by_ride[("r0", "pickup")]) in excess.latest
    assert not _feasible_relaxed(d, van, worse, NOW, excess)


def test_dispatcher_defers_to_a_check_that_drove_the_speed_periods() -> None:
    """With speed periods the dispatcher re-checks each plan strictly, which refuses a plan in
    force that is late already; ``checks_speed_periods`` leaves the last word to ``accept``."""
    from dispatch.reoptimize import _feasible_relaxed, in_force_excess

    d, _ = _late_van_and_an_idle_one(parse_speed_windows("07:00-12:00=0.7"), idle_van=False)
    van = d.vehicle("muroran-v0")
    zs = d.zone_state("muroran")
    excess = in_force_excess(d, "muroran", NOW)

    def accept(dd: Dispatcher, v: Vehicle, plan: list[Stop], t: float) -> bool:
        return _feasible_relaxed(dd, v, plan, t, excess)

    plan = list(van.plan)
    version = {van.vehicle_id: zs.versions[van.vehicle_id]}
    assert d.replace_plans("muroran", {van.vehicle_id: plan}, version, NOW, accept) == 0
    assert (
        d.replace_plans(
            "muroran", {van.vehicle_id: plan}, version, NOW, accept, checks_speed_periods=True
        )
        == 1
    )


def test_an_onboard_ride_over_its_ride_time_stays_and_gets_no_longer() -> None:
    """r0 boards, then the van's GPS jumps far away: r0's ride time is broken (onboard, it
    cannot move); other rides move to the idle van; r0's drop-off gets no later."""
    from dispatch.reoptimize import in_force_excess

    d, rides = _late_van_and_an_idle_one(idle_van=False, n=3)
    r0 = rides[0]
    t = NOW + 60
    d.update_position("muroran-v0", *r0.request.origin, t)
    d.arrived("muroran-v0", "r0", t)
    d.boarded("muroran-v0", "r0", t)
    zone_pts = ServiceZone.from_geojson("muroran", MURORAN_ZONE).random_points(
        np.random.default_rng(11), 300
    )
    far_pt = zone_pts[np.argmax(np.hypot(*(zone_pts - np.array(r0.request.origin)).T))]
    far = (float(far_pt[0]), float(far_pt[1]))
    d.update_position("muroran-v0", *far, t)
    depot = d.vehicle("muroran-v0").depot
    d.add_vehicle(
        Vehicle("van-1", VAN, depot, NOW - 600, NOW + 6 * 3600, depot, NOW - 600, zone_id="muroran")
    )
    excess = in_force_excess(d, "muroran", t)
    assert "r0" in excess.max_ride  # the premise: r0's ride time is broken in force
    before = _etas(rides)
    assert reoptimise_zone(d, "muroran", t, solver="alns", iterations=200) == 2
    assert r0.vehicle_id == "muroran-v0"  # onboard: pinned to its van
    assert r0.eta_dropoff <= before["r0"][1] + 1e-6
    assert any(r.vehicle_id == "van-1" for r in rides)
    for r in rides[1:]:
        _assert_no_later(r, before)


def test_a_return_after_the_shift_is_relaxed_too() -> None:
    from dispatch.reoptimize import _feasible_relaxed, in_force_excess

    d, _ = _late_van_and_an_idle_one(idle_van=False)
    van = d.vehicle("muroran-v0")
    van.shift_end = NOW + 900.0  # the shift was cut short after booking
    excess = in_force_excess(d, "muroran", NOW)
    assert excess.shift_end[van.vehicle_id] > van.shift_end
    assert not d.feasible_plan(van, van.plan, NOW)
    assert _feasible_relaxed(d, van, van.plan, NOW, excess)
    tighter = excess.merged(excess)
    tighter.shift_end[van.vehicle_id] = van.shift_end
    assert not _feasible_relaxed(d, van, van.plan, NOW, tighter)


def test_a_large_zone_is_reoptimised_on_its_near_term() -> None:
    """Over ``max_stops`` planned stops, each plan is cut where its vehicle is empty: the
    problem holds whole rides only, the rest of each plan stays as it is, and a replacement
    keeps every ride on one vehicle and every promise."""
    d, rides = _booked(5, n=30)
    promises = _promises(rides)
    total = sum(len(v.plan) for v in d.vehicles())
    zp = build_problem(d, "muroran", NOW, max_stops=20)
    assert zp is not None and zp.suffix
    in_problem = [zp.node_stop[n] for route in zp.current for n in route]
    assert len(in_problem) + sum(len(s) for s in zp.suffix.values()) == total
    assert len(in_problem) < total
    ids = [s.ride_id for s in in_problem]
    assert all(ids.count(r) == 2 for r in ids)  # pick-up and drop-off together
    for v in zp.vehicles:  # the cut plan is a prefix; the suffix is the plan's own tail
        tail = zp.suffix.get(v.vehicle_id, [])
        assert v.plan[len(v.plan) - len(tail) :] == tail
    before = _driving(d)
    reoptimise_zone(d, "muroran", NOW, solver="alns", iterations=300, max_stops=20)
    assert _driving(d) <= before + 1e-6
    assert _promises(rides) == promises
    _assert_each_held_by_its_vehicle(d, rides)
    assert plan_violations(d, NOW) == []


_MEMORY_SCRIPT = """
import os, sys, threading, time
import numpy as np
from dispatch.reoptimize import reoptimise_zone
from dispatch.request import RideRequest
from dispatch.rides import Ride
from dispatch.simulation.scenario import MURORAN_ZONE, build_dispatcher
from dispatch.zone import ServiceZone

NOW, BOUND_MB = 8 * 3600.0, float(sys.argv[1])

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

zone = ServiceZone.from_geojson("muroran", MURORAN_ZONE)
pts = zone.random_points(np.random.default_rng(3), 1400)

def loaded(n):
    d = build_dispatcher([zone], 20, (NOW - 600, NOW + 16 * 3600), 3)
    booked = sum(
        isinstance(d.request_ride(RideRequest(
            origin=tuple(map(float, pts[2 * k])), destination=tuple(map(float, pts[2 * k + 1])),
            requested_at=NOW, earliest_pickup=NOW + 300 + 60 * k, request_id=f"r{k}", user_id="u",
        ), now=NOW), Ride)
        for k in range(n)
    )
    return d, booked

# Compile the solver's numba kernels first (a fresh clone has no cache: LLVM takes hundreds of
# MB once, whatever the zone's size; that is not what this bounds).
reoptimise_zone(loaded(20)[0], "muroran", NOW, 0.5)
d, booked = loaded(700)
base = rss_mb()
peak = [base]

def watch():  # the old model took 15 GB: stop long before that
    while True:
        peak[0] = max(peak[0], rss_mb())
        if peak[0] - base > 3 * BOUND_MB:
            print(f"booked={booked} increase_mb={peak[0] - base:.0f} (aborted)", flush=True)
            os._exit(3)
        time.sleep(0.02)

threading.Thread(target=watch, daemon=True).start()
for _ in range(2):  # two passes: nothing kept from one to the next
    reoptimise_zone(d, "muroran", NOW, 2.0)
peak[0] = max(peak[0], rss_mb())
print(f"booked={booked} increase_mb={peak[0] - base:.0f}", flush=True)
"""


def test_reoptimising_a_large_zone_stays_within_a_memory_bound() -> None:
    """Issue #10: a zone of 20 vans and ~670 rides took the owner from 354 MB to 7.2 GB
    (OR-Tools cast each "wait only for a window" element to a bitset variable, ~12 MB per
    node). Two passes with the app's time limit, in a fresh process, must stay far below."""
    bound_mb = 500.0
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_MEMORY_SCRIPT), str(bound_mb)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-2000:]
    assert out.returncode == 0, line
    fields = dict(kv.split("=") for kv in line.split())
    assert int(fields["booked"]) >= 600
    assert float(fields["increase_mb"]) < bound_mb, line

"""The numba insertion kernel against the brute-force reference, and each constraint alone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dispatch.insertion import NewRide
from dispatch.insertion_reference import reference_best_insertion, simulate
from dispatch.plan_arrays import FleetArrays
from dispatch.simulation.random_fleet import random_fleet, random_ride
from dispatch.time_dependent import FREE_FLOW_PROFILE, SpeedProfile, compile_speeds
from dispatch.travel_times import StraightLineTravelTimes
from dispatch.vehicle import VAN, Onboard, Stop, StopKind, Vehicle
from routing.street import TimeOfDaySpeeds

NOW = 8 * 3600.0
TRAVEL = StraightLineTravelTimes(1.3)
#: Speed periods for the equivalence tests: free flow; a slow period NOW falls in (legs cross
#: its end at 08:20); short periods every leg keeps crossing; a peak in another zone (UTC+9).
PROFILES: dict[str, SpeedProfile] = {
    "free_flow": FREE_FLOW_PROFILE,
    "peak": compile_speeds(TimeOfDaySpeeds(((7 * 3600, 8 * 3600 + 1200, 0.8),))),
    "choppy": compile_speeds(
        TimeOfDaySpeeds(
            tuple(
                (8 * 3600 + k * 600, 8 * 3600 + k * 600 + 300, 0.4 + 0.1 * (k % 5))
                for k in range(18)
            )
        )
    ),
    "utc_plus_9": compile_speeds(
        TimeOfDaySpeeds(((17 * 3600, 17 * 3600 + 1800, 0.8),)), 9 * 3600.0
    ),
}


@pytest.mark.parametrize("profile_name", sorted(PROFILES))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_insertion_matches_brute_force_on_random_plans(seed: int, profile_name: str) -> None:
    profile = PROFILES[profile_name]
    rng = np.random.default_rng(seed)
    vehicles, travel = random_fleet(rng, 12, profile=profile)
    fa = FleetArrays(travel, profile)
    found = 0
    for _ in range(90):
        ride = random_ride(rng, NOW, travel)
        fast = fa.best_insertion(vehicles, ride, NOW)
        ref = reference_best_insertion(vehicles, ride, NOW, travel, profile)
        assert (fast is None) == (ref is None)
        if fast is None or ref is None:
            continue
        found += 1
        assert fast.cost_s == pytest.approx(ref.cost_s, abs=1e-6)
        assert fast.pickup_s == pytest.approx(ref.pickup_s, abs=1e-6)
        assert fast.dropoff_s == pytest.approx(ref.dropoff_s, abs=1e-6)
        # The fast answer is itself feasible when replayed by the reference simulator.
        v = vehicles[fast.vehicle_index]
        from dispatch.insertion_reference import new_stops

        p, d = new_stops(ride)
        i, j = fast.pickup_pos, fast.dropoff_pos
        plan = [*v.plan[:i], p, *v.plan[i:j], d, *v.plan[j:]]
        assert simulate(v, plan, NOW, travel, profile=profile) is not None
    assert found > 10  # the test exercises real insertions, not only rejections


def _van(plan: list[Stop] | None = None, **kw: Any) -> Vehicle:
    args: dict[str, Any] = {
        "vehicle_id": "van",
        "vtype": VAN,
        "depot": (42.31, 140.97),
        "shift_start": 0.0,
        "shift_end": NOW + 4 * 3600,
        "position": (42.31, 140.97),
        "position_time": NOW,
    }
    args.update(kw)
    v = Vehicle(**args)
    v.plan = plan or []
    return v


def _ride(seats: int = 1, wheelchairs: int = 0, max_ride: float = 3600.0) -> NewRide:
    return NewRide(
        pickup=(42.315, 140.975),
        dropoff=(42.325, 140.985),
        earliest_pickup=NOW,
        latest_pickup=NOW + 1200,
        latest_dropoff=NOW + 4800,
        seats=seats,
        wheelchairs=wheelchairs,
        max_ride_s=max_ride,
    )


def _both(  # type: ignore[no-untyped-def]
    vs: list[Vehicle], ride: NewRide, profile: SpeedProfile = FREE_FLOW_PROFILE
):
    fast = FleetArrays(TRAVEL, profile).best_insertion(vs, ride, NOW)
    ref = reference_best_insertion(vs, ride, NOW, TRAVEL, profile)
    assert (fast is None) == (ref is None)
    if fast is not None and ref is not None:
        assert (fast.vehicle_index, fast.pickup_s, fast.dropoff_s) == pytest.approx(
            (ref.vehicle_index, ref.pickup_s, ref.dropoff_s), abs=1e-6
        )
    return fast


def test_empty_vehicle_takes_ride_directly() -> None:
    ins = _both([_van()], _ride())
    assert ins is not None and (ins.pickup_pos, ins.dropoff_pos) == (0, 0)
    direct = float(TRAVEL.matrix([_ride().pickup], [_ride().dropoff], VAN.speed_kmh)[0, 0])
    assert ins.dropoff_s - ins.pickup_s == pytest.approx(direct + 30.0)


def test_wheelchair_dimension_is_separate_from_seats() -> None:
    # A van with one wheelchair place already taken by an onboard rider going far.
    far = Stop("w1", StopKind.DROPOFF, 42.335, 140.96, 0, NOW + 9000, 0, 1, 30, 9000)
    v = _van([far])
    v.onboard["w1"] = Onboard("w1", 0, 1, NOW)
    assert _both([v], _ride(seats=0, wheelchairs=1)) is not None  # after the drop-off only
    ins = _both([v], _ride(seats=0, wheelchairs=1))
    assert ins is not None and ins.pickup_pos == 1
    # Seats are still free: a seated rider can be inserted before the drop-off.
    ins2 = _both([v], _ride(seats=3))
    assert ins2 is not None and ins2.pickup_pos == 0
    assert _both([v], _ride(seats=9)) is None  # over the seat capacity of a van


def test_onboard_ride_time_limit_blocks_detours() -> None:
    # Onboard rider picked up at NOW with a limit that leaves 60 s of slack to their drop-off.
    drop = Stop("o1", StopKind.DROPOFF, 42.33, 140.95, 0, NOW + 9000, 1, 0, 30, 0.0)
    v = _van([drop])
    leg = float(TRAVEL.matrix([v.position], [drop.latlon], VAN.speed_kmh)[0, 0])
    drop.max_ride_s = leg + 60.0
    v.onboard["o1"] = Onboard("o1", 1, 0, NOW)
    ins = _both([v], _ride())
    assert ins is not None and ins.pickup_pos == 1  # the detour before the drop-off is refused
    drop.max_ride_s = leg + 3600.0
    ins = FleetArrays(TRAVEL).best_insertion([v], _ride(), NOW)
    assert ins is not None and ins.pickup_pos == 0


def test_shift_end_with_return_to_depot() -> None:
    v = _van(shift_end=NOW + 400)
    assert _both([v], _ride()) is None
    assert _both([_van(shift_end=NOW + 3 * 3600)], _ride()) is not None


def test_promised_window_of_booked_rider_is_kept() -> None:
    # A booked pick-up right after now with a tight window: the new ride must go after it.
    p = Stop("b1", StopKind.PICKUP, 42.305, 140.965, NOW + 100, NOW + 200, 1, 0, 30, 3600)
    d = Stop("b1", StopKind.DROPOFF, 42.29, 140.94, NOW + 100, NOW + 9000, 1, 0, 30, 3600)
    v = _van([p, d])
    ins = _both([v], _ride())
    assert ins is not None and ins.pickup_pos >= 1


def test_a_peak_slows_the_ride_and_the_plan_in_force() -> None:
    direct = float(TRAVEL.matrix([_ride().pickup], [_ride().dropoff], VAN.speed_kmh)[0, 0])
    slow = compile_speeds(TimeOfDaySpeeds(((0, 86_400, 0.5),)))
    ins = _both([_van()], _ride(), slow)
    assert ins is not None
    assert ins.dropoff_s - ins.pickup_s == pytest.approx(2 * direct + 30.0)
    # The peak starts during the ride: the part after NOW + 60 s is driven at half speed.
    onset = compile_speeds(TimeOfDaySpeeds(((int(NOW) + 60, int(NOW) + 3 * 3600, 0.5),)))
    ins = _both([_van()], _ride(), onset)
    assert ins is not None
    expected = onset.arrive(ins.pickup_s + 30.0, direct)
    assert ins.dropoff_s == pytest.approx(expected)
    assert ins.dropoff_s - ins.pickup_s > direct + 30.0
    # A plan that holds in free flow but is late in the peak takes no new ride.
    p = Stop("b1", StopKind.PICKUP, 42.305, 140.965, NOW, NOW + 1, 1, 0, 30, 3600)
    v = _van([p])
    leg = float(TRAVEL.matrix([v.position], [p.latlon], VAN.speed_kmh)[0, 0])
    p.latest = NOW + leg
    assert _both([v], _ride()) is not None
    assert _both([v], _ride(), slow) is None


def test_shift_end_counts_the_slow_way_home() -> None:
    home = float(TRAVEL.matrix([_ride().dropoff], [_van().depot], VAN.speed_kmh)[0, 0])
    direct = float(TRAVEL.matrix([_ride().pickup], [_ride().dropoff], VAN.speed_kmh)[0, 0])
    to_p = float(TRAVEL.matrix([_van().position], [_ride().pickup], VAN.speed_kmh)[0, 0])
    need = to_p + 30.0 + direct + 30.0 + home
    slow = compile_speeds(TimeOfDaySpeeds(((0, 86_400, 0.5),)))
    v = _van(shift_end=NOW + need + 10.0)
    assert _both([v], _ride()) is not None
    assert _both([v], _ride(), slow) is None
    assert _both([_van(shift_end=NOW + 2 * need)], _ride(), slow) is not None


@pytest.mark.parametrize("profile_name", ["free_flow", "choppy"])
@pytest.mark.parametrize("seed", [4, 5])
def test_pruned_quotes_equal_unpruned_as_vehicles_move(seed: int, profile_name: str) -> None:
    """Spatial pruning leaves out only vehicles that could not take the ride: the pruned
    answer is the unpruned one, and the slots patched after position reports (only the first
    leg and the way home driven again) give what arrays built afresh give."""
    profile = PROFILES[profile_name]
    rng = np.random.default_rng(seed)
    vehicles, travel = random_fleet(rng, 40, profile=profile)
    for v in vehicles[::4]:
        v.shift_end = NOW + float(rng.uniform(600, 3600))  # some shifts end soon
    pruned = FleetArrays(travel, profile)
    unpruned = FleetArrays(travel, profile)
    unpruned.prune = False
    left_out = 0
    for k in range(120):
        now = NOW + 10.0 * k
        # Some vehicles report a position part-way to their next stop.
        for idx in rng.choice(len(vehicles), 5, replace=False):
            v = vehicles[int(idx)]
            if v.plan:
                f = float(rng.uniform(0.0, 0.3))
                p = v.plan[0]
                v.position = (
                    v.position[0] + f * (p.lat - v.position[0]),
                    v.position[1] + f * (p.lon - v.position[1]),
                )
                v.position_time = now
                pruned.invalidate(v.vehicle_id)
                unpruned.invalidate(v.vehicle_id)
        ride = random_ride(rng, now, travel)
        if k % 2:  # an urgent ride: its window rules far vehicles out
            ride = NewRide(
                ride.pickup,
                ride.dropoff,
                now,
                now + 300.0,
                ride.latest_dropoff - ride.earliest_pickup + now,
                ride.seats,
                ride.wheelchairs,
                ride.max_ride_s,
            )
        a = pruned.best_insertion(vehicles, ride, now)
        b = unpruned.best_insertion(vehicles, ride, now)
        c = FleetArrays(travel, profile).best_insertion(vehicles, ride, now)
        assert a == b
        assert (a is None) == (c is None)
        if a is not None and c is not None:
            assert (a.vehicle_index, a.pickup_pos, a.dropoff_pos) == (
                c.vehicle_index,
                c.pickup_pos,
                c.dropoff_pos,
            )
            assert a.cost_s == pytest.approx(c.cost_s, abs=1e-6)
            assert a.pickup_s == pytest.approx(c.pickup_s, abs=1e-6)
        assert unpruned.last_candidates >= pruned.last_candidates
        left_out += unpruned.last_candidates - pruned.last_candidates
    assert left_out > 0  # the pruning did leave vehicles out


def test_a_changed_plan_is_never_taken_for_a_position_report() -> None:
    rng = np.random.default_rng(9)
    vehicles, travel = random_fleet(rng, 3)
    fa = FleetArrays(travel)
    v = next(w for w in vehicles if w.plan)
    before = fa.arrays(v)
    v.plan[-1].latest -= 60.0  # a stop changed in place, behind the cache's back
    fa.invalidate(v.vehicle_id)
    after = fa.arrays(v)
    assert (
        after.late[-1] == pytest.approx(before.late[-1] - 60.0) or after.late[-1] < before.late[-1]
    )
    v.position = (v.position[0] + 1e-3, v.position[1])
    fa.invalidate(v.vehicle_id)
    moved = fa.arrays(v)
    fresh = FleetArrays(travel).arrays(v)
    assert moved.leg == pytest.approx(fresh.leg) and moved.pos_depot == pytest.approx(
        fresh.pos_depot
    )
    assert moved.late == pytest.approx(fresh.late)


@pytest.mark.parametrize("profile_name", ["free_flow", "peak"])
@pytest.mark.parametrize("seed", [11, 12, 13])
def test_best_first_quote_is_the_full_quote_and_skips_vehicles(
    seed: int, profile_name: str
) -> None:
    """Best-first evaluation (vehicles by a lower bound on their cost, stopped once no bound
    can beat the best found) answers what evaluating every vehicle answers: same vehicle,
    positions, cost and times, over random fleets and rides with wide windows (the reach
    pruning leaves nearly every vehicle in). And it does leave vehicles unevaluated."""
    profile = PROFILES[profile_name]
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 60))
    vehicles, travel = random_fleet(rng, n, stops_range=(0, 8), profile=profile)
    pruned = FleetArrays(travel, profile)
    unpruned = FleetArrays(travel, profile)
    unpruned.prune = False
    skipped = found = 0
    for k in range(80):
        now = NOW + 5.0 * k
        ride = random_ride(rng, now, travel)
        a = pruned.best_insertion(vehicles, ride, now)
        b = unpruned.best_insertion(vehicles, ride, now)
        assert a == b  # same vehicle, positions, cost and times, to the bit
        assert pruned.last_candidates <= pruned.last_reachable
        assert unpruned.last_candidates == unpruned.last_reachable
        skipped += pruned.last_reachable - pruned.last_candidates
        found += a is not None
    assert found > 20
    assert skipped > 0


def test_lower_bound_never_exceeds_a_vehicle_best_cost() -> None:
    """The bound of each vehicle is at most the kernel's best insertion into that vehicle
    alone (the property the best-first stop rests on), and equals it for an idle vehicle."""
    rng = np.random.default_rng(21)
    vehicles, travel = random_fleet(rng, 30, stops_range=(0, 8))
    vehicles.append(_van())  # idle: its only insertion is position -> P -> D
    checked = 0
    for _ in range(40):
        ride = random_ride(rng, NOW, travel)
        for v in vehicles:
            alone = FleetArrays(travel)
            alone.prune = False
            ins = alone.best_insertion([v], ride, NOW)
            if ins is None:
                continue
            one = FleetArrays(travel)
            one.best_insertion([v], ride, NOW)
            lb = one.last_bounds[0]
            assert lb <= ins.cost_s + 1e-6
            assert one.last_box_bounds[0] <= ins.cost_s + 1e-6
            if not v.plan:
                assert lb == pytest.approx(ins.cost_s, abs=1e-6)
            checked += 1
    assert checked > 100


@pytest.mark.parametrize("seed", [31, 32])
def test_compiled_reach_screen_is_the_matrix_one(seed: int) -> None:
    """The reach screen compiled into the box bounds (lower bounds on the distances) keeps
    every vehicle the travel-time model's own matrices keep, and leaves out nearly all they
    leave out."""
    rng = np.random.default_rng(seed)
    vehicles, travel = random_fleet(rng, 60, stops_range=(0, 8))
    for v in vehicles[::3]:
        v.shift_end = NOW + float(rng.uniform(600, 3600))
    fa = FleetArrays(travel, PROFILES["peak"])
    left_out = extra = 0
    for _ in range(60):
        ride = random_ride(rng, NOW, travel)
        fa.best_insertion(vehicles, ride, NOW)  # fills the slots and the bounds
        sl = fa._slots
        assert sl is not None
        v_start = np.maximum(sl.ready, NOW)
        ok = (sl.shift_end > NOW) & (sl.cap_s >= ride.seats) & (sl.cap_w >= ride.wheelchairs)
        compiled = fa._candidates(sl, ride, v_start, sl.shift_end > NOW)
        reference = fa._reachable(sl, ride, v_start, ok.copy())
        assert set(reference.tolist()) <= set(compiled.tolist())
        extra += len(compiled) - len(reference)
        left_out += int(ok.sum()) - len(compiled)
    assert left_out > 0
    assert extra <= 0.01 * left_out

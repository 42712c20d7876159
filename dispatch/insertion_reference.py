"""Brute-force insertion in plain Python: the reference the numba kernel is tested against.

Every pair of positions is tried by building the new plan and simulating it from scratch, with
every constraint checked on every stop. Slow on purpose (it is also the bench baseline). Legs
are driven through the zone's speed periods (:class:`~dispatch.time_dependent.SpeedProfile`,
free flow by default), as in the kernel.
"""

from __future__ import annotations

from dispatch.insertion import BASE_TOL, Insertion, NewRide
from dispatch.time_dependent import FREE_FLOW_PROFILE, SpeedProfile
from dispatch.travel_times import TravelTimes
from dispatch.vehicle import Stop, StopKind, Vehicle

_EPS = 1e-6


def _tt(travel: TravelTimes, a: tuple[float, float], b: tuple[float, float], speed: float) -> float:
    return float(travel.matrix([a], [b], speed)[0, 0])


def simulate(
    v: Vehicle,
    plan: list[Stop],
    now: float,
    travel: TravelTimes,
    tol: float = _EPS,
    profile: SpeedProfile = FREE_FLOW_PROFILE,
) -> tuple[list[float], float] | None:
    """Service start times of ``plan`` and its free-flow driving time, or None if any
    constraint breaks; legs are driven through the speed periods of ``profile``."""
    speed = v.vtype.speed_kmh
    t = max(now, v.position_time, v.shift_start)
    if now >= v.shift_end:
        return None
    here = v.position
    seats = v.seats_onboard
    wc = v.wheelchairs_onboard
    if seats > v.vtype.seats or wc > v.vtype.wheelchair_spaces:
        return None
    picked: dict[str, float] = {r: o.picked_up_at for r, o in v.onboard.items()}
    times: list[float] = []
    drive = 0.0
    for s in plan:
        leg = _tt(travel, here, s.latlon, speed)
        drive += leg
        b = max(profile.arrive(t, leg), s.earliest)
        if b > s.latest + tol:
            return None
        if s.kind is StopKind.PICKUP:
            picked[s.ride_id] = b
            seats += s.seats
            wc += s.wheelchairs
        else:
            if s.ride_id not in picked:
                return None  # drop-off before its pick-up
            if b - picked[s.ride_id] > s.max_ride_s + tol:
                return None
            seats -= s.seats
            wc -= s.wheelchairs
        if seats > v.vtype.seats or wc > v.vtype.wheelchair_spaces:
            return None
        times.append(b)
        t = b + s.service_s
        here = s.latlon
    if profile.arrive(t, _tt(travel, here, v.depot, speed)) > v.shift_end + tol:
        return None
    return times, drive


def new_stops(ride: NewRide, ride_id: str = "__new__") -> tuple[Stop, Stop]:
    """The pick-up and drop-off stops of ``ride`` with the windows searched."""
    p = Stop(
        ride_id,
        StopKind.PICKUP,
        ride.pickup[0],
        ride.pickup[1],
        ride.earliest_pickup,
        ride.latest_pickup,
        ride.seats,
        ride.wheelchairs,
        ride.service_pickup_s,
        ride.max_ride_s,
    )
    d = Stop(
        ride_id,
        StopKind.DROPOFF,
        ride.dropoff[0],
        ride.dropoff[1],
        float("-inf"),
        ride.latest_dropoff,
        ride.seats,
        ride.wheelchairs,
        ride.service_dropoff_s,
        ride.max_ride_s,
    )
    return p, d


def reference_best_insertion(
    vehicles: list[Vehicle],
    ride: NewRide,
    now: float,
    travel: TravelTimes,
    profile: SpeedProfile = FREE_FLOW_PROFILE,
) -> Insertion | None:
    """Least added driving time, then earliest pick-up, over every vehicle and position pair."""
    p, d = new_stops(ride)
    best: Insertion | None = None
    for vi, v in enumerate(vehicles):
        base = simulate(v, v.plan, now, travel, BASE_TOL, profile)
        if base is None:
            continue
        n = len(v.plan)
        for i in range(n + 1):
            for j in range(i, n + 1):
                plan = [*v.plan[:i], p, *v.plan[i:j], d, *v.plan[j:]]
                res = simulate(v, plan, now, travel, profile=profile)
                if res is None:
                    continue
                times, drive = res
                cost = drive - base[1]
                tp = times[i]
                if (
                    best is None
                    or cost < best.cost_s - _EPS
                    or (abs(cost - best.cost_s) <= _EPS and tp < best.pickup_s - _EPS)
                ):
                    best = Insertion(vi, i, j, cost, tp, times[j + 1])
    return best

"""Random fleets whose plans are built by feasible insertions (insertion tests, bench.quote)."""

from __future__ import annotations

import numpy as np

from dispatch.insertion import NewRide
from dispatch.insertion_reference import new_stops, simulate
from dispatch.plan_arrays import FleetArrays
from dispatch.time_dependent import FREE_FLOW_PROFILE, SpeedProfile
from dispatch.travel_times import StraightLineTravelTimes
from dispatch.vehicle import CAR, SHUTTLE, VAN, Onboard, StopKind, Vehicle

CENTER = (42.3149, 140.9737)  # Muroran


def random_point(rng: np.random.Generator, radius_deg: float = 0.03) -> tuple[float, float]:
    return (
        CENTER[0] + float(rng.uniform(-radius_deg, radius_deg)),
        CENTER[1] + float(rng.uniform(-radius_deg, radius_deg)) * 1.3,
    )


def random_ride(rng: np.random.Generator, now: float, travel: StraightLineTravelTimes) -> NewRide:
    o = random_point(rng)
    d = random_point(rng)
    direct = float(travel.matrix([o], [d], 25.0)[0, 0])
    e = now + float(rng.uniform(0, 1800))
    wc = int(rng.random() < 0.15)
    return NewRide(
        pickup=o,
        dropoff=d,
        earliest_pickup=e,
        latest_pickup=e + 900,
        latest_dropoff=e + 900 + 2.0 * direct + 600,
        seats=int(rng.integers(1, 4)),
        wheelchairs=wc,
        max_ride_s=1.5 * direct + 300,
    )


def random_fleet(
    rng: np.random.Generator,
    n_vehicles: int,
    stops_range: tuple[int, int] = (4, 8),
    now: float = 8 * 3600.0,
    onboard: bool = True,
    profile: SpeedProfile = FREE_FLOW_PROFILE,
) -> tuple[list[Vehicle], StraightLineTravelTimes]:
    """Vehicles whose plans hold ``stops_range`` stops, built by feasible insertions (driven
    through the speed periods of ``profile``)."""
    travel = StraightLineTravelTimes(1.3)
    types = [CAR, VAN, SHUTTLE]
    vehicles = []
    for k in range(n_vehicles):
        depot = random_point(rng)
        v = Vehicle(
            vehicle_id=f"v{k}",
            vtype=types[k % 3],
            depot=depot,
            shift_start=now - 3600,
            shift_end=now + float(rng.uniform(2, 6)) * 3600,
            position=random_point(rng),
            position_time=now,
        )
        target = int(rng.integers(stops_range[0], stops_range[1] + 1))
        fa = FleetArrays(travel, profile)
        tries = 0
        while len(v.plan) < target and tries < 60:
            tries += 1
            ride = random_ride(rng, now, travel)
            ins = fa.best_insertion([v], ride, now)
            if ins is None:
                continue
            p, d = new_stops(ride, ride_id=f"r{k}_{tries}")
            p.earliest = ins.pickup_s
            p.latest = ins.pickup_s + 600
            plan = [*v.plan[: ins.pickup_pos], p, *v.plan[ins.pickup_pos : ins.dropoff_pos]]
            plan += [d, *v.plan[ins.dropoff_pos :]]
            if len(plan) > stops_range[1]:
                continue
            v.plan = plan
            fa.invalidate(v.vehicle_id)
        if onboard and v.plan and v.plan[0].kind is StopKind.PICKUP and rng.random() < 0.5:
            # Serve the first pick-up: the group is now onboard, the vehicle stands there.
            res = simulate(v, v.plan, now, travel, profile=profile)
            assert res is not None
            s = v.plan.pop(0)
            v.onboard[s.ride_id] = Onboard(s.ride_id, s.seats, s.wheelchairs, res[0][0])
            v.position = s.latlon
            v.position_time = res[0][0] + s.service_s
        vehicles.append(v)
    return vehicles, travel

"""What must hold at every simulated step, checked against the dispatcher's live state.

* every promised window holds (for the plan in force and for every stop served);
* no capacity dimension is exceeded at any point of any plan;
* every passenger's ride-time limit holds (onboard and booked);
* vehicle hours: every vehicle is back at its depot by the end of its shift (the forecast
  return after its last planned stop, driven through the zone's speed periods);
* no request is lost or assigned twice.
"""

from __future__ import annotations

from collections import Counter

from dispatch.dispatcher import Dispatcher
from dispatch.rides import RideStatus
from dispatch.vehicle import StopKind, Vehicle

TOL = 1.0  # seconds: positions reported mid-leg make legs jitter by milliseconds


#: Planned stops a ride has in all plans, by its status: none once it is finished.
_WANT_STOPS = {
    RideStatus.ASSIGNED: {"pickup": 1, "dropoff": 1},
    RideStatus.ONBOARD: {"pickup": 0, "dropoff": 1},
}
_NO_STOPS = {"pickup": 0, "dropoff": 0}


def plan_violations(d: Dispatcher, now: float) -> list[str]:
    """Violations in the plans in force (their forecast schedules).

    Linear in vehicles, planned stops and rides, so a city's day can be checked at every step:
    who holds each ride onboard is gathered in one pass over the vehicles, and finished rides
    (most of a day's) are only looked at when a plan still has a stop of theirs.
    """
    out: list[str] = []
    seen: Counter[tuple[str, str]] = Counter()
    holders: dict[str, list[str]] = {}
    vehicles = d.vehicles()
    for v in vehicles:
        for rid in v.onboard:
            holders.setdefault(rid, []).append(v.vehicle_id)
        times = d.schedule(v, now)
        seats, wc = v.seats_onboard, v.wheelchairs_onboard
        picked = {r: o.picked_up_at for r, o in v.onboard.items()}
        if seats > v.vtype.seats or wc > v.vtype.wheelchair_spaces:
            out.append(f"{v.vehicle_id}: over capacity onboard")
        for s, b in zip(v.plan, times, strict=True):
            seen[(s.ride_id, s.kind.value)] += 1
            if b > s.latest + TOL:
                out.append(f"{v.vehicle_id}: {s.kind} of {s.ride_id} at {b:.0f} > {s.latest:.0f}")
            sign = 1 if s.kind is StopKind.PICKUP else -1
            seats += sign * s.seats
            wc += sign * s.wheelchairs
            if seats > v.vtype.seats or wc > v.vtype.wheelchair_spaces:
                out.append(f"{v.vehicle_id}: over capacity after {s.kind} of {s.ride_id}")
            if s.kind is StopKind.PICKUP:
                picked[s.ride_id] = b
            elif s.ride_id not in picked:
                out.append(f"{v.vehicle_id}: drop-off of {s.ride_id} before its pick-up")
            elif b - picked[s.ride_id] > s.max_ride_s + TOL:
                out.append(f"{v.vehicle_id}: ride of {s.ride_id} over its limit")
        if v.plan:
            out += _shift_violations(d, v, float(times[-1]))
    rides = {r.ride_id: r for r in d.rides()}
    # Live rides: exactly their stops; any other ride (finished, or unknown) none at all.
    live = [r for r in rides.values() if r.status in _WANT_STOPS]
    stopped = {rid for rid, _ in seen}
    for rid in sorted(stopped.difference(r.ride_id for r in live)):
        ride = rides.get(rid)
        status = ride.status if ride is not None else "unknown ride"
        for kind, n in _NO_STOPS.items():
            if seen[(rid, kind)] != n:
                out.append(f"ride {rid} ({status}): {seen[(rid, kind)]} {kind} stops")
    for ride in live:
        for kind, n in _WANT_STOPS[ride.status].items():
            if seen[(ride.ride_id, kind)] != n:
                out.append(
                    f"ride {ride.ride_id} ({ride.status}): {seen[(ride.ride_id, kind)]} {kind} stops"
                )
        if ride.status is RideStatus.ONBOARD:
            got = holders.get(ride.ride_id, [])
            if got != [ride.vehicle_id]:
                out.append(f"ride {ride.ride_id} onboard {got}, assigned to {ride.vehicle_id}")
    # A passenger onboard a vehicle is a ride onboard, never one finished or unknown.
    for rid in sorted(holders):
        ride = rides.get(rid)
        if ride is None or ride.status is not RideStatus.ONBOARD:
            status = ride.status if ride is not None else "unknown ride"
            out.append(f"ride {rid} ({status}) still onboard {holders[rid]}")
    return out


def _shift_violations(d: Dispatcher, v: Vehicle, last_start: float) -> list[str]:
    """The vehicle's forecast return to its depot after its last stop, against its shift."""
    last = v.plan[-1]
    home = float(d.travel.matrix([last.latlon], [v.depot], v.vtype.speed_kmh)[0, 0])
    back = d.speed_profile(v.zone_id).arrive(last_start + last.service_s, home)
    if back > v.shift_end + TOL:
        return [f"{v.vehicle_id}: back at its depot at {back:.0f} > shift end {v.shift_end:.0f}"]
    return []


def served_violations(d: Dispatcher) -> list[str]:
    """Violations in what actually happened: pick-ups in their window, arrivals and ride times."""
    out: list[str] = []
    for r in d.rides():
        if r.picked_up_at is not None and not (
            r.pickup_window[0] - TOL <= r.picked_up_at <= r.pickup_window[1] + TOL
        ):
            out.append(f"ride {r.ride_id} picked up at {r.picked_up_at:.0f} outside its window")
        if r.dropped_off_at is not None and r.picked_up_at is not None:
            if r.dropped_off_at > r.latest_arrival + TOL:
                out.append(f"ride {r.ride_id} arrived late")
            if r.dropped_off_at - r.picked_up_at > r.max_ride_s + TOL:
                out.append(f"ride {r.ride_id} rode too long")
    return out

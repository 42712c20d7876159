"""The invariant checkers catch each kind of broken plan (they are what the simulator checks at
every step, so they must be able to fail)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from dispatch.dispatcher import Dispatcher
from dispatch.rides import Ride, RideStatus
from dispatch.simulation.demand import DemandModel, generate_requests
from dispatch.simulation.invariants import plan_violations
from dispatch.simulation.scenario import MURORAN_ZONE, build_dispatcher
from dispatch.simulation.simulator import Simulator, lost_or_duplicated
from dispatch.vehicle import StopKind, Vehicle
from dispatch.zone import ServiceZone
from tests.dispatch.test_reoptimize import NOW, _booked


def _busy(d: Dispatcher) -> Vehicle:
    return max(d.vehicles(), key=lambda v: len(v.plan))


def _touched(d: Dispatcher, v: Vehicle) -> None:
    d.zone_state(v.zone_id).arrays.invalidate(v.vehicle_id)  # the plan changed behind its back


def _late_window(d: Dispatcher, _: list[Ride]) -> str:
    v = _busy(d)
    v.plan[-1].latest = NOW - 3600
    _touched(d, v)
    return "> "


def _over_capacity(d: Dispatcher, _: list[Ride]) -> str:
    v = _busy(d)
    next(s for s in v.plan if s.kind is StopKind.PICKUP).seats = v.vtype.seats + 1
    _touched(d, v)
    return "over capacity"


def _ride_too_long(d: Dispatcher, _: list[Ride]) -> str:
    v = _busy(d)
    next(s for s in v.plan if s.kind is StopKind.DROPOFF).max_ride_s = 1.0
    _touched(d, v)
    return "over its limit"


def _assigned_twice(d: Dispatcher, _: list[Ride]) -> str:
    v = _busy(d)
    other = next(w for w in d.vehicles() if w is not v)
    rid = v.plan[0].ride_id
    other.plan = other.plan + [copy.copy(s) for s in v.plan if s.ride_id == rid]
    _touched(d, other)
    return "2 pickup stops"


def _lost(d: Dispatcher, _: list[Ride]) -> str:
    v = _busy(d)
    rid = v.plan[0].ride_id
    v.plan = [s for s in v.plan if s.ride_id != rid]
    _touched(d, v)
    return "0 pickup stops"


def _after_shift(d: Dispatcher, _: list[Ride]) -> str:
    v = _busy(d)
    v.shift_end = NOW + 60.0  # its plan runs longer: it cannot be back at its depot in time
    return "shift end"


def _boarded(d: Dispatcher) -> tuple[Vehicle, str]:
    """The busiest vehicle after serving its first stop (a pick-up): a ride onboard."""
    v = _busy(d)
    ride = d.serve_next(v.vehicle_id, float(d.schedule(v, NOW)[0]))
    assert ride is not None and ride.ride_id in v.onboard
    return v, ride.ride_id


def _onboard_twice(d: Dispatcher, _: list[Ride]) -> str:
    v, rid = _boarded(d)
    other = next(w for w in d.vehicles() if w is not v)
    other.onboard[rid] = v.onboard[rid]
    both = [w.vehicle_id for w in d.vehicles() if w is v or w is other]  # the fleet's order
    return f"onboard {both}, assigned to {v.vehicle_id}"


def _onboard_in_none(d: Dispatcher, _: list[Ride]) -> str:
    v, rid = _boarded(d)
    del v.onboard[rid]
    return "onboard [],"


def _finished_but_onboard(d: Dispatcher, rides: list[Ride]) -> str:
    _, rid = _boarded(d)
    next(r for r in rides if r.ride_id == rid).status = RideStatus.COMPLETED
    return "(completed) still onboard"


def _stop_of_unknown_ride(d: Dispatcher, _: list[Ride]) -> str:
    v = _busy(d)
    ghost = copy.copy(v.plan[-1])
    ghost.ride_id = "ghost"
    v.plan = [*v.plan, ghost]
    _touched(d, v)
    return "ride ghost (unknown ride): 1 dropoff stops"


def _stop_of_finished_ride(d: Dispatcher, rides: list[Ride]) -> str:
    v = _busy(d)
    next(r for r in rides if r.ride_id == v.plan[-1].ride_id).status = RideStatus.CANCELLED
    return "(cancelled): 1 dropoff stops"


@pytest.mark.parametrize(
    "breaker",
    [
        _late_window,
        _over_capacity,
        _ride_too_long,
        _assigned_twice,
        _lost,
        _after_shift,
        _onboard_twice,
        _onboard_in_none,
        _finished_but_onboard,
        _stop_of_unknown_ride,
        _stop_of_finished_ride,
    ],
)
def test_each_broken_plan_is_reported(breaker: Callable[[Dispatcher, list[Ride]], str]) -> None:
    d, rides = _booked(2)
    assert plan_violations(d, NOW) == []
    want = breaker(d, rides)
    found = plan_violations(d, NOW)
    assert any(want in f for f in found), found


def test_lost_or_booked_twice_requests_are_reported() -> None:
    d, rides = _booked(2)
    reqs = [r.request for r in rides]
    assert lost_or_duplicated(d, reqs, 0) == []
    assert lost_or_duplicated(d, [*reqs, reqs[0]], 0) != []  # one request never answered
    assert lost_or_duplicated(d, reqs, 1) != []  # a phantom rejection


def test_the_simulator_flags_a_step_that_breaks_a_plan() -> None:
    zone = ServiceZone.from_geojson("muroran", MURORAN_ZONE)
    start, end = 8 * 3600.0, 9 * 3600.0
    reqs = generate_requests(zone, DemandModel(rate_per_hour=60), start, end, 3)
    d = build_dispatcher([zone], 3, (start - 600, end + 3 * 3600), 3)
    broken: list[float] = []

    def sabotage(now: float) -> int:
        v = max(d.vehicles(), key=lambda w: len(w.plan))
        if not broken and len(v.plan) >= 2:
            v.plan[-1].latest = now - 3600
            _touched(d, v)
            broken.append(now)
        return 0

    res = Simulator(d, reqs, reoptimise=sabotage, reopt_every_s=300).run(start - 600, end)
    assert broken and res.violations != []

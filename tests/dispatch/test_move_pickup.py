"""Moving a booked ride's pick-up later (its feeder bus runs late): re-inserted under the zone's
rules with a new window and the rider told, or left exactly as it was with the reason."""

from __future__ import annotations

import pytest

from dispatch.dispatcher import Dispatcher, DispatchError
from dispatch.insertion_reference import simulate
from dispatch.request import RideRequest
from dispatch.rides import Rejection, RejectReason, Ride, RideStatus
from tests.dispatch.test_dispatcher import NOW, A, B, make


def _book(d: Dispatcher, at: float, rid: str = "r1") -> Ride:
    res = d.request_ride(RideRequest(A, B, NOW, at, user_id="u1", request_id=rid), "u1")
    assert isinstance(res, Ride)
    return res


def test_pickup_moves_with_the_late_bus_and_the_rider_is_told() -> None:
    d, sink, _clock = make(vehicles=1)
    ride = _book(d, NOW + 600)
    old_window = ride.pickup_window
    sink.events.clear()
    moved = d.move_pickup("r1", NOW + 1500)
    assert isinstance(moved, Ride) and moved is ride and moved.ride_id == "r1"
    assert moved.status is RideStatus.ASSIGNED
    assert moved.pickup_window[0] >= NOW + 1500 > old_window[1]
    assert moved.eta_pickup >= NOW + 1500
    assert moved.history[-1][1] == "pickup_moved"
    v = d.vehicle(moved.vehicle_id)
    kinds = [(s.ride_id, s.kind.value) for s in v.plan]
    assert kinds == [("r1", "pickup"), ("r1", "dropoff")]
    # The new plan keeps every rule (windows, ride time, capacity).
    assert simulate(v, v.plan, NOW, d.travel) is not None
    rider = [p for t, p in sink.events if t.startswith("user.u1.")]
    assert rider and rider[-1]["pickup_window"] == list(moved.pickup_window)


def test_a_pickup_already_late_enough_is_left_alone() -> None:
    d, _sink, _clock = make(vehicles=1)
    ride = _book(d, NOW + 1200)
    before = (ride.pickup_window, ride.eta_pickup, list(d.vehicle(ride.vehicle_id).plan))
    assert d.move_pickup("r1", NOW + 600) is ride
    assert (ride.pickup_window, ride.eta_pickup, d.vehicle(ride.vehicle_id).plan) == before


def test_no_vehicle_later_leaves_the_ride_as_it_was() -> None:
    d, _sink, _clock = make(vehicles=1)
    ride = _book(d, NOW + 600)
    before = (ride.pickup_window, ride.vehicle_id, list(d.vehicle(ride.vehicle_id).plan))
    # The van's shift ends at 20:00: a pick-up after it cannot be served.
    res = d.move_pickup("r1", 19.9 * 3600)
    assert isinstance(res, Rejection) and res.reason in (
        RejectReason.NO_VEHICLE_AVAILABLE,
        RejectReason.OUTSIDE_SERVICE_HOURS,
    )
    assert (ride.pickup_window, ride.vehicle_id, d.vehicle(ride.vehicle_id).plan) == before
    # Outside the zone's hours (06-22) it says so.
    res = d.move_pickup("r1", 23 * 3600)
    assert isinstance(res, Rejection) and res.reason is RejectReason.OUTSIDE_SERVICE_HOURS


def test_only_assigned_rides_move() -> None:
    d, _sink, _clock = make(vehicles=1)
    with pytest.raises(DispatchError) as e:
        d.move_pickup("nope", NOW)
    assert e.value.code == "unknown_ride"
    d.cancel(_book(d, NOW + 600).ride_id)
    with pytest.raises(DispatchError) as e:
        d.move_pickup("r1", NOW + 1200)
    assert e.value.code == "not_movable"

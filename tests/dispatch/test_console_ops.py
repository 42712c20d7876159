"""A dispatcher's interventions: move a ride to a chosen vehicle, mark a no-show, take a vehicle
out of service (its waiting rides re-inserted elsewhere or cancelled with notice), send it to
its depot, put it back; and the same through the zone owner's command handler."""

from __future__ import annotations

import json

import pytest

from dispatch.dispatcher import Dispatcher, DispatchError
from dispatch.insertion_reference import simulate
from dispatch.rides import Rejection, RejectReason, Ride, RideStatus
from dispatch.scale_out import handle, restore_zone, zone_snapshot
from dispatch.vehicle import StopKind
from dispatch.zone import ServiceZone
from tests.dispatch.test_dispatcher import NOW, SQUARE, B, C, make, req


def book(d: Dispatcher, **kw: object) -> Ride:
    r = d.request_ride(req(**kw), "u1")  # type: ignore[arg-type]
    assert isinstance(r, Ride), r
    return r


def plan_ids(d: Dispatcher, vid: str) -> list[str]:
    return [s.ride_id for s in d.vehicle(vid).plan]


def feasible(d: Dispatcher, vid: str, now: float = NOW) -> bool:
    v = d.vehicle(vid)
    return simulate(v, v.plan, now, d.travel) is not None


def test_reassign_moves_the_ride_and_keeps_its_promise() -> None:
    d, sink, _ = make(vehicles=2)
    ride = book(d, earliest_pickup=NOW + 900)
    src = ride.vehicle_id
    dst = "v1" if src == "v0" else "v0"
    window, arrival = ride.pickup_window, ride.latest_arrival
    sink.events.clear()
    out = d.reassign(ride.ride_id, dst)
    assert isinstance(out, Ride) and out.vehicle_id == dst
    assert plan_ids(d, dst) == [ride.ride_id, ride.ride_id]
    assert plan_ids(d, src) == []
    # The promise is unchanged, and the new plan keeps it.
    assert (out.pickup_window, out.latest_arrival) == (window, arrival)
    assert feasible(d, dst)
    assert out.history[-1][1] == "reassigned"
    topics = {t for t, _ in sink.events}
    assert {f"fleet.vehicle.{src}", f"fleet.vehicle.{dst}", "user.u1.ride"} <= topics


def test_reassign_refuses_a_vehicle_that_cannot_keep_the_window() -> None:
    d, _, _ = make(vehicles=2)
    ride = book(d, earliest_pickup=NOW + 600)
    other = "v1" if ride.vehicle_id == "v0" else "v0"
    # The other vehicle's shift ends before the pick-up: it cannot take the ride.
    d.vehicle(other).shift_end = NOW + 300
    d.zone_state("muroran").arrays.invalidate(other)
    res = d.reassign(ride.ride_id, other)
    assert isinstance(res, Rejection) and res.reason is RejectReason.NO_VEHICLE_AVAILABLE
    assert plan_ids(d, ride.vehicle_id) == [ride.ride_id, ride.ride_id]
    assert plan_ids(d, other) == []
    with pytest.raises(DispatchError) as e:
        d.reassign(ride.ride_id, ride.vehicle_id)
    assert e.value.code == "same_vehicle"
    with pytest.raises(DispatchError) as e:
        d.reassign(ride.ride_id, "nope")
    assert e.value.code == "unknown_vehicle"


def test_mark_no_show_needs_the_window_open_and_frees_the_plan() -> None:
    d, _, clock = make(vehicles=1)
    ride = book(d, earliest_pickup=NOW + 900)
    with pytest.raises(DispatchError) as e:
        d.mark_no_show(ride.ride_id, reason="called")
    assert e.value.code == "no_show_too_early"
    clock.t = ride.pickup_window[0] + 60
    out = d.mark_no_show(ride.ride_id, reason="rider did not come out")
    assert out.status is RideStatus.NO_SHOW
    assert out.to_dict()["status_reason"] == "rider did not come out"
    assert plan_ids(d, "v0") == []
    with pytest.raises(DispatchError) as e:
        d.mark_no_show(ride.ride_id)
    assert e.value.code == "not_no_show"


def test_cancel_with_a_reason_tells_the_rider() -> None:
    d, sink, _ = make(vehicles=1)
    ride = book(d, earliest_pickup=NOW + 900)
    sink.events.clear()
    d.cancel(ride.ride_id, reason="road closed")
    told = [e for t, e in sink.events if t == "user.u1.ride"]
    assert told and told[-1]["status"] == "cancelled"
    assert told[-1]["status_reason"] == "road closed"


def test_out_of_service_moves_waiting_rides_keeps_onboard_and_cancels_the_rest() -> None:
    d, sink, clock = make(vehicles=2)
    a = book(d, earliest_pickup=NOW + 600)
    vid = a.vehicle_id
    other = "v1" if vid == "v0" else "v0"
    # Put a rider on board of vid.
    b = book(d, o=C, dst=B, earliest_pickup=NOW + 300)
    if b.vehicle_id != vid:
        moved = d.reassign(b.ride_id, vid)
        assert isinstance(moved, Ride)
    d.boarded(vid, b.ride_id, NOW + 400)
    clock.t = NOW + 400
    change = d.take_out_of_service(vid)
    v = d.vehicle(vid)
    assert not v.in_service and v.shift_end == NOW + 400
    # Only the on-board rider's drop-off stays; the waiting ride went to the other vehicle.
    assert [(s.ride_id, s.kind) for s in v.plan] == [(b.ride_id, StopKind.DROPOFF)]
    assert change.moved == {a.ride_id: other} and change.cancelled == []
    assert d.ride(a.ride_id).vehicle_id == other  # type: ignore[union-attr]
    assert feasible(d, other, NOW + 400)
    # No new ride is offered on the vehicle out of service.
    q = d.quote(req(earliest_pickup=NOW + 1200))
    assert not isinstance(q, Rejection) and q.vehicle_id == other
    with pytest.raises(DispatchError) as e:
        d.take_out_of_service(vid)
    assert e.value.code == "out_of_service"
    # The last vehicle out: its waiting ride cannot go anywhere and is cancelled with notice.
    sink.events.clear()
    change2 = d.take_out_of_service(other)
    assert change2.moved == {} and change2.cancelled == [a.ride_id]
    cancelled = d.ride(a.ride_id)
    assert cancelled is not None and cancelled.status is RideStatus.CANCELLED
    told = [e for t, e in sink.events if t == "user.u1.ride"]
    assert told[-1]["status_reason"] == "vehicle_out_of_service"
    assert isinstance(d.quote(req(earliest_pickup=NOW + 1200)), Rejection)
    # Back in service: its planned shift again, and it takes rides.
    d.return_to_service(other)
    assert d.vehicle(other).shift_end == 20 * 3600 and d.vehicle(other).in_service
    assert not isinstance(d.quote(req(earliest_pickup=NOW + 1200)), Rejection)
    with pytest.raises(DispatchError) as e:
        d.return_to_service(other)
    assert e.value.code == "in_service"


def test_send_to_depot_heads_home_and_survives_a_snapshot() -> None:
    d, sink, clock = make(vehicles=2)
    clock.t = NOW + 60
    d.update_position("v0", *C, NOW + 60)
    change = d.take_out_of_service("v0", to_depot=True)
    assert change.moved == {} and change.cancelled == []
    v = d.vehicle("v0")
    assert v.heading == v.depot and not v.in_service
    assert any(e.get("type") == "relocate" for t, e in sink.events if t == "fleet.vehicle.v0")
    # The zone's snapshot keeps the vehicle out of service with its planned shift end.
    text = zone_snapshot(d, "muroran")
    d2, _, _ = make(vehicles=0)
    d2.remove_zone("muroran")
    restore_zone(d2, ServiceZone.from_geojson("muroran", SQUARE), text)
    v2 = d2.vehicle("v0")
    assert v2.off_duty_shift_end == 20 * 3600 and not v2.in_service
    assert json.loads(text)["vehicles"][0]["off_duty_shift_end"] == 20 * 3600


def test_zone_owner_handles_the_console_commands() -> None:
    """The messages the scaled-out path queues for the zone's owner give the same outcomes."""
    d, _, _ = make(vehicles=2)
    ride = book(d, earliest_pickup=NOW + 900)
    dst = "v1" if ride.vehicle_id == "v0" else "v0"
    out = handle(d, {"op": "reassign", "ride_id": ride.ride_id, "vehicle_id": dst})
    assert out["ride"]["vehicle_id"] == dst
    out = handle(d, {"op": "reassign", "ride_id": ride.ride_id, "vehicle_id": "zz"})
    assert out["error"] == "unknown_vehicle"
    out = handle(d, {"op": "mark_no_show", "ride_id": ride.ride_id, "reason": "x"})
    assert out["error"] == "no_show_too_early"
    out = handle(d, {"op": "vehicle_service", "vehicle_id": dst, "action": "out_of_service"})
    assert out["moved"] == {ride.ride_id: ride.vehicle_id}
    out = handle(d, {"op": "vehicle_service", "vehicle_id": dst, "action": "fly"})
    assert out["error"] == "invalid_message"
    out = handle(d, {"op": "vehicle_service", "vehicle_id": dst, "action": "in_service"})
    assert d.vehicle(dst).in_service
    out = handle(d, {"op": "cancel", "ride_id": ride.ride_id, "reason": "storm"})
    assert out["ride"]["status"] == "cancelled" and out["ride"]["status_reason"] == "storm"

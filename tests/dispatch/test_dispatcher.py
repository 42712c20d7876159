"""Dispatcher: rejection reasons, book/cancel, stale quotes, vehicle events and published ETAs."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from dispatch.dispatcher import Dispatcher, DispatchError
from dispatch.events import MemoryEventSink
from dispatch.insertion_reference import simulate
from dispatch.request import RideRequest, ServiceRules
from dispatch.rides import Quote, Rejection, RejectReason, Ride, RideStatus
from dispatch.time_dependent import parse_speed_windows
from dispatch.travel_times import StraightLineTravelTimes
from dispatch.vehicle import CAR, VAN, Stop, Vehicle
from dispatch.zone import ServiceZone
from routing.street import DEFAULT_PEAKS, TimeOfDaySpeeds

NOW = 9 * 3600.0
SQUARE = {
    "type": "Polygon",
    "coordinates": [
        [[140.93, 42.29], [141.02, 42.29], [141.02, 42.35], [140.93, 42.35], [140.93, 42.29]]
    ],
}
A = (42.31, 140.96)
B = (42.33, 140.99)
C = (42.30, 141.00)


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make(
    vehicles: int = 2, speeds: TimeOfDaySpeeds | None = None, **rules: float
) -> tuple[Dispatcher, MemoryEventSink, Clock]:
    sink = MemoryEventSink()
    clock = Clock(NOW)
    d = Dispatcher(StraightLineTravelTimes(1.3), ServiceRules(**rules), sink, clock, speeds)  # type: ignore[arg-type]
    d.add_zone(ServiceZone.from_geojson("muroran", SQUARE, service_hours=[(6 * 3600, 22 * 3600)]))
    for k in range(vehicles):
        d.add_vehicle(
            Vehicle(
                f"v{k}",
                VAN if k % 2 == 0 else CAR,
                A,
                6 * 3600,
                20 * 3600,
                A,
                NOW,
                zone_id="muroran",
            )
        )
    return d, sink, clock


def req(o: tuple[float, float] = A, dst: tuple[float, float] = B, **kw: object) -> RideRequest:
    args: dict[str, object] = {"origin": o, "destination": dst, "requested_at": NOW}
    args.update(kw)
    return RideRequest(**args)  # type: ignore[arg-type]


def reason(x: object) -> RejectReason:
    assert isinstance(x, Rejection), x
    return x.reason


def test_quote_gives_window_and_arrival_promise() -> None:
    d, _, _ = make()
    q = d.quote(req(earliest_pickup=NOW + 600))
    assert isinstance(q, Quote)
    assert q.pickup_window == (q.eta_pickup, q.eta_pickup + 600)
    assert q.eta_pickup >= NOW + 600
    assert q.eta_pickup < q.eta_dropoff <= q.latest_arrival
    assert q.latest_arrival <= q.pickup_window[1] + q.max_ride_s
    assert q.max_ride_s == pytest.approx(1.5 * q.direct_s + 300)


@pytest.mark.parametrize(
    ("request_kw", "expected"),
    [
        ({"o": (35.0, 139.0)}, RejectReason.OUTSIDE_ZONE),
        ({"dst": (42.50, 141.5)}, RejectReason.OUTSIDE_ZONE),
        ({"seats": 7}, RejectReason.PARTY_TOO_LARGE),
        ({"seats": 0, "wheelchairs": 2}, RejectReason.PARTY_TOO_LARGE),
        ({"earliest_pickup": NOW - 3600}, RejectReason.PICKUP_IN_PAST),
        ({"latest_arrival": NOW + 10}, RejectReason.PICKUP_IN_PAST),
        ({"dst": (A[0] + 0.0001, A[1])}, RejectReason.SAME_ORIGIN_DESTINATION),
        ({"earliest_pickup": NOW + 14 * 3600}, RejectReason.OUTSIDE_SERVICE_HOURS),
        ({"earliest_pickup": NOW + 30 * 86400}, RejectReason.TOO_FAR_AHEAD),
        ({"seats": 0, "wheelchairs": 0}, RejectReason.INVALID_REQUEST),
        ({"o": (float("nan"), 140.0)}, RejectReason.INVALID_REQUEST),
    ],
)
def test_each_rejection_reason(request_kw: dict[str, object], expected: RejectReason) -> None:
    d, _, _ = make()
    o = request_kw.pop("o", A)
    dst = request_kw.pop("dst", B)
    assert reason(d.quote(req(o, dst, **request_kw))) is expected  # type: ignore[arg-type]


def test_insufficient_notice() -> None:
    d, _, _ = make(min_notice_s=3600)
    assert reason(d.quote(req(earliest_pickup=NOW + 600))) is RejectReason.INSUFFICIENT_NOTICE
    assert isinstance(d.quote(req(earliest_pickup=NOW + 3700)), Quote)


def test_no_vehicle_available_when_fleet_is_full() -> None:
    d, _, _ = make(vehicles=1)
    booked = 0
    for _ in range(12):
        r = d.request_ride(req(seats=4, earliest_pickup=NOW + 300), "u")
        if isinstance(r, Ride):
            booked += 1
        else:
            assert r.reason is RejectReason.NO_VEHICLE_AVAILABLE
            break
    else:
        pytest.fail("one van cannot take 12 groups of 4 leaving at once")
    assert booked >= 2


def test_book_assigns_and_publishes_eta_events() -> None:
    d, sink, _ = make()
    q = d.quote(req(user_id="alice"))
    assert isinstance(q, Quote)
    ride = d.book(q.quote_id, "alice")
    assert isinstance(ride, Ride) and ride.status is RideStatus.ASSIGNED
    assert d.ride(ride.ride_id) is ride
    v = d.vehicle(ride.vehicle_id)
    assert [s.ride_id for s in v.plan] == [ride.ride_id, ride.ride_id]
    assert f"fleet.vehicle.{v.vehicle_id}" in sink.topics()
    assert "user.alice.ride" in sink.topics()
    # A quote is used once.
    assert reason(d.book(q.quote_id, "alice")) is RejectReason.QUOTE_UNKNOWN


def test_cancel_frees_the_plan_and_cannot_repeat() -> None:
    d, _, _ = make()
    ride = d.request_ride(req(), "bob")
    assert isinstance(ride, Ride)
    d.cancel(ride.ride_id)
    assert ride.status is RideStatus.CANCELLED
    assert d.vehicle(ride.vehicle_id).plan == []
    with pytest.raises(DispatchError) as e:
        d.cancel(ride.ride_id)
    assert e.value.code == "not_cancellable"
    with pytest.raises(DispatchError):
        d.cancel("nope")


def test_stale_quote_is_rechecked() -> None:
    d, _, clock = make(vehicles=1)
    q1 = d.quote(req(seats=4, earliest_pickup=NOW + 300))
    q2 = d.quote(req(o=C, dst=B, seats=4, earliest_pickup=NOW + 300))
    assert isinstance(q1, Quote) and isinstance(q2, Quote)
    assert isinstance(d.book(q1.quote_id, "a"), Ride)
    # q2 was computed on the old plan: it is re-checked, not blindly committed.
    r2 = d.book(q2.quote_id, "b")
    v = d.vehicle("v0")
    if isinstance(r2, Ride):
        assert r2.pickup_window[0] <= r2.eta_pickup <= r2.pickup_window[1] + 1e-6
    else:
        assert r2.reason in (RejectReason.QUOTE_CHANGED, RejectReason.NO_VEHICLE_AVAILABLE)
    sched = d.schedule(v, clock.t)
    for s, b in zip(v.plan, sched, strict=True):
        assert s.earliest - 1e-6 <= b <= s.latest + 1e-6 or s.kind.value == "dropoff"
    # An expired quote is re-checked as well.
    d, _, clock = make(vehicles=1)
    q3 = d.quote(req(o=B, dst=A))
    assert isinstance(q3, Quote)
    clock.t += 1800
    r3 = d.book(q3.quote_id, "c")
    assert isinstance(r3, Rejection) and r3.reason is RejectReason.QUOTE_CHANGED
    assert r3.new_quote is not None and r3.new_quote.eta_pickup >= clock.t


def test_vehicle_events_board_alight_no_show() -> None:
    d, sink, _ = make(vehicles=1)
    r1 = d.request_ride(req(user_id="u1"))
    r2 = d.request_ride(req(o=C, dst=A, user_id="u2", earliest_pickup=NOW + 1800))
    assert isinstance(r1, Ride) and isinstance(r2, Ride)
    d.update_position("v0", 42.311, 140.961, NOW + 10)
    d.boarded("v0", r1.ride_id, NOW + 60)
    assert r1.status is RideStatus.ONBOARD and "v0" and d.vehicle("v0").onboard
    with pytest.raises(DispatchError):
        d.cancel(r1.ride_id)
    d.alighted("v0", r1.ride_id, NOW + 600)
    assert r1.status is RideStatus.COMPLETED and r1.dropped_off_at == NOW + 600
    opens = r2.pickup_window[0]
    with pytest.raises(DispatchError) as early:  # the driver has not waited yet
        d.no_show("v0", r2.ride_id, opens + 60)
    assert early.value.code == "no_show_too_early"
    with pytest.raises(DispatchError) as far:  # still at r1's drop-off, kilometres away
        d.no_show("v0", r2.ride_id, opens + 600)
    assert far.value.code == "no_show_too_far"
    d.arrived("v0", r2.ride_id, opens - 300)  # early arrival: the wait counts from the opening
    with pytest.raises(DispatchError) as early:
        d.no_show("v0", r2.ride_id, opens + 119)
    assert early.value.code == "no_show_too_early"
    d.no_show("v0", r2.ride_id, opens + 120)
    assert r2.status is RideStatus.NO_SHOW and d.vehicle("v0").plan == []
    statuses = [p["status"] for t, p in sink.events if t == "user.u1.ride"]
    assert statuses[-1] == "completed" and "onboard" in statuses
    with pytest.raises(DispatchError):
        d.alighted("v0", r1.ride_id, NOW + 2000)
    with pytest.raises(DispatchError):
        d.update_position("v0", 95.0, 0.0, NOW)
    with pytest.raises(DispatchError) as far:  # SQUARE spans lat 42.29-42.35: 0.1° is 11 km
        d.update_position("v0", 42.45, 140.96, NOW + 2000)
    assert far.value.code == "implausible_position"
    d.update_position("v0", 42.37, 140.96, NOW + 2000)  # 2.2 km off: a detour, accepted
    assert d.vehicle("v0").position == (42.37, 140.96)
    with pytest.raises(DispatchError):
        d.update_position("ghost", 42.0, 140.0, NOW)


def test_arrived_snaps_to_next_stop_republishes_etas_and_tells_the_rider() -> None:
    d, sink, _ = make(vehicles=1)
    r1 = d.request_ride(req(user_id="u1", earliest_pickup=NOW + 900))
    r2 = d.request_ride(req(o=C, dst=A, user_id="u2", earliest_pickup=NOW + 2400))
    assert isinstance(r1, Ride) and isinstance(r2, Ride)
    v = d.vehicle("v0")
    assert v.plan[0].ride_id == r1.ride_id
    with pytest.raises(DispatchError) as wrong:  # r2's pick-up is not the next stop
        d.arrived("v0", r2.ride_id, NOW + 100)
    assert wrong.value.code == "not_next_stop"
    with pytest.raises(DispatchError) as ghost:
        d.arrived("ghost", r1.ride_id, NOW + 100)
    assert ghost.value.code == "unknown_vehicle"
    assert r1.arrived_at is None and "arrived_at" in r1.to_dict()
    n_events = len(sink.events)
    late = r1.pickup_window[0] + 240  # the vehicle comes late: the no-show wait starts now
    d.arrived("v0", r1.ride_id, late)
    assert v.position == v.plan[0].latlon == r1.request.origin and v.position_time == late
    assert r1.arrived_at == late and r1.eta_pickup == late
    new = sink.events[n_events:]
    plans = [p for t, p in new if t == "fleet.vehicle.v0" and p["type"] == "plan"]
    assert plans and plans[-1]["stops"][0]["eta"] == late
    told = [p for t, p in new if t == "user.u1.ride" and p["type"] == "vehicle_arrived"]
    assert len(told) == 1 and told[0]["ride_id"] == r1.ride_id and told[0]["stop"] == "pickup"
    assert told[0]["position"] == list(r1.request.origin)
    with pytest.raises(DispatchError) as early:
        d.no_show("v0", r1.ride_id, late + d.rules.no_show_wait_s - 1)
    assert early.value.code == "no_show_too_early"
    # None: whatever the next stop is (the same pick-up, reported again).
    assert d.arrived("v0", None, late + 1) is r1
    d.boarded("v0", r1.ride_id, late + 2)
    d.alighted("v0", r1.ride_id, late + 900)
    ride = d.arrived("v0", None, r2.pickup_window[0])
    assert ride is r2 and r2.arrived_at == r2.pickup_window[0]
    d.boarded("v0", r2.ride_id, r2.pickup_window[0] + 10)
    d.arrived("v0", r2.ride_id, r2.eta_dropoff)  # at the drop-off: arrived_at stays the pick-up's
    assert r2.arrived_at == r2.pickup_window[0]
    d.alighted("v0", r2.ride_id, r2.eta_dropoff + 5)
    with pytest.raises(DispatchError) as idle:
        d.arrived("v0", None, r2.eta_dropoff + 60)
    assert idle.value.code == "no_next_stop"


def test_no_show_unknown_pickup_and_custom_rules() -> None:
    d, _, _ = make(vehicles=1, no_show_wait_s=0.0, no_show_max_distance_m=5000.0)
    r = d.request_ride(req(o=C, dst=A, user_id="u1", earliest_pickup=NOW + 900))
    assert isinstance(r, Ride)
    with pytest.raises(DispatchError) as none:
        d.no_show("v0", "nope", NOW + 900)
    assert none.value.code == "no_such_stop"
    # No wait and a wide radius: accepted at the window's opening from the depot ~3.3 km away
    # (the default 100 m would refuse it).
    assert d.no_show("v0", r.ride_id, r.pickup_window[0]).status is RideStatus.NO_SHOW


def test_concurrent_bookings_never_overbook() -> None:
    d, _, _ = make(vehicles=2)
    results: list[object] = []

    def worker(k: int) -> None:
        for m in range(6):
            results.append(d.request_ride(req(seats=3, earliest_pickup=NOW + 300 + m), f"u{k}"))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rides = [r for r in results if isinstance(r, Ride)]
    assert rides and len({r.ride_id for r in rides}) == len(rides)
    for v in d.vehicles():
        load = 0
        for s in v.plan:
            load += s.seats if s.kind.value == "pickup" else -s.seats
            assert load <= v.vtype.seats


@pytest.mark.parametrize("speeds", [None, "09:01-10:00=0.5"])
def test_fresh_quote_is_rechecked_when_the_vehicle_idled_meanwhile(speeds: str | None) -> None:
    # A tight promise: booked 100 s later with the vehicle still at its depot, the quoted
    # insertion may no longer hold (all the more once its legs run into a peak); booking must
    # then re-check, never break a window.
    tod = None if speeds is None else parse_speed_windows(speeds)
    d, _, clock = make(vehicles=1, speeds=tod, window_after_s=30, quote_ttl_s=600)
    q = d.quote(req(o=C, dst=B))
    assert isinstance(q, Quote)
    clock.t += 100
    res = d.book(q.quote_id, "late")
    v = d.vehicle("v0")
    if isinstance(res, Ride):
        sched = d.schedule(v, clock.t)
        for s, b in zip(v.plan, sched, strict=True):
            assert b <= s.latest + 1e-6
    else:
        assert res.reason is RejectReason.QUOTE_CHANGED and v.plan == []


def _leg(d: Dispatcher, q: Quote) -> float:
    """Free-flow seconds of the quoted vehicle from the pick-up to the drop-off."""
    speed = d.vehicle(q.vehicle_id).vtype.speed_kmh
    return float(d.travel.matrix([q.request.origin], [q.request.destination], speed)[0, 0])


def test_a_ride_that_drives_into_the_peak_is_promised_a_later_arrival() -> None:
    # Picked up at 09:10 off-peak; the 08:40 free-flow drive crosses into a 09:15 peak.
    peak = parse_speed_windows("09:15-11:00=0.5")
    free, _, _ = make()
    slow, _, _ = make(speeds=peak)
    qf = free.quote(req(earliest_pickup=NOW + 600))
    qs = slow.quote(req(earliest_pickup=NOW + 600))
    assert isinstance(qf, Quote) and isinstance(qs, Quote)
    assert qs.eta_pickup == qf.eta_pickup == NOW + 600  # the pick-up leg is off-peak
    leg = _leg(slow, qs)
    assert NOW + 630 + leg > NOW + 900  # the drive does cross 09:15
    assert qf.eta_dropoff == pytest.approx(NOW + 630 + leg)
    # 270 s at full speed to 09:15, the rest of the drive at half speed.
    assert qs.eta_dropoff == pytest.approx(NOW + 900 + 2 * (leg - 270))
    assert qs.latest_arrival > qf.latest_arrival
    # The ride-time limit counts the direct drive at the requested time, peak part included.
    assert qs.direct_s > qf.direct_s
    assert qs.max_ride_s == pytest.approx(1.5 * qs.direct_s + 300)
    ride = slow.book(qs.quote_id, "alice")
    assert isinstance(ride, Ride) and ride.eta_dropoff == pytest.approx(qs.eta_dropoff)


def test_a_ride_in_the_peak_is_slower_and_allowed_a_longer_ride() -> None:
    peak = parse_speed_windows("08:00-12:00=0.5")
    free, _, _ = make()
    slow, _, _ = make(speeds=peak)
    qf = free.quote(req())
    qs = slow.quote(req())
    assert isinstance(qf, Quote) and isinstance(qs, Quote)
    leg = _leg(slow, qs)
    assert qs.eta_dropoff - qs.eta_pickup == pytest.approx(30 + 2 * leg)
    assert qf.eta_dropoff - qf.eta_pickup == pytest.approx(30 + leg)
    assert qs.direct_s == pytest.approx(2 * qf.direct_s)
    # Arrive-by in the peak: the latest departure is a peak-length drive before the arrival.
    arrive_by = slow.quote(req(latest_arrival=NOW + 3600))
    assert isinstance(arrive_by, Quote)
    assert arrive_by.direct_s == pytest.approx(2 * qf.direct_s)
    assert arrive_by.eta_dropoff <= NOW + 3600
    # An arrival the peak makes impossible even leaving now is in the past.
    too_soon = slow.quote(req(latest_arrival=NOW + 1.5 * qf.direct_s))
    assert reason(too_soon) is RejectReason.PICKUP_IN_PAST
    assert isinstance(free.quote(req(latest_arrival=NOW + 1.5 * qf.direct_s)), Quote)


def test_eta_schedule_drives_through_the_peak() -> None:
    d, _, _ = make(vehicles=1, speeds=parse_speed_windows("09:05-10:00=0.5"))
    ride = d.request_ride(req(earliest_pickup=NOW + 240), "eve")
    assert isinstance(ride, Ride)
    v = d.vehicle("v0")
    times = d.schedule(v, NOW)
    prof = d.speed_profile("muroran")
    leg = float(d.travel.matrix([A], [B], v.vtype.speed_kmh)[0, 0])
    assert times[0] == NOW + 240
    assert times[1] == pytest.approx(prof.arrive(NOW + 270, leg))
    assert ride.eta_dropoff == pytest.approx(times[1])


def test_slowest_speed_factor() -> None:
    d, _, _ = make(speeds=TimeOfDaySpeeds(DEFAULT_PEAKS))
    assert d.slowest_speed_factor(NOW, NOW + 3600) == 1.0  # 09:00-10:00
    assert d.slowest_speed_factor(NOW - 600, NOW + 3600) == 0.7
    assert d.slowest_speed_factor(NOW - 600, NOW + 3600, "muroran") == 0.7
    # A zone in Japan (UTC+9): its 07:00 peak is 22:00 UTC, when the first zone is free.
    d.add_zone(ServiceZone.from_geojson("japan", SQUARE, utc_offset_s=9 * 3600.0))
    assert d.slowest_speed_factor(22 * 3600.0, 23 * 3600.0, "muroran") == 1.0
    assert d.slowest_speed_factor(22 * 3600.0, 23 * 3600.0, "japan") == 0.7
    assert d.slowest_speed_factor(22 * 3600.0, 23 * 3600.0) == 0.7  # any zone
    with pytest.raises(DispatchError):
        d.slowest_speed_factor(NOW, NOW + 60, "nowhere")
    free, _, _ = make()
    assert free.slowest_speed_factor(0.0, 2 * 86_400.0) == 1.0
    assert (
        Dispatcher(
            StraightLineTravelTimes(), speeds=TimeOfDaySpeeds(DEFAULT_PEAKS)
        ).slowest_speed_factor(NOW - 600, NOW)
        == 0.7
    )


def test_replanning_checked_in_free_flow_cannot_break_a_peak_promise() -> None:
    # The re-optimiser may judge plans on free-flow times; the dispatcher still refuses a plan
    # that is late once driven through the peak.
    d, _, _ = make(vehicles=1, speeds=parse_speed_windows("08:00-12:00=0.5"))
    ride = d.request_ride(req(o=C, dst=B), "zoe")
    assert isinstance(ride, Ride)
    v = d.vehicle("v0")
    version = d.zone_state("muroran").versions["v0"]
    # Promise the pick-up from now until its free-flow arrival: true in free flow, late in the
    # peak.
    early = [dataclasses.replace(v.plan[0], earliest=NOW), v.plan[1]]
    free_eta = simulate(v, early, NOW, d.travel)
    assert free_eta is not None
    tight = [dataclasses.replace(early[0], latest=free_eta[0][0]), v.plan[1]]
    assert simulate(v, tight, NOW, d.travel) is not None
    assert not d.feasible_plan(v, tight, NOW)

    def free_flow_check(dd: Dispatcher, vv: Vehicle, plan: list[Stop], now: float) -> bool:
        return simulate(vv, plan, now, dd.travel) is not None

    assert d.replace_plans("muroran", {"v0": tight}, {"v0": version}, NOW, free_flow_check) == 0
    assert v.plan[0].latest == ride.pickup_window[1]
    same = list(v.plan)
    assert d.feasible_plan(v, same, NOW)
    assert d.replace_plans("muroran", {"v0": same}, {"v0": version}, NOW, free_flow_check) == 1

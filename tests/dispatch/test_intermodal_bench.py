"""``python -m bench.intermodal --quick``: the figures are there and consistent (not the speed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench import intermodal
from dispatch.rides import Ride, RideStatus
from routing.on_demand import OnDemandRequest

SHARES = (
    "promise_kept_share",
    "promise_kept_share_of_promised",
    "schedule_only_kept_share",
    "schedule_only_kept_share_of_promised",
)
TIMES = ("plan_p50_ms", "plan_p95_ms", "plan_p50_ms_transit_only", "plan_p95_ms_transit_only")


def test_quick_run_writes_consistent_figures_for_both_cities(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "intermodal.json"
    intermodal.main(["--quick", "--json", str(out)])
    results = json.loads(out.read_text())
    assert set(results) == {"muroran", "cobb_county"}
    table = capsys.readouterr().out
    for name, r in results.items():
        assert name in table
        assert r["residents"] == 40
        assert r["with_on_demand"] <= r["planned"] <= r["residents"]
        assert r["booked"] <= r["with_on_demand"]
        assert r["legs_kept"] <= r["legs_booked"] <= r["legs_promised"]
        assert sum(r["legs_by_role"].values()) == r["legs_booked"]
        refused_legs = sum(r["refused_at_booking_by_reason"].values())
        assert r["booked"] + refused_legs >= r["with_on_demand"]
        assert r["schedule_only_legs_kept"] <= r["schedule_only_legs_booked"]
        assert r["schedule_only_legs_booked"] <= r["schedule_only_legs_promised"]
        for key in SHARES:
            assert r[key] is None or 0.0 <= r[key] <= 1.0
        if r["legs_booked"]:
            assert r["promise_kept_share"] == round(r["legs_kept"] / r["legs_booked"], 4)
        # Every resident with an on-demand itinerary is compared with transit or counted out.
        assert r["door_to_door_compared"] + r["transit_unreachable"] == r["with_on_demand"]
        assert r["invariant_violations"] == 0
        assert all(r[k] > 0 for k in TIMES)
        # The residents get on-demand legs at all (zones, stops and fleet wired together).
        assert r["with_on_demand"] >= r["residents"] // 2 and r["legs_booked"] > 0


def _ride(up: float, down: float) -> Ride:
    return Ride(
        ride_id="r",
        user_id="u",
        request=None,  # type: ignore[arg-type]
        zone_id="z",
        vehicle_id="v",
        status=RideStatus.COMPLETED,
        pickup_window=(100.0, 700.0),
        latest_arrival=2000.0,
        max_ride_s=900.0,
        direct_s=300.0,
        booked_at=0.0,
        eta_pickup=up,
        eta_dropoff=down,
        picked_up_at=up,
        dropped_off_at=down,
    )


def test_a_promise_is_kept_only_inside_the_window_and_in_time_for_the_bus() -> None:
    window = (100.0, 700.0)
    access = intermodal.LegPromise("r", "access", window, dropoff_by=1000.0)
    assert intermodal.kept(access, _ride(200.0, 1000.0))
    assert not intermodal.kept(access, _ride(200.0, 1010.0))  # the bus has left
    assert not intermodal.kept(access, _ride(800.0, 900.0))  # picked up after the window
    egress = intermodal.LegPromise("r", "egress", window, pickup_from=300.0)
    assert intermodal.kept(egress, _ride(300.0, 900.0))
    assert not intermodal.kept(egress, _ride(250.0, 900.0))  # before the bus is in
    assert not intermodal.kept(access, None)
    cancelled = _ride(200.0, 900.0)
    cancelled.status = RideStatus.CANCELLED
    assert not intermodal.kept(intermodal.LegPromise("r", "direct", window), cancelled)


def test_schedule_only_legs_follow_hours_and_notice_not_the_fleet(shared_data: Path) -> None:
    city = intermodal.muroran(1)
    d = city.make_fleet(0)  # no vehicle at all: the schedule still offers rides
    zone = city.zones[0]
    a, b = (float(x) for x in zone.random_points(np.random.default_rng(0), 1)[0])
    c = zone.centroid()
    legs = city.provider(d, "u", city.base + 8 * 3600)
    sched = intermodal.ScheduleOnlyLegs(legs, city.base, 600.0)
    (offer,) = sched.quote(city.day, [OnDemandRequest((a, b), c, depart_at=9 * 3600)])
    assert not isinstance(offer, intermodal.OnDemandRefusal)
    drive = legs.estimate_s((a, b), c)
    assert drive is not None
    assert offer.pickup_window == (9 * 3600, 9 * 3600 + 600)
    assert offer.dropoff_eta == 9 * 3600 + round(drive)
    (far,) = sched.quote(city.day, [OnDemandRequest((a, b), (0.0, 0.0), depart_at=9 * 3600)])
    assert isinstance(far, intermodal.OnDemandRefusal) and far.reason == "outside_zone"

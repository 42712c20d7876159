"""Rebalancing: idle vehicles go to the busiest uncovered H3 cells; busy ones never move."""

from __future__ import annotations

import json

import pytest

from dispatch.dispatcher import DispatchError, demand_key, local_hour, split_demand_key
from dispatch.rebalance import rebalance_zone
from dispatch.request import RideRequest
from dispatch.rides import Ride
from dispatch.scale_out import restore_zone, zone_snapshot
from dispatch.simulation.demand import DemandModel, generate_requests
from dispatch.simulation.scenario import MURORAN_ZONE, build_dispatcher
from dispatch.simulation.simulator import Simulator
from dispatch.zone import ServiceZone

NOW = 8 * 3600.0
HOT = (42.335, 140.995)
COLD = (42.31, 140.97)


def test_idle_vehicles_head_for_demand_and_busy_ones_stay() -> None:
    zone = ServiceZone.from_geojson("muroran", MURORAN_ZONE)
    d = build_dispatcher([zone], 3, (NOW - 600, NOW + 6 * 3600), 3)
    assert rebalance_zone(d, "muroran", NOW) == 0  # no history, no move
    # A rider re-quoting five times is no demand: only bookings count.
    for k in range(5):
        d.quote(RideRequest((COLD[0] + 1e-5 * k, COLD[1]), (42.31, 140.96), NOW), NOW)
    assert d.demand("muroran") == {} and rebalance_zone(d, "muroran", NOW) == 0
    ride = d.request_ride(
        RideRequest(HOT, (42.31, 140.96), NOW, earliest_pickup=NOW + 3600), now=NOW
    )
    assert isinstance(ride, Ride)
    assert d.demand("muroran") == {zone.cell_of(*HOT): 1}
    # The booking's pick-up is at 9:00: nothing expected during 8:00-9:00, half of it from 8:30.
    assert d.expected_demand("muroran", NOW) == {}
    assert rebalance_zone(d, "muroran", NOW) == 0
    assert d.expected_demand("muroran", NOW + 1800) == {zone.cell_of(*HOT): 0.5}
    busy = d.vehicle(ride.vehicle_id)
    moves = rebalance_zone(d, "muroran", NOW + 1800)
    assert moves == 1  # one hot cell, one idle vehicle sent there
    heading = [v for v in d.vehicles() if v.heading is not None]
    assert len(heading) == 1 and heading[0] is not busy
    assert zone.cell_of(*heading[0].heading) == zone.cell_of(*HOT)  # type: ignore[misc]
    assert busy.heading is None
    # Already covered: a second pass sends nobody else.
    assert rebalance_zone(d, "muroran", NOW + 1800) == 0


def test_expected_demand_per_local_hour_and_old_snapshots() -> None:
    zone = ServiceZone.from_geojson("muroran", MURORAN_ZONE, utc_offset_s=9 * 3600.0)
    d = build_dispatcher([zone], 1, (NOW - 600, NOW + 6 * 3600), 3)
    hot, cold = zone.cell_of(*HOT), zone.cell_of(*COLD)
    # An old snapshot's demand (whole-day counts per cell) still loads and counts 1/24 an hour.
    old = json.loads(zone_snapshot(d, "muroran"))
    old["demand"] = {cold: 48}
    d2 = build_dispatcher([], 0, (NOW, NOW), 3)
    restore_zone(d2, zone, json.dumps(old))
    assert d2.demand("muroran") == {cold: 48}
    assert d2.expected_demand("muroran", NOW) == {cold: 2.0}
    # NOW is 8:00 UTC = 17:00 local: a 17:00 booking counts there, not in the UTC hour.
    zs = d2.zone_state("muroran")
    zs.demand[demand_key(17, hot)] += 3
    zs.demand[demand_key(8, hot)] += 100
    assert d2.expected_demand("muroran", NOW) == {cold: 2.0, hot: 3.0}
    assert d2.expected_demand("muroran", NOW + 2700) == {cold: 2.0, hot: 0.75}
    assert d2.demand("muroran") == {cold: 48, hot: 103}
    # New snapshots keep the hours.
    d3 = build_dispatcher([], 0, (NOW, NOW), 3)
    restore_zone(d3, zone, zone_snapshot(d2, "muroran"))
    assert d3.expected_demand("muroran", NOW) == {cold: 2.0, hot: 3.0}
    assert split_demand_key(demand_key(17, hot)) == (17, hot) and split_demand_key(hot) == (
        None,
        hot,
    )
    assert local_hour(NOW, 9 * 3600.0) == 17 and local_hour(NOW, -9 * 3600.0) == 23


def test_bookings_count_once_per_ride_in_the_pickup_hour() -> None:
    zone = ServiceZone.from_geojson("muroran", MURORAN_ZONE)
    d = build_dispatcher([zone], 2, (NOW - 600, NOW + 6 * 3600), 3)
    r = RideRequest(HOT, (42.31, 140.96), NOW, earliest_pickup=NOW + 2 * 3600, request_id="r1")
    ride = d.request_ride(r, now=NOW)
    assert isinstance(ride, Ride)
    with pytest.raises(DispatchError):  # the same request booked again is refused ...
        d.request_ride(r, now=NOW)
    key = demand_key(local_hour(ride.eta_pickup, 0.0), zone.cell_of(*HOT))
    assert d.zone_state("muroran").demand == {key: 1}  # ... and counted once


def test_simulation_with_rebalancing_keeps_invariants() -> None:
    zone = ServiceZone.from_geojson("muroran", MURORAN_ZONE)
    start, end = NOW, NOW + 3600
    reqs = generate_requests(zone, DemandModel(rate_per_hour=60, hotspot_share=0.8), start, end, 9)
    d = build_dispatcher([zone], 4, (start - 600, end + 3 * 3600), 9)
    sim = Simulator(
        d, reqs, rebalance=lambda now: rebalance_zone(d, "muroran", now), rebalance_every_s=300
    )
    res = sim.run(start - 600, end)
    assert res.violations == []
    assert res.kpis.rebalancing_moves > 0

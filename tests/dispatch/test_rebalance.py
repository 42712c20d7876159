"""Rebalancing: idle vehicles go to the busiest uncovered H3 cells; busy ones never move."""

from __future__ import annotations

from dispatch.rebalance import rebalance_zone
from dispatch.request import RideRequest
from dispatch.rides import Ride
from dispatch.simulation.demand import DemandModel, generate_requests
from dispatch.simulation.scenario import MURORAN_ZONE, build_dispatcher
from dispatch.simulation.simulator import Simulator
from dispatch.zone import ServiceZone

NOW = 8 * 3600.0
HOT = (42.335, 140.995)


def test_idle_vehicles_head_for_demand_and_busy_ones_stay() -> None:
    zone = ServiceZone.from_geojson("muroran", MURORAN_ZONE)
    d = build_dispatcher([zone], 3, (NOW - 600, NOW + 6 * 3600), 3)
    assert rebalance_zone(d, "muroran", NOW) == 0  # no history, no move
    ride = d.request_ride(
        RideRequest(HOT, (42.31, 140.96), NOW, earliest_pickup=NOW + 3600), now=NOW
    )
    assert isinstance(ride, Ride)
    for k in range(5):
        d.quote(RideRequest((HOT[0] + 1e-5 * k, HOT[1]), (42.31, 140.96), NOW), NOW)
    busy = d.vehicle(ride.vehicle_id)
    moves = rebalance_zone(d, "muroran", NOW)
    assert moves == 1  # one hot cell, one idle vehicle sent there
    heading = [v for v in d.vehicles() if v.heading is not None]
    assert len(heading) == 1 and heading[0] is not busy
    assert zone.cell_of(*heading[0].heading) == zone.cell_of(*HOT)  # type: ignore[misc]
    assert busy.heading is None
    # Already covered: a second pass sends nobody else.
    assert rebalance_zone(d, "muroran", NOW) == 0


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

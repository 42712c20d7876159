"""Scenarios: copies edited and compared with the published network."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest

import gtfs
from app.dispatch.demo_fleet import buffered_hull
from app.planning.demo import DEMO_FEED, MURORAN_BOX
from app.planning.scenarios import (
    AddZone,
    Analysis,
    ChangeHeadway,
    DropRoute,
    EditError,
    ScenarioSpec,
    ShortenRoute,
    apply_edits,
    least_used_route,
    run_scenario,
)
from routing.access import read_destinations, read_hospitals, read_population
from tests.app.planning.line_feeds import three_stop_line

# R1 runs A-B (every 15 min), R2 runs B-C (the only route to C, where the clinic is).
A, B, C = (43.0, 141.0), (43.02, 141.0), (43.04, 141.0)
DAY = dt.date(2030, 1, 7)


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> gtfs.Feed:
    return gtfs.read_feed(three_stop_line(tmp_path_factory.mktemp("sc") / "f.zip", (A, B, C)))


def test_edits_copy_the_network(feed: gtfs.Feed) -> None:
    n_st = len(feed.stop_times)
    dropped = apply_edits(feed, [DropRoute(op="drop_route", route_id="R2")])
    assert set(dropped.trips["route_id"]) == {"R1"} and len(feed.stop_times) == n_st
    halved = apply_edits(feed, [ChangeHeadway(op="headway", route_id="R1", factor=2)])
    assert (halved.trips["route_id"] == "R1").sum() == 4
    doubled = apply_edits(feed, [ChangeHeadway(op="headway", route_id="R1", factor=0.5)])
    assert (doubled.trips["route_id"] == "R1").sum() == 15  # 8 + one between each two
    extra = doubled.stop_times[doubled.stop_times["trip_id"] == "R1_0~h1"]
    assert extra["departure_time"].tolist() == ["07:07:30", "07:17:30"]
    short = apply_edits(feed, [ShortenRoute(op="shorten_route", route_id="R2", to_stop_id="B")])
    assert (short.trips["route_id"] == "R2").sum() == 0  # one stop left: the trips go
    with pytest.raises(EditError):
        apply_edits(feed, [DropRoute(op="drop_route", route_id="R9")])
    with pytest.raises(EditError):
        apply_edits(feed, [ShortenRoute(op="shorten_route", route_id="R1", to_stop_id="C")])


def test_removing_the_only_route_makes_the_cell_unreachable(feed: gtfs.Feed) -> None:
    clinic = read_destinations(f"name,kind,lat,lon\nClinic,clinic,{C[0]},{C[1]}\n")
    spec = ScenarioSpec(
        name="no R2",
        edits=[DropRoute(op="drop_route", route_id="R2")],
        analysis=Analysis(date=DAY, start=7 * 3600, window_min=30, departures=6, minutes=45),
    )
    out = run_scenario(feed, spec, clinic)
    import h3

    cell_a = h3.latlng_to_cell(A[0], A[1], 9)
    props = {f["id"]: f["properties"] for f in out["map"]["features"]}
    assert props[cell_a]["status"] == "lost"
    assert props[cell_a]["published_min"] is not None and props[cell_a]["scenario_min"] is None
    cell_c = h3.latlng_to_cell(C[0], C[1], 9)
    assert props[cell_c]["status"] == "same"  # the clinic's own cell walks
    rows = {r["metric"]: r for r in out["table"]}
    assert rows["cells_reaching_destination"]["difference"] < 0
    assert out["cells"]["lost"] > 0 and out["cells"]["gained"] == 0
    assert rows["bus_trips"]["published"] == 16 and rows["bus_trips"]["scenario"] == 8


@pytest.mark.slow
def test_replace_least_used_route_with_on_demand_zone_on_the_demo_city(shared_data: Path) -> None:
    feed = gtfs.read_feed(DEMO_FEED)
    day = dt.date(2020, 4, 6)
    route = least_used_route(feed, day)
    trips = set(feed.trips.loc[feed.trips["route_id"] == route, "trip_id"])
    stops = set(feed.stop_times.loc[feed.stop_times["trip_id"].isin(trips), "stop_id"])
    st = feed.stops[feed.stops["stop_id"].isin(stops)]
    pts = np.column_stack([st["stop_lat"].astype(float), st["stop_lon"].astype(float)])
    ring = buffered_hull(pts, 400.0)
    spec = ScenarioSpec(
        name="least-used route -> on-demand",
        edits=[
            DropRoute(op="drop_route", route_id=route),
            AddZone(op="add_zone", name="replacement", polygon=ring, vehicles=3, fare=300),
        ],
        analysis=Analysis(date=day, minutes=30, resolution=8),
    )
    planning = shared_data / "planning"
    hosp = read_hospitals((planning / "hokkaido_hospitals_2015.csv").read_bytes())
    pop = read_population((planning / "hokkaido_population_mesh500_2010.csv").read_bytes())
    out = run_scenario(feed, spec, hosp.of_kind("emergency_hospital"), pop.within(*MURORAN_BOX))
    rows = {r["metric"]: r for r in out["table"]}
    expected = {
        "bus_trips", "bus_km", "bus_hours", "on_demand_requests", "on_demand_served",
        "on_demand_vehicle_km", "on_demand_vehicle_hours", "fare_revenue", "co2_kg",
        "operating_cost", "cells_reaching_destination", "cells_within_30_min",
        "share_within_30_min:emergency_hospital", "residents_within_30_min:emergency_hospital",
    }  # fmt: skip
    assert expected <= set(rows)
    for r in out["table"]:
        assert all(math.isfinite(r[k]) for k in ("published", "scenario", "difference"))
        assert r["difference"] == pytest.approx(r["scenario"] - r["published"], abs=1e-3)
    # The route is gone: fewer trips, km and hours; the zone runs: requests, rides, km, hours.
    assert rows["bus_trips"]["difference"] < 0 and rows["bus_km"]["difference"] < 0
    assert rows["bus_hours"]["difference"] < 0
    assert rows["on_demand_requests"]["published"] == 0 < rows["on_demand_requests"]["scenario"]
    od = out["on_demand"][0]
    assert 0 < od["served"] <= od["requests"] and od["served_share"] == pytest.approx(
        od["served"] / od["requests"], abs=1e-4
    )
    assert rows["on_demand_served"]["scenario"] == od["served"]
    assert rows["on_demand_vehicle_hours"]["scenario"] == pytest.approx(3 * 13)
    assert rows["fare_revenue"]["scenario"] == pytest.approx(300 * od["served"])
    uc = spec.unit_costs
    for side in ("published", "scenario"):
        cost = (
            rows["bus_km"][side] * uc.bus_km + rows["bus_hours"][side] * uc.bus_hour
            + rows["on_demand_vehicle_km"][side] * uc.vehicle_km
            + rows["on_demand_vehicle_hours"][side] * uc.vehicle_hour
        )  # fmt: skip
        assert rows["operating_cost"][side] == pytest.approx(cost, rel=1e-6, abs=0.01)
        co2 = rows["bus_km"][side] * uc.bus_g_per_km / 1000 + (
            od["co2_kg"] if side == "scenario" else 0
        )
        assert rows["co2_kg"][side] == pytest.approx(co2, abs=0.01)
        share = rows["share_within_30_min:emergency_hospital"][side]
        assert 0 < share < 1
    feats = out["map"]["features"]
    assert sum(out["cells"].values()) == len(feats) > 100
    for f in feats:
        p = f["properties"]
        if p["delta_min"] is not None:
            assert p["delta_min"] == pytest.approx(p["scenario_min"] - p["published_min"], abs=0.11)


def test_a_zone_replays_given_demand() -> None:
    from app.planning.scenarios import simulate_zone, zones_of
    from routing.co2 import DESNZ_2023

    ring = [(140.99, 42.99), (141.01, 42.99), (141.01, 43.01), (140.99, 43.01)]
    csv = (
        "request_id,requested_at,earliest_pickup,origin_lat,origin_lon,destination_lat,"
        "destination_lon,seats,wheelchairs\n"
        "a,28000,28800,42.995,140.995,43.005,141.005,1,0\n"
        "b,30000,30600,43.005,141.005,42.995,140.995,1,0\n"
        "c,36000,36000,42.996,141.004,43.004,140.996,2,0\n"
    )
    edit = AddZone(op="add_zone", polygon=ring, vehicles=2, fare=200, demand_csv=csv)
    spec = ScenarioSpec(edits=[edit])
    ((e, zone),) = zones_of(spec, 9 * 3600.0)
    day_epoch = dt.datetime(2030, 1, 7, tzinfo=dt.UTC).timestamp()
    out = simulate_zone(e, zone, day_epoch, 1, DESNZ_2023)
    assert out["demand"] == "replayed" and out["requests"] == 3
    assert out["served"] == 3 and out["fare_revenue"] == 600
    assert out["vehicle_km"] > 0 and out["vehicle_hours"] == pytest.approx(2 * 13)
    bad = AddZone(op="add_zone", polygon=ring, demand_csv="request_id\nx\n")
    with pytest.raises(EditError, match="replayed demand"):
        simulate_zone(bad, zone, day_epoch, 1, DESNZ_2023)

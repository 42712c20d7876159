"""The demo city's figure: Muroran residents within 30 minutes of an emergency hospital.

``python -m app.planning.demo [--data DIR] [--minutes 30] [--json PATH]``

Residents: the 2010 census on the 500 m mesh (cells whose centre lies in :data:`MURORAN_BOX`,
the city's extent with its two peninsulas; Noboribetsu to the east is left out). Destinations:
the emergency hospitals of Hokkaido's register. Network: the Donan Bus feed the demo publishes,
on a weekday of its calendar, departures every 5 minutes 08:00-09:00 (medians). With the zone:
the demo's on-demand zone around Higashi-Muroran (``app.dispatch.demo_fleet``) and its fleet, a
ride being the dispatcher's drive estimate plus a 10 minute wait (first or last mile, or door to
door inside the zone).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.dispatch.demo_fleet import build_demo_zone, demo_vehicles
from dispatch.dispatcher import Dispatcher
from dispatch.planner_legs import DispatcherLegs
from dispatch.travel_times import StraightLineTravelTimes
from dispatch.zone import ServiceZone
from gtfs import compile_timetable, read_feed
from gtfs.compiled import CompiledTimetable
from routing.access import (
    AccessEngine,
    OnDemand,
    departure_times,
    population_share,
    read_hospitals,
    read_population,
)
from routing.transit import TransitData

REPO = Path(__file__).resolve().parents[2]
DEMO_FEED = REPO / "app" / "demo_data" / "jp_donan_bus_muroran.zip"
SHARED_PLANNING = REPO.parent / "shared" / "data" / "planning"
MURORAN_BOX = (42.29, 140.90, 42.43, 141.045)
"""(south, west, north, east) of Muroran city's census cells."""
DEMO_DAY = dt.date(2020, 4, 6)  # a Monday of the feed's calendar


def zone_provider(
    tt: CompiledTimetable, zones: list[ServiceZone], vehicles: list[Any]
) -> DispatcherLegs:
    """An in-process :class:`routing.on_demand.OnDemandProvider` for planning: the zones'
    drive estimates from a dispatcher holding the zones and fleet (nothing is booked)."""
    d = Dispatcher(StraightLineTravelTimes(1.3))
    for z in zones:
        d.add_zone(z)
    for v in vehicles:
        d.add_vehicle(v)
    return DispatcherLegs(
        d, zones, np.asarray(tt.stop_lat), np.asarray(tt.stop_lon), tt.timezone, cache={}
    )


def demo_zone_provider(tt: CompiledTimetable) -> tuple[DispatcherLegs, ServiceZone]:
    zone, stops = build_demo_zone(tt)
    return zone_provider(tt, [zone], demo_vehicles(zone, stops, time.time())), zone


def hospital_access(data_dir: Path = SHARED_PLANNING, minutes: int = 30) -> dict[str, Any]:
    """The share of Muroran's residents within ``minutes`` of an emergency hospital, by walk
    + bus and by walk + bus + the demo on-demand zone."""
    pop = read_population((data_dir / "hokkaido_population_mesh500_2010.csv").read_bytes())
    pop = pop.within(*MURORAN_BOX)
    hospitals = read_hospitals((data_dir / "hokkaido_hospitals_2015.csv").read_bytes())
    emergency = hospitals.of_kind("emergency_hospital")
    tt = compile_timetable(read_feed(DEMO_FEED))
    engine = AccessEngine(TransitData(tt), DEMO_DAY)
    deps = departure_times(8 * 3600, 3600, 12)
    provider, zone = demo_zone_provider(tt)
    without = population_share(engine, pop, emergency, deps, minutes)[0]
    with_zone = population_share(engine, pop, emergency, deps, minutes, OnDemand(provider))[0]
    in_zone = np.array(
        [
            zone.contains(float(a), float(b))
            for a, b in zip(pop.cells.centre_lat, pop.cells.centre_lon, strict=True)
        ]
    )
    return {
        "minutes": minutes,
        "date": DEMO_DAY.isoformat(),
        "window": "08:00-09:00, 12 departures, median",
        "mesh_cells": len(pop.people),
        "residents": int(pop.people.sum()),
        "residents_in_zone": int(pop.people[in_zone].sum()),
        "emergency_hospitals": len(emergency),
        "without_zone": without.as_dict(),
        "with_zone": with_zone.as_dict(),
        "gain_residents": with_zone.reached - without.reached,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=SHARED_PLANNING)
    ap.add_argument("--minutes", type=int, default=30)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    out = hospital_access(args.data, args.minutes)
    w, z = out["without_zone"], out["with_zone"]
    print(
        f"Muroran, {out['residents']} residents ({out['mesh_cells']} mesh cells): within "
        f"{out['minutes']} min of an emergency hospital ({out['emergency_hospitals']} in "
        f"Hokkaido's register) — walk + bus {w['share']:.1%} ({w['reached']}), with the "
        f"on-demand zone {z['share']:.1%} ({z['reached']}); {out['residents_in_zone']} "
        f"residents live in the zone"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False))
    return out


if __name__ == "__main__":
    main()

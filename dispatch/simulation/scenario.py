"""Ready-made simulation set-ups: a zone, a fleet spread over it, a dispatcher."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dispatch.dispatcher import Dispatcher
from dispatch.request import ServiceRules
from dispatch.simulation.demand import CSV_HELP
from dispatch.travel_times import StraightLineTravelTimes, TravelTimes
from dispatch.vehicle import VAN, Vehicle, VehicleType
from dispatch.zone import ServiceZone
from routing.street import TimeOfDaySpeeds

#: A drawn operator zone over central Muroran (the Japanese demo city), GeoJSON order.
MURORAN_ZONE = {
    "type": "Polygon",
    "coordinates": [
        [
            [140.955, 42.305],
            [141.005, 42.305],
            [141.005, 42.345],
            [140.955, 42.345],
            [140.955, 42.305],
        ]
    ],
}


def build_dispatcher(
    zones: list[ServiceZone],
    vehicles_per_zone: int,
    shift: tuple[float, float],
    seed: int,
    vtype: VehicleType = VAN,
    travel: TravelTimes | None = None,
    rules: ServiceRules | None = None,
    speeds: TimeOfDaySpeeds | None = None,
) -> Dispatcher:
    """A dispatcher with ``vehicles_per_zone`` vehicles at random depots in every zone
    (driving through the time-of-day ``speeds`` windows; free flow if None)."""
    rng = np.random.default_rng(seed)
    d = Dispatcher(
        travel or StraightLineTravelTimes(1.3),
        rules or ServiceRules(),
        clock=lambda: shift[0],
        speeds=speeds,
    )
    for z in zones:
        d.add_zone(z)
        depots = z.random_points(rng, vehicles_per_zone)
        for k in range(vehicles_per_zone):
            p = (float(depots[k, 0]), float(depots[k, 1]))
            d.add_vehicle(
                Vehicle(
                    f"{z.zone_id}-v{k}",
                    vtype,
                    p,
                    shift[0],
                    shift[1],
                    p,
                    shift[0],
                    zone_id=z.zone_id,
                )
            )
    return d


#: With a fixed ALNS iteration count the wall-clock cap of a re-optimisation pass is raised to
#: at least this, so that the iterations end the pass, not the machine's load.
ITERATIONS_CAP_S = 600.0


def reopt_time_limit(limit_s: float, iterations: int | None) -> float:
    """The time limit of a re-optimisation pass: ``limit_s``, or with a fixed ALNS
    ``iterations`` count at least :data:`ITERATIONS_CAP_S` (a safety cap that never binds
    first, so the same seed gives the same plans)."""
    return limit_s if iterations is None else max(limit_s, ITERATIONS_CAP_S)


def add_replay_options(parser: argparse.ArgumentParser) -> None:
    """The ``--alns-iterations``, ``--requests`` and ``--write-requests`` options shared by
    ``tsunagu simulate`` and ``python -m bench.simulate``."""
    parser.add_argument(
        "--alns-iterations",
        type=int,
        default=None,
        help="re-optimise with ALNS for exactly N iterations a pass: the same seed gives the "
        "same KPIs (the time limit is then raised so it never binds first)",
    )
    day = parser.add_mutually_exclusive_group()
    day.add_argument(
        "--requests",
        type=Path,
        default=None,
        help=f"replay the day in this CSV instead of generating one ({CSV_HELP})",
    )
    day.add_argument(
        "--write-requests",
        type=Path,
        default=None,
        help="save the generated day to this CSV (replay it with --requests)",
    )

"""A simulated day of on-demand service in a real service area, insertion only vs insertion +
re-optimisation.

Area: the three CobbLinc GTFS-Flex zones (``../shared/data/gtfs/us_cobblinc_flex.zip``: real
polygons, 07:00-19:00 service, 2 h to 24 h booking notice), Poisson demand with hotspots,
4 vans per zone. Travel times: the straight-line model by default, or the OSM driving graph
(``--osm``, ``../shared/data/osm/us_cobb_county_filtered.osm.pbf``).

Time-of-day speed factors: ``--peaks "07:00-09:00=0.7,17:00-19:00=0.7"`` (local time; the
dispatcher and the simulated vehicles drive through them, :mod:`dispatch.time_dependent`).

Invariants (windows, capacity, ride times, no lost or duplicated ride) are checked on every
plan after every simulated step by default, so a violation is caught at the step that made it,
not only in the final state; ``--no-check-every-step`` checks only at the end (faster).
Measured (straight line, rate 30, 4 vans per zone, seed 1, 1035 requests, 0 violations either
way): insertion 13.3 s -> 20.2 s with the per-step checks, insertion + OR-Tools re-optimisation
145.7 s -> 158.3 s: about 7 s a simulated day, hence on by default.

Replay: ``--write-requests day.csv`` saves the generated day, ``--requests day.csv`` replays a
day from a CSV instead of generating one (columns: ``request_id``, ``requested_at``,
``earliest_pickup`` in seconds after midnight, ``origin_lat``, ``origin_lon``,
``destination_lat``, ``destination_lon``, ``seats``, ``wheelchairs``; see
:mod:`dispatch.simulation.demand`). A replayed day gives the KPIs of the generated run.

Reproducibility: the same ``--seed`` gives the same day and the same depots. Insertion is
deterministic; OR-Tools re-optimisation stops on a wall-clock limit, so its result depends on
the machine's load. ``--alns-iterations N`` re-optimises with ALNS for exactly N iterations per
pass (``--reopt-limit`` then only caps a pass at no less than 600 s, so it never binds first):
two runs with the same seed then give identical KPIs.

Run ``python -m bench.simulate [--json PATH] [--rate R] [--osm] [--peaks WINDOWS]
[--no-check-every-step] [--requests CSV | --write-requests CSV] [--alns-iterations N]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from dispatch.flex_zones import load_flex_zones
from dispatch.reoptimize import reoptimise_zone
from dispatch.request import RideRequest
from dispatch.simulation.demand import (
    DemandModel,
    generate_requests,
    read_requests_csv,
    write_requests_csv,
)
from dispatch.simulation.scenario import add_replay_options, build_dispatcher, reopt_time_limit
from dispatch.simulation.simulator import Simulator, lost_or_duplicated
from dispatch.time_dependent import parse_speed_windows
from dispatch.travel_times import StraightLineTravelTimes, TravelTimes
from routing.street import TimeOfDaySpeeds

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
START, END = 7 * 3600.0, 19 * 3600.0
FEED = DATA / "gtfs" / "us_cobblinc_flex.zip"


def _travel(osm: bool) -> TravelTimes:
    if not osm:
        return StraightLineTravelTimes(1.3)
    from dispatch.street_times import street_travel_times

    return street_travel_times(DATA / "osm" / "us_cobb_county_filtered.osm.pbf")


def generate_day(rate: float, seed: int) -> list[RideRequest]:
    """The generated day of every zone (ids unique across zones), sorted by booking time."""
    zones = load_flex_zones(FEED)
    demand = DemandModel(rate_per_hour=rate, notice_s=(2 * 3600.0, 6 * 3600.0))
    requests: list[RideRequest] = []
    for k, z in enumerate(zones):
        requests += generate_requests(z, demand, START, END, seed + k)
    requests = [
        dataclasses.replace(r, request_id=f"{r.request_id}-{i}") for i, r in enumerate(requests)
    ]
    requests.sort(key=lambda r: (r.requested_at, r.request_id))
    return requests


def run(
    reopt: bool,
    rate: float,
    vans: int,
    seed: int,
    osm: bool,
    reopt_every_s: float,
    reopt_limit_s: float,
    solver: str = "ortools",
    iterations: int | None = None,
    speeds: TimeOfDaySpeeds | None = None,
    check_every_step: bool = True,
    *,
    requests: list[RideRequest] | None = None,
) -> dict[str, Any]:
    """One simulated day; KPIs, wall time and the number of invariant violations.

    ``check_every_step``: check every plan's invariants after each step (else at the end only).
    ``requests``: the day to replay (e.g. from :func:`read_requests_csv`); generated from
    ``rate`` and ``seed`` if None. ``iterations``: fixed ALNS iterations per re-optimisation
    pass, which then never stops on ``reopt_limit_s`` first (see :func:`reopt_time_limit`).
    """
    zones = load_flex_zones(FEED)
    if requests is None:
        requests = generate_day(rate, seed)
    limit_s = reopt_time_limit(reopt_limit_s, iterations)
    d = build_dispatcher(
        zones, vans, (START - 1800, END + 3600), seed, travel=_travel(osm), speeds=speeds
    )

    def reoptimise(now: float) -> int:
        return sum(reoptimise_zone(d, z.zone_id, now, limit_s, solver, iterations) for z in zones)

    sim = Simulator(
        d,
        requests,
        step_s=60.0,
        check_invariants=check_every_step,
        reoptimise=reoptimise if reopt else None,
        reopt_every_s=reopt_every_s,
        position_mode="commit" if osm else "interpolate",
    )
    t = time.perf_counter()
    res = sim.run(START - 3 * 3600, END)
    wall = time.perf_counter() - t
    problems = res.violations + lost_or_duplicated(d, requests, len(sim.rejections))
    out = res.kpis.to_dict()
    out.update(
        wall_s=wall,
        violations=len(problems),
        requests_generated=len(requests),
        checked_every_step=check_every_step,
    )
    for msg in problems[:5]:
        print("  VIOLATION", msg)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--rate", type=float, default=30.0, help="requests per hour per zone")
    ap.add_argument("--vans", type=int, default=4, help="vans per zone")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--osm", action="store_true", help="OSM driving graph instead of straight line")
    ap.add_argument("--reopt-every", type=float, default=900.0)
    ap.add_argument("--reopt-limit", type=float, default=0.5)
    ap.add_argument(
        "--solver",
        choices=("ortools", "alns"),
        default=None,
        help="re-optimisation solver (default: ortools, or alns with --alns-iterations)",
    )
    add_replay_options(ap)
    ap.add_argument(
        "--peaks",
        default="",
        help='time-of-day speed windows, e.g. "07:00-09:00=0.7,17:00-19:00=0.7" (free flow if empty)',
    )
    ap.add_argument(
        "--check-every-step",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="check every plan's invariants after each simulated step (default); "
        "--no-check-every-step checks the final state only",
    )
    a = ap.parse_args(argv)
    try:
        speeds = parse_speed_windows(a.peaks)
    except ValueError as exc:
        ap.error(str(exc))
    if a.alns_iterations is not None and a.alns_iterations < 1:
        ap.error("--alns-iterations must be >= 1")
    if a.alns_iterations is not None and a.solver == "ortools":
        ap.error("--alns-iterations needs the ALNS solver (OR-Tools stops on a time limit)")
    solver = a.solver or ("alns" if a.alns_iterations is not None else "ortools")
    if a.requests is not None:
        try:
            requests = read_requests_csv(a.requests)
        except ValueError as exc:
            ap.error(str(exc))
        print(f"replaying {len(requests)} requests from {a.requests}")
    else:
        requests = generate_day(a.rate, a.seed)
        if a.write_requests is not None:
            try:
                write_requests_csv(requests, a.write_requests)
            except OSError as exc:
                ap.error(f"cannot write the requests file: {exc}")
            print(f"wrote {len(requests)} requests to {a.write_requests}")
    results = {}
    for name, reopt in (("insertion", False), ("insertion_reopt", True)):
        r = run(
            reopt,
            a.rate,
            a.vans,
            a.seed,
            a.osm,
            a.reopt_every,
            a.reopt_limit,
            solver,
            a.alns_iterations,
            speeds,
            a.check_every_step,
            requests=requests,
        )
        results[name] = r
        print(
            f"{name:16s} requests {r['requests']}  served {r['served']} ({r['service_rate']:.1%})"
            f"  wait mean {r['mean_wait_min']:.1f} / p95 {r['p95_wait_min']:.1f} min"
            f"  detour {r['mean_detour']:.2f}  veh-km {r['vehicle_km']:.0f}"
            f"  empty {r['empty_km_share']:.1%}  pax/veh-h {r['passengers_per_vehicle_hour']:.2f}"
            f"  reopt applied {r['reoptimisations_applied']}  violations {r['violations']}"
            f"  ({r['wall_s']:.0f} s)"
        )
    a_, b_ = results["insertion"], results["insertion_reopt"]
    ratios = {
        "served_ratio": b_["served"] / max(a_["served"], 1),
        "km_per_served_ratio": (b_["vehicle_km"] / max(b_["served"], 1))
        / (a_["vehicle_km"] / max(a_["served"], 1)),
    }
    print(
        f"re-optimisation vs insertion: served x{ratios['served_ratio']:.3f}, "
        f"km per served ride x{ratios['km_per_served_ratio']:.3f}"
    )
    if a.json:
        a.json.write_text(json.dumps({**results, **ratios}, indent=2))


if __name__ == "__main__":
    main()

"""``tsunagu simulate``: a simulated day of on-demand service, from the command line.

    tsunagu simulate [--feed FLEX.zip] [--rate R] [--vans N] [--from HH:MM] [--to HH:MM]
                     [--reopt-every S] [--reopt-limit S] [--seed K] [--json PATH]
                     [--peaks "07:00-09:00=0.7,17:00-19:00=0.7"] [--alns-iterations N]
                     [--requests DAY.csv | --write-requests DAY.csv]

Riders (Poisson demand with hotspots, ``dispatch.simulation.demand``) request rides in every
polygon zone of a GTFS-Flex feed (by default the real CobbLinc feed of the shared data); the
dispatcher quotes and books them by insertion, optionally re-optimising every ``--reopt-every``
simulated seconds; the day ends with the service KPIs (served share, waits, detours,
vehicle-km) and a check that no request was lost or served twice. ``--peaks`` sets time-of-day
speed windows (local time of the zones): quotes, promises and the simulated vehicles all drive
through them (``dispatch.time_dependent``).

``--write-requests DAY.csv`` saves the generated day; ``--requests DAY.csv`` replays a day from
a CSV instead of generating one. Its columns (header row, any order, see
``dispatch.simulation.demand``): ``request_id``; ``requested_at`` and ``earliest_pickup``
(seconds after midnight, local time; ``earliest_pickup`` may be empty: as soon as booked);
``origin_lat``, ``origin_lon``, ``destination_lat``, ``destination_lon`` (degrees); ``seats``,
``wheelchairs``. A bad file is refused naming its line and column. ``--from``/``--to`` still
set the vehicles' shifts (one hour either side).

Same seed, same result: the day and the depots follow ``--seed`` and insertion is
deterministic, but re-optimisation with OR-Tools stops on a wall-clock limit. With
``--alns-iterations N`` each pass runs ALNS for exactly N iterations instead (the limit is then
raised to at least 600 s so it never binds first), and two runs give identical KPIs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.settings import Settings
from dispatch.simulation.scenario import add_replay_options, reopt_time_limit

if TYPE_CHECKING:
    from dispatch.request import RideRequest
    from dispatch.zone import ServiceZone


def register(sub: Any) -> None:
    p = sub.add_parser("simulate", help="simulate a day of on-demand service in GTFS-Flex zones")
    p.add_argument("--feed", type=Path, default=None, help="GTFS-Flex feed (.zip or folder)")
    p.add_argument("--rate", type=float, default=20.0, help="requests per hour per zone")
    p.add_argument("--vans", type=int, default=4, help="vans per zone")
    p.add_argument("--from", dest="start", default="07:00", help="first pick-up time (HH:MM)")
    p.add_argument("--to", dest="end", default="19:00", help="last pick-up time (HH:MM)")
    p.add_argument(
        "--reopt-every", type=float, default=900.0, help="simulated s between re-optimisations"
    )
    p.add_argument("--reopt-limit", type=float, default=0.5, help="solver seconds per zone")
    p.add_argument("--no-reopt", action="store_true", help="insertion only")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, default=None, help="write the KPIs as JSON here")
    p.add_argument(
        "--peaks",
        default="",
        help='speed windows, e.g. "07:00-09:00=0.7,17:00-19:00=0.7" (default: free flow)',
    )
    add_replay_options(p)
    p.set_defaults(func=cmd_simulate)


def _clock(text: str) -> float:
    """``HH:MM`` as seconds after midnight (``ValueError`` otherwise)."""
    hh, sep, mm = text.partition(":")
    if not sep or not hh.isdigit() or not mm.isdigit() or int(mm) >= 60 or int(hh) > 47:
        raise ValueError(f"not a time of day (HH:MM): {text!r}")
    return int(hh) * 3600.0 + int(mm) * 60.0


def _generate(
    zones: list[ServiceZone], rate_per_hour: float, start_s: float, end_s: float, seed: int
) -> list[RideRequest]:
    """The generated day of every zone (ids prefixed by the zone), sorted by booking time."""
    from dispatch.simulation.demand import DemandModel, generate_requests

    requests: list[RideRequest] = []
    for k, zone in enumerate(zones):
        # Riders book within the zone's notice rules (GTFS-Flex prior notice), up to 4 h ahead.
        low = zone.min_notice_s
        demand = DemandModel(
            rate_per_hour=rate_per_hour,
            notice_s=(low, max(low, min(zone.max_notice_s, low + 4 * 3600.0))),
        )
        # Request ids are per zone: prefix them so they stay unique across zones.
        requests += [
            dataclasses.replace(r, request_id=f"{zone.zone_id}-{r.request_id}")
            for r in generate_requests(zone, demand, start_s, end_s, seed + k)
        ]
    requests.sort(key=lambda r: (r.requested_at, r.request_id))
    return requests


def simulate_day(
    feed: Path,
    *,
    rate_per_hour: float,
    vans_per_zone: int,
    start_s: float,
    end_s: float,
    reopt_every_s: float | None,
    reopt_limit_s: float,
    seed: int,
    peaks: str = "",
    alns_iterations: int | None = None,
    requests_csv: Path | None = None,
    write_requests: Path | None = None,
) -> dict[str, Any]:
    """Run the day; the KPIs (``dispatch.simulation.kpis.Kpis``) plus ``zones``,
    ``requests_generated``, ``problems`` (lost, duplicated or infeasible), ``speed_windows``
    and ``wall_s``. ``peaks``: speed windows in the text form of
    :func:`~dispatch.time_dependent.parse_speed_windows` (``ValueError`` if malformed).

    ``requests_csv``: replay that day instead of generating one (``ValueError`` naming the line
    and column if malformed); ``write_requests``: save the generated day there.
    ``alns_iterations``: re-optimise with ALNS for exactly that many iterations a pass
    (reproducible) instead of OR-Tools within ``reopt_limit_s``."""
    from dispatch.flex_zones import load_flex_zones
    from dispatch.reoptimize import reoptimise_zone
    from dispatch.simulation.demand import read_requests_csv, write_requests_csv
    from dispatch.simulation.scenario import build_dispatcher
    from dispatch.simulation.simulator import Simulator, lost_or_duplicated
    from dispatch.time_dependent import parse_speed_windows

    speeds = parse_speed_windows(peaks)
    zones = load_flex_zones(feed)
    if requests_csv is not None:
        requests = read_requests_csv(requests_csv)
    else:
        requests = _generate(zones, rate_per_hour, start_s, end_s, seed)
        if write_requests is not None:
            write_requests_csv(requests, write_requests)
    dispatcher = build_dispatcher(
        zones, vans_per_zone, (start_s - 3600, end_s + 3600), seed, speeds=speeds
    )
    solver = "ortools" if alns_iterations is None else "alns"
    limit_s = reopt_time_limit(reopt_limit_s, alns_iterations)

    def reoptimise(now: float) -> int:
        return sum(
            reoptimise_zone(dispatcher, z.zone_id, now, limit_s, solver, alns_iterations)
            for z in zones
        )

    sim = Simulator(
        dispatcher,
        requests,
        step_s=60.0,
        check_invariants=False,
        reoptimise=reoptimise if reopt_every_s else None,
        reopt_every_s=reopt_every_s or 900.0,
    )
    t0 = time.perf_counter()
    # Start early enough that the first bookings (made ahead of time) are simulated.
    first = min((r.requested_at for r in requests), default=start_s)
    result = sim.run(min(first, start_s) - 60.0, end_s)
    problems = result.violations + lost_or_duplicated(dispatcher, requests, len(sim.rejections))
    out = result.kpis.to_dict()
    out.update(
        zones=[z.zone_id for z in zones],
        requests_generated=len(requests),
        problems=problems,
        speed_windows=[list(w) for w in speeds.windows],
        wall_s=round(time.perf_counter() - t0, 3),
    )
    return out


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    feed = args.feed or settings.shared_data_dir / "gtfs" / "us_cobblinc_flex.zip"
    try:
        start_s, end_s = _clock(args.start), _clock(args.end)
        if end_s <= start_s:
            raise ValueError("--to must be after --from")
        if args.rate < 0 or args.vans < 1:
            raise ValueError("--rate must be >= 0 and --vans >= 1")
        if not Path(feed).exists():
            raise ValueError(f"no such feed: {feed}")
        if args.alns_iterations is not None and args.alns_iterations < 1:
            raise ValueError("--alns-iterations must be >= 1")
        kpis = simulate_day(
            Path(feed),
            rate_per_hour=args.rate,
            vans_per_zone=args.vans,
            start_s=start_s,
            end_s=end_s,
            reopt_every_s=None if args.no_reopt else args.reopt_every,
            reopt_limit_s=args.reopt_limit,
            seed=args.seed,
            peaks=args.peaks,
            alns_iterations=args.alns_iterations,
            requests_csv=args.requests,
            write_requests=args.write_requests,
        )
    except ValueError as exc:  # bad arguments, a bad requests CSV or a feed without flex zones
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # --write-requests into a missing folder, a full disk, ...
        print(f"error: cannot write the requests file: {exc}", file=sys.stderr)
        return 2
    print(
        f"{len(kpis['zones'])} zone(s), {kpis['requests']} requests: served {kpis['served']}"
        f" ({kpis['service_rate']:.1%}), rejected {kpis['rejected']}\n"
        f"wait mean {kpis['mean_wait_min']:.1f} / p95 {kpis['p95_wait_min']:.1f} min,"
        f" detour x{kpis['mean_detour']:.2f}, {kpis['vehicle_km']:.0f} veh-km"
        f" ({kpis['empty_km_share']:.0%} empty),"
        f" {kpis['passengers_per_vehicle_hour']:.2f} pax/veh-h,"
        f" re-optimisations applied {kpis['reoptimisations_applied']}"
    )
    for problem in kpis["problems"][:10]:
        print(f"PROBLEM {problem}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(kpis, indent=2))
    return 1 if kpis["problems"] else 0

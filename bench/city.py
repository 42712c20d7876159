"""A whole city's simulated day: 2,000 vehicles, 50,000 requests, many zones, one owner each.

The city (:mod:`dispatch.simulation.city`): a 4 x 5 grid of 4 km square zones (320 km2,
about a quarter of the density of NYC's yellow cabs in Manhattan, as in Alonso-Mora et al.
2017), demand from a seeded generator with a weekday's hourly profile (peaks at 08:00 and
17:00-19:00), home and work hotspots per zone and central zones busier
(:func:`dispatch.simulation.demand.generate_city_requests`), or replayed from a CSV
(``--requests``, the simulator's format). The fleet is shared out to the zones by demand and
works three shifts. Each zone is owned by one worker process, as in the scaled-out service:
the worker's live dispatcher quotes and books the zone's requests at their time, drives its
vehicles (boarding, alighting, position reports) and re-optimises each zone with ALNS every
``--reopt-every`` seconds. The invariant checker (windows, capacity, ride-time limits, vehicle
hours, no ride lost or doubled, who is onboard where) runs on every worker's plans every
``--check-every`` simulated seconds (by default at every 60 s step) and on everything served
at the end.

Reported: simulated-time speed-up over real time (target >= 10x), served share, wait and
detour (mean, p95), vehicle-km per served ride, re-optimisation gains (planned km the passes
removed), invariant violations (must be 0), peak memory per worker, quote and booking
latency during the day, and the quote p95 of one zone owner with 50 / 200 / 1,000 vehicles
in its zone (at the city's density and peak demand per vehicle), with and without the spatial
pruning of candidate vehicles; the unpruned quote is the baseline measured in the same run
(target <= 20 ms at 1,000).

Run ``python -m bench.city [--json PATH] [--quick]``; ``--quick`` is a CI-sized city
(4 zones, 40 vehicles, 1,000 requests; quote latency at 50 and 200 vehicles).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dispatch.optimize.alns import warm_up
from dispatch.request import RideRequest
from dispatch.simulation.city import (
    CityLayout,
    WorkerResult,
    assign_zones,
    merge,
    run_worker,
    share_out,
    zone_quote_latency,
)
from dispatch.simulation.demand import (
    CSV_HELP,
    CityDemand,
    generate_city_requests,
    read_requests_csv,
    write_requests_csv,
)


@dataclass(frozen=True)
class CityRun:
    """The size of a city run."""

    rows: int = 4
    cols: int = 5
    side_km: float = 4.0
    vehicles: int = 2000
    requests: int = 50_000
    workers: int = 2
    reopt_every_s: float | None = 900.0
    reopt_limit_s: float = 0.3
    # Every plan in force checked at every 60 s step: the checker is linear in the live state,
    # so even the full city affords it.
    check_every_s: float = 60.0
    latency_sizes: tuple[int, ...] = (50, 200, 1000)
    latency_warm_s: float = 1800.0
    latency_measure_s: float = 900.0
    latency_min_quotes: int = 300


QUICK = CityRun(
    rows=2,
    cols=2,
    side_km=3.0,
    vehicles=40,
    requests=1000,
    reopt_every_s=1800.0,
    reopt_limit_s=0.05,
    check_every_s=60.0,
    latency_sizes=(50, 200),
    latency_warm_s=600.0,
    latency_measure_s=300.0,
    latency_min_quotes=100,
)


def _worker(
    layout: CityLayout,
    indices: list[int],
    vehicles: list[int],
    requests: list[RideRequest],
    seed: int,
    run: CityRun,
) -> WorkerResult:
    zones = layout.zones()
    return run_worker(
        [zones[k] for k in indices],
        [vehicles[k] for k in indices],
        requests,
        seed,
        reopt_every_s=run.reopt_every_s,
        reopt_limit_s=run.reopt_limit_s,
        check_every_s=run.check_every_s,
    )


def city_day(
    run: CityRun, seed: int, requests: list[RideRequest] | None = None
) -> tuple[dict[str, Any], list[RideRequest]]:
    """Simulate the city's day in ``run.workers`` processes; the merged figures and the day."""
    layout = CityLayout(rows=run.rows, cols=run.cols, side_km=run.side_km)
    zones = layout.zones()
    weights = layout.weights()
    if requests is None:
        requests = generate_city_requests(zones, weights, CityDemand(total=run.requests), seed)
    vehicles = share_out(run.vehicles, weights)
    owners = assign_zones(vehicles, run.workers)
    zone_ids = [z.zone_id for z in zones]
    by_zone: dict[str, list[RideRequest]] = {z: [] for z in zone_ids}
    for r in requests:
        zid = next((z.zone_id for z in zones if z.contains(*r.origin)), None)
        # A request starting outside the city goes to the first owner, which refuses it.
        by_zone[zid or zone_ids[0]].append(r)
    if run.reopt_every_s:
        # Compile the ALNS kernels once here when numba's cache is stale (the workers then
        # load them from it) rather than in every worker at once, on the day's clock.
        t = time.perf_counter()
        warm_up()
        warmup_s = time.perf_counter() - t
    else:
        warmup_s = 0.0
    t = time.perf_counter()
    # Spawned, not forked: each worker is a process of its own, as a zone owner would be.
    with ProcessPoolExecutor(run.workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [
            pool.submit(
                _worker,
                layout,
                idx,
                vehicles,
                sorted(
                    (r for k in idx for r in by_zone[zone_ids[k]]),
                    key=lambda r: (r.requested_at, r.request_id),
                ),
                seed + w,
                run,
            )
            for w, idx in enumerate(owners)
            if idx
        ]
        results = [f.result() for f in futures]
    out = merge(results, time.perf_counter() - t)
    out["warmup_s"] = warmup_s
    out["vehicles_per_zone"] = {zone_ids[k]: vehicles[k] for k in range(len(zones))}
    return out, requests


def latency_table(run: CityRun, day: dict[str, Any], seed: int) -> dict[str, Any]:
    """Quote p95 of one zone owner at each fleet size, with and without pruning."""
    density = run.vehicles / (run.rows * run.cols * run.side_km**2)
    demand = hourly_peak_per_vehicle(run)
    out: dict[str, Any] = {"vehicles_per_km2": density, "requests_per_vehicle_hour": demand}
    for n in run.latency_sizes:
        row: dict[str, Any] = {}
        for prune in (True, False):
            row["pruned" if prune else "unpruned"] = zone_quote_latency(
                n,
                demand,
                density,
                seed + n,
                warm_s=run.latency_warm_s,
                measure_s=run.latency_measure_s,
                min_quotes=run.latency_min_quotes,
                prune=prune,
            )
        p, u = row["pruned"], row["unpruned"]
        row["speedup_p95"] = u["quote_p95_ms"] / p["quote_p95_ms"] if p["quote_p95_ms"] else 0.0
        out[f"{n}_vehicles"] = row
        print(
            f"  zone of {n:5d} vehicles ({p['zone_side_km']:.1f} km side, "
            f"{p['quotes_timed']} quotes): quote p95 {p['quote_p95_ms']:.2f} ms pruned, "
            f"{u['quote_p95_ms']:.2f} ms unpruned (x{row['speedup_p95']:.1f}), "
            f"{p['candidates_share']:.0%} of the vehicles evaluated a quote after pruning; "
            f"p50 {p['quote_p50_ms']:.2f} ms, {p['quotes_per_s']:.0f} quotes/s; "
            f"booking p95 {p['book_p95_ms']:.2f} ms",
            flush=True,
        )
    del day
    return out


def hourly_peak_per_vehicle(run: CityRun) -> float:
    """Requests per on-shift vehicle in the day's busiest hour (the latency runs' load)."""
    from dispatch.simulation.city import SHIFTS
    from dispatch.simulation.demand import hourly_rates

    rates = hourly_rates(CityDemand(total=run.requests))
    best = 0.0
    for h, rate in enumerate(rates):
        t = h * 3600.0 + 1800.0
        on = sum(share for start, end, share in SHIFTS if start <= t < end)
        if on > 0:
            best = max(best, rate / (on * run.vehicles))
    return best


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--quick", action="store_true", help="a CI-sized city")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rows", type=int, default=None, help="zones north to south")
    ap.add_argument("--cols", type=int, default=None, help="zones west to east")
    ap.add_argument("--side-km", type=float, default=None, help="side of a square zone")
    ap.add_argument("--vehicles", type=int, default=None)
    ap.add_argument("--requests-per-day", type=int, default=None)
    ap.add_argument("--workers", type=int, default=None, help="zone owner processes")
    ap.add_argument("--reopt-every", type=float, default=None, help="seconds; 0: insertion only")
    ap.add_argument("--reopt-limit", type=float, default=None, help="ALNS seconds a zone a pass")
    ap.add_argument("--check-every", type=float, default=None, help="simulated seconds")
    ap.add_argument(
        "--latency-sizes",
        default=None,
        help="vehicles per zone for the quote latency runs, e.g. 50,200,1000 ('' to skip)",
    )
    ap.add_argument(
        "--latency-only", action="store_true", help="only the zone owner's quote latency runs"
    )
    day = ap.add_mutually_exclusive_group()
    day.add_argument("--requests", type=Path, help=f"replay this CSV ({CSV_HELP})")
    day.add_argument("--write-requests", type=Path, help="save the generated day to this CSV")
    a = ap.parse_args(argv)
    run = QUICK if a.quick else CityRun()
    changes: dict[str, Any] = {}
    for name in ("rows", "cols", "side_km"):
        if getattr(a, name) is not None:
            changes[name] = getattr(a, name)
    if a.vehicles is not None:
        changes["vehicles"] = a.vehicles
    if a.requests_per_day is not None:
        changes["requests"] = a.requests_per_day
    if a.workers is not None:
        changes["workers"] = a.workers
    if a.reopt_every is not None:
        changes["reopt_every_s"] = a.reopt_every or None
    if a.reopt_limit is not None:
        changes["reopt_limit_s"] = a.reopt_limit
    if a.check_every is not None:
        changes["check_every_s"] = a.check_every
    if a.latency_sizes is not None:
        try:
            changes["latency_sizes"] = tuple(int(x) for x in a.latency_sizes.split(",") if x)
        except ValueError:
            ap.error("--latency-sizes takes integers separated by commas")
    run = CityRun(**{**asdict(run), **changes})
    if run.vehicles < run.rows * run.cols or run.workers < 1:
        ap.error("at least one vehicle per zone and one worker")
    replay = None
    if a.requests is not None:
        try:
            replay = read_requests_csv(a.requests)
        except ValueError as exc:
            ap.error(str(exc))
    load0 = _load()
    if a.latency_only:
        out: dict[str, Any] = {"run": asdict(run), "load_before": load0}
        print(f"quote latency of one zone owner (load {load0}):", flush=True)
        out["zone_latency"] = latency_table(run, out, a.seed)
        out["load_after"] = _load()
        print(f"load average {load0} -> {out['load_after']}")
        if a.json:
            a.json.write_text(json.dumps(out, indent=2))
        return
    print(
        f"city: {run.rows * run.cols} zones of {run.side_km:g} km, {run.vehicles} vehicles, "
        f"{len(replay) if replay is not None else run.requests} requests, {run.workers} workers "
        f"(load {load0})",
        flush=True,
    )
    out, requests = city_day(run, a.seed, replay)
    if a.write_requests is not None:
        write_requests_csv(requests, a.write_requests)
    print(
        f"  served {out['served']}/{out['requests']} ({out['served_share']:.1%})  "
        f"wait mean {out['mean_wait_min']:.1f} / p95 {out['p95_wait_min']:.1f} min  "
        f"detour mean {out['mean_detour']:.2f} / p95 {out['p95_detour']:.2f}  "
        f"veh-km per served {out['vehicle_km_per_served']:.2f}  "
        f"empty {out['empty_km_share']:.1%}\n"
        f"  re-optimisation: {out['reopt_passes']} passes, {out['reopt_vehicles_replanned']} "
        f"plans replaced, {out['reopt_saved_km']:.0f} planned km removed "
        f"({out['reopt_saved_share_of_planned']:.2%} of the km planned at the passes), "
        f"{out['reopt_wall_per_pass_s']:.2f} s wall a pass\n"
        f"  quote p50 {out['quote_p50_ms']:.2f} / p95 {out['quote_p95_ms']:.2f} ms, booking "
        f"p95 {out['book_p95_ms']:.2f} ms ({out['quotes']} quotes)\n"
        f"  {out['simulated_h']:.1f} h simulated in {out['wall_s']:.0f} s: "
        f"x{out['speedup_vs_real_time']:.0f} real time (target >= 10)  "
        f"peak RSS {out['peak_rss_mb_max_worker']:.0f} MB a worker "
        f"({out['peak_rss_mb_all_workers']:.0f} MB all)  violations {out['violations']} "
        f"in {sum(out['worker_plan_checks'])} checks of every plan",
        flush=True,
    )
    for v in out["violation_examples"]:
        print("  VIOLATION", v)
    out["run"] = asdict(run)
    out["load_before"] = load0
    out["load_after_day"] = _load()
    if run.latency_sizes:
        print("quote latency of one zone owner (vehicles moving, peak demand):", flush=True)
        out["zone_latency"] = latency_table(run, out, a.seed)
        biggest = out["zone_latency"][f"{max(run.latency_sizes)}_vehicles"]["pruned"]
        out["quote_p95_ms_largest_zone"] = biggest["quote_p95_ms"]
        out["target_quote_p95_ms"] = 20.0
    out["load_after"] = _load()
    print(f"load average {out['load_before']} -> {out['load_after']}")
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

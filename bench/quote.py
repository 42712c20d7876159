"""Quote latency: the numba insertion over 50, 200 and 1,000 vehicles holding 4-8 planned stops,
with the spatial pruning of candidate vehicles and without it, and after one plan change (a
live zone's usual case: only that vehicle's slot is written again).

Baseline, measured in the same run: the plain-Python brute-force insertion (the reference the
tests hold the fast one to). Run ``python -m bench.quote [--json PATH] [--peaks WINDOWS]``;
target p95 <= 20 ms at 200 vehicles (``p95_ms_200_vehicles``, free flow). The same figures are
measured again with time-of-day speed windows (``--peaks``, default the 07:00-09:00 and
17:00-19:00 rush hours at 0.7; quotes at 08:00, so legs cross the 09:00 boundary), under
``peaks``; ``--peaks ""`` skips them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from dispatch.insertion_reference import reference_best_insertion
from dispatch.plan_arrays import FleetArrays
from dispatch.simulation.random_fleet import random_fleet, random_ride
from dispatch.time_dependent import (
    FREE_FLOW_PROFILE,
    SpeedProfile,
    compile_speeds,
    parse_speed_windows,
)

NOW = 8 * 3600.0


def _measure(
    n_vehicles: int,
    n_quotes: int,
    n_ref: int,
    seed: int,
    profile: SpeedProfile = FREE_FLOW_PROFILE,
) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    vehicles, travel = random_fleet(rng, n_vehicles, profile=profile)
    rides = [random_ride(rng, NOW, travel) for _ in range(n_quotes)]
    fleet = FleetArrays(travel, profile)
    plain = FleetArrays(travel, profile)
    plain.prune = False
    fleet.best_insertion(vehicles, rides[0], NOW)  # JIT warm-up (cached on disk after run 1)
    plain.best_insertion(vehicles, rides[0], NOW)
    fast = []
    unpruned = []
    after_move = []
    found = 0
    for k, r in enumerate(rides):
        t = time.perf_counter()
        ins = fleet.best_insertion(vehicles, r, NOW)
        fast.append(time.perf_counter() - t)
        found += ins is not None
        t = time.perf_counter()
        plain.best_insertion(vehicles, r, NOW)
        unpruned.append(time.perf_counter() - t)
        # A live zone: a position report (or a booking) came in since the last quote.
        fleet.invalidate(vehicles[k % n_vehicles].vehicle_id)
        t = time.perf_counter()
        fleet.best_insertion(vehicles, r, NOW)
        after_move.append(time.perf_counter() - t)
    ref = []
    for r in rides[:n_ref]:
        t = time.perf_counter()
        reference_best_insertion(vehicles, r, NOW, travel, profile)
        ref.append(time.perf_counter() - t)
    # A cold quote also rebuilds every vehicle's cached arrays (after a burst of plan changes).
    cold = []
    for r in rides[:20]:
        fleet = FleetArrays(travel, profile)
        t = time.perf_counter()
        fleet.best_insertion(vehicles, r, NOW)
        cold.append(time.perf_counter() - t)
    fast_ms = np.array(fast) * 1e3
    ref_ms = np.array(ref) * 1e3
    return {
        "vehicles": n_vehicles,
        "stops": int(sum(len(v.plan) for v in vehicles)),
        "quotes": n_quotes,
        "feasible_share": found / n_quotes,
        "p50_ms": float(np.median(fast_ms)),
        "p95_ms": float(np.percentile(fast_ms, 95)),
        "unpruned_p95_ms": float(np.percentile(unpruned, 95) * 1e3),
        "after_one_change_p95_ms": float(np.percentile(after_move, 95) * 1e3),
        "cold_p50_ms": float(np.median(cold) * 1e3),
        "reference_p50_ms": float(np.median(ref_ms)),
        "speedup_p50": float(np.median(ref_ms) / np.median(fast_ms)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--quotes", type=int, default=300)
    ap.add_argument(
        "--peaks",
        default="07:00-09:00=0.7,17:00-19:00=0.7",
        help='speed windows measured besides free flow ("" to skip)',
    )
    args = ap.parse_args()
    try:
        speeds = parse_speed_windows(args.peaks)
    except ValueError as exc:
        ap.error(str(exc))
    out: dict[str, object] = {}
    runs: list[tuple[str, SpeedProfile, dict[str, object]]] = [
        ("free flow", FREE_FLOW_PROFILE, out)
    ]
    if speeds.windows:
        peaks: dict[str, object] = {"windows": [list(w) for w in speeds.windows]}
        out["peaks"] = peaks
        runs.append((f"peaks {args.peaks}", compile_speeds(speeds), peaks))
    for label, profile, into in runs:
        print(label)
        for n in (50, 200, 1000):
            m = _measure(n, args.quotes, n_ref={50: 20, 200: 10}.get(n, 3), seed=n, profile=profile)
            into[f"{n}_vehicles"] = m
            print(
                f"{n:4d} vehicles, {m['stops']} stops: p50 {m['p50_ms']:.2f} ms"
                f"  p95 {m['p95_ms']:.2f} ms (unpruned {m['unpruned_p95_ms']:.2f}, after one plan "
                f"change {m['after_one_change_p95_ms']:.2f})  (cold {m['cold_p50_ms']:.2f} ms)"
                f"  brute-force p50 {m['reference_p50_ms']:.1f} ms"
                f"  -> x{m['speedup_p50']:.0f}   feasible {m['feasible_share']:.0%}"
            )
    out["p95_ms_200_vehicles"] = out["200_vehicles"]["p95_ms"]  # type: ignore[index]
    out["target_p95_ms"] = 20.0
    print(f"p95 at 200 vehicles: {out['p95_ms_200_vehicles']:.2f} ms (target <= 20 ms)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

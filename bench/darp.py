"""Static DARP / PDPTW benchmark: ALNS vs. OR-Tools GLS (Cordeau 'a', 'pr'), vs. PyVRP (Li & Lim).

Usage::

    python -m bench.darp [--json PATH] [--time-limit 30] [--instances a2-16,a8-96,lc101]
                         [--set a,pr,lilim] [--baseline-time-limit S] [--lilim-time-limit 10]
                         [--quick]

``--set`` picks the instance families (comma-separated, default ``all``): ``a`` Cordeau
(2006), ``pr`` Cordeau & Laporte (2003) pr01-pr10, ``lilim`` Li & Lim 100-task PDPTW.

Per Cordeau instance ('a' and 'pr' alike): our solver (:func:`dispatch.optimize.hybrid.solve`:
ALNS in ``--workers`` parallel searches, one per core, each for ``--time-limit`` s, sharing
their best plans every ``--share-every`` of it; with
``--polish-share`` that share of it goes to an OR-Tools local search warm-started from the
best) and the plain OR-Tools GLS baseline (``--baseline-time-limit`` s, by default the
same budget), cost, gap to ``best_known.csv`` (proven optima or best known, where listed),
served/unserved, seconds, and whether :func:`dispatch.problem.check` accepts the plan. Per
Li & Lim instance: vehicles and distance of ALNS and of PyVRP (>= 0.14 models pickup-delivery
pairs natively as *shipments*; distances scaled x1000 and rounded for its integer model) beside
the best known. Figures are single runs (seed 0); ``mean_gap_pct`` is over instances with a
best known value and every request served (instances where a solver drops requests are
counted separately; the 'pr' family's keys carry a ``pr_`` prefix). The ALNS budget is CPU
seconds of one core by default (``--clock cpu``: the machine is shared, so wall time would
measure the neighbours); OR-Tools and PyVRP limits are wall-clock (their own timers).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from dispatch.instances import BestKnown, read_best_known, read_cordeau, read_cordeau_pr, read_lilim
from dispatch.optimize.fleet import solve_fleet_min
from dispatch.optimize.hybrid import STATIC_PARAMS, solve
from dispatch.optimize.ortools_model import solve_ortools
from dispatch.problem import Problem, Solution, check

DATA = (
    Path(
        os.environ.get(
            "TSUNAGU_SHARED_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "data"
        )
    )
    / "darp"
)
QUICK = ["a2-16", "a4-48", "a8-96", "lc101", "lr101"]
SETS = ("a", "pr", "lilim")


def _gap(cost: float, best: float | None) -> float | None:
    return None if best is None else round(100.0 * (cost / best - 1.0), 3)


def _summary(problem: Problem, sol: Solution, seconds: float, best: float | None) -> dict[str, Any]:
    return {
        "cost": round(sol.cost, 4),
        # A plan that drops requests is not comparable to one that serves them all: no gap
        # (a run serving nothing costs 0, which would read as -100 %).
        "gap_pct": None if sol.unserved else _gap(sol.cost, best),
        "vehicles": sol.n_vehicles_used,
        "served": problem.n_requests - len(sol.unserved),
        "unserved": len(sol.unserved),
        "feasible": not check(problem, sol),
        "seconds": round(seconds, 2),
        "iterations": int(sol.stats.get("iterations", 0)),
        "solver_clock_seconds": round(sol.stats.get("seconds", seconds), 2),
        "solver": sol.solver,
    }


def _cost_gap_cells(summary: dict[str, Any]) -> str:
    """The cost and gap columns of one solver's row: ``unserved`` for a run that served no
    request (its cost of 0 is no result), ``n.a.`` for the gap of a run that left any out or of
    an instance without a best known."""
    cost = "unserved" if summary["served"] == 0 else f"{summary['cost']:.3f}"
    gap = "n.a." if summary["gap_pct"] is None else f"{summary['gap_pct']:.2f}"
    return f"{cost:>9} {gap:>6}"


def _pyvrp(problem: Problem, time_limit: float, scale: int = 1000) -> dict[str, Any]:
    """Li & Lim PDPTW in PyVRP: one shipment per request, a fixed cost per vehicle.

    Raises
    ------
    ValueError
        If the problem has several travel profiles (one PyVRP vehicle type is modelled).
    """
    from pyvrp import Model
    from pyvrp.stop import MaxRuntime

    if problem.n_profiles != 1:
        raise ValueError("the PyVRP comparison models a single travel profile")
    travel = problem.travel[0]
    xy = problem.meta["coords"]
    m = Model()
    locs = [m.add_location(float(x), float(y)) for x, y in xy]  # type: ignore[attr-defined,union-attr]
    depot = m.add_depot(locs[0], tw_early=0, tw_late=int(problem.late[0] * scale))
    m.add_vehicle_type(
        num_available=problem.n_vehicles,
        capacity=int(problem.capacity[0, 0]),
        start_depot=depot,
        end_depot=depot,
        fixed_cost=int(problem.vehicle_fixed_cost * scale),
        tw_early=0,
        tw_late=int(problem.late[0] * scale),
    )
    for r in range(problem.n_requests):
        pu, de = int(problem.pickup[r]), int(problem.delivery[r])
        m.add_shipment(
            locs[pu],
            locs[de],
            pickup_tw_early=int(problem.early[pu] * scale),
            pickup_tw_late=int(problem.late[pu] * scale),
            pickup_service_duration=int(problem.service[pu] * scale),
            delivery_tw_early=int(problem.early[de] * scale),
            delivery_tw_late=int(problem.late[de] * scale),
            delivery_service_duration=int(problem.service[de] * scale),
            amount=int(problem.load[pu, 0]),
        )
    for i, a in enumerate(locs):
        for j, b in enumerate(locs):
            m.add_edge(
                a,
                b,
                distance=round(problem.cost[i, j] * scale),
                duration=int(travel[i, j] * scale),  # rounded down: optimistic
            )
    t0 = time.perf_counter()
    res = m.solve(stop=MaxRuntime(time_limit), seed=0, display=False)
    best = res.best
    return {
        "distance": round(best.distance() / scale, 4),
        "vehicles": int(best.num_routes()),
        "feasible": bool(best.is_feasible()),
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _sets(spec: str) -> list[str]:
    """The families named in ``--set`` (comma-separated; ``all`` for every one).

    Raises
    ------
    ValueError
        If a name is not one of :data:`SETS`.
    """
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if names == ["all"]:
        return list(SETS)
    bad = [s for s in names if s not in SETS]
    if bad or not names:
        raise ValueError(f"--set: {','.join(bad) or spec!r} not among {', '.join(SETS)} or all")
    return names


def _darp_family(
    args: argparse.Namespace,
    title: str,
    files: list[Path],
    reader: Callable[[Path], Problem],
    best: dict[str, BestKnown],
    names: list[str] | None,
    out: dict[str, Any],
    prefix: str,
) -> None:
    """Run one Cordeau-style family: ALNS vs. OR-Tools GLS, rows into ``out``.

    Rows go to ``out["cordeau"]`` (``prefix == ""``) or ``out[prefix.rstrip("_")]``; the
    family's mean gap, max gap, all-served and all-feasible figures to ``out`` under keys
    starting with ``prefix``.
    """
    key = prefix.rstrip("_") or "cordeau"
    out[key] = []
    print(
        f"{title} DARP: ALNS {args.time_limit}s vs OR-Tools GLS "
        f"{args.baseline_time_limit}s (gap to best known, %)"
    )
    print(
        f"{'inst':7} {'best':>9} | {'alns':>9} {'gap':>6} {'uns':>3} {'it':>6} {'ok':>3} | "
        f"{'ortools':>9} {'gap':>6} {'uns':>3}"
    )
    for f in files:
        if names is not None and f.stem not in names:
            continue
        p = reader(f)
        bk = best[f.stem].cost if f.stem in best else None
        t0 = time.perf_counter()
        sol = solve(
            p,
            time_limit_s=args.time_limit,
            seed=args.seed,
            cpu_time=args.clock == "cpu",
            workers=args.workers,
            polish_share=args.polish_share,
            params=replace(STATIC_PARAMS, share_every=args.share_every),
        )
        alns = _summary(p, sol, time.perf_counter() - t0, bk)
        # The plan itself, to check a surprising figure again (a gap below the best known).
        alns["routes"] = sol.routes
        t0 = time.perf_counter()
        base = solve_ortools(p, time_limit_s=args.baseline_time_limit)
        ort = _summary(p, base, time.perf_counter() - t0, bk)
        out[key].append(
            {
                "instance": f.stem,
                "requests": p.n_requests,
                "best_known": bk,
                "alns": alns,
                "ortools_gls": ort,
            }
        )
        print(
            f"{f.stem:7} {bk if bk else float('nan'):9.3f} | {_cost_gap_cells(alns)} "
            f"{alns['unserved']:3d} {alns['iterations']:6d} "
            f"{'yes' if alns['feasible'] else 'NO':>3} | {_cost_gap_cells(ort)} "
            f"{ort['unserved']:3d}",
            flush=True,
        )
    for solver in ("alns", "ortools_gls"):
        rows = [r[solver] for r in out[key]]
        # A plan that drops requests is not comparable to an optimum that serves them all.
        gaps = [r["gap_pct"] for r in rows if r["gap_pct"] is not None and r["unserved"] == 0]
        out[f"{prefix}{solver}_mean_gap_pct"] = round(statistics.fmean(gaps), 3) if gaps else None
        out[f"{prefix}{solver}_max_gap_pct"] = max(gaps) if gaps else None
        out[f"{prefix}{solver}_gap_instances"] = len(gaps)
        out[f"{prefix}{solver}_instances_with_unserved"] = sum(1 for r in rows if r["unserved"] > 0)
        out[f"{prefix}{solver}_all_served"] = all(r["unserved"] == 0 for r in rows)
        out[f"{prefix}{solver}_all_feasible"] = all(r["feasible"] for r in rows)
    out[f"{prefix}mean_gap_pct"] = out[f"{prefix}alns_mean_gap_pct"]
    if out[key]:
        print(
            f"mean gap: ALNS {out[f'{prefix}alns_mean_gap_pct']}% "
            f"(max {out[f'{prefix}alns_max_gap_pct']}%, all served: "
            f"{out[f'{prefix}alns_all_served']}, all feasible: "
            f"{out[f'{prefix}alns_all_feasible']}), OR-Tools GLS "
            f"{out[f'{prefix}ortools_gls_mean_gap_pct']}% "
            f"(all served: {out[f'{prefix}ortools_gls_all_served']})\n"
        )


def run(args: argparse.Namespace) -> dict[str, Any]:
    best = read_best_known(DATA / "best_known.csv")
    names = args.instances.split(",") if args.instances else None
    if names is None and args.quick:
        names = QUICK
    cordeau = sorted(
        (DATA / "cordeau2006_a").glob("*.txt"),
        key=lambda f: [int(x) for x in f.stem[1:].split("-")],
    )
    lilim = sorted((DATA / "lilim_100").glob("*.txt"))
    out: dict[str, Any] = {
        "alns_clock": args.clock,
        "time_limit_s": args.time_limit,
        "baseline_time_limit_s": args.baseline_time_limit,
        "lilim_time_limit_s": args.lilim_time_limit,
        "workers": args.workers,
        "share_every": args.share_every,
        "cordeau": [],
        "lilim": [],
    }
    sets = _sets(args.set)
    if "a" in sets:
        _darp_family(args, "Cordeau 'a'", cordeau, read_cordeau, best, names, out, "")
    if "pr" in sets:
        pr = sorted((DATA / "cordeau2003_pr").glob("*.txt"))
        _darp_family(args, "Cordeau & Laporte 'pr'", pr, read_cordeau_pr, best, names, out, "pr_")
    if not args.no_lilim and "lilim" in sets:
        print(
            f"\nLi & Lim PDPTW: ALNS {args.lilim_time_limit}s vs PyVRP shipments "
            f"{args.lilim_time_limit}s (vehicles / distance; best known)"
        )
        for f in lilim:
            if names is not None and f.stem not in names:
                continue
            p = read_lilim(f)
            bk_row = best.get(f.stem)
            t0 = time.perf_counter()
            # Vehicles first, then distance: ALNS with route elimination, same budget (#16).
            sol = solve_fleet_min(
                p, time_limit_s=args.lilim_time_limit, seed=args.seed, cpu_time=args.clock == "cpu"
            )
            alns = _summary(p, sol, time.perf_counter() - t0, bk_row.cost if bk_row else None)
            pv = _pyvrp(p, args.lilim_time_limit)
            row = {
                "instance": f.stem,
                "best_vehicles": bk_row.best_vehicles if bk_row else None,
                "best_distance": bk_row.cost if bk_row else None,
                "alns": alns,
                "pyvrp": pv,
            }
            out["lilim"].append(row)
            print(
                f"{f.stem:6} best {row['best_vehicles']}/{row['best_distance']} | ALNS "
                f"{alns['vehicles']}/{alns['cost']} (unserved {alns['unserved']}) | PyVRP "
                f"{pv['vehicles']}/{pv['distance']} (feasible {pv['feasible']})",
                flush=True,
            )
        if out["lilim"]:
            rows = out["lilim"]
            out["lilim_alns_vehicles_over_best"] = sum(
                r["alns"]["vehicles"] - (r["best_vehicles"] or 0) for r in rows
            )
            out["lilim_pyvrp_vehicles_over_best"] = sum(
                r["pyvrp"]["vehicles"] - (r["best_vehicles"] or 0) for r in rows
            )
            same = [
                r
                for r in rows
                if r["alns"]["vehicles"] == r["best_vehicles"] and r["alns"]["gap_pct"] is not None
            ]
            out["lilim_alns_mean_distance_gap_pct_at_best_vehicles"] = (
                round(statistics.fmean(r["alns"]["gap_pct"] for r in same), 3) if same else None
            )
            print(
                f"vehicles above best known (sum): ALNS {out['lilim_alns_vehicles_over_best']}, "
                f"PyVRP {out['lilim_pyvrp_vehicles_over_best']}; ALNS distance gap where "
                f"vehicles match: {out['lilim_alns_mean_distance_gap_pct_at_best_vehicles']}%"
            )
    # Every request of every instance run (Cordeau 'a', 'pr' and Li & Lim); false when nothing ran.
    ours = [r["alns"] for key in ("cordeau", "pr", "lilim") for r in out.get(key, [])]
    out["all_served"] = bool(ours) and all(r["unserved"] == 0 for r in ours)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--time-limit", type=float, default=30.0)
    ap.add_argument(
        "--baseline-time-limit",
        type=float,
        default=None,
        help="OR-Tools GLS seconds per instance (default: the same budget as --time-limit)",
    )
    ap.add_argument("--lilim-time-limit", type=float, default=10.0)
    ap.add_argument("--instances", default="")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="ALNS budget in CPU seconds (default: fair on a shared machine) or wall seconds",
    )
    ap.add_argument(
        "--set",
        default="all",
        help="instance families, comma-separated: a (Cordeau 2006), pr (Cordeau & Laporte "
        "2003), lilim (Li & Lim), or all (default)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=2,
        help="parallel ALNS searches per Cordeau instance, one per core (default 2: this "
        "machine's cores); each gets the whole ALNS budget on its own clock",
    )
    ap.add_argument(
        "--polish-share",
        type=float,
        default=0.0,
        help="share of the budget for an OR-Tools polish after ALNS (default: none, "
        "the solver's default; measured, ALNS made better use of it)",
    )
    ap.add_argument(
        "--share-every",
        type=float,
        default=STATIC_PARAMS.share_every,
        help="share of the budget between exchanges of the parallel searches' best plans "
        f"(default {STATIC_PARAMS.share_every}; 0: independent searches, the best one kept)",
    )
    ap.add_argument("--no-lilim", action="store_true")
    ap.add_argument("--quick", action="store_true", help="5 instances, short limits")
    args = ap.parse_args(argv)
    try:
        _sets(args.set)
    except ValueError as exc:
        ap.error(str(exc))
    if args.workers < 1:
        ap.error("--workers must be >= 1")
    if not 0.0 <= args.share_every <= 1.0:
        ap.error("--share-every must be in [0, 1]")
    if args.baseline_time_limit is None:  # "beat it" is only fair on the same budget
        args.baseline_time_limit = args.time_limit
    if args.quick:
        args.time_limit = min(args.time_limit, 5.0)
        args.baseline_time_limit = min(args.baseline_time_limit, 5.0)
        args.lilim_time_limit = min(args.lilim_time_limit, 3.0)
    out = run(args)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

"""Feed pipeline benchmark: import + validate + compile per shared feed and synthetic networks.

Usage: ``python -m bench.feeds [--json PATH] [--repeats N] [--factors 10,50]``

For every feed in ``../shared/data/gtfs`` and for Cairns replicated 10x and 50x in space and
time (``gtfs.synthetic.scaled_feed``, written to a temporary zip first so "import" reads a real
file): median wall time of ``repeats`` runs of each stage (and of the process CPU time), and the peak traced memory of one
more run (tracemalloc, which numpy and pandas report to). The baseline is Cairns 1x measured in
the same run: ``scaling_ratio`` = (CPU seconds per stop time at 50x) / (CPU seconds per stop time at 1x);
about 1 means linear scaling (CPU rather than wall time, as the machine is shared;
``scaling_ratio_wall`` gives the wall-time figure).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gtfs import compile_timetable, read_feed, validate_feed
from gtfs.synthetic import scaled_feed
from gtfs.writer import write_feed

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "gtfs"
TODAY = dt.date(2026, 1, 1)


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, process CPU seconds, result)."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t, time.process_time() - c, out


def measure(path: Path, repeats: int, with_memory: bool = True) -> dict[str, Any]:
    reads, vals, comps, cpus = [], [], [], []
    tt = None
    n_st = 0
    for _ in range(repeats):
        gc.collect()
        t_read, c_read, feed = _timed(lambda: read_feed(path))
        t_val, c_val, _ = _timed(lambda: validate_feed(feed, today=TODAY))  # noqa: B023
        t_comp, c_comp, tt = _timed(lambda: compile_timetable(feed))  # noqa: B023
        n_st = len(feed.stop_times)
        reads.append(t_read)
        vals.append(t_val)
        comps.append(t_comp)
        cpus.append(c_read + c_val + c_comp)
        del feed
    peak_mb = None
    if with_memory:
        gc.collect()
        tracemalloc.start()
        feed = read_feed(path)
        validate_feed(feed, today=TODAY)
        compile_timetable(feed)
        peak_mb = tracemalloc.get_traced_memory()[1] / 1024**2
        tracemalloc.stop()
        del feed
    total = [a + b + c for a, b, c in zip(reads, vals, comps, strict=True)]
    med = statistics.median(total)
    assert tt is not None
    return {
        "feed": path.stem,
        "stop_times": n_st,
        "trips_compiled": tt.n_trips,
        "patterns": tt.n_patterns,
        "import_s": statistics.median(reads),
        "validate_s": statistics.median(vals),
        "compile_s": statistics.median(comps),
        "total_s": med,
        "cpu_s": statistics.median(cpus),
        "us_per_stop_time": 1e6 * med / max(n_st, 1),
        "cpu_us_per_stop_time": 1e6 * statistics.median(cpus) / max(n_st, 1),
        "peak_mb": peak_mb,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--factors", default="10,50")
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args(argv)

    # Warm-up: numba kernels load from cache once per process, not per feed.
    compile_timetable(read_feed(args.data / "google_sample.zip"))
    rows = [measure(z, args.repeats) for z in sorted(args.data.glob("*.zip"))]
    factors = [int(f) for f in args.factors.split(",") if f]
    cairns = read_feed(args.data / "au_cairns.zip")
    with tempfile.TemporaryDirectory() as tmp:
        for k in factors:
            path = write_feed(scaled_feed(cairns, k), Path(tmp) / f"au_cairns_x{k}.zip")
            rows.append(measure(path, args.repeats))
            path.unlink()
    by = {r["feed"]: r for r in rows}
    # CPU time is the figure of record: the machine is shared, and wall time then measures
    # the neighbours as much as the code (the pipeline is single-threaded).
    base = by["au_cairns"]["cpu_us_per_stop_time"]
    base_wall = by["au_cairns"]["us_per_stop_time"]
    ratios = {
        f"x{k}": by[f"au_cairns_x{k}"]["cpu_us_per_stop_time"] / base
        for k in factors
        if f"au_cairns_x{k}" in by
    }
    wall_ratios = {
        f"x{k}": by[f"au_cairns_x{k}"]["us_per_stop_time"] / base_wall
        for k in factors
        if f"au_cairns_x{k}" in by
    }
    head = f"{'feed':26s} {'stop_times':>10s} {'import':>7s} {'valid.':>7s} {'compile':>7s} {'total':>7s} {'cpu':>7s} {'us/st':>7s} {'cpu/st':>7s} {'peakMB':>7s}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['feed']:26s} {r['stop_times']:10d} {r['import_s']:7.3f} {r['validate_s']:7.3f} "
            f"{r['compile_s']:7.3f} {r['total_s']:7.3f} {r['cpu_s']:7.3f} "
            f"{r['us_per_stop_time']:7.2f} {r['cpu_us_per_stop_time']:7.2f} {(r['peak_mb'] or 0):7.1f}"
        )
    for name, v in ratios.items():
        print(
            f"CPU time per stop time, Cairns {name} / Cairns 1x: {v:.2f} "
            f"(wall: {wall_ratios[name]:.2f})"
        )
    result: dict[str, Any] = {
        "benchmark": "feeds",
        "repeats": args.repeats,
        "baseline": "au_cairns (1x), same run",
        "rows": rows,
        "ratios": ratios,
        "wall_ratios": wall_ratios,
        "scaling_ratio": ratios.get(f"x{max(factors)}") if factors else None,
        "scaling_ratio_wall": wall_ratios.get(f"x{max(factors)}") if factors else None,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

"""Accessibility benchmark: every H3 cell of Cairns x50 to every stop, 12 departures, medians.

Usage: ``python -m bench.access [--json PATH] [--quick] [--sample N]``

The network is Cairns replicated 50x (``gtfs.synthetic.scaled_feed``, as ``bench.router``):
25 copies in space, 2 in time, 10,400 stops. Origins are the H3 resolution-9 cells of its area
(every cell whose centre has a stop within the 15-minute walk); targets are every stop. For 12
departures in one hour (08:00-09:00, every 5 minutes) the travel time from each cell to each
stop is computed and the median per (cell, stop) kept — what an R5-style accessibility map
needs. Measured: wall time of :meth:`routing.access.AccessEngine.blocks` (numba, parallel over
origins on the machine's cores, each network part searched apart), and its peak memory (resident
set sampled every 5 ms, absolute and above the level before the run — numba's arrays are
invisible to tracemalloc, and memory freed after compiling the network may be reused).

Baseline, in the same run: the planner's one-query-at-a-time path
(:meth:`AccessEngine.one_query`: :func:`routing.raptor.earliest_arrival` one-to-all on the whole
network, per cell and departure, then ``numpy.median``) on a random sample of cells, timed and
extrapolated to all cells; its medians are checked equal to the batch's on the sample.
``speedup`` = extrapolated baseline / batch (wall time); CPU time (all threads) is reported too,
as it depends less on what else the machine runs. ``--quick``: Cairns x2, 3 baseline cells.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np

from bench.router import DATA, busiest_day
from gtfs import compile_timetable, read_feed
from gtfs.synthetic import scaled_feed
from routing.access import AccessEngine, area_cells, departure_times
from routing.access.engine import BIG, Links
from routing.transit import TransitData


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class PeakRss:
    """Peak resident set above the level at entry, sampled in a thread."""

    def __init__(self, every_s: float = 0.005) -> None:
        self.every_s = every_s
        self.base = 0.0
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mb())
            time.sleep(self.every_s)

    def __enter__(self) -> PeakRss:
        self.base = self.peak = _rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())

    @property
    def increase_mb(self) -> float:
        return self.peak - self.base


def run(factor: int, sample: int, seed: int = 7) -> dict[str, Any]:
    t = time.perf_counter()
    tt = compile_timetable(scaled_feed(read_feed(DATA / "au_cairns.zip"), factor))
    compile_s = time.perf_counter() - t
    engine = AccessEngine(TransitData(tt), busiest_day(tt))
    radius = engine.max_walk_s * engine.speed / engine.detour
    t = time.perf_counter()
    cells, lat, lon = area_cells(engine.stop_lat, engine.stop_lon, 9, radius)
    access = engine.walk_links(lat, lon)
    cells_s = time.perf_counter() - t
    n_stops = tt.n_stops
    every_stop = Links(
        np.arange(n_stops + 1, dtype=np.int64),
        np.arange(n_stops, dtype=np.int32),
        np.zeros(n_stops, dtype=np.int32),
    )
    deps = departure_times(8 * 3600, 3600, 12)

    # Warm-up: numba loads (or compiles) the kernel on a few cells.
    few = np.arange(min(4, len(cells)))
    engine.blocks(access.subset(few), every_stop, None, deps)

    with PeakRss() as mem:
        t = time.perf_counter()
        c = time.process_time()
        blocks = engine.blocks(access, every_stop, None, deps)
        batch_s = time.perf_counter() - t
        batch_cpu_s = time.process_time() - c
    pairs = sum(b.seconds.size for b in blocks)
    reached = sum(int((b.seconds < BIG).sum()) for b in blocks)
    med = np.concatenate([b.seconds[b.seconds < BIG].ravel() for b in blocks])

    # Baseline on a sample of cells, one query at a time on the whole network.
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(cells), size=min(sample, len(cells)), replace=False)
    row_of: dict[int, tuple[int, int]] = {}
    for bi, b in enumerate(blocks):
        for r, o in enumerate(b.origins):
            row_of[int(o)] = (bi, r)
    per_cell: list[float] = []
    per_cell_cpu: list[float] = []
    mismatches = 0
    for c in pick:
        t = time.perf_counter()
        cpu = time.process_time()
        runs = np.array([engine.one_query(float(lat[c]), float(lon[c]), int(d)) for d in deps])
        times = np.where(runs < 0, np.inf, runs.astype(np.float64))
        base_med = np.median(times, axis=0)
        per_cell.append(time.perf_counter() - t)
        per_cell_cpu.append(time.process_time() - cpu)
        want = np.where(np.isfinite(base_med), np.floor(base_med), BIG).astype(np.int64)
        got = np.full(n_stops, BIG, dtype=np.int64)
        if int(c) in row_of:
            bi, r = row_of[int(c)]
            got[blocks[bi].targets] = blocks[bi].seconds[r]
        mismatches += int((want != got).sum())
    baseline_per_cell = float(np.median(per_cell))
    baseline_s = baseline_per_cell * len(cells)
    load = os.getloadavg()
    return {
        "network": f"cairns_x{factor}",
        "stops": n_stops,
        "stop_times": int(tt.n_stop_times),
        "compile_s": round(compile_s, 2),
        "h3_resolution": 9,
        "cells": len(cells),
        "cells_and_links_s": round(cells_s, 2),
        "departures": len(deps),
        "cell_stop_pairs": pairs,
        "pairs_reached": reached,
        "median_of_medians_min": round(float(np.median(med)) / 60.0, 1) if len(med) else None,
        "batch_s": round(batch_s, 2),
        "batch_cpu_s": round(batch_cpu_s, 2),
        "batch_peak_rss_increase_mb": round(mem.increase_mb, 1),
        "batch_peak_rss_mb": round(mem.peak, 1),
        "result_mb": round(sum(b.seconds.nbytes for b in blocks) / 1e6, 1),
        "numba_threads": numba.get_num_threads(),
        "baseline_sample_cells": len(pick),
        "baseline_s_per_cell": round(baseline_per_cell, 4),
        "baseline_extrapolated_s": round(baseline_s, 1),
        "speedup": round(baseline_s / batch_s, 1) if batch_s > 0 else None,
        "baseline_cpu_s_per_cell": round(float(np.median(per_cell_cpu)), 4),
        "cpu_speedup": round(float(np.median(per_cell_cpu)) * len(cells) / batch_cpu_s, 1)
        if batch_cpu_s > 0
        else None,
        "baseline_mismatches": mismatches,
        "target_s": 60,
        "loadavg": [round(x, 2) for x in load],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--quick", action="store_true", help="Cairns x2, 3 baseline cells")
    ap.add_argument("--sample", type=int, default=20, help="baseline cells")
    args = ap.parse_args(argv)
    out = run(2, 3) if args.quick else run(50, args.sample)
    print(
        f"{out['network']}: {out['cells']} H3 res-9 cells x {out['stops']} stops x "
        f"{out['departures']} departures -> medians in {out['batch_s']} s "
        f"(CPU {out['batch_cpu_s']} s; peak +{out['batch_peak_rss_increase_mb']} MB, "
        f"{out['numba_threads']} threads; "
        f"target < {out['target_s']} s)"
    )
    print(
        f"baseline one query at a time: {out['baseline_s_per_cell']} s/cell on "
        f"{out['baseline_sample_cells']} cells -> {out['baseline_extrapolated_s']} s; "
        f"speedup {out['speedup']}x (CPU time {out['cpu_speedup']}x); "
        f"mismatches {out['baseline_mismatches']}; "
        f"load {out['loadavg']}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()

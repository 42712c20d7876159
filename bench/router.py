"""Router benchmark: RAPTOR family latency on real and synthetic networks, and pyraptor.

Usage: ``python -m bench.router [--json PATH] [--queries N] [--no-pyraptor]`` and
``python -m bench.router --nigiri [--json PATH] [--queries N] [--quick] [--load-only]`` for the
side-by-side comparison with nigiri (:mod:`bench.router_nigiri`; only that comparison runs then;
``--load-only``: its feed loads alone).

For Cairns, NYC (2 routes) and Cairns replicated 50x (``gtfs.synthetic.scaled_feed``): median
and p95 latency of one-to-one earliest-arrival (EA), one-to-all EA, 60-minute range (rRAPTOR)
and McRAPTOR queries (without and with the CO2 criterion) over random (origin, destination, time) pairs on a service day, plus the
memory of the compiled timetable per stop time. With realtime (:func:`realtime_overlays`: delays
on 20% of the trips, some overtaking, and skipped stops on 5%, on each of the three service
days a query rides): one-to-one EA, arrive-by and the query set-up, and how many trip copies
the kernels ride apart (``odd_copies``). The set-up is timed built (``query_setup_realtime``:
the first query after a realtime message) and taken from the cache that the queries of one
realtime version share (``query_setup_realtime_cached``), each the median over its repeats.

Baseline: pyraptor (PyPI), installed by this script into an isolated virtualenv
(``var/bench/pyraptor-venv``) and run on Cairns converted to its input shape (stations as
parent stops, ``calendar_dates.txt`` for the day, one uniquely named station per stop so that
neither side has footpaths). pyraptor answers one-to-all, so the ratio compares it with
Tsunagu's one-to-all EA from the same stops at the same times with the same number of rounds
(like with like, on one core). ``speedup_vs_pyraptor`` = pyraptor median / Tsunagu median.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gtfs import compile_timetable, read_feed
from gtfs.compiled import CompiledTimetable
from gtfs.realtime import RealtimeState
from gtfs.synthetic import scaled_feed
from routing.options import RoutingOptions
from routing.raptor import earliest_arrival, latest_departure, mc_raptor, range_query
from routing.transit import DAY_OFFSETS, TransitData

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "gtfs"
VAR = REPO / "var" / "bench"
PYRAPTOR_VENV = VAR / "pyraptor-venv"
ROUNDS = 5  # rides per journey on both sides of the pyraptor comparison


def _ms(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples) * 1000.0
    return {
        "median_ms": round(float(np.median(a)), 4),
        "p95_ms": round(float(np.percentile(a, 95)), 4),
        "n": len(samples),
    }


def _time(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def timetable_bytes(tt: CompiledTimetable) -> int:
    return sum(int(v.nbytes) for v in vars(tt).values() if isinstance(v, np.ndarray))


def busiest_day(tt: CompiledTimetable) -> dt.date:
    counts = tt.service_days[tt.trip_service].sum(axis=0)
    return tt.service_start + dt.timedelta(days=int(np.argmax(counts)))


def realtime_overlays(tt: CompiledTimetable, day: dt.date, seed: int) -> list[RealtimeState]:
    """Overlays of ``day - 1``, ``day`` and ``day + 1``: 20% of the trips late by 1-20 min from a
    random stop on (enough to be overtaken on frequent lines), 5% skipping one stop."""
    rng = np.random.default_rng(seed)
    trip_of_st = np.repeat(np.arange(tt.n_trips), np.diff(tt.trip_st_ptr))
    pos = np.arange(tt.n_stop_times) - tt.trip_st_ptr[trip_of_st]
    lengths = np.diff(tt.trip_st_ptr)
    out = []
    for d in DAY_OFFSETS:
        rt = RealtimeState.scheduled(tt, day + dt.timedelta(days=d))
        late = rng.random(tt.n_trips) < 0.2
        start = (rng.random(tt.n_trips) * lengths).astype(np.int64)
        delay = rng.integers(60, 1200, tt.n_trips)
        shift = np.where(late[trip_of_st] & (pos >= start[trip_of_st]), delay[trip_of_st], 0)
        rt.arrival[:] += shift.astype(np.int32)
        rt.departure[:] += shift.astype(np.int32)
        skip = np.flatnonzero(rng.random(tt.n_trips) < 0.05)
        rt.stop_skipped[
            tt.trip_st_ptr[skip] + (rng.random(len(skip)) * lengths[skip]).astype(int)
        ] = True
        rt.trip_updated[late] = True
        rt.trip_updated[skip] = True
        out.append(rt)
    return out


def bench_network(name: str, tt: CompiledTimetable, n_queries: int, seed: int) -> dict[str, Any]:
    data = TransitData(tt)
    day = busiest_day(tt)
    opts = RoutingOptions(max_transfers=ROUNDS - 1)
    q = data.query_arrays(day, opts)
    _ = data.backward  # built once per timetable, not per query
    rng = np.random.default_rng(seed)
    served = np.flatnonzero(np.diff(tt.stop_pattern_ptr) > 0)
    pairs = [
        (int(a), int(b), int(rng.integers(6 * 3600, 20 * 3600)))
        for a, b in (rng.choice(served, 2, replace=False) for _ in range(n_queries))
    ]
    fwd = data.forward
    # Warm up (numba compiled/cached before timing).
    o, d, t0 = pairs[0]
    earliest_arrival(fwd, q, t0, [o], [0], [d], [0])
    range_query(fwd, q, t0, 3600, [o], [0], [d], [0])
    mc_raptor(fwd, q, t0, [o], [0], [d], [0])
    co2 = data.pattern_co2
    mc_raptor(fwd, q, t0, [o], [0], [d], [0], pattern_co2=co2)

    few = pairs[: max(10, n_queries // 4)]
    ea: list[float] = []
    ea_all: list[float] = []
    rng_q: list[float] = []
    mc: list[float] = []
    mc_co2: list[float] = []
    for i, (o, d, t0) in enumerate(pairs):
        t = time.perf_counter()
        earliest_arrival(fwd, q, t0, [o], [0], [d], [0])
        ea.append(time.perf_counter() - t)
        t = time.perf_counter()
        earliest_arrival(fwd, q, t0, [o], [0])
        ea_all.append(time.perf_counter() - t)
        if i < len(few):
            t = time.perf_counter()
            range_query(fwd, q, t0, 3600, [o], [0], [d], [0])
            rng_q.append(time.perf_counter() - t)
            t = time.perf_counter()
            mc_raptor(fwd, q, t0, [o], [0], [d], [0])
            mc.append(time.perf_counter() - t)
            t = time.perf_counter()
            mc_raptor(fwd, q, t0, [o], [0], [d], [0], pattern_co2=co2)
            mc_co2.append(time.perf_counter() - t)
    qa = [_time(lambda: data.query_arrays(day, opts)) for _ in range(20)]
    # Realtime on the three days a query rides.
    rts = realtime_overlays(tt, day, seed)
    q_rt = data.query_arrays(day, opts, rts)  # warm-up: the schedule's chains, numba's cache
    qa_rt = [_time(lambda: data.query_arrays(day, opts, rts)) for _ in range(10)]
    # What /plan pays with a realtime version: the first query of a version builds the set-up
    # (timed above), the next ones of that version take it from the cache.
    data.query_arrays(day, opts, rts, realtime_version=1)
    qa_rt_cached = [
        _time(lambda: data.query_arrays(day, opts, rts, realtime_version=1)) for _ in range(50)
    ]
    qr_rt = data.query_arrays(day, opts, rts, reverse=True)
    back = data.backward
    earliest_arrival(fwd, q_rt, t0, [o], [0], [d], [0])
    latest_departure(back, qr_rt, t0 + 3600, [d], [0], [o], [0])
    ea_rt: list[float] = []
    by_rt: list[float] = []
    for o, d, t0 in pairs:
        ea_rt.append(_time(lambda: earliest_arrival(fwd, q_rt, t0, [o], [0], [d], [0])))  # noqa: B023
        by_rt.append(_time(lambda: latest_departure(back, qr_rt, t0 + 3600, [d], [0], [o], [0])))  # noqa: B023
    size = timetable_bytes(tt)
    return {
        "network": name,
        "stops": tt.n_stops,
        "trips": tt.n_trips,
        "stop_times": tt.n_stop_times,
        "service_day": day.isoformat(),
        "ea_one_to_one": _ms(ea),
        "ea_one_to_all": _ms(ea_all),
        "range_60min": _ms(rng_q),
        "mcraptor": _ms(mc),
        "mcraptor_co2": _ms(mc_co2),
        "query_setup": _ms(qa),
        "ea_one_to_one_realtime": _ms(ea_rt),
        "arrive_by_realtime": _ms(by_rt),
        "query_setup_realtime": _ms(qa_rt),
        "query_setup_realtime_cached": _ms(qa_rt_cached),
        "odd_copies": 0 if q_rt.odd is None else int((q_rt.odd & q_rt.active).sum()),
        "timetable_bytes": size,
        "bytes_per_stop_time": round(size / max(1, tt.n_stop_times), 1),
    }


# --- pyraptor ------------------------------------------------------------------------------------
def ensure_pyraptor() -> Path:
    """The isolated virtualenv with pyraptor (created on first use)."""
    py = PYRAPTOR_VENV / "bin" / "python"
    if not py.exists():
        VAR.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(PYRAPTOR_VENV)], check=True)
    probe = "import pyraptor.gtfs.timetable, pyraptor.model.raptor"
    ok = subprocess.run([str(py), "-c", probe], capture_output=True)
    if ok.returncode != 0:
        # pyraptor pins pandas < 2, whose wheels need numpy < 2; it imports attrs undeclared.
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "pyraptor", "numpy<2", "attrs"], check=True
        )
    return py


def _hms(s: int) -> str:
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def write_pyraptor_feed(tt: CompiledTimetable, day: dt.date, folder: Path) -> list[str]:
    """Cairns in pyraptor's input shape; returns the agency names to select."""
    folder.mkdir(parents=True, exist_ok=True)
    active = tt.active_trips(day)

    def write(name: str, header: list[str], rows: Any) -> None:
        with (folder / name).open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)

    write("agency.txt", ["agency_id", "agency_name"],
          [(a, n) for a, n in zip(tt.agency_ids, tt.agency_names, strict=True)])  # fmt: skip
    write(
        "routes.txt",
        ["route_id", "agency_id", "route_short_name", "route_long_name", "route_type"],
        [
            (tt.route_ids[r], tt.agency_ids[tt.route_agency[r]], tt.route_short_names[r],
             tt.route_long_names[r], tt.route_types[r])
            for r in range(len(tt.route_ids))
        ],
    )  # fmt: skip
    trips = np.flatnonzero(active)
    write(
        "trips.txt",
        ["route_id", "service_id", "trip_id", "trip_short_name", "trip_long_name"],
        [(tt.route_ids[tt.trip_route[t]], "S", tt.trip_ids[t], "", "") for t in trips],
    )
    write("calendar_dates.txt", ["service_id", "date", "exception_type"],
          [("S", day.strftime("%Y%m%d"), 1)])  # fmt: skip
    rows = []
    for t in trips:
        p = tt.trip_pattern[t]
        stops = tt.pattern_stops[tt.pattern_stop_ptr[p] : tt.pattern_stop_ptr[p + 1]]
        a, b = tt.trip_st_ptr[t], tt.trip_st_ptr[t + 1]
        for i, (s, ar, de) in enumerate(
            zip(stops, tt.st_arrival[a:b], tt.st_departure[a:b], strict=True)
        ):
            rows.append((tt.trip_ids[t], i + 1, tt.stop_ids[s], _hms(int(ar)), _hms(int(de))))
    write("stop_times.txt", ["trip_id", "stop_sequence", "stop_id", "arrival_time",
                             "departure_time"], rows)  # fmt: skip
    # One station per stop, named uniquely (pyraptor merges stations by name).
    srows = []
    for i, sid in enumerate(tt.stop_ids):
        srows.append((sid, f"S{sid}", f"P{sid}", "1", sid))
        srows.append((f"P{sid}", f"S{sid}", "", "", f"P{sid}"))
        del i
    write("stops.txt", ["stop_id", "stop_name", "parent_station", "platform_code", "stop_code"],
          srows)  # fmt: skip
    return [str(n) for n in tt.agency_names]


_PYRAPTOR_SCRIPT = r"""
import json, sys, time
from loguru import logger
logger.remove()
from pyraptor.gtfs.timetable import read_gtfs_timetable, gtfs_to_pyraptor_timetable
from pyraptor.model.raptor import RaptorAlgorithm
folder, date, agencies, queries, rounds = json.loads(sys.argv[1])
t = time.perf_counter()
tt = gtfs_to_pyraptor_timetable(read_gtfs_timetable(folder, date, agencies))
build = time.perf_counter() - t
out = []
for stop_id, dep in queries:
    station = tt.stations.get("S" + stop_id)
    t = time.perf_counter()
    bag = RaptorAlgorithm(tt).run(station.stops, dep, rounds)
    el = time.perf_counter() - t
    best = bag[rounds]
    reached = sum(1 for lab in best.values() if lab.earliest_arrival_time < 2147483647)
    out.append([el, reached])
print(json.dumps({"build_s": build, "queries": out}))
"""


def bench_pyraptor(tt: CompiledTimetable, n_queries: int, seed: int) -> dict[str, Any]:
    py = ensure_pyraptor()
    day = busiest_day(tt)
    folder = VAR / "pyraptor-cairns"
    agencies = write_pyraptor_feed(tt, day, folder)
    rng = np.random.default_rng(seed)
    served = np.flatnonzero(np.diff(tt.stop_pattern_ptr) > 0)
    queries = [(str(tt.stop_ids[s]), int(rng.integers(6 * 3600, 18 * 3600)))
               for s in rng.choice(served, n_queries, replace=False)]  # fmt: skip
    arg = json.dumps([str(folder), day.strftime("%Y%m%d"), agencies, queries, ROUNDS])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run(
        [str(py), "-c", _PYRAPTOR_SCRIPT, arg], capture_output=True, text=True, env=env,
        check=True,
    )  # fmt: skip
    theirs = json.loads(res.stdout.strip().splitlines()[-1])
    # Tsunagu: one-to-all EA from the same stops and times, same rounds, no footpaths.
    data = TransitData(tt)
    q = data.query_arrays(day, RoutingOptions(max_transfers=ROUNDS - 1, max_walk_m=0))
    index = {str(s): i for i, s in enumerate(tt.stop_ids)}
    earliest_arrival(data.forward, q, queries[0][1], [index[queries[0][0]]], [0])
    ours = []
    reached = []
    for sid, dep in queries:
        samples = []
        for _ in range(5):
            t = time.perf_counter()
            r = earliest_arrival(data.forward, q, dep, [index[sid]], [0])
            samples.append(time.perf_counter() - t)
        ours.append(statistics.median(samples))
        reached.append(int((r.best < 2**30).sum()))
    p_med = statistics.median(x[0] for x in theirs["queries"])
    o_med = statistics.median(ours)
    return {
        "pyraptor_build_s": round(theirs["build_s"], 3),
        "pyraptor_one_to_all": _ms([x[0] for x in theirs["queries"]]),
        "tsunagu_one_to_all": _ms(ours),
        "stops_reached_pyraptor": [x[1] for x in theirs["queries"]],
        "stops_reached_tsunagu": reached,
        "speedup_vs_pyraptor": round(p_med / o_med, 1),
    }


def _cells(row: dict[str, Any]) -> Callable[[str], str]:
    """A table cell of ``row``: "median/p95" ms of one figure."""

    def cell(k: str) -> str:
        return f"{row[k]['median_ms']:.3f}/{row[k]['p95_ms']:.3f}"

    return cell


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--pyraptor-queries", type=int, default=8)
    ap.add_argument("--no-pyraptor", action="store_true")
    ap.add_argument("--nigiri", action="store_true", help="compare with nigiri (pynigiri) only")
    ap.add_argument("--quick", action="store_true", help="with --nigiri: 20 queries, Cairns x10")
    ap.add_argument(
        "--load-only", action="store_true", help="with --nigiri: the loads alone, no query"
    )
    args = ap.parse_args(argv)
    if args.nigiri:
        return _main_nigiri(args)

    cairns_feed = read_feed(DATA / "au_cairns.zip")
    cairns = compile_timetable(cairns_feed)
    nyc = compile_timetable(read_feed(DATA / "us_nyc_subway_2routes.zip"))
    t = time.perf_counter()
    big = compile_timetable(scaled_feed(cairns_feed, 50))
    compile_50x = time.perf_counter() - t

    table = [
        bench_network("cairns", cairns, args.queries, 1),
        bench_network("nyc_subway_2routes", nyc, args.queries, 2),
        bench_network("cairns_x50", big, args.queries, 3),
    ]
    out: dict[str, Any] = {"networks": table, "compile_50x_s": round(compile_50x, 2)}
    by = {r["network"]: r for r in table}
    out["ea_median_ms_50x"] = by["cairns_x50"]["ea_one_to_one"]["median_ms"]
    out["range_median_ms_50x"] = by["cairns_x50"]["range_60min"]["median_ms"]
    out["mcraptor_median_ms_50x"] = by["cairns_x50"]["mcraptor"]["median_ms"]
    out["mcraptor_co2_median_ms_50x"] = by["cairns_x50"]["mcraptor_co2"]["median_ms"]
    out["bytes_per_stop_time"] = by["cairns_x50"]["bytes_per_stop_time"]
    if not args.no_pyraptor:
        pr = bench_pyraptor(cairns, args.pyraptor_queries, 4)
        out["pyraptor"] = pr
        out["speedup_vs_pyraptor"] = pr["speedup_vs_pyraptor"]

    print(f"{'network':22} {'stop_times':>10} {'EA 1-1 med/p95 ms':>20} {'EA 1-all':>16} "
          f"{'range 60m':>18} {'McRAPTOR':>18} {'McRAPTOR+CO2':>18} {'B/st':>6}")  # fmt: skip
    for r in table:
        f = _cells(r)
        print(f"{r['network']:22} {r['stop_times']:>10} {f('ea_one_to_one'):>20} "
              f"{f('ea_one_to_all'):>16} {f('range_60min'):>18} {f('mcraptor'):>18} "
              f"{f('mcraptor_co2'):>18} "
              f"{r['bytes_per_stop_time']:>6}")  # fmt: skip
    print(f"{'realtime (D-1, D, D+1)':22} {'odd copies':>10} {'EA 1-1 med/p95 ms':>20} "
          f"{'arrive-by':>16} {'set-up':>18} {'set-up cached':>18}")  # fmt: skip
    for r in table:
        f = _cells(r)
        print(f"{r['network']:22} {r['odd_copies']:>10} {f('ea_one_to_one_realtime'):>20} "
              f"{f('arrive_by_realtime'):>16} {f('query_setup_realtime'):>18} "
              f"{f('query_setup_realtime_cached'):>18}")  # fmt: skip
    print(f"50x: EA median {out['ea_median_ms_50x']} ms (target <= 10), range median "
          f"{out['range_median_ms_50x']} ms (target <= 100)")  # fmt: skip
    if "pyraptor" in out:
        pr = out["pyraptor"]
        print(f"pyraptor one-to-all median {pr['pyraptor_one_to_all']['median_ms']:.1f} ms vs "
              f"Tsunagu {pr['tsunagu_one_to_all']['median_ms']:.4f} ms: "
              f"speedup {pr['speedup_vs_pyraptor']}x (target >= 1000x)")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
    return out


def _main_nigiri(args: argparse.Namespace) -> dict[str, Any]:
    from bench import router_nigiri

    n = 20 if args.quick else args.queries
    try:
        out = router_nigiri.run(
            n, max(10, n // 4), scale=10 if args.quick else 50, load_only=args.load_only
        )
    except router_nigiri.NigiriUnavailable as exc:
        out = {"nigiri_unavailable": str(exc)}
        print(f"nigiri comparison blocked: {exc}")
    else:
        router_nigiri.report(out)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()

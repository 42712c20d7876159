"""Tsunagu against nigiri (the C++ RAPTOR core of MOTIS, PyPI ``pynigiri``), side by side.

Run as ``python -m bench.router --nigiri [--json PATH] [--queries N] [--quick]``.

Set-up, so that both answer the same question:

* **Same feed, same footpaths, same change times.** For each network the bench writes one GTFS
  zip: the feed plus a ``transfers.txt`` that states (a) a 120 s minimum change time at every
  stop (``from == to``) and (b) every footpath (type 2, ``min_transfer_time``): Tsunagu's
  straight-line footpaths (400 m) rounded up to whole minutes (nigiri counts in minutes), no
  shorter than the change time (nigiri's loader lengthens shorter ones), and closed transitively up to 20 minutes (nigiri closes its foot graph itself; a closed set is
  its own closure). Tsunagu compiles that zip with no footpaths of its own
  (``footpaths=Footpaths.empty()``); nigiri loads it with ``link_stop_distance=0`` and
  ``adjust_footpaths=False`` (no generated or re-timed footpaths). Walking ends ready to board
  on both sides (Tsunagu's ``slack`` is 0), and at most 5 transfers on both.
* **Same queries, interleaved, one core.** nigiri runs in its own virtualenv
  (``var/bench/nigiri-venv``, ``pip install pynigiri`` on first use) as a child process that
  answers one query per line; the bench sends each query to Tsunagu and then to nigiri before
  the next, both processes pinned to the same core (``taskset`` / ``sched_setaffinity``), each
  side timing only its own routing call. Times are whole minutes (nigiri's unit).
* **Networks**: Cairns; Cairns x50 (``gtfs.synthetic.scaled_feed``: 25 copies far apart in
  space, each with its trips twice, 30 min apart) with origin and destination inside one copy;
  and Cairns x50 with uniform pairs (mostly in different copies: no answer exists).
* **Query types**: one-to-one earliest arrival (EA) and a 60-minute range query (nigiri: a
  start-time interval; Tsunagu: :func:`routing.raptor.range_query`).

Range queries: two window semantics. Tsunagu's :func:`routing.raptor.range_query` keeps the
Pareto set (later departure, earlier arrival, fewer transfers) of the journeys leaving the
origin inside the closed window ``[t0, t0 + W]``, compared with each other only. nigiri's
pre-trip search (``routing/search.h``) also starts one search at the window's end (an "ontrip"
start, run first), keeps every journey in one Pareto set, then erases those that do not leave
inside the half-open ``[t0, t0 + W)``: a journey inside the window is dropped when leaving at
``t0 + W`` or later arrives no later with no more transfers, and one leaving at ``t0 + W``
exactly is not in the window. Measured on Cairns (50 queries): nigiri's 88 journeys are all in
Tsunagu's 137; of the 49 others 13 leave exactly at ``t0 + W`` and 36 are dominated by a journey
leaving after the window. Neither router is wrong; they answer different windows. The bench
therefore counts Tsunagu's journeys both ways: as returned (``journeys_tsunagu``), and under
nigiri's semantics (``journeys_tsunagu_as_nigiri``: departure ``< t0 + W`` and not dominated by
Tsunagu's own earliest-arrival journeys leaving at ``t0 + W``, an untimed extra query), and
reports the share of range queries whose (departure, arrival rounded up, transfers) sets are
then identical (``range_agreement_share``). Tsunagu's journeys count in whole minutes as
nigiri's do (departure down, arrival up).

Agreement: an EA query agrees when both find no journey, or when Tsunagu's earliest arrival
rounded up to the minute equals nigiri's. Cairns has stop times with blank times: Tsunagu
interpolates them to the second, nigiri to the minute, so a journey through a blank time can
differ by the rounding (or catch a different connection because of it); disagreements whose
Tsunagu journey boards or alights at a blank stop time are counted as ``blank_rounding``.
nigiri's routing core reports journeys with at least one ride (MOTIS adds direct walks
itself), so where walking straight there arrives first Tsunagu answers with the walk and nigiri
with nothing: counted as ``direct_walk``. Anything else is listed in
``disagreement_examples``.

Load: Tsunagu reads the zip (``read_feed``), compiles it and sets up the first query day
(``TransitData`` + ``query_arrays``, numba kernels already compiled); nigiri's
``load_timetable`` over the feed's whole calendar. Each network is loaded ``LOAD_REPEATS``
(Cairns) or ``BIG_LOAD_REPEATS`` times by each router, alternately, and the medians compared:
one load alone also measures one-time set-up (nigiri's first load in its process, Tsunagu's
routing kernels read from numba's cache). ``ratio`` is always Tsunagu / nigiri (below
1 means Tsunagu is faster), of wall-clock medians; ``ratio_cpu`` the same of CPU time
(``process_time`` on each side), which a busy shared machine disturbs far less.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from gtfs import compile_timetable, read_feed
from gtfs.compiled import CompiledTimetable
from gtfs.feed import Feed
from gtfs.footpaths import DEFAULT_FOOTPATH_RADIUS_M, Footpaths, straight_line_footpaths
from gtfs.synthetic import scaled_feed
from gtfs.writer import write_feed
from routing.options import RoutingOptions
from routing.raptor import earliest_arrival, range_query
from routing.raptor.journey import Journey
from routing.transit import TransitData

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "gtfs"
VAR = REPO / "var" / "bench"
NIGIRI_VENV = VAR / "nigiri-venv"
NIGIRI_VERSION = "0.1.5"
CHANGE_S = 120
MAX_FOOT_S = 1200
MAX_TRANSFERS = 5
WINDOW_S = 3600
LOAD_REPEATS = 7
"""Loads of Cairns in each router (the medians are reported)."""
BIG_LOAD_REPEATS = 3
"""Loads of the scaled network (each takes seconds)."""


class NigiriUnavailable(RuntimeError):
    """pynigiri could not be installed or started here (the message says why)."""


def ensure_nigiri() -> Path:
    """The isolated virtualenv with pynigiri (created on first use)."""
    py = NIGIRI_VENV / "bin" / "python"
    if not py.exists():
        VAR.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(NIGIRI_VENV)], check=True)
    probe = subprocess.run([str(py), "-c", "import pynigiri"], capture_output=True, text=True)
    if probe.returncode != 0:
        res = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", f"pynigiri=={NIGIRI_VERSION}"],
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            raise NigiriUnavailable(
                f"pip install pynigiri=={NIGIRI_VERSION} failed (it ships manylinux x86_64 "
                f"wheels for CPython 3.11-3.12 only; this is {sys.platform}/"
                f"{os.uname().machine}, Python {sys.version.split()[0]}): "
                + res.stderr.strip()[-800:]
            )
    return py


# The child process: one JSON command per line in, one "@@"-prefixed JSON answer out (nigiri
# logs to stdout too, so answers are marked).
_SERVER = r"""
import json, sys, time
import pynigiri as ng
tt = None
locs = {}
def loc(i):
    l = locs.get(i)
    if l is None:
        l = locs[i] = tt.find_location(i)
    return l
def answer(obj):
    sys.stdout.write("@@" + json.dumps(obj) + "\n"); sys.stdout.flush()
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "load":
        lc = ng.LoaderConfig(); lc.link_stop_distance = 0; lc.default_tz = cmd["tz"]
        fo = ng.FinalizeOptions(); fo.adjust_footpaths = False
        fo.max_footpath_length = cmd["max_foot_min"]
        t = time.perf_counter(); c = time.process_time()
        tt = ng.load_timetable([ng.TimetableSource("gtfs", cmd["path"], lc)],
                               cmd["start"], cmd["end"], fo)
        el = time.perf_counter() - t; cpu = time.process_time() - c
        locs = {}
        answer({"load_s": el, "load_cpu_s": cpu, "locations": tt.n_locations(), "transports": tt.n_transports()})
    elif cmd["op"] == "q":
        q = ng.Query()
        if cmd["window_min"]:
            q.start_time = (cmd["t"], cmd["t"] + cmd["window_min"])
        else:
            q.start_time = cmd["t"]
        if loc(cmd["a"]) is None or loc(cmd["b"]) is None:
            answer({"error": "unknown stop " + cmd["a"] + " or " + cmd["b"]}); continue
        q.start = [ng.Offset(loc(cmd["a"]), 0, 0)]
        q.destination = [ng.Offset(loc(cmd["b"]), 0, 0)]
        q.max_transfers = cmd["max_transfers"]
        q.use_start_footpaths = True
        t = time.perf_counter(); c = time.process_time()
        js = ng.route(tt, q)
        el = time.perf_counter() - t; cpu = time.process_time() - c
        answer({"s": el, "cpu": cpu, "j": [[j.start_time, j.dest_time, j.transfers] for j in js]})
    else:
        break
"""


class NigiriProcess:
    """pynigiri in its own virtualenv, pinned to ``core``, answering one query at a time."""

    def __init__(self, py: Path, core: int | None) -> None:
        cmd = [str(py), "-c", _SERVER]
        if core is not None and shutil.which("taskset"):
            cmd = ["taskset", "-c", str(core), *cmd]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=(VAR / "nigiri-stderr.log").open("w"),
            text=True,
            env=env,
        )

    def call(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise NigiriUnavailable("the nigiri process ended unexpectedly")
            if line.startswith("@@"):
                out: dict[str, Any] = json.loads(line[2:])
                if "error" in out:
                    raise NigiriUnavailable(out["error"])
                return out

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


# --- the shared feed ------------------------------------------------------------------------------
def closed_footpaths(tt: CompiledTimetable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Straight-line footpaths in whole minutes, closed transitively up to ``MAX_FOOT_S``."""
    fp = straight_line_footpaths(tt.stop_lat, tt.stop_lon, DEFAULT_FOOTPATH_RADIUS_M)
    # nigiri times a footpath no shorter than a change at its stops (measured: a 60 s
    # footpath of transfers.txt routes as 120 s), so the shared footpaths are no shorter either.
    secs = np.maximum(np.ceil(fp.seconds / 60.0) * 60.0, CHANGE_S)
    n = tt.n_stops
    g = csr_matrix((secs, (fp.from_idx, fp.to_idx)), shape=(n, n))
    # Only stops with a footpath need a row of the closure.
    src = np.unique(fp.from_idx)
    if len(src) == 0:
        z = np.zeros(0, np.int32)
        return z, z, z
    dist = dijkstra(g, indices=src, limit=MAX_FOOT_S)
    rows, cols = np.nonzero(np.isfinite(dist) & (dist > 0))
    return src[rows].astype(np.int32), cols.astype(np.int32), dist[rows, cols].astype(np.int32)


def shared_feed(feed: Feed, path: Path) -> Feed:
    """``feed`` with a transfers.txt of change times and closed footpaths, written to ``path``."""
    tt0 = compile_timetable(feed, footpaths=Footpaths.empty())
    a, b, s = closed_footpaths(tt0)
    ids = tt0.stop_ids
    tr = pd.DataFrame(
        {
            "from_stop_id": np.r_[ids, ids[a]],
            "to_stop_id": np.r_[ids, ids[b]],
            "transfer_type": "2",
            "min_transfer_time": np.r_[np.full(len(ids), CHANGE_S), s].astype(str),
        }
    )
    tables = {k: v for k, v in feed.tables.items() if k not in ("transfers", "shapes")}
    tables["transfers"] = tr.astype(str)
    out = Feed(tables=tables, files={}, feed_id=feed.feed_id, source=feed.source)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_feed(out, path)
    return out


def blank_stop_times(feed: Feed, tt: CompiledTimetable) -> np.ndarray:
    """[N] compiled stop times whose arrival or departure was blank in the feed."""
    st = feed.tables["stop_times"]
    blank = (st["arrival_time"].str.strip() == "") | (st["departure_time"].str.strip() == "")
    blanks = (
        st.loc[blank, ["trip_id", "stop_sequence"]].astype({"stop_sequence": int}).drop_duplicates()
    )
    trip_of = np.repeat(np.arange(tt.n_trips), np.diff(tt.trip_st_ptr))
    compiled = pd.DataFrame(
        {"trip_id": tt.trip_ids[trip_of], "stop_sequence": tt.st_stop_sequence.astype(int)}
    )
    hit = compiled.merge(blanks.assign(_b=True), how="left", on=["trip_id", "stop_sequence"])
    return hit["_b"].fillna(False).to_numpy(dtype=np.bool_)


# --- the comparison -------------------------------------------------------------------------------
@dataclass
class Network:
    name: str
    feed: Feed
    zip_path: Path
    tt: CompiledTimetable
    data: TransitData
    load: dict[str, float]
    nigiri_load: dict[str, Any]
    blank: np.ndarray


def load_network(name: str, feed: Feed, ng: NigiriProcess, repeats: int = 1) -> Network:
    """Write the shared feed, then load it ``repeats`` times in each router, alternately.

    Every figure of ``load`` / ``nigiri_load`` is the median over the repeats: a single load
    measures one-time set-up too (nigiri's first load in its process; Tsunagu's routing
    kernels read from numba's cache) and, on a shared machine, whatever the neighbours did in
    that second.
    """
    path = VAR / "nigiri" / f"{name}.zip"
    shared_feed(feed, path)
    loads: list[dict[str, float]] = []
    nigiri: list[dict[str, Any]] = []
    for _ in range(max(repeats, 1)):
        c0 = time.process_time()
        t0 = time.perf_counter()
        f2 = read_feed(path)
        t1 = time.perf_counter()
        tt = compile_timetable(f2, footpaths=Footpaths.empty())
        t2 = time.perf_counter()
        data = TransitData(tt)
        day = busiest_day(tt)
        data.query_arrays(day, _options())
        t3 = time.perf_counter()
        loads.append(
            {
                "read_s": t1 - t0,
                "compile_s": t2 - t1,
                "ready_s": t3 - t2,
                "total_s": t3 - t0,
                "cpu_s": time.process_time() - c0,
            }
        )
        end = tt.service_start + dt.timedelta(days=tt.service_days.shape[1])
        nigiri.append(
            ng.call(
                op="load",
                path=str(path),
                tz=tt.timezone,
                start=tt.service_start.isoformat(),
                end=end.isoformat(),
                max_foot_min=MAX_FOOT_S // 60 + 1,
            )
        )
    load = {k: float(np.median([x[k] for x in loads])) for k in loads[0]}
    nl = {
        **nigiri[-1],
        **{k: float(np.median([x[k] for x in nigiri])) for k in ("load_s", "load_cpu_s")},
    }
    load["repeats"] = len(loads)
    return Network(name, f2, path, tt, data, load, nl, blank_stop_times(f2, tt))


def busiest_day(tt: CompiledTimetable) -> dt.date:
    counts = tt.service_days[tt.trip_service].sum(axis=0)
    return tt.service_start + dt.timedelta(days=int(np.argmax(counts)))


def _options() -> RoutingOptions:
    # Footpaths up to MAX_FOOT_S at the compiled walking speed; no slack after a walk.
    return RoutingOptions(max_transfers=MAX_TRANSFERS, max_walk_m=2000.0, min_transfer_s=0)


def _stats(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples) * 1000.0
    if a.size == 0:
        return {"median_ms": float("nan"), "p95_ms": float("nan"), "n": 0}
    return {
        "median_ms": round(float(np.median(a)), 4),
        "p95_ms": round(float(np.percentile(a, 95)), 4),
        "n": int(a.size),
    }


def pairs_for(net: Network, n: int, seed: int, inside_copy: bool) -> list[tuple[int, int, int]]:
    """``n`` (origin, destination, departure) with whole-minute departures 06:00-20:00."""
    tt = net.tt
    rng = np.random.default_rng(seed)
    served = np.flatnonzero(np.diff(tt.stop_pattern_ptr) > 0)
    copy = np.array([s.rsplit("~s", 1)[1] if "~s" in s else "" for s in tt.stop_ids[served]])
    out = []
    for _ in range(n):
        a = int(rng.choice(served))
        pool = served[copy == copy[np.searchsorted(served, a)]] if inside_copy else served
        b = a
        while b == a:
            b = int(rng.choice(pool))
        out.append((a, b, int(rng.integers(6 * 60, 20 * 60)) * 60))
    return out


def as_nigiri_window(
    journeys: list[Journey], after_window: Sequence[Journey], t0: int
) -> set[tuple[int, int, int]]:
    """``journeys`` (a range query from ``t0``) under nigiri's window semantics, in minutes.

    Kept: those leaving before ``t0 + WINDOW_S`` (half-open window) that no journey of
    ``after_window`` (the earliest-arrival answer leaving at ``t0 + WINDOW_S``, Pareto over
    arrival and transfers) matches or beats in both arrival and transfers, as
    ``(departure minute, arrival minute rounded up, transfers)`` counted from the service day's
    start (``t0``'s frame).
    """
    later = [j for j in after_window if j.rides]
    return {
        (j.departure // 60, -(-j.arrival // 60), j.n_transfers)
        for j in journeys
        if j.departure < t0 + WINDOW_S
        and not any(
            k.n_transfers <= j.n_transfers and -(-k.arrival // 60) <= -(-j.arrival // 60)
            for k in later
        )
    }


def compare(
    net: Network, ng: NigiriProcess, pairs: list[tuple[int, int, int]], n_range: int
) -> dict[str, Any]:
    tt = net.tt
    data = net.data
    day = busiest_day(tt)
    q = data.query_arrays(day, _options())
    fwd = data.forward
    zone = zoneinfo.ZoneInfo(tt.timezone)
    # GTFS times count from "noon minus 12 h" of the service day (midnight unless DST changes).
    noon = dt.datetime(day.year, day.month, day.day, 12, tzinfo=zone)
    base_min = int(noon.timestamp()) // 60 - 12 * 60
    ids = tt.stop_ids
    # Warm-up (numba compiled or loaded from its cache before timing).
    a, b, t = pairs[0]
    earliest_arrival(fwd, q, t, [a], [0], [b], [0])
    range_query(fwd, q, t, WINDOW_S, [a], [0], [b], [0])
    ea_ts: list[float] = []
    ea_ng: list[float] = []
    rg_ts: list[float] = []
    rg_ng: list[float] = []
    # CPU time beside wall time: on a shared machine at load 10+ the wall clock measures the
    # neighbours' preemptions as much as either router.
    ea_ts_cpu: list[float] = []
    ea_ng_cpu: list[float] = []
    rg_ts_cpu: list[float] = []
    rg_ng_cpu: list[float] = []
    agree = 0
    blank_rounding = 0
    direct_walk = 0
    other: list[dict[str, Any]] = []
    both_none = 0
    rg_count_ts = 0
    rg_count_ts_as_ng = 0
    rg_count_ng = 0
    rg_agree = 0
    rg_examples: list[dict[str, Any]] = []
    for i, (a, b, t) in enumerate(pairs):
        t_min = base_min + t // 60
        s0, c0 = time.perf_counter(), time.process_time()
        res = earliest_arrival(fwd, q, t, [a], [0], [b], [0])
        ea_ts.append(time.perf_counter() - s0)
        ea_ts_cpu.append(time.process_time() - c0)
        ans = ng.call(
            op="q", a=str(ids[a]), b=str(ids[b]), t=t_min, window_min=0,
            max_transfers=MAX_TRANSFERS,
        )  # fmt: skip
        ea_ng.append(ans["s"])
        ea_ng_cpu.append(ans["cpu"])
        mine = min((j.arrival for j in res.journeys), default=None)
        theirs = min((j[1] for j in ans["j"]), default=None)
        mine_min = None if mine is None else base_min + -(-mine // 60)
        if mine_min == theirs:
            agree += 1
            both_none += mine is None
        else:
            best = min(res.journeys, key=lambda j: j.arrival) if res.journeys else None
            touches_blank = best is not None and any(
                net.blank[int(tt.trip_st_ptr[leg.trip]) + leg.board_pos]
                or net.blank[int(tt.trip_st_ptr[leg.trip]) + leg.alight_pos]
                for leg in best.rides
            )
            if best is not None and not best.rides and theirs is None:
                # nigiri's core reports journeys with a ride only: a direct walk is its caller's
                # (MOTIS's) job, and a walk that arrives first dominates every ride.
                direct_walk += 1
            elif touches_blank:
                blank_rounding += 1
            else:
                other.append(
                    {"from": str(ids[a]), "to": str(ids[b]), "t": t, "tsunagu_min": mine_min,
                     "nigiri_min": theirs}
                )  # fmt: skip
        if i < n_range:
            s0, c0 = time.perf_counter(), time.process_time()
            js = range_query(fwd, q, t, WINDOW_S, [a], [0], [b], [0])
            rg_ts.append(time.perf_counter() - s0)
            rg_ts_cpu.append(time.process_time() - c0)
            ans = ng.call(
                op="q", a=str(ids[a]), b=str(ids[b]), t=t_min, window_min=WINDOW_S // 60,
                max_transfers=MAX_TRANSFERS,
            )  # fmt: skip
            rg_ng.append(ans["s"])
            rg_ng_cpu.append(ans["cpu"])
            rg_count_ts += len(js)
            rg_count_ng += len(ans["j"])
            # nigiri's window semantics (module docstring), untimed.
            rg_mine = as_nigiri_window(
                js, earliest_arrival(fwd, q, t + WINDOW_S, [a], [0], [b], [0]).journeys, t
            )
            rg_theirs = {(int(x[0]) - base_min, int(x[1]) - base_min, int(x[2])) for x in ans["j"]}
            rg_count_ts_as_ng += len(rg_mine)
            if rg_mine == rg_theirs:
                rg_agree += 1
            elif len(rg_examples) < 5:
                rg_examples.append(
                    {"from": str(ids[a]), "to": str(ids[b]), "t": t,
                     "tsunagu_only": sorted(rg_mine - rg_theirs), "nigiri_only": sorted(rg_theirs - rg_mine)}
                )  # fmt: skip
    n = len(pairs)

    def ratio(x: list[float], y: list[float]) -> float:
        return round(float(np.median(x) / np.median(y)), 3) if x and y else float("nan")

    return {
        "queries": n,
        "ea": {
            "tsunagu": _stats(ea_ts),
            "nigiri": _stats(ea_ng),
            "ratio": ratio(ea_ts, ea_ng),
            "tsunagu_cpu": _stats(ea_ts_cpu),
            "nigiri_cpu": _stats(ea_ng_cpu),
            "ratio_cpu": ratio(ea_ts_cpu, ea_ng_cpu),
        },
        "range_60min": {
            "tsunagu": _stats(rg_ts),
            "nigiri": _stats(rg_ng),
            "ratio": ratio(rg_ts, rg_ng),
            "tsunagu_cpu": _stats(rg_ts_cpu),
            "nigiri_cpu": _stats(rg_ng_cpu),
            "ratio_cpu": ratio(rg_ts_cpu, rg_ng_cpu),
            "journeys_tsunagu": rg_count_ts,
            "journeys_tsunagu_as_nigiri": rg_count_ts_as_ng,
            "journeys_nigiri": rg_count_ng,
            "range_agree": rg_agree,
            "range_agreement_share": round(rg_agree / len(rg_ts), 4) if rg_ts else float("nan"),
            "range_disagreement_examples": rg_examples,
        },
        "agreement_share": round(agree / n, 4),
        "agree": agree,
        "agree_no_journey": both_none,
        "blank_rounding": blank_rounding,
        "direct_walk": direct_walk,
        "other_disagreements": len(other),
        "disagreement_examples": other[:5],
    }


def run(n_queries: int, n_range: int, scale: int = 50, load_only: bool = False) -> dict[str, Any]:
    """Load both networks in both routers and compare; raises :class:`NigiriUnavailable`.

    ``load_only``: the loads alone (``load_*`` and the load ratios), no query."""
    py = ensure_nigiri()
    core = None
    if hasattr(os, "sched_getaffinity"):
        core = max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
    ng = NigiriProcess(py, core)
    try:
        cairns_feed = read_feed(DATA / "au_cairns.zip")
        out: dict[str, Any] = {"core": core, "load_average": os.getloadavg()}
        runs: dict[str, Any] = {}
        big = f"cairns_x{scale}"
        # nigiri holds one timetable at a time: each network is compared right after loading.
        for name, feed in (("cairns", cairns_feed), (big, scaled_feed(cairns_feed, scale))):
            net = load_network(
                name, feed, ng, LOAD_REPEATS if name == "cairns" else BIG_LOAD_REPEATS
            )
            out[f"load_{name}"] = {
                "tsunagu": {k: round(v, 3) for k, v in net.load.items()},
                "nigiri_s": round(net.nigiri_load["load_s"], 3),
                "ratio": round(net.load["total_s"] / net.nigiri_load["load_s"], 2),
                "nigiri_cpu_s": round(net.nigiri_load["load_cpu_s"], 3),
                "ratio_cpu": round(net.load["cpu_s"] / net.nigiri_load["load_cpu_s"], 2),
                "stop_times": net.tt.n_stop_times,
                "footpaths": int(net.data.forward.transfer_to.shape[0]),
            }
            if load_only:
                pass
            elif name == "cairns":
                runs[name] = compare(net, ng, pairs_for(net, n_queries, 1, False), n_range)
            else:
                runs[f"{name}_inside"] = compare(
                    net, ng, pairs_for(net, n_queries, 2, True), n_range
                )
                runs[f"{name}_uniform"] = compare(
                    net, ng, pairs_for(net, n_queries, 3, False), n_range
                )
            del net
        out["runs"] = runs
        out["load_average_after"] = os.getloadavg()
    finally:
        ng.close()
    if load_only:
        out["load_ratio_vs_nigiri_cairns"] = out["load_cairns"]["ratio"]
        out["load_ratio_vs_nigiri_50x"] = out[f"load_cairns_x{scale}"]["ratio"]
        out["load_ratio_cpu_vs_nigiri_50x"] = out[f"load_cairns_x{scale}"]["ratio_cpu"]
        return out
    inside = runs[f"cairns_x{scale}_inside"]
    uni = runs[f"cairns_x{scale}_uniform"]
    out["ea_ratio_vs_nigiri_cairns"] = runs["cairns"]["ea"]["ratio"]
    out["range_ratio_vs_nigiri_cairns"] = runs["cairns"]["range_60min"]["ratio"]
    out["ea_ratio_vs_nigiri_50x"] = inside["ea"]["ratio"]
    out["range_ratio_vs_nigiri_50x"] = inside["range_60min"]["ratio"]
    out["ea_ratio_vs_nigiri_50x_uniform"] = uni["ea"]["ratio"]
    out["range_ratio_vs_nigiri_50x_uniform"] = uni["range_60min"]["ratio"]
    out["load_ratio_vs_nigiri_cairns"] = out["load_cairns"]["ratio"]
    out["load_ratio_vs_nigiri_50x"] = out[f"load_cairns_x{scale}"]["ratio"]
    out["ea_ratio_cpu_vs_nigiri_cairns"] = runs["cairns"]["ea"]["ratio_cpu"]
    out["ea_ratio_cpu_vs_nigiri_50x"] = inside["ea"]["ratio_cpu"]
    out["range_ratio_cpu_vs_nigiri_50x"] = inside["range_60min"]["ratio_cpu"]
    out["load_ratio_cpu_vs_nigiri_50x"] = out[f"load_cairns_x{scale}"]["ratio_cpu"]
    n_rg = sum(r["range_60min"]["tsunagu"]["n"] for r in runs.values())
    out["range_agreement_share"] = round(
        sum(r["range_60min"]["range_agree"] for r in runs.values()) / max(n_rg, 1), 4
    )
    total = sum(r["queries"] for r in runs.values())
    out["agreement_share"] = round(sum(r["agree"] for r in runs.values()) / total, 4)
    out["agreement_share_except_explained"] = round(
        sum(r["agree"] + r["blank_rounding"] + r["direct_walk"] for r in runs.values()) / total, 4
    )
    return out


def report(out: dict[str, Any]) -> None:
    print(f"pinned to core {out['core']}; load average {out['load_average']}")
    for k, v in out.items():
        if k.startswith("load_") and isinstance(v, dict):
            t = v["tsunagu"]
            print(f"{k:22} Tsunagu {t['total_s']:.3f} s (read {t['read_s']:.3f} + compile "
                  f"{t['compile_s']:.3f} + ready {t['ready_s']:.3f}) vs nigiri "
                  f"{v['nigiri_s']:.3f} s: ratio {v['ratio']} (CPU {t['cpu_s']:.3f} vs "
                  f"{v['nigiri_cpu_s']:.3f} s: {v['ratio_cpu']})")  # fmt: skip
    if not out["runs"]:  # --load-only
        return
    print(f"{'network':24} {'type':9} {'Tsunagu med/p95 ms':>20} {'nigiri med/p95 ms':>20} "
          f"{'ratio':>6} {'CPU ratio':>9} {'agree':>6} {'blank':>5} {'walk':>5} {'other':>5}")  # fmt: skip
    for name, r in out["runs"].items():
        for kind in ("ea", "range_60min"):
            x = r[kind]
            ts, ng = x["tsunagu"], x["nigiri"]
            extra = (
                f"{r['agreement_share']:>6.3f} {r['blank_rounding']:>5} {r['direct_walk']:>5} "
                f"{r['other_disagreements']:>5}"
                if kind == "ea"
                else f"  journeys {x['journeys_tsunagu']}/{x['journeys_nigiri']} (as nigiri: "
                f"{x['journeys_tsunagu_as_nigiri']}, same set {x['range_agreement_share']:.3f})"
            )
            print(f"{name:24} {kind:9} {ts['median_ms']:>9.3f}/{ts['p95_ms']:<10.3f} "
                  f"{ng['median_ms']:>9.3f}/{ng['p95_ms']:<10.3f} {x['ratio']:>6} "
                  f"{x['ratio_cpu']:>9} {extra}")  # fmt: skip
    print(
        "range journeys: Tsunagu/nigiri as each answers; Tsunagu's window is [t0, t0+W] with only "
        "its own journeys compared, nigiri's drops those a departure at or after t0+W beats (see "
        "the module docstring); 'as nigiri' counts Tsunagu's under nigiri's semantics, 'same set' "
        f"is the share of range queries then answered identically "
        f"(all networks: {out['range_agreement_share']:.3f})"
    )
    print(
        f"agreement {out['agreement_share']:.3f} (with blank-time rounding and direct walks "
        f"explained: {out['agreement_share_except_explained']:.3f}); load average after "
        f"{out['load_average_after']}"
    )

"""Realtime and feed-lifecycle benchmark.

Usage: ``python -m bench.realtime [--json PATH] [--repeats N]``

* ``overlay``: :func:`gtfs.realtime.apply_trip_updates` on the NYC subway feed (86k stop times)
  with one TripUpdate (three stop-time updates, one skipped stop) for every trip running on a
  weekday, against a plain Python per-stop-time propagation measured in the same run (same
  results, asserted); ``speedup`` = python / numpy.
* ``incremental``: the same TripUpdates as one FULL_DATASET message into a
  :class:`gtfs.realtime.ProducerState`, then DIFFERENTIAL messages of 10 entities each (5
  upserts, 5 deletes of other entities): ``differential_ms`` = one message applied plus the
  overlay rebuilt from the merged snapshot (what a POST costs), ``full_ms`` the same for the
  FULL_DATASET message.
* ``query_arrays``: :meth:`routing.transit.TransitData.query_arrays` with that overlay
  (per-query cost of the realtime day copy), forward and arrive-by.
* ``parse``: :func:`gtfs.realtime.parse_feed` of the King County VehiclePositions snapshot.
* ``restart``: serving the published Muroran network from ``compiled.npz``
  (``FeedRegistry.load_published``) against reading + compiling the zip again;
  ``speedup`` = compile / load.

Every figure is the median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gtfs import compile_timetable, read_feed
from gtfs.compiled import CompiledTimetable
from gtfs.realtime import (
    StopTimeEvent,
    StopTimeUpdate,
    TripDescriptor,
    TripMatcher,
    TripUpdate,
    apply_trip_updates,
    read_feed_file,
)

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _median(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _updates(tt: CompiledTimetable, m: TripMatcher, day: dt.date) -> list[TripUpdate]:
    rng = np.random.default_rng(0)
    out = []
    for t in np.flatnonzero(tt.active_trips(day)).tolist():
        a, b = int(tt.trip_st_ptr[t]), int(tt.trip_st_ptr[t + 1])
        if b - a < 6:
            continue
        i1, i2, i3 = sorted(rng.choice(np.arange(a + 1, b), 3, replace=False).tolist())
        sid = [str(tt.stop_ids[m.st_stop[i]]) for i in (i1, i2, i3)]
        out.append(
            TripUpdate(
                entity_id=f"e{t}",
                trip=TripDescriptor(trip_id=str(tt.trip_ids[t])),
                stop_time_updates=(
                    StopTimeUpdate(
                        stop_id=sid[0], arrival=StopTimeEvent(delay=int(rng.integers(0, 600)))
                    ),
                    StopTimeUpdate(stop_id=sid[1], schedule_relationship="SKIPPED"),
                    StopTimeUpdate(
                        stop_id=sid[2], departure=StopTimeEvent(delay=int(rng.integers(0, 900)))
                    ),
                ),
            )
        )
    return out


def _python_reference(
    tt: CompiledTimetable, m: TripMatcher, updates: list[TripUpdate]
) -> tuple[np.ndarray, np.ndarray]:
    """The same semantics, one stop time at a time in Python (the baseline)."""
    arr = tt.st_arrival.astype(np.int64).tolist()
    dep = tt.st_departure.astype(np.int64).tolist()
    for tu in updates:
        t = m.trip_index[tu.trip.trip_id or ""]
        a, b = int(tt.trip_st_ptr[t]), int(tt.trip_st_ptr[t + 1])
        at: dict[int, tuple[int, int]] = {}
        pos = a
        for s in tu.stop_time_updates:
            i = m.find_stop_time(t, None, s.stop_id, pos, None)
            pos = i
            if s.schedule_relationship == "SKIPPED":
                continue
            ad = s.arrival.delay if s.arrival else None
            dd = s.departure.delay if s.departure else None
            at[i] = (ad if ad is not None else dd, dd if dd is not None else ad)  # type: ignore[assignment]
        d_dep = 0
        prev = -(10**9)
        for i in range(a, b):
            if i in at:
                d_arr, d_dep = at[i]
            else:
                d_arr = d_dep
            x = max(arr[i] + d_arr, prev)
            y = max(dep[i] + d_dep, x)
            arr[i], dep[i] = x, y
            prev = y
    return np.asarray(arr), np.asarray(dep)


def _nyc() -> tuple[CompiledTimetable, dt.date]:
    """The NYC subway timetable and a Wednesday it runs."""
    tt = compile_timetable(read_feed(DATA / "gtfs" / "us_nyc_subway_2routes.zip"))
    day = next(
        tt.service_start + dt.timedelta(days=d)
        for d in range(tt.service_days.shape[1])
        if (tt.service_start + dt.timedelta(days=d)).weekday() == 2
        and tt.active_trips(tt.service_start + dt.timedelta(days=d)).any()
    )
    return tt, day


def bench_overlay(repeats: int) -> dict[str, Any]:
    tt, day = _nyc()
    t_matcher, m = _median(lambda: TripMatcher(tt), repeats)
    updates = _updates(tt, m, day)
    t_np, rt = _median(lambda: apply_trip_updates(tt, updates, day, matcher=m), repeats)
    t_py, (arr, dep) = _median(lambda: _python_reference(tt, m, updates), repeats)
    np.testing.assert_array_equal(rt.arrival, arr)
    np.testing.assert_array_equal(rt.departure, dep)
    return {
        "feed": "us_nyc_subway_2routes",
        "stop_times": tt.n_stop_times,
        "trip_updates": len(updates),
        "matcher_s": round(t_matcher, 5),
        "numpy_s": round(t_np, 5),
        "python_s": round(t_py, 5),
        "speedup": round(t_py / t_np, 2),
    }


def _overlay_case() -> tuple[CompiledTimetable, TripMatcher, dt.date, list[TripUpdate]]:
    tt, day = _nyc()
    m = TripMatcher(tt)
    return tt, m, day, _updates(tt, m, day)


def bench_incremental(repeats: int) -> dict[str, Any]:
    from gtfs.realtime import ProducerState, RealtimeFeed

    tt, m, day, updates = _overlay_case()
    full = RealtimeFeed("2.0", "FULL_DATASET", 1, trip_updates=tuple(updates))

    def diffs(k: int) -> RealtimeFeed:
        ups = tuple(dataclasses.replace(u, delay=60 + k) for u in updates[k * 10 : k * 10 + 5])
        dels = tuple(u.entity_id for u in updates[k * 10 + 5 : k * 10 + 10])
        return RealtimeFeed("2.0", "DIFFERENTIAL", 2 + k, trip_updates=ups, deleted_entity_ids=dels)

    messages = [diffs(k) for k in range(min(50, len(updates) // 10))]

    def run_full() -> ProducerState:
        st = ProducerState()
        st.apply(full, 0.0)
        apply_trip_updates(tt, st.snapshot(), day, matcher=m)
        return st

    t_full, _ = _median(run_full, repeats)

    def run_diffs() -> ProducerState:
        st = ProducerState()
        st.apply(full, 0.0)
        for k, msg in enumerate(messages):
            st.apply(msg, float(k))
            apply_trip_updates(tt, st.snapshot(), day, matcher=m)
        return st

    t_diffs, st = _median(run_diffs, repeats)
    assert len(st) == len(updates) - 5 * len(messages)
    return {
        "entities": len(updates),
        "messages": len(messages),
        "full_ms": round(1e3 * t_full, 3),
        "differential_ms": round(1e3 * (t_diffs - t_full) / len(messages), 3),
    }


def bench_query_arrays(repeats: int) -> dict[str, Any]:
    from routing.options import RoutingOptions
    from routing.transit import TransitData

    tt, m, day, updates = _overlay_case()
    rt = apply_trip_updates(tt, updates, day, matcher=m)
    data = TransitData(tt)
    opts = RoutingOptions()
    data.backward  # noqa: B018 - built once, outside the timing
    t_fwd, _ = _median(lambda: data.query_arrays(day, opts, rt), 10 * repeats)
    t_rev, _ = _median(lambda: data.query_arrays(day, opts, rt, reverse=True), 10 * repeats)
    t_sched, _ = _median(lambda: data.query_arrays(day, opts), 10 * repeats)
    return {
        "stop_times": tt.n_stop_times,
        "scheduled_ms": round(1e3 * t_sched, 3),
        "realtime_ms": round(1e3 * t_fwd, 3),
        "realtime_arrive_by_ms": round(1e3 * t_rev, 3),
    }


def bench_parse(repeats: int) -> dict[str, Any]:
    path = DATA / "gtfs-rt" / "us_king_county_vehicle_positions_1.pb"
    t, feed = _median(lambda: read_feed_file(path), repeats)
    return {
        "vehicles": len(feed.vehicles),
        "seconds": round(t, 5),
        "per_vehicle_us": round(1e6 * t / len(feed.vehicles), 2),
    }


def bench_restart(repeats: int) -> dict[str, Any]:
    from app import db
    from app.feeds.registry import FeedRegistry

    zip_path = DATA / "gtfs" / "jp_donan_bus_muroran.zip"
    with tempfile.TemporaryDirectory() as tmp:
        engine = db.create_db_engine(f"sqlite:///{tmp}/bench.db")
        db.upgrade_database(engine)
        reg = FeedRegistry(engine, Path(tmp))
        t_upload, v = _median(lambda: None, 1)
        t0 = time.perf_counter()
        v = reg.upload_file("muroran", zip_path)
        t_upload = time.perf_counter() - t0
        reg.publish("muroran", v.id)  # type: ignore[arg-type]

        def restart() -> FeedRegistry:
            r = FeedRegistry(engine, Path(tmp))
            r.load_published()
            assert r.compiles == 0
            return r

        t_load, _ = _median(restart, repeats)
        t_compile, _ = _median(lambda: compile_timetable(read_feed(zip_path)), repeats)
        engine.dispose()
    return {
        "feed": "jp_donan_bus_muroran",
        "upload_validate_compile_s": round(t_upload, 3),
        "restart_from_npz_s": round(t_load, 4),
        "read_and_compile_s": round(t_compile, 4),
        "speedup": round(t_compile / t_load, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    results = {
        "overlay": bench_overlay(args.repeats),
        "incremental": bench_incremental(args.repeats),
        "query_arrays": bench_query_arrays(args.repeats),
        "parse": bench_parse(args.repeats),
        "restart": bench_restart(args.repeats),
    }
    for name, r in results.items():
        print(f"{name:8s} " + "  ".join(f"{k}={v}" for k, v in r.items()))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

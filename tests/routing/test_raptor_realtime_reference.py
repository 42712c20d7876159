"""RAPTOR with realtime overlays on D-1, D and D+1 against the connection scan, on real feeds.

Random overlays delay trips (with catch-up, so delayed trips overtake and get overtaken), skip
stops and cancel trips on each of the three service days a query rides. The reference applies
the same changes to the raw GTFS trips (by trip id and stop position) and scans connections;
RAPTOR's one-to-all earliest arrivals must equal it at every stop, its journeys must be
feasible on the realtime timetable, arrive-by answers must be the true latest departures and
McRAPTOR must be as fast. This covers the odd trip copies (skips, overtaking) on every day copy.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from gtfs.compiled import CompiledTimetable
from gtfs.realtime import RealtimeState
from routing.options import RoutingOptions
from routing.raptor import earliest_arrival, latest_departure
from routing.raptor.kernels import BIG
from routing.raptor.mcraptor import mc_raptor
from routing.transit import DAY_OFFSETS
from tests.routing.conftest import FeedCase
from tests.routing.reference import RawOverlay, check_journey
from tests.routing.test_raptor_reference import _served_stops, _service_days

OPTIONS = RoutingOptions(max_transfers=15, max_walk_m=10_000)


def random_overlay(
    tt: CompiledTimetable, day: dt.date, rng: np.random.Generator
) -> tuple[RealtimeState, RawOverlay]:
    """A realtime state of ``day`` (compiled indices) and the same changes by raw trip id."""
    rt = RealtimeState.scheduled(tt, day)
    raw = RawOverlay(day)
    n_trips = tt.n_trips
    delayed = rng.random(n_trips) < 0.2
    skipping = rng.random(n_trips) < 0.1
    cancelled = rng.random(n_trips) < 0.03
    for t in np.flatnonzero(delayed | skipping | cancelled).tolist():
        lo, hi = int(tt.trip_st_ptr[t]), int(tt.trip_st_ptr[t + 1])
        n = hi - lo
        tid = str(tt.trip_ids[t])
        if delayed[t]:
            # Late from stop k by up to 30 min, catching up part of it from a later stop; then
            # made non-decreasing along the trip as the overlay's propagation does.
            delay = np.zeros(n, dtype=np.int64)
            k = int(rng.integers(0, n))
            delay[k:] = int(rng.integers(60, 1800))
            k2 = int(rng.integers(k, n))
            delay[k2:] -= int(rng.integers(0, delay[k] + 1))
            seq = np.empty(2 * n, dtype=np.int64)
            seq[0::2] = rt.arrival[lo:hi] + delay
            seq[1::2] = rt.departure[lo:hi] + delay
            seq = np.maximum.accumulate(seq)
            rt.arrival[lo:hi] = seq[0::2]
            rt.departure[lo:hi] = seq[1::2]
            rt.trip_updated[t] = True
            raw.times[tid] = (seq[0::2].tolist(), seq[1::2].tolist())
        if skipping[t]:
            pos = rng.choice(n, size=min(n, int(rng.integers(1, 3))), replace=False)
            rt.stop_skipped[lo + pos] = True
            rt.trip_updated[t] = True
            raw.skipped[tid] = rt.stop_skipped[lo:hi].tolist()
        if cancelled[t]:
            rt.trip_cancelled[t] = True
            raw.cancelled.add(tid)
    return rt, raw


def _cases(
    case: FeedCase, n_days: int, per_day: int, seed: int
) -> list[tuple[dt.date, list[RealtimeState], tuple[RawOverlay, ...], list[tuple[int, int, int]]]]:
    rng = np.random.default_rng(seed)
    tt = case.tt
    for t in range(tt.n_trips):  # the reference must know every compiled trip, stop for stop
        assert len(case.ref.raw.trips[str(tt.trip_ids[t])].stops) == int(
            tt.trip_st_ptr[t + 1] - tt.trip_st_ptr[t]
        )
    days = _service_days(case)
    stops = _served_stops(case)
    out = []
    for i in sorted(rng.choice(len(days), n_days, replace=False).tolist()):
        day = days[i]
        pairs = [random_overlay(tt, day + dt.timedelta(days=d), rng) for d in DAY_OFFSETS]
        queries = []
        for _ in range(per_day):
            o, d = rng.choice(stops, 2, replace=False)
            queries.append((int(o), int(d), int(rng.integers(0, 24 * 3600))))
        out.append((day, [p[0] for p in pairs], tuple(p[1] for p in pairs), queries))
    return out


def test_realtime_earliest_arrival_matches_connection_scan(feed_case: FeedCase) -> None:
    case = feed_case
    tt = case.tt
    data = case.data
    n_compared = n_journeys = n_odd = 0
    for day, states, raw, queries in _cases(case, 4, 50, seed=11):
        q = data.query_arrays(day, OPTIONS, states)
        n_odd += 0 if q.odd is None else int((q.odd & q.active).sum())
        for k, (o, d, t0) in enumerate(queries):
            ref = case.ref.earliest(str(tt.stop_ids[o]), day, t0, realtime=raw)
            best = earliest_arrival(data.forward, q, t0, [o], [0]).best
            ours = {str(tt.stop_ids[i]): int(best[i]) for i in np.flatnonzero(best < BIG)}
            assert ours == ref, (case.name, o, t0, day)
            n_compared += len(ref)
            one = earliest_arrival(data.forward, q, t0, [o], [0], [d], [0])
            target = ref.get(str(tt.stop_ids[d]))
            assert (min(j.arrival for j in one.journeys) if one.journeys else None) == target
            for j in one.journeys:
                check_journey(case.ref, tt.trip_ids, tt.stop_ids, j, day, realtime=raw)
                n_journeys += 1
            if k % 5 == 0 and target is not None:
                mc = mc_raptor(data.forward, q, t0, [o], [0], [d], [0])
                assert min(j.arrival for j in mc) == target, (case.name, o, d, t0, day)
                for j in mc:
                    check_journey(case.ref, tt.trip_ids, tt.stop_ids, j, day, realtime=raw)
    assert n_odd > 0  # skips and overtaking did make odd trip copies
    assert n_compared > 200 and n_journeys > 40


def test_realtime_arrive_by_is_the_latest_departure(feed_case: FeedCase) -> None:
    case = feed_case
    tt = case.tt
    data = case.data
    checked = 0
    for day, states, raw, queries in _cases(case, 3, 30, seed=12):
        qr = data.query_arrays(day, OPTIONS, states, reverse=True)
        for o, d, t0 in queries:
            so, sd = str(tt.stop_ids[o]), str(tt.stop_ids[d])
            target = case.ref.earliest(so, day, t0, realtime=raw).get(sd)
            if target is None:
                continue
            res = latest_departure(data.backward, qr, target, [d], [0], [o], [0])
            assert res.journeys, (case.name, o, d, t0, day)
            ld = max(j.departure for j in res.journeys)
            assert ld >= t0 and -int(res.best[o]) == ld
            for j in res.journeys:
                assert j.arrival <= target
                check_journey(case.ref, tt.trip_ids, tt.stop_ids, j, day, realtime=raw)
            assert case.ref.earliest(so, day, ld, realtime=raw)[sd] <= target
            assert case.ref.earliest(so, day, ld + 1, realtime=raw).get(sd, BIG) > target
            checked += 1
    assert checked > 15

"""RAPTOR against the brute-force connection scan over the raw GTFS, on real feeds.

For each of Muroran, Cairns and NYC: 500 random (origin, destination, departure, date)
queries give the same earliest arrival at every stop as the reference, and every journey the
router returns is feasible against the raw timetable. Arrive-by answers are the true latest
departures; range (rRAPTOR) answers cover every repeated earliest-arrival query.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from routing.options import RoutingOptions
from routing.raptor import earliest_arrival, latest_departure, range_query
from routing.raptor.kernels import BIG
from routing.raptor.mcraptor import mc_raptor
from routing.raptor.search import QueryArrays
from tests.routing.conftest import FeedCase
from tests.routing.reference import check_journey

N_QUERIES = 500
OPTIONS = RoutingOptions(max_transfers=15, max_walk_m=10_000)


def _served_stops(case: FeedCase) -> np.ndarray:
    return np.flatnonzero(np.diff(case.tt.stop_pattern_ptr) > 0)


def _service_days(case: FeedCase) -> list[dt.date]:
    tt = case.tt
    cols = np.flatnonzero(tt.service_days.any(axis=0))
    return [tt.service_start + dt.timedelta(days=int(c)) for c in cols]


def _queries(case: FeedCase, n: int, seed: int) -> list[tuple[int, int, int, dt.date]]:
    rng = np.random.default_rng(seed)
    stops = _served_stops(case)
    # A dozen random service days per run keeps the reference's per-day set-up cheap.
    all_days = _service_days(case)
    days = [
        all_days[i]
        for i in sorted(rng.choice(len(all_days), min(12, len(all_days)), replace=False))
    ]
    out = []
    for _ in range(n):
        o, d = rng.choice(stops, 2, replace=False)
        out.append(
            (int(o), int(d), int(rng.integers(4 * 3600, 24 * 3600)), days[rng.integers(len(days))])
        )
    return out


class _Queries:
    def __init__(self, case: FeedCase, options: RoutingOptions) -> None:
        self.case = case
        self.options = options
        self.cache: dict[tuple[dt.date, bool], QueryArrays] = {}

    def __call__(self, day: dt.date, reverse: bool = False) -> QueryArrays:
        key = (day, reverse)
        if key not in self.cache:
            self.cache[key] = self.case.data.query_arrays(day, self.options, reverse=reverse)
        return self.cache[key]


def test_earliest_arrival_matches_connection_scan(feed_case: FeedCase) -> None:
    case = feed_case
    tt = case.tt
    qa = _Queries(case, OPTIONS)
    n_compared = 0
    n_journeys = 0
    for o, d, t0, day in _queries(case, N_QUERIES, seed=1):
        q = qa(day)
        ref = case.ref.earliest(str(tt.stop_ids[o]), day, t0)
        # One-to-all: every stop's earliest arrival.
        res = earliest_arrival(case.data.forward, q, t0, [o], [0])
        best = res.best
        ours = {str(tt.stop_ids[i]): int(best[i]) for i in np.flatnonzero(best < BIG)}
        assert ours == ref, (case.name, o, t0, day)
        n_compared += len(ref)
        # One-to-one with target pruning: same arrival, feasible journeys.
        one = earliest_arrival(case.data.forward, q, t0, [o], [0], [d], [0])
        target = ref.get(str(tt.stop_ids[d]))
        if target is None:
            assert one.journeys == ()
            continue
        assert min(j.arrival for j in one.journeys) == target
        for j in one.journeys:
            assert j.departure >= t0
            check_journey(case.ref, tt.trip_ids, tt.stop_ids, j, day)
            n_journeys += 1
    assert n_compared > N_QUERIES  # the queries did reach places
    assert n_journeys > N_QUERIES // 4


@pytest.mark.parametrize("slack", [0, 120])
def test_min_transfer_time_matches_reference(cairns: FeedCase, slack: int) -> None:
    case = cairns
    tt = case.tt
    options = RoutingOptions(max_transfers=15, max_walk_m=10_000, min_transfer_s=slack)
    qa = _Queries(case, options)
    for o, d, t0, day in _queries(case, 60, seed=7):
        ref = case.ref.earliest(str(tt.stop_ids[o]), day, t0, slack=slack)
        res = earliest_arrival(case.data.forward, qa(day), t0, [o], [0], [d], [0])
        target = ref.get(str(tt.stop_ids[d]))
        assert (min(j.arrival for j in res.journeys) if res.journeys else None) == target
        for j in res.journeys:
            check_journey(case.ref, tt.trip_ids, tt.stop_ids, j, day, slack=slack)


def test_arrive_by_is_the_latest_departure(feed_case: FeedCase) -> None:
    """Departing at the arrive-by answer arrives in time; one second later does not."""
    case = feed_case
    tt = case.tt
    qa = _Queries(case, OPTIONS)
    checked = 0
    for o, d, t0, day in _queries(case, 150, seed=2):
        so, sd = str(tt.stop_ids[o]), str(tt.stop_ids[d])
        target = case.ref.earliest(so, day, t0).get(sd)
        if target is None:
            continue
        res = latest_departure(case.data.backward, qa(day, True), target, [d], [0], [o], [0])
        assert res.journeys, (case.name, o, d, t0, day)
        ld = max(j.departure for j in res.journeys)
        assert ld >= t0
        assert -int(res.best[o]) == ld
        for j in res.journeys:
            assert j.arrival <= target
            check_journey(case.ref, tt.trip_ids, tt.stop_ids, j, day)
        assert case.ref.earliest(so, day, ld)[sd] <= target
        assert case.ref.earliest(so, day, ld + 1).get(sd, BIG) > target
        checked += 1
    assert checked > 30


def test_range_pareto_set_covers_repeated_earliest_arrival(feed_case: FeedCase) -> None:
    case = feed_case
    tt = case.tt
    qa = _Queries(case, OPTIONS)
    window = 3600
    checked = 0
    for o, d, t0, day in _queries(case, 40, seed=3):
        q = qa(day)
        journeys = range_query(case.data.forward, q, t0, window, [o], [0], [d], [0])
        for j in journeys:
            check_journey(case.ref, tt.trip_ids, tt.stop_ids, j, day)
        # Non-domination within the set.
        for a in journeys:
            for b in journeys:
                if a is b:
                    continue
                assert not (
                    b.departure >= a.departure
                    and b.arrival <= a.arrival
                    and b.n_transfers <= a.n_transfers
                    and (b.departure, b.arrival, b.n_transfers)
                    != (a.departure, a.arrival, a.n_transfers)
                )
        # Every repeated EA query (at each departure in the window, for each transfer limit)
        # is matched or beaten by a journey of the set that departs no earlier.
        taus = sorted({t0, *(j.departure for j in journeys if j.departure <= t0 + window)})
        for tau in taus:
            ref = case.ref.earliest(str(tt.stop_ids[o]), day, tau).get(str(tt.stop_ids[d]))
            ea = earliest_arrival(case.data.forward, q, tau, [o], [0], [d], [0])
            for e in ea.journeys:
                if e.departure > t0 + window or not e.rides:
                    continue
                assert any(
                    j.departure >= e.departure
                    and j.arrival <= e.arrival
                    and j.n_transfers <= e.n_transfers
                    for j in journeys
                ), (case.name, o, d, tau, e)
                checked += 1
            later = [j.arrival for j in journeys if j.departure >= tau]
            if later and ref is not None:
                assert min(later) >= ref
    assert checked > 20


def test_mcraptor_pareto_set(feed_case: FeedCase) -> None:
    """McRAPTOR: feasible, mutually non-dominated on (arrival, transfers, walking), and for
    every transfer limit as fast as RAPTOR (so as fast as the reference overall)."""
    case = feed_case
    tt = case.tt
    qa = _Queries(case, OPTIONS)
    checked = 0
    for o, d, t0, day in _queries(case, 120, seed=4):
        q = qa(day)
        mc = mc_raptor(case.data.forward, q, t0, [o], [0], [d], [0])
        ea = earliest_arrival(case.data.forward, q, t0, [o], [0], [d], [0])
        target = case.ref.earliest(str(tt.stop_ids[o]), day, t0).get(str(tt.stop_ids[d]))
        if target is None:
            assert mc == []
            continue
        assert min(j.arrival for j in mc) == target
        for j in mc:
            assert j.departure >= t0
            check_journey(case.ref, tt.trip_ids, tt.stop_ids, j, day)
        crit = [(j.arrival, j.n_transfers, j.walk_seconds) for j in mc]
        for a in crit:
            assert not any(
                b != a and all(x <= y for x, y in zip(b, a, strict=True)) for b in crit
            ), crit
        for e in ea.journeys:
            assert min(j.arrival for j in mc if j.n_transfers <= e.n_transfers) == e.arrival
        checked += 1
    assert checked > 30

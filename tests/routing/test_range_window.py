"""Range queries' window semantics (routing.raptor.search.range_query), on Cairns.

A journey counts when it leaves the origin inside [t0, t0 + W]; the answer is exactly the
Pareto set (later departure, earlier arrival, fewer transfers) of those journeys. Checked by
brute force: an unpruned earliest-arrival search from every departure time in the window, and
every journey is feasible against the raw timetable.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from routing.options import RoutingOptions
from routing.raptor import earliest_arrival, range_query
from routing.raptor.journey import Journey
from tests.routing.conftest import FeedCase
from tests.routing.reference import check_journey

OPTIONS = RoutingOptions(max_transfers=5, max_walk_m=1000)
WINDOW = 3600


def _dominates(a: Journey, b: Journey) -> bool:
    return a.departure >= b.departure and a.arrival <= b.arrival and a.n_transfers <= b.n_transfers


def test_range_is_the_pareto_set_of_journeys_leaving_in_the_window(cairns: FeedCase) -> None:
    case = cairns
    tt = case.tt
    data = case.data
    counts = tt.service_days[tt.trip_service].sum(axis=0)
    day = tt.service_start + dt.timedelta(days=int(np.argmax(counts)))
    q = data.query_arrays(day, OPTIONS)
    fwd = data.forward
    rng = np.random.default_rng(11)
    served = np.flatnonzero(np.diff(tt.stop_pattern_ptr) > 0)
    n_found = 0
    for _ in range(12):
        o, d = (int(x) for x in rng.choice(served, 2, replace=False))
        t0 = int(rng.integers(6 * 3600, 19 * 3600))
        got = range_query(fwd, q, t0, WINDOW, [o], [0], [d], [0])
        for j in got:
            assert j.rides  # a direct walk is the planner's, not the range's
            assert t0 <= j.departure <= t0 + WINDOW, (o, d, t0, j)
            check_journey(case.ref, tt.trip_ids, tt.stop_ids, j, day)
            # Optimal for its departure and number of transfers among journeys that leave
            # inside the window (a later one may arrive earlier: it is outside).
            ea = earliest_arrival(fwd, q, j.departure, [o], [0], [d], [0], prune=False)
            assert all(
                e.arrival >= j.arrival
                for e in ea.journeys
                if e.n_transfers <= j.n_transfers and e.departure <= t0 + WINDOW
            )
        for a in got:
            assert not any(b is not a and _dominates(b, a) and b.key() != a.key() for b in got)
        # Complete: every departure minute of the window (and each journey's own second)
        # yields nothing that the set does not match or beat.
        taus = sorted({*range(t0, t0 + WINDOW + 1, 60), *(j.departure for j in got)})
        for tau in taus:
            ea = earliest_arrival(fwd, q, tau, [o], [0], [d], [0], prune=False)
            for e in ea.journeys:
                if e.departure > t0 + WINDOW or not e.rides:
                    continue
                assert any(_dominates(j, e) for j in got), (o, d, t0, tau, e)
        n_found += len(got)
    assert n_found > 12

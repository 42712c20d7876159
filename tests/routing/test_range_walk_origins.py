"""Range queries (rRAPTOR, #15) from origins with footpaths, against the brute force.

A range query holds a journey's first ride to its window (``board_limit``); a later boarding
is free. At a stop the origin reaches on foot (or the origin itself) the first ride's label
must not hide a later arrival there after a ride: a journey that comes back to such a stop
may board there after the window. Checked on hand-made cases and against the rule brute force
(:class:`tests.routing.reference.RuleReference`) on random feeds with footpaths, origins
drawn among the stops with a footpath.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from routing.options import RoutingOptions
from routing.raptor import range_query
from tests.routing import oracle_checks as oracle
from tests.routing.oracle_checks import FRI, RuleCase
from tests.routing.rule_feeds import RuleFeed, Transfer, Trip
from tests.routing.test_walk_transfer_rules import _rules, _walks

H = 3600
OPTIONS = RoutingOptions(max_transfers=3)

# Origin S0; a footpath of 120 s to S1 (and 60 s from S4 to S1). The window is 07:55-08:05.
# Trip a leaves S0 at 08:00 for S1 (08:20) or S4 (08:19), trip c leaves S0 at 08:01 for S2
# and comes back to S0 at 08:25; trip b leaves S1 at 08:30 for S3 (08:50), trip d leaves S0
# at 08:40 for S3 (09:00). Boarding b or d is after the window: only after a ride.
_TRIPS = {
    "a": Trip("a", "RA", [0, 1], [8 * H, 8 * H + 1200]),
    "a4": Trip("a4", "RA4", [0, 4], [8 * H, 8 * H + 1140]),
    "b": Trip("b", "RB", [1, 3], [8 * H + 1800, 8 * H + 3000]),
    "c": Trip("c", "RC", [0, 2, 0], [8 * H + 60, 8 * H + 700, 8 * H + 1500]),
    "d": Trip("d", "RD", [0, 3], [8 * H + 2400, 8 * H + 3600]),
}


@pytest.mark.parametrize(
    ("trips", "departure", "arrival"),
    [
        (("a", "b"), 8 * H, 8 * H + 3000),  # back at the stop walked to by a ride: a, then b
        (("a4", "b"), 8 * H, 8 * H + 3000),  # ... by a ride and a walk: a4, walk to S1, b
        (("c", "d"), 8 * H + 60, 9 * H),  # back at the origin itself: c, then d
    ],
)
def test_range_boards_after_the_window_where_the_origin_walks(
    tmp_path: Path, trips: tuple[str, ...], departure: int, arrival: int
) -> None:
    feed = RuleFeed(
        5,
        [_TRIPS[t] for t in trips],
        [Transfer(0, 1, 2, 120), Transfer(4, 1, 2, 60)],
    )
    case = RuleCase(feed.write(tmp_path / "f.zip"))
    o, d = case.stop(0), case.stop(3)
    t0 = 8 * H - 300
    qa = case.data.query_arrays(FRI, OPTIONS)
    got = range_query(case.data.forward, qa, t0, 600, [o], [0], [d], [0])
    assert [(j.departure, j.arrival, j.n_vehicles) for j in got] == [(departure, arrival, 2)]
    oracle.check_range(case, OPTIONS, 0, FRI, o, d, t0, 600)


N_FEEDS = 10
N_QUERIES = 8


@pytest.mark.parametrize("with_rules", [False, True])
def test_range_from_origins_with_footpaths_matches_brute_force(
    tmp_path: Path, with_rules: bool
) -> None:
    """Random feeds with footpaths (and, ``with_rules``, the walk rules of
    :mod:`tests.routing.test_walk_transfer_rules`); every origin has a footpath."""

    def walks(rng: np.random.Generator, feed: RuleFeed) -> list[Transfer]:
        return _walks(rng, feed, 8)

    n_found = 0
    for case, rng in oracle.random_cases(tmp_path, N_FEEDS, 4200, _rules if with_rules else walks):
        if not any(case.ref._walks_from(str(case.tt.stop_ids[o])) for o in case.stops):
            continue

        def apart(o: int, d: int, case: RuleCase = case) -> bool:
            return case.apart(o, d) and bool(case.ref._walks_from(str(case.tt.stop_ids[o])))

        queries = oracle.random_queries(
            rng, case.stops, N_QUERIES, 5 * H + 1800, 7 * H + 1800, apart
        )
        for q, day, o, d, t0 in queries:
            n_found += bool(oracle.check_range(case, OPTIONS, q, day, o, d, t0, 3600))
    assert n_found > 0

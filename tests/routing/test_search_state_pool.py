"""Search label blocks are reused across searches only once no result holds them (#15).

:class:`routing.raptor.search.SearchState` takes its label blocks from a shared pool (a
fresh block of a large network page-faults as it is filled). A result kept by the caller must
keep its labels whatever searches run after it, and a block no result holds is reused.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from routing.options import RoutingOptions
from routing.raptor import earliest_arrival
from routing.raptor.search import SearchState
from tests.routing.conftest import FeedCase

OPTIONS = RoutingOptions(max_transfers=4, max_walk_m=800)


def test_kept_results_keep_their_labels_while_later_searches_run(cairns: FeedCase) -> None:
    tt = cairns.tt
    day = tt.service_start + dt.timedelta(days=int(np.argmax(tt.service_days.sum(axis=0))))
    q = cairns.data.query_arrays(day, OPTIONS)
    net = cairns.data.forward
    served = np.flatnonzero(np.diff(tt.stop_pattern_ptr) > 0)
    rng = np.random.default_rng(5)
    kept = []
    for _ in range(8):
        a, b = (int(x) for x in rng.choice(served, 2, replace=False))
        res = earliest_arrival(net, q, 8 * 3600, [a], [0], [b], [0], prune=False)
        kept.append((res, res.best.copy(), res.state.rtau.copy(), res.journeys))
    # More searches than the pool keeps blocks, then every kept result is read again.
    for _ in range(6):
        a, b = (int(x) for x in rng.choice(served, 2, replace=False))
        earliest_arrival(net, q, 9 * 3600, [a], [0], [b], [0], prune=False)
    for res, best, rtau, journeys in kept:
        assert np.array_equal(res.best, best)
        assert np.array_equal(res.state.rtau, rtau)
        assert res.journeys == journeys


def test_a_block_no_state_holds_is_reused_and_refilled() -> None:
    first = SearchState(3, 50)
    first.rtau[1, 7] = 5
    first.r_copy[2, 3] = True
    block = id(first.rtau.base)  # the pool keeps the block alive: its id stays its own
    del first
    again = SearchState(3, 50)
    assert id(again.rtau.base) == block  # reused ...
    assert (again.rtau == 2**30).all() and not again.r_copy.any()  # ... and refilled
    held = SearchState(3, 50)
    assert held.rtau.base is not again.rtau.base  # a block a live state holds is not shared


def test_searches_in_threads_keep_their_own_labels(cairns: FeedCase) -> None:
    """Concurrent searches (the planner's worker threads) never share a block."""
    from concurrent.futures import ThreadPoolExecutor

    tt = cairns.tt
    day = tt.service_start + dt.timedelta(days=int(np.argmax(tt.service_days.sum(axis=0))))
    q = cairns.data.query_arrays(day, OPTIONS)
    net = cairns.data.forward
    served = np.flatnonzero(np.diff(tt.stop_pattern_ptr) > 0)
    rng = np.random.default_rng(9)
    pairs = [tuple(int(x) for x in rng.choice(served, 2, replace=False)) for _ in range(24)]

    def one(ab: tuple[int, ...]) -> tuple[object, ...]:
        a, b = ab
        res = earliest_arrival(net, q, 8 * 3600, [a], [0], [b], [0], prune=False)
        return res.journeys, res.best.tolist()

    alone = [one(ab) for ab in pairs]
    with ThreadPoolExecutor(4) as ex:
        assert list(ex.map(one, pairs)) == alone

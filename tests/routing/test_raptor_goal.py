"""Goal-directed pruning (routing.raptor.bounds): lower bounds towards the target.

The bounds never exceed the true remaining time (checked against unpruned one-to-all searches
on Cairns), pruning never changes an answer (one-to-one, arrive-by, range; schedule and
realtime that makes trips faster than scheduled), and a target that no origin can reach is
answered without a search.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from gtfs.realtime import RealtimeState
from routing.options import RoutingOptions
from routing.raptor import earliest_arrival, latest_departure, range_query
from routing.raptor.bounds import schedule_graph
from routing.raptor.kernels import BIG
from routing.transit import TransitData
from tests.routing.conftest import FeedCase
from tests.routing.tiny import TinyFeed, TinyTrip

OPTIONS = RoutingOptions(max_transfers=6, max_walk_m=2000)


def _busiest(case: FeedCase) -> dt.date:
    tt = case.tt
    counts = tt.service_days[tt.trip_service].sum(axis=0)
    return tt.service_start + dt.timedelta(days=int(np.argmax(counts)))


def _journeys(res: object) -> list[tuple[int, int, int]]:
    return sorted((j.departure, j.arrival, j.n_transfers) for j in res.journeys)  # type: ignore[attr-defined]


def test_bounds_never_exceed_the_remaining_time(cairns: FeedCase) -> None:
    data = cairns.data
    day = _busiest(cairns)
    q = data.query_arrays(day, OPTIONS)
    fwd = data.forward
    rng = np.random.default_rng(5)
    served = np.flatnonzero(np.diff(cairns.tt.stop_pattern_ptr) > 0)
    checked = 0
    for _ in range(15):
        target = int(rng.choice(served))
        egress = np.full(fwd.n_stops, -1, dtype=np.int32)
        egress[target] = 0
        lb = q.lower_bounds(fwd, egress)
        assert lb[target] == 0
        for s in rng.choice(served, 10, replace=False):
            t0 = int(rng.integers(6 * 3600, 18 * 3600))
            best = earliest_arrival(fwd, q, t0, [int(s)], [0], prune=False).best
            # The search that stops early past the origin: never above the full one.
            access = np.full(fwd.n_stops, -1, dtype=np.int32)
            access[s] = 0
            early = q.lower_bounds(fwd, egress, access)
            assert (early <= lb).all() and early[s] == lb[s]
            if best[target] < BIG:
                assert lb[s] <= best[target] - t0, (s, target, t0)
                reached = best < BIG
                # Every reached stop: its bound is no more than the rest of the way from it.
                assert (early[reached] <= lb[reached]).all()
                checked += 1
            if lb[s] >= BIG:
                assert best[target] >= BIG
    assert checked > 50


def test_pruning_changes_no_answer(cairns: FeedCase) -> None:
    data = cairns.data
    day = _busiest(cairns)
    q = data.query_arrays(day, OPTIONS)
    qr = data.query_arrays(day, OPTIONS, reverse=True)
    rng = np.random.default_rng(9)
    served = np.flatnonzero(np.diff(cairns.tt.stop_pattern_ptr) > 0)
    found = 0
    for i in range(120):
        o, d = (int(x) for x in rng.choice(served, 2, replace=False))
        t0 = int(rng.integers(5 * 3600, 22 * 3600))
        a = earliest_arrival(data.forward, q, t0, [o], [0], [d], [60])
        b = earliest_arrival(data.forward, q, t0, [o], [0], [d], [60], prune=False)
        assert _journeys(a) == _journeys(b), (o, d, t0)
        found += bool(a.journeys)
        ld = latest_departure(data.backward, qr, t0 + 3600, [d], [0], [o], [0])
        ld0 = latest_departure(data.backward, qr, t0 + 3600, [d], [0], [o], [0], prune=False)
        assert _journeys(ld) == _journeys(ld0)
        if i % 4 == 0:
            r = range_query(data.forward, q, t0, 3600, [o], [0], [d], [0])
            r0 = range_query(data.forward, q, t0, 3600, [o], [0], [d], [0], prune=False)
            assert [(j.departure, j.arrival, j.n_transfers) for j in r] == [
                (j.departure, j.arrival, j.n_transfers) for j in r0
            ]
    assert found > 60


def test_unreachable_target_is_answered_without_a_search() -> None:
    # Two lines that never meet: 0-1-2 and 3-4.
    tt = TinyFeed(
        5,
        [
            TinyTrip("a", [0, 1, 2], [3600, 3700, 3800]),
            TinyTrip("b", [3, 4], [3600, 3900]),
        ],
    ).compile()
    data = TransitData(tt)
    q = data.query_arrays(tt.service_start, RoutingOptions())
    egress = np.full(5, -1, dtype=np.int32)
    egress[4] = 0
    lb = q.lower_bounds(data.forward, egress)
    assert lb.tolist() == [BIG, BIG, BIG, 300, 0]
    res = earliest_arrival(data.forward, q, 0, [0], [0], [4], [0])
    assert res.journeys == ()
    assert (res.state.rtau >= BIG).all()  # no round ran
    assert range_query(data.forward, q, 0, 3600, [0], [0], [4], [0]) == []
    ok = earliest_arrival(data.forward, q, 0, [3], [0], [4], [0])
    assert [j.arrival for j in ok.journeys] == [3900]


def test_unconnected_parts_are_told_apart_without_a_dijkstra(monkeypatch: Any) -> None:
    """Stops in different (weakly) connected parts of the relaxed network: "no journey" from
    the components alone, earliest arrival, arrive-by and range alike; within one part, or
    from a stop of each part, the lower bounds are computed as before."""
    from routing.raptor import bounds

    tt = TinyFeed(
        6,
        [
            TinyTrip("a", [0, 1, 2], [3600, 3700, 3800]),
            TinyTrip("b", [3, 4], [3600, 3900]),
            TinyTrip("c", [4, 5], [4000, 4100]),
        ],
    ).compile()
    data = TransitData(tt)
    q = data.query_arrays(tt.service_start, RoutingOptions())
    graph = schedule_graph(data.forward)
    assert graph.components[0] == graph.components[2] != graph.components[3]
    calls: list[int] = []
    real = bounds.backward_dijkstra

    def counted(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(bounds, "backward_dijkstra", counted)
    assert earliest_arrival(data.forward, q, 0, [0], [0], [5], [0]).journeys == ()
    assert range_query(data.forward, q, 0, 3600, [1], [0], [4], [0]) == []
    rq = data.query_arrays(tt.service_start, RoutingOptions(), reverse=True)
    assert latest_departure(data.backward, rq, 9000, [5], [0], [0], [0]).journeys == ()
    assert calls == []
    both = earliest_arrival(data.forward, q, 0, [0, 3], [0, 0], [5], [0])
    assert [j.arrival for j in both.journeys] == [4100]
    assert calls  # the bounds of a connected pair are computed


def test_components_agree_with_the_lower_bounds(cairns: FeedCase) -> None:
    """A stop pair in different components is one the Dijkstra finds unreachable (over the
    Cairns network, every target and a sample of origins)."""
    data = cairns.data
    graph = schedule_graph(data.forward)
    q = data.query_arrays(_busiest(cairns), RoutingOptions())
    n = data.forward.n_stops
    rng = np.random.default_rng(5)
    for t in rng.choice(n, size=min(n, 40), replace=False):
        egress = np.full(n, -1, dtype=np.int32)
        egress[t] = 0
        lb = q.lower_bounds(data.forward, egress)
        apart = graph.components != graph.components[t]
        assert (lb[apart] >= BIG).all()


def test_realtime_faster_than_schedule_keeps_the_answer() -> None:
    # Line 0-1-2 scheduled 600 s per hop; realtime makes the 09:00 run 60 s per hop, so the
    # schedule's bound at stop 0 (1300 s to stop 3) is too high: the query's own bounds come
    # from its realtime times.
    tt = TinyFeed(
        4,
        [
            TinyTrip("slow", [0, 1, 2], [3600 * 9, 3600 * 9 + 600, 3600 * 9 + 1200]),
            TinyTrip("late", [0, 1, 2], [3600 * 10, 3600 * 10 + 600, 3600 * 10 + 1200]),
            TinyTrip("x", [2, 3], [3600 * 9 + 300, 3600 * 9 + 400]),
        ],
    ).compile()
    data = TransitData(tt)
    day = tt.service_start
    assert schedule_graph(data.forward).ride_s.min() >= 100
    rt = RealtimeState.scheduled(tt, day)
    t = int(np.flatnonzero(tt.trip_ids == "slow")[0])
    a, b = int(tt.trip_st_ptr[t]), int(tt.trip_st_ptr[t + 1])
    rt.arrival[a:b] = [3600 * 9, 3600 * 9 + 60, 3600 * 9 + 120]
    rt.departure[a:b] = [3600 * 9, 3600 * 9 + 60, 3600 * 9 + 120]
    rt.trip_updated[t] = True
    q = data.query_arrays(day, RoutingOptions(), rt)
    egress = np.full(4, -1, dtype=np.int32)
    egress[3] = 0
    assert q.lower_bounds(data.forward, egress)[0] == 60 + 60 + 100
    res = earliest_arrival(data.forward, q, 3600 * 9 - 60, [0], [0], [3], [0])
    ref = earliest_arrival(data.forward, q, 3600 * 9 - 60, [0], [0], [3], [0], prune=False)
    assert _journeys(res) == _journeys(ref)
    assert [j.arrival for j in res.journeys] == [3600 * 9 + 400]

"""The router against the rule brute force (:class:`tests.routing.reference.RuleReference`),
one query at a time: the checks every transfer-rule test file (#15) runs over its random
feeds — one-to-all, one-to-one Pareto and McRAPTOR, arrive-by, range — written once here so
that each file only draws its feeds and counts what its rules must exercise."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

import gtfs
from routing.options import RoutingOptions
from routing.raptor import earliest_arrival, latest_departure, mc_raptor, range_query
from routing.raptor.journey import Journey
from routing.transit import TransitData
from tests.routing.reference import BIG, RuleReference, check_rule_journey
from tests.routing.rule_feeds import RuleFeed, Transfer, random_rule_feed

FRI = dt.date(2024, 1, 5)
SAT = dt.date(2024, 1, 6)


class RuleCase:
    """One small feed compiled for the router, with its brute force over the raw file."""

    def __init__(self, path: Path) -> None:
        self.tt = gtfs.compile_timetable(gtfs.read_feed(path))
        self.data = TransitData(self.tt)
        self.ref = RuleReference(path)
        self.idx = {str(s): i for i, s in enumerate(self.tt.stop_ids)}
        #: Stops some pattern serves (the only ones a random query may start or end at).
        self.stops = [int(s) for s in np.flatnonzero(np.diff(self.tt.stop_pattern_ptr) > 0)]

    def apart(self, o: int, d: int) -> bool:
        """Whether no footpath joins stops ``o`` and ``d`` (compiled indices), either way."""
        a, b = str(self.tt.stop_ids[o]), str(self.tt.stop_ids[d])
        return (a, b) not in self.ref.walks and (b, a) not in self.ref.walks

    def stop(self, i: int) -> int:
        """The compiled index of stop ``S{i}``."""
        return self.idx[f"S{i}"]

    def check(self, j: Journey, day: dt.date) -> None:
        """Assert ``j`` is feasible on the raw timetable with its rules."""
        check_rule_journey(self.ref, self.tt.trip_ids, self.tt.stop_ids, j, day)


def random_cases(
    tmp_path: Path,
    n_feeds: int,
    seed: int,
    rules: Callable[[np.random.Generator, RuleFeed], list[Transfer]] | None = None,
) -> list[tuple[RuleCase, np.random.Generator]]:
    """``n_feeds`` random feeds (:func:`tests.routing.rule_feeds.random_rule_feed`, seeds
    ``seed``, ``seed + 1``, ...), each with the transfers ``rules`` adds, written under
    ``tmp_path``; each with its generator, to draw its queries from next."""
    out = []
    for i in range(n_feeds):
        rng = np.random.default_rng(seed + i)
        feed = random_rule_feed(rng)
        if rules is not None:
            feed.transfers += rules(rng, feed)
        out.append((RuleCase(feed.write(tmp_path / f"f{i}.zip")), rng))
    return out


def random_queries(
    rng: np.random.Generator,
    stops: Sequence[int],
    n: int,
    lo: int,
    hi: int,
    apart: Callable[[int, int], bool] | None = None,
) -> Iterator[tuple[int, dt.date, int, int, int]]:
    """``n`` queries ``(q, day, origin, destination, time)``: Friday on odd ``q``, else
    Saturday; two distinct ``stops`` (drawn again until ``apart(o, d)``, e.g. no footpath
    between them: the checks compare journeys with rides); a time in ``[lo, hi)`` (drawn
    after the stops)."""
    for q in range(n):
        day = FRI if q % 2 else SAT
        while True:
            o, d = (int(x) for x in rng.choice(stops, 2, replace=False))
            if apart is None or apart(o, d):
                break
        yield q, day, o, d, int(rng.integers(lo, hi))


def origin_departures(case: RuleCase, o: int, day: dt.date) -> list[int]:
    """Every time one leaves stop ``o`` to board a trip copy there, or a footpath's walk away
    (raw)."""
    o_id = str(case.tt.stop_ids[o])
    walk = {o_id: 0}
    for y, d in case.ref._walks_from(o_id):
        walk[y] = min(walk.get(y, d), d)
    return sorted(
        {
            t.dep[i] + off - walk[s]
            for _, off, t in case.ref._copies(day)
            for i, s in enumerate(t.stops[:-1])
            if s in walk and t.pickup[i] != 1
        }
    )


def check_earliest_arrival(
    case: RuleCase, options: RoutingOptions, q: int, day: dt.date, o: int, d: int, t0: int
) -> tuple[list[Journey], list[Journey], list[dict[str, int]]]:
    """Assert that one-to-all earliest arrival, the one-to-one Pareto set over (arrival,
    vehicles) and McRAPTOR from ``o`` at ``t0`` equal the brute force with up to
    ``options.max_transfers + 1`` vehicles, and that every journey obeys the rules.

    Returns
    -------
    tuple
        The one-to-one journeys, McRAPTOR's journeys and the brute force's rounds, for the
        caller's counts of what the queries exercised.
    """
    k_max = options.max_transfers + 1
    d_id = str(case.tt.stop_ids[d])
    ref = case.ref.rounds(str(case.tt.stop_ids[o]), day, t0, k_max)
    qa = case.data.query_arrays(day, options)
    # One-to-all: every stop's earliest arrival.
    best = earliest_arrival(case.data.forward, qa, t0, [o], [0]).best
    for s in range(case.tt.n_stops):
        want = ref[k_max].get(str(case.tt.stop_ids[s]), BIG)
        assert int(best[s]) == want, (q, s, int(best[s]), want)
    # One-to-one: the Pareto set over (arrival, vehicles).
    res = earliest_arrival(case.data.forward, qa, t0, [o], [0], [d], [0])
    for j in res.journeys:
        case.check(j, day)
    for k in range(1, k_max + 1):
        got = min((j.arrival for j in res.journeys if j.n_vehicles <= k), default=BIG)
        assert got == ref[k].get(d_id, BIG), (q, k, got, ref[k].get(d_id))
    # McRAPTOR (no footpaths here: its walking criterion is 0) has the same frontier.
    mc = mc_raptor(case.data.forward, qa, t0, [o], [0], [d], [0])
    for j in mc:
        case.check(j, day)
    for k in range(1, k_max + 1):
        got = min((j.arrival for j in mc if j.rides and j.n_vehicles <= k), default=BIG)
        assert got == ref[k].get(d_id, BIG), ("mc", q, k, got, ref[k].get(d_id))
    return list(res.journeys), list(mc), ref


def check_arrive_by(
    case: RuleCase, options: RoutingOptions, q: int, day: dt.date, o: int, d: int, arrive: int
) -> list[Journey]:
    """Assert that the arrive-by query from ``o`` to ``d`` by ``arrive`` leaves, for each
    number of vehicles, at the latest departure from ``o`` the brute force reaches ``d`` by
    ``arrive`` from, and that its journeys obey the rules; return them."""
    k_max = options.max_transfers + 1
    o_id, d_id = str(case.tt.stop_ids[o]), str(case.tt.stop_ids[d])
    want = [-BIG] * (k_max + 1)
    for t0 in origin_departures(case, o, day):
        if t0 > arrive:
            continue
        ref = case.ref.rounds(o_id, day, t0, k_max)
        for k in range(1, k_max + 1):
            if ref[k].get(d_id, BIG) <= arrive:
                want[k] = max(want[k], t0)
    qb = case.data.query_arrays(day, options, reverse=True)
    res = latest_departure(case.data.backward, qb, arrive, [d], [0], [o], [0])
    for j in res.journeys:
        case.check(j, day)
        assert j.arrival <= arrive
    for k in range(1, k_max + 1):
        got = max(
            (j.departure for j in res.journeys if j.rides and j.n_vehicles <= k),
            default=-BIG,
        )
        assert got == want[k], (q, k, got, want[k])
    return list(res.journeys)


def check_range(
    case: RuleCase,
    options: RoutingOptions,
    q: int,
    day: dt.date,
    o: int,
    d: int,
    t0: int,
    window: int,
) -> list[Journey]:
    """Assert that the range query from ``o`` to ``d`` over ``[t0, t0 + window]`` returns
    only journeys no later departure beats and covers every departure in the window with
    one at least as good (brute force), its journeys obeying the rules; return them."""
    k_max = options.max_transfers + 1
    o_id, d_id = str(case.tt.stop_ids[o]), str(case.tt.stop_ids[d])
    qa = case.data.query_arrays(day, options)
    got = range_query(case.data.forward, qa, t0, window, [o], [0], [d], [0])
    for j in got:
        case.check(j, day)
        # No better journey leaves then or later (inside the window), or j would be
        # dominated.
        ref = case.ref.rounds(o_id, day, j.departure, k_max, first_by=t0 + window)
        assert j.arrival == ref[j.n_vehicles].get(d_id, BIG), (q, j)
    # Every departure in the window is covered by a journey at least as good.
    for dep in origin_departures(case, o, day):
        if not t0 <= dep <= t0 + window:
            continue
        ref = case.ref.rounds(o_id, day, dep, k_max, first_by=t0 + window)
        for k in range(1, k_max + 1):
            a = ref[k].get(d_id, BIG)
            if a < BIG:
                assert any(
                    j.departure >= dep and j.arrival <= a and j.n_vehicles <= k for j in got
                ), (q, dep, k, a)
    return list(got)

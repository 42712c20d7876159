"""Trip-to-trip and route-to-route transfer rules (transfers.txt types 1-3 naming trips or
routes, #15): the brute force over the raw timetable
(:meth:`tests.routing.reference.RuleReference.change_time`, written from the GTFS reference)
agrees with the compiled rules (:class:`gtfs.transfer_rules.TransferRules`) on every transfer
of random feeds, and its journeys obey the rules on hand-made cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gtfs
from gtfs.transfer_rules import MIN_TIME, NOT_POSSIBLE, TransferRules
from routing.options import RoutingOptions
from tests.routing import oracle_checks as oracle
from tests.routing.oracle_checks import FRI, RuleCase
from tests.routing.reference import BIG, RuleReference
from tests.routing.rule_feeds import RuleFeed, Transfer, Trip, random_rule_feed

H = 3600


def _random_rules(rng: np.random.Generator, feed: RuleFeed, n: int) -> list[Transfer]:
    """``n`` rules of types 1-3 between trips or routes meeting at a stop, each side naming a
    trip, a route or nothing (not both blank), some at a stop neither serves, some naming an
    unknown trip or a type 2 without its time (rows that must apply nowhere)."""
    out = []
    routes = sorted({t.route_id for t in feed.trips})
    for _ in range(n):
        a, b = (feed.trips[int(i)] for i in rng.choice(len(feed.trips), 2, replace=False))
        common = sorted(set(a.stops) & set(b.stops))
        s = (
            int(rng.choice(common))
            if common and rng.random() < 0.9
            else int(rng.integers(feed.n_stops))
        )
        sides = []
        for t in (a, b):
            pick = rng.integers(3)
            sides.append(
                (t.trip_id, "")
                if pick == 0
                else ("", str(rng.choice(routes)))
                if pick == 1
                else ("", "")
            )
        if sides == [("", ""), ("", "")]:
            sides[0] = (a.trip_id, "")
        ty = int(rng.choice([1, 2, 2, 3]))
        m = int(rng.integers(0, 900)) if ty == 2 else None
        (ft, fr), (tt_, tr) = sides
        if rng.random() < 0.05:
            ft = "ghost"
        if ty == 2 and rng.random() < 0.05:
            m = None
        out.append(Transfer(s, s, ty, m, from_route=fr, to_route=tr, from_trip=ft, to_trip=tt_))
    return out


@pytest.mark.parametrize("seed", range(8))
def test_compiled_rules_agree_with_the_raw_feed(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(1900 + seed)
    feed = random_rule_feed(rng)
    feed.transfers += _random_rules(rng, feed, 14)
    path = feed.write(tmp_path / "f.zip")
    tt = gtfs.compile_timetable(gtfs.read_feed(path))
    ref = RuleReference(path)
    rules = TransferRules(tt)
    assert len(rules) > 0
    n_ruled = 0
    trip_ids = [str(t) for t in tt.trip_ids]
    for a, ta in enumerate(trip_ids):
        sa = set(ref.raw.trips[ta].stops)
        for b, tb in enumerate(trip_ids):
            if a == b:
                continue
            for s in sorted(sa & set(ref.raw.trips[tb].stops)):
                si = int(np.flatnonzero(tt.stop_ids == s)[0])
                got = rules.rule_for(a, si, b, si)
                want = ref.change_time(ta, s, tb)
                if got is None:
                    assert want == ref.change.get(s, 0), (ta, s, tb)
                    continue
                n_ruled += 1
                ty, m = got
                assert want == (None if ty == NOT_POSSIBLE else m), (ta, s, tb, got)
    assert n_ruled > 0


def _feed(transfers: list[Transfer]) -> RuleFeed:
    """Trip a (route RA) reaches stop 1 at 08:10; trips b (08:12), c (08:20) and d (08:40) of
    route RB leave stop 1 for stop 2; stop 1 asks 60 s to change."""
    trips = [
        Trip("a", "RA", [0, 1], [8 * H, 8 * H + 600]),
        Trip("b", "RB", [1, 2], [8 * H + 720, 8 * H + 1320]),
        Trip("c", "RB", [1, 2], [8 * H + 1200, 8 * H + 1800]),
        Trip("d", "RB", [1, 2], [8 * H + 2400, 8 * H + 3000]),
    ]
    return RuleFeed(3, trips, [Transfer(1, 1, MIN_TIME, 60), *transfers])


@pytest.mark.parametrize(
    ("transfers", "arrival"),
    [
        ([], 8 * H + 1320),  # the stop's 60 s: b
        ([Transfer(1, 1, 3, None, from_trip="a", to_trip="b")], 8 * H + 1800),  # a -> b forbidden
        ([Transfer(1, 1, 2, 900, from_route="RA", to_route="RB")], 8 * H + 3000),  # 15 min: d
        (  # the trip rule beats the route rule: a -> c timed
            [
                Transfer(1, 1, 2, 900, from_route="RA", to_route="RB"),
                Transfer(1, 1, 1, None, from_trip="a", to_trip="c"),
            ],
            8 * H + 1800,
        ),
        ([Transfer(1, 1, 3, None, from_route="RA")], BIG),  # no change off RA at stop 1
        (
            [
                Transfer(
                    1, 1, 3, None, from_route="RA", to_route="RB"
                ),  # one trip beats the routes
                Transfer(1, 1, 2, 0, to_trip="d"),
            ],
            8 * H + 3000,
        ),
        ([Transfer(0, 0, 3, None, from_trip="a", to_trip="b")], 8 * H + 1320),  # another stop
        ([Transfer(1, 1, 2, None, from_trip="a", to_trip="b")], 8 * H + 1320),  # no time: none
        ([Transfer(1, 1, 3, None, from_trip="ghost", to_trip="b")], 8 * H + 1320),  # unknown
    ],
)
def test_reference_journeys_obey_the_rules(
    tmp_path: Path, transfers: list[Transfer], arrival: int
) -> None:
    ref = RuleReference(_feed(transfers).write(tmp_path / "f.zip"))
    rounds = ref.rounds("S0", FRI, 8 * H - 60, 2)
    assert rounds[1].get("S2", BIG) == BIG  # two vehicles needed
    assert rounds[2].get("S2", BIG) == arrival


# --- the router against the brute force ----------------------------------------------------

OPTIONS = RoutingOptions(max_transfers=3)
K = OPTIONS.max_transfers + 1
N_FEEDS = 10
N_QUERIES = 10


def _rule_cases(tmp_path: Path) -> list[tuple[RuleCase, np.random.Generator]]:
    return oracle.random_cases(
        tmp_path, N_FEEDS, 2600, lambda rng, feed: _random_rules(rng, feed, 16)
    )


def test_earliest_arrival_obeys_trip_and_route_rules(tmp_path: Path) -> None:
    n_found = n_differs = 0
    for case, rng in _rule_cases(tmp_path):
        assert case.data.forward.has_rules
        for q, day, o, d, t0 in oracle.random_queries(
            rng, case.stops, N_QUERIES, 5 * H + 1800, 8 * H
        ):
            journeys, _, ref = oracle.check_earliest_arrival(case, OPTIONS, q, day, o, d, t0)
            n_found += bool(journeys)
            # The rules matter: without them the brute force finds other arrivals somewhere.
            plain = RuleReference.__new__(RuleReference)
            plain.__dict__.update(case.ref.__dict__, trip_rules=[])
            n_differs += plain.rounds(str(case.tt.stop_ids[o]), day, t0, K)[K] != ref[K]
    assert n_found > 0 and n_differs > 0, (n_found, n_differs)


def test_arrive_by_obeys_trip_and_route_rules(tmp_path: Path) -> None:
    n_found = 0
    for case, rng in _rule_cases(tmp_path)[: N_FEEDS // 2]:
        for q, day, o, d, arrive in oracle.random_queries(
            rng, case.stops, N_QUERIES // 2, 7 * H, 10 * H
        ):
            n_found += bool(oracle.check_arrive_by(case, OPTIONS, q, day, o, d, arrive))
    assert n_found > 0


def test_range_obeys_trip_and_route_rules(tmp_path: Path) -> None:
    n_found = 0
    for case, rng in _rule_cases(tmp_path)[: N_FEEDS // 2]:
        queries = oracle.random_queries(rng, case.stops, N_QUERIES // 2, 5 * H + 1800, 7 * H + 1800)
        for q, day, o, d, t0 in queries:
            n_found += bool(oracle.check_range(case, OPTIONS, q, day, o, d, t0, 3600))
    assert n_found > 0

"""Trip/route transfer rules between two stops and the rider's transfer-time factor on rule
times (#15).

A transfers.txt row naming trips or routes with ``from_stop_id != to_stop_id`` governs the
walk between the two stops: type 3 forbids changing that way, type 2 needs its
``min_transfer_time`` (the whole transfer, so never less than the walk), type 1 the walk. The
router (earliest arrival, one-to-one, McRAPTOR, arrive-by, range) is checked against the
brute force over the raw timetable (:class:`tests.routing.reference.RuleReference`) on random
feeds with footpaths, rules between stops and rules at stops, and on hand-made cases; so is
the factor, which scales rule times as it scales the stops' change times.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gtfs
from routing.options import RoutingOptions
from routing.raptor import earliest_arrival, latest_departure, mc_raptor
from routing.raptor.journey import Journey, RideLeg
from routing.transit import TransitData
from tests.routing import oracle_checks as oracle
from tests.routing.oracle_checks import FRI, RuleCase
from tests.routing.reference import BIG, RuleReference
from tests.routing.rule_feeds import RuleFeed, Transfer, Trip
from tests.routing.test_trip_route_transfers import _random_rules

H = 3600
OPTIONS = RoutingOptions(max_transfers=3)
K = OPTIONS.max_transfers + 1


def _walks(rng: np.random.Generator, feed: RuleFeed, n: int) -> list[Transfer]:
    """``n`` footpaths between distinct stops (stop-to-stop type 2 rows, 60-600 s, one row
    per pair), half of them both ways."""
    out: dict[tuple[int, int], Transfer] = {}
    while len(out) < n:
        a, b = (int(x) for x in rng.choice(feed.n_stops, 2, replace=False))
        d = int(rng.integers(60, 600))
        out.setdefault((a, b), Transfer(a, b, 2, d))
        if rng.random() < 0.5:
            out.setdefault((b, a), Transfer(b, a, 2, d))
    return list(out.values())


def _walk_rules(
    rng: np.random.Generator, feed: RuleFeed, walks: list[Transfer], n: int
) -> list[Transfer]:
    """``n`` rules of types 1-3 along the ``walks``, between a trip serving the walk's start
    and one serving its end (each side naming the trip, its route or nothing, not both
    blank); type 2 times from 0 (shorter than any walk) to 20 minutes."""
    out = []
    routes = sorted({t.route_id for t in feed.trips})
    for _ in range(n):
        w = walks[int(rng.integers(len(walks)))]
        at_a = [t for t in feed.trips if w.from_stop in t.stops] or feed.trips
        at_b = [t for t in feed.trips if w.to_stop in t.stops] or feed.trips
        a = at_a[int(rng.integers(len(at_a)))]
        b = at_b[int(rng.integers(len(at_b)))]
        sides = []
        for t in (a, b):
            pick = rng.integers(3)
            sides.append(
                (t.trip_id, "")
                if pick == 0
                else ("", t.route_id if rng.random() < 0.8 else str(rng.choice(routes)))
                if pick == 1
                else ("", "")
            )
        if sides == [("", ""), ("", "")]:
            sides[1] = (b.trip_id, "")
        ty = int(rng.choice([1, 2, 2, 3, 3]))
        m = int(rng.integers(0, 1200)) if ty == 2 else None
        (ft, fr), (tt_, tr) = sides
        out.append(
            Transfer(
                w.from_stop, w.to_stop, ty, m, from_route=fr, to_route=tr, from_trip=ft, to_trip=tt_
            )
        )
    return out


def _rules(rng: np.random.Generator, feed: RuleFeed) -> list[Transfer]:
    walks = _walks(rng, feed, 8)
    return walks + _walk_rules(rng, feed, walks, 12) + _random_rules(rng, feed, 6)


N_FEEDS = 8
N_QUERIES = 10


def _cases(tmp_path: Path) -> list[tuple[RuleCase, np.random.Generator]]:
    return oracle.random_cases(tmp_path, N_FEEDS, 3100, _rules)


def _walk_changes(journeys: list[Journey]) -> int:
    """How many changes between two rides of ``journeys`` are walks."""
    n = 0
    for j in journeys:
        kinds = [
            "r" if isinstance(leg, RideLeg) else "w"
            for leg in j.legs
            if isinstance(leg, RideLeg) or leg.from_stop != leg.to_stop
        ]
        n += "".join(kinds).count("rwr")
    return n


def test_earliest_arrival_obeys_rules_between_stops(tmp_path: Path) -> None:
    n_found = n_walked = n_differs = 0
    for case, rng in _cases(tmp_path):
        flag = case.data.forward.rx_flag
        assert flag is not None and (flag == 2).any()  # some boarding a walk rule governs
        for q, day, o, d, t0 in oracle.random_queries(
            rng, case.stops, N_QUERIES, 5 * H + 1800, 8 * H, case.apart
        ):
            journeys, mc, ref = oracle.check_earliest_arrival(case, OPTIONS, q, day, o, d, t0)
            n_found += bool(journeys)
            n_walked += _walk_changes(journeys + mc)
            # The rules between stops matter: without them the brute force differs somewhere.
            plain = RuleReference.__new__(RuleReference)
            plain.__dict__.update(
                case.ref.__dict__,
                trip_rules=[r for r in case.ref.trip_rules if r["from_stop_id"] == r["to_stop_id"]],
            )
            n_differs += plain.rounds(str(case.tt.stop_ids[o]), day, t0, K)[K] != ref[K]
    assert n_found > 0 and n_walked > 0 and n_differs > 0, (n_found, n_walked, n_differs)


def test_arrive_by_obeys_rules_between_stops(tmp_path: Path) -> None:
    n_found = 0
    for case, rng in _cases(tmp_path)[: N_FEEDS // 2]:
        for q, day, o, d, arrive in oracle.random_queries(
            rng, case.stops, N_QUERIES, 7 * H, 10 * H, case.apart
        ):
            n_found += bool(oracle.check_arrive_by(case, OPTIONS, q, day, o, d, arrive))
    assert n_found > 0


def test_range_obeys_rules_between_stops(tmp_path: Path) -> None:
    """Origins with footpaths too: a journey that comes back to a stop the origin walks to
    boards there after the window (tests.routing.test_range_walk_origins)."""
    n_found = n_walkers = 0
    for case, rng in _cases(tmp_path)[: N_FEEDS // 2]:
        queries = oracle.random_queries(
            rng, case.stops, N_QUERIES // 2, 5 * H + 1800, 7 * H + 1800, case.apart
        )
        for q, day, o, d, t0 in queries:
            n_found += bool(oracle.check_range(case, OPTIONS, q, day, o, d, t0, 3600))
            n_walkers += bool(case.ref._walks_from(str(case.tt.stop_ids[o])))
    assert n_found > 0 and n_walkers > 0, (n_found, n_walkers)


def test_rule_times_take_the_transfer_factor(tmp_path: Path) -> None:
    """Random feeds with rules at and between stops, a slow rider (factor 1.5, 90 s added):
    every search equals the brute force with the same factor."""
    options = RoutingOptions(max_transfers=3, transfer_factor=1.5, transfer_extra_s=90)
    n_found = 0
    for case, rng in _cases(tmp_path)[: N_FEEDS // 2]:
        case.ref.factor = 1.5
        case.ref.extra = 90
        for q, day, o, d, t0 in oracle.random_queries(
            rng, case.stops, N_QUERIES, 5 * H + 1800, 8 * H, case.apart
        ):
            journeys, _, _ = oracle.check_earliest_arrival(case, options, q, day, o, d, t0)
            n_found += bool(journeys)
            oracle.check_arrive_by(case, options, q, day, o, d, t0 + 3 * H)
    assert n_found > 0


# --- hand-made cases ------------------------------------------------------------------------


def _feed(transfers: list[Transfer]) -> RuleFeed:
    """Trip a (route RA) reaches stop 1 at 08:10; a footpath of 120 s leads to stop 2, where
    trips b (08:13), c (08:20) and d (08:40) of route RB leave for stop 3; trip e (RB) leaves
    stop 1 for stop 3 at 08:21; stop 1 asks 60 s to change."""
    trips = [
        Trip("a", "RA", [0, 1], [8 * H, 8 * H + 600]),
        Trip("b", "RB", [2, 3], [8 * H + 780, 8 * H + 1380]),
        Trip("c", "RB", [2, 3], [8 * H + 1200, 8 * H + 1800]),
        Trip("d", "RB", [2, 3], [8 * H + 2400, 8 * H + 3000]),
        Trip("e", "RB", [1, 3], [8 * H + 1260, 8 * H + 2100]),
    ]
    return RuleFeed(4, trips, [Transfer(1, 1, 2, 60), Transfer(1, 2, 2, 120), *transfers])


CASES = [
    ([], 8 * H + 1380),  # the walk, 120 s: b
    ([Transfer(1, 2, 3, None, from_route="RA", to_route="RB")], 8 * H + 2100),  # no walk: e
    ([Transfer(1, 2, 3, None, from_trip="a", to_trip="b")], 8 * H + 1800),  # not to b: c
    ([Transfer(1, 2, 2, 900, from_route="RA", to_route="RB")], 8 * H + 2100),  # 15 min: e
    ([Transfer(1, 2, 2, 900, from_route="RA", to_trip="d")], 8 * H + 1380),  # d only: b
    ([Transfer(1, 2, 2, 30, from_route="RA", to_route="RB")], 8 * H + 1380),  # < walk: b
    ([Transfer(1, 2, 1, None, from_trip="a", to_route="RB")], 8 * H + 1380),  # timed: b
    ([Transfer(1, 1, 3, None, from_route="RA", to_route="RB")], 8 * H + 1380),  # at 1: b
    ([Transfer(2, 1, 3, None, from_route="RA", to_route="RB")], 8 * H + 1380),  # other way
    (  # the trip rule beats the route rule: a -> c allowed, the rest forbidden
        [
            Transfer(1, 2, 3, None, from_route="RA", to_route="RB"),
            Transfer(1, 2, 2, 400, from_trip="a", to_trip="c"),
        ],
        8 * H + 1800,
    ),
]


@pytest.mark.parametrize(("transfers", "arrival"), CASES)
def test_rules_between_stops_by_hand(
    tmp_path: Path, transfers: list[Transfer], arrival: int
) -> None:
    path = _feed(transfers).write(tmp_path / "f.zip")
    ref = RuleReference(path)
    assert ref.rounds("S0", FRI, 8 * H - 60, 2)[2]["S3"] == arrival
    case = RuleCase(path)
    o, d = case.stop(0), case.stop(3)
    qa = case.data.query_arrays(FRI, OPTIONS)
    res = earliest_arrival(case.data.forward, qa, 8 * H - 60, [o], [0], [d], [0])
    assert min(j.arrival for j in res.journeys) == arrival
    for j in res.journeys:
        case.check(j, FRI)
    mc = mc_raptor(case.data.forward, qa, 8 * H - 60, [o], [0], [d], [0])
    assert min(j.arrival for j in mc if j.rides) == arrival
    for j in mc:
        case.check(j, FRI)
    # Arrive-by the same arrival: the journey leaves a at 08:00, not earlier.
    qb = case.data.query_arrays(FRI, OPTIONS, reverse=True)
    back = latest_departure(case.data.backward, qb, arrival, [d], [0], [o], [0])
    assert max(j.departure for j in back.journeys if j.rides) == 8 * H
    for j in back.journeys:
        case.check(j, FRI)


NEXT_E = 86400 + 8 * H + 2100  # trip e the next morning


@pytest.mark.parametrize(
    ("transfers", "factor", "extra", "arrival"),
    [
        ([Transfer(1, 1, 2, 400, from_route="RA", to_route="RB")], 1.0, 0, 8 * H + 2100),  # e
        ([Transfer(1, 1, 2, 400, from_route="RA", to_route="RB")], 2.0, 0, NEXT_E),  # 800 s
        ([Transfer(1, 1, 2, 400, from_route="RA", to_route="RB")], 1.0, 300, NEXT_E),  # 700 s
        ([Transfer(1, 2, 2, 300, from_route="RA", to_route="RB")], 1.0, 0, 8 * H + 1800),  # c
        ([Transfer(1, 2, 2, 300, from_route="RA", to_route="RB")], 2.5, 0, 8 * H + 3000),  # d
        ([Transfer(1, 2, 1, None, from_route="RA", to_route="RB")], 3.0, 0, 8 * H + 1380),  # b
        ([Transfer(1, 2, 1, None, from_route="RA", to_route="RB")], 1.0, 200, 8 * H + 1800),
    ],
)
def test_transfer_factor_scales_rule_times(
    tmp_path: Path, transfers: list[Transfer], factor: float, extra: int, arrival: int
) -> None:
    """On :func:`_feed` with trips a and e only, a rule of 400 s at stop 1 scaled by 2 (800 s),
    or with 300 s added, misses e (08:21: the next day's then); with a, b, c and d, a rule of 300 s along the walk
    catches c (08:20), scaled by 2.5 (750 s) only d; a timed transfer along the walk stays the
    walk (not scaled: the walking speed scales walks), plus the seconds added."""
    feed = _feed(transfers)
    at_stop = all(x.from_stop == x.to_stop for x in transfers)
    keep = ("a", "e") if at_stop else ("a", "b", "c", "d")
    feed.trips = [t for t in feed.trips if t.trip_id in keep]
    path = feed.write(tmp_path / "f.zip")
    ref = RuleReference(path, factor=factor, extra=extra)
    assert ref.rounds("S0", FRI, 8 * H - 60, 2)[2].get("S3", BIG) == arrival
    tt = gtfs.compile_timetable(gtfs.read_feed(path))
    data = TransitData(tt)
    o, d = (int(np.flatnonzero(tt.stop_ids == s)[0]) for s in ("S0", "S3"))
    opts = RoutingOptions(max_transfers=3, transfer_factor=factor, transfer_extra_s=extra)
    qa = data.query_arrays(FRI, opts)
    res = earliest_arrival(data.forward, qa, 8 * H - 60, [o], [0], [d], [0])
    assert min((j.arrival for j in res.journeys), default=BIG) == arrival
    mc = mc_raptor(data.forward, qa, 8 * H - 60, [o], [0], [d], [0])
    assert min((j.arrival for j in mc if j.rides), default=BIG) == arrival

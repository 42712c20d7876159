"""Transfer rules the feed states (#15): staying seated (``block_id``, transfers.txt types 4
and 5), checked against the brute force over the raw timetable
(:class:`tests.routing.reference.RuleReference`) on random small feeds, one-to-one,
one-to-all, McRAPTOR, arrive-by and range, plus hand-made cases of each rule."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from routing.itinerary import Itinerary, filter_itineraries, to_otp
from routing.options import RoutingOptions
from routing.raptor import earliest_arrival, latest_departure
from routing.raptor.journey import Journey, RideLeg, WalkLeg
from tests.routing import oracle_checks as oracle
from tests.routing.oracle_checks import FRI, SAT, RuleCase
from tests.routing.rule_feeds import RuleFeed, Transfer, Trip

MAX_TRANSFERS = 3
OPTIONS = RoutingOptions(max_transfers=MAX_TRANSFERS)
N_FEEDS = 12
N_QUERIES = 12


def _cases(tmp_path: Path) -> list[tuple[RuleCase, np.random.Generator]]:
    return oracle.random_cases(tmp_path, N_FEEDS, 1500)


def test_random_feeds_have_continuations(tmp_path: Path) -> None:
    # The property tests below mean something only if the feeds exercise the rules.
    n_cont = 0
    for case, _ in _cases(tmp_path):
        n_cont += int(case.data.forward.has_continuations)
    assert n_cont >= N_FEEDS // 2


def test_earliest_arrival_matches_brute_force(tmp_path: Path) -> None:
    n_seated = 0
    n_seated_mc = 0
    n_found = 0
    for case, rng in _cases(tmp_path):
        queries = oracle.random_queries(rng, case.stops, N_QUERIES, 5 * 3600 + 1800, 8 * 3600)
        for q, day, o, d, t0 in queries:
            journeys, mc, _ = oracle.check_earliest_arrival(case, OPTIONS, q, day, o, d, t0)
            n_seated += sum(any(r.stay_seated for r in j.rides) for j in journeys)
            n_seated_mc += sum(any(r.stay_seated for r in j.rides) for j in mc)
            n_found += bool(journeys)
    assert n_found > 0 and n_seated > 0 and n_seated_mc > 0, (n_found, n_seated, n_seated_mc)


def test_arrive_by_matches_brute_force(tmp_path: Path) -> None:
    n_found = 0
    for case, rng in _cases(tmp_path)[: N_FEEDS // 2]:
        queries = oracle.random_queries(rng, case.stops, N_QUERIES // 2, 7 * 3600, 10 * 3600)
        for q, day, o, d, arrive in queries:
            n_found += bool(oracle.check_arrive_by(case, OPTIONS, q, day, o, d, arrive))
    assert n_found > 0


def test_range_matches_brute_force(tmp_path: Path) -> None:
    n_found = 0
    for case, rng in _cases(tmp_path)[: N_FEEDS // 2]:
        queries = oracle.random_queries(
            rng, case.stops, N_QUERIES // 2, 5 * 3600 + 1800, 7 * 3600 + 1800
        )
        for q, day, o, d, t0 in queries:
            n_found += bool(oracle.check_range(case, OPTIONS, q, day, o, d, t0, 3600))
    assert n_found > 0


# --- hand-made cases ---------------------------------------------------------------------------

H = 3600


def _line_feed(**kw: object) -> RuleFeed:
    """Trip a runs 0 -> 1 -> 2 (08:00-08:20), the same vehicle then runs trip b 2 -> 3 -> 4 at
    08:21 (block V), 1 minute later: too short for the 5-minute change time at stop 2."""
    trips = [
        Trip("a", "RA", [0, 1, 2], [8 * H, 8 * H + 600, 8 * H + 1200], block_id="V"),
        Trip("b", "RB", [2, 3, 4], [8 * H + 1260, 8 * H + 1800, 8 * H + 2400], block_id="V"),
        Trip("c", "RB", [2, 3, 4], [9 * H, 9 * H + 600, 9 * H + 1200]),
    ]
    transfers = [Transfer(2, 2, 2, 300)]
    feed = RuleFeed(5, trips, transfers)
    for k, v in kw.items():
        setattr(feed, k, v)
    return feed


def _one(case: RuleCase, day: dt.date, t0: int, o: int, d: int) -> list[Journey]:
    qa = case.data.query_arrays(day, OPTIONS)
    res = earliest_arrival(case.data.forward, qa, t0, [case.stop(o)], [0], [case.stop(d)], [0])
    return list(res.journeys)


def test_block_continuation_is_one_vehicle(tmp_path: Path) -> None:
    case = RuleCase(_line_feed().write(tmp_path / "f.zip"))
    (j,) = _one(case, FRI, 8 * H - 60, 0, 4)
    assert j.arrival == 8 * H + 2400
    assert [r.stay_seated for r in j.rides] == [False, True]
    assert j.n_transfers == 0 and j.n_vehicles == 1
    a, b = j.rides
    assert (a.alight_pos, b.board_pos) == (2, 0)
    assert a.arrival == 8 * H + 1200 and b.departure == 8 * H + 1260
    case.check(j, FRI)
    # From stop 1, a is caught later on its way: the same continuation.
    (mid,) = _one(case, FRI, 8 * H + 300, 1, 3)
    assert mid.arrival == 8 * H + 1800 and mid.n_vehicles == 1
    assert [(r.board_pos, r.alight_pos) for r in mid.rides] == [(1, 2), (0, 1)]


def test_in_seat_not_allowed_forbids_staying_on(tmp_path: Path) -> None:
    feed = _line_feed(transfers=[Transfer(2, 2, 2, 300), Transfer(None, None, 5, None,
                                                                    from_trip="a", to_trip="b")])  # fmt: skip
    case = RuleCase(feed.write(tmp_path / "f.zip"))
    assert case.data.forward.has_continuations  # listed, closed by the rule
    (j,) = _one(case, FRI, 8 * H - 60, 0, 4)
    # Off at stop 2 and onto trip c (b leaves before the change time is over).
    assert j.arrival == 9 * H + 1200
    assert j.n_transfers == 1 and not any(r.stay_seated for r in j.rides)


def test_in_seat_rule_without_block(tmp_path: Path) -> None:
    feed = _line_feed()
    for t in feed.trips:
        t.block_id = ""
    no_rule = RuleCase(feed.write(tmp_path / "f0.zip"))
    assert _one(no_rule, FRI, 8 * H - 60, 0, 4)[0].arrival == 9 * H + 1200
    feed.transfers.append(Transfer(transfer_type=4, from_trip="a", to_trip="b"))
    case = RuleCase(feed.write(tmp_path / "f1.zip"))
    (j,) = _one(case, FRI, 8 * H - 60, 0, 4)
    assert j.arrival == 8 * H + 2400 and j.n_transfers == 0
    assert j.rides[1].stay_seated


def test_block_next_trip_depends_on_the_service_day(tmp_path: Path) -> None:
    # On weekdays the vehicle runs b after a; on Saturdays it runs s (to stop 5) instead.
    feed = _line_feed()
    feed.n_stops = 6
    feed.trips[1].service_id = "WD"
    feed.trips.append(
        Trip("s", "RS", [2, 5], [8 * H + 1230, 8 * H + 1500], service_id="SA", block_id="V")
    )
    case = RuleCase(feed.write(tmp_path / "f.zip"))
    (fri,) = _one(case, FRI, 8 * H - 60, 0, 4)
    assert fri.arrival == 8 * H + 2400 and fri.n_transfers == 0
    (sat,) = _one(case, SAT, 8 * H - 60, 0, 5)
    assert sat.arrival == 8 * H + 1500 and sat.n_transfers == 0
    # s does not run on Fridays: from Friday, only Saturday's vehicle goes to stop 5.
    (fri5,) = _one(case, FRI, 8 * H - 60, 0, 5)
    assert fri5.arrival == 86400 + 8 * H + 1500 and fri5.n_transfers == 0
    sat4 = _one(case, SAT, 8 * H - 60, 0, 4)
    assert [j.arrival for j in sat4] == [9 * H + 1200]  # b does not run: change to c


def test_continuation_from_another_stop_and_arrive_by(tmp_path: Path) -> None:
    # The vehicle ends trip a at stop 2 and starts trip b at stop 3 (it drives there empty):
    # only staying seated gets from 1 to 4; the lower bounds must not prune it.
    trips = [
        Trip("a", "RA", [0, 1, 2], [8 * H, 8 * H + 600, 8 * H + 1200], block_id="V"),
        Trip("b", "RB", [3, 4], [8 * H + 1800, 8 * H + 2400], block_id="V"),
    ]
    case = RuleCase(RuleFeed(5, trips).write(tmp_path / "f.zip"))
    (j,) = _one(case, FRI, 7 * H, 1, 4)
    assert j.departure == 8 * H + 600 and j.arrival == 8 * H + 2400 and j.n_transfers == 0
    assert j.rides[1].board_stop == case.stop(3) and j.rides[1].stay_seated
    case.check(j, FRI)
    qb = case.data.query_arrays(FRI, OPTIONS, reverse=True)
    res = latest_departure(case.data.backward, qb, 9 * H, [case.stop(4)], [0], [case.stop(1)], [0])
    (back,) = res.journeys
    assert back.departure == 8 * H + 600 and back.n_transfers == 0
    assert [r.stay_seated for r in back.rides] == [False, True]
    case.check(back, FRI)


@pytest.mark.parametrize("prune", [True, False])
def test_no_rules_no_change(tmp_path: Path, prune: bool) -> None:
    # Without blocks or in-seat rules the network has no continuations at all.
    feed = _line_feed()
    for t in feed.trips:
        t.block_id = ""
    case = RuleCase(feed.write(tmp_path / "f.zip"))
    assert not case.data.forward.has_continuations
    assert not case.data.backward.has_continuations
    qa = case.data.query_arrays(FRI, OPTIONS)
    res = earliest_arrival(
        case.data.forward, qa, 8 * H - 60, [case.stop(0)], [0], [case.stop(4)], [0], prune=prune
    )
    assert [j.arrival for j in res.journeys] == [9 * H + 1200]
    assert all(not r.stay_seated for j in res.journeys for r in j.rides)
    assert isinstance(res.journeys[0].rides[0], RideLeg)


def test_plan_across_a_block_continuation(tmp_path: Path) -> None:
    # /plan's planner on the block feed: from next to stop 0 to next to stop 4 the answer
    # stays on the vehicle at stop 2 (trip a, then trip b of block V).
    from routing.planner import Planner, PlanPlace, PlanRequest

    case = RuleCase(_line_feed().write(tmp_path / "f.zip"))
    tt = case.tt

    def near(i: int) -> PlanPlace:
        s = case.stop(i)
        return PlanPlace(float(tt.stop_lat[s]) + 0.0005, float(tt.stop_lon[s]))

    planner = Planner(case.data)
    plan = planner.plan(PlanRequest(near(0), near(4), FRI, 8 * H - 600))
    assert plan.error is None and plan.itineraries
    it = plan.itineraries[0]
    assert it.journey is not None
    j = it.journey
    assert j.n_transfers == 0 and j.n_vehicles == 1
    assert [str(tt.trip_ids[r.trip]) for r in j.rides] == ["a", "b"]
    assert [r.stay_seated for r in j.rides] == [False, True]
    case.check(j, FRI)
    rides = [leg for leg in it.legs if leg.transit]
    assert [leg.trip_id for leg in rides] == ["a", "b"]
    # The two rides meet at stop 2 with no walk or change between them: one vehicle.
    assert rides[0].destination.stop_index == rides[1].origin.stop_index == case.stop(2)
    assert it.end < 9 * H  # not the 09:00 trip c a change at stop 2 would need


# --- itineraries across a continuation ----------------------------------------------------------


def _block_plan(case: RuleCase) -> list[Itinerary]:
    from routing.planner import Planner, PlanPlace, PlanRequest

    tt = case.tt

    def near(i: int) -> PlanPlace:
        s = case.stop(i)
        return PlanPlace(float(tt.stop_lat[s]) + 0.0005, float(tt.stop_lon[s]))

    plan = Planner(case.data).plan(PlanRequest(near(0), near(4), FRI, 8 * H - 600))
    assert plan.error is None and plan.itineraries
    return list(plan.itineraries)


def test_itinerary_across_a_block_is_interlined(tmp_path: Path) -> None:
    # The planner's itinerary of the block feed: the second ride continues the first on the
    # same vehicle; no transfer, no walk or change time between the rides, and OTP's flag.
    case = RuleCase(_line_feed().write(tmp_path / "f.zip"))
    it = _block_plan(case)[0]
    rides = [leg for leg in it.legs if leg.transit]
    assert [leg.trip_id for leg in rides] == ["a", "b"]
    assert [leg.interline_with_previous_leg for leg in rides] == [False, True]
    assert it.transfers == 0
    i = it.legs.index(rides[1])
    assert it.legs[i - 1] is rides[0]  # no leg between the two rides
    otp = to_otp(it, FRI, "Asia/Tokyo")
    assert otp["transfers"] == 0
    flags = [leg.get("interlineWithPreviousLeg") for leg in otp["legs"]]
    assert [f for f in flags if f is not None] == [False, True]
    assert all(
        "interlineWithPreviousLeg" not in leg for leg in otp["legs"] if not leg["transitLeg"]
    )
    # The schema declares the field (the API validates its answers against it).
    from app.api.plan import Leg

    assert "interlineWithPreviousLeg" in Leg.model_fields
    # Without the block the same two trips are a change (and trip c is needed).
    feed = _line_feed()
    for t in feed.trips:
        t.block_id = ""
    plain = _block_plan(RuleCase(feed.write(tmp_path / "g.zip")))[0]
    assert plain.transfers == 1
    assert not any(leg.interline_with_previous_leg for leg in plain.legs)


def test_interlined_itinerary_dominates_a_change(tmp_path: Path) -> None:
    # Same times and walking on other trips with a real change: staying seated counts as no
    # transfer in filter_itineraries' dominance, so the interlined itinerary beats it (counted
    # as rides - 1 both had one transfer and both were kept).
    case = RuleCase(_line_feed().write(tmp_path / "f.zip"))
    it = _block_plan(case)[0]
    other = replace(
        it,
        legs=tuple(
            replace(leg, interline_with_previous_leg=False, trip_id=f"x{leg.trip_id}")
            if leg.transit
            else leg
            for leg in it.legs
        ),
    )
    assert (other.start, other.end, other.walk_time) == (it.start, it.end, it.walk_time)
    assert other.transfers == 1 and it.transfers == 0
    assert filter_itineraries([other, it], 5) == [it]


def test_stay_at_the_stop_before_a_continuation_is_no_leg(tmp_path: Path) -> None:
    # A journey with a zero-length stay at the stop between the rides (as a reader may put
    # there) is built without that walk: the continued ride follows the one it continues.
    case = RuleCase(_line_feed().write(tmp_path / "f.zip"))
    it = _block_plan(case)[0]
    assert it.journey is not None
    j = it.journey
    a, b = j.rides
    s = a.alight_stop
    padded = Journey((*j.legs[: j.legs.index(a) + 1], WalkLeg(s, s, a.arrival, a.arrival),
                      *j.legs[j.legs.index(b):]))  # fmt: skip
    from routing.planner import Planner

    builder = Planner(case.data).builder
    origin, dest = it.legs[0].origin, it.legs[-1].destination
    built = builder.build(padded, origin, dest, speed=1.3, detail=False)
    assert [leg.transit for leg in built.legs] == [leg.transit for leg in it.legs]
    assert built.transfers == 0
    # The same stay before a ride boarded normally is kept (it is the change at the stop).
    unseated = Journey(
        tuple(replace(leg, stay_seated=False) if leg is b else leg for leg in padded.legs)
    )
    kept = builder.build(unseated, origin, dest, speed=1.3, detail=False)
    assert len(kept.legs) == len(it.legs) + 1 and kept.transfers == 1

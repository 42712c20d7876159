"""The planner's "healthier" preference (``RoutingOptions.healthier_s``): up to N seconds later
for more walking, on one bus line whose times and walks are worked out by hand.

Stops 0..19 lie 0.001 degree of latitude apart along a meridian (111.19 m); a bus runs up the
line every 10 minutes from 08:00, 60 s from stop to stop. Walking is the straight-line model:
great-circle metres x 1.3 at 1.2 m/s, rounded up: one stop's distance is 111.19 x 1.3 / 1.2 =
120.5 -> 121 s, two 240.9 -> 241 s, three 361.4 -> 362 s. Getting off k stops early arrives
w_k - 60 k later: 61, 121, 182 s. The rider starts at stop 0 for stop 19: at 08:00 the fastest
rides 08:00 -> 08:19 and walks not at all.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from routing.itinerary import Itinerary, to_otp
from routing.options import RoutingOptions
from routing.planner import Planner, PlanPlace, PlanRequest
from routing.transit import TransitData
from tests.routing.tiny import TinyFeed, TinyTrip

DAY = dt.date(2024, 1, 1)
N = 20
EIGHT = 8 * 3600
ORIGIN = PlanPlace(35.0, 139.0)  # at stop 0
DESTINATION = PlanPlace(35.0 + 0.001 * (N - 1), 139.0)  # at stop 19


@pytest.fixture(scope="module")
def planner() -> Planner:
    trips = [
        TinyTrip(f"t{k}", list(range(N)), [EIGHT + 600 * k + 60 * i for i in range(N)])
        for k in range(6)
    ]
    return Planner(TransitData(TinyFeed(N, trips).compile()))


def _plan(planner: Planner, healthier_s: int, t: int = EIGHT) -> list[Itinerary]:
    opts = RoutingOptions(healthier_s=healthier_s)
    return list(planner.plan(PlanRequest(ORIGIN, DESTINATION, DAY, t, options=opts)).itineraries)


def _stops(it: Itinerary) -> list[tuple[int, int]]:
    return [(leg.origin.stop_index, leg.destination.stop_index) for leg in it.legs if leg.transit]


def test_without_the_preference_the_fastest_comes_first(planner: Planner) -> None:
    its = _plan(planner, 0)
    assert _stops(its[0]) == [(0, 19)]
    assert its[0].start == EIGHT and its[0].end == EIGHT + 19 * 60 and its[0].walk_time == 0
    assert all(it.healthier is None for it in its)
    assert "healthier" not in to_otp(its[0], DAY, "Asia/Tokyo")


def test_getting_off_one_or_two_stops_earlier(planner: Planner) -> None:
    its = _plan(planner, 120)
    first = its[0]
    # Off at stop 18 at 08:18, 121 s on foot: 61 s after the fastest (stop 17 would be 121 s).
    assert _stops(first) == [(0, 18)]
    assert first.legs[-1].mode == "WALK" and first.legs[-1].duration == 121
    assert first.end == EIGHT + 18 * 60 + 121
    assert first.healthier == (61, 121)
    otp: dict[str, Any] = to_otp(first, DAY, "Asia/Tokyo")
    assert otp["healthier"] == {"extraTime": 61, "extraWalkTime": 121}
    # The fastest is still offered, unmarked.
    fastest = [it for it in its if _stops(it) == [(0, 19)] and it.start == EIGHT]
    assert len(fastest) == 1 and fastest[0].healthier is None
    # 121 s allows two stops early; 182 s three.
    first = _plan(planner, 121)[0]
    assert _stops(first) == [(0, 17)] and first.healthier == (121, 241)
    assert _stops(_plan(planner, 181)[0]) == [(0, 17)]
    first = _plan(planner, 182)[0]
    assert _stops(first) == [(0, 16)] and first.healthier == (182, 362)


def test_walking_to_a_farther_stop_of_the_same_line(planner: Planner) -> None:
    # From 07:58 the 121 s walk to stop 1 (07:59:01) catches the 08:00 bus there at 08:01:
    # the same arrival, 121 s of walking for nothing (one stop early would cost 61 s).
    first = _plan(planner, 60, t=EIGHT - 120)[0]
    assert _stops(first) == [(1, 19)]
    assert first.end == EIGHT + 19 * 60
    assert first.legs[0].mode == "WALK" and first.legs[0].duration == 121
    assert first.healthier == (0, 121)
    # From 08:00 that walk misses the bus: within 60 s nothing walks more than the fastest.
    assert _plan(planner, 60) == _plan(planner, 0)
    assert all(it.healthier is None for it in _plan(planner, 60))


def test_arrive_by_walks_all_the_way_when_it_costs_little_enough() -> None:
    # Stops 0 and 3 are 333.6 m apart (433.7 m, 362 s on foot). Arriving by 08:10, the bus
    # leaves at 08:05 (08:08 there); walking would leave at 08:03:58, 62 s earlier.
    times = [EIGHT + 300 + 60 * i for i in range(4)]
    planner = Planner(TransitData(TinyFeed(4, [TinyTrip("t", [0, 1, 2, 3], times)]).compile()))
    o, d = PlanPlace(35.0, 139.0), PlanPlace(35.003, 139.0)
    t = EIGHT + 600

    def plan(healthier_s: int) -> list[Itinerary]:
        opts = RoutingOptions(max_walk_m=100, healthier_s=healthier_s)
        return list(planner.plan(PlanRequest(o, d, DAY, t, True, opts)).itineraries)

    assert [_stops(it) for it in plan(0)] == [[(0, 3)]]
    # 300 s more: the walking budget is 100 + 360 m, so the walk is tried, 62 s earlier.
    first, bus = plan(300)
    assert _stops(first) == [] and first.start == t - 362 and first.end == t
    assert first.healthier == (62, 362)
    assert _stops(bus) == [(0, 3)] and bus.healthier is None
    # With 61 s the walking budget is 100 + 73 m: the walk is not tried.
    assert [_stops(it) for it in plan(61)] == [[(0, 3)]]

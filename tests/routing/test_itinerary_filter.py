"""``filter_itineraries``: dominated and near-duplicate itineraries go, order and limit hold."""

from __future__ import annotations

from routing.itinerary import Itinerary, ItineraryLeg, Place, filter_itineraries

P = Place(name="p", lat=0.0, lon=0.0)


def ride(trip: str, start: int, end: int, co2: int = 100) -> ItineraryLeg:
    return ItineraryLeg(
        "BUS", start, end, P, P, 1000.0, (), trip_id=trip, scheduled_start=start,
        scheduled_end=end, co2_g=co2,
    )  # fmt: skip


def walk(start: int, end: int) -> ItineraryLeg:
    return ItineraryLeg("WALK", start, end, P, P, (end - start) * 1.2, ())


def it(*legs: ItineraryLeg) -> Itinerary:
    return Itinerary(tuple(legs))


def test_near_duplicates_keep_the_best_on_the_same_trips() -> None:
    early_walk = it(walk(0, 300), ride("t1", 300, 900))
    short_walk = it(walk(200, 300), ride("t1", 300, 900))  # same trip, less walking
    assert filter_itineraries([early_walk, short_walk], 5) == [short_walk]


def test_dominated_ones_go_and_trade_offs_stay() -> None:
    fast = it(ride("a", 0, 600), ride("b", 700, 1000))  # one transfer, arrives 1000
    direct = it(ride("c", 0, 1200))  # no transfer, arrives later: a trade-off
    worse = it(ride("d", 0, 1300))  # no transfer, later than ``direct``: dominated
    # One transfer too, departs later, arrives as early: dominates ``fast`` (not ``direct``).
    later_start = it(ride("e", 100, 500), ride("f", 600, 1000))
    kept = filter_itineraries([fast, direct, worse, later_start], 5)
    assert kept == [later_start, direct]
    assert filter_itineraries([fast, direct, worse, later_start], 1) == [later_start]
    # Arrive-by: latest departure first.
    assert filter_itineraries([direct, later_start], 5, arrive_by=True)[0] == later_start


def test_co2_keeps_the_cleanest_riding_itinerary() -> None:
    fast = it(ride("a", 0, 600, co2=900))
    mid = it(ride("b", 0, 700, co2=800))
    clean = it(ride("c", 0, 900, co2=100))
    on_foot = it(walk(0, 2000))
    # Without CO2 the fastest dominates them all (no transfer, no walking either).
    assert filter_itineraries([fast, mid, clean, on_foot], 2) == [fast]
    kept = filter_itineraries([fast, mid, clean, on_foot], 2, co2=True)
    assert kept == [fast, clean]
    assert clean.co2_g == 100 and on_foot.co2_g == 0

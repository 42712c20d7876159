"""CO2 as an optional McRAPTOR criterion: the factors, the per-pattern grams, the Pareto set."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from gtfs.geo import haversine_m
from routing.co2 import GRAMS_PER_PKM, grams_per_pkm, pattern_co2_cumulative, ride_grams
from routing.options import TRANSIT_MODES, RoutingOptions
from routing.raptor import Journey, mc_raptor
from routing.raptor.mcraptor import CO2_STEP_G
from routing.transit import TransitData
from tests.routing.conftest import FeedCase
from tests.routing.reference import check_journey
from tests.routing.test_raptor_reference import OPTIONS, _queries
from tests.routing.tiny import TinyFeed, TinyTrip

MON = dt.date(2024, 1, 1)


def journey_grams(data: TransitData, j: Journey) -> int:
    """CO2 of a journey recomputed from its rides (walks emit nothing)."""
    tt = data.tt
    return sum(
        ride_grams(
            data.pattern_co2,
            int(tt.pattern_stop_ptr[tt.trip_pattern[r.trip]]),
            r.board_pos,
            r.alight_pos,
        )
        for r in j.rides
    )


def test_every_mode_has_a_factor() -> None:
    assert set(GRAMS_PER_PKM) == TRANSIT_MODES
    assert grams_per_pkm(3) == 102.0  # bus
    assert grams_per_pkm(2) == 35.0  # rail
    assert grams_per_pkm(109) == 35.0  # extended: suburban railway
    assert grams_per_pkm(1) < grams_per_pkm(3)


def test_pattern_grams_are_distance_times_factor() -> None:
    feed = TinyFeed(
        4,
        [TinyTrip("bus", [0, 1, 3], [0, 60, 180]), TinyTrip("rail", [0, 2, 3], [0, 90, 200], 1)],
        route_types=[3, 2],
    )
    tt = feed.compile()
    cum = pattern_co2_cumulative(tt)
    ptr = tt.pattern_stop_ptr
    for p in range(len(ptr) - 1):
        stops = tt.pattern_stops[ptr[p] : ptr[p + 1]]
        hop = haversine_m(
            tt.stop_lat[stops[:-1]],
            tt.stop_lon[stops[:-1]],
            tt.stop_lat[stops[1:]],
            tt.stop_lon[stops[1:]],
        )
        factor = grams_per_pkm(int(tt.route_types[tt.pattern_route[p]]))
        want = np.rint(np.r_[0.0, np.cumsum(hop)] / 1000 * factor)
        assert cum[ptr[p]] == 0
        np.testing.assert_array_equal(cum[ptr[p] : ptr[p + 1]], want)


def test_cleaner_slower_journey_is_kept_only_with_the_criterion() -> None:
    """A bus arrives first; a rail line over the same distance arrives later but emits a third.
    Without CO2 the bus dominates; with it, both are Pareto-optimal."""
    feed = TinyFeed(
        4,
        [
            TinyTrip("bus", [0, 1, 3], [8 * 3600, 8 * 3600 + 100, 8 * 3600 + 300]),
            TinyTrip("rail", [0, 2, 3], [8 * 3600, 8 * 3600 + 200, 8 * 3600 + 500], route=1),
        ],
        route_types=[3, 2],
    )
    data = TransitData(feed.compile())
    q = data.query_arrays(MON, RoutingOptions())
    plain = mc_raptor(data.forward, q, 8 * 3600, [0], [0], [3], [0])
    assert [data.tt.trip_ids[j.rides[0].trip] for j in plain] == ["bus"]
    co2 = data.pattern_co2
    green = mc_raptor(data.forward, q, 8 * 3600, [0], [0], [3], [0], pattern_co2=co2, co2_step=1)
    assert [data.tt.trip_ids[j.rides[0].trip] for j in green] == ["bus", "rail"]
    bus, rail = (journey_grams(data, j) for j in green)
    assert 0 < rail < bus / 2
    # Within one CO2 step (333 m here: 34 g and 12 g) the cleaner journey is not worth keeping.
    coarse = mc_raptor(data.forward, q, 8 * 3600, [0], [0], [3], [0], pattern_co2=co2)
    assert bus < CO2_STEP_G
    assert [data.tt.trip_ids[j.rides[0].trip] for j in coarse] == ["bus"]
    # Bounding the arrival drops the later journey.
    bounded = mc_raptor(
        data.forward, q, 8 * 3600, [0], [0], [3], [0], pattern_co2=co2, co2_step=1,
        max_arrival=8 * 3600 + 499,
    )  # fmt: skip
    assert [data.tt.trip_ids[j.rides[0].trip] for j in bounded] == ["bus"]


def test_pattern_co2_shape_is_checked() -> None:
    feed = TinyFeed(2, [TinyTrip("a", [0, 1], [0, 60])])
    data = TransitData(feed.compile())
    q = data.query_arrays(MON, RoutingOptions())
    with pytest.raises(ValueError, match="pattern_co2"):
        mc_raptor(data.forward, q, 0, [0], [0], [1], [0], pattern_co2=np.zeros(7, np.int32))


def test_co2_pareto_set_on_cairns(cairns: FeedCase) -> None:
    """With CO2: feasible journeys, non-dominated on the four criteria (CO2 in steps), the
    reference's earliest arrival, every journey of the three-criterion set matched or beaten;
    with an arrival bound, the same within the bound."""
    case = cairns
    tt = case.tt
    data = case.data
    cum = data.pattern_co2
    checked = 0
    for o, d, t0, day in _queries(case, 60, seed=11):
        q = data.query_arrays(day, OPTIONS)
        mc4 = mc_raptor(data.forward, q, t0, [o], [0], [d], [0], pattern_co2=cum)
        mc3 = mc_raptor(data.forward, q, t0, [o], [0], [d], [0])
        target = case.ref.earliest(str(tt.stop_ids[o]), day, t0).get(str(tt.stop_ids[d]))
        if target is None:
            assert mc4 == []
            continue
        assert min(j.arrival for j in mc4) == target
        for j in mc4:
            check_journey(case.ref, tt.trip_ids, tt.stop_ids, j, day)
        step = CO2_STEP_G
        crit = [
            (j.arrival, j.n_transfers, j.walk_seconds, journey_grams(data, j) // step) for j in mc4
        ]
        for a in crit:
            assert not any(b != a and all(x <= y for x, y in zip(b, a, strict=True)) for b in crit)
        for e in mc3:
            ce = (e.arrival, e.n_transfers, e.walk_seconds, journey_grams(data, e) // step)
            assert any(all(x <= y for x, y in zip(c, ce, strict=True)) for c in crit), (ce, crit)
        bound = target + 900
        capped = mc_raptor(
            data.forward, q, t0, [o], [0], [d], [0], pattern_co2=cum, max_arrival=bound
        )
        assert {(j.arrival, j.key()) for j in capped} == {
            (j.arrival, j.key()) for j in mc4 if j.arrival <= bound
        }
        checked += 1
    assert checked > 15

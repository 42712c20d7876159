"""Query options (#15): maximum travel time, transfer-time factor and added slack, bikes on
board, station matching, a search window that widens until it holds N journeys, and via stops
with a minimum stay (against the raw-timetable reference on Cairns)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from gtfs import compile_timetable, read_feed
from gtfs.feed import Feed
from routing.options import RoutingOptions
from routing.planner import Planner, PlanPlace, PlanRequest
from routing.raptor import earliest_arrival, range_query, via_earliest_arrival
from routing.raptor.journey import RideLeg
from routing.transit import TransitData
from tests.routing.conftest import FeedCase
from tests.routing.reference import check_journey
from tests.routing.tiny import TinyFeed, TinyTrip

REF_OPTIONS = RoutingOptions(max_transfers=15, max_walk_m=10_000)


def _busiest(tt: object) -> dt.date:
    counts = tt.service_days[tt.trip_service].sum(axis=0)  # type: ignore[attr-defined]
    return tt.service_start + dt.timedelta(days=int(np.argmax(counts)))  # type: ignore[attr-defined]


def _pairs(case: FeedCase, n: int, seed: int) -> list[tuple[int, int, int]]:
    rng = np.random.default_rng(seed)
    served = np.flatnonzero(np.diff(case.tt.stop_pattern_ptr) > 0)
    out = []
    for _ in range(n):
        o, d = (int(x) for x in rng.choice(served, 2, replace=False))
        out.append((o, d, int(rng.integers(6, 19)) * 3600))
    return out


def test_options_are_validated() -> None:
    for bad in (
        {"max_travel_s": -1},
        {"transfer_factor": 0.5},
        {"transfer_extra_s": 4000},
        {"min_journeys": 50},
        {"via": ((1, -5),)},
        {"via": ((1, 0),) * 4},
    ):
        with pytest.raises(ValueError):
            RoutingOptions(**bad)  # type: ignore[arg-type]


def test_max_travel_time_prunes_exactly(cairns: FeedCase) -> None:
    data = cairns.data
    day = _busiest(cairns.tt)
    base = data.query_arrays(day, REF_OPTIONS)
    checked = 0
    for o, d, t0 in _pairs(cairns, 40, 3):
        res = earliest_arrival(data.forward, base, t0, [o], [0], [d], [0])
        if not res.journeys:
            continue
        best = min(j.arrival for j in res.journeys)
        fits = dataclasses.replace(
            base, max_travel_s=best - t0, _scan=base._scan, _bounds=base._bounds
        )
        short = dataclasses.replace(fits, max_travel_s=best - t0 - 1)
        got = earliest_arrival(data.forward, fits, t0, [o], [0], [d], [0])
        assert min(j.arrival for j in got.journeys) == best
        assert all(j.arrival <= t0 + best - t0 for j in got.journeys)
        if best - t0 > 1:
            assert earliest_arrival(data.forward, short, t0, [o], [0], [d], [0]).journeys == ()
        for j in range_query(data.forward, fits, t0, 3600, [o], [0], [d], [0]):
            assert j.arrival - j.departure <= best - t0
        checked += 1
    assert checked > 10


def _change_feed() -> TransitData:
    # A reaches stop 1 at 1000; B leaves it at 1130, C at 1300. Stop 1 states a 120 s change;
    # stop 3 is a 60 s footpath from stop 1, where D leaves at 1100 and E at 1250.
    tt = TinyFeed(
        6,
        [
            TinyTrip("A", [0, 1], [900, 1000]),
            TinyTrip("B", [1, 2], [1130, 1200], route=1),
            TinyTrip("C", [1, 2], [1300, 1400], route=1),
            TinyTrip("D", [3, 5], [1100, 1150], route=2),
            TinyTrip("E", [3, 5], [1250, 1300], route=2),
        ],
        transfers=[(1, 1, 120), (1, 3, 60)],
    ).compile()
    return TransitData(tt)


@pytest.mark.parametrize(
    ("factor", "extra", "to_2", "to_5"),
    [(1.0, 0, 1200, 1150), (2.0, 0, 1400, 1150), (1.0, 100, 1400, 1300), (1.5, 0, 1400, 1150)],
)
def test_transfer_factor_and_added_slack(factor: float, extra: int, to_2: int, to_5: int) -> None:
    data = _change_feed()
    day = data.tt.service_start
    opts = RoutingOptions(transfer_factor=factor, transfer_extra_s=extra)
    q = data.query_arrays(day, opts)
    assert q.change_s[1] == int(np.ceil(120 * factor)) + extra
    for target, expect in ((2, to_2), (5, to_5)):
        res = earliest_arrival(data.forward, q, 800, [0], [0], [target], [0])
        assert min(j.arrival for j in res.journeys) == expect


def _with_bikes(feed: Feed, route_ids: set[str]) -> Feed:
    trips = feed.tables["trips"].copy()
    trips["bikes_allowed"] = np.where(trips["route_id"].isin(route_ids), "1", "2")
    return Feed({**feed.tables, "trips": trips}, feed.files, feed.feed_id, feed.source)


def test_bikes_ride_only_trips_that_take_bikes(gtfs_dir: object) -> None:
    feed = read_feed(gtfs_dir / "au_cairns.zip")  # type: ignore[operator]
    routes = sorted(set(feed.tables["routes"]["route_id"]))
    allowed = set(routes[::2])
    tt = compile_timetable(_with_bikes(feed, allowed))
    raw = feed.tables["trips"].set_index("trip_id")["route_id"]
    expect = np.where(pd.Series(tt.trip_ids).map(raw).isin(allowed), 1, 2)
    assert np.array_equal(tt.trip_bikes, expect)
    data = TransitData(tt)
    day = _busiest(tt)
    plain = data.query_arrays(day, RoutingOptions())
    bikes = data.query_arrays(day, RoutingOptions(bikes=True))
    assert np.array_equal(bikes.active, plain.active & (tt.trip_bikes == 1)[None, :])
    rng = np.random.default_rng(4)
    served = np.flatnonzero(np.diff(tt.stop_pattern_ptr) > 0)
    used_other = 0
    for _ in range(40):
        o, d = (int(x) for x in rng.choice(served, 2, replace=False))
        t0 = int(rng.integers(6, 18)) * 3600
        for j in earliest_arrival(data.forward, bikes, t0, [o], [0], [d], [0]).journeys:
            assert all(tt.trip_bikes[r.trip] == 1 for r in j.rides)
        for j in earliest_arrival(data.forward, plain, t0, [o], [0], [d], [0]).journeys:
            used_other += any(tt.trip_bikes[r.trip] != 1 for r in j.rides)
    assert used_other > 0
    # A feed that says nothing of bikes: no trip is known to take them.
    nothing = TransitData(compile_timetable(feed))
    assert not nothing.trip_filter(RoutingOptions(bikes=True)).any()


def test_station_matching() -> None:
    # Station 0 with platforms 1 and 2; a trip leaves platform 2 only.
    tt = TinyFeed(4, [TinyTrip("X", [2, 3], [3600, 3700])]).compile()
    tt = dataclasses.replace(
        tt,
        stop_parent=np.array([-1, 0, 0, -1], dtype=np.int32),
        stop_lat=np.array([35.0, 35.0, 35.0001, 36.0]),  # the destination: far from a walk
    )
    planner = Planner(TransitData(tt))
    assert planner._station(1, False).tolist() == [1]
    assert planner._station(1, True).tolist() == [0, 1, 2]
    assert planner._station(0, False).tolist() == [0, 1, 2]
    assert planner._station(3, True).tolist() == [3]

    def plan(whole: bool) -> int:
        opts = RoutingOptions(station_match=whole)
        req = PlanRequest(
            PlanPlace(0.0, 0.0, stop=1), PlanPlace(0.0, 0.0, stop=3), tt.service_start, 3000,
            options=opts,
        )  # fmt: skip
        return len(planner.plan(req).itineraries)

    assert plan(False) == 0
    assert plan(True) == 1


def test_search_window_widens_until_it_holds_n_journeys(cairns: FeedCase) -> None:
    tt = cairns.tt
    planner = Planner(cairns.data)
    day = _busiest(tt)
    widened = 0
    for o, d, t0 in _pairs(cairns, 15, 8):
        base = RoutingOptions(search_window_s=300, num_itineraries=1)

        def departures(
            opts: RoutingOptions, o: int = o, d: int = d, t0: int = t0
        ) -> set[tuple[int, int, int]]:
            req = PlanRequest(PlanPlace(0.0, 0.0, stop=o), PlanPlace(0.0, 0.0, stop=d), day, t0,
                              options=opts)  # fmt: skip
            js = planner._search(req, *planner._access(req.origin, opts),
                                 *planner._access(req.destination, opts), None, None)  # fmt: skip
            return {(j.departure, j.arrival, j.n_transfers) for j in js if j.rides}

        few = departures(base)
        many = departures(dataclasses.replace(base, min_journeys=4))
        q = cairns.data.query_arrays(day, base)
        full = range_query(cairns.data.forward, q, t0, 6 * 3600, [o], [0], [d], [0])
        if len(full) >= 4:
            assert len(many) >= 4, (o, d, t0)
            widened += len(few) < 4
    assert widened > 3


def test_via_stop_with_stay_matches_the_reference(cairns: FeedCase) -> None:
    case = cairns
    tt = case.tt
    data = case.data
    day = _busiest(tt)
    q = data.query_arrays(day, REF_OPTIONS)
    ids = tt.stop_ids
    rng = np.random.default_rng(21)
    served = np.flatnonzero(np.diff(tt.stop_pattern_ptr) > 0)
    checked = 0
    for _ in range(40):
        o, v, d = (int(x) for x in rng.choice(served, 3, replace=False))
        t0 = int(rng.integers(6, 16)) * 3600
        stay = int(rng.integers(0, 20)) * 60
        j = via_earliest_arrival(data.forward, q, t0, [o], [0], [([v], stay)], [d], [0])
        at_v = case.ref.earliest(str(ids[o]), day, t0).get(str(ids[v]))
        if at_v is None:
            assert j is None
            continue
        # Cairns states no change times: leaving the via stop = arriving + the stay.
        expect = case.ref.earliest(str(ids[v]), day, at_v + stay).get(str(ids[d]))
        if expect is None:
            assert j is None
            continue
        assert j is not None and j.arrival == expect
        check_journey(case.ref, tt.trip_ids, tt.stop_ids, j, day)
        stops = [leg.alight_stop for leg in j.legs if isinstance(leg, RideLeg)] + [
            getattr(leg, "to_stop", -2) for leg in j.legs
        ]
        assert v in stops or o == v
        checked += 1
    assert checked > 10

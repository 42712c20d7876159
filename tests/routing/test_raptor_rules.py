"""Rules of the RAPTOR core on hand-made timetables: boarding rules, service days, trips past
midnight, wheelchair and mode filters, realtime overlays, arrive-by and range answers."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from gtfs.realtime import RealtimeState
from routing.options import RoutingOptions
from routing.raptor import (
    RideLeg,
    WalkLeg,
    earliest_arrival,
    latest_departure,
    mc_raptor,
    range_query,
)
from routing.raptor.kernels import BIG
from routing.transit import TransitData
from tests.routing.tiny import TinyFeed, TinyTrip

MON = dt.date(2024, 1, 1)  # the tiny feed's first day (services are a weekday bitmap)


def _data(feed: TinyFeed) -> TransitData:
    return TransitData(feed.compile())


def _ea(data: TransitData, day: dt.date, t0: int, o: int, d: int, **opts: object):  # type: ignore[no-untyped-def]
    q = data.query_arrays(day, RoutingOptions(**opts))  # type: ignore[arg-type]
    return earliest_arrival(data.forward, q, t0, [o], [0], [d], [0])


def line(n_stops: int = 4, **kw: object) -> TinyFeed:
    """One line 0→1→2→3 every 10 minutes from 08:00, plus line 1→4 at 08:20."""
    trips = [TinyTrip(f"a{i}", [0, 1, 2, 3], [t, t + 300, t + 600, t + 900])
             for i, t in enumerate(range(8 * 3600, 9 * 3600, 600))]  # fmt: skip
    trips.append(TinyTrip("b", [1, 4], [8 * 3600 + 1200, 8 * 3600 + 1800], route=1))
    return TinyFeed(5, trips, **kw)  # type: ignore[arg-type]


def test_earliest_arrival_and_transfer() -> None:
    data = _data(line())
    res = _ea(data, MON, 8 * 3600 + 1, 0, 4)
    (j,) = res.journeys
    assert [type(leg) for leg in j.legs] == [RideLeg, RideLeg]
    assert j.legs[0].departure == 8 * 3600 + 600  # the 08:00 trip has left
    assert j.arrival == 8 * 3600 + 1800
    assert j.n_transfers == 1


def test_pickup_and_dropoff_types() -> None:
    feed = line()
    # No boarding at stop 0 on every trip but the last; no alighting at stop 2 anywhere.
    for t in feed.trips[:-1]:
        t.pickup = [1, 0, 0, 0]
        t.dropoff = [0, 0, 1, 0]
    feed.trips[-2].pickup = [0, 0, 0, 0]
    data = _data(feed)
    res = _ea(data, MON, 8 * 3600, 0, 3)
    assert res.journeys[0].legs[0].departure == feed.trips[-2].times[0]
    assert res.best[2] >= BIG  # never alighted at stop 2
    assert res.best[3] < BIG


def test_minimum_change_time_at_a_stop() -> None:
    # Trip b leaves stop 1 at 08:20; trip a1 (08:10) reaches stop 1 at 08:15.
    feed = line()
    data = _data(feed)
    assert _ea(data, MON, 8 * 3600 + 600, 0, 4).journeys[0].arrival == 8 * 3600 + 1800
    feed.transfers = [(1, 1, 301)]  # transfers.txt from == to: 5 min 1 s to change at stop 1
    data = _data(feed)
    # Missed: the next connection is tomorrow's trip b (the "next day" copy).
    assert _ea(data, MON, 8 * 3600 + 600, 0, 4).journeys[0].arrival > 86400
    # The slack option works the same way for every stop.
    data = _data(line())
    assert _ea(data, MON, 8 * 3600 + 600, 0, 4, min_transfer_s=301).journeys[0].arrival > 86400


def test_footpath_after_a_ride_only() -> None:
    feed = line(transfers=[(3, 4, 120)])
    data = _data(feed)
    res = _ea(data, MON, 8 * 3600, 0, 4)
    legs = res.journeys[0].legs
    assert isinstance(legs[-1], WalkLeg) and legs[-1].from_stop == 3 and legs[-1].to_stop == 4
    assert res.journeys[0].arrival == 8 * 3600 + 900 + 120
    # Footpaths longer than the walking limit are not used.
    res = _ea(data, MON, 8 * 3600, 0, 4, max_walk_m=100)  # 100 m at 1.2 m/s < 120 s
    assert all(not isinstance(leg, WalkLeg) for j in res.journeys for leg in j.legs)


def test_service_days_and_trips_past_midnight() -> None:
    # Service 0 runs on Mondays only; its trip runs 23:50 → 24:20 (00:20 next day).
    feed = TinyFeed(
        2,
        [TinyTrip("late", [0, 1], [23 * 3600 + 3000, 24 * 3600 + 1200])],
        services_days=[[True] + [False] * 13],
    )
    data = _data(feed)
    tue = MON + dt.timedelta(days=1)
    # Monday 23:00: ride today's trip.
    assert _ea(data, MON, 23 * 3600, 0, 1).journeys[0].arrival == 24 * 3600 + 1200
    # Tuesday 00:00, at stop 0 there is nothing (yesterday's trip left it at 23:50)...
    assert _ea(data, tue, 0, 0, 1).journeys == ()
    # ...but Tuesday's query sees Monday's trip on its way, shifted by -24 h.
    q = data.query_arrays(tue, RoutingOptions())
    res = earliest_arrival(data.forward, q, -3600, [0], [0], [1], [0])
    (j,) = res.journeys
    assert j.legs[0].day_offset == -86400 and j.arrival == 1200
    # Tuesday's service is off: no trip at Tuesday 23:00.
    assert _ea(data, tue, 23 * 3600, 0, 1).journeys == ()
    # Dates before the feed (and its day-before copies) are not covered.
    assert not data.covers(MON - dt.timedelta(days=2))
    assert data.covers(MON)


def test_wheelchair_and_modes() -> None:
    feed = line(route_types=[3, 2])
    for t in feed.trips:
        t.wheelchair = 1
    feed.trips[1].wheelchair = 2
    data = _data(feed)
    j = _ea(data, MON, 8 * 3600 + 1, 0, 3, wheelchair=True).journeys[0]
    assert j.legs[0].departure == 8 * 3600 + 1200  # a1 is not accessible
    feed.stop_wheelchair = [0, 0, 0, 2, 0]
    data = _data(feed)
    assert _ea(data, MON, 8 * 3600, 0, 3, wheelchair=True).journeys == ()
    assert _ea(data, MON, 8 * 3600, 0, 3).journeys
    # Route 1 (stop 1 → 4) is RAIL: a BUS-only query cannot reach stop 4.
    assert _ea(data, MON, 8 * 3600, 0, 4, modes=frozenset({"BUS"})).journeys == ()
    assert _ea(data, MON, 8 * 3600, 0, 4, modes=frozenset({"BUS", "RAIL"})).journeys


def test_max_transfers() -> None:
    data = _data(line())
    assert _ea(data, MON, 8 * 3600, 0, 4, max_transfers=0).journeys == ()
    assert _ea(data, MON, 8 * 3600, 0, 4, max_transfers=1).journeys


def _overlay(data: TransitData, day: dt.date) -> RealtimeState:
    return RealtimeState.scheduled(data.tt, day)


def test_realtime_delays_cancellations_and_skips() -> None:
    data = _data(line())
    tt = data.tt
    rt = _overlay(data, MON)
    # a1 (08:10) is 5 min 1 s late from stop 1 on: it misses trip b at 08:20 at stop 1.
    a1 = list(tt.trip_ids).index("a1")
    st = slice(int(tt.trip_st_ptr[a1]) + 1, int(tt.trip_st_ptr[a1 + 1]))
    rt.arrival[st] += 301
    rt.departure[st] += 301
    q = data.query_arrays(MON, RoutingOptions(), rt)
    # Still behind a0 and ahead of a2 everywhere: the pattern keeps one FIFO order, nothing is
    # ridden apart and the trip search stays a binary search.
    assert q.fifo and q.odd is None and q.row_fifo is not None and q.row_fifo.all()
    res = earliest_arrival(data.forward, q, 8 * 3600 + 600, [0], [0], [3], [0])
    assert res.journeys[0].arrival == 8 * 3600 + 600 + 900 + 301
    res = earliest_arrival(data.forward, q, 8 * 3600 + 600, [0], [0], [4], [0])
    assert res.journeys[0].arrival > 86400  # tomorrow's trip b
    # Cancel a1: the next trip is a2 (08:20).
    rt2 = dataclasses.replace(rt, trip_cancelled=rt.trip_cancelled.copy())
    rt2.trip_cancelled[a1] = True
    q = data.query_arrays(MON, RoutingOptions(), rt2)
    res = earliest_arrival(data.forward, q, 8 * 3600 + 600, [0], [0], [3], [0])
    assert res.journeys[0].legs[0].departure == 8 * 3600 + 1200
    # Skipping stop 3 on every Monday trip: stop 3 is reached only by Tuesday's first run
    # (the earliest boardable copies, Monday's, do not let anyone off there).
    rt3 = _overlay(data, MON)
    stops_of_st = data.st_stop
    rt3.stop_skipped[stops_of_st == 3] = True
    q = data.query_arrays(MON, RoutingOptions(), rt3)
    (j,) = earliest_arrival(data.forward, q, 8 * 3600, [0], [0], [3], [0]).journeys
    assert (j.rides[0].day_offset, j.arrival) == (86400, 86400 + 8 * 3600 + 900)
    # An overlay of another day does not touch today's query.
    q = data.query_arrays(MON, RoutingOptions(), _overlay(data, MON + dt.timedelta(days=7)))
    assert q.fifo and q.odd is None and np.array_equal(q.st_arr[1], data.forward.st_arr)


def test_arrive_by_and_range_and_mcraptor_on_tiny() -> None:
    data = _data(line(transfers=[(3, 4, 120)]))
    qr = data.query_arrays(MON, RoutingOptions(), reverse=True)
    res = latest_departure(data.backward, qr, 8 * 3600 + 1800, [4], [0], [0], [0])
    # Either b (dep 08:10 from 0 via a1) or a2 then walk (08:20 + 15 min + 2 = 08:37 > 08:30).
    assert max(j.departure for j in res.journeys) == 8 * 3600 + 600
    q = data.query_arrays(MON, RoutingOptions())
    rj = range_query(data.forward, q, 8 * 3600, 3600, [0], [0], [3], [0])
    assert [j.departure for j in rj] == list(range(8 * 3600, 9 * 3600, 600))
    mc = mc_raptor(data.forward, q, 8 * 3600, [0], [0], [4], [0])
    crit = sorted((j.arrival, j.n_transfers, j.walk_seconds) for j in mc)
    # Walking from stop 3 (no transfer, 120 s walk) vs trip b (1 transfer, no walk).
    assert crit == [(8 * 3600 + 900 + 120, 0, 120), (8 * 3600 + 1800, 1, 0)]


def test_reversed_network_round_trip() -> None:
    data = _data(line(transfers=[(3, 4, 120), (1, 2, 60)]))
    back = data.backward
    with pytest.raises(ValueError):  # a reversed network cannot be reversed again
        back.reverse()
    f = data.forward
    # Times negate and order mirrors: reversing the stop-time order maps back exactly.
    assert np.array_equal(-back.st_dep, f.st_arr[back.st_order])
    assert np.array_equal(back.transfer_ptr[-1], f.transfer_ptr[-1])


def test_bad_access_input() -> None:
    data = _data(line())
    q = data.query_arrays(MON, RoutingOptions())
    with pytest.raises(ValueError):
        earliest_arrival(data.forward, q, 0, [99], [0])
    with pytest.raises(ValueError):
        earliest_arrival(data.forward, q, 0, [0], [-5])
    with pytest.raises(ValueError):
        earliest_arrival(data.forward, q, 0, [0, 1], [0])


@pytest.mark.parametrize(
    "kw",
    [
        {"max_transfers": -1},
        {"max_transfers": 16},
        {"walk_speed_mps": 0},
        {"max_walk_m": -1},
        {"num_itineraries": 0},
        {"modes": frozenset({"ROCKET"})},
        {"min_transfer_s": -3},
    ],
)
def test_options_are_validated(kw: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError):
        RoutingOptions(**kw)


def test_walking_speed_scales_footpaths() -> None:
    data = _data(line(transfers=[(3, 4, 120)]))
    slow = _ea(data, MON, 8 * 3600, 0, 4, walk_speed_mps=0.6, max_walk_m=1000)
    walk = [leg for leg in slow.journeys[0].legs if isinstance(leg, WalkLeg)]
    # 120 s at the compiled 1.2 m/s take 240 s at 0.6 m/s.
    assert walk and walk[0].seconds == 240
    assert slow.journeys[0].arrival == 8 * 3600 + 900 + 240
    fast = _ea(data, MON, 8 * 3600, 0, 4, walk_speed_mps=2.4)
    assert fast.journeys[0].arrival == 8 * 3600 + 900 + 60
    # The same rules hold backwards and in McRAPTOR.
    q = data.query_arrays(MON, RoutingOptions(walk_speed_mps=0.6), reverse=True)
    res = latest_departure(data.backward, q, 8 * 3600 + 900 + 240, [4], [0], [0], [0])
    assert max(j.departure for j in res.journeys) == 8 * 3600
    qf = data.query_arrays(MON, RoutingOptions(walk_speed_mps=0.6))
    mc = mc_raptor(data.forward, qf, 8 * 3600, [0], [0], [4], [0])
    assert min(j.walk_seconds for j in mc) in (0, 240)

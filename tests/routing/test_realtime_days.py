"""A realtime overlay is for ONE service date: it must change only that day's copy of a trip.

RAPTOR rides three copies of every trip (the query day's, yesterday's shifted by -24 h for its
part past midnight, tomorrow's shifted by +24 h). A trip that runs every night is the case where
the copies meet: Monday's night run is still on the road on Tuesday at 00:02, Tuesday's run
leaves on Tuesday at 23:40. A skip, a cancellation or a delay announced for Tuesday's run must
leave Monday's run (and Wednesday's) as scheduled — in the forward, arrive-by, range and
McRAPTOR searches and through the planner.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from gtfs.realtime import RealtimeState
from routing.options import RoutingOptions
from routing.planner import Planner, PlanPlace, PlanRequest
from routing.raptor import RideLeg, earliest_arrival, latest_departure, mc_raptor, range_query
from routing.transit import DAY, TransitData
from tests.routing.tiny import TinyFeed, TinyTrip

MON = dt.date(2024, 1, 1)
TUE = MON + dt.timedelta(days=1)
# The night bus: stop 0 at 23:40, stop 1 at 24:02, stop 2 at 24:15, every day.
NIGHT = [23 * 3600 + 2400, 24 * 3600 + 120, 24 * 3600 + 900]


@pytest.fixture(scope="module")
def data() -> TransitData:
    return TransitData(TinyFeed(3, [TinyTrip("night", [0, 1, 2], NIGHT)]).compile())


def _state(data: TransitData, day: dt.date) -> RealtimeState:
    """A fresh (mutable arrays) scheduled overlay of ``day``."""
    return RealtimeState.scheduled(data.tt, day)


def _stop_time(data: TransitData, stop: int) -> int:
    return int(np.flatnonzero(data.st_stop == stop)[0])


def _ride(data: TransitData, rt: RealtimeState | None, t0: int) -> tuple[int, int] | None:
    """(day offset, arrival) of the earliest ride 1 -> 2 on Tuesday from ``t0``."""
    q = data.query_arrays(TUE, RoutingOptions(), rt)
    res = earliest_arrival(data.forward, q, t0, [1], [0], [2], [0])
    if not res.journeys:
        return None
    (j,) = res.journeys
    leg = j.legs[0]
    assert isinstance(leg, RideLeg)
    return leg.day_offset, j.arrival


def test_schedule_baseline(data: TransitData) -> None:
    # Tuesday 00:00 at stop 1: Monday's night run passes at 00:02.
    assert _ride(data, None, 0) == (-DAY, 900)
    # Tuesday 01:00: the next one is Tuesday's own run, at 24:02 (Wednesday 00:02).
    assert _ride(data, None, 3600) == (0, NIGHT[2])


def test_skip_on_tuesday_run_keeps_monday_run(data: TransitData) -> None:
    rt = _state(data, TUE)
    rt.stop_skipped[_stop_time(data, 1)] = True
    q = data.query_arrays(TUE, RoutingOptions(), rt)
    # Only Tuesday's copy (row 1) loses stop 1; Monday's and Wednesday's copies keep it.
    st = _stop_time(data, 1)
    assert [bool(q.st_board[o, st]) for o in range(3)] == [True, False, True]
    assert [bool(q.st_alight[o, st]) for o in range(3)] == [True, False, True]
    # Past midnight Monday's run still serves stop 1...
    assert _ride(data, rt, 0) == (-DAY, 900)
    # ...while Tuesday's run does not: the next boarding is Wednesday's run.
    assert _ride(data, rt, 3600) == (DAY, DAY + NIGHT[2])


def test_skip_on_monday_run_keeps_tuesday_run(data: TransitData) -> None:
    # Monday's overlay applied to a Tuesday query: it is the day-before copy that changes.
    rt = _state(data, MON)
    rt.stop_skipped[_stop_time(data, 1)] = True
    assert _ride(data, rt, 0) == (0, NIGHT[2])


def test_cancellation_and_delay_stay_on_their_day(data: TransitData) -> None:
    rt = _state(data, TUE)
    rt.trip_cancelled[0] = True
    assert _ride(data, rt, 0) == (-DAY, 900)
    assert _ride(data, rt, 3600) == (DAY, DAY + NIGHT[2])
    late = _state(data, TUE)
    late.arrival[:] += 600
    late.departure[:] += 600
    assert _ride(data, late, 0) == (-DAY, 900)
    assert _ride(data, late, 3600) == (0, NIGHT[2] + 600)


def test_arrive_by_range_and_mcraptor_see_the_same_copies(data: TransitData) -> None:
    rt = _state(data, TUE)
    rt.stop_skipped[_stop_time(data, 1)] = True
    opts = RoutingOptions()
    # Arrive at stop 2 by Tuesday 00:20: leave stop 1 on Monday's run at 00:02.
    qr = data.query_arrays(TUE, opts, rt, reverse=True)
    res = latest_departure(data.backward, qr, 1200, [2], [0], [1], [0])
    assert max(j.departure for j in res.journeys) == 120
    # Monday's overlay skipping Monday's run: arriving by 00:20 is then impossible, arriving
    # by Wednesday 00:20 still rides Tuesday's run.
    mon = _state(data, MON)
    mon.stop_skipped[_stop_time(data, 1)] = True
    qm = data.query_arrays(TUE, opts, mon, reverse=True)
    assert latest_departure(data.backward, qm, 1200, [2], [0], [1], [0]).journeys == ()
    res = latest_departure(data.backward, qm, DAY + 1200, [2], [0], [1], [0])
    assert max(j.departure for j in res.journeys) == NIGHT[1]
    q = data.query_arrays(TUE, opts, rt)
    rj = range_query(data.forward, q, 0, 6 * 3600, [1], [0], [2], [0])
    assert [j.departure for j in rj] == [120]
    mc = mc_raptor(data.forward, q, 0, [1], [0], [2], [0])
    assert sorted(j.arrival for j in mc) == [900]


def test_planner_past_midnight(data: TransitData) -> None:
    planner = Planner(data)
    opts = RoutingOptions(max_walk_m=0)  # no walking between the tiny feed's close stops
    req = PlanRequest(PlanPlace(0, 0, stop=1), PlanPlace(0, 0, stop=2), TUE, 0, options=opts)
    rt = _state(data, TUE)
    rt.stop_skipped[_stop_time(data, 1)] = True
    plan = planner.plan(req, rt)
    assert plan.error is None
    assert [(it.start, it.end) for it in plan.itineraries][:1] == [(120, 900)]
    by = planner.plan(dataclasses.replace(req, time_s=1200, arrive_by=True), rt)
    assert by.error is None and by.itineraries[0].start == 120
    # Skipping stop 1 on Monday's run too (Monday's overlay) leaves Tuesday's own run skipped
    # by nothing: the planner rides it.
    mon = _state(data, MON)
    mon.stop_skipped[_stop_time(data, 1)] = True
    plan = planner.plan(req, mon)
    assert plan.itineraries and plan.itineraries[0].start == NIGHT[1]


def test_several_overlays_each_change_their_own_copy(data: TransitData) -> None:
    """The overlays of Monday, Tuesday and Wednesday given together to a Tuesday query."""
    mon = _state(data, MON)
    mon.arrival[:] += 300  # Monday's run 5 min late (past midnight: Tuesday 00:20)
    mon.departure[:] += 300
    tue = _state(data, TUE)
    tue.stop_skipped[_stop_time(data, 1)] = True
    wed = _state(data, TUE + dt.timedelta(days=1))
    wed.trip_cancelled[0] = True
    other = _state(data, TUE + dt.timedelta(days=5))  # not a copy of a Tuesday query: ignored
    q = data.query_arrays(TUE, RoutingOptions(), [mon, None, tue, wed, other])
    st = _stop_time(data, 1)
    assert [int(q.st_dep[o, st]) for o in range(3)] == [NIGHT[1] + 300, NIGHT[1], NIGHT[1]]
    assert [bool(q.st_board[o, st]) for o in range(3)] == [True, False, True]
    assert [bool(q.active[o, 0]) for o in range(3)] == [True, True, False]
    # From stop 1 at Tuesday 00:00: Monday's late run (00:07 -> 00:20); after it, nothing:
    # Tuesday's run skips stop 1 and Wednesday's is cancelled.
    res = earliest_arrival(data.forward, q, 0, [1], [0], [2], [0])
    assert [(j.rides[0].day_offset, j.arrival) for j in res.journeys] == [(-DAY, 1200)]
    assert earliest_arrival(data.forward, q, 3600, [1], [0], [2], [0]).journeys == ()
    # The planner and its itineraries read each ride's own day's overlay.
    planner = Planner(data)
    opts = RoutingOptions(max_walk_m=0)
    req = PlanRequest(PlanPlace(0, 0, stop=1), PlanPlace(0, 0, stop=2), TUE, 0, options=opts)
    mon.trip_updated[0] = True
    plan = planner.plan(req, [mon, tue, wed])
    (leg,) = [leg for leg in plan.itineraries[0].legs if leg.transit]
    assert (leg.start, leg.end, leg.realtime, leg.service_day_offset) == (420, 1200, True, -DAY)
    assert leg.scheduled_end == 900
    # One overlay alone still works (and only changes its own day).
    plan = planner.plan(req, tue)
    assert plan.itineraries[0].start == 120


def test_overlay_helpers() -> None:
    from routing.transit import overlay_for, overlays

    a = RealtimeState.scheduled(TinyFeed(3, [TinyTrip("t", [0, 1], [0, 60])]).compile(), MON)
    assert overlays(None) == [] and overlays(a) == [a] and overlays([None, a]) == [a]
    assert (
        overlay_for([a], MON) is a
        and overlay_for(a, TUE) is None
        and overlay_for(None, MON) is None
    )

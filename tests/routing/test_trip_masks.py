"""A pattern scan must not ride only the earliest boardable trip copy when later copies differ.

RAPTOR scans a pattern riding the earliest trip copy it can board. That is exact only when
the copies it chooses from share their boarding/alighting stops and never overtake. Copies that
do not — a realtime skip on one service day's run, a trip whose drop_off_type closes a stop the
others serve, a delay that lets the next trip overtake — are ridden apart ("odd" trip copies),
in the earliest-arrival, arrive-by, range and McRAPTOR searches alike.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np

from gtfs import compile_timetable, read_feed
from gtfs.realtime import RealtimeState
from routing.options import RoutingOptions
from routing.raptor import earliest_arrival, latest_departure, mc_raptor, range_query
from routing.raptor.search import QueryArrays
from routing.transit import DAY, TransitData
from tests.gtfs.conftest import BASE_FEED, write_zip
from tests.routing.tiny import TinyFeed, TinyTrip

MON = dt.date(2024, 1, 1)
TUE = MON + dt.timedelta(days=1)
H8 = 8 * 3600
NIGHT = [23 * 3600 + 2400, 24 * 3600 + 120, 24 * 3600 + 900]


def _stop_time(data: TransitData, trip: str, pos: int) -> int:
    t = list(data.tt.trip_ids).index(trip)
    return int(data.tt.trip_st_ptr[t]) + pos


def _summary(journeys: object) -> list[tuple[int, int, tuple[str, ...]]]:
    """(departure, arrival, trips) of each journey, for readable asserts."""
    return sorted(
        (j.departure, j.arrival, tuple(str(r.trip) for r in j.rides))
        for j in journeys  # type: ignore[attr-defined]
    )


# --- 1. realtime skip on one day's copy: the arrive-by example ---------------------------------


def test_arrive_by_past_midnight_rides_monday_run_when_tuesday_run_skips() -> None:
    data = TransitData(TinyFeed(3, [TinyTrip("night", [0, 1, 2], NIGHT)]).compile())
    rt = RealtimeState.scheduled(data.tt, TUE)
    rt.stop_skipped[_stop_time(data, "night", 1)] = True
    opts = RoutingOptions()
    # Arrive at stop 2 by Wednesday 00:20 (Tuesday's date): Tuesday's run (00:15) is the latest
    # to arrive but skips stop 1; Monday's run past midnight (stop 1 at Tuesday 00:02) works.
    qr = data.query_arrays(TUE, opts, rt, reverse=True)
    assert qr.odd is not None and int(qr.odd.sum()) == 1
    res = latest_departure(data.backward, qr, DAY + 1200, [2], [0], [1], [0])
    assert [(j.departure, j.rides[0].day_offset) for j in res.journeys] == [(120, -DAY)]
    assert -int(res.best[1]) == 120
    # Forward, from stop 1 at Tuesday 01:00: the next run that stops there is Wednesday's.
    q = data.query_arrays(TUE, opts, rt)
    (j,) = earliest_arrival(data.forward, q, 3600, [1], [0], [2], [0]).journeys
    assert (j.rides[0].day_offset, j.arrival) == (DAY, DAY + NIGHT[2])
    # Range and McRAPTOR see the same copies.
    rj = range_query(data.forward, q, 0, 2 * DAY + 3600, [1], [0], [2], [0])
    assert [(j.departure, j.rides[0].day_offset) for j in rj] == [
        (120, -DAY),
        (DAY + NIGHT[1], DAY),
    ]
    mc = mc_raptor(data.forward, q, 3600, [1], [0], [2], [0])
    assert [j.arrival for j in mc] == [DAY + NIGHT[2]]


# --- 2. static drop_off_type / pickup_type differing inside one pattern ------------------------


def _mixed_feed() -> TinyFeed:
    """Trips x (08:00), y (08:30), z (09:00) on 0 -> 1 -> 2, one pattern (the tiny builder does
    not split): x lets nobody off at stop 1, z takes nobody on at stop 0."""
    return TinyFeed(
        3,
        [
            TinyTrip("x", [0, 1, 2], [H8, H8 + 300, H8 + 600], dropoff=[0, 1, 0]),
            TinyTrip("y", [0, 1, 2], [H8 + 1800, H8 + 2100, H8 + 2400]),
            TinyTrip("z", [0, 1, 2], [H8 + 3600, H8 + 3900, H8 + 4200], pickup=[1, 0, 0]),
        ],
    )


def test_static_drop_off_type_in_one_pattern() -> None:
    data = TransitData(_mixed_feed().compile())
    assert data.tt.n_patterns == 1
    q = data.query_arrays(MON, RoutingOptions())
    assert q.odd is not None
    assert {str(data.tt.trip_ids[t]) for t in np.flatnonzero(q.odd.any(axis=0))} == {"x", "z"}
    # 07:55 at stop 0 to stop 1: x (08:00) does not stop to let anyone off; y does.
    res = earliest_arrival(data.forward, q, H8 - 300, [0], [0], [1], [0])
    assert _summary(res.journeys) == [(H8 + 1800, H8 + 2100, ("1",))]
    assert int(res.best[1]) == H8 + 2100
    # Stop 2 is still reached by x.
    assert int(earliest_arrival(data.forward, q, H8 - 300, [0], [0]).best[2]) == H8 + 600
    mc = mc_raptor(data.forward, q, H8 - 300, [0], [0], [1], [0])
    assert _summary(mc) == [(H8 + 1800, H8 + 2100, ("1",))]
    rj = range_query(data.forward, q, H8 - 300, 7200, [0], [0], [1], [0])
    assert _summary(rj) == [(H8 + 1800, H8 + 2100, ("1",))]
    # Arrive-by at stop 2 by 09:30: z arrives latest (09:10) but takes nobody on at stop 0.
    qr = data.query_arrays(MON, RoutingOptions(), reverse=True)
    res = latest_departure(data.backward, qr, H8 + 5400, [2], [0], [0], [0])
    assert _summary(res.journeys) == [(H8 + 1800, H8 + 2400, ("1",))]
    # ...and z is still taken from stop 1.
    res = latest_departure(data.backward, qr, H8 + 5400, [2], [0], [1], [0])
    assert max(j.departure for j in res.journeys) == H8 + 3900


def test_compiled_feed_with_drop_off_type_needs_the_second_trip(tmp_path: Path) -> None:
    head = "trip_id,arrival_time,departure_time,stop_id,stop_sequence,drop_off_type"
    st = (
        f"{head}\nT1,08:00:00,08:00:00,S1,1,0\nT1,08:05:00,08:05:00,S2,2,1\n"
        "T1,08:10:00,08:10:00,S3,3,0\nT2,08:30:00,08:30:00,S1,1,0\n"
        "T2,08:35:00,08:35:00,S2,2,0\nT2,08:40:00,08:40:00,S3,3,0\n"
    )
    files: dict[str, str | bytes] = {**BASE_FEED, "stop_times.txt": st}
    tt = compile_timetable(read_feed(write_zip(tmp_path / "f.zip", files)), footpath_radius_m=0)
    data = TransitData(tt)
    assert tt.n_patterns == 2  # the compiler split them: no odd copies left to ride apart
    day = dt.date(2030, 1, 2)
    q = data.query_arrays(day, RoutingOptions())
    assert q.odd is None
    s1, s2 = (int(np.flatnonzero(tt.stop_ids == s)[0]) for s in ("S1", "S2"))
    (j,) = earliest_arrival(data.forward, q, H8 - 300, [s1], [0], [s2], [0]).journeys
    assert str(tt.trip_ids[j.rides[0].trip]) == "T2"
    assert (j.departure, j.arrival) == (H8 + 1800, H8 + 2100)


# --- 3. a realtime delay that lets the next trip overtake --------------------------------------


def _line() -> TinyFeed:
    trips = [
        TinyTrip(f"a{i}", [0, 1, 2, 3], [t, t + 300, t + 600, t + 900])
        for i, t in enumerate(range(H8, 9 * 3600, 600))
    ]
    return TinyFeed(4, trips)


def test_overtaking_delay_is_ridden_apart() -> None:
    data = TransitData(_line().compile())
    tt = data.tt
    rt = RealtimeState.scheduled(tt, MON)
    # a1 leaves stop 0 on time (08:10) but is 15 min late from stop 1 on: a2 (08:20)
    # overtakes it and reaches stop 3 at 08:35, a1 at 08:40.
    a1 = list(tt.trip_ids).index("a1")
    lo, hi = int(tt.trip_st_ptr[a1]) + 1, int(tt.trip_st_ptr[a1 + 1])
    rt.arrival[lo:hi] += 900
    rt.departure[lo:hi] += 900
    q = data.query_arrays(MON, RoutingOptions(), rt)
    assert q.odd is not None and np.flatnonzero(q.odd[1]).tolist() == [a1]
    assert q.row_fifo is not None and not q.row_fifo[1, 0] and q.row_fifo[0, 0]
    res = earliest_arrival(data.forward, q, H8 + 600, [0], [0], [3], [0])
    assert min(j.arrival for j in res.journeys) == H8 + 1200 + 900
    # Stop 1 too: a2 at 08:25, not a1 at 08:30.
    assert int(res.best[1]) == H8 + 1500
    mc = mc_raptor(data.forward, q, H8 + 600, [0], [0], [3], [0])
    assert min(j.arrival for j in mc) == H8 + 2100
    qr = data.query_arrays(MON, RoutingOptions(), rt, reverse=True)
    res = latest_departure(data.backward, qr, H8 + 2400, [3], [0], [0], [0])
    # Arrive at stop 3 by 08:40: a2 leaves at 08:20 (a1, arriving then too, leaves at 08:10).
    assert max(j.departure for j in res.journeys) == H8 + 1200


def test_hand_built_query_without_odd_copies_keeps_the_old_scan() -> None:
    """QueryArrays built by hand (no odd copies, no row flags) scan as before."""
    data = TransitData(_line().compile())
    q = data.query_arrays(MON, RoutingOptions())
    bare = dataclasses.replace(q, odd=None, row_fifo=None)
    assert isinstance(bare, QueryArrays)
    a = earliest_arrival(data.forward, bare, H8 + 1, [0], [0], [3], [0])
    assert _summary(a.journeys) == [(H8 + 600, H8 + 1500, ("1",))]

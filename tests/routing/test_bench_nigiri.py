"""The shared feed of the nigiri comparison (bench.router_nigiri), without pynigiri itself."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from bench import router_nigiri as rn
from gtfs import compile_timetable, read_feed
from gtfs.footpaths import Footpaths
from routing.raptor.journey import Journey, RideLeg, WalkLeg
from routing.transit import TransitData

CAIRNS = Path(__file__).resolve().parents[3] / "shared" / "data" / "gtfs" / "au_cairns.zip"


def test_shared_feed_states_change_times_and_closed_minute_footpaths(tmp_path: Path) -> None:
    feed = read_feed(CAIRNS)
    path = tmp_path / "shared.zip"
    rn.shared_feed(feed, path)
    tt = compile_timetable(read_feed(path), footpaths=Footpaths.empty())
    data = TransitData(tt)
    # Every stop: the 120 s change time of transfers.txt "from == to".
    assert (data.stop_change_s == rn.CHANGE_S).all()
    net = data.forward
    secs = net.transfer_s
    assert len(secs) > 0
    assert (secs % 60 == 0).all() and secs.min() >= rn.CHANGE_S and secs.max() <= rn.MAX_FOOT_S
    # Closed: no chain of two footpaths is shorter than the direct one (or missing).
    n = tt.n_stops
    src = np.repeat(np.arange(n), np.diff(net.transfer_ptr))
    g = csr_matrix((secs.astype(float), (src, net.transfer_to)), shape=(n, n))
    starts = np.unique(src)
    d = dijkstra(g, indices=starts, limit=rn.MAX_FOOT_S)
    assert int((np.isfinite(d) & (d > 0)).sum()) == len(secs)
    row = np.searchsorted(starts, src)
    assert np.array_equal(d[row, net.transfer_to], secs)


def test_blank_stop_times_are_found(tmp_path: Path) -> None:
    feed = read_feed(CAIRNS)
    tt = compile_timetable(feed, footpaths=Footpaths.empty())
    blank = rn.blank_stop_times(feed, tt)
    st = feed.tables["stop_times"]
    expected = int(((st["arrival_time"] == "") | (st["departure_time"] == "")).sum())
    assert expected > 0
    assert int(blank.sum()) == expected


def _journey(departure: int, arrival: int, rides: int) -> Journey:
    """``rides`` back-to-back rides from ``departure`` to ``arrival`` (``rides - 1`` transfers)."""
    step = (arrival - departure) // rides
    legs = tuple(
        RideLeg(0, 0, 1, 0, 1, departure + i * step, departure + (i + 1) * step, 0)
        for i in range(rides)
    )
    return Journey((*legs[:-1], dataclasses.replace(legs[-1], arrival=arrival)))


def test_range_answers_counted_under_nigiri_window_semantics() -> None:
    t0 = 8 * 3600
    end = t0 + rn.WINDOW_S
    inside = [
        _journey(t0 + 300, t0 + 1800, 1),  # kept: nothing after the window beats it
        _journey(t0 + 3000, t0 + 5400, 2),  # dropped: leaving at the end arrives sooner, 1 ride
        _journey(end, end + 900, 1),  # dropped: leaves at t0 + W (nigiri's window is half-open)
        _journey(t0 + 3300, t0 + 4870, 1),  # kept: arrives a minute before the later journey
    ]
    # The walk-only answer is no ride: it never drops anything.
    walk = Journey((WalkLeg(-1, -1, end, end + 60),))
    after = [_journey(end + 600, t0 + 4950, 1), walk]
    kept = rn.as_nigiri_window(inside, after, t0)
    assert kept == {(t0 // 60 + 5, t0 // 60 + 30, 0), (t0 // 60 + 55, -(-(t0 + 4870) // 60), 0)}
    # Without a later journey only the half-open end applies.
    assert len(rn.as_nigiri_window(inside, [], t0)) == 3

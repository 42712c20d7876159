"""The shared feed of the nigiri comparison (bench.router_nigiri), without pynigiri itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from bench import router_nigiri as rn
from gtfs import compile_timetable, read_feed
from gtfs.footpaths import Footpaths
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

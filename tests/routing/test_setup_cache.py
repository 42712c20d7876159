"""The realtime query set-up is built once per (realtime version, day, overlays, options).

:meth:`routing.transit.TransitData.query_arrays` with a ``realtime_version`` keeps the set-up in
a bounded, thread-safe LRU (:class:`routing.transit.QuerySetupCache`): a second query of the same
version reuses it, a new version (a realtime message) replaces it, and what the cache returns is
exactly what an uncached build gives.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from typing import Any

import numpy as np
import pytest

from gtfs.realtime import RealtimeState
from routing.options import RoutingOptions
from routing.planner import Planner, PlanPlace, PlanRequest
from routing.raptor import earliest_arrival
from routing.raptor.search import QueryArrays
from routing.transit import DAY, QuerySetupCache, TransitData, _owned_bytes
from tests.routing.tiny import TinyFeed, TinyTrip

MON = dt.date(2024, 1, 1)
TUE = MON + dt.timedelta(days=1)
WED = TUE + dt.timedelta(days=1)
# The night bus: stop 0 at 23:40, stop 1 at 24:02, stop 2 at 24:15, every day.
NIGHT = [23 * 3600 + 2400, 24 * 3600 + 120, 24 * 3600 + 900]
ARRAYS = ("active", "offsets", "st_arr", "st_dep", "st_board", "st_alight", "change_s")


@pytest.fixture
def data() -> TransitData:
    """A fresh timetable (and so an empty cache) per test."""
    return TransitData(TinyFeed(3, [TinyTrip("night", [0, 1, 2], NIGHT)]).compile())


def _overlays(data: TransitData, *, mon_delay: int = 0) -> list[RealtimeState]:
    """Scheduled overlays of Monday to Wednesday, Monday's run ``mon_delay`` seconds late."""
    out = [RealtimeState.scheduled(data.tt, d) for d in (MON, TUE, WED)]
    out[0].arrival[:] += mon_delay
    out[0].departure[:] += mon_delay
    return out


def _counts(cache: QuerySetupCache) -> dict[str, int]:
    """The cache's hit, miss and entry counts."""
    stats = cache.stats()
    del stats["bytes"]
    return stats


def _assert_same(a: QueryArrays, b: QueryArrays) -> None:
    for name in ARRAYS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for name in ("slack", "max_transfer_s", "fifo", "max_rides", "walk_factor"):
        assert getattr(a, name) == getattr(b, name), name
    for name in ("odd", "row_fifo"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None) and (x is None or np.array_equal(x, y)), name


def test_second_query_reuses_the_set_up(data: TransitData) -> None:
    rts = _overlays(data, mon_delay=300)
    opts = RoutingOptions()
    q1 = data.query_arrays(TUE, opts, rts, realtime_version=1)
    q2 = data.query_arrays(TUE, opts, rts, realtime_version=1)
    assert _counts(data.setup_cache) == {"hits": 1, "misses": 1, "entries": 1}
    # The same arrays, not a rebuild; equal to what an uncached query builds.
    assert q2.st_arr is q1.st_arr and q2.active is q1.active
    _assert_same(q2, data.query_arrays(TUE, opts, rts))
    # The kernels' scan sets are built once for the shared arrays too.
    assert q1.scan_sets(data.forward) is q2.scan_sets(data.forward)
    # Monday's late run past midnight: Tuesday 00:07 -> 00:20.
    res = earliest_arrival(data.forward, q2, 0, [1], [0], [2], [0])
    assert [(j.rides[0].day_offset, j.arrival) for j in res.journeys] == [(-DAY, 1200)]


def test_options_outside_the_key_are_the_querys_own(data: TransitData) -> None:
    rts = _overlays(data)
    q1 = data.query_arrays(TUE, RoutingOptions(), rts, realtime_version=1)
    slow = RoutingOptions(min_transfer_s=300, walk_speed_mps=0.6, max_transfers=1)
    q2 = data.query_arrays(TUE, slow, rts, realtime_version=1)
    assert data.setup_cache.stats()["hits"] == 1
    assert q2.st_dep is q1.st_dep
    assert (q2.slack, q2.max_rides) == (300, 2) and (q1.slack, q1.max_rides) == (0, 6)
    assert q2.walk_factor == 2 * q1.walk_factor
    assert int(q2.change_s.min()) == 300 and int(q1.change_s.min()) == 0
    _assert_same(q2, data.query_arrays(TUE, slow, rts))


@pytest.mark.parametrize(
    "other",
    [
        {"day": WED},
        {"options": RoutingOptions(wheelchair=True)},
        {"options": RoutingOptions(modes=frozenset({"RAIL"}))},
        {"reverse": True},
        {"drop": 0},  # Monday's overlay missing (its reader failed): another set of overlays
    ],
)
def test_what_shapes_the_arrays_gets_its_own_entry(data: TransitData, other: Any) -> None:
    rts = _overlays(data, mon_delay=300)
    data.query_arrays(TUE, RoutingOptions(), rts, realtime_version=1)
    day = other.get("day", TUE)
    opts = other.get("options", RoutingOptions())
    reverse = other.get("reverse", False)
    given = [rt for i, rt in enumerate(rts) if i != other.get("drop")]
    q = data.query_arrays(day, opts, given, reverse=reverse, realtime_version=1)
    assert data.setup_cache.stats()["entries"] == 2  # the mirrored one reused the forward one
    _assert_same(q, data.query_arrays(day, opts, given, reverse=reverse))


def test_arrive_by_set_up_mirrors_the_cached_forward_one(data: TransitData) -> None:
    rts = _overlays(data, mon_delay=300)
    opts = RoutingOptions()
    fwd = data.query_arrays(TUE, opts, rts, realtime_version=4)
    back = data.query_arrays(TUE, opts, rts, reverse=True, realtime_version=4)
    # One forward build (the mirrored one reused it) and one mirrored build.
    assert _counts(data.setup_cache) == {"hits": 1, "misses": 2, "entries": 2}
    assert back.st_arr is not fwd.st_arr
    _assert_same(back, data.query_arrays(TUE, opts, rts, reverse=True))
    again = data.query_arrays(TUE, opts, rts, reverse=True, realtime_version=4)
    assert again.st_arr is back.st_arr


def test_static_set_up_is_cached_too(data: TransitData) -> None:
    # A hub without any message still has a version: the schedule's arrays are shared too.
    opts = RoutingOptions()
    for reverse in (False, True):
        q1 = data.query_arrays(TUE, opts, None, reverse=reverse, realtime_version=0)
        q2 = data.query_arrays(TUE, opts, None, reverse=reverse, realtime_version=0)
        assert q2.active is q1.active
        _assert_same(q2, data.query_arrays(TUE, opts, reverse=reverse))
    assert _counts(data.setup_cache) == {"hits": 2, "misses": 2, "entries": 2}


def test_new_version_replaces_the_set_up_and_changes_the_answer(data: TransitData) -> None:
    opts = RoutingOptions()
    q = data.query_arrays(TUE, opts, _overlays(data), realtime_version=1)
    data.query_arrays(TUE, opts, _overlays(data), reverse=True, realtime_version=1)
    assert earliest_arrival(data.forward, q, 0, [1], [0], [2], [0]).journeys[0].arrival == 900
    # A message: Monday's run is 10 minutes late. Version 2 drops version 1's set-ups.
    late = _overlays(data, mon_delay=600)
    q = data.query_arrays(TUE, opts, late, realtime_version=2)
    assert _counts(data.setup_cache) == {"hits": 1, "misses": 3, "entries": 1}
    assert earliest_arrival(data.forward, q, 0, [1], [0], [2], [0]).journeys[0].arrival == 1500
    # A query that read its overlays before the message is answered from them, not kept.
    old = data.query_arrays(TUE, opts, _overlays(data), realtime_version=1)
    assert earliest_arrival(data.forward, old, 0, [1], [0], [2], [0]).journeys[0].arrival == 900
    assert _counts(data.setup_cache) == {"hits": 1, "misses": 4, "entries": 1}
    again = data.query_arrays(TUE, opts, late, realtime_version=2)
    assert again.st_arr is q.st_arr


def _fake(tag: int, n: int = 1) -> QueryArrays:
    """A set-up of ``n`` stop times (3 x n x 4 bytes of times each for arrival, departure)."""
    z = np.zeros((3, n), dtype=np.int32)
    return QueryArrays(
        active=np.zeros((1, 1), dtype=np.bool_),
        offsets=np.zeros(1, dtype=np.int32),
        st_arr=z,
        st_dep=z,
        st_board=np.ones((1, 1), dtype=np.bool_),
        st_alight=np.ones((1, 1), dtype=np.bool_),
        change_s=np.zeros(1, dtype=np.int32),
        slack=tag,
        max_transfer_s=0,
        fifo=True,
        max_rides=1,
    )


def test_lru_is_bounded() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        QuerySetupCache(0)
    cache = QuerySetupCache(2)
    built: list[str] = []

    def build(k: str) -> QueryArrays:
        built.append(k)
        return _fake(len(built))

    for k in ("a", "b", "a", "c", "a", "b"):
        cache.get(1, k, lambda k=k: build(k))  # type: ignore[misc]
    # "b" was the least recently used when "c" came, "c" when "b" came back.
    assert built == ["a", "b", "c", "b"]
    assert len(cache) == 2 and _counts(cache) == {"hits": 2, "misses": 4, "entries": 2}


def test_memory_is_bounded() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        QuerySetupCache(max_bytes=-1)
    size = _owned_bytes(_fake(0, 1000))
    assert size > 2 * 3 * 1000 * 4  # the times of three copies, arrival and departure
    assert (
        _owned_bytes(
            dataclasses.replace(
                _fake(0, 1000), st_arr=np.broadcast_to(np.zeros(1000, dtype=np.int32), (3, 1000))
            )
        )
        == size - 3 * 1000 * 4
    )  # a view: no memory
    cache = QuerySetupCache(max_bytes=2 * size + size // 2)
    built: list[str] = []

    def build(k: str, n: int = 1000) -> QueryArrays:
        built.append(k)
        return _fake(0, n)

    for k in ("a", "b"):
        cache.get(1, k, lambda k=k: build(k))  # type: ignore[misc]
    assert cache.stats()["bytes"] == 2 * size
    cache.get(1, "c", lambda: build("c"))  # over the budget: "a", the least recently used, goes
    assert cache.stats()["bytes"] == 2 * size
    cache.get(1, "b", lambda: build("b"))
    cache.get(1, "a", lambda: build("a"))
    assert built == ["a", "b", "c", "a"]
    # A set-up bigger than the whole budget is answered but neither kept nor evicting others.
    huge = cache.get(1, "huge", lambda: build("huge", 10_000))
    assert huge.st_arr.shape == (3, 10_000)
    assert _counts(cache)["entries"] == 2 and cache.stats()["bytes"] == 2 * size
    cache.get(1, "b", lambda: build("b"))
    assert built[-1] == "huge"  # "b" was still there
    # A newer version frees the older version's memory.
    cache.get(2, "a", lambda: build("a", 10))
    assert cache.stats() == {
        "hits": 2,
        "misses": 6,
        "entries": 1,
        "bytes": _owned_bytes(_fake(0, 10)),
    }


def test_a_failed_build_is_not_kept() -> None:
    cache = QuerySetupCache()

    def boom() -> QueryArrays:
        raise RuntimeError("overlay of another network")

    with pytest.raises(RuntimeError, match="another network"):
        cache.get(1, "k", boom)
    assert len(cache) == 0
    assert cache.get(1, "k", lambda: _fake(7)).slack == 7


def test_concurrent_queries_build_once_and_share_a_failure() -> None:
    cache = QuerySetupCache()
    calls: list[int] = []
    start = threading.Barrier(8)
    fail = threading.Event()

    def build() -> QueryArrays:
        calls.append(1)
        # Finish only once the 7 other threads have found the entry being built (a hit
        # each): a thread stalled past a fixed pause would come after a failed build and
        # rightly build again. Bounded, so a cache that never shares the build fails below.
        deadline = time.monotonic() + 60
        while cache.stats()["hits"] < hits_before + 7 and time.monotonic() < deadline:
            time.sleep(0.005)
        if fail.is_set():
            raise RuntimeError("failed build")
        return _fake(len(calls))

    def run(version: int, out: list[Any]) -> None:
        start.wait()
        try:
            out.append(cache.get(version, "k", build))
        except RuntimeError as exc:
            out.append(exc)

    for version, failing in ((1, False), (2, True)):
        if failing:
            fail.set()
        calls.clear()
        hits_before = cache.stats()["hits"]
        got: list[Any] = []
        threads = [threading.Thread(target=run, args=(version, got)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(calls) == 1 and len(got) == 8
        if failing:
            assert all(isinstance(g, RuntimeError) for g in got) and len(cache) == 0
        else:
            assert all(g is got[0] for g in got)


def test_planner_shares_the_set_up_between_queries(data: TransitData) -> None:
    planner = Planner(data)
    opts = RoutingOptions(max_walk_m=0)
    req = PlanRequest(PlanPlace(0, 0, stop=1), PlanPlace(0, 0, stop=2), TUE, 0, options=opts)
    rts = _overlays(data, mon_delay=300)
    first = planner.plan(req, rts, realtime_version=3)
    misses = data.setup_cache.stats()["misses"]
    second = planner.plan(req, rts, realtime_version=3)
    assert data.setup_cache.stats()["misses"] == misses
    assert [(i.start, i.end) for i in first.itineraries] == [
        (i.start, i.end) for i in second.itineraries
    ]
    assert first.itineraries[0].end == 1200
    by = planner.plan(
        dataclasses.replace(req, time_s=1500, arrive_by=True), rts, realtime_version=3
    )
    assert by.itineraries[0].start == 420
    late = _overlays(data, mon_delay=900)
    assert planner.plan(req, late, realtime_version=4).itineraries[0].end == 1800

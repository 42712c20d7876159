"""Property tests of pattern assignment on random trips."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gtfs.patterns import assign_patterns

SEQUENCES = [[0, 1, 2], [2, 1, 0], [0, 1, 2, 3], [4, 5]]


@st.composite
def trips(draw: st.DrawFn) -> tuple[list[int], list[list[int]], list[list[int]]]:
    n = draw(st.integers(1, 25))
    routes, stops, times = [], [], []
    for _ in range(n):
        k = draw(st.integers(0, len(SEQUENCES) - 1))
        seq = SEQUENCES[k]
        start = draw(st.integers(0, 20)) * 60
        hops = draw(st.lists(st.integers(0, 600), min_size=len(seq) - 1, max_size=len(seq) - 1))
        routes.append(k % 2)  # two routes share some sequences
        stops.append(seq)
        times.append(list(np.cumsum([start, *hops])))
    return routes, stops, times


@settings(max_examples=150, deadline=None)
@given(trips())
def test_patterns_never_overtake(data: tuple[list[int], list[list[int]], list[list[int]]]) -> None:
    routes, stops, times = data
    ptr = np.r_[0, np.cumsum([len(s) for s in stops])].astype(np.int64)
    flat_stops = np.concatenate(stops).astype(np.int32)
    t = np.concatenate(times).astype(np.int32)
    pattern, order = assign_patterns(np.array(routes, np.int32), ptr, flat_stops, t, t)
    assert sorted(order.tolist()) == list(range(len(stops)))
    assert (np.diff(pattern[order]) >= 0).all()  # order groups patterns contiguously
    for p in np.unique(pattern):
        members = [int(i) for i in order if pattern[i] == p]
        assert len({(routes[i], tuple(stops[i])) for i in members}) == 1
        for a, b in itertools.pairwise(members):
            assert all(x <= y for x, y in zip(times[a], times[b], strict=True))


def test_fifo_candidates_are_not_split() -> None:
    base = np.array([0, 300, 700], np.int32)
    n = 6
    t = np.concatenate([base + 600 * k for k in range(n)]).astype(np.int32)
    ptr = np.arange(0, 3 * n + 1, 3, dtype=np.int64)
    pattern, _ = assign_patterns(
        np.zeros(n, np.int32), ptr, np.tile([0, 1, 2], n).astype(np.int32), t, t
    )
    assert set(pattern.tolist()) == {0}


def _reference_candidates(route: np.ndarray, ptr: np.ndarray, key: np.ndarray) -> np.ndarray:
    """The plain definition: rows [route, keys...] made unique per length, in length order."""
    lengths = np.diff(ptr)
    cand = np.empty(len(route), np.int64)
    next_id = 0
    for length in np.unique(lengths):
        ts = np.flatnonzero(lengths == length)
        mat = np.column_stack([route[ts], key[ptr[ts][:, None] + np.arange(length)]])
        _, inv = np.unique(mat, axis=0, return_inverse=True)
        cand[ts] = inv.reshape(-1) + next_id
        next_id += int(inv.max()) + 1
    return cand


@settings(max_examples=100, deadline=None)
@given(trips(), st.booleans())
def test_candidates_match_the_lexicographic_definition_even_when_hashes_collide(
    data: tuple[list[int], list[list[int]], list[list[int]]], collide: bool
) -> None:
    from gtfs import patterns

    routes, stops, _ = data
    ptr = np.r_[0, np.cumsum([len(s) for s in stops])].astype(np.int64)
    key = np.concatenate(stops).astype(np.int64)
    route = np.array(routes, np.int64)
    want = _reference_candidates(route, ptr, key)
    real_hash = patterns._sequence_hash
    if collide:
        # Every trip hashes alike: groups must still come from comparing the sequences.
        patterns._sequence_hash = lambda r, p, k: np.zeros(len(r), np.uint64)  # type: ignore[assignment]
    try:
        got = patterns._candidates(route, ptr, np.diff(ptr), key)
    finally:
        patterns._sequence_hash = real_hash
    assert got.tolist() == want.tolist()

"""Stop pairs of transfers.txt expanded to a station's platforms (#15)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from gtfs.footpaths import station_member_pairs


def _by_merges(a0: list[int], b0: list[int], parent: list[int]) -> list[tuple[int, int, int]]:
    """The definition: two inner merges with (stop, member) rows, every stop its own member
    first, then each child under its parent."""
    n = len(parent)
    kids = [i for i in range(n) if parent[i] >= 0]
    members = pd.DataFrame({"stop": list(range(n)) + [parent[i] for i in kids],
                            "member": list(range(n)) + kids})  # fmt: skip
    pairs = pd.DataFrame({"a0": a0, "b0": b0, "i": range(len(a0))})
    pairs = pairs.merge(members.rename(columns={"stop": "a0", "member": "a"}), on="a0")
    pairs = pairs.merge(members.rename(columns={"stop": "b0", "member": "b"}), on="b0")
    return list(zip(pairs["i"], pairs["a"], pairs["b"], strict=True))


@st.composite
def _network(draw: st.DrawFn) -> tuple[list[int], list[int], list[int]]:
    n = draw(st.integers(1, 12))
    parent = [draw(st.sampled_from([-1, *[p for p in range(n) if p != i]])) for i in range(n)]
    m = draw(st.integers(0, 10))
    a0 = draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    b0 = draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    return a0, b0, parent


@settings(max_examples=200, deadline=None)
@given(_network())
def test_expansion_equals_the_merge_definition(net: tuple[list[int], list[int], list[int]]) -> None:
    a0, b0, parent = net
    pair, a, b = station_member_pairs(a0, b0, np.array(parent, np.int32))
    got = list(zip(pair.tolist(), a.tolist(), b.tolist(), strict=True))
    assert got == [(int(i), int(x), int(y)) for i, x, y in _by_merges(a0, b0, parent)]


def test_station_stands_for_its_platforms() -> None:
    # Stop 0 is a station with platforms 2 and 1; stop 3 stands alone.
    parent = np.array([-1, 0, 0, -1], np.int32)
    pair, a, b = station_member_pairs([0, 3], [3, 0], parent)
    assert pair.tolist() == [0, 0, 0, 1, 1, 1]
    assert a.tolist() == [0, 1, 2, 3, 3, 3]
    assert b.tolist() == [3, 3, 3, 0, 1, 2]
    # Without stations the pairs come back as they are.
    pair, a, b = station_member_pairs([2, 1], [0, 3], np.full(4, -1, np.int32))
    assert (pair.tolist(), a.tolist(), b.tolist()) == ([0, 1], [2, 1], [0, 3])

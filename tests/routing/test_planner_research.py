"""A search again in full re-runs McRAPTOR alone (#10): the range and earliest-arrival
searches, which McRAPTOR's cut does not change, and the candidates built of their journeys
are those of the cut search; the plans are the same as before."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import pytest

import routing.planner as planner_module
from routing.itinerary import to_otp
from routing.planner import Planner
from tests.routing.conftest import FeedCase
from tests.routing.test_planner_bound import DAY, _requests


def test_search_again_in_full_runs_only_mcraptor_again(
    muroran: FeedCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    cut = Planner(muroran.data)
    full = Planner(muroran.data)
    full.bound_mc = False  # one unbounded search: the answer, and the searches one needs
    calls: Counter[str] = Counter()
    for name in ("range_query", "earliest_arrival", "mc_raptor"):
        real = getattr(planner_module, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(planner_module, name, spy)
    searched_again = 0
    for req in _requests(muroran, 80):
        if req.arrive_by:
            continue
        calls.clear()
        b = full.plan(req)
        want = dict(calls)
        calls.clear()
        a = cut.plan(req)
        got = dict(calls)
        if got.get("mc_raptor", 0) == 2:
            searched_again += 1
        assert got.get("mc_raptor", 0) in (want.get("mc_raptor", 0), 2 * want["mc_raptor"])
        assert got.get("range_query") == want.get("range_query"), req
        assert got.get("earliest_arrival") == want.get("earliest_arrival"), req
        assert (a.error, len(a.itineraries)) == (b.error, len(b.itineraries)), req
        for x, y in zip(a.itineraries, b.itineraries, strict=True):
            assert x.legs == y.legs
            assert dataclasses.replace(x, journey=None) == dataclasses.replace(y, journey=None)
            assert to_otp(x, DAY, "Asia/Tokyo") == to_otp(y, DAY, "Asia/Tokyo")
    assert searched_again >= 3  # the case this is about did happen

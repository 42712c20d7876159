"""McRAPTOR's search cut at the arrival that can still matter gives the same plans (#10)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from typing import Any

import pytest

import routing.planner as planner_module
from routing.options import RoutingOptions
from routing.planner import Planner, PlanPlace, PlanRequest
from tests.routing.conftest import FeedCase

DAY = dt.date(2020, 6, 1)


@pytest.fixture(scope="module")
def planners(muroran: FeedCase) -> tuple[Planner, Planner]:
    cut = Planner(muroran.data)
    full = Planner(muroran.data)
    full.bound_mc = False
    return cut, full


def _requests(case: FeedCase, n: int) -> list[PlanRequest]:
    rng = random.Random(5)
    tt = case.tt
    out = []
    for _ in range(n):
        a, b = rng.randrange(tt.n_stops), rng.randrange(tt.n_stops)

        def place(i: int) -> PlanPlace:
            if rng.random() < 0.5:
                return PlanPlace(float(tt.stop_lat[i]), float(tt.stop_lon[i]), stop=i)
            return PlanPlace(
                float(tt.stop_lat[i]) + rng.uniform(-0.003, 0.003),
                float(tt.stop_lon[i]) + rng.uniform(-0.004, 0.004),
            )

        opts = RoutingOptions(
            num_itineraries=rng.choice([1, 2, 3, 5]),
            max_transfers=rng.choice([1, 5]),
            max_walk_m=rng.choice([500.0, 1000.0]),
            max_travel_s=rng.choice([0, 0, 3600]),
        )
        t = rng.randint(5, 22) * 3600 + rng.randint(0, 59) * 60
        out.append(PlanRequest(place(a), place(b), DAY, t, rng.random() < 0.2, opts))
    return out


def test_cut_search_plans_as_the_full_one(
    planners: tuple[Planner, Planner], muroran: FeedCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    cut, full = planners
    bounds: list[int | None] = []
    real = planner_module.mc_raptor

    def spy(*args: Any, **kwargs: Any) -> Any:
        bounds.append(kwargs.get("max_arrival"))
        return real(*args, **kwargs)

    monkeypatch.setattr(planner_module, "mc_raptor", spy)
    compared = 0
    for req in _requests(muroran, 60):
        a, b = cut.plan(req), full.plan(req)
        assert (a.error, len(a.itineraries)) == (b.error, len(b.itineraries)), req
        for x, y in zip(a.itineraries, b.itineraries, strict=True):
            assert x.legs == y.legs, req
            assert dataclasses.replace(x, journey=None) == dataclasses.replace(y, journey=None)
        compared += len(a.itineraries)
    assert compared > 60
    # The cut was applied to most searches (and not to the full planner's).
    cut_at = [x for x in bounds if x is not None]
    assert len(cut_at) > len(bounds) // 4


def test_no_cut_with_co2_or_healthier(planners: tuple[Planner, Planner], muroran: FeedCase) -> None:
    cut, _ = planners
    tt = muroran.tt
    o = PlanPlace(float(tt.stop_lat[257]), float(tt.stop_lon[257]), stop=257)
    d = PlanPlace(float(tt.stop_lat[287]), float(tt.stop_lon[287]), stop=287)
    for opts in (RoutingOptions(optimize_co2=True), RoutingOptions(healthier_s=600)):
        req = PlanRequest(o, d, DAY, 8 * 3600, False, opts)
        a_stops, a_secs = cut._access(o, opts)
        e_stops, e_secs = cut._access(d, opts)
        _, bound = cut._searched(req, a_stops, a_secs, e_stops, e_secs, None, None, True)
        assert bound is None
    req = PlanRequest(o, d, DAY, 8 * 3600)
    a_stops, a_secs = cut._access(o, req.options)
    e_stops, e_secs = cut._access(d, req.options)
    _, bound = cut._searched(req, a_stops, a_secs, e_stops, e_secs, None, None, True)
    assert bound is not None and bound > 8 * 3600

"""McRAPTOR's target pruning (lower bounds towards the targets) keeps its answers (#10)."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import numpy as np
import pytest

import routing.raptor.mcraptor as mcraptor_module
from routing.options import RoutingOptions
from routing.raptor.mcraptor import mc_raptor
from tests.routing.conftest import FeedCase

DAY = dt.date(2020, 6, 1)


def _pool_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of labels of every McRAPTOR kernel run from now on."""
    sizes: list[int] = []
    real = mcraptor_module.mc_kernel

    def spy(*args: Any) -> int:
        n = int(real(*args))
        sizes.append(n)
        return n

    monkeypatch.setattr(mcraptor_module, "mc_kernel", spy)
    return sizes


def test_pruned_and_unpruned_answers_are_identical(
    muroran: FeedCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random queries (several origins and targets with walks, transfer limits, CO2 as a
    criterion, a latest arrival): the same journeys, in the same order, with and without
    pruning; and pruning does drop labels."""
    tt = muroran.tt
    data = muroran.data
    rng = random.Random(11)
    sizes = _pool_sizes(monkeypatch)
    pruned_labels = full_labels = 0
    found = 0
    for i in range(60):
        opts = RoutingOptions(max_transfers=rng.choice([0, 1, 3, 5]))
        q = data.query_arrays(DAY, opts)
        n_a, n_e = rng.choice([1, 1, 3]), rng.choice([1, 1, 3])
        a_stops = rng.sample(range(tt.n_stops), n_a)
        e_stops = rng.sample(range(tt.n_stops), n_e)
        a_secs = [rng.choice([0, 0, 120, 400]) for _ in a_stops]
        e_secs = [rng.choice([0, 0, 90, 300]) for _ in e_stops]
        t0 = rng.randint(5, 21) * 3600 + rng.randint(0, 3599)
        co2 = data.pattern_co2 if i % 4 == 0 else None
        latest = t0 + rng.choice([2, 4]) * 3600 if co2 is not None or i % 3 == 0 else None
        args = (data.forward, q, t0, a_stops, a_secs, e_stops, e_secs)
        kw: dict[str, object] = {"pattern_co2": co2, "max_arrival": latest}
        sizes.clear()
        on = mc_raptor(*args, prune=True, **kw)  # type: ignore[arg-type]
        pruned_labels += sum(sizes)
        sizes.clear()
        off = mc_raptor(*args, prune=False, **kw)  # type: ignore[arg-type]
        full_labels += sum(sizes)
        assert on == off, (i, a_stops, e_stops, t0)
        found += len(on)
    assert found > 60
    assert pruned_labels < full_labels


def test_given_lower_bounds_are_used_and_checked(muroran: FeedCase) -> None:
    """The caller's bounds give the answer computed ones do; a wrong-sized array is refused;
    an origin that cannot reach the target answers at once with no journey."""
    data = muroran.data
    q = data.query_arrays(DAY, RoutingOptions())
    n = muroran.tt.n_stops
    egress = np.full(n, -1, dtype=np.int32)
    egress[7] = 0
    access = np.full(n, -1, dtype=np.int32)
    access[120] = 0
    lb = q.lower_bounds(data.forward, egress, access)
    t0 = 8 * 3600
    assert mc_raptor(data.forward, q, t0, [120], [0], [7], [0], lower_bound=lb) == mc_raptor(
        data.forward, q, t0, [120], [0], [7], [0], prune=False
    )
    with pytest.raises(ValueError, match="one value per stop"):
        mc_raptor(data.forward, q, t0, [120], [0], [7], [0], lower_bound=lb[:-1])
    # Bounds saying no stop reaches the target: nothing is searched.
    nowhere = np.full(n, 2**30, dtype=np.int32)
    assert mc_raptor(data.forward, q, t0, [120], [0], [7], [0], lower_bound=nowhere) == []


def test_one_plan_computes_its_bounds_once(
    muroran: FeedCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A depart-at /plan's searches (range, earliest arrivals, McRAPTOR) share one backward
    Dijkstra between the same stops; other targets get their own bounds."""
    from routing.planner import Planner, PlanPlace, PlanRequest
    from routing.raptor import bounds

    calls: list[int] = []
    real = bounds.backward_dijkstra

    def spy(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(bounds, "backward_dijkstra", spy)
    with bounds._memo_lock:
        bounds._memo.clear()
    tt = muroran.tt
    planner = Planner(muroran.data)

    def place(i: int) -> PlanPlace:
        return PlanPlace(float(tt.stop_lat[i]), float(tt.stop_lon[i]), stop=i)

    opts = RoutingOptions(num_itineraries=3)
    plan = planner.plan(PlanRequest(place(120), place(7), DAY, 8 * 3600, False, opts))
    assert plan.error is None and plan.itineraries
    assert len(calls) == 1
    data = muroran.data
    q = data.query_arrays(DAY, opts)
    egress = np.full(tt.n_stops, -1, dtype=np.int32)
    egress[7] = 0
    first = q.lower_bounds(data.forward, egress)
    assert q.lower_bounds(data.forward, egress) is first
    egress[7] = 60  # another target's seconds: computed anew, and 60 s further
    other = q.lower_bounds(data.forward, egress)
    assert other is not first
    assert (other[first < bounds.BIG] == first[first < bounds.BIG] + 60).all()

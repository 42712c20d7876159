"""``bench.darp``'s rows: a run that serves nothing or leaves requests out shows no gap."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench import darp
from dispatch.instances import read_cordeau
from dispatch.problem import Solution


def test_a_run_serving_nothing_prints_unserved_not_a_minus_100_percent_gap(
    shared_data: Path,
) -> None:
    p = read_cordeau(shared_data / "darp" / "cordeau2006_a" / "a2-16.txt")
    n = p.n_requests
    nothing = Solution(
        routes=[[] for _ in range(p.n_vehicles)],
        times=[np.zeros(2) for _ in range(p.n_vehicles)],  # start and end of an unused van
        unserved=list(range(n)),
        unserved_reasons={r: "dropped" for r in range(n)},
        solver="ortools",
    )
    s = darp._summary(p, nothing, 1.0, best=294.25)
    assert s["served"] == 0 and s["unserved"] == n and s["gap_pct"] is None
    assert s["feasible"]  # dropping every request breaks no rule; it is just no answer
    cells = darp._cost_gap_cells(s)
    assert cells.split() == ["unserved", "n.a."] and "-100" not in cells
    assert len(cells) == len(darp._cost_gap_cells({**s, "served": n, "gap_pct": 1.5}))


def test_cells_of_a_run_serving_all_or_some() -> None:
    served = {"served": 16, "unserved": 0, "cost": 301.2341, "gap_pct": 2.37}
    assert darp._cost_gap_cells(served) == "  301.234   2.37"
    partial = {**served, "served": 15, "unserved": 1, "gap_pct": None}
    assert darp._cost_gap_cells(partial).split() == ["301.234", "n.a."]

"""``python -m bench.darp`` runs end to end on a tiny selection and writes its JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import darp
from tests.dispatch.test_problem import two_speed_problem


def test_bench_darp_writes_rows(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "darp.json"
    darp.main(
        [
            "--instances",
            "a2-16,lc101",
            "--time-limit",
            "1",
            "--baseline-time-limit",
            "1",
            "--lilim-time-limit",
            "1",
            "--json",
            str(out),
        ]
    )
    data = json.loads(out.read_text())
    (row,) = data["cordeau"]
    assert row["instance"] == "a2-16" and row["alns"]["feasible"]
    assert row["alns"]["gap_pct"] is not None and data["mean_gap_pct"] == row["alns"]["gap_pct"]
    assert data["all_served"] is True
    (ll,) = data["lilim"]
    assert ll["alns"]["unserved"] == 0 and ll["pyvrp"]["vehicles"] >= 1


def test_pyvrp_comparison_refuses_several_travel_profiles() -> None:
    with pytest.raises(ValueError, match="single travel profile"):
        darp._pyvrp(two_speed_problem("window"), time_limit=0.1)

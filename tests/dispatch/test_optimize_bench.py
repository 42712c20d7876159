"""``python -m bench.darp`` runs end to end on a tiny selection and writes its JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import darp
from dispatch.problem import Problem, Solution
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


def test_all_served_needs_rows_and_counts_every_family(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "none.json"
    darp.main(["--instances", "no-such-instance", "--json", str(out)])
    assert json.loads(out.read_text())["all_served"] is False  # nothing ran: nothing proven

    real = darp._summary

    def one_dropped(p: Problem, sol: Solution, secs: float, bk: float | None) -> dict[str, Any]:
        return {**real(p, sol, secs, bk), "unserved": 1}

    monkeypatch.setattr(darp, "_summary", one_dropped)
    monkeypatch.setattr(
        darp, "_pyvrp", lambda p, t: {"vehicles": 1, "distance": 0.0, "feasible": True}
    )
    out = tmp_path / "lilim.json"
    darp.main(["--instances", "lc101", "--lilim-time-limit", "1", "--json", str(out)])
    data = json.loads(out.read_text())
    assert data["cordeau"] == [] and data["lilim"][0]["alns"]["unserved"] == 1
    assert data["all_served"] is False


def test_pyvrp_comparison_refuses_several_travel_profiles() -> None:
    with pytest.raises(ValueError, match="single travel profile"):
        darp._pyvrp(two_speed_problem("window"), time_limit=0.1)

"""``python -m bench.darp --set``: the Cordeau & Laporte 'pr' family and the family filter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import darp


def test_bench_darp_pr_set_writes_rows(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "pr.json"
    darp.main(
        [
            "--set",
            "pr",
            "--instances",
            "pr01,a2-16,lc101",  # only pr01 is in the 'pr' family
            "--time-limit",
            "1",
            "--baseline-time-limit",
            "1",
            "--json",
            str(out),
        ]
    )
    data = json.loads(out.read_text())
    assert data["cordeau"] == [] and data["lilim"] == []
    (row,) = data["pr"]
    assert row["instance"] == "pr01" and row["requests"] == 24
    assert row["alns"]["feasible"] and row["alns"]["unserved"] == 0
    served = sorted(node for route in row["alns"]["routes"] for node in route)
    assert served == list(range(1, 49))  # the plan is written: 24 pickups, 24 deliveries
    assert data["pr_mean_gap_pct"] == data["pr_alns_max_gap_pct"] == row["alns"]["gap_pct"]
    assert data["pr_alns_all_feasible"] is True and data["all_served"] is True
    assert data["workers"] == 2 and data["share_every"] == 0.1  # the searches share by default


def test_sets_parse_and_refuse_unknown_names() -> None:
    assert darp._sets("all") == ["a", "pr", "lilim"]
    assert darp._sets("a, pr") == ["a", "pr"]
    with pytest.raises(ValueError, match="bogus"):
        darp._sets("pr,bogus")
    with pytest.raises(SystemExit):
        darp.main(["--set", "bogus"])
    with pytest.raises(SystemExit):
        darp.main(["--set", "pr", "--share-every", "1.5"])

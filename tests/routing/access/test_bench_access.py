"""bench.access --quick runs, and its batch agrees with the one-query-at-a-time baseline."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.access import main


@pytest.mark.slow
def test_quick_bench(tmp_path: Path) -> None:
    out = main(["--quick", "--json", str(tmp_path / "a.json")])
    assert out["network"] == "cairns_x2" and out["cells"] > 500 and out["departures"] == 12
    assert out["baseline_mismatches"] == 0
    assert out["pairs_reached"] > 0 and out["speedup"] is not None
    assert (tmp_path / "a.json").exists()

"""``python -m bench.emissions`` at a small size: the report and the per-row baseline agree,
the commute totals equal the trip-mode rows' sums, and recording a trip is timed."""

from __future__ import annotations

import json
from pathlib import Path

from bench import emissions


def test_small_bench_agrees_with_baseline(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = ["--employees", "40", "--sqlite", "--record-trips", "10", "--json", str(out)]
    assert emissions.main(argv) == 0
    figures = json.loads(out.read_text())
    assert figures["employees"] == 40 and figures["trips"] > 1000
    assert figures["same_total"] and figures["co2_kg"] == figures["baseline_co2_kg"]
    assert figures["co2_kg"] > 0 and figures["report_s"] > 0 and figures["report_peak_mb"] > 0
    assert figures["same_cells"] and figures["commute_total_rows"] > 0
    assert figures["recorded_trips"] == 10 and figures["record_ms"] > 0
    assert figures["record_without_totals_ms"] > 0

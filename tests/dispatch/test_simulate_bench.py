"""``python -m bench.simulate``: invariants checked at every step by default, optionally not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import simulate


def _fake_kpis(checked: bool) -> dict[str, Any]:
    return {
        "requests": 10,
        "served": 9,
        "service_rate": 0.9,
        "mean_wait_min": 5.0,
        "p95_wait_min": 9.0,
        "mean_detour": 1.2,
        "vehicle_km": 100.0,
        "empty_km_share": 0.3,
        "passengers_per_vehicle_hour": 2.0,
        "reoptimisations_applied": 0,
        "violations": 0,
        "wall_s": 1.0,
        "checked_every_step": checked,
    }


@pytest.mark.parametrize(
    ("argv", "expected"),
    [([], True), (["--check-every-step"], True), (["--no-check-every-step"], False)],
)
def test_check_every_step_option_reaches_the_simulator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str], expected: bool
) -> None:
    seen: list[bool] = []

    def fake_run(*args: Any) -> dict[str, Any]:
        seen.append(args[-1])
        return _fake_kpis(args[-1])

    monkeypatch.setattr(simulate, "run", fake_run)
    out = tmp_path / "sim.json"
    simulate.main([*argv, "--json", str(out)])
    assert seen == [expected, expected]  # insertion, then insertion + re-optimisation
    assert json.loads(out.read_text())["insertion"]["checked_every_step"] is expected


def test_a_small_day_checked_at_every_step_has_no_violation(shared_data: Path) -> None:
    # 2 requests an hour per zone, one van each: a few dozen rides, every step checked.
    r = simulate.run(False, 2.0, 1, 3, False, 900.0, 0.5, check_every_step=True)
    assert r["checked_every_step"] is True and r["requests_generated"] > 0
    assert r["violations"] == 0 and r["served"] > 0

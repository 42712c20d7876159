"""The demo city's figure: Muroran residents within 30 minutes of an emergency hospital, by bus
and with the demo on-demand zone (python -m app.planning.demo)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.planning.demo import hospital_access


@pytest.mark.slow
def test_muroran_emergency_hospital_access(shared_data: Path) -> None:
    out = hospital_access(shared_data / "planning", minutes=30)
    # The 2010 census counted 94,535 people in Muroran; the box holds its mesh cells.
    assert 90_000 < out["residents"] < 100_000
    w, z = out["without_zone"], out["with_zone"]
    assert w["residents"] == z["residents"] == out["residents"]
    assert 0 < w["share"] <= z["share"] < 1
    assert out["gain_residents"] == z["reached"] - w["reached"] >= 0
    # The zone (Higashi-Muroran) covers part of the city.
    assert 0 < out["residents_in_zone"] < out["residents"]

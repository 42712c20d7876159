"""Vehicle profiles and time-of-day speed factors."""

from __future__ import annotations

import pytest

from routing.street import CAR, DEFAULT_PEAKS, FREE_FLOW, SHUTTLE, VAN, TimeOfDaySpeeds
from routing.street.profiles import VehicleProfile


def test_default_peaks() -> None:
    tod = TimeOfDaySpeeds(DEFAULT_PEAKS)
    assert tod.factor(None) == 1.0
    assert tod.factor(6 * 3600 + 3599) == 1.0
    assert tod.factor(7 * 3600) == 0.7
    assert tod.factor(9 * 3600 - 1) == 0.7
    assert tod.factor(9 * 3600) == 1.0
    assert tod.factor(18 * 3600) == 0.7
    # GTFS times past midnight wrap: 31:30 is 07:30 the next morning.
    assert tod.factor(31 * 3600 + 1800) == 0.7
    assert FREE_FLOW.factor(8 * 3600) == 1.0


@pytest.mark.parametrize(
    "window", [(9 * 3600, 7 * 3600, 0.7), (0, 90_000, 0.7), (0, 3600, 0.0), (-1, 5, 1.0)]
)
def test_bad_windows(window: tuple[int, int, float]) -> None:
    with pytest.raises(ValueError, match="bad speed window"):
        TimeOfDaySpeeds((window,))


def test_profiles() -> None:
    assert 12 <= SHUTTLE.max_speed_kmh <= 20
    assert "residential" not in SHUTTLE.barred_highways
    assert "living_street" not in SHUTTLE.barred_highways
    assert "motorway" in SHUTTLE.barred_highways
    assert CAR.max_speed_kmh > VAN.max_speed_kmh > SHUTTLE.max_speed_kmh
    with pytest.raises(ValueError, match="positive"):
        VehicleProfile("bad", max_speed_kmh=0)
    with pytest.raises(ValueError, match="unknown highway"):
        VehicleProfile("bad", max_speed_kmh=10, barred_highways=frozenset({"autobahn"}))

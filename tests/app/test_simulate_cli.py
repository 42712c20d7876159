"""``tsunagu simulate``: a short simulated morning in the real CobbLinc GTFS-Flex zones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app import cli
from app.settings import Settings
from tests.app.conftest import settings_for


@pytest.fixture
def settings(tmp_path: Path, shared_data: Path) -> Settings:
    return settings_for(tmp_path / "data", shared_data_dir=shared_data)


def test_simulate_a_morning_in_the_flex_zones(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kpis.json"
    argv = ["simulate", "--rate", "4", "--vans", "2", "--from", "08:00", "--to", "09:00"]
    assert (
        cli.main(
            [*argv, "--reopt-every", "1800", "--reopt-limit", "0.2", "--json", str(out)],
            settings=settings,
        )
        == 0
    )
    kpis = json.loads(out.read_text())
    assert kpis["zones"] == ["zone_1", "zone_2", "zone_3"]
    assert kpis["requests"] == kpis["requests_generated"] > 0
    # Every request is either served or rejected with a reason; none lost or served twice.
    assert kpis["served"] + sum(kpis["rejected"].values()) == kpis["requests"]
    assert kpis["problems"] == []
    assert kpis["served"] > 0 and kpis["vehicle_km"] > 0
    printed = capsys.readouterr().out
    assert f"{kpis['requests']} requests: served {kpis['served']}" in printed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "25:99"], "not a time of day"),
        (["--from", "10:00", "--to", "09:00"], "--to must be after --from"),
        (["--vans", "0"], "--vans >= 1"),
        (["--feed", "/nonexistent/flex.zip"], "no such feed"),
        (["--feed", "{muroran}"], "no GTFS-Flex polygon zone"),
        (["--peaks", "08:00-09:00=0.7,08:30-10:00=0.5"], "overlap"),
        (["--peaks", "08:00-09:00=0"], "the factor must be a positive number"),
        (["--peaks", "8am-9am=0.7"], "'8am' is not a time"),
    ],
)
def test_simulate_bad_arguments(
    settings: Settings,
    shared_data: Path,
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    muroran = str(shared_data / "gtfs" / "jp_donan_bus_muroran.zip")
    args = [a.replace("{muroran}", muroran) for a in args]
    assert cli.main(["simulate", *args], settings=settings) == 2
    assert message in capsys.readouterr().err


def test_simulate_a_morning_through_the_rush_hour(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kpis.json"
    argv = ["simulate", "--rate", "4", "--vans", "2", "--from", "08:00", "--to", "09:00"]
    peaks = ["--peaks", "07:00-08:30=0.6,08:45-10:00=0.8", "--no-reopt", "--json", str(out)]
    assert cli.main([*argv, *peaks], settings=settings) == 0
    kpis = json.loads(out.read_text())
    assert kpis["speed_windows"] == [[25_200, 30_600, 0.6], [31_500, 36_000, 0.8]]
    # The vehicles drove through the peaks and every promise held.
    assert kpis["problems"] == []
    assert kpis["served"] > 0
    assert kpis["served"] + sum(kpis["rejected"].values()) == kpis["requests"]

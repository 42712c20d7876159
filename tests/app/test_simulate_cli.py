"""``tsunagu simulate``: a short simulated morning in the real CobbLinc GTFS-Flex zones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


_SMALL = ["simulate", "--rate", "6", "--vans", "2", "--from", "08:00", "--to", "09:00"]


def _kpis_without_timing(path: Path) -> dict[str, Any]:
    kpis = json.loads(path.read_text())
    kpis.pop("wall_s")  # wall-clock time is the one thing a rerun may change
    return dict(kpis)


@pytest.mark.parametrize(
    "reopt",
    [["--no-reopt"], ["--reopt-every", "1200", "--alns-iterations", "40"]],
    ids=["insertion", "alns-reopt"],
)
def test_same_seed_same_kpis_and_a_replayed_day_matches(
    settings: Settings, tmp_path: Path, reopt: list[str]
) -> None:
    day = tmp_path / "day.csv"
    runs = [tmp_path / f"run{k}.json" for k in range(3)]
    write = ["--write-requests", str(day)]
    assert cli.main([*_SMALL, *reopt, *write, "--json", str(runs[0])], settings=settings) == 0
    assert cli.main([*_SMALL, *reopt, "--json", str(runs[1])], settings=settings) == 0
    # The replay ignores --rate and the seed's demand: the CSV is the day.
    replay = [*_SMALL, "--rate", "99", *reopt, "--requests", str(day), "--json", str(runs[2])]
    assert cli.main(replay, settings=settings) == 0
    first = _kpis_without_timing(runs[0])
    assert first["requests"] == len(day.read_text().splitlines()) - 1 > 10
    if "--alns-iterations" in reopt:
        assert first["reoptimisations_applied"] > 0
    assert _kpis_without_timing(runs[1]) == first
    assert _kpis_without_timing(runs[2]) == first


def _bad_csv(tmp_path: Path, case: str) -> Path:
    header = (
        "request_id,requested_at,earliest_pickup,origin_lat,origin_lon,"
        "destination_lat,destination_lon,seats,wheelchairs"
    )
    good = "a,28000,29000,33.86,-84.64,33.87,-84.67,1,0"
    rows = {
        "missing_column": "request_id,requested_at\na,1\n",
        "not_a_number": f"{header}\n{good}\nb,28000,29000,north,-84.64,33.87,-84.67,1,0\n",
        "duplicate": f"{header}\n{good}\n{good}\n",
    }
    p = tmp_path / "bad.csv"
    p.write_text(rows[case])
    return p


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_column", "missing columns ['destination_lat'"),
        ("not_a_number", "bad.csv:3: column 'origin_lat': 'north' is not a finite number"),
        ("duplicate", "bad.csv:3: column 'request_id': 'a' repeats line 2"),
        ("no_file", "no such requests file"),
    ],
)
def test_simulate_refuses_a_bad_requests_csv(
    settings: Settings,
    tmp_path: Path,
    case: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "none.csv" if case == "no_file" else _bad_csv(tmp_path, case)
    assert cli.main([*_SMALL, "--requests", str(path)], settings=settings) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alns-iterations", "0"], "--alns-iterations must be >= 1"),
        (["--write-requests", "/nonexistent/dir/day.csv"], "cannot write the requests file"),
    ],
)
def test_simulate_bad_replay_options(
    settings: Settings, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*_SMALL, "--no-reopt", *args], settings=settings) == 2
    assert message in capsys.readouterr().err


def test_requests_and_write_requests_exclude_each_other(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    both = ["--requests", str(tmp_path / "a.csv"), "--write-requests", str(tmp_path / "b.csv")]
    with pytest.raises(SystemExit) as exc:
        cli.main([*_SMALL, *both], settings=settings)
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_help_documents_the_csv_columns(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for column in ("request_id", "requested_at", "earliest_pickup", "origin_lat", "wheelchairs"):
        assert column in text

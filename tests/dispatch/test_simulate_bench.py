"""``python -m bench.simulate``: invariants checked at every step by default, optionally not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import simulate
from dispatch.request import RideRequest
from dispatch.simulation.demand import read_requests_csv, write_requests_csv


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

    def fake_run(*args: Any, **kwargs: Any) -> dict[str, Any]:
        seen.append(args[-1])
        assert len(kwargs["requests"]) > 0  # the generated day, the same for both runs
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


def _without_timing(kpis: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kpis.items() if k != "wall_s"}  # wall time may change on a rerun


def test_same_seed_same_kpis_and_a_replayed_csv_gives_the_same(
    shared_data: Path, tmp_path: Path
) -> None:
    # 1.5 requests an hour per zone, two vans each: a few dozen rides, enough to re-optimise.
    day = simulate.generate_day(1.5, 5)
    assert 10 < len(day) < 80
    path = tmp_path / "day.csv"
    write_requests_csv(day, path)
    replay = read_requests_csv(path)
    for reopt in (False, True):
        runs = [
            simulate.run(
                reopt,
                1.5,
                2,
                5,
                False,
                1800.0,
                0.1,
                "alns",
                30,
                check_every_step=False,
                requests=requests,
            )
            for requests in (None, None, replay)
        ]
        first = _without_timing(runs[0])
        assert first["requests_generated"] == len(day) and first["violations"] == 0
        assert (first["reoptimisations_applied"] > 0) is reopt
        assert _without_timing(runs[1]) == first
        assert _without_timing(runs[2]) == first


def test_main_writes_then_replays_the_day(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    days: list[list[RideRequest]] = []

    def fake_run(*args: Any, **kwargs: Any) -> dict[str, Any]:
        days.append(kwargs["requests"])
        assert args[7:9] == ("alns", 25)  # --alns-iterations implies the ALNS solver
        return _fake_kpis(True)

    monkeypatch.setattr(simulate, "run", fake_run)
    path = tmp_path / "day.csv"
    simulate.main(["--rate", "1", "--alns-iterations", "25", "--write-requests", str(path)])
    simulate.main(["--rate", "50", "--alns-iterations", "25", "--requests", str(path)])
    assert f"wrote {len(days[0])} requests" in capsys.readouterr().out
    # The replay reads back the generated day (ids, times and places), whatever --rate says.
    assert [(r.request_id, r.departure, r.origin) for r in days[2]] == [
        (r.request_id, r.departure, r.origin) for r in days[0]
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--requests", "{tmp}/none.csv"], "no such requests file"),
        (["--requests", "{tmp}/bad.csv"], "bad.csv:2: column 'seats'"),
        (["--write-requests", "/nonexistent/dir/day.csv"], "cannot write the requests file"),
        (["--requests", "{tmp}/a.csv", "--write-requests", "{tmp}/b.csv"], "not allowed with"),
        (["--alns-iterations", "0"], "--alns-iterations must be >= 1"),
        (["--alns-iterations", "9", "--solver", "ortools"], "needs the ALNS solver"),
    ],
)
def test_main_refuses_bad_replay_options(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.setattr(simulate, "run", lambda *a, **k: pytest.fail("must not run"))
    (tmp_path / "bad.csv").write_text(
        "request_id,requested_at,earliest_pickup,origin_lat,origin_lon,"
        "destination_lat,destination_lon,seats,wheelchairs\n"
        "a,28000,29000,33.86,-84.64,33.87,-84.67,two,0\n"
    )
    with pytest.raises(SystemExit) as exc:
        simulate.main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_help_documents_the_csv_columns(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        simulate.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for column in ("request_id", "requested_at", "earliest_pickup", "destination_lon", "seats"):
        assert column in text

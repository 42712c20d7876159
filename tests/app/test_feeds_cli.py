"""``tsunagu feed ...`` end to end on a temporary SQLite database and data dir."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from google.transit import gtfs_realtime_pb2 as pb

from app import db
from app.cli import main
from app.feeds.registry import FeedRegistry
from gtfs.realtime import parse_feed
from tests.app.conftest import settings_for
from tests.app.test_feeds_samples import sample_v2, with_errors


def test_feed_commands(tmp_path: Path, gtfs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = settings_for(tmp_path / "data")
    assert (
        main(
            [
                "feed",
                "import",
                str(gtfs_dir / "google_sample.zip"),
                "--feed-id",
                "sample",
                "--publish",
            ],
            s,
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "sample version 1: valid" in out and "published" in out
    assert (
        main(["feed", "import", str(sample_v2(gtfs_dir, tmp_path)), "--feed-id", "sample"], s) == 0
    )
    assert main(["feed", "publish", "sample", "2"], s) == 0
    assert main(["feed", "rollback", "sample"], s) == 0
    assert "rolled back sample to version 1" in capsys.readouterr().out
    # An invalid version imports (exit 1) and cannot be published.
    assert (
        main(["feed", "import", str(with_errors(gtfs_dir, tmp_path)), "--feed-id", "sample"], s)
        == 1
    )
    assert main(["feed", "publish", "sample", "3"], s) == 1
    assert "feed_has_errors" in capsys.readouterr().err
    assert main(["feed", "publish", "sample", "99"], s) == 1
    assert main(["feed", "import", str(tmp_path / "nope.zip"), "--feed-id", "x"], s) == 2
    capsys.readouterr()
    assert main(["feed", "list"], s) == 0
    out = capsys.readouterr().out
    assert "sample (network sample): published version 1" in out
    assert "published" in out and "archived" in out and "invalid" in out
    # A second feed imported into the same city is merged into its network (#13).
    args = ["feed", "import", str(gtfs_dir / "us_bullrunner.zip"), "--feed-id", "usf"]
    assert main([*args, "--network", "sample", "--publish"], s) == 0
    assert "published in network sample" in capsys.readouterr().out
    assert main(["feed", "list"], s) == 0
    assert "usf (network sample): published version 4" in capsys.readouterr().out
    assert main(["feed", "publish", "usf", "4", "--network", "not a name"], s) == 1
    assert "invalid_network" in capsys.readouterr().err


def test_feed_validate(tmp_path: Path, gtfs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = settings_for(tmp_path / "data")
    out_json = tmp_path / "report.json"
    assert (
        main(["feed", "validate", str(gtfs_dir / "google_sample.zip"), "--json", str(out_json)], s)
        == 0
    )
    assert json.loads(out_json.read_text())["summary"]["counts"]["errors"] == 0
    assert main(["feed", "validate", str(with_errors(gtfs_dir, tmp_path))], s) == 1
    assert "foreign_key_violation" in capsys.readouterr().out
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"nope")
    assert main(["feed", "validate", str(bad)], s) == 1
    assert "not_a_zip" in capsys.readouterr().err


def test_feed_report_and_realtime(
    tmp_path: Path, gtfs_dir: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = settings_for(tmp_path / "data")
    args = ["feed", "import", str(gtfs_dir / "google_sample.zip"), "--feed-id", "sample"]
    assert main([*args, "--publish"], s) == 0
    out_json = tmp_path / "v1.json"
    capsys.readouterr()
    assert main(["feed", "report", "sample", "1", "--json", str(out_json)], s) == 0
    out = capsys.readouterr().out
    assert "sample version 1 (published, google_sample.zip): 0 errors" in out
    report = json.loads(out_json.read_text())
    assert {"notices", "summary"} <= set(report)
    assert "expired_calendar" in {n["code"] for n in report["notices"]}
    assert main(["feed", "report", "sample", "9"], s) == 1
    assert "feed_version_not_found" in capsys.readouterr().err

    # The shared sample: vehicle positions only.
    vp = shared_data / "gtfs-rt" / "us_king_county_vehicle_positions_1.pb"
    assert main(["feed", "realtime", str(vp), "--source", "kcm"], s) == 0
    out = capsys.readouterr().out
    assert "ingested us_king_county_vehicle_positions_1.pb as source 'kcm': 0 trip updates" in out
    assert f"{len(parse_feed(vp.read_bytes()).vehicles)} vehicles" in out

    # A TripUpdate delaying AB1 by 5 minutes reaches a server on the same data dir.
    m = pb.FeedMessage()
    m.header.gtfs_realtime_version = "2.0"
    e = m.entity.add()
    e.id = "late"
    e.trip_update.trip.trip_id = "AB1"
    e.trip_update.trip.start_date = "20080107"
    e.trip_update.delay = 300
    tu = tmp_path / "tu.pb"
    tu.write_bytes(m.SerializeToString())
    assert main(["feed", "realtime", str(tu), "--source", "agency"], s) == 0
    assert "1 trip updates" in capsys.readouterr().out
    engine = db.engine_for(s)
    server = FeedRegistry(engine, s.data_dir)
    server.load_published()
    server.sync_with_database()
    assert server.realtime.status()["sources"] == ["agency", "kcm"]
    state = server.realtime_state(dt.date(2008, 1, 7))
    tt = server.network.timetable
    assert state is not None and tt is not None
    t = int(np.flatnonzero(tt.trip_ids == "AB1")[0])
    a, b = int(tt.trip_st_ptr[t]), int(tt.trip_st_ptr[t + 1])
    np.testing.assert_array_equal(state.departure[a:b], tt.st_departure[a:b] + 300)
    engine.dispose()

    # Bad input: junk, a missing file, a path-like source name.
    junk = tmp_path / "junk.pb"
    junk.write_bytes(b"\xff\x00junk")
    assert main(["feed", "realtime", str(junk)], s) == 1
    assert "invalid_gtfs_rt" in capsys.readouterr().err
    assert main(["feed", "realtime", str(tmp_path / "nope.pb")], s) == 2
    assert main(["feed", "realtime", str(tu), "--source", "../x"], s) == 2
    assert "invalid_source" in capsys.readouterr().err

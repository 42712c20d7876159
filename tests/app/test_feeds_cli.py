"""``tsunagu feed ...`` end to end on a temporary SQLite database and data dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
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
    assert "sample: published version 1" in out
    assert "published" in out and "archived" in out and "invalid" in out


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

"""GTFS-JP: readings for stop search (both translations layouts), JP tables kept."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

from gtfs import read_feed, validate_feed


def test_muroran_legacy_translations(gtfs_dir: Path) -> None:
    path = gtfs_dir / "jp_donan_bus_muroran.zip"
    with zipfile.ZipFile(path) as zf:
        tr = list(csv.DictReader(io.StringIO(zf.read("translations.txt").decode("utf-8-sig"))))
        stops = list(csv.DictReader(io.StringIO(zf.read("stops.txt").decode("utf-8-sig"))))
    kana = {r["trans_id"]: r["translation"] for r in tr if r["lang"] == "ja-Hrkt"}
    expected = {(s["stop_id"], kana[s["stop_name"]]) for s in stops if s["stop_name"] in kana}
    feed = read_feed(path)
    readings = feed.stop_readings()
    assert list(readings.columns) == ["stop_id", "lang", "name"]
    got = {(r.stop_id, r.name) for r in readings[readings["lang"] == "ja-Hrkt"].itertuples()}
    assert got == expected and len(got) > 200
    eto = readings[(readings["lang"] == "ja-Hrkt") & (readings["name"] == "えともだんち")]
    assert len(eto) >= 1
    assert len(feed.table("agency_jp")) == 1 and len(feed.table("routes_jp")) > 0


def test_kawasaki_sample(gtfs_dir: Path) -> None:
    feed = read_feed(gtfs_dir / "jp_mlit_sample_kawasaki.zip")
    r = feed.stop_readings()
    kawa = r[(r["stop_id"] == "1510") & (r["lang"] == "ja-Hrkt")]
    assert kawa["name"].tolist() == ["かわさきえきにしぐち"]
    assert "en" in set(r["lang"])
    assert not feed.table("office_jp").empty


def test_new_gtfs_translations_layout(make_feed: Callable[..., Path]) -> None:
    tr = (
        "table_name,field_name,language,translation,record_id,record_sub_id,field_value\n"
        "stops,stop_name,ja-Hrkt,いち,S1,,\n"
        "stops,stop_name,en,Two,,,Two\n"
        "routes,route_long_name,en,Line,R1,,\n"
    )
    r = read_feed(make_feed({"translations.txt": tr})).stop_readings()
    assert sorted(map(tuple, r.to_numpy().tolist())) == [
        ("S1", "ja-Hrkt", "いち"),
        ("S2", "en", "Two"),
    ]


def test_kawasaki_dangling_routes_jp_row_is_a_warning(gtfs_dir: Path) -> None:
    """The MLIT sample's routes_jp.txt names a route routes.txt lacks: reported, not blocking."""
    path = gtfs_dir / "jp_mlit_sample_kawasaki.zip"
    with zipfile.ZipFile(path) as zf:

        def rows(name: str) -> list[dict[str, str]]:
            return list(csv.DictReader(io.StringIO(zf.read(name).decode("utf-8-sig"))))

        routes = {r["route_id"] for r in rows("routes.txt")}
        dangling = [r["route_id"] for r in rows("routes_jp.txt") if r["route_id"] not in routes]
    assert dangling  # the raw files really have the problem
    report = validate_feed(read_feed(path), today=dt.date(2017, 1, 1))
    n = report.get("extension_foreign_key_violation")
    assert n is not None and n.severity.value == "WARNING"
    assert [s["fieldValue"] for s in n.samples] == dangling
    assert n.samples[0]["filename"] == "routes_jp.txt"
    assert "foreign_key_violation" not in report.codes()
    assert not report.has_errors


def test_pattern_jp_and_office_jp_are_known_tables(make_feed: Callable[..., Path]) -> None:
    """GTFS-JP tables no shared feed has (pattern_jp) are read as tables, not unknown files."""
    files = {
        "pattern_jp.txt": "jp_pattern_id,route_update_date,origin_stop,via_stop,destination_stop\nP1,20300101,One,Two,Three\n",
        "office_jp.txt": "office_id,office_name,office_url,office_phone\nO1,営業所,,\n",
        "agency_jp.txt": "agency_id,agency_official_name,agency_zip_number\nA,株式会社,0500000\n",
    }
    feed = read_feed(make_feed(files))
    assert feed.table("pattern_jp")["jp_pattern_id"].tolist() == ["P1"]
    assert feed.table("office_jp")["office_name"].tolist() == ["営業所"]
    report = validate_feed(feed, today=dt.date(2030, 6, 1))
    assert "unknown_file" not in report.codes()
    assert not report.has_errors

"""Reading feeds: zip safety, encodings, broken CSV — a report or a clear error, never a crash."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from gtfs import FeedError, ReadLimits, read_feed, validate_feed
from tests.gtfs.conftest import BASE_FEED, write_zip


def test_reads_strings_keeping_ids(make_feed: Callable[..., Path]) -> None:
    feed = read_feed(
        make_feed({"stops.txt": "stop_id,stop_name,stop_lat,stop_lon\n007,Zero,35,139\n"})
    )
    assert feed.stops["stop_id"].tolist() == ["007"]  # never became the number 7
    assert feed.feed_id.startswith("feed")


def test_not_a_zip(tmp_path: Path) -> None:
    p = tmp_path / "x.zip"
    p.write_bytes(b"this is not a zip at all")
    with pytest.raises(FeedError) as e:
        read_feed(p)
    assert e.value.code == "not_a_zip"


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FeedError) as e:
        read_feed(tmp_path / "nope.zip")
    assert e.value.code == "not_found"


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/passwd", "a/../../b.txt", "C:/x.txt"])
def test_path_traversal_rejected(tmp_path: Path, name: str) -> None:
    p = tmp_path / "evil.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("agency.txt", BASE_FEED["agency.txt"])
        zf.writestr(zipfile.ZipInfo(name), "x")
    with pytest.raises(FeedError) as e:
        read_feed(p)
    assert e.value.code == "unsafe_zip_entry"


def test_zip_bomb_ratio(tmp_path: Path) -> None:
    p = tmp_path / "bomb.zip"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("stop_times.txt", b"0" * (20 * 1024**2))  # 20 MB -> ~20 KB
    with pytest.raises(FeedError) as e:
        read_feed(p)
    assert e.value.code == "zip_bomb"


def test_too_many_entries(tmp_path: Path) -> None:
    p = write_zip(tmp_path / "many.zip", {f"f{i}.txt": "a\n1\n" for i in range(30)})
    with pytest.raises(FeedError) as e:
        read_feed(p, limits=ReadLimits(max_entries=10))
    assert e.value.code == "too_many_zip_entries"


def test_total_size_limit(make_feed: Callable[..., Path]) -> None:
    with pytest.raises(FeedError) as e:
        read_feed(make_feed(), limits=ReadLimits(max_total_bytes=100))
    assert e.value.code == "zip_too_large"


@pytest.mark.slow
def test_fifty_megabyte_upload(tmp_path: Path) -> None:
    """A 50 MB upload: read with a notice under default limits, clear error under tight ones."""
    p = write_zip(tmp_path / "big.zip", dict(BASE_FEED))
    with zipfile.ZipFile(p, "a", zipfile.ZIP_STORED) as zf:
        zf.writestr("photos.bin", os.urandom(50 * 1024**2))  # incompressible: ~50 MB zip
    assert p.stat().st_size > 50 * 1024**2
    feed = read_feed(p)
    assert "unknown_file" in validate_feed(feed).codes()
    with pytest.raises(FeedError) as e:
        read_feed(p, limits=ReadLimits(max_total_bytes=20 * 1024**2))
    assert e.value.code in {"zip_too_large", "zip_entry_too_large"}


def test_nested_top_folder(make_feed: Callable[..., Path]) -> None:
    feed = read_feed(make_feed(prefix="my_feed/"))
    assert len(feed.stops) == 3
    assert not validate_feed(feed).has_errors


def test_folder_feed(tmp_path: Path) -> None:
    d = tmp_path / "feed"
    d.mkdir()
    for name, text in BASE_FEED.items():
        (d / name).write_text(text)
    feed = read_feed(d)
    assert feed.feed_id == "feed" and len(feed.trips) == 2


def test_utf8_bom_header(make_feed: Callable[..., Path]) -> None:
    bom = "\ufeff" + BASE_FEED["stops.txt"]
    feed = read_feed(make_feed({"stops.txt": bom.encode("utf-8")}))
    assert "stop_id" in feed.stops.columns
    assert "unusual_encoding" not in validate_feed(feed).codes()


def test_cp932_file_is_decoded_and_reported(make_feed: Callable[..., Path]) -> None:
    text = "stop_id,stop_name,stop_lat,stop_lon\nS1,室蘭駅,42.3,140.97\nS2,東室蘭駅,42.35,141.0\nS3,輪西,42.33,140.99\n"
    feed = read_feed(make_feed({"stops.txt": text.encode("cp932")}))
    assert feed.stops["stop_name"].tolist()[0] == "室蘭駅"
    report = validate_feed(feed)
    notice = report.get("unusual_encoding")
    assert notice is not None and notice.samples[0]["filename"] == "stops.txt"


def test_undecodable_file(make_feed: Callable[..., Path]) -> None:
    with pytest.raises(FeedError) as e:
        read_feed(make_feed({"stops.txt": b"stop_id\n\x81\x7f\xff\xfe\n"}))
    assert e.value.code == "invalid_encoding"


def test_broken_csv_rows_reported(make_feed: Callable[..., Path]) -> None:
    bad = BASE_FEED["routes.txt"] + "R3,A,3,x,3,extra,fields\nR4,A,4,y,3\n"
    feed = read_feed(make_feed({"routes.txt": bad}))
    report = validate_feed(feed)
    notice = report.get("csv_parsing_failed")
    assert notice is not None and notice.total == 1
    assert feed.routes["route_id"].tolist() == ["R1", "R4"]  # the good rows survive
    assert report.has_errors


def test_long_first_row_is_reported_not_an_index(make_feed: Callable[..., Path]) -> None:
    """A first data row with more fields than the header (pandas would make it an index)."""
    head, *rows = BASE_FEED["stops.txt"].splitlines()
    bad = "\n".join([head, rows[0] + ",extra,fields", *rows[1:]]) + "\n"
    feed = read_feed(make_feed({"stops.txt": bad}))
    assert feed.stops["stop_id"].tolist() == ["S2", "S3"]
    assert list(feed.stops.columns) == head.split(",")
    report = validate_feed(feed)  # no crash on the broken table
    notice = report.get("csv_parsing_failed")
    assert notice is not None and notice.total == 1
    assert notice.samples[0]["row"].startswith("S1,One,")
    assert report.has_errors


def test_unterminated_quote_reported(make_feed: Callable[..., Path]) -> None:
    bad = BASE_FEED["routes.txt"] + 'R2,A,2,"unterminated,3\nR3,A,3,x,3\n'
    report = validate_feed(read_feed(make_feed({"routes.txt": bad})))
    assert "csv_parsing_failed" in report.codes() and report.has_errors


def test_new_line_inside_quoted_value(make_feed: Callable[..., Path]) -> None:
    bad = BASE_FEED["routes.txt"] + 'R2,A,2,"two\nlines",3\n'
    report = validate_feed(read_feed(make_feed({"routes.txt": bad})))
    assert "new_line_in_value" in report.codes()


def test_empty_file_and_unknown_file(make_feed: Callable[..., Path]) -> None:
    feed = read_feed(make_feed({"frequencies.txt": "", "notes.txt": "a,b\n1,2\n"}))
    codes = validate_feed(feed).codes()
    assert {"empty_file", "unknown_file"} <= codes


@pytest.mark.slow
def test_every_shared_feed_reads_validates_compiles(gtfs_dir: Path) -> None:
    from gtfs import compile_timetable

    zips = sorted(gtfs_dir.glob("*.zip"))
    assert len(zips) >= 12
    for z in zips:
        feed = read_feed(z)
        report = validate_feed(feed)
        # Publishable: no ERROR notice in any of the real feeds (expiry is only a WARNING).
        assert not report.has_errors, (z.name, [n.to_json() for n in report.notices][:3])
        tt = compile_timetable(feed)
        assert tt.n_stops == len(feed.stops), z.name
        if z.name != "us_cobblinc_flex.zip":  # every trip of that feed is flex
            assert tt.n_trips > 0, z.name


def test_utf16_with_bom(make_feed: Callable[..., Path]) -> None:
    feed = read_feed(make_feed({"stops.txt": BASE_FEED["stops.txt"].encode("utf-16")}))
    assert feed.stops["stop_id"].tolist() == ["S1", "S2", "S3"]
    assert "unusual_encoding" in validate_feed(feed).codes()


def test_corrupted_zip_data(make_feed: Callable[..., Path], tmp_path: Path) -> None:
    data = bytearray(make_feed().read_bytes())
    # Flip bytes in the middle of the first entry's compressed data; the directory stays valid.
    for i in range(60, 90):
        data[i] ^= 0xFF
    p = tmp_path / "corrupt.zip"
    p.write_bytes(bytes(data))
    with pytest.raises(FeedError) as e:
        read_feed(p)
    assert e.value.code == "not_a_zip"


def test_encrypted_zip(make_feed: Callable[..., Path], tmp_path: Path) -> None:
    data = bytearray(make_feed().read_bytes())
    # Set the "encrypted" flag bit in every local and central header (zipfile cannot write one).
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = data.find(sig)
        while i >= 0:
            data[i + off] |= 0x01
            i = data.find(sig, i + 4)
    p = tmp_path / "enc.zip"
    p.write_bytes(bytes(data))
    with pytest.raises(FeedError) as e:
        read_feed(p)
    assert e.value.code == "encrypted_zip"


def test_values_are_stripped(make_feed: Callable[..., Path]) -> None:
    stops = "stop_id, stop_name ,stop_lat,stop_lon\n S1 ,One,35.0,139.0\nS2,Two ,35.0045,139.0\nS3,\u3000Three,35.009,139.0\n"
    feed = read_feed(make_feed({"stops.txt": stops}))
    assert feed.stops["stop_id"].tolist() == ["S1", "S2", "S3"]
    assert feed.stops["stop_name"].tolist() == ["One", "Two", "Three"]
    report = validate_feed(feed)
    assert not report.has_errors
    ws = report.get("leading_or_trailing_whitespaces")
    assert ws is not None and ws.total == 3  # the header's spaces are not values

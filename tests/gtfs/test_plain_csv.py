"""The reader's plain-CSV path gives pandas' frame, and its codes describe the columns (#15)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from gtfs import read_feed
from gtfs.notices import NoticeSink
from gtfs.reader import parse_csv, plain_csv, utf8_body

# Delimiters, blanks and multi-byte characters, so that rows of every kind are drawn: plain ones
# and the ones the plain path must leave to pandas (quotes, CR, NUL, edge blanks, short rows).
_CHARS = [*"0123456789:ab,", " ", "\t", "\r", "\n", '"', "\x00", "é", "日", "\u3000"]
_ROWS = st.lists(st.text(alphabet=st.sampled_from(_CHARS), max_size=12), min_size=1, max_size=8)


def _frame(text: bytes) -> tuple[pd.DataFrame, list[object]]:
    sink = NoticeSink()
    return parse_csv(text, "f.txt", sink), sink.notices()


def _check(data: bytes) -> bool:
    """The plain path, where it applies, equals parse_csv; whether it applied."""
    body = utf8_body(data)
    assert body is not None
    got = plain_csv(body)
    if got is None:
        return False
    ref, notices = _frame(body)
    assert notices == []
    df, codes = got
    pd.testing.assert_frame_equal(df, ref, check_exact=True)
    assert list(df.columns) == list(ref.columns) and df.columns.dtype == ref.columns.dtype
    for col, c in codes.items():
        assert df[col].array is c.values
        assert c.uniques[c.codes].tolist() == ref[col].tolist()
        assert len(set(c.uniques.tolist())) == len(c.uniques)  # each value once
    return True


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["a,b", "stop_id,x,y", "t", "a,a", "a,,b", "é,日"]), _ROWS)
def test_plain_path_equals_pandas(header: str, rows: list[str]) -> None:
    _check((header + "\n" + "\n".join(rows)).encode())


def test_plain_path_applies_to_plain_files_only() -> None:
    plain = [
        b"a,b\n1,x\n2,y\n",
        b"a,b\n1,x\n2,y",  # no final newline
        b"a,b\n1,\n,\n",  # blanks
        "a,b\n1,日本\n2,é\n".encode(),
        b"a\n1\n2\n",
        b"trip_id,t\n"
        + b"".join(b"trip-with-a-long-id-%d,%d\n" % (i // 3, i % 5) for i in range(99)),
    ]
    for data in plain:
        assert _check(data), data
    other = [
        b'a,b\n"1",x\n',  # quotes
        b"a,b\r\n1,x\r\n",  # CR
        b"a,b\n1, x\n",  # a value to strip
        b"a,b\n1,x\n\n2,y\n",  # a blank line
        b"a\n1\n\n",
        b"a,b\n1\n",  # a short row
        b"a,b\n1,2,3\n",  # a long row
        b"a,a\n1,2\n",  # a repeated column name
        b"a,\n1,2\n",  # a blank column name
        b"a,b\n",  # no row
        b"a,b\n1,\x00\n",
    ]
    for data in other:
        assert not _check(data), data


def test_codes_kept_for_repeating_columns() -> None:
    body = b"trip,seq,uid\n" + b"".join(b"T%d,%d,%d\n" % (i // 4, i % 4, i) for i in range(40))
    got = plain_csv(body)
    assert got is not None
    codes = got[1]
    assert set(codes) == {"trip", "seq"}  # uid: every value distinct
    assert codes["seq"].uniques.tolist() == ["0", "1", "2", "3"]
    assert codes["seq"].codes.dtype == np.uint8


def test_shared_feed_files_read_as_pandas_does(gtfs_dir: Path) -> None:
    applied = 0
    for path in sorted(gtfs_dir.glob("*.zip")):
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                if name.endswith(".txt"):
                    applied += _check(zf.read(name)) if utf8_body(zf.read(name)) else 0
    assert applied > 50


def _zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def test_feed_parses_through_codes_until_a_column_is_replaced(tmp_path: Path) -> None:
    rows = "".join(f"T{i // 3},{i % 3 + 1},0{i % 3}:00:00,x\n" for i in range(12))
    p = tmp_path / "f.zip"
    p.write_bytes(
        _zip(
            {"stop_times.txt": "trip_id,stop_sequence,arrival_time,junk\n" + rows + "T9,1,bad,x\n"}
        )
    )
    feed = read_feed(p)
    c = feed.codes("stop_times", "arrival_time")
    assert c is not None and len(c.uniques) == 4
    secs, bad = feed.times("stop_times", "arrival_time")
    assert secs.tolist() == [0, 3600, 7200] * 4 + [-1]
    assert bad.tolist() == [False] * 12 + [True]
    assert feed.ints("stop_times", "stop_sequence", -1).tolist() == [1, 2, 3] * 4 + [1]
    # A replaced column or table is parsed as it now is, not through the old codes.
    feed2 = read_feed(p)
    st_ = feed2.tables["stop_times"].copy()
    st_["stop_sequence"] = "7"
    feed2.tables["stop_times"] = st_
    assert feed2.codes("stop_times", "stop_sequence") is None
    assert feed2.ints("stop_times", "stop_sequence", -1).tolist() == [7] * 13
    feed3 = read_feed(p)
    feed3.tables["stop_times"]["arrival_time"] = "01:00:00"
    assert feed3.times("stop_times", "arrival_time")[0].tolist() == [3600] * 13

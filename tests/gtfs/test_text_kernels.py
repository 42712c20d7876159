"""Text kernels: the packed UTF-8 layout parses exactly as the fixed-width one (#15)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from gtfs import text_kernels as tk
from gtfs.notices import NoticeSink
from gtfs.reader import _is_blank, decode_text, parse_csv, utf8_body

# Characters the parsers and the trimming look at, and a few they must reject.
_CHARS = [*"0123456789:.+-eE ab\t\r,", "\u3000", "\ufeff", "\x00", "é", "日", "\u2000"]
_VALUES = st.lists(st.text(alphabet=st.sampled_from(_CHARS), max_size=10), min_size=1)


def _both_layouts(values: list[str]) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    packed = tk._packed(pd.Series(values, dtype=object))
    assert packed is not None  # no newline, all str: the packed layout applies
    return packed, tk._fixed(np.asarray(values, dtype=object))


@settings(max_examples=300, deadline=None)
@given(_VALUES)
def test_packed_and_fixed_layouts_agree(values: list[str]) -> None:
    (buf, s1, e1), (flat, s2, e2) = _both_layouts(values)
    lo1, hi1 = tk._bounds_utf8(buf, s1, e1)
    lo2, hi2 = tk._bounds_fixed(flat, s2, e2)
    # Same trimmed text on both sides.
    for i, v in enumerate(values):
        a = bytes(buf[lo1[i] : hi1[i]]).decode("utf-8", "surrogatepass")
        b = "".join(map(chr, flat[lo2[i] : hi2[i]]))
        assert a == b, v
    t1, t2 = tk._parse_time(buf, lo1, hi1), tk._parse_time(flat, lo2, hi2)
    assert np.array_equal(t1[0], t2[0]) and np.array_equal(t1[1], t2[1])
    n1, n2 = tk._parse_number(buf, lo1, hi1), tk._parse_number(flat, lo2, hi2)
    assert np.array_equal(n1[0], n2[0], equal_nan=True) and np.array_equal(n1[1], n2[1])
    assert tk._needs_strip_utf8(buf, s1, e1, lo1, hi1) == tk._needs_strip_fixed(flat, s2, e2)


def test_known_values_parse_on_both_layouts() -> None:
    values = ["12:34:56", " 1:02:03 ", "\u300025:00:00\ufeff", "7:5:00", "", " ", "x"]
    secs, status = tk.parse_time_codes(pd.Series(values))
    assert secs.tolist() == [45296, 3723, 90000, -1, -1, -1, -1]
    assert status.tolist() == [0, 0, 0, 2, 1, 1, 2]
    nums = ["3", "-2.5", "1e3", "\u3000+4\u3000", "1e", ".", "", "٣"]
    v, s = tk.parse_number_codes(pd.Series(nums))
    assert np.array_equal(v, [3, -2.5, 1000, 4, np.nan, np.nan, np.nan, np.nan], equal_nan=True)
    assert s.tolist() == [0, 3, 3, 0, 2, 2, 1, 2]
    # A newline inside a value, or a value that is not a str: the fixed-width layout.
    assert tk._packed(pd.Series(["1", "a\nb"])) is None
    assert tk._packed(pd.Series(["1", np.nan], dtype=object)) is None
    assert tk.parse_number_codes(pd.Series(["1", "a\nb"]))[1].tolist() == [0, 2]
    assert tk.parse_number_codes(pd.Series([5, "6"], dtype=object))[0].tolist() == [5.0, 6.0]
    assert tk.newline_mask(pd.Series(["a\nb", "c", "d\re"])).tolist() == [True, False, True]
    assert tk.newline_mask(pd.Series(["a", "d\re"])).tolist() == [False, True]
    assert tk.newline_mask(pd.Series(["a", "b"])).tolist() == [False, False]
    assert tk.blank_mask(pd.Series(["\u3000", "a", ""])).tolist() == [True, False, True]
    assert not tk.needs_strip(pd.Series(["a", "b"]))
    assert tk.needs_strip(pd.Series(["a", "b\u3000"]))
    assert tk.needs_strip(pd.Series(["a\nb", " b"]))


_CSVS = [
    "stop_id,stop_name\n1,A\n2,B\n",
    "stop_id,stop_name\n 1 ,A\n2,\u3000B\n",  # values to strip, ASCII and ideographic
    'stop_id,stop_name\n1,"A, the ""first"""\n2,"two\nlines"\n',  # quotes, a newline
    "stop_id,stop_name,x\n1,A\n2,B,c\n",  # a short row: blanks, not NaN
    "stop_id,stop_name\n1,A,extra\n2,B\n",  # a long first row
    'stop_id,stop_name\n1,"A\n',  # unterminated quote
    "stop_id,stop_name\r\n1,Ä\r\n2,日本\r\n",
    " \n\t\n",  # blank
    "\u3000\n",  # blank only by str.strip
]


def test_parse_csv_from_utf8_bytes_matches_text() -> None:
    for text in _CSVS:
        for data in (text.encode(), b"\xef\xbb\xbf" + text.encode()):
            s1, s2 = NoticeSink(), NoticeSink()
            body = utf8_body(data)
            assert body is not None
            a = parse_csv(decode_text(data, "f.txt", s1), "f.txt", s1)
            b = parse_csv(body, "f.txt", s2)
            pd.testing.assert_frame_equal(a, b)
            assert [n.__dict__ for n in s1.notices()] == [n.__dict__ for n in s2.notices()]


def test_utf8_body_refuses_other_encodings() -> None:
    assert utf8_body("日本".encode("cp932")) is None
    assert utf8_body("a,b".encode("utf-16")) is None
    assert utf8_body(b"\xef\xbb\xbfa,b") == b"a,b"
    assert _is_blank(b"") and _is_blank(" \u3000\n".encode()) and not _is_blank(b" a")
    assert not _is_blank("\u3000日".encode())


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from([" ", ",", "\n", "\r", "a", "\t", "\u3000", "\ufeff"])))
def test_strip_precheck_reads_bytes_as_text(text: str) -> None:
    from gtfs.reader import _may_need_strip

    assert _may_need_strip(text.encode()) == _may_need_strip(text)
    # Never a false "no": a value with a blank at an edge is always announced.
    cells = [c for row in re.split(r"\r\n|\r|\n", text) for c in row.split(",")]
    if any(c != c.strip(" \t\u3000\ufeff") for c in cells):
        assert _may_need_strip(text)

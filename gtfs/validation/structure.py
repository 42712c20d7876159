"""Files, columns, field types and primary keys (gtfs-validator's "table" notices)."""

from __future__ import annotations

import re
from zoneinfo import available_timezones

import numpy as np
import pandas as pd

from gtfs.feed import Feed
from gtfs.notices import NoticeSink
from gtfs.schema import KNOWN_COLUMNS, SPECS
from gtfs.text_kernels import blank_mask
from gtfs.times import parse_dates

_COLOR = re.compile(r"^[0-9A-Fa-f]{6}$")
_URL = re.compile(r"^https?://[^\s]+$", re.IGNORECASE)
REQUIRED_FILES = ("agency", "stops", "routes", "trips", "stop_times")


def check_files(feed: Feed, sink: NoticeSink) -> None:
    for name in REQUIRED_FILES:
        if not feed.has(name):
            sink.add("missing_required_file", 1, [{"filename": f"{name}.txt"}])
        elif len(feed.table(name).columns) and feed.table(name).empty:
            # A header without rows (no header at all was reported by the reader).
            sink.add("empty_file", 1, [{"filename": f"{name}.txt"}])
    if not feed.has("calendar") and not feed.has("calendar_dates"):
        sink.add("missing_calendar_and_calendar_date_files", 1, [{}])


def check_columns(feed: Feed, sink: NoticeSink) -> None:
    for name, df in feed.tables.items():
        fn = f"{name}.txt"
        cols = list(df.columns)
        if any(c == "" or c.startswith("Unnamed:") for c in cols):
            sink.add("empty_column_name", 1, [{"filename": fn}])
        dup = sorted(
            {re.sub(r"\.\d+$", "", c) for c in cols if re.search(r"\.\d+$", c)} & set(cols)
        )
        for c in dup:
            sink.add("duplicated_column", 1, [{"filename": fn, "fieldName": c}])
        spec = SPECS.get(name)
        if spec is not None and len(cols):
            for req in spec.required_fields:
                if req not in df.columns:
                    sink.add("missing_required_column", 1, [{"filename": fn, "fieldName": req}])
                else:
                    blank = df[req].astype(str) == ""
                    if blank.any():
                        sink.add_rows(
                            "missing_required_field",
                            df.loc[blank, [c for c in spec.primary_key if c in df.columns]],
                            filename=fn,
                            extra={"field_name": req},
                        )
        known = KNOWN_COLUMNS.get(name)
        if known is not None:
            for c in cols:
                if c not in known and c:
                    sink.add("unknown_column", 1, [{"filename": fn, "fieldName": c}])


def _bad_rows(
    sink: NoticeSink,
    code: str,
    df: pd.DataFrame,
    mask: np.ndarray,
    fn: str,
    col: str,
    key: tuple[str, ...],
) -> None:
    if not mask.any():
        return
    cols = [c for c in key if c in df.columns and c != col] + [col]
    rows = df.loc[mask, cols].rename(columns={col: "field_value"})
    sink.add_rows(code, rows, filename=fn, extra={"field_name": col})


_TZ: set[str] | None = None


def _timezones() -> set[str]:
    global _TZ
    if _TZ is None:
        _TZ = set(available_timezones()) | {"UTC"}
    return _TZ


def check_types(feed: Feed, sink: NoticeSink) -> None:
    for name, df in feed.tables.items():
        spec = SPECS.get(name)
        if spec is None or df.empty:
            continue
        fn = f"{name}.txt"
        for col, typ in spec.types.items():
            if col not in df.columns:
                continue
            s = df[col]
            nonblank = ~blank_mask(s) if typ in ("color", "url", "timezone") else None
            if typ == "time":
                _, bad = feed.times(name, col)
                _bad_rows(sink, "invalid_time", df, bad, fn, col, spec.primary_key)
            elif typ == "date":
                _, bad = parse_dates(s)
                _bad_rows(sink, "invalid_date", df, bad, fn, col, spec.primary_key)
            elif typ in ("int", "float", "lat", "lon"):
                num, bad = feed.numbers(name, col, integer=typ == "int")
                code = "invalid_integer" if typ == "int" else "invalid_float"
                _bad_rows(sink, code, df, bad, fn, col, spec.primary_key)
                limit = 90.0 if typ == "lat" else 180.0 if typ == "lon" else None
                if limit is not None:
                    out = ~np.isnan(num) & (np.abs(num) > limit)
                    _bad_rows(sink, "number_out_of_range", df, out, fn, col, spec.primary_key)
            elif typ == "color":
                bad = nonblank & ~s.str.match(_COLOR).to_numpy()
                _bad_rows(sink, "invalid_color", df, bad, fn, col, spec.primary_key)
            elif typ == "url":
                bad = nonblank & ~s.str.match(_URL).to_numpy()
                _bad_rows(sink, "invalid_url", df, bad, fn, col, spec.primary_key)
            elif typ == "timezone":
                bad = nonblank & ~s.isin(_timezones()).to_numpy()
                _bad_rows(sink, "invalid_timezone", df, bad, fn, col, spec.primary_key)


def check_keys(feed: Feed, sink: NoticeSink) -> None:
    for name, df in feed.tables.items():
        spec = SPECS.get(name)
        if spec is None or not spec.primary_key or df.empty:
            continue
        key = [c for c in spec.primary_key if c in df.columns]
        if len(key) != len(spec.primary_key):
            continue
        dup = df.duplicated(subset=key, keep="first").to_numpy()
        if dup.any():
            sink.add_rows("duplicate_key", df.loc[dup, key], filename=f"{name}.txt")

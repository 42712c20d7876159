"""The in-memory feed: one string DataFrame per GTFS file, plus cached typed views."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from gtfs.notices import Notice
from gtfs.text_kernels import parse_number_codes
from gtfs.times import parse_times

if TYPE_CHECKING:
    from gtfs.flex import FlexNetwork
    from gtfs.stop_times import TypedStopTimes


@dataclass(frozen=True, eq=False)
class ColumnCodes:
    """A column as read, as codes of its distinct values: value ``i`` is
    ``uniques[codes[i]]`` (see :func:`gtfs.reader.plain_csv`). ``values`` is the column's array
    in the frame as read: the codes describe the column only while the frame holds that array."""

    values: Any
    codes: npt.NDArray[np.integer]
    uniques: npt.NDArray[np.object_]


@dataclass(eq=False)
class Feed:
    """A GTFS feed as read: ``tables["stops"]`` etc. hold every column as ``str`` (blank ``""``).

    Each table's index is the data-row position in its file (CSV line = index + 2), so notices
    can point at the offending line. Typed, derived views are computed once and cached.
    """

    tables: dict[str, pd.DataFrame]
    files: dict[str, bytes] = field(default_factory=dict)  # non-CSV files (locations.geojson)
    feed_id: str = "feed"
    source: str = ""
    read_notices: list[Notice] = field(default_factory=list)

    column_codes: dict[tuple[str, str], ColumnCodes] = field(default_factory=dict, repr=False)
    """``(file, column)`` -> its codes, for the columns the reader found repeating."""

    _parsed: dict[tuple[str, str, str], Any] = field(default_factory=dict, repr=False)

    def codes(self, name: str, col: str) -> ColumnCodes | None:
        """The codes of a column as read, unless it is absent or its table or column has been
        replaced since."""
        c = self.column_codes.get((name, col))
        if c is None:
            return None
        df = self.tables.get(name)
        if df is None or col not in df.columns or df[col].array is not c.values:
            return None
        return c

    # --- parsed columns, cached: several steps (typed views, validators) read the same ones.
    # Tables are treated as immutable once read.
    def times(self, name: str, col: str) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.bool_]]:
        """``(seconds or -1, invalid mask)`` of a GTFS time column (see ``parse_times``)."""
        key = (name, col, "time")
        if key not in self._parsed:
            c = self.codes(name, col)
            if c is None:
                self._parsed[key] = parse_times(self.column(name, col))
            else:
                # Each distinct value once (parsing is per value).
                secs, bad = parse_times(pd.Series(c.uniques, dtype=object))
                self._parsed[key] = (secs[c.codes], bad[c.codes])
        return self._parsed[key]  # type: ignore[no-any-return]

    def numbers(
        self, name: str, col: str, *, integer: bool = False
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        """``(values or NaN, invalid mask)`` of a numeric column; ``integer`` rejects ``1.5``."""
        key = (name, col, "number")
        if key not in self._parsed:
            c = self.codes(name, col)
            if c is not None:
                num, status = parse_number_codes(c.uniques)
                self._parsed[key] = (num[c.codes], status[c.codes])
            elif col in self.table(name).columns:
                self._parsed[key] = parse_number_codes(self.column(name, col))
            else:
                # An absent column is all blank (status 1): no need to parse a column of "".
                n = len(self.table(name))
                self._parsed[key] = (np.full(n, np.nan), np.ones(n, np.int8))
        num, status = self._parsed[key]
        bad = (status == 2) | ((status == 3) & integer)
        return (np.where(bad, np.nan, num) if bad.any() else num), bad

    def ints(self, name: str, col: str, default: int, dtype: Any = np.int32) -> npt.NDArray[Any]:
        """Integer column, ``default`` for blank, invalid or absent values."""
        num = self.numbers(name, col)[0]
        return np.where(np.isnan(num), default, num).astype(dtype)

    def has(self, name: str) -> bool:
        """Whether ``name`` (without ``.txt``) is present (possibly empty)."""
        return name in self.tables

    def table(self, name: str) -> pd.DataFrame:
        """The table, or an empty frame when the file is absent."""
        df = self.tables.get(name)
        # Not ``get(name, pd.DataFrame())``: that builds a frame (~0.5 ms) on every call.
        return pd.DataFrame() if df is None else df

    def column(self, name: str, col: str) -> pd.Series:
        """A string column, blank-filled when the column is absent."""
        df = self.table(name)
        if col in df.columns:
            return df[col]
        return pd.Series([""] * len(df), index=df.index, dtype=object)

    @property
    def agency(self) -> pd.DataFrame:
        return self.table("agency")

    @property
    def stops(self) -> pd.DataFrame:
        return self.table("stops")

    @property
    def routes(self) -> pd.DataFrame:
        return self.table("routes")

    @property
    def trips(self) -> pd.DataFrame:
        return self.table("trips")

    @property
    def stop_times(self) -> pd.DataFrame:
        return self.table("stop_times")

    @property
    def timezone(self) -> str:
        tz = self.column("agency", "agency_timezone")
        return str(tz.iloc[0]).strip() if len(tz) and str(tz.iloc[0]).strip() else "UTC"

    @cached_property
    def typed_stop_times(self) -> TypedStopTimes:
        """Sorted, typed stop times with blanks interpolated and frequencies expanded."""
        from gtfs.stop_times import build_typed_stop_times

        return build_typed_stop_times(self)

    @cached_property
    def flex(self) -> FlexNetwork:
        """GTFS-Flex v2 zones and services (empty when the feed has none)."""
        from gtfs.flex import read_flex

        return read_flex(self)

    def stop_readings(self) -> pd.DataFrame:
        """Stop-name readings/translations: columns ``stop_id, lang, name`` (GTFS-JP yomigana)."""
        from gtfs.japan import stop_readings

        return stop_readings(self)

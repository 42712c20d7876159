"""The in-memory feed: one string DataFrame per GTFS file, plus cached typed views."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import pandas as pd

from gtfs.notices import Notice

if TYPE_CHECKING:
    from gtfs.flex import FlexNetwork
    from gtfs.stop_times import TypedStopTimes


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

    def has(self, name: str) -> bool:
        """Whether ``name`` (without ``.txt``) is present (possibly empty)."""
        return name in self.tables

    def table(self, name: str) -> pd.DataFrame:
        """The table, or an empty frame when the file is absent."""
        return self.tables.get(name, pd.DataFrame())

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

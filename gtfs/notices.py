"""Validation notices in the shape of MobilityData's gtfs-validator ``report.json``."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Sample notices kept per code (the rest are only counted).
MAX_SAMPLES = 5


class Severity(enum.StrEnum):
    ERROR = "ERROR"
    WARNING = "WARNING"
    INFO = "INFO"


#: Severity of every code this package emits (gtfs-validator's where it has one).
SEVERITIES: dict[str, Severity] = {
    # read / structure
    "unknown_file": Severity.INFO,
    "unknown_column": Severity.INFO,
    "unusual_encoding": Severity.WARNING,
    "csv_parsing_failed": Severity.ERROR,
    "new_line_in_value": Severity.ERROR,
    "leading_or_trailing_whitespaces": Severity.WARNING,
    "inconsistent_agency_timezone": Severity.ERROR,
    "empty_file": Severity.ERROR,
    "empty_column_name": Severity.ERROR,
    "duplicated_column": Severity.ERROR,
    "missing_required_file": Severity.ERROR,
    "missing_calendar_and_calendar_date_files": Severity.ERROR,
    "missing_required_field": Severity.ERROR,
    "missing_required_column": Severity.ERROR,
    "invalid_geojson": Severity.ERROR,
    "forbidden_arrival_or_departure_time": Severity.ERROR,
    "missing_pickup_or_drop_off_window": Severity.ERROR,
    "invalid_pickup_drop_off_window": Severity.ERROR,
    "invalid_booking_rule": Severity.ERROR,
    # field types
    "invalid_time": Severity.ERROR,
    "invalid_date": Severity.ERROR,
    "invalid_integer": Severity.ERROR,
    "invalid_float": Severity.ERROR,
    "invalid_color": Severity.ERROR,
    "invalid_url": Severity.ERROR,
    "invalid_timezone": Severity.ERROR,
    "number_out_of_range": Severity.ERROR,
    # keys
    "duplicate_key": Severity.ERROR,
    "foreign_key_violation": Severity.ERROR,
    "extension_foreign_key_violation": Severity.WARNING,  # GTFS-JP *_jp tables
    # semantics
    "start_and_end_range_out_of_order": Severity.ERROR,
    "stop_time_with_arrival_before_previous_departure_time": Severity.ERROR,
    "stop_time_with_only_arrival_or_departure_time": Severity.ERROR,
    "stop_time_with_departure_before_arrival_time": Severity.ERROR,
    "missing_trip_edge": Severity.ERROR,
    "unusable_trip": Severity.WARNING,
    "decreasing_or_equal_stop_time_distance": Severity.ERROR,
    "fast_travel_between_consecutive_stops": Severity.WARNING,
    "route_both_short_and_long_name_missing": Severity.ERROR,
    "expired_calendar": Severity.WARNING,
    "feed_expiration_date7_days": Severity.WARNING,
    "feed_expiration_date30_days": Severity.WARNING,
    "stop_time_timepoint_without_times": Severity.ERROR,
    "service_beyond_feed_end_date": Severity.INFO,
    "interpolated_stop_times": Severity.INFO,
    "stop_without_location": Severity.ERROR,
    "parent_station_not_a_station": Severity.ERROR,
}


@dataclass
class Notice:
    """All occurrences of one code: total count and up to ``MAX_SAMPLES`` sample rows."""

    code: str
    total: int
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def severity(self) -> Severity:
        return SEVERITIES.get(self.code, Severity.WARNING)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "totalNotices": self.total,
            "sampleNotices": self.samples,
        }


def _plain(v: Any) -> Any:
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


class NoticeSink:
    """Collects notices; several emissions of one code merge (counts add, samples cap)."""

    def __init__(self) -> None:
        self._by_code: dict[str, Notice] = {}

    def add(self, code: str, total: int = 1, samples: list[dict[str, Any]] | None = None) -> None:
        if total <= 0:
            return
        n = self._by_code.setdefault(code, Notice(code, 0))
        n.total += total
        room = MAX_SAMPLES - len(n.samples)
        for s in (samples or [])[: max(room, 0)]:
            n.samples.append({_camel(k): _plain(v) for k, v in s.items()})

    def add_rows(
        self,
        code: str,
        rows: pd.DataFrame,
        *,
        filename: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """One notice per row of ``rows``; samples carry the row's fields (+ ``csvRowNumber``)."""
        if rows.empty:
            return
        head = rows.head(MAX_SAMPLES)
        samples = []
        # The reader keeps each table's index = data row position, so the CSV line is +2.
        for idx, rec in zip(head.index, head.to_dict(orient="records"), strict=True):
            rec = {k: v for k, v in rec.items() if not str(k).startswith("_")}
            if filename is not None:
                rec = {"filename": filename, "csv_row_number": int(idx) + 2, **rec}
            if extra:
                rec.update(extra)
            samples.append(rec)
        self.add(code, len(rows), samples)

    def extend(self, notices: list[Notice]) -> None:
        for n in notices:
            self.add(n.code, n.total)
            existing = self._by_code[n.code]
            room = MAX_SAMPLES - len(existing.samples)
            existing.samples.extend(n.samples[: max(room, 0)])

    def notices(self) -> list[Notice]:
        order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
        return sorted(self._by_code.values(), key=lambda n: (order[n.severity], n.code))

"""GTFS-Flex v2 rules on stop_times windows and booking rules."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gtfs.feed import Feed
from gtfs.notices import NoticeSink

_ALIASES = {
    "start": ("start_pickup_drop_off_window", "start_pickup_dropoff_window"),
    "end": ("end_pickup_drop_off_window", "end_pickup_dropoff_window"),
}


def _first_col(df: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in df.columns), None)


def check_flex(feed: Feed, sink: NoticeSink) -> None:
    _check_booking_rules(feed, sink)
    st = feed.stop_times
    s_col, e_col = _first_col(st, _ALIASES["start"]), _first_col(st, _ALIASES["end"])
    if st.empty or (s_col is None and e_col is None):
        return
    fn = "stop_times.txt"
    start = feed.times("stop_times", s_col)[0] if s_col else np.full(len(st), -1, np.int32)
    end = feed.times("stop_times", e_col)[0] if e_col else np.full(len(st), -1, np.int32)
    arr = feed.times("stop_times", "arrival_time")[0]
    dep = feed.times("stop_times", "departure_time")[0]
    has_window = (start >= 0) | (end >= 0)
    key = [c for c in ("trip_id", "stop_sequence", "stop_id") if c in st.columns]
    # Windows replace times: a row may not have both (GTFS-Flex v2).
    both = has_window & ((arr >= 0) | (dep >= 0))
    sink.add_rows("forbidden_arrival_or_departure_time", st.loc[both, key], filename=fn)
    one = (start >= 0) != (end >= 0)
    sink.add_rows("missing_pickup_or_drop_off_window", st.loc[one, key], filename=fn)
    backwards = (start >= 0) & (end >= 0) & (end < start)
    sink.add_rows("invalid_pickup_drop_off_window", st.loc[backwards, key], filename=fn)


def _check_booking_rules(feed: Feed, sink: NoticeSink) -> None:
    """Prior-notice fields must fit the booking type (1 needs a duration, 2 a last day)."""
    br = feed.table("booking_rules")
    if br.empty or "booking_type" not in br.columns:
        return
    btype = feed.ints("booking_rules", "booking_type", -1, np.int64)
    nmin = feed.numbers("booking_rules", "prior_notice_duration_min")[0]
    last_day = feed.numbers("booking_rules", "prior_notice_last_day")[0]
    bad = ((btype == 1) & np.isnan(nmin)) | ((btype == 2) & np.isnan(last_day))
    bad |= (btype == 0) & (~np.isnan(nmin) | ~np.isnan(last_day))
    sink.add_rows(
        "invalid_booking_rule",
        br.loc[bad, [c for c in ("booking_rule_id", "booking_type") if c in br.columns]],
        filename="booking_rules.txt",
    )

"""Calendars and feed_info dates: ranges, expiry."""

from __future__ import annotations

import datetime as dt

import numpy as np

from gtfs.calendar import service_days
from gtfs.feed import Feed
from gtfs.notices import NoticeSink
from gtfs.times import parse_dates


def _range_order(feed: Feed, sink: NoticeSink, name: str, a: str, b: str) -> None:
    df = feed.table(name)
    if df.empty or a not in df.columns or b not in df.columns:
        return
    s, _ = parse_dates(df[a])
    e, _ = parse_dates(df[b])
    bad = ~np.isnat(s) & ~np.isnat(e) & (e < s)
    if bad.any():
        sink.add_rows(
            "start_and_end_range_out_of_order", df.loc[bad, [a, b]], filename=f"{name}.txt"
        )


def check_dates(feed: Feed, sink: NoticeSink, today: dt.date) -> None:
    _range_order(feed, sink, "calendar", "start_date", "end_date")
    _range_order(feed, sink, "feed_info", "feed_start_date", "feed_end_date")
    sd = service_days(feed)
    last_service: dt.date | None = None
    if sd.days.size and sd.days.any():
        last_col = int(np.flatnonzero(sd.days.any(axis=0)).max())
        last_service = sd.start + dt.timedelta(days=last_col)
        if last_service < today:
            sink.add(
                "expired_calendar",
                1,
                [{"lastServiceDate": last_service.isoformat(), "today": today.isoformat()}],
            )
    fi = feed.table("feed_info")
    if not fi.empty and "feed_end_date" in fi.columns:
        end, _ = parse_dates(fi["feed_end_date"])
        if len(end) and not np.isnat(end[0]):
            end_d = dt.date.fromisoformat(str(end[0]))
            sample = [{"feedEndDate": end_d.isoformat(), "currentDate": today.isoformat()}]
            # gtfs-validator's codes: the feed must stay valid for 7 days (error-ish) / 30 days.
            if end_d <= today + dt.timedelta(days=7):
                sink.add("feed_expiration_date7_days", 1, sample)
            elif end_d <= today + dt.timedelta(days=30):
                sink.add("feed_expiration_date30_days", 1, sample)
            if last_service is not None and last_service > end_d:
                sink.add(
                    "service_beyond_feed_end_date",
                    1,
                    [
                        {
                            "feedEndDate": end_d.isoformat(),
                            "lastServiceDate": last_service.isoformat(),
                        }
                    ],
                )

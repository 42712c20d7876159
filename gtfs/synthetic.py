"""Synthetic large networks built by replicating a real feed in space and time.

``replicate_feed(feed, space=5, time=2)`` makes ``space`` copies of the whole network shifted
east by ``spacing_deg`` each (ids suffixed ``~s{k}``; copies are far enough apart that no
footpath joins them), and within each, ``time`` copies of every trip shifted by
``time_offset_s`` (trip ids suffixed ``~t{k}``). Calendars are shared. The result has
``space * time`` times the trips and stop times of the original. Used by ``bench.feeds``
and by the router benchmark (50x Cairns: ``scaled_feed(cairns, 50)``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gtfs.feed import Feed
from gtfs.times import format_time, parse_times


def _suffix(s: pd.Series, tag: str) -> pd.Series:
    return (s.astype(str) + tag).where(s.astype(str) != "", "")


def _shift_times(col: pd.Series, offset: int) -> pd.Series:
    secs, _ = parse_times(col)
    # Only distinct values are formatted (a few thousand), then mapped back.
    uniq, inv = np.unique(secs, return_inverse=True)
    text = np.array([format_time(int(u) + offset) if u >= 0 else "" for u in uniq], dtype=object)
    return pd.Series(text[inv], index=col.index)


def replicate_feed(
    feed: Feed,
    *,
    space: int,
    time: int = 1,
    spacing_deg: float = 1.0,
    time_offset_s: int = 1800,
    feed_id: str | None = None,
) -> Feed:
    """A feed ``space * time`` times larger (see the module docstring)."""
    if space < 1 or time < 1:
        raise ValueError("space and time copies must be >= 1")
    t = feed.tables
    out: dict[str, list[pd.DataFrame]] = {}

    def add(name: str, df: pd.DataFrame) -> None:
        out.setdefault(name, []).append(df)

    for name in ("agency", "calendar", "calendar_dates", "feed_info"):
        if name in t:
            add(name, t[name])
    for k in range(space):
        tag = f"~s{k}" if space > 1 else ""
        if "stops" in t:
            s = t["stops"].copy()
            for col in ("stop_id", "parent_station"):
                if col in s.columns:
                    s[col] = _suffix(s[col], tag)
            if "stop_lon" in s.columns:
                lon = pd.to_numeric(s["stop_lon"], errors="coerce") + k * spacing_deg
                s["stop_lon"] = lon.map("{:.6f}".format).where(lon.notna(), "")
            add("stops", s)
        if "routes" in t:
            r = t["routes"].copy()
            r["route_id"] = _suffix(r["route_id"], tag)
            add("routes", r)
        if "shapes" in t:
            sh = t["shapes"].copy()
            sh["shape_id"] = _suffix(sh["shape_id"], tag)
            lon = pd.to_numeric(sh["shape_pt_lon"], errors="coerce") + k * spacing_deg
            sh["shape_pt_lon"] = lon.map("{:.6f}".format)
            add("shapes", sh)
        for j in range(time):
            ttag = tag + (f"~t{j}" if time > 1 else "")
            if "trips" in t:
                tr = t["trips"].copy()
                tr["trip_id"] = _suffix(tr["trip_id"], ttag)
                tr["route_id"] = _suffix(tr["route_id"], tag)
                if "shape_id" in tr.columns:
                    tr["shape_id"] = _suffix(tr["shape_id"], tag)
                add("trips", tr)
            if "stop_times" in t:
                st = t["stop_times"].copy()
                st["trip_id"] = _suffix(st["trip_id"], ttag)
                st["stop_id"] = _suffix(st["stop_id"], tag)
                if j:
                    for col in ("arrival_time", "departure_time"):
                        st[col] = _shift_times(st[col], j * time_offset_s)
                add("stop_times", st)
    tables = {name: pd.concat(dfs, ignore_index=True) for name, dfs in out.items()}
    return Feed(
        tables=tables,
        feed_id=feed_id or f"{feed.feed_id}_x{space * time}",
        source=f"synthetic:{feed.source}",
    )


def scaled_feed(feed: Feed, factor: int) -> Feed:
    """``factor`` x the feed: 2 time copies when ``factor`` is even, the rest in space."""
    time = 2 if factor % 2 == 0 else 1
    return replicate_feed(feed, space=factor // time, time=time)

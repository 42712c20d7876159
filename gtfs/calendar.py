"""Service calendars as a day bitmap (calendar.txt weekly patterns + calendar_dates.txt)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from gtfs.arrays import first_index
from gtfs.feed import Feed
from gtfs.times import int_column, parse_dates

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True, eq=False)
class ServiceDays:
    """``days[v, d]``: service ``service_ids[v]`` runs on ``start + d`` days."""

    service_ids: npt.NDArray[np.str_]
    start: dt.date
    days: npt.NDArray[np.bool_]

    def index(self) -> pd.Index:
        return pd.Index(self.service_ids)


def _to_date(d: np.datetime64) -> dt.date:
    return dt.date.fromisoformat(str(d.astype("datetime64[D]")))


def service_days(feed: Feed) -> ServiceDays:
    """Vectorised over services x days; invalid dates/rows are skipped (validator reports)."""
    cal = feed.table("calendar")
    cd = feed.table("calendar_dates")
    c_ok = not cal.empty and {"service_id", "start_date", "end_date"} <= set(cal.columns)
    d_ok = not cd.empty and {"service_id", "date", "exception_type"} <= set(cd.columns)
    c_start = c_end = cd_date = np.zeros(0, dtype="datetime64[D]")
    if c_ok:
        c_start, _ = parse_dates(cal["start_date"])
        c_end, _ = parse_dates(cal["end_date"])
    if d_ok:
        cd_date, _ = parse_dates(cd["date"])
    all_dates = np.concatenate([c_start, c_end, cd_date])
    all_dates = all_dates[~np.isnat(all_dates)]
    ids = pd.Index(
        pd.concat(
            [
                cal["service_id"].astype(str) if c_ok else pd.Series([], dtype=str),
                cd["service_id"].astype(str) if d_ok else pd.Series([], dtype=str),
            ]
        ).unique()
    )
    if len(all_dates) == 0:
        return ServiceDays(
            ids.to_numpy(dtype=str), dt.date(1970, 1, 1), np.zeros((len(ids), 0), np.bool_)
        )
    d0, d1 = all_dates.min(), all_dates.max()
    n_days = int((d1 - d0).astype(int)) + 1
    days = np.zeros((len(ids), n_days), dtype=np.bool_)
    day_nums = np.arange(n_days)
    weekday = (_to_date(d0).weekday() + day_nums) % 7
    if c_ok:
        flags = np.column_stack([int_column(cal, w, 0, np.int8) == 1 for w in WEEKDAYS])
        rows = first_index(ids, cal["service_id"].astype(str))
        ok = ~np.isnat(c_start) & ~np.isnat(c_end)
        s = np.where(ok, (c_start - d0).astype(int), 0)
        e = np.where(ok, (c_end - d0).astype(int), -1)
        # [calendar rows, days]; feeds have tens to hundreds of services.
        mask = (
            (day_nums[None, :] >= s[:, None])
            & (day_nums[None, :] <= e[:, None])
            & flags[:, weekday]
        )
        np.logical_or.at(days, rows, mask)
    if d_ok:
        rows = first_index(ids, cd["service_id"].astype(str))
        exc = int_column(cd, "exception_type", 0, np.int8)
        ok = ~np.isnat(cd_date)
        col = np.where(ok, (cd_date - d0).astype(int), 0)
        add = ok & (exc == 1)
        rem = ok & (exc == 2)
        days[rows[add], col[add]] = True
        days[rows[rem], col[rem]] = False
    return ServiceDays(ids.to_numpy(dtype=str), _to_date(d0), days)

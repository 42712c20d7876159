"""Which service date a network answers for by default (the demo city's "today").

Rule, documented for operators: if today (in the network's time zone) has any trip, it is
today. Otherwise take today's month/day in each year the feed covers, move it to the nearest
date with the same weekday as today, keep candidates inside the feed's range, and choose the one
closest to that anniversary; if that day has no trips (a holiday), step a week at a time
(alternately later and earlier) to the nearest same-weekday date that has; if that weekday never
has service, the nearest day that has. Muroran (2020-04-01
..2021-04-01) on Sunday 2026-11-29 gives Sunday 2020-11-29.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np

from gtfs.compiled import CompiledTimetable

RULE = (
    "today if it has service, else the same weekday nearest to today's month/day inside the "
    "feed's calendar (stepping by weeks past days without trips)"
)


def _has_trips(tt: CompiledTimetable, day: dt.date) -> bool:
    i = tt.day_index(day)
    if i < 0:
        return False
    return bool(tt.service_days[tt.trip_service, i].any())


def today_in(tt: CompiledTimetable, now: dt.datetime | None = None) -> dt.date:
    now = now or dt.datetime.now(dt.UTC)
    try:
        return now.astimezone(ZoneInfo(tt.timezone)).date()
    except Exception:  # an unknown zone name: fall back to UTC rather than fail a query
        return now.date()


def pick_service_date(tt: CompiledTimetable, today: dt.date) -> dt.date | None:
    """The default service date of ``tt`` for ``today`` (None when nothing ever runs)."""
    if tt.n_trips == 0 or tt.service_days.size == 0:
        return None
    if _has_trips(tt, today):
        return today
    runs = tt.service_days[tt.trip_service].any(axis=0)
    days = np.flatnonzero(runs)
    if days.size == 0:
        return None
    first = tt.service_start + dt.timedelta(days=int(days[0]))
    last = tt.service_start + dt.timedelta(days=int(days[-1]))
    candidates: list[tuple[int, dt.date]] = []
    for year in range(first.year, last.year + 1):
        try:
            anniv = today.replace(year=year)
        except ValueError:  # 29 February in a non-leap year
            anniv = dt.date(year, 2, 28)
        shift = (today.weekday() - anniv.weekday() + 7) % 7
        if shift > 3:
            shift -= 7
        cand = anniv + dt.timedelta(days=shift)
        if cand < first or cand > last:
            # Bring a candidate just outside the range back inside by whole weeks.
            while cand < first:
                cand += dt.timedelta(days=7)
            while cand > last:
                cand -= dt.timedelta(days=7)
            if cand < first:
                continue
        candidates.append((abs((cand - anniv).days), cand))
    if not candidates:
        return first
    start = min(candidates)[1]
    for k in range(0, 60):
        for sign in (1, -1):
            cand = start + dt.timedelta(days=7 * k * sign)
            if first <= cand <= last and _has_trips(tt, cand):
                return cand
    # No service on that weekday at all (e.g. no Sunday service): the nearest day with trips.
    run_days = [tt.service_start + dt.timedelta(days=int(d)) for d in days]
    return min(run_days, key=lambda d: (abs((d - start).days), d))

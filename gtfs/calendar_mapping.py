"""A feed's calendar mapped onto today's dates, so that an expired timetable runs "today".

A feed whose calendar does not cover today (the demo city's 2020 GTFS-JP feed, served years
later) cannot be combined with anything on today's real clock (on-demand vans, GTFS-RT). The
mapping gives each date ``D`` of a window around today the services of its *source date*
``S(D)`` = :func:`nearest_service_date` of ``D``: the same weekday nearest to ``D``'s month/day
inside the feed's calendar, stepping a week at a time past days without trips. Trip ids do not
change, so ``D`` runs exactly the trips of ``S(D)``; the feed's own dates keep their services.

Everything here is pure: :func:`map_calendar` returns a new :class:`CompiledTimetable` sharing
every array with the input except ``service_days`` (or the input itself when nothing is
mapped), and a :class:`CalendarMapping` describing what it did.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from gtfs.compiled import BoolArray, CompiledTimetable

# The window mapped around today: a week back (yesterday's runs past midnight, recent
# realtime) to two months ahead (trips planned in advance).
DAYS_BACK = 7
DAYS_AHEAD = 60
# Beyond this gap between the feed's calendar and today the service-day matrix would grow
# absurdly (one column per day of the gap): no mapping then.
MAX_GAP_DAYS = 20 * 366

RULE = (
    "each date of the window runs the trips of its source date: the same weekday nearest to "
    "its month/day inside the feed's calendar (stepping by weeks past days without trips)"
)


@dataclass(frozen=True)
class CalendarMapping:
    """What :func:`map_calendar` did.

    Attributes
    ----------
    today
        The date the window was centred on.
    feed_range
        First and last date with trips in the feed's own calendar.
    window
        First and last date of the window (inclusive).
    source_dates
        Mapped date -> the feed date whose trips it runs (dates of the window inside the
        feed's own service range are not mapped and not listed).
    rule
        The rule in words, for operators.
    """

    today: dt.date
    feed_range: tuple[dt.date, dt.date]
    window: tuple[dt.date, dt.date]
    source_dates: dict[dt.date, dt.date]
    rule: str = RULE

    def to_json(self) -> dict[str, Any]:
        """The API shape: ISO dates, ``source_dates`` in date order."""
        return {
            "rule": self.rule,
            "today": self.today.isoformat(),
            "feed_range": [self.feed_range[0].isoformat(), self.feed_range[1].isoformat()],
            "window": [self.window[0].isoformat(), self.window[1].isoformat()],
            "source_dates": {
                d.isoformat(): s.isoformat() for d, s in sorted(self.source_dates.items())
            },
        }


def run_days(tt: CompiledTimetable) -> BoolArray:
    """[D] whether any trip runs on each column of ``tt.service_days``."""
    if tt.n_trips == 0 or tt.service_days.size == 0:
        return np.zeros(tt.service_days.shape[1], dtype=np.bool_)
    return np.asarray(tt.service_days[tt.trip_service].any(axis=0), dtype=np.bool_)


def service_range(tt: CompiledTimetable) -> tuple[dt.date, dt.date] | None:
    """First and last date on which any trip runs (None when none ever does)."""
    days = np.flatnonzero(run_days(tt))
    if days.size == 0:
        return None
    return (
        tt.service_start + dt.timedelta(days=int(days[0])),
        tt.service_start + dt.timedelta(days=int(days[-1])),
    )


def _has_trips(tt: CompiledTimetable, day: dt.date) -> bool:
    i = tt.day_index(day)
    if i < 0:
        return False
    return bool(tt.service_days[tt.trip_service, i].any())


def nearest_service_date(
    tt: CompiledTimetable, today: dt.date, runs: BoolArray | None = None
) -> dt.date | None:
    """The date of ``tt`` that stands for ``today`` (None when nothing ever runs).

    ``today`` itself if it has trips. Otherwise take today's month/day in each year the feed
    covers, move it to the nearest date with the same weekday as today, keep candidates
    inside the feed's range, and choose the one closest to that anniversary; if that day has
    no trips (a holiday), step a week at a time (alternately later and earlier) to the nearest
    same-weekday date that has; if that weekday never has service, the nearest day that has.

    Parameters
    ----------
    tt
        The timetable.
    today
        The date to stand in for.
    runs
        :func:`run_days` of ``tt`` when the caller already has it (saves recomputing it for
        each date of a window).
    """
    if tt.n_trips == 0 or tt.service_days.size == 0:
        return None
    if _has_trips(tt, today):
        return today
    days = np.flatnonzero(run_days(tt) if runs is None else runs)
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
    run_dates = [tt.service_start + dt.timedelta(days=int(d)) for d in days]
    return min(run_dates, key=lambda d: (abs((d - start).days), d))


def map_calendar(
    tt: CompiledTimetable,
    today: dt.date,
    *,
    days_back: int = DAYS_BACK,
    days_ahead: int = DAYS_AHEAD,
    max_gap_days: int = MAX_GAP_DAYS,
) -> tuple[CompiledTimetable, CalendarMapping | None]:
    """``tt`` with the dates around ``today`` running the trips of their source dates.

    Nothing is mapped — ``(tt, None)``, the very same object — when ``today`` lies within the
    feed's service range (first..last date with trips), when no trip ever runs, or when the
    gap between that range and the window exceeds ``max_gap_days``.

    Otherwise each date ``D`` of ``today - days_back .. today + days_ahead`` outside the feed's
    service range gets the service column of ``S(D)`` = :func:`nearest_service_date`
    ``(tt, D)``. The day range of ``service_days`` is extended to span both the feed's
    original range and the window, so the matrix grows by the gap between them (one column
    per day, e.g. about 2 400 days for a 2020 feed mapped onto 2026: a few tens of kB). The
    original columns are unchanged, so the feed's own dates still plan as before.

    Parameters
    ----------
    tt
        The compiled timetable (not modified).
    today
        Today in the timetable's time zone.
    days_back, days_ahead
        The window around ``today`` (``>= 0``).
    max_gap_days
        The largest gap (days) between the feed's range and the window that is bridged.

    Returns
    -------
    tuple
        The mapped timetable and the mapping, or ``(tt, None)``.

    Raises
    ------
    ValueError
        When ``days_back`` or ``days_ahead`` is negative.
    """
    if days_back < 0 or days_ahead < 0:
        raise ValueError(f"window must not be negative: back {days_back}, ahead {days_ahead}")
    runs = run_days(tt)
    days = np.flatnonzero(runs)
    if days.size == 0:
        return tt, None
    first = tt.service_start + dt.timedelta(days=int(days[0]))
    last = tt.service_start + dt.timedelta(days=int(days[-1]))
    if first <= today <= last:
        return tt, None
    w0 = today - dt.timedelta(days=days_back)
    w1 = today + dt.timedelta(days=days_ahead)
    gap = max((w0 - last).days, (first - w1).days)
    if gap > max_gap_days:
        return tt, None
    sources: dict[dt.date, dt.date] = {}
    for k in range((w1 - w0).days + 1):
        d = w0 + dt.timedelta(days=k)
        if first <= d <= last:  # the feed's own dates stay as published
            continue
        s = nearest_service_date(tt, d, runs)
        if s is not None and s != d:
            sources[d] = s
    if not sources:
        return tt, None
    start = min(tt.service_start, w0)
    end = max(tt.last_service_date, w1)
    n_days = (end - start).days + 1
    grid = np.zeros((tt.service_days.shape[0], n_days), dtype=np.bool_)
    offset = (tt.service_start - start).days
    grid[:, offset : offset + tt.service_days.shape[1]] = tt.service_days
    for d, s in sources.items():
        grid[:, (d - start).days] = tt.service_days[:, tt.day_index(s)]
    mapped = dataclasses.replace(tt, service_start=start, service_days=grid)
    return mapped, CalendarMapping(
        today=today, feed_range=(first, last), window=(w0, w1), source_dates=sources
    )

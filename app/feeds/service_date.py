"""Which service date a network answers for by default (the demo city's "today").

Rule, documented for operators: if today (in the network's time zone) has any trip, it is
today. Otherwise take today's month/day in each year the feed covers, move it to the nearest
date with the same weekday as today, keep candidates inside the feed's range, and choose the one
closest to that anniversary; if that day has no trips (a holiday), step a week at a time
(alternately later and earlier) to the nearest same-weekday date that has; if that weekday never
has service, the nearest day that has. Muroran (2020-04-01
..2021-04-01) on Sunday 2026-11-29 gives Sunday 2020-11-29.

The same rule maps the feed's calendar onto today's dates (:mod:`gtfs.calendar_mapping`): with
``TSUNAGU_CALENDAR_MAPPING=auto`` (the default), a network whose feeds do not cover today gets,
for each date of a window around today, the trips of that date's source date under this rule.
Today then has trips, so the service date is today itself and plans, realtime and the on-demand
vans share one clock; the rule's fallback above applies only with ``off`` (or outside the
window). The rule itself lives in :func:`gtfs.calendar_mapping.nearest_service_date`.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from gtfs.calendar_mapping import nearest_service_date
from gtfs.compiled import CompiledTimetable

RULE = (
    "today if it has service, else the same weekday nearest to today's month/day inside the "
    "feed's calendar (stepping by weeks past days without trips)"
)


def today_in(tt: CompiledTimetable, now: dt.datetime | None = None) -> dt.date:
    now = now or dt.datetime.now(dt.UTC)
    try:
        return now.astimezone(ZoneInfo(tt.timezone)).date()
    except Exception:  # an unknown zone name: fall back to UTC rather than fail a query
        return now.date()


def pick_service_date(tt: CompiledTimetable, today: dt.date) -> dt.date | None:
    """The default service date of ``tt`` for ``today`` (None when nothing ever runs)."""
    return nearest_service_date(tt, today)

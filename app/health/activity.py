"""Active travel: minutes, steps and kcal of walking and cycling legs, weekly totals against
Japan's guideline, and the WHO HEAT reduction in all-cause mortality. Pure functions.

Sources (each figure below names its own):

* Step length: 0.415 x height for men, 0.413 x height for women (the distance of one step,
  heel to heel), the rule of thumb pedometer guides give: "How to Measure One's Step or
  Stride" (https://healthfully.com/measure-ones-step-stride-2317449.html) states these two
  ratios; a biomechanics summary (https://biologyinsights.com/what-is-my-step-length-by-height)
  gives 41-45 % of height for a walking step; a Q&A page (https://travel.blurtit.com/82519/
  how-do-you-set-the-step-distance-on-pedometer-) gives the same 0.413 / 0.415 but calls the
  result a stride. The study behind the ratios was not found (searched 2026-12-06, pages).
  Without a height, :data:`DEFAULT_STEP_M` = 0.7 m (an assumption: between the 0.67 m and
  0.76 m default steps of women and men that "How to Calculate Stride Length By Height"
  (Verywell, http://walking.about.com/library/weekly/aapedometerset.htm) reports for fitness
  monitors).
* METs: the 2011 Compendium of Physical Activities (Ainsworth et al., Med Sci Sports Exerc
  2011;43(8):1575-81), each band with its activity code (:data:`WALK_METS`, :data:`CYCLE_METS`).
  Checked against secondary tables (the Compendium itself was not in the stored corpora):
  walking 2.5 / 3.0 / 3.5 / 4.0 mph = 3.0 / 3.5 / 4.3 / 5.0 METs, codes 17170 / 17190 / 17200 /
  17220, and bicycling < 10 / 10-11.9 / 12-13.9 / 14-15.9 mph = 4.0 / 6.8 / 8.0 / 10.0 METs, as
  listed at https://calorique.io/faq/met-values-walking-running-cycling-by-pace/ (citing the
  2024 Adult Compendium, Herrmann SD et al.) and, for walking, at
  https://iphonestepsapp.com/blog/met-values-walking-chart (citing Ainsworth 2011). The
  cycling codes are confirmed by a copy of the 2024 Adult Compendium's tracking table, which
  lists the 1993, 2000, 2011 and 2024 code and MET side by side
  (https://scribd.com/document/732869208/METs-Llistat-Update-2024-2): in the 2011 column
  01010 4.0 (< 10 mph, leisure, to work or for pleasure), 01020 6.8 (10-11.9 mph; 6.0 in
  1993/2000), 01030 8.0 (12-13.9 mph), 01040 10.0 (14-15.9 mph), the same codes and METs in
  2024 (01015 is "self-selected easy pace" there, not a speed band). The walking codes' rows
  of that table were not in the stored excerpt; a later version of the calorique page lists
  2024 walking bands that differ (3.5-3.9 mph = 4.8 METs): the values here are the 2011
  edition's. kcal = MET x body kg x hours (gross, resting included,
  as the Compendium and Japan's "METs x hours" count them); without a weight,
  :data:`DEFAULT_WEIGHT_KG` = 60 kg (an assumption, near the mean Japanese adult).
* Guideline: 健康日本21 (第三次) / 健康づくりのための身体活動・運動ガイド2023: about 8,000 steps
  a day for adults, 6,000 for older adults (65 and over).
* WHO HEAT (Health Economic Assessment Tool, 2017 methods): walking RR 0.89 at 168 min/week,
  cap 30 %, ages 20-74; cycling RR 0.90 at 100 min/week, cap 45 %, ages 20-64. HEAT scales the
  risk reduction linearly with the weekly volume: ``(1 - RR) x minutes / reference``, capped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

Kind = Literal["walk", "cycle"]

WALK_MODES = frozenset({"WALK"})
CYCLE_MODES = frozenset({"BICYCLE", "BIKE", "CYCLE"})

DEFAULT_STEP_M = 0.7
DEFAULT_WEIGHT_KG = 60.0
STEP_FACTOR = {"male": 0.415, "female": 0.413}

#: ``(below km/h, MET, Compendium 2011 code and activity)``: the first band the speed is under.
WALK_METS: tuple[tuple[float, float, str], ...] = (
    (4.5, 3.0, "17170 walking, 2.5 mph, level, firm surface"),
    (5.2, 3.5, "17190 walking, 2.8-3.2 mph, level, moderate pace, firm surface"),
    (6.0, 4.3, "17200 walking, 3.5 mph, level, brisk, firm surface"),
    (float("inf"), 5.0, "17220 walking, 4.0 mph, level, firm surface, very brisk pace"),
)
CYCLE_METS: tuple[tuple[float, float, str], ...] = (
    (16.1, 4.0, "01010 bicycling, <10 mph, leisure, to work or for pleasure"),
    (19.3, 6.8, "01020 bicycling, 10-11.9 mph, leisure, slow, light effort"),
    (22.5, 8.0, "01030 bicycling, 12-13.9 mph, leisure, moderate effort"),
    (float("inf"), 10.0, "01040 bicycling, 14-15.9 mph, racing or leisure, fast, vigorous"),
)

#: Steps a day: adults, older adults (65+), after 健康日本21 (第三次).
DAILY_STEPS_ADULT = 8000
DAILY_STEPS_OLDER = 6000
OLDER_FROM_AGE = 65


@dataclass(frozen=True)
class HeatParams:
    """One HEAT pathway: the reference RR at the reference weekly minutes, cap, ages."""

    rr: float
    reference_min_per_week: float
    cap: float
    min_age: int
    max_age: int


HEAT_WALK = HeatParams(0.89, 168.0, 0.30, 20, 74)
HEAT_CYCLE = HeatParams(0.90, 100.0, 0.45, 20, 64)


@dataclass(frozen=True)
class Body:
    """What the resident told us of their body (each may be unknown)."""

    height_cm: float | None = None
    weight_kg: float | None = None
    sex: str | None = None  # male | female
    age: int | None = None


def step_length_m(body: Body) -> tuple[float, str]:
    """The step length and where it came from."""
    if body.height_cm is not None and body.sex in STEP_FACTOR:
        f = STEP_FACTOR[str(body.sex)]
        return f * body.height_cm / 100.0, f"{f} x height ({body.sex})"
    if body.height_cm is not None:  # sex unknown: the mean of both factors
        f = (STEP_FACTOR["male"] + STEP_FACTOR["female"]) / 2
        return f * body.height_cm / 100.0, f"{f} x height"
    return DEFAULT_STEP_M, "default 0.7 m"


def mets(kind: Kind, speed_kmh: float) -> tuple[float, str]:
    """``(MET, Compendium code)`` for walking or cycling at ``speed_kmh``."""
    table = WALK_METS if kind == "walk" else CYCLE_METS
    for below, met, code in table:
        if speed_kmh < below:
            return met, code
    raise AssertionError("the last band is unbounded")  # pragma: no cover


@dataclass(frozen=True)
class ActiveLeg:
    """One walking or cycling leg of a completed trip."""

    kind: Kind
    start: dt.datetime
    minutes: float
    distance_m: float


@dataclass(frozen=True)
class LegEffort:
    """A leg's steps, MET and kcal."""

    leg: ActiveLeg
    steps: int
    met: float
    met_code: str
    kcal: float


def effort(leg: ActiveLeg, body: Body) -> LegEffort:
    """Steps (walking only), MET and kcal of ``leg`` for ``body``."""
    hours = leg.minutes / 60.0
    speed = leg.distance_m / 1000.0 / hours if hours > 0 else 0.0
    met, code = mets(leg.kind, speed)
    weight = body.weight_kg if body.weight_kg is not None else DEFAULT_WEIGHT_KG
    steps = 0
    if leg.kind == "walk":
        step, _ = step_length_m(body)
        steps = round(leg.distance_m / step)
    return LegEffort(leg, steps, met, code, met * weight * hours)


def heat_reduction(params: HeatParams, minutes_per_week: float) -> float:
    """HEAT's relative reduction in all-cause mortality (0..cap) for a weekly volume."""
    if minutes_per_week <= 0:
        return 0.0
    return min((1.0 - params.rr) * minutes_per_week / params.reference_min_per_week, params.cap)


def heat_json(params: HeatParams, minutes_per_week: float, age: int | None) -> dict[str, Any]:
    """HEAT for one pathway as the API shows it (``applicable`` False outside its ages)."""
    applicable: bool | None = None
    if age is not None:
        applicable = params.min_age <= age <= params.max_age
    reduction = heat_reduction(params, minutes_per_week) if applicable is not False else None
    return {
        "minutesPerWeek": round(minutes_per_week, 1),
        "relativeRiskReduction": None if reduction is None else round(reduction, 4),
        "applicable": applicable,
        "ages": [params.min_age, params.max_age],
        "reference": {
            "rr": params.rr,
            "minutesPerWeek": params.reference_min_per_week,
            "cap": params.cap,
        },
    }


def daily_steps_target(age: int | None) -> int:
    """The guideline's steps a day for ``age`` (adults when unknown)."""
    if age is not None and age >= OLDER_FROM_AGE:
        return DAILY_STEPS_OLDER
    return DAILY_STEPS_ADULT


def week_of(t: dt.datetime, tz: ZoneInfo) -> str:
    """The ISO week (``2026-W49``) of ``t`` in ``tz``."""
    year, week, _ = t.astimezone(tz).isocalendar()
    return f"{year}-W{week:02d}"


def weekly(
    legs: Iterable[ActiveLeg], body: Body, tz: ZoneInfo, weeks: list[str]
) -> list[dict[str, Any]]:
    """Totals of each ISO week of ``weeks`` (listed even when empty), newest last."""
    out: dict[str, dict[str, Any]] = {
        w: {"week": w, "walkMinutes": 0.0, "cycleMinutes": 0.0, "steps": 0, "kcal": 0.0}
        for w in weeks
    }
    for leg in legs:
        row = out.get(week_of(leg.start, tz))
        if row is None:
            continue
        e = effort(leg, body)
        row["walkMinutes" if leg.kind == "walk" else "cycleMinutes"] += leg.minutes
        row["steps"] += e.steps
        row["kcal"] += e.kcal
    target = daily_steps_target(body.age) * 7
    rows = []
    for w in weeks:
        row = out[w]
        rows.append(
            {
                "week": w,
                "walkMinutes": round(row["walkMinutes"], 1),
                "cycleMinutes": round(row["cycleMinutes"], 1),
                "steps": row["steps"],
                "kcal": round(row["kcal"], 1),
                "stepsTarget": target,
                "stepsShareOfTarget": round(row["steps"] / target, 4),
                "heat": {
                    "walking": heat_json(HEAT_WALK, row["walkMinutes"], body.age),
                    "cycling": heat_json(HEAT_CYCLE, row["cycleMinutes"], body.age),
                },
            }
        )
    return rows


def last_weeks(now: dt.datetime, tz: ZoneInfo, n: int) -> list[str]:
    """The ISO weeks of the last ``n`` weeks up to ``now``'s, oldest first."""
    return [week_of(now - dt.timedelta(weeks=i), tz) for i in range(n - 1, -1, -1)]


def week_bounds(week: str, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """Monday 00:00 and the next Monday 00:00 of an ISO week in ``tz``."""
    year, w = int(week[:4]), int(week[6:])
    start = dt.datetime.fromisocalendar(year, w, 1).replace(tzinfo=tz)
    return start, start + dt.timedelta(weeks=1)


def active_legs(itinerary: dict[str, Any]) -> list[ActiveLeg]:
    """The walking and cycling legs of an OTP itinerary (times epoch ms, distance m); legs
    without sane times or distance are skipped."""
    out: list[ActiveLeg] = []
    legs = itinerary.get("legs") if isinstance(itinerary, dict) else None
    for leg in legs if isinstance(legs, list) else []:
        if not isinstance(leg, dict):
            continue
        mode = str(leg.get("mode", "")).upper()
        kind: Kind | None = (
            "walk" if mode in WALK_MODES else "cycle" if mode in CYCLE_MODES else None
        )
        if kind is None:
            continue
        try:
            t0, t1 = float(leg["startTime"]) / 1000.0, float(leg["endTime"]) / 1000.0
            distance = float(leg.get("distance", 0.0))
        except (KeyError, TypeError, ValueError):
            continue
        if not (t1 > t0 and distance > 0 and distance < 200_000):
            continue
        out.append(
            ActiveLeg(kind, dt.datetime.fromtimestamp(t0, tz=dt.UTC), (t1 - t0) / 60.0, distance)
        )
    return out

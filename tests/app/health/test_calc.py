"""Active travel, HEAT and the Hisayama score against values computed by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from app.health import activity, hisayama
from app.health.activity import ActiveLeg, Body

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


def test_steps_and_kcal_of_sample_legs() -> None:
    man = Body(height_cm=170.0, weight_kg=70.0, sex="male", age=45)
    walk = ActiveLeg("walk", T0, 15.0, 1200.0)  # 4.8 km/h: 17190, 3.5 MET
    e = activity.effort(walk, man)
    # step 0.415 x 1.70 = 0.7055 m; 1200 / 0.7055 = 1700.9
    assert e.steps == 1701
    assert e.met == 3.5 and e.met_code.startswith("17190")
    assert e.kcal == pytest.approx(3.5 * 70 * 0.25)  # 61.25
    # nothing known: 0.7 m steps (1714.3), 60 kg (3.5 x 60 x 0.25 = 52.5)
    e = activity.effort(walk, Body())
    assert (e.steps, e.kcal) == (1714, pytest.approx(52.5))
    # a woman of 160 cm walking 1 km in 20 min (3 km/h: 17170, 3.0 MET), 50 kg
    woman = Body(height_cm=160.0, weight_kg=50.0, sex="female")
    e = activity.effort(ActiveLeg("walk", T0, 20.0, 1000.0), woman)
    assert e.steps == 1513  # 1000 / (0.413 x 1.60 = 0.6608) = 1513.3
    assert (e.met, e.kcal) == (3.0, pytest.approx(50.0))  # 3.0 x 50 x 1/3
    # cycling 4.5 km in 15 min = 18 km/h: 01020, 6.8 MET; no steps
    e = activity.effort(ActiveLeg("cycle", T0, 15.0, 4500.0), man)
    assert (e.steps, e.met) == (0, 6.8) and e.met_code.startswith("01020")
    assert e.kcal == pytest.approx(6.8 * 70 * 0.25)  # 119.0


def test_heat_reference_doses_and_caps() -> None:
    w, c = activity.HEAT_WALK, activity.HEAT_CYCLE
    assert activity.heat_reduction(w, 168) == pytest.approx(0.11)  # RR 0.89
    assert activity.heat_reduction(w, 84) == pytest.approx(0.055)  # linear
    assert activity.heat_reduction(w, 0.30 / 0.11 * 168) == pytest.approx(0.30)  # 458.2 min
    assert activity.heat_reduction(w, 460) == 0.30 and activity.heat_reduction(w, 900) == 0.30
    assert activity.heat_reduction(c, 100) == pytest.approx(0.10)  # RR 0.90
    assert activity.heat_reduction(c, 50) == pytest.approx(0.05)
    assert activity.heat_reduction(c, 450) == pytest.approx(0.45)
    assert activity.heat_reduction(c, 600) == 0.45
    assert activity.heat_reduction(w, 0) == 0.0
    # ages: walking 20-74, cycling 20-64
    assert activity.heat_json(w, 168, 75)["relativeRiskReduction"] is None
    assert activity.heat_json(w, 168, 74)["relativeRiskReduction"] == 0.11
    assert activity.heat_json(c, 100, 65)["applicable"] is False
    assert activity.heat_json(c, 100, None)["applicable"] is None


def test_weekly_totals_and_guideline() -> None:
    tz = activity.ZoneInfo("Asia/Tokyo")
    legs = [ActiveLeg("walk", T0, 15.0, 1200.0), ActiveLeg("walk", T0, 15.0, 1200.0)]
    week = activity.week_of(T0, tz)
    [row] = activity.weekly(legs, Body(age=70), tz, [week])
    assert row["walkMinutes"] == 30.0 and row["steps"] == 2 * 1714
    assert row["stepsTarget"] == 6000 * 7  # older adult
    assert row["kcal"] == 105.0
    assert row["heat"]["walking"]["relativeRiskReduction"] == round(0.11 * 30 / 168, 4)


def test_active_legs_of_itinerary() -> None:
    ms = int(T0.timestamp() * 1000)
    it = {
        "legs": [
            {"mode": "WALK", "distance": 400.0, "startTime": ms, "endTime": ms + 300_000},
            {"mode": "BUS", "distance": 5000.0, "startTime": ms + 300_000, "endTime": ms + 9e5},
            {"mode": "BICYCLE", "distance": 2000.0, "startTime": ms + 9e5, "endTime": ms + 15e5},
            {"mode": "WALK", "distance": "x", "startTime": ms, "endTime": ms + 1},
            {"mode": "WALK", "distance": 10.0, "startTime": ms + 5, "endTime": ms},
        ]
    }
    legs = activity.active_legs(it)
    assert [(leg.kind, leg.minutes, leg.distance_m) for leg in legs] == [
        ("walk", 5.0, 400.0),
        ("cycle", 10.0, 2000.0),
    ]
    assert activity.active_legs({"legs": "no"}) == []


def _profile(**kw: object) -> hisayama.Inputs:
    base: dict[str, object] = {
        "age": 55,
        "sex": "male",
        "systolic": 145.0,
        "ldl": 150.0,
        "hdl": 45.0,
        "smoker": True,
        "hba1c": 5.5,
        "fasting_glucose": None,
    }
    base.update(kw)
    return hisayama.Inputs(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "total", "band", "risk", "category"),
    [
        # man 55: 7 + SBP 145 (3) + LDL 150 (2) + HDL 45 (1) + smoking (2) = 15 -> 6.0 %
        ({}, 15, "50-59", 6.0, "medium"),
        # woman 45, all optimal: 0 points -> < 1 %
        (
            {
                "sex": "female",
                "age": 45,
                "systolic": 115.0,
                "ldl": 110.0,
                "hdl": 65.0,
                "smoker": False,
                "hba1c": 5.4,
            },
            0,
            "40-49",
            1.0,
            "low",
        ),
        # man 72: 7 + 4 + glucose intolerance (fasting 115) 1 + 3 + 2 + 2 = 19 -> 41.1 %
        (
            {
                "age": 72,
                "systolic": 165.0,
                "ldl": 165.0,
                "hdl": 38.0,
                "hba1c": None,
                "fasting_glucose": 115.0,
            },
            19,
            "70-79",
            41.1,
            "high",
        ),
        # woman 65 with diabetes (HbA1c 7.0): 0 + 1 + 1 + 1 + 1 = 4 -> 3.0 %, high by diabetes
        (
            {
                "sex": "female",
                "age": 65,
                "systolic": 125.0,
                "ldl": 130.0,
                "hdl": 55.0,
                "smoker": False,
                "hba1c": 7.0,
            },
            4,
            "60-69",
            3.0,
            "high",
        ),
    ],
)
def test_hisayama_profiles(
    kw: dict[str, object], total: int, band: str, risk: float, category: str
) -> None:
    r = hisayama.score(_profile(**kw))
    assert (r["totalPoints"], r["ageBand"], r["risk10y"]["percent"], r["category"]) == (
        total,
        band,
        risk,
        category,
    )


def test_hisayama_refusals() -> None:
    with pytest.raises(hisayama.NotApplicable) as exc:
        hisayama.score(_profile(age=35))
    assert exc.value.code == "age_out_of_range"
    with pytest.raises(hisayama.NotApplicable) as exc:
        hisayama.score(_profile(ldl=None, hba1c=None))
    assert exc.value.missing == ["ldl", "hba1c_or_fasting_glucose"]
    assert hisayama.category(1.9) == "low" and hisayama.category(2.0) == "medium"
    assert hisayama.category(10.0) == "high"


def test_hisayama_published_scale() -> None:
    """The two facts of the JAS 2022 chart confirmed from copies (see hisayama.py): women score
    7 points fewer than men, and totals run from 0 to 19 (one risk row per total)."""
    man = hisayama.score(_profile())
    woman = hisayama.score(_profile(sex="female"))
    assert man["totalPoints"] - woman["totalPoints"] == 7
    assert len(hisayama.RISK_TABLE) == 20

"""10-year risk of atherosclerotic cardiovascular disease (ASCVD: coronary heart disease and
atherothrombotic brain infarction) by the Hisayama score, as the Japan Atherosclerosis Society
(JAS) Guidelines for Prevention of Atherosclerotic Cardiovascular Diseases 2022 use it
(Honda T et al., J Atheroscler Thromb 2022;29(3):345-361). Pure functions.

Points: sex (male 7), systolic BP (<120: 0, 120-129: 1, 130-139: 2, 140-159: 3, >=160: 4),
glucose intolerance (1), LDL-C (<120: 0, 120-139: 1, 140-159: 2, >=160: 3), HDL-C (>=60: 0,
40-59: 1, <40: 2), smoking (2). The total gives the predicted 10-year risk per age band
(40-49, 50-59, 60-69, 70-79; :data:`RISK_TABLE`); the guideline's categories are low (< 2 %),
medium (2 to < 10 %) and high (>= 10 %). Its flowchart puts a person with diabetes (also CKD
or PAD, not recorded here) in the high category whatever the score.

What was checked against published material (2026-12-06, stored copies of public pages):

* **The model.** Honda T, et al. "Development and Validation of a Risk Prediction Model for
  Atherosclerotic Cardiovascular Disease in Japanese Adults: The Hisayama Study". J Atheroscler
  Thromb 2022;29(3):345-361, doi:10.5551/jat.61960 (PubMed abstract): 2,454 participants aged
  40-84 without cardiovascular disease, followed for 24 years; an ASCVD event is the first
  coronary heart disease or atherothrombotic brain infarction; predictors age, sex, systolic
  blood pressure, diabetes, HDL-C, LDL-C (the stored abstract ends there); a simplified scoring
  system was derived from the model. This is not Arima H, et al., Hypertens Res 2009;32:1119-22
  (doi:10.1038/hr.2009.161), the earlier Hisayama model of stroke and coronary heart disease
  (2,634 participants, 14 years; age, sex, SBP, diabetes, LDL-C, HDL-C, smoking), which the JAS
  2022 guideline does not use for its chart and which is not implemented here.
* **The inputs and their bands.** A calculator page implementing "久山町研究によるスコア" as
  recommended by the JAS 2022 guideline (https://medisophia.com/article/show/zBdoFUBtDIrW/
  Q5jAC4aSiG63, citing https://www.j-athero.org/jp/jas_gl2022/) asks exactly: age 40-49 /
  50-59 / 60-69 / 70-79; sex; systolic BP < 120 / 120-129 / 130-139 / 140-159 / >= 160;
  glucose intolerance (耐糖能異常) yes/no; LDL-C < 120 / 120-139 / 140-159 / >= 160; HDL-C
  >= 60 / 40-59 / < 40; smoking, a former smoker counting as a non-smoker ("禁煙していればなし",
  as :mod:`app.health.api` maps ``former``). These match the bands below.
* **The sex points.** 家庭画報 2023年1月号 (https://kateigaho.com/article/detail/156961/page2),
  reproducing the chart "久山町スコアに基づく動脈硬化性疾患発症予測モデル" from the JAS 2022
  guideline (2,454 residents aged 40-84, followed 1988-2012), says women score 7 points
  fewer than men: male 7 below. A JAS-2022 calculator description (crazydev084/calculation-
  tool-by-vue.js, calc29) gives the total's range as 0-19 points, which is what the bands
  below add up to (7 + 4 + 1 + 3 + 2 + 2 = 19), and :data:`RISK_TABLE` has 20 rows (0-19).
* **Not confirmed:** the points of each other band and the risk table (:data:`RISK_TABLE`),
  taken from a public transcription of the guideline's chart (Code for FUKUI's hisayama-calc):
  no stored copy of the chart or of the paper's score sheet was found (searched 2026-12-06:
  pages, code; Japanese and English queries on the points, the bands and the risk table).
  "1.0" in the 40-49 and 50-59 columns is the chart's "< 1 %". The glucose thresholds
  (:data:`DIABETES_*`, :data:`INTOLERANCE_*`) are the Japan Diabetes Society's diagnostic
  values, chosen here to decide "diabetes" and "glucose intolerance" from a checkup; the
  guideline's own definition of the factor was not confirmed. Check the points and the table against the guideline
  before clinical use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

AGE_BANDS: tuple[tuple[int, int], ...] = ((40, 49), (50, 59), (60, 69), (70, 79))

#: Predicted 10-year ASCVD risk (%) by total points (index) and age band (column).
RISK_TABLE: tuple[tuple[float, float, float, float], ...] = (
    (1.0, 1.0, 1.7, 3.4),
    (1.0, 1.0, 1.9, 3.9),
    (1.0, 1.0, 2.2, 4.5),
    (1.0, 1.1, 2.6, 5.2),
    (1.0, 1.3, 3.0, 6.0),
    (1.0, 1.4, 3.4, 6.9),
    (1.0, 1.7, 3.9, 7.9),
    (1.0, 1.9, 4.5, 9.1),
    (1.1, 2.2, 5.2, 10.4),
    (1.3, 2.6, 6.0, 11.9),
    (1.4, 3.0, 6.9, 13.6),
    (1.7, 3.4, 7.9, 15.5),
    (1.9, 3.9, 9.1, 17.7),
    (2.2, 4.5, 10.4, 20.2),
    (2.6, 5.2, 11.9, 22.9),
    (3.0, 6.0, 13.6, 25.9),
    (3.4, 6.9, 15.5, 29.3),
    (3.9, 7.9, 17.7, 33.0),
    (4.5, 9.1, 20.2, 37.0),
    (5.2, 10.4, 22.9, 41.1),
)

DIABETES_HBA1C = 6.5  # %
DIABETES_FASTING_GLUCOSE = 126.0  # mg/dL
INTOLERANCE_HBA1C = 6.0  # %
INTOLERANCE_FASTING_GLUCOSE = 110.0  # mg/dL

SOURCE = (
    "Hisayama score, JAS Guidelines for Prevention of Atherosclerotic Cardiovascular "
    "Diseases 2022 (Honda T et al., J Atheroscler Thromb 2022;29:345-361); factors and "
    "bands checked, points and risk table as transcribed by Code for FUKUI hisayama-calc, "
    "unverified against the guideline"
)


class NotApplicable(ValueError):
    """The score cannot be computed: ``code`` says why, ``missing`` which inputs lack."""

    def __init__(self, code: str, message: str, missing: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.missing = missing or []


@dataclass(frozen=True)
class Inputs:
    """A checkup's values the score reads (None: not recorded)."""

    age: int | None
    sex: str | None
    systolic: float | None
    ldl: float | None
    hdl: float | None
    smoker: bool | None
    hba1c: float | None = None
    fasting_glucose: float | None = None


def _sbp_points(v: float) -> int:
    return 0 if v < 120 else 1 if v < 130 else 2 if v < 140 else 3 if v < 160 else 4


def _ldl_points(v: float) -> int:
    return 0 if v < 120 else 1 if v < 140 else 2 if v < 160 else 3


def _hdl_points(v: float) -> int:
    return 2 if v < 40 else 1 if v < 60 else 0


def glucose_status(hba1c: float | None, fasting: float | None) -> str | None:
    """``diabetes``, ``intolerance``, ``normal``, or None when neither value is known."""
    if hba1c is None and fasting is None:
        return None
    if (hba1c is not None and hba1c >= DIABETES_HBA1C) or (
        fasting is not None and fasting >= DIABETES_FASTING_GLUCOSE
    ):
        return "diabetes"
    if (hba1c is not None and hba1c >= INTOLERANCE_HBA1C) or (
        fasting is not None and fasting >= INTOLERANCE_FASTING_GLUCOSE
    ):
        return "intolerance"
    return "normal"


def category(risk_percent: float) -> str:
    """The guideline's category of a 10-year risk."""
    return "low" if risk_percent < 2.0 else "medium" if risk_percent < 10.0 else "high"


def score(inputs: Inputs) -> dict[str, Any]:
    """The score, its points per factor, the risk and category, and the inputs it used.

    Raises
    ------
    NotApplicable
        ``missing_inputs`` (the list in ``missing``) or ``age_out_of_range`` (40-79 only).
    """
    needed = {
        "age": inputs.age,
        "sex": inputs.sex,
        "systolic": inputs.systolic,
        "ldl": inputs.ldl,
        "hdl": inputs.hdl,
        "smoking": inputs.smoker,
    }
    glucose = glucose_status(inputs.hba1c, inputs.fasting_glucose)
    missing = [k for k, v in needed.items() if v is None]
    if glucose is None:
        missing.append("hba1c_or_fasting_glucose")
    if missing:
        raise NotApplicable("missing_inputs", "the score needs more checkup values", missing)
    assert inputs.age is not None and inputs.systolic is not None
    assert inputs.ldl is not None and inputs.hdl is not None
    band = next((i for i, (lo, hi) in enumerate(AGE_BANDS) if lo <= inputs.age <= hi), None)
    if band is None:
        raise NotApplicable("age_out_of_range", "the Hisayama score covers ages 40 to 79")
    points = {
        "sex": 7 if inputs.sex == "male" else 0,
        "systolic": _sbp_points(inputs.systolic),
        "glucoseIntolerance": 1 if glucose in ("intolerance", "diabetes") else 0,
        "ldl": _ldl_points(inputs.ldl),
        "hdl": _hdl_points(inputs.hdl),
        "smoking": 2 if inputs.smoker else 0,
    }
    total = sum(points.values())
    risk = RISK_TABLE[total][band]
    cat = category(risk)
    reasons = []
    if glucose == "diabetes":
        cat = "high"  # the guideline's flowchart: diabetes is high risk whatever the score
        reasons.append("diabetes")
    lo, hi = AGE_BANDS[band]
    return {
        "model": "hisayama",
        "source": SOURCE,
        "points": points,
        "totalPoints": total,
        "ageBand": f"{lo}-{hi}",
        "risk10y": {"percent": risk, "lessThan": risk == 1.0 and band <= 1},
        "category": cat,
        "categoryReasons": reasons,
        "inputs": {
            "age": inputs.age,
            "sex": inputs.sex,
            "systolic": inputs.systolic,
            "ldl": inputs.ldl,
            "hdl": inputs.hdl,
            "smoker": inputs.smoker,
            "hba1c": inputs.hba1c,
            "fastingGlucose": inputs.fasting_glucose,
            "glucose": glucose,
        },
    }

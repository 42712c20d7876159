"""Checkup values as FHIR R4 Observations (LOINC codes, JP Core profiles) and Bundles.

:data:`KINDS` is the one table of what the service records: the LOINC code, the UCUM unit, the
plausible range and the JP Core profile of each kind. :func:`observation` writes a stored value
as an Observation; :func:`parse_bundle` reads a Bundle (``collection``, ``transaction``,
``batch`` or ``searchset``) of Observations into values, refusing with :class:`FhirError`
(code, message, the entry and path at fault) what it cannot read exactly.

The JP Core profile URLs follow JP Core v1 (``http://jpfhir.jp/fhir/core/StructureDefinition/``
JP_Observation_BodyMeasurement / _VitalSigns / _LabResult / _SocialHistory / _Common); they are
stated in ``meta.profile`` and were not validated against the JP Core package here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
GENDER = "http://hl7.org/fhir/administrative-gender"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
JP_CORE = "http://jpfhir.jp/fhir/core/StructureDefinition/"


@dataclass(frozen=True)
class Kind:
    """One kind of checkup value."""

    key: str
    loinc: str
    display: str
    unit: str  # UCUM
    low: float
    high: float
    profile: str
    category: str
    #: Other LOINC codes read as this kind on import.
    aliases: tuple[str, ...] = ()


KINDS: dict[str, Kind] = {
    k.key: k
    for k in (
        Kind("height", "8302-2", "Body height", "cm", 50, 250, "BodyMeasurement", "exam"),
        Kind("weight", "29463-7", "Body weight", "kg", 10, 300, "BodyMeasurement", "exam"),
        Kind(
            "bmi",
            "39156-5",
            "Body mass index (BMI) [Ratio]",
            "kg/m2",
            10,
            80,
            "BodyMeasurement",
            "exam",
        ),
        Kind(
            "systolic",
            "8480-6",
            "Systolic blood pressure",
            "mm[Hg]",
            60,
            260,
            "VitalSigns",
            "vital-signs",
        ),
        Kind(
            "diastolic",
            "8462-4",
            "Diastolic blood pressure",
            "mm[Hg]",
            30,
            160,
            "VitalSigns",
            "vital-signs",
        ),
        Kind(
            "hba1c",
            "4548-4",
            "Hemoglobin A1c/Hemoglobin.total in Blood",
            "%",
            3,
            20,
            "LabResult",
            "laboratory",
        ),
        Kind(
            "fasting_glucose",
            "1558-6",
            "Fasting glucose [Mass/volume] in Serum or Plasma",
            "mg/dL",
            30,
            600,
            "LabResult",
            "laboratory",
        ),
        Kind(
            "ldl",
            "13457-7",
            "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation",
            "mg/dL",
            10,
            400,
            "LabResult",
            "laboratory",
            ("18262-6",),
        ),
        Kind(
            "hdl",
            "2085-9",
            "Cholesterol in HDL [Mass/volume] in Serum or Plasma",
            "mg/dL",
            5,
            200,
            "LabResult",
            "laboratory",
        ),
        Kind("age", "30525-0", "Age", "a", 0, 130, "Common", "survey"),
        Kind(
            "smoking",
            "72166-2",
            "Tobacco smoking status",
            "",
            0,
            0,
            "SocialHistory",
            "social-history",
        ),
        Kind("sex", "46098-0", "Sex", "", 0, 0, "Common", "survey"),
    )
}
#: Coded kinds (no quantity) and their answers.
SMOKING_CODES = {
    "current": ("77176002", "Smoker"),
    "former": ("8517006", "Ex-smoker"),
    "never": ("266919005", "Never smoked tobacco"),
}
#: Other SNOMED codes of a current smoker read on import.
CURRENT_SMOKER_ALIASES = frozenset(
    {"449868002", "428041000124106", "428061000124105", "428071000124103", "65568007"}
)
SEXES = ("male", "female")
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
BY_LOINC: dict[str, Kind] = {
    **{k.loinc: k for k in KINDS.values()},
    **{a: k for k in KINDS.values() for a in k.aliases},
}


class FhirError(ValueError):
    """A resource the service cannot read: an API 422 ``code`` with the place at fault."""

    def __init__(self, code: str, message: str, path: str, entry: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path
        self.entry = entry

    def details(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.entry is not None:
            out["entry"] = self.entry
        return out


@dataclass(frozen=True)
class Value:
    """One recorded value: a number (``value``) or a code (``code``: smoking, sex)."""

    kind: str
    effective: dt.datetime
    value: float | None = None
    code: str | None = None


def check_value(kind: str, value: float, path: str) -> float:
    """``value`` if it lies in the kind's plausible range, else :class:`FhirError`."""
    k = KINDS[kind]
    if not (k.low <= value <= k.high):
        raise FhirError(
            "implausible_value", f"{kind} must lie in {k.low:g}..{k.high:g} {k.unit}", path
        )
    return value


def check_code(kind: str, code: str, path: str) -> str:
    """``code`` if it is an answer the kind knows, else :class:`FhirError`."""
    allowed = SMOKING_CODES if kind == "smoking" else SEXES
    if code not in allowed:
        raise FhirError("invalid_code", f"{kind} must be one of {', '.join(allowed)}", path)
    return code


def _codeable(kind: Kind) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": kind.loinc, "display": kind.display}]}


def _quantity(kind: Kind, value: float) -> dict[str, Any]:
    return {"value": value, "unit": kind.unit, "system": UCUM, "code": kind.unit}


def observation(
    obs_id: str, user_id: str, kind: str, effective: dt.datetime, values: dict[str, Any]
) -> dict[str, Any]:
    """A stored value as a FHIR R4 Observation.

    ``values``: ``{"value": x}``, ``{"code": c}``, or for blood pressure ``{"systolic": s,
    "diastolic": d}`` (kind ``blood_pressure``: the panel 85354-9 with both components).
    """
    base: dict[str, Any] = {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "subject": {"reference": f"Patient/{user_id}"},
        "effectiveDateTime": effective.astimezone(dt.UTC).isoformat(),
    }
    if kind == "blood_pressure":
        sys_k, dia_k = KINDS["systolic"], KINDS["diastolic"]
        return {
            **base,
            "meta": {"profile": [JP_CORE + "JP_Observation_VitalSigns"]},
            "category": [{"coding": [{"system": CATEGORY, "code": "vital-signs"}]}],
            "code": {"coding": [{"system": LOINC, "code": BP_PANEL[0], "display": BP_PANEL[1]}]},
            "component": [
                {"code": _codeable(sys_k), "valueQuantity": _quantity(sys_k, values["systolic"])},
                {"code": _codeable(dia_k), "valueQuantity": _quantity(dia_k, values["diastolic"])},
            ],
        }
    k = KINDS[kind]
    out = {
        **base,
        "meta": {"profile": [JP_CORE + "JP_Observation_" + k.profile]},
        "category": [{"coding": [{"system": CATEGORY, "code": k.category}]}],
        "code": _codeable(k),
    }
    if kind == "smoking":
        code, display = SMOKING_CODES[values["code"]]
        out["valueCodeableConcept"] = {
            "coding": [{"system": SNOMED, "code": code, "display": display}]
        }
    elif kind == "sex":
        out["valueCodeableConcept"] = {"coding": [{"system": GENDER, "code": values["code"]}]}
    else:
        out["valueQuantity"] = _quantity(k, values["value"])
    return out


def bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``collection`` Bundle of ``resources``."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(),
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }


# --- import ----------------------------------------------------------------------------------
BUNDLE_TYPES = frozenset({"collection", "transaction", "batch", "searchset"})
MAX_ENTRIES = 500


def _obj(v: Any, path: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise FhirError("invalid_bundle", "must be a JSON object", path)
    return v


def _loinc_of(code: Any, path: str) -> str:
    codings = _obj(code, path).get("coding")
    if not isinstance(codings, list) or not codings:
        raise FhirError("invalid_bundle", "needs a coding list", f"{path}.coding")
    for i, c in enumerate(codings):
        c = _obj(c, f"{path}.coding[{i}]")
        if c.get("system") == LOINC and isinstance(c.get("code"), str):
            return str(c["code"])
    raise FhirError("unknown_code", "needs a LOINC coding (system http://loinc.org)", path)


def _number(q: Any, kind: Kind, path: str) -> float:
    q = _obj(q, path)
    v = q.get("value")
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise FhirError("invalid_bundle", "valueQuantity.value must be a number", f"{path}.value")
    unit = q.get("code", q.get("unit"))
    if unit != kind.unit:
        raise FhirError(
            "unit_mismatch", f"{kind.key} must be in {kind.unit} (UCUM)", f"{path}.code"
        )
    return check_value(kind.key, float(v), f"{path}.value")


def _answer(concept: Any, kind: Kind, path: str) -> str:
    codings = _obj(concept, path).get("coding")
    if not isinstance(codings, list):
        raise FhirError("invalid_bundle", "needs a coding list", f"{path}.coding")
    for c in codings:
        if not isinstance(c, dict):
            continue
        system, code = c.get("system"), c.get("code")
        if kind.key == "smoking" and system == SNOMED:
            for name, (snomed, _) in SMOKING_CODES.items():
                if code == snomed:
                    return name
            if code in CURRENT_SMOKER_ALIASES:
                return "current"
        if kind.key == "sex" and system == GENDER and code in SEXES:
            return str(code)
        if kind.key == "sex" and system == LOINC and code in ("LA2-8", "LA3-6"):
            return "male" if code == "LA2-8" else "female"
    raise FhirError("invalid_code", f"no {kind.key} answer this service knows", path)


def parse_time(v: Any, path: str) -> dt.datetime:
    """An ISO 8601 date or date-time (a date is midnight UTC; a naive time is UTC)."""
    if not isinstance(v, str):
        raise FhirError("invalid_bundle", "effectiveDateTime is required (ISO 8601)", path)
    try:
        t = dt.datetime.fromisoformat(v)
    except ValueError as exc:
        raise FhirError("invalid_bundle", "effectiveDateTime must be ISO 8601", path) from exc
    t = t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    if t > dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
        raise FhirError("invalid_bundle", "effectiveDateTime lies in the future", path)
    return t


def parse_observation(res: dict[str, Any], path: str) -> list[Value]:
    """The values of one Observation (two for a blood-pressure panel)."""
    if res.get("resourceType") != "Observation":
        raise FhirError("unsupported_resource", "only Observation resources", path)
    if res.get("status") not in ("final", "amended", "corrected", "preliminary"):
        raise FhirError(
            "invalid_bundle", "status must be final, amended, corrected or preliminary", path
        )
    when = parse_time(res.get("effectiveDateTime"), f"{path}.effectiveDateTime")
    loinc = _loinc_of(res.get("code"), f"{path}.code")
    if loinc == BP_PANEL[0]:
        comps = res.get("component")
        if not isinstance(comps, list) or not comps:
            raise FhirError("invalid_bundle", "a BP panel needs components", f"{path}.component")
        out = []
        for i, comp in enumerate(comps):
            cpath = f"{path}.component[{i}]"
            k = BY_LOINC.get(_loinc_of(_obj(comp, cpath).get("code"), f"{cpath}.code"))
            if k is None or k.key not in ("systolic", "diastolic"):
                raise FhirError("unknown_code", "components are 8480-6 or 8462-4", cpath)
            q = _number(comp.get("valueQuantity"), k, f"{cpath}.valueQuantity")
            out.append(Value(k.key, when, value=q))
        return out
    kind = BY_LOINC.get(loinc)
    if kind is None:
        raise FhirError("unknown_code", f"LOINC {loinc} is not a code this service records", path)
    if kind.key in ("smoking", "sex"):
        code = _answer(res.get("valueCodeableConcept"), kind, f"{path}.valueCodeableConcept")
        return [Value(kind.key, when, code=code)]
    return [
        Value(
            kind.key, when, value=_number(res.get("valueQuantity"), kind, f"{path}.valueQuantity")
        )
    ]


def parse_bundle(doc: Any) -> list[Value]:
    """Every value of a Bundle of Observations; :class:`FhirError` at the first fault."""
    doc = _obj(doc, "$")
    if doc.get("resourceType") != "Bundle":
        raise FhirError("invalid_bundle", "resourceType must be Bundle", "$.resourceType")
    if doc.get("type") not in BUNDLE_TYPES:
        raise FhirError(
            "invalid_bundle", f"type must be one of {', '.join(sorted(BUNDLE_TYPES))}", "$.type"
        )
    entries = doc.get("entry")
    if not isinstance(entries, list) or not entries:
        raise FhirError("invalid_bundle", "entry must be a non-empty list", "$.entry")
    if len(entries) > MAX_ENTRIES:
        raise FhirError("too_many_entries", f"at most {MAX_ENTRIES} entries", "$.entry")
    out: list[Value] = []
    for i, e in enumerate(entries):
        path = f"$.entry[{i}].resource"
        try:
            out += parse_observation(_obj(_obj(e, f"$.entry[{i}]").get("resource"), path), path)
        except FhirError as exc:
            exc.entry = i
            raise
    return out

"""``/api/v1/health``: checkups (FHIR), risk, active travel, consent, audit, watch-over.

A resident's own data live under ``/health/me``; anyone else reads a resident's data under
``/health/residents/{id}`` (health staff of an organisation, or a user, with the resident's
consent in force for that purpose) or ``/health/watch/{id}`` (a watcher with ``watch_over``
consent), and every such read or act is written to the resident's audit log. Without consent:
403 ``no_consent`` (also when no such resident exists: nothing is told). No value is ever
logged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from pydantic import Field

from app.api.rides import CANCEL_RESPONSES, cancel_answer
from app.api.schemas import AUTHED, BODY, ErrorBody, error_responses
from app.errors import ApiError
from app.health import activity, fhir, hisayama, store
from app.health.models import Consent, Observation, Organisation
from app.health.service import HealthService
from app.health.watch_rides import CoreRides
from app.idempotency import HEADER as IDEMPOTENCY_HEADER
from app.identity.deps import CurrentPrincipal, Principal, require_roles
from app.identity.roles import Role
from app.models.request_model import RequestModel

router = APIRouter(prefix="/health", tags=["health"], responses=AUTHED)

ORG_KINDS = ("city_health", "clinic", "care_provider")
ORG_PURPOSES = ("records", "records_write", "activity")
USER_PURPOSES = ("records", "activity", "watch_over")
MAX_CONSENT_DAYS = 730
MAX_WEEKS = 52
#: Run on its own, the health service acts on rides through the core (``core_url``).
NOT_HERE: dict[int | str, dict[str, Any]] = {
    501: {
        "model": ErrorBody,
        "description": "Run alone without TSUNAGU_CORE_URL (`not_in_this_process`).",
    },
    503: {
        "model": ErrorBody,
        "description": "Run alone: the core cannot be reached (`core_unavailable`, with "
        "Retry-After; retry with the same Idempotency-Key).",
    },
}
#: The client's key of a watch-over ride call, forwarded to the core when run alone.
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        min_length=1,
        max_length=255,
        description="Run alone: forwarded to the core, so a retry with it acts once.",
    ),
]
#: CheckupIn's field of a kind, where the names differ.
FIELDS = {"height": "height_cm", "weight": "weight_kg"}


def get_health(request: Request) -> HealthService:
    """The health service of this process (503 while starting)."""
    services = getattr(request.app.state, "services", None)
    service = getattr(services, "health", None)
    if service is None:
        raise ApiError(503, "unavailable", "The health service is starting.")
    return service  # type: ignore[no-any-return]


HealthDep = Annotated[HealthService, Depends(get_health)]


# --- bodies ----------------------------------------------------------------------------------
class CheckupIn(RequestModel):
    """One checkup's results; give any of them (at least one)."""

    date: dt.date | None = Field(None, description="The checkup's date; today by default.")
    height_cm: float | None = None
    weight_kg: float | None = None
    bmi: float | None = Field(None, description="Computed from height and weight if absent.")
    systolic: float | None = Field(None, description="mmHg (with diastolic)")
    diastolic: float | None = Field(None, description="mmHg (with systolic)")
    hba1c: float | None = Field(None, description="% (NGSP)")
    fasting_glucose: float | None = Field(None, description="mg/dL")
    ldl: float | None = Field(None, description="LDL cholesterol, mg/dL")
    hdl: float | None = Field(None, description="HDL cholesterol, mg/dL")
    smoking: Literal["current", "former", "never"] | None = None
    age: int | None = None
    sex: Literal["male", "female"] | None = None


class Recipient(RequestModel):
    type: Literal["organisation", "user"]
    id: str = Field(min_length=1, max_length=128)


class ConsentIn(RequestModel):
    """Opt in: one recipient, one purpose, until ``expires_at``."""

    recipient: Recipient
    purpose: Literal["records", "records_write", "activity", "watch_over"] = Field(
        description="records: read checkups and risk; records_write: record checkups (an "
        "organisation); activity: weekly active travel; watch_over: ride notices, weekly "
        "activity and booking rides on the resident's behalf (a user)."
    )
    expires_at: dt.datetime


class OrganisationIn(RequestModel):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["city_health", "clinic", "care_provider"]


class MemberIn(RequestModel):
    user_id: str = Field(min_length=1, max_length=128)


class RideChangeIn(RequestModel):
    earliest_pickup: float = Field(description="Unix seconds: the new earliest pick-up.")


# --- shapes ----------------------------------------------------------------------------------
def _obs_json(o: Observation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(o.id),
        "kind": o.kind,
        "effective": store.aware(o.effective_at).isoformat(),
        "recordedBy": "self" if o.recorded_by == o.user_id else "staff",
    }
    if o.kind == "blood_pressure":
        out.update(
            loinc=fhir.BP_PANEL[0],
            systolic=o.values["systolic"],
            diastolic=o.values["diastolic"],
            unit="mm[Hg]",
        )
    else:
        k = fhir.KINDS[o.kind]
        out["loinc"] = k.loinc
        if "code" in o.values:
            out["code"] = o.values["code"]
        else:
            out.update(value=o.values["value"], unit=k.unit)
    return out


def _fhir_of(o: Observation) -> dict[str, Any]:
    return fhir.observation(str(o.id), o.user_id, o.kind, store.aware(o.effective_at), o.values)


def _consent_json(c: Consent, now: dt.datetime) -> dict[str, Any]:
    expires = store.aware(c.expires_at)
    state = "revoked" if c.revoked_at else "expired" if expires <= now else "active"
    return {
        "id": str(c.id),
        "residentId": c.resident_id,
        "recipient": {"type": c.recipient_type, "id": c.recipient_id},
        "purpose": c.purpose,
        "grantedAt": store.aware(c.granted_at).isoformat(),
        "expiresAt": expires.isoformat(),
        "revokedAt": store.aware(c.revoked_at).isoformat() if c.revoked_at else None,
        "state": state,
    }


def _latest(rows: list[Observation]) -> dict[str, Observation]:
    """The newest observation of each kind (``rows`` oldest first)."""
    out: dict[str, Observation] = {}
    for o in rows:
        out[o.kind] = o
    return out


def _body(rows: list[Observation]) -> activity.Body:
    last = _latest(rows)

    def num(kind: str) -> float | None:
        o = last.get(kind)
        return float(o.values["value"]) if o is not None else None

    age = num("age")
    sex = last["sex"].values["code"] if "sex" in last else None
    return activity.Body(num("height"), num("weight"), sex, None if age is None else int(age))


# --- recording -------------------------------------------------------------------------------
def _checkup_rows(body: CheckupIn, user_id: str, actor: str) -> list[Observation]:
    day = body.date or dt.datetime.now(dt.UTC).date()
    when = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    if when > dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
        raise ApiError(422, "invalid_checkup", "the checkup's date lies in the future")
    if (body.systolic is None) != (body.diastolic is None):
        raise ApiError(422, "invalid_checkup", "give systolic and diastolic together")
    values: list[tuple[str, dict[str, Any]]] = []
    try:
        for kind in ("height", "weight", "bmi", "hba1c", "fasting_glucose", "ldl", "hdl"):
            v = getattr(body, FIELDS.get(kind, kind))
            if v is not None:
                values.append((kind, {"value": fhir.check_value(kind, float(v), kind)}))
        if body.bmi is None and body.height_cm is not None and body.weight_kg is not None:
            bmi = round(body.weight_kg / (body.height_cm / 100.0) ** 2, 1)
            values.append(("bmi", {"value": fhir.check_value("bmi", bmi, "bmi")}))
        if body.systolic is not None and body.diastolic is not None:
            values.append(
                (
                    "blood_pressure",
                    {
                        "systolic": fhir.check_value("systolic", body.systolic, "systolic"),
                        "diastolic": fhir.check_value("diastolic", body.diastolic, "diastolic"),
                    },
                )
            )
        if body.age is not None:
            values.append(("age", {"value": fhir.check_value("age", float(body.age), "age")}))
    except fhir.FhirError as exc:
        raise ApiError(422, exc.code, exc.message, exc.details()) from exc
    if body.smoking is not None:
        values.append(("smoking", {"code": body.smoking}))
    if body.sex is not None:
        values.append(("sex", {"code": body.sex}))
    if not values:
        raise ApiError(422, "empty_checkup", "give at least one result")
    return [
        Observation(user_id=user_id, kind=k, values=v, effective_at=when, recorded_by=actor)
        for k, v in values
    ]


def _rows_of_values(values: list[fhir.Value], user_id: str) -> list[Observation]:
    """Imported values as rows; a blood-pressure pair of the same time becomes one panel."""
    rows: list[Observation] = []
    pending: dict[dt.datetime, dict[str, float]] = {}
    for v in values:
        if v.kind in ("systolic", "diastolic"):
            pending.setdefault(v.effective, {})[v.kind] = float(v.value or 0.0)
            continue
        payload = {"code": v.code} if v.code is not None else {"value": v.value}
        rows.append(
            Observation(
                user_id=user_id,
                kind=v.kind,
                values=payload,
                effective_at=v.effective,
                recorded_by=user_id,
            )
        )
    for when, bp in pending.items():
        if set(bp) != {"systolic", "diastolic"}:
            raise ApiError(
                422,
                "invalid_bundle",
                "blood pressure needs systolic and diastolic at the same time",
                {"path": "$.entry", "effective": when.isoformat()},
            )
        rows.append(
            Observation(
                user_id=user_id,
                kind="blood_pressure",
                values=bp,
                effective_at=when,
                recorded_by=user_id,
            )
        )
    return rows


def _risk(rows: list[Observation], legs: list[activity.ActiveLeg], tz: Any) -> dict[str, Any]:
    last = _latest(rows)

    def num(kind: str) -> float | None:
        o = last.get(kind)
        return float(o.values["value"]) if o is not None else None

    bp = last.get("blood_pressure")
    smoking = last["smoking"].values["code"] if "smoking" in last else None
    age = num("age")
    inputs = hisayama.Inputs(
        age=None if age is None else int(age),
        sex=last["sex"].values["code"] if "sex" in last else None,
        systolic=float(bp.values["systolic"]) if bp is not None else None,
        ldl=num("ldl"),
        hdl=num("hdl"),
        smoker=None if smoking is None else smoking == "current",
        hba1c=num("hba1c"),
        fasting_glucose=num("fasting_glucose"),
    )
    try:
        result = hisayama.score(inputs)
    except hisayama.NotApplicable as exc:
        return {
            "model": "hisayama",
            "source": hisayama.SOURCE,
            "available": False,
            "reason": exc.code,
            "message": exc.message,
            "missing": exc.missing,
        }
    result["available"] = True
    result["advice"] = _advice(result, legs, _body(rows), tz)
    return result


def _advice(
    risk: dict[str, Any], legs: list[activity.ActiveLeg], body: activity.Body, tz: Any
) -> dict[str, Any]:
    """Advice tying the risk to the resident's own active travel of the last 4 weeks."""
    now = dt.datetime.now(dt.UTC)
    weeks = activity.weekly(legs, body, tz, activity.last_weeks(now, tz, 4))
    walk = sum(w["walkMinutes"] for w in weeks) / 4
    cycle = sum(w["cycleMinutes"] for w in weeks) / 4
    steps_day = sum(w["steps"] for w in weeks) / 28
    target = activity.daily_steps_target(body.age)
    heat_now = activity.heat_reduction(activity.HEAT_WALK, walk)
    more = max(activity.HEAT_WALK.reference_min_per_week - walk, 0.0)
    heat_ref = activity.heat_reduction(activity.HEAT_WALK, max(walk, 168.0))
    messages = []
    if risk["category"] != "low":
        messages.append(
            "Your 10-year risk is not low: regular walking and cycling help lower blood "
            "pressure and LDL cholesterol and raise HDL cholesterol; ask your doctor too."
        )
    if more > 0:
        messages.append(
            f"Your trips gave about {walk:.0f} min of walking a week; {more:.0f} more minutes "
            "a week (e.g. getting off one stop earlier) reaches the WHO HEAT reference of "
            "168 min."
        )
    if steps_day < target:
        messages.append(
            f"Trips gave about {steps_day:.0f} steps a day of the {target} a day the national "
            "guideline suggests."
        )
    return {
        "walkMinutesPerWeek": round(walk, 1),
        "cycleMinutesPerWeek": round(cycle, 1),
        "stepsPerDayFromTrips": round(steps_day),
        "stepsPerDayTarget": target,
        "walkingMortalityReductionNow": round(heat_now, 4),
        "walkingMortalityReductionAt168": round(heat_ref, 4),
        "messages": messages,
    }


def _activity(
    service: HealthService, rows: list[Observation], legs: list[activity.ActiveLeg], weeks: int
) -> dict[str, Any]:
    body = _body(rows)
    step, step_source = activity.step_length_m(body)
    now = dt.datetime.now(dt.UTC)
    return {
        "timezone": str(service.tz),
        "stepLength": {"m": round(step, 3), "source": step_source},
        "weightKg": {
            "value": body.weight_kg or activity.DEFAULT_WEIGHT_KG,
            "source": "checkup" if body.weight_kg is not None else "default",
        },
        "guideline": {
            "stepsPerDay": activity.daily_steps_target(body.age),
            "source": "健康日本21 (第三次) / 身体活動・運動ガイド2023: 8,000 steps a day for "
            "adults, 6,000 for older adults",
        },
        "weeks": activity.weekly(
            legs, body, service.tz, activity.last_weeks(now, service.tz, weeks)
        ),
    }


def _legs_json(legs: list[activity.ActiveLeg], rows: list[Observation]) -> list[dict[str, Any]]:
    body = _body(rows)
    out = []
    for leg in legs:
        e = activity.effort(leg, body)
        out.append(
            {
                "kind": leg.kind,
                "start": leg.start.isoformat(),
                "minutes": round(leg.minutes, 1),
                "distance": round(leg.distance_m, 1),
                "steps": e.steps,
                "met": e.met,
                "metCode": e.met_code,
                "kcal": round(e.kcal, 1),
            }
        )
    return out


async def _load(service: HealthService, user_id: str) -> list[Observation]:
    return await asyncio.to_thread(store.observations, service.engine, user_id)


# --- a resident's own data -------------------------------------------------------------------
@router.post("/me/checkups", status_code=201, responses=BODY)
async def record_checkup(
    body: CheckupIn, who: CurrentPrincipal, service: HealthDep
) -> dict[str, Any]:
    """Record the caller's checkup results (each stored as a FHIR Observation)."""
    rows = _checkup_rows(body, who.user_id, who.user_id)
    await asyncio.to_thread(store.add_observations, service.engine, rows)
    return {"observations": [_obs_json(o) for o in rows]}


@router.get("/me/observations")
async def my_observations(who: CurrentPrincipal, service: HealthDep) -> dict[str, Any]:
    """The caller's recorded values, oldest first, and the newest of each kind."""
    rows = await _load(service, who.user_id)
    return {
        "observations": [_obs_json(o) for o in rows],
        "latest": {k: _obs_json(o) for k, o in _latest(rows).items()},
    }


@router.delete("/me/observations/{obs_id}", responses=error_responses(404))
async def forget_observation(
    obs_id: uuid.UUID, who: CurrentPrincipal, service: HealthDep
) -> dict[str, Any]:
    """Delete one of the caller's values."""
    if not await asyncio.to_thread(store.delete_observation, service.engine, who.user_id, obs_id):
        raise ApiError(404, "not_found", "No such value in your records.")
    return {"id": str(obs_id), "deleted": True}


@router.get("/me/fhir")
async def export_fhir(who: CurrentPrincipal, service: HealthDep) -> dict[str, Any]:
    """The caller's values as a FHIR R4 Bundle (``collection``) of Observations."""
    rows = await _load(service, who.user_id)
    return fhir.bundle([_fhir_of(o) for o in rows])


@router.post("/me/fhir", status_code=201, responses=BODY)
async def import_fhir(
    who: CurrentPrincipal,
    service: HealthDep,
    doc: Annotated[dict[str, Any], Body(description="A FHIR R4 Bundle of Observations")],
) -> dict[str, Any]:
    """Import a FHIR Bundle of Observations (LOINC codes of :mod:`app.health.fhir`); 422 with
    the entry and path at fault for anything it cannot read exactly (nothing is imported)."""
    try:
        values = fhir.parse_bundle(doc)
    except fhir.FhirError as exc:
        raise ApiError(422, exc.code, exc.message, exc.details()) from exc
    rows = _rows_of_values(values, who.user_id)
    await asyncio.to_thread(store.add_observations, service.engine, rows)
    return {"imported": len(rows), "observations": [_obs_json(o) for o in rows]}


@router.get("/me/risk")
async def my_risk(who: CurrentPrincipal, service: HealthDep) -> dict[str, Any]:
    """The caller's 10-year ASCVD risk (Hisayama score) from their newest values, with advice
    from their own active travel; ``available: false`` with what is missing otherwise."""
    rows = await _load(service, who.user_id)
    legs = await asyncio.to_thread(service.active_legs, who.user_id)
    return _risk(rows, legs, service.tz)


@router.get("/me/activity")
async def my_activity(
    who: CurrentPrincipal,
    service: HealthDep,
    weeks: Annotated[int, Query(ge=1, le=MAX_WEEKS)] = 4,
) -> dict[str, Any]:
    """The caller's active travel: weekly totals (minutes, steps, kcal, the guideline, HEAT)
    and each walking or cycling leg."""
    rows = await _load(service, who.user_id)
    legs = await asyncio.to_thread(service.active_legs, who.user_id)
    out = _activity(service, rows, legs, weeks)
    first = out["weeks"][0]["week"]
    start, _ = activity.week_bounds(first, service.tz)
    out["legs"] = _legs_json([leg for leg in legs if leg.start >= start], rows)
    return out


@router.get("/me/consents")
async def my_consents(who: CurrentPrincipal, service: HealthDep) -> dict[str, Any]:
    """Every consent the caller gave, with its state (active, expired, revoked)."""
    rows = await asyncio.to_thread(store.consents_of, service.engine, who.user_id)
    now = dt.datetime.now(dt.UTC)
    return {"consents": [_consent_json(c, now) for c in rows]}


@router.post("/me/consents", status_code=201, responses={**BODY, **error_responses(404)})
async def give_consent(
    body: ConsentIn, who: CurrentPrincipal, service: HealthDep
) -> dict[str, Any]:
    """Opt in: one recipient (an organisation, or a user), one purpose, with an expiry."""
    now = dt.datetime.now(dt.UTC)
    expires = body.expires_at if body.expires_at.tzinfo else body.expires_at.replace(tzinfo=dt.UTC)
    if not (now < expires <= now + dt.timedelta(days=MAX_CONSENT_DAYS)):
        raise ApiError(
            422,
            "invalid_expiry",
            f"expires_at must lie in the future, at most {MAX_CONSENT_DAYS} days ahead",
        )
    r = body.recipient
    if r.type == "organisation":
        if body.purpose not in ORG_PURPOSES:
            raise ApiError(
                422, "invalid_purpose", f"an organisation may get {', '.join(ORG_PURPOSES)}"
            )
        try:
            org_id = uuid.UUID(r.id)
        except ValueError as exc:
            raise ApiError(404, "unknown_recipient", "No such organisation.") from exc
        if await asyncio.to_thread(store.organisation, service.engine, org_id) is None:
            raise ApiError(404, "unknown_recipient", "No such organisation.")
        rid = str(org_id)
    else:
        if body.purpose not in USER_PURPOSES:
            raise ApiError(422, "invalid_purpose", f"a user may get {', '.join(USER_PURPOSES)}")
        if r.id == who.user_id:
            raise ApiError(422, "invalid_recipient", "You need no consent to see your own data.")
        rid = r.id
    consent = Consent(
        resident_id=who.user_id,
        recipient_type=r.type,
        recipient_id=rid,
        purpose=body.purpose,
        expires_at=expires,
    )
    await asyncio.to_thread(store.add_consent, service.engine, consent)
    return _consent_json(consent, now)


@router.delete("/me/consents/{consent_id}", responses=error_responses(404))
async def revoke_consent(
    consent_id: uuid.UUID, who: CurrentPrincipal, service: HealthDep
) -> dict[str, Any]:
    """Revoke a consent; it stops at once (the next request of the recipient is 403)."""
    c = await asyncio.to_thread(store.revoke, service.engine, who.user_id, consent_id)
    if c is None:
        raise ApiError(404, "not_found", "No such consent.")
    return _consent_json(c, dt.datetime.now(dt.UTC))


def _audit_json(rows: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "at": store.aware(a.at).isoformat(),
            "actorId": a.actor_id,
            "action": a.action,
            "resource": a.resource,
            "consentId": str(a.consent_id) if a.consent_id else None,
        }
        for a in rows
    ]


@router.get("/me/audit")
async def my_audit(who: CurrentPrincipal, service: HealthDep) -> dict[str, Any]:
    """Every read of the caller's health data by someone else, and every act on their behalf,
    newest first."""
    rows = await asyncio.to_thread(store.audit_of, service.engine, who.user_id)
    return {"entries": _audit_json(rows)}


@router.get("/me/export")
async def export_all(who: CurrentPrincipal, service: HealthDep) -> dict[str, Any]:
    """Everything the service holds about the caller: the FHIR Bundle, consents, audit log."""
    rows = await _load(service, who.user_id)
    consents = await asyncio.to_thread(store.consents_of, service.engine, who.user_id)
    audit = await asyncio.to_thread(store.audit_of, service.engine, who.user_id)
    now = dt.datetime.now(dt.UTC)
    return {
        "exportedAt": now.isoformat(),
        "bundle": fhir.bundle([_fhir_of(o) for o in rows]),
        "consents": [_consent_json(c, now) for c in consents],
        "audit": _audit_json(audit),
    }


@router.delete("/me")
async def erase_me(who: CurrentPrincipal, service: HealthDep) -> dict[str, Any]:
    """Delete everything the service holds about the caller (values, consents, audit log,
    watch notices); the rows deleted per kind."""
    counts = await asyncio.to_thread(store.delete_resident, service.engine, who.user_id)
    return {"deleted": counts}


# --- organisations ---------------------------------------------------------------------------
def _org_json(o: Organisation) -> dict[str, Any]:
    return {"id": str(o.id), "name": o.name, "kind": o.kind}


@router.get("/organisations")
async def list_organisations(who: CurrentPrincipal, service: HealthDep) -> dict[str, Any]:
    """Organisations a resident may consent to."""
    rows = await asyncio.to_thread(store.organisations, service.engine)
    return {"organisations": [_org_json(o) for o in rows]}


AdminDep = Annotated[Principal, Depends(require_roles(Role.ADMIN.value))]


@router.post("/organisations", status_code=201, responses=BODY)
async def add_organisation(
    body: OrganisationIn, who: AdminDep, service: HealthDep
) -> dict[str, Any]:
    """Add an organisation (admin)."""
    org = Organisation(name=body.name, kind=body.kind)
    await asyncio.to_thread(store.add_organisation, service.engine, org)
    return _org_json(org)


@router.post(
    "/organisations/{org_id}/members",
    status_code=201,
    responses={**BODY, **error_responses(404, 409)},
)
async def add_member(
    org_id: uuid.UUID, body: MemberIn, who: AdminDep, service: HealthDep
) -> dict[str, Any]:
    """Let a health-staff user act for the organisation (admin)."""
    if await asyncio.to_thread(store.organisation, service.engine, org_id) is None:
        raise ApiError(404, "not_found", "No such organisation.")
    if not await asyncio.to_thread(store.add_member, service.engine, org_id, body.user_id):
        raise ApiError(409, "already_member", "The user already acts for this organisation.")
    return {"organisationId": str(org_id), "userId": body.user_id}


# --- others' access, with consent ------------------------------------------------------------
async def _recipients(service: HealthService, who: Principal) -> list[tuple[str, str]]:
    """Who the caller is as a recipient: themselves, and their organisations when they are
    health staff."""
    out = [("user", who.user_id)]
    if Role.HEALTH_STAFF.value in who.roles:
        orgs = await asyncio.to_thread(store.memberships, service.engine, who.user_id)
        out += [("organisation", o) for o in orgs]
    return out


async def authorise(
    service: HealthService,
    who: Principal,
    resident_id: str,
    purpose: str,
    resource: str,
    action: str = "read",
    *,
    audit: bool = True,
) -> Consent:
    """The resident's consent in force for ``purpose`` to the caller (403 ``no_consent``
    otherwise); the access is written to the resident's audit log before any data is read."""
    recipients = await _recipients(service, who)
    consent = None
    if resident_id != who.user_id:
        consent = await asyncio.to_thread(
            store.active_consent, service.engine, resident_id, purpose, recipients
        )
    if consent is None:
        raise ApiError(
            403,
            "no_consent",
            f"No consent in force for {purpose} from this resident.",
            {"purpose": purpose},
        )
    if audit:
        await asyncio.to_thread(
            store.audit, service.engine, resident_id, who.user_id, action, resource, consent.id
        )
    return consent


@router.get("/residents")
async def consenting(who: CurrentPrincipal, service: HealthDep) -> dict[str, Any]:
    """Residents whose consent in force names the caller (or the caller's organisation), with
    the purposes; no health data (the list itself is not audited)."""
    recipients = await _recipients(service, who)
    found = await asyncio.to_thread(
        store.consenting_residents, service.engine, recipients, ORG_PURPOSES + USER_PURPOSES
    )
    now = dt.datetime.now(dt.UTC)
    return {
        "residents": [
            {"residentId": rid, "consents": [_consent_json(c, now) for c in cs]}
            for rid, cs in sorted(found.items())
        ]
    }


@router.get("/residents/{resident_id}/observations", responses=error_responses(403))
async def resident_observations(
    resident_id: str, who: CurrentPrincipal, service: HealthDep
) -> dict[str, Any]:
    """A resident's values (consent ``records``); audited."""
    await authorise(service, who, resident_id, "records", "observations")
    rows = await _load(service, resident_id)
    return {
        "observations": [_obs_json(o) for o in rows],
        "latest": {k: _obs_json(o) for k, o in _latest(rows).items()},
    }


@router.get("/residents/{resident_id}/fhir", responses=error_responses(403))
async def resident_fhir(
    resident_id: str, who: CurrentPrincipal, service: HealthDep
) -> dict[str, Any]:
    """A resident's values as a FHIR Bundle (consent ``records``); audited."""
    await authorise(service, who, resident_id, "records", "fhir")
    rows = await _load(service, resident_id)
    return fhir.bundle([_fhir_of(o) for o in rows])


@router.get("/residents/{resident_id}/risk", responses=error_responses(403))
async def resident_risk(
    resident_id: str, who: CurrentPrincipal, service: HealthDep
) -> dict[str, Any]:
    """A resident's risk (consent ``records``); audited."""
    await authorise(service, who, resident_id, "records", "risk")
    rows = await _load(service, resident_id)
    legs = await asyncio.to_thread(service.active_legs, resident_id)
    return _risk(rows, legs, service.tz)


@router.post(
    "/residents/{resident_id}/checkups", status_code=201, responses={**BODY, **error_responses(403)}
)
async def record_for_resident(
    resident_id: str, body: CheckupIn, who: CurrentPrincipal, service: HealthDep
) -> dict[str, Any]:
    """Record a resident's checkup (an organisation's staff with consent ``records_write``);
    audited."""
    rows = _checkup_rows(body, resident_id, who.user_id)
    await authorise(service, who, resident_id, "records_write", "checkup", action="write")
    await asyncio.to_thread(store.add_observations, service.engine, rows)
    return {"observations": [_obs_json(o) for o in rows]}


@router.get("/residents/{resident_id}/activity", responses=error_responses(403))
async def resident_activity(
    resident_id: str,
    who: CurrentPrincipal,
    service: HealthDep,
    weeks: Annotated[int, Query(ge=1, le=MAX_WEEKS)] = 4,
) -> dict[str, Any]:
    """A resident's weekly active travel (consent ``activity``): totals only; audited."""
    await authorise(service, who, resident_id, "activity", "activity")
    return await _weekly_only(service, resident_id, weeks)


async def _weekly_only(service: HealthService, resident_id: str, weeks: int) -> dict[str, Any]:
    rows = await _load(service, resident_id)
    legs = await asyncio.to_thread(service.active_legs, resident_id)
    out = _activity(service, rows, legs, weeks)
    # no body values of the resident beyond the weekly figures
    return {"timezone": out["timezone"], "guideline": out["guideline"], "weeks": out["weeks"]}


# --- watch-over ------------------------------------------------------------------------------
@router.get("/watch/{resident_id}/activity", responses=error_responses(403))
async def watch_activity(
    resident_id: str,
    who: CurrentPrincipal,
    service: HealthDep,
    weeks: Annotated[int, Query(ge=1, le=MAX_WEEKS)] = 4,
) -> dict[str, Any]:
    """A watched resident's weekly activity (consent ``watch_over``): totals only; audited."""
    await authorise(service, who, resident_id, "watch_over", "activity")
    return await _weekly_only(service, resident_id, weeks)


@router.get("/watch/{resident_id}/notices", responses=error_responses(403))
async def watch_notices(
    resident_id: str, who: CurrentPrincipal, service: HealthDep
) -> dict[str, Any]:
    """What the watcher was told (ride completed or missed), newest first; audited."""
    await authorise(service, who, resident_id, "watch_over", "notices")
    rows = await asyncio.to_thread(store.notices, service.engine, who.user_id, resident_id)
    return {
        "notices": [
            {"type": n.event, "rideId": n.ride_id, "at": store.aware(n.at).isoformat()}
            for n in rows
        ]
    }


@router.get("/watch/{resident_id}/consent", responses=error_responses(403))
async def watch_consent_in_force(
    resident_id: str, who: CurrentPrincipal, service: HealthDep
) -> dict[str, Any]:
    """Whether the caller's ``watch_over`` consent from the resident is in force (403
    ``no_consent`` otherwise): what the mobility core asks, with the watcher's own token,
    before acting on the resident's ride for them (:mod:`app.health.watch_rides`). No health
    data is read, so it is not written to the audit log; the act itself is."""
    consent = await authorise(service, who, resident_id, "watch_over", "consent", audit=False)
    return {
        "consentId": str(consent.id),
        "expiresAt": store.aware(consent.expires_at).isoformat(),
    }


def _core(service: HealthService) -> CoreRides | None:
    """The core's ride API over HTTP, when this service runs alone with ``core_url`` set."""
    if service.dispatch_of is None and service.settings.core_url:
        return CoreRides(service.settings)
    return None


def _token(request: Request) -> str:
    """The caller's own bearer token (already verified), forwarded to the core."""
    return request.headers.get("authorization", "").partition(" ")[2].strip()


def _gateway(service: HealthService) -> Any:
    if service.dispatch_of is None:
        raise ApiError(
            501,
            "not_in_this_process",
            "Rides are booked through the mobility core: run alone, this service needs "
            "TSUNAGU_CORE_URL.",
        )
    gateway = service.dispatch_of()
    if gateway is None:
        raise ApiError(503, "unavailable", "the on-demand dispatcher is not running")
    return gateway


async def _residents_ride(gateway: Any, resident_id: str, ride_id: str) -> None:
    found = await gateway.ride(ride_id)
    if found is None or found[0] != resident_id:
        raise ApiError(404, "not_found", "No such ride of this resident.")


async def _audited(service: HealthService, resident_id: str, actor: str, ride_id: str) -> bool:
    """Whether ``actor``'s booking of ``ride_id`` is in the resident's audit log."""
    rows = await asyncio.to_thread(store.audit_of, service.engine, resident_id)
    return any(
        a.actor_id == actor and a.action == "book_ride" and a.resource == f"ride:{ride_id}"
        for a in rows
    )


def _ride_request_model() -> Any:
    from app.api.rides import RideRequestIn

    return RideRequestIn


@router.post(
    "/watch/{resident_id}/rides",
    status_code=201,
    responses={**BODY, **error_responses(403, 409), **NOT_HERE},
)
async def book_for_resident(
    resident_id: str,
    who: CurrentPrincipal,
    service: HealthDep,
    request: Request,
    response: Response,
    body: Annotated[dict[str, Any], Body(description="A ride request, as POST /api/v1/rides")],
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """Book an on-demand ride for the resident (consent ``watch_over``): the same gateway as
    ``POST /api/v1/rides``, the ride is the resident's; audited with who acted. Run alone, the
    booking is forwarded to the core (``TSUNAGU_CORE_URL``, :mod:`app.health.watch_rides`)
    with the ``Idempotency-Key`` given (else one made here, returned in that header): a retry
    with the same key books once; the core away answers 503 with Retry-After."""
    from pydantic import ValidationError

    try:
        request_in = _ride_request_model().model_validate(body)
    except ValidationError as exc:
        raise ApiError(
            422,
            "invalid_request",
            "not a ride request",
            {"errors": exc.errors(include_url=False, include_context=False)},
        ) from exc
    consent = await authorise(service, who, resident_id, "watch_over", "ride", audit=False)
    core = _core(service)
    if core is not None:
        answer = await core.book(
            _token(request), resident_id, request_in.model_dump(), idempotency_key
        )
        status, ride, replayed = answer.status_code, answer.body, answer.replayed
        response.headers[IDEMPOTENCY_HEADER] = answer.idempotency_key
    else:
        from app.api.rides import booking_city

        gateway = _gateway(service)
        # The places in one city's network (422 different_networks), as the core's route.
        booking_city(getattr(request.app.state, "services", None), request_in)
        res = await gateway.book_request(request_in.to_request(resident_id, gateway.now()))
        status, ride, replayed = res.status_code, dict(res.body), False
    ride_id = str(ride.get("ride_id") or ride.get("request_id") or "")
    # A replay's booking was audited by its first attempt, unless that attempt's answer was
    # lost on the way back (it then answered 503): audit it now, once.
    if not replayed or not await _audited(service, resident_id, who.user_id, ride_id):
        await asyncio.to_thread(
            store.audit,
            service.engine,
            resident_id,
            who.user_id,
            "book_ride",
            f"ride:{ride_id}",
            consent.id,
        )
    response.status_code = status
    return ride


@router.patch(
    "/watch/{resident_id}/rides/{ride_id}",
    responses={**BODY, **error_responses(403, 404, 409), **NOT_HERE},
)
async def change_for_resident(
    resident_id: str,
    ride_id: str,
    body: RideChangeIn,
    who: CurrentPrincipal,
    service: HealthDep,
    request: Request,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """Move the pick-up of the resident's ride (consent ``watch_over``); audited. Run alone,
    forwarded to the core as a booking is."""
    await authorise(
        service, who, resident_id, "watch_over", f"ride:{ride_id}", action="change_ride"
    )
    core = _core(service)
    if core is not None:
        answer = await core.change(
            _token(request), resident_id, ride_id, body.earliest_pickup, idempotency_key
        )
        return answer.body
    gateway = _gateway(service)
    await _residents_ride(gateway, resident_id, ride_id)
    return dict(await gateway.move_pickup(ride_id, body.earliest_pickup))


@router.delete(
    "/watch/{resident_id}/rides/{ride_id}",
    responses={**CANCEL_RESPONSES, **error_responses(403, 404, 409), **NOT_HERE},
)
async def cancel_for_resident(
    resident_id: str,
    ride_id: str,
    who: CurrentPrincipal,
    service: HealthDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """Cancel the resident's ride (consent ``watch_over``); audited. Run alone, forwarded to
    the core as a booking is. 202 ``cancelling`` while the zone's owner has it queued, as the
    core's own cancel answers."""
    await authorise(
        service, who, resident_id, "watch_over", f"ride:{ride_id}", action="cancel_ride"
    )
    core = _core(service)
    if core is not None:
        answer = await core.cancel(_token(request), resident_id, ride_id, idempotency_key)
        return cancel_answer(answer.body, response)
    gateway = _gateway(service)
    await _residents_ride(gateway, resident_id, ride_id)
    return cancel_answer(dict(await gateway.cancel(ride_id)), response)

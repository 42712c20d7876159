"""``/api/v1/emissions``: companies (Scope 3 Cat. 7, Scope 1/2, scenarios) and the city view.

Roles: ``company_admin`` registers companies and sees only its own (another company's id is
404 ``not_found``, as if it did not exist); residents accept invitations, answer a company's
survey and revoke their consent; ``city_staff`` sees the city's aggregates only. ``admin``
passes every check. Reports answer JSON or, with ``format=csv``, CSV.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import math
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas import AUTHED, BODY, error_responses
from app.emissions import companies as cstore
from app.emissions.companies import EnergyRow, InvitationError
from app.emissions.ledger import parse_month
from app.emissions.models import Company, Survey
from app.emissions.reports import (
    K_ANONYMITY,
    Category7,
    category7,
    lines_csv,
    period_months,
    scope12,
)
from app.emissions.scenarios import (
    BusOnDemandInputs,
    CommutePlanner,
    EvInputs,
    OtherCity,
    ShuttleInputs,
    bus_on_demand_scenario,
    car_commuters,
    commute_day,
    ev_scenario,
    shuttle_scenario,
)
from app.emissions.service import EmissionsService
from app.errors import ApiError
from app.identity.deps import CurrentPrincipal, Principal, require_roles
from app.identity.roles import Role

router = APIRouter(tags=["emissions"])

CompanyAdmin = Annotated[Principal, Depends(require_roles(Role.COMPANY_ADMIN.value))]
CityStaff = Annotated[Principal, Depends(require_roles(Role.CITY_STAFF.value))]
#: Largest CSV upload (bytes).
MAX_CSV_BYTES = 2_000_000
#: Row errors listed in one 422 at most.
MAX_ROW_ERRORS = 50

REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTHED,
    **error_responses(404),
    200: {
        "description": "The report (JSON), or with format=csv its lines as CSV.",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    },
}
CSV_BODY: dict[str, Any] = {
    "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}
}


def _service(request: Request) -> EmissionsService:
    from app.emissions.api import get_emissions

    return get_emissions(request)


Service = Annotated[EmissionsService, Depends(_service)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Point(_In):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class CompanyIn(_In):
    name: str = Field(min_length=1, max_length=200)
    site: Point = Field(description="where employees work: the commute's work end")
    headcount: int | None = Field(None, ge=1, le=1_000_000, description="employees in all")
    electricity_supplier: str | None = Field(
        None, alias="electricitySupplier", description="a key of the factor table's electricity"
    )


class InvitationIn(_In):
    label: str = Field("", max_length=200, description="who it is for (the admin's note)")


class SurveyIn(_In):
    mode: str = Field(description="a mode of the factor table: CAR, BUS, RAIL, WALK...")
    one_way_km: float = Field(alias="oneWayKm", gt=0, le=300)
    days_per_week: float = Field(alias="daysPerWeek", ge=0, le=7)
    home: Point | None = Field(None, description="for the scenarios' home-work trip")


class EnergyIn(_In):
    month: str
    energy: str = Field(description="a fuel of the factor table, or electricity")
    quantity: float
    unit: str = Field(description="the factor's unit: L, kg, Nm3 or kWh")
    supplier: str | None = None


class EnergyBody(_In):
    rows: list[EnergyIn] = Field(min_length=1, max_length=10_000)


# --- helpers -------------------------------------------------------------------------------------
def _company_json(c: Company) -> dict[str, Any]:
    return {
        "id": str(c.id),
        "name": c.name,
        "site": {"lat": c.site_lat, "lon": c.site_lon},
        "headcount": c.headcount,
        "electricitySupplier": c.electricity_supplier,
        "createdAt": c.created_at.isoformat(),
    }


async def _own_company(service: EmissionsService, company_id: uuid.UUID, who: Principal) -> Company:
    """The company if the caller administers it; 404 otherwise (never says it exists)."""
    company = await asyncio.to_thread(cstore.get_company, service.engine, company_id)
    if company is None or (not who.is_admin and company.admin_user_id != who.user_id):
        raise ApiError(404, "not_found", "No such company.")
    return company


def _months(year: int | None, month: str | None, service: EmissionsService) -> list[str]:
    if year is None and month is None:
        year = dt.datetime.now(service.ledger.tz).year
    try:
        return period_months(year if month is None else None, month)
    except ValueError as exc:
        raise ApiError(
            400, "invalid_period", "Give year=YYYY or month=YYYY-MM (e.g. 2026-12)."
        ) from exc


def _answer(
    body: dict[str, Any], fmt: str, name: str, lines: list[dict[str, Any]], total: Any = None
) -> dict[str, Any] | Response:
    if fmt == "csv":
        return Response(
            lines_csv(lines, total),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return body


def _row_error(errors: list[dict[str, Any]], line: int, column: str, message: str) -> None:
    if len(errors) < MAX_ROW_ERRORS:
        errors.append({"line": line, "column": column, "message": message})


def _raise_rows(errors: list[dict[str, Any]], where: str) -> None:
    if errors:
        first = errors[0]
        raise ApiError(
            422,
            "invalid_rows",
            f"{where} {first['line']}, column {first['column']}: {first['message']}",
            {"errors": errors},
        )


async def _csv_rows(
    request: Request, required: tuple[str, ...]
) -> list[tuple[int, dict[str, str]]]:
    """``(line number, row)`` of a CSV body with a header naming at least ``required``."""
    body = await request.body()
    if len(body) > MAX_CSV_BYTES:
        raise ApiError(413, "too_large", f"CSV uploads are limited to {MAX_CSV_BYTES} bytes.")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_csv", "The CSV must be UTF-8.") from exc
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in required if c not in header]
    if missing:
        raise ApiError(
            422,
            "invalid_rows",
            f"line 1, column {missing[0]}: the header lacks it",
            {"errors": [{"line": 1, "column": c, "message": "missing"} for c in missing]},
        )
    reader.fieldnames = header
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for row in reader:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            extra = row.get(None)  # type: ignore[call-overload]
            if extra:
                raise ApiError(
                    422,
                    "invalid_rows",
                    f"line {reader.line_num}: more fields than the header has",
                    {
                        "errors": [
                            {"line": reader.line_num, "column": "", "message": "extra fields"}
                        ]
                    },
                )
            rows.append((reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}))
    except csv.Error as exc:
        raise ApiError(400, "invalid_csv", f"line {reader.line_num}: {exc}") from exc
    if not rows:
        raise ApiError(422, "invalid_rows", "The CSV has no rows.", {"errors": []})
    return rows


def _number(
    text: str, line: int, column: str, errors: list[dict[str, Any]], lo: float, hi: float
) -> float | None:
    try:
        x = float(text)
    except ValueError:
        _row_error(errors, line, column, f"{text!r} is not a number")
        return None
    if not math.isfinite(x) or not (lo <= x <= hi):
        _row_error(errors, line, column, f"{text} is outside {lo:g}..{hi:g}")
        return None
    return x


def _energy_row(
    service: EmissionsService,
    company: Company,
    raw: dict[str, str],
    line: int,
    errors: list[dict[str, Any]],
) -> EnergyRow | None:
    table = service.table
    ok = True
    month = raw.get("month", "")
    try:
        parse_month(month)
    except ValueError:
        _row_error(errors, line, "month", f"{month!r} is not YYYY-MM")
        ok = False
    energy = raw.get("energy", "").lower()
    per: str | None = None
    supplier = raw.get("supplier", "") or ""
    if energy == "electricity":
        supplier = supplier or company.electricity_supplier or table.electricity_supplier
        if supplier not in table.electricity:
            _row_error(errors, line, "supplier", f"no electricity factor for {supplier!r}")
            ok = False
        else:
            per = table.electricity[supplier].per
    elif energy in table.fuels:
        per = table.fuels[energy].per
        if supplier:
            _row_error(errors, line, "supplier", "only electricity has a supplier")
            ok = False
    else:
        known = ", ".join([*sorted(table.fuels), "electricity"])
        _row_error(errors, line, "energy", f"{energy!r} is not one of {known}")
        ok = False
    quantity = _number(raw.get("quantity", ""), line, "quantity", errors, 0.0, 1e10)
    unit = raw.get("unit", "")
    if per is not None and unit != per:
        _row_error(errors, line, "unit", f"{unit!r}: {energy} is counted in {per}")
        ok = False
    if not ok or quantity is None or per is None:
        return None
    return EnergyRow(month, energy, supplier if energy == "electricity" else "", quantity, per)


# --- companies -----------------------------------------------------------------------------------
@router.post("/companies", status_code=201, responses={**AUTHED, **BODY, **error_responses(404)})
async def register_company(body: CompanyIn, who: CompanyAdmin, service: Service) -> dict[str, Any]:
    """Register a company (the caller becomes its admin)."""
    if body.electricity_supplier and body.electricity_supplier not in service.table.electricity:
        raise ApiError(
            422,
            "unknown_supplier",
            f"No electricity factor for {body.electricity_supplier!r}.",
            {"known": sorted(service.table.electricity)},
        )
    company = Company(
        name=body.name,
        admin_user_id=who.user_id,
        site_lat=body.site.lat,
        site_lon=body.site.lon,
        headcount=body.headcount,
        electricity_supplier=body.electricity_supplier,
    )
    await asyncio.to_thread(cstore.create_company, service.engine, company)
    return _company_json(company)


@router.get("/companies", responses=AUTHED)
async def my_companies(who: CompanyAdmin, service: Service) -> dict[str, Any]:
    """The companies the caller administers."""
    rows = await asyncio.to_thread(cstore.companies_of_admin, service.engine, who.user_id)
    return {"companies": [_company_json(c) for c in rows]}


@router.get("/companies/{company_id}", responses={**AUTHED, **error_responses(404)})
async def company(company_id: uuid.UUID, who: CompanyAdmin, service: Service) -> dict[str, Any]:
    """One of the caller's companies, with its employees' consent counts (no names)."""
    c = await _own_company(service, company_id, who)
    counts = await asyncio.to_thread(cstore.employee_counts, service.engine, c.id)
    return {**_company_json(c), "employees": counts}


@router.post(
    "/companies/{company_id}/invitations",
    status_code=201,
    responses={**AUTHED, **BODY, **error_responses(404)},
)
async def invite(
    company_id: uuid.UUID, body: InvitationIn, who: CompanyAdmin, service: Service
) -> dict[str, Any]:
    """A new invitation: send its ``code`` to the employee, who accepts it."""
    c = await _own_company(service, company_id, who)
    inv = await asyncio.to_thread(cstore.create_invitation, service.engine, c.id, body.label)
    return {"id": str(inv.id), "code": inv.code, "label": inv.label, "accepted": False}


@router.get("/companies/{company_id}/invitations", responses={**AUTHED, **error_responses(404)})
async def list_invitations(
    company_id: uuid.UUID, who: CompanyAdmin, service: Service
) -> dict[str, Any]:
    """The company's invitations and whether each was accepted."""
    c = await _own_company(service, company_id, who)
    rows = await asyncio.to_thread(cstore.invitations, service.engine, c.id)
    return {
        "invitations": [
            {
                "id": str(i.id),
                "code": i.code,
                "label": i.label,
                "accepted": i.accepted_by is not None,
            }
            for i in rows
        ]
    }


@router.post("/invitations/{code}/accept", responses={**AUTHED, **error_responses(404, 409)})
async def accept(code: str, who: CurrentPrincipal, service: Service) -> dict[str, Any]:
    """Accept an invitation: the caller consents to share commute data with that company."""
    try:
        company, consent = await asyncio.to_thread(
            cstore.accept_invitation, service.engine, code, who.user_id
        )
    except InvitationError as exc:
        raise ApiError(404 if exc.code == "not_found" else 409, exc.code, exc.message) from exc
    return {
        "company": {"id": str(company.id), "name": company.name},
        "consent": True,
        "grantedAt": consent.granted_at.isoformat(),
    }


@router.get("/me/consents", responses=AUTHED)
async def my_consents(who: CurrentPrincipal, service: Service) -> dict[str, Any]:
    """The companies the caller shares (or shared) commute data with."""
    rows = await asyncio.to_thread(cstore.consents_of_user, service.engine, who.user_id)
    return {
        "consents": [
            {
                "company": {"id": str(k.id), "name": k.name},
                "active": c.revoked_at is None,
                "grantedAt": c.granted_at.isoformat(),
                "revokedAt": c.revoked_at.isoformat() if c.revoked_at else None,
            }
            for c, k in rows
        ]
    }


@router.delete("/me/consents/{company_id}", responses={**AUTHED, **error_responses(404)})
async def revoke(company_id: uuid.UUID, who: CurrentPrincipal, service: Service) -> dict[str, Any]:
    """Revoke the caller's consent to a company, at once."""
    gone = await asyncio.to_thread(cstore.revoke_consent, service.engine, company_id, who.user_id)
    if not gone:
        raise ApiError(404, "not_found", "You share nothing with that company.")
    return {"company": {"id": str(company_id)}, "consent": False}


def _survey_checks(service: EmissionsService, mode: str) -> str:
    m = mode.upper()
    if m not in service.table.modes:
        raise ApiError(
            422,
            "unknown_mode",
            f"No factor for mode {mode!r}.",
            {"known": sorted(service.table.modes)},
        )
    return m


@router.put(
    "/me/companies/{company_id}/survey",
    responses={**AUTHED, **BODY, **error_responses(404)},
)
async def answer_survey(
    company_id: uuid.UUID, body: SurveyIn, who: CurrentPrincipal, service: Service
) -> dict[str, Any]:
    """The caller's commute survey answer for a company they share data with."""
    mode = _survey_checks(service, body.mode)
    if not await asyncio.to_thread(cstore.has_consent, service.engine, company_id, who.user_id):
        raise ApiError(404, "not_found", "You share nothing with that company.")
    row = Survey(
        company_id=company_id,
        ref=f"user:{who.user_id}",
        user_id=who.user_id,
        mode=mode,
        one_way_km=body.one_way_km,
        days_per_week=body.days_per_week,
        home_lat=body.home.lat if body.home else None,
        home_lon=body.home.lon if body.home else None,
    )
    await asyncio.to_thread(cstore.upsert_surveys, service.engine, [row])
    return {
        "company": {"id": str(company_id)},
        "mode": mode,
        "oneWayKm": body.one_way_km,
        "daysPerWeek": body.days_per_week,
        "home": body.home.model_dump() if body.home else None,
    }


@router.post(
    "/companies/{company_id}/surveys",
    openapi_extra=CSV_BODY,
    responses={**AUTHED, **error_responses(404, 413)},
)
async def upload_surveys(
    company_id: uuid.UUID, request: Request, who: CompanyAdmin, service: Service
) -> dict[str, Any]:
    """Survey answers of employees without the app, as CSV: ``ref,mode,one_way_km,
    days_per_week[,home_lat,home_lon]`` (``ref``: the admin's label, not a name). All rows or
    none: a bad row is 422 ``invalid_rows`` naming its line and column."""
    c = await _own_company(service, company_id, who)
    rows = await _csv_rows(request, ("ref", "mode", "one_way_km", "days_per_week"))
    errors: list[dict[str, Any]] = []
    out: list[Survey] = []
    seen: set[str] = set()
    for line, raw in rows:
        ref = raw.get("ref", "")
        if not ref or len(ref) > 200:
            _row_error(errors, line, "ref", "a label of 1..200 characters is needed")
        elif ref in seen:
            _row_error(errors, line, "ref", f"{ref!r} appears twice")
        seen.add(ref)
        mode = raw.get("mode", "").upper()
        if mode not in service.table.modes:
            _row_error(errors, line, "mode", f"no factor for mode {raw.get('mode')!r}")
        km = _number(raw.get("one_way_km", ""), line, "one_way_km", errors, 0.001, 300.0)
        days = _number(raw.get("days_per_week", ""), line, "days_per_week", errors, 0.0, 7.0)
        home: list[float | None] = [None, None]
        for j, (col_name, lim) in enumerate((("home_lat", 90.0), ("home_lon", 180.0))):
            if raw.get(col_name):
                home[j] = _number(raw[col_name], line, col_name, errors, -lim, lim)
        if (raw.get("home_lat") or "") and not (raw.get("home_lon") or ""):
            _row_error(errors, line, "home_lon", "home_lat needs home_lon")
        if km is None or days is None:
            continue
        out.append(
            Survey(
                company_id=c.id,
                ref=f"upload:{ref}",
                mode=mode,
                one_way_km=km,
                days_per_week=days,
                home_lat=home[0],
                home_lon=home[1],
            )
        )
    _raise_rows(errors, "line")
    await asyncio.to_thread(cstore.upsert_surveys, service.engine, out)
    return {"company": {"id": str(c.id)}, "surveys": len(out)}


@router.put("/companies/{company_id}/energy", responses={**AUTHED, **BODY, **error_responses(404)})
async def enter_energy(
    company_id: uuid.UUID, body: EnergyBody, who: CompanyAdmin, service: Service
) -> dict[str, Any]:
    """Monthly fuel and electricity use (replaces the same month, energy and supplier)."""
    c = await _own_company(service, company_id, who)
    errors: list[dict[str, Any]] = []
    rows: list[EnergyRow] = []
    for i, r in enumerate(body.rows):
        raw = {
            "month": r.month,
            "energy": r.energy,
            "quantity": repr(r.quantity),
            "unit": r.unit,
            "supplier": r.supplier or "",
        }
        row = _energy_row(service, c, raw, i, errors)
        if row is not None:
            rows.append(row)
    _raise_rows(errors, "rows")
    n = await asyncio.to_thread(cstore.upsert_energy, service.engine, c.id, rows)
    return {"company": {"id": str(c.id)}, "rows": n}


@router.post(
    "/companies/{company_id}/energy.csv",
    openapi_extra=CSV_BODY,
    responses={**AUTHED, **error_responses(404, 413)},
)
async def upload_energy(
    company_id: uuid.UUID, request: Request, who: CompanyAdmin, service: Service
) -> dict[str, Any]:
    """Monthly energy use as CSV: ``month,energy,quantity,unit[,supplier]``. All rows or none:
    a bad row is 422 ``invalid_rows`` naming its line and column."""
    c = await _own_company(service, company_id, who)
    raw_rows = await _csv_rows(request, ("month", "energy", "quantity", "unit"))
    errors: list[dict[str, Any]] = []
    rows = [r for line, raw in raw_rows if (r := _energy_row(service, c, raw, line, errors))]
    _raise_rows(errors, "line")
    n = await asyncio.to_thread(cstore.upsert_energy, service.engine, c.id, rows)
    return {"company": {"id": str(c.id)}, "rows": n}


# --- reports -------------------------------------------------------------------------------------
Year = Annotated[int | None, Query(description="YYYY: the twelve months")]
Month = Annotated[str | None, Query(description="YYYY-MM: one month")]
Format = Annotated[Literal["json", "csv"], Query()]


def build_category7(service: EmissionsService, c: Company, months: list[str]) -> Category7:
    """The company's Category 7 report (blocking)."""
    users = cstore.active_employees(service.engine, c.id)
    answers = cstore.surveys(service.engine, c.id)
    return category7(service.engine, service.ledger, service.table, c, users, answers, months)


@router.get("/companies/{company_id}/category7", response_model=None, responses=REPORT_RESPONSES)
async def category7_report(
    company_id: uuid.UUID,
    who: CompanyAdmin,
    service: Service,
    year: Year = None,
    month: Month = None,
    format: Format = "json",
) -> dict[str, Any] | Response:
    """Scope 3 Category 7 (employee commuting), distance-based and average-data."""
    c = await _own_company(service, company_id, who)
    months = _months(year, month, service)
    report = await asyncio.to_thread(build_category7, service, c, months)
    body = report.as_json()
    total = {"method": "total", "co2": body["co2"]["co2"]}
    return _answer(body, format, f"category7-{body['period']}", body["lines"], total)


@router.get("/companies/{company_id}/scope12", response_model=None, responses=REPORT_RESPONSES)
async def scope12_report(
    company_id: uuid.UUID,
    who: CompanyAdmin,
    service: Service,
    year: Year = None,
    month: Month = None,
    format: Format = "json",
) -> dict[str, Any] | Response:
    """Scope 1 (fuels) and 2 (electricity, location- and market-based)."""
    c = await _own_company(service, company_id, who)
    months = _months(year, month, service)
    rows = await asyncio.to_thread(cstore.energy_use, service.engine, c.id, months)
    body = scope12(service.table, c, rows, months)
    total = {
        "month": "total",
        "co2": round(body["scope1"]["co2"] + body["scope2"]["locationBased"]["co2"], 3),
        "co2Market": round(body["scope1"]["co2"] + body["scope2"]["marketBased"]["co2"], 3),
    }
    return _answer(body, format, f"scope12-{body['period']}", body["lines"], total)


def _summary(service: EmissionsService, c: Company, months: list[str]) -> dict[str, Any]:
    cat7 = build_category7(service, c, months).as_json()
    s12 = scope12(service.table, c, cstore.energy_use(service.engine, c.id, months), months)
    return {
        "company": s12["company"],
        "period": s12["period"],
        "months": months,
        "unit": "kg",
        "series": {
            "byScope": {
                "scope1": s12["series"]["scope1"],
                "scope2LocationBased": s12["series"]["scope2LocationBased"],
                "scope2MarketBased": s12["series"]["scope2MarketBased"],
                "scope3Category7": [
                    round(a + b, 3)
                    for a, b in zip(
                        cat7["series"]["byMethod"]["distance-based"],
                        cat7["series"]["byMethod"]["average-data"],
                        strict=True,
                    )
                ],
            },
            "category7ByMode": cat7["series"]["byMode"],
        },
        "totals": {
            "scope1": s12["scope1"]["co2"],
            "scope2LocationBased": s12["scope2"]["locationBased"]["co2"],
            "scope2MarketBased": s12["scope2"]["marketBased"]["co2"],
            "scope3Category7": cat7["co2"]["co2"],
        },
    }


@router.get("/companies/{company_id}/summary", response_model=None, responses=REPORT_RESPONSES)
async def summary_report(
    company_id: uuid.UUID,
    who: CompanyAdmin,
    service: Service,
    year: Year = None,
    month: Month = None,
    format: Format = "json",
) -> dict[str, Any] | Response:
    """Monthly series by scope (1, 2 location- and market-based, 3 Cat. 7) and Cat. 7 by mode."""
    c = await _own_company(service, company_id, who)
    months = _months(year, month, service)
    body = await asyncio.to_thread(_summary, service, c, months)
    by_scope = body["series"]["byScope"]
    lines = [{"month": m, **{k: v[i] for k, v in by_scope.items()}} for i, m in enumerate(months)]
    return _answer(
        body, format, f"summary-{body['period']}", lines, {"month": "total", **body["totals"]}
    )


# --- scenarios -----------------------------------------------------------------------------------
async def _planner(
    request: Request, who: Principal, inputs: BusOnDemandInputs, company: Company
) -> tuple[CommutePlanner | None, str]:
    """The main app's trip planner for home -> site commutes departing at ``inputs``'
    departure and date (:func:`commute_day`), or None and why not.

    It plans on the network of the city holding the company's site (the only network when
    one city is published): that city's timetable, realtime overlays, fares, time zone and
    on-demand zones. A home lying in another city's network raises :class:`OtherCity` (no
    trip runs between cities); a site lying in no city's network gets no planner.
    """
    services = getattr(request.app.state, "services", None)
    reg = getattr(services, "feeds", None)
    if reg is None:
        return None, "the emissions service runs without the trip planner"
    from app.api import plan as plan_api
    from routing.itinerary import to_otp
    from routing.options import RoutingOptions
    from routing.planner import PlanPlace, PlanRequest

    site = (company.site_lat, company.site_lon)
    several = len(reg.networks) > 1
    city = reg.network_at(*site) if several else None
    if several and city is None:
        return None, "the company's site lies in no published city's network"
    try:
        np_ = await plan_api.network_planner(services, city)
    except ApiError:
        return None, "no timetable is published"
    provider = await plan_api.on_demand_provider(services, np_, who)
    tt = np_.planner.tt
    now = dt.datetime.now(service_tz(tt))
    day = commute_day(np_.network.service_date or now.date(), now, inputs.departure_s, inputs.date)
    rts = plan_api.realtime_days(services, day, np_.network)
    options = RoutingOptions(
        num_itineraries=3, on_demand=provider is not None, max_walk_m=inputs.max_walk_m
    )

    def plan_one(home: tuple[float, float], site: tuple[float, float]) -> dict[str, Any] | None:
        if several:
            other = reg.network_at(*home)
            if other is not None and other.name != np_.network.name:
                raise OtherCity(other.name)
        req = PlanRequest(
            PlanPlace(*home), PlanPlace(*site), day, inputs.departure_s, False, options
        )
        result = np_.planner.plan(req, rts, on_demand=provider)
        if not result.itineraries:
            return None
        return plan_api._priced(to_otp(result.itineraries[0], day, tt.timezone), np_.fares)

    where = f", {np_.network.name}" if several else ""
    return plan_one, f"main app's trip planner{where}, {day.isoformat()} {inputs.departure}"


def service_tz(tt: Any) -> Any:
    """The timetable's time zone."""
    from zoneinfo import ZoneInfo

    return ZoneInfo(tt.timezone)


SCENARIO_RESPONSES = {**REPORT_RESPONSES, **BODY}


def _scenario_answer(body: dict[str, Any], fmt: str) -> dict[str, Any] | Response:
    lines = body.get("lines") or [
        {k: v for k, v in body.items() if k not in ("assumptions", "company")}
    ]
    return _answer(body, fmt, f"scenario-{body['scenario']}", lines)


async def _scenario(
    company_id: uuid.UUID,
    who: Principal,
    service: EmissionsService,
    run: Callable[[Company, list[Any]], dict[str, Any]],
    fmt: str,
) -> dict[str, Any] | Response:
    c = await _own_company(service, company_id, who)
    answers = await asyncio.to_thread(cstore.surveys, service.engine, c.id)
    body = await asyncio.to_thread(run, c, car_commuters(answers))
    return _scenario_answer(body, fmt)


@router.post(
    "/companies/{company_id}/scenarios/ev", response_model=None, responses=SCENARIO_RESPONSES
)
async def scenario_ev(
    company_id: uuid.UUID,
    body: EvInputs,
    who: CompanyAdmin,
    service: Service,
    format: Format = "json",
) -> dict[str, Any] | Response:
    """Car commuters switch to leased EVs charged at work."""
    supplier = body.supplier
    if supplier is not None and supplier not in service.table.electricity:
        raise ApiError(422, "unknown_supplier", f"No electricity factor for {supplier!r}.")
    return await _scenario(
        company_id, who, service, lambda c, cc: ev_scenario(service.table, c, cc, body), format
    )


@router.post(
    "/companies/{company_id}/scenarios/shuttle",
    response_model=None,
    responses=SCENARIO_RESPONSES,
)
async def scenario_shuttle(
    company_id: uuid.UUID,
    body: ShuttleInputs,
    who: CompanyAdmin,
    service: Service,
    format: Format = "json",
) -> dict[str, Any] | Response:
    """A company shuttle for the car commuters with the longest commutes."""
    if body.vehicle not in service.table.vehicles:
        raise ApiError(
            422,
            "unknown_vehicle",
            f"No vehicle type {body.vehicle!r}.",
            {"known": sorted(service.table.vehicles)},
        )
    return await _scenario(
        company_id,
        who,
        service,
        lambda c, cc: shuttle_scenario(service.table, c, cc, body),
        format,
    )


@router.post(
    "/companies/{company_id}/scenarios/bus_on_demand",
    response_model=None,
    responses=SCENARIO_RESPONSES,
)
async def scenario_bus_on_demand(
    company_id: uuid.UUID,
    body: BusOnDemandInputs,
    request: Request,
    who: CompanyAdmin,
    service: Service,
    format: Format = "json",
) -> dict[str, Any] | Response:
    """``share_pct`` % of car commuters switch to bus + on-demand (planned home -> site)."""
    c = await _own_company(service, company_id, who)
    planner, note = await _planner(request, who, body, c)
    return await _scenario(
        company_id,
        who,
        service,
        lambda c, cc: bus_on_demand_scenario(service.table, c, cc, body, planner, note),
        format,
    )


# --- the city view -------------------------------------------------------------------------------
def city_summary(service: EmissionsService, months: list[str]) -> dict[str, Any]:
    """Totals and trends across companies and consenting residents, aggregate only.

    A (month, mode) cell of the commuting series is shown only when at least
    :data:`K_ANONYMITY` distinct persons contribute to it; when exactly one cell of a month
    is suppressed, the month's smallest other cell is suppressed too, so the month's total
    cannot give it away. A month's total is shown only with at least K persons; a month's
    Scope 1/2 total only with at least K companies reporting energy that month.
    """
    companies = cstore.all_companies(service.engine)
    n_m = len(months)
    m_index = {m: i for i, m in enumerate(months)}
    co2: dict[str, list[float]] = {}
    persons: dict[tuple[int, str], set[str]] = {}
    month_persons: list[set[str]] = [set() for _ in months]
    s1 = [0.0] * n_m
    s2 = [0.0] * n_m
    reporting: list[set[str]] = [set() for _ in months]
    for c in companies:
        report = build_category7(service, c, months)
        body = report.as_json()
        for mode, series in body["series"]["byMode"].items():
            acc = co2.setdefault(mode, [0.0] * n_m)
            for i, x in enumerate(series):
                acc[i] += x
        for person, month, mode in report.person_cells():
            persons.setdefault((m_index[month], mode), set()).add(person)
            month_persons[m_index[month]].add(person)
        s12 = scope12(service.table, c, cstore.energy_use(service.engine, c.id, months), months)
        for line in s12["lines"]:
            reporting[m_index[line["month"]]].add(str(c.id))
        for i in range(n_m):
            s1[i] += s12["series"]["scope1"][i]
            s2[i] += s12["series"]["scope2LocationBased"][i]
    by_mode: dict[str, list[float | None]] = {m: list(v) for m, v in co2.items()}
    suppressed = 0
    for i in range(n_m):
        cells = [(len(persons.get((i, m), ())), m) for m in by_mode if (i, m) in persons]
        hidden = [m for n, m in cells if n < K_ANONYMITY]
        shown = sorted((n, m) for n, m in cells if n >= K_ANONYMITY)
        if len(hidden) == 1 and shown:
            hidden.append(shown[0][1])
        for m in hidden:
            by_mode[m][i] = None
            suppressed += 1
    total_ok = [len(p) >= K_ANONYMITY for p in month_persons]
    company_ok = [len(r) >= K_ANONYMITY for r in reporting]
    return {
        "period": months[0] if n_m == 1 else months[0][:4],
        "months": months,
        "unit": "kg",
        "companies": len(companies),
        "series": {
            "scope3Category7": [
                round(sum(v[i] for v in co2.values()), 3) if total_ok[i] else None
                for i in range(n_m)
            ],
            "category7ByMode": by_mode,
            "persons": [len(p) if total_ok[i] else None for i, p in enumerate(month_persons)],
            "scope1": [round(s1[i], 3) if company_ok[i] else None for i in range(n_m)],
            "scope2LocationBased": [round(s2[i], 3) if company_ok[i] else None for i in range(n_m)],
            "companiesReporting": [len(r) for r in reporting],
        },
        "suppressedCells": suppressed,
        "rules": {
            "k": K_ANONYMITY,
            "suppression": "A month-by-mode figure needs at least k distinct persons (each "
            "employee who consents, each uploaded survey answer); when one figure of a month "
            "is hidden, its smallest neighbour is hidden too. A month's total needs k persons; "
            "Scope 1/2 totals need k companies reporting. Hidden figures are null.",
            "scope": "Only the companies' reports: consenting employees' commutes and survey "
            "answers, and companies' energy use. Never a person's own trips.",
        },
    }


@router.get("/city/summary", response_model=None, responses=REPORT_RESPONSES)
async def city_view(
    who: CityStaff,
    service: Service,
    year: Year = None,
    month: Month = None,
    format: Format = "json",
) -> dict[str, Any] | Response:
    """The city's totals and trends (role ``city_staff``): aggregates only."""
    months = _months(year, month, service)
    body = await asyncio.to_thread(city_summary, service, months)
    s = body["series"]
    lines = [
        {
            "month": m,
            "scope1": s["scope1"][i],
            "scope2LocationBased": s["scope2LocationBased"][i],
            "scope3Category7": s["scope3Category7"][i],
            "persons": s["persons"][i],
            **{f"category7_{k}": v[i] for k, v in s["category7ByMode"].items()},
        }
        for i, m in enumerate(months)
    ]
    return _answer(body, format, f"city-{body['period']}", lines)

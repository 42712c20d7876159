"""Company reports: Scope 3 Category 7 (employee commuting), Scope 1 and 2, and their CSV.

Scope 3 Category 7 (GHG Protocol, employee commuting), per month:

* **Distance-based** for each employee who consents now (:mod:`app.emissions.companies`):
  their *commute trips* of the month, priced by the ledger (every leg's distance x its mode's
  factor; an on-demand ride's share of its vehicle's kilometres). **Commute rule:** a trip is
  a commute trip when one of its two ends lies within :data:`COMMUTE_RADIUS_M` of the
  company's site, measured as a box (+-1 km north-south and east-west); the home end is not
  known, so a trip from the site to lunch and back counts too. Recorded trips are read from
  the running commute totals per company, employee, month and mode
  (``emissions_commute_totals``, kept as trips are recorded: :mod:`app.emissions.commute`);
  booked trips and on-demand rides from the mobility core are priced by
  :class:`app.emissions.ledger.Ledger`.
* **Average-data** from the commute survey (mode, one-way km, days a week): one month is
  ``one-way km x 2 x days a week x`` :data:`WEEKS_PER_MONTH` passenger-km x the mode's
  factor. An employee's own answer counts only in months without any commute trip of theirs
  (never both methods for one person-month); answers uploaded by the admin (employees without
  the app) count every month. Employees with neither are not extrapolated: the report gives
  the coverage against the company's headcount.

An employee who did not consent, or revoked, is in no report of the company, past months
included. Scope 1 (fuels burnt) and Scope 2 (electricity bought) come from the company's
monthly energy use x the factor table's fuel and electricity factors; Scope 2 is given
**location-based** (the table's ``national_average`` grid factor) and **market-based** (the
supplier's adjusted factor ``<supplier>_adjusted`` when the table has it, else the supplier's
basic factor), each line stating the factor it used.

Figures are kilograms of CO2, three decimals (grams).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.emissions.calculator import ItineraryError, endpoints, factor_json
from app.emissions.commute import COMMUTE_RADIUS_M, near_site, site_box
from app.emissions.factors import FactorTable
from app.emissions.ledger import Ledger, month_of, parse_month
from app.emissions.models import CommuteTotal, Company, EnergyUse, Survey
from app.emissions.sources import completed_rides_of, confirmed_trips_of

#: Working weeks a year (52 less 4 of holidays); a month of the average-data method is 1/12.
WORKING_WEEKS_PER_YEAR = 48.0
WEEKS_PER_MONTH = WORKING_WEEKS_PER_YEAR / 12.0
#: Groups of the city view with fewer persons (or companies) than this are suppressed.
K_ANONYMITY = 5
#: PostgreSQL's work_mem for the Category 7 aggregation (one transaction only).
AGGREGATE_WORK_MEM = "64MB"

DISTANCE_BASED = "distance-based"
AVERAGE_DATA = "average-data"

COMMUTE_RULE = (
    f"A commute trip has one end within {COMMUTE_RADIUS_M:.0f} m (north-south and east-west) "
    "of the company's site; every such trip of a consenting employee counts."
)
AVERAGE_RULE = (
    f"Survey answers: one-way km x 2 x days a week x {WEEKS_PER_MONTH:g} weeks a month "
    f"({WORKING_WEEKS_PER_YEAR:g} working weeks a year) x the mode's g-CO2/pkm; an employee's "
    "own answer only in months without commute trips, uploaded answers every month."
)


def kg(grams: float) -> float:
    """Grams -> kilograms, three decimals."""
    return round(float(grams) / 1000.0, 3)


def period_months(year: int | None, month: str | None) -> list[str]:
    """``YYYY-MM`` of a month, or the twelve of a year (``ValueError`` when neither is valid)."""
    if month is not None:
        parse_month(month)
        return [month]
    if year is None or not (1970 <= year <= 9999):
        raise ValueError("give year=YYYY or month=YYYY-MM")
    return [f"{year:04d}-{m:02d}" for m in range(1, 13)]


def line_factor(table: FactorTable, mode: str) -> dict[str, Any]:
    """The factor a Category 7 line of ``mode`` states."""
    if mode == "FLEX":
        v = table.vehicles[table.default_vehicle]
        energy = table.energy(v.energy)
        return {
            "value": round(table.vehicle_g_per_km(table.default_vehicle), 1),
            "unit": "g-CO2/vehicle-km",
            "source": "Dispatcher record: the vehicle's km x energy per km x the energy's "
            f"factor, shared among the persons on board ({v.source}; {energy.source})",
            "year": energy.year,
        }
    try:
        return factor_json(table.mode(mode))
    except KeyError:
        return {
            "value": None,
            "unit": "g-CO2/pkm",
            "source": "unknown mode",
            "year": "",
            "verified": False,
        }


# --- Category 7 ----------------------------------------------------------------------------------
@dataclass
class CommuteData:
    """Consenting employees' commute trips: sums by month and mode (``[M, K]``), and which
    employee had a commute trip of which mode in which month (``present``, ``[U, M, K]``)."""

    users: list[str]
    months: list[str]
    modes: list[str]
    distance_m: np.ndarray[Any, np.dtype[np.float64]]
    co2_g: np.ndarray[Any, np.dtype[np.float64]]
    trips: np.ndarray[Any, np.dtype[np.int64]]
    present: np.ndarray[Any, np.dtype[np.bool_]]


#: Sums by month and mode: ``{(month, mode): (metres, grams, trips)}``.
MonthModeSums = dict[tuple[str, str], tuple[float, float, int]]
#: Who had commute trips: ``{(user, mode, year): bit m-1 set for month m}``.
PresenceBits = dict[tuple[str, str, str], int]


def _employees(dialect: str, users: list[str]) -> tuple[Any, Any]:
    """A table of the ``users`` given (one bound parameter, however many), and its column."""
    param = sa.bindparam("users", users, type_=sa.JSON)
    if dialect == "postgresql":
        fn = sa.func.json_array_elements_text(param)
    else:
        fn = sa.func.json_each(param)
    table = fn.table_valued("value").alias("employees")
    return table, table.c.value


def _recorded(
    engine: Engine, company: Company, users: list[str], months: Sequence[str]
) -> tuple[MonthModeSums, PresenceBits]:
    """The ``users``' recorded commute trips from the running commute totals
    (:mod:`app.emissions.commute`): summed by month and mode, and which user had trips of
    which mode in which month (as bits), both by the database in one snapshot."""
    if not users or not months:
        return {}, {}
    ct = CommuteTotal.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        employees, employee = _employees(conn.dialect.name, users)
        source = ct.join(employees, employee == ct.c.user_id)
        where = (ct.c.company_id == company.id, ct.c.month.in_(list(months)), ct.c.trips > 0)
        sums = (
            sa.select(
                ct.c.month,
                ct.c.mode,
                sa.func.sum(ct.c.distance_m),
                sa.func.sum(ct.c.co2_g),
                sa.func.sum(ct.c.trips),
            )
            .select_from(source)
            .where(*where)
            .group_by(ct.c.month, ct.c.mode)
        )
        cells = (
            sa.select(
                ct.c.user_id,
                ct.c.mode,
                sa.func.substr(ct.c.month, 1, 4).label("year"),
                sa.cast(sa.func.substr(ct.c.month, 6, 2), sa.Integer).label("month"),
            )
            .select_from(source)
            .where(*where)
            .subquery()
        )
        bits = sa.select(
            cells.c.user_id,
            cells.c.mode,
            cells.c.year,
            sa.func.sum(sa.cast(1, sa.BigInteger).op("<<")(cells.c.month - 1)),
        ).group_by(cells.c.user_id, cells.c.mode, cells.c.year)
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
                # ~20k (employee, mode) groups: hashed in memory rather than sorted on disk
                conn.execute(sa.text(f"SET LOCAL work_mem = '{AGGREGATE_WORK_MEM}'"))
            month_mode: MonthModeSums = {
                (str(m), str(k)): (float(d or 0.0), float(g or 0), int(n or 0))
                for m, k, d, g, n in conn.execute(sums)
            }
            presence: PresenceBits = {
                (str(u), str(k), str(y)): int(b) for u, k, y, b in conn.execute(bits)
            }
    return month_mode, presence


def _mobility_rows(
    ledger: Ledger, company: Company, users: list[str], months: Sequence[str]
) -> list[tuple[str, str, str, float, float, int]]:
    """The same rows for booked trips and on-demand rides (priced by the ledger)."""
    if ledger.mobility is None or not users:
        return []
    box = site_box(company.site_lat, company.site_lon)
    wanted = set(months)
    rides_of = completed_rides_of(ledger.mobility, users)
    trips_of = confirmed_trips_of(ledger.mobility, users)
    out: list[tuple[str, str, str, float, float, int]] = []
    for uid in sorted(set(rides_of) | set(trips_of)):
        rides = {
            str(r["ride_id"]): r
            for r in rides_of.get(uid, [])
            if r.get("picked_up_at") is not None and r.get("dropped_off_at") is not None
        }
        in_trips: set[str] = set()
        priced: list[tuple[Any, tuple[tuple[float, float], tuple[float, float]]]] = []
        for trip in trips_of.get(uid, []):
            in_trips.update(str(r["ride_id"]) for r in trip["legs"])
            entry = ledger._trip_entry(trip, rides)
            if entry is None:
                continue
            try:
                ends = endpoints(trip["itinerary"])
            except ItineraryError:
                continue
            priced.append((entry, ends))
        for rid, ride in rides.items():
            if rid in in_trips:
                continue
            a = (float(ride["origin"][0]), float(ride["origin"][1]))
            b = (float(ride["destination"][0]), float(ride["destination"][1]))
            priced.append((ledger._ride_entry(ride), (a, b)))
        for entry, (a, b) in priced:
            month = month_of(entry.started_at, ledger.tz)
            if month not in wanted or not (near_site(box, a) or near_site(box, b)):
                continue
            by_mode: dict[str, list[float]] = {}
            for leg in entry.legs:
                acc = by_mode.setdefault(str(leg["mode"]), [0.0, 0.0])
                acc[0] += float(leg["distance"])
                acc[1] += float(leg["co2"])
            out.extend((uid, month, m, d, g, 1) for m, (d, g) in by_mode.items())
    return out


def load_commutes(
    engine: Engine, ledger: Ledger, company: Company, users: list[str], months: Sequence[str]
) -> CommuteData:
    """The consenting employees' commute trips of ``months`` as arrays: recorded trips from
    the commute totals, booked trips and rides priced by the ledger."""
    sums, bits = _recorded(engine, company, users, months)
    u_index = {u: i for i, u in enumerate(users)}
    m_index = {m: i for i, m in enumerate(months)}
    mobility = [
        r for r in _mobility_rows(ledger, company, users, months) if r[0] in u_index
    ]  # consent revoked meanwhile: left out
    modes = sorted({k for _, k in sums} | {k for _, k, _ in bits} | {r[2] for r in mobility})
    k_index = {k: i for i, k in enumerate(modes)}
    n_m, n_k = len(months), len(modes)
    dist = np.zeros((n_m, n_k))
    co2 = np.zeros((n_m, n_k))
    trips = np.zeros((n_m, n_k), dtype=np.int64)
    for (month, mode), (d, g, n) in sums.items():
        dist[m_index[month], k_index[mode]] = d
        co2[m_index[month], k_index[mode]] = g
        trips[m_index[month], k_index[mode]] = n
    present = np.zeros((len(users), n_m, n_k), dtype=bool)
    if bits:
        # bit m-1 of (user, mode, year) -> present[user, month, mode], for the report's months
        of_bit = np.full((len(bits), 12), -1, dtype=np.int64)  # month index of each bit
        years = sorted({y for _, _, y in bits})
        year_months = {
            y: np.array([m_index.get(f"{y}-{b + 1:02d}", -1) for b in range(12)]) for y in years
        }
        ui = np.empty(len(bits), dtype=np.int64)
        ki = np.empty(len(bits), dtype=np.int64)
        mask = np.empty(len(bits), dtype=np.int64)
        for j, ((u, k, y), b) in enumerate(bits.items()):
            ui[j], ki[j], mask[j] = u_index[u], k_index[k], b
            of_bit[j] = year_months[y]
        on = ((mask[:, None] >> np.arange(12)) & 1).astype(bool) & (of_bit >= 0)
        rows, cols = np.nonzero(on)
        present[ui[rows], of_bit[rows, cols], ki[rows]] = True
    if mobility:
        users_c, months_c, modes_c, dist_c, co2_c, n_c = zip(*mobility, strict=True)
        ui_c = np.array([u_index[u] for u in users_c], dtype=np.int64)
        mi_c = np.array([m_index[m] for m in months_c], dtype=np.int64)
        ki_c = np.array([k_index[k] for k in modes_c], dtype=np.int64)
        np.add.at(dist, (mi_c, ki_c), np.asarray(dist_c, np.float64))
        np.add.at(co2, (mi_c, ki_c), np.asarray(co2_c, np.float64))
        np.add.at(trips, (mi_c, ki_c), np.asarray(n_c, np.int64))
        present[ui_c, mi_c, ki_c] = True
    return CommuteData(list(users), list(months), modes, dist, co2, trips, present)


@dataclass
class SurveyData:
    """Survey answers as arrays (``[S]``) with the months each counts in (``[S, M]``)."""

    refs: list[str]
    modes: list[str]
    km_month: np.ndarray[Any, np.dtype[np.float64]]  # passenger-km a month
    g_per_pkm: np.ndarray[Any, np.dtype[np.float64]]
    counts: np.ndarray[Any, np.dtype[np.bool_]]


def survey_km_month(one_way_km: float, days_per_week: float) -> float:
    """Passenger-km a month of a survey answer."""
    return one_way_km * 2.0 * days_per_week * WEEKS_PER_MONTH


def survey_data(table: FactorTable, answers: Sequence[Survey], commutes: CommuteData) -> SurveyData:
    """The answers that count, and in which months (an employee's own answer only in months
    without a commute trip of theirs)."""
    u_index = {u: i for i, u in enumerate(commutes.users)}
    has_trips = np.asarray(commutes.present.any(axis=2), bool) if commutes.modes else None
    n_months = len(commutes.months)
    counts = np.ones((len(answers), n_months), dtype=bool)
    for i, s in enumerate(answers):
        if s.user_id is not None:
            u = u_index.get(s.user_id)
            if u is None:
                counts[i] = False  # not consenting now
            elif has_trips is not None:
                counts[i] = ~has_trips[u]
    return SurveyData(
        refs=[s.ref for s in answers],
        modes=[s.mode for s in answers],
        km_month=np.array([survey_km_month(s.one_way_km, s.days_per_week) for s in answers]),
        g_per_pkm=np.array([table.mode(s.mode).value for s in answers]),
        counts=counts,
    )


@dataclass
class Category7:
    """A Category 7 report's figures (see :meth:`as_json`)."""

    company: Company
    table: FactorTable
    commutes: CommuteData
    surveys: SurveyData
    headcount: int | None
    extra: dict[str, Any] = field(default_factory=dict)

    def person_cells(self) -> list[tuple[str, str, str]]:
        """``(person, month, mode)`` of every contribution (for the city's k-anonymity)."""
        c, s = self.commutes, self.surveys
        out: list[tuple[str, str, str]] = []
        if c.modes:
            u, m, k = np.nonzero(c.present)
            out += [
                (f"user:{c.users[a]}", c.months[b], c.modes[d])
                for a, b, d in zip(u, m, k, strict=True)
            ]
        si, mi = np.nonzero(s.counts)
        for a, b in zip(si, mi, strict=True):
            ref = s.refs[a]
            person = ref if ref.startswith("user:") else f"{self.company.id}:{ref}"
            out.append((person, c.months[b], s.modes[a]))
        return out

    def persons(self) -> set[str]:
        """Every person with a contribution (the persons of :meth:`person_cells`)."""
        c, s = self.commutes, self.surveys
        out = {f"user:{c.users[u]}" for u in np.nonzero(c.present.any(axis=(1, 2)))[0]}
        for i in np.nonzero(s.counts.any(axis=1))[0]:
            ref = s.refs[i]
            out.add(ref if ref.startswith("user:") else f"{self.company.id}:{ref}")
        return out

    def as_json(self) -> dict[str, Any]:
        """Chart-friendly: monthly series by method and by mode, lines with their factors."""
        c, s = self.commutes, self.surveys
        months = c.months
        n_m = len(months)
        # distance-based
        dist_mk = c.distance_m if c.modes else np.zeros((n_m, 0))
        co2_mk = c.co2_g if c.modes else np.zeros((n_m, 0))
        trips_k = c.trips.sum(axis=0) if c.modes else np.zeros(0, np.int64)
        people_k = c.present.any(axis=1).sum(axis=0) if c.modes else np.zeros(0, np.int64)
        distance_people_m = c.present.any(axis=2).sum(axis=0) if c.modes else np.zeros(n_m)
        # average-data: [S, M]
        s_km = s.counts * s.km_month[:, None]
        s_g = s_km * s.g_per_pkm[:, None]
        by_mode: dict[str, np.ndarray[Any, np.dtype[np.float64]]] = {}
        lines: list[dict[str, Any]] = []
        for k, mode in enumerate(c.modes):
            by_mode[mode] = by_mode.get(mode, np.zeros(n_m)) + co2_mk[:, k]
            lines.append(
                {
                    "method": DISTANCE_BASED,
                    "mode": mode,
                    "employees": int(people_k[k]),
                    "trips": int(trips_k[k]),
                    "distance": round(float(dist_mk[:, k].sum()) / 1000.0, 3),
                    "distanceUnit": "km",
                    "co2": kg(co2_mk[:, k].sum()),
                    "factor": line_factor(self.table, mode),
                }
            )
        survey_modes = sorted(set(s.modes))
        mode_arr = np.array(s.modes, dtype=object)
        for mode in survey_modes:
            rows = mode_arr == mode
            g_m = s_g[rows].sum(axis=0)
            by_mode[mode] = by_mode.get(mode, np.zeros(n_m)) + g_m
            lines.append(
                {
                    "method": AVERAGE_DATA,
                    "mode": mode,
                    "employees": int(s.counts[rows].any(axis=1).sum()),
                    "trips": None,
                    "distance": round(float(s_km[rows].sum()), 3),
                    "distanceUnit": "km",
                    "co2": kg(g_m.sum()),
                    "factor": factor_json(self.table.mode(mode)),
                }
            )
        distance_g = co2_mk.sum(axis=1)
        average_g = s_g.sum(axis=0)
        total_g = float(distance_g.sum() + average_g.sum())
        covered_people = len(self.persons())
        body: dict[str, Any] = {
            "company": {"id": str(self.company.id), "name": self.company.name},
            "category": "Scope 3 Category 7: employee commuting (GHG Protocol)",
            "period": months[0] if n_m == 1 else months[0][:4],
            "months": months,
            "unit": "kg",
            "co2": {"co2": kg(total_g), "unit": "kg"},
            "byMethod": {DISTANCE_BASED: kg(distance_g.sum()), AVERAGE_DATA: kg(average_g.sum())},
            "series": {
                "byMethod": {
                    DISTANCE_BASED: [kg(x) for x in distance_g],
                    AVERAGE_DATA: [kg(x) for x in average_g],
                },
                "byMode": {m: [kg(x) for x in by_mode[m]] for m in sorted(by_mode)},
                "employeesByMethod": {
                    DISTANCE_BASED: [int(x) for x in distance_people_m],
                    AVERAGE_DATA: [int(x) for x in s.counts.sum(axis=0)],
                },
            },
            "lines": lines,
            "coverage": {
                "consenting": len(c.users),
                "surveyAnswers": len(s.refs),
                "covered": covered_people,
                "headcount": self.headcount,
                "uncovered": (
                    max(self.headcount - covered_people, 0) if self.headcount is not None else None
                ),
            },
            "rules": {
                DISTANCE_BASED: COMMUTE_RULE,
                AVERAGE_DATA: AVERAGE_RULE,
                "consent": "Only employees who consent now; a revoked consent removes the "
                "employee from every month.",
                "uncovered": "Employees with neither trips nor a survey answer are not "
                "extrapolated.",
            },
            "factors": self.table.name,
        }
        body.update(self.extra)
        return body


def category7(
    engine: Engine,
    ledger: Ledger,
    table: FactorTable,
    company: Company,
    users: list[str],
    answers: Sequence[Survey],
    months: Sequence[str],
) -> Category7:
    """The company's Category 7 report of ``months`` (``users``: who consents now)."""
    commutes = load_commutes(engine, ledger, company, users, months)
    return Category7(
        company, table, commutes, survey_data(table, answers, commutes), company.headcount
    )


# --- Scope 1 and 2 -------------------------------------------------------------------------------
def electricity_factors(
    table: FactorTable, supplier: str
) -> tuple[tuple[str, Any], tuple[str, Any]]:
    """``((key, factor) location-based, (key, factor) market-based)`` for a supplier."""
    loc_key = "national_average" if "national_average" in table.electricity else supplier
    market_key = f"{supplier}_adjusted" if f"{supplier}_adjusted" in table.electricity else supplier
    return (loc_key, table.electricity[loc_key]), (market_key, table.electricity[market_key])


def _energy_factor_json(key: str, f: Any) -> dict[str, Any]:
    out = factor_json(f)
    out["key"] = key
    if getattr(f, "basis", ""):
        out["basis"] = f.basis
    return out


def scope12(
    table: FactorTable, company: Company, rows: Sequence[EnergyUse], months: list[str]
) -> dict[str, Any]:
    """Scope 1 and 2 of ``months`` from the company's energy use."""
    m_index = {m: i for i, m in enumerate(months)}
    s1 = np.zeros(len(months))
    s2_loc = np.zeros(len(months))
    s2_mkt = np.zeros(len(months))
    lines: list[dict[str, Any]] = []
    for r in rows:
        i = m_index[r.month]
        if r.energy == "electricity":
            (lk, lf), (mk, mf) = electricity_factors(table, r.supplier)
            loc_g = r.quantity * lf.value * 1000.0
            mkt_g = r.quantity * mf.value * 1000.0
            s2_loc[i] += loc_g
            s2_mkt[i] += mkt_g
            lines.append(
                {
                    "month": r.month,
                    "scope": 2,
                    "energy": r.energy,
                    "supplier": r.supplier,
                    "quantity": r.quantity,
                    "unit": r.unit,
                    "co2": kg(loc_g),
                    "co2Market": kg(mkt_g),
                    "method": "location-based",
                    "factor": _energy_factor_json(lk, lf),
                    "factorMarket": _energy_factor_json(mk, mf),
                }
            )
        else:
            f = table.fuel(r.energy)
            g = r.quantity * f.value * 1000.0
            s1[i] += g
            lines.append(
                {
                    "month": r.month,
                    "scope": 1,
                    "energy": r.energy,
                    "supplier": "",
                    "quantity": r.quantity,
                    "unit": r.unit,
                    "co2": kg(g),
                    "co2Market": kg(g),
                    "method": "fuel x factor",
                    "factor": _energy_factor_json(r.energy, f),
                    "factorMarket": _energy_factor_json(r.energy, f),
                }
            )
    return {
        "company": {"id": str(company.id), "name": company.name},
        "period": months[0] if len(months) == 1 else months[0][:4],
        "months": months,
        "unit": "kg",
        "scope1": {"co2": kg(s1.sum()), "unit": "kg"},
        "scope2": {
            "locationBased": {"co2": kg(s2_loc.sum()), "unit": "kg"},
            "marketBased": {"co2": kg(s2_mkt.sum()), "unit": "kg"},
        },
        "series": {
            "scope1": [kg(x) for x in s1],
            "scope2LocationBased": [kg(x) for x in s2_loc],
            "scope2MarketBased": [kg(x) for x in s2_mkt],
        },
        "lines": lines,
        "rules": {
            "scope1": "Fuel burnt x the fuel's kg-CO2 per unit.",
            "scope2LocationBased": "kWh x the grid-average factor (national_average) of the "
            "factor table (the supplier's own when the table has no national average).",
            "scope2MarketBased": "kWh x the supplier's adjusted factor (<supplier>_adjusted) "
            "when the table has it, else its basic factor.",
        },
        "factors": table.name,
    }


# --- CSV -----------------------------------------------------------------------------------------
def _flat(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(v, f"{prefix}_{k}" if prefix else str(k), out)
    elif isinstance(value, list):
        # A list of objects (a scenario line's legs) reads "mode=BUS;distance=5200.0 | ...".
        out[prefix] = (" | " if any(isinstance(x, dict) for x in value) else " ").join(
            ";".join(f"{k}={v}" for k, v in x.items()) if isinstance(x, dict) else str(x)
            for x in value
        )
    else:
        out[prefix] = "" if value is None else value


def lines_csv(lines: Sequence[dict[str, Any]], total: dict[str, Any] | None = None) -> str:
    """Report lines as CSV (nested objects flattened: ``factor_value``...), then ``total``."""
    flat: list[dict[str, Any]] = []
    for line in lines:
        row: dict[str, Any] = {}
        _flat(line, "", row)
        flat.append(row)
    if total is not None:
        row = {}
        _flat(total, "", row)
        flat.append(row)
    columns: list[str] = []
    for row in flat:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    w = csv.DictWriter(buf, columns, lineterminator="\n", restval="")
    w.writeheader()
    w.writerows(flat)
    return buf.getvalue()


def today_month(tz: Any) -> str:
    """The current month in the city's time zone."""
    return month_of(dt.datetime.now(dt.UTC), tz)

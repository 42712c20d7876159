"""The commute rule and the running commute totals the Category 7 report reads.

**Commute rule:** a recorded trip is a commute trip *of a company* when one of its two ends
lies within :data:`COMMUTE_RADIUS_M` of the company's site, measured as a box (+-1 km
north-south and east-west, :func:`site_box`).

``emissions_commute_totals`` (:class:`app.emissions.models.CommuteTotal`) keeps, per
(company, employee, month, mode), the distance, CO2 and trip-mode count of that employee's
commute trips *for that company*, for every employee who consents to it now. It is a running
total of ``emissions_trip_modes`` (which keeps every trip's ends and stays the source of
truth), kept in the same transaction as the change that moves it:

* a trip recorded (:func:`add_trip`): added to the totals of each company the employee
  consents to whose site one of its ends is near (one upsert per mode);
* a trip deleted: the employee's month recomputed from the trip-mode rows (:func:`rebuild`);
* a consent granted (again): the employee's totals for that company computed from all their
  trip-mode rows, past months included (:func:`rebuild`);
* a consent revoked: the employee's totals for that company deleted (:func:`drop`).

Why keyed by company rather than by a grid cell of the trips' ends: the rule is a box around
each company's own site, which no company-independent grid lines up with, so a cell cut by
the box's edge would need the trips' exact ends again (the figures would no longer be exact),
and keying by both ends' cells multiplies the rows by the distinct home places. Keyed by
company, the rule is applied exactly once, when the trip is recorded, and the report reads at
most employees x months x modes rows. The cost: recording a trip does one upsert per company
the employee consents to (usually one), and a granted consent recomputes that one employee.
A company's site is fixed once registered; if it ever changes, :func:`rebuild` that company.

On PostgreSQL every change of an employee's totals first takes a transaction-scoped advisory
lock on the employee (:func:`lock_employee`), so a trip recorded while the same employee's
consent is granted, revoked or a trip deleted is never counted twice or lost. SQLite runs one
writer at a time (each change writes before it reads).
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from app.emissions.models import CommuteTotal, Company, Consent, TripMode

#: ``((lat, lon), (lat, lon))``: a trip's door-to-door ends.
Ends = tuple[tuple[float, float], tuple[float, float]]

#: A trip is a commute trip when one of its ends lies within this of the company's site.
COMMUTE_RADIUS_M = 1000.0
#: Metres per degree of latitude (mean Earth radius 6371.0088 km).
M_PER_DEG_LAT = 6371008.8 * math.pi / 180.0

#: PostgreSQL's work_mem for a whole company's rebuild (its transaction only).
REBUILD_WORK_MEM = "128MB"

_TOTALS = CommuteTotal.__table__  # type: ignore[attr-defined]
_MODES = TripMode.__table__  # type: ignore[attr-defined]
_CONSENTS = Consent.__table__  # type: ignore[attr-defined]
_COMPANIES = Company.__table__  # type: ignore[attr-defined]


def site_box(lat: float, lon: float, radius_m: float = COMMUTE_RADIUS_M) -> tuple[float, ...]:
    """``(lat_min, lat_max, lon_min, lon_max)`` of the box around a site."""
    dlat = radius_m / M_PER_DEG_LAT
    dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


def near_site(box: tuple[float, ...], point: tuple[float, float]) -> bool:
    """Whether ``(lat, lon)`` lies in the site's box."""
    return box[0] <= point[0] <= box[1] and box[2] <= point[1] <= box[3]


def lock_employee(conn: Connection, user_id: str) -> None:
    """Serialise changes of one employee's totals until the transaction ends (PostgreSQL)."""
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(f"emissions-commute:{user_id}".encode(), digest_size=8).digest()
    conn.execute(
        sa.text("SELECT pg_advisory_xact_lock(:k)"),
        {"k": int.from_bytes(digest, "big", signed=True)},
    )


def add_trip(conn: Connection, user_id: str, modes: Sequence[TripMode], ends: Ends | None) -> int:
    """Add a just-recorded trip (its rows by mode) to the totals of every company the user
    consents to now whose site one of ``ends`` is near; returns the totals rows touched.

    Runs in the caller's transaction (the one writing the trip)."""
    if ends is None or not modes:
        return 0  # no ends known: never a commute trip
    lock_employee(conn, user_id)
    sites = conn.execute(
        sa.select(_CONSENTS.c.company_id, _COMPANIES.c.site_lat, _COMPANIES.c.site_lon)
        .select_from(_CONSENTS.join(_COMPANIES, _COMPANIES.c.id == _CONSENTS.c.company_id))
        .where(_CONSENTS.c.user_id == user_id, _CONSENTS.c.revoked_at.is_(None))
    ).all()
    rows: list[dict[str, Any]] = []
    for company_id, lat, lon in sites:
        box = site_box(lat, lon)
        if not (near_site(box, ends[0]) or near_site(box, ends[1])):
            continue
        rows += [
            {
                "company_id": company_id,
                "user_id": user_id,
                "month": m.month,
                "mode": m.mode,
                "distance_m": m.distance_m,
                "co2_g": m.co2_g,
                "trips": 1,
            }
            for m in modes
        ]
    if rows:
        _upsert_add(conn, rows)
    return len(rows)


def _upsert_add(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Add ``rows`` to the totals (inserted when new)."""
    name = conn.dialect.name
    if name in ("postgresql", "sqlite"):
        insert = postgresql.insert if name == "postgresql" else sqlite.insert
        stmt = insert(_TOTALS).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=[
                _TOTALS.c.company_id,
                _TOTALS.c.user_id,
                _TOTALS.c.month,
                _TOTALS.c.mode,
            ],
            set_={c: _TOTALS.c[c] + stmt.excluded[c] for c in ("distance_m", "co2_g", "trips")},
        )
        conn.execute(stmt)
        return
    for row in rows:  # another database: read, then write
        key = sa.and_(*(_TOTALS.c[k] == row[k] for k in ("company_id", "user_id", "month", "mode")))
        updated = conn.execute(
            _TOTALS.update()
            .where(key)
            .values(
                distance_m=_TOTALS.c.distance_m + row["distance_m"],
                co2_g=_TOTALS.c.co2_g + row["co2_g"],
                trips=_TOTALS.c.trips + 1,
            )
        )
        if not getattr(updated, "rowcount", 0):
            conn.execute(_TOTALS.insert().values(row))


def rebuild(
    conn: Connection,
    *,
    company_id: uuid.UUID | None = None,
    user_id: str | None = None,
    months: Iterable[str] | None = None,
) -> None:
    """Recompute totals from the trip-mode rows: those of one company or all, of one employee
    or all, of some months or all (every one of them deleted first, then written for the
    consents active now).

    Used when a consent is granted (one company, one employee), a trip is deleted (one
    employee, one month); :func:`rebuild_all` (the e0003 migration's backfill, done again) to
    repair."""
    wanted = sorted(set(months)) if months is not None else None
    if user_id is not None:
        lock_employee(conn, user_id)
    delete = _TOTALS.delete()
    if company_id is not None:
        delete = delete.where(_TOTALS.c.company_id == company_id)
    if user_id is not None:
        delete = delete.where(_TOTALS.c.user_id == user_id)
    if wanted is not None:
        delete = delete.where(_TOTALS.c.month.in_(wanted))
    conn.execute(delete)
    companies = sa.select(_COMPANIES.c.id, _COMPANIES.c.site_lat, _COMPANIES.c.site_lon)
    if company_id is not None:
        companies = companies.where(_COMPANIES.c.id == company_id)
    if user_id is not None:
        active = sa.select(_CONSENTS.c.company_id).where(
            _CONSENTS.c.user_id == user_id, _CONSENTS.c.revoked_at.is_(None)
        )
        companies = companies.where(_COMPANIES.c.id.in_(active))
    if user_id is None and conn.dialect.name == "postgresql":
        # a whole company: ~300k groups hashed in memory rather than sorted on disk
        conn.execute(sa.text(f"SET LOCAL work_mem = '{REBUILD_WORK_MEM}'"))
    for cid, lat, lon in conn.execute(companies).all():
        _insert_company(conn, cid, site_box(lat, lon), user_id, wanted)


def _insert_company(
    conn: Connection,
    company_id: uuid.UUID,
    box: tuple[float, ...],
    user_id: str | None,
    months: list[str] | None,
) -> None:
    """One company's totals summed by the database from the trip-mode rows of the employees
    who consent to it now."""
    la0, la1, lo0, lo1 = box
    tm, cs = _MODES, _CONSENTS

    def near(lat: Any, lon: Any) -> Any:
        return sa.and_(lat.between(la0, la1), lon.between(lo0, lo1))

    query = (
        sa.select(
            sa.literal(company_id, sa.Uuid()),
            tm.c.user_id,
            tm.c.month,
            tm.c.mode,
            sa.func.sum(tm.c.distance_m),
            sa.func.sum(tm.c.co2_g),
            sa.func.count(),
        )
        .select_from(
            tm.join(
                cs,
                sa.and_(
                    cs.c.user_id == tm.c.user_id,
                    cs.c.company_id == company_id,
                    cs.c.revoked_at.is_(None),
                ),
            )
        )
        .where(sa.or_(near(tm.c.from_lat, tm.c.from_lon), near(tm.c.to_lat, tm.c.to_lon)))
        .group_by(tm.c.user_id, tm.c.month, tm.c.mode)
    )
    if user_id is not None:
        query = query.where(tm.c.user_id == user_id)
    if months is not None:
        query = query.where(tm.c.month.in_(months))
    columns = ["company_id", "user_id", "month", "mode", "distance_m", "co2_g", "trips"]
    conn.execute(_TOTALS.insert().from_select(columns, query))


def drop(conn: Connection, company_id: uuid.UUID, user_id: str) -> None:
    """Delete the employee's totals for the company (their consent is revoked)."""
    lock_employee(conn, user_id)
    conn.execute(
        _TOTALS.delete().where(_TOTALS.c.company_id == company_id, _TOTALS.c.user_id == user_id)
    )


def rebuild_all(engine: Engine, company_id: uuid.UUID | None = None) -> int:
    """Recompute every company's totals (or one's) in one transaction, then refresh the
    table's planner statistics (PostgreSQL); returns their rows."""
    with engine.begin() as conn:
        rebuild(conn, company_id=company_id)
        count = sa.select(sa.func.count()).select_from(_TOTALS)
        if company_id is not None:
            count = count.where(_TOTALS.c.company_id == company_id)
        rows = int(conn.execute(count).scalar_one())
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.text(f"ANALYZE {_TOTALS.name}"))
    return rows

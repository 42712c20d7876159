"""Scope 3 Category 7 report of a 5,000-employee company over a year of commute trips.

Run ``python -m bench.emissions [--json PATH] [--employees N] [--sqlite]``. A fresh database
(PostgreSQL by default: ``TSUNAGU_BENCH_PG`` or the test server, dropped at the end; or a
SQLite file with ``--sqlite``) is migrated with the emissions chain and filled, seeded, with
one company, its employees (80 % consenting, 20 % not), commute survey answers (30 % of the
employees, and 500 uploaded answers) and a year (2026) of recorded trips: each consenting
employee records 1-5 days a week over 48 weeks, two trips a day (walk + bus, walk + rail,
bicycle, or an on-demand ride + rail), one trip in ten not touching the site. The trips are
written (COPY) as the rows :func:`app.emissions.store.insert_taken_trip` writes beside each
trip (``emissions_trip_modes``; the trips' own rows, with their legs as JSON, are not
written), then the running commute totals are built from them by
:func:`app.emissions.commute.rebuild_all` (what the e0003 migration's backfill does; timed).

Measured:

* the yearly report (:func:`app.emissions.reports.category7` and its JSON, reading the commute
  totals) — time (best of 3) and peak Python memory (tracemalloc, a separate run) — against
  a baseline in the same run: the straightforward loop, every trip-mode row of the consenting
  employees read into Python and checked and summed one by one. Both must give the same
  total, and every (employee, month, mode) total must equal the database's own sum of the
  trip-mode rows. Target: under 2 s;
* the cost the totals add to recording one trip: ``--record-trips`` commute trips of
  consenting employees recorded by :func:`app.emissions.store.insert_taken_trip` (trip,
  trip-mode rows and totals in one transaction), against as many written the way it did
  before the totals (trip and trip-mode rows only, for employees who do not consent, so the
  totals stay right), interleaved, median per trip. They are recorded before the report is
  measured, so the report and the checks cover totals kept trip by trip too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import io
import json
import math
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app import db
from app.emissions import commute, store
from app.emissions.commute import COMMUTE_RADIUS_M, site_box
from app.emissions.factors import load_factor_table
from app.emissions.ledger import Ledger
from app.emissions.models import CommuteTotal, Company, Consent, Survey, TakenTrip, TripMode
from app.emissions.reports import category7, survey_km_month

PG_ADMIN_URL = os.environ.get(
    "TSUNAGU_BENCH_PG", os.environ.get("TSUNAGU_TEST_PG", "postgresql://127.0.0.1:5432/test")
)
TARGET_S = 2.0
YEAR = 2026
SITE = (42.40, 141.0)
MONTHS = [f"{YEAR}-{m:02d}" for m in range(1, 13)]
#: (modes, g-CO2 per km of each mode's share) of the generated trips, with their weights.
MIXES: list[tuple[tuple[str, ...], tuple[float, ...], float]] = [
    (("WALK", "BUS"), (0.08, 0.92), 0.55),
    (("WALK", "RAIL"), (0.1, 0.9), 0.2),
    (("BICYCLE",), (1.0,), 0.15),
    (("FLEX", "RAIL"), (0.3, 0.7), 0.1),
]
G_PER_KM = {"WALK": 0.0, "BICYCLE": 0.0, "BUS": 57.0, "RAIL": 17.0, "FLEX": 186.0}


@contextmanager
def database(sqlite: bool) -> Iterator[str]:
    """A fresh database URL, removed afterwards."""
    if sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    import psycopg

    name = f"tsunagu_bench_emissions_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def generate(engine: Engine, employees: int, seed: int) -> dict[str, Any]:
    """Write the company, consents, surveys and a year of trip-mode rows; returns counts."""
    rng = np.random.default_rng(seed)
    company = Company(name="Bench Steel", admin_user_id="admin", site_lat=SITE[0], site_lon=SITE[1])
    company.headcount = employees + 500
    users = [f"emp-{i:05d}" for i in range(employees)]
    consenting = rng.random(employees) < 0.8
    surveyed = rng.random(employees) < 0.3
    modes = ["CAR", "BUS", "RAIL", "WALK", "BICYCLE"]
    with db.session_scope(engine) as s:
        s.add(company)
        s.flush()
        s.add_all(
            Consent(company_id=company.id, user_id=u)
            for u, ok in zip(users, consenting, strict=True)
            if ok
        )
        answers = [
            Survey(
                company_id=company.id,
                ref=f"user:{u}",
                user_id=u,
                mode=str(rng.choice(modes)),
                one_way_km=float(rng.uniform(1, 30)),
                days_per_week=float(rng.integers(1, 6)),
            )
            for u, ok in zip(users, surveyed, strict=True)
            if ok
        ]
        answers += [
            Survey(
                company_id=company.id,
                ref=f"upload:{i}",
                mode=str(rng.choice(modes)),
                one_way_km=float(rng.uniform(1, 30)),
                days_per_week=float(rng.integers(1, 6)),
            )
            for i in range(500)
        ]
        s.add_all(answers)
    rows = trip_rows(rng, users)
    write_trip_modes(engine, rows)
    t0 = time.perf_counter()
    total_rows = commute.rebuild_all(engine, company.id)
    rebuild_s = time.perf_counter() - t0
    return {
        "company": company,
        "users": users,
        "consenting_mask": consenting,
        "rebuild_s": rebuild_s,
        "commute_total_rows": total_rows,
        "consenting": int(consenting.sum()),
        "trips": int(rows["trips"]),
        "trip_mode_rows": len(rows["user"]),
        "survey_answers": len(answers),
    }


def trip_rows(rng: np.random.Generator, users: list[str]) -> dict[str, Any]:
    """A year of trips of every employee (consenting or not), as trip-mode row arrays."""
    days_pw = rng.integers(1, 6, len(users))
    per_user = days_pw * 48 * 2
    n = int(per_user.sum())
    user = np.repeat(np.arange(len(users)), per_user)
    month = rng.integers(0, 12, n)
    km = rng.uniform(2.0, 25.0, n)
    mix = rng.choice(len(MIXES), n, p=[w for *_, w in MIXES])
    commute = rng.random(n) >= 0.1
    # home somewhere 2-25 km south; the work end within 500 m of the site (or 5 km away)
    home_lat = SITE[0] - km / 111.195
    work_lat = np.where(commute, SITE[0] + rng.uniform(-0.004, 0.004, n), SITE[0] + 0.05)
    outbound = rng.random(n) < 0.5
    out: dict[str, list[Any]] = {
        k: [] for k in ("trip", "user", "month", "mode", "dist", "co2", "flat", "tlat")
    }
    for k, (mix_modes, shares, _) in enumerate(MIXES):
        idx = np.nonzero(mix == k)[0]
        for mode, share in zip(mix_modes, shares, strict=True):
            d = km[idx] * share * 1000.0
            out["trip"].append(idx)
            out["user"].append(user[idx])
            out["month"].append(month[idx])
            out["mode"].append(np.full(len(idx), mode, dtype=object))
            out["dist"].append(d)
            out["co2"].append(np.rint(d / 1000.0 * G_PER_KM[mode]).astype(np.int64))
            out["flat"].append(np.where(outbound[idx], home_lat[idx], work_lat[idx]))
            out["tlat"].append(np.where(outbound[idx], work_lat[idx], home_lat[idx]))
    cat: dict[str, Any] = {k: np.concatenate(v) for k, v in out.items()}
    cat["user_ids"] = np.array(users, dtype=object)
    cat["trips"] = n
    return cat


def write_trip_modes(engine: Engine, rows: dict[str, Any]) -> None:
    """Bulk-write the trip-mode rows (COPY on PostgreSQL)."""
    n = len(rows["user"])
    trip_ids = [f"00000000-0000-4000-8000-{int(t):012x}" for t in rows["trip"]]
    users = rows["user_ids"][rows["user"]]
    months = np.array(MONTHS, dtype=object)[rows["month"]]
    if engine.dialect.name == "postgresql":
        buf = io.StringIO()
        for i in range(n):
            buf.write(
                f"{trip_ids[i]}\t{users[i]}\t{months[i]}\t{rows['mode'][i]}\t"
                f"{rows['dist'][i]:.1f}\t{rows['co2'][i]}\t{rows['flat'][i]:.6f}\t{SITE[1]}\t"
                f"{rows['tlat'][i]:.6f}\t{SITE[1]}\n"
            )
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            with cur.copy(  # type: ignore[attr-defined]
                "COPY emissions_trip_modes (trip_id, user_id, month, mode, distance_m, co2_g, "
                "from_lat, from_lon, to_lat, to_lon) FROM STDIN"
            ) as copy:
                copy.write(buf.getvalue())
            raw.commit()
            cur.execute("ANALYZE emissions_trip_modes")
            raw.commit()
        finally:
            raw.close()
        return
    table = TripMode.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(
            table.insert(),
            [
                {
                    "trip_id": uuid.UUID(trip_ids[i]),
                    "user_id": users[i],
                    "month": months[i],
                    "mode": rows["mode"][i],
                    "distance_m": float(rows["dist"][i]),
                    "co2_g": int(rows["co2"][i]),
                    "from_lat": float(rows["flat"][i]),
                    "from_lon": SITE[1],
                    "to_lat": float(rows["tlat"][i]),
                    "to_lon": SITE[1],
                }
                for i in range(n)
            ],
        )


def sample_trip(user: str, i: int) -> tuple[TakenTrip, store.Ends]:
    """A walk + bus commute of 2026-06 from home to the site (as the API would record it)."""
    start = dt.datetime(YEAR, 6, 1 + i % 28, 7, 30, tzinfo=dt.UTC) + dt.timedelta(seconds=i)
    home = (SITE[0] - 0.08, SITE[1])
    legs = [
        {"mode": "WALK", "distance": 400.0, "co2": 0},
        {"mode": "BUS", "distance": 8600.0, "co2": 490},
        {"mode": "WALK", "distance": 300.0, "co2": 0},
    ]
    trip = TakenTrip(
        user_id=user,
        fingerprint=uuid.uuid4().hex,
        month=f"{YEAR}-06",
        started_at=start,
        ended_at=start + dt.timedelta(minutes=35),
        distance_m=9300.0,
        co2_g=490,
        car_distance_m=11500.0,
        car_co2_g=1495,
        legs=legs,
        factors="bench",
    )
    return trip, (home, SITE)


def insert_without_totals(engine: Engine, trip: TakenTrip, ends: store.Ends) -> None:
    """How a trip was recorded before the commute totals: the trip and its trip-mode rows."""
    with db.session_scope(engine) as session:
        session.add(trip)
        session.flush()
        session.add_all(store.trip_modes(trip, ends))


def recording_cost(engine: Engine, made: dict[str, Any], n: int) -> dict[str, float]:
    """Median ms per recorded trip with the totals kept, and written as before (interleaved)."""
    users = made["users"]
    yes = [u for u, ok in zip(users, made["consenting_mask"], strict=True) if ok]
    no = [u for u, ok in zip(users, made["consenting_mask"], strict=True) if not ok]
    with_totals: list[float] = []
    without: list[float] = []
    for i in range(n + 10):  # the first 10 of each warm up
        trip, ends = sample_trip(yes[i % len(yes)], i)
        t0 = time.perf_counter()
        store.insert_taken_trip(engine, trip, ends)
        t1 = time.perf_counter()
        trip, ends = sample_trip(no[i % len(no)], i)
        t2 = time.perf_counter()
        insert_without_totals(engine, trip, ends)
        t3 = time.perf_counter()
        if i >= 10:
            with_totals.append((t1 - t0) * 1000.0)
            without.append((t3 - t2) * 1000.0)
    a, b = statistics.median(with_totals), statistics.median(without)
    return {"record_ms": a, "record_without_totals_ms": b, "record_added_ms": a - b}


def cells_agree(engine: Engine, company: Company) -> bool:
    """Every (employee, month, mode) commute total equals the database's own sum of the
    consenting employees' trip-mode rows with an end near the site (the rule applied anew)."""
    tm = TripMode.__table__  # type: ignore[attr-defined]
    cs = Consent.__table__  # type: ignore[attr-defined]
    ct = CommuteTotal.__table__  # type: ignore[attr-defined]
    la0, la1, lo0, lo1 = site_box(company.site_lat, company.site_lon, COMMUTE_RADIUS_M)

    def near(lat: Any, lon: Any) -> Any:
        return sa.and_(lat.between(la0, la1), lon.between(lo0, lo1))

    summed = (
        sa.select(
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
                    cs.c.company_id == company.id,
                    cs.c.revoked_at.is_(None),
                ),
            )
        )
        .where(sa.or_(near(tm.c.from_lat, tm.c.from_lon), near(tm.c.to_lat, tm.c.to_lon)))
        .group_by(tm.c.user_id, tm.c.month, tm.c.mode)
    )
    kept = sa.select(
        ct.c.user_id, ct.c.month, ct.c.mode, ct.c.distance_m, ct.c.co2_g, ct.c.trips
    ).where(ct.c.company_id == company.id)
    with engine.connect() as conn:
        a = {r[:3]: r[3:] for r in conn.execute(summed)}
        b = {r[:3]: r[3:] for r in conn.execute(kept)}
    return a.keys() == b.keys() and all(
        math.isclose(a[k][0], b[k][0], rel_tol=1e-12, abs_tol=1e-6)
        and int(a[k][1]) == int(b[k][1])
        and int(a[k][2]) == int(b[k][2])
        for k in a
    )


def baseline(engine: Engine, table: Any, company: Company) -> float:
    """The straightforward loop: every trip-mode row of the consenting employees read into
    Python, each one checked against the site and summed; surveys priced one by one.
    Returns the year's total in kg."""
    tm = TripMode.__table__  # type: ignore[attr-defined]
    cs = Consent.__table__  # type: ignore[attr-defined]
    sv = Survey.__table__  # type: ignore[attr-defined]
    box = site_box(company.site_lat, company.site_lon, COMMUTE_RADIUS_M)
    with engine.connect() as conn:
        active = {
            r[0]
            for r in conn.execute(
                sa.select(cs.c.user_id).where(
                    cs.c.company_id == company.id, cs.c.revoked_at.is_(None)
                )
            )
        }
        grams = 0.0
        with_trips: set[tuple[str, str]] = set()
        rows = conn.execute(
            sa.select(
                tm.c.user_id,
                tm.c.month,
                tm.c.co2_g,
                tm.c.from_lat,
                tm.c.from_lon,
                tm.c.to_lat,
                tm.c.to_lon,
            ).where(tm.c.month.in_(MONTHS))
        )
        for uid, month, co2, fa, fo, ta, to in rows:
            if uid not in active or fa is None:
                continue
            near = (box[0] <= fa <= box[1] and box[2] <= fo <= box[3]) or (
                box[0] <= ta <= box[1] and box[2] <= to <= box[3]
            )
            if near:
                grams += co2
                with_trips.add((uid, month))
        for _ref, user_id, mode, km, days in conn.execute(
            sa.select(sv.c.ref, sv.c.user_id, sv.c.mode, sv.c.one_way_km, sv.c.days_per_week).where(
                sv.c.company_id == company.id
            )
        ):
            if user_id is not None and user_id not in active:
                continue
            for month in MONTHS:
                if user_id is not None and (user_id, month) in with_trips:
                    continue
                grams += survey_km_month(km, days) * table.mode(mode).value
    return round(grams / 1000.0, 3)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs, and the last result."""
    best = math.inf
    result = None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def peak_mb(fn: Callable[[], Any]) -> float:
    """Peak Python memory (tracemalloc, numpy's arrays included) of one run."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def run(
    employees: int, seed: int, sqlite: bool, repeat: int = 3, record_trips: int = 200
) -> dict[str, Any]:
    """Generate, measure, compare; the figures."""
    table = load_factor_table()
    with database(sqlite) as url:
        engine = db.create_db_engine(url)
        try:
            store.upgrade(engine)
            t0 = time.perf_counter()
            made = generate(engine, employees, seed)
            gen_s = time.perf_counter() - t0
            company = made["company"]
            ledger = Ledger(table, engine, None)
            recording = recording_cost(engine, made, record_trips)

            def report() -> dict[str, Any]:
                from app.emissions import companies as cstore

                users = cstore.active_employees(engine, company.id)
                answers = cstore.surveys(engine, company.id)
                return category7(engine, ledger, table, company, users, answers, MONTHS).as_json()

            fast_s, body = timed(report, repeat)
            fast_mb = peak_mb(report)
            base_s, base_kg = timed(lambda: baseline(engine, table, company), 1)
            base_mb = peak_mb(lambda: baseline(engine, table, company))
            cells_ok = cells_agree(engine, company)
        finally:
            engine.dispose()
    total = body["co2"]["co2"]
    return {
        "backend": "sqlite" if sqlite else "postgresql",
        "employees": employees,
        "consenting": made["consenting"],
        "trips": made["trips"],
        "trip_mode_rows": made["trip_mode_rows"],
        "commute_total_rows": made["commute_total_rows"],
        "survey_answers": made["survey_answers"],
        "generate_s": round(gen_s, 2),
        "rebuild_s": round(made["rebuild_s"], 3),
        "report_s": round(fast_s, 3),
        "report_peak_mb": round(fast_mb, 1),
        "baseline_s": round(base_s, 3),
        "baseline_peak_mb": round(base_mb, 1),
        "speedup": round(base_s / fast_s, 2) if fast_s > 0 else None,
        "co2_kg": total,
        "baseline_co2_kg": base_kg,
        "same_total": abs(total - base_kg) < 0.01 + 1e-9 * abs(total),
        "same_cells": cells_ok,
        "recorded_trips": record_trips,
        "record_ms": round(recording["record_ms"], 3),
        "record_without_totals_ms": round(recording["record_without_totals_ms"], 3),
        "record_added_ms": round(recording["record_added_ms"], 3),
        "target_s": TARGET_S,
        "pass": fast_s < TARGET_S,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--employees", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--sqlite", action="store_true", help="a SQLite file, not PostgreSQL")
    ap.add_argument(
        "--record-trips", type=int, default=200, help="trips recorded to time (each way)"
    )
    args = ap.parse_args(argv)
    out = run(args.employees, args.seed, args.sqlite, record_trips=args.record_trips)
    print(
        f"Category 7, {out['employees']} employees ({out['consenting']} consenting), "
        f"{out['trips']:,} trips ({out['trip_mode_rows']:,} trip-mode rows), "
        f"{out['survey_answers']} survey answers, {out['backend']}"
    )
    print(
        f"  commute totals {out['commute_total_rows']:,} rows, built from the trip-mode rows "
        f"in {out['rebuild_s']:.3f} s"
    )
    print(
        f"  report   {out['report_s']:.3f} s  peak {out['report_peak_mb']:.1f} MB  "
        f"[target < {TARGET_S} s: {'PASS' if out['pass'] else 'MISS'}]"
    )
    print(
        f"  baseline {out['baseline_s']:.3f} s  peak {out['baseline_peak_mb']:.1f} MB  "
        f"(per-row Python loop)  speed-up x{out['speedup']}"
    )
    print(
        f"  total {out['co2_kg']:,} kg CO2, baseline {out['baseline_co2_kg']:,} kg: "
        f"{'same' if out['same_total'] else 'DIFFERENT'}; every employee-month-mode total "
        f"{'equal to' if out['same_cells'] else 'DIFFERENT from'} the trip-mode rows' sum"
    )
    print(
        f"  record one trip {out['record_ms']:.2f} ms with the totals, "
        f"{out['record_without_totals_ms']:.2f} ms without: +{out['record_added_ms']:.2f} ms "
        f"(median of {out['recorded_trips']})"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0 if out["same_total"] and out["same_cells"] else 1


if __name__ == "__main__":
    sys.exit(main())

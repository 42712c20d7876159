"""Scope 3 Category 7 report of a 5,000-employee company over a year of commute trips.

Run ``python -m bench.emissions [--json PATH] [--employees N] [--sqlite]``. A fresh database
(PostgreSQL by default: ``TSUNAGU_BENCH_PG`` or the test server, dropped at the end; or a
SQLite file with ``--sqlite``) is migrated with the emissions chain and filled, seeded, with
one company, its employees (80 % consenting, 20 % not), commute survey answers (30 % of the
employees, and 500 uploaded answers) and a year (2026) of recorded trips: each consenting
employee records 1-5 days a week over 48 weeks, two trips a day (walk + bus, walk + rail,
bicycle, or an on-demand ride + rail), one trip in ten not touching the site. The trips are
written as the rows :func:`app.emissions.store.insert_taken_trip` writes beside each trip
(``emissions_trip_modes``: the report's only input from recorded trips; the trips' own rows,
with their legs as JSON, are not written).

Measured: the yearly report (:func:`app.emissions.reports.category7` and its JSON) — time (best
of 3) and peak Python memory (tracemalloc, a separate run) — against a baseline in the same
run: the straightforward loop, every trip-mode row of the consenting employees read into
Python and checked and summed one by one. Both must give the same total. Target: under 2 s.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import math
import os
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
from app.emissions import store
from app.emissions.factors import load_factor_table
from app.emissions.ledger import Ledger
from app.emissions.models import Company, Consent, Survey, TripMode
from app.emissions.reports import (
    COMMUTE_RADIUS_M,
    category7,
    site_box,
    survey_km_month,
)

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
    return {
        "company": company,
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
    cat = {k: np.concatenate(v) for k, v in out.items()}
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


def run(employees: int, seed: int, sqlite: bool, repeat: int = 3) -> dict[str, Any]:
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

            def report() -> dict[str, Any]:
                from app.emissions import companies as cstore

                users = cstore.active_employees(engine, company.id)
                answers = cstore.surveys(engine, company.id)
                return category7(engine, ledger, table, company, users, answers, MONTHS).as_json()

            fast_s, body = timed(report, repeat)
            fast_mb = peak_mb(report)
            base_s, base_kg = timed(lambda: baseline(engine, table, company), 1)
            base_mb = peak_mb(lambda: baseline(engine, table, company))
        finally:
            engine.dispose()
    total = body["co2"]["co2"]
    return {
        "backend": "sqlite" if sqlite else "postgresql",
        "employees": employees,
        "consenting": made["consenting"],
        "trips": made["trips"],
        "trip_mode_rows": made["trip_mode_rows"],
        "survey_answers": made["survey_answers"],
        "generate_s": round(gen_s, 2),
        "report_s": round(fast_s, 3),
        "report_peak_mb": round(fast_mb, 1),
        "baseline_s": round(base_s, 3),
        "baseline_peak_mb": round(base_mb, 1),
        "speedup": round(base_s / fast_s, 2) if fast_s > 0 else None,
        "co2_kg": total,
        "baseline_co2_kg": base_kg,
        "same_total": abs(total - base_kg) < 0.01 + 1e-9 * abs(total),
        "target_s": TARGET_S,
        "pass": fast_s < TARGET_S,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--employees", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--sqlite", action="store_true", help="a SQLite file, not PostgreSQL")
    args = ap.parse_args(argv)
    out = run(args.employees, args.seed, args.sqlite)
    print(
        f"Category 7, {out['employees']} employees ({out['consenting']} consenting), "
        f"{out['trips']:,} trips ({out['trip_mode_rows']:,} trip-mode rows), "
        f"{out['survey_answers']} survey answers, {out['backend']}"
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
        f"{'same' if out['same_total'] else 'DIFFERENT'}"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0 if out["same_total"] else 1


if __name__ == "__main__":
    sys.exit(main())

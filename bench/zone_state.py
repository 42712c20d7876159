"""Cost of saving a zone after one command: the whole snapshot (before issue #10) against the
row-by-row items (``app.dispatch.store.save_zones`` now), measured in the same run.

A zone of 20 vans holds 10, 100 or 700 booked rides; each command books one more ride and
saves the zone, as the zone owner does before acking. Prints the median save time and the
bytes sent to the database per command (the bound parameters of every INSERT/UPDATE) for
both ways. Run ``python -m bench.zone_state [--json PATH] [--database-url URL]`` (default a
SQLite file in a temporary directory; a PostgreSQL URL needs an empty database of its own).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlmodel import SQLModel, select

from app.db import create_db_engine, session_scope
from app.dispatch.store import insert_zone, save_zones, zone_to_json
from app.models.dispatch import RideRecord, ZoneItemRecord, ZoneStateRecord
from dispatch.dispatcher import Dispatcher
from dispatch.request import RideRequest
from dispatch.scale_out import zone_snapshot
from dispatch.simulation.scenario import MURORAN_ZONE, build_dispatcher
from dispatch.zone import ServiceZone

NOW = 8 * 3600.0
VANS = 20
COMMANDS = 15


def _zone(n_rides: int, seed: int = 3) -> tuple[Dispatcher, list[RideRequest]]:
    """20 vans and ``n_rides`` rides booked, plus the requests of the commands to come."""
    zone = ServiceZone.from_geojson("muroran", MURORAN_ZONE)
    d = build_dispatcher([zone], VANS, (NOW - 600, NOW + 16 * 3600), seed)
    total = n_rides + COMMANDS
    pts = zone.random_points(np.random.default_rng(seed), 4 * total)
    every = 16 * 3600 / (total + 1) * 0.9
    reqs = [
        RideRequest(
            origin=(float(pts[2 * k, 0]), float(pts[2 * k, 1])),
            destination=(float(pts[2 * k + 1, 0]), float(pts[2 * k + 1, 1])),
            requested_at=NOW,
            earliest_pickup=NOW + 300 + every * k,
            request_id=f"r{k}",
            user_id=f"u{k % 50}",
        )
        for k in range(2 * total)
    ]
    booked, k = 0, 0
    while booked < n_rides and k < len(reqs):
        booked += not hasattr(d.request_ride(reqs[k], reqs[k].user_id, now=NOW), "reason")
        k += 1
    return d, reqs[k:]


def save_whole_snapshot(engine: sa.Engine, d: Dispatcher, zid: str) -> None:
    """The save before issue #10: the zone's whole snapshot in its row, and every ride of the
    zone compared with its record (written when it changed)."""
    snap = zone_snapshot(d, zid)
    zone = next(z for z in d.zones() if z.zone_id == zid)
    with session_scope(engine) as db:
        row = db.get(ZoneStateRecord, zid, with_for_update=True)
        if row is None:
            row = ZoneStateRecord(zone_id=zid, zone=zone_to_json(zone), state=snap)
        else:
            row.zone, row.state = zone_to_json(zone), snap
        db.add(row)
        rides = [r for r in d.rides() if r.zone_id == zid]
        saved = {
            rec.ride_id: rec
            for rec in db.exec(
                select(RideRecord).where(sa.column("ride_id").in_([r.ride_id for r in rides]))
            ).all()
        }
        for r in rides:
            rec, out = saved.get(r.ride_id), r.to_dict()
            if rec is not None and rec.ride == out:
                continue
            if rec is None:
                rec = RideRecord(
                    ride_id=r.ride_id,
                    user_id=r.user_id,
                    zone_id=zid,
                    vehicle_id=r.vehicle_id,
                    status=r.status.value,
                    booked_at=r.booked_at,
                    ride=out,
                )
            else:
                rec.vehicle_id, rec.status, rec.ride = r.vehicle_id, r.status.value, out
            db.add(rec)


def _bytes_counter(engine: sa.Engine) -> list[int]:
    sent = [0]

    def count(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: Any):  # type: ignore[no-untyped-def]
        if not statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            return
        rows = params if many else [params]
        for p in rows:
            values = p.values() if isinstance(p, dict) else p
            sent[0] += sum(len(str(v)) for v in values if v is not None)

    sa.event.listen(engine, "before_cursor_execute", count)
    return sent


def _measure(url: str, n_rides: int, way: str) -> dict[str, float]:
    engine = create_db_engine(url)
    for table in (ZoneItemRecord, RideRecord, ZoneStateRecord):
        table.__table__.drop(engine, checkfirst=True)  # type: ignore[attr-defined]
    SQLModel.metadata.create_all(
        engine,
        tables=[t.__table__ for t in (ZoneStateRecord, RideRecord, ZoneItemRecord)],  # type: ignore[attr-defined]
    )
    d, todo = _zone(n_rides)
    insert_zone(engine, d.zones()[0])  # the catalog row (epoch 0: the fenced save's)

    def save() -> None:
        if way == "snapshot":
            save_whole_snapshot(engine, d, "muroran")
        else:
            save_zones(engine, d, ["muroran"], {"muroran": 0})

    save()  # the zone as it stands (the first save after a takeover writes it whole)
    sent = _bytes_counter(engine)
    times: list[float] = []
    sizes: list[int] = []
    done = 0
    for req in todo:
        if done == COMMANDS:
            break
        if hasattr(d.request_ride(req, req.user_id, now=NOW), "reason"):
            continue
        before = sent[0]
        t0 = time.perf_counter()
        save()
        times.append(time.perf_counter() - t0)
        sizes.append(sent[0] - before)
        done += 1
    engine.dispose()
    return {
        "rides": float(len([r for r in d.rides()])),
        "median_ms": 1000 * statistics.median(times),
        "median_bytes": float(statistics.median(sizes)),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write the figures to this file")
    ap.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    ap.add_argument("--sizes", default="10,100,700", help="rides in the zone, comma-separated")
    args = ap.parse_args(argv)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/zone_state.db"
        print(f"{'rides':>6} {'way':>9} {'median ms':>10} {'bytes/command':>14}")
        for n in (int(x) for x in args.sizes.split(",")):
            for way in ("snapshot", "items"):
                m = _measure(url, n, way)
                out[f"{way}_{n}"] = m
                print(f"{n:>6} {way:>9} {m['median_ms']:>10.2f} {m['median_bytes']:>14.0f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()

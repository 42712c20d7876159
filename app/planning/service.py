"""The planning service's state: the published network as planners see it, their uploaded
destinations and population grid, and the scenarios they ran.

It lives on ``app.state.planning`` (built on first use), in the main process. Uploads and
scenarios (definition, status, comparison, who ran it and when) are kept in the database
(:mod:`app.models.planning`), so a restart or another worker sees them; they are shared by every
city planner, as one city's planners work on one plan. The parsed newest upload of each kind is
cached here, keyed by its row id, and parsed again only when a newer one is uploaded. The
published network is only read.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gtfs_kit as gk
import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.db import as_utc, session_scope
from app.errors import ApiError
from app.identity.principal import Principal
from app.models.identity import utcnow
from app.models.planning import PlanningScenario, PlanningUpload
from gtfs.compiled import CompiledTimetable
from gtfs.feed import Feed
from gtfs.service_levels import ServiceLevels, TimeBand, compute_service_levels, to_gtfs_kit
from routing.access import (
    AccessEngine,
    Destinations,
    Population,
    read_destinations,
    read_population,
)
from routing.transit import TransitData

DESTINATIONS = "destinations"
POPULATION = "population"
_PARSERS: dict[str, Callable[[str], Any]] = {
    DESTINATIONS: read_destinations,
    POPULATION: read_population,
}


@dataclass
class _NetworkView:
    network: Any
    feed: Feed
    gk_feed: gk.Feed
    timetable: CompiledTimetable
    data: TransitData
    default_day: dt.date
    engines: dict[dt.date, AccessEngine] = field(default_factory=dict)
    levels: dict[tuple[dt.date, tuple[TimeBand, ...]], ServiceLevels] = field(default_factory=dict)


class PlanningService:
    """See the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._view: _NetworkView | None = None
        # kind -> (row id, parsed upload): the newest upload of each kind, parsed once.
        self._uploads: dict[str, tuple[uuid.UUID, Any]] = {}

    # --- the published network -----------------------------------------------------------
    def view(self, services: Any) -> _NetworkView:
        """The published network's feed (the first published feed's own tables and dates)
        and timetable, rebuilt when a new network is published."""
        reg = getattr(services, "feeds", None)
        if reg is None:
            raise ApiError(503, "unavailable", "The feed registry is not running.")
        net = reg.network
        if net is None or net.timetable is None or not net.versions:
            raise ApiError(503, "no_network", "No timetable is published yet.")
        with self._lock:
            v = self._view
            if v is not None and v.network is net:
                return v
            from gtfs import read_feed

            first = net.versions[0]
            feed = read_feed(reg.store.original(first.version_id), feed_id=first.feed_id)
            gf = to_gtfs_kit(feed)
            day = dt.datetime.strptime(
                gk.compute_busiest_date(gf, gf.get_first_week()), "%Y%m%d"
            ).date()
            tt = net.feed_timetable or net.timetable
            self._view = _NetworkView(net, feed, gf, tt, TransitData(tt), day)
            return self._view

    def engine(self, services: Any, day: dt.date | None) -> AccessEngine:
        v = self.view(services)
        d = day or v.default_day
        with self._lock:
            eng = v.engines.get(d)
        if eng is None:
            try:
                eng = AccessEngine(v.data, d)
            except ValueError as exc:
                raise ApiError(422, "invalid_date", str(exc)) from exc
            with self._lock:
                if len(v.engines) > 4:
                    v.engines.clear()
                v.engines[d] = eng
        return eng

    def service_levels(
        self, services: Any, day: dt.date | None, bands: tuple[TimeBand, ...]
    ) -> ServiceLevels:
        v = self.view(services)
        d = day or v.default_day
        key = (d, bands)
        with self._lock:
            hit = v.levels.get(key)
        if hit is not None:
            return hit
        try:
            sl = compute_service_levels(v.gk_feed, d, bands)
        except ValueError as exc:
            raise ApiError(422, "no_service", str(exc)) from exc
        with self._lock:
            if len(v.levels) > 8:
                v.levels.clear()
            v.levels[key] = sl
        return sl

    # --- uploads -------------------------------------------------------------------------
    def save_upload(
        self,
        engine: Engine,
        kind: str,
        text: str,
        parsed: Any,
        summary: dict[str, Any],
        by: Principal,
    ) -> uuid.UUID:
        """Keep ``text`` (already parsed into ``parsed``) as the newest upload of ``kind``.
        Older uploads of the kind no scenario refers to are deleted: only the newest is used."""
        row = PlanningUpload(
            kind=kind, owner_id=by.user_id, owner_email=by.email, text=text, summary=summary
        )
        with session_scope(engine) as db:
            used = (
                sa.select(sa.literal(1))
                .where(
                    sa.or_(
                        col(PlanningScenario.destinations_id) == col(PlanningUpload.id),
                        col(PlanningScenario.population_id) == col(PlanningUpload.id),
                    )
                )
                .exists()
            )
            db.execute(sa.delete(PlanningUpload).where(col(PlanningUpload.kind) == kind, ~used))
            db.add(row)
        with self._lock:
            self._uploads[kind] = (row.id, parsed)
        return row.id

    def upload(self, engine: Engine, kind: str) -> tuple[uuid.UUID, Any] | None:
        """The newest upload of ``kind`` (its id and parsed value), None when there is none."""
        with Session(engine) as db:
            newest = db.exec(
                select(PlanningUpload.id)
                .where(PlanningUpload.kind == kind)
                .order_by(col(PlanningUpload.created_at).desc())
                .limit(1)
            ).first()
            if newest is None:
                return None
            with self._lock:
                hit = self._uploads.get(kind)
            if hit is not None and hit[0] == newest:
                return hit
            text = db.exec(select(PlanningUpload.text).where(PlanningUpload.id == newest)).one()
        parsed = _PARSERS[kind](text)
        with self._lock:
            self._uploads[kind] = (newest, parsed)
        return newest, parsed

    def destinations(self, engine: Engine) -> tuple[uuid.UUID, Destinations] | None:
        return self.upload(engine, DESTINATIONS)

    def population(self, engine: Engine) -> tuple[uuid.UUID, Population] | None:
        return self.upload(engine, POPULATION)

    # --- scenarios ------------------------------------------------------------------------
    def start_scenario(
        self,
        engine: Engine,
        spec: dict[str, Any],
        by: Principal,
        destinations_id: uuid.UUID | None,
        population_id: uuid.UUID | None,
    ) -> uuid.UUID:
        """Record a scenario as ``running`` before it runs (a crash leaves it visible)."""
        row = PlanningScenario(
            name=str(spec.get("name", "")),
            created_by=by.user_id,
            created_by_email=by.email,
            spec=spec,
            destinations_id=destinations_id,
            population_id=population_id,
        )
        try:
            with session_scope(engine) as db:
                db.add(row)
        except sa.exc.IntegrityError as exc:
            # Another planner replaced the upload (deleting the old one) since it was read.
            raise ApiError(
                409, "upload_replaced", "The uploads changed meanwhile; run the scenario again."
            ) from exc
        return row.id

    def finish_scenario(
        self,
        engine: Engine,
        sid: uuid.UUID,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Record the outcome: ``done`` with ``result`` or ``failed`` with ``error``."""
        with session_scope(engine) as db:
            row = db.get(PlanningScenario, sid)
            if row is None:  # deleted meanwhile (a restore): nothing to record against
                return
            row.status = "done" if error is None else "failed"
            row.result = result
            row.error = None if error is None else error[:1000]
            row.finished_at = utcnow()
            if result is not None and result.get("date"):
                row.analysis_date = dt.date.fromisoformat(str(result["date"]))
            db.add(row)

    def discard_scenario(self, engine: Engine, sid: uuid.UUID) -> None:
        """Forget a scenario the planner's input made impossible (answered with a 4xx: nothing
        was made, so nothing is kept)."""
        with session_scope(engine) as db:
            db.execute(sa.delete(PlanningScenario).where(col(PlanningScenario.id) == sid))

    def list_scenarios(self, engine: Engine) -> list[dict[str, Any]]:
        """Every scenario, newest first, without its (large) result."""
        with Session(engine) as db:
            rows = db.execute(
                sa.select(
                    col(PlanningScenario.id),
                    col(PlanningScenario.name),
                    col(PlanningScenario.status),
                    col(PlanningScenario.created_by),
                    col(PlanningScenario.created_by_email),
                    col(PlanningScenario.created_at),
                    col(PlanningScenario.finished_at),
                    col(PlanningScenario.analysis_date),
                ).order_by(col(PlanningScenario.created_at).desc())
            ).all()
        return [
            {
                "id": str(r[0]),
                "name": r[1],
                "status": r[2],
                "created_by": r[3],
                "created_by_email": r[4],
                "created_at": as_utc(r[5]).isoformat(),
                "finished_at": None if r[6] is None else as_utc(r[6]).isoformat(),
                "date": None if r[7] is None else r[7].isoformat(),
            }
            for r in rows
        ]

    def scenario(self, engine: Engine, sid: str) -> dict[str, Any] | None:
        """A scenario as :meth:`list_scenarios` gives it, with its ``spec`` and, when done, its
        result's figures (``table``, ``map``, ``cells``, ``on_demand``, ``date``...)."""
        try:
            key = uuid.UUID(sid)
        except ValueError:
            return None
        with Session(engine) as db:
            row = db.get(PlanningScenario, key)
        if row is None:
            return None
        return {
            **(row.result or {}),
            "id": str(row.id),
            "name": row.name,
            "status": row.status,
            "error": row.error,
            "created_by": row.created_by,
            "created_by_email": row.created_by_email,
            "created_at": as_utc(row.created_at).isoformat(),
            "finished_at": None if row.finished_at is None else as_utc(row.finished_at).isoformat(),
            "date": None if row.analysis_date is None else row.analysis_date.isoformat(),
            "spec": row.spec,
        }


def planning_of(app: Any) -> PlanningService:
    """The app's planning service (created on first use)."""
    svc = getattr(app.state, "planning", None)
    if svc is None:
        svc = PlanningService()
        app.state.planning = svc
    return svc  # type: ignore[no-any-return]

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
import fcntl
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import gtfs_kit as gk
import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from app.db import advisory_key, as_utc, session_scope
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

log = logging.getLogger("tsunagu.planning")

DESTINATIONS = "destinations"
POPULATION = "population"
_PARSERS: dict[str, Callable[[str], Any]] = {
    DESTINATIONS: read_destinations,
    POPULATION: read_population,
}


@dataclass(frozen=True)
class PublishedFeed:
    """A published feed planners may analyse: its id and the version published."""

    feed_id: str
    version_id: int


@dataclass
class _NetworkView:
    published: PublishedFeed
    feed: Feed
    gk_feed: gk.Feed
    timetable: CompiledTimetable
    data: TransitData
    default_day: dt.date
    engines: dict[dt.date, AccessEngine] = field(default_factory=dict)
    levels: dict[tuple[dt.date, tuple[TimeBand, ...]], ServiceLevels] = field(default_factory=dict)

    @property
    def feed_id(self) -> str:
        return self.published.feed_id


# --- which process runs a scenario -----------------------------------------------------------
INTERRUPTED_REASON = (
    "interrupted: the server process running it stopped before it finished; run it again"
)

#: Scenarios running in this process (an in-memory SQLite database belongs to one process).
_LOCAL_RUNS: set[uuid.UUID] = set()
_LOCAL_LOCK = threading.Lock()


class _RunLock:
    """A lock held by the process running one scenario, for as long as the run lasts.

    The operating system or the database drops it when the process dies, so a ``running``
    row whose lock can be taken has no live runner: another process may mark it interrupted,
    and never marks one a live process (this one or another on the same database) still runs.
    PostgreSQL: a session-level advisory lock on a connection of its own. SQLite file: an
    exclusive ``flock`` on a file beside the database (one host, as SQLite is). In-memory
    SQLite: this process's set of runs.
    """

    def __init__(self, release: Callable[[], None]) -> None:
        self._release = release

    def release(self) -> None:
        self._release()

    @staticmethod
    def take(engine: Engine, sid: uuid.UUID, wait: bool) -> _RunLock | None:
        """The lock of ``sid`` (``wait``: block until free), None when another holds it."""
        if engine.dialect.name == "postgresql":
            return _RunLock._pg(engine, sid, wait)
        path = engine.url.database if engine.dialect.name == "sqlite" else None
        if path and path != ":memory:":
            return _RunLock._flock(Path(f"{path}.planning-runs") / f"{sid}.lock", wait)
        with _LOCAL_LOCK:
            if sid in _LOCAL_RUNS:
                return None
            _LOCAL_RUNS.add(sid)

        def forget() -> None:
            with _LOCAL_LOCK:
                _LOCAL_RUNS.discard(sid)

        return _RunLock(forget)

    @staticmethod
    def _pg(engine: Engine, sid: uuid.UUID, wait: bool) -> _RunLock | None:
        key = advisory_key(f"planning-scenario:{sid}")
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            if wait:
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            elif not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                conn.close()
                return None
        except BaseException:
            conn.close()
            raise

        def unlock() -> None:
            try:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            finally:
                conn.close()

        return _RunLock(unlock)

    @staticmethod
    def _flock(path: Path, wait: bool) -> _RunLock | None:
        path.parent.mkdir(parents=True, exist_ok=True)
        f: IO[str] = open(path, "a")  # noqa: SIM115 - held open for the whole run
        try:
            fcntl.flock(f, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return None
        except BaseException:
            f.close()
            raise

        def unlock() -> None:
            try:
                path.unlink(missing_ok=True)
            finally:
                f.close()  # closing the last descriptor drops the flock

        return _RunLock(unlock)


class PlanningService:
    """See the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # One view per published feed version analysed (a newer version gets a new one).
        self._views: dict[PublishedFeed, _NetworkView] = {}
        # kind -> (row id, parsed upload): the newest upload of each kind, parsed once.
        self._uploads: dict[str, tuple[uuid.UUID, Any]] = {}
        # Scenario id -> the lock this process holds while running it.
        self._runs: dict[uuid.UUID, _RunLock] = {}

    # --- the published network -----------------------------------------------------------
    @staticmethod
    def published_feeds(services: Any) -> list[PublishedFeed]:
        """Every published feed (by feed id), from the database through the registry.

        Read from the feed versions, not from how the served network groups them (one merged
        network, or one per city): a planner analyses one feed, whatever the grouping.
        """
        reg = getattr(services, "feeds", None)
        if reg is None:
            raise ApiError(503, "unavailable", "The feed registry is not running.")
        return [
            PublishedFeed(str(f["feed_id"]), int(f["published_version"]))
            for f in reg.list_feeds()
            if f.get("published_version") is not None
        ]

    def view(self, services: Any, feed_id: str | None = None) -> _NetworkView:
        """One published feed as planners analyse it (default: the first by feed id): its own
        tables and dates (gtfs-kit) and its compiled timetable, rebuilt when a new version of
        it is published.

        Raises
        ------
        ApiError
            503 ``no_network`` when nothing is published; 422 ``unknown_feed`` when
            ``feed_id`` is not published.
        """
        feeds = self.published_feeds(services)
        if not feeds:
            raise ApiError(503, "no_network", "No timetable is published yet.")
        if feed_id is None:
            chosen = feeds[0]
        else:
            found = [f for f in feeds if f.feed_id == feed_id]
            if not found:
                raise ApiError(
                    422,
                    "unknown_feed",
                    f"feed must be one of the published feeds {[f.feed_id for f in feeds]}",
                    {"feeds": [f.feed_id for f in feeds]},
                )
            chosen = found[0]
        with self._lock:
            hit = self._views.get(chosen)
        if hit is not None:
            return hit
        from gtfs import read_feed

        reg = services.feeds
        version = reg.get_version(chosen.feed_id, chosen.version_id)
        feed = read_feed(reg.store.original(chosen.version_id), feed_id=chosen.feed_id)
        gf = to_gtfs_kit(feed)
        day = dt.datetime.strptime(
            gk.compute_busiest_date(gf, gf.get_first_week()), "%Y%m%d"
        ).date()
        # The feed's own timetable and calendar (not a merged network's, nor mapped onto
        # today): what a scenario's copy of this feed is compared against.
        tt = reg.timetable_of(version)
        v = _NetworkView(chosen, feed, gf, tt, TransitData(tt), day)
        live = set(feeds)
        with self._lock:
            # Views of versions no longer published are dropped (they hold whole networks).
            for k in [k for k in self._views if k not in live]:
                del self._views[k]
            return self._views.setdefault(chosen, v)

    def engine(
        self, services: Any, day: dt.date | None, feed_id: str | None = None
    ) -> AccessEngine:
        v = self.view(services, feed_id)
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
        self,
        services: Any,
        day: dt.date | None,
        bands: tuple[TimeBand, ...],
        feed_id: str | None = None,
    ) -> ServiceLevels:
        v = self.view(services, feed_id)
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
        """Record a scenario as ``running`` before it runs (a crash leaves it visible), holding
        its run lock until :meth:`finish_scenario` or :meth:`discard_scenario`."""
        row = PlanningScenario(
            name=str(spec.get("name", "")),
            created_by=by.user_id,
            created_by_email=by.email,
            spec=spec,
            destinations_id=destinations_id,
            population_id=population_id,
        )
        # Taken before the row exists: no other process ever sees it running and unlocked.
        held = _RunLock.take(engine, row.id, wait=True)
        assert held is not None  # a new id: nobody else holds it
        try:
            with session_scope(engine) as db:
                db.add(row)
        except sa.exc.IntegrityError as exc:
            held.release()
            # Another planner replaced the upload (deleting the old one) since it was read.
            raise ApiError(
                409, "upload_replaced", "The uploads changed meanwhile; run the scenario again."
            ) from exc
        except BaseException:
            held.release()
            raise
        with self._lock:
            self._runs[row.id] = held
        return row.id

    def _release_run(self, sid: uuid.UUID) -> None:
        with self._lock:
            held = self._runs.pop(sid, None)
        if held is not None:
            held.release()

    def finish_scenario(
        self,
        engine: Engine,
        sid: uuid.UUID,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Record the outcome: ``done`` with ``result`` or ``failed`` with ``error``; then
        release the run lock. A scenario deleted meanwhile stays deleted."""
        try:
            values: dict[str, Any] = {
                "status": "done" if error is None else "failed",
                "result": result,
                "error": None if error is None else error[:1000],
                "finished_at": utcnow(),
            }
            if result is not None and result.get("date"):
                values["analysis_date"] = dt.date.fromisoformat(str(result["date"]))
            with session_scope(engine) as db:
                db.execute(
                    sa.update(PlanningScenario)
                    .where(
                        col(PlanningScenario.id) == sid,
                        # "interrupted": its lock was lost (the database connection dropped)
                        # and another process marked it; the run did finish, so say so.
                        col(PlanningScenario.status).in_(("running", "interrupted")),
                    )
                    .values(**values)
                )
        finally:
            self._release_run(sid)

    def discard_scenario(self, engine: Engine, sid: uuid.UUID) -> None:
        """Forget a scenario the planner's input made impossible (answered with a 4xx: nothing
        was made, so nothing is kept)."""
        try:
            with session_scope(engine) as db:
                db.execute(sa.delete(PlanningScenario).where(col(PlanningScenario.id) == sid))
        finally:
            self._release_run(sid)

    def mark_interrupted(self, engine: Engine) -> list[str]:
        """Mark ``interrupted`` (with the reason) every ``running`` scenario whose runner is
        gone: its run lock is free, so the process that ran it died or was stopped. One a
        live process runs (this or another on the same database) is left running. Returns the
        ids marked. Called when scenarios are listed or fetched, so the next start of any
        process, or any planner's look at the list while another process lives on, finds a
        dead run for what it is."""
        with Session(engine) as db:
            running = (
                db.execute(
                    sa.select(col(PlanningScenario.id)).where(
                        col(PlanningScenario.status) == "running"
                    )
                )
                .scalars()
                .all()
            )
        marked: list[str] = []
        for sid in running:
            claim = _RunLock.take(engine, sid, wait=False)
            if claim is None:
                continue  # its runner lives
            try:
                with session_scope(engine) as db:
                    res = db.execute(
                        sa.update(PlanningScenario)
                        .where(
                            col(PlanningScenario.id) == sid,
                            col(PlanningScenario.status) == "running",
                        )
                        .values(
                            status="interrupted",
                            error=INTERRUPTED_REASON,
                            finished_at=utcnow(),
                        )
                    )
                if res.rowcount:  # type: ignore[attr-defined]
                    marked.append(str(sid))
                    log.warning("planning scenario %s marked interrupted (runner gone)", sid)
            finally:
                claim.release()
        return marked

    def delete_scenario(self, engine: Engine, sid: str, by: Principal) -> dict[str, Any]:
        """Delete a scenario: its author or an administrator; the deletion is audited.

        The row stays as a tombstone (status ``deleted``, without its comparison and uploads)
        recording who deleted it and when, so the audit lives in the planning tables
        themselves; it is no longer listed nor fetched. A run still going on is let finish
        and its outcome dropped.

        Raises
        ------
        ApiError
            404 ``not_found`` (no such scenario, or deleted already); 403 ``forbidden`` when
            ``by`` is neither its author nor an administrator.
        """
        try:
            key = uuid.UUID(sid)
        except ValueError:
            raise ApiError(404, "not_found", "No such scenario.") from None
        now = utcnow()
        with session_scope(engine) as db:
            row = db.get(PlanningScenario, key, with_for_update=True)
            if row is None or row.status == "deleted":
                raise ApiError(404, "not_found", "No such scenario.")
            if row.created_by != by.user_id and not by.is_admin:
                raise ApiError(
                    403,
                    "forbidden",
                    "Only the scenario's author or an administrator may delete it.",
                    {"created_by": row.created_by},
                )
            was = row.status
            row.status = "deleted"
            row.result = {
                "deleted": {
                    "by": by.user_id,
                    "by_email": by.email,
                    "at": now.isoformat(),
                    "status_before": was,
                }
            }
            row.error = f"deleted by {by.email or by.user_id} at {now.isoformat()}"[:1000]
            # The uploads it used may go once no other scenario refers to them.
            row.destinations_id = None
            row.population_id = None
            db.add(row)
        log.info(
            "planning scenario %s (%r, %s) deleted by %s <%s>",
            key,
            row.name,
            was,
            by.user_id,
            by.email,
        )
        return {"id": str(key), "deleted_by": by.user_id, "deleted_at": now.isoformat()}

    def list_scenarios(self, engine: Engine) -> list[dict[str, Any]]:
        """Every scenario but the deleted, newest first, without its (large) result; runs
        whose process is gone are marked interrupted first."""
        self.mark_interrupted(engine)
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
                    col(PlanningScenario.error),
                    col(PlanningScenario.spec),
                )
                .where(col(PlanningScenario.status) != "deleted")
                .order_by(col(PlanningScenario.created_at).desc())
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
                "error": r[8],
                "feed": (r[9] or {}).get("feed"),
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
            running = db.execute(
                sa.select(col(PlanningScenario.status)).where(col(PlanningScenario.id) == key)
            ).scalar()
        if running == "running":
            self.mark_interrupted(engine)
        with Session(engine) as db:
            row = db.get(PlanningScenario, key)
        if row is None or row.status == "deleted":
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
            "feed": (row.spec or {}).get("feed"),
        }


def planning_of(app: Any) -> PlanningService:
    """The app's planning service (created on first use)."""
    svc = getattr(app.state, "planning", None)
    if svc is None:
        svc = PlanningService()
        app.state.planning = svc
    return svc  # type: ignore[no-any-return]

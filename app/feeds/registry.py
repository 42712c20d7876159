"""The feed lifecycle: upload → validate → compile → publish (hot swap) → rollback.

:class:`FeedRegistry` is synchronous and thread-safe; the API calls it through a worker thread
(``run_in_threadpool``) so reading, validating and compiling a feed never blocks the event
loop. Writers (publish, rollback) are serialised by one lock; readers take
``registry.network`` — an immutable :class:`~app.feeds.network.Network` — without any lock.

Each feed belongs to a region (``FeedVersion.network``, its own id by default): the published
feeds of one region are merged into one network, and each region is a network of its own
(``registry.networks``, by name). ``registry.network`` is the default one: the only region, or
the largest (most stops) when there are several. Publishing in one region leaves the other
regions' networks — and their stop ids — untouched.

Publishing builds the complete new network first (loading or compiling its timetable), then
commits the status change, then swaps the reference: a failure at any step leaves the served
network untouched. ERROR notices block publishing (409 ``feed_has_errors`` with the report
summary).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from app.db import startup_lock
from app.errors import ApiError
from app.feeds.models import FeedVersion
from app.feeds.network import Network, PublishedVersion, contains, timetable_counts
from app.feeds.realtime import RealtimeHub
from app.feeds.service_date import today_in
from app.feeds.store import ArtifactStore, sha256_file
from app.models.identity import utcnow
from gtfs.calendar_mapping import CalendarMapping, map_calendar
from gtfs.compiled import CompiledTimetable
from gtfs.realtime.keys import RealtimeKeys

log = logging.getLogger("tsunagu.feeds")

FEED_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PUBLISHABLE = ("valid", "archived", "published")
#: ERROR codes an operator may publish over, with a stated reason: they spoil how a route is
#: shown (a colour, a link, a name) but not what the planner computes. Every other ERROR
#: (a missing file, broken references, bad times, coordinates or dates) still blocks.
OVERRIDABLE_ERRORS = frozenset(
    {"invalid_color", "invalid_url", "route_both_short_and_long_name_missing"}
)
CALENDAR_MAPPING_MODES = ("auto", "off")


#: How far beyond its outermost stop a place still belongs to a region (about 5 km).
REGION_MARGIN_DEG = 0.05


def check_network_name(name: str) -> str:
    """A region name has the form of a feed id (it defaults to one)."""
    if not FEED_ID_RE.match(name):
        raise ApiError(
            422,
            "invalid_network",
            "network must be 1-64 letters, digits, '_', '-' or '.', starting with a letter "
            "or digit.",
            {"network": name},
        )
    return name


def check_feed_id(feed_id: str) -> str:
    if not FEED_ID_RE.match(feed_id):
        raise ApiError(
            422,
            "invalid_feed_id",
            "feed_id must be 1-64 letters, digits, '_', '-' or '.', starting with a letter "
            "or digit.",
            {"feed_id": feed_id},
        )
    return feed_id


def report_counts(report: dict[str, Any]) -> tuple[int, int, int, dict[str, dict[str, int]]]:
    """(errors, warnings, infos, {severity: {code: total}}) of a gtfs-validator style report."""
    by: dict[str, dict[str, int]] = {"ERROR": {}, "WARNING": {}, "INFO": {}}
    for n in report.get("notices", []):
        sev = str(n.get("severity", "WARNING")).upper()
        total = int(n.get("totalNotices", n.get("total", 1)))
        by.setdefault(sev, {})[str(n.get("code"))] = total
    return (
        sum(by["ERROR"].values()),
        sum(by["WARNING"].values()),
        sum(by["INFO"].values()),
        by,
    )


#: The ids a compiled network keys by (a feed without agency_id gets one "agency" id).
_ID_COLUMNS = (
    ("stops", "stop_id"),
    ("routes", "route_id"),
    ("trips", "trip_id"),
    ("shapes", "shape_id"),
    ("agency", "agency_id"),
)


def ids_collide(feeds: Sequence[Any]) -> bool:
    """Whether two of ``feeds`` share a stop, route, trip, shape, agency or service id."""
    for table, col in (*_ID_COLUMNS, ("services", "service_id")):
        seen: set[str] = set()
        for f in feeds:
            if table == "services":
                ids = set(f.column("calendar", col)) | set(f.column("calendar_dates", col))
            else:
                ids = set(f.column(table, col))
                if table == "agency" and (not ids or "" in ids):
                    ids = (ids - {""}) | {"agency"}
            ids.discard("")
            if ids & seen:
                return True
            seen |= ids
    return False


class FeedRegistry:
    """Feed versions in the database + artifacts on disk + the served network in memory.

    Parameters
    ----------
    engine
        The database holding ``feed_versions``.
    data_dir
        Artifacts go under ``data_dir/feeds``.
    read_limits
        ``gtfs.reader.ReadLimits`` against hostile zips (defaults when None).
    clock
        Returns "now" (tests pin the demo service date with it).
    calendar_mapping
        ``auto``: when the published feeds do not cover today, map their calendar onto the
        dates around today (:mod:`gtfs.calendar_mapping`); ``off``: never.

    Raises
    ------
    ValueError
        When ``calendar_mapping`` is not one of :data:`CALENDAR_MAPPING_MODES`.
    """

    def __init__(
        self,
        engine: Engine,
        data_dir: Path,
        *,
        read_limits: Any = None,
        clock: Callable[[], dt.datetime] | None = None,
        calendar_mapping: str = "auto",
    ) -> None:
        if calendar_mapping not in CALENDAR_MAPPING_MODES:
            raise ValueError(
                f"calendar_mapping must be one of {CALENDAR_MAPPING_MODES}, "
                f"not {calendar_mapping!r}"
            )
        self.calendar_mapping = calendar_mapping
        self.engine = engine
        self.store = ArtifactStore(Path(data_dir) / "feeds")
        self.read_limits = read_limits
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.realtime = RealtimeHub(spool_dir=Path(data_dir) / "realtime")
        self._network = Network(timetable=None)
        # Region name -> its network; replaced whole (never mutated) on every change.
        self._networks: dict[str, Network] = {}
        # Published versions whose artifacts are not on this data dir (see ``missing``).
        self._missing: tuple[dict[str, Any], ...] = ()
        self._generation = 0  # networks are numbered across regions (realtime caches key by it)
        self._write_lock = threading.RLock()
        self.compiles = 0  # timetables compiled by this process (a restart must not add any)
        self.pollers: list[Any] = []  # gtfs.realtime.RealtimePoller per configured poll URL
        # The on-demand fleet for the public GTFS-RT export; the dispatcher sets it:
        # () -> (list[gtfs.realtime.FleetVehicle], list[gtfs.realtime.FleetTrip]).
        self.fleet_provider: Callable[[], tuple[list[Any], list[Any]]] | None = None
        # Footpaths for compile (``compile_timetable(footpaths=...)``): None = straight lines;
        # set to ``routing.street.footpath_source(graph)`` when an OSM extract is configured.
        self.footpaths: Any = None

    # --- the served network ---------------------------------------------------------------
    @property
    def network(self) -> Network:
        """The default network's current snapshot (the only region, else the largest); grab
        it once per query."""
        return self._network

    @property
    def networks(self) -> dict[str, Network]:
        """Every served region's network by name (a snapshot: a copy of the mapping)."""
        return dict(self._networks)

    @property
    def missing(self) -> list[dict[str, Any]]:
        """Published versions that are not served because their files are not on this data
        dir (``feed_id``, ``version_id``, ``network``, ``path``): the database lists them as
        published, yet neither ``compiled.npz`` nor ``original.zip`` is there (another data
        dir, a lost volume)."""
        return [dict(m) for m in self._missing]

    def network_named(self, name: str) -> Network:
        """The network of region ``name`` (or of the feed ``name``); 404 ``unknown_network``."""
        nets = self._networks
        if name in nets:
            return nets[name]
        for net in nets.values():
            if any(p.feed_id == name for p in net.versions):
                return net
        raise ApiError(
            404,
            "unknown_network",
            f"No published network or feed {name!r}.",
            {"network": name, "networks": sorted(nets)},
        )

    def network_at(self, lat: float, lon: float) -> Network | None:
        """The region whose stops' area (grown by :data:`REGION_MARGIN_DEG`) holds the point;
        of several, the one with the nearest stop; None when no region does."""
        nets = [n for n in self._networks.values() if contains(n.area, lat, lon, REGION_MARGIN_DEG)]
        if len(nets) <= 1:
            return nets[0] if nets else None
        return min(nets, key=lambda n: _nearest_stop_deg2(n, lat, lon))

    def _next_generation(self) -> int:
        self._generation = max(self._generation, self._network.generation) + 1
        return self._generation

    def _swap(self, networks: dict[str, Network], missing: Sequence[dict[str, Any]]) -> None:
        """Serve ``networks`` (the hot swap: reference assignments, the mapping first)."""
        self._missing = tuple(missing)
        self._networks = networks
        if networks:
            # The default: the largest region (most stops), the first name on a tie.
            self._network = max(
                sorted(networks.values(), key=lambda n: n.name),
                key=lambda n: n.timetable.n_stops if n.timetable is not None else 0,
            )
        elif self._network.timetable is not None or self._network.versions:
            self._network = Network(timetable=None, generation=self._next_generation())

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # --- upload ----------------------------------------------------------------------------
    def upload_file(
        self,
        feed_id: str,
        path: Path,
        *,
        filename: str | None = None,
        uploaded_by: str | None = None,
        move: bool = False,
        network: str | None = None,
    ) -> FeedVersion:
        """Register ``path`` (a GTFS zip) as a new version of ``feed_id``, validate and compile.

        ``network`` is the region the feed belongs to; when not given, the feed's latest
        version's (a new feed: its own id). The returned version is ``valid`` or ``invalid``
        (its report says why). Raises
        :class:`ApiError` 422 ``feed_unreadable`` (with the version id) when the file cannot be
        read as GTFS at all; the version is kept as ``invalid`` with its report.
        """
        check_feed_id(feed_id)
        if network is not None:
            check_network_name(network)
        else:
            earlier = self.list_versions(feed_id)
            network = earlier[0].network if earlier else None
        path = Path(path)
        tmp = self.store.incoming() / f"{time.time_ns()}-{threading.get_ident()}.zip"
        if move:
            shutil.move(str(path), tmp)
        else:
            shutil.copyfile(path, tmp)
        version = FeedVersion(
            feed_id=feed_id,
            network=network if network != feed_id else None,
            uploaded_by=uploaded_by,
            filename=(filename or path.name)[:255],
            size_bytes=tmp.stat().st_size,
            sha256=sha256_file(tmp),
            status="uploaded",
        )
        with self._session() as s:
            s.add(version)
            s.commit()
            s.refresh(version)
        assert version.id is not None
        original = self.store.adopt_original(version.id, tmp)
        try:
            self._validate_and_compile(version, original)
        except Exception as exc:  # never leave a version stuck in "uploaded"
            log.exception("feed %s v%s: processing failed", feed_id, version.id)
            version.status = "invalid"
            version.failure = {"code": "processing_failed", "message": str(exc)[:500]}
            self.store.write_report(version.id, {"failure": version.failure, "notices": []})
        self._save(version)
        if version.failure is not None and version.failure.get("code") != "compile_failed":
            raise ApiError(
                422,
                "feed_unreadable",
                f"The upload is not a readable GTFS feed: {version.failure['message']}",
                {"version": version.to_json(), **version.failure},
            )
        return version

    def _save(self, version: FeedVersion) -> None:
        with self._session() as s:
            s.merge(version)
            s.commit()

    def _validate_and_compile(self, version: FeedVersion, original: Path) -> None:
        import gtfs
        from gtfs.errors import FeedError
        from gtfs.reader import read_feed

        assert version.id is not None
        try:
            feed = read_feed(original, limits=self.read_limits, feed_id=version.feed_id)
        except FeedError as exc:
            version.status = "invalid"
            # The message names the stored copy ("original.zip"): say the operator's file name.
            message = exc.message.replace(original.name, version.filename or original.name)
            details = {k: v for k, v in (exc.details or {}).items() if k != "path"}
            version.failure = {"code": exc.code, "message": message, "details": details}
            self.store.write_report(version.id, {"failure": version.failure, "notices": []})
            # Unreadable bytes are not worth keeping (and must not fill the disk); the sha256
            # and report stay as the record.
            original.unlink(missing_ok=True)
            return
        report = gtfs.validate_feed(feed).to_json()
        self.store.write_report(version.id, report)
        errors, warnings, infos, by = report_counts(report)
        version.error_count, version.warning_count, version.info_count = errors, warnings, infos
        version.summary = {sev: dict(sorted(c.items())) for sev, c in by.items() if c}
        if errors and not set(by["ERROR"]) <= OVERRIDABLE_ERRORS:
            version.status = "invalid"  # errors that break routing: not even compiled
            return
        # Compiled also when its only errors may be published over (with a reason): the
        # operator can then preview it and publish it.
        try:
            tt, keys = self._compile([feed])
        except Exception as exc:
            log.exception("feed %s v%s: compile failed", version.feed_id, version.id)
            version.status = "invalid"
            version.failure = {"code": "compile_failed", "message": str(exc)[:500]}
            return
        self.store.save_compiled(self.store.compiled_path(version.id), tt, keys)
        version.counts = timetable_counts(tt)
        rng = Network(timetable=tt).service_range
        version.service_start, version.service_end = rng if rng else (None, None)
        version.status = "invalid" if errors else "valid"

    def _compile(self, feeds: Sequence[Any]) -> tuple[CompiledTimetable, RealtimeKeys]:
        from gtfs.compile import compile_timetable

        self.compiles += 1
        # Ids stay the feeds' own (0262, not muroran:0262) when a second city's feed is
        # published beside the first, unless two feeds use the same id somewhere.
        prefix = len(feeds) > 1 and ids_collide(feeds)
        tt = compile_timetable(list(feeds), footpaths=self.footpaths, prefix_ids=prefix)
        return tt, RealtimeKeys.build(tt, feeds)

    # --- queries -----------------------------------------------------------------------------
    def list_feeds(self) -> list[dict[str, Any]]:
        with self._session() as s:
            rows = s.exec(select(FeedVersion).order_by(FeedVersion.feed_id, FeedVersion.id)).all()  # type: ignore[arg-type]
        feeds: dict[str, dict[str, Any]] = {}
        for v in rows:
            f = feeds.setdefault(
                v.feed_id,
                {
                    "feed_id": v.feed_id,
                    "network": v.region,
                    "versions": 0,
                    "latest_version": None,
                    "published_version": None,
                },
            )
            f["versions"] += 1
            f["latest_version"] = v.id
            f["network"] = v.region
            if v.status == "published":
                f["published_version"] = v.id
        return list(feeds.values())

    def list_versions(self, feed_id: str) -> list[FeedVersion]:
        with self._session() as s:
            return list(
                s.exec(
                    select(FeedVersion)
                    .where(FeedVersion.feed_id == feed_id)
                    .order_by(sa.desc(FeedVersion.id))  # type: ignore[call-overload]
                ).all()
            )

    def get_version(self, feed_id: str, version_id: int) -> FeedVersion:
        with self._session() as s:
            v = s.get(FeedVersion, version_id)
        if v is None or v.feed_id != feed_id:
            raise ApiError(
                404, "feed_version_not_found", f"Feed {feed_id!r} has no version {version_id}."
            )
        return v

    def report(self, feed_id: str, version_id: int) -> dict[str, Any]:
        v = self.get_version(feed_id, version_id)
        report = self.store.read_report(version_id)
        if report is None:
            raise ApiError(404, "report_not_found", f"Version {version_id} has no report yet.")
        return {"version": v.to_json(), "report": report}

    # --- publish / rollback --------------------------------------------------------------------
    def blocking_errors(self, v: FeedVersion) -> list[str]:
        """The ERROR codes of ``v`` that no reason can publish over (empty: it may be)."""
        codes = sorted((v.summary or {}).get("ERROR", {}))
        blocking = [c for c in codes if c not in OVERRIDABLE_ERRORS]
        if v.failure is not None or v.id is None or not self.store.compiled_path(v.id).is_file():
            blocking = blocking or [str((v.failure or {}).get("code", "not_compiled"))]
        return blocking

    def publish(
        self,
        feed_id: str,
        version_id: int,
        *,
        override_reason: str | None = None,
        by: str | None = None,
        network: str | None = None,
    ) -> Network:
        """Serve ``version_id`` for ``feed_id`` (with the other published feeds of its region);
        returns the network of that region. Other regions' networks stay as they are.

        ``network`` moves the version into that region (recorded on the version); otherwise it
        stays in the region it was uploaded for. An ``invalid`` version is published only with
        ``override_reason`` and only when all its ERROR notices are
        :data:`OVERRIDABLE_ERRORS`; the reason, who gave it and when are recorded in the
        version's ``summary["override"]``.

        Serialised across processes (a lock in the database): two workers publishing versions
        of one feed at once would each archive what they saw published and both leave theirs
        "published".
        """
        if network is not None:
            check_network_name(network)
        with self._write_lock, startup_lock(self.engine, "feeds-publish"):
            v = self.get_version(feed_id, version_id)
            override: dict[str, Any] | None = None
            if v.status == "invalid" and override_reason and override_reason.strip():
                blocking = self.blocking_errors(v)
                if blocking:
                    raise ApiError(
                        409,
                        "feed_errors_block_routing",
                        f"Version {version_id} of {feed_id!r} has errors that break routing "
                        f"({', '.join(blocking)}); fix the feed and upload it again.",
                        {"blocking": blocking, "summary": v.summary},
                    )
                override = {
                    "reason": override_reason.strip()[:1000],
                    "by": by,
                    "at": utcnow().isoformat(),
                    "errors": dict((v.summary or {}).get("ERROR", {})),
                }
            elif v.status not in PUBLISHABLE:
                raise ApiError(
                    409,
                    "feed_has_errors" if v.status == "invalid" else "feed_not_publishable",
                    f"Version {version_id} of {feed_id!r} is {v.status} and cannot be published.",
                    {
                        "status": v.status,
                        "error_count": v.error_count,
                        "warning_count": v.warning_count,
                        "summary": v.summary,
                        "failure": v.failure,
                        "overridable": v.status == "invalid" and not self.blocking_errors(v),
                    },
                )
            if network is not None:
                v.network = network if network != feed_id else None
            with self._session() as s:
                others = s.exec(
                    select(FeedVersion).where(
                        FeedVersion.status == "published", FeedVersion.feed_id != feed_id
                    )
                ).all()
            # May raise (a build failed, or this version's files are gone): nothing changed yet.
            networks, missing = self._networks_for([*others, v], strict=v)
            now = utcnow()
            with self._session() as s:
                for old in s.exec(
                    select(FeedVersion).where(
                        FeedVersion.feed_id == feed_id, FeedVersion.status == "published"
                    )
                ).all():
                    if old.id != v.id:
                        old.status = "archived"
                        s.add(old)
                row = s.get(FeedVersion, v.id)
                assert row is not None
                row.status = "published"
                row.published_at = now
                row.network = v.network
                if override is not None:
                    row.summary = {**(row.summary or {}), "override": override}
                    log.warning(
                        "feed %s v%s published over errors %s by %s: %s",
                        feed_id,
                        version_id,
                        override["errors"],
                        by,
                        override["reason"],
                    )
                s.add(row)
                s.commit()
            self._swap(networks, missing)
            served = networks[v.region]
            log.info(
                "published network %s generation %d: %s",
                served.name,
                served.generation,
                ", ".join(f"{p.feed_id} v{p.version_id}" for p in served.versions),
            )
            return served

    def withdraw(self, feed_id: str) -> Network:
        """Stop serving ``feed_id`` entirely (its published version, even its first, becomes
        ``archived``); the other feeds' published versions stay served. Returns the network
        of the feed's region as it is now (empty when it was the region's only feed)."""
        with self._write_lock, startup_lock(self.engine, "feeds-publish"):
            with self._session() as s:
                rows = s.exec(select(FeedVersion).where(FeedVersion.status == "published")).all()
            mine = [v for v in rows if v.feed_id == feed_id]
            if not mine:
                raise ApiError(
                    409, "feed_not_published", f"Feed {feed_id!r} has no published version."
                )
            # May raise: nothing changed yet.
            networks, missing = self._networks_for([v for v in rows if v.feed_id != feed_id])
            with self._session() as s:
                for v in mine:
                    row = s.get(FeedVersion, v.id)
                    assert row is not None
                    row.status = "archived"
                    s.add(row)
                s.commit()
            self._swap(networks, missing)
            region = mine[0].region
            net = networks.get(region) or Network(
                timetable=None, generation=self._next_generation(), name=region
            )
            log.info("withdrew feed %s; network %s generation %d", feed_id, region, net.generation)
            return net

    def rollback(self, feed_id: str, version_id: int | None = None) -> Network:
        """Publish ``version_id``, or the version of ``feed_id`` published before the current."""
        with self._write_lock:
            if version_id is None:
                versions = self.list_versions(feed_id)
                current = [v for v in versions if v.status == "published"]
                earlier = [
                    v
                    for v in versions
                    if v.status == "archived"
                    and v.published_at is not None
                    and (not current or v.id != current[0].id)
                ]
                if not earlier:
                    raise ApiError(
                        409,
                        "nothing_to_roll_back",
                        f"Feed {feed_id!r} has no earlier published version.",
                    )
                earlier.sort(key=lambda v: v.published_at or dt.datetime.min, reverse=True)
                version_id = earlier[0].id
                assert version_id is not None
            return self.publish(feed_id, version_id)

    def timetable_of(self, version: FeedVersion) -> CompiledTimetable:
        """One version's compiled timetable, recompiled from its original when stale."""
        return self._timetable_for([version])[0]

    def _timetable_for(
        self, versions: Sequence[FeedVersion]
    ) -> tuple[CompiledTimetable, RealtimeKeys | None]:
        from gtfs.reader import read_feed

        ids = [int(v.id) for v in versions if v.id is not None]
        if len(versions) == 1:
            path = self.store.compiled_path(ids[0])
        else:
            path = self.store.network_path(ids)
        if path.is_file():
            try:
                return CompiledTimetable.load(path), self.store.load_keys(path)
            except (ValueError, OSError, KeyError) as exc:  # stale format: recompile below
                log.warning("cannot load %s (%s); recompiling", path, exc)
        feeds = [
            read_feed(self.store.original(vid), limits=self.read_limits, feed_id=v.feed_id)
            for vid, v in zip(ids, versions, strict=True)
        ]
        tt, keys = self._compile(feeds)
        self.store.save_compiled(path, tt, keys)
        return tt, keys

    def _networks_for(
        self, rows: Sequence[FeedVersion], strict: FeedVersion | None = None, reuse: bool = True
    ) -> tuple[dict[str, Network], list[dict[str, Any]]]:
        """The networks serving ``rows`` (published versions), one per region, and the
        versions left out because their files are not on this data dir.

        With ``reuse``, a region whose versions are exactly those its served network has
        keeps that network (its planner, caches and ids); the others are built. ``strict``:
        the version being published, whose missing files are an error (409
        ``feed_files_missing``) rather than a version left out. A failing build raises.
        """
        groups: dict[str, list[FeedVersion]] = {}
        missing: list[dict[str, Any]] = []
        for v in sorted(rows, key=lambda x: x.feed_id):
            vid = int(v.id or 0)
            if not (self.store.compiled_path(vid).is_file() or self.store.original(vid).is_file()):
                gone = {
                    "feed_id": v.feed_id,
                    "version_id": vid,
                    "network": v.region,
                    "path": str(self.store.version_dir(vid)),
                }
                if strict is not None and v.id == strict.id:
                    raise ApiError(
                        409,
                        "feed_files_missing",
                        f"Version {vid} of {v.feed_id!r} has no files in this data dir "
                        f"({gone['path']}); upload the feed again.",
                        gone,
                    )
                missing.append(gone)
                continue
            groups.setdefault(v.region, []).append(v)
        out: dict[str, Network] = {}
        for name, versions in sorted(groups.items()):
            cur = self._networks.get(name)
            key = [(v.feed_id, int(v.id or 0)) for v in versions]
            if (
                reuse
                and cur is not None
                and [(p.feed_id, p.version_id) for p in cur.versions] == key
            ):
                out[name] = cur
            else:
                out[name] = self._build_network(versions, name)
        return out, missing

    def _build_network(self, versions: Sequence[FeedVersion], name: str = "") -> Network:
        if not versions:
            return Network(timetable=None, generation=self._next_generation(), name=name)
        tt, keys = self._timetable_for(versions)
        # The artifacts on disk stay the feeds' own calendar; the mapping is per process and
        # per day, applied here on every build.
        mapped, mapping = self._map_calendar(tt)
        network = Network(
            timetable=mapped,
            versions=tuple(
                PublishedVersion(v.feed_id, int(v.id or 0), v.sha256, v.filename) for v in versions
            ),
            generation=self._next_generation(),
            clock=self.clock,
            rt_keys=keys,
            calendar_mapping=mapping,
            feed_timetable=tt if mapping is not None else None,
            name=name or versions[0].region,
        )
        if mapping is not None:
            _log_mapping(network, mapping)
        return network

    def _map_calendar(
        self, tt: CompiledTimetable
    ) -> tuple[CompiledTimetable, CalendarMapping | None]:
        """``tt`` mapped onto the dates around today, per the ``calendar_mapping`` mode."""
        if self.calendar_mapping == "off":
            return tt, None
        return map_calendar(tt, today_in(tt, self.clock()))

    def remap_calendar_if_due(self) -> bool:
        """Re-centre each network's calendar mapping on today when the day has changed (or
        its feeds stopped covering today); True when a network was swapped.

        A mapped network covers a window around the day it was built; a long-running
        process calls this periodically (the feed sync loop) so that the window follows the
        clock. A new network generation is served, so cached overlays and planners renew.
        """
        if self.calendar_mapping == "off":
            return False
        with self._write_lock:
            networks = dict(self._networks)
            changed = False
            for name, net in networks.items():
                remapped = self._remapped(net)
                if remapped is not None:
                    networks[name] = remapped
                    changed = True
            if changed:
                self._swap(networks, self._missing)
            return changed

    def _remapped(self, net: Network) -> Network | None:
        """``net`` mapped onto the days around today, or None when its mapping still holds."""
        base = net.feed_timetable if net.feed_timetable is not None else net.timetable
        if base is None:
            return None
        today = today_in(base, self.clock())
        if net.calendar_mapping is not None and net.calendar_mapping.today == today:
            return None
        mapped, mapping = map_calendar(base, today)
        if mapping is None and net.calendar_mapping is None:
            return None  # still covered (or not mappable): nothing changes
        network = dataclasses.replace(
            net,
            timetable=mapped,
            generation=self._next_generation(),
            calendar_mapping=mapping,
            feed_timetable=base if mapping is not None else None,
            created_at=dt.datetime.now(dt.UTC),
            _service_dates={},
            _cache={},
        )
        if mapping is not None:
            _log_mapping(network, mapping)
        return network

    def load_published(self, reuse: bool = False) -> Network:
        """Serve what the database says is published (startup); loads compiled.npz files.

        A published version whose files are not on this data dir is left out and reported
        (:attr:`missing`, logged once per change); a region that cannot be built is logged
        and not served. The other regions are served either way. Returns the default network.
        Every region is built afresh (from its cached artifacts: the calendar mapping and
        service date follow :attr:`clock` now, as at a restart); with ``reuse``, a region
        whose versions did not change keeps its network (:meth:`sync_with_database`, whose
        day changes :meth:`remap_calendar_if_due` handles).
        """
        with self._write_lock:
            with self._session() as s:
                published = list(
                    s.exec(select(FeedVersion).where(FeedVersion.status == "published")).all()
                )
            groups: dict[str, list[FeedVersion]] = {}
            for v in published:
                groups.setdefault(v.region, []).append(v)
            networks: dict[str, Network] = {}
            missing: list[dict[str, Any]] = []
            for name, versions in sorted(groups.items()):
                try:
                    built, gone = self._networks_for(versions, reuse=reuse)
                except Exception:
                    log.exception("cannot load the published network %s; not serving it", name)
                    missing.extend(
                        {
                            "feed_id": v.feed_id,
                            "version_id": int(v.id or 0),
                            "network": name,
                            "path": str(self.store.version_dir(int(v.id or 0))),
                            "error": "build_failed",
                        }
                        for v in versions
                    )
                    continue
                networks.update(built)
                missing.extend(gone)
            if missing and [m["version_id"] for m in missing] != [
                m["version_id"] for m in self._missing
            ]:
                log.error(
                    "published feed(s) not served, their files are not in %s: %s",
                    self.store.root,
                    ", ".join(f"{m['feed_id']} v{m['version_id']} ({m['path']})" for m in missing),
                )
            self._swap(networks, missing)
            return self._network

    def _served_set(self) -> list[tuple[str, int, str]]:
        """(feed_id, version_id, region) of every served and every missing version."""
        served = [
            (p.feed_id, p.version_id, name)
            for name, net in self._networks.items()
            for p in net.versions
        ]
        served += [(m["feed_id"], m["version_id"], m["network"]) for m in self._missing]
        return sorted(served)

    def _missing_came_back(self) -> bool:
        """Whether files of a version left out as missing are there now (a volume mounted
        late); versions whose build failed are not looked at again until the set changes."""
        return any(
            self.store.compiled_path(m["version_id"]).is_file()
            or self.store.original(m["version_id"]).is_file()
            for m in self._missing
            if "error" not in m
        )

    def sync_with_database(self) -> bool:
        """Serve what the database says is published when it differs from what this process
        serves (another worker or the CLI published); True when the network was swapped.

        Cheap when nothing changed: one indexed query (and, while published files are
        missing, a look for them). The new timetable is loaded from the shared
        ``compiled.npz`` artifacts, never compiled twice. Realtime feeds spooled by other
        workers are picked up too, and a calendar mapping is re-centred when the day changed
        (:meth:`remap_calendar_if_due`).
        """
        self.realtime.sync_from_disk()
        with self._session() as s:
            rows = s.exec(select(FeedVersion).where(FeedVersion.status == "published")).all()
        wanted = sorted((v.feed_id, int(v.id or 0), v.region) for v in rows)
        if wanted == self._served_set() and not self._missing_came_back():
            return self.remap_calendar_if_due()
        with self._write_lock:
            served = self._served_set()
            if wanted == served and not self._missing_came_back():
                return self.remap_calendar_if_due()  # a publish in this process got there first
            log.info("published set changed elsewhere: %s -> %s", served, wanted)
            self.load_published(reuse=True)
            self.remap_calendar_if_due()  # a kept region's day may have moved on too
            return True

    # --- realtime ------------------------------------------------------------------------------
    def realtime_overlays(self, service_date: dt.date | None = None) -> dict[str, Any]:
        """Each network's realtime overlay summary by name: a GTFS-RT feed is one city's,
        and matches that city's network (the others' count it unmatched)."""
        return _overlays(self, service_date)

    def realtime_state(
        self, service_date: dt.date | None = None, network: Network | None = None
    ) -> Any:
        """The realtime overlay (``gtfs.realtime.RealtimeState``) of ``network`` (the default
        network when None)."""
        net = network if network is not None else self._network
        day = service_date or net.service_date
        if day is None:
            return None
        return self.realtime.state(net, day)


def _overlays(reg: FeedRegistry, service_date: dt.date | None) -> dict[str, Any]:
    """Each served network's realtime overlay summary (None where it has no service date)."""
    out: dict[str, Any] = {}
    for name, net in sorted(reg.networks.items()):
        state = reg.realtime_state(service_date, net)
        out[name] = state.summary() if state is not None else None
    return out


def _nearest_stop_deg2(net: Network, lat: float, lon: float) -> float:
    """Squared degree distance (longitude scaled by the latitude) to the nearest stop."""
    tt = net.timetable
    if tt is None or tt.n_stops == 0:
        return float("inf")
    scale = float(np.cos(np.radians(lat)))
    d2 = (tt.stop_lat - lat) ** 2 + ((tt.stop_lon - lon) * scale) ** 2
    finite = d2[np.isfinite(d2)]
    return float(finite.min()) if finite.size else float("inf")


def _log_mapping(network: Network, mapping: CalendarMapping) -> None:
    """One line per network build saying which dates were mapped onto which."""
    pairs = sorted(mapping.source_dates.items())
    log.info(
        "network generation %d: feed calendar mapped onto %s..%s (today %s runs the trips of "
        "%s; %d dates, first %s <- %s, last %s <- %s); rule: %s",
        network.generation,
        mapping.window[0],
        mapping.window[1],
        mapping.today,
        mapping.source_dates.get(mapping.today, "none"),
        len(pairs),
        pairs[0][0],
        pairs[0][1],
        pairs[-1][0],
        pairs[-1][1],
        mapping.rule,
    )

"""The realtime overlay of the published network, fed by ingested GTFS-Realtime messages.

Each source (an upload endpoint caller, a poller) is one producer with its own
:class:`gtfs.realtime.incremental.ProducerState`: a FULL_DATASET message replaces that source's
entities, a DIFFERENTIAL message upserts / deletes entities by ``FeedEntity.id`` (semantics in
:mod:`gtfs.realtime.incremental`), and entities not restated within ``max_age_s`` expire.
:meth:`RealtimeHub.state` applies the TripUpdates of every source to a network for a service
date on first use and caches the result per (network generation, date), so a new message, an
expiry or a newly published network simply invalidates the cache. States are immutable: a
router takes one and keeps it for the query.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from app.feeds.network import Network
from gtfs.realtime import (
    RealtimeFeed,
    RealtimeParseError,
    RealtimeState,
    TripMatcher,
    TripUpdate,
    apply_trip_updates,
    parse_feed,
)
from gtfs.realtime.incremental import MergeResult, ProducerState
from gtfs.realtime.messages import encode_feed

log = logging.getLogger("app.feeds.realtime")

MAX_CACHED_STATES = 16  # service dates kept per feed version (queries use one or two)


class RealtimeHub:
    """The current entities of every source and the overlays derived from them.

    With ``spool_dir``, messages ingested through :meth:`ingest_bytes` also update the source's
    spooled snapshot there (``<source>.pb``: the merged state as a FULL_DATASET message, and
    ``<source>.json``: when each entity was last stated), under a per-source file lock so that
    DIFFERENTIAL messages posted to different workers are merged, not lost; :meth:`sync_from_disk`
    picks up snapshots written by other workers, so a POST reaches every worker of the
    deployment. Snapshots older than ``max_age_s`` are stale and ignored, and so is, anywhere,
    an entity not restated within ``max_age_s``. ``clock`` (POSIX seconds) is for tests.
    """

    def __init__(
        self,
        spool_dir: Path | None = None,
        max_age_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spool_dir = spool_dir
        self.max_age_s = max_age_s
        self.clock = clock
        self._seen: dict[str, int] = {}  # source -> mtime_ns of the spooled file ingested
        self._lock = threading.Lock()
        # Spool reads and writes of this process, serialised so that a background sync never
        # adopts a snapshot this process is writing (cross-process: the per-source flock).
        self._spool_lock = threading.RLock()
        self._sources: dict[str, ProducerState] = {}
        self._last: dict[str, MergeResult] = {}  # source -> what its last message did
        self._received_at: dt.datetime | None = None
        self._version = 0  # bumps on every change; cached states carry it
        self._cache: dict[tuple[int, dt.date], RealtimeState] = {}
        self._matcher: tuple[int, TripMatcher] | None = None
        self._next_expiry = float("inf")  # when the least recently stated entity expires
        self.ingested = 0

    def _changed(self) -> None:
        """Invalidate derived overlays and re-arm the expiry (call with the lock held)."""
        self._version += 1
        self._cache.clear()
        oldest = [t for st in self._sources.values() if (t := st.oldest()) is not None]
        self._next_expiry = min(oldest) + self.max_age_s if oldest else float("inf")

    def ingest(self, feed: RealtimeFeed, source: str = "default") -> None:
        """Apply ``feed`` to ``source``'s entities (the pollers' callback); see :meth:`merge`."""
        self.merge(feed, source)

    def merge(self, feed: RealtimeFeed, source: str = "default") -> MergeResult:
        """Apply ``feed`` to ``source``'s entities (replace, or upsert/delete when
        DIFFERENTIAL); returns what it changed, with notices."""
        with self._lock:
            result = self._apply(feed, source)
        for notice in result.notices:
            log.info("realtime source %s: %s", source, notice)
        return result

    def _apply(self, feed: RealtimeFeed, source: str) -> MergeResult:
        st = self._sources.setdefault(source, ProducerState())
        result = st.apply(feed, self.clock())
        self._last[source] = result
        self._received_at = dt.datetime.now(dt.UTC)
        self.ingested += 1
        if not result.ignored:
            self._changed()
        return result

    def ingest_bytes(self, data: bytes, source: str = "default") -> RealtimeFeed:
        """Parse ``data`` (raises ``RealtimeParseError``), ingest it, spool the source's state."""
        return self.ingest_message(data, source)[0]

    def ingest_message(
        self, data: bytes, source: str = "default"
    ) -> tuple[RealtimeFeed, MergeResult]:
        """Parse ``data`` (raises ``RealtimeParseError``), ingest it and spool the source's new
        state for other workers; returns the message and what it changed."""
        feed = parse_feed(data)
        if self.spool_dir is None:
            return feed, self.merge(feed, source)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        with self._spool_lock, _file_lock(self.spool_dir / f"{source}.lock"):
            # Merge onto what other workers spooled last, then spool the merged state.
            self._sync_source(self.spool_dir / f"{source}.pb")
            result = self.merge(feed, source)
            with self._lock:
                st = self._sources[source]
                snapshot = encode_feed(st.snapshot())
                times = st.received_at()
            dest = self.spool_dir / f"{source}.pb"
            _write_atomic(dest.with_suffix(".json"), json.dumps(times).encode())
            _write_atomic(dest, snapshot)
            with self._lock:
                self._seen[source] = dest.stat().st_mtime_ns
        return feed, result

    def _sync_source(self, path: Path) -> bool:
        """Adopt the spooled snapshot at ``path`` if it changed since last seen."""
        source = path.stem
        try:
            st = path.stat()
            if st.st_mtime_ns == self._seen.get(source):
                return False
            if self.clock() - st.st_mtime > self.max_age_s:
                return False
            feed = parse_feed(path.read_bytes())
        except (OSError, RealtimeParseError):
            return False  # being replaced, or junk: the next sync will see the new file
        try:
            times = {
                str(k): float(v)
                for k, v in json.loads(path.with_suffix(".json").read_bytes()).items()
            }
        except (OSError, ValueError, AttributeError):
            times = {}  # no (or a torn) sidecar: the snapshot's own time stands for all
        state = ProducerState.restore(feed, times, st.st_mtime)
        with self._lock:
            self._seen[source] = st.st_mtime_ns
            self._sources[source] = state
            self._received_at = dt.datetime.now(dt.UTC)
            self.ingested += 1
            self._changed()
        return True

    def sync_from_disk(self) -> int:
        """Adopt spooled snapshots that changed since last seen; returns how many."""
        if self.spool_dir is None or not self.spool_dir.is_dir():
            return 0
        with self._spool_lock:
            return sum(self._sync_source(p) for p in sorted(self.spool_dir.glob("*.pb")))

    def _expire(self) -> None:
        """Drop entities not restated within ``max_age_s`` (cheap when none is due)."""
        now = self.clock()
        if now < self._next_expiry:  # every query passes here: no scan until one is due
            return
        before = now - self.max_age_s
        with self._lock:
            dropped = sum(st.expire(before) for st in self._sources.values())
            if dropped:
                self._changed()
                log.info(
                    "realtime: %d entities not restated for %.0f s expired", dropped, self.max_age_s
                )

    @property
    def version(self) -> int:
        """A counter that grows with every change of the overlays (a message that changed
        something, a snapshot adopted from another worker, an expiry): overlays read at one
        version are those of that version. Due expiries are applied first."""
        self._expire()
        with self._lock:
            return self._version

    def snapshots(self) -> dict[str, RealtimeFeed]:
        """The current entities of each source, as FULL_DATASET feeds."""
        self._expire()
        with self._lock:
            return {k: st.snapshot() for k, st in self._sources.items()}

    @property
    def feeds(self) -> dict[str, RealtimeFeed]:
        """Alias of :meth:`snapshots` (what the alerts and vehicles endpoints list)."""
        return self.snapshots()

    def state(self, network: Network, service_date: dt.date) -> RealtimeState | None:
        """The overlay of ``network`` on ``service_date`` (None when nothing is published)."""
        tt = network.timetable
        if tt is None:
            return None
        key = (network.generation, service_date)
        self._expire()
        with self._lock:
            cached = self._cache.get(key)
            feeds = [st.snapshot() for st in self._sources.values()]
            version = self._version
            matcher = self._matcher[1] if self._matcher and self._matcher[0] == key[0] else None
        if cached is not None:
            return cached
        if not feeds:
            state = RealtimeState.scheduled(tt, service_date)
        else:
            if matcher is None:
                k = network.rt_keys
                matcher = TripMatcher(
                    tt,
                    trip_direction=k.trip_direction if k else None,
                    trip_exact_times=k.trip_exact_times if k else None,
                )
            updates: list[TripUpdate] = [tu for f in feeds for tu in f.trip_updates]
            state = apply_trip_updates(tt, updates, service_date, matcher=matcher)
            stamps = [f.timestamp for f in feeds if f.timestamp is not None]
            if stamps:
                state = _with_timestamp(state, max(stamps))
        with self._lock:
            if self._version == version:  # a newer feed arrived meanwhile: do not cache
                if len(self._cache) >= MAX_CACHED_STATES:
                    self._cache.clear()
                self._cache[key] = state
                if matcher is not None:
                    self._matcher = (network.generation, matcher)
        return state

    def status(self) -> dict[str, Any]:
        feeds = self.snapshots()
        stamps = [f.timestamp for f in feeds.values() if f.timestamp is not None]
        with self._lock:
            last = dict(self._last)
        return {
            "ingested": self.ingested,
            "received_at": self._received_at.isoformat() if self._received_at else None,
            "feed_timestamp": max(stamps) if stamps else None,
            "sources": sorted(feeds),
            "trip_updates": sum(len(f.trip_updates) for f in feeds.values()),
            "last_messages": {
                k: {
                    "incrementality": r.incrementality,
                    "upserted": r.upserted,
                    "deleted": r.deleted,
                    "ignored": r.ignored,
                    "notices": list(r.notices),
                }
                for k, r in sorted(last.items())
            },
        }


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock between the workers sharing the spool directory."""
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _write_atomic(dest: Path, data: bytes) -> None:
    tmp = dest.with_suffix(f"{dest.suffix}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dest)


def _with_timestamp(state: RealtimeState, ts: int) -> RealtimeState:
    import dataclasses

    return dataclasses.replace(state, timestamp=ts)

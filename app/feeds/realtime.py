"""The realtime overlay of the published network, fed by ingested TripUpdates.

Each source (an upload endpoint caller, the poller) keeps its last TripUpdates feed
(FULL_DATASET: a new feed from a source replaces that source's previous one). :meth:`RealtimeHub.state`
applies the TripUpdates of every source to a network for a service date on first use and caches
the result per (network generation, date), so a new feed or a newly published network simply
invalidates the cache. States are immutable: a router takes one and keeps it for the query.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
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

MAX_CACHED_STATES = 16  # service dates kept per feed version (queries use one or two)


class RealtimeHub:
    """Last ingested TripUpdates per source and the overlays derived from them.

    With ``spool_dir``, feeds ingested through :meth:`ingest_bytes` are also written there
    (``<source>.pb``, atomically) and :meth:`sync_from_disk` picks up files written by other
    workers, so a TripUpdates POST reaches every worker of the deployment. Files older than
    ``max_age_s`` are stale and ignored.
    """

    def __init__(self, spool_dir: Path | None = None, max_age_s: float = 3600.0) -> None:
        self.spool_dir = spool_dir
        self.max_age_s = max_age_s
        self._seen: dict[str, int] = {}  # source -> mtime_ns of the spooled file ingested
        self._lock = threading.Lock()
        self._feeds: dict[str, RealtimeFeed] = {}
        self._received_at: dt.datetime | None = None
        self._version = 0  # bumps on every ingest; cached states carry it
        self._cache: dict[tuple[int, dt.date], RealtimeState] = {}
        self._matcher: tuple[int, TripMatcher] | None = None
        self.ingested = 0

    def ingest(self, feed: RealtimeFeed, source: str = "default") -> None:
        """Replace ``source``'s TripUpdates with ``feed``'s."""
        with self._lock:
            self._feeds[source] = feed
            self._received_at = dt.datetime.now(dt.UTC)
            self._version += 1
            self._cache.clear()
            self.ingested += 1

    def ingest_bytes(self, data: bytes, source: str = "default") -> RealtimeFeed:
        """Parse ``data`` (raises ``RealtimeParseError``), spool it for other workers, ingest."""
        feed = parse_feed(data)
        if self.spool_dir is not None:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            dest = self.spool_dir / f"{source}.pb"
            tmp = dest.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, dest)
            with self._lock:
                self._seen[source] = dest.stat().st_mtime_ns
        self.ingest(feed, source)
        return feed

    def sync_from_disk(self) -> int:
        """Ingest spooled feeds that changed since last seen; returns how many."""
        if self.spool_dir is None or not self.spool_dir.is_dir():
            return 0
        now = time.time()
        n = 0
        for path in sorted(self.spool_dir.glob("*.pb")):
            source = path.stem
            try:
                st = path.stat()
                if st.st_mtime_ns == self._seen.get(source) or now - st.st_mtime > self.max_age_s:
                    continue
                feed = parse_feed(path.read_bytes())
            except (OSError, RealtimeParseError):
                continue  # being replaced, or junk: the next sync will see the new file
            with self._lock:
                self._seen[source] = st.st_mtime_ns
            self.ingest(feed, source)
            n += 1
        return n

    @property
    def feeds(self) -> dict[str, RealtimeFeed]:
        return dict(self._feeds)

    def state(self, network: Network, service_date: dt.date) -> RealtimeState | None:
        """The overlay of ``network`` on ``service_date`` (None when nothing is published)."""
        tt = network.timetable
        if tt is None:
            return None
        key = (network.generation, service_date)
        with self._lock:
            cached = self._cache.get(key)
            feeds = list(self._feeds.values())
            version = self._version
            matcher = self._matcher[1] if self._matcher and self._matcher[0] == key[0] else None
        if cached is not None:
            return cached
        if not feeds:
            state = RealtimeState.scheduled(tt, service_date)
        else:
            if matcher is None:
                k = network.rt_keys
                matcher = TripMatcher(tt, trip_direction=k.trip_direction if k else None)
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
        feeds = self._feeds
        stamps = [f.timestamp for f in feeds.values() if f.timestamp is not None]
        return {
            "ingested": self.ingested,
            "received_at": self._received_at.isoformat() if self._received_at else None,
            "feed_timestamp": max(stamps) if stamps else None,
            "sources": sorted(feeds),
            "trip_updates": sum(len(f.trip_updates) for f in feeds.values()),
        }


def _with_timestamp(state: RealtimeState, ts: int) -> RealtimeState:
    import dataclasses

    return dataclasses.replace(state, timestamp=ts)

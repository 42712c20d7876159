"""The realtime overlay of the published network, fed by ingested TripUpdates.

The last TripUpdates feed is kept; :meth:`RealtimeHub.state` applies it to a network for a
service date on first use and caches the result per (network generation, date), so a new feed
or a newly published network simply invalidates the cache. States are immutable: a router
takes one and keeps it for the whole query.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from app.feeds.network import Network
from gtfs.realtime import RealtimeFeed, RealtimeState, TripMatcher, apply_trip_updates


class RealtimeHub:
    """Last ingested TripUpdates and the overlays derived from them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._feed: RealtimeFeed | None = None
        self._received_at: dt.datetime | None = None
        self._cache: dict[tuple[int, dt.date], RealtimeState] = {}
        self._matcher: tuple[int, TripMatcher] | None = None
        self.ingested = 0

    def ingest(self, feed: RealtimeFeed) -> None:
        """Replace the current TripUpdates (FULL_DATASET semantics)."""
        with self._lock:
            self._feed = feed
            self._received_at = dt.datetime.now(dt.UTC)
            self._cache.clear()
            self.ingested += 1

    @property
    def feed(self) -> RealtimeFeed | None:
        return self._feed

    def state(self, network: Network, service_date: dt.date) -> RealtimeState | None:
        """The overlay of ``network`` on ``service_date`` (None when nothing is published)."""
        tt = network.timetable
        if tt is None:
            return None
        key = (network.generation, service_date)
        with self._lock:
            cached = self._cache.get(key)
            feed = self._feed
            matcher = self._matcher[1] if self._matcher and self._matcher[0] == key[0] else None
        if cached is not None:
            return cached
        if feed is None:
            state = RealtimeState.scheduled(tt, service_date)
        else:
            if matcher is None:
                matcher = TripMatcher(tt, network.st_stop_sequence)
            state = apply_trip_updates(tt, feed, service_date, matcher=matcher)
        with self._lock:
            if self._feed is feed:  # a newer feed arrived meanwhile: do not cache a stale one
                self._cache[key] = state
                self._matcher = (network.generation, matcher) if matcher else self._matcher
        return state

    def status(self) -> dict[str, Any]:
        f = self._feed
        return {
            "ingested": self.ingested,
            "received_at": self._received_at.isoformat() if self._received_at else None,
            "feed_timestamp": f.timestamp if f else None,
            "trip_updates": len(f.trip_updates) if f else 0,
        }

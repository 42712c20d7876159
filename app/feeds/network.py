"""The published network: an immutable snapshot that queries read without locks.

``FeedRegistry.network`` is a plain attribute holding a :class:`Network`; publishing builds a
new one and swaps the reference in one assignment (atomic in CPython). A query grabs the
reference once and uses that snapshot to the end, so in-flight queries finish on the old
version while new ones see the new one: no downtime, no torn reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.feeds.service_date import RULE, pick_service_date, today_in
from gtfs.calendar_mapping import CalendarMapping
from gtfs.compiled import CompiledTimetable
from gtfs.realtime.keys import RealtimeKeys


@dataclass(frozen=True)
class PublishedVersion:
    feed_id: str
    version_id: int
    sha256: str
    filename: str


@dataclass(frozen=True, eq=False)
class Network:
    """The published feeds of one region (``name``), compiled and merged into one timetable,
    plus its metadata. Feeds of other regions are other networks
    (``FeedRegistry.networks``)."""

    timetable: CompiledTimetable | None
    versions: tuple[PublishedVersion, ...] = ()
    generation: int = 0
    service_date_rule: str = RULE
    # "Now", for the default service date (tests pin it).
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC), repr=False)
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    # GTFS stop_sequence [N] and direction_id [T] for GTFS-RT matching, when known.
    rt_keys: RealtimeKeys | None = None
    # The feeds' calendar mapped onto today's dates (gtfs.calendar_mapping), when it is:
    # ``timetable`` is then the mapped one and ``feed_timetable`` the feeds' own.
    calendar_mapping: CalendarMapping | None = None
    feed_timetable: CompiledTimetable | None = field(default=None, repr=False)
    _service_dates: dict[dt.date, dt.date | None] = field(
        default_factory=dict, repr=False, compare=False
    )
    # The region: the feeds' ``network`` name (a feed's own id by default); "" when empty.
    name: str = ""
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def area(self) -> list[float] | None:
        """The bbox of the network's stops (cached: a network never changes)."""
        if "bbox" not in self._cache:
            tt = self.timetable
            self._cache["bbox"] = bbox(tt) if tt is not None else None
        box: list[float] | None = self._cache["bbox"]
        return box

    @property
    def service_date(self) -> dt.date | None:
        """The date queries default to: today in the network's zone when it has service, else
        the rule of :mod:`app.feeds.service_date` (re-evaluated when the day changes)."""
        tt = self.timetable
        if tt is None:
            return None
        today = today_in(tt, self.clock())
        cache = self._service_dates
        if today in cache:
            return cache[today]
        day = pick_service_date(tt, today)  # readers may race here: same answer, harmless
        if len(cache) > 4:
            cache.clear()
        cache[today] = day
        return day

    @property
    def empty(self) -> bool:
        return self.timetable is None

    @property
    def service_range(self) -> tuple[dt.date, dt.date] | None:
        """First and last date with any active service (with a calendar mapping, the last
        mapped date; the feeds' own range is ``calendar_mapping.feed_range``)."""
        tt = self.timetable
        if tt is None or tt.service_days.size == 0:
            return None
        days = np.flatnonzero(tt.service_days.any(axis=0))
        if days.size == 0:
            return None
        return (
            tt.service_start + dt.timedelta(days=int(days[0])),
            tt.service_start + dt.timedelta(days=int(days[-1])),
        )

    def counts(self) -> dict[str, int]:
        tt = self.timetable
        if tt is None:
            return {"stops": 0, "routes": 0, "trips": 0, "stop_times": 0, "patterns": 0}
        return timetable_counts(tt)

    def summary(self) -> dict[str, Any]:
        """The API shape (``GET /api/v1/network``)."""
        rng = self.service_range
        tt = self.timetable
        return {
            "network": self.name or None,
            "generation": self.generation,
            "published": [
                {
                    "feed_id": v.feed_id,
                    "version_id": v.version_id,
                    "sha256": v.sha256,
                    "filename": v.filename,
                }
                for v in self.versions
            ],
            "service_start": rng[0].isoformat() if rng else None,
            "service_end": rng[1].isoformat() if rng else None,
            "timezone": tt.timezone if tt is not None else None,
            "counts": self.counts(),
            "service_date": self.service_date.isoformat() if self.service_date else None,
            "service_date_rule": self.service_date_rule,
            "calendar_mapping": (
                self.calendar_mapping.to_json() if self.calendar_mapping is not None else None
            ),
            "bbox": bbox(tt) if tt is not None else None,
            "feeds": [
                {"feed_id": f, "network": self.name or f, "bbox": bbox(tt, r)}
                for f, r in feed_stop_ranges(tt).items()
            ]
            if tt is not None
            else [],
        }


def contains(box: list[float] | None, lat: float, lon: float, margin_deg: float) -> bool:
    """Whether ``(lat, lon)`` lies in ``box`` ([min_lon, min_lat, max_lon, max_lat]) grown by
    ``margin_deg`` on every side (a home a walk beyond the outermost stop still belongs)."""
    if box is None:
        return False
    return (
        box[1] - margin_deg <= lat <= box[3] + margin_deg
        and box[0] - margin_deg <= lon <= box[2] + margin_deg
    )


def timetable_counts(tt: CompiledTimetable) -> dict[str, int]:
    return {
        "stops": tt.n_stops,
        "routes": int(tt.route_ids.shape[0]),
        "trips": tt.n_trips,
        "stop_times": tt.n_stop_times,
        "patterns": tt.n_patterns,
        "shapes": int(tt.shape_ids.shape[0]),
    }


def feed_stop_ranges(tt: CompiledTimetable) -> dict[str, tuple[int, int]]:
    """Each feed's compiled stops ``[start, end)`` (stops are laid out feed after feed)."""
    offsets = tt.meta.get("feed_stop_offsets")
    if not tt.feed_ids or not offsets or len(offsets) != len(tt.feed_ids) + 1:
        return {f: (0, tt.n_stops) for f in tt.feed_ids[:1]} if tt.feed_ids else {}
    return {f: (int(offsets[i]), int(offsets[i + 1])) for i, f in enumerate(tt.feed_ids)}


def bbox(tt: CompiledTimetable, stops: tuple[int, int] | None = None) -> list[float] | None:
    """[min_lon, min_lat, max_lon, max_lat] of the stops with coordinates (of the compiled
    stops ``[start, end)`` when given: one feed's)."""
    ok = np.isfinite(tt.stop_lat) & np.isfinite(tt.stop_lon)
    if stops is not None:
        ok[: stops[0]] = False
        ok[stops[1] :] = False
    if not ok.any():
        return None
    lat, lon = tt.stop_lat[ok], tt.stop_lon[ok]
    return [float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())]


def network_geojson(network: Network, feed: str | None = None) -> dict[str, Any]:
    """Stops (Points) and routes (MultiLineStrings) of the network as one FeatureCollection.

    A route's lines are the shapes its trips use; a route without shapes.txt is drawn through
    its patterns' stops in order. The frontend renders this directly (no tile server). With
    ``feed``, only that feed's stops and routes (one city of a network of several).
    """
    tt = network.timetable
    features: list[dict[str, Any]] = []
    if tt is None:
        return {"type": "FeatureCollection", "features": features}
    keep_stop = np.ones(tt.n_stops, dtype=np.bool_)
    if feed is not None:
        a, b = feed_stop_ranges(tt).get(feed, (0, 0))
        keep_stop[:] = False
        keep_stop[a:b] = True
    lat = np.round(tt.stop_lat, 6)
    lon = np.round(tt.stop_lon, 6)
    # Routes: the distinct shapes (or patterns) of each route's trips.
    trip_key = np.where(tt.trip_shape >= 0, tt.trip_shape, -1 - tt.trip_pattern)
    pairs = np.unique(np.stack([tt.trip_route.astype(np.int64), trip_key.astype(np.int64)]), axis=1)
    lines: dict[int, list[list[list[float]]]] = {}
    if feed is not None:  # a route belongs to the feed of its patterns' first stop
        first = tt.pattern_stops[tt.pattern_stop_ptr[:-1]]
        mine = np.zeros(len(tt.route_ids), dtype=np.bool_)
        mine[tt.pattern_route[keep_stop[first]]] = True
        pairs = pairs[:, mine[pairs[0]]]
    for r, key in pairs.T.tolist():
        if key >= 0:
            a, b = int(tt.shape_ptr[key]), int(tt.shape_ptr[key + 1])
            coords = np.stack([np.round(tt.shape_lon[a:b], 6), np.round(tt.shape_lat[a:b], 6)], 1)
        else:
            p = -1 - key
            stops = tt.pattern_stops[tt.pattern_stop_ptr[p] : tt.pattern_stop_ptr[p + 1]]
            coords = np.stack([lon[stops], lat[stops]], 1)
        coords = coords[np.isfinite(coords).all(axis=1)]
        if coords.shape[0] >= 2:
            lines.setdefault(r, []).append(coords.tolist())
    for r, mls in lines.items():
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "MultiLineString", "coordinates": mls},
                "properties": {
                    "kind": "route",
                    "route_id": str(tt.route_ids[r]),
                    "short_name": str(tt.route_short_names[r]),
                    "long_name": str(tt.route_long_names[r]),
                    "route_type": int(tt.route_types[r]),
                    "route_color": str(tt.route_colors[r]) or None,
                },
            }
        )
    # Stops: boarding stops only (stations are drawn by their platforms).
    served = np.zeros(tt.n_stops, dtype=np.bool_)
    served[tt.pattern_stops] = True
    ok = served & keep_stop & np.isfinite(lat) & np.isfinite(lon)
    for s in np.flatnonzero(ok).tolist():
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [float(lon[s]), float(lat[s])]},
                "properties": {
                    "kind": "stop",
                    "stop_id": str(tt.stop_ids[s]),
                    "name": str(tt.stop_names[s]),
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}

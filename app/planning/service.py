"""The planning service's state: the published network as planners see it, their uploaded
destinations and population grid, and the scenarios they ran.

It lives on ``app.state.planning`` (built on first use), in the main process. Uploads and
scenario results are kept in memory for the life of the process (a restart forgets them: the
planner uploads again and re-runs; nothing here is a record anyone else relies on). The
published network is only read.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import gtfs_kit as gk

from app.errors import ApiError
from gtfs.compiled import CompiledTimetable
from gtfs.feed import Feed
from gtfs.service_levels import ServiceLevels, TimeBand, compute_service_levels, to_gtfs_kit
from routing.access import AccessEngine, Destinations, Population
from routing.transit import TransitData

MAX_SCENARIOS = 50


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
        self.destinations: Destinations | None = None
        self.population: Population | None = None
        self.scenarios: dict[str, dict[str, Any]] = {}

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

    # --- scenarios ------------------------------------------------------------------------
    def keep(self, result: dict[str, Any]) -> str:
        sid = uuid.uuid4().hex[:12]
        with self._lock:
            while len(self.scenarios) >= MAX_SCENARIOS:
                self.scenarios.pop(next(iter(self.scenarios)))
            self.scenarios[sid] = result
        return sid


def planning_of(app: Any) -> PlanningService:
    """The app's planning service (created on first use)."""
    svc = getattr(app.state, "planning", None)
    if svc is None:
        svc = PlanningService()
        app.state.planning = svc
    return svc  # type: ignore[no-any-return]

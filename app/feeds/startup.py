"""Start-up hook: the feed registry on ``services.feeds``, the published network, the poller.

Registered in ``app.services.startup_hooks()`` as ``app.feeds.startup:start_feeds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from app.feeds.dispatch_zones import sync_flex_zones
from app.feeds.fleet import attach_fleet_provider
from app.feeds.registry import FeedRegistry
from app.street_graphs import walk_graph
from gtfs.realtime import RealtimeFeed

log = logging.getLogger("tsunagu.feeds")


def build_registry(settings: Any, engine: Any) -> FeedRegistry:
    """The registry for ``settings`` (also used by the CLI).

    With ``settings.osm_path`` the compiled footpaths between nearby stops are walks on the
    OSM streets (``routing.street.footpath_source``); without it, straight lines.
    """
    registry = FeedRegistry(engine, settings.data_dir, calendar_mapping=settings.calendar_mapping)
    graph = walk_graph(settings.osm_path)
    if graph is not None:
        from routing.street import footpath_source

        registry.footpaths = footpath_source(graph)
    return registry


async def start_feeds(services: Any) -> None:
    """Attach the registry, serve the published network (from compiled.npz), start polling."""
    settings = services.settings
    registry = build_registry(settings, services.engine)
    services.feeds = registry
    attach_fleet_provider(services)  # the dispatcher's fleet as GTFS-RT, once it starts
    network = await asyncio.to_thread(registry.load_published)
    log.info(
        "networks loaded: %s; default %s generation %d, service date %s",
        {name: len(n.versions) for name, n in registry.networks.items()},
        network.name or "none",
        network.generation,
        network.service_date,
    )

    async def _ready() -> dict[str, Any]:
        # A published feed whose files are not on this data dir is not served here: not
        # ready (residents of that city would get no network), and the check says which.
        nets = registry.networks
        missing = registry.missing
        return {
            "ok": not missing,
            "published": sum(len(n.versions) for n in nets.values()),
            "networks": sorted(nets),
            "generation": registry.network.generation,
            "missing": missing,
        }

    services.readiness["feeds"] = _ready

    # Publishes made by other workers (or the CLI) reach this process within the interval.
    interval = settings.feeds_sync_interval_s
    if interval > 0:

        async def _sync_loop() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    if await asyncio.to_thread(registry.sync_with_database):
                        await asyncio.to_thread(sync_flex_zones, services)
                except Exception:  # a database hiccup must not end the loop
                    log.exception("feed sync failed")

        task = asyncio.create_task(_sync_loop(), name="feeds-sync")

        async def _stop_sync() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        services.on_stop.append(_stop_sync)
    # Agencies often serve TripUpdates, VehiclePositions and Alerts at separate URLs.
    urls = [u.strip() for u in settings.realtime_poll_url.split(",") if u.strip()]
    if urls:
        from gtfs.realtime import RealtimePoller

        def ingest_as(source: str) -> Callable[[RealtimeFeed], None]:
            return lambda feed: registry.realtime.ingest(feed, source=source)

        pollers = [
            RealtimePoller(
                url,
                ingest_as("poll" if len(urls) == 1 else f"poll-{i + 1}"),
                interval_s=settings.realtime_poll_interval_s,
                timeout_s=settings.realtime_poll_timeout_s,
            )
            for i, url in enumerate(urls)
        ]
        registry.pollers = pollers
        for p in pollers:
            p.start()

        async def _stop_pollers() -> None:
            for p in pollers:
                await asyncio.to_thread(p.stop)

        services.on_stop.append(_stop_pollers)

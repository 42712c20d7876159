"""The demo city: Muroran (Hokkaido), loaded on first start.

With ``settings.demo`` (default true) and nothing published yet, the bundled Donan Bus GTFS-JP
feed (``settings.demo_feed_path``, see ``app/demo_data/ATTRIBUTION.md``) is imported as feed
``muroran`` and published. Later starts find it published and load its ``compiled.npz``. Several processes
starting together on an empty database (``tsunagu serve --demo --workers N``) import it once:
the check and the import run under a cluster-wide lock (:func:`first_run_lock`), and a process
that waited for it serves what the first one published.

The feed runs 2020-04-01..2021-04-01, so "today" has no service of its own. With
``settings.calendar_mapping = "auto"`` (the default) the published network maps the feed's
calendar onto the days around today (:mod:`gtfs.calendar_mapping`: each date runs the trips of
the same weekday nearest to its month/day inside the feed), so buses and the on-demand vans run
on one clock and queries default to today. The mapping is logged and reported as
``calendar_mapping`` by ``GET /api/v1/network``; with the mapping off, queries default to the
mapped-to date itself (:mod:`app.feeds.service_date`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from app.db import startup_lock
from app.errors import ApiError

log = logging.getLogger("tsunagu.demo")

DEMO_FEED_ID = "muroran"


def load_demo_sync(registry: Any, settings: Any) -> bool:
    """Import and publish the demo feed if nothing is published; True when it did.

    Cheap when something is published already (no lock is taken). Otherwise the check is
    repeated under the cluster-wide lock ``demo-import`` (:func:`app.db.startup_lock`), after
    serving what the database says is published: another process may have imported the demo
    while this one waited.
    """
    if registry.network.versions:
        return False
    path = settings.demo_feed_path
    if not path.is_file():
        log.warning("demo feed not found at %s; starting with an empty network", path)
        return False
    with startup_lock(registry.engine, "demo-import"):
        registry.sync_with_database()
        if registry.network.versions:
            log.info("demo city already published by another process; serving it")
            return False
        return _import_and_publish(registry, path)


def _import_and_publish(registry: Any, path: Path) -> bool:
    """Publish the demo feed (a valid version left by an interrupted first run, else ``path``)."""
    existing = [
        v for v in registry.list_versions(DEMO_FEED_ID) if v.status in ("valid", "archived")
    ]
    try:
        if existing:
            version = existing[0]
        else:
            version = registry.upload_file(
                DEMO_FEED_ID, path, filename=path.name, uploaded_by="demo"
            )
        assert version.id is not None
        network = registry.publish(DEMO_FEED_ID, version.id)
    except ApiError as exc:
        log.error("demo feed could not be published: %s %s", exc.code, exc.message)
        return False
    log.info(
        "demo city Muroran published (version %s); demo service date %s (%s)",
        version.id,
        network.service_date,
        network.service_date_rule,
    )
    return True


async def load_demo(services: Any) -> None:
    """Start-up hook (after ``app.feeds.startup:start_feeds``)."""
    if not services.settings.demo or services.feeds is None:
        return
    await asyncio.to_thread(load_demo_sync, services.feeds, services.settings)
    net = services.feeds.network
    if net.service_date is not None:
        log.info("serving %d feed(s); default service date %s", len(net.versions), net.service_date)

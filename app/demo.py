"""The demo city: Muroran (Hokkaido), loaded on first start.

With ``settings.demo`` (default true) and nothing published yet, the bundled Donan Bus GTFS-JP
feed (``settings.demo_feed_path``, see ``app/demo_data/ATTRIBUTION.md``) is imported as feed
``muroran`` and published. Later starts find it published and load its ``compiled.npz``. Several processes
starting together on an empty database (``tsunagu serve --demo --workers N``) import it once:
the check and the import run under a cluster-wide lock (:func:`first_run_lock`), and a process
that waited for it serves what the first one published.

The feed runs 2020-04-01..2021-04-01, so "today" has no service. Queries default to the
network's service date (:mod:`app.feeds.service_date`): the same weekday as today nearest to
today's month/day inside the calendar, stepping by weeks past days without trips. It is logged
here and reported as ``service_date`` / ``demo_service_date`` by ``GET /api/v1/network``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.errors import ApiError

log = logging.getLogger("tsunagu.demo")

DEMO_FEED_ID = "muroran"
# pg_advisory_lock key of the first-run import ("tsdemo"); app.db's migration lock is another.
_PG_DEMO_LOCK = 0x747364656D6F


@contextlib.contextmanager
def first_run_lock(engine: Engine, lock_dir: Path) -> Iterator[None]:
    """Hold a lock shared by every process of the deployment while the block runs.

    PostgreSQL: a session-level advisory lock on a connection of its own (several hosts may
    share the database; PostgreSQL also drops the lock if the process dies). SQLite: an
    exclusive ``flock`` on ``lock_dir/.demo-import.lock``; a SQLite database is only shared by
    processes of one host, and ``flock`` also serialises threads, since each call opens the
    file anew.

    Parameters
    ----------
    engine
        The deployment's database.
    lock_dir
        A directory every process shares (the feed artifacts' root); created if missing.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_DEMO_LOCK})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_DEMO_LOCK})
                conn.commit()
        return
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / ".demo-import.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_demo_sync(registry: Any, settings: Any) -> bool:
    """Import and publish the demo feed if nothing is published; True when it did.

    Cheap when something is published already (no lock is taken). Otherwise the check is
    repeated under :func:`first_run_lock`, after serving what the database says is published:
    another process may have imported the demo while this one waited.
    """
    if registry.network.versions:
        return False
    path = settings.demo_feed_path
    if not path.is_file():
        log.warning("demo feed not found at %s; starting with an empty network", path)
        return False
    with first_run_lock(registry.engine, registry.store.root):
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

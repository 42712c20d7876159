"""Published GTFS-Flex feeds become the dispatcher's service zones.

Each polygon zone of a published flex feed (``dispatch.flex_zones.zones_from_flex``: its
service hours and booking notice) is served by ``services.dispatcher`` as zone
``"{feed_id}:{location_id}"``. Synced at start-up (after the dispatcher), after every publish
or rollback, and when a worker adopts a publish made elsewhere. A zone whose feed is no longer
published is removed only while it has no vehicle (removing it would drop their rides); the
dispatcher keeps it otherwise. In cluster mode (``REDIS_URL``) the zones go to the shared
catalog (``app.dispatch.gateway``); an unpublished one is removed from it by its owner (a
``remove_zone`` command on the zone's stream, refused while it has vehicles or rides).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import zipfile
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger("tsunagu.feeds")

#: Files only a GTFS-Flex feed has: a zip without any is not read at all.
FLEX_FILES = ("locations.geojson", "location_groups.txt", "booking_rules.txt")

_lock = threading.Lock()  # one sync at a time per process (publish and the sync loop)


def _is_flex(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            names = {n.rsplit("/", 1)[-1] for n in zf.namelist()}
    except (OSError, zipfile.BadZipFile):
        return False
    return any(f in names for f in FLEX_FILES)


def _utc_offset_s(feed: Any, now: dt.datetime) -> float:
    agency = feed.tables.get("agency")
    if agency is None or "agency_timezone" not in agency.columns or agency.empty:
        return 0.0
    try:
        offset = now.astimezone(ZoneInfo(str(agency["agency_timezone"].iloc[0]))).utcoffset()
    except (ZoneInfoNotFoundError, ValueError):
        return 0.0
    return offset.total_seconds() if offset is not None else 0.0


def zone_network(registry: Any, zone: Any) -> str | None:
    """The name of the network (city) an on-demand zone lies in: the region whose stops'
    area holds the zone's first corner; None when no served region does."""
    try:
        lon, lat = zone.polygons[0][0][0]
    except (IndexError, TypeError, ValueError):
        return None
    net = registry.network_at(float(lat), float(lon))
    return net.name if net is not None else None


def zones_of_network(registry: Any, zones: list[Any], network: Any) -> list[Any]:
    """The zones of ``zones`` that lie in ``network`` (every zone when it is the only city
    served: a zone drawn a little outside the stops still belongs to it)."""
    if len(registry.networks) <= 1:
        return list(zones)
    return [z for z in zones if zone_network(registry, z) == network.name]


def flex_zones_of(feed_id: str, path: Path, now: dt.datetime | None = None) -> list[Any]:
    """The service zones of the flex feed stored at ``path``, ids prefixed by ``feed_id``."""
    if not _is_flex(path):
        return []
    from dispatch.flex_zones import zones_from_flex
    from gtfs.flex import read_flex
    from gtfs.reader import read_feed

    feed = read_feed(path)
    offset = _utc_offset_s(feed, now or dt.datetime.now(dt.UTC))
    return [
        dataclasses.replace(z, zone_id=f"{feed_id}:{z.zone_id}")
        for z in zones_from_flex(read_flex(feed), offset)
    ]


def sync_flex_zones(services: Any) -> dict[str, list[str]]:
    """Make the dispatcher's flex zones match the published flex feeds.

    Returns
    -------
    dict
        ``{"added": [...], "removed": [...], "kept": [...]}`` zone ids (``kept``: unpublished
        but still holding vehicles).
    """
    out: dict[str, list[str]] = {"added": [], "removed": [], "kept": []}
    registry, dispatcher = services.feeds, services.dispatcher
    if registry is None or dispatcher is None:
        return out
    if getattr(services.dispatch, "worker", None) is not None:
        return _sync_cluster(services, out)
    with _lock:
        owned: set[str] = getattr(registry, "flex_zone_ids", set())
        wanted = _wanted(registry)
        present = {z.zone_id for z in dispatcher.zones()}
        for zid, zone in sorted(wanted.items()):
            if zid not in present:
                dispatcher.add_zone(zone)
                out["added"].append(zid)
        for zid in sorted(owned - set(wanted)):
            if zid not in present:
                continue
            if dispatcher.vehicles(zid):
                out["kept"].append(zid)
            else:
                dispatcher.remove_zone(zid)
                out["removed"].append(zid)
        registry.flex_zone_ids = set(wanted) | set(out["kept"])
    if out["added"] or out["removed"]:
        log.info("flex zones: %s", out)
    return out


def _wanted(registry: Any) -> dict[str, Any]:
    wanted: dict[str, Any] = {}
    # Every city's published flex feeds (not only the default network's).
    for pv in (p for net in registry.networks.values() for p in net.versions):
        try:
            zones = flex_zones_of(pv.feed_id, registry.store.original(pv.version_id))
        except Exception:  # a zone problem must never break publishing
            log.exception("flex zones of %s v%d", pv.feed_id, pv.version_id)
            continue
        wanted.update((z.zone_id, z) for z in zones)
    return wanted


def _sync_cluster(services: Any, out: dict[str, list[str]]) -> dict[str, list[str]]:
    """Cluster mode: add the published zones to the shared catalog (every process may do it
    at once: the insert is idempotent), then let this process's worker lease the new ones, so
    each has an owner when the publish answers. Unpublished zones (catalogued as
    ``source="flex"``, whichever process published them) are removed by their owner
    (``ClusterGateway.remove_zone``), the same rule as one process: only without vehicles or
    live rides (kept otherwise, and tried again at the next sync). Every process adopting the
    publish may ask at once: the first removal wins, the others find the zone gone."""
    from app.dispatch.store import catalog_zone_ids, insert_zone

    gateway = services.dispatch
    with _lock:
        wanted = _wanted(services.feeds)
        for zid, zone in sorted(wanted.items()):
            if insert_zone(services.engine, zone, source="flex"):
                out["added"].append(zid)
        gone = [z for z in catalog_zone_ids(services.engine, "flex") if z not in wanted]
    # Waited for outside the lock: the owners' answers take up to the reply timeout.
    for zid, result in gateway.remove_zones_from_thread(gone).items():
        out[result].append(zid)
    services.feeds.flex_zone_ids = set(wanted) | set(out["kept"])
    if out["added"]:
        gateway.sync_from_thread()
    if out["added"] or out["removed"]:
        log.info("flex zones: %s", out)
    return out


async def start_flex_zones(services: Any) -> None:
    """Start-up hook (after the dispatcher): serve the published flex feeds' zones."""
    import asyncio

    await asyncio.to_thread(sync_flex_zones, services)

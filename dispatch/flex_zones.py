"""Service zones from a GTFS-Flex v2 feed (read by :mod:`gtfs.flex`): zone polygons, the
pick-up/drop-off windows of their flex trips as service hours, and the pick-up booking rule's
prior notice."""

from __future__ import annotations

from pathlib import Path

from shapely.geometry import mapping

from dispatch.zone import ServiceZone
from gtfs.flex import FlexNetwork, read_flex
from gtfs.reader import read_feed


def _merge(windows: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(windows):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def zones_from_flex(network: FlexNetwork, utc_offset_s: float = 0.0) -> list[ServiceZone]:
    """Every polygon zone of ``network`` as a :class:`ServiceZone`.

    Service hours are the union of the daily windows of the flex services at the zone; the
    notice is the strictest of their pick-up booking rules (``prior_notice_duration_min/max``).
    """
    zones: list[ServiceZone] = []
    for zid, fz in sorted(network.zones.items()):
        if fz.geometry.geom_type not in ("Polygon", "MultiPolygon"):
            continue
        services = [s for s in network.services if s.location_id == zid]
        windows = [(float(w.start_s), float(w.end_s)) for s in services for w in s.windows]
        rules = [s.pickup_booking_rule for s in services if s.pickup_booking_rule is not None]
        lo = max((60.0 * (r.prior_notice_duration_min or 0) for r in rules), default=0.0)
        hi = min(
            (60.0 * r.prior_notice_duration_max for r in rules if r.prior_notice_duration_max),
            default=7 * 86400.0,
        )
        zones.append(
            ServiceZone.from_geojson(
                zid,
                dict(mapping(fz.geometry)),
                name=fz.name or zid,
                service_hours=_merge(windows) or [(0.0, 86400.0)],
                min_notice_s=lo,
                max_notice_s=hi,
                utc_offset_s=utc_offset_s,
            )
        )
    return zones


def load_flex_zones(feed: Path, utc_offset_s: float = 0.0) -> list[ServiceZone]:
    """The service zones of the GTFS-Flex feed at ``feed`` (a .zip or folder).

    Raises
    ------
    ValueError
        When the feed holds no polygon zone.
    """
    zones = zones_from_flex(read_flex(read_feed(feed)), utc_offset_s)
    if not zones:
        raise ValueError(f"{Path(feed).name}: no GTFS-Flex polygon zone")
    return zones

"""Service zones from a GTFS-Flex v2 feed: ``locations.geojson`` polygons, the pick-up/drop-off
windows of ``stop_times.txt`` as service hours, and ``booking_rules.txt`` prior notice."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

from dispatch.zone import ServiceZone


def _hms(value: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    h, m, s = (int(x) for x in value.split(":"))
    return float(h * 3600 + m * 60 + s)


def _rows(zf: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    if name not in zf.namelist():
        return []
    text = zf.read(name).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def _merge(windows: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(windows):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def load_flex_zones(feed: Path, utc_offset_s: float = 0.0) -> list[ServiceZone]:
    """Every polygon location of the GTFS-Flex feed at ``feed`` (a .zip) as a ServiceZone.

    Raises
    ------
    ValueError
        When the feed has no ``locations.geojson`` or it holds no polygon.
    """
    with zipfile.ZipFile(feed) as zf:
        if "locations.geojson" not in zf.namelist():
            raise ValueError(f"{feed.name}: no locations.geojson, not a GTFS-Flex feed")
        geo = json.loads(zf.read("locations.geojson").decode("utf-8-sig"))
        rules = {r["booking_rule_id"]: r for r in _rows(zf, "booking_rules.txt")}
        windows: dict[str, list[tuple[float, float]]] = {}
        notice: dict[str, tuple[float, float]] = {}
        for st in _rows(zf, "stop_times.txt"):
            loc = st.get("location_id") or st.get("stop_id") or ""
            a = _hms(st.get("start_pickup_drop_off_window", ""))
            b = _hms(st.get("end_pickup_drop_off_window", ""))
            if a is not None and b is not None:
                windows.setdefault(loc, []).append((a, b))
            rule = rules.get(st.get("pickup_booking_rule_id", ""))
            if rule is not None:
                lo = float(rule.get("prior_notice_duration_min") or 0) * 60
                hi = float(rule.get("prior_notice_duration_max") or 7 * 1440) * 60
                notice[loc] = (lo, hi)
    zones: list[ServiceZone] = []
    for feat in geo.get("features", []):
        geom = feat.get("geometry") or {}
        if geom.get("type") not in ("Polygon", "MultiPolygon"):
            continue
        zid = str(feat.get("id") or feat.get("properties", {}).get("stop_id", ""))
        props = feat.get("properties") or {}
        lo, hi = notice.get(zid, (0.0, 7 * 86400.0))
        zones.append(
            ServiceZone.from_geojson(
                zid,
                geom,
                name=str(props.get("stop_name") or zid),
                service_hours=_merge(windows.get(zid, [(0.0, 86400.0)])),
                min_notice_s=lo,
                max_notice_s=hi,
                utc_offset_s=utc_offset_s,
            )
        )
    if not zones:
        raise ValueError(f"{feed.name}: locations.geojson holds no polygon zone")
    return zones

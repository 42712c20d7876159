"""Foreign keys between files (``foreign_key_violation``).

GTFS-JP's extension tables (routes_jp, agency_jp) only add descriptions to routes and
agencies the core files define; a dangling row there (the MLIT reference sample has one) is
``extension_foreign_key_violation``, a WARNING, as it cannot break routing.
"""

from __future__ import annotations

import pandas as pd

from gtfs.feed import Feed
from gtfs.notices import NoticeSink

# (child file, child field, parent file(s), parent field); blanks are not references.
_FOREIGN_KEYS: list[tuple[str, str, tuple[str, ...], str]] = [
    ("routes", "agency_id", ("agency",), "agency_id"),
    ("trips", "route_id", ("routes",), "route_id"),
    ("trips", "service_id", ("calendar", "calendar_dates"), "service_id"),
    ("trips", "shape_id", ("shapes",), "shape_id"),
    ("stop_times", "trip_id", ("trips",), "trip_id"),
    ("stop_times", "location_group_id", ("location_groups",), "location_group_id"),
    ("stop_times", "pickup_booking_rule_id", ("booking_rules",), "booking_rule_id"),
    ("stop_times", "drop_off_booking_rule_id", ("booking_rules",), "booking_rule_id"),
    ("stops", "parent_station", ("stops",), "stop_id"),
    ("frequencies", "trip_id", ("trips",), "trip_id"),
    ("transfers", "from_stop_id", ("stops",), "stop_id"),
    ("transfers", "to_stop_id", ("stops",), "stop_id"),
    ("transfers", "from_route_id", ("routes",), "route_id"),
    ("transfers", "to_route_id", ("routes",), "route_id"),
    ("transfers", "from_trip_id", ("trips",), "trip_id"),
    ("transfers", "to_trip_id", ("trips",), "trip_id"),
    ("fare_rules", "fare_id", ("fare_attributes",), "fare_id"),
    ("fare_rules", "route_id", ("routes",), "route_id"),
    ("pathways", "from_stop_id", ("stops",), "stop_id"),
    ("pathways", "to_stop_id", ("stops",), "stop_id"),
    ("stops", "level_id", ("levels",), "level_id"),
    ("location_group_stops", "location_group_id", ("location_groups",), "location_group_id"),
    ("location_group_stops", "stop_id", ("stops",), "stop_id"),
    ("routes_jp", "route_id", ("routes",), "route_id"),
    ("agency_jp", "agency_id", ("agency",), "agency_id"),
]
_EXTENSION_TABLES = frozenset({"routes_jp", "agency_jp"})


def _check(
    feed: Feed, sink: NoticeSink, child: str, field: str, parents: pd.Index, parent_desc: str
) -> None:
    code = "extension_foreign_key_violation" if child in _EXTENSION_TABLES else None
    df = feed.table(child)
    if df.empty or field not in df.columns:
        return
    s = df[field].astype(str)
    bad = (s != "") & ~s.isin(parents)
    if bad.any():
        sink.add_rows(
            code or "foreign_key_violation",
            df.loc[bad, [field]].rename(columns={field: "field_value"}),
            filename=f"{child}.txt",
            extra={"field_name": field, "parent": parent_desc},
        )


def check_references(feed: Feed, sink: NoticeSink, location_ids: set[str]) -> None:
    """``location_ids``: GTFS-Flex GeoJSON location ids (valid stop references too)."""
    for child, field, parent_files, parent_field in _FOREIGN_KEYS:
        values = [feed.column(p, parent_field).astype(str) for p in parent_files]
        parents = pd.Index(pd.concat(values).unique()) if values else pd.Index([])
        _check(feed, sink, child, field, parents, f"{'/'.join(parent_files)}.{parent_field}")
    # stop_times.stop_id may name a stop or (Flex) a GeoJSON location.
    stops = feed.column("stops", "stop_id").astype(str)
    parents = pd.Index(pd.concat([stops, pd.Series(sorted(location_ids), dtype=object)]).unique())
    _check(feed, sink, "stop_times", "stop_id", parents, "stops.stop_id|locations.geojson")
    _check(feed, sink, "stop_times", "location_id", parents, "locations.geojson")

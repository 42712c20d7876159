"""What the reader and the validator know about each GTFS / GTFS-JP / GTFS-Flex file.

Types are the GTFS field types the validator checks cheaply: ``id``, ``text``, ``int``,
``float``, ``time``, ``date``, ``color``, ``url``, ``timezone``, ``lat``, ``lon``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FileSpec:
    """One file: whether it is required, its key, and its typed fields."""

    name: str
    required: bool = False
    required_fields: tuple[str, ...] = ()
    primary_key: tuple[str, ...] = ()
    types: dict[str, str] = field(default_factory=dict)


_SPECS = [
    FileSpec(
        "agency",
        True,
        ("agency_name", "agency_url", "agency_timezone"),
        ("agency_id",),
        {"agency_url": "url", "agency_timezone": "timezone", "agency_fare_url": "url"},
    ),
    FileSpec(
        "stops",
        True,
        ("stop_id",),
        ("stop_id",),
        {
            "stop_lat": "lat",
            "stop_lon": "lon",
            "location_type": "int",
            "wheelchair_boarding": "int",
            "stop_url": "url",
            "stop_timezone": "timezone",
        },
    ),
    FileSpec(
        "routes",
        True,
        ("route_id", "route_type"),
        ("route_id",),
        {
            "route_type": "int",
            "route_color": "color",
            "route_text_color": "color",
            "route_url": "url",
            "route_sort_order": "int",
        },
    ),
    FileSpec(
        "trips",
        True,
        ("route_id", "service_id", "trip_id"),
        ("trip_id",),
        {"direction_id": "int", "wheelchair_accessible": "int", "bikes_allowed": "int"},
    ),
    FileSpec(
        "stop_times",
        True,
        ("trip_id", "stop_sequence"),
        ("trip_id", "stop_sequence"),
        {
            "arrival_time": "time",
            "departure_time": "time",
            "stop_sequence": "int",
            "pickup_type": "int",
            "drop_off_type": "int",
            "timepoint": "int",
            "shape_dist_traveled": "float",
            "start_pickup_drop_off_window": "time",
            "end_pickup_drop_off_window": "time",
        },
    ),
    FileSpec(
        "calendar",
        False,
        (
            "service_id",
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
            "start_date",
            "end_date",
        ),
        ("service_id",),
        {
            "start_date": "date",
            "end_date": "date",
            **{
                d: "int"
                for d in (
                    "monday",
                    "tuesday",
                    "wednesday",
                    "thursday",
                    "friday",
                    "saturday",
                    "sunday",
                )
            },
        },
    ),
    FileSpec(
        "calendar_dates",
        False,
        ("service_id", "date", "exception_type"),
        ("service_id", "date"),
        {"date": "date", "exception_type": "int"},
    ),
    FileSpec(
        "frequencies",
        False,
        ("trip_id", "start_time", "end_time", "headway_secs"),
        ("trip_id", "start_time"),
        {"start_time": "time", "end_time": "time", "headway_secs": "int", "exact_times": "int"},
    ),
    FileSpec(
        "transfers",
        False,
        (),
        (),
        {"transfer_type": "int", "min_transfer_time": "int"},
    ),
    FileSpec(
        "shapes",
        False,
        ("shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence"),
        ("shape_id", "shape_pt_sequence"),
        {
            "shape_pt_lat": "lat",
            "shape_pt_lon": "lon",
            "shape_pt_sequence": "int",
            "shape_dist_traveled": "float",
        },
    ),
    FileSpec(
        "feed_info",
        False,
        ("feed_publisher_name", "feed_publisher_url", "feed_lang"),
        (),
        {"feed_publisher_url": "url", "feed_start_date": "date", "feed_end_date": "date"},
    ),
    FileSpec(
        "fare_attributes",
        False,
        ("fare_id", "price", "currency_type", "payment_method"),
        ("fare_id",),
        {"price": "float", "payment_method": "int", "transfers": "int", "transfer_duration": "int"},
    ),
    FileSpec("fare_rules", False, ("fare_id",), ()),
    FileSpec("translations", False, (), ()),
    FileSpec("attributions", False, (), ()),
    FileSpec(
        "pathways",
        False,
        ("pathway_id", "from_stop_id", "to_stop_id", "pathway_mode", "is_bidirectional"),
        ("pathway_id",),
        {
            "pathway_mode": "int",
            "is_bidirectional": "int",
            "traversal_time": "int",
            "length": "float",
        },
    ),
    FileSpec("levels", False, ("level_id", "level_index"), ("level_id",), {"level_index": "float"}),
    # GTFS-Flex v2
    FileSpec("location_groups", False, ("location_group_id",), ()),
    FileSpec("location_group_stops", False, ("location_group_id", "stop_id"), ()),
    FileSpec(
        "booking_rules",
        False,
        ("booking_rule_id", "booking_type"),
        ("booking_rule_id",),
        {
            "booking_type": "int",
            "prior_notice_duration_min": "int",
            "prior_notice_duration_max": "int",
            "prior_notice_last_day": "int",
            "prior_notice_last_time": "time",
            "prior_notice_start_day": "int",
            "prior_notice_start_time": "time",
        },
    ),
    # GTFS-JP
    FileSpec("agency_jp", False, ("agency_id",), ("agency_id",)),
    FileSpec("office_jp", False, ("office_id", "office_name"), ("office_id",)),
    FileSpec("routes_jp", False, ("route_id",), ("route_id",)),
    FileSpec("pattern_jp", False, (), ()),
    # Other files we know and keep without checks (fares v2 / riders / areas).
    FileSpec("fare_rider_categories", False),
    FileSpec("rider_categories", False),
    FileSpec("fare_media", False),
    FileSpec("fare_products", False),
    FileSpec("fare_leg_rules", False),
    FileSpec("fare_transfer_rules", False),
    FileSpec("areas", False),
    FileSpec("stop_areas", False),
    FileSpec("networks", False),
    FileSpec("route_networks", False),
    FileSpec("timeframes", False),
]

SPECS: dict[str, FileSpec] = {s.name: s for s in _SPECS}

#: Known non-CSV files (GTFS-Flex zones).
GEOJSON_FILES = ("locations.geojson",)

#: Known columns per file (for ``unknown_column``); a file absent here has no column check.
KNOWN_COLUMNS: dict[str, frozenset[str]] = {
    "agency": frozenset(
        [
            "agency_id",
            "agency_name",
            "agency_url",
            "agency_timezone",
            "agency_lang",
            "agency_phone",
            "agency_fare_url",
            "agency_email",
        ]
    ),
    "stops": frozenset(
        [
            "stop_id",
            "stop_code",
            "stop_name",
            "tts_stop_name",
            "stop_desc",
            "stop_lat",
            "stop_lon",
            "zone_id",
            "stop_url",
            "location_type",
            "parent_station",
            "stop_timezone",
            "wheelchair_boarding",
            "level_id",
            "platform_code",
            "stop_access",
        ]
    ),
    "routes": frozenset(
        [
            "route_id",
            "agency_id",
            "route_short_name",
            "route_long_name",
            "route_desc",
            "route_type",
            "route_url",
            "route_color",
            "route_text_color",
            "route_sort_order",
            "continuous_pickup",
            "continuous_drop_off",
            "network_id",
            "cemv_support",
            "jp_parent_route_id",
        ]
    ),
    "trips": frozenset(
        [
            "route_id",
            "service_id",
            "trip_id",
            "trip_headsign",
            "trip_short_name",
            "direction_id",
            "block_id",
            "shape_id",
            "wheelchair_accessible",
            "bikes_allowed",
            "cars_allowed",
            "cemv_support",
            "jp_trip_desc",
            "jp_trip_desc_symbol",
            "jp_office_id",
            "jp_pattern_id",
        ]
    ),
    "stop_times": frozenset(
        [
            "trip_id",
            "arrival_time",
            "departure_time",
            "stop_id",
            "location_group_id",
            "location_id",
            "stop_sequence",
            "stop_headsign",
            "start_pickup_drop_off_window",
            "end_pickup_drop_off_window",
            "pickup_type",
            "drop_off_type",
            "continuous_pickup",
            "continuous_drop_off",
            "shape_dist_traveled",
            "timepoint",
            "pickup_booking_rule_id",
            "drop_off_booking_rule_id",
        ]
    ),
    "calendar": frozenset(SPECS["calendar"].required_fields),
    "calendar_dates": frozenset(SPECS["calendar_dates"].required_fields),
    "frequencies": frozenset(["trip_id", "start_time", "end_time", "headway_secs", "exact_times"]),
    "transfers": frozenset(
        [
            "from_stop_id",
            "to_stop_id",
            "from_route_id",
            "to_route_id",
            "from_trip_id",
            "to_trip_id",
            "transfer_type",
            "min_transfer_time",
        ]
    ),
    "shapes": frozenset(
        ["shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence", "shape_dist_traveled"]
    ),
}

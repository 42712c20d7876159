"""GTFS-Realtime: parse feeds, overlay TripUpdates on compiled timetables, export the fleet.

* :func:`parse_feed` / :func:`read_feed_file` — FeedMessage bytes → :class:`RealtimeFeed`
  (TripUpdates, VehiclePositions, Alerts as dataclasses).
* :func:`apply_trip_updates` — TripUpdates + :class:`~gtfs.compiled.CompiledTimetable` + service
  date → :class:`RealtimeState` (numpy arrays ``arrival``, ``departure`` [N],
  ``trip_cancelled`` [T], ``stop_skipped`` [N]; see :mod:`gtfs.realtime.overlay`).
* :class:`ProducerState` — one producer's current entities across FULL_DATASET and
  DIFFERENTIAL messages (entity-id upsert / ``is_deleted``, expiry; :mod:`~.incremental`);
  :func:`encode_feed` — the inverse of :func:`parse_feed` (spooled snapshots).
* :class:`RealtimePoller` / :func:`fetch_feed` — poll a URL with interval and timeouts.
* :func:`vehicle_positions_bytes` / :func:`trip_updates_bytes` — Tsunagu's own GTFS-RT export.
"""

from gtfs.realtime.export import (
    FleetTrip,
    FleetVehicle,
    StopEta,
    trip_updates_bytes,
    trip_updates_message,
    vehicle_positions_bytes,
    vehicle_positions_message,
)
from gtfs.realtime.incremental import MergeResult, ProducerState
from gtfs.realtime.keys import RealtimeKeys
from gtfs.realtime.messages import (
    Alert,
    InformedEntity,
    RealtimeFeed,
    RealtimeParseError,
    StopTimeEvent,
    StopTimeUpdate,
    TripDescriptor,
    TripUpdate,
    VehiclePosition,
    encode_feed,
    parse_feed,
    read_feed_file,
)
from gtfs.realtime.overlay import (
    RealtimeState,
    TripMatcher,
    apply_trip_updates,
    service_day_origin,
)
from gtfs.realtime.poller import FetchError, RealtimePoller, fetch_feed

__all__ = [
    "Alert",
    "FetchError",
    "FleetTrip",
    "FleetVehicle",
    "InformedEntity",
    "MergeResult",
    "ProducerState",
    "RealtimeFeed",
    "RealtimeKeys",
    "RealtimeParseError",
    "RealtimePoller",
    "RealtimeState",
    "StopEta",
    "StopTimeEvent",
    "StopTimeUpdate",
    "TripDescriptor",
    "TripMatcher",
    "TripUpdate",
    "VehiclePosition",
    "apply_trip_updates",
    "encode_feed",
    "fetch_feed",
    "parse_feed",
    "read_feed_file",
    "service_day_origin",
    "trip_updates_bytes",
    "trip_updates_message",
    "vehicle_positions_bytes",
    "vehicle_positions_message",
]

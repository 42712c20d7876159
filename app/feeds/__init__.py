"""The GTFS feed lifecycle in the app: versions, artifacts, the published network, realtime.

* :class:`FeedRegistry` (``services.feeds``) — upload, validate, compile, publish, rollback;
  ``registry.network`` is the current immutable :class:`Network` snapshot (grab once per query:
  ``net = services.feeds.network; tt = net.timetable; day = net.service_date``).
* ``registry.realtime_state(day)`` — the ``gtfs.realtime.RealtimeState`` overlay of the current
  network (``arrival``/``departure`` [N], ``trip_cancelled`` [T], ``stop_skipped`` [N]).
* ``registry.fleet_provider`` — set by the dispatcher: ``() -> (vehicles, trips)`` of
  ``gtfs.realtime.FleetVehicle`` / ``FleetTrip`` for the public GTFS-RT export.
"""

from app.feeds.models import FeedVersion
from app.feeds.network import Network, PublishedVersion, network_geojson
from app.feeds.registry import FeedRegistry

__all__ = ["FeedRegistry", "FeedVersion", "Network", "PublishedVersion", "network_geojson"]

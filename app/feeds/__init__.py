"""The GTFS feed lifecycle in the app: versions, artifacts, the published network, realtime.

Contracts for the other services (all on ``services.feeds``, a :class:`FeedRegistry`):

* ``net = services.feeds.network`` — the current immutable :class:`Network`; grab it ONCE per
  query and use ``net.timetable`` (a ``gtfs.compiled.CompiledTimetable``, None when nothing is
  published), ``net.service_date`` (the default query date: today in the feed's zone — an expired
  feed's calendar is mapped onto the days around today, :mod:`gtfs.calendar_mapping` — or the
  rule of :mod:`app.feeds.service_date`), ``net.generation`` (changes on every swap).
* ``services.feeds.realtime_state(day=None)`` — the ``gtfs.realtime.RealtimeState`` overlay of
  the current network (``arrival``/``departure`` [N], ``trip_cancelled`` [T],
  ``stop_skipped`` [N]); ``services.feeds.realtime.state(net, day)`` for a grabbed snapshot.
* ``services.feeds.fleet_provider`` — ``() -> (vehicles, trips)`` of
  ``gtfs.realtime.FleetVehicle`` / ``FleetTrip``, served as GTFS-RT at
  ``/api/v1/realtime/vehicle-positions.pb`` and ``/trip-updates.pb``. By default
  (:mod:`app.feeds.fleet`) it reads ``services.dispatcher``: one ADDED trip
  ``"ondemand-{vehicle_id}"`` per vehicle with a plan, stops ``"{ride_id}:pickup|dropoff"``.
* Published GTFS-Flex feeds are the dispatcher's zones ``"{feed_id}:{location_id}"`` with the
  feed's hours and notice (:mod:`app.feeds.dispatch_zones`, synced on publish/rollback/start).
* Events on the bus: ``feeds.{feed_id}.version`` (upload outcome), ``feeds.network`` (publish,
  rollback), ``feeds.realtime`` (TripUpdates ingested).

Every worker adopts publishes made elsewhere (another worker, the CLI) within
``settings.feeds_sync_interval_s``, loading the shared ``compiled.npz`` — never recompiling.
"""

from app.feeds.models import FeedVersion
from app.feeds.network import Network, PublishedVersion, network_geojson
from app.feeds.registry import FeedRegistry

__all__ = ["FeedRegistry", "FeedVersion", "Network", "PublishedVersion", "network_geojson"]

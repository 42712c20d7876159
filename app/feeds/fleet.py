"""The on-demand fleet as GTFS-RT: a ``fleet_provider`` reading ``services.dispatcher``.

The dispatcher knows where each vehicle is and the stops it still has to serve; this module
turns that into :class:`gtfs.realtime.FleetVehicle` / :class:`gtfs.realtime.FleetTrip` for
``/api/v1/realtime/vehicle-positions.pb`` and ``/trip-updates.pb``. On-demand stops are not in
any static GTFS, so each planned stop gets the id ``"{ride_id}:{pickup|dropoff}"`` and each
vehicle's remaining plan is one ADDED trip ``"ondemand-{vehicle_id}"`` on route ``zone_id``.
In cluster mode (``REDIS_URL``) every zone is listed: those this process owns live, the
others from their last saved snapshot (``ClusterGateway.others_dispatcher``).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from gtfs.realtime import FleetTrip, FleetVehicle, StopEta


def _bearing(a: tuple[float, float], b: tuple[float, float]) -> float | None:
    """Initial great-circle bearing from ``a`` to ``b`` (degrees from north), None if equal."""
    if a == b:
        return None
    lat1, lat2 = math.radians(a[0]), math.radians(b[0])
    dlon = math.radians(b[1] - a[1])
    x = math.sin(dlon) * math.cos(lat2)
    y = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(dlon)
    return (math.degrees(math.atan2(x, y)) + 360.0) % 360.0


#: A position older than this says nothing about whether the vehicle is moving now.
MOVING_REPORT_S = 60.0


def _speed(v: Any, first: Any, now: float) -> float | None:
    """The vehicle type's cruising speed (m/s) while it drives a leg: a plan ahead, away
    from its next stop, and a fresh position report; None otherwise (waiting, idle, unknown)."""
    if first is None or v.position_time <= 0 or now - v.position_time > MOVING_REPORT_S:
        return None
    if (float(v.position[0]), float(v.position[1])) == tuple(first.latlon):
        return None
    return float(v.vtype.speed_kmh) / 3.6


def stop_id_of(ride_id: str, kind: str) -> str:
    """The GTFS-RT ``stop_id`` of a planned on-demand stop."""
    return f"{ride_id}:{kind}"


def trip_id_of(vehicle_id: str) -> str:
    """The GTFS-RT ``trip_id`` of a vehicle's remaining run."""
    return f"ondemand-{vehicle_id}"


def fleet_snapshot(dispatcher: Any, now: float | None = None) -> tuple[list[Any], list[Any]]:
    """Vehicles and their planned runs, read under each zone's lock.

    Parameters
    ----------
    dispatcher
        A ``dispatch.dispatcher.Dispatcher`` (its clock gives POSIX seconds when live).
    now
        Dispatcher time of the snapshot; ``dispatcher.clock()`` when omitted.

    Returns
    -------
    vehicles, trips
        One :class:`FleetVehicle` per vehicle; one :class:`FleetTrip` per vehicle with a
        non-empty plan, its ETAs being the planned start-of-service times.
    """
    t_now = float(dispatcher.clock() if now is None else now)
    vehicles: list[Any] = []
    trips: list[Any] = []
    for zone in dispatcher.zones():
        zs = dispatcher.zone_state(zone.zone_id)
        with zs.lock:  # plans change under this lock (quotes, bookings, re-optimisation)
            for v in sorted(zs.vehicles.values(), key=lambda x: x.vehicle_id):
                plan = list(v.plan)
                etas = dispatcher.schedule(v, t_now) if plan else []
                position = (float(v.position[0]), float(v.position[1]))
                first = plan[0] if plan else None
                vehicles.append(
                    FleetVehicle(
                        vehicle_id=v.vehicle_id,
                        lat=position[0],
                        lon=position[1],
                        # When the position was reported (never in the future).
                        timestamp=int(
                            min(v.position_time, t_now) if v.position_time > 0 else t_now
                        ),
                        bearing=_bearing(position, first.latlon) if first else None,
                        speed=_speed(v, first, t_now),
                        trip_id=trip_id_of(v.vehicle_id) if first else None,
                        route_id=zone.zone_id if first else None,
                        stop_id=stop_id_of(first.ride_id, str(first.kind)) if first else None,
                        label=v.vehicle_id,
                        current_status="IN_TRANSIT_TO" if first else None,
                    )
                )
                if not plan:
                    continue
                local = dt.datetime.fromtimestamp(t_now + zone.utc_offset_s, tz=dt.UTC)
                trips.append(
                    FleetTrip(
                        trip_id=trip_id_of(v.vehicle_id),
                        vehicle_id=v.vehicle_id,
                        etas=tuple(
                            StopEta(
                                stop_id_of(s.ride_id, str(s.kind)),
                                arrival=round(float(e)),
                                departure=round(float(e) + s.service_s),
                            )
                            for s, e in zip(plan, etas, strict=True)
                        ),
                        route_id=zone.zone_id,
                        start_date=local.strftime("%Y%m%d"),
                        timestamp=int(t_now),
                    )
                )
    return vehicles, trips


def attach_fleet_provider(services: Any) -> None:
    """Serve ``services.dispatcher``'s fleet unless another provider was set.

    The dispatcher starts after the feeds, so the provider looks it up on every call; with
    no dispatcher the fleet is empty (still a valid GTFS-RT feed).
    """
    registry = services.feeds
    if registry is None or registry.fleet_provider is not None:
        return

    def provider() -> tuple[list[Any], list[Any]]:
        dispatcher = services.dispatcher
        if dispatcher is None:
            return [], []
        vehicles, trips = fleet_snapshot(dispatcher)
        others = getattr(services.dispatch, "others_dispatcher", None)
        if others is not None:
            # Cluster mode: this process holds only the zones it owns; the others' vehicles
            # come from their last saved state (at most a save interval old).
            now = float(dispatcher.clock())
            more_vehicles, more_trips = fleet_snapshot(others(), now)
            vehicles, trips = vehicles + more_vehicles, trips + more_trips
        return vehicles, trips

    registry.fleet_provider = provider

"""Build Tsunagu's own GTFS-Realtime feeds (the on-demand fleet) from plain dataclasses.

Other apps (journey planners, displays) consume the on-demand fleet as standard
``VehiclePositions`` and ``TripUpdates`` FeedMessages. On-demand trips are not in any static
GTFS, so their TripUpdates default to ``ADDED`` with absolute ETAs (POSIX seconds).
"""

from __future__ import annotations

import time as _time
from collections.abc import Iterable
from dataclasses import dataclass, field

from google.transit import gtfs_realtime_pb2 as pb

GTFS_RT_VERSION = "2.0"


@dataclass(frozen=True)
class FleetVehicle:
    """Where one vehicle is now."""

    vehicle_id: str
    lat: float
    lon: float
    timestamp: int
    bearing: float | None = None  # degrees clockwise from north
    speed: float | None = None  # m/s
    trip_id: str | None = None
    route_id: str | None = None
    stop_id: str | None = None  # the next (or current) stop
    label: str | None = None
    current_status: str | None = None  # INCOMING_AT | STOPPED_AT | IN_TRANSIT_TO


@dataclass(frozen=True)
class StopEta:
    """Expected arrival/departure of a vehicle at a stop (POSIX seconds)."""

    stop_id: str
    arrival: int | None = None
    departure: int | None = None
    stop_sequence: int | None = None


@dataclass(frozen=True)
class FleetTrip:
    """One vehicle's planned run with its ETAs."""

    trip_id: str
    vehicle_id: str
    etas: tuple[StopEta, ...] = field(default=())
    route_id: str | None = None
    start_date: str | None = None  # YYYYMMDD
    schedule_relationship: str = "ADDED"
    timestamp: int | None = None


def _header(msg: pb.FeedMessage, timestamp: int | None) -> None:
    msg.header.gtfs_realtime_version = GTFS_RT_VERSION
    msg.header.incrementality = pb.FeedHeader.FULL_DATASET
    msg.header.timestamp = int(timestamp if timestamp is not None else _time.time())


def vehicle_positions_message(
    vehicles: Iterable[FleetVehicle], timestamp: int | None = None
) -> pb.FeedMessage:
    """A FULL_DATASET ``FeedMessage`` with one VehiclePosition entity per vehicle."""
    msg = pb.FeedMessage()
    _header(msg, timestamp)
    for v in vehicles:
        ent = msg.entity.add()
        ent.id = f"vehicle-{v.vehicle_id}"
        vp = ent.vehicle
        vp.vehicle.id = v.vehicle_id
        if v.label:
            vp.vehicle.label = v.label
        vp.position.latitude = v.lat
        vp.position.longitude = v.lon
        if v.bearing is not None:
            vp.position.bearing = v.bearing
        if v.speed is not None:
            vp.position.speed = v.speed
        vp.timestamp = int(v.timestamp)
        if v.trip_id:
            vp.trip.trip_id = v.trip_id
            # Fleet runs are not in the static GTFS.
            vp.trip.schedule_relationship = pb.TripDescriptor.ADDED
        if v.route_id:
            vp.trip.route_id = v.route_id
        if v.stop_id:
            vp.stop_id = v.stop_id
        if v.current_status:
            vp.current_status = pb.VehiclePosition.VehicleStopStatus.Value(v.current_status)
    return msg


def trip_updates_message(
    trips: Iterable[FleetTrip], timestamp: int | None = None
) -> pb.FeedMessage:
    """A FULL_DATASET ``FeedMessage`` with one TripUpdate per fleet run (absolute ETAs)."""
    msg = pb.FeedMessage()
    _header(msg, timestamp)
    for tr in trips:
        ent = msg.entity.add()
        ent.id = f"trip-{tr.trip_id}"
        tu = ent.trip_update
        tu.trip.trip_id = tr.trip_id
        tu.trip.schedule_relationship = pb.TripDescriptor.ScheduleRelationship.Value(
            tr.schedule_relationship
        )
        if tr.route_id:
            tu.trip.route_id = tr.route_id
        if tr.start_date:
            tu.trip.start_date = tr.start_date
        tu.vehicle.id = tr.vehicle_id
        if tr.timestamp is not None:
            tu.timestamp = int(tr.timestamp)
        for eta in tr.etas:
            stu = tu.stop_time_update.add()
            stu.stop_id = eta.stop_id
            if eta.stop_sequence is not None:
                stu.stop_sequence = eta.stop_sequence
            if eta.arrival is not None:
                stu.arrival.time = int(eta.arrival)
            if eta.departure is not None:
                stu.departure.time = int(eta.departure)
    return msg


def vehicle_positions_bytes(
    vehicles: Iterable[FleetVehicle], timestamp: int | None = None
) -> bytes:
    return bytes(vehicle_positions_message(vehicles, timestamp).SerializeToString())


def trip_updates_bytes(trips: Iterable[FleetTrip], timestamp: int | None = None) -> bytes:
    return bytes(trip_updates_message(trips, timestamp).SerializeToString())

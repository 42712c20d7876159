"""Tsunagu's own GTFS-RT export round-trips through the parser."""

from __future__ import annotations

import pytest

from gtfs.realtime import (
    FleetTrip,
    FleetVehicle,
    StopEta,
    parse_feed,
    trip_updates_bytes,
    vehicle_positions_bytes,
)


def test_vehicle_positions_round_trip() -> None:
    vehicles = [
        FleetVehicle(
            "v1",
            42.3151,
            140.9741,
            1_700_000_000,
            bearing=90.0,
            speed=8.5,
            trip_id="run-1",
            stop_id="S1",
            label="Van 1",
            current_status="IN_TRANSIT_TO",
        ),
        FleetVehicle("v2", 42.32, 140.98, 1_700_000_005),
    ]
    feed = parse_feed(vehicle_positions_bytes(vehicles, timestamp=1_700_000_010))
    assert feed.timestamp == 1_700_000_010 and feed.incrementality == "FULL_DATASET"
    a, b = feed.vehicles
    assert a.vehicle_id == "v1" and a.label == "Van 1"
    assert a.latitude == pytest.approx(42.3151, abs=1e-5)
    assert a.longitude == pytest.approx(140.9741, abs=1e-5)
    assert a.bearing == 90.0 and a.speed == pytest.approx(8.5)
    assert a.timestamp == 1_700_000_000 and a.stop_id == "S1"
    assert a.current_status == "IN_TRANSIT_TO"
    assert a.trip is not None and a.trip.trip_id == "run-1"
    assert a.trip.schedule_relationship == "ADDED"
    assert b.bearing is None and b.speed is None and b.trip is None


def test_trip_updates_round_trip() -> None:
    trips = [
        FleetTrip(
            "run-1",
            "v1",
            etas=(
                StopEta("S1", arrival=1_700_000_100, departure=1_700_000_130),
                StopEta("S2", arrival=1_700_000_400, stop_sequence=2),
            ),
            start_date="20231114",
            timestamp=1_700_000_000,
        )
    ]
    feed = parse_feed(trip_updates_bytes(trips, timestamp=1_700_000_010))
    (tu,) = feed.trip_updates
    assert tu.trip.trip_id == "run-1" and tu.vehicle_id == "v1"
    assert tu.trip.schedule_relationship == "ADDED" and tu.trip.start_date == "20231114"
    s1, s2 = tu.stop_time_updates
    assert s1.stop_id == "S1" and s1.arrival is not None and s1.arrival.time == 1_700_000_100
    assert s1.departure is not None and s1.departure.time == 1_700_000_130
    assert s2.stop_sequence == 2 and s2.departure is None


def test_empty_fleet_is_a_valid_feed() -> None:
    feed = parse_feed(vehicle_positions_bytes([]))
    assert feed.vehicles == () and feed.timestamp is not None
    assert parse_feed(trip_updates_bytes([])).trip_updates == ()

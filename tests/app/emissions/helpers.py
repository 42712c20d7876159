"""Itineraries and rides built by hand for the emissions tests.

Places lie on the meridian 141.0 E, so a leg's straight line is R x dlat (radians), with R the
mean Earth radius 6371.0088 km: 0.01 degree of latitude is 1.111950 km.
"""

from __future__ import annotations

import math
from typing import Any

R_KM = 6371.0088
LON = 141.0


def km_between(lat_a: float, lat_b: float) -> float:
    """Straight-line km between two places on the meridian (by hand: R x dlat)."""
    return R_KM * math.radians(abs(lat_b - lat_a))


def place(lat: float) -> dict[str, float]:
    return {"lat": lat, "lon": LON}


def leg(
    mode: str, lat_a: float, lat_b: float, distance_m: float, t0: int, t1: int
) -> dict[str, Any]:
    """An OTP leg from ``lat_a`` to ``lat_b`` (epoch ms ``t0``..``t1``)."""
    return {
        "mode": mode,
        "from": place(lat_a),
        "to": place(lat_b),
        "distance": distance_m,
        "startTime": t0,
        "endTime": t1,
        "emissionsPerPerson": {"co2": 1, "unit": "g"},  # the client's figure: ignored
    }


def itinerary(*legs: dict[str, Any]) -> dict[str, Any]:
    return {"legs": list(legs)}


def ride(
    ride_id: str,
    vehicle_id: str,
    lat_a: float,
    lat_b: float,
    up: float,
    down: float,
    seats: int = 1,
) -> dict[str, Any]:
    """A completed ride as ``dispatch.rides.Ride.to_dict`` records it."""
    return {
        "ride_id": ride_id,
        "status": "completed",
        "zone_id": "z",
        "vehicle_id": vehicle_id,
        "origin": [lat_a, LON],
        "destination": [lat_b, LON],
        "seats": seats,
        "wheelchairs": 0,
        "pickup_window": [up - 300, up + 300],
        "latest_arrival": down + 600,
        "eta_pickup": up,
        "eta_dropoff": down,
        "picked_up_at": up,
        "dropped_off_at": down,
        "arrived_at": up - 30,
        "booked_at": up - 1800,
    }

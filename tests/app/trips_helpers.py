"""Helpers of the trip tests: dispatcher quotes with a request id and OTP-shaped itineraries
with on-demand (FLEX) legs, as the planner makes them."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi.testclient import TestClient

from dispatch.request import RideRequest
from tests.app.conftest import services_of

TRIPS = "/api/v1/trips"


def quote_for(
    client: TestClient,
    user_id: str,
    origin: dict[str, float],
    destination: dict[str, float],
    **request: Any,
) -> dict[str, Any]:
    """A dispatcher quote made as the planner makes it (``request_id`` set: booking it creates
    the ride of that id), with ``request_id`` added to the returned quote."""
    g = services_of(client).dispatch
    rid = uuid.uuid4().hex
    req = RideRequest(
        origin=(origin["lat"], origin["lon"]),
        destination=(destination["lat"], destination["lon"]),
        requested_at=g.now(),
        user_id=user_id,
        request_id=rid,
        **request,
    )
    q: dict[str, Any] = client.portal.call(g.quote, req)  # type: ignore[union-attr]
    return {**q, "request_id": rid}


def flex_leg(q: dict[str, Any]) -> dict[str, Any]:
    """The plan's on-demand leg for quote ``q``."""
    ms = 1000.0
    (olat, olon), (dlat, dlon) = q["pickup_point"], q["dropoff_point"]
    return {
        "mode": "FLEX",
        "transitLeg": True,
        "onDemand": True,
        "startTime": int(q["eta_pickup"] * ms),
        "endTime": int(q["eta_dropoff"] * ms),
        "from": {"name": "Origin", "lat": olat, "lon": olon},
        "to": {"name": "Destination", "lat": dlat, "lon": dlon},
        "pickupWindow": {
            "start": int(q["pickup_window"][0] * ms),
            "end": int(q["pickup_window"][1] * ms),
        },
        "latestArrivalTime": int(q["latest_arrival"] * ms),
        "zoneId": q["zone_id"],
        "zoneName": q["zone_id"],
        "vehicleType": "van",
        "vehicleId": q["vehicle_id"],
        "bookingQuoteId": q["quote_id"],
        "bookingRequestId": q["request_id"],
        "quoteExpiresAt": int(q["expires_at"] * ms),
        "pickupBookingInfo": {"message": "book in the app"},
        "emissionsPerPerson": {"co2": 123},
    }


def transit_leg(start: float | None = None) -> dict[str, Any]:
    """A bus leg as planned (nothing to reserve)."""
    t0 = int((start or time.time() + 3600) * 1000)
    return {
        "mode": "BUS",
        "transitLeg": True,
        "tripId": "1:trip-7",
        "serviceDate": "20201001",
        "routeShortName": "7",
        "startTime": t0,
        "endTime": t0 + 600_000,
        "from": {"name": "Higashi-Muroran", "stopId": "1:100", "lat": 42.35, "lon": 141.02},
        "to": {"name": "Muroran Station", "stopId": "1:200", "lat": 42.32, "lon": 140.98},
    }


def walk_leg() -> dict[str, Any]:
    t0 = int(time.time() * 1000)
    return {
        "mode": "WALK",
        "transitLeg": False,
        "startTime": t0,
        "endTime": t0 + 300_000,
        "from": {"name": "Home", "lat": 42.312, "lon": 140.962},
        "to": {"name": "Corner", "lat": 42.311, "lon": 140.961},
    }


def itinerary(*legs: dict[str, Any]) -> dict[str, Any]:
    starts = [leg["startTime"] for leg in legs]
    ends = [leg["endTime"] for leg in legs]
    return {
        "startTime": min(starts),
        "endTime": max(ends),
        "duration": (max(ends) - min(starts)) // 1000,
        "legs": list(legs),
    }


def plan_rides(client: TestClient, headers: dict[str, str], vehicle_id: str) -> list[str]:
    """The ride ids in a vehicle's plan, one per stop (``GET /fleet/vehicles/{id}``)."""
    r = client.get(f"/api/v1/fleet/vehicles/{vehicle_id}", headers=headers)
    assert r.status_code == 200, r.text
    return [s["ride_id"] for s in r.json()["plan"]]

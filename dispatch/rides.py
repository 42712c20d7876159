"""Quotes, rides and rejection reasons: what the dispatcher answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from dispatch.insertion import Insertion
from dispatch.request import RideRequest


class RejectReason(StrEnum):
    """Machine-readable reasons a ride cannot be offered."""

    INVALID_REQUEST = "invalid_request"
    OUTSIDE_ZONE = "outside_zone"
    PARTY_TOO_LARGE = "party_too_large"
    PICKUP_IN_PAST = "pickup_in_past"
    SAME_ORIGIN_DESTINATION = "same_origin_destination"
    OUTSIDE_SERVICE_HOURS = "outside_service_hours"
    INSUFFICIENT_NOTICE = "insufficient_notice"
    TOO_FAR_AHEAD = "too_far_ahead"
    NO_VEHICLE_AVAILABLE = "no_vehicle_available"
    QUOTE_UNKNOWN = "quote_unknown"
    QUOTE_CHANGED = "quote_changed"


@dataclass(frozen=True)
class Rejection:
    """No ride: why, for humans and machines; ``new_quote`` when a stale quote was re-priced."""

    reason: RejectReason
    message: str
    new_quote: Quote | None = None


class RideStatus(StrEnum):
    ASSIGNED = "assigned"
    ONBOARD = "onboard"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


@dataclass
class Quote:
    """An offer: vehicle, promised pick-up window and arrival, valid until ``expires_at``."""

    quote_id: str
    request: RideRequest
    zone_id: str
    vehicle_id: str
    pickup_window: tuple[float, float]
    latest_arrival: float
    eta_pickup: float
    eta_dropoff: float
    max_ride_s: float
    direct_s: float
    expires_at: float
    insertion: Insertion
    plan_version: int
    vehicle_type: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "quote_id": self.quote_id,
            "request_id": self.request.request_id,
            "zone_id": self.zone_id,
            "pickup_point": list(self.request.origin),
            "dropoff_point": list(self.request.destination),
            "vehicle_id": self.vehicle_id,
            "vehicle_type": self.vehicle_type,
            "pickup_window": list(self.pickup_window),
            "latest_arrival": self.latest_arrival,
            "eta_pickup": self.eta_pickup,
            "eta_dropoff": self.eta_dropoff,
            "max_ride_s": self.max_ride_s,
            "direct_s": self.direct_s,
            "expires_at": self.expires_at,
        }


@dataclass
class Ride:
    """A booked ride and its life: assigned → onboard → completed (or cancelled / no-show)."""

    ride_id: str
    user_id: str
    request: RideRequest
    zone_id: str
    vehicle_id: str
    status: RideStatus
    pickup_window: tuple[float, float]
    latest_arrival: float
    max_ride_s: float
    direct_s: float
    booked_at: float
    eta_pickup: float
    eta_dropoff: float
    picked_up_at: float | None = None
    dropped_off_at: float | None = None
    #: When the vehicle reported it was at the pick-up (``arrived``); None: not yet.
    arrived_at: float | None = None
    history: list[tuple[float, str]] = field(default_factory=list)
    #: Why a dispatcher cancelled the ride or marked it a no-show (told to the rider); "".
    status_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        r = self.request
        out = {
            "ride_id": self.ride_id,
            "status": self.status.value,
            "zone_id": self.zone_id,
            "vehicle_id": self.vehicle_id,
            "origin": list(r.origin),
            "destination": list(r.destination),
            "seats": r.seats,
            "wheelchairs": r.wheelchairs,
            "pickup_window": list(self.pickup_window),
            "latest_arrival": self.latest_arrival,
            "eta_pickup": self.eta_pickup,
            "eta_dropoff": self.eta_dropoff,
            "picked_up_at": self.picked_up_at,
            "dropped_off_at": self.dropped_off_at,
            "arrived_at": self.arrived_at,
            "booked_at": self.booked_at,
            # When the rider asked to be picked up (leave now: the booking time; arrive-by:
            # None), the start of their wait.
            "requested_pickup": (
                r.earliest_pickup
                if r.earliest_pickup is not None
                else (self.booked_at if r.latest_arrival is None else None)
            ),
        }
        if self.status_reason:
            out["status_reason"] = self.status_reason
        return out

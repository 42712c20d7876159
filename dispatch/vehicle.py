"""Vehicles of the on-demand fleet: their type, shift, position, passengers and plan of stops."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class VehicleType:
    """A kind of vehicle: capacity per dimension and cruising speed.

    Parameters
    ----------
    name
        Short identifier (``"van"``).
    seats
        Seated passengers.
    wheelchair_spaces
        Wheelchair places (a separate capacity dimension).
    speed_kmh
        Average door-to-door speed used by the travel-time model.
    autonomous
        Driverless (e.g. a low-speed shuttle): no driver break rules, lower speed.
    """

    name: str
    seats: int
    wheelchair_spaces: int = 0
    speed_kmh: float = 30.0
    autonomous: bool = False

    def __post_init__(self) -> None:
        if self.seats < 1 or self.wheelchair_spaces < 0:
            raise ValueError("a vehicle needs at least one seat and no negative capacity")
        if self.speed_kmh <= 0:
            raise ValueError("speed must be positive")


CAR = VehicleType("car", seats=4, wheelchair_spaces=0, speed_kmh=30.0)
VAN = VehicleType("van", seats=8, wheelchair_spaces=1, speed_kmh=28.0)
SHUTTLE = VehicleType(
    "autonomous_shuttle", seats=10, wheelchair_spaces=1, speed_kmh=16.0, autonomous=True
)

VEHICLE_TYPES: dict[str, VehicleType] = {t.name: t for t in (CAR, VAN, SHUTTLE)}


class StopKind(StrEnum):
    PICKUP = "pickup"
    DROPOFF = "dropoff"


@dataclass(slots=True)
class Stop:
    """One planned stop: the pick-up or drop-off of one ride, with its promised window.

    ``earliest``/``latest`` bound the start of service (seconds, dispatcher clock).
    ``max_ride_s`` is the ride-time limit of the ride (checked at its drop-off).
    """

    ride_id: str
    kind: StopKind
    lat: float
    lon: float
    earliest: float
    latest: float
    seats: int
    wheelchairs: int
    service_s: float
    max_ride_s: float

    @property
    def latlon(self) -> tuple[float, float]:
        return (self.lat, self.lon)


@dataclass(slots=True)
class Onboard:
    """A passenger group in the vehicle: when it boarded and where it goes."""

    ride_id: str
    seats: int
    wheelchairs: int
    picked_up_at: float


@dataclass(slots=True)
class Vehicle:
    """A vehicle in service.

    ``position`` is where the vehicle is (or will be free) at ``position_time``; the ``plan``
    is the ordered list of stops still to serve; ``onboard`` the groups already in the vehicle.
    """

    vehicle_id: str
    vtype: VehicleType
    depot: tuple[float, float]
    shift_start: float
    shift_end: float
    position: tuple[float, float]
    position_time: float = 0.0
    plan: list[Stop] = field(default_factory=list)
    onboard: dict[str, Onboard] = field(default_factory=dict)
    zone_id: str = ""
    #: Where an idle vehicle is sent to wait for demand (rebalancing); None: stay put.
    heading: tuple[float, float] | None = None
    #: Taken out of service by a dispatcher: the shift end it had (``shift_end`` is then cut
    #: to that moment, so no new ride is inserted, re-optimised or rebalanced onto it);
    #: None while in service.
    off_duty_shift_end: float | None = None

    def __post_init__(self) -> None:
        if self.shift_end <= self.shift_start:
            raise ValueError("shift must end after it starts")

    @property
    def in_service(self) -> bool:
        return self.off_duty_shift_end is None

    @property
    def seats_onboard(self) -> int:
        return sum(o.seats for o in self.onboard.values())

    @property
    def wheelchairs_onboard(self) -> int:
        return sum(o.wheelchairs for o in self.onboard.values())

"""Ride requests and the service rules that bound waiting, riding and booking notice."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServiceRules:
    """Promises the operator makes to every rider.

    Parameters
    ----------
    max_wait_s
        Latest pick-up searched for = earliest pick-up + ``max_wait_s``.
    ride_factor, ride_offset_s
        Ride-time limit = ``ride_factor`` × direct time + ``ride_offset_s``; the direct time is
        the direct drive at the requested departure, through the zone's time-of-day speed
        periods when the dispatcher has any (a trip asked for in the peak may ride longer).
    window_before_s, window_after_s
        The promised pick-up window is ``[eta - before, eta + after]``.
    min_notice_s, max_notice_s
        Booking notice bounds (the zone may set its own; the stricter applies).
    max_party
        Largest group (seats + wheelchairs) one booking may hold.
    service_s
        Dwell time at every pick-up and drop-off (boarding, alighting).
    quote_ttl_s
        A quote can be booked during this long.
    max_walk_m
        Farthest walk to a meeting point (zones with virtual stops); beyond it, door to door.
    no_show_wait_s
        How long a driver waits at the pick-up before a no-show is accepted: counted from the
        pick-up window's opening, or from the vehicle's arrival if it came later.
    no_show_max_distance_m
        A no-show is accepted only from a vehicle whose last position is this close to the
        pick-up point (GPS noise, a driver waiting across the street).
    """

    max_wait_s: float = 20 * 60
    ride_factor: float = 1.5
    ride_offset_s: float = 5 * 60
    window_before_s: float = 0.0
    window_after_s: float = 10 * 60
    min_notice_s: float = 0.0
    max_notice_s: float = 7 * 24 * 3600
    max_party: int = 6
    service_s: float = 30.0
    quote_ttl_s: float = 120.0
    max_walk_m: float = 400.0
    no_show_wait_s: float = 120.0
    no_show_max_distance_m: float = 100.0

    def max_ride_s(self, direct_s: float) -> float:
        """Longest ride allowed for a trip whose direct drive takes ``direct_s``."""
        return self.ride_factor * direct_s + self.ride_offset_s


@dataclass(frozen=True, slots=True)
class RideRequest:
    """What a rider asks for.

    Give either ``earliest_pickup`` (leave at/after) or ``latest_arrival`` (arrive by); if both
    are missing the rider wants to leave as soon as possible (``requested_at``).
    """

    origin: tuple[float, float]
    destination: tuple[float, float]
    requested_at: float
    earliest_pickup: float | None = None
    latest_arrival: float | None = None
    seats: int = 1
    wheelchairs: int = 0
    user_id: str = ""
    request_id: str = ""

    @property
    def departure(self) -> float:
        """Earliest pick-up the rider asked for (``requested_at`` when leaving now)."""
        return self.earliest_pickup if self.earliest_pickup is not None else self.requested_at

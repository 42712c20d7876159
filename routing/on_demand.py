"""On-demand legs in the planner: what the router needs from a fleet, and what it gets back.

The router never imports the dispatcher. It asks an :class:`OnDemandProvider` (the app wires
one to the live dispatcher, in process or through a zone's owner) which zone serves a place,
which stops of the timetable lie in that zone, and for **quotes** of concrete rides: "from here
to that stop, leaving at 08:05" or "from that stop to the destination, picked up after the
bus arrives at 08:41". Each answer is an :class:`OnDemandOffer` (a real pick-up window and
arrival from the fleet's plans, with the quote id that books it) or an
:class:`OnDemandRefusal` (why not: outside the zone, outside service hours, notice too short,
no vehicle). Offers become the access, egress or direct legs of itineraries; refusals are
reported with the plan so a rider learns why no on-demand option appears.

Times are seconds of the query's service day (the timetable's frame, as everywhere in the
router); the provider converts them to its own clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

LatLon = tuple[float, float]

TRANSFER_BUFFER_S = 180
"""Slack between a van's drop-off at a stop and the bus it feeds (and between a bus's arrival
and the van's earliest pick-up): walking to the pole, a van a minute late. DRT operators who
guarantee connections plan 3-5 minutes."""

MAX_CANDIDATE_STOPS = 6
"""Stops of the zone quoted as access or egress of one query: enough to find the hub and the
stop on the fastest line, few enough that quoting stays within milliseconds per query."""


@dataclass(frozen=True)
class OnDemandRequest:
    """One ride to quote.

    Give ``depart_at`` (earliest pick-up) or ``arrive_by`` (latest drop-off); both are
    service-day seconds.
    """

    origin: LatLon
    destination: LatLon
    depart_at: int | None = None
    arrive_by: int | None = None
    seats: int = 1
    wheelchairs: int = 0


@dataclass(frozen=True)
class BookingInfo:
    """How to book the leg (OpenTripPlanner's ``pickupBookingInfo``; GTFS-Flex booking_rules)."""

    min_notice_s: float = 0.0
    max_notice_s: float | None = None
    latest_booking: int | None = None  # service-day seconds: book before this
    message: str = ""
    phone: str = ""
    url: str = ""


@dataclass(frozen=True)
class OnDemandOffer:
    """A ride the fleet can really give, valid (bookable) until ``expires_at``."""

    request: OnDemandRequest
    pickup: LatLon  # may differ from the request's origin (a meeting point)
    dropoff: LatLon
    pickup_window: tuple[int, int]  # service-day seconds
    pickup_eta: int
    dropoff_eta: int
    latest_arrival: int
    zone_id: str
    zone_name: str
    vehicle_type: str
    vehicle_id: str
    quote_id: str
    ride_id: str  # the id the ride gets when the quote is booked
    expires_at: int  # service-day seconds
    booking: BookingInfo = field(default_factory=BookingInfo)
    distance_m: float = 0.0
    co2_g: int = 0  # per passenger
    fare: dict[str, object] | None = None
    geometry: tuple[LatLon, ...] = ()

    @property
    def ride_s(self) -> int:
        return self.dropoff_eta - self.pickup_eta


@dataclass(frozen=True)
class OnDemandRefusal:
    """Why the fleet cannot give ``request`` (machine code and readable message)."""

    request: OnDemandRequest | None
    reason: str
    message: str
    role: str = ""  # "access" | "egress" | "direct" (set by the planner)


OnDemandAnswer = OnDemandOffer | OnDemandRefusal


class OnDemandProvider(Protocol):
    """What the planner needs from an on-demand fleet (the app implements it)."""

    def zone_at(self, lat: float, lon: float) -> str | None:
        """The id of a zone serving ``(lat, lon)``, or None."""
        ...

    def stops_in_zone(self, zone_id: str) -> npt.NDArray[np.int32]:
        """Indices of the timetable's stops inside ``zone_id``."""
        ...

    def hub_stops(self, zone_id: str) -> frozenset[int]:
        """Stops the operator marks as the zone's hubs (preferred transfer points)."""
        ...

    def estimate_s(self, origin: LatLon, destination: LatLon) -> float | None:
        """The direct drive between two points of one zone (no wait), or None when no zone
        serves both: a lower bound of a ride, for the search before rides are quoted."""
        ...

    def quote(self, day: dt.date, requests: Sequence[OnDemandRequest]) -> list[OnDemandAnswer]:
        """One answer per request, in order (``day`` is the query's service date)."""
        ...


def candidate_stops(
    origin: LatLon,
    in_zone: npt.NDArray[np.int32],
    stop_lat: npt.NDArray[np.float64],
    stop_lon: npt.NDArray[np.float64],
    served: npt.NDArray[np.int32],
    hubs: frozenset[int] = frozenset(),
    k: int = MAX_CANDIDATE_STOPS,
) -> npt.NDArray[np.int32]:
    """The zone's stops worth quoting from (or to) ``origin``: the hubs, then the best served
    (most patterns: the lines that go places), then the nearest, ``k`` at most.

    ``served`` is the number of patterns calling at every stop; stops no pattern serves are
    never candidates.
    """
    if in_zone.size == 0:
        return in_zone
    idx = in_zone[served[in_zone] > 0]
    if idx.size == 0:
        return idx.astype(np.int32)
    # Equirectangular distance is enough to rank stops inside one zone.
    coslat = np.cos(np.radians(origin[0]))
    d = np.hypot((stop_lat[idx] - origin[0]), (stop_lon[idx] - origin[1]) * coslat)
    chosen: list[int] = [int(s) for s in idx if int(s) in hubs][:k]
    by_service = idx[np.lexsort((d, -served[idx]))]
    by_distance = idx[np.argsort(d, kind="stable")]
    # Alternate "best served" and "nearest" so both kinds of stop are offered.
    for a, b in zip(by_service, by_distance, strict=True):
        for s in (int(a), int(b)):
            if len(chosen) >= k:
                break
            if s not in chosen:
                chosen.append(s)
    return np.array(chosen[:k], dtype=np.int32)

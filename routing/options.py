"""Options of a transit query (OTP-like), validated once at the edge."""

from __future__ import annotations

from dataclasses import dataclass

# GTFS route_type (basic and the extended families) → OTP mode name.
_BASIC_MODES = {
    0: "TRAM",
    1: "SUBWAY",
    2: "RAIL",
    3: "BUS",
    4: "FERRY",
    5: "CABLE_CAR",
    6: "GONDOLA",
    7: "FUNICULAR",
    11: "TROLLEYBUS",
    12: "MONORAIL",
}
_EXTENDED = [
    (100, 200, "RAIL"),
    (200, 300, "COACH"),
    (400, 500, "SUBWAY"),
    (700, 800, "BUS"),
    (800, 900, "TROLLEYBUS"),
    (900, 1000, "TRAM"),
    (1000, 1100, "FERRY"),
    (1300, 1400, "GONDOLA"),
    (1400, 1500, "FUNICULAR"),
]
TRANSIT_MODES = frozenset({*_BASIC_MODES.values(), "COACH"})


def route_type_mode(route_type: int) -> str:
    """OTP mode name of a GTFS ``route_type`` (basic or extended)."""
    if route_type in _BASIC_MODES:
        return _BASIC_MODES[route_type]
    for lo, hi, name in _EXTENDED:
        if lo <= route_type < hi:
            return name
    return "BUS"


@dataclass(frozen=True)
class RoutingOptions:
    """What a traveller allows.

    Attributes
    ----------
    max_transfers
        Most changes of vehicle (rides = transfers + 1).
    min_transfer_s
        Slack between arriving at a stop and boarding there (on top of the feed's own
        minimum change times).
    walk_speed_mps
        Walking speed for access, egress and direct walks.
    max_walk_m
        Longest single walk (access, egress or footpath), metres.
    wheelchair
        Only trips marked accessible (``wheelchair_accessible == 1``) and stops not marked
        inaccessible (``wheelchair_boarding != 2``).
    modes
        OTP transit modes allowed (``BUS``, ``RAIL``, ...); ``None`` means all.
    num_itineraries
        Most itineraries returned.
    search_window_s
        Departure window of range queries (and of the "next departures" alternatives).
    optimize_co2
        CO2 per passenger (:mod:`routing.co2`) as a fourth McRAPTOR criterion: slower but
        cleaner itineraries are kept too, the cleanest one always.
    on_demand
        Also on-demand rides (OTP's ``FLEX`` mode) as access, egress or direct legs, quoted
        from the live fleet (:mod:`routing.intermodal`); needs a provider at query time.
    healthier_s
        The "healthier" preference: up to this many seconds (0..1800) later than the fastest
        arrival (earlier than the latest departure with ``arrive_by``) are accepted for more
        walking, e.g. getting off one stop earlier (:meth:`routing.planner.Planner.plan`).
    max_travel_s
        Longest journey from leaving to arriving, seconds (0: no limit). The searches prune
        with it (an arrival later than the departure plus this cannot count).
    transfer_factor
        Multiplier (1..5) of the feed's minimum change times at a stop (transfers.txt
        ``from == to``), for travellers who change slowly; ``min_transfer_s`` stays a floor.
    transfer_extra_s
        Seconds added to every change of vehicle, at one stop or after a footpath (0..1800).
    bikes
        Only trips that take bikes (GTFS ``bikes_allowed == 1``).
    station_match
        A stop given as origin or destination stands for its whole station: its parent station
        and every platform of it (a station given stands for its platforms in any case).
    min_journeys
        The departure window of a range query widens (doubling, up to 6 hours) until it holds
        at least this many journeys (0: the window as given).
    via
        Stops the journey must pass, in order, each with the least time to stay there
        (``(stop index, seconds)``); depart-at queries only.
    """

    max_transfers: int = 5
    min_transfer_s: int = 0
    walk_speed_mps: float = 1.2
    max_walk_m: float = 1000.0
    wheelchair: bool = False
    modes: frozenset[str] | None = None
    num_itineraries: int = 3
    search_window_s: int = 3600
    optimize_co2: bool = False
    on_demand: bool = False
    healthier_s: int = 0
    max_travel_s: int = 0
    transfer_factor: float = 1.0
    transfer_extra_s: int = 0
    bikes: bool = False
    station_match: bool = False
    min_journeys: int = 0
    via: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.max_transfers <= 15:
            raise ValueError("max_transfers must be between 0 and 15")
        if not 0 <= self.min_transfer_s <= 3600:
            raise ValueError("min_transfer_s must be between 0 and 3600 seconds")
        if not 0.1 <= self.walk_speed_mps <= 5.0:
            raise ValueError("walk_speed_mps must be between 0.1 and 5 m/s")
        if not 0 <= self.max_walk_m <= 20_000:
            raise ValueError("max_walk_m must be between 0 and 20000 metres")
        if not 1 <= self.num_itineraries <= 20:
            raise ValueError("num_itineraries must be between 1 and 20")
        if not 0 <= self.search_window_s <= 6 * 3600:
            raise ValueError("search_window_s must be between 0 and 6 hours")
        if not 0 <= self.healthier_s <= 1800:
            raise ValueError("healthier_s must be between 0 and 1800 seconds")
        if not 0 <= self.max_travel_s <= 2 * 86_400:
            raise ValueError("max_travel_s must be between 0 and 172800 seconds")
        if not 1.0 <= self.transfer_factor <= 5.0:
            raise ValueError("transfer_factor must be between 1 and 5")
        if not 0 <= self.transfer_extra_s <= 1800:
            raise ValueError("transfer_extra_s must be between 0 and 1800 seconds")
        if not 0 <= self.min_journeys <= 20:
            raise ValueError("min_journeys must be between 0 and 20")
        if len(self.via) > 3:
            raise ValueError("at most 3 via stops")
        for stop, stay in self.via:
            if stop < 0:
                raise ValueError("via stop index must not be negative")
            if not 0 <= stay <= 6 * 3600:
                raise ValueError("via stay must be between 0 and 6 hours")
        if self.modes is not None:
            bad = set(self.modes) - TRANSIT_MODES
            if bad:
                raise ValueError(f"unknown transit modes: {', '.join(sorted(bad))}")

    @property
    def max_rides(self) -> int:
        return self.max_transfers + 1

    @property
    def max_walk_s(self) -> int:
        """The longest walk in seconds at this walking speed."""
        return int(self.max_walk_m / self.walk_speed_mps)

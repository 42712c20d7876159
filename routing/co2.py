"""CO2 of riding: grams per passenger-kilometre by mode, and the per-pattern cumulative grams.

The planner takes its factors as data (:class:`Co2Factors`): the app passes the city's
(``app.emissions.factors``, Japan's MLIT / Ministry of the Environment figures by default), so
``routing`` never reads a file or imports ``app``. :data:`DESNZ_2023` is only the library's
fallback for callers that pass none (benchmarks, unit tests).

The fallback factors are the UK Government's greenhouse-gas conversion factors for company reporting
(DESNZ, 2023, "passenger vehicles / business travel - land and sea", kg CO2e per passenger-km,
rounded to grams): average local bus 102, coach 27, national rail 35, light rail and tram 29,
London Underground 28, ferry foot passenger 19. Modes the table does not list take the nearest
kind (trolleybus, monorail, cable car, gondola and funicular are electric like a tram). They are
fleet averages at average occupancy: good for comparing itineraries, not for one vehicle.

A ride's distance is the sum of straight-line hops between the pattern's consecutive stops
(the same for every trip of a pattern, so a ride from position ``b`` to ``a`` emits
``cum[a] - cum[b]``; McRAPTOR relies on this).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from gtfs.compiled import CompiledTimetable
from gtfs.geo import haversine_m
from routing.options import route_type_mode

GRAMS_PER_PKM: dict[str, float] = {
    "BUS": 102.0,
    "COACH": 27.0,
    "RAIL": 35.0,
    "SUBWAY": 28.0,
    "TRAM": 29.0,
    "TROLLEYBUS": 29.0,
    "MONORAIL": 29.0,
    "CABLE_CAR": 29.0,
    "GONDOLA": 29.0,
    "FUNICULAR": 29.0,
    "FERRY": 19.0,
}
"""Grams CO2e per passenger-km by OTP transit mode (DESNZ 2023; see the module docstring)."""


@dataclass(frozen=True)
class Co2Factors:
    """The CO2 factors a planner prices itineraries with (plain data, no provenance).

    Parameters
    ----------
    transit_g_per_pkm
        Grams of CO2 per passenger-km by OTP transit mode (``BUS``, ``RAIL``...): every mode
        of :data:`GRAMS_PER_PKM` must be present (a ``ValueError`` otherwise).
    car_g_per_pkm
        Grams per km of the same trip by private car (the itinerary's ``carCo2``); None: no
        car comparison.
    road_circuity
        Road distance over straight-line distance, for the car trip's door-to-door distance.
    vehicle_g_per_km
        Grams per vehicle-km of each on-demand vehicle type (``van``, ``car``...).
    default_vehicle_g_per_km
        Grams per vehicle-km of a vehicle type missing from ``vehicle_g_per_km``.
    on_demand_riders
        Persons expected on board to share a quoted on-demand leg (the quote cannot know who
        will ride; the emissions ledger shares the recorded kilometres among those on board).
    label
        Where the factors come from, for logs.
    """

    transit_g_per_pkm: Mapping[str, float]
    car_g_per_pkm: float | None = None
    road_circuity: float = 1.3
    vehicle_g_per_km: Mapping[str, float] = field(default_factory=dict)
    default_vehicle_g_per_km: float = 0.0
    on_demand_riders: float = 1.5
    label: str = ""

    def __post_init__(self) -> None:
        missing = set(GRAMS_PER_PKM) - set(self.transit_g_per_pkm)
        if missing:
            raise ValueError(f"CO2 factors lack transit modes: {sorted(missing)}")
        if self.road_circuity < 1.0:
            raise ValueError("road_circuity is at least 1 (roads are never shorter)")
        if self.on_demand_riders <= 0:
            raise ValueError("on_demand_riders must be positive")

    def grams_per_pkm(self, route_type: int) -> float:
        """The factor of a GTFS ``route_type`` (basic or extended)."""
        return float(self.transit_g_per_pkm[route_type_mode(route_type)])

    def vehicle_grams_per_km(self, vehicle_type: str) -> float:
        """Grams per vehicle-km of an on-demand vehicle type."""
        return float(self.vehicle_g_per_km.get(vehicle_type, self.default_vehicle_g_per_km))

    def car_distance_m(self, a: tuple[float, float], b: tuple[float, float]) -> float:
        """Door-to-door road distance between two ``(lat, lon)`` points (straight line x
        ``road_circuity``)."""
        lat1, lon1, lat2, lon2 = (np.array([x], dtype=np.float64) for x in (*a, *b))
        straight = float(haversine_m(lat1, lon1, lat2, lon2)[0])
        return straight * self.road_circuity

    def car_grams(self, distance_m: float) -> int | None:
        """Grams of driving ``distance_m`` alone by private car (None without a car factor)."""
        if self.car_g_per_pkm is None:
            return None
        return round(self.car_g_per_pkm * distance_m / 1000.0)


DESNZ_2023 = Co2Factors(
    transit_g_per_pkm=GRAMS_PER_PKM,
    vehicle_g_per_km={"van": 194.0, "car": 130.0, "autonomous_shuttle": 90.0},
    default_vehicle_g_per_km=194.0,
    on_demand_riders=1.5,
    label="UK DESNZ 2023 (library fallback)",
)
"""The library's fallback: DESNZ transit factors; on-demand vans from a diesel van's 7.5 L/100 km
x 2.58 kg/L, no car comparison. The app always passes the city's factors instead."""


def grams_per_pkm(route_type: int) -> float:
    """The fallback factor (:data:`GRAMS_PER_PKM`) of a GTFS ``route_type``."""
    return GRAMS_PER_PKM[route_type_mode(route_type)]


def pattern_co2_cumulative(
    tt: CompiledTimetable, factors: Co2Factors | None = None
) -> npt.NDArray[np.int32]:
    """[len(pattern_stops)] grams emitted from each pattern's first stop to each position.

    Hops touching a stop without coordinates count as zero distance. ``factors``:
    :data:`DESNZ_2023` when None.
    """
    factors = factors or DESNZ_2023
    ps = tt.pattern_stops.astype(np.int64)
    n = ps.shape[0]
    out = np.zeros(n, dtype=np.int32)
    if n == 0:
        return out
    lat, lon = tt.stop_lat[ps], tt.stop_lon[ps]
    hop = np.zeros(n, dtype=np.float64)
    ok = ~(np.isnan(lat[1:]) | np.isnan(lon[1:]) | np.isnan(lat[:-1]) | np.isnan(lon[:-1]))
    idx = np.flatnonzero(ok)
    hop[idx + 1] = haversine_m(lat[idx], lon[idx], lat[idx + 1], lon[idx + 1])
    ptr = tt.pattern_stop_ptr.astype(np.int64)
    lengths = np.diff(ptr)
    pattern_of = np.repeat(np.arange(lengths.shape[0]), lengths)
    factor = np.array([factors.grams_per_pkm(int(t)) for t in tt.route_types], dtype=np.float64)
    grams = hop / 1000.0 * factor[tt.pattern_route[pattern_of]]
    # No hop into a pattern's first stop: the running sum restarts at every pattern.
    firsts = ptr[:-1][lengths > 0]
    grams[firsts] = 0.0
    cum = np.cumsum(grams)
    return np.rint(cum - cum[ptr[:-1][pattern_of]]).astype(np.int32)


def ride_grams(cum: npt.NDArray[np.int32], pattern_start: int, board: int, alight: int) -> int:
    """Grams of a ride from pattern position ``board`` to ``alight`` (``cum`` as above)."""
    return int(cum[pattern_start + alight]) - int(cum[pattern_start + board])

"""CO2 of riding: grams per passenger-kilometre by mode, and the per-pattern cumulative grams.

The factors are the UK Government's greenhouse-gas conversion factors for company reporting
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


def grams_per_pkm(route_type: int) -> float:
    """The factor of a GTFS ``route_type`` (basic or extended)."""
    return GRAMS_PER_PKM[route_type_mode(route_type)]


def pattern_co2_cumulative(tt: CompiledTimetable) -> npt.NDArray[np.int32]:
    """[len(pattern_stops)] grams emitted from each pattern's first stop to each position.

    Hops touching a stop without coordinates count as zero distance.
    """
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
    factor = np.array([grams_per_pkm(int(t)) for t in tt.route_types], dtype=np.float64)
    grams = hop / 1000.0 * factor[tt.pattern_route[pattern_of]]
    # No hop into a pattern's first stop: the running sum restarts at every pattern.
    firsts = ptr[:-1][lengths > 0]
    grams[firsts] = 0.0
    cum = np.cumsum(grams)
    return np.rint(cum - cum[ptr[:-1][pattern_of]]).astype(np.int32)


def ride_grams(cum: npt.NDArray[np.int32], pattern_start: int, board: int, alight: int) -> int:
    """Grams of a ride from pattern position ``board`` to ``alight`` (``cum`` as above)."""
    return int(cum[pattern_start + alight]) - int(cum[pattern_start + board])

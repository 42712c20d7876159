"""The RAPTOR family over plain arrays (numba): earliest arrival, arrive-by, range, McRAPTOR.

The core depends only on numpy/numba; :mod:`routing.transit` adapts a compiled timetable.
"""

from routing.raptor.journey import Journey, Leg, RideLeg, WalkLeg
from routing.raptor.mcraptor import mc_raptor
from routing.raptor.network import RaptorNetwork
from routing.raptor.search import (
    QueryArrays,
    SearchResult,
    SearchState,
    earliest_arrival,
    latest_departure,
    pareto_filter,
    range_query,
    via_earliest_arrival,
)

__all__ = [
    "Journey",
    "Leg",
    "QueryArrays",
    "RaptorNetwork",
    "RideLeg",
    "SearchResult",
    "SearchState",
    "WalkLeg",
    "earliest_arrival",
    "latest_departure",
    "mc_raptor",
    "pareto_filter",
    "range_query",
    "via_earliest_arrival",
]

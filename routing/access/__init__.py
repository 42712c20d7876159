"""Accessibility analysis over the RAPTOR core: isochrones, cell-to-destination travel times
and population shares, as medians over a departure window (R5's rule), batched in numba.

The core never imports the app: on-demand service enters through
:class:`routing.on_demand.OnDemandProvider`.
"""

from routing.access.analysis import (
    CellTimes,
    KindShare,
    cell_times,
    isochrone,
    population_share,
)
from routing.access.engine import UNREACHED, AccessEngine, OnDemand, departure_times
from routing.access.places import (
    Destinations,
    Population,
    area_cells,
    decode_mesh,
    read_destinations,
    read_hospitals,
    read_population,
)

__all__ = [
    "UNREACHED",
    "AccessEngine",
    "CellTimes",
    "Destinations",
    "KindShare",
    "OnDemand",
    "Population",
    "area_cells",
    "cell_times",
    "decode_mesh",
    "departure_times",
    "isochrone",
    "population_share",
    "read_destinations",
    "read_hospitals",
    "read_population",
]

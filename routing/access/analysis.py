"""Planner-facing figures built on :class:`routing.access.engine.AccessEngine`.

* :func:`isochrone` — median travel time from one point to every H3 cell around the network;
* :func:`cell_times` — median time from every H3 cell of the network's area to each
  destination;
* :func:`population_share` — the share of residents (census mesh) within N minutes of the
  nearest destination of each kind (nearest chosen per departure, then the median).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from routing.access.engine import UNREACHED, AccessEngine, OnDemand
from routing.access.places import Destinations, Population, area_cells

I32 = npt.NDArray[np.int32]


def _radius_m(engine: AccessEngine) -> float:
    return engine.max_walk_s * engine.speed / engine.detour


def isochrone(
    engine: AccessEngine,
    lat: float,
    lon: float,
    departures: I32,
    resolution: int = 9,
    max_minutes: int = 60,
    on_demand: OnDemand | None = None,
    on_demand_radius_m: float = 5000.0,
) -> dict[str, float]:
    """``{cell: median minutes}`` of the H3 cells reached within ``max_minutes``.

    Cells considered: those within walking reach of a stop or of the origin and, with
    ``on_demand``, those within ``on_demand_radius_m`` of a stop inside a zone (the provider
    tells whether a point is in a zone, not the zone's outline).
    """
    cells, c_lat, c_lon = area_cells(
        np.r_[engine.stop_lat, lat], np.r_[engine.stop_lon, lon], resolution, _radius_m(engine)
    )
    if on_demand is not None:
        p = on_demand.provider
        zs = [
            i
            for i, (a, b) in enumerate(zip(engine.stop_lat, engine.stop_lon, strict=True))
            if p.zone_at(float(a), float(b)) is not None
        ]
        if zs:
            more, m_lat, m_lon = area_cells(
                engine.stop_lat[zs], engine.stop_lon[zs], resolution, on_demand_radius_m
            )
            new = [i for i, c in enumerate(more) if c not in set(cells)]
            cells = cells + [more[i] for i in new]
            c_lat = np.r_[c_lat, m_lat[new]]
            c_lon = np.r_[c_lon, m_lon[new]]
    secs = engine.travel_times(
        np.array([lat]), np.array([lon]), c_lat, c_lon, None, departures, on_demand
    )[0]
    ok = (secs != UNREACHED) & (secs <= max_minutes * 60)
    return {c: round(float(s) / 60.0, 2) for c, s, k in zip(cells, secs, ok, strict=True) if k}


@dataclass(frozen=True)
class CellTimes:
    """Median seconds from each H3 cell (rows) to each destination (columns), -1 unreached."""

    cells: list[str]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    destinations: Destinations
    seconds: I32

    def nearest_minutes(self, kind: str | None = None) -> npt.NDArray[np.float64]:
        """Minutes to the nearest destination (of ``kind``) per cell; NaN when none is reached."""
        cols = [i for i, k in enumerate(self.destinations.kind) if kind is None or k == kind]
        s = self.seconds[:, cols].astype(np.float64)
        s[s < 0] = np.inf
        best = s.min(axis=1) if cols else np.full(len(self.cells), np.inf)
        return np.where(np.isfinite(best), best / 60.0, np.nan)


def cell_times(
    engine: AccessEngine,
    destinations: Destinations,
    departures: I32,
    resolution: int = 9,
    on_demand: OnDemand | None = None,
) -> CellTimes:
    """Median time from every H3 cell of the network's area to each destination."""
    cells, c_lat, c_lon = area_cells(
        engine.stop_lat, engine.stop_lon, resolution, _radius_m(engine)
    )
    secs = engine.travel_times(
        c_lat, c_lon, destinations.lat, destinations.lon, None, departures, on_demand
    )
    return CellTimes(cells, c_lat, c_lon, destinations, secs)


@dataclass(frozen=True)
class KindShare:
    """Residents within ``minutes`` of the nearest destination of one kind."""

    kind: str
    minutes: int
    residents: int
    reached: int
    cell_minutes: npt.NDArray[np.float64]  # per populated mesh cell, NaN unreached

    @property
    def share(self) -> float:
        return self.reached / self.residents if self.residents else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "minutes": self.minutes,
            "residents": self.residents,
            "reached": self.reached,
            "share": round(self.share, 4),
        }


def population_share(
    engine: AccessEngine,
    population: Population,
    destinations: Destinations,
    departures: I32,
    minutes: int = 30,
    on_demand: OnDemand | None = None,
) -> list[KindShare]:
    """Per destination kind, the residents (mesh cell centres) whose median time to the
    nearest destination of that kind is at most ``minutes``."""
    if not 1 <= minutes <= 240:
        raise ValueError("minutes must be within 1..240")
    live = population.people > 0
    lat = population.cells.centre_lat[live]
    lon = population.cells.centre_lon[live]
    people = population.people[live]
    kinds = destinations.kinds()
    group = np.array([kinds.index(k) for k in destinations.kind], dtype=np.int64)
    secs = engine.travel_times(
        lat, lon, destinations.lat, destinations.lon, group, departures, on_demand
    )
    out = []
    for g, kind in enumerate(kinds):
        s = secs[:, g]
        ok = (s != UNREACHED) & (s <= minutes * 60)
        mins = np.where(s == UNREACHED, np.nan, s / 60.0)
        out.append(KindShare(kind, minutes, int(people.sum()), int(people[ok].sum()), mins))
    return out

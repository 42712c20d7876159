"""Virtual stops: the meeting points riders walk to, so vehicles avoid door-to-door detours.

Points come from an operator list, or are laid out over a zone on its H3 cells; with a street
graph they are snapped onto the nearest street node (a vehicle can stop there). Lookup is a
KD-tree on Earth-centred coordinates (:func:`gtfs.geo.project_local_m`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import h3
import numpy as np
from scipy.spatial import cKDTree

from dispatch.zone import ServiceZone
from gtfs.geo import project_local_m


@dataclass(frozen=True, slots=True)
class MeetingPoint:
    point_id: str
    lat: float
    lon: float
    name: str = ""


class MeetingPoints:
    """A set of meeting points with nearest-point lookup."""

    def __init__(self, points: list[MeetingPoint]) -> None:
        if not points:
            raise ValueError("a meeting-point set needs at least one point")
        self.points = list(points)
        lat = np.array([p.lat for p in points], dtype=np.float64)
        lon = np.array([p.lon for p in points], dtype=np.float64)
        self._tree = cKDTree(project_local_m(lat, lon))

    def nearest(
        self, lat: float, lon: float, max_walk_m: float
    ) -> tuple[MeetingPoint, float] | None:
        """The closest point within ``max_walk_m`` (straight line) and its distance, or None."""
        xyz = project_local_m(np.array([lat]), np.array([lon]))
        dist, idx = self._tree.query(xyz[0], distance_upper_bound=max_walk_m)
        if not np.isfinite(dist):
            return None
        return self.points[int(idx)], float(dist)

    @classmethod
    def over_zone(cls, zone: ServiceZone, resolution: int = 8) -> MeetingPoints:
        """One point at the centre of every H3 cell (``resolution`` 8: ~460 m apart) whose
        centre lies in the zone."""
        cells = {h3.cell_to_parent(c, resolution) for c in zone.cells}
        pts = []
        for c in sorted(cells):
            lat, lon = h3.cell_to_latlng(c)
            if zone.contains(lat, lon):
                pts.append(MeetingPoint(str(c), float(lat), float(lon)))
        return cls(pts)

    def snapped(self, graph: Any) -> MeetingPoints:
        """The same points moved onto the nearest node of a ``routing.street`` graph."""
        from routing.street import snap

        lat = np.array([p.lat for p in self.points])
        lon = np.array([p.lon for p in self.points])
        idx, _ = snap(graph, lat, lon)
        return MeetingPoints(
            [
                MeetingPoint(p.point_id, float(graph.lat[i]), float(graph.lon[i]), p.name)
                for p, i in zip(self.points, idx, strict=True)
            ]
        )

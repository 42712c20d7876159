"""Service zones: where and when on-demand rides are offered.

A zone is a polygon (GTFS-Flex ``locations.geojson`` or drawn by an operator as GeoJSON) with
service hours and booking notice. Membership is answered from H3 cells: a point in an interior
cell is inside at once; only points in border cells need the exact point-in-polygon test. The
same cells key the demand statistics used to rebalance idle vehicles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import h3
import numpy as np

H3_RESOLUTION = 9  # ~175 m edges: fine enough for a neighbourhood, coarse enough to count
#: Largest zone accepted (the outer rings' area, holes not deducted): ~190 000 cells of
#: resolution 9. A zone drawn over a continent or the whole world would exhaust memory
#: filling it with cells (MemoryError in H3's polyfill).
MAX_ZONE_AREA_KM2 = 20_000.0
_EARTH_RADIUS_KM = 6371.0088


def ring_area_km2(ring: list[tuple[float, float]]) -> float:
    """Area of a ring of ``(lon, lat)`` degrees on the sphere (Chamberlain & Duquette, as in
    Turf's ``area``). Longitude steps are taken as given, never wrapped: a ring spanning 360
    degrees of longitude is the whole band, so the bound errs on the side of refusing."""
    total = 0.0
    n = len(ring)
    for i in range(n):
        lon1, lat1 = ring[i]
        lon2, lat2 = ring[(i + 1) % n]
        total += math.radians(lon2 - lon1) * (
            2.0 + math.sin(math.radians(lat1)) + math.sin(math.radians(lat2))
        )
    return abs(total) * _EARTH_RADIUS_KM**2 / 2.0


def _ring_contains(ring: np.ndarray, lat: float, lon: float) -> bool:
    """Even-odd ray casting on one ring of (lon, lat) vertices."""
    x = ring[:, 0]
    y = ring[:, 1]
    x2 = np.roll(x, -1)
    y2 = np.roll(y, -1)
    crosses = (y > lat) != (y2 > lat)
    with np.errstate(divide="ignore", invalid="ignore"):
        xint = x + (lat - y) * (x2 - x) / (y2 - y)
    return bool(np.count_nonzero(crosses & (lon < xint)) % 2 == 1)


@dataclass
class ServiceZone:
    """An on-demand service area.

    Parameters
    ----------
    zone_id
        Stable identifier (the GTFS-Flex location id for imported zones).
    polygons
        Each polygon is a list of rings (outer first, then holes) of ``(lon, lat)`` pairs,
        GeoJSON order.
    service_hours
        ``(start_s, end_s)`` windows, seconds after local midnight (may pass 24:00).
    min_notice_s, max_notice_s
        Booking notice (GTFS-Flex ``prior_notice_duration_min/max``).
    utc_offset_s
        Local time = dispatcher clock + offset, for the service-hours test.
    """

    zone_id: str
    name: str
    polygons: list[list[list[tuple[float, float]]]]
    service_hours: list[tuple[float, float]] = field(default_factory=lambda: [(0.0, 86400.0)])
    min_notice_s: float = 0.0
    max_notice_s: float = 7 * 24 * 3600
    utc_offset_s: float = 0.0
    #: Virtual stops (``dispatch.meeting_points.MeetingPoints``); None: door to door.
    meeting_points: Any = None
    cells: frozenset[str] = field(init=False)
    interior_cells: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        if not self.polygons or any(len(p) == 0 or len(p[0]) < 3 for p in self.polygons):
            raise ValueError(f"zone {self.zone_id}: a polygon needs at least 3 vertices")
        area = sum(ring_area_km2(p[0]) for p in self.polygons)
        if not area <= MAX_ZONE_AREA_KM2:  # NaN too
            raise ValueError(
                f"zone {self.zone_id}: area {area:,.0f} km2 exceeds the limit of "
                f"{MAX_ZONE_AREA_KM2:,.0f} km2"
            )
        self._rings = [[np.asarray(r, dtype=np.float64) for r in poly] for poly in self.polygons]
        cells: set[str] = set()
        for poly in self.polygons:
            outer = [(lat, lon) for lon, lat in poly[0]]
            holes = [[(lat, lon) for lon, lat in ring] for ring in poly[1:]]
            cells |= set(h3.polygon_to_cells(h3.LatLngPoly(outer, *holes), H3_RESOLUTION))
            # Thin polygons may hold no cell centre: keep the vertices' cells so the zone counts.
            cells |= {h3.latlng_to_cell(lat, lon, H3_RESOLUTION) for lat, lon in outer}
        self.cells = frozenset(cells)
        # A cell whose whole ring of neighbours is in the zone cannot touch the border.
        self.interior_cells = frozenset(
            c for c in cells if all(n in cells for n in h3.grid_disk(c, 1))
        )

    # --- constructors -------------------------------------------------------------------------
    @classmethod
    def from_geojson(
        cls, zone_id: str, geometry: dict[str, Any], name: str = "", **kw: Any
    ) -> ServiceZone:
        """A zone from a GeoJSON ``Polygon`` or ``MultiPolygon`` geometry."""
        gtype = geometry.get("type")
        coords = geometry.get("coordinates")
        if gtype == "Polygon":
            polys = [coords or []]
        elif gtype == "MultiPolygon":
            polys = list(coords or [])
        else:
            raise ValueError(f"zone geometry must be Polygon or MultiPolygon, not {gtype!r}")
        try:
            polygons = [
                [[(float(p[0]), float(p[1])) for p in ring] for ring in poly] for poly in polys
            ]
        except (TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"zone {zone_id}: malformed coordinates") from exc
        return cls(zone_id=zone_id, name=name or zone_id, polygons=polygons, **kw)

    # --- queries ------------------------------------------------------------------------------
    def contains(self, lat: float, lon: float) -> bool:
        """Whether the point lies in the zone."""
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            return False
        cell = h3.latlng_to_cell(lat, lon, H3_RESOLUTION)
        if cell in self.interior_cells:
            return True
        for rings in self._rings:
            if _ring_contains(rings[0], lat, lon) and not any(
                _ring_contains(h, lat, lon) for h in rings[1:]
            ):
                return True
        return False

    def in_service(self, t: float) -> bool:
        """Whether ``t`` (dispatcher clock) falls inside the service hours."""
        local = t + self.utc_offset_s
        tod = local % 86400.0
        return any(a <= tod < b or a <= tod + 86400.0 < b for a, b in self.service_hours)

    def cell_of(self, lat: float, lon: float) -> str:
        """The H3 cell used for demand statistics."""
        return str(h3.latlng_to_cell(lat, lon, H3_RESOLUTION))

    def random_points(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` uniform points inside the zone, ``(n, 2)`` lat/lon (rejection sampling)."""
        allr = np.concatenate([r[0] for r in self._rings])
        lon0, lat0 = allr.min(axis=0)
        lon1, lat1 = allr.max(axis=0)
        out = np.empty((n, 2))
        k = 0
        while k < n:
            lat = rng.uniform(lat0, lat1)
            lon = rng.uniform(lon0, lon1)
            if self.contains(lat, lon):
                out[k] = (lat, lon)
                k += 1
        return out

    def centroid(self) -> tuple[float, float]:
        """Mean of the cell centres (a point well inside for convex-ish zones)."""
        pts = np.array([h3.cell_to_latlng(c) for c in sorted(self.cells)])
        return (float(pts[:, 0].mean()), float(pts[:, 1].mean()))

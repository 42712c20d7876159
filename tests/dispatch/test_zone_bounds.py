"""A service zone's area is bounded before it is filled with H3 cells (#10: a zone over the
whole world was a MemoryError in the polyfill)."""

from __future__ import annotations

import pytest

from dispatch.zone import MAX_ZONE_AREA_KM2, ServiceZone, ring_area_km2


def square(lon: float, lat: float, side_deg: float) -> list[tuple[float, float]]:
    return [
        (lon, lat),
        (lon + side_deg, lat),
        (lon + side_deg, lat + side_deg),
        (lon, lat + side_deg),
        (lon, lat),
    ]


def test_ring_area_matches_known_areas() -> None:
    # The whole sphere: 4 pi R^2 ~ 510 million km2.
    world = [(-180.0, -90.0), (180.0, -90.0), (180.0, 90.0), (-180.0, 90.0)]
    assert ring_area_km2(world) == pytest.approx(510.07e6, rel=1e-3)
    # One degree square at the equator: ~111.2 km x 111.2 km.
    assert ring_area_km2(square(0.0, 0.0, 1.0)) == pytest.approx(12_364, rel=1e-2)
    # Orientation does not matter.
    assert ring_area_km2(square(0.0, 0.0, 1.0)[::-1]) == ring_area_km2(square(0.0, 0.0, 1.0))


@pytest.mark.parametrize(
    "polygons",
    [
        [[square(-180.0, -90.0, 180.0)]],  # a quarter of the world
        [[square(139.0, 35.0, 2.0)]],  # ~40 000 km2: ~470 000 cells
        [[square(139.0, 35.0, 1.0)], [square(141.0, 35.0, 1.0)]],  # ~20 200 km2 together
        [[[(0.0, 0.0), (float("nan"), 1.0), (1.0, 1.0)]]],
    ],
)
def test_a_zone_over_the_limit_is_refused_before_any_cell(
    polygons: list[list[list[tuple[float, float]]]],
) -> None:
    with pytest.raises(ValueError, match="exceeds the limit"):
        ServiceZone("big", "big", polygons)


def test_a_zone_under_the_limit_is_filled() -> None:
    side = 0.9  # ~ 100 km x 75 km at 42 N
    zone = ServiceZone("county", "county", [[square(140.0, 42.0, side)]])
    assert ring_area_km2(zone.polygons[0][0]) < MAX_ZONE_AREA_KM2
    assert zone.contains(42.45, 140.45) and not zone.contains(43.5, 140.45)
    assert len(zone.cells) > 50_000

"""OSM tag rules for walking and driving."""

from __future__ import annotations

import pytest

from routing.street.osm_rules import drive_attributes, oneway_of, parse_maxspeed, walk_allowed


@pytest.mark.parametrize(
    ("value", "kmh"),
    [
        ("50", 50.0),
        ("30 mph", 30 * 1.609344),
        ("25mph", 25 * 1.609344),
        ("60 km/h", 60.0),
        ("50;30", 50.0),
        ("walk", 6.0),
        ("none", None),
        ("US:urban", None),
        ("signals", None),
        ("0", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_maxspeed(value: str | None, kmh: float | None) -> None:
    got = parse_maxspeed(value)
    if kmh is None:
        assert got is None
    else:
        assert got == pytest.approx(kmh)


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"highway": "residential"}, 0),
        ({"highway": "residential", "oneway": "yes"}, 1),
        ({"highway": "residential", "oneway": "1"}, 1),
        ({"highway": "primary", "oneway": "-1"}, -1),
        ({"highway": "primary", "oneway": "reversible"}, None),
        ({"highway": "primary", "junction": "roundabout"}, 1),
        ({"highway": "primary", "junction": "roundabout", "oneway": "no"}, 0),
        ({"highway": "motorway"}, 1),
        ({"highway": "motorway_link"}, 0),
    ],
)
def test_oneway(tags: dict[str, str], expected: int | None) -> None:
    assert oneway_of(tags) == expected


def test_drive_rules() -> None:
    assert drive_attributes({"highway": "residential"}) == (0, 30.0)
    assert drive_attributes({"highway": "primary", "maxspeed": "35 mph"}) == (
        0,
        pytest.approx(35 * 1.609344),
    )
    assert drive_attributes({"highway": "footway"}) is None
    assert drive_attributes({"highway": "service", "access": "private"}) is None
    assert drive_attributes({"highway": "service", "motor_vehicle": "no"}) is None
    # The most specific key wins: motorcar=yes overrides access=no.
    assert drive_attributes({"highway": "service", "access": "no", "motorcar": "yes"}) is not None
    assert drive_attributes({"highway": "pedestrian", "area": "yes"}) is None
    assert drive_attributes({"highway": "construction"}) is None


def test_walk_rules() -> None:
    assert walk_allowed({"highway": "footway"})
    assert walk_allowed({"highway": "residential", "sidewalk": "both"})
    assert walk_allowed({"highway": "steps"})
    assert not walk_allowed({"highway": "motorway"})
    assert not walk_allowed({"highway": "motorway_link"})
    assert not walk_allowed({"highway": "primary", "foot": "no"})
    assert not walk_allowed({"highway": "service", "access": "private"})
    assert walk_allowed({"highway": "service", "access": "private", "foot": "yes"})
    assert not walk_allowed({"highway": "proposed"})
    assert not walk_allowed({"highway": "trunk", "motorroad": "yes"})
    assert walk_allowed({"highway": "trunk", "motorroad": "yes", "foot": "designated"})
    assert not walk_allowed({"building": "yes"})

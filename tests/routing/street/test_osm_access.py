"""Walking access and egress on the real Terre Haute walking graph."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from routing.street import (
    InvalidCoordinates,
    OsmWalkAccess,
    StraightLineAccess,
    StreetGraph,
    TooFarFromNetwork,
    haversine_m,
)
from routing.street.edge_snap import edge_index

from .oracle import door_to_door as oracle_door_to_door
from .oracle import to_networkx


@pytest.fixture(scope="module")
def access(terre_haute: dict[str, StreetGraph], th_stops: pd.DataFrame) -> OsmWalkAccess:
    return OsmWalkAccess(terre_haute["walk"], th_stops["stop_lat"], th_stops["stop_lon"])


@pytest.fixture(scope="module")
def pairs(th_stops: pd.DataFrame) -> list[tuple[int, int]]:
    rng = np.random.default_rng(7)
    return [tuple(map(int, rng.choice(len(th_stops), 2, replace=False))) for _ in range(25)]


def latlon(stops: pd.DataFrame, i: int) -> tuple[float, float]:
    return float(stops["stop_lat"][i]), float(stops["stop_lon"][i])


def test_walk_is_at_least_great_circle_and_bounded(
    access: OsmWalkAccess, th_stops: pd.DataFrame, pairs: list[tuple[int, int]]
) -> None:
    ratios = []
    for i, j in pairs:
        a, b = latlon(th_stops, i), latlon(th_stops, j)
        sec, met, coords = access.walk(*a, *b)
        gc = float(haversine_m(*a, *b))
        assert met >= gc - 1e-6, "a walk is never shorter than the great circle"
        assert sec == int(np.ceil(met / 1.2 - 1e-9))
        assert coords[0] == a and coords[-1] == b
        # The polyline is the path: its length is the walked distance.
        la, lo = np.array(coords).T
        assert float(haversine_m(la[:-1], lo[:-1], la[1:], lo[1:]).sum()) == pytest.approx(
            met, rel=1e-6
        )
        if gc > 300:
            ratios.append(met / gc)
    assert np.median(ratios) < 1.6
    assert np.mean(np.array(ratios) < 2.5) > 0.9


def test_walk_is_symmetric(
    access: OsmWalkAccess, th_stops: pd.DataFrame, pairs: list[tuple[int, int]]
) -> None:
    for i, j in pairs[:8]:
        a, b = latlon(th_stops, i), latlon(th_stops, j)
        assert access.walk(*a, *b)[1] == pytest.approx(access.walk(*b, *a)[1], rel=1e-9)


def test_walk_matches_networkx(
    terre_haute: dict[str, StreetGraph],
    access: OsmWalkAccess,
    th_stops: pd.DataFrame,
    pairs: list[tuple[int, int]],
) -> None:
    g = terre_haute["walk"]
    dg = to_networkx(g, g.length_m)
    for i, j in pairs[:6]:
        a, b = latlon(th_stops, i), latlon(th_stops, j)
        o, d = edge_index(g).links(*a), edge_index(g).links(*b)
        expected = oracle_door_to_door(g, dg, g.length_m, o, d, off_weight=1.0)
        assert access.walk(*a, *b)[1] == pytest.approx(expected, rel=1e-9)


def test_nearby_stops_agree_with_walk(access: OsmWalkAccess, th_stops: pd.DataFrame) -> None:
    origin = (39.4667, -87.4139)  # downtown Terre Haute (Wabash Ave & 7th St)
    idx, sec, met = access.nearby_stops(*origin, max_seconds=900)
    assert idx.size >= 3
    assert np.all(np.diff(sec) >= 0) and np.all(sec <= 900)
    for k, i in enumerate(idx):
        s, m, _ = access.walk(*origin, *latlon(th_stops, int(i)))
        assert m == pytest.approx(met[k], rel=1e-9)
        assert s == sec[k]
    # Network walks are longer than the straight-line model's crow-fly estimate allows for
    # some stops, never shorter than the great circle.
    gc = haversine_m(
        origin[0],
        origin[1],
        th_stops["stop_lat"].to_numpy()[idx],
        th_stops["stop_lon"].to_numpy()[idx],
    )
    assert np.all(met >= gc - 1e-6)
    # Every stop reachable within the budget is found: check against single walks.
    others = np.setdiff1d(np.arange(len(th_stops)), idx)
    near = others[
        haversine_m(
            origin[0],
            origin[1],
            th_stops["stop_lat"].to_numpy()[others],
            th_stops["stop_lon"].to_numpy()[others],
        )
        < 900 * 1.2
    ]
    for i in near:
        assert access.walk(*origin, *latlon(th_stops, int(i)))[0] > 900


def test_nearby_stops_small_budgets(access: OsmWalkAccess, th_stops: pd.DataFrame) -> None:
    idx, _, _ = access.nearby_stops(*latlon(th_stops, 0), max_seconds=0)
    assert idx.size == 0
    idx, _sec, _ = access.nearby_stops(*latlon(th_stops, 0), max_seconds=300)
    assert 0 in idx.tolist()


def test_far_point_is_a_clear_error(access: OsmWalkAccess) -> None:
    with pytest.raises(TooFarFromNetwork, match="too far from the street network") as exc:
        access.nearby_stops(40.5, -87.4, 600)  # far north of the extract
    assert exc.value.code == "too_far_from_street_network"
    assert exc.value.distance_m > 50_000
    with pytest.raises(TooFarFromNetwork):
        access.walk(39.4667, -87.4139, 40.5, -87.4)


def test_bad_input(access: OsmWalkAccess, terre_haute: dict[str, StreetGraph]) -> None:
    with pytest.raises(InvalidCoordinates):
        access.nearby_stops(float("nan"), -87.4, 600)
    with pytest.raises(ValueError, match="walk_speed_mps"):
        access.walk(39.46, -87.41, 39.47, -87.41, walk_speed_mps=-1)
    with pytest.raises(ValueError, match="walking graph"):
        OsmWalkAccess(terre_haute["drive"], [39.46], [-87.41])


def test_same_interface_as_straight_line(access: OsmWalkAccess, th_stops: pd.DataFrame) -> None:
    line = StraightLineAccess(th_stops["stop_lat"], th_stops["stop_lon"])
    for model in (access, line):
        idx, sec, met = model.nearby_stops(39.4667, -87.4139, 900)
        assert idx.dtype == np.int32 and sec.dtype == np.int32 and met.dtype == np.float64


def test_cobb_county_walks(cobb: dict[str, StreetGraph]) -> None:
    g = cobb["walk"]
    rng = np.random.default_rng(11)
    pick = rng.choice(g.n_nodes, 12, replace=False)
    lat, lon = g.lat[pick] + 2e-4, g.lon[pick] - 2e-4  # ~30 m off the street
    access = OsmWalkAccess(g, lat, lon)
    for i in range(0, 12, 2):
        sec, met, coords = access.walk(lat[i], lon[i], lat[i + 1], lon[i + 1])
        assert met >= float(haversine_m(lat[i], lon[i], lat[i + 1], lon[i + 1])) - 1e-6
        assert sec == int(np.ceil(met / 1.2 - 1e-9)) and len(coords) >= 2
    idx, sec, met = access.nearby_stops(float(lat[0]), float(lon[0]), 1800)
    assert 0 in idx.tolist() and np.all(np.diff(sec) >= 0)

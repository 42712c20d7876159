"""Driving travel-time matrices and routes on the real Terre Haute and Cobb County graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from routing.street import (
    CAR,
    SHUTTLE,
    VAN,
    InvalidCoordinates,
    OsmLoadError,
    OsmWalkAccess,
    StraightLineAccess,
    StraightLineTravelTimes,
    StreetGraph,
    StreetNetwork,
    TimeOfDaySpeeds,
    TooFarFromNetwork,
    TravelTimeModel,
    haversine_m,
)
from routing.street.edge_snap import edge_index
from routing.street.travel_times import CONNECTOR_SPEED_KMH

from .oracle import door_to_door as oracle_door_to_door
from .oracle import to_networkx
from .test_osm_loader import node_of, tagged_ways, way_segments


@pytest.fixture(scope="module")
def model(terre_haute: dict[str, StreetGraph]) -> TravelTimeModel:
    return TravelTimeModel(terre_haute["drive"])


@pytest.fixture(scope="module")
def points(th_stops: pd.DataFrame) -> np.ndarray:
    return th_stops[["stop_lat", "stop_lon"]].to_numpy()[:40]


def test_matrix_shape_and_route_consistency(model: TravelTimeModel, points: np.ndarray) -> None:
    sec, met = model.matrix(points, points[:25], profile=CAR)
    assert sec.shape == met.shape == (40, 25)
    assert np.all(np.isfinite(sec)) and np.all(sec >= 0)
    assert np.all(np.diag(sec[:25]) == 0) and np.all(np.diag(met[:25]) == 0)
    for i, j in [(0, 5), (7, 3), (30, 12), (39, 24)]:
        s, m, coords = model.route(tuple(points[i]), tuple(points[j]), CAR)
        assert s == pytest.approx(sec[i, j], rel=1e-9)
        assert m == pytest.approx(met[i, j], rel=1e-9)
        assert coords[0] == tuple(points[i]) and coords[-1] == tuple(points[j])


def test_matrix_matches_networkx(
    terre_haute: dict[str, StreetGraph], model: TravelTimeModel, points: np.ndarray
) -> None:
    g = terre_haute["drive"]
    dg = to_networkx(g, g.drive_seconds(CAR))
    sec, met = model.matrix(points[:4], points[4:8], profile=CAR)
    conn = CONNECTOR_SPEED_KMH / 3.6
    for i in range(4):
        o = edge_index(g).links(points[i, 0], points[i, 1])
        for j in range(4):
            d = edge_index(g).links(points[4 + j, 0], points[4 + j, 1])
            expected = oracle_door_to_door(g, dg, g.drive_seconds(CAR), o, d, 1.0 / conn)
            assert sec[i, j] == pytest.approx(expected, rel=1e-9)
            # Metres are those of the route's polyline.
            _, _, coords = model.route(tuple(points[i]), tuple(points[4 + j]), CAR)
            la, lo = np.array(coords).T
            poly = float(haversine_m(la[:-1], lo[:-1], la[1:], lo[1:]).sum())
            assert met[i, j] == pytest.approx(poly, rel=1e-4)


def test_cache_hits_are_identical(terre_haute: dict[str, StreetGraph], points: np.ndarray) -> None:
    g = terre_haute["drive"]
    model = TravelTimeModel(g, cache_size=12)
    first = model.matrix(points[:5], points, profile=CAR)
    info = model.cache_info()
    # One search per distinct origin (from a virtual node joined to its segment ends).
    assert info["misses"] == len(np.unique(points[:5], axis=0))
    assert info["hits"] == 0
    again = model.matrix(points[:5], points, profile=CAR)
    after = model.cache_info()
    assert after["hits"] == info["misses"] and after["misses"] == info["misses"]
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    # Evicting rows (cache of 12, 40 origins) never changes an answer.
    big = model.matrix(points, points, profile=CAR)
    assert model.cache_info()["size"] == 12
    np.testing.assert_array_equal(big[0][:5], first[0])
    cold = TravelTimeModel(terre_haute["drive"]).matrix(points, points, profile=CAR)
    np.testing.assert_array_equal(big[0], cold[0])
    np.testing.assert_array_equal(big[1], cold[1])


def test_shuttle_is_slower_than_car(model: TravelTimeModel, points: np.ndarray) -> None:
    car, _ = model.matrix(points, points, profile=CAR)
    van, _ = model.matrix(points, points, profile=VAN)
    shuttle, shuttle_m = model.matrix(points, points, profile=SHUTTLE)
    off = shuttle_m > 0  # a few stops share a position
    assert np.all(np.isfinite(shuttle)), "the shuttle reaches every stop without trunks"
    # Barred from trunks, the shuttle may snap to a side street where the car is stuck on a
    # divided road's oneway carriageway: a few pairs differ in the shuttle's favour.
    assert np.mean(shuttle[off] > car[off]) > 0.98
    assert np.median(shuttle[off] / car[off]) > 2.0
    assert np.all(van[off] >= car[off] - 1e-9)
    # Never faster than its cap along the driven distance.
    assert np.all(shuttle[off] >= shuttle_m[off] / (SHUTTLE.max_speed_kmh / 3.6) - 1e-6)


def test_time_of_day(
    model: TravelTimeModel, terre_haute: dict[str, StreetGraph], points: np.ndarray
) -> None:
    free, _ = model.matrix(points, points, profile=CAR, depart_s=12 * 3600)
    peak, met = model.matrix(points, points, profile=CAR, depart_s=8 * 3600)
    off = met > 0
    # Stops on the same block face go straight across, at a speed no congestion changes.
    assert np.all(peak >= free - 1e-9)
    assert np.mean(peak[off] > free[off]) > 0.95
    # Edge time scales by 1/0.7; only the connectors at the ends keep their speed.
    ratio = np.median(peak[off] / free[off])
    assert 1.25 < ratio <= 1 / 0.7 + 1e-9
    flat = TravelTimeModel(terre_haute["drive"], time_of_day=TimeOfDaySpeeds(()))
    np.testing.assert_allclose(flat.matrix(points, points, profile=CAR, depart_s=8 * 3600)[0], free)


def test_oneway_street_is_asymmetric(
    terre_haute: dict[str, StreetGraph], terre_haute_pbf: Path, model: TravelTimeModel
) -> None:
    g = terre_haute["drive"]
    oneway = [
        w
        for w, t in tagged_ways(terre_haute_pbf, "oneway", "yes").items()
        if t["highway"] in ("residential", "tertiary", "secondary") and (g.way_id == w).any()
    ]

    def mid(seg: tuple[int, int]) -> tuple[float, float]:
        u, v = node_of(g, list(seg))
        return (g.lat[u] + g.lat[v]) / 2, (g.lon[u] + g.lon[v]) / 2

    # Midpoints of the first and last segments of every long oneway street: the car goes
    # along it one way and must go around the other way, unless a parallel street lies
    # within the linking slack (one-way couplets, divided roads).
    asymmetric, checked = 0, 0
    for w in oneway:
        segs = way_segments(terre_haute_pbf, w)
        pa, pb = mid(segs[0]), mid(segs[-1])
        if float(haversine_m(*pa, *pb)) < 150 or checked == 20:
            continue
        forward, _, _ = model.route(pa, pb, CAR)
        backward, _, _ = model.route(pb, pa, CAR)
        sec, _ = model.matrix([pa, pb], [pa, pb], profile=CAR)
        assert sec[0, 1] == pytest.approx(forward) and sec[1, 0] == pytest.approx(backward)
        checked += 1
        asymmetric += backward > 1.2 * forward
    assert checked >= 5
    assert asymmetric / checked > 0.5, "against a oneway street the car must go around"


def test_cobb_county(cobb: dict[str, StreetGraph]) -> None:
    g = cobb["drive"]
    rng = np.random.default_rng(3)
    pick = rng.choice(g.n_nodes, 30, replace=False)
    pts = np.column_stack((g.lat[pick], g.lon[pick]))
    model = TravelTimeModel(g)
    sec, met = model.matrix(pts, pts, profile=CAR)
    assert np.all(np.isfinite(sec)) and np.all(np.diag(sec) == 0)
    assert np.median(met[~np.eye(30, dtype=bool)]) > 500


def test_errors_and_fallback(model: TravelTimeModel, terre_haute: dict[str, StreetGraph]) -> None:
    with pytest.raises(TooFarFromNetwork, match="too far from the street network"):
        model.matrix([[39.46, -87.41]], [[41.0, -87.41]], profile=CAR)
    with pytest.raises(TooFarFromNetwork):
        model.route((39.46, -87.41), (41.0, -87.41), SHUTTLE)
    with pytest.raises(InvalidCoordinates):
        model.matrix([[39.46, -87.41, 0.0]], [[39.46, -87.41]], profile=CAR)
    with pytest.raises(InvalidCoordinates):
        model.matrix([[39.46, -187.41]], [[39.46, -87.41]], profile=CAR)
    with pytest.raises(ValueError, match="driving graph"):
        TravelTimeModel(terre_haute["walk"])
    pts = np.array([[42.3157, 140.9739], [42.3493, 141.0284]])
    fallback = TravelTimeModel(None).matrix(pts, pts, profile=VAN, depart_s=8 * 3600)
    line = StraightLineTravelTimes().matrix(pts, pts, profile=VAN, depart_s=8 * 3600)
    np.testing.assert_array_equal(fallback[0], line[0])
    assert TravelTimeModel(None).route(tuple(pts[0]), tuple(pts[1]), CAR)[1] == pytest.approx(
        line[1][0, 1]
    )


def test_off_network_points_fall_back_when_asked(
    terre_haute: dict[str, StreetGraph], points: np.ndarray
) -> None:
    model = TravelTimeModel(terre_haute["drive"], off_network="straight_line")
    far = np.array([[41.0, -87.41]])
    pts = np.vstack((points[:3], far))
    sec, met = model.matrix(pts, pts, profile=CAR)
    graph_sec, graph_met = model.matrix(points[:3], points[:3], profile=CAR)
    np.testing.assert_array_equal(sec[:3, :3], graph_sec)
    np.testing.assert_array_equal(met[:3, :3], graph_met)
    line_sec, line_met = StraightLineTravelTimes().matrix(pts, far, profile=CAR)
    np.testing.assert_allclose(sec[:, 3], line_sec[:, 0])
    np.testing.assert_allclose(met[:, 3], line_met[:, 0])
    assert model.route(tuple(points[0]), (41.0, -87.41), CAR)[1] == pytest.approx(met[0, 3])
    with pytest.raises(ValueError, match="off_network"):
        TravelTimeModel(terre_haute["drive"], off_network="ignore")  # type: ignore[arg-type]


def test_street_network_bundle(terre_haute_pbf: Path, th_stops: pd.DataFrame) -> None:
    osm = StreetNetwork.load(terre_haute_pbf)
    none = StreetNetwork.load(None)
    assert osm.model == "osm" and none.model == "straight_line"
    lat, lon = th_stops["stop_lat"], th_stops["stop_lon"]
    assert isinstance(osm.walk_access(lat, lon), OsmWalkAccess)
    assert isinstance(none.walk_access(lat, lon), StraightLineAccess)
    assert osm.travel_times().graph is osm.drive
    assert none.travel_times().graph is None
    assert len(osm.footpaths()(lat.to_numpy(), lon.to_numpy()).from_idx) > 0
    with pytest.raises(OsmLoadError):
        StreetNetwork.load(terre_haute_pbf.with_name("missing.osm.pbf"))


def test_cache_memory_is_bounded(terre_haute: dict[str, StreetGraph]) -> None:
    g = terre_haute["drive"]
    big = TravelTimeModel(g, cache_size=4096, cache_bytes=10 * 1024 * 1024)
    assert big.cache_size == 10 * 1024 * 1024 // (12 * g.n_nodes)
    assert TravelTimeModel(g, cache_size=10).cache_size == 10
    with pytest.raises(ValueError, match="cache_size"):
        TravelTimeModel(g, cache_size=0)


def test_street_network_cache(terre_haute_pbf: Path, tmp_path: Path) -> None:
    first = StreetNetwork.load(terre_haute_pbf, cache_dir=tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and all(f.endswith((".walk.npz", ".drive.npz")) for f in files)
    again = StreetNetwork.load(terre_haute_pbf, cache_dir=tmp_path)
    assert again.drive is not None and first.drive is not None
    np.testing.assert_array_equal(again.drive.indices, first.drive.indices)
    np.testing.assert_array_equal(again.drive.length_m, first.drive.length_m)
    # A damaged cache file is rebuilt, not trusted.
    for f in tmp_path.iterdir():
        f.write_bytes(b"garbage")
    rebuilt = StreetNetwork.load(terre_haute_pbf, cache_dir=tmp_path)
    assert rebuilt.walk is not None and rebuilt.walk.n_edges == first.walk.n_edges  # type: ignore[union-attr]

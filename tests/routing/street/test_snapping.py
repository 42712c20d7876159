"""Snapping points to the street graph."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from routing.street import InvalidCoordinates, StreetGraph, haversine_m, snap, snap_to_edge


def test_terre_haute_stops_snap_close(
    terre_haute: dict[str, StreetGraph], th_stops: pd.DataFrame
) -> None:
    g = terre_haute["walk"]
    node, dist = snap(g, th_stops["stop_lat"], th_stops["stop_lon"])
    assert node.shape == dist.shape == (len(th_stops),)
    # The data README measures a 15 m median distance from stop to street.
    assert 10.0 <= float(np.median(dist)) <= 20.0
    # A few stops sit in parking lots (e.g. "Sam's Club *ON REQUEST*") 100-175 m from any
    # street vertex of the extract; every stop is within 200 m.
    assert float(dist.max()) < 200.0
    assert np.mean(dist <= 100.0) > 0.85
    np.testing.assert_allclose(
        dist,
        haversine_m(th_stops["stop_lat"], th_stops["stop_lon"], g.lat[node], g.lon[node]),
        atol=1e-6,
    )


def test_snap_is_the_nearest_node(
    terre_haute: dict[str, StreetGraph], th_stops: pd.DataFrame
) -> None:
    g = terre_haute["drive"]
    lat, lon = th_stops["stop_lat"].to_numpy()[:10], th_stops["stop_lon"].to_numpy()[:10]
    node, dist = snap(g, lat, lon)
    for i in range(10):
        brute = haversine_m(lat[i], lon[i], g.lat, g.lon)
        assert node[i] == int(np.argmin(brute))
        assert dist[i] == pytest.approx(float(brute.min()), abs=1e-6)


def test_snap_node_snaps_to_itself(cobb: dict[str, StreetGraph]) -> None:
    g = cobb["walk"]
    some = np.arange(0, g.n_nodes, 97)
    node, dist = snap(g, g.lat[some], g.lon[some])
    np.testing.assert_array_equal(node, some)
    assert np.all(dist < 1e-6)


def test_snap_bad_input(cobb: dict[str, StreetGraph]) -> None:
    with pytest.raises(InvalidCoordinates):
        snap(cobb["walk"], [33.9, 95.0], [-84.5, -84.5])


def brute_segment_distance(g: StreetGraph, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Distance from each point to every edge, by the textbook projection (local plane)."""
    m = 6_371_008.8 * np.pi / 180
    k = np.cos(np.radians(lat))[:, None] * m
    u, v = g.edge_source, g.indices
    ax, ay = (g.lon[u][None] - lon[:, None]) * k, (g.lat[u][None] - lat[:, None]) * m
    bx, by = (g.lon[v][None] - lon[:, None]) * k, (g.lat[v][None] - lat[:, None]) * m
    dx, dy = bx - ax, by - ay
    t = np.clip(-(ax * dx + ay * dy) / (dx * dx + dy * dy), 0, 1)
    return np.hypot(ax + t * dx, ay + t * dy).min(axis=1)


def test_edge_snap_is_the_nearest_segment(
    terre_haute: dict[str, StreetGraph], th_stops: pd.DataFrame
) -> None:
    g = terre_haute["walk"]
    lat, lon = th_stops["stop_lat"].to_numpy(), th_stops["stop_lon"].to_numpy()
    s = snap_to_edge(g, lat, lon)
    np.testing.assert_allclose(s.off_m, brute_segment_distance(g, lat, lon), atol=1e-3)
    assert np.all((s.frac >= 0) & (s.frac <= 1))
    # The projected point lies off_m from the stop, and on the segment.
    np.testing.assert_allclose(haversine_m(lat, lon, s.lat, s.lon), s.off_m, rtol=1e-3, atol=1e-3)
    # Projection beats vertex snapping: median about 9 m instead of 15 m.
    _, node_d = snap(g, lat, lon)
    assert np.all(s.off_m <= node_d * (1 + 1e-5))  # planar vs great-circle rounding
    assert np.median(s.off_m) < 0.7 * np.median(node_d)


def test_mid_block_point_lands_mid_segment(terre_haute: dict[str, StreetGraph]) -> None:
    g = terre_haute["drive"]
    e = int(np.argmax(g.length_m))  # the longest straight segment
    u, v = g.edge_source[e], g.indices[e]
    lat, lon = (g.lat[u] + g.lat[v]) / 2, (g.lon[u] + g.lon[v]) / 2
    s = snap_to_edge(g, lat, lon)
    assert s.off_m[0] < 1.0
    assert 0.45 < (s.frac[0] if g.edge_source[s.edge[0]] == u else 1 - s.frac[0]) < 0.55
    assert snap(g, lat, lon)[1][0] > 100.0  # vertex snapping would land far up the road

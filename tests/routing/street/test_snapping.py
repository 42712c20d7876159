"""Snapping points to the street graph."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from routing.street import InvalidCoordinates, StreetGraph, haversine_m, snap


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

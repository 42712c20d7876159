"""Loading both real OSM extracts into walking and driving graphs."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import osmium
import pytest
from scipy.sparse.csgraph import connected_components

from routing.street import OsmLoadError, StreetGraph, haversine_m, load_osm
from routing.street.graph import HIGHWAY_CODE


def tagged_ways(pbf: Path, key: str, value: str | None = None) -> dict[int, dict[str, str]]:
    """Highway ways with ``key`` (= ``value``) read straight from the file, as an oracle."""
    out = {}
    for w in osmium.FileProcessor(str(pbf), osmium.osm.WAY):
        if "highway" in w.tags and key in w.tags and (value is None or w.tags[key] == value):
            out[w.id] = {t.k: t.v for t in w.tags}
    return out


def check_well_formed(g: StreetGraph) -> None:
    n, e = g.n_nodes, g.n_edges
    assert n > 1000 and e > n
    assert g.indptr.shape == (n + 1,) and g.indptr[0] == 0 and g.indptr[-1] == e
    assert np.all(np.diff(g.indptr) >= 0)
    assert g.indices.min() >= 0 and g.indices.max() < n
    assert all(a.shape == (e,) for a in (g.length_m, g.speed_kmh, g.highway, g.way_id))
    assert np.all(g.length_m > 0) and np.all(np.isfinite(g.length_m))
    assert np.all(g.speed_kmh > 0)
    np.testing.assert_allclose(
        g.length_m,
        np.maximum(
            haversine_m(
                g.lat[g.edge_source], g.lon[g.edge_source], g.lat[g.indices], g.lon[g.indices]
            ),
            0.01,
        ),
    )
    assert np.all(g.edge_source != g.indices), "self-loop"
    assert np.all(np.diff(g.edge_key) > 0), "edges sorted by (u, v), no parallel edges"
    n_comp, _ = connected_components(g.length_matrix, directed=True, connection="strong")
    assert n_comp == 1, "only the largest strongly connected component is kept"
    assert len(np.unique(g.node_osm_id)) == n


@pytest.mark.parametrize("city", ["terre_haute", "cobb"])
def test_graphs_are_well_formed(city: str, request: pytest.FixtureRequest) -> None:
    graphs = request.getfixturevalue(city)
    assert set(graphs) == {"walk", "drive"}
    for g in graphs.values():
        check_well_formed(g)
    walk, drive = graphs["walk"], graphs["drive"]
    # Walking ignores oneway: every edge has its reverse.
    assert np.all(walk.edge_ids(walk.indices, walk.edge_source) >= 0)
    assert not np.isin(
        walk.highway, [HIGHWAY_CODE["motorway"], HIGHWAY_CODE["motorway_link"]]
    ).any()
    assert not np.isin(drive.highway, [HIGHWAY_CODE["footway"], HIGHWAY_CODE["path"]]).any()
    # Plausible sizes: several hundred km of streets.
    assert walk.length_m.sum() / 2 > 300_000
    assert drive.length_m.sum() / 2 > 200_000


def test_terre_haute_has_footways_and_motorways(terre_haute: dict[str, StreetGraph]) -> None:
    assert (terre_haute["walk"].highway == HIGHWAY_CODE["footway"]).any()
    assert (terre_haute["drive"].highway == HIGHWAY_CODE["motorway"]).any()


def way_segments(pbf: Path, way_id: int) -> list[tuple[int, int]]:
    """Consecutive OSM node ids of one way, in the file's order."""
    for w in osmium.FileProcessor(str(pbf), osmium.osm.WAY):
        if w.id == way_id:
            refs = [n.ref for n in w.nodes]
            return list(itertools.pairwise(refs))
    raise AssertionError(f"way {way_id} not in the file")


def node_of(g: StreetGraph, osm_ids: list[int]) -> np.ndarray:
    pos = np.searchsorted(g.node_osm_id, osm_ids)
    assert np.all(g.node_osm_id[pos] == osm_ids)
    return pos


def test_oneway_ways_are_one_way(
    terre_haute: dict[str, StreetGraph], terre_haute_pbf: Path
) -> None:
    drive = terre_haute["drive"]
    tagged = tagged_ways(terre_haute_pbf, "oneway")
    oneway = {w for w, t in tagged.items() if t["oneway"] == "yes"}
    in_graph = np.isin(drive.way_id, list(oneway))
    assert in_graph.sum() > 50, "the extract has oneway streets"
    rev = drive.edge_ids(drive.indices[in_graph], drive.edge_source[in_graph])
    # The reverse of a oneway segment exists only where another way overlaps it.
    assert np.mean(rev < 0) > 0.95
    # Untagged residential streets are two-way (roundabouts are implied oneway).
    implied = list(tagged) + list(tagged_ways(terre_haute_pbf, "junction", "roundabout"))
    assert implied
    untagged = ~np.isin(drive.way_id, implied) & (drive.highway == HIGHWAY_CODE["residential"])
    rev2 = drive.edge_ids(drive.indices[untagged], drive.edge_source[untagged])
    assert np.all(rev2 >= 0)


def test_oneway_minus_one_runs_against_the_way(
    terre_haute: dict[str, StreetGraph], terre_haute_pbf: Path
) -> None:
    drive = terre_haute["drive"]
    backward = [
        w
        for w, t in tagged_ways(terre_haute_pbf, "oneway", "-1").items()
        if (drive.way_id == w).any()
    ]
    assert backward, "the extract has a oneway=-1 street (Walnut Street)"
    segs = way_segments(terre_haute_pbf, backward[0])
    a = node_of(drive, [s[0] for s in segs])
    b = node_of(drive, [s[1] for s in segs])
    assert np.all(drive.edge_ids(b, a) >= 0), "driven from the last node to the first"
    assert np.all(drive.edge_ids(a, b) < 0), "never along the way's direction"


def test_maxspeed_is_used(terre_haute: dict[str, StreetGraph], terre_haute_pbf: Path) -> None:
    drive = terre_haute["drive"]
    ways = tagged_ways(terre_haute_pbf, "maxspeed")
    assert ways, "the extract tags some speeds"
    checked = 0
    for wid, tags in ways.items():
        sel = drive.way_id == wid
        if sel.any() and tags["maxspeed"].endswith("mph"):
            mph = float(tags["maxspeed"].split()[0])
            np.testing.assert_allclose(drive.speed_kmh[sel], mph * 1.609344)
            checked += 1
    assert checked > 0
    # Untagged residential streets get the class default.
    res = (drive.highway == HIGHWAY_CODE["residential"]) & ~np.isin(drive.way_id, list(ways))
    assert np.all(drive.speed_kmh[res] == 30.0)


def test_only_requested_profiles(terre_haute_pbf: Path) -> None:
    assert set(load_osm(terre_haute_pbf, profiles=("walk",))) == {"walk"}
    with pytest.raises(ValueError, match="unknown street profiles"):
        load_osm(terre_haute_pbf, profiles=("bike",))


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(OsmLoadError, match="not found"):
        load_osm(tmp_path / "nowhere.osm.pbf")
    bad = tmp_path / "garbage.osm.pbf"
    bad.write_bytes(b"\x00\x00\x00\x0dthis is not a pbf file at all" * 10)
    with pytest.raises(OsmLoadError, match="cannot read") as exc:
        load_osm(bad)
    assert exc.value.code == "osm_unreadable"
    empty = tmp_path / "empty.osm"
    empty.write_text("<?xml version='1.0'?><osm version='0.6'></osm>")
    with pytest.raises(OsmLoadError, match="no streets"):
        load_osm(empty)


def test_save_load_roundtrip(terre_haute: dict[str, StreetGraph], tmp_path: Path) -> None:
    g = terre_haute["drive"]
    g.save(tmp_path / "drive.npz")
    h = StreetGraph.load(tmp_path / "drive.npz")
    assert h.mode == "drive"
    for name in (
        "node_osm_id",
        "lat",
        "lon",
        "indptr",
        "indices",
        "length_m",
        "speed_kmh",
        "highway",
        "way_id",
    ):
        np.testing.assert_array_equal(getattr(g, name), getattr(h, name))
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(OsmLoadError):
        StreetGraph.load(tmp_path / "bad.npz")

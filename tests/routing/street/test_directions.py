"""Turn-by-turn walking directions (routing.street.directions) and the way names they read."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from routing.street import StreetGraph
from routing.street.directions import relative_direction, walk_steps
from routing.street.graph import HIGHWAY_CODE

LAT0, LON0 = 42.3, 141.0
M_LAT = 111_195.0  # metres per degree of latitude (the haversine's sphere)
M_LON = M_LAT * math.cos(math.radians(LAT0))


def _at(east_m: float, north_m: float) -> tuple[float, float]:
    return LAT0 + north_m / M_LAT, LON0 + east_m / M_LON


# A hand-made town: Main St runs north 200 m (nodes 0-1-2), Side St east 80 m (2-3), then an
# unnamed footway bears north-east 94 m (3-4) and turns north for 100 m (4-5).
NODES = [(0, 0), (0, 100), (0, 200), (80, 200), (160, 250), (160, 350)]
WAYS = [((0, 1), 0), ((1, 2), 0), ((2, 3), 1), ((3, 4), -1), ((4, 5), -1)]
NAMES = ["Main St", "Side St"]


def _graph() -> StreetGraph:
    lat, lon = np.array([_at(*p) for p in NODES]).T
    pairs = np.array([uv for uv, _ in WAYS])
    code = np.array([c for _, c in WAYS], dtype=np.int32)
    src = np.concatenate([pairs[:, 0], pairs[:, 1]])
    dst = np.concatenate([pairs[:, 1], pairs[:, 0]])
    n = src.size
    return StreetGraph.from_edges(
        "walk",
        np.arange(len(NODES), dtype=np.int64),
        lat,
        lon,
        src,
        dst,
        np.full(n, 4.32),
        np.full(n, HIGHWAY_CODE["footway"], dtype=np.int8),
        np.arange(n, dtype=np.int64),
        None,
        np.concatenate([code, code]),
        NAMES,
    )


def _walk() -> list[tuple[float, float]]:
    """The path as the walking model gives it: the door, the nodes, the door."""
    return [_at(-5, 0), *[_at(*p) for p in NODES], _at(165, 350)]


def test_steps_of_a_hand_made_walk() -> None:
    steps = walk_steps(_walk(), _graph())
    got = [
        (s.relative_direction, s.absolute_direction, s.street_name, round(s.distance_m))
        for s in steps
    ]
    # By hand: the 5 m from the door joins Main St; right onto Side St (a 90° turn); the
    # footway bears 58° off Side St's 90° (-32°: slightly left); its bend north is -58°
    # (left, a new step though the way has no name); the last 5 m to the door join it.
    assert got == [
        ("DEPART", "NORTH", "Main St", 205),
        ("RIGHT", "EAST", "Side St", 80),
        ("SLIGHTLY_LEFT", "NORTHEAST", None, 94),
        ("LEFT", "NORTH", None, 105),
    ]
    assert (steps[0].lat, steps[0].lon) == pytest.approx(_at(-5, 0))
    assert (steps[1].lat, steps[1].lon) == pytest.approx(_at(0, 200))
    assert steps[2].to_otp()["bogusName"] is True and steps[1].to_otp()["streetName"] == "Side St"
    # The steps add up to the walk.
    assert sum(s.distance_m for s in steps) == pytest.approx(5 + 200 + 80 + 94.3 + 100 + 5, 0.01)


def test_one_street_is_one_step_however_it_bends() -> None:
    g = _graph()
    # Along Main St only, with a repeated point (a merged walk's joint): one step.
    path = [_at(*NODES[0]), _at(*NODES[1]), _at(*NODES[1]), _at(*NODES[2])]
    steps = walk_steps(path, g)
    assert [(s.relative_direction, s.street_name, round(s.distance_m)) for s in steps] == [
        ("DEPART", "Main St", 200)
    ]


def test_straight_line_walks_and_degenerate_geometry() -> None:
    # No graph (the straight-line model): one unnamed step in the walk's compass direction.
    steps = walk_steps([_at(0, 0), _at(100, 0)])
    assert [(s.relative_direction, s.absolute_direction, s.street_name) for s in steps] == [
        ("DEPART", "EAST", None)
    ]
    assert walk_steps([_at(0, 0)]) == []
    assert walk_steps([_at(0, 0), _at(0, 0)]) == []
    assert walk_steps([]) == []


@pytest.mark.parametrize(
    ("turn", "name"),
    [
        (0.0, "CONTINUE"),
        (-9.9, "CONTINUE"),
        (30.0, "SLIGHTLY_RIGHT"),
        (-44.0, "SLIGHTLY_LEFT"),
        (90.0, "RIGHT"),
        (-134.0, "LEFT"),
        (170.0, "HARD_RIGHT"),
        (-150.0, "HARD_LEFT"),
    ],
)
def test_relative_direction(turn: float, name: str) -> None:
    assert relative_direction(turn) == name


def test_names_survive_the_graph_cache(tmp_path: Path) -> None:
    g = _graph()
    g.save(tmp_path / "g.npz")
    h = StreetGraph.load(tmp_path / "g.npz")
    assert h.edge_names(np.arange(h.n_edges)) == g.edge_names(np.arange(g.n_edges))
    assert walk_steps(_walk(), h) == walk_steps(_walk(), g)
    assert g.edge_names([-1]) == [None]


def test_an_old_cache_without_names_is_refused(tmp_path: Path) -> None:
    """Version 1 graphs had no names: loading one raises, and StreetNetwork rebuilds it."""
    from routing.street import OsmLoadError

    g = _graph()
    g.save(tmp_path / "g.npz")
    with np.load(tmp_path / "g.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["format_version"] = np.int32(1)
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(OsmLoadError, match="format 1"):
        StreetGraph.load(tmp_path / "old.npz")


def test_way_names_from_a_real_extract(
    terre_haute: dict[str, StreetGraph], terre_haute_pbf: Path
) -> None:
    from tests.routing.street.test_osm_loader import tagged_ways

    named = tagged_ways(terre_haute_pbf, "name")
    g = terre_haute["walk"]
    names = g.edge_names(np.arange(g.n_edges))
    for e in np.flatnonzero(np.isin(g.way_id, list(named)))[::97].tolist():
        assert names[e] == named[int(g.way_id[e])]["name"].strip()
    unnamed = np.flatnonzero(~np.isin(g.way_id, list(named)))
    assert unnamed.size and all(names[e] is None for e in unnamed[:200].tolist())


def test_planned_walks_have_named_steps(gtfs_dir: object) -> None:
    """Terre Haute with its OSM extract: a planned walk leg's OTP ``steps`` name the streets
    of the extract and add up to the leg; the steps are built for the legs returned."""
    import datetime as dt

    import gtfs
    from routing.itinerary import to_otp
    from routing.options import RoutingOptions
    from routing.planner import Planner, PlanPlace, PlanRequest
    from routing.street import load_osm
    from routing.street.osm_access import OsmWalkAccess
    from routing.transit import TransitData

    root = Path(str(gtfs_dir)).parent
    tt = gtfs.compile_timetable(gtfs.read_feed(root / "gtfs" / "us_terre_haute.zip"))
    graph = load_osm(root / "osm" / "us_terre_haute.osm.pbf", ["walk"])["walk"]
    planner = Planner(TransitData(tt), OsmWalkAccess(graph, tt.stop_lat, tt.stop_lon))
    served = np.flatnonzero(np.diff(tt.stop_pattern_ptr) > 0)
    day = tt.service_start + dt.timedelta(days=int(np.argmax(tt.service_days.sum(axis=0))))
    o, d = int(served[0]), int(served[len(served) // 2])
    req = PlanRequest(
        PlanPlace(float(tt.stop_lat[o]) + 0.004, float(tt.stop_lon[o])),
        PlanPlace(float(tt.stop_lat[d]), float(tt.stop_lon[d]) + 0.004),
        day,
        9 * 3600,
        options=RoutingOptions(max_walk_m=1500),
    )
    plan = planner.plan(req)
    assert plan.itineraries, plan.error
    names = set(graph.names.tolist())
    legs = [leg for it in plan.itineraries for leg in to_otp(it, day, tt.timezone)["legs"]]
    walks = [leg for leg in legs if leg["mode"] == "WALK"]
    assert walks and all(leg["steps"] for leg in walks if leg["distance"] > 1)
    assert not any("steps" in leg for leg in legs if leg["transitLeg"])
    for leg in walks:
        steps = leg["steps"]
        assert steps[0]["relativeDirection"] == "DEPART"
        assert sum(s["distance"] for s in steps) == pytest.approx(leg["distance"], rel=0.02, abs=1)
        assert all(s["streetName"] in names for s in steps if not s["bogusName"])
    named = [s for leg in walks for s in leg["steps"] if not s["bogusName"]]
    assert named, "a walk of several hundred metres in town follows some named street"
    assert len({s["relativeDirection"] for leg in walks for s in leg["steps"]}) > 1

"""Turn-by-turn walking directions from a walk leg's geometry, as OpenTripPlanner's ``steps``.

A walk leg's geometry is the street path the walk took (the graph's nodes, plus the snapped
start and end). Each segment is matched to its graph edge and so to its way's OSM ``name``;
consecutive segments of one street make one step. A step starts where the street name changes,
or, along unnamed ways (footways, service roads: most of a Japanese town's streets have no
name), where the walk turns by :data:`TURN_DEG` or more. Each step says how to enter it
relative to the way the walker was going (OTP's ``relativeDirection``: ``DEPART`` first, then
``CONTINUE``, ``SLIGHTLY_LEFT`` ... ``HARD_RIGHT``), its compass direction, street name and
length.

Everything is numpy over the leg's few dozen points, and it runs only for the legs a plan
returns (:func:`routing.itinerary.to_otp`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from routing.street.geo import haversine_m

LatLon = tuple[float, float]

#: A point of the geometry within this of a graph node is that node (the path's vertices are
#: the nodes' own coordinates; the snapped ends are not).
NODE_MATCH_M = 0.5
#: Along unnamed ways, a bend of this many degrees or more starts a new step.
TURN_DEG = 40.0
#: An unnamed stretch shorter than this at either end of the walk (from the door to the
#: street) is no step of its own: it joins its neighbour.
MIN_END_STEP_M = 15.0

COMPASS = (
    "NORTH",
    "NORTHEAST",
    "EAST",
    "SOUTHEAST",
    "SOUTH",
    "SOUTHWEST",
    "WEST",
    "NORTHWEST",
)


@dataclass(frozen=True)
class WalkStep:
    """One instruction: enter ``street_name`` going ``relative_direction`` and walk
    ``distance_m``, starting at ``(lat, lon)``."""

    relative_direction: str
    absolute_direction: str
    street_name: str | None
    distance_m: float
    lat: float
    lon: float

    def to_otp(self) -> dict[str, Any]:
        """OTP's step fields (``bogusName``: the street has no name)."""
        return {
            "relativeDirection": self.relative_direction,
            "absoluteDirection": self.absolute_direction,
            "streetName": self.street_name,
            "bogusName": self.street_name is None,
            "distance": round(self.distance_m, 1),
            "lat": self.lat,
            "lon": self.lon,
        }


def relative_direction(turn_deg: float) -> str:
    """OTP's name of a turn of ``turn_deg`` degrees (positive: to the right)."""
    a = abs(turn_deg)
    if a < 10.0:
        return "CONTINUE"
    side = "RIGHT" if turn_deg > 0 else "LEFT"
    if a < 45.0:
        return f"SLIGHTLY_{side}"
    if a < 135.0:
        return side
    return f"HARD_{side}"


def segment_names(coords: np.ndarray, graph: Any | None) -> list[str | None]:
    """The street name of each segment of ``coords`` (``[n, 2]`` lat/lon): the name of the
    graph edge joining its two ends, None where a segment is no edge (a snapped end) or the
    way has no name. Without a graph (the straight-line model), every segment is unnamed."""
    n = coords.shape[0] - 1
    if graph is None or n <= 0 or getattr(graph, "name_code", np.zeros(0)).size == 0:
        return [None] * max(n, 0)
    from routing.street.geo import arc_m, to_xyz

    chord, node = graph.node_tree.query(to_xyz(coords[:, 0], coords[:, 1]))
    node = np.where(arc_m(chord) <= NODE_MATCH_M, node, -1)
    u, v = node[:-1], node[1:]
    edges = np.where((u >= 0) & (v >= 0), graph.edge_ids(np.maximum(u, 0), np.maximum(v, 0)), -1)
    names: list[str | None] = graph.edge_names(edges)
    return names


def walk_steps(geometry: Sequence[LatLon], graph: Any | None = None) -> list[WalkStep]:
    """The steps of a walk along ``geometry`` (lat, lon points), named from ``graph``'s ways.

    Parameters
    ----------
    geometry
        The walk's path, start to end.
    graph
        The walking :class:`~routing.street.graph.StreetGraph` the path was found on, or None
        (straight-line walks: one step, unnamed).

    Returns
    -------
    list[WalkStep]
        Empty for a walk of no length.
    """
    pts = np.asarray(geometry, dtype=np.float64).reshape(-1, 2)
    if pts.shape[0] < 2:
        return []
    seg_m = np.asarray(haversine_m(pts[:-1, 0], pts[:-1, 1], pts[1:, 0], pts[1:, 1]))
    keep = seg_m > 0.05  # repeated points (a merged walk's joint) have no direction
    if not keep.any():
        return []
    names = [nm for nm, k in zip(segment_names(pts, graph), keep.tolist(), strict=True) if k]
    start, end, seg_m = pts[:-1][keep], pts[1:][keep], seg_m[keep]
    bearing = _segment_bearings(start, end)
    turn = (np.diff(bearing) + 180.0) % 360.0 - 180.0  # turn[i]: from segment i to i + 1
    same = np.asarray([names[i] == names[i - 1] for i in range(1, len(names))], dtype=bool)
    unnamed = np.asarray([nm is None for nm in names[1:]], dtype=bool)
    new = np.ones(seg_m.size, dtype=bool)
    new[1:] = ~same | (unnamed & (np.abs(turn) >= TURN_DEG))
    first = np.flatnonzero(new)
    last = np.append(first[1:], seg_m.size) - 1
    length = np.add.reduceat(seg_m, first)
    # (first segment, last segment, metres, the segment whose heading the step takes)
    groups: list[tuple[int, int, float, int]] = [
        (a, b, m, a) for a, b, m in zip(first.tolist(), last.tolist(), length.tolist(), strict=True)
    ]
    # The unnamed link from the door to the first street (and from the last street to the
    # door) is part of that street's step, not a step of its own (the link may bend: several
    # short unnamed pieces).
    while len(groups) > 1 and names[groups[0][3]] is None and groups[0][2] < MIN_END_STEP_M:
        door, street = groups[0], groups[1]
        groups[:2] = [(door[0], street[1], door[2] + street[2], street[0])]
    while len(groups) > 1 and names[groups[-1][3]] is None and groups[-1][2] < MIN_END_STEP_M:
        street, door = groups[-2], groups[-1]
        groups[-2:] = [(street[0], door[1], street[2] + door[2], street[3])]
    steps: list[WalkStep] = []
    for k, (a, _, meters, head) in enumerate(groups):
        rel = (
            "DEPART" if k == 0 else relative_direction(_turn(bearing[groups[k - 1][1]], bearing[a]))
        )
        steps.append(
            WalkStep(
                relative_direction=rel,
                absolute_direction=COMPASS[int(((bearing[head] + 22.5) % 360.0) // 45.0)],
                street_name=names[head],
                distance_m=float(meters),
                lat=float(start[a, 0]),
                lon=float(start[a, 1]),
            )
        )
    return steps


def _segment_bearings(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Initial compass bearing (degrees, 0 = north, clockwise) of each segment."""
    p1, p2 = np.radians(start[:, 0]), np.radians(end[:, 0])
    dl = np.radians(end[:, 1] - start[:, 1])
    y = np.sin(dl) * np.cos(p2)
    x = np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dl)
    return np.asarray(np.degrees(np.arctan2(y, x)) % 360.0)


def _turn(before: float, after: float) -> float:
    """Signed turn in degrees from heading ``before`` to ``after`` (positive: right)."""
    return float((after - before + 180.0) % 360.0 - 180.0)


def walk_graph_of(model: Any) -> Any | None:
    """The walking graph behind a walk model (``OsmWalkAccess.graph``, also inside the
    planner's ``FallbackWalk.primary``); None for the straight-line model."""
    for _ in range(3):  # a model, or a wrapper of one
        if model is None:
            return None
        graph = getattr(model, "graph", None)
        if graph is not None:
            return graph
        model = getattr(model, "primary", None)
    return None

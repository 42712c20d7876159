"""An independent shortest-path oracle: networkx on the same edges."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np

from routing.street import StreetGraph, haversine_m
from routing.street.edge_snap import EdgeSnap


def to_networkx(g: StreetGraph, weights: np.ndarray) -> nx.DiGraph:
    dg = nx.DiGraph()
    dg.add_weighted_edges_from(
        zip(g.edge_source.tolist(), g.indices.tolist(), weights.tolist(), strict=True)
    )
    return dg


def path_length(g: StreetGraph, path: list[int]) -> float:
    """Metres along a node path, summing edge lengths looked up one by one."""
    total = 0.0
    for u, v in itertools.pairwise(path):
        lo, hi = g.indptr[u], g.indptr[u + 1]
        k = lo + int(np.flatnonzero(g.indices[lo:hi] == v)[0])
        total += float(g.length_m[k])
    return total


def door_to_door(
    g: StreetGraph, dg: nx.DiGraph, weights: np.ndarray, o: EdgeSnap, d: EdgeSnap, off_weight: float
) -> tuple[float, list[int]]:
    """Cost between the first points of two snaps, by splitting their segments in networkx.

    Virtual nodes ``"o"`` and ``"d"`` join the segment ends at the fraction of the segment they
    lie on (in each direction the graph allows); off-street distances cost ``off_weight`` per
    metre; on a shared segment, points closer to each other than to the street may also go
    straight across.
    """

    def ends(snap: EdgeSnap) -> tuple[int, int, float, int, float, int]:
        e = int(snap.edge[0])
        u, v = int(g.edge_source[e]), int(g.indices[e])
        lo, hi = g.indptr[v], g.indptr[v + 1]
        hit = np.flatnonzero(g.indices[lo:hi] == u)
        rev = int(lo + hit[0]) if hit.size and np.isfinite(weights[lo + hit[0]]) else -1
        return u, v, float(snap.frac[0]), e, float(weights[e]), rev

    ou, ov, ot, oe, ow, orev = ends(o)
    du, dv, dt, de, dw, drev = ends(d)
    dg.add_edge("o", ov, weight=(1 - ot) * ow)
    if orev >= 0:
        dg.add_edge("o", ou, weight=ot * float(weights[orev]))
    dg.add_edge(du, "d", weight=dt * dw)
    if drev >= 0:
        dg.add_edge(dv, "d", weight=(1 - dt) * float(weights[drev]))
    if oe == de:
        if dt >= ot:
            dg.add_edge("o", "d", weight=(dt - ot) * ow)
        elif orev >= 0:
            dg.add_edge("o", "d", weight=(ot - dt) * float(weights[orev]))
    try:
        cost, path = nx.single_source_dijkstra(dg, "o", "d")
    finally:
        dg.remove_nodes_from(["o", "d"])
    total = float(cost) + (float(o.off_m[0]) + float(d.off_m[0])) * off_weight
    across = float(haversine_m(o.point_lat[0], o.point_lon[0], d.point_lat[0], d.point_lon[0]))
    if oe == de and across <= float(o.off_m[0]) + float(d.off_m[0]):
        total = min(total, across * off_weight)
    return total, [p for p in path if isinstance(p, int)]

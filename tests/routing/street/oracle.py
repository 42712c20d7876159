"""An independent shortest-path oracle: networkx on the same edges."""

from __future__ import annotations

import networkx as nx
import numpy as np

from routing.street import StreetGraph, haversine_m
from routing.street.edge_snap import Links


def to_networkx(g: StreetGraph, weights: np.ndarray) -> nx.DiGraph:
    dg = nx.DiGraph()
    dg.add_weighted_edges_from(
        zip(g.edge_source.tolist(), g.indices.tolist(), weights.tolist(), strict=True)
    )
    return dg


def door_to_door(
    g: StreetGraph, dg: nx.DiGraph, weights: np.ndarray, o: Links, d: Links, off_weight: float
) -> float:
    """Cost between the first points of two link sets, by splitting segments in networkx.

    Virtual nodes ``"o"`` and ``"d"`` join the ends of every linked segment at the fraction
    of the segment they lie on (in each direction the graph allows), plus the off-street
    distance at ``off_weight`` per metre; points closer to each other than to the street may
    also go straight across.
    """

    def rev_of(e: int) -> int:
        u, v = int(g.edge_source[e]), int(g.indices[e])
        lo, hi = g.indptr[v], g.indptr[v + 1]
        hit = np.flatnonzero(g.indices[lo:hi] == u)
        return int(lo + hit[0]) if hit.size and np.isfinite(weights[lo + hit[0]]) else -1

    added = []
    for s in range(o.width):
        e = int(o.edge[0, s])
        if e < 0:
            continue
        u, v, t, off = (
            int(g.edge_source[e]),
            int(g.indices[e]),
            float(o.frac[0, s]),
            float(o.off_m[0, s]),
        )
        added.append(("o", v, (1 - t) * weights[e] + off * off_weight))
        if rev_of(e) >= 0:
            added.append(("o", u, t * weights[rev_of(e)] + off * off_weight))
    for s in range(d.width):
        e = int(d.edge[0, s])
        if e < 0:
            continue
        u, v, t, off = (
            int(g.edge_source[e]),
            int(g.indices[e]),
            float(d.frac[0, s]),
            float(d.off_m[0, s]),
        )
        added.append((u, "d", t * weights[e] + off * off_weight))
        if rev_of(e) >= 0:
            added.append((v, "d", (1 - t) * weights[rev_of(e)] + off * off_weight))
    best = np.inf
    for s in range(o.width):
        for t in range(d.width):
            e = int(o.edge[0, s])
            if e < 0 or e != int(d.edge[0, t]):
                continue
            dt = float(d.frac[0, t] - o.frac[0, s])
            off = (float(o.off_m[0, s]) + float(d.off_m[0, t])) * off_weight
            if dt >= 0:
                best = min(best, dt * weights[e] + off)
            elif rev_of(e) >= 0:
                best = min(best, -dt * weights[rev_of(e)] + off)
    for a, b, w in added:
        # Parallel virtual edges: keep the cheapest.
        if not dg.has_edge(a, b) or dg[a][b]["weight"] > w:
            dg.add_edge(a, b, weight=float(w))
    try:
        best = min(best, float(nx.dijkstra_path_length(dg, "o", "d")))
    except nx.NetworkXNoPath:
        pass
    finally:
        dg.remove_nodes_from(["o", "d"])
    across = float(haversine_m(o.point_lat[0], o.point_lon[0], d.point_lat[0], d.point_lon[0]))
    if across <= float(o.off_m[0, 0]) + float(d.off_m[0, 0]):
        best = min(best, across * off_weight)
    return best

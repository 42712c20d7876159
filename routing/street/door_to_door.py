"""Door-to-door costs between points linked to street segments.

Each point is linked to one to three nearby segments (:meth:`EdgeIndex.links`). A point at
``frac`` along segment ``u -> v`` enters the graph through up to two *anchors*: as an origin it
reaches ``v`` at ``(1 - frac) * w(u->v)`` and, when the segment is two-way for this mode, ``u`` at
``frac * w(v->u)``; as a destination it is reached from ``u`` at ``frac * w(u->v)`` and from
``v`` at ``(1 - frac) * w(v->u)``. Each anchor also carries the link's distance off the street,
priced at ``off_weight`` per metre (walked, or driven slowly). Between two points the best of

* ``origin anchor + shortest path between anchors + destination anchor``, over all links, and
* the run along a segment both points are linked to (in an allowed direction)

is taken. Two points closer to each other than to the street (the very same spot, facing
doors) may also go straight across, at ``off_weight`` per metre of great-circle distance.
Weights ``w`` are metres for walking and seconds for a vehicle; metres follow the chosen way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gtfs.compiled import FloatArray, IntArray
from routing.street.edge_snap import Links
from routing.street.geo import haversine_m
from routing.street.graph import StreetGraph
from routing.street.shortest_paths import SOURCE_CHUNK, Row, path_lengths, trace_path

# (anchor nodes, costs, metres)[k, A] of k origin points -> one search row per point
RowSource = Callable[[IntArray, FloatArray, FloatArray], list[Row]]

VIA_GRAPH = 0  # through the graph between anchors
ALONG = 1  # along a segment both points are linked to
ACROSS = 2  # straight across, from point to point


@dataclass(frozen=True, eq=False)
class Anchors:
    """Graph entry/exit nodes per point: ``[n, 2 * links]`` (``-1`` / ``inf`` when absent).

    Slot ``2 * s + side`` belongs to link ``s``; costs and metres include the off-street part.
    """

    node: IntArray
    cost: FloatArray
    meters: FloatArray


@dataclass(frozen=True, eq=False)
class DoorToDoor:
    """Costs of origin/destination pairs, and how each is made."""

    cost: FloatArray  # weight units, off-street parts included
    meters: FloatArray
    kind: IntArray  # VIA_GRAPH, ALONG or ACROSS
    slot_a: IntArray  # ALONG: origin link (-1 via the graph: the search tree picks it)
    slot_b: IntArray  # VIA_GRAPH: destination anchor slot; ALONG: destination link
    origin_anchors: Anchors
    destination_anchors: Anchors


def anchors(
    graph: StreetGraph, links: Links, weight: FloatArray, off_weight: float, origin: bool
) -> Anchors:
    """Anchors of linked points for per-edge ``weight`` (``inf`` marks unusable edges)."""
    n, width = len(links), links.width
    node = np.full((n, 2 * width), -1, dtype=np.int32)
    cost = np.full((n, 2 * width), np.inf)
    meters = np.full((n, 2 * width), np.inf)
    for s in range(width):
        ok = links.edge[:, s] >= 0
        e, t, off = links.edge[ok, s], links.frac[ok, s], links.off_m[ok, s]
        u, v = graph.edge_source[e], graph.indices[e]
        rev = graph.edge_ids(v, u)
        w_rev = np.where(rev >= 0, weight[np.maximum(rev, 0)], np.inf)
        has_rev = np.isfinite(w_rev)
        length = graph.length_m[e]
        fwd_part = (1.0 - t) if origin else t
        back_part = t if origin else (1.0 - t)
        rows = np.flatnonzero(ok)
        node[rows, 2 * s] = v if origin else u
        cost[rows, 2 * s] = fwd_part * weight[e] + off * off_weight
        meters[rows, 2 * s] = fwd_part * length + off
        r2 = rows[has_rev]
        node[r2, 2 * s + 1] = (u if origin else v)[has_rev]
        cost[r2, 2 * s + 1] = back_part[has_rev] * w_rev[has_rev] + off[has_rev] * off_weight
        meters[r2, 2 * s + 1] = back_part[has_rev] * length[has_rev] + off[has_rev]
    return Anchors(node, cost, meters)


def door_to_door(
    graph: StreetGraph,
    o: Links,
    d: Links,
    oi: npt.NDArray[np.int64],
    dj: npt.NDArray[np.int64],
    weight: FloatArray,
    rows: RowSource,
    off_weight: float,
    weight_is_length: bool = False,
) -> DoorToDoor:
    """Best costs for the pairs ``(o[oi[p]], d[dj[p]])``, as 1-D arrays over pairs.

    ``rows`` runs (or recalls) the searches from anchor nodes; with ``weight_is_length`` the
    metres are the on-street cost itself and predecessor rows are not needed.
    """
    oa = anchors(graph, o, weight, off_weight, origin=True)
    da = anchors(graph, d, weight, off_weight, origin=False)
    points, row_of_pair = np.unique(oi, return_inverse=True)
    d_nodes = da.node[dj]
    tgt = np.unique(d_nodes[d_nodes >= 0]).astype(np.int32)
    col_of = np.full(graph.n_nodes + 1, -1, dtype=np.int64)  # index -1 -> "no anchor"
    col_of[tgt] = np.arange(tgt.size)
    g_cost = np.full((points.size, tgt.size + 1), np.inf)  # last column: "no anchor"
    g_met = np.full((points.size, tgt.size + 1), np.inf)
    for lo in range(0, points.size, SOURCE_CHUNK):  # bounds the [k, N] search results in memory
        chunk = points[lo : lo + SOURCE_CHUNK]
        found = rows(oa.node[chunk], oa.cost[chunk], oa.meters[chunk])
        for k, row in enumerate(found, start=lo):
            g_cost[k, :-1] = row.dist[tgt]
            if not weight_is_length:
                g_met[k, :-1] = path_lengths(graph, row, tgt)
    if weight_is_length:
        g_met = g_cost  # off_weight is 1 and every cost is metres
    n_pairs = oi.size
    cost = np.full(n_pairs, np.inf)
    meters = np.full(n_pairs, np.inf)
    slot_a = np.full(n_pairs, -1, dtype=np.int32)  # via the graph, the tree picks the anchor
    slot_b = np.zeros(n_pairs, dtype=np.int32)
    r = row_of_pair
    for b in range(da.node.shape[1]):
        c = col_of[d_nodes[:, b]]
        total = g_cost[r, c] + da.cost[dj, b]
        better = total < cost
        cost[better] = total[better]
        meters[better] = (g_met[r, c] + da.meters[dj, b])[better]
        slot_b[better] = b
    kind = np.full(n_pairs, VIA_GRAPH, dtype=np.int32)

    # Along a segment both points are linked to.
    for s in range(o.width):
        for t in range(d.width):
            e = o.edge[oi, s]
            same = np.flatnonzero((e >= 0) & (e == d.edge[dj, t]))
            if same.size == 0:
                continue
            e = e[same]
            dt = d.frac[dj[same], t] - o.frac[oi[same], s]
            rev = graph.edge_ids(graph.indices[e], graph.edge_source[e])
            w_rev = np.where(rev >= 0, weight[np.maximum(rev, 0)], np.inf)
            run = np.full(same.size, np.inf)
            fwd, back = dt >= 0, (dt < 0) & np.isfinite(w_rev)
            run[fwd] = dt[fwd] * weight[e[fwd]]
            run[back] = -dt[back] * w_rev[back]
            off = o.off_m[oi[same], s] + d.off_m[dj[same], t]
            total = run + off * off_weight
            win = total < cost[same]
            p = same[win]
            cost[p] = total[win]
            meters[p] = (np.abs(dt) * graph.length_m[e] + off)[win]
            kind[p], slot_a[p], slot_b[p] = ALONG, s, t

    # Straight across, between points closer to each other than to the street.
    straight = haversine_m(o.point_lat[oi], o.point_lon[oi], d.point_lat[dj], d.point_lon[dj])
    near = straight <= o.off_m[oi, 0] + d.off_m[dj, 0]
    across = np.where(near, straight * off_weight, np.inf)
    win = near & (across <= cost)
    cost[win] = across[win]
    meters[win] = straight[win]
    kind[win] = ACROSS
    return DoorToDoor(cost, meters, kind, slot_a, slot_b, oa, da)


def leg_coords(
    graph: StreetGraph, o: Links, d: Links, result: DoorToDoor, row: Row
) -> list[tuple[float, float]]:
    """Polyline of pair 0 of ``result`` (one origin, one destination): point, street, point.

    ``row`` is the origin's search, run with predecessors.
    """
    start = (float(o.point_lat[0]), float(o.point_lon[0]))
    end = (float(d.point_lat[0]), float(d.point_lon[0]))
    kind, a, b = int(result.kind[0]), int(result.slot_a[0]), int(result.slot_b[0])
    if kind == ACROSS:
        return [start, end]
    if kind == ALONG:
        on_o = (float(o.lat[0, a]), float(o.lon[0, a]))
        on_d = (float(d.lat[0, b]), float(d.lon[0, b]))
        return [start, on_o, on_d, end]
    if row.pred is None:
        raise ValueError("leg geometry needs a search run with predecessors")
    dst = int(result.destination_anchors.node[0, b])
    path = trace_path(row.pred, dst)
    # The path starts at the anchor the tree entered by: the cheapest slot at that node.
    oa = result.origin_anchors
    slots = np.flatnonzero(oa.node[0] == path[0])
    s = int(slots[np.argmin(oa.cost[0, slots])]) // 2
    t = b // 2
    on_o = (float(o.lat[0, s]), float(o.lon[0, s]))
    on_d = (float(d.lat[0, t]), float(d.lon[0, t]))
    mid = list(zip(graph.lat[path].tolist(), graph.lon[path].tolist(), strict=True))
    return [start, on_o, *mid, on_d, end]

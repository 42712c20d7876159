"""Door-to-door costs between points snapped onto street segments.

A point snapped at ``frac`` along segment ``u -> v`` (see :mod:`routing.street.edge_snap`)
enters the graph through up to two *anchors*: as an origin it reaches ``v`` at
``(1 - frac) * w(u->v)`` and, when the segment is two-way for this mode, ``u`` at
``frac * w(v->u)``; as a destination it is reached from ``u`` at ``frac * w(u->v)`` and from
``v`` at ``(1 - frac) * w(v->u)``. Between two points the best of

* ``origin anchor + shortest path between anchors + destination anchor`` and
* the run along the segment itself when both lie on the same one (in an allowed direction)

is taken, plus both distances off the street priced at ``off_weight`` per metre (walked, or
driven slowly). Two points on the same segment that are closer to each other than to the street
(the very same spot, facing doors) may go straight across (great-circle distance at
``off_weight``) when that is shorter.
Weights ``w`` are metres for walking and seconds for a vehicle; metres follow the chosen path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gtfs.compiled import FloatArray, IntArray
from routing.street.edge_snap import EdgeSnap
from routing.street.geo import haversine_m
from routing.street.graph import StreetGraph
from routing.street.shortest_paths import SOURCE_CHUNK, path_lengths, trace_path

# (source nodes) -> one (cost row [N], predecessor row [N] or None) per node
RowSource = Callable[[IntArray], list[tuple[FloatArray, IntArray | None]]]

ALONG = -1  # anchor slot: along the shared segment, off the graph's nodes
ACROSS = -2  # anchor slot: straight across, from point to point


@dataclass(frozen=True, eq=False)
class Anchors:
    """Up to two graph entry/exit nodes per point (``-1`` / ``inf`` when absent)."""

    node: IntArray  # [n, 2]
    cost: FloatArray  # [n, 2] in weight units
    meters: FloatArray  # [n, 2]


@dataclass(frozen=True, eq=False)
class DoorToDoor:
    """Costs of origin/destination pairs and how each is made."""

    cost: FloatArray  # weight units, off-street parts included
    meters: FloatArray
    slot_a: IntArray  # origin anchor used (0/1), or ALONG / ACROSS
    slot_b: IntArray  # destination anchor used (0/1), or ALONG / ACROSS
    origin_anchors: Anchors
    destination_anchors: Anchors


def anchors(graph: StreetGraph, snap: EdgeSnap, weight: FloatArray, origin: bool) -> Anchors:
    """Anchors of snapped points for per-edge ``weight`` (``inf`` marks unusable edges)."""
    e, t = snap.edge, snap.frac
    u, v = graph.edge_source[e], graph.indices[e]
    rev = graph.edge_ids(v, u)
    w_rev = np.where(rev >= 0, weight[np.maximum(rev, 0)], np.inf)
    has_rev = np.isfinite(w_rev)
    length = graph.length_m[e]
    fwd_part = (1.0 - t) if origin else t
    back_part = t if origin else (1.0 - t)
    node = np.column_stack((v if origin else u, np.where(has_rev, u if origin else v, -1)))
    back_cost = np.full(e.shape, np.inf)
    back_cost[has_rev] = back_part[has_rev] * w_rev[has_rev]
    cost = np.column_stack((fwd_part * weight[e], back_cost))
    meters = np.column_stack((fwd_part * length, np.where(has_rev, back_part * length, np.inf)))
    return Anchors(node.astype(np.int32), cost, meters)


def door_to_door(
    graph: StreetGraph,
    o: EdgeSnap,
    d: EdgeSnap,
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
    oa = anchors(graph, o, weight, origin=True)
    da = anchors(graph, d, weight, origin=False)
    src = np.unique(oa.node[oi][oa.node[oi] >= 0]).astype(np.int32)
    tgt = np.unique(da.node[dj][da.node[dj] >= 0]).astype(np.int32)
    row_of = np.full(graph.n_nodes, -1, dtype=np.int64)
    row_of[src] = np.arange(src.size)
    col_of = np.full(graph.n_nodes, -1, dtype=np.int64)
    col_of[tgt] = np.arange(tgt.size)
    g_cost = np.full((src.size + 1, tgt.size + 1), np.inf)  # last row/col: "no anchor"
    g_met = np.full((src.size + 1, tgt.size + 1), np.inf)
    for lo in range(0, src.size, SOURCE_CHUNK):  # bounds the [k, N] search results in memory
        for k, (dist, pred) in enumerate(rows(src[lo : lo + SOURCE_CHUNK]), start=lo):
            g_cost[k, :-1] = dist[tgt]
            if not weight_is_length and pred is not None:
                g_met[k, :-1] = path_lengths(graph, dist[None, :], pred[None, :], tgt)[0]
    if weight_is_length:
        g_met = g_cost
    n_pairs = oi.size
    total = np.full((n_pairs, 4), np.inf)
    mets = np.full((n_pairs, 4), np.inf)
    for a in (0, 1):
        on = oa.node[oi, a]
        r = np.where(on >= 0, row_of[np.maximum(on, 0)], -1)
        for b in (0, 1):
            dn = da.node[dj, b]
            c = np.where(dn >= 0, col_of[np.maximum(dn, 0)], -1)
            total[:, 2 * a + b] = oa.cost[oi, a] + g_cost[r, c] + da.cost[dj, b]
            mets[:, 2 * a + b] = oa.meters[oi, a] + g_met[r, c] + da.meters[dj, b]
    best = np.argmin(total, axis=1)
    pick = np.arange(n_pairs)
    cost = total[pick, best]
    meters = mets[pick, best]
    slot_a, slot_b = (best // 2).astype(np.int32), (best % 2).astype(np.int32)

    # Along a shared segment, or straight across when that is shorter.
    same = np.flatnonzero(o.edge[oi] == d.edge[dj])
    if same.size:
        e = o.edge[oi[same]]
        dt = d.frac[dj[same]] - o.frac[oi[same]]
        rev = graph.edge_ids(graph.indices[e], graph.edge_source[e])
        w_rev = np.where(rev >= 0, weight[np.maximum(rev, 0)], np.inf)
        back = np.full(dt.shape, np.inf)
        two_way = np.isfinite(w_rev)
        back[two_way] = -dt[two_way] * w_rev[two_way]
        run = np.where(dt >= 0, dt * weight[e], back)
        run_m = np.abs(dt) * graph.length_m[e]
        straight_m = haversine_m(
            o.point_lat[oi[same]],
            o.point_lon[oi[same]],
            d.point_lat[dj[same]],
            d.point_lon[dj[same]],
        )
        off = o.off_m[oi[same]] + d.off_m[dj[same]]
        # Costs here are on-street only; compare like with like by removing the off-street part.
        run_total = run + off * off_weight
        # Straight across only between points closer to each other than to the street (the
        # same spot, facing doors): never a shortcut against a oneway street.
        across = np.where(straight_m <= off, straight_m * off_weight, np.inf)
        direct = np.minimum(run_total, across) - off * off_weight
        direct_m = np.where(run_total <= across, run_m + off, straight_m) - off
        win = direct <= cost[same]
        cost[same[win]] = direct[win]
        meters[same[win]] = direct_m[win]
        how = np.where(run_total <= across, ALONG, ACROSS).astype(np.int32)
        slot_a[same[win]] = how[win]
        slot_b[same[win]] = how[win]
    off_m = o.off_m[oi] + d.off_m[dj]
    return DoorToDoor(
        cost=cost + off_m * off_weight,
        meters=meters + off_m,
        slot_a=slot_a,
        slot_b=slot_b,
        origin_anchors=oa,
        destination_anchors=da,
    )


def leg_coords(
    graph: StreetGraph,
    o: EdgeSnap,
    d: EdgeSnap,
    result: DoorToDoor,
    pred_of: Callable[[int], IntArray],
) -> list[tuple[float, float]]:
    """Polyline of pair 0 of ``result`` (one origin, one destination): point, street, point.

    ``pred_of(node)`` returns the predecessor row of the search from an origin anchor.
    """
    start = (float(o.point_lat[0]), float(o.point_lon[0]))
    end = (float(d.point_lat[0]), float(d.point_lon[0]))
    on_o = (float(o.lat[0]), float(o.lon[0]))
    on_d = (float(d.lat[0]), float(d.lon[0]))
    a, b = int(result.slot_a[0]), int(result.slot_b[0])
    if a == ACROSS:
        return [start, end]
    if a == ALONG:
        return [start, on_o, on_d, end]
    src = int(result.origin_anchors.node[0, a])
    dst = int(result.destination_anchors.node[0, b])
    path = trace_path(pred_of(src), dst)
    mid = list(zip(graph.lat[path].tolist(), graph.lon[path].tolist(), strict=True))
    return [start, on_o, *mid, on_d, end]

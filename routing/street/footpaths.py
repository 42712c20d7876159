"""Footpaths between nearby stops, for the compiled timetable's transfer CSR.

``footpaths(graph_or_None, stop_lat, stop_lon, radius_m=400)`` returns every ordered pair of
distinct stops whose walking distance is at most ``radius_m``, with walking seconds (rounded
up). Candidates come from a KD-tree radius query (a walk is never shorter than the great-circle
distance); with a walking :class:`StreetGraph` distances are bounded Dijkstra searches on it
(plus the snapping distance at both ends), else the straight-line model. A stop farther than
``max_snap_m`` from the graph keeps straight-line footpaths.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from gtfs.compiled import IntArray
from routing.street.geo import as_latlon, chord_m, haversine_m, to_xyz
from routing.street.graph import StreetGraph
from routing.street.straight_line import (
    DEFAULT_DETOUR,
    DEFAULT_WALK_SPEED_MPS,
    check_speed,
    walk_seconds,
)

DEFAULT_MAX_SNAP_M = 300.0


def footpaths(
    graph: StreetGraph | None,
    stop_lat: npt.ArrayLike,
    stop_lon: npt.ArrayLike,
    radius_m: float = 400.0,
    walk_speed_mps: float = DEFAULT_WALK_SPEED_MPS,
    *,
    detour: float = DEFAULT_DETOUR,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
) -> tuple[IntArray, IntArray, IntArray]:
    """Walking transfers ``(from_idx, to_idx, seconds)`` sorted by ``(from, to)``.

    Both directions of a pair are listed; a stop never links to itself.
    """
    la, lo = as_latlon(stop_lat, stop_lon)
    speed = check_speed(walk_speed_mps)
    if not np.isfinite(radius_m) or radius_m < 0:
        raise ValueError(f"radius_m must be >= 0, got {radius_m!r}")
    pairs = cKDTree(to_xyz(la, lo)).query_pairs(float(chord_m(radius_m)), output_type="ndarray")
    a = np.asarray(pairs[:, 0], dtype=np.int64)
    b = np.asarray(pairs[:, 1], dtype=np.int64)
    meters = haversine_m(la[a], lo[a], la[b], lo[b]) * detour
    if graph is not None and a.size:
        from routing.street.shortest_paths import pair_distances

        meters = pair_distances(graph, la, lo, a, b, radius_m, max_snap_m, fallback=meters)
    keep = meters <= radius_m
    a, b, meters = a[keep], b[keep], meters[keep]
    src = np.concatenate((a, b)).astype(np.int32)
    dst = np.concatenate((b, a)).astype(np.int32)
    sec = walk_seconds(np.concatenate((meters, meters)), speed)
    order = np.lexsort((dst, src))
    return src[order], dst[order], sec[order]

"""Footpaths between nearby stops, for the compiled timetable's transfer CSR.

``footpaths(graph_or_None, stop_lat, stop_lon, radius_m=400)`` returns every ordered pair of
distinct stops whose walking distance is at most ``radius_m``, with walking seconds (rounded
up). Candidates come from a KD-tree radius query (a walk is never shorter than the great-circle
distance); with a walking :class:`StreetGraph` distances are bounded Dijkstra searches on it
(plus the snapping distance at both ends), else the straight-line model. A stop farther than
``max_snap_m`` from the graph keeps straight-line footpaths; a stop without coordinates gets
none. :func:`footpath_source` plugs this into ``compile_timetable(..., footpaths=...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from gtfs.compiled import FloatArray, IntArray
from gtfs.footpaths import Footpaths
from routing.street.door_to_door import door_to_door
from routing.street.edge_snap import edge_index
from routing.street.errors import InvalidCoordinates
from routing.street.geo import as_latlon, chord_m, haversine_m, to_xyz
from routing.street.graph import StreetGraph
from routing.street.shortest_paths import SOURCE_CHUNK, search_from_points
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
    lat_all = np.atleast_1d(np.asarray(stop_lat, dtype=np.float64))
    lon_all = np.atleast_1d(np.asarray(stop_lon, dtype=np.float64))
    if lat_all.shape != lon_all.shape or lat_all.ndim != 1:
        raise InvalidCoordinates("stop_lat and stop_lon must be 1-D arrays of equal length")
    # Stops without coordinates (GTFS entrances, generic nodes) simply get no footpath.
    located = np.flatnonzero(np.isfinite(lat_all) & np.isfinite(lon_all))
    la, lo = as_latlon(lat_all[located], lon_all[located])
    speed = check_speed(walk_speed_mps)
    if not np.isfinite(radius_m) or radius_m < 0:
        raise ValueError(f"radius_m must be >= 0, got {radius_m!r}")
    pairs = cKDTree(to_xyz(la, lo)).query_pairs(float(chord_m(radius_m)), output_type="ndarray")
    a = np.asarray(pairs[:, 0], dtype=np.int64).reshape(-1)
    b = np.asarray(pairs[:, 1], dtype=np.int64).reshape(-1)
    meters = haversine_m(la[a], lo[a], la[b], lo[b]) * detour
    if graph is not None and a.size:
        meters = _graph_meters(graph, la, lo, a, b, radius_m, max_snap_m, fallback=meters)
    keep = meters <= radius_m
    a, b, meters = located[a[keep]], located[b[keep]], meters[keep]
    src = np.concatenate((a, b)).astype(np.int32)
    dst = np.concatenate((b, a)).astype(np.int32)
    sec = walk_seconds(np.concatenate((meters, meters)), speed)
    order = np.lexsort((dst, src))
    return src[order], dst[order], sec[order]


def footpath_source(
    graph: StreetGraph | None,
    radius_m: float = 400.0,
    walk_speed_mps: float = DEFAULT_WALK_SPEED_MPS,
) -> Callable[[FloatArray, FloatArray], Footpaths]:
    """A ``footpaths=`` callable for ``gtfs.compile.compile_timetable``.

    The compile step calls it with the compiled stops' coordinates, so stop indices match.
    """

    def build(stop_lat: FloatArray, stop_lon: FloatArray) -> Footpaths:
        a, b, sec = footpaths(graph, stop_lat, stop_lon, radius_m, walk_speed_mps)
        return Footpaths(a, b, sec)

    return build


def _graph_meters(
    graph: StreetGraph,
    lat: FloatArray,
    lon: FloatArray,
    a: npt.NDArray[np.int64],
    b: npt.NDArray[np.int64],
    radius_m: float,
    max_snap_m: float,
    fallback: FloatArray,
) -> FloatArray:
    """Walking metres from ``a[i]`` to ``b[i]`` on the graph, searches bounded by ``radius_m``.

    Pairs with a stop beyond ``max_snap_m`` keep their ``fallback`` distance; pairs farther than
    ``radius_m`` come back as ``inf``. Sources go in groups so memory stays bounded.
    """
    snaps = edge_index(graph).links(lat, lon)
    ok = snaps.off_m[:, 0] <= max_snap_m
    out = np.asarray(fallback, dtype=np.float64).copy()
    both = np.flatnonzero(ok[a] & ok[b])
    both = both[np.argsort(a[both], kind="stable")]

    rows = partial(search_from_points, graph.length_matrix, limit=radius_m)
    group = (np.cumsum(np.r_[0, np.diff(a[both]) != 0]) // SOURCE_CHUNK).astype(np.int64)
    for lo, hi in zip(*_runs(group), strict=True):
        sel = both[lo:hi]
        res = door_to_door(
            graph, snaps, snaps, a[sel], b[sel], graph.length_m, rows, 1.0, weight_is_length=True
        )
        out[sel] = res.meters
    return out


def _runs(keys: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Start and end offsets of the runs of equal values in a sorted array."""
    if keys.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]).astype(np.int64)
    return starts, np.r_[starts[1:], keys.size].astype(np.int64)


def street_transfer_seconds(
    graph: StreetGraph,
    stop_lat: npt.ArrayLike,
    stop_lon: npt.ArrayLike,
    transfer_ptr: npt.ArrayLike,
    transfer_to: npt.ArrayLike,
    transfer_s: npt.ArrayLike,
    walk_speed_mps: float = DEFAULT_WALK_SPEED_MPS,
    *,
    radius_m: float = 2000.0,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
) -> IntArray:
    """A compiled transfer CSR's seconds, re-timed on the street graph.

    For a timetable compiled without the OSM extract (straight-line footpaths): every
    transfer between two distinct located stops takes at least the street walk (the larger of
    its compiled time and the walk on ``graph``), so a crossing with no bridge or a fenced
    motorway costs its detour. Changes at one stop, stops off the graph (beyond
    ``max_snap_m``) and pairs the graph cannot join within ``radius_m`` keep their times;
    transfers.txt minimum times are never shortened.
    """
    ptr = np.asarray(transfer_ptr, dtype=np.int64)
    dst_all = np.asarray(transfer_to, dtype=np.int64)
    out = np.asarray(transfer_s, dtype=np.int32).copy()
    lat_all = np.atleast_1d(np.asarray(stop_lat, dtype=np.float64))
    lon_all = np.atleast_1d(np.asarray(stop_lon, dtype=np.float64))
    if ptr.shape != (lat_all.shape[0] + 1,) or dst_all.shape != out.shape:
        raise ValueError("transfer arrays do not match the stops")
    speed = check_speed(walk_speed_mps)
    src_all = np.repeat(np.arange(lat_all.shape[0], dtype=np.int64), np.diff(ptr))
    located = np.isfinite(lat_all) & np.isfinite(lon_all)
    edges = np.flatnonzero((src_all != dst_all) & located[src_all] & located[dst_all])
    if edges.size == 0:
        return out
    stops = np.flatnonzero(located)
    pos = np.full(lat_all.shape[0], -1, dtype=np.int64)
    pos[stops] = np.arange(stops.size)
    la, lo = as_latlon(lat_all[stops], lon_all[stops])
    a, b = pos[src_all[edges]], pos[dst_all[edges]]
    # Off-graph stops fall back to "no constraint" (0 m), so their compiled time stands.
    meters = _graph_meters(graph, la, lo, a, b, radius_m, max_snap_m, np.zeros(edges.size))
    ok = np.isfinite(meters)
    street = walk_seconds(meters[ok], speed)
    out[edges[ok]] = np.maximum(out[edges[ok]], street)
    return out

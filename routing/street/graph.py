"""The street graph: one travel mode's streets as flat CSR arrays.

Nodes are OSM nodes (every vertex of every kept way, so snapping to a node lands on the street
line itself); a directed edge ``u -> v`` is the straight segment between two consecutive way
vertices. The out-edges of node ``u`` are ``indices[indptr[u]:indptr[u + 1]]``, with per-edge
``length_m``, free-flow ``speed_kmh`` (``maxspeed`` or the highway-class default; the walking
speed for walking graphs), ``highway`` class code (index into :data:`HIGHWAY_CLASSES`), source ``way_id`` and
``name_code``: the way's OSM ``name`` as an index into ``names`` (-1: unnamed), which
walking directions (:mod:`routing.street.directions`) read.

Only the largest strongly connected component is kept, so every snapped point can reach every
other. Parallel edges ``u -> v`` collapse to the shortest one, so an edge is identified by its
end nodes (which the path-length pass of :mod:`routing.street.shortest_paths` relies on).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from gtfs.compiled import FloatArray, Int8Array, Int64Array, IntArray
from routing.street.errors import OsmLoadError
from routing.street.geo import arc_m, as_latlon, haversine_m, to_xyz
from routing.street.profiles import DRIVE_HIGHWAYS, VehicleProfile

Mode = Literal["walk", "drive"]

# Driving classes first, so a drive edge's code indexes DRIVE_HIGHWAYS too.
HIGHWAY_CLASSES: tuple[str, ...] = (
    *DRIVE_HIGHWAYS,
    "pedestrian",
    "footway",
    "path",
    "steps",
    "track",
    "cycleway",
    "bridleway",
    "corridor",
    "sidewalk",
    "crossing",
    "platform",
    "elevator",
)
HIGHWAY_CODE: dict[str, int] = {h: i for i, h in enumerate(HIGHWAY_CLASSES)}

# Two OSM vertices at the same position would give a zero-length edge; keep weights positive.
MIN_EDGE_M = 0.01
# 2: edges carry their way's name (``name_code``/``names``); a version-1 cache is rebuilt.
GRAPH_FORMAT_VERSION = 2


@dataclass(frozen=True, eq=False)
class StreetGraph:
    """A directed street graph in CSR form (see the module docstring)."""

    mode: Mode
    node_osm_id: Int64Array
    lat: FloatArray
    lon: FloatArray
    indptr: IntArray  # [N+1]
    indices: IntArray  # [E] target node of each edge
    length_m: FloatArray  # [E]
    speed_kmh: FloatArray  # [E]
    highway: Int8Array  # [E]
    way_id: Int64Array  # [E]
    meta: dict[str, object] = field(default_factory=dict)
    #: [E] index into ``names`` of each edge's street name, -1 where its way has none.
    name_code: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    names: npt.NDArray[np.str_] = field(default_factory=lambda: np.zeros(0, dtype="<U1"))

    def edge_names(self, edges: npt.ArrayLike) -> list[str | None]:
        """The street name of each edge index (None: unnamed, or ``-1``: no edge)."""
        e = np.asarray(edges, dtype=np.int64)
        if self.name_code.size == 0:
            return [None] * int(e.size)
        code = np.where(e >= 0, self.name_code[np.maximum(e, 0)], -1)
        return [str(self.names[c]) if c >= 0 else None for c in code.tolist()]

    @property
    def n_nodes(self) -> int:
        return int(self.lat.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.indices.shape[0])

    @cached_property
    def edge_source(self) -> IntArray:
        """Source node of every edge, ``[E]``."""
        return np.repeat(np.arange(self.n_nodes, dtype=np.int32), np.diff(self.indptr))

    @cached_property
    def node_tree(self) -> cKDTree:
        """KD-tree of the nodes on 3-D sphere coordinates (see :mod:`routing.street.geo`)."""
        return cKDTree(to_xyz(self.lat, self.lon))

    @cached_property
    def length_matrix(self) -> csr_matrix:
        """The graph weighted by edge length (metres): what walking searches run on."""
        return self.matrix(self.length_m)

    def matrix(self, weights: FloatArray, keep: npt.NDArray[np.bool_] | None = None) -> csr_matrix:
        """The graph as a scipy sparse matrix with the given per-edge weights.

        ``keep`` drops edges (e.g. highway classes a vehicle may not use).
        """
        if keep is None:
            return csr_matrix((weights, self.indices, self.indptr), shape=(self.n_nodes,) * 2)
        src, dst = self.edge_source[keep], self.indices[keep]
        return csr_matrix((weights[keep], (src, dst)), shape=(self.n_nodes,) * 2)

    def drive_seconds(self, profile: VehicleProfile, factor: float = 1.0) -> FloatArray:
        """Per-edge driving seconds of ``profile`` with time-of-day ``factor``."""
        kmh = np.minimum(self.speed_kmh * profile.speed_factor * factor, profile.max_speed_kmh)
        return np.asarray(self.length_m / (kmh / 3.6))

    def allowed(self, profile: VehicleProfile) -> npt.NDArray[np.bool_] | None:
        """Mask of the edges ``profile`` may use, or ``None`` when it may use them all."""
        barred = [HIGHWAY_CODE[h] for h in profile.barred_highways]
        if not barred:
            return None
        return np.asarray(~np.isin(self.highway, barred))

    @cached_property
    def edge_key(self) -> Int64Array:
        """``source * N + target`` per edge: sorted, as edges are ordered by (source, target)."""
        return self.edge_source.astype(np.int64) * self.n_nodes + self.indices

    def edge_ids(self, u: npt.ArrayLike, v: npt.ArrayLike) -> IntArray:
        """Index of edge ``u[i] -> v[i]`` for each pair, -1 where there is none (vectorised)."""
        key = np.asarray(u, dtype=np.int64) * self.n_nodes + np.asarray(v, dtype=np.int64)
        pos = np.searchsorted(self.edge_key, key)
        pos_c = np.minimum(pos, max(self.n_edges - 1, 0))
        hit = (pos < self.n_edges) & (self.edge_key[pos_c] == key)
        return np.where(hit, pos_c, -1).astype(np.int32)

    # --- construction ------------------------------------------------------------------------
    @classmethod
    def from_edges(
        cls,
        mode: Mode,
        node_osm_id: Int64Array,
        lat: FloatArray,
        lon: FloatArray,
        src: IntArray,
        dst: IntArray,
        speed_kmh: FloatArray,
        highway: Int8Array,
        way_id: Int64Array,
        meta: dict[str, object] | None = None,
        name_code: IntArray | None = None,
        names: npt.ArrayLike | None = None,
    ) -> StreetGraph:
        """Build a graph from directed edges over node arrays (``name_code``: per edge, an
        index into ``names``, -1 for unnamed; absent: every edge unnamed).

        Drops self-loops, collapses parallel edges to the shortest, keeps the largest strongly
        connected component and renumbers its nodes.
        """
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        names_arr = np.asarray([] if names is None else names, dtype=np.str_)
        if name_code is None or names_arr.size == 0:
            name_code = np.full(src.size, -1, dtype=np.int32)
        name_code = np.asarray(name_code, dtype=np.int32)
        length = np.maximum(haversine_m(lat[src], lon[src], lat[dst], lon[dst]), MIN_EDGE_M)
        ok = src != dst
        src, dst, length = src[ok], dst[ok], length[ok]
        speed_kmh, highway, way_id = speed_kmh[ok], highway[ok], way_id[ok]
        name_code = name_code[ok]
        if src.size == 0:
            raise OsmLoadError(f"no {mode} street edges in the extract")
        # Sort by (src, dst, length) and keep the first (shortest) of each parallel group.
        order = np.lexsort((length, dst, src))
        src, dst, length = src[order], dst[order], length[order]
        speed_kmh, highway, way_id = speed_kmh[order], highway[order], way_id[order]
        name_code = name_code[order]
        first = np.ones(src.size, dtype=bool)
        first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
        src, dst, length = src[first], dst[first], length[first]
        speed_kmh, highway, way_id = speed_kmh[first], highway[first], way_id[first]
        name_code = name_code[first]

        n = int(lat.shape[0])
        adj = csr_matrix((np.ones(src.size), (src, dst)), shape=(n, n))
        _, labels = connected_components(adj, directed=True, connection="strong")
        # Isolated nodes form singleton components; the biggest one among edge ends wins.
        sizes = np.bincount(labels)
        giant = int(np.argmax(sizes))
        keep_node = labels == giant
        keep_edge = keep_node[src] & keep_node[dst]
        new_id = np.full(n, -1, dtype=np.int64)
        new_id[keep_node] = np.arange(int(keep_node.sum()))
        src, dst = new_id[src[keep_edge]], new_id[dst[keep_edge]]
        n_new = int(keep_node.sum())
        indptr = np.zeros(n_new + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=n_new), out=indptr[1:])
        # Edges are still sorted by (old src, dst); renumbering is monotonic, so still by src.
        return cls(
            mode=mode,
            node_osm_id=np.asarray(node_osm_id[keep_node], dtype=np.int64),
            lat=np.asarray(lat[keep_node], dtype=np.float64),
            lon=np.asarray(lon[keep_node], dtype=np.float64),
            indptr=indptr.astype(np.int32),
            indices=dst.astype(np.int32),
            length_m=np.asarray(length[keep_edge], dtype=np.float64),
            speed_kmh=np.asarray(speed_kmh[keep_edge], dtype=np.float64),
            highway=np.asarray(highway[keep_edge], dtype=np.int8),
            way_id=np.asarray(way_id[keep_edge], dtype=np.int64),
            meta=dict(meta or {}),
            name_code=np.asarray(name_code[keep_edge], dtype=np.int32),
            names=names_arr if names_arr.size else np.zeros(0, dtype="<U1"),
        )

    # --- persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the graph to one ``.npz`` file."""
        np.savez_compressed(
            path,
            format_version=np.int32(GRAPH_FORMAT_VERSION),
            mode=np.str_(self.mode),
            node_osm_id=self.node_osm_id,
            lat=self.lat,
            lon=self.lon,
            indptr=self.indptr,
            indices=self.indices,
            length_m=self.length_m,
            speed_kmh=self.speed_kmh,
            highway=self.highway,
            way_id=self.way_id,
            name_code=self.name_code,
            names=self.names,
        )

    @classmethod
    def load(cls, path: str | Path) -> StreetGraph:
        """Read a graph written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["format_version"]) != GRAPH_FORMAT_VERSION:
                    raise OsmLoadError(f"{path}: street graph format {int(z['format_version'])}")
                mode = str(z["mode"])
                if mode not in ("walk", "drive"):
                    raise OsmLoadError(f"{path}: unknown street graph mode {mode!r}")
                arrays = {k: z[k] for k in z.files if k not in ("format_version", "mode")}
        except (OSError, KeyError, ValueError) as exc:
            if isinstance(exc, OsmLoadError):
                raise
            raise OsmLoadError(f"cannot read street graph {path}: {exc}") from exc
        return cls(mode=mode, meta={"source": str(path)}, **arrays)  # type: ignore[arg-type]


def snap(graph: StreetGraph, lat: npt.ArrayLike, lon: npt.ArrayLike) -> tuple[IntArray, FloatArray]:
    """Nearest graph node of each point: ``(node_idx[n], distance_m[n])`` (great-circle)."""
    la, lo = as_latlon(lat, lon)
    chord, idx = graph.node_tree.query(to_xyz(la, lo))
    return np.asarray(idx, dtype=np.int32), arc_m(chord)

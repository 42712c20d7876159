"""Read an OSM extract (``.osm.pbf``/``.osm``) into walking and driving :class:`StreetGraph`s.

pyosmium streams the file once with node locations attached to ways; the per-way tag rules
live in :mod:`routing.street.osm_rules`. Segment and graph construction are vectorised numpy
(:meth:`StreetGraph.from_edges`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import osmium

from routing.street.errors import OsmLoadError
from routing.street.graph import HIGHWAY_CODE, StreetGraph
from routing.street.osm_rules import drive_attributes, walk_allowed
from routing.street.straight_line import DEFAULT_WALK_SPEED_MPS

PROFILES = ("walk", "drive")


def load_osm(path_pbf: str | Path, profiles: Iterable[str] = PROFILES) -> dict[str, StreetGraph]:
    """Build one street graph per requested profile (``"walk"``, ``"drive"``).

    Raises
    ------
    OsmLoadError
        When the file is missing or unreadable, or holds no street for a profile.
    ValueError
        For an unknown profile name.
    """
    wanted = tuple(dict.fromkeys(profiles))
    unknown = [p for p in wanted if p not in PROFILES]
    if unknown or not wanted:
        raise ValueError(f"unknown street profiles {unknown}; choose from {PROFILES}")
    path = Path(path_pbf)
    if not path.is_file():
        raise OsmLoadError(f"OSM extract not found: {path}")

    refs: list[int] = []
    lats: list[float] = []
    lons: list[float] = []
    way_len: list[int] = []
    way_ids: list[int] = []
    walk_ok: list[bool] = []
    oneway: list[int] = []  # 2 = not drivable
    speed: list[float] = []
    hw_code: list[int] = []
    # The way's street name (OSM ``name``) for walking directions: a code into ``names``.
    name_of: dict[str, int] = {}
    way_name: list[int] = []
    try:
        # Node locations are indexed in C++; only highway ways reach Python.
        processor = (
            osmium.FileProcessor(str(path))
            .with_locations()
            .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
            .with_filter(osmium.filter.KeyFilter("highway"))
        )
        for obj in processor:
            if not isinstance(obj, osmium.osm.Way):
                continue
            hw = obj.tags.get("highway")
            if hw is None or hw not in HIGHWAY_CODE:
                continue
            tags = {t.k: t.v for t in obj.tags}
            walk = "walk" in wanted and walk_allowed(tags)
            drive = drive_attributes(tags) if "drive" in wanted else None
            if not walk and drive is None:
                continue
            n = 0
            for nd in obj.nodes:
                loc = nd.location
                refs.append(nd.ref)
                if loc.valid():
                    lats.append(loc.lat)
                    lons.append(loc.lon)
                else:  # node cut off by the extract: its segments are dropped below
                    lats.append(np.nan)
                    lons.append(np.nan)
                n += 1
            way_len.append(n)
            way_ids.append(obj.id)
            walk_ok.append(walk)
            oneway.append(2 if drive is None else drive[0])
            speed.append(0.0 if drive is None else drive[1])
            hw_code.append(HIGHWAY_CODE[hw])
            name = tags.get("name", "").strip()
            way_name.append(name_of.setdefault(name, len(name_of)) if name else -1)
    except RuntimeError as exc:  # libosmium reports format errors as RuntimeError
        raise OsmLoadError(f"cannot read OSM extract {path}: {exc}") from exc
    if not refs:
        raise OsmLoadError(f"no streets in OSM extract {path}")

    ref_arr = np.asarray(refs, dtype=np.int64)
    lat_v = np.asarray(lats, dtype=np.float64)
    lon_v = np.asarray(lons, dtype=np.float64)
    lens = np.asarray(way_len, dtype=np.int64)
    way_of_vertex = np.repeat(np.arange(lens.size), lens)
    node_ids, node_of_vertex = np.unique(ref_arr, return_inverse=True)
    node_lat = np.full(node_ids.size, np.nan)
    node_lon = np.full(node_ids.size, np.nan)
    node_lat[node_of_vertex] = lat_v
    node_lon[node_of_vertex] = lon_v

    # Segment k joins vertex k and k+1 of the same way, both with a location.
    last = np.cumsum(lens) - 1
    seg = np.ones(ref_arr.size, dtype=bool)
    seg[last] = False
    seg &= np.isfinite(lat_v)
    seg[:-1] &= np.isfinite(lat_v[1:])
    k = np.flatnonzero(seg)
    u, v, w = node_of_vertex[k], node_of_vertex[k + 1], way_of_vertex[k]

    way_id_arr = np.asarray(way_ids, dtype=np.int64)
    hw_arr = np.asarray(hw_code, dtype=np.int8)
    name_arr = np.asarray(way_name, dtype=np.int32)
    names = np.asarray(list(name_of), dtype=np.str_)
    out: dict[str, StreetGraph] = {}
    meta: dict[str, object] = {"source": str(path)}
    if "walk" in wanted:
        m = np.asarray(walk_ok, dtype=bool)[w]
        src = np.concatenate((u[m], v[m]))
        dst = np.concatenate((v[m], u[m]))
        ww = np.concatenate((w[m], w[m]))
        out["walk"] = StreetGraph.from_edges(
            "walk",
            node_ids,
            node_lat,
            node_lon,
            src,
            dst,
            np.full(src.size, DEFAULT_WALK_SPEED_MPS * 3.6),
            hw_arr[ww],
            way_id_arr[ww],
            meta,
            name_arr[ww],
            names,
        )
    if "drive" in wanted:
        ow = np.asarray(oneway, dtype=np.int8)[w]
        fwd = (ow == 0) | (ow == 1)
        bwd = (ow == 0) | (ow == -1)
        src = np.concatenate((u[fwd], v[bwd]))
        dst = np.concatenate((v[fwd], u[bwd]))
        ww = np.concatenate((w[fwd], w[bwd]))
        out["drive"] = StreetGraph.from_edges(
            "drive",
            node_ids,
            node_lat,
            node_lon,
            src,
            dst,
            np.asarray(speed, dtype=np.float64)[ww],
            hw_arr[ww],
            way_id_arr[ww],
            meta,
            name_arr[ww],
            names,
        )
    return out

"""Where accessibility is measured from and to: H3 cells, census mesh cells, destinations.

* H3 cells of a network's area (every cell whose centre can walk to a stop);
* Japan's standard grid square ("JIS X 0410" mesh) codes decoded to cells: a 4-digit first
  order code ``pp qq`` (``lat = pp / 1.5``, ``lon = qq + 100``, 40' x 1 degree), a second order
  ``r s`` (8 x 8, 5' x 7'30"), a third order ``t u`` (10 x 10, 30" x 45"), and the 500 m half
  mesh digit ``1..4`` (1 south-west, 2 south-east, 3 north-west, 4 north-east);
* the census population on that mesh (e-Stat's 500 m CSV, no header: code, population, male,
  female, households);
* destinations uploaded as CSV (``name, kind, lat, lon``; ``lng``/``longitude``/``longtitude``
  accepted) or GeoJSON points (``name`` and ``kind`` properties), and Hokkaido's hospital
  register (``emergency`` = ○ marks emergency hospitals).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import h3
import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.spatial import cKDTree

from routing.street.geo import chord_m, to_xyz

F64 = npt.NDArray[np.float64]

MAX_DESTINATIONS = 20_000
MAX_MESH_CELLS = 200_000


# --- H3 --------------------------------------------------------------------------------------
def area_cells(
    stop_lat: F64, stop_lon: F64, resolution: int, radius_m: float
) -> tuple[list[str], F64, F64]:
    """H3 cells whose centre lies within ``radius_m`` (straight line) of a stop, sorted, with
    their centres ``(cells, lat, lon)``."""
    if not 5 <= resolution <= 11:
        raise ValueError("H3 resolution must be within 5..11 for accessibility")
    edge = h3.average_hexagon_edge_length(resolution, unit="m")
    k = int(np.ceil(radius_m / (1.5 * edge))) + 1
    seeds = {
        h3.latlng_to_cell(float(a), float(b), resolution)
        for a, b in zip(stop_lat, stop_lon, strict=True)
    }
    cand: set[str] = set()
    for c in seeds:
        cand.update(h3.grid_disk(c, k))
    cells = sorted(cand)
    if not cells:
        return [], np.zeros(0), np.zeros(0)
    ll = np.array([h3.cell_to_latlng(c) for c in cells], dtype=np.float64)
    tree = cKDTree(to_xyz(stop_lat, stop_lon))
    d, _ = tree.query(to_xyz(ll[:, 0], ll[:, 1]), k=1)
    keep = d <= float(chord_m(radius_m))
    kept = [c for c, ok in zip(cells, keep, strict=True) if ok]
    return kept, ll[keep, 0], ll[keep, 1]


# --- JIS mesh --------------------------------------------------------------------------------
@dataclass(frozen=True)
class MeshCells:
    """Decoded mesh cells: south-west corner and size (degrees) of each."""

    codes: npt.NDArray[np.int64]
    south: F64
    west: F64
    dlat: F64
    dlon: F64

    @property
    def centre_lat(self) -> F64:
        return self.south + self.dlat / 2

    @property
    def centre_lon(self) -> F64:
        return self.west + self.dlon / 2

    def polygon(self, i: int) -> list[list[float]]:
        """Closed ring ``[[lon, lat], ...]`` of cell ``i``."""
        s, w, a, b = (
            float(self.south[i]),
            float(self.west[i]),
            float(self.dlat[i]),
            float(self.dlon[i]),
        )
        return [[w, s], [w + b, s], [w + b, s + a], [w, s + a], [w, s]]


def decode_mesh(codes: npt.ArrayLike) -> MeshCells:
    """Decode 4-, 6-, 8- or 9-digit JIS mesh codes (vectorised).

    Raises
    ------
    ValueError
        On a code of another length or with an impossible digit.
    """
    text = pd.Series(np.asarray(codes)).astype(str).str.strip()
    n = text.str.len()
    if not n.isin([4, 6, 8, 9]).all() or not text.str.isdigit().all():
        bad = text[~(n.isin([4, 6, 8, 9]) & text.str.isdigit())].iloc[0]
        raise ValueError(f"not a JIS mesh code: {bad!r}")
    padded = text.str.pad(9, side="right", fillchar="0")
    d = np.array([[int(ch) for ch in code] for code in padded], dtype=np.int64).reshape(-1, 9)
    n_arr = n.to_numpy()
    p = d[:, 0] * 10 + d[:, 1]
    q = d[:, 2] * 10 + d[:, 3]
    south = p / 1.5
    west = q + 100.0
    dlat = np.full(len(d), 2 / 3)
    dlon = np.ones(len(d))
    second = n_arr >= 6
    if ((d[second, 4] > 7) | (d[second, 5] > 7)).any():
        raise ValueError("second-order mesh digits must be 0..7")
    south = south + np.where(second, d[:, 4] * (5 / 60), 0.0)
    west = west + np.where(second, d[:, 5] * (7.5 / 60), 0.0)
    dlat = np.where(second, 5 / 60, dlat)
    dlon = np.where(second, 7.5 / 60, dlon)
    third = n_arr >= 8
    south = south + np.where(third, d[:, 6] * (30 / 3600), 0.0)
    west = west + np.where(third, d[:, 7] * (45 / 3600), 0.0)
    dlat = np.where(third, 30 / 3600, dlat)
    dlon = np.where(third, 45 / 3600, dlon)
    half = n_arr == 9
    h = d[:, 8]
    if ((h < 1) | (h > 4))[half].any():
        raise ValueError("the 500 m mesh digit must be 1..4")
    dlat = np.where(half, 15 / 3600, dlat)
    dlon = np.where(half, 22.5 / 3600, dlon)
    south = south + np.where(half & (h >= 3), dlat, 0.0)
    west = west + np.where(half & ((h == 2) | (h == 4)), dlon, 0.0)
    f64 = np.float64
    return MeshCells(
        text.astype(np.int64).to_numpy(),
        np.asarray(south, f64),
        np.asarray(west, f64),
        np.asarray(dlat, f64),
        np.asarray(dlon, f64),
    )


@dataclass(frozen=True)
class Population:
    """People per mesh cell, with the decoded cells."""

    cells: MeshCells
    people: npt.NDArray[np.int64]

    def within(self, south: float, west: float, north: float, east: float) -> Population:
        """Cells whose centre lies in the box."""
        c = self.cells
        keep = (
            (c.centre_lat >= south)
            & (c.centre_lat <= north)
            & (c.centre_lon >= west)
            & (c.centre_lon <= east)
        )
        return Population(
            MeshCells(c.codes[keep], c.south[keep], c.west[keep], c.dlat[keep], c.dlon[keep]),
            self.people[keep],
        )


def read_population(data: str | bytes) -> Population:
    """The census mesh CSV (no header: code, population, ...; a header row is skipped).

    Raises
    ------
    ValueError
        On an unreadable file, a bad code or a negative count.
    """
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    try:
        df = pd.read_csv(io.StringIO(text), header=None, dtype=str, usecols=[0, 1])
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"unreadable population CSV: {exc}") from exc
    if len(df) and not str(df.iloc[0, 0]).strip().isdigit():
        df = df.iloc[1:]
    if len(df) == 0:
        raise ValueError("the population CSV has no rows")
    if len(df) > MAX_MESH_CELLS:
        raise ValueError(f"at most {MAX_MESH_CELLS} mesh cells")
    people = pd.to_numeric(df[1].str.strip(), errors="coerce")
    if people.isna().any() or (people < 0).any():
        raise ValueError("population counts must be non-negative numbers")
    return Population(decode_mesh(df[0].to_numpy()), people.to_numpy(dtype=np.int64))


# --- destinations -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Destinations:
    """Named points with a kind (``hospital``, ``city_hall``, ...)."""

    name: list[str]
    kind: list[str]
    lat: F64
    lon: F64

    def __len__(self) -> int:
        return len(self.name)

    def kinds(self) -> list[str]:
        return sorted(set(self.kind))

    def of_kind(self, kind: str) -> Destinations:
        keep = [i for i, k in enumerate(self.kind) if k == kind]
        return Destinations(
            [self.name[i] for i in keep], [kind] * len(keep), self.lat[keep], self.lon[keep]
        )

    def to_geojson(self) -> dict[str, Any]:
        return {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [float(b), float(a)]},
                    "properties": {"name": n, "kind": k},
                }
                for n, k, a, b in zip(self.name, self.kind, self.lat, self.lon, strict=True)
            ],
        }


def _checked(name: list[str], kind: list[str], lat: F64, lon: F64) -> Destinations:
    if len(name) == 0:
        raise ValueError("no destination given")
    if len(name) > MAX_DESTINATIONS:
        raise ValueError(f"at most {MAX_DESTINATIONS} destinations")
    bad = ~np.isfinite(lat) | ~np.isfinite(lon) | (np.abs(lat) > 90) | (np.abs(lon) > 180)
    if bad.any():
        raise ValueError(f"destination {name[int(np.argmax(bad))]!r} has no valid coordinates")
    return Destinations(name, kind, lat, lon)


def read_destinations(data: str | bytes, default_kind: str = "destination") -> Destinations:
    """Destinations from a CSV or a GeoJSON FeatureCollection of points.

    Raises
    ------
    ValueError
        On an unreadable file, missing coordinates or a non-point feature.
    """
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    if text.lstrip().startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"unreadable GeoJSON: {exc}") from exc
        feats = obj.get("features") if isinstance(obj, dict) else None
        if not isinstance(feats, list):
            raise ValueError("GeoJSON must be a FeatureCollection")
        name, kind, lat, lon = [], [], [], []
        for i, f in enumerate(feats):
            g = (f or {}).get("geometry") or {}
            if g.get("type") != "Point" or not isinstance(g.get("coordinates"), list):
                raise ValueError(f"feature {i} is not a Point")
            c = g["coordinates"]
            props = f.get("properties") or {}
            name.append(str(props.get("name", f"#{i + 1}")))
            kind.append(str(props.get("kind", default_kind)))
            try:
                lon.append(float(c[0]))
                lat.append(float(c[1]))
            except (TypeError, ValueError, IndexError) as exc:
                raise ValueError(f"feature {i} has bad coordinates") from exc
        return _checked(name, kind, np.array(lat, float), np.array(lon, float))
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(f"unreadable CSV: {exc}") from exc
    cols = {c.strip().lower(): c for c in df.columns}
    lat_c = next((cols[c] for c in ("lat", "latitude", "stop_lat") if c in cols), None)
    lon_c = next(
        (cols[c] for c in ("lon", "lng", "longitude", "longtitude", "stop_lon") if c in cols), None
    )
    if lat_c is None or lon_c is None:
        raise ValueError("the CSV needs lat and lon columns")
    name_c = next((cols[c] for c in ("name", "hospital_name", "stop_name") if c in cols), None)
    kind_c = cols.get("kind")
    names = df[name_c].astype(str).tolist() if name_c else [f"#{i + 1}" for i in range(len(df))]
    kinds = df[kind_c].astype(str).str.strip().tolist() if kind_c else [default_kind] * len(df)
    lat = pd.to_numeric(df[lat_c].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    lon = pd.to_numeric(df[lon_c].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    return _checked(names, kinds, lat, lon)


def read_hospitals(data: str | bytes) -> Destinations:
    """Hokkaido's hospital register: kind ``emergency_hospital`` where ``emergency`` is ○,
    ``hospital`` otherwise (quoted fields may span lines; the longitude column is spelt
    ``longtitude``)."""
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    for col in ("hospital_name", "emergency", "latitude", "longtitude"):
        if col not in df.columns:
            raise ValueError(f"hospital register without column {col!r}")
    lat = pd.to_numeric(df["latitude"].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    lon = pd.to_numeric(df["longtitude"].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(lat) & np.isfinite(lon)
    kind = np.where(df["emergency"].str.strip() == "○", "emergency_hospital", "hospital")
    names = df["hospital_name"].str.strip().to_numpy()
    return _checked([str(x) for x in names[ok]], [str(x) for x in kind[ok]], lat[ok], lon[ok])

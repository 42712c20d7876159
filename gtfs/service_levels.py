"""Service levels of a feed per route, stop and time band, computed with gtfs-kit.

A planner asks "how often does the bus come, when does it start and stop, how many hours and
kilometres does the network run" per route and per stop, in time bands of one service day.
gtfs-kit (the card's library for feed analysis) answers all of that:

* ``gtfs_kit.compute_trip_stats``: each trip's start/end, duration and distance;
* ``gtfs_kit.routes.compute_route_stats_0``: per route, trips, first/last departures, headways
  (min/mean/max between trip starts inside a window), service hours and kilometres;
* ``gtfs_kit.stops.compute_stop_stats_0``: per stop, trips, routes, headways and first/last
  departures.

Three things are hand-written, each because gtfs-kit does not do it:

* *time bands* — gtfs-kit's statistics take one headway window per call, so each band is a call
  on the trips starting in it (routes) or the stop times departing in it (stops);
* *trip distance without shapes* — gtfs-kit needs ``shapes.txt`` or ``shape_dist_traveled``
  and answers NaN otherwise; such trips get the straight-line length along their stops
  (:func:`gtfs.geo.haversine_m`, flagged ``distance_estimated``), so service kilometres of a
  shapeless feed are a lower bound rather than missing;
* *H3 aggregation* — stops' figures summed on H3 hexagons (``h3``) for the map.

The feed reaches gtfs-kit as it was read (:func:`gtfs.writer.write_feed` to a temporary zip
then ``gtfs_kit.read_feed``), so gtfs-kit applies its own typing and cleaning.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gtfs_kit as gk
import h3
import numpy as np
import pandas as pd
from gtfs_kit.routes import compute_route_stats_0
from gtfs_kit.stops import compute_stop_stats_0

from gtfs.feed import Feed
from gtfs.geo import haversine_m
from gtfs.writer import write_feed

DAY_END_S = 48 * 3600


@dataclass(frozen=True)
class TimeBand:
    """A named part of the service day, ``[start_s, end_s)`` seconds after midnight."""

    name: str
    start_s: int
    end_s: int

    def __post_init__(self) -> None:
        if not (0 <= self.start_s < self.end_s <= DAY_END_S):
            raise ValueError(f"time band {self.name!r} must satisfy 0 <= start < end <= 48:00")

    @property
    def start(self) -> str:
        return _hms(self.start_s)

    @property
    def end(self) -> str:
        return _hms(self.end_s)


DEFAULT_BANDS: tuple[TimeBand, ...] = (
    TimeBand("day", 0, 30 * 3600),
    TimeBand("early", 0, 7 * 3600),
    TimeBand("am_peak", 7 * 3600, 9 * 3600),
    TimeBand("midday", 9 * 3600, 16 * 3600),
    TimeBand("pm_peak", 16 * 3600, 19 * 3600),
    TimeBand("evening", 19 * 3600, 30 * 3600),
)
"""The whole day and five bands (peaks as Japanese commuter bus timetables have them)."""

ROUTE_COLUMNS = [
    "band",
    "route_id",
    "route_short_name",
    "num_trips",
    "start_time",
    "end_time",
    "min_headway",
    "mean_headway",
    "max_headway",
    "service_duration",
    "service_distance",
    "distance_estimated",
]
STOP_COLUMNS = [
    "band",
    "stop_id",
    "stop_name",
    "stop_lat",
    "stop_lon",
    "num_trips",
    "num_routes",
    "start_time",
    "end_time",
    "min_headway",
    "mean_headway",
    "max_headway",
]


def _hms(s: int) -> str:
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def parse_bands(spec: str) -> tuple[TimeBand, ...]:
    """Bands from ``"name=HH:MM-HH:MM,..."`` (the API's ``bands`` parameter).

    Raises
    ------
    ValueError
        On a malformed entry or a band outside 00:00-48:00.
    """
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        try:
            name, span = part.split("=", 1)
            a, b = span.split("-", 1)
            out.append(TimeBand(name.strip(), _seconds(a), _seconds(b)))
        except ValueError as exc:
            raise ValueError(f"bad time band {part!r}: {exc}") from exc
    if not out:
        raise ValueError("no time band given")
    return tuple(out)


def _seconds(text: str) -> int:
    parts = [int(x) for x in text.strip().split(":")]
    if len(parts) not in (2, 3) or any(x < 0 for x in parts) or parts[1] >= 60:
        raise ValueError(f"bad time {text!r}")
    return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) == 3 else 0)


def to_gtfs_kit(feed: Feed, dist_units: str = "km") -> gk.Feed:
    """The feed as a ``gtfs_kit.Feed`` (through a temporary zip, read by gtfs-kit itself).

    ``dist_units`` are the units of ``shape_dist_traveled`` in the feed.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = write_feed(feed, Path(tmp) / "feed.zip")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return gk.read_feed(path, dist_units=dist_units)


@dataclass(frozen=True)
class ServiceLevels:
    """Per route and per stop figures for one date, one row per (band, route|stop).

    Headways are minutes, ``service_duration`` hours, ``service_distance`` kilometres, times
    ``HH:MM:SS`` of the service day.
    """

    date: dt.date
    routes: pd.DataFrame
    stops: pd.DataFrame
    route_shapes: dict[str, list[tuple[float, float]]]

    def routes_csv(self) -> str:
        return self.routes.to_csv(index=False)

    def stops_csv(self) -> str:
        return self.stops.to_csv(index=False)

    def stops_geojson(self, band: str | None = None) -> dict[str, Any]:
        """Stops as GeoJSON points carrying their figures (one band, or every band)."""
        df = self.stops if band is None else self.stops[self.stops["band"] == band]
        feats = [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [r["stop_lon"], r["stop_lat"]]},
                "properties": _props(r, exclude=("stop_lat", "stop_lon")),
            }
            for r in df.to_dict("records")
        ]
        return {"type": "FeatureCollection", "features": feats}

    def routes_geojson(self, band: str | None = None) -> dict[str, Any]:
        """Routes as GeoJSON lines (stop to stop along the route's longest trip)."""
        df = self.routes if band is None else self.routes[self.routes["band"] == band]
        feats = []
        for r in df.to_dict("records"):
            line = self.route_shapes.get(str(r["route_id"]), [])
            feats.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "LineString", "coordinates": [[x, y] for y, x in line]},
                    "properties": _props(r),
                }
            )
        return {"type": "FeatureCollection", "features": feats}

    def hexagons(self, band: str, resolution: int = 8) -> pd.DataFrame:
        """Stops' figures summed on H3 cells: trips calling, stops, best mean headway."""
        if not 0 <= resolution <= 15:
            raise ValueError("H3 resolution must be 0..15")
        df = self.stops[self.stops["band"] == band]
        if df.empty:
            return pd.DataFrame(columns=["h3", "num_stops", "num_trips", "best_mean_headway"])
        cells = [
            h3.latlng_to_cell(float(a), float(b), resolution)
            for a, b in zip(df["stop_lat"], df["stop_lon"], strict=True)
        ]
        g = df.assign(h3=cells).groupby("h3", sort=True)
        out = pd.DataFrame(
            {
                "num_stops": g["stop_id"].count(),
                "num_trips": g["num_trips"].sum(),
                "best_mean_headway": g["mean_headway"].min(),
            }
        ).reset_index()
        return out

    def hexagons_geojson(self, band: str, resolution: int = 8) -> dict[str, Any]:
        """:meth:`hexagons` as GeoJSON polygons."""
        return cells_geojson(self.hexagons(band, resolution), "h3")


def cells_geojson(df: pd.DataFrame, cell_col: str = "h3") -> dict[str, Any]:
    """Rows keyed by an H3 cell as a GeoJSON FeatureCollection of hexagons."""
    feats = []
    for r in df.to_dict("records"):
        ring = [[lon, lat] for lat, lon in h3.cell_to_boundary(str(r[cell_col]))]
        ring.append(ring[0])
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": _props(r),
            }
        )
    return {"type": "FeatureCollection", "features": feats}


def _props(row: dict[str, Any], exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k in exclude:
            continue
        if isinstance(v, float | np.floating):
            out[k] = None if not np.isfinite(v) else round(float(v), 4)
        elif isinstance(v, np.integer | np.bool_):
            out[k] = v.item()
        elif v is None or (not isinstance(v, str) and pd.isna(v)):
            out[k] = None
        else:
            out[k] = v if isinstance(v, str | int | bool) else str(v)
    return out


def geojson_text(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _straight_distances_km(gf: gk.Feed, trip_ids: pd.Index) -> pd.Series:
    """Length along the stops (great circle, km) of each trip — gtfs-kit's distance needs
    shapes or ``shape_dist_traveled``."""
    st = gf.stop_times[gf.stop_times["trip_id"].isin(trip_ids)]
    st = st.sort_values(["trip_id", "stop_sequence"])
    xy = gf.stops.set_index("stop_id")[["stop_lat", "stop_lon"]]
    lat = xy["stop_lat"].reindex(st["stop_id"]).to_numpy(dtype=np.float64)
    lon = xy["stop_lon"].reindex(st["stop_id"]).to_numpy(dtype=np.float64)
    same = st["trip_id"].to_numpy()[1:] == st["trip_id"].to_numpy()[:-1]
    seg = np.where(same, haversine_m(lat[:-1], lon[:-1], lat[1:], lon[1:]), 0.0)
    per = pd.Series(np.r_[0.0, seg], index=st.index).groupby(st["trip_id"].to_numpy()).sum()
    return per / 1000.0


def compute_service_levels(
    feed: Feed | gk.Feed,
    date: dt.date,
    bands: tuple[TimeBand, ...] = DEFAULT_BANDS,
    dist_units: str = "km",
) -> ServiceLevels:
    """Service levels of ``date`` per route and stop, for each band (see the module docstring).

    A trip belongs to a band by its first departure (routes); a stop's figures count the stop
    times departing in the band. Headways are gtfs-kit's: gaps between consecutive trip starts
    (routes, both directions pooled as gtfs-kit does) or departures (stops) inside the band.

    Raises
    ------
    ValueError
        When no trip runs on ``date``.
    """
    gf = feed if isinstance(feed, gk.Feed) else to_gtfs_kit(feed, dist_units)
    if gf.frequencies is not None and not gf.frequencies.empty:
        # gtfs-kit's statistics read stop_times only: a frequency-based trip would count once
        # (its template) instead of once per headway. Expanded as the compiler does (every
        # start_time + n * headway_secs before end_time).
        gf = gf.expand_frequencies()
    day = date.strftime("%Y%m%d")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trips = gf.get_trips(day)
        if trips.empty:
            raise ValueError(f"no trip runs on {date.isoformat()}")
        ts = gk.compute_trip_stats(gf)
    ts = ts[ts["trip_id"].isin(trips["trip_id"])].copy()
    ts["distance_estimated"] = ts["distance"].isna()
    if ts["distance_estimated"].any():
        est = _straight_distances_km(gf, pd.Index(ts.loc[ts["distance_estimated"], "trip_id"]))
        ts.loc[ts["distance_estimated"], "distance"] = (
            ts.loc[ts["distance_estimated"], "trip_id"].map(est).to_numpy()
        )
    start_s = ts["start_time"].map(gk.helpers.timestr_to_seconds)

    st = gf.stop_times[gf.stop_times["trip_id"].isin(trips["trip_id"])]
    dep = st["departure_time"].fillna(st["arrival_time"]).map(gk.helpers.timestr_to_seconds)

    route_rows = []
    stop_rows = []
    for band in bands:
        sub = ts[(start_s >= band.start_s) & (start_s < band.end_s)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rs = compute_route_stats_0(sub, band.start, band.end)
        if not rs.empty:
            est = sub.groupby("route_id")["distance_estimated"].any()
            rs["distance_estimated"] = rs["route_id"].map(est).fillna(False).astype(bool)
            rs.insert(0, "band", band.name)
            route_rows.append(rs)
        st_band = st[(dep >= band.start_s) & (dep < band.end_s)]
        if not st_band.empty:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ss = compute_stop_stats_0(st_band, trips, band.start, band.end)
            ss.insert(0, "band", band.name)
            stop_rows.append(ss)

    routes = (
        pd.concat(route_rows, ignore_index=True) if route_rows else pd.DataFrame(columns=["band"])
    )
    routes = routes.reindex(columns=ROUTE_COLUMNS)
    stops_df = (
        pd.concat(stop_rows, ignore_index=True) if stop_rows else pd.DataFrame(columns=["band"])
    )
    meta = gf.stops[["stop_id", "stop_name", "stop_lat", "stop_lon"]]
    stops_df = stops_df.drop(columns=["stop_name", "stop_lat", "stop_lon"], errors="ignore")
    stops_df = stops_df.merge(meta, on="stop_id", how="left").reindex(columns=STOP_COLUMNS)
    return ServiceLevels(date, routes, stops_df, _route_shapes(gf, ts))


def _route_shapes(gf: gk.Feed, ts: pd.DataFrame) -> dict[str, list[tuple[float, float]]]:
    """Each route's longest trip as a stop-to-stop polyline ``[(lat, lon), ...]``."""
    if ts.empty:
        return {}
    longest = ts.sort_values("num_stops", ascending=False).drop_duplicates("route_id")
    st = gf.stop_times[gf.stop_times["trip_id"].isin(longest["trip_id"])]
    st = st.sort_values(["trip_id", "stop_sequence"])
    xy = gf.stops.set_index("stop_id")[["stop_lat", "stop_lon"]]
    route_of = longest.set_index("trip_id")["route_id"]
    out: dict[str, list[tuple[float, float]]] = {}
    for trip_id, g in st.groupby("trip_id", sort=False):
        pts = xy.reindex(g["stop_id"]).dropna()
        out[str(route_of[trip_id])] = [
            (float(a), float(b)) for a, b in zip(pts["stop_lat"], pts["stop_lon"], strict=True)
        ]
    return out

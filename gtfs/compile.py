"""Compile one or several feeds into a :class:`~gtfs.compiled.CompiledTimetable`.

Several feeds
    Feeds compile into one network, in the order given. With more than one feed every id
    (stop, route, trip, service, shape, agency) becomes ``"{feed_id}:{id}"`` so ids stay unique;
    a single feed keeps its raw ids (``prefix_ids`` forces either way). Stops of different
    feeds are linked by the footpaths like any others.

Stop order
    Compiled stop ``i`` is the ``i``-th row of the first feed's stops.txt, then the second
    feed's, etc. (every location_type kept). A ``footpaths`` callable receives the compiled
    ``(stop_lat, stop_lon)`` arrays in that order.

Trips compiled
    Fixed-route trips with at least two stops, every time known (after interpolation and
    frequency expansion, see :mod:`gtfs.stop_times`), known stops, route and non-decreasing
    times. Flex trips (:mod:`gtfs.flex`) and broken trips are counted in ``meta`` instead.

Transfers (CSR ``transfer_*``), by increasing priority
    1. footpaths: straight-line within ``footpath_radius_m`` (:mod:`gtfs.footpaths`) or given;
    2. siblings of one parent station: walking time by straight-line distance, any distance;
    3. transfers.txt stop-to-stop rows (a station expands to its platforms): type 0 walking
       time, 1 (timed) 0 s, 2 ``min_transfer_time``; type 3 removes the pair. Rows naming
       routes or trips, and types 4/5 (in-seat), go to the ``rule_*`` arrays
       (:mod:`gtfs.transfer_rules` tells which applies), except rows that cannot apply: an id
       not compiled, or type 2 without ``min_transfer_time`` (``meta["transfer_rules_dropped"]``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from gtfs.arrays import concat_ranges, csr_ptr, first_index
from gtfs.calendar import ServiceDays, service_days
from gtfs.compiled import CompiledTimetable
from gtfs.errors import FeedError
from gtfs.feed import Feed
from gtfs.footpaths import (
    DEFAULT_FOOTPATH_RADIUS_M,
    DETOUR_FACTOR,
    WALK_SPEED_MPS,
    Footpaths,
    station_member_pairs,
    straight_line_footpaths,
    walk_seconds,
)
from gtfs.geo import haversine_m
from gtfs.patterns import assign_patterns
from gtfs.times import float_column, int_column

FootpathSource = (
    Footpaths
    | tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike]
    | Callable[[npt.NDArray[np.float64], npt.NDArray[np.float64]], Footpaths]
)


@dataclass
class _Part:
    """One feed's pieces with feed-local indices."""

    stops: pd.DataFrame  # id name lat lon parent wheel
    agencies: pd.DataFrame  # id name
    routes: pd.DataFrame  # id agency short long type color
    services: ServiceDays
    trips: pd.DataFrame  # id route service headsign wheel shape
    trip_ptr: npt.NDArray[np.int64]
    st_stop: npt.NDArray[np.int32]
    st_arr: npt.NDArray[np.int32]
    st_dep: npt.NDArray[np.int32]
    st_pickup: npt.NDArray[np.int8]
    st_dropoff: npt.NDArray[np.int8]
    st_seq: npt.NDArray[np.int32]
    shape_ids: npt.NDArray[np.object_]
    shape_ptr: npt.NDArray[np.int64]
    shape_lat: npt.NDArray[np.float64]
    shape_lon: npt.NDArray[np.float64]
    transfers: pd.DataFrame  # raw transfers.txt with prefixed ids
    counts: dict[str, int]


def _ids(s: pd.Series, prefix: str) -> pd.Series:
    s = s.astype(str)
    return (prefix + s).where(s != "", "") if prefix else s


def _lookup(index: pd.Index, values: pd.Series | npt.NDArray[np.object_]) -> npt.NDArray[np.int32]:
    return np.asarray(first_index(index, values), dtype=np.int32)


def _part(feed: Feed, prefix: str) -> _Part:
    # --- stops
    s = feed.stops
    stop_id = _ids(feed.column("stops", "stop_id"), prefix)
    sidx = pd.Index(stop_id)
    parent = _lookup(sidx, _ids(feed.column("stops", "parent_station"), prefix))
    wheel = int_column(s, "wheelchair_boarding", 0, np.int8)
    inherit = (wheel == 0) & (parent >= 0)
    wheel[inherit] = wheel[parent[inherit]]
    stops = pd.DataFrame(
        {
            "id": stop_id.to_numpy(dtype=str),
            "name": feed.column("stops", "stop_name").to_numpy(dtype=str),
            "lat": float_column(s, "stop_lat"),
            "lon": float_column(s, "stop_lon"),
            "parent": parent,
            "wheel": wheel,
        }
    )
    # --- agencies, routes
    agencies = pd.DataFrame(
        {
            "id": _ids(feed.column("agency", "agency_id"), prefix).to_numpy(dtype=str),
            "name": feed.column("agency", "agency_name").to_numpy(dtype=str),
        }
    )
    if agencies.empty:
        agencies = pd.DataFrame({"id": [prefix + "agency"], "name": [""]})
    r = feed.routes
    ragency = _lookup(pd.Index(agencies["id"]), _ids(feed.column("routes", "agency_id"), prefix))
    ragency[ragency < 0] = 0  # blank agency_id: the feed's only (or first) agency
    routes = pd.DataFrame(
        {
            "id": _ids(feed.column("routes", "route_id"), prefix).to_numpy(dtype=str),
            "agency": ragency,
            "short": feed.column("routes", "route_short_name").to_numpy(dtype=str),
            "long": feed.column("routes", "route_long_name").to_numpy(dtype=str),
            "type": int_column(r, "route_type", 3, np.int32),
            "color": feed.column("routes", "route_color").to_numpy(dtype=str),
        }
    )
    # --- services
    sd = service_days(feed)
    if prefix:
        sd = ServiceDays(np.char.add(prefix, sd.service_ids.astype(str)), sd.start, sd.days)
    # --- shapes
    sh = feed.table("shapes")
    if not sh.empty and {"shape_id", "shape_pt_sequence"} <= set(sh.columns):
        sid_codes, shape_uniques = pd.factorize(_ids(sh["shape_id"], prefix))
        seq = int_column(sh, "shape_pt_sequence", 0, np.int64)
        o = np.lexsort((seq, sid_codes))
        shape_ids = np.asarray(shape_uniques, dtype=object)
        shape_ptr = np.r_[0, np.cumsum(np.bincount(sid_codes, minlength=len(shape_ids)))]
        shape_lat = float_column(sh, "shape_pt_lat")[o]
        shape_lon = float_column(sh, "shape_pt_lon")[o]
    else:
        shape_ids = np.zeros(0, dtype=object)
        shape_ptr = np.zeros(1, np.int64)
        shape_lat = shape_lon = np.zeros(0)
    # --- trips
    ts = feed.typed_stop_times
    t = feed.trips
    lengths = np.diff(ts.trip_ptr)
    row_stop_ids = pd.Series(ts.stop_ids, dtype=object)
    # The typed stop times already hold each row's stops.txt row (first match): no second
    # look-up of every row's id. A blank id is never prefixed, so it names no stop.
    st_stop = ts.stop_row.astype(np.int32)
    if prefix:
        st_stop[row_stop_ids.to_numpy() == ""] = -1
    trip_route = _lookup(
        pd.Index(routes["id"]),
        _ids(feed.column("trips", "route_id"), prefix).to_numpy()[ts.trip_row],
    )
    svc_ids = _ids(feed.column("trips", "service_id"), prefix).to_numpy(dtype=object)[ts.trip_row]
    trip_service = _lookup(sd.index(), svc_ids)
    if (trip_service < 0).any():
        # Services named by trips but by no calendar: add them, never running.
        missing = pd.unique(svc_ids[trip_service < 0])
        sd = ServiceDays(
            np.r_[sd.service_ids.astype(str), np.asarray(missing, dtype=str)],
            sd.start,
            np.r_[sd.days, np.zeros((len(missing), sd.days.shape[1]), np.bool_)],
        )
        trip_service = _lookup(sd.index(), svc_ids)
    n_trips = ts.n_trips
    row_trip = ts.trip_of_row()
    bad_row = (ts.arrival < 0) | (ts.departure < 0) | (st_stop < 0) | (ts.departure < ts.arrival)
    prev_dep = np.r_[np.int32(0), ts.departure[:-1]]
    first = np.zeros(len(row_trip), np.bool_)
    first[ts.trip_ptr[:-1][lengths > 0]] = True
    bad_row |= ~first & (ts.arrival < prev_dep)
    trip_bad = np.zeros(n_trips, np.bool_)
    np.logical_or.at(trip_bad, row_trip, bad_row)
    valid = ~ts.trip_flex & ~trip_bad & (lengths >= 2) & (trip_route >= 0)
    keep_t = np.flatnonzero(valid)
    rows = concat_ranges(ts.trip_ptr[keep_t], lengths[keep_t])
    trip_shape = _lookup(
        pd.Index(shape_ids), _ids(feed.column("trips", "shape_id"), prefix).to_numpy()[ts.trip_row]
    )
    tid = ts.trip_ids[keep_t]
    rowk = ts.trip_row[keep_t]
    t_direction = feed.ints("trips", "direction_id", -1, np.int8)
    block_ids = _ids(feed.column("trips", "block_id"), prefix)
    trips = pd.DataFrame(
        {
            "id": np.char.add(prefix, tid.astype(str)) if prefix else tid.astype(str),
            "route": trip_route[keep_t],
            "service": trip_service[keep_t],
            "headsign": feed.column("trips", "trip_headsign").to_numpy(dtype=str)[
                ts.trip_row[keep_t]
            ],
            "wheel": int_column(t, "wheelchair_accessible", 0, np.int8)[ts.trip_row[keep_t]],
            "shape": trip_shape[keep_t],
            "short": feed.column("trips", "trip_short_name").to_numpy(dtype=str)[rowk],
            "direction": t_direction[rowk],
            "block": block_ids.to_numpy(dtype=str)[rowk],
            "bikes": int_column(t, "bikes_allowed", 0, np.int8)[rowk],
        }
    )
    counts = {
        "trips_in_file": len(t),
        "trips_compiled": len(keep_t),
        "flex_trips": int(ts.trip_flex.sum()),
        "frequency_trips": int(ts.trip_from_frequency[keep_t].sum()),
        "dropped_trips": int((~valid & ~ts.trip_flex).sum()),
        "interpolated_stop_times": int(ts.interpolated[rows].sum()),
    }
    tr = feed.table("transfers").copy()
    for col in (
        "from_stop_id",
        "to_stop_id",
        "from_route_id",
        "to_route_id",
        "from_trip_id",
        "to_trip_id",
    ):
        tr[col] = _ids(feed.column("transfers", col), prefix)
    return _Part(
        stops=stops,
        agencies=agencies,
        routes=routes,
        services=sd,
        trips=trips,
        trip_ptr=np.r_[0, np.cumsum(lengths[keep_t])].astype(np.int64),
        st_stop=st_stop[rows],
        st_arr=ts.arrival[rows],
        st_dep=ts.departure[rows],
        st_pickup=ts.pickup[rows],
        st_dropoff=ts.dropoff[rows],
        st_seq=ts.stop_sequence[rows],
        shape_ids=shape_ids,
        shape_ptr=shape_ptr.astype(np.int64),
        shape_lat=shape_lat,
        shape_lon=shape_lon,
        transfers=tr,
        counts=counts,
    )


def _merge_services(parts: list[_Part]) -> tuple[dt.date, npt.NDArray[np.bool_]]:
    spans = [
        (p.services.start, p.services.days.shape[1]) for p in parts if p.services.days.shape[1]
    ]
    if not spans:
        return dt.date(1970, 1, 1), np.zeros(
            (sum(len(p.services.service_ids) for p in parts), 0), np.bool_
        )
    start = min(s for s, _ in spans)
    end = max(s + dt.timedelta(days=n - 1) for s, n in spans)
    n_days = (end - start).days + 1
    blocks = []
    for p in parts:
        b = np.zeros((len(p.services.service_ids), n_days), np.bool_)
        d = p.services.days
        if d.shape[1]:
            off = (p.services.start - start).days
            b[:, off : off + d.shape[1]] = d
        blocks.append(b)
    return start, np.concatenate(blocks, axis=0)


def compile_timetable(
    feeds: Feed | Sequence[Feed],
    *,
    footpath_radius_m: float = DEFAULT_FOOTPATH_RADIUS_M,
    footpaths: FootpathSource | None = None,
    prefix_ids: bool | None = None,
) -> CompiledTimetable:
    """Compile feeds into one routable network (see the module docstring for the rules).

    Parameters
    ----------
    feeds
        One feed or several (their ``feed_id`` must differ).
    footpath_radius_m
        Radius of the straight-line footpaths (ignored when ``footpaths`` is given).
    footpaths
        Footpaths to use instead of straight lines: a :class:`Footpaths`, a tuple
        ``(from_idx, to_idx, seconds)`` of compiled stop indices, or a callable
        ``(stop_lat, stop_lon) -> Footpaths`` (e.g. OSM street walking times).
    prefix_ids
        Prefix ids with ``"{feed_id}:"``; default: only when more than one feed.
    """
    feed_list = [feeds] if isinstance(feeds, Feed) else list(feeds)
    if not feed_list:
        raise FeedError("no_feed", "compile_timetable needs at least one feed")
    fids = [f.feed_id for f in feed_list]
    if len(set(fids)) != len(fids):
        raise FeedError("duplicate_feed_id", f"feed ids must be unique: {fids}", {"feed_ids": fids})
    prefix = len(feed_list) > 1 if prefix_ids is None else prefix_ids
    parts = [_part(f, f"{f.feed_id}:" if prefix else "") for f in feed_list]

    def offsets(sizes: list[int]) -> npt.NDArray[np.int64]:
        return np.r_[0, np.cumsum(sizes)].astype(np.int64)

    s_off = offsets([len(p.stops) for p in parts])
    a_off = offsets([len(p.agencies) for p in parts])
    r_off = offsets([len(p.routes) for p in parts])
    v_off = offsets([len(p.services.service_ids) for p in parts])
    sh_off = offsets([len(p.shape_ids) for p in parts])
    shp_off = offsets([len(p.shape_lat) for p in parts])
    st_off = offsets([len(p.st_stop) for p in parts])

    def shift(a: npt.NDArray[np.integer], off: int) -> npt.NDArray[np.int32]:
        return np.where(a >= 0, a + off, -1).astype(np.int32)

    stops = pd.concat([p.stops for p in parts], ignore_index=True)
    stop_parent = np.concatenate(
        [shift(p.stops["parent"].to_numpy(), int(s_off[i])) for i, p in enumerate(parts)]
    )
    routes = pd.concat([p.routes for p in parts], ignore_index=True)
    route_agency = np.concatenate(
        [shift(p.routes["agency"].to_numpy(), int(a_off[i])) for i, p in enumerate(parts)]
    )
    trips = pd.concat([p.trips for p in parts], ignore_index=True)
    trip_route = np.concatenate(
        [shift(p.trips["route"].to_numpy(), int(r_off[i])) for i, p in enumerate(parts)]
    )
    trip_service = np.concatenate(
        [shift(p.trips["service"].to_numpy(), int(v_off[i])) for i, p in enumerate(parts)]
    )
    trip_shape = np.concatenate(
        [shift(p.trips["shape"].to_numpy(), int(sh_off[i])) for i, p in enumerate(parts)]
    )
    trip_ptr = np.r_[
        0, np.concatenate([p.trip_ptr[1:] + st_off[i] for i, p in enumerate(parts)])
    ].astype(np.int64)
    st_stop = np.concatenate([shift(p.st_stop, int(s_off[i])) for i, p in enumerate(parts)])
    st_arr = np.concatenate([p.st_arr for p in parts]).astype(np.int32)
    st_dep = np.concatenate([p.st_dep for p in parts]).astype(np.int32)
    st_pick = np.concatenate([p.st_pickup for p in parts]).astype(np.int8)
    st_drop = np.concatenate([p.st_dropoff for p in parts]).astype(np.int8)
    st_seq = np.concatenate([p.st_seq for p in parts]).astype(np.int32)

    # --- patterns and trip order
    # Closed pickups / drop-offs are part of the pattern key (see assign_patterns).
    pattern, order = assign_patterns(
        trip_route, trip_ptr, st_stop, st_arr, st_dep, st_pick, st_drop
    )
    lengths = np.diff(trip_ptr)[order]
    rows = concat_ranges(trip_ptr[order], lengths)
    new_trip_ptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    trip_pattern = pattern[order].astype(np.int32)
    n_pat = int(trip_pattern.max()) + 1 if len(trip_pattern) else 0
    pattern_trip_ptr = csr_ptr(trip_pattern, n_pat)
    first_trip = pattern_trip_ptr[:-1]
    pat_len = lengths[first_trip] if n_pat else np.zeros(0, np.int64)
    pattern_stop_ptr = np.r_[0, np.cumsum(pat_len)].astype(np.int32)
    st_stop_sorted = st_stop[rows]
    pattern_stops = st_stop_sorted[concat_ranges(new_trip_ptr[first_trip], pat_len)].astype(
        np.int32
    )
    pattern_route = (
        trip_route[order][first_trip].astype(np.int32) if n_pat else np.zeros(0, np.int32)
    )
    pat_of_entry = np.repeat(np.arange(n_pat, dtype=np.int32), pat_len)
    pos_of_entry = (
        np.arange(len(pattern_stops)) - np.repeat(pattern_stop_ptr[:-1], pat_len)
    ).astype(np.int32)
    n_stops = len(stops)
    sp_order = np.argsort(pattern_stops, kind="stable")
    stop_pattern_ptr = csr_ptr(pattern_stops[sp_order], n_stops)

    # --- transfers
    lat = stops["lat"].to_numpy(dtype=np.float64)
    lon = stops["lon"].to_numpy(dtype=np.float64)
    if footpaths is None:
        fp = straight_line_footpaths(lat, lon, footpath_radius_m)
    elif isinstance(footpaths, Footpaths):
        fp = footpaths
    elif callable(footpaths):
        fp = footpaths(lat, lon)
    else:
        a, b, c = footpaths
        fp = Footpaths(np.asarray(a, np.int32), np.asarray(b, np.int32), np.asarray(c, np.int32))
    if len(fp.from_idx) and (
        min(fp.from_idx.min(), fp.to_idx.min()) < 0
        or max(fp.from_idx.max(), fp.to_idx.max()) >= n_stops
    ):
        raise FeedError("invalid_footpaths", "footpath stop index out of range")
    stop_index = pd.Index(stops["id"])
    t_from, t_to, t_s, rules = _transfers(parts, stop_index, stop_parent, lat, lon, fp)
    transfer_ptr = csr_ptr(t_from, n_stops)

    trip_ids_sorted = trips["id"].to_numpy(dtype=str)[order]
    rule_meta: dict[str, Any] = {}
    rule_arrays = _rule_arrays(
        rules, stop_index, pd.Index(routes["id"]), pd.Index(trip_ids_sorted), rule_meta
    )

    start, days = _merge_services(parts)
    counts: dict[str, int] = {}
    for p in parts:
        for k, v in p.counts.items():
            counts[k] = counts.get(k, 0) + v
    shape_ids = (
        np.concatenate([p.shape_ids for p in parts]).astype(str) if sh_off[-1] else np.zeros(0, str)
    )
    return CompiledTimetable(
        stop_ids=stops["id"].to_numpy(dtype=str),
        stop_names=stops["name"].to_numpy(dtype=str),
        stop_lat=lat,
        stop_lon=lon,
        stop_parent=stop_parent,
        stop_wheelchair=stops["wheel"].to_numpy(dtype=np.int8),
        agency_ids=pd.concat([p.agencies["id"] for p in parts]).to_numpy(dtype=str),
        agency_names=pd.concat([p.agencies["name"] for p in parts]).to_numpy(dtype=str),
        route_ids=routes["id"].to_numpy(dtype=str),
        route_agency=route_agency,
        route_short_names=routes["short"].to_numpy(dtype=str),
        route_long_names=routes["long"].to_numpy(dtype=str),
        route_types=routes["type"].to_numpy(dtype=np.int32),
        route_colors=routes["color"].to_numpy(dtype=str),
        pattern_route=pattern_route,
        pattern_stop_ptr=pattern_stop_ptr,
        pattern_stops=pattern_stops,
        pattern_trip_ptr=pattern_trip_ptr,
        trip_ids=trip_ids_sorted,
        trip_route=trip_route[order].astype(np.int32),
        trip_pattern=trip_pattern,
        trip_service=trip_service[order].astype(np.int32),
        trip_headsigns=trips["headsign"].to_numpy(dtype=str)[order],
        trip_wheelchair=trips["wheel"].to_numpy(dtype=np.int8)[order],
        trip_shape=trip_shape[order].astype(np.int32),
        trip_st_ptr=new_trip_ptr,
        st_arrival=st_arr[rows],
        st_departure=st_dep[rows],
        st_pickup=st_pick[rows],
        st_dropoff=st_drop[rows],
        stop_pattern_ptr=stop_pattern_ptr,
        stop_patterns=pat_of_entry[sp_order],
        stop_pattern_pos=pos_of_entry[sp_order],
        transfer_ptr=transfer_ptr,
        transfer_to=t_to,
        transfer_s=t_s,
        service_ids=np.concatenate([p.services.service_ids.astype(str) for p in parts]),
        service_start=start,
        service_days=days,
        shape_ids=shape_ids,
        shape_ptr=np.r_[
            0, np.concatenate([p.shape_ptr[1:] + shp_off[i] for i, p in enumerate(parts)])
        ].astype(np.int64),
        shape_lat=np.concatenate([p.shape_lat for p in parts]).astype(np.float64),
        shape_lon=np.concatenate([p.shape_lon for p in parts]).astype(np.float64),
        timezone=feed_list[0].timezone,
        feed_ids=tuple(fids),
        meta={
            **counts,
            **rule_meta,
            "id_prefix": bool(prefix),
            # Times stay in each feed's own zone; ``timezone`` is the first feed's.
            "feed_timezones": [f.timezone for f in feed_list],
            "feed_stop_offsets": [int(x) for x in s_off],
            "footpaths": {
                "source": "straight_line" if footpaths is None else "given",
                "radius_m": footpath_radius_m,
                "detour_factor": DETOUR_FACTOR,
                "walk_speed_mps": WALK_SPEED_MPS,
                "count": len(fp.from_idx),
            },
        },
        st_stop_sequence=st_seq[rows],
        trip_short_names=trips["short"].to_numpy(dtype=str)[order],
        trip_directions=trips["direction"].to_numpy(dtype=np.int8)[order],
        trip_blocks=trips["block"].to_numpy(dtype=str)[order],
        trip_bikes=trips["bikes"].to_numpy(dtype=np.int8)[order],
        **rule_arrays,
    )


def _transfers(
    parts: list[_Part],
    stop_index: pd.Index,
    stop_parent: npt.NDArray[np.int32],
    lat: npt.NDArray[np.float64],
    lon: npt.NDArray[np.float64],
    fp: Footpaths,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[np.int32], pd.DataFrame]:
    n = len(stop_index)
    # (from, to, seconds, priority) arrays, merged below: numpy, as DataFrames for a few
    # thousand rows cost milliseconds of a small feed's load (#15).
    frames: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]] = [
        (fp.from_idx, fp.to_idx, fp.seconds, 0)
    ]
    # Siblings under one parent station.
    child = np.flatnonzero(stop_parent >= 0)
    if len(child):
        c = pd.DataFrame({"a": child, "p": stop_parent[child]})
        sib = c.merge(c.rename(columns={"a": "b"}), on="p")
        sib = sib[sib["a"] != sib["b"]]
        a, b = sib["a"].to_numpy(), sib["b"].to_numpy()
        d = np.nan_to_num(haversine_m(lat[a], lon[a], lat[b], lon[b]))
        frames.append((a, b, walk_seconds(d), 1))
    tr = pd.concat([p.transfers for p in parts], ignore_index=True) if parts else pd.DataFrame()
    removals = np.zeros(0, np.int64)
    rules = pd.DataFrame()
    if not tr.empty and {"from_stop_id", "to_stop_id"} <= set(tr.columns):
        ttype = int_column(tr, "transfer_type", 0, np.int8)
        min_s = int_column(tr, "min_transfer_time", -1, np.int32)
        # Plain arrays, not frame operations: a frame's per-call cost outweighs the work on
        # a few thousand rows (#15).
        specific = ttype >= 4
        for col in ("from_route_id", "to_route_id", "from_trip_id", "to_trip_id"):
            specific |= tr[col].to_numpy(dtype=object) != ""
        if specific.any():
            rules = tr[specific].assign(_type=ttype[specific], _min=min_s[specific])
        plain = ~specific
        a0 = first_index(stop_index, tr["from_stop_id"].to_numpy(dtype=object)[plain])
        b0 = first_index(stop_index, tr["to_stop_id"].to_numpy(dtype=object)[plain])
        known = (a0 >= 0) & (b0 >= 0)
        pair, a, b = station_member_pairs(a0[known], b0[known], stop_parent)
        d = np.nan_to_num(haversine_m(lat[a], lon[a], lat[b], lon[b]))
        walk = walk_seconds(d)
        ty = ttype[plain][known][pair]
        mn = min_s[plain][known][pair]
        secs = np.where(ty == 1, 0, np.where((ty == 2) & (mn >= 0), mn, walk)).astype(np.int32)
        keep = ty != 3
        frames.append((a[keep], b[keep], secs[keep], 2))
        removals = a[~keep].astype(np.int64) * n + b[~keep]
    fa = np.concatenate([np.asarray(f[0], dtype=np.int64) for f in frames])
    fb = np.concatenate([np.asarray(f[1], dtype=np.int64) for f in frames])
    fs = np.concatenate([np.asarray(f[2]).astype(np.int32) for f in frames])
    prio = np.concatenate([np.full(len(f[0]), f[3], dtype=np.int8) for f in frames])
    key = fa * n + fb
    ok = ~np.isin(key, removals)
    fa, fb, fs, prio, key = fa[ok], fb[ok], fs[ok], prio[ok], key[ok]
    # Per (from, to) the row of the highest priority, the first listed among equals.
    order = np.lexsort((-prio.astype(np.int16), key))
    key = key[order]
    first = np.ones(len(key), dtype=np.bool_)
    first[1:] = key[1:] != key[:-1]
    pick = order[first]
    return fa[pick].astype(np.int32), fb[pick].astype(np.int32), fs[pick], rules


def _rule_arrays(
    rules: pd.DataFrame, stops: pd.Index, routes: pd.Index, trips: pd.Index, meta: dict[str, Any]
) -> dict[str, Any]:
    """The ``rule_*`` arrays of the transfers.txt rows naming routes or trips (and types 4/5),
    without the rows that cannot apply (counted in ``meta["transfer_rules_dropped"]``)."""
    meta["transfer_rules_dropped"] = 0
    if rules.empty:
        return {}

    cols = {
        "rule_from_stop": (stops, "from_stop_id"),
        "rule_to_stop": (stops, "to_stop_id"),
        "rule_from_route": (routes, "from_route_id"),
        "rule_to_route": (routes, "to_route_id"),
        "rule_from_trip": (trips, "from_trip_id"),
        "rule_to_trip": (trips, "to_trip_id"),
    }
    out: dict[str, Any] = {}
    # A row naming an id that is not compiled (unknown, or a trip dropped as broken) can never
    # apply: kept, its -1 would read as "any" and widen the rule to every trip/route/stop.
    unusable = np.zeros(len(rules), np.bool_)
    for name, (index, col) in cols.items():
        given = (rules[col].astype(str) != "").to_numpy()
        out[name] = np.asarray(first_index(index, rules[col]), dtype=np.int32)
        unusable |= given & (out[name] < 0)
    ttype = rules["_type"].to_numpy(np.int8)
    min_s = rules["_min"].to_numpy(np.int32)
    # A minimum-time rule without its time states nothing usable (validation reports it).
    unusable |= (ttype == 2) & (min_s < 0)
    keep = ~unusable
    out = {k: v[keep] for k, v in out.items()}
    out["rule_type"] = ttype[keep]
    out["rule_min_s"] = min_s[keep]
    meta["transfer_rules_dropped"] = int(unusable.sum())
    return out

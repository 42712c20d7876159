"""Accessibility: travel times from many origins to many targets, medians over a window.

:class:`AccessEngine` answers "how long from each of these places to each of those", by walk +
transit and optionally walk + transit + on-demand, as the median over several departures
(Conveyal R5's rule). Origins are points (H3 cell centres, census mesh centres, one clicked
point); a *target* is a set of points (one destination, or every destination of one kind: the
time to the nearest one, decided per departure, before the median). Each origin and target is
linked to stops by straight-line walking (:mod:`routing.street.straight_line`'s model, the one
the planner uses where no OSM extract exists) and, inside an on-demand zone, by the zone's
drive-time estimate (:meth:`routing.on_demand.OnDemandProvider.estimate_s`) plus a wait.

The searches run in :func:`routing.access.kernels.median_travel_times` (numba, parallel over
origins, rRAPTOR over the departures), on each independent part of the network
(:mod:`routing.access.components`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from routing.access import components
from routing.access.kernels import BIG, median_travel_times
from routing.on_demand import TRANSFER_BUFFER_S, OnDemandProvider
from routing.options import RoutingOptions
from routing.raptor.search import QueryArrays
from routing.street.geo import chord_m, haversine_m, to_xyz
from routing.street.straight_line import (
    DEFAULT_DETOUR,
    DEFAULT_WALK_SPEED_MPS,
    walk_seconds,
)
from routing.transit import TransitData

F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]

UNREACHED = -1
"""Travel time of an origin-target pair no journey links (in results, seconds)."""

DEFAULT_MAX_WALK_S = 900
"""Longest walk to the first stop, from the last stop, or all the way (15 min, ~830 m of
street at 1.2 m/s with the 1.3 detour)."""
DEFAULT_MAX_TRAVEL_S = 2 * 3600
"""Longest trip counted (R5's default cutoff is 120 minutes): a longer one is 'not reached',
and the search neither rides the service days nor explores the places that only it needs."""
DEFAULT_WAIT_S = 600
"""Expected wait for an on-demand vehicle before the drive (a planning figure, not a quote)."""


def departure_times(t0: int, window_s: int, n: int) -> I32:
    """``n`` departures spread evenly over ``[t0, t0 + window_s)``, as R5 samples minutes."""
    if n < 1 or window_s < 0:
        raise ValueError("need at least one departure and a non-negative window")
    return (t0 + (np.arange(n, dtype=np.int64) * window_s) // n).astype(np.int32)


@dataclass(frozen=True)
class Links:
    """CSR: for each point (origin or target), the stops it is linked to and the seconds."""

    ptr: I64
    stop: I32
    secs: I32

    @property
    def n(self) -> int:
        return len(self.ptr) - 1

    def subset(self, points: I64) -> Links:
        """The links of ``points`` only, in that order."""
        idx = components.ranges(self.ptr, points)
        n = np.diff(self.ptr)[points]
        return Links(np.r_[0, np.cumsum(n)].astype(np.int64), self.stop[idx], self.secs[idx])

    def groups(self) -> list[I32]:
        return [self.stop[self.ptr[i] : self.ptr[i + 1]] for i in range(self.n)]

    @staticmethod
    def merge(a: Links, b: Links) -> Links:
        """Both links of every point."""
        if a.n != b.n:
            raise ValueError("links of different point sets")
        na, nb = np.diff(a.ptr), np.diff(b.ptr)
        owner = np.r_[np.repeat(np.arange(a.n), na), np.repeat(np.arange(b.n), nb)]
        order = np.argsort(owner, kind="stable")
        ptr = np.r_[0, np.cumsum(na + nb)].astype(np.int64)
        return Links(
            ptr,
            np.r_[a.stop, b.stop][order].astype(np.int32),
            np.r_[a.secs, b.secs][order].astype(np.int32),
        )


@dataclass(frozen=True)
class OnDemand:
    """An on-demand service for accessibility: rides inside the provider's zones.

    A ride is the zone's drive-time estimate (a lower bound, no detour for shared rides) plus
    ``wait_s``; a ride feeding or leaving a bus adds :data:`routing.on_demand.TRANSFER_BUFFER_S`.
    """

    provider: OnDemandProvider
    wait_s: int = DEFAULT_WAIT_S


@dataclass
class BlockResult:
    """Medians of one component: ``seconds[i, j]`` from ``origins[i]`` to ``targets[j]``."""

    origins: I64
    targets: I64
    seconds: I32


@dataclass
class AccessEngine:
    """Accessibility over one timetable on one service day (see the module docstring).

    Parameters
    ----------
    data
        The published (or a scenario's) timetable, prepared for RAPTOR.
    day
        The service date searched.
    options
        Transfers, walking speed (``max_walk_m`` is replaced by ``max_walk_s``).
    max_walk_s
        Longest access, egress or direct walk.
    """

    data: TransitData
    day: dt.date
    options: RoutingOptions = field(default_factory=lambda: RoutingOptions(max_transfers=4))
    max_walk_s: int = DEFAULT_MAX_WALK_S
    detour: float = DEFAULT_DETOUR
    max_travel_s: int = DEFAULT_MAX_TRAVEL_S

    def __post_init__(self) -> None:
        if not self.data.covers(self.day):
            raise ValueError(f"{self.day.isoformat()} is outside the timetable's service period")
        if not 0 < self.max_walk_s <= 3 * 3600:
            raise ValueError("max_walk_s must be within 1 s .. 3 h")
        if not 0 < self.max_travel_s <= 12 * 3600:
            raise ValueError("max_travel_s must be within 1 s .. 12 h")
        tt = self.data.tt
        self.stop_lat = np.asarray(tt.stop_lat, dtype=np.float64)
        self.stop_lon = np.asarray(tt.stop_lon, dtype=np.float64)
        self.query = self.data.query_arrays(self.day, self.options)
        self._tree = cKDTree(to_xyz(self.stop_lat, self.stop_lon))
        served = np.diff(self.data.forward.stop_pattern_ptr) > 0
        self._served = served

    @property
    def speed(self) -> float:
        return float(self.options.walk_speed_mps or DEFAULT_WALK_SPEED_MPS)

    # --- links ------------------------------------------------------------------------------
    def walk_links(self, lat: F64, lon: F64) -> Links:
        """Stops within ``max_walk_s`` of each point (straight line x detour)."""
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        radius = self.max_walk_s * self.speed / self.detour
        hits = self._tree.query_ball_point(to_xyz(lat, lon), float(chord_m(radius)) + 1e-6)
        counts = np.fromiter((len(h) for h in hits), dtype=np.int64, count=len(hits))
        stop = np.fromiter((s for h in hits for s in h), dtype=np.int64, count=int(counts.sum()))
        owner = np.repeat(np.arange(len(lat)), counts)
        meters = haversine_m(lat[owner], lon[owner], self.stop_lat[stop], self.stop_lon[stop])
        secs = walk_seconds(meters * self.detour, self.speed)
        keep = (secs <= self.max_walk_s) & self._served[stop]
        counts = np.bincount(owner[keep], minlength=len(lat))
        return Links(
            np.r_[0, np.cumsum(counts)].astype(np.int64),
            stop[keep].astype(np.int32),
            secs[keep].astype(np.int32),
        )

    def on_demand_links(self, lat: F64, lon: F64, od: OnDemand, to_stop: bool) -> Links:
        """Rides between each point inside a zone and the zone's served stops (``to_stop``:
        point -> stop, the first mile; else stop -> point, the last mile)."""
        p = od.provider
        stops_of: dict[str, I32] = {}
        owners: list[int] = []
        stops: list[int] = []
        secs: list[int] = []
        for i, (a, b) in enumerate(zip(lat, lon, strict=True)):
            zone = p.zone_at(float(a), float(b))
            if zone is None:
                continue
            if zone not in stops_of:
                zs = np.asarray(p.stops_in_zone(zone), dtype=np.int32)
                stops_of[zone] = zs[self._served[zs]]
            here = (float(a), float(b))
            for s in stops_of[zone]:
                stop = (float(self.stop_lat[s]), float(self.stop_lon[s]))
                est = p.estimate_s(here, stop) if to_stop else p.estimate_s(stop, here)
                if est is None:
                    continue
                owners.append(i)
                stops.append(int(s))
                secs.append(int(np.ceil(est)) + od.wait_s + TRANSFER_BUFFER_S)
        counts = np.bincount(np.asarray(owners, dtype=np.int64), minlength=len(lat))
        return Links(
            np.r_[0, np.cumsum(counts)].astype(np.int64),
            np.asarray(stops, dtype=np.int32),
            np.asarray(secs, dtype=np.int32),
        )

    def direct_seconds(
        self,
        o_lat: F64,
        o_lon: F64,
        t_lat: F64,
        t_lon: F64,
        t_group: I64,
        n_targets: int,
        od: OnDemand | None = None,
    ) -> I32:
        """[O, G] travel without transit: a walk within ``max_walk_s``, or an on-demand ride
        when origin and target point share a zone; the nearest point of each target."""
        out = np.full((len(o_lat), n_targets), BIG, dtype=np.int32)
        if len(t_lat) == 0 or len(o_lat) == 0:
            return out
        tree = cKDTree(to_xyz(t_lat, t_lon))
        radius = self.max_walk_s * self.speed / self.detour
        near = tree.query_ball_point(to_xyz(o_lat, o_lon), float(chord_m(radius)) + 1e-6)
        for i, pts in enumerate(near):
            if not pts:
                continue
            idx = np.asarray(pts, dtype=np.int64)
            m = haversine_m(
                np.full(len(idx), o_lat[i]), np.full(len(idx), o_lon[i]), t_lat[idx], t_lon[idx]
            )
            s = walk_seconds(m * self.detour, self.speed)
            ok = s <= self.max_walk_s
            np.minimum.at(out[i], t_group[idx[ok]], s[ok])
        if od is not None:
            p = od.provider
            t_zone = [p.zone_at(float(a), float(b)) for a, b in zip(t_lat, t_lon, strict=True)]
            for i, (a, b) in enumerate(zip(o_lat, o_lon, strict=True)):
                zone = p.zone_at(float(a), float(b))
                if zone is None:
                    continue
                for k, z in enumerate(t_zone):
                    if z != zone:
                        continue
                    est = p.estimate_s((float(a), float(b)), (float(t_lat[k]), float(t_lon[k])))
                    if est is not None:
                        g = t_group[k]
                        out[i, g] = min(out[i, g], int(np.ceil(est)) + od.wait_s)
        return out

    # --- searches -----------------------------------------------------------------------------
    def blocks(
        self, access: Links, egress: Links, direct: I32 | None, departures: I32
    ) -> list[BlockResult]:
        """Medians per component (see :mod:`routing.access.components`). Pairs of different
        components are absent (only ``direct`` links them: see :meth:`travel_times`)."""
        deps = np.sort(np.asarray(departures, dtype=np.int32))[::-1].copy()
        net = self.data.forward
        query = self.window_query(int(deps[-1]), int(deps[0]) + self.max_travel_s)
        labels = components.component_labels(net, access.groups() + egress.groups())
        o_comp = np.full(access.n, -1, dtype=np.int64)
        has = np.diff(access.ptr) > 0
        o_comp[has] = labels[access.stop[access.ptr[:-1][has]]]
        g_comp = np.full(egress.n, -1, dtype=np.int64)
        has = np.diff(egress.ptr) > 0
        g_comp[has] = labels[egress.stop[egress.ptr[:-1][has]]]
        out: list[BlockResult] = []
        for c in np.unique(o_comp[o_comp >= 0]):
            oi = np.flatnonzero(o_comp == c)
            gi = np.flatnonzero(g_comp == c)
            if len(gi) == 0:
                continue
            stops = np.flatnonzero(labels == c).astype(np.int32)
            part = components.sub_network(net, query, stops)
            local = np.full(net.n_stops, -1, dtype=np.int64)
            local[stops] = np.arange(len(stops))
            a = _take(access, oi, local)
            e = _take(egress, gi, local)
            d = (
                np.full((len(oi), len(gi)), BIG, dtype=np.int32)
                if direct is None
                else np.ascontiguousarray(direct[np.ix_(oi, gi)])
            )
            res = np.empty((len(oi), len(gi)), dtype=np.int32)
            _run(part, deps, a, e, d, res, self.max_travel_s)
            out.append(BlockResult(oi, gi, res))
        return out

    def window_query(self, lo: int, hi: int) -> QueryArrays:
        """The query without the service-day copies no trip of which runs within
        ``[lo, hi]`` (usually yesterday's and tomorrow's): fewer trip searches per stop."""
        q = self.query
        net = self.data.forward
        first = net.trip_st_ptr[:-1]
        last = net.trip_st_ptr[1:] - 1
        keep = []
        for o in range(q.active.shape[0]):
            act = q.active[o] if q.odd is None else q.active[o] | q.odd[o]
            if not act.any():
                continue
            dep0 = q.st_dep[o][first[act]].astype(np.int64) + int(q.offsets[o])
            arr1 = q.st_arr[o][last[act]].astype(np.int64) + int(q.offsets[o])
            if ((dep0 <= hi) & (arr1 >= lo)).any():
                keep.append(o)
        if len(keep) == q.active.shape[0]:
            return q
        rows = np.asarray(keep or [0], dtype=np.int64)
        return QueryArrays(
            active=np.ascontiguousarray(q.active[rows]),
            offsets=np.ascontiguousarray(q.offsets[rows]),
            st_arr=q.st_arr[rows],
            st_dep=q.st_dep[rows],
            st_board=q.st_board[rows],
            st_alight=q.st_alight[rows],
            change_s=q.change_s,
            slack=q.slack,
            max_transfer_s=q.max_transfer_s,
            fifo=q.fifo,
            max_rides=q.max_rides,
            walk_factor=q.walk_factor,
            odd=None if q.odd is None else np.ascontiguousarray(q.odd[rows]),
            row_fifo=None if q.row_fifo is None else np.ascontiguousarray(q.row_fifo[rows]),
        )

    def travel_times(
        self,
        o_lat: F64,
        o_lon: F64,
        t_lat: F64,
        t_lon: F64,
        t_group: I64 | None,
        departures: I32,
        on_demand: OnDemand | None = None,
    ) -> I32:
        """[O, G] median seconds from each origin to each target (:data:`UNREACHED` when no
        journey within ``max_travel_s`` reaches it for half the departures or more).

        ``t_group`` [points] numbers the target of each target point (None: each point is its
        own target); a target's time is that of its nearest point, per departure.
        """
        o_lat, o_lon = np.asarray(o_lat, np.float64), np.asarray(o_lon, np.float64)
        t_lat, t_lon = np.asarray(t_lat, np.float64), np.asarray(t_lon, np.float64)
        group = np.arange(len(t_lat)) if t_group is None else np.asarray(t_group, np.int64)
        n_g = int(group.max()) + 1 if len(group) else 0
        access = self.walk_links(o_lat, o_lon)
        point_egress = self.walk_links(t_lat, t_lon)
        if on_demand is not None:
            access = Links.merge(access, self.on_demand_links(o_lat, o_lon, on_demand, True))
            point_egress = Links.merge(
                point_egress, self.on_demand_links(t_lat, t_lon, on_demand, False)
            )
        egress = _group_links(point_egress, group, n_g)
        direct = self.direct_seconds(o_lat, o_lon, t_lat, t_lon, group, n_g, on_demand)
        out = np.where(direct > self.max_travel_s, BIG, direct).astype(np.int32)
        for b in self.blocks(access, egress, direct, departures):
            out[np.ix_(b.origins, b.targets)] = b.seconds
        return np.where(out >= BIG, UNREACHED, out).astype(np.int32)

    def one_query(self, lat: float, lon: float, departure: int) -> I32:
        """[S] seconds from a point to every stop for one departure, through the router's
        public one-query path (:func:`routing.raptor.earliest_arrival` on the whole network):
        the planner's way, and the baseline of ``bench.access``. -1 where unreached."""
        from routing.raptor import earliest_arrival

        links = self.walk_links(np.array([lat]), np.array([lon]))
        res = earliest_arrival(self.data.forward, self.query, departure, links.stop, links.secs)
        secs = res.best.astype(np.int64) - departure
        return np.where(secs > self.max_travel_s, UNREACHED, secs).astype(np.int32)


def _take(links: Links, points: I64, local: I64) -> Links:
    """The links of ``points`` with stops renumbered by ``local``."""
    sub = links.subset(points)
    return Links(sub.ptr, local[sub.stop].astype(np.int32), sub.secs.astype(np.int32))


def _group_links(links: Links, group: I64, n_groups: int) -> Links:
    """Links of the points pooled per group (a target reached via any of its points)."""
    owner = np.repeat(group, np.diff(links.ptr))
    order = np.argsort(owner, kind="stable")
    counts = np.bincount(owner, minlength=n_groups)
    return Links(
        np.r_[0, np.cumsum(counts)].astype(np.int64),
        links.stop[order].astype(np.int32),
        links.secs[order].astype(np.int32),
    )


def _run(
    part: components.Part,
    deps: I32,
    access: Links,
    egress: Links,
    direct: I32,
    out: I32,
    max_travel_s: int,
) -> None:
    net, q = part.network, part.query
    scan = q.scan_sets(net)
    median_travel_times(
        net.pattern_stop_ptr,
        net.pattern_stops,
        net.pattern_trip_ptr,
        net.trip_st_ptr,
        q.st_arr,
        q.st_dep,
        q.st_board,
        q.st_alight,
        net.stop_pattern_ptr,
        net.stop_patterns,
        net.stop_pattern_pos,
        net.transfer_ptr,
        net.transfer_to,
        q.footpath_seconds(net),
        scan.active,
        scan.row_fifo,
        scan.odd_ptr,
        scan.odd_trip,
        scan.odd_copy,
        q.offsets,
        q.change_s,
        int(q.slack),
        int(q.max_transfer_s),
        bool(q.fifo),
        int(q.max_rides + 1),
        deps,
        access.ptr,
        access.stop,
        access.secs,
        egress.ptr,
        egress.stop,
        egress.secs,
        direct,
        int(max_travel_s),
        out,
    )

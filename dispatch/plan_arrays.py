"""Flat arrays of every vehicle's plan (CSR layout), the input of the insertion kernel.

Per vehicle the arrays are cached and rebuilt only when its plan changes (a position report
only drives the first leg and the way home again). Every vehicle has a fixed-size slot in the
zone's stacked arrays, so a plan change rewrites one slot, not the whole fleet. A quote asks
the travel-time model for the times between the new pick-up/drop-off and the planned nodes
(one matrix call per vehicle speed) of the vehicles that could serve it at all.

Spatial pruning (exact): with the straight-line model (a metric: the triangle inequality
holds), a vehicle can reach the pick-up no sooner than driving straight there from where it is,
whatever stops it serves first, and cannot be home sooner than via the pick-up, the drop-off
and the depot; legs are driven no faster than the zone's fastest speed period. A vehicle
whose bound misses the latest pick-up or its shift end could not take the ride in the kernel
either, so it is left out before any other travel time is asked for. Vehicles whose type
cannot seat the party are left out too. Legs are cached as free-flow seconds; the kernel
drives them through the zone's speed periods.

Best-first (exact, any travel-time model): the vehicles left are evaluated in order of a lower
bound on the cost they could offer (:func:`dispatch.insertion.lower_bounds`, from the travel
times the kernel needs anyway), and the kernel stops at the first whose bound cannot beat the
best insertion found; ``last_candidates`` counts the vehicles it evaluated.
"""

from __future__ import annotations

from copy import copy
from dataclasses import dataclass
from operator import attrgetter

import numba as nb
import numpy as np

from dispatch.geo import FloatArray
from dispatch.insertion import (
    _EPS,
    _LB_MARGIN,
    BASE_TOL,
    Insertion,
    NewRide,
    _kernel,
    choose,
    lower_bounds,
)
from dispatch.time_dependent import FREE_FLOW_PROFILE, SpeedProfile
from dispatch.travel_times import StraightLineTravelTimes, TravelTimes
from dispatch.vehicle import StopKind, Vehicle
from gtfs.geo import EARTH_RADIUS_M


def leg_times(travel: TravelTimes, points: FloatArray, speed_kmh: float) -> FloatArray:
    """Seconds between consecutive points of ``points`` (``len - 1`` values)."""
    if len(points) < 2:
        return np.zeros(0)
    m = travel.matrix(points[:-1], points[1:], speed_kmh)
    return np.asarray(np.diagonal(m), dtype=np.float64).copy()


def plan_signature(v: Vehicle) -> tuple[object, ...]:
    """Everything of ``v`` its arrays derive from except its position: the plan's stops
    field by field (stops are mutable), the groups onboard, the type and the depot."""
    return (
        v.vtype,
        v.depot,
        tuple(
            (s.ride_id, s.kind, s.lat, s.lon, s.earliest, s.latest, s.seats, s.wheelchairs,
             s.service_s, s.max_ride_s)
            for s in v.plan
        ),
        tuple((o.ride_id, o.seats, o.wheelchairs, o.picked_up_at) for o in v.onboard.values()),
    )  # fmt: skip


@dataclass
class VehicleArrays:
    """One vehicle's plan as arrays (pair indices local to the plan)."""

    points: FloatArray  # (n, 2) stop lat/lon
    leg: FloatArray  # travel into stop k from the previous node (position for k = 0)
    early: FloatArray
    late: FloatArray
    serv: FloatArray
    ds: np.ndarray
    dw: np.ndarray
    pair: np.ndarray
    maxride: FloatArray
    depot: FloatArray  # stop k -> depot
    pos_depot: float
    seats0: int
    wc0: int
    #: What the arrays were built from besides the position (:func:`plan_signature`).
    signature: tuple[object, ...] = ()

    def moved(self, v: Vehicle, travel: TravelTimes) -> VehicleArrays | None:
        """These arrays for ``v`` after a position report, if only its position changed (the
        first leg and the way home are driven again; the rest is the same plan); else None."""
        if plan_signature(v) != self.signature:
            return None
        return self.at_position(v, travel)

    def at_position(self, v: Vehicle, travel: TravelTimes) -> VehicleArrays:
        """These arrays with the first leg and the way home driven from ``v``'s position (the
        caller knows the plan is the one they were built from)."""
        here = np.array([v.position], dtype=np.float64)
        if len(self.points):
            to = np.array([self.points[0], v.depot], dtype=np.float64)
        else:
            to = np.array([v.depot], dtype=np.float64)
        tt = travel.matrix(here, to, v.vtype.speed_kmh)[0]
        leg = self.leg.copy()
        if len(leg):
            leg[0] = tt[0]
        # A shallow copy: the plan's own arrays are shared, only the first leg is new.
        out = copy(self)
        out.leg = leg
        out.pos_depot = float(tt[-1])
        return out

    @classmethod
    def build(cls, v: Vehicle, travel: TravelTimes) -> VehicleArrays:
        n = len(v.plan)
        speed = v.vtype.speed_kmh
        pts = np.array([s.latlon for s in v.plan], dtype=np.float64).reshape(n, 2)
        chain = np.vstack([np.array([v.position], dtype=np.float64), pts])
        leg = leg_times(travel, chain, speed)
        depot_pt = np.array([v.depot], dtype=np.float64)
        home = travel.matrix(chain, depot_pt, speed)[:, 0]
        early = np.array([s.earliest for s in v.plan], dtype=np.float64)
        late = np.array([s.latest for s in v.plan], dtype=np.float64)
        pickup_at: dict[str, int] = {}
        pair = np.full(n, -1, dtype=np.int64)
        for k, s in enumerate(v.plan):
            if s.kind is StopKind.PICKUP:
                pickup_at[s.ride_id] = k
            else:
                pk = pickup_at.get(s.ride_id)
                if pk is not None:
                    pair[k] = pk
                elif s.ride_id in v.onboard:
                    # Already in the vehicle: the ride-time limit is a fixed deadline.
                    late[k] = min(late[k], v.onboard[s.ride_id].picked_up_at + s.max_ride_s)
        sign = np.array([1 if s.kind is StopKind.PICKUP else -1 for s in v.plan], dtype=np.int64)
        return cls(
            points=pts,
            leg=leg,
            early=early,
            late=late,
            serv=np.array([s.service_s for s in v.plan], dtype=np.float64),
            ds=sign * np.array([s.seats for s in v.plan], dtype=np.int64),
            dw=sign * np.array([s.wheelchairs for s in v.plan], dtype=np.int64),
            pair=pair,
            maxride=np.array([s.max_ride_s for s in v.plan], dtype=np.float64),
            depot=np.asarray(home[1:], dtype=np.float64),
            pos_depot=float(home[0]),
            seats0=v.seats_onboard,
            wc0=v.wheelchairs_onboard,
            signature=plan_signature(v),
        )


_STOP_FIELDS = ("leg", "early", "late", "serv", "ds", "dw", "pair", "maxride", "depot")
_INT_FIELDS = ("ds", "dw", "pair")
#: Margin (seconds) of the pruning bounds over the kernel's own tolerances.
_PRUNE_MARGIN_S = 1.0
#: Vehicles evaluated first (least box bound) before the bound of the rest is compared with
#: the best insertion they offer.
_FIRST_ROUND = 8
#: A vehicle whose bound exceeds the best cost by more than this can neither beat nor tie with
#: it (choose()'s tolerance, plus rounding).
_STOP_TOL = _EPS + _LB_MARGIN
#: Relative slack of :func:`box_bounds` for rounding (its haversine is not the matrix's).
_BOX_REL = 1e-9


@dataclass
class _Out:
    """Each vehicle's best insertion, as the kernel writes it (INF / -1: none)."""

    cost: FloatArray
    tp: FloatArray
    td: FloatArray
    i: np.ndarray
    j: np.ndarray

    @classmethod
    def empty(cls, nv: int) -> _Out:
        return cls(
            cost=np.full(nv, np.inf),
            tp=np.full(nv, np.inf),
            td=np.full(nv, np.inf),
            i=np.full(nv, -1, dtype=np.int64),
            j=np.full(nv, -1, dtype=np.int64),
        )


@nb.njit(cache=True, nogil=True)
def _haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle metres, as :func:`gtfs.geo.haversine_m` (to rounding)."""
    rad = np.pi / 180.0
    p1 = lat1 * rad
    p2 = lat2 * rad
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin((lon2 - lon1) * rad / 2) ** 2
    return 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(min(max(a, 0.0), 1.0)))


@nb.njit(cache=True, nogil=True)
def straight_line_times(
    cand: np.ndarray,
    first: np.ndarray,
    count: np.ndarray,
    pts: FloatArray,
    pos: FloatArray,
    depots: FloatArray,
    speeds: FloatArray,
    pd_pts: FloatArray,
    detour: float,
    s_toP: FloatArray,
    s_Pto: FloatArray,
    s_toD: FloatArray,
    s_Dto: FloatArray,
    v_posP: FloatArray,
    v_PD: FloatArray,
    v_Ddepot: FloatArray,
) -> None:
    """The kernel's travel times to and from the ride's pick-up and drop-off for the vehicles
    of ``cand`` under the straight-line model, in one compiled pass (the matrix calls cost
    more in numpy's per-call overhead than in arithmetic at a quote's sizes). The model is
    symmetric, so each distance is computed once for both directions."""
    pla, plo, dla, dlo = pd_pts[0, 0], pd_pts[0, 1], pd_pts[1, 0], pd_pts[1, 1]
    p_to_d = _haversine(pla, plo, dla, dlo)
    for q in range(cand.shape[0]):
        v = cand[q]
        per_m = detour / (speeds[v] / 3.6)
        v_posP[v] = _haversine(pos[v, 0], pos[v, 1], pla, plo) * per_m
        v_PD[v] = p_to_d * per_m
        v_Ddepot[v] = _haversine(dla, dlo, depots[v, 0], depots[v, 1]) * per_m
        o = first[v]
        for k in range(o, o + count[v]):
            tp = _haversine(pts[k, 0], pts[k, 1], pla, plo) * per_m
            td = _haversine(pts[k, 0], pts[k, 1], dla, dlo) * per_m
            s_toP[k] = tp
            s_Pto[k] = tp
            s_toD[k] = td
            s_Dto[k] = td


@nb.njit(cache=True, nogil=True)
def box_bounds(
    cand: np.ndarray,
    first: np.ndarray,
    count: np.ndarray,
    pts: FloatArray,
    pos: FloatArray,
    s_leg: FloatArray,
    speeds: FloatArray,
    pd_pts: FloatArray,
    detour: float,
    v_start: FloatArray,
    shift_end: FloatArray,
    depots: FloatArray,
    latest_pickup: float,
    service_s: float,
    fastest: float,
    out: FloatArray,
) -> None:
    """A lower bound on the cost (added free-flow driving) of inserting the ride into each
    vehicle of ``cand``, from its route's lat/lon bounding box and its longest leg alone.

    Every node of the route (position and stops) lies in the box, and the haversine of a point
    to any point of the box is at least :func:`_gap_m` of the latitude and longitude gaps to
    the box (each term of the formula is monotone in them), so
    ``h`` (that distance, driven) bounds the time from any node to the pick-up (``hp``) or the
    drop-off (``hd``). The straight-line model is a metric, so putting the pick-up between two
    nodes ``a, b`` adds ``d(a,P) + d(P,b) - d(a,b) >= max(0, 2 hp - L)`` (``L`` the longest
    leg), after the last stop ``d(last,P) >= hp``; whatever the drop-off adds is >= 0, and a
    drop-off right after the pick-up costs at least the pick-up's detour, by the triangle
    inequality. So the cost is >= ``min(hp, max(0, 2 hp - L))``, and likewise for the drop-off.

    A vehicle that cannot reach the pick-up in time or be home before its shift ends (module
    docstring, with :func:`_gap_m` for the distances: a vehicle the matrices would keep is
    kept) gets +inf.
    """
    rad = np.pi / 180.0
    nc = cand.shape[0]
    pla, plo, dla, dlo = pd_pts[0, 0], pd_pts[0, 1], pd_pts[1, 0], pd_pts[1, 1]
    p_to_d_m = _haversine(pla, plo, dla, dlo)
    # Each route's box (position and stops) and longest leg; the largest |latitude| in play.
    box = np.empty((nc, 4))
    longest = np.empty(nc)
    top = max(abs(pla), abs(dla))
    for q in range(nc):
        v = cand[q]
        o = first[v]
        lat_lo = pos[v, 0]
        lat_hi = lat_lo
        lon_lo = pos[v, 1]
        lon_hi = lon_lo
        m = 0.0
        for k in range(o, o + count[v]):
            lat_lo = min(lat_lo, pts[k, 0])
            lat_hi = max(lat_hi, pts[k, 0])
            lon_lo = min(lon_lo, pts[k, 1])
            lon_hi = max(lon_hi, pts[k, 1])
            m = max(m, s_leg[k])
        box[q, 0] = lat_lo
        box[q, 1] = lat_hi
        box[q, 2] = lon_lo
        box[q, 3] = lon_hi
        longest[q] = m
        top = max(top, abs(lat_lo), abs(lat_hi), abs(depots[v, 0]))
    # cos(lat1) cos(lat2) of any two points in play is at least this (one cosine a quote).
    cc = max(np.cos(min(top, 90.0) * rad), 0.0) ** 2
    for q in range(nc):
        v = cand[q]
        per_m = detour / (speeds[v] / 3.6) * (1.0 - _BOX_REL)
        to_p = _gap_m(pos[v, 0] - pla, pos[v, 1] - plo, cc) * per_m
        reach = v_start[v] + to_p / fastest
        home = _gap_m(dla - depots[v, 0], dlo - depots[v, 1], cc) * per_m
        back = reach + (p_to_d_m * per_m + home) / fastest + service_s
        if (
            reach > latest_pickup + _PRUNE_MARGIN_S
            or back > shift_end[v] + BASE_TOL + _PRUNE_MARGIN_S
        ):
            out[v] = np.inf
            continue
        lb = 0.0
        for w in range(2):
            la = pd_pts[w, 0]
            lo = pd_pts[w, 1]
            dphi = max(box[q, 0] - la, la - box[q, 1], 0.0)
            dlam = max(box[q, 2] - lo, lo - box[q, 3], 0.0)
            h = _gap_m(dphi, dlam, cc) * per_m
            lb = max(lb, min(h, max(0.0, 2.0 * h - longest[q])))
        out[v] = lb


@nb.njit(cache=True, nogil=True)
def _gap_m(dlat: float, dlon: float, cc: float) -> float:
    """A lower bound on the haversine metres between two points ``dlat``, ``dlon`` degrees
    apart whose cosines of latitude multiply to at least ``cc``: haversine's
    ``2R asin(sqrt(sin^2(dphi/2) + cos1 cos2 sin^2(dlam/2)))`` with ``asin x >= x`` and
    ``sin y >= y - y^3/6`` (no transcendental function: it runs for every vehicle)."""
    y = abs(dlat) * (np.pi / 360.0)
    z = abs(dlon) * (np.pi / 360.0)
    sy = max(y - y * y * y / 6.0, 0.0)
    sz = max(z - z * z * z / 6.0, 0.0)
    return 2.0 * EARTH_RADIUS_M * np.sqrt(sy * sy + cc * sz * sz)


@dataclass
class _Slots:
    """Every vehicle's arrays in a fixed-size slot of ``cap`` stops (vehicle ``k``'s stops at
    ``k * cap : k * cap + count[k]``), rewritten slot by slot as plans change."""

    ids: tuple[str, ...]
    index: dict[str, int]
    cap: int
    first: np.ndarray
    count: np.ndarray
    pts: FloatArray
    pos: FloatArray
    depots: FloatArray
    speeds: FloatArray
    seats0: np.ndarray
    wc0: np.ndarray
    cap_s: np.ndarray
    cap_w: np.ndarray
    shift_end: FloatArray
    pos_depot: FloatArray
    #: ``max(position_time, shift_start)``: the kernel starts each vehicle at that or now.
    ready: FloatArray
    stops: dict[str, np.ndarray]

    @classmethod
    def empty(cls, vehicles: list[Vehicle], cap: int) -> _Slots:
        nv = len(vehicles)
        ids = tuple(map(attrgetter("vehicle_id"), vehicles))
        return cls(
            ids=ids,
            index={vid: k for k, vid in enumerate(ids)},
            cap=cap,
            first=np.arange(nv, dtype=np.int64) * cap,
            count=np.zeros(nv, dtype=np.int64),
            pts=np.zeros((nv * cap, 2)),
            pos=np.zeros((nv, 2)),
            depots=np.array([v.depot for v in vehicles], dtype=np.float64).reshape(nv, 2),
            speeds=np.array([v.vtype.speed_kmh for v in vehicles], dtype=np.float64),
            seats0=np.zeros(nv, dtype=np.int64),
            wc0=np.zeros(nv, dtype=np.int64),
            cap_s=np.array([v.vtype.seats for v in vehicles], dtype=np.int64),
            cap_w=np.array([v.vtype.wheelchair_spaces for v in vehicles], dtype=np.int64),
            shift_end=np.zeros(nv),
            pos_depot=np.zeros(nv),
            ready=np.zeros(nv),
            stops={
                f: np.zeros(nv * cap, dtype=np.int64 if f in _INT_FIELDS else np.float64)
                for f in _STOP_FIELDS
            },
        )

    def put(self, k: int, v: Vehicle, a: VehicleArrays) -> None:
        n = len(a.leg)
        o = k * self.cap
        self.count[k] = n
        self.pts[o : o + n] = a.points
        for f in _STOP_FIELDS:
            self.stops[f][o : o + n] = getattr(a, f)
        self.pos[k] = v.position
        self.depots[k] = v.depot
        self.speeds[k] = v.vtype.speed_kmh
        self.cap_s[k] = v.vtype.seats
        self.cap_w[k] = v.vtype.wheelchair_spaces
        self.seats0[k] = a.seats0
        self.wc0[k] = a.wc0
        self.shift_end[k] = v.shift_end
        self.pos_depot[k] = a.pos_depot
        self.ready[k] = max(v.position_time, v.shift_start)

    def move(self, k: int, v: Vehicle, a: VehicleArrays) -> None:
        """Rewrite only what a position report changes in slot ``k`` (same plan as written)."""
        if len(a.leg):
            self.stops["leg"][k * self.cap] = a.leg[0]
        self.pos[k] = v.position
        self.pos_depot[k] = a.pos_depot
        self.ready[k] = max(v.position_time, v.shift_start)


class FleetArrays:
    """All vehicles of one zone in fixed-size slots; each slot rebuilt lazily per vehicle.

    The slots are kept across quotes: after a plan change only that vehicle's slot is written
    again, so a quote costs the travel times of the vehicles that could serve it, not a copy
    of the whole fleet.

    Parameters
    ----------
    travel
        Free-flow driving times.
    profile
        The zone's time-of-day speed periods (free flow by default).
    """

    def __init__(self, travel: TravelTimes, profile: SpeedProfile = FREE_FLOW_PROFILE) -> None:
        self.travel = travel
        self.profile = profile
        #: Spatial pruning of the vehicles a quote evaluates (exact: module docstring).
        self.prune = True
        self._cache: dict[str, VehicleArrays] = {}
        #: Arrays of vehicles invalidated since, reused when only the position changed.
        self._stale: dict[str, VehicleArrays] = {}
        self._dirty: set[str] = set()
        self._slots: _Slots | None = None
        #: Vehicles evaluated by the kernel in the last quote (after pruning).
        self.last_candidates = 0
        #: Vehicles that could reach the ride in the last quote (before the best-first stop).
        self.last_reachable = 0
        #: Each vehicle's lower bound in the last quote (-inf where none was computed): from
        #: its travel times (:func:`dispatch.insertion.lower_bounds`), and from its box alone.
        self.last_bounds: FloatArray = np.zeros(0)
        self.last_box_bounds: FloatArray = np.zeros(0)

    def invalidate(self, vehicle_id: str) -> None:
        va = self._cache.pop(vehicle_id, None)
        if va is not None:
            self._stale[vehicle_id] = va
        self._dirty.add(vehicle_id)

    def moved(self, v: Vehicle) -> VehicleArrays | None:
        """``v``'s arrays after a position report that left its plan alone: the cached arrays
        with the first leg and the way home driven again, and in its slot only the position
        entries rewritten (no plan rebuilt, no signature compared: every plan change goes
        through :meth:`invalidate`). None when nothing is cached for ``v`` (call
        :meth:`invalidate`; the next :meth:`arrays` builds or moves them)."""
        vid = v.vehicle_id
        va = self._cache.get(vid)
        if va is None:
            return None
        va = va.at_position(v, self.travel)
        self._cache[vid] = va
        sl = self._slots
        if sl is not None and vid not in self._dirty:
            k = sl.index.get(vid)
            if k is not None:
                sl.move(k, v, va)
        return va

    def arrays(self, v: Vehicle) -> VehicleArrays:
        va = self._cache.get(v.vehicle_id)
        if va is None:
            old = self._stale.pop(v.vehicle_id, None)
            va = old.moved(v, self.travel) if old is not None else None
            if va is None:
                va = VehicleArrays.build(v, self.travel)
            self._cache[v.vehicle_id] = va
        return va

    def _refresh(self, vehicles: list[Vehicle]) -> _Slots:
        """The slots of ``vehicles``, with every plan changed since written again."""
        sl = self._slots
        ids = tuple(map(attrgetter("vehicle_id"), vehicles))
        if sl is not None and sl.ids == ids:
            todo = sorted(sl.index[vid] for vid in self._dirty if vid in sl.index)
            fresh = [(k, vehicles[k], self.arrays(vehicles[k])) for k in todo]
            if all(len(a.leg) <= sl.cap for _, _, a in fresh):
                for k, v, a in fresh:
                    sl.put(k, v, a)
                self._dirty.clear()
                return sl
        vas = [self.arrays(v) for v in vehicles]
        longest = max((len(a.leg) for a in vas), default=0)
        # Room to grow: a longer plan later rebuilds every slot (rare).
        cap = max(8, 2 * longest)
        sl = _Slots.empty(vehicles, cap)
        for k, (v, a) in enumerate(zip(vehicles, vas, strict=True)):
            sl.put(k, v, a)
        self._slots = sl
        self._dirty.clear()
        return sl

    def _candidates(
        self, sl: _Slots, ride: NewRide, v_start: FloatArray, v_ok: np.ndarray
    ) -> np.ndarray:
        """Indices of the vehicles that might take ``ride`` (module docstring: exact)."""
        ok = v_ok & (sl.cap_s >= ride.seats) & (sl.cap_w >= ride.wheelchairs)
        if not (self.prune and isinstance(self.travel, StraightLineTravelTimes)):
            return np.flatnonzero(ok)
        cand = np.flatnonzero(ok)
        box = self.last_box_bounds
        box_bounds(
            cand,
            sl.first,
            sl.count,
            sl.pts,
            sl.pos,
            sl.stops["leg"],
            sl.speeds,
            np.array([ride.pickup, ride.dropoff], dtype=np.float64),
            float(self.travel.detour),
            v_start,
            sl.shift_end,
            sl.depots,
            float(ride.latest_pickup),
            float(ride.service_pickup_s + ride.service_dropoff_s),
            float(np.max(self.profile.factors)),
            box,
        )
        return cand[np.isfinite(box[cand])]

    def _reachable(
        self, sl: _Slots, ride: NewRide, v_start: FloatArray, ok: np.ndarray
    ) -> np.ndarray:
        """The reach screen of :func:`box_bounds` with the travel-time model's own matrices
        (the vehicles of ``ok`` that might take ``ride``; kept as the reference the tests
        compare the compiled screen with)."""
        fastest = float(np.max(self.profile.factors))
        pd_pts = np.array([ride.pickup, ride.dropoff], dtype=np.float64)
        to_p = np.empty(len(sl.speeds))
        home = np.empty(len(sl.speeds))
        p_to_d = np.empty(len(sl.speeds))
        for sp in np.unique(sl.speeds):
            vm = sl.speeds == sp
            to_p[vm] = self.travel.matrix(sl.pos[vm], pd_pts[:1], float(sp))[:, 0]
            out = self.travel.matrix(pd_pts, np.vstack([pd_pts[1:], sl.depots[vm]]), float(sp))
            p_to_d[vm] = out[0, 0]
            home[vm] = out[1, 1:]
        reach = v_start + to_p / fastest
        ok &= reach <= ride.latest_pickup + _PRUNE_MARGIN_S
        back = reach + (p_to_d + home) / fastest + ride.service_pickup_s + ride.service_dropoff_s
        ok &= back <= sl.shift_end + BASE_TOL + _PRUNE_MARGIN_S
        return np.flatnonzero(ok)

    def best_insertion(
        self, vehicles: list[Vehicle], ride: NewRide, now: float
    ) -> Insertion | None:
        """Cheapest feasible insertion of ``ride`` over ``vehicles`` at time ``now``."""
        nv = len(vehicles)
        if nv == 0:
            return None
        sl = self._refresh(vehicles)
        v_start = np.maximum(sl.ready, now)
        v_ok = sl.shift_end > now
        self.last_bounds = np.full(nv, -np.inf)
        self.last_box_bounds = np.full(nv, -np.inf)
        cand = self._candidates(sl, ride, v_start, v_ok)
        self.last_reachable = len(cand)
        self.last_candidates = 0
        if len(cand) == 0:
            return None
        out = _Out.empty(nv)
        if not (self.prune and isinstance(self.travel, StraightLineTravelTimes)):
            self.last_candidates = self._evaluate(sl, ride, cand, v_start, out, -np.inf)
            return choose(out.cost, out.tp, out.td, out.i, out.j)
        # Best-first over the fleet without a travel time to any planned stop: a bound from
        # each route's bounding box orders the vehicles; the first few are evaluated, then only
        # those whose bound can still beat (or tie with) the best insertion found.
        box = self.last_box_bounds  # written by _candidates
        if len(cand) > _FIRST_ROUND:
            # The least bounds first; their order does not matter (the kernel evaluates each
            # round best-first by the tighter bound of lower_bounds()).
            part = np.argpartition(box[cand], _FIRST_ROUND - 1)
            head, rest = cand[part[:_FIRST_ROUND]], cand[part[_FIRST_ROUND:]]
        else:
            head, rest = cand, cand[:0]
        n_eval = self._evaluate(sl, ride, head, v_start, out, np.inf)
        best = float(np.min(out.cost[head]))
        rest = rest[box[rest] <= best + _STOP_TOL]
        if len(rest):
            n_eval += self._evaluate(sl, ride, rest, v_start, out, best)
        self.last_candidates = n_eval
        return choose(out.cost, out.tp, out.td, out.i, out.j)

    def _matrix_times(
        self,
        sl: _Slots,
        cand: np.ndarray,
        pd_pts: FloatArray,
        s_toP: FloatArray,
        s_Pto: FloatArray,
        s_toD: FloatArray,
        s_Dto: FloatArray,
        v_posP: FloatArray,
        v_PD: FloatArray,
        v_Ddepot: FloatArray,
    ) -> None:
        """The kernel's travel times for ``cand`` from the travel-time model's matrices (one
        call each way per vehicle speed)."""
        # The candidates' stops: slot starts plus 0..count-1.
        cnt = sl.count[cand]
        starts = np.repeat(sl.first[cand], cnt)
        within = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        sidx = starts + within
        c_speed = sl.speeds[cand]
        s_speed = np.repeat(c_speed, cnt)
        for sp in np.unique(c_speed):
            vm = cand[c_speed == sp]
            sm = sidx[s_speed == sp]
            spf = float(sp)
            # Into P and D from every vehicle position and planned stop of this speed.
            orig = np.vstack([sl.pos[vm], sl.pts[sm]])
            to_pd = self.travel.matrix(orig, pd_pts, spf)
            nvm = len(vm)
            v_posP[vm] = to_pd[:nvm, 0]
            s_toP[sm] = to_pd[nvm:, 0]
            s_toD[sm] = to_pd[nvm:, 1]
            # Out of P and D to every planned stop, the depots, and P -> D itself.
            dest = np.vstack([sl.pts[sm], sl.depots[vm], pd_pts[1:]])
            from_pd = self.travel.matrix(pd_pts, dest, spf)
            ns = len(sm)
            s_Pto[sm] = from_pd[0, :ns]
            s_Dto[sm] = from_pd[1, :ns]
            v_Ddepot[vm] = from_pd[1, ns : ns + nvm]
            v_PD[vm] = from_pd[0, -1]

    def _evaluate(
        self,
        sl: _Slots,
        ride: NewRide,
        cand: np.ndarray,
        v_start: FloatArray,
        out: _Out,
        best0: float,
    ) -> int:
        """Run the kernel over the vehicles ``cand`` (best-first by :func:`lower_bounds` from
        ``best0``, the best cost found before, unless ``best0`` is -inf: every vehicle),
        writing their best insertions into ``out``; the number of vehicles evaluated."""
        nv = len(sl.ids)
        size = len(sl.pts)
        pd_pts = np.array([ride.pickup, ride.dropoff], dtype=np.float64)
        s_toP = np.empty(size)
        s_Pto = np.empty(size)
        s_toD = np.empty(size)
        s_Dto = np.empty(size)
        v_posP = np.empty(nv)
        v_PD = np.empty(nv)
        v_Ddepot = np.empty(nv)
        if isinstance(self.travel, StraightLineTravelTimes):
            straight_line_times(
                cand,
                sl.first,
                sl.count,
                sl.pts,
                sl.pos,
                sl.depots,
                sl.speeds,
                pd_pts,
                float(self.travel.detour),
                s_toP,
                s_Pto,
                s_toD,
                s_Dto,
                v_posP,
                v_PD,
                v_Ddepot,
            )
        else:
            self._matrix_times(sl, cand, pd_pts, s_toP, s_Pto, s_toD, s_Dto, v_posP, v_PD, v_Ddepot)
        s = sl.stops
        v_lb = self.last_bounds
        if best0 > -np.inf:
            # Best-first (exact, :mod:`dispatch.insertion`): cheapest bound first, and the
            # kernel stops once no bound left can beat the best insertion found.
            lower_bounds(
                cand, sl.first, sl.count, s["leg"], s_toP, s_Pto, s_toD, s_Dto, v_posP, v_PD, v_lb
            )
            cand = cand[np.argsort(v_lb[cand], kind="stable")]
        return int(
            _kernel(
                cand,
                v_lb,
                best0 if best0 > -np.inf else np.inf,
                v_start,
                sl.seats0,
                sl.wc0,
                sl.cap_s,
                sl.cap_w,
                sl.shift_end,
                sl.pos_depot,
                v_posP,
                v_PD,
                v_Ddepot,
                sl.first,
                sl.count,
                s["leg"],
                s["early"],
                s["late"],
                s["serv"],
                s["ds"],
                s["dw"],
                s["pair"],
                s["maxride"],
                s["depot"],
                s_toP,
                s_Pto,
                s_toD,
                s_Dto,
                float(ride.earliest_pickup),
                float(ride.latest_pickup),
                float(ride.latest_dropoff),
                int(ride.seats),
                int(ride.wheelchairs),
                float(ride.service_pickup_s),
                float(ride.service_dropoff_s),
                float(ride.max_ride_s),
                self.profile.starts,
                self.profile.factors,
                out.cost,
                out.tp,
                out.td,
                out.i,
                out.j,
            )
        )

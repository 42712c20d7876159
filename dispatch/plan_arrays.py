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
"""

from __future__ import annotations

from copy import copy
from dataclasses import dataclass
from operator import attrgetter

import numpy as np

from dispatch.geo import FloatArray
from dispatch.insertion import BASE_TOL, Insertion, NewRide, _kernel, choose
from dispatch.time_dependent import FREE_FLOW_PROFILE, SpeedProfile
from dispatch.travel_times import StraightLineTravelTimes, TravelTimes
from dispatch.vehicle import StopKind, Vehicle


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
        cand = self._candidates(sl, ride, v_start, v_ok)
        self.last_candidates = len(cand)
        if len(cand) == 0:
            return None
        v_ok = np.zeros(nv, dtype=np.bool_)
        v_ok[cand] = True
        # The candidates' stops: slot starts plus 0..count-1.
        cnt = sl.count[cand]
        starts = np.repeat(sl.first[cand], cnt)
        within = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        sidx = starts + within
        size = len(sl.pts)
        pd_pts = np.array([ride.pickup, ride.dropoff], dtype=np.float64)
        s_toP = np.empty(size)
        s_Pto = np.empty(size)
        s_toD = np.empty(size)
        s_Dto = np.empty(size)
        v_posP = np.empty(nv)
        v_PD = np.empty(nv)
        v_Ddepot = np.empty(nv)
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
        out_cost = np.empty(nv)
        out_tp = np.empty(nv)
        out_td = np.empty(nv)
        out_i = np.empty(nv, dtype=np.int64)
        out_j = np.empty(nv, dtype=np.int64)
        s = sl.stops
        _kernel(
            v_ok,
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
            out_cost,
            out_tp,
            out_td,
            out_i,
            out_j,
        )
        return choose(out_cost, out_tp, out_td, out_i, out_j)

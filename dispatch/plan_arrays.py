"""Flat arrays of every vehicle's plan (CSR layout), the input of the insertion kernel.

Per vehicle the arrays are cached and rebuilt only when its plan or position changes; a quote
then only concatenates them and asks the travel-time model for the times between the new
pick-up/drop-off and every planned node (one matrix call per vehicle speed). Legs are cached
as free-flow seconds; the kernel drives them through the zone's speed periods.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dispatch.geo import FloatArray
from dispatch.insertion import Insertion, NewRide, _kernel, choose
from dispatch.time_dependent import FREE_FLOW_PROFILE, SpeedProfile
from dispatch.travel_times import TravelTimes
from dispatch.vehicle import StopKind, Vehicle


def leg_times(travel: TravelTimes, points: FloatArray, speed_kmh: float) -> FloatArray:
    """Seconds between consecutive points of ``points`` (``len - 1`` values)."""
    if len(points) < 2:
        return np.zeros(0)
    m = travel.matrix(points[:-1], points[1:], speed_kmh)
    return np.asarray(np.diagonal(m), dtype=np.float64).copy()


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
        )


@dataclass
class _Stack:
    """Every vehicle's arrays concatenated (CSR by ``offsets``), reused until a plan changes."""

    offsets: np.ndarray
    pts: FloatArray
    pos: FloatArray
    depots: FloatArray
    speeds: FloatArray
    stop_speed: FloatArray
    seats0: np.ndarray
    wc0: np.ndarray
    cap_s: np.ndarray
    cap_w: np.ndarray
    shift_end: FloatArray
    pos_depot: FloatArray
    stops: dict[str, np.ndarray]


_STOP_FIELDS = ("leg", "early", "late", "serv", "ds", "dw", "pair", "maxride", "depot")


class FleetArrays:
    """All vehicles of one zone, concatenated; rebuilt lazily per vehicle.

    The concatenation is kept until the next :meth:`invalidate`, so a burst of quotes between
    two bookings only pays for the travel times of the new pick-up and drop-off.

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
        #: Spatial pruning of the vehicles a quote evaluates (exact: see :meth:`best_insertion`).
        self.prune = True
        self._cache: dict[str, VehicleArrays] = {}
        self._generation = 0
        self._stacked: tuple[tuple[int, tuple[str, ...]], _Stack] | None = None

    def invalidate(self, vehicle_id: str) -> None:
        self._cache.pop(vehicle_id, None)
        self._generation += 1

    def arrays(self, v: Vehicle) -> VehicleArrays:
        va = self._cache.get(v.vehicle_id)
        if va is None:
            va = self._cache[v.vehicle_id] = VehicleArrays.build(v, self.travel)
        return va

    def _stack(self, vehicles: list[Vehicle]) -> _Stack:
        key = (self._generation, tuple(v.vehicle_id for v in vehicles))
        if self._stacked is not None and self._stacked[0] == key:
            return self._stacked[1]
        vas = [self.arrays(v) for v in vehicles]
        nv = len(vehicles)
        counts = np.array([len(a.leg) for a in vas], dtype=np.int64)
        offsets = np.zeros(nv + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        speeds = np.array([v.vtype.speed_kmh for v in vehicles], dtype=np.float64)
        st = _Stack(
            offsets=offsets,
            pts=np.concatenate([a.points for a in vas]) if offsets[-1] else np.zeros((0, 2)),
            pos=np.array([v.position for v in vehicles], dtype=np.float64),
            depots=np.array([v.depot for v in vehicles], dtype=np.float64),
            speeds=speeds,
            stop_speed=np.repeat(speeds, counts),
            seats0=np.array([a.seats0 for a in vas], dtype=np.int64),
            wc0=np.array([a.wc0 for a in vas], dtype=np.int64),
            cap_s=np.array([v.vtype.seats for v in vehicles], dtype=np.int64),
            cap_w=np.array([v.vtype.wheelchair_spaces for v in vehicles], dtype=np.int64),
            shift_end=np.array([v.shift_end for v in vehicles], dtype=np.float64),
            pos_depot=np.array([a.pos_depot for a in vas], dtype=np.float64),
            stops={f: np.concatenate([getattr(a, f) for a in vas]) for f in _STOP_FIELDS},
        )
        self._stacked = (key, st)
        return st

    def best_insertion(
        self, vehicles: list[Vehicle], ride: NewRide, now: float
    ) -> Insertion | None:
        """Cheapest feasible insertion of ``ride`` over ``vehicles`` at time ``now``."""
        nv = len(vehicles)
        if nv == 0:
            return None
        st = self._stack(vehicles)
        pts, pos, depots, speeds, stop_speed = st.pts, st.pos, st.depots, st.speeds, st.stop_speed
        pd_pts = np.array([ride.pickup, ride.dropoff], dtype=np.float64)
        s_toP = np.empty(len(pts))
        s_Pto = np.empty(len(pts))
        s_toD = np.empty(len(pts))
        s_Dto = np.empty(len(pts))
        v_posP = np.empty(nv)
        v_PD = np.empty(nv)
        v_Ddepot = np.empty(nv)
        for sp in np.unique(speeds):
            vm = speeds == sp
            sm = stop_speed == sp
            spf = float(sp)
            # Into P and D from every vehicle position and planned stop of this speed.
            orig = np.vstack([pos[vm], pts[sm]])
            to_pd = self.travel.matrix(orig, pd_pts, spf)
            nvm = int(vm.sum())
            v_posP[vm] = to_pd[:nvm, 0]
            s_toP[sm] = to_pd[nvm:, 0]
            s_toD[sm] = to_pd[nvm:, 1]
            # Out of P and D to every planned stop, the depots, and P -> D itself.
            dest = np.vstack([pts[sm], depots[vm], pd_pts[1:]])
            from_pd = self.travel.matrix(pd_pts, dest, spf)
            ns = int(sm.sum())
            s_Pto[sm] = from_pd[0, :ns]
            s_Dto[sm] = from_pd[1, :ns]
            v_Ddepot[vm] = from_pd[1, ns : ns + nvm]
            v_PD[vm] = from_pd[0, -1]
        v_start = np.array(
            [max(now, v.position_time, v.shift_start) for v in vehicles], dtype=np.float64
        )
        v_ok = st.shift_end > now
        out_cost = np.empty(nv)
        out_tp = np.empty(nv)
        out_td = np.empty(nv)
        out_i = np.empty(nv, dtype=np.int64)
        out_j = np.empty(nv, dtype=np.int64)
        s = st.stops
        _kernel(
            v_ok,
            v_start,
            st.seats0,
            st.wc0,
            st.cap_s,
            st.cap_w,
            st.shift_end,
            st.pos_depot,
            v_posP,
            v_PD,
            v_Ddepot,
            st.offsets,
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

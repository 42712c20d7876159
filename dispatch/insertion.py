"""Cheapest feasible insertion of one ride into every vehicle's current plan (numba).

For each vehicle and each pair of positions (pick-up before stop ``i``, drop-off before stop
``j >= i``) the kernel checks, in the order that prunes most:

* the pick-up can still be reached in its window (``break`` once the vehicle leaves stop
  ``i - 1`` after the latest pick-up: later positions only get later);
* every capacity dimension (seats, wheelchairs) on each leg the new group rides (``break`` on
  the first overfull stop: a longer ride would cross it too);
* the added driving time in O(1) from cached legs; a pair costlier than the best found so far is
  skipped before any simulation;
* the pushed-back schedule from ``i`` onward: each later stop's promised window and the
  ride-time limit of everyone affected. The walk stops as soon as the delay is absorbed by a
  waiting time (the rest of the plan is then exactly the current, feasible, plan), so a
  candidate costs O(1) in slack-rich plans and O(k) at worst;
* the return to the depot before the shift ends.

Plans whose current schedule is already infeasible (a vehicle running late) take no new ride.
Vehicle ``v``'s stops are ``first[v] : first[v] + count[v]`` of the stop arrays (slots may be
padded: :class:`dispatch.plan_arrays.FleetArrays` keeps one fixed-size slot per vehicle); only
the vehicles of ``order`` are read, best-first: ``order`` is sorted by a lower bound on the
cost each vehicle could offer (:func:`lower_bounds`, the least added driving over every pair
of positions, feasible or not), and the kernel stops at the first vehicle whose bound cannot
beat (nor tie with) the best insertion found. The answer is the one of evaluating every
vehicle: a vehicle left out offers nothing :func:`choose` would take.

Every leg is driven through the zone's time-of-day speed periods
(:func:`dispatch.time_dependent.arrive`; free flow without windows, exactly ``t + leg``). The
model is FIFO, so a later departure never arrives earlier and the pruning above stays exact.
The cost, the added driving, is counted in free-flow seconds (the distance-like quantity to
minimise; the schedule checks use the time-dependent arrivals).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
from numpy.typing import NDArray

from dispatch.time_dependent import arrive

F = NDArray[np.float64]
IntA = NDArray[np.int64]

_EPS = 1e-6
#: Rounding slack of :func:`lower_bounds` (same terms as the kernel's cost, summed in another
#: order: a few ulps of a cost of some thousand seconds).
_LB_MARGIN = 1e-7
#: Slack allowed to a plan already in force (GPS positions make legs jitter by a few ms).
BASE_TOL = 1.0
INF = np.inf


@dataclass(frozen=True, slots=True)
class NewRide:
    """The ride to insert: places, pick-up window, deadlines, party and dwell times."""

    pickup: tuple[float, float]
    dropoff: tuple[float, float]
    earliest_pickup: float
    latest_pickup: float
    latest_dropoff: float
    seats: int
    wheelchairs: int
    max_ride_s: float
    service_pickup_s: float = 30.0
    service_dropoff_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Insertion:
    """Best insertion found: vehicle, positions in its plan, added driving time, schedule."""

    vehicle_index: int
    pickup_pos: int
    dropoff_pos: int
    cost_s: float
    pickup_s: float
    dropoff_s: float


@nb.njit(cache=True, nogil=True)
def _kernel(
    order: IntA,
    v_lb: F,
    best0: float,
    v_start: F,
    v_seats0: IntA,
    v_wc0: IntA,
    v_cap_s: IntA,
    v_cap_w: IntA,
    v_shift_end: F,
    v_pos_depot: F,
    v_posP: F,
    v_PD: F,
    v_Ddepot: F,
    first: IntA,
    count: IntA,
    s_leg: F,
    s_early: F,
    s_late: F,
    s_serv: F,
    s_ds: IntA,
    s_dw: IntA,
    s_pair: IntA,
    s_maxride: F,
    s_depot: F,
    s_toP: F,
    s_Pto: F,
    s_toD: F,
    s_Dto: F,
    e_p: float,
    l_p: float,
    l_d: float,
    n_s: int,
    n_w: int,
    serv_p: float,
    serv_d: float,
    maxride: float,
    starts: F,
    factors: F,
    out_cost: F,
    out_tp: F,
    out_td: F,
    out_i: IntA,
    out_j: IntA,
) -> int:
    # Free flow adds legs inline: a call to arrive() per candidate (numba does not inline it)
    # would make the kernel ~3x slower for nothing.
    free = starts.shape[0] == 1 and factors[0] == 1.0
    kmax = 1
    for q in range(order.shape[0]):
        kmax = max(kmax, count[order[q]])
    base_b = np.empty(kmax)
    base_dep = np.empty(kmax)
    ls = np.empty(kmax, dtype=np.int64)
    lw = np.empty(kmax, dtype=np.int64)
    new_b = np.empty(kmax)
    # The out arrays come filled (INF, -1) and keep what earlier calls wrote for other vehicles.
    # Best-first: ``order`` is sorted by ``v_lb``, a lower bound on every cost the vehicle
    # could offer. Once a vehicle's bound exceeds the best cost found by more than choose()'s
    # tie tolerance, neither it nor any later vehicle can be chosen (nor tie with the choice).
    best_all = best0  # the best cost found before this call (INF: none)
    evaluated = 0
    for q in range(order.shape[0]):
        v = order[q]
        if v_lb[v] > best_all + _EPS + _LB_MARGIN:
            break
        evaluated += 1
        o = first[v]
        n = count[v]
        # Current schedule and loads; an infeasible current plan takes no new ride.
        t = v_start[v]
        cs = v_seats0[v]
        cw = v_wc0[v]
        base_feasible = cs <= v_cap_s[v] and cw <= v_cap_w[v]
        for k in range(n):
            leg = s_leg[o + k]
            b = max(t + leg if free else arrive(t, leg, starts, factors), s_early[o + k])
            if b > s_late[o + k] + BASE_TOL:
                base_feasible = False
            p = s_pair[o + k]
            if p >= 0 and b - base_b[p] > s_maxride[o + k] + BASE_TOL:
                base_feasible = False
            base_b[k] = b
            t = b + s_serv[o + k]
            base_dep[k] = t
            cs += s_ds[o + k]
            cw += s_dw[o + k]
            ls[k] = cs
            lw[k] = cw
            if cs > v_cap_s[v] or cw > v_cap_w[v]:
                base_feasible = False
        base_end = t
        base_home = v_pos_depot[v] if n == 0 else s_depot[o + n - 1]
        back = base_end + base_home if free else arrive(base_end, base_home, starts, factors)
        if back > v_shift_end[v] + BASE_TOL:
            base_feasible = False
        if not base_feasible:
            continue
        best_cost = INF
        best_tp = INF
        for i in range(n + 1):
            prev_dep = v_start[v] if i == 0 else base_dep[i - 1]
            if prev_dep > l_p + _EPS:
                break
            load_s = v_seats0[v] if i == 0 else ls[i - 1]
            load_w = v_wc0[v] if i == 0 else lw[i - 1]
            if load_s + n_s > v_cap_s[v] or load_w + n_w > v_cap_w[v]:
                continue
            tt_in = v_posP[v] if i == 0 else s_toP[o + i - 1]
            bp = max(prev_dep + tt_in if free else arrive(prev_dep, tt_in, starts, factors), e_p)
            if bp > l_p + _EPS:
                continue
            for j in range(i, n + 1):
                if j > i and (ls[j - 1] + n_s > v_cap_s[v] or lw[j - 1] + n_w > v_cap_w[v]):
                    break
                # Added driving time, O(1) from cached legs.
                if j == i:
                    cost = tt_in + v_PD[v]
                    if i < n:
                        cost += s_Dto[o + i] - s_leg[o + i]
                else:
                    cost = tt_in + s_Pto[o + i] - s_leg[o + i] + s_toD[o + j - 1]
                    if j < n:
                        cost += s_Dto[o + j] - s_leg[o + j]
                if cost > best_cost + _EPS:
                    continue
                if abs(cost - best_cost) <= _EPS and bp >= best_tp - _EPS:
                    continue
                # Walk the pushed-back schedule from the pick-up on.
                t = bp + serv_p
                bd = -1.0
                ok = True
                settled = False
                for k in range(i, n + 1):
                    if k == j:
                        to_d = v_PD[v] if j == i else s_toD[o + j - 1]
                        bd = t + to_d if free else arrive(t, to_d, starts, factors)
                        if bd > l_d + _EPS or bd - bp > maxride + _EPS:
                            ok = False
                            break
                        t = bd + serv_d
                    if k == n:
                        break
                    if k == i and j != i:
                        tt = s_Pto[o + k]
                    elif k == j:
                        tt = s_Dto[o + k]
                    else:
                        tt = s_leg[o + k]
                    b = max(t + tt if free else arrive(t, tt, starts, factors), s_early[o + k])
                    if b > s_late[o + k] + _EPS:
                        ok = False
                        break
                    p = s_pair[o + k]
                    if p >= 0:
                        bpk = new_b[p] if p >= i else base_b[p]
                        if b - bpk > s_maxride[o + k] + _EPS:
                            ok = False
                            break
                    new_b[k] = b
                    t = b + s_serv[o + k]
                    if k >= j and b <= base_b[k] + _EPS:
                        settled = True  # delay absorbed: the rest is the current plan
                        break
                if not ok:
                    continue
                if not settled:
                    home = v_Ddepot[v] if j == n else s_depot[o + n - 1]
                    back = t + home if free else arrive(t, home, starts, factors)
                    if back > v_shift_end[v] + _EPS:
                        continue
                best_cost = cost
                best_tp = bp
                out_cost[v] = cost
                out_tp[v] = bp
                out_td[v] = bd
                out_i[v] = i
                out_j[v] = j
        if out_cost[v] < best_all:
            best_all = out_cost[v]
    return evaluated


@nb.njit(cache=True, nogil=True)
def lower_bounds(
    cand: IntA,
    first: IntA,
    count: IntA,
    s_leg: F,
    s_toP: F,
    s_Pto: F,
    s_toD: F,
    s_Dto: F,
    v_posP: F,
    v_PD: F,
    out_lb: F,
) -> None:
    """Least cost of inserting the ride into each vehicle of ``cand`` over every pair of
    positions, feasible or not, into ``out_lb`` (O(stops) per vehicle).

    The terms are the kernel's own (added free-flow driving, from the same cached legs), so the
    bound is the kernel's cost minimised over a superset of the pairs it accepts: whatever the
    windows, loads, ride-time limits and shift ends rule out, the kernel's best is never lower.
    Pairs ``j > i`` split into a pick-up part (``i``) and a drop-off part (``j``); a running
    minimum of the pick-up part over ``i < j`` gives the best split for each ``j``.
    """
    for q in range(cand.shape[0]):
        v = cand[q]
        o = first[v]
        n = count[v]
        best = INF
        best_p = INF  # least pick-up part over i < j
        for j in range(n + 1):
            tt_in = v_posP[v] if j == 0 else s_toP[o + j - 1]
            # Pick-up and drop-off together before stop j.
            c = tt_in + v_PD[v]
            if j < n:
                c += s_Dto[o + j] - s_leg[o + j]
            best = min(best, c)
            if j > 0:
                # Drop-off before stop j, pick-up earlier (before some stop i < j).
                d = s_toD[o + j - 1]
                if j < n:
                    d += s_Dto[o + j] - s_leg[o + j]
                best = min(best, best_p + d)
            if j < n:
                best_p = min(best_p, tt_in + s_Pto[o + j] - s_leg[o + j])
        out_lb[v] = best


def choose(out_cost: F, out_tp: F, out_td: F, out_i: IntA, out_j: IntA) -> Insertion | None:
    """The best of the per-vehicle best insertions: least cost, then earliest pick-up."""
    finite = np.isfinite(out_cost)
    if not finite.any():
        return None
    idx = np.flatnonzero(finite)
    cost = out_cost[idx]
    best = cost.min()
    near = idx[cost <= best + _EPS]
    v = int(near[np.argmin(out_tp[near])])
    return Insertion(
        vehicle_index=v,
        pickup_pos=int(out_i[v]),
        dropoff_pos=int(out_j[v]),
        cost_s=float(out_cost[v]),
        pickup_s=float(out_tp[v]),
        dropoff_s=float(out_td[v]),
    )

"""Route scheduling with ride-time limits: the eight-step method of Cordeau & Laporte (2003).

Given a node sequence ``seq[0..m-1]`` (vehicle start, stops, vehicle end), find start-of-
service times ``B`` satisfying time windows, ride times and route duration. Waiting is pushed
as late as the forward time slack allows: first the departure (to shorten the route), then at
every pickup (to shorten the rides that follow). This is the standard DARP heuristic check;
every plan it accepts is verified feasible (``B`` is a witness), so :func:`dispatch.problem.check`
can re-validate it independently. A problem with ``asap`` (live dispatch: vehicles never wait
beyond a window's opening) keeps the earliest schedule (steps 1-2) and only verifies it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from dispatch.optimize.kernel_data import KernelData

EPS = 1e-7


@njit(cache=True)
def _forward(seq, m, start, travel, nodef, B, W):  # type: ignore[no-untyped-def]
    """Earliest schedule from position ``start`` on (``B[start]`` given)."""
    for i in range(start + 1, m):
        a = B[i - 1] + nodef[seq[i - 1], 2] + travel[seq[i - 1], seq[i]]
        e = nodef[seq[i], 0]
        if a < e:
            B[i] = e
            W[i] = e - a
        else:
            B[i] = a
            W[i] = 0.0


@njit(cache=True)
def _slack(seq, m, i, nodef, nodei, reqi, maxride, end_late, B, W, pos):  # type: ignore[no-untyped-def]
    """Forward time slack at position ``i`` (how far ``B[i]`` may move without violation)."""
    best = np.inf
    cum = 0.0
    for j in range(i, m):
        if j > i:
            cum += W[j]
        node = seq[j]
        late = end_late if j == m - 1 else nodef[node, 1]
        room = late - B[j]
        if nodei[node, 1] == 2:
            r = nodei[node, 0]
            pp = pos[reqi[r, 0]]
            # Ride-time room only binds if the pickup is before i (delaying both is free).
            if pp < i and pp >= 1 and seq[pp] == reqi[r, 0]:
                ride = B[j] - (B[pp] + nodef[seq[pp], 2])
                if maxride[r] - ride < room:
                    room = maxride[r] - ride
        if room < 0.0:
            room = 0.0
        if cum + room < best:
            best = cum + room
    return best


@njit(cache=True)
def _rides_ok(seq, m, nodef, nodei, reqi, maxride, B, pos):  # type: ignore[no-untyped-def]
    for j in range(1, m - 1):
        node = seq[j]
        if nodei[node, 1] == 2:
            r = nodei[node, 0]
            pp = pos[reqi[r, 0]]
            if (
                pp >= 1
                and pp < j
                and seq[pp] == reqi[r, 0]
                and B[j] - (B[pp] + nodef[seq[pp], 2]) > maxride[r] + EPS
            ):
                return False
    return True


@njit(cache=True)
def schedule_route(P, k, seq, m, B, W, pos):  # type: ignore[no-untyped-def]
    """Schedule vehicle ``k`` along ``seq[:m]``; write ``B[:m]``; return feasibility.

    Travel times are those of vehicle ``k``'s profile. ``W`` and ``pos`` (size >= N) are
    scratch buffers. Capacity is not checked here.
    """
    nodef, nodei, vehf, reqi, maxride = P[2], P[3], P[5], P[9], P[10]
    travel = P[0][P[6][k, 2]]  # [N, N] view: the vehicle's own travel profile
    end_late = min(vehf[k, 1], nodef[seq[m - 1], 1])
    # Steps 1-2: earliest schedule; any window violated now cannot be repaired later.
    B[0] = max(nodef[seq[0], 0], vehf[k, 0])
    W[0] = 0.0
    if B[0] > nodef[seq[0], 1] + EPS:
        return False
    _forward(seq, m, 0, travel, nodef, B, W)
    for i in range(1, m):
        late = end_late if i == m - 1 else nodef[seq[i], 1]
        if B[i] > late + EPS:
            return False
    for i in range(1, m - 1):
        pos[seq[i]] = i
    has_ride = False
    for i in range(1, m - 1):
        if nodei[seq[i], 1] == 2 and maxride[nodei[seq[i], 0]] < np.inf:
            has_ride = True
            break
    if P[6][k, 3] == 1:
        # As soon as possible (live dispatch): the earliest schedule is the only one.
        if B[m - 1] - B[0] > vehf[k, 2] + EPS:
            return False
        return not has_ride or _rides_ok(seq, m, nodef, nodei, reqi, maxride, B, pos)
    # Steps 3-5: delay the departure by the forward slack (bounded by the total waiting).
    f0 = _slack(seq, m, 0, nodef, nodei, reqi, maxride, end_late, B, W, pos)
    wsum = 0.0
    for i in range(1, m):
        wsum += W[i]
    shift = min(f0, wsum)
    if shift > 0.0:
        B[0] += shift
        _forward(seq, m, 0, travel, nodef, B, W)
    # Step 6: done if ride times and duration hold.
    if (not has_ride or _rides_ok(seq, m, nodef, nodei, reqi, maxride, B, pos)) and (
        B[m - 1] - B[0] <= vehf[k, 2] + EPS
    ):
        return True
    if not has_ride:
        return False
    # Step 7: delay service at each pickup by its slack to shorten the rides after it.
    for j in range(1, m - 1):
        if nodei[seq[j], 1] != 1:
            continue
        fj = _slack(seq, m, j, nodef, nodei, reqi, maxride, end_late, B, W, pos)
        wsum = 0.0
        for i in range(j + 1, m):
            wsum += W[i]
        d = min(fj, wsum)
        if d > 0.0:
            B[j] += d
            W[j] += d
            _forward(seq, m, j, travel, nodef, B, W)
    # Step 8: final verification.
    for i in range(1, m):
        late = end_late if i == m - 1 else nodef[seq[i], 1]
        if B[i] > late + EPS:
            return False
    if B[m - 1] - B[0] > vehf[k, 2] + EPS:
        return False
    return _rides_ok(seq, m, nodef, nodei, reqi, maxride, B, pos)


@njit(cache=True)
def capacity_ok(P, k, seq, m):  # type: ignore[no-untyped-def]
    """Whether the load along ``seq[:m]`` stays within vehicle ``k``'s capacity."""
    load = P[4]
    cap = P[7]
    init = P[8]
    d = load.shape[1]
    cur = init[k].copy()
    for i in range(1, m - 1):
        for h in range(d):
            cur[h] += load[seq[i], h]
            if cur[h] > cap[k, h]:
                return False
    return True


def schedule_routes(P: KernelData, routes: list[list[int]]) -> tuple[list[np.ndarray], list[bool]]:
    """Schedule every route (Python convenience for building a :class:`Solution`)."""
    vehi = P[6]
    n = P[2].shape[0]
    times: list[np.ndarray] = []
    ok: list[bool] = []
    for k, route in enumerate(routes):
        seq = np.array([vehi[k, 0], *route, vehi[k, 1]], dtype=np.int64)
        B = np.zeros(seq.size)
        W = np.zeros(seq.size)
        pos = np.zeros(n, dtype=np.int64)
        feas = bool(schedule_route(P, k, seq, seq.size, B, W, pos)) and bool(
            capacity_ok(P, k, seq, seq.size)
        )
        times.append(B)
        ok.append(feas)
    return times, ok

"""Cheapest feasible insertion of one request into one route (numba).

Routes are rows of an ``int64[K, L]`` array holding ``[start, stops..., end]`` with lengths in
``rlen``. Candidate positions are pruned before any scheduling: by cost (the pickup's detour is a
lower bound of the pair's), by capacity (the delivery must come before the first overloaded
stop) and by time windows (earliest arrival at the pickup / delivery along the current route is
monotone in the position, so the scan stops at the first position that is already too late).
Only surviving candidates are scheduled with :func:`~dispatch.optimize.schedule.schedule_route`.
The pruning tests are necessary conditions under either scheduling rule (Cordeau's, or
``Problem.asap``'s earliest schedule), so they stay valid for live problems; with ``asap``,
feasibility is not monotone (removing a stop can lengthen a later ride, as the vehicle then
waits at a window instead of before a pickup), which only the full schedule decides.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from dispatch.optimize.schedule import EPS, capacity_ok, schedule_route


@njit(cache=True)
def _build(seq, m, p, i, d, j, cand):  # type: ignore[no-untyped-def]
    """``cand`` = ``seq`` with ``p`` after position ``i`` and ``d`` after position ``j``.

    ``p < 0`` inserts only the delivery (onboard request). Returns the new length.
    """
    c = 0
    for x in range(0, i + 1):
        cand[c] = seq[x]
        c += 1
    if p >= 0:
        cand[c] = p
        c += 1
    for x in range(i + 1, j + 1):
        cand[c] = seq[x]
        c += 1
    cand[c] = d
    c += 1
    for x in range(j + 1, m):
        cand[c] = seq[x]
        c += 1
    return c


@njit(cache=True)
def _pick_feasible(P, k, seq, m, p, d, n_cand, cd, ci, cj, cand, B, W, pos):  # type: ignore[no-untyped-def]
    """Schedule candidates cheapest first; return the index of the first feasible one."""
    for _ in range(n_cand):
        x = -1
        c = np.inf
        for y in range(n_cand):
            if cd[y] < c:
                c = cd[y]
                x = y
        if x < 0:
            return -1
        mm = _build(seq, m, p, ci[x], d, cj[x], cand)
        if (p >= 0 or capacity_ok(P, k, cand, mm)) and schedule_route(P, k, cand, mm, B, W, pos):
            return x
        cd[x] = np.inf
    return -1


@njit(cache=True)
def _start_after(Be, nodef, travel, j, a, x):  # type: ignore[no-untyped-def]
    """Driving to node ``x`` right after stop ``a`` at position ``j``: ``(too_late, start)``,
    ``too_late`` when it arrives after ``x``'s window closes (it only gets later further down
    the route), else the earliest start of service there."""
    t = Be[j] + nodef[a, 2] + travel[a, x]
    if t > nodef[x, 1] + EPS:
        return True, t
    return False, max(t, nodef[x, 0])


@njit(cache=True)
def _overloaded(lafter, load, cap, k, i, p):  # type: ignore[no-untyped-def]
    """Whether vehicle ``k`` carrying ``p``'s load on top of its load after position ``i`` is
    over its capacity."""
    for h in range(load.shape[1]):  # noqa: SIM110 (numba: no generator in any())
        if lafter[i, h] + load[p, h] > cap[k, h]:
            return True
    return False


@njit(cache=True)
def _add_candidate(cd, ci, cj, n, c, i, j):  # type: ignore[no-untyped-def]
    """Record candidate ``n`` (cost ``c``, positions ``i``, ``j``); returns the new count."""
    cd[n] = c
    ci[n] = i
    cj[n] = j
    return n + 1


@njit(cache=True)
def best_insertion(P, k, seq, m, r, fixed, cand, B, W, pos, Be, Ls, Sx, lafter, cd, ci, cj):  # type: ignore[no-untyped-def]
    """Cheapest feasible insertion of request ``r`` into route ``seq[:m]`` of vehicle ``k``.

    Returns ``(delta, i, j)``: the cost increase (``fixed`` added when the route was empty) and
    the positions after which the pickup and the delivery go (``i == j``: adjacent), or
    ``(inf, -1, -1)``. Candidates surviving O(1) necessary conditions (capacity; earliest
    arrival vs. window; latest start of the rest of the route, ``Ls``) are scheduled cheapest
    first, so usually one or two full schedules are computed. Scratch: ``cand``, ``B``, ``W``,
    ``Be``, ``Ls``, ``Sx`` (size >= m + 2), ``pos`` (size N), ``lafter`` ([m, D]), ``cd``/``ci``/``cj``
    (size >= m * m).
    """
    travel = P[0][P[6][k, 2]]  # vehicle k's own travel profile ([N, N] view)
    cost = P[1]
    nodef = P[2]
    load = P[4]
    vehf = P[5]
    cap = P[7]
    init = P[8]
    reqi = P[9]
    maxride = P[10]
    p = reqi[r, 0]
    d = reqi[r, 1]
    ob = reqi[r, 2]
    fx = reqi[r, 3]
    if (ob >= 0 and ob != k) or (fx >= 0 and fx != k):
        return np.inf, -1, -1
    nd = load.shape[1]
    Be[0] = max(nodef[seq[0], 0], vehf[k, 0])
    for i in range(1, m):
        a = Be[i - 1] + nodef[seq[i - 1], 2] + travel[seq[i - 1], seq[i]]
        Be[i] = max(a, nodef[seq[i], 0])
    # Latest start at each stop keeping the rest of the route within its windows.
    Ls[m - 1] = min(vehf[k, 1], nodef[seq[m - 1], 1])
    for i in range(m - 2, -1, -1):
        Ls[i] = min(nodef[seq[i], 1], Ls[i + 1] - travel[seq[i], seq[i + 1]] - nodef[seq[i], 2])
    # Drive + service time from the start to each stop (for ride-time lower bounds).
    Sx[0] = 0.0
    for i in range(1, m):
        Sx[i] = Sx[i - 1] + nodef[seq[i - 1], 2] + travel[seq[i - 1], seq[i]]
    for h in range(nd):
        lafter[0, h] = init[k, h]
    for i in range(1, m):
        for h in range(nd):
            lafter[i, h] = lafter[i - 1, h] + load[seq[i], h]
    extra = 0.0
    if m == 2:
        # An empty route costs nothing; using it costs the vehicle and the whole trip.
        extra = fixed + cost[seq[0], seq[1]]
    n_cand = 0
    sd = nodef[d, 2]
    if ob >= 0:
        for j in range(0, m - 1):
            a = seq[j]
            b = seq[j + 1]
            too_late, bd = _start_after(Be, nodef, travel, j, a, d)
            if too_late:
                break
            if bd + sd + travel[d, b] > Ls[j + 1] + EPS:
                continue
            c = cost[a, d] + cost[d, b] - cost[a, b] + extra
            n_cand = _add_candidate(cd, ci, cj, n_cand, c, j, j)
        x = _pick_feasible(P, k, seq, m, -1, d, n_cand, cd, ci, cj, cand, B, W, pos)
        if x < 0:
            return np.inf, -1, -1
        return cd[x], ci[x], cj[x]
    sp = nodef[p, 2]
    for i in range(0, m - 1):
        a = seq[i]
        b = seq[i + 1]
        too_late, bp = _start_after(Be, nodef, travel, i, a, p)
        if too_late:
            break
        if _overloaded(lafter, load, cap, k, i, p):
            continue
        # Adjacent: a -> p -> d -> b.
        bd = max(bp + sp + travel[p, d], nodef[d, 0])
        if bd <= nodef[d, 1] + EPS and bd + sd + travel[d, b] <= Ls[i + 1] + EPS:
            c = cost[a, p] + cost[p, d] + cost[d, b] - cost[a, b] + extra
            n_cand = _add_candidate(cd, ci, cj, n_cand, c, i, i)
        if max(bp + sp + travel[p, b], nodef[b, 0]) > Ls[i + 1] + EPS:
            continue
        dp = cost[a, p] + cost[p, b] - cost[a, b] + extra
        ride_max = maxride[r]
        for j in range(i + 1, m - 1):
            if _overloaded(lafter, load, cap, k, j, p):
                break
            c1 = seq[j]
            c2 = seq[j + 1]
            ride = travel[p, b] + Sx[j] - Sx[i + 1] + nodef[c1, 2] + travel[c1, d]
            if ride > ride_max + EPS:
                break
            too_late, bd = _start_after(Be, nodef, travel, j, c1, d)
            if too_late:
                break
            if bd + sd + travel[d, c2] > Ls[j + 1] + EPS:
                continue
            c = dp + cost[c1, d] + cost[d, c2] - cost[c1, c2]
            n_cand = _add_candidate(cd, ci, cj, n_cand, c, i, j)
    x = _pick_feasible(P, k, seq, m, p, d, n_cand, cd, ci, cj, cand, B, W, pos)
    if x < 0:
        return np.inf, -1, -1
    return cd[x], ci[x], cj[x]


@njit(cache=True)
def apply_insertion(P, routes, rlen, k, r, i, j, cand):  # type: ignore[no-untyped-def]
    """Insert request ``r`` into route ``k`` at positions ``(i, j)`` from :func:`best_insertion`."""
    reqi = P[9]
    p = reqi[r, 0] if reqi[r, 2] < 0 else -1
    m = rlen[k]
    mm = _build(routes[k], m, p, i, reqi[r, 1], j, cand)
    for x in range(mm):
        routes[k, x] = cand[x]
    rlen[k] = mm

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
def _ride_slack(P, seq, m, Be, Ls, Sx, pos, PS, TS):  # type: ignore[no-untyped-def]
    """Room of the rides over each arc ``x`` (``seq[x] -> seq[x + 1]``) of the route.

    For each request picked up at position ``a`` and delivered at ``b`` on the route (a ride
    limit, not onboard): ``PS[x]`` (``a <= x < b``) is the least of ``maxride`` minus the ride's
    drive and service time (a stop inserted on arc ``x`` lengthens it by its detour, whatever
    the schedule); ``TS[x]`` the least of ``maxride - (Be[b] - Ls[a] - s_a) + G[b]``, where
    ``Be[b] - Ls[a] - s_a`` is a lower bound of the ride (earliest delivery, latest pickup) and
    ``G = Be - Sx`` counts the waiting of the earliest schedule: a push ``delta`` of the earliest
    schedule at position ``x + 1`` reaches ``b`` as ``max(0, delta - (G[b] - G[x + 1]))``, so
    the ride stays possible only if ``delta + G[x + 1] <= TS[x]``. Both need travel times that
    satisfy the triangle inequality (an inserted stop never shortens the route), as the
    window tests of :func:`best_insertion` do. O(m * capacity).
    """
    nodef, nodei, reqi, maxride = P[2], P[3], P[9], P[10]
    for x in range(m):
        PS[x] = np.inf
        TS[x] = np.inf
    for x in range(1, m - 1):
        pos[seq[x]] = x
    for y in range(1, m - 1):
        node = seq[y]
        if nodei[node, 1] != 2:
            continue
        rr = nodei[node, 0]
        mr = maxride[rr]
        pn = reqi[rr, 0]
        a = pos[pn]
        if mr == np.inf or a < 1 or a >= y or seq[a] != pn:
            continue  # no limit, or picked up before the route starts (onboard)
        sa = nodef[pn, 2]
        ps = mr - (Sx[y] - Sx[a] - sa)
        ts = mr - (Be[y] - Ls[a] - sa) + Be[y] - Sx[y]
        for x in range(a, y):
            if ps < PS[x]:
                PS[x] = ps
            if ts < TS[x]:
                TS[x] = ts


@njit(cache=True)
def _rides_fit(PS, TS, Be, Sx, x, detour, push):  # type: ignore[no-untyped-def]
    """Whether the rides over arc ``x`` can still hold a stop there that adds ``detour`` to
    the drive and pushes the earliest start at position ``x + 1`` by ``push`` (necessary
    condition, see :func:`_ride_slack`)."""
    if detour > PS[x] + EPS:
        return False
    return push <= 0.0 or push + Be[x + 1] - Sx[x + 1] <= TS[x] + EPS


@njit(cache=True)
def route_summary(P, k, seq, m, Be, Ls, Sx, lafter, slack, pos):  # type: ignore[no-untyped-def]
    """What :func:`insertion_candidates` reads of route ``seq[:m]`` of vehicle ``k``, in O(m):
    earliest starts ``Be``, latest starts keeping the rest within its windows ``Ls``, drive and
    service time from the start ``Sx``, load after each stop ``lafter`` and the rides' room per
    arc ``slack`` (:func:`_ride_slack`). Computed once per route state, it serves every request
    tried there (``pos``: scratch of size N)."""
    travel = P[0][P[6][k, 2]]
    nodef = P[2]
    load = P[4]
    vehf = P[5]
    init = P[8]
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
    _ride_slack(P, seq, m, Be, Ls, Sx, pos, slack[0], slack[1])


@njit(cache=True)
def insertion_candidates(P, k, seq, m, r, fixed, Be, Ls, Sx, lafter, slack, cd, ci, cj):  # type: ignore[no-untyped-def]
    """Positions of request ``r`` in route ``seq[:m]`` of vehicle ``k`` that O(1) necessary
    conditions of feasibility leave to schedule: ``cd[x]``, ``ci[x]``, ``cj[x]`` (cost increase,
    pickup and delivery positions, as in :func:`best_insertion`) for ``x < `` the count
    returned; -1 when ``r`` may not ride on ``k`` at all.

    The conditions: capacity; earliest arrival vs. window; latest start of the rest of the
    route (``Ls``); the request's own ride (drive, and earliest delivery after latest pickup);
    and the rides of the requests already on the route, in O(1) per position
    (:func:`_ride_slack`): the detour a stop adds to every ride over its arc, and the push it
    gives the earliest schedule (less the waiting that absorbs it before each delivery), against
    each ride's room. All are necessary conditions, so a position left out is one the full
    schedule would reject (Gschwind & Drexl 2019 make such a test exact). ``Be``, ``Ls``,
    ``Sx``, ``lafter`` and ``slack`` are the route's :func:`route_summary`.
    """
    travel = P[0][P[6][k, 2]]  # vehicle k's own travel profile ([N, N] view)
    cost = P[1]
    nodef = P[2]
    load = P[4]
    cap = P[7]
    reqi = P[9]
    maxride = P[10]
    p = reqi[r, 0]
    d = reqi[r, 1]
    ob = reqi[r, 2]
    fx = reqi[r, 3]
    if (ob >= 0 and ob != k) or (fx >= 0 and fx != k):
        return -1
    PS = slack[0]
    TS = slack[1]
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
            nb = bd + sd + travel[d, b]
            if nb > Ls[j + 1] + EPS:
                continue
            if not _rides_fit(
                PS, TS, Be, Sx, j, travel[a, d] + sd + travel[d, b] - travel[a, b],
                max(nb, nodef[b, 0]) - Be[j + 1],
            ):  # fmt: skip
                continue
            c = cost[a, d] + cost[d, b] - cost[a, b] + extra
            n_cand = _add_candidate(cd, ci, cj, n_cand, c, j, j)
        return n_cand
    sp = nodef[p, 2]
    ride_max = maxride[r]
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
        nb = bd + sd + travel[d, b]
        # Latest start at p: its window, and in time for d then the rest of the route.
        lp = min(nodef[p, 1], min(nodef[d, 1], Ls[i + 1] - travel[d, b] - sd) - travel[p, d] - sp)
        if (
            bd <= nodef[d, 1] + EPS
            and nb <= Ls[i + 1] + EPS
            and bd - lp - sp <= ride_max + EPS
            and _rides_fit(
                PS, TS, Be, Sx, i, travel[a, p] + sp + travel[p, d] + sd + travel[d, b] - travel[a, b],
                max(nb, nodef[b, 0]) - Be[i + 1],
            )
        ):  # fmt: skip
            c = cost[a, p] + cost[p, d] + cost[d, b] - cost[a, b] + extra
            n_cand = _add_candidate(cd, ci, cj, n_cand, c, i, i)
        nb = max(bp + sp + travel[p, b], nodef[b, 0])
        if nb > Ls[i + 1] + EPS:
            continue
        # The rides over arc i: lengthened by p's detour, pushed by p's delay at b.
        push = nb - Be[i + 1]
        if not _rides_fit(PS, TS, Be, Sx, i, travel[a, p] + sp + travel[p, b] - travel[a, b], push):
            continue
        dp = cost[a, p] + cost[p, b] - cost[a, b] + extra
        lp = min(nodef[p, 1], Ls[i + 1] - travel[p, b] - sp)
        for j in range(i + 1, m - 1):
            if _overloaded(lafter, load, cap, k, j, p):
                break
            c1 = seq[j]
            c2 = seq[j + 1]
            ride = travel[p, b] + Sx[j] - Sx[i + 1] + nodef[c1, 2] + travel[c1, d]
            if ride > ride_max + EPS:
                break
            # Earliest start at c1 with p on the route: p's push less the waiting before c1.
            bj = Be[j] + max(0.0, push - (Be[j] - Sx[j] - Be[i + 1] + Sx[i + 1]))
            bd = bj + nodef[c1, 2] + travel[c1, d]
            if bd > nodef[d, 1] + EPS:
                break
            bd = max(bd, nodef[d, 0])
            nb = bd + sd + travel[d, c2]
            if nb > Ls[j + 1] + EPS:
                continue
            if bd - lp - sp > ride_max + EPS:
                continue  # r's own ride: d's earliest start after p's latest
            if not _rides_fit(
                PS, TS, Be, Sx, j, travel[c1, d] + sd + travel[d, c2] - travel[c1, c2],
                max(nb, nodef[c2, 0]) - Be[j + 1],
            ):  # fmt: skip
                continue
            c = dp + cost[c1, d] + cost[d, c2] - cost[c1, c2]
            n_cand = _add_candidate(cd, ci, cj, n_cand, c, i, j)
    return n_cand


@njit(cache=True)
def best_insertion(P, k, seq, m, r, fixed, cand, B, W, pos, Be, Ls, Sx, lafter, cd, ci, cj, slack):  # type: ignore[no-untyped-def]
    """Cheapest feasible insertion of request ``r`` into route ``seq[:m]`` of vehicle ``k``.

    Returns ``(delta, i, j)``: the cost increase (``fixed`` added when the route was empty) and
    the positions after which the pickup and the delivery go (``i == j``: adjacent), or
    ``(inf, -1, -1)``. The positions :func:`insertion_candidates` leaves are scheduled cheapest
    first, so usually one or two full schedules are computed. Scratch: ``cand``, ``B``, ``W``,
    ``Be``, ``Ls``, ``Sx`` (size >= m + 2), ``pos`` (size N), ``lafter`` ([m, D]), ``cd``/``ci``/``cj``
    (size >= m * m), ``slack`` ([2, m]).
    """
    reqi = P[9]
    if (reqi[r, 2] >= 0 and reqi[r, 2] != k) or (reqi[r, 3] >= 0 and reqi[r, 3] != k):
        return np.inf, -1, -1
    route_summary(P, k, seq, m, Be, Ls, Sx, lafter, slack, pos)
    return insert_into(
        P, k, seq, m, r, fixed, cand, B, W, pos, Be, Ls, Sx, lafter, slack, cd, ci, cj
    )


@njit(cache=True)
def insert_into(P, k, seq, m, r, fixed, cand, B, W, pos, Be, Ls, Sx, lafter, slack, cd, ci, cj):  # type: ignore[no-untyped-def]
    """:func:`best_insertion` on a route whose :func:`route_summary` is given (``Be`` ...
    ``slack``): repair keeps one per route while it tries many requests there."""
    n_cand = insertion_candidates(P, k, seq, m, r, fixed, Be, Ls, Sx, lafter, slack, cd, ci, cj)
    if n_cand <= 0:
        return np.inf, -1, -1
    reqi = P[9]
    p = reqi[r, 0] if reqi[r, 2] < 0 else -1
    x = _pick_feasible(P, k, seq, m, p, reqi[r, 1], n_cand, cd, ci, cj, cand, B, W, pos)
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

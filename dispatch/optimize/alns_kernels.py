"""ALNS inner loops in numba: removal (random, worst, related, route) and repair (greedy,
regret-k with cached insertion costs), simulated-annealing acceptance, adaptive weights.

State (all arrays, mutated in place by :func:`alns_chunk`):

* ``cur`` / ``best``: ``routes int64[K, L]``, ``rlen int64[K]``, ``rveh int64[R]`` (vehicle of
  each request, -1 unserved), ``rcost float64[K]`` (route cost incl. the vehicle's fixed cost).
* ``fstate float64[4]``: current objective, best objective, temperature, cooling factor.
* ``weights float64[2, 4]`` / ``scores`` / ``counts``: adaptive operator weights
  (row 0: removal operators, row 1: repair operators).

Every candidate plan is verified with :func:`routes_feasible` before acceptance: with
``Problem.asap`` a removal alone can break a route (see :mod:`dispatch.optimize.insertion`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from dispatch.optimize.insertion import (
    apply_insertion,
    insert_into,
    insertion_candidates,
    route_summary,
)
from dispatch.optimize.schedule import capacity_ok, schedule_route

N_REMOVE = 4  # random, worst, related (Shaw), route
N_REPAIR = 4  # greedy, greedy + noise, regret-2, regret-3
REGRET_BIG = 1e9


@njit(cache=True)
def seed_rng(seed):  # type: ignore[no-untyped-def]
    """Seed numba's generator (a chunked run then replays exactly for a given seed)."""
    np.random.seed(seed)


@njit(cache=True)
def route_cost(P, routes, rlen, k, fixed):  # type: ignore[no-untyped-def]
    m = rlen[k]
    if m <= 2:
        return 0.0
    cost = P[1]
    s = fixed
    for i in range(m - 1):
        s += cost[routes[k, i], routes[k, i + 1]]
    return s


@njit(cache=True)
def objective(rcost, rveh, penalty):  # type: ignore[no-untyped-def]
    s = 0.0
    for k in range(rcost.shape[0]):
        s += rcost[k]
    for r in range(rveh.shape[0]):
        if rveh[r] < 0:
            s += penalty
    return s


@njit(cache=True)
def remove_requests(P, routes, rlen, rveh, rcost, mask, fixed):  # type: ignore[no-untyped-def]
    """Take every request with ``mask[r]`` out of its route."""
    nodei = P[3]
    for k in range(routes.shape[0]):
        m = rlen[k]
        c = 1
        changed = False
        for x in range(1, m - 1):
            node = routes[k, x]
            if mask[nodei[node, 0]]:
                changed = True
                continue
            routes[k, c] = node
            c += 1
        routes[k, c] = routes[k, m - 1]
        rlen[k] = c + 1
        if changed:
            rcost[k] = route_cost(P, routes, rlen, k, fixed)
    for r in range(mask.shape[0]):
        if mask[r]:
            rveh[r] = -1


@njit(cache=True)
def _pick_random(rveh, q, mask):  # type: ignore[no-untyped-def]
    assigned = np.flatnonzero(rveh >= 0)
    np.random.shuffle(assigned)
    for x in range(min(q, assigned.shape[0])):
        mask[assigned[x]] = True


@njit(cache=True)
def _removal_savings(P, routes, rlen, rveh):  # type: ignore[no-untyped-def]
    """Cost saved by removing each assigned request (``-inf`` for unassigned ones)."""
    cost = P[1]
    nodei = P[3]
    reqi = P[9]
    n_req = rveh.shape[0]
    pos = np.full(P[2].shape[0], -1, dtype=np.int64)
    for k in range(routes.shape[0]):
        for x in range(1, rlen[k] - 1):
            pos[routes[k, x]] = x
    sav = np.full(n_req, -np.inf)
    for r in range(n_req):
        k = rveh[r]
        if k < 0:
            continue
        seq = routes[k]
        b = pos[reqi[r, 1]]
        a = pos[reqi[r, 0]] if reqi[r, 2] < 0 else -1
        if a < 0:
            sav[r] = (
                cost[seq[b - 1], seq[b]] + cost[seq[b], seq[b + 1]] - cost[seq[b - 1], seq[b + 1]]
            )
        elif b == a + 1:
            sav[r] = (
                cost[seq[a - 1], seq[a]]
                + cost[seq[a], seq[b]]
                + cost[seq[b], seq[b + 1]]
                - cost[seq[a - 1], seq[b + 1]]
            )
        else:
            sav[r] = (
                cost[seq[a - 1], seq[a]]
                + cost[seq[a], seq[a + 1]]
                - cost[seq[a - 1], seq[a + 1]]
                + cost[seq[b - 1], seq[b]]
                + cost[seq[b], seq[b + 1]]
                - cost[seq[b - 1], seq[b + 1]]
            )
    _ = nodei
    return sav


@njit(cache=True)
def _pick_worst(P, routes, rlen, rveh, q, mask, power):  # type: ignore[no-untyped-def]
    sav = _removal_savings(P, routes, rlen, rveh)
    order = np.argsort(-sav)
    n_ass = 0
    for r in range(rveh.shape[0]):
        if rveh[r] >= 0:
            n_ass += 1
    cand = order[:n_ass].copy()
    left = n_ass
    for _ in range(min(q, n_ass)):
        x = int(np.random.random() ** power * left)
        mask[cand[x]] = True
        for y in range(x, left - 1):
            cand[y] = cand[y + 1]
        left -= 1


@njit(cache=True)
def _node_times(P, routes, rlen):  # type: ignore[no-untyped-def]
    n = P[2].shape[0]
    t = np.zeros(n)
    L = routes.shape[1]
    B = np.zeros(L)
    W = np.zeros(L)
    pos = np.zeros(n, dtype=np.int64)
    for k in range(routes.shape[0]):
        m = rlen[k]
        if m <= 2:
            continue
        schedule_route(P, k, routes[k], m, B, W, pos)
        for x in range(1, m - 1):
            t[routes[k, x]] = B[x]
    return t


@njit(cache=True)
def _pick_related(P, routes, rlen, rveh, q, mask, power, dscale, tscale):  # type: ignore[no-untyped-def]
    """Shaw removal: requests close in space and time to an already removed one.

    Relatedness is a heuristic measure between requests, not tied to a vehicle: it uses the
    travel times of profile 0 (speeds only rescale it, and ``dscale`` normalises it anyway).
    """
    travel = P[0][0]
    reqi = P[9]
    assigned = np.flatnonzero(rveh >= 0)
    if assigned.shape[0] == 0:
        return
    t = _node_times(P, routes, rlen)
    first = assigned[np.random.randint(assigned.shape[0])]
    mask[first] = True
    removed = [first]
    for _ in range(min(q, assigned.shape[0]) - 1):
        ref = removed[np.random.randint(len(removed))]
        rp = reqi[ref, 0]
        rd = reqi[ref, 1]
        cand = np.empty(assigned.shape[0], dtype=np.int64)
        rel = np.empty(assigned.shape[0])
        c = 0
        for r in assigned:
            if mask[r]:
                continue
            p = reqi[r, 0]
            d = reqi[r, 1]
            rel[c] = (travel[rp, p] + travel[rd, d]) / dscale + (
                abs(t[rp] - t[p]) + abs(t[rd] - t[d])
            ) / tscale
            cand[c] = r
            c += 1
        if c == 0:
            break
        order = np.argsort(rel[:c])
        x = int(np.random.random() ** power * c)
        chosen = cand[order[x]]
        mask[chosen] = True
        removed.append(chosen)


@njit(cache=True)
def _pick_route(routes, rlen, rveh, mask):  # type: ignore[no-untyped-def]
    """Empty one used route: the smallest (half the time) or a random one."""
    used = np.flatnonzero(rlen > 2)
    if used.shape[0] == 0:
        return
    if np.random.random() < 0.5:
        k = used[np.argmin(rlen[used])]
    else:
        k = used[np.random.randint(used.shape[0])]
    for r in range(rveh.shape[0]):
        if rveh[r] == k:
            mask[r] = True


@njit(cache=True)
def _insertion_scratch(P, L):  # type: ignore[no-untyped-def]
    """Work arrays of :func:`best_insertion` for routes of up to ``L`` positions.

    ``(cand, B, W, pos, Be, Ls, Sx, lafter, cd, ci, cj, slack)``, in its argument order.
    """
    n = P[2].shape[0]
    nd = P[4].shape[1]
    return (
        np.empty(L, dtype=np.int64),
        np.empty(L),
        np.empty(L),
        np.zeros(n, dtype=np.int64),
        np.empty(L),
        np.empty(L),
        np.empty(L),
        np.empty((L, nd), dtype=np.int64),
        np.empty(L * L),
        np.empty(L * L, dtype=np.int64),
        np.empty(L * L, dtype=np.int64),
        np.empty((2, L)),
    )


@njit(cache=True)
def _insert_request(P, routes, rlen, rveh, rcost, k, r, i, j, cand, fixed):  # type: ignore[no-untyped-def]
    """Insert request ``r`` into route ``k`` at ``(i, j)`` and update its vehicle and cost."""
    apply_insertion(P, routes, rlen, k, r, i, j, cand)
    rveh[r] = k
    rcost[k] = route_cost(P, routes, rlen, k, fixed)


@njit(cache=True)
def _lower_bound(P, k, seq, m, r, fixed, Be, Ls, Sx, lafter, slack, cd, ci, cj):  # type: ignore[no-untyped-def]
    """Cheapest position of request ``r`` in route ``k`` that the O(1) tests leave (no
    schedule): a lower bound of :func:`insert_into`'s cost, ``inf`` if none is left."""
    n = insertion_candidates(P, k, seq, m, r, fixed, Be, Ls, Sx, lafter, slack, cd, ci, cj)
    c = np.inf
    for y in range(n):
        if cd[y] < c:
            c = cd[y]
    return c


@njit(cache=True)
def _verify_top(P, routes, rlen, bank, x, t, fixed, bc, bi, bj, exact, used, S, W3):  # type: ignore[no-untyped-def]
    """Make the ``t`` smallest entries of ``bc[x]`` exact (scheduled), scanning as
    :func:`repair` does (cheapest first, lowest route index on ties).

    ``bc[x, k]`` holds a lower bound where ``exact[x, k]`` is False; scheduling only raises
    it, so once the ``t`` smallest are exact, they are the ``t`` smallest exact costs and
    :func:`repair` picks what it would have picked with every cost scheduled.
    ``S = (Be, Ls, Sx, lafter, slack)`` per route, ``W3 = (cand, B, W, pos, cd, ci, cj)``.
    """
    Be, Ls, Sx, lafter, slack = S
    cand, B, W, pos, cd, ci, cj = W3
    n_veh = bc.shape[1]
    r = bank[x]
    while True:
        for k in range(n_veh):
            used[k] = False
        changed = False
        for _ in range(t):
            kk = -1
            ck = np.inf
            for k in range(n_veh):
                if not used[k] and bc[x, k] < ck:
                    ck = bc[x, k]
                    kk = k
            if kk < 0:
                break
            used[kk] = True
            if not exact[x, kk]:
                c, i, j = insert_into(
                    P, kk, routes[kk], rlen[kk], r, fixed, cand, B, W, pos, Be[kk], Ls[kk],
                    Sx[kk], lafter[kk], slack[kk], cd, ci, cj,
                )  # fmt: skip
                bc[x, kk] = c
                bi[x, kk] = i
                bj[x, kk] = j
                exact[x, kk] = True
                changed = True
                break  # the order may have changed: scan again
        if not changed:
            return


@njit(cache=True)
def repair(P, routes, rlen, rveh, rcost, bank, mode, noise, fixed):  # type: ignore[no-untyped-def]
    """Insert the requests of ``bank`` (mode 0 greedy, 1 noisy greedy, 2/3 regret-k).

    Insertion costs are cached per (request, route), lazily: first the cheapest position the
    O(1) tests leave (a lower bound, no schedule), scheduled only when the request's choice
    depends on it (its cheapest route; for regret-k its ``k`` cheapest), which picks exactly
    what scheduling every cost would, with a fraction of the schedules. After each insertion
    only the column of the modified route is recomputed. Returns the number of requests left
    out.
    """
    nb = bank.shape[0]
    n_veh = routes.shape[0]
    L = routes.shape[1]
    cand, B, W, pos, _, _, _, _, cd, ci, cj, _ = _insertion_scratch(P, L)
    # Each route's summary (earliest / latest starts, loads, rides' room) is computed once per
    # route state and serves every request tried there.
    Be = np.empty((n_veh, L))
    Ls = np.empty((n_veh, L))
    Sx = np.empty((n_veh, L))
    lafter = np.empty((n_veh, L, P[4].shape[1]), dtype=np.int64)
    slack = np.empty((n_veh, 2, L))
    for k in range(n_veh):
        route_summary(P, k, routes[k], rlen[k], Be[k], Ls[k], Sx[k], lafter[k], slack[k], pos)
    S = (Be, Ls, Sx, lafter, slack)
    W3 = (cand, B, W, pos, cd, ci, cj)
    bc = np.full((nb, n_veh), np.inf)
    bi = np.full((nb, n_veh), -1, dtype=np.int64)
    bj = np.full((nb, n_veh), -1, dtype=np.int64)
    exact = np.zeros((nb, n_veh), dtype=np.bool_)
    used = np.zeros(n_veh, dtype=np.bool_)
    top = 1 if mode <= 1 else mode
    for x in range(nb):
        for k in range(n_veh):
            bc[x, k] = _lower_bound(
                P, k, routes[k], rlen[k], bank[x], fixed, Be[k], Ls[k], Sx[k], lafter[k],
                slack[k], cd, ci, cj,
            )  # fmt: skip
    alive = np.ones(nb, dtype=np.bool_)
    left = nb
    while left > 0:
        bx = -1
        bk = -1
        bval = np.inf
        for x in range(nb):
            if not alive[x]:
                continue
            _verify_top(P, routes, rlen, bank, x, top, fixed, bc, bi, bj, exact, used, S, W3)
            k1 = -1
            c1 = np.inf
            for k in range(n_veh):
                if bc[x, k] < c1:
                    c1 = bc[x, k]
                    k1 = k
            if k1 < 0:
                continue
            if mode <= 1:
                val = c1
                if mode == 1:
                    val += noise * (2.0 * np.random.random() - 1.0)
            else:
                # regret-k: sum over the next best routes of (their cost - the best cost)
                regret = 0.0
                prev = c1
                used_mask = np.zeros(n_veh, dtype=np.bool_)
                used_mask[k1] = True
                for _ in range(mode - 1):
                    kk = -1
                    ck = np.inf
                    for k in range(n_veh):
                        if not used_mask[k] and bc[x, k] < ck:
                            ck = bc[x, k]
                            kk = k
                    if kk < 0 or ck == np.inf:
                        regret += REGRET_BIG
                    else:
                        used_mask[kk] = True
                        regret += ck - c1
                        prev = ck
                _ = prev
                val = -regret + 1e-6 * c1
            if val < bval:
                bval = val
                bx = x
                bk = k1
        if bx < 0:
            break
        _insert_request(
            P, routes, rlen, rveh, rcost, bk, bank[bx], bi[bx, bk], bj[bx, bk], cand, fixed
        )
        alive[bx] = False
        left -= 1
        route_summary(
            P, bk, routes[bk], rlen[bk], Be[bk], Ls[bk], Sx[bk], lafter[bk], slack[bk], pos
        )
        for x in range(nb):
            if alive[x]:
                bc[x, bk] = _lower_bound(
                    P, bk, routes[bk], rlen[bk], bank[x], fixed, Be[bk], Ls[bk], Sx[bk],
                    lafter[bk], slack[bk], cd, ci, cj,
                )  # fmt: skip
                exact[x, bk] = False
    return left


@njit(cache=True)
def routes_feasible(P, routes, rlen):  # type: ignore[no-untyped-def]
    return changed_routes_feasible(P, routes, rlen, routes, np.zeros_like(rlen))


@njit(cache=True)
def changed_routes_feasible(P, routes, rlen, known, known_len):  # type: ignore[no-untyped-def]
    """Whether every route of ``routes`` that differs from its row of ``known`` (routes known
    to be feasible, ``known_len`` their lengths) is feasible: a route left as it was needs
    no new schedule."""
    L = routes.shape[1]
    n = P[2].shape[0]
    B = np.empty(L)
    W = np.empty(L)
    pos = np.zeros(n, dtype=np.int64)
    for k in range(routes.shape[0]):
        m = rlen[k]
        if m <= 2:
            continue
        if m == known_len[k]:
            same = True
            for x in range(m):
                if routes[k, x] != known[k, x]:
                    same = False
                    break
            if same:
                continue
        # Checked inline here, in relocate_descent and in 2-opt*: a shared njit helper for the
        # check ran ALNS 10-40 % slower (measured), even with inline="always".
        if not capacity_ok(P, k, routes[k], m) or not schedule_route(P, k, routes[k], m, B, W, pos):
            return False
    return True


@njit(cache=True)
def relocate_descent(P, routes, rlen, rveh, rcost, fixed, max_passes):  # type: ignore[no-untyped-def]
    """Move single requests to their cheapest feasible position while that saves cost.

    Complements the ruin-and-recreate moves (which remove at least ``q_min`` requests): it is
    run on every new best plan. Routes are tried cheapest lower bound first (the cheapest
    position the O(1) tests leave) and scheduled only while that bound could still beat the
    best move found, which picks the move trying every route did (the cheapest, lowest route
    index on ties). Returns the total saving.
    """
    n_req = rveh.shape[0]
    n_veh = routes.shape[0]
    L = routes.shape[1]
    cand, B, W, pos, _, _, _, _, cd, ci, cj, _ = _insertion_scratch(P, L)
    Be = np.empty((n_veh, L))
    Ls = np.empty((n_veh, L))
    Sx = np.empty((n_veh, L))
    lafter = np.empty((n_veh, L, P[4].shape[1]), dtype=np.int64)
    slack = np.empty((n_veh, 2, L))
    for k in range(n_veh):
        route_summary(P, k, routes[k], rlen[k], Be[k], Ls[k], Sx[k], lafter[k], slack[k], pos)
    lb = np.empty(n_veh)
    mask = np.zeros(n_req, dtype=np.bool_)
    saved = 0.0
    for _ in range(max_passes):
        improved = False
        for r in range(n_req):
            k0 = rveh[r]
            if k0 < 0:
                continue
            keep_route = routes[k0].copy()
            keep_len = rlen[k0]
            keep_cost = rcost[k0]
            mask[r] = True
            remove_requests(P, routes, rlen, rveh, rcost, mask, fixed)
            mask[r] = False
            route_summary(
                P, k0, routes[k0], rlen[k0], Be[k0], Ls[k0], Sx[k0], lafter[k0], slack[k0], pos
            )
            gain = keep_cost - rcost[k0]
            src_ok = rlen[k0] <= 2 or (
                capacity_ok(P, k0, routes[k0], rlen[k0])
                and schedule_route(P, k0, routes[k0], rlen[k0], B, W, pos)
            )
            for k in range(n_veh):
                lb[k] = np.inf
                if k == k0 or src_ok:
                    lb[k] = _lower_bound(
                        P, k, routes[k], rlen[k], r, fixed, Be[k], Ls[k], Sx[k], lafter[k],
                        slack[k], cd, ci, cj,
                    )  # fmt: skip
            bk = -1
            bc = gain - 1e-7
            bi = -1
            bj = -1
            while True:
                # The route of least bound that could still beat (or tie at a lower index) the
                # best move found; scheduled routes leave the list.
                kk = -1
                for k in range(n_veh):
                    if (lb[k] < bc or (lb[k] == bc and k < bk)) and (kk < 0 or lb[k] < lb[kk]):
                        kk = k
                if kk < 0:
                    break
                lb[kk] = np.inf
                c, i, j = insert_into(
                    P, kk, routes[kk], rlen[kk], r, fixed, cand, B, W, pos, Be[kk], Ls[kk],
                    Sx[kk], lafter[kk], slack[kk], cd, ci, cj,
                )  # fmt: skip
                if c < bc or (c == bc and bk >= 0 and kk < bk):
                    bc = c
                    bk = kk
                    bi = i
                    bj = j
            if bk >= 0:
                _insert_request(P, routes, rlen, rveh, rcost, bk, r, bi, bj, cand, fixed)
                saved += gain - bc
                improved = True
                k1 = bk
            else:
                routes[k0, :] = keep_route
                rlen[k0] = keep_len
                rcost[k0] = keep_cost
                rveh[r] = k0
                k1 = k0
            route_summary(
                P, k1, routes[k1], rlen[k1], Be[k1], Ls[k1], Sx[k1], lafter[k1], slack[k1], pos
            )
        if not improved:
            break
    return saved


@njit(cache=True)
def _tail_cost(cost, seq, m, pc, x, end):  # type: ignore[no-untyped-def]
    """Cost of ``seq[x + 1 : m - 1]`` then ``end``, as (first stop, cost after it); -1 if empty."""
    if x + 1 >= m - 1:
        return -1, 0.0
    return seq[x + 1], pc[m - 2] - pc[x + 1] + cost[seq[m - 2], end]


@njit(cache=True)
def _cut_points(P, routes, rlen, k, pc, zero, movable):  # type: ignore[no-untyped-def]
    """Route ``k``'s prefix costs ``pc[k]``, where its vehicle is empty (``zero[k]``) and
    whether the tail after each position holds no pinned request (``movable[k]``)."""
    cost = P[1]
    load = P[4]
    init = P[8]
    reqi = P[9]
    nodei = P[3]
    nd = load.shape[1]
    m = rlen[k]
    cur = init[k].copy()
    zero[k, 0] = True
    for h in range(nd):
        if cur[h] != 0:
            zero[k, 0] = False
    pc[k, 0] = 0.0
    for x in range(1, m):
        pc[k, x] = pc[k, x - 1] + cost[routes[k, x - 1], routes[k, x]]
        z = True
        for h in range(nd):
            cur[h] += load[routes[k, x], h]
            if cur[h] != 0:
                z = False
        zero[k, x] = z and x < m - 1
    movable[k, m - 2] = True
    for x in range(m - 3, -1, -1):
        r = nodei[routes[k, x + 1], 0]
        movable[k, x] = movable[k, x + 1] and reqi[r, 2] < 0 and reqi[r, 3] < 0


@njit(cache=True)
def _swap_cost(cost, head, a, x, first, tail, end, fixed):  # type: ignore[no-untyped-def]
    """Cost of a route cut after position ``x`` (stop ``a``, ``head`` the cost up to it) that
    goes on with another route's tail (``first``, ``tail`` from :func:`_tail_cost`) and ends
    at ``end``: 0 if both head and tail are empty."""
    if first >= 0:
        return head + cost[a, first] + tail + fixed
    if x > 0:
        return head + cost[a, end] + fixed
    return 0.0


@njit(cache=True)
def _join(head, i, tail, j, m, end, out):  # type: ignore[no-untyped-def]
    """``out`` = ``head[: i + 1]``, ``tail[j + 1 : m - 1]``, then ``end``; returns its length."""
    x = 0
    for y in range(i + 1):
        out[x] = head[y]
        x += 1
    for y in range(j + 1, m - 1):
        out[x] = tail[y]
        x += 1
    out[x] = end
    return x + 1


@njit(cache=True)
def _set_route(P, routes, rlen, rveh, rcost, k, seq, m, fixed):  # type: ignore[no-untyped-def]
    """Route ``k`` becomes ``seq[:m]``: its cost, and its requests' vehicle, follow."""
    nodei = P[3]
    routes[k, :m] = seq[:m]
    rlen[k] = m
    rcost[k] = route_cost(P, routes, rlen, k, fixed)
    for x in range(1, m - 1):
        rveh[nodei[routes[k, x], 0]] = k


@njit(cache=True)
def two_opt_star_descent(P, routes, rlen, rveh, rcost, fixed, max_passes):  # type: ignore[no-untyped-def]
    """Swap the tails of two routes where both vehicles are empty (DARP 2-opt*).

    Cutting a route only where nobody is on board keeps every request's pickup and delivery
    together, so a tail moves as a block of whole trips: a move that ruin-and-recreate only
    finds by removing every request of the tail at once. Costs come from prefix sums (O(1)
    per cut pair); only improving pairs are scheduled (capacity and the eight-step schedule
    of both new routes, each on its own vehicle). Returns the total saving.
    """
    cost = P[1]
    n_veh = routes.shape[0]
    L = routes.shape[1]
    n = P[2].shape[0]
    B = np.empty(L)
    W = np.empty(L)
    pos = np.zeros(n, dtype=np.int64)
    c1 = np.empty(L, dtype=np.int64)
    c2 = np.empty(L, dtype=np.int64)
    pc = np.zeros((n_veh, L))
    zero = np.zeros((n_veh, L), dtype=np.bool_)
    movable = np.ones((n_veh, L), dtype=np.bool_)  # the tail after x holds no pinned request
    saved = 0.0
    for _ in range(max_passes):
        improved = False
        for k in range(n_veh):
            _cut_points(P, routes, rlen, k, pc, zero, movable)
        for k1 in range(n_veh):
            for k2 in range(k1 + 1, n_veh):
                m1 = rlen[k1]
                m2 = rlen[k2]
                if m1 <= 2 and m2 <= 2:
                    continue
                e1 = routes[k1, m1 - 1]
                e2 = routes[k2, m2 - 1]
                done = False
                for i in range(m1 - 1):
                    if done:
                        break
                    if not zero[k1, i] or not movable[k1, i]:
                        continue
                    f1, t1 = _tail_cost(cost, routes[k1], m1, pc[k1], i, e2)
                    for j in range(m2 - 1):
                        if not zero[k2, j] or not movable[k2, j]:
                            continue
                        if i == m1 - 2 and j == m2 - 2:
                            continue  # both tails empty: nothing moves
                        f2, t2 = _tail_cost(cost, routes[k2], m2, pc[k2], j, e1)
                        a1 = routes[k1, i]
                        a2 = routes[k2, j]
                        # New route 1: head 1 + tail 2 + end 1; route 2 the other way round.
                        n1 = _swap_cost(cost, pc[k1, i], a1, i, f2, t2, e1, fixed)
                        n2 = _swap_cost(cost, pc[k2, j], a2, j, f1, t1, e2, fixed)
                        if n1 + n2 >= rcost[k1] + rcost[k2] - 1e-7:
                            continue
                        # Build both and schedule them on their own vehicles.
                        x1 = _join(routes[k1], i, routes[k2], j, m2, e1, c1)
                        x2 = _join(routes[k2], j, routes[k1], i, m1, e2, c2)
                        if x1 > 2 and not (
                            capacity_ok(P, k1, c1, x1) and schedule_route(P, k1, c1, x1, B, W, pos)
                        ):
                            continue
                        if x2 > 2 and not (
                            capacity_ok(P, k2, c2, x2) and schedule_route(P, k2, c2, x2, B, W, pos)
                        ):
                            continue
                        old = rcost[k1] + rcost[k2]
                        _set_route(P, routes, rlen, rveh, rcost, k1, c1, x1, fixed)
                        _set_route(P, routes, rlen, rveh, rcost, k2, c2, x2, fixed)
                        saved += old - rcost[k1] - rcost[k2]
                        improved = True
                        done = True
                        break
                if done:
                    # Both routes changed: refresh their prefix sums and cut points.
                    _cut_points(P, routes, rlen, k1, pc, zero, movable)
                    _cut_points(P, routes, rlen, k2, pc, zero, movable)
        if not improved:
            break
    return saved


@njit(cache=True)
def _roulette(w):  # type: ignore[no-untyped-def]
    total = w.sum()
    u = np.random.random() * total
    acc = 0.0
    for x in range(w.shape[0]):
        acc += w[x]
        if u <= acc:
            return x
    return w.shape[0] - 1


@njit(cache=True)
def alns_chunk(  # type: ignore[no-untyped-def]
    P,
    cur_routes,
    cur_rlen,
    cur_rveh,
    cur_rcost,
    best_routes,
    best_rlen,
    best_rveh,
    best_rcost,
    fstate,
    weights,
    scores,
    counts,
    iparams,
    fparams,
    n_iter,
    pool_routes,
    pool_meta,
):
    """Run ``n_iter`` ALNS iterations from the current state (mutated in place).

    Every feasible candidate's changed routes are recorded in ``pool_routes[x, :len]`` with
    ``pool_meta[x] = (vehicle, len)`` while rows are left (``iparams[9]`` counts the rows
    used; zero rows: nothing recorded), for the route pool's set partitioning.

    ``iparams = [q_min, q_max, segment, iteration counter, iterations since the last new best,
    restart-from-best threshold, relocation passes, 2-opt* passes on new bests, 2-opt* passes
    on every candidate, pool rows used]``; ``fparams = [fixed cost,
    unserved penalty, noise, reaction, dscale, tscale]``. Returns the number of improvements
    of the best solution.
    """
    q_min, q_max, segment = iparams[0], iparams[1], iparams[2]
    fixed, penalty, noise, reaction, dscale, tscale = (
        fparams[0],
        fparams[1],
        fparams[2],
        fparams[3],
        fparams[4],
        fparams[5],
    )
    n_req = cur_rveh.shape[0]
    improvements = 0
    # The current plan's routes, when known feasible, need no new schedule where a candidate
    # leaves them as they were (most routes: a removal touches a few).
    no_route = np.zeros_like(cur_rlen)
    cur_ok = routes_feasible(P, cur_routes, cur_rlen)
    for _ in range(n_iter):
        routes = cur_routes.copy()
        rlen = cur_rlen.copy()
        rveh = cur_rveh.copy()
        rcost = cur_rcost.copy()
        op_r = _roulette(weights[0])
        op_i = _roulette(weights[1])
        q = q_min + np.random.randint(max(1, q_max - q_min + 1))
        mask = np.zeros(n_req, dtype=np.bool_)
        if op_r == 0:
            _pick_random(rveh, q, mask)
        elif op_r == 1:
            _pick_worst(P, routes, rlen, rveh, q, mask, 3.0)
        elif op_r == 2:
            _pick_related(P, routes, rlen, rveh, q, mask, 6.0, dscale, tscale)
        else:
            _pick_route(routes, rlen, rveh, mask)
        remove_requests(P, routes, rlen, rveh, rcost, mask, fixed)
        bank = np.flatnonzero(rveh < 0)
        np.random.shuffle(bank)
        mode = 0 if op_i == 0 else (1 if op_i == 1 else op_i)
        repair(P, routes, rlen, rveh, rcost, bank, mode, noise, fixed)
        counts[0, op_r] += 1.0
        counts[1, op_i] += 1.0
        iparams[4] += 1
        if iparams[4] > iparams[5]:
            # Long without a new best: restart from the best plan (intensification).
            cur_routes[:, :] = best_routes
            cur_rlen[:] = best_rlen
            cur_rveh[:] = best_rveh
            cur_rcost[:] = best_rcost
            fstate[0] = fstate[1]
            iparams[4] = 0
            cur_ok = routes_feasible(P, cur_routes, cur_rlen)
        if not changed_routes_feasible(
            P, routes, rlen, cur_routes, cur_rlen if cur_ok else no_route
        ):
            continue
        if iparams[8] > 0:
            two_opt_star_descent(P, routes, rlen, rveh, rcost, fixed, iparams[8])
        for k in range(routes.shape[0]):
            x = iparams[9]
            if x >= pool_routes.shape[0]:
                break
            m = rlen[k]
            if m > 2 and (m != cur_rlen[k] or rcost[k] != cur_rcost[k]):
                pool_routes[x, :m] = routes[k, :m]
                pool_meta[x, 0] = k
                pool_meta[x, 1] = m
                iparams[9] += 1
        obj = objective(rcost, rveh, penalty)
        cur_obj = fstate[0]
        temp = fstate[2]
        score = 0.0
        accept = False
        if obj < fstate[1] - 1e-9:
            accept = True
            score = 33.0
        elif obj < cur_obj - 1e-9:
            accept = True
            score = 9.0
        elif temp > 0.0 and np.random.random() < np.exp(-(obj - cur_obj) / temp):
            accept = True
            score = 13.0 if obj > cur_obj + 1e-9 else 0.0
        if obj < fstate[1] - 1e-9 and iparams[6] > 0:
            obj -= relocate_descent(P, routes, rlen, rveh, rcost, fixed, iparams[6])
        if obj < fstate[1] - 1e-9 and iparams[7] > 0:
            obj -= two_opt_star_descent(P, routes, rlen, rveh, rcost, fixed, iparams[7])
        if accept:
            cur_routes[:, :] = routes
            cur_rlen[:] = rlen
            cur_rveh[:] = rveh
            cur_rcost[:] = rcost
            cur_ok = True  # checked above (the descents keep routes feasible)
            fstate[0] = obj
            if obj < fstate[1] - 1e-9:
                best_routes[:, :] = routes
                best_rlen[:] = rlen
                best_rveh[:] = rveh
                best_rcost[:] = rcost
                fstate[1] = obj
                improvements += 1
                iparams[4] = 0
        scores[0, op_r] += score
        scores[1, op_i] += score
        fstate[2] = temp * fstate[3]
        iparams[3] += 1
        if iparams[3] % segment == 0:
            for row in range(2):
                for x in range(weights.shape[1]):
                    if counts[row, x] > 0:
                        weights[row, x] = (1.0 - reaction) * weights[row, x] + reaction * (
                            scores[row, x] / counts[row, x]
                        )
                    weights[row, x] = max(weights[row, x], 0.05)
                    scores[row, x] = 0.0
                    counts[row, x] = 0.0
    return improvements

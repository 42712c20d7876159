"""ALNS insertion (numba): the O(1) pruning of insertion positions against the full schedule.

:func:`~dispatch.optimize.insertion.insertion_candidates` may only leave out positions the
eight-step schedule rejects: checked on random routes of real instances (ride limits as given
and tightened so that they bind), and on hand-built routes where a passenger already on board
rules positions out by his ride limit, through the drive or through waiting.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dispatch.instances import read_cordeau, read_cordeau_pr
from dispatch.optimize import alns_kernels as ak
from dispatch.optimize.insertion import (
    _build,
    best_insertion,
    insertion_candidates,
    route_summary,
)
from dispatch.optimize.kernel_data import KernelData, kernel_data
from dispatch.optimize.schedule import capacity_ok, schedule_route
from dispatch.problem import Problem, Request, Vehicle
from tests.dispatch.test_problem import line_problem

L = 64  # route positions the scratch arrays hold


def _feasible(P: KernelData, k: int, seq: np.ndarray, m: int) -> bool:
    n = P[2].shape[0]
    B, W, pos = np.zeros(L), np.zeros(L), np.zeros(n, dtype=np.int64)
    return bool(capacity_ok(P, k, seq, m)) and bool(schedule_route(P, k, seq, m, B, W, pos))


def _feasible_positions(
    P: KernelData, k: int, seq: np.ndarray, m: int, r: int
) -> dict[tuple[int, int], float]:
    """Every ``(i, j)`` the full schedule accepts, with its cost increase (brute force)."""
    p, d = int(P[9][r, 0]), int(P[9][r, 1])
    cost = P[1]
    cand = np.zeros(L, dtype=np.int64)
    out: dict[tuple[int, int], float] = {}
    for i in range(m - 1):
        for j in range(i, m - 1):
            mm = _build(seq, m, p, i, d, j, cand)
            if _feasible(P, k, cand, mm):
                c = float(sum(cost[cand[x], cand[x + 1]] for x in range(mm - 1)))
                c -= float(sum(cost[seq[x], seq[x + 1]] for x in range(m - 1)))
                out[(i, j)] = c
    return out


def _candidates(P: KernelData, k: int, seq: np.ndarray, m: int, r: int) -> set[tuple[int, int]]:
    _, _, _, pos, Be, Ls, Sx, lafter, cd, ci, cj, slack = ak._insertion_scratch(P, L)
    route_summary(P, k, seq, m, Be, Ls, Sx, lafter, slack, pos)
    n = insertion_candidates(P, k, seq, m, r, 0.0, Be, Ls, Sx, lafter, slack, cd, ci, cj)
    return {(int(ci[x]), int(cj[x])) for x in range(n)}


def _best(P: KernelData, k: int, seq: np.ndarray, m: int, r: int) -> float:
    cand, B, W, pos, Be, Ls, Sx, lafter, cd, ci, cj, slack = ak._insertion_scratch(P, L)
    c, _, _ = best_insertion(
        P, k, seq, m, r, 0.0, cand, B, W, pos, Be, Ls, Sx, lafter, cd, ci, cj, slack
    )
    return float(c)


def _random_routes(
    P: KernelData, n_veh: int, requests: list[int], rng: np.random.Generator
) -> list[np.ndarray]:
    """Routes built by inserting ``requests`` one by one at a random feasible position (not
    the cheapest: routes with waiting and long rides, as a search meets them)."""
    vehi = P[6]
    routes = [np.array([vehi[k, 0], vehi[k, 1]], dtype=np.int64) for k in range(n_veh)]
    cand = np.zeros(L, dtype=np.int64)
    for r in requests:
        p, d = int(P[9][r, 0]), int(P[9][r, 1])
        for k in rng.permutation(n_veh):
            seq = routes[k]
            m = seq.size
            if m + 2 > L:
                continue
            pairs = [(i, j) for i in range(m - 1) for j in range(i, m - 1)]
            rng.shuffle(pairs)
            done = False
            for i, j in pairs[:12]:
                mm = _build(seq, m, p, i, d, j, cand)
                if _feasible(P, int(k), cand, mm):
                    routes[k] = cand[:mm].copy()
                    done = True
                    break
            if done:
                break
    return routes


def _tightened(P: KernelData, factor: float) -> KernelData:
    """``P`` with every ride limit multiplied by ``factor`` (so that they bind)."""
    return (*P[:10], P[10] * factor)


@pytest.mark.parametrize(
    ("instance", "factor", "seed"),
    [
        ("a2-16", 1.0, 0),
        ("a2-16", 0.5, 1),
        ("pr01", 1.0, 2),
        ("pr01", 0.6, 3),
        ("pr01", 0.4, 4),
        ("pr02", 0.5, 5),
    ],
)
def test_pruning_never_drops_a_position_the_schedule_accepts(
    shared_data: Path, instance: str, factor: float, seed: int
) -> None:
    d = shared_data / "darp"
    problem: Problem = (
        read_cordeau_pr(d / "cordeau2003_pr" / f"{instance}.txt")
        if instance.startswith("pr")
        else read_cordeau(d / "cordeau2006_a" / f"{instance}.txt")
    )
    P = _tightened(kernel_data(problem), factor)
    rng = np.random.default_rng(seed)
    checked = pruned = 0
    for _ in range(3):
        order = [int(r) for r in rng.permutation(problem.n_requests)]
        held = order[: max(3, len(order) // 4)]
        routes = _random_routes(P, problem.n_vehicles, order[len(held) :], rng)
        for k, seq in enumerate(routes):
            for r in held:
                feasible = _feasible_positions(P, k, seq, seq.size, r)
                cands = _candidates(P, k, seq, seq.size, r)
                assert set(feasible) <= cands, (k, r, set(feasible) - cands)
                best = _best(P, k, seq, seq.size, r)
                if feasible:
                    assert best == pytest.approx(min(feasible.values()), abs=1e-6)
                else:
                    assert best == np.inf
                n_pairs = (seq.size - 1) * seq.size // 2
                checked += n_pairs
                pruned += n_pairs - len(cands)
    assert checked > 500 and pruned > 0


def _onboard_problem(early_b: float) -> Problem:
    """One vehicle on a line, start and end at x=0. Request A (nodes 2 -> 3, x=1 -> 5, ride
    limit 6, pickup at t=1 exactly) is on the route; request B (nodes 4 -> 5) is inserted.

    ``early_b`` is the opening of B's pickup window."""
    return line_problem(
        xs=[0.0, 0.0, 1.0, 5.0, 3.0, 4.0],
        requests=[Request(2, 3, max_ride=6.0), Request(4, 5, max_ride=20.0)],
        vehicles=[Vehicle(start_node=0, end_node=1, capacity=[2])],
        early=[0.0, 0.0, 1.0, 0.0, early_b, 0.0],
        late=[100.0, 100.0, 1.0, 100.0, 100.0, 100.0],
    )


def test_a_ride_over_the_arc_rules_out_a_pickup_that_waits_there() -> None:
    # B's pickup opens at t=8: served between A's pickup (t=1) and delivery, the vehicle waits
    # there and A rides 9 > 6 minutes; the drive alone (4 minutes) is within the limit. Before
    # A's pickup it would make A's pickup late, so only after A's delivery is possible.
    P = kernel_data(_onboard_problem(8.0))
    seq = np.array([0, 2, 3, 1], dtype=np.int64)
    feasible = _feasible_positions(P, 0, seq, 4, 1)
    assert set(feasible) == {(2, 2)}
    # B's pickup inside A's ride, (1, 1) and (1, 2), is ruled out without a schedule.
    assert _candidates(P, 0, seq, 4, 1) == set(feasible)
    # Opening at t=2 instead, the wait is short enough: the same positions are kept.
    P = kernel_data(_onboard_problem(2.0))
    feasible = _feasible_positions(P, 0, seq, 4, 1)
    assert {(1, 1), (1, 2)} <= set(feasible) <= _candidates(P, 0, seq, 4, 1)


def test_a_ride_over_the_arc_rules_out_a_detour() -> None:
    # B far off A's line (x=9 and 10): a stop of B inside A's ride adds at least 8 minutes.
    problem = line_problem(
        xs=[0.0, 0.0, 1.0, 5.0, 9.0, 10.0],
        requests=[Request(2, 3, max_ride=6.0), Request(4, 5, max_ride=20.0)],
        vehicles=[Vehicle(start_node=0, end_node=1, capacity=[2])],
    )
    P = kernel_data(problem)
    seq = np.array([0, 2, 3, 1], dtype=np.int64)
    feasible = _feasible_positions(P, 0, seq, 4, 1)
    assert set(feasible) == {(0, 0), (0, 2), (2, 2)}
    assert _candidates(P, 0, seq, 4, 1) == set(feasible)


def _eager_repair(
    P: KernelData, routes: np.ndarray, rlen: np.ndarray, bank: np.ndarray, mode: int
) -> None:
    """Repair as it was before the lazy cache: every (request, route) cost scheduled up front,
    the modified route's column after each insertion (greedy mode 0, regret-k modes 2, 3)."""
    scratch = ak._insertion_scratch(P, routes.shape[1])
    cand, B, W, pos, Be, Ls, Sx, lafter, cd, ci, cj, slack = scratch
    n_veh = routes.shape[0]

    def cost(x: int, k: int) -> tuple[float, int, int]:
        c, i, j = best_insertion(
            P, k, routes[k], rlen[k], int(bank[x]), 0.0, cand, B, W, pos, Be, Ls, Sx, lafter,
            cd, ci, cj, slack,
        )  # fmt: skip
        return float(c), int(i), int(j)

    table = {(x, k): cost(x, k) for x in range(bank.size) for k in range(n_veh)}
    alive = set(range(bank.size))
    while alive:
        best: tuple[float, int, int] | None = None
        for x in sorted(alive):
            row = [table[(x, k)][0] for k in range(n_veh)]
            order = sorted(range(n_veh), key=lambda k: (row[k], k))
            if row[order[0]] == np.inf:
                continue
            c1 = row[order[0]]
            if mode == 0:
                val = c1
            else:
                nxt = [row[k] for k in order[1:mode]]
                val = -sum(ak.REGRET_BIG if c == np.inf else c - c1 for c in nxt) + 1e-6 * c1
            if best is None or val < best[0]:
                best = (val, x, order[0])
        if best is None:
            break
        _, x, k = best
        _, i, j = table[(x, k)]
        ak.apply_insertion(P, routes, rlen, k, int(bank[x]), i, j, cand)
        alive.discard(x)
        for y in alive:
            table[(y, k)] = cost(y, k)


@pytest.mark.parametrize("mode", [0, 2, 3])
def test_lazy_repair_inserts_as_scheduling_every_pair_does(shared_data: Path, mode: int) -> None:
    problem = read_cordeau_pr(shared_data / "darp" / "cordeau2003_pr" / "pr02.txt")
    P = _tightened(kernel_data(problem), 0.7)
    rng = np.random.default_rng(mode)
    n_veh = problem.n_vehicles
    for _ in range(4):
        order = [int(r) for r in rng.permutation(problem.n_requests)]
        bank = np.array(order[: len(order) // 3], dtype=np.int64)
        built = _random_routes(P, n_veh, order[len(bank) :], rng)
        routes = np.zeros((n_veh, L), dtype=np.int64)
        rlen = np.array([seq.size for seq in built], dtype=np.int64)
        for k, seq in enumerate(built):
            routes[k, : seq.size] = seq
        rveh = np.full(problem.n_requests, -1, dtype=np.int64)
        for k, seq in enumerate(built):
            for node in seq[1:-1]:
                rveh[P[3][node, 0]] = k
        rcost = np.array([ak.route_cost(P, routes, rlen, k, 0.0) for k in range(n_veh)])
        ref_routes, ref_rlen = routes.copy(), rlen.copy()
        _eager_repair(P, ref_routes, ref_rlen, bank, mode)
        ak.repair(P, routes, rlen, rveh, rcost, bank, mode, 0.0, 0.0)
        assert np.array_equal(rlen, ref_rlen)
        for k in range(n_veh):
            assert np.array_equal(routes[k, : rlen[k]], ref_routes[k, : rlen[k]])


def _eager_relocate(
    P: KernelData, routes: np.ndarray, rlen: np.ndarray, rveh: np.ndarray, rcost: np.ndarray
) -> float:
    """One relocation pass as it was: every route scheduled for every request."""
    scratch = ak._insertion_scratch(P, routes.shape[1])
    cand, B, W, pos, Be, Ls, Sx, lafter, cd, ci, cj, slack = scratch
    mask = np.zeros(rveh.size, dtype=np.bool_)
    saved = 0.0
    for r in range(rveh.size):
        k0 = int(rveh[r])
        if k0 < 0:
            continue
        keep = (routes[k0].copy(), int(rlen[k0]), float(rcost[k0]))
        mask[r] = True
        ak.remove_requests(P, routes, rlen, rveh, rcost, mask, 0.0)
        mask[r] = False
        gain = keep[2] - rcost[k0]
        src_ok = rlen[k0] <= 2 or _feasible(P, k0, routes[k0], int(rlen[k0]))
        best = (gain - 1e-7, -1, -1, -1)
        for k in range(routes.shape[0]):
            if k != k0 and not src_ok:
                continue
            c, i, j = best_insertion(
                P, k, routes[k], rlen[k], r, 0.0, cand, B, W, pos, Be, Ls, Sx, lafter, cd, ci,
                cj, slack,
            )  # fmt: skip
            if c < best[0]:
                best = (float(c), k, int(i), int(j))
        if best[1] >= 0:
            ak._insert_request(
                P, routes, rlen, rveh, rcost, best[1], r, best[2], best[3], cand, 0.0
            )
            saved += gain - best[0]
        else:
            routes[k0], rlen[k0], rcost[k0] = keep
            rveh[r] = k0
    return saved


def test_relocation_moves_as_trying_every_route_does(shared_data: Path) -> None:
    problem = read_cordeau_pr(shared_data / "darp" / "cordeau2003_pr" / "pr02.txt")
    P = _tightened(kernel_data(problem), 0.8)
    rng = np.random.default_rng(7)
    n_veh = problem.n_vehicles
    moved = 0.0
    for _ in range(4):
        order = [int(r) for r in rng.permutation(problem.n_requests)]
        built = _random_routes(P, n_veh, order, rng)
        routes = np.zeros((n_veh, L), dtype=np.int64)
        rlen = np.array([seq.size for seq in built], dtype=np.int64)
        rveh = np.full(problem.n_requests, -1, dtype=np.int64)
        for k, seq in enumerate(built):
            routes[k, : seq.size] = seq
            for node in seq[1:-1]:
                rveh[P[3][node, 0]] = k
        rcost = np.array([ak.route_cost(P, routes, rlen, k, 0.0) for k in range(n_veh)])
        ref = (routes.copy(), rlen.copy(), rveh.copy(), rcost.copy())
        ref_saved = _eager_relocate(P, *ref)
        saved = ak.relocate_descent(P, routes, rlen, rveh, rcost, 0.0, 1)
        assert saved == pytest.approx(ref_saved)
        assert np.array_equal(rlen, ref[1]) and np.array_equal(rveh, ref[2])
        for k in range(n_veh):
            assert np.array_equal(routes[k, : rlen[k]], ref[0][k, : rlen[k]])
        moved += saved
    assert moved > 0.0  # random routes leave moves to make

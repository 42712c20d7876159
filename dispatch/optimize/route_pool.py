"""Set partitioning over a pool of routes the search has met (a route-pool recombination).

ALNS visits thousands of plans; each holds routes that are good on their own but were never
together in one plan. Choosing the cheapest set of pooled routes that serves every request
exactly once (a set-partitioning model, solved by OR-Tools CP-SAT, native code) recombines
them: a plan ALNS would need many lucky moves to reach. Every pooled route was scheduled
feasibly on its vehicle when it was stored, so any partition of the requests into pooled
routes is a feasible plan.

Routes are pooled per *vehicle class*: vehicles with the same start and end node, start time,
end, duration limit, capacity, onboard load and travel profile can drive each other's routes
(the schedule depends on nothing else), so a route found on one is a column for all of them,
up to the class's size. A route holding a request pinned to its vehicle (onboard, or fixed)
stays that vehicle's alone.
"""

from __future__ import annotations

import numpy as np

from dispatch.optimize.kernel_data import KernelData
from dispatch.optimize.schedule import schedule_routes
from dispatch.problem import Problem, Solution, check, solution_cost

#: CP-SAT needs integer costs: costs are scaled by this before rounding.
COST_SCALE = 10_000.0


def vehicle_classes(P: KernelData) -> np.ndarray:
    """Class index of each vehicle: equal when every scheduling parameter is equal."""
    vehf, vehi, cap, init = P[5], P[6], P[7], P[8]
    seen: dict[tuple[object, ...], int] = {}
    out = np.empty(vehf.shape[0], dtype=np.int64)
    for k in range(vehf.shape[0]):
        key = (tuple(vehf[k]), tuple(vehi[k]), tuple(cap[k]), tuple(init[k]))
        out[k] = seen.setdefault(key, len(seen))
    return out


class RoutePool:
    """Distinct feasible routes met by a search, each with its cost and its column's owner.

    Parameters
    ----------
    problem, P
        The problem and its kernel data (:func:`~dispatch.optimize.kernel_data.kernel_data`).
    max_routes
        Routes kept at most; further routes are ignored (the model stays solvable in the
        time a pass gets).
    """

    def __init__(self, problem: Problem, P: KernelData, max_routes: int = 50_000) -> None:
        self.problem = problem
        self.P = P
        self.max_routes = max_routes
        self.vclass = vehicle_classes(P)
        reqi = P[9]
        node_req = problem.node_request()
        self._node_req = node_req
        # Requests a route must keep on one vehicle: onboard (column 2) or fixed (column 3).
        self._pinned = (reqi[:, 2] >= 0) | (reqi[:, 3] >= 0)
        self._any_pinned = bool(self._pinned.any())
        self._fixed = float(problem.vehicle_fixed_cost)
        #: (owner, route) -> cost; owner ``c`` >= 0 is vehicle class c, ``-1 - k`` vehicle k.
        self.routes: dict[tuple[int, tuple[int, ...]], float] = {}

    def __len__(self) -> int:
        return len(self.routes)

    def _owner(self, k: int, route: tuple[int, ...]) -> int:
        if not self._any_pinned:
            return int(self.vclass[k])
        reqs = self._node_req[list(route)]
        if np.any(self._pinned[reqs]):
            return -1 - k
        return int(self.vclass[k])

    def add_state(self, routes: np.ndarray, rlen: np.ndarray) -> int:
        """Pool the routes of a kernel state (``routes[k, 1 : rlen[k] - 1]`` on vehicle k).

        The state must be feasible (the ALNS keeps only feasible current and best plans).
        Returns the number of new routes.
        """
        new = 0
        cost = self.P[1]
        for k in range(routes.shape[0]):
            m = int(rlen[k])
            if m <= 2 or len(self.routes) >= self.max_routes:
                continue
            seq = routes[k, :m]
            route = tuple(int(x) for x in seq[1 : m - 1])
            key = (self._owner(k, route), route)
            if key in self.routes:
                continue
            self.routes[key] = float(cost[seq[:-1], seq[1:]].sum()) + self._fixed
            new += 1
        return new

    def add_recorded(self, routes: np.ndarray, meta: np.ndarray, n: int) -> int:
        """Pool the first ``n`` routes the ALNS kernel recorded (``routes[x, :meta[x, 1]]``
        on vehicle ``meta[x, 0]``, start and end nodes included). Returns the new ones."""
        new = 0
        cost = self.P[1]
        for x in range(n):
            if len(self.routes) >= self.max_routes:
                break
            k, m = int(meta[x, 0]), int(meta[x, 1])
            seq = routes[x, :m]
            route = tuple(seq[1 : m - 1].tolist())
            key = (self._owner(k, route), route)
            if key not in self.routes:
                self.routes[key] = float(cost[seq[:-1], seq[1:]].sum()) + self._fixed
                new += 1
        return new

    def add_solution(self, solution: Solution) -> int:
        """Pool the routes of a plan whose every route is feasible on its vehicle."""
        p = self.problem
        n = len(solution.routes)
        width = max((len(r) for r in solution.routes), default=0) + 2
        routes = np.zeros((n, width), dtype=np.int64)
        rlen = np.zeros(n, dtype=np.int64)
        for k, r in enumerate(solution.routes):
            seq = [int(p.start_node[k]), *r, int(p.end_node[k])]
            routes[k, : len(seq)] = seq
            rlen[k] = len(seq)
        return self.add_state(routes, rlen)

    def solve(self, incumbent: Solution, time_limit_s: float, workers: int = 1) -> Solution | None:
        """The cheapest plan of pooled routes serving what ``incumbent`` serves, or None.

        Requests ``incumbent`` leaves unserved may stay so. The incumbent's routes are added
        to the pool and given as the solver's hint, so the answer is never worse than it; None
        when CP-SAT finds nothing better in ``time_limit_s`` (or the pool is empty).
        """
        from ortools.sat.python import cp_model

        p = self.problem
        self.add_solution(incumbent)
        served = np.ones(p.n_requests, dtype=bool)
        served[incumbent.unserved] = False
        keys = list(self.routes)
        if not keys:
            return None
        m = cp_model.CpModel()
        x = [m.new_bool_var(f"x{i}") for i in range(len(keys))]
        covers: list[list[int]] = [[] for _ in range(p.n_requests)]
        by_owner: dict[int, list[int]] = {}
        for i, (owner, route) in enumerate(keys):
            for node in route:
                if (
                    p.pickup[self._node_req[node]] == node
                    or p.onboard_vehicle[self._node_req[node]] >= 0
                ):
                    covers[int(self._node_req[node])].append(i)
            by_owner.setdefault(owner, []).append(i)
        for r in range(p.n_requests):
            cover = [x[i] for i in covers[r]]
            if served[r]:
                m.add_exactly_one(cover)
            elif cover:
                m.add_at_most_one(cover)
        sizes = np.bincount(self.vclass, minlength=int(self.vclass.max(initial=-1)) + 1)
        pinned_on: dict[int, list[int]] = {}
        for owner, cols in by_owner.items():
            if owner < 0:
                pinned_on.setdefault(-1 - owner, cols)
        for owner, cols in by_owner.items():
            if owner >= 0:
                # The class's vehicles, less those a pinned route may take.
                extra = [x[i] for k, pc in pinned_on.items() if self.vclass[k] == owner for i in pc]
                m.add(sum(x[i] for i in cols) + sum(extra) <= int(sizes[owner]))
            else:
                m.add(sum(x[i] for i in cols) <= 1)
        # Unserved requests the plan picks up again earn back their penalty.
        penalty = 1000.0 * (2.0 * float(p.cost.max(initial=0.0)) * max(1, p.n_requests) + 1.0)
        obj = [round(self.routes[key] * COST_SCALE) * x[i] for i, key in enumerate(keys)]
        for dropped in np.flatnonzero(~served):
            obj.extend(-round(penalty * COST_SCALE) * x[i] for i in covers[int(dropped)])
        m.minimize(sum(obj))
        chosen_now = set()
        for k, inc_route in enumerate(incumbent.routes):
            if inc_route:
                t = tuple(int(n) for n in inc_route)
                chosen_now.add((self._owner(k, t), t))
        for i, key in enumerate(keys):
            m.add_hint(x[i], key in chosen_now)
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(0.01, time_limit_s)
        solver.parameters.num_workers = workers
        status = solver.solve(m)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return None
        picked = [keys[i] for i in range(len(keys)) if solver.boolean_value(x[i])]
        sol = self._to_solution(picked)
        if sol is None or check(p, sol):
            return None
        if (len(sol.unserved), sol.cost + p.vehicle_fixed_cost * sol.n_vehicles_used) >= (
            len(incumbent.unserved),
            incumbent.cost + p.vehicle_fixed_cost * incumbent.n_vehicles_used,
        ):
            return None
        return sol

    def _to_solution(self, picked: list[tuple[int, tuple[int, ...]]]) -> Solution | None:
        """Give each picked route a vehicle (pinned ones their own, then by class)."""
        p = self.problem
        plan: list[list[int]] = [[] for _ in range(p.n_vehicles)]
        for owner, route in picked:
            if owner < 0:
                plan[-1 - owner] = list(route)
        for owner, route in picked:
            if owner >= 0:
                free = [k for k in np.flatnonzero(self.vclass == owner) if not plan[k]]
                if not free:
                    return None
                plan[int(free[0])] = list(route)
        times, ok = schedule_routes(self.P, plan)
        if not all(ok):
            return None
        covered = np.zeros(p.n_requests, dtype=bool)
        for seq in plan:
            covered[self._node_req[seq]] = True
        return Solution(
            routes=plan,
            times=times,
            unserved=[int(r) for r in np.flatnonzero(~covered)],
            cost=solution_cost(p, plan),
            solver="route-pool",
        )

"""The DARP / PDPTW as an OR-Tools routing model (``ortools.constraint_solver``).

Pickup-and-delivery pairs (same vehicle, precedence), time windows through a time dimension
whose transits include service times, one capacity dimension per load dimension (starting at
the onboard load), maximum ride times and route durations as cumul constraints, vehicles with
their own start nodes / start times / shift ends, onboard deliveries restricted to their
vehicle, and a large-penalty disjunction per node so that an impossible request is reported
unserved instead of making the model infeasible. Optional warm start from given routes.

Vehicles of a mixed fleet drive on their own travel profile (``Problem.travel[q]``): one
transit matrix per profile, and a time dimension with per-vehicle transits; the arc cost is the
shared distance matrix. With ``Problem.asap`` (live dispatch) a vehicle leaves at its start
time and waits at a node only until the next window opens (a constraint per node on its slack
and its successor). OR-Tools works on integers: times are counted from the earliest vehicle start ("now" of a
live problem, whose absolute epoch seconds times ``scale`` would lose the sub-unit precision the
rounding relies on), scaled by ``scale`` and rounded *conservatively* (travel/service up,
windows inward, limits down), so every plan it returns is feasible in the original units. A
vehicle's start is the one exception: its window is its departure time, and rounding both ends
inward would leave an empty domain (a fractional "now" made every such pass a ``CP Solver
fail``), so it departs at its start time rounded up.
"""

from __future__ import annotations

import math
import time

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from dispatch.optimize.alns import explain_unserved, rank
from dispatch.optimize.kernel_data import kernel_data
from dispatch.optimize.schedule import schedule_routes
from dispatch.problem import Problem, Solution, check, solution_cost

_META = {
    "gls": routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH,
    "sa": routing_enums_pb2.LocalSearchMetaheuristic.SIMULATED_ANNEALING,
    "tabu": routing_enums_pb2.LocalSearchMetaheuristic.TABU_SEARCH,
    "greedy": routing_enums_pb2.LocalSearchMetaheuristic.GREEDY_DESCENT,
}


def _wait_only_for_windows(
    routing: pywrapcp.RoutingModel,
    tdim: pywrapcp.RoutingDimension,
    early: list[int],
    manager: pywrapcp.RoutingIndexManager,
    t_int: np.ndarray,
    vehicle_profile: list[int],
) -> None:
    """As-soon-as-possible service (``Problem.asap``): after an active node ``i``, the vehicle
    waits (slack > 0) only if it then starts the next node exactly when its window opens.

    ``early`` is the rounded window opening of every model node, ``t_int[q]`` the transit
    matrix (service at the origin included) of travel profile ``q`` by model node, and
    ``vehicle_profile[k]`` the profile of vehicle ``k``.

    With ``next(i) = j`` the time dimension gives ``cumul(j) = cumul(i) + transit(i, j) +
    slack(i)``, so "the next node starts when its window opens" is ``cumul(i) + slack(i) <=
    early(j) - transit(i, j)``: an element of a *constant* row indexed by ``next(i)`` (and by
    the vehicle's profile when the fleet has several), N² integers in all (16 MB for 1,440
    nodes). The former ``Element(cumuls, next(i)) == Element(opens, next(i))`` made OR-Tools
    cast each element to a variable with a bitset domain over the span of its values (the
    day's window openings in milliseconds: ~12 MB per node, 15 GB and 100 s of model building
    for a zone of 20 vans and 700 rides; issue #10).
    """
    solver = routing.solver()
    size = routing.Size() + routing.vehicles()  # every index, vehicle ends included
    nodes = np.array([manager.IndexToNode(i) for i in range(size)], dtype=np.int64)
    opens = np.array([early[n] for n in nodes], dtype=np.int64)
    profiles = sorted(set(vehicle_profile))
    multi = len(profiles) > 1
    # Profile slot of each vehicle, shifted by one: VehicleVar is -1 for an inactive node.
    slot_of = [0] + [profiles.index(q) for q in vehicle_profile]
    for i in range(routing.Size()):
        nxt = routing.NextVar(i)
        rows = [opens - t_int[q, nodes[i], nodes] for q in profiles]
        if multi:
            slot = solver.Element(slot_of, routing.VehicleVar(i) + 1)
            target = solver.Element(np.concatenate(rows).tolist(), nxt + slot * size)
        else:
            target = solver.Element(rows[0].tolist(), nxt)
        solver.Add(
            (routing.ActiveVar(i) == 0)
            + (tdim.SlackVar(i) == 0)
            # ``cumul(next) >= early(next)`` holds anyway: "<=" is "==" here. Written as a
            # difference against 0 on purpose: equating (or comparing) two expressions turns
            # the element into a variable whose domain is a bitset over its values' span
            # (epoch milliseconds: ~12 MB per node, the 7 GB of issue #10); a comparison with
            # a constant keeps bounds only.
            + (tdim.CumulVar(i) + tdim.SlackVar(i) - target <= 0)
            >= 1
        )


def solve_ortools(
    problem: Problem,
    time_limit_s: float = 10.0,
    warm_start: Solution | None = None,
    metaheuristic: str = "gls",
    scale: int = 1000,
    first_solution: str = "LOCAL_CHEAPEST_INSERTION",
) -> Solution:
    """Solve with OR-Tools routing; returns the warm start if nothing better is found in time.

    Raises
    ------
    ValueError
        On an unknown ``metaheuristic`` (one of ``gls``, ``sa``, ``tabu``, ``greedy``).
    """
    if metaheuristic not in _META:
        raise ValueError(f"unknown metaheuristic {metaheuristic!r}; use one of {sorted(_META)}")
    t0 = time.perf_counter()
    p = problem
    P = kernel_data(p)
    late_eff = P[2][:, 1]
    onboard_pick = set(int(p.pickup[r]) for r in np.flatnonzero(p.onboard_vehicle >= 0))
    node_req = p.node_request()
    ends = set(p.start_node.tolist()) | set(p.end_node.tolist())
    # Only nodes to visit: request nodes (not past pickups) and vehicle start/end nodes.
    model_nodes = [
        v for v in range(p.n_nodes) if (node_req[v] >= 0 and v not in onboard_pick) or v in ends
    ]
    to_model = {v: i for i, v in enumerate(model_nodes)}
    n_veh = p.n_vehicles
    manager = pywrapcp.RoutingIndexManager(
        len(model_nodes),
        n_veh,
        [to_model[int(v)] for v in p.start_node],
        [to_model[int(v)] for v in p.end_node],
    )
    routing = pywrapcp.RoutingModel(manager)
    solver = routing.solver()
    nodes_arr = np.array(model_nodes, dtype=np.int64)
    # Integer matrices (index by model node), one time matrix per travel profile; the transit
    # time includes the service at the origin. Registered as matrices so that OR-Tools reads
    # them natively instead of calling back into Python for every arc it evaluates.
    sub = np.ix_(nodes_arr, nodes_arr)
    t_int = np.ceil(
        (p.travel[:, sub[0], sub[1]] + p.service[nodes_arr][None, :, None]) * scale - 1e-9
    ).astype(np.int64)
    c_int = np.rint(p.cost[sub] * scale).astype(np.int64)
    used_profiles = sorted(set(p.vehicle_profile.tolist()))
    time_idx = {q: routing.RegisterTransitMatrix(t_int[q].tolist()) for q in used_profiles}
    cost_idx = routing.RegisterTransitMatrix(c_int.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(cost_idx)
    if p.vehicle_fixed_cost > 0:
        routing.SetFixedCostOfAllVehicles(round(p.vehicle_fixed_cost * scale))
    # Cumuls count from the earliest start: live times are absolute epoch seconds (a minimum
    # with ``initial=0`` would count from 0 again, and scaled epoch times lose precision).
    t_ref = float(p.start_time.min()) if n_veh else 0.0
    finite_late = late_eff[np.isfinite(late_eff)] - t_ref
    horizon_f = max(
        float(finite_late.max(initial=0.0)),
        float(p.start_time.max(initial=t_ref)) - t_ref + float(t_int.max(initial=0)) / scale * 2,
    )
    horizon = math.ceil(horizon_f * scale) + 1
    if not np.isfinite(late_eff).all():
        horizon = max(horizon, int(t_int.sum(axis=2).max(initial=0)) + horizon)
    # Each vehicle's time dimension follows its own profile; ride-time and window
    # constraints on the cumuls then hold for whichever vehicle serves the node.
    routing.AddDimensionWithVehicleTransits(
        [time_idx[int(q)] for q in p.vehicle_profile], horizon, horizon, False, "time"
    )
    tdim = routing.GetDimensionOrDie("time")

    def lo(x: float) -> int:
        return max(0, math.ceil((x - t_ref) * scale - 1e-9))

    def hi(x: float) -> int:
        if not np.isfinite(x):
            return horizon
        return min(horizon, math.floor((x - t_ref) * scale + 1e-9))

    def limit(x: float) -> int:
        """A duration limit (ride, route) in model units, rounded down."""
        return horizon if not np.isfinite(x) else min(horizon, math.floor(x * scale + 1e-9))

    closed: set[int] = set()  # request nodes whose window is empty after rounding
    for v in model_nodes:
        if node_req[v] < 0:
            continue
        idx = manager.NodeToIndex(to_model[v])
        a, b = lo(p.early[v]), hi(late_eff[v])
        if a > b:
            # An empty domain would fail the whole model; the request is reported unserved.
            closed.add(int(node_req[v]))
            continue
        tdim.CumulVar(idx).SetRange(a, b)
    for k in range(n_veh):
        s_idx, e_idx = routing.Start(k), routing.End(k)
        sn, en = int(p.start_node[k]), int(p.end_node[k])
        depart = lo(max(p.early[sn], p.start_time[k]))
        # As soon as possible: the vehicle leaves at its start time, never later.
        leave = depart if p.asap else max(depart, hi(p.late[sn]))
        tdim.CumulVar(s_idx).SetRange(depart, leave)
        tdim.CumulVar(e_idx).SetRange(lo(p.early[en]), hi(min(p.late[en], p.shift_end[k])))
        if np.isfinite(p.max_duration[k]):
            solver.Add(tdim.CumulVar(e_idx) - tdim.CumulVar(s_idx) <= limit(p.max_duration[k]))
        routing.AddVariableMinimizedByFinalizer(tdim.CumulVar(s_idx))
        routing.AddVariableMinimizedByFinalizer(tdim.CumulVar(e_idx))
    if p.asap:
        _wait_only_for_windows(
            routing,
            tdim,
            [lo(p.early[v]) for v in model_nodes],
            manager,
            t_int,
            [int(q) for q in p.vehicle_profile],
        )
    init = p.initial_load()
    for h in range(p.n_dims):
        cap_idx = routing.RegisterUnaryTransitVector(p.load[nodes_arr, h].tolist())
        routing.AddDimensionWithVehicleCapacity(
            cap_idx, 0, [int(c) for c in p.capacity[:, h]], False, f"load{h}"
        )
        ldim = routing.GetDimensionOrDie(f"load{h}")
        for k in range(n_veh):
            ldim.CumulVar(routing.Start(k)).SetValue(int(init[k, h]))
    penalty = int(1000 * (int(c_int.max(initial=1)) * 2 * max(1, p.n_requests) + 1))
    penalty += int(p.vehicle_fixed_cost * scale) * 10
    for r in range(p.n_requests):
        d_idx = manager.NodeToIndex(to_model[int(p.delivery[r])])
        ob = int(p.onboard_vehicle[r])
        if r in closed:
            routing.ActiveVar(d_idx).SetValue(0)
            if ob < 0:
                routing.ActiveVar(manager.NodeToIndex(to_model[int(p.pickup[r])])).SetValue(0)
        if ob >= 0:
            routing.VehicleVar(d_idx).SetValues([-1, ob])  # -1: unperformed
            routing.AddDisjunction([d_idx], penalty)
            continue
        p_idx = manager.NodeToIndex(to_model[int(p.pickup[r])])
        routing.AddPickupAndDelivery(p_idx, d_idx)
        solver.Add(routing.VehicleVar(p_idx) == routing.VehicleVar(d_idx))
        solver.Add(tdim.CumulVar(p_idx) <= tdim.CumulVar(d_idx))
        if np.isfinite(p.max_ride[r]):
            s_p = math.ceil(p.service[p.pickup[r]] * scale - 1e-9)
            # One unit of slack absorbs the upward rounding of the service time.
            solver.Add(
                tdim.CumulVar(d_idx) - tdim.CumulVar(p_idx) - s_p <= limit(p.max_ride[r]) - 1
            )
        if p.fixed_vehicle[r] >= 0:
            routing.VehicleVar(p_idx).SetValues([-1, int(p.fixed_vehicle[r])])
            routing.VehicleVar(d_idx).SetValues([-1, int(p.fixed_vehicle[r])])
        routing.AddDisjunction([p_idx], penalty)
        routing.AddDisjunction([d_idx], penalty)

    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = getattr(
        routing_enums_pb2.FirstSolutionStrategy, first_solution
    )
    params.local_search_metaheuristic = _META[metaheuristic]
    remaining = max(0.05, time_limit_s - (time.perf_counter() - t0))
    params.time_limit.FromMilliseconds(int(remaining * 1000))
    warm_ok = warm_start is not None and not check(p, warm_start)
    assignment = None
    if warm_start is not None:
        routes_idx = [
            [manager.NodeToIndex(to_model[int(v)]) for v in route if int(v) in to_model]
            for route in warm_start.routes
        ]
        routing.CloseModelWithParameters(params)
        initial = routing.ReadAssignmentFromRoutes(routes_idx, True)
        if initial is not None:
            assignment = routing.SolveFromAssignmentWithParameters(initial, params)
    if assignment is None:
        assignment = routing.SolveWithParameters(params)
    if assignment is None:
        if warm_start is not None and warm_ok:
            return warm_start
        plan: list[list[int]] = [[] for _ in range(n_veh)]
        times, _ = schedule_routes(P, plan)
        unserved = list(range(p.n_requests))
        return Solution(
            routes=plan,
            times=times,
            unserved=unserved,
            unserved_reasons={r: "OR-Tools found no plan within the time limit" for r in unserved},
            solver="ortools",
        )
    plan = []
    cumuls: list[np.ndarray] = []
    for k in range(n_veh):
        idx = routing.Start(k)
        route: list[int] = []
        cum = [t_ref + assignment.Min(tdim.CumulVar(idx)) / scale]
        idx = assignment.Value(routing.NextVar(idx))
        while not routing.IsEnd(idx):
            route.append(model_nodes[manager.IndexToNode(idx)])
            cum.append(t_ref + assignment.Min(tdim.CumulVar(idx)) / scale)
            idx = assignment.Value(routing.NextVar(idx))
        cum.append(t_ref + assignment.Min(tdim.CumulVar(idx)) / scale)
        plan.append(route)
        cumuls.append(np.array(cum))
    times, ok = schedule_routes(P, plan)
    # Prefer our schedule (waiting pushed late); keep OR-Tools' own when ours cannot certify.
    times = [
        t if good or not plan[k] else cumuls[k]
        for k, (t, good) in enumerate(zip(times, ok, strict=True))
    ]
    served = {node_req[v] for route in plan for v in route}
    unserved = [r for r in range(p.n_requests) if r not in served]
    sol = Solution(
        routes=plan,
        times=times,
        unserved=unserved,
        unserved_reasons={r: explain_unserved(p, P, r) for r in unserved},
        cost=solution_cost(p, plan),
        solver=f"ortools-{metaheuristic}",
        stats={"seconds": time.perf_counter() - t0},
    )
    if (
        warm_start is not None
        and warm_ok
        and (check(p, sol) or rank(p, warm_start) <= rank(p, sol))
    ):
        return warm_start
    return sol

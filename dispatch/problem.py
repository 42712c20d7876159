"""The static DARP / PDPTW problem and its solution: the contract between dispatch and solvers.

A :class:`Problem` is a set of nodes (vehicle start/end positions, pickups, deliveries), each
with a time window ``[early, late]``, a service duration and a load vector (one column per
capacity dimension, e.g. seats and wheelchair spaces; positive at pickups, negative at
deliveries); travel-time matrices (one per vehicle *profile*) and a cost matrix; requests
``(pickup, delivery, max_ride)``; and vehicles with their own start node and start time ("a
live vehicle starts where it is, at now"), end node and shift end, capacity vector, travel
profile and onboard requests.

Travel profiles (mixed fleets)
------------------------------
``travel[P, N, N]`` holds one travel-time matrix per profile and ``vehicle_profile[k]`` says
which one vehicle ``k`` drives on (a van at 28 km/h and an autonomous shuttle at 16 km/h share
one problem, so a ride can move between them). Every time rule of a vehicle (schedule, windows,
ride times, route duration, shift end) uses its own profile. Cordeau, Li & Lim and single-speed
fleets have ``P = 1``; a 2-D ``travel`` given to the constructor or to :meth:`Problem.build`
means one profile for every vehicle.

``cost[N, N]`` stays a single matrix on purpose: the objective is a distance (vehicle-km, or
the benchmark's Euclidean distance), and profiles that differ only in speed drive the same
distance between two points. A fleet whose vehicles cost differently per km would need a
per-profile cost; none does today.

Conventions
-----------
* Times are in the instance's unit (seconds for the live dispatcher, minutes for Cordeau).
* ``Solution.routes[k]`` lists the nodes vehicle ``k`` visits *between* its start node and its
  end node (both implicit). ``Solution.times[k]`` holds the start-of-service times of
  ``[start, *routes[k], end]`` (so ``len(routes[k]) + 2`` values; ``times[k][0]`` is the
  departure time from the start node).
* An **onboard** request (already picked up by vehicle ``k``: ``onboard_vehicle[r] == k``) only
  has its delivery left; it must be on vehicle ``k``; its load counts from the start; its
  ``max_ride`` is the *remaining* ride-time limit counted from the vehicle's start time.
* A **promised window** is simply the pickup's time window (a hard constraint); a **fixed
  assignment** is ``fixed_vehicle[r] == k``.
* Ride time of request ``r`` = ``B(delivery) - (B(pickup) + service(pickup))`` (Cordeau 2006).
* Route duration = ``B(end) - B(start)`` is bounded by ``max_duration[k]``; ``B(end)`` is
  bounded by ``shift_end[k]`` and by the end node's window.
* ``asap`` (the live dispatcher's execution model): a vehicle departs at its start time and
  starts service at every node as soon as it arrives or the window opens,
  ``B(j) = max(B(i) + service(i) + travel(i, j), early(j))``: no waiting is added to shorten
  ride times (Cordeau's scheduling does add it; benchmark instances keep ``asap=False``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Tolerance of the feasibility check (float rounding of sums of travel times).
EPS = 1e-6


@dataclass(frozen=True)
class Request:
    """One transport request: pick up at node ``pickup``, deliver at node ``delivery``.

    ``max_ride`` is the maximum ride time (``None``: unbounded). ``onboard_vehicle`` is the
    vehicle already carrying the passenger (``None``: not picked up yet); ``fixed_vehicle``
    forces the request onto one vehicle.
    """

    pickup: int
    delivery: int
    max_ride: float | None = None
    onboard_vehicle: int | None = None
    fixed_vehicle: int | None = None


@dataclass(frozen=True)
class Vehicle:
    """One vehicle: where and when it becomes available, where and by when it must end, and
    which travel profile (speed) it drives on."""

    start_node: int
    end_node: int
    capacity: Sequence[int]
    start_time: float = 0.0
    shift_end: float = float("inf")
    max_duration: float = float("inf")
    profile: int = 0  # index of its travel-time matrix in ``Problem.travel``


@dataclass(frozen=True, eq=False)
class Problem:
    """A DARP / PDPTW instance as flat numpy arrays (``N`` nodes, ``R`` requests, ``K`` vehicles).

    Build it with :meth:`Problem.build` from :class:`Request` / :class:`Vehicle` objects, or
    directly from arrays (validated in ``__post_init__``).
    """

    travel: FloatArray  # [P, N, N] travel time per profile ([N, N] accepted: P = 1)
    cost: FloatArray  # [N, N] routing cost (distance), the same for every vehicle
    early: FloatArray  # [N] time window opening (start of service)
    late: FloatArray  # [N] time window closing
    service: FloatArray  # [N] service duration
    load: IntArray  # [N, D] load change at the node
    pickup: IntArray  # [R] pickup node of each request
    delivery: IntArray  # [R] delivery node of each request
    max_ride: FloatArray  # [R] maximum ride time (inf: none)
    onboard_vehicle: IntArray  # [R] vehicle carrying it already, -1: not onboard
    fixed_vehicle: IntArray  # [R] vehicle it must use, -1: any
    start_node: IntArray  # [K]
    end_node: IntArray  # [K]
    start_time: FloatArray  # [K] earliest departure from the start node ("now")
    shift_end: FloatArray  # [K] latest arrival at the end node
    max_duration: FloatArray  # [K] maximum route duration (inf: none)
    capacity: IntArray  # [K, D]
    vehicle_fixed_cost: float = 0.0  # cost per used vehicle (Li & Lim: minimise vehicles first)
    name: str = ""
    meta: dict[str, object] = field(default_factory=dict)
    # [K] travel profile (index into ``travel``) of each vehicle; empty: profile 0 for all.
    vehicle_profile: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    asap: bool = False  # vehicles never wait beyond a window's opening (see the module notes)

    def __post_init__(self) -> None:
        # Normalise the single-profile forms (frozen dataclass: set through object).
        if self.travel.ndim == 2:
            object.__setattr__(self, "travel", self.travel[None, :, :])
        k = self.start_node.shape[0]
        if self.vehicle_profile.size == 0 and k > 0:
            object.__setattr__(self, "vehicle_profile", np.zeros(k, dtype=np.int64))
        if self.travel.ndim != 3 or self.travel.shape[0] < 1:
            raise ValueError("travel must be [P, N, N] (P >= 1 profiles) or [N, N]")
        n = self.travel.shape[1]
        if self.travel.shape[2] != n or self.cost.shape != (n, n):
            raise ValueError("travel and cost must be square [N, N] matrices of the same size")
        if self.vehicle_profile.shape != (k,):
            raise ValueError(f"vehicle_profile must have shape [{k}]")
        if k and (self.vehicle_profile.min() < 0 or self.vehicle_profile.max() >= self.n_profiles):
            raise ValueError(f"vehicle profile out of range [0, {self.n_profiles})")
        for arr_name in ("early", "late", "service"):
            if getattr(self, arr_name).shape != (n,):
                raise ValueError(f"{arr_name} must have shape [{n}]")
        if self.load.ndim != 2 or self.load.shape[0] != n:
            raise ValueError("load must have shape [N, D]")
        r = self.pickup.shape[0]
        for arr_name in ("delivery", "max_ride", "onboard_vehicle", "fixed_vehicle"):
            if getattr(self, arr_name).shape != (r,):
                raise ValueError(f"{arr_name} must have shape [{r}]")
        for arr_name in ("end_node", "start_time", "shift_end", "max_duration"):
            if getattr(self, arr_name).shape != (k,):
                raise ValueError(f"{arr_name} must have shape [{k}]")
        if self.capacity.shape != (k, self.load.shape[1]):
            raise ValueError("capacity must have shape [K, D] with D = load.shape[1]")
        nodes = np.concatenate([self.pickup, self.delivery, self.start_node, self.end_node])
        if nodes.size and (nodes.min() < 0 or nodes.max() >= n):
            raise ValueError("node index out of range")
        req_nodes = np.concatenate([self.pickup, self.delivery])
        if np.unique(req_nodes).size != req_nodes.size:
            raise ValueError("each pickup/delivery node must belong to exactly one request")
        if np.intersect1d(req_nodes, np.concatenate([self.start_node, self.end_node])).size:
            raise ValueError("vehicle start/end nodes cannot be request nodes")
        for arr in (self.onboard_vehicle, self.fixed_vehicle):
            if arr.size and (arr.min() < -1 or arr.max() >= k):
                raise ValueError("vehicle index out of range")
        if np.any(self.early > self.late + EPS):
            raise ValueError("a time window closes before it opens")

    # -- sizes -----------------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return int(self.travel.shape[1])

    @property
    def n_profiles(self) -> int:
        return int(self.travel.shape[0])

    @property
    def n_requests(self) -> int:
        return int(self.pickup.shape[0])

    @property
    def n_vehicles(self) -> int:
        return int(self.start_node.shape[0])

    @property
    def n_dims(self) -> int:
        return int(self.load.shape[1])

    def vehicle_travel(self, k: int) -> FloatArray:
        """[N, N] travel times of vehicle ``k`` (a view of its profile's matrix)."""
        return self.travel[int(self.vehicle_profile[k])]

    def node_request(self) -> IntArray:
        """Request index of every node (-1 for vehicle start/end nodes)."""
        out = np.full(self.n_nodes, -1, dtype=np.int64)
        out[self.pickup] = np.arange(self.n_requests)
        out[self.delivery] = np.arange(self.n_requests)
        return out

    def initial_load(self) -> IntArray:
        """[K, D] load each vehicle carries at its start (its onboard requests)."""
        out = np.zeros((self.n_vehicles, self.n_dims), dtype=np.int64)
        for r in np.flatnonzero(self.onboard_vehicle >= 0):
            out[self.onboard_vehicle[r]] += self.load[self.pickup[r]]
        return out

    @classmethod
    def build(
        cls,
        travel: npt.ArrayLike,
        early: npt.ArrayLike,
        late: npt.ArrayLike,
        service: npt.ArrayLike,
        load: npt.ArrayLike,
        requests: Sequence[Request],
        vehicles: Sequence[Vehicle],
        cost: npt.ArrayLike | None = None,
        vehicle_fixed_cost: float = 0.0,
        name: str = "",
        asap: bool = False,
    ) -> Problem:
        """Assemble a problem from per-node arrays and :class:`Request` / :class:`Vehicle` lists.

        ``travel`` is ``[N, N]`` (one profile) or ``[P, N, N]`` (vehicles pick theirs with
        :attr:`Vehicle.profile`). ``load`` may be 1-D (one capacity dimension) or ``[N, D]``;
        ``cost`` defaults to the travel-time matrix when there is one profile.

        Raises
        ------
        ValueError
            If ``cost`` is missing with several profiles (which one would be the cost is a
            modelling decision), or on any inconsistent shape or index.
        """
        travel_a = np.asarray(travel, dtype=np.float64)
        if travel_a.ndim == 2:
            travel_a = travel_a[None, :, :]
        if cost is None and travel_a.ndim == 3 and travel_a.shape[0] != 1:
            raise ValueError("cost is required when travel has several profiles")
        load_a = np.asarray(load, dtype=np.int64)
        if load_a.ndim == 1:
            load_a = load_a[:, None]
        inf = float("inf")
        return cls(
            travel=travel_a,
            cost=travel_a[0].copy() if cost is None else np.asarray(cost, dtype=np.float64),
            early=np.asarray(early, dtype=np.float64),
            late=np.asarray(late, dtype=np.float64),
            service=np.asarray(service, dtype=np.float64),
            load=load_a,
            pickup=np.array([q.pickup for q in requests], dtype=np.int64),
            delivery=np.array([q.delivery for q in requests], dtype=np.int64),
            max_ride=np.array(
                [inf if q.max_ride is None else q.max_ride for q in requests], dtype=np.float64
            ),
            onboard_vehicle=np.array(
                [-1 if q.onboard_vehicle is None else q.onboard_vehicle for q in requests],
                dtype=np.int64,
            ),
            fixed_vehicle=np.array(
                [-1 if q.fixed_vehicle is None else q.fixed_vehicle for q in requests],
                dtype=np.int64,
            ),
            start_node=np.array([v.start_node for v in vehicles], dtype=np.int64),
            end_node=np.array([v.end_node for v in vehicles], dtype=np.int64),
            start_time=np.array([v.start_time for v in vehicles], dtype=np.float64),
            shift_end=np.array([v.shift_end for v in vehicles], dtype=np.float64),
            max_duration=np.array([v.max_duration for v in vehicles], dtype=np.float64),
            capacity=np.array([list(v.capacity) for v in vehicles], dtype=np.int64).reshape(
                len(vehicles), load_a.shape[1]
            ),
            vehicle_fixed_cost=vehicle_fixed_cost,
            name=name,
            vehicle_profile=np.array([v.profile for v in vehicles], dtype=np.int64),
            asap=asap,
        )


@dataclass
class Solution:
    """A plan: one route per vehicle, its schedule, its cost and the requests left unserved.

    ``cost`` is the routing cost (sum of ``Problem.cost`` along every used route, start and end
    included); ``unserved_reasons`` explains, per unserved request, why it was left out.
    """

    routes: list[list[int]]
    times: list[FloatArray]
    unserved: list[int] = field(default_factory=list)
    unserved_reasons: dict[int, str] = field(default_factory=dict)
    cost: float = 0.0
    solver: str = ""
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def n_vehicles_used(self) -> int:
        return sum(1 for r in self.routes if r)


def route_cost(problem: Problem, k: int, route: Sequence[int]) -> float:
    """Routing cost of vehicle ``k`` driving ``start -> route -> end`` (0 if the route is empty)."""
    if not route:
        return 0.0
    seq = np.array([problem.start_node[k], *route, problem.end_node[k]], dtype=np.int64)
    return float(problem.cost[seq[:-1], seq[1:]].sum())


def solution_cost(problem: Problem, routes: Sequence[Sequence[int]]) -> float:
    """Total routing cost of a set of routes."""
    return sum(route_cost(problem, k, r) for k, r in enumerate(routes))


def check(problem: Problem, solution: Solution) -> list[str]:
    """Every violated constraint of ``solution``, as readable messages (empty: feasible).

    Independent of the solvers on purpose: it re-derives everything from the routes and the
    given schedule (``solution.times``). Checked: route/schedule shapes, each request node
    visited exactly once, pairing (pickup and delivery on the same vehicle), precedence,
    onboard and fixed-vehicle assignments, time windows, travel-time consistency of the
    schedule (on each vehicle's own travel profile; with ``asap``, no waiting beyond a window's
    opening), capacity in every dimension, ride times, route duration, shift end, the reported
    cost, and that every request not routed is listed as unserved.
    """
    p = problem
    out: list[str] = []
    if len(solution.routes) != p.n_vehicles or len(solution.times) != p.n_vehicles:
        return [f"expected {p.n_vehicles} routes and schedules, got {len(solution.routes)}"]
    node_req = p.node_request()
    seen_vehicle = np.full(p.n_nodes, -1, dtype=np.int64)
    position = np.full(p.n_nodes, -1, dtype=np.int64)
    start_of_service = np.full(p.n_nodes, np.nan)
    init_load = p.initial_load()
    for k, route in enumerate(solution.routes):
        times = np.asarray(solution.times[k], dtype=np.float64)
        if times.shape != (len(route) + 2,):
            out.append(f"vehicle {k}: schedule has {times.shape} values for {len(route)} stops")
            continue
        if not route:
            continue  # an unused vehicle has no schedule to honour
        seq = [int(p.start_node[k]), *map(int, route), int(p.end_node[k])]
        prof = int(p.vehicle_profile[k])
        travel = p.travel[prof]
        for i, node in enumerate(route, start=1):
            if not 0 <= node < p.n_nodes or node_req[node] < 0:
                out.append(f"vehicle {k}: stop {i} is node {node}, not a request node")
                continue
            if seen_vehicle[node] >= 0:
                out.append(f"node {node} visited more than once")
            seen_vehicle[node] = k
            position[node] = i
            start_of_service[node] = times[i]
        if any(not 0 <= n < p.n_nodes for n in seq):
            continue
        if times[0] < p.start_time[k] - EPS:
            out.append(f"vehicle {k}: departs at {times[0]:.3f} before its start {p.start_time[k]}")
        depart = max(p.start_time[k], p.early[seq[0]])
        if p.asap and times[0] > depart + EPS:
            out.append(f"waiting: vehicle {k} departs at {times[0]:.3f}, not at {depart:.3f}")
        load = init_load[k].copy()
        for i, node in enumerate(seq):
            b = times[i]
            if b < p.early[node] - EPS or b > p.late[node] + EPS:
                out.append(
                    f"time window: vehicle {k} serves node {node} at {b:.3f} outside "
                    f"[{p.early[node]}, {p.late[node]}]"
                )
            if i > 0:
                prev = seq[i - 1]
                ready = times[i - 1] + p.service[prev] + travel[prev, node]
                if b < ready - EPS:
                    out.append(
                        f"schedule: vehicle {k} (profile {prof}) starts node {node} at {b:.3f} "
                        f"but cannot arrive before {ready:.3f}"
                    )
                elif p.asap and b > max(ready, p.early[node]) + EPS:
                    out.append(
                        f"waiting: vehicle {k} starts node {node} at {b:.3f}, not as soon as "
                        f"possible ({max(ready, p.early[node]):.3f})"
                    )
            if 0 < i < len(seq) - 1:
                load = load + p.load[node]
                if np.any(load > p.capacity[k]) or np.any(load < 0):
                    out.append(
                        f"capacity: vehicle {k} load {load.tolist()} after node {node} exceeds "
                        f"{p.capacity[k].tolist()}"
                    )
        duration = times[-1] - times[0]
        if duration > p.max_duration[k] + EPS:
            out.append(f"route duration: vehicle {k} takes {duration:.3f} > {p.max_duration[k]}")
        if times[-1] > p.shift_end[k] + EPS:
            out.append(f"shift end: vehicle {k} returns at {times[-1]:.3f} > {p.shift_end[k]}")
    unserved = set(solution.unserved)
    for r in range(p.n_requests):
        pu, de = int(p.pickup[r]), int(p.delivery[r])
        onboard = int(p.onboard_vehicle[r])
        vd = int(seen_vehicle[de])
        if onboard >= 0:
            if seen_vehicle[pu] >= 0:
                out.append(f"onboard request {r}: its pickup node {pu} is visited again")
            if vd < 0:
                if r not in unserved:
                    out.append(f"unserved: onboard request {r} is never delivered")
                continue
            if vd != onboard:
                out.append(f"onboard: request {r} is on vehicle {onboard} but delivered by {vd}")
            ride = start_of_service[de] - p.start_time[onboard]
            if ride > p.max_ride[r] + EPS:
                out.append(f"ride time: onboard request {r} rides {ride:.3f} > {p.max_ride[r]}")
            continue
        vp = int(seen_vehicle[pu])
        if vp < 0 and vd < 0:
            if r not in unserved:
                out.append(f"unserved: request {r} is neither routed nor reported unserved")
            continue
        if r in unserved:
            out.append(f"request {r} is reported unserved but is routed")
        if vp < 0 or vd < 0 or vp != vd:
            out.append(f"pairing: request {r} pickup on vehicle {vp}, delivery on vehicle {vd}")
            continue
        if position[pu] > position[de]:
            out.append(f"precedence: request {r} delivered before it is picked up")
        if p.fixed_vehicle[r] >= 0 and vp != p.fixed_vehicle[r]:
            out.append(f"fixed assignment: request {r} must use vehicle {p.fixed_vehicle[r]}")
        ride = start_of_service[de] - (start_of_service[pu] + p.service[pu])
        if ride > p.max_ride[r] + EPS:
            out.append(f"ride time: request {r} rides {ride:.3f} > {p.max_ride[r]}")
    expected = solution_cost(p, solution.routes) if not out else None
    if expected is not None and abs(expected - solution.cost) > 1e-6 * max(1.0, abs(expected)):
        out.append(f"cost: reported {solution.cost:.4f}, routes cost {expected:.4f}")
    return out

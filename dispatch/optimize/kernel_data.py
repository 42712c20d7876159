"""Flat arrays the numba kernels read: a :class:`~dispatch.problem.Problem` packed into a tuple.

The kernels take one heterogeneous tuple ``P`` (numba unpacks it at no cost) instead of a
dozen arguments::

    P = (travel, cost, nodef, nodei, load, vehf, vehi, cap, init, reqi, maxride)

* ``nodef[N, 3]``: early, late (tightened by onboard ride limits), service.
* ``nodei[N, 2]``: request index (-1 for start/end nodes), kind (0 depot, 1 pickup, 2 delivery).
* ``load[N, D]``, ``cap[K, D]``, ``init[K, D]`` (onboard load at the start).
* ``travel[P, N, N]``: one travel-time matrix per profile; a kernel working on vehicle ``k``
  takes the 2-D view ``travel[vehi[k, 2]]`` once, so its inner loops index ``[i, j]`` as
  before. ``cost[N, N]`` is shared by every vehicle (a distance).
* ``vehf[K, 3]``: start time, latest end (min of shift end and the end node's window), max
  duration; ``vehi[K, 4]``: start node, end node, travel profile, as-soon-as-possible flag
  (``Problem.asap``: the schedule is the earliest one, no waiting added for ride times).
* ``reqi[R, 4]``: pickup, delivery, onboard vehicle (-1), fixed vehicle (-1);
  ``maxride[R]`` (inf for onboard requests: their limit is folded into the delivery window).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dispatch.problem import Problem

KernelData = tuple[Any, ...]

#: Node kinds in ``nodei[:, 1]``.
DEPOT, PICKUP, DELIVERY = 0, 1, 2


def kernel_data(problem: Problem) -> KernelData:
    """Pack ``problem`` into the kernels' tuple (contiguous float64 / int64 arrays)."""
    p = problem
    late = p.late.astype(np.float64).copy()
    maxride = p.max_ride.astype(np.float64).copy()
    for r in np.flatnonzero(p.onboard_vehicle >= 0):
        k = p.onboard_vehicle[r]
        # The remaining ride limit counts from "now" (the vehicle's start): a deadline.
        late[p.delivery[r]] = min(late[p.delivery[r]], p.start_time[k] + p.max_ride[r])
        maxride[r] = np.inf
    nodef = np.ascontiguousarray(np.stack([p.early, late, p.service], axis=1), dtype=np.float64)
    nodei = np.zeros((p.n_nodes, 2), dtype=np.int64)
    nodei[:, 0] = p.node_request()
    nodei[p.pickup, 1] = PICKUP
    nodei[p.delivery, 1] = DELIVERY
    end_late = np.minimum(p.shift_end, p.late[p.end_node])
    vehf = np.ascontiguousarray(
        np.stack([p.start_time, end_late, p.max_duration], axis=1), dtype=np.float64
    )
    asap = np.full(p.n_vehicles, int(p.asap), dtype=np.int64)
    vehi = np.ascontiguousarray(
        np.stack([p.start_node, p.end_node, p.vehicle_profile, asap], axis=1), dtype=np.int64
    ).reshape(p.n_vehicles, 4)
    reqi = np.ascontiguousarray(
        np.stack([p.pickup, p.delivery, p.onboard_vehicle, p.fixed_vehicle], axis=1),
        dtype=np.int64,
    ).reshape(p.n_requests, 4)
    return (
        np.ascontiguousarray(p.travel, dtype=np.float64),
        np.ascontiguousarray(p.cost, dtype=np.float64),
        nodef,
        nodei,
        np.ascontiguousarray(p.load, dtype=np.int64),
        vehf,
        vehi,
        np.ascontiguousarray(p.capacity, dtype=np.int64),
        p.initial_load(),
        reqi,
        maxride,
    )

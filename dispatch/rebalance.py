"""Rebalancing: send idle vehicles toward where rides are expected.

Expected demand is the zone's booking history counted per H3 cell of the origin and local hour of
the pick-up (:meth:`Dispatcher.expected_demand`: the bookings to expect in the coming hour; a
rider re-quoting counts nothing, only bookings do). The busiest cells not already covered by a vehicle (idle there, or whose plan ends there) receive the idle
vehicles, matched to minimise total driving time (Hungarian algorithm, scipy).
"""

from __future__ import annotations

import h3
import numpy as np
from scipy.optimize import linear_sum_assignment

from dispatch.dispatcher import Dispatcher


def rebalance_zone(d: Dispatcher, zone_id: str, now: float, max_moves: int | None = None) -> int:
    """Relocate idle vehicles of ``zone_id`` to the busiest uncovered cells; returns moves."""
    demand = d.expected_demand(zone_id, now)
    if not demand:
        return 0
    zone = d.zone_state(zone_id).zone
    vehicles = [v for v in d.vehicles(zone_id) if v.shift_start <= now < v.shift_end]
    idle = [v for v in vehicles if not v.plan and not v.onboard]
    if not idle:
        return 0
    covered = set()
    for v in vehicles:
        where = v.plan[-1].latlon if v.plan else (v.heading or v.position)
        covered.add(zone.cell_of(*where))
    cells = [c for c, _ in sorted(demand.items(), key=lambda kv: (-kv[1], kv[0]))]
    targets = [c for c in cells if c not in covered][: len(idle)]
    if max_moves is not None:
        targets = targets[:max_moves]
    if not targets:
        return 0
    centres = np.array([h3.cell_to_latlng(c) for c in targets], dtype=np.float64)
    pos = np.array([v.position for v in idle], dtype=np.float64)
    cost = d.travel.matrix(pos, centres, idle[0].vtype.speed_kmh)
    cost = np.where(np.isfinite(cost), cost, 1e9)
    rows, cols = linear_sum_assignment(cost)
    moves = 0
    for r, c in zip(rows, cols, strict=True):
        target = (float(centres[c, 0]), float(centres[c, 1]))
        if zone.contains(*target) and d.relocate(idle[r].vehicle_id, target, now):
            moves += 1
    return moves

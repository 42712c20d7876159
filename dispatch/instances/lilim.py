"""Reader of the Li & Lim PDPTW format.

Header ``K Q speed``; then one line ``id x y demand e l s pickup_index delivery_index`` per
node, node 0 being the depot (start and end of every vehicle). A pickup has
``pickup_index == 0`` and names its delivery; a delivery names its pickup. Travel time is the
Euclidean distance divided by ``speed``; the objective is hierarchical (vehicles, then
distance), modelled by a large ``vehicle_fixed_cost``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dispatch.instances.cordeau import euclidean
from dispatch.problem import Problem

#: Cost of using one vehicle: larger than any total distance, so vehicles are minimised first.
LILIM_VEHICLE_COST = 100_000.0


def read_lilim(path: str | Path) -> Problem:
    """Parse one Li & Lim PDPTW instance file into a :class:`Problem`.

    Raises
    ------
    ValueError
        If the header, the node lines or the pickup/delivery pairing are malformed.
    """
    path = Path(path)
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    if not lines or len(lines[0]) < 3:
        raise ValueError(f"{path.name}: header must be 'K Q speed'")
    k, q_max, speed = int(lines[0][0]), int(lines[0][1]), float(lines[0][2])
    rows = lines[1:]
    if not rows or any(len(r) < 9 for r in rows):
        raise ValueError(f"{path.name}: node lines must be 'id x y demand e l s p d'")
    data = np.array([[float(v) for v in r[:9]] for r in rows])
    if not np.array_equal(data[:, 0], np.arange(len(rows))):
        raise ValueError(f"{path.name}: node ids must be 0..N-1")
    if speed <= 0:
        # Some published files (lc104, ...) carry speed 0; the benchmark convention is 1.
        speed = 1.0
    pick, deli = [], []
    for i in range(1, len(rows)):
        p_idx, d_idx = int(data[i, 7]), int(data[i, 8])
        if p_idx == 0:
            if not 0 < d_idx < len(rows) or int(data[d_idx, 7]) != i:
                raise ValueError(f"{path.name}: pickup {i} names a bad delivery {d_idx}")
            pick.append(i)
            deli.append(d_idx)
    if 2 * len(pick) != len(rows) - 1:
        raise ValueError(f"{path.name}: unpaired nodes")
    xy = data[:, 1:3]
    dist = euclidean(xy)
    r = len(pick)
    return Problem(
        travel=(dist / speed)[None, :, :],  # one travel profile for the whole fleet
        cost=dist,
        early=data[:, 4].copy(),
        late=data[:, 5].copy(),
        service=data[:, 6].copy(),
        load=data[:, 3].astype(np.int64)[:, None],
        pickup=np.array(pick, dtype=np.int64),
        delivery=np.array(deli, dtype=np.int64),
        max_ride=np.full(r, np.inf),
        onboard_vehicle=np.full(r, -1, dtype=np.int64),
        fixed_vehicle=np.full(r, -1, dtype=np.int64),
        start_node=np.zeros(k, dtype=np.int64),
        end_node=np.zeros(k, dtype=np.int64),
        start_time=np.full(k, data[0, 4]),
        shift_end=np.full(k, data[0, 5]),
        max_duration=np.full(k, np.inf),
        capacity=np.full((k, 1), q_max, dtype=np.int64),
        vehicle_fixed_cost=LILIM_VEHICLE_COST,
        name=path.stem,
        meta={"format": "lilim", "coords": xy},
    )

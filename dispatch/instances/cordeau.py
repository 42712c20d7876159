"""Reader of the Cordeau (2006) DARP format (the 'a' instances).

Header ``K n T Q L`` (vehicles, requests, maximum route duration, capacity, maximum ride
time), then one line ``id x y d q e l`` per node: node 0 is the depot, ``1..n`` pickups,
``n+1..2n`` deliveries, ``2n+1`` a copy of the depot (the route end). Travel times and costs
are Euclidean distances; the objective is the total routing distance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dispatch.problem import Problem


def euclidean(xy: np.ndarray) -> np.ndarray:
    """[N, N] Euclidean distance matrix (float64) of [N, 2] coordinates."""
    diff = xy[:, None, :] - xy[None, :, :]
    return np.sqrt((diff**2).sum(axis=2))


def read_cordeau(path: str | Path) -> Problem:
    """Parse one Cordeau DARP instance file into a :class:`Problem`.

    Raises
    ------
    ValueError
        If the header or the node lines do not match the format.
    """
    path = Path(path)
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    if not lines or len(lines[0]) < 5:
        raise ValueError(f"{path.name}: header must be 'K n T Q L'")
    k, n = int(lines[0][0]), int(lines[0][1])
    t_max, q_max, l_max = float(lines[0][2]), int(lines[0][3]), float(lines[0][4])
    rows = lines[1:]
    if len(rows) != 2 * n + 2 or any(len(r) < 7 for r in rows):
        raise ValueError(f"{path.name}: expected {2 * n + 2} node lines 'id x y d q e l'")
    data = np.array([[float(v) for v in r[:7]] for r in rows])
    xy = data[:, 1:3]
    dist = euclidean(xy)
    pickups = np.arange(1, n + 1, dtype=np.int64)
    return Problem(
        travel=dist[None, :, :],  # one travel profile for the whole fleet
        cost=dist.copy(),
        early=data[:, 5].copy(),
        late=data[:, 6].copy(),
        service=data[:, 3].copy(),
        load=data[:, 4].astype(np.int64)[:, None],
        pickup=pickups,
        delivery=pickups + n,
        max_ride=np.full(n, l_max),
        onboard_vehicle=np.full(n, -1, dtype=np.int64),
        fixed_vehicle=np.full(n, -1, dtype=np.int64),
        start_node=np.zeros(k, dtype=np.int64),
        end_node=np.full(k, 2 * n + 1, dtype=np.int64),
        start_time=np.full(k, data[0, 5]),
        shift_end=np.full(k, data[-1, 6]),
        max_duration=np.full(k, t_max),
        capacity=np.full((k, 1), q_max, dtype=np.int64),
        name=path.stem,
        meta={"format": "cordeau", "coords": xy},
    )

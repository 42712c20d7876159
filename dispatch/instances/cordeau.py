"""Readers of the Cordeau DARP formats: the 2006 'a' set and the 2003 'pr' set.

'a' (Cordeau 2006): header ``K n T Q L`` (vehicles, requests, maximum route duration,
capacity, maximum ride time), then one line ``id x y d q e l`` per node: node 0 is the depot,
``1..n`` pickups, ``n+1..2n`` deliveries, ``2n+1`` a copy of the depot (the route end).

'pr' (Cordeau & Laporte 2003): header ``K 2n T Q L`` (the node count, not the requests), the
same node lines for nodes ``0..2n`` and no end-depot line: the vehicles return to node 0.

Travel times and costs are Euclidean distances; the objective is the total routing distance.
Both give the same :class:`Problem`, the 'pr' one with the end depot equal to the start depot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dispatch.problem import Problem

#: Fields of one node line, as named in the error messages.
NODE_LINE = "id x y d q e l"


def euclidean(xy: np.ndarray) -> np.ndarray:
    """[N, N] Euclidean distance matrix (float64) of [N, 2] coordinates."""
    diff = xy[:, None, :] - xy[None, :, :]
    return np.sqrt((diff**2).sum(axis=2))


def _numbers(path: Path, lineno: int, fields: list[str], layout: str) -> list[float]:
    """The fields of line ``lineno`` that ``layout`` names, as floats.

    Raises
    ------
    ValueError
        Naming the file and the line, if a field is missing or not a number.
    """
    width = len(layout.split())
    if len(fields) < width:
        raise ValueError(
            f"{path.name}, line {lineno}: expected '{layout}', got {' '.join(fields)!r}"
        )
    try:
        return [float(v) for v in fields[:width]]
    except ValueError:
        raise ValueError(
            f"{path.name}, line {lineno}: '{layout}' must be numbers, got {' '.join(fields)!r}"
        ) from None


def _read_darp(path: Path, header: str, n_nodes_of: str) -> tuple[list[float], np.ndarray]:
    """Header values and [N, 7] node rows of a Cordeau DARP file, every line checked.

    Parameters
    ----------
    path
        The instance file.
    header
        The header's layout, e.g. ``"K n T Q L"``; its first, second and fourth fields
        (vehicles, requests or nodes, capacity) must be whole numbers.
    n_nodes_of
        ``"a"`` (``2n + 2`` node lines) or ``"pr"`` (``2n + 1`` node lines, the header giving
        ``2n``, which must be even).

    Raises
    ------
    ValueError
        Naming the line, if the header or a node line is malformed, the node ids are not
        ``0, 1, 2, ...`` or the number of node lines does not match the header.
    """
    lines = [(i, ln.split()) for i, ln in enumerate(path.read_text().splitlines(), 1)]
    lines = [(i, f) for i, f in lines if f]
    if not lines:
        raise ValueError(f"{path.name}: empty file, expected a header '{header}'")
    head_no, head_fields = lines[0]
    head = _numbers(path, head_no, head_fields, header)
    if any(v != int(v) or v < 0 for v in (head[0], head[1], head[3])):
        raise ValueError(
            f"{path.name}, line {head_no}: {header.split()[0]}, {header.split()[1]} and Q "
            f"of '{header}' must be whole numbers, got {' '.join(head_fields)!r}"
        )
    second = int(head[1])
    if n_nodes_of == "pr" and second % 2:
        raise ValueError(f"{path.name}, line {head_no}: 2n = {second} is odd")
    expected = 2 * second + 2 if n_nodes_of == "a" else second + 1
    rows = lines[1:]
    if len(rows) != expected:
        where = (
            f"line {rows[expected][0]} is the first one too many"
            if len(rows) > expected
            else f"the file ends at line {lines[-1][0]}"
        )
        raise ValueError(
            f"{path.name}: the header (line {head_no}) announces {expected} node lines "
            f"'{NODE_LINE}', found {len(rows)}: {where}"
        )
    data = np.array([_numbers(path, i, f, NODE_LINE) for i, f in rows]).reshape(-1, 7)
    for node, (lineno, fields) in enumerate(rows):
        if data[node, 0] != node:
            raise ValueError(f"{path.name}, line {lineno}: node id {fields[0]}, expected {node}")
    return head, data


def _problem(
    path: Path, head: list[float], n: int, data: np.ndarray, end: int, fmt: str
) -> Problem:
    """The :class:`Problem` of a Cordeau file's header, ``n`` requests and node rows.

    ``end`` is the vehicles' end node (its window's close is the shift end).
    """
    k, t_max, q_max, l_max = int(head[0]), head[2], int(head[3]), head[4]
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
        end_node=np.full(k, end, dtype=np.int64),
        start_time=np.full(k, data[0, 5]),
        shift_end=np.full(k, data[end, 6]),
        max_duration=np.full(k, t_max),
        capacity=np.full((k, 1), q_max, dtype=np.int64),
        name=path.stem,
        meta={"format": fmt, "coords": xy},
    )


def read_cordeau(path: str | Path) -> Problem:
    """Parse one Cordeau (2006) 'a' DARP instance file into a :class:`Problem`.

    Raises
    ------
    ValueError
        If the header or the node lines do not match the format (naming the line).
    """
    path = Path(path)
    head, data = _read_darp(path, "K n T Q L", "a")
    n = int(head[1])
    return _problem(path, head, n, data, end=2 * n + 1, fmt="cordeau")


def read_cordeau_pr(path: str | Path) -> Problem:
    """Parse one Cordeau & Laporte (2003) 'pr' DARP instance file into a :class:`Problem`.

    The vehicles start and end at node 0 (``end_node == start_node``); nodes ``1..n`` are the
    pickups and ``n+1..2n`` their deliveries.

    Raises
    ------
    ValueError
        If the header or the node lines do not match the format (naming the line).
    """
    path = Path(path)
    head, data = _read_darp(path, "K 2n T Q L", "pr")
    return _problem(path, head, int(head[1]) // 2, data, end=0, fmt="cordeau_pr")

"""Transfers between stops: straight-line footpaths, parent-station siblings, transfers.txt.

Straight-line footpaths join every pair of stops closer than a radius (scipy ``cKDTree`` on
Earth-centred metric coordinates, so several feeds/cities merge correctly). Walking time is
``ceil(distance * DETOUR_FACTOR / WALK_SPEED_MPS)``: the 1.3 detour factor is the usual ratio
of street to crow-fly distance in cities and 1.2 m/s a slow-normal walking pace (both are also
used by OpenTripPlanner-style defaults). OSM-based footpaths built elsewhere (``routing/street``)
replace them via ``compile_timetable(..., footpaths=...)`` or :func:`replace_footpaths`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from gtfs.geo import project_local_m

WALK_SPEED_MPS = 1.2
DETOUR_FACTOR = 1.3
DEFAULT_FOOTPATH_RADIUS_M = 400.0

I32 = npt.NDArray[np.int32]


@dataclass(frozen=True, eq=False)
class Footpaths:
    """Directed footpaths between compiled stop indices: ``from_idx -> to_idx`` in ``seconds``."""

    from_idx: I32
    to_idx: I32
    seconds: I32

    def __post_init__(self) -> None:
        n = len(self.from_idx)
        if len(self.to_idx) != n or len(self.seconds) != n:
            raise ValueError("footpath arrays must have equal lengths")

    @classmethod
    def empty(cls) -> Footpaths:
        z = np.zeros(0, np.int32)
        return cls(z, z.copy(), z.copy())


def walk_seconds(distance_m: npt.NDArray[np.float64]) -> I32:
    """Walking time of a straight-line distance (detour factor and speed above)."""
    return np.ceil(distance_m * DETOUR_FACTOR / WALK_SPEED_MPS).astype(np.int32)


def straight_line_footpaths(
    lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64], radius_m: float
) -> Footpaths:
    """Both directions of every stop pair within ``radius_m`` (stops without coords skipped)."""
    ok = np.flatnonzero(~np.isnan(lat) & ~np.isnan(lon))
    if radius_m <= 0 or len(ok) < 2:
        return Footpaths.empty()
    xyz = project_local_m(lat[ok], lon[ok])
    tree = cKDTree(xyz)
    pairs = tree.query_pairs(radius_m, output_type="ndarray")
    if len(pairs) == 0:
        return Footpaths.empty()
    d = np.linalg.norm(xyz[pairs[:, 0]] - xyz[pairs[:, 1]], axis=1)
    a = ok[pairs[:, 0]].astype(np.int32)
    b = ok[pairs[:, 1]].astype(np.int32)
    s = walk_seconds(d)
    return Footpaths(np.r_[a, b], np.r_[b, a], np.r_[s, s])


def station_member_pairs(
    from_stop: npt.ArrayLike, to_stop: npt.ArrayLike, stop_parent: npt.ArrayLike
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """Stop pairs of transfers.txt expanded to platforms: a station stands for itself and its
    children (``stop_parent``), so pair ``i`` gives every (member of ``from_stop[i]``, member of
    ``to_stop[i]``).

    Returns ``(pair, a, b)``: for each expanded pair the input pair it comes from and its two
    stops, in the order two pandas inner merges of the pairs with a ``(stop, member)`` table
    (every stop its own member first, then the children in index order) give: by input pair,
    then ``a``'s members, then ``b``'s. Numpy instead of the two merges: ~10 ms of the ~90 ms
    load of Cairns went to them.
    """
    a0 = np.asarray(from_stop, np.int64)
    b0 = np.asarray(to_stop, np.int64)
    parent = np.asarray(stop_parent, np.int64)
    n = len(parent)
    child = np.flatnonzero(parent >= 0)
    if len(child) == 0:  # no stations: every stop stands for itself alone
        return np.arange(len(a0), dtype=np.int64), a0.astype(np.int32), b0.astype(np.int32)
    # Members of each stop in CSR form: the stop itself, then its children by index.
    kids = child[np.argsort(parent[child], kind="stable")]
    n_kids = np.bincount(parent[child], minlength=n)
    count = 1 + n_kids
    ptr = np.r_[0, np.cumsum(count)]
    members = np.empty(int(ptr[-1]), np.int64)
    members[ptr[:-1]] = np.arange(n)
    kid_ptr = np.r_[0, np.cumsum(n_kids)]
    slot = ptr[:-1] + 1  # first child slot of each stop
    members[np.repeat(slot - kid_ptr[:-1], n_kids) + np.arange(len(kids))] = kids
    na, nb = count[a0], count[b0]
    size = na * nb
    pair = np.repeat(np.arange(len(a0), dtype=np.int64), size)
    k = np.arange(int(size.sum()), dtype=np.int64) - np.repeat(np.cumsum(size) - size, size)
    nb_r = nb[pair]
    a = members[ptr[a0[pair]] + k // nb_r]
    b = members[ptr[b0[pair]] + k % nb_r]
    return pair, a.astype(np.int32), b.astype(np.int32)

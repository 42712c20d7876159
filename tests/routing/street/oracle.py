"""An independent shortest-path oracle: networkx on the same edges."""

from __future__ import annotations

import itertools

import networkx as nx
import numpy as np

from routing.street import StreetGraph


def to_networkx(g: StreetGraph, weights: np.ndarray) -> nx.DiGraph:
    dg = nx.DiGraph()
    dg.add_weighted_edges_from(
        zip(g.edge_source.tolist(), g.indices.tolist(), weights.tolist(), strict=True)
    )
    return dg


def path_length(g: StreetGraph, path: list[int]) -> float:
    """Metres along a node path, summing edge lengths looked up one by one."""
    total = 0.0
    for u, v in itertools.pairwise(path):
        lo, hi = g.indptr[u], g.indptr[u + 1]
        k = lo + int(np.flatnonzero(g.indices[lo:hi] == v)[0])
        total += float(g.length_m[k])
    return total

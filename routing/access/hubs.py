"""Hubs: where on-demand zones should feed the network.

The stop/route graph (networkx): one node per served stop, an edge between consecutive stops of
every pattern, weighted by the scheduled ride time (its first trip's), with the patterns and
trips of the day that use it. A hub is a stop many shortest paths run through (betweenness
centrality, weighted by ride time; sampled with ``k`` sources on large networks, as networkx
allows) and that is well served (departures on the day, routes calling). The score is the mean
of the two normalised ranks, so neither figure alone makes a hub: a junction served twice a day
is a poor place to drop on-demand riders, and so is a busy stop at the end of one line.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from routing.transit import TransitData

MAX_EXACT_NODES = 1500
"""Above this many stops betweenness is estimated from a sample of source stops."""


@dataclass(frozen=True)
class HubGraph:
    graph: nx.DiGraph
    departures: np.ndarray  # [S] trips departing each stop on the day
    routes: np.ndarray  # [S] distinct routes calling


def stop_route_graph(data: TransitData, day: dt.date) -> HubGraph:
    """The stop/route graph of ``day`` (patterns with no trip that day are left out)."""
    tt = data.tt
    day_idx = tt.day_index(day)
    if day_idx < 0:
        raise ValueError(f"{day.isoformat()} is outside the timetable's service period")
    runs = tt.service_days[tt.trip_service, day_idx].astype(bool)
    g = nx.DiGraph()
    n_stops = tt.n_stops
    departures = np.zeros(n_stops, dtype=np.int64)
    route_sets: list[set[int]] = [set() for _ in range(n_stops)]
    for p in range(len(tt.pattern_trip_ptr) - 1):
        t0, t1 = int(tt.pattern_trip_ptr[p]), int(tt.pattern_trip_ptr[p + 1])
        trips = np.arange(t0, t1)[runs[t0:t1]]
        if len(trips) == 0:
            continue
        stops = tt.pattern_stops[tt.pattern_stop_ptr[p] : tt.pattern_stop_ptr[p + 1]]
        st0 = int(tt.trip_st_ptr[trips[0]])
        arr = tt.st_arrival[st0 : st0 + len(stops)].astype(np.int64)
        dep = tt.st_departure[st0 : st0 + len(stops)].astype(np.int64)
        route = int(tt.trip_route[trips[0]])
        for i, s in enumerate(stops):
            route_sets[int(s)].add(route)
            if i < len(stops) - 1:
                departures[int(s)] += len(trips)
        for i in range(len(stops) - 1):
            a, b = int(stops[i]), int(stops[i + 1])
            w = max(1, int(arr[i + 1] - dep[i]))
            if g.has_edge(a, b):
                e = g[a][b]
                e["trips"] += len(trips)
                e["weight"] = min(e["weight"], w)
            else:
                g.add_edge(a, b, weight=w, trips=len(trips))
    routes = np.array([len(r) for r in route_sets], dtype=np.int64)
    return HubGraph(g, departures, routes)


def rank_hubs(data: TransitData, day: dt.date, top: int = 20, seed: int = 0) -> pd.DataFrame:
    """Stops ranked as hubs: ``stop_id, stop_name, lat, lon, betweenness, departures, routes,
    score`` (0..1), best first."""
    if top < 1:
        raise ValueError("top must be at least 1")
    hg = stop_route_graph(data, day)
    g = hg.graph
    if g.number_of_nodes() == 0:
        raise ValueError("no trip runs on that day")
    k = None if g.number_of_nodes() <= MAX_EXACT_NODES else MAX_EXACT_NODES // 3
    bc = nx.betweenness_centrality(g, k=k, weight="weight", normalized=True, seed=seed)
    nodes = np.array(sorted(g.nodes), dtype=np.int64)
    tt = data.tt
    df = pd.DataFrame(
        {
            "stop_id": tt.stop_ids[nodes].astype(str),
            "stop_name": np.asarray(tt.stop_names)[nodes].astype(str),
            "lat": np.asarray(tt.stop_lat)[nodes],
            "lon": np.asarray(tt.stop_lon)[nodes],
            "betweenness": [bc[int(n)] for n in nodes],
            "departures": hg.departures[nodes],
            "routes": hg.routes[nodes],
        }
    )
    # Percentile ranks: robust to the long tails of both figures.
    df["score"] = (df["betweenness"].rank(pct=True) + df["departures"].rank(pct=True)) / 2.0
    df = df.sort_values(["score", "betweenness"], ascending=False, kind="stable")
    return df.head(top).reset_index(drop=True)

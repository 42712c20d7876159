"""Street network speed: OSM loading, 200 x 200 driving matrices, walking access, footpaths.

Baselines, measured in the same run on the same graph: networkx Dijkstra per origin–destination
pair (``nx.dijkstra_path_length``) and per origin (``nx.single_source_dijkstra_path_length``),
timed on a sample and scaled to the full matrix. Run ``python -m bench.street [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from routing.street import (
    CAR,
    OsmWalkAccess,
    StraightLineAccess,
    TravelTimeModel,
    footpaths,
    load_osm,
    snap,
)

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def median_s(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--n", type=int, default=200, help="matrix side")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    pbf = DATA / "osm" / "us_terre_haute.osm.pbf"
    out: dict[str, Any] = {"graph": pbf.name, "matrix_n": args.n}

    out["load_osm_s"] = median_s(lambda: load_osm(pbf), args.repeats)
    graphs = load_osm(pbf)
    walk, drive = graphs["walk"], graphs["drive"]
    out["drive_nodes"], out["drive_edges"] = drive.n_nodes, drive.n_edges
    out["walk_nodes"], out["walk_edges"] = walk.n_nodes, walk.n_edges
    print(
        f"load {pbf.name}: {out['load_osm_s'] * 1e3:.0f} ms  drive {drive.n_nodes} nodes / "
        f"{drive.n_edges} edges, walk {walk.n_nodes} / {walk.n_edges}"
    )

    rng = np.random.default_rng(42)
    pick = rng.choice(drive.n_nodes, args.n, replace=False)
    pts = np.column_stack((drive.lat[pick], drive.lon[pick])) + rng.normal(0, 1e-4, (args.n, 2))
    TravelTimeModel(drive).matrix(pts[:2], pts[:2], profile=CAR)  # JIT warm-up (disk cache)

    def cold() -> None:
        TravelTimeModel(drive).matrix(pts, pts, profile=CAR)

    warm_model = TravelTimeModel(drive, cache_size=4 * args.n)  # two segment ends per point
    warm_model.matrix(pts, pts, profile=CAR)
    out["matrix_cold_s"] = median_s(cold, args.repeats)
    out["matrix_warm_s"] = median_s(lambda: warm_model.matrix(pts, pts, profile=CAR), args.repeats)

    # networkx baselines on the same weights and snapped nodes.
    dg = nx.DiGraph()
    w = drive.drive_seconds(CAR)
    dg.add_weighted_edges_from(
        zip(drive.edge_source.tolist(), drive.indices.tolist(), w.tolist(), strict=True)
    )
    nodes = snap(drive, pts[:, 0], pts[:, 1])[0].tolist()
    sample = [(nodes[i], nodes[(i * 7 + 3) % args.n]) for i in range(20)]
    t = time.perf_counter()
    for a, b in sample:
        nx.dijkstra_path_length(dg, a, b)
    per_pair = (time.perf_counter() - t) / len(sample)
    t = time.perf_counter()
    for a in nodes[:5]:
        nx.single_source_dijkstra_path_length(dg, a)
    per_origin = (time.perf_counter() - t) / 5
    out["nx_per_pair_matrix_s"] = per_pair * args.n * args.n
    out["nx_per_origin_matrix_s"] = per_origin * args.n
    out["speedup_cold_vs_nx_per_origin"] = out["nx_per_origin_matrix_s"] / out["matrix_cold_s"]
    out["speedup_cold_vs_nx_per_pair"] = out["nx_per_pair_matrix_s"] / out["matrix_cold_s"]
    out["speedup_warm_vs_cold"] = out["matrix_cold_s"] / out["matrix_warm_s"]
    print(
        f"matrix {args.n}x{args.n} (car): cold {out['matrix_cold_s'] * 1e3:.0f} ms, "
        f"warm {out['matrix_warm_s'] * 1e3:.1f} ms (x{out['speedup_warm_vs_cold']:.0f})\n"
        f"  networkx per origin {out['nx_per_origin_matrix_s']:.1f} s "
        f"(x{out['speedup_cold_vs_nx_per_origin']:.0f} slower), per pair "
        f"{out['nx_per_pair_matrix_s']:.0f} s (x{out['speedup_cold_vs_nx_per_pair']:.0f})"
    )

    # Walking access: 15-minute stop search around 50 points.
    stops = pts[:100]
    osm = OsmWalkAccess(walk, stops[:, 0], stops[:, 1])
    line = StraightLineAccess(stops[:, 0], stops[:, 1])
    q = pts[100:150]

    def queries(model: OsmWalkAccess | StraightLineAccess) -> Callable[[], None]:
        def run() -> None:
            for la, lo in q:
                model.nearby_stops(float(la), float(lo), 900)

        return run

    out["nearby_stops_osm_ms"] = median_s(queries(osm), args.repeats) / len(q) * 1e3
    out["nearby_stops_line_ms"] = median_s(queries(line), args.repeats) / len(q) * 1e3
    out["footpaths_osm_200_stops_s"] = median_s(
        lambda: footpaths(walk, pts[:, 0], pts[:, 1], radius_m=400), args.repeats
    )
    print(
        f"nearby_stops (15 min): OSM {out['nearby_stops_osm_ms']:.2f} ms, straight line "
        f"{out['nearby_stops_line_ms']:.3f} ms per query; OSM footpaths for {args.n} stops "
        f"{out['footpaths_osm_200_stops_s'] * 1e3:.0f} ms"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

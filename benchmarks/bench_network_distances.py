"""Benchmark: road travel distances (drivers x4, x5) for many parcels on the county demo.

    .venv/bin/python benchmarks/bench_network_distances.py [--size 1600] [--parcels-per-km2 40]
        [--parcels 1250 2500 5000 10000] [--segment-m 25 12.5 6.25] [--repeat 3]

Generates the county demo (seed 42) on a ``size`` x ``size`` px grid at 10 m with
``parcels-per-km2`` reclaimed parcels (Sentinel-2 scenes are never computed), then times

* ``karstflow.network.travel_distance_m`` (graph built once) from the first N parcels to
  the farmland patches (x5, the larger target set) for each N of ``--parcels``, all roads;
* the same for all parcels with the road lines split into pieces of at most
  ``--segment-m`` metres (same network, more segments), graph building included;
* side by side, the usual shortcut as the peer: snap every parcel and patch centroid to
  its nearest graph node (scipy cKDTree), one networkx multi-source Dijkstra from the
  patch nodes, plus the two straight legs; reported as a time ratio and with how far its
  distances are from the exact ones.

Times are CPU seconds of the (single-threaded) work, best of ``--repeat`` runs: on a
shared machine wall time mostly measures the other jobs. Growth exponents are the slopes
of log(time) on log(size) (least squares). Results: a table on stdout and benchmarks/results/network_distances.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from scipy.spatial import cKDTree

from karstflow.demo import generate
from karstflow.grid import RegionGrid
from karstflow.network import build_road_graph, travel_distance_m


def best_of(fn, repeat: int):
    """Best CPU time (s) of ``repeat`` runs, and the last result. CPU time of this process,
    not wall time: on a shared machine the wall time mostly measures the other jobs
    (everything timed here runs on one thread)."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        times.append(time.process_time() - t0)
    return min(times), out


def nearest_node_peer(graph: nx.Graph, origins: gpd.GeoSeries, targets: gpd.GeoSeries) -> np.ndarray:
    nodes = list(graph.nodes)
    xy = np.array([(graph.nodes[n]["x"], graph.nodes[n]["y"]) for n in nodes])
    tree = cKDTree(xy)
    oc = shapely.get_coordinates(origins.centroid.values)
    tc = shapely.get_coordinates(targets.centroid.values)
    od, oi = tree.query(oc)
    td, ti = tree.query(tc)
    h = graph.copy()
    for k, (node, leg) in enumerate(zip(ti, td, strict=True)):
        h.add_edge(("t", k), nodes[node], length=float(leg))
    h.add_edges_from((("src",), ("t", k), {"length": 0.0}) for k in range(len(ti)))
    dist = nx.single_source_dijkstra_path_length(h, ("src",), weight="length")
    return np.array([od[k] + dist.get(nodes[n], np.inf) for k, n in enumerate(oi)])


def split_lines(roads: gpd.GeoDataFrame, max_m: float) -> gpd.GeoDataFrame:
    """Road lines cut into pieces of at most ``max_m`` (same shapes, more segments)."""
    dense = shapely.segmentize(roads.geometry.values, max_m)
    return gpd.GeoDataFrame(geometry=dense, crs=roads.crs)


def exponent(x, y) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1600)
    ap.add_argument("--parcels-per-km2", type=float, default=40.0)
    ap.add_argument("--parcels", type=int, nargs="+", default=[1250, 2500, 5000, 10000])
    ap.add_argument("--segment-m", type=float, nargs="+", default=[25.0, 12.5, 6.25])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    res = 10.0
    grid = RegionGrid.from_bounds(
        "EPSG:32650", res, (500000, 2904000 - args.size * res, 500000 + args.size * res, 2904000)
    )
    t0 = time.perf_counter()
    bundle = generate("county", grid, 42, parcels_per_km2=args.parcels_per_km2)
    gen_s = time.perf_counter() - t0
    parcels = bundle.vectors["parcels.gpkg"].geometry
    farmland = bundle.vectors["farmland.gpkg"].geometry
    roads = bundle.vectors["roads.gpkg"]
    print(
        f"county demo {args.size} x {args.size} px ({grid.width * grid.height * res**2 / 1e6:.0f} km2): "
        f"{len(parcels)} parcels, {len(farmland)} farmland patches, {len(roads)} road lines ({gen_s:.0f} s to generate)"
    )

    build_s, graph = best_of(lambda: build_road_graph(roads), args.repeat)
    print(f"road graph: {graph.number_of_nodes()} nodes, {graph.number_of_edges()} segments, built in {build_s:.3f} s")

    rows = []
    for n in [n for n in args.parcels if n <= len(parcels)] or [len(parcels)]:
        sub = parcels.iloc[:n]
        t_ours, ours = best_of(functools.partial(travel_distance_m, sub, farmland, graph), args.repeat)
        t_peer, peer = best_of(functools.partial(nearest_node_peer, graph, sub, farmland), args.repeat)
        diff = np.abs(peer - ours["distance_m"].to_numpy())
        rows.append({"parcels": n, "segments": graph.number_of_edges(), "karstflow_s": t_ours, "peer_s": t_peer,
                     "ratio_peer_over_karstflow": t_peer / t_ours, "peer_median_abs_error_m": float(np.median(diff)),
                     "peer_p90_abs_error_m": float(np.quantile(diff, 0.9))})
    seg_rows = []
    for m in args.segment_m:
        dense = split_lines(roads, m)
        def run(dense=dense):
            g = build_road_graph(dense)
            return g, travel_distance_m(parcels, farmland, g)
        t, (g, _) = best_of(run, args.repeat)
        seg_rows.append(
            {"segment_max_m": m, "segments": g.number_of_edges(), "parcels": len(parcels), "build_and_distances_s": t}
        )

    print("\nCPU seconds, best of", args.repeat)
    print("parcels | segments | karstflow s | nearest-node peer s | peer/karstflow | peer error median / p90 (m)")
    for r in rows:
        print(
            f"{r['parcels']:7d} | {r['segments']:8d} | {r['karstflow_s']:11.3f} | {r['peer_s']:19.3f} | "
            f"{r['ratio_peer_over_karstflow']:14.2f} | "
            f"{r['peer_median_abs_error_m']:.1f} / {r['peer_p90_abs_error_m']:.1f}"
        )
    print("\nsegments (max length m) | parcels | graph + distances s")
    for r in seg_rows:
        print(f"{r['segments']:8d} ({r['segment_max_m']:g}) | {r['parcels']:7d} | {r['build_and_distances_s']:.3f}")
    out = {
        "size_px": args.size,
        "parcels_total": len(parcels),
        "farmland_patches": len(farmland),
        "road_lines": len(roads),
        "graph_build_s": build_s,
        "by_parcels": rows,
        "by_segments": seg_rows,
    }
    if len(rows) >= 2:
        out["exponent_parcels"] = exponent([r["parcels"] for r in rows], [r["karstflow_s"] for r in rows])
        print(f"\ntime ~ parcels^{out['exponent_parcels']:.2f}")
    if len(seg_rows) >= 2:
        out["exponent_segments"] = exponent(
            [r["segments"] for r in seg_rows], [r["build_and_distances_s"] for r in seg_rows]
        )
        print(f"time ~ segments^{out['exponent_segments']:.2f}")
    path = Path(__file__).parent / "results" / "network_distances.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"written {path}")


if __name__ == "__main__":
    main()

"""Travel distances along roads: the one place where drivers x4 and x5 are computed.

The abandonment study measures access as the distance travelled along roads from a
parcel to the nearest settlement (x4) and to the nearest other farmland patch (x5).
Both the demo generator (which plants a model over these drivers) and the driver stage
(which recovers it) call :func:`travel_distance_m`, so the two agree exactly.

Conventions
-----------
* **Graph.** :func:`build_road_graph` turns road lines into an undirected
  :class:`networkx.Graph`: nodes are line vertices (``x``, ``y`` attributes), edges are
  the straight pieces between consecutive vertices, weighted by their length (edge
  attribute ``length``, metres of the CRS). Vertices closer than ``snap_tolerance_m``
  are merged (transitively) into one node placed on the first of them in input order,
  and a line end that lies within the tolerance of another line's interior moves onto
  that line and splits it there (T-junction). Lines that cross without a shared vertex are *not* connected (bridges,
  overpasses).
* **Access legs.** A geometry (point, line or polygon) joins the network at the nearest
  point of the nearest road piece, anywhere along the piece and not only at vertices.
  The access leg is the straight distance from the geometry to that point: for a
  polygon the distance from its boundary, 0 when a road touches or crosses it.
* **Travel distance.** origin access leg + shortest path along roads + target access
  leg, minimised over all targets (exact: every target enters the search with its own
  access leg as a starting cost, and an origin and a target on the same road piece may
  travel along it directly).
* **Fallback.** An origin with no road within ``max_access_m``, or on a road component
  that reaches no target, gets the straight (Euclidean) distance to the nearest target,
  with ``on_network=False`` and a logged warning. Targets with no road within
  ``max_access_m`` take part only in that fallback.
* **Excluding self.** ``exclude_self`` gives, per origin, the index label of one target
  to ignore (or None), e.g. a parcel's own patch when origins and targets come from the
  same layer. The demo and the driver stage keep reclaimed parcels and existing farmland
  in separate layers, so x5 (parcels to ``farmland.gpkg``) needs no exclusion; parcel to
  *other parcel* distances would pass ``exclude_self=parcels.index``.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections.abc import Sequence
from typing import Any, cast

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

log = logging.getLogger(__name__)

__all__ = ["build_road_graph", "travel_distance_m"]

_SUPER = ("__targets__",)  # virtual source node of the shortest-path search


# --------------------------------------------------------------------------------------
# graph
# --------------------------------------------------------------------------------------


def _line_coords(geom: Any) -> list[np.ndarray]:
    if geom is None or geom.is_empty:
        return []
    parts = shapely.get_parts(geom) if geom.geom_type.startswith("Multi") else [geom]
    out = []
    for part in parts:
        if part.geom_type not in ("LineString", "LinearRing"):
            raise ValueError(f"road geometries must be lines, found {part.geom_type}")
        xy = np.asarray(part.coords, dtype=np.float64)[:, :2]
        if len(xy) >= 2:
            out.append(xy)
    return out


def build_road_graph(roads: gpd.GeoDataFrame | gpd.GeoSeries, snap_tolerance_m: float = 1.0) -> nx.Graph:
    """Road network graph of line geometries (see the module notes for the conventions).

    Parameters
    ----------
    roads
        Lines or multi-lines in a projected CRS in metres.
    snap_tolerance_m
        Vertices closer than this are one node; a line end closer than this to another
        line's interior splits it (T-junction). 0 joins only identical vertices.

    Returns
    -------
    networkx.Graph
        Integer nodes with ``x``, ``y``; edges with ``length`` (m) and ``road`` (row
        position of the source line). ``graph.graph`` holds ``crs`` and
        ``snap_tolerance_m``.
    """
    t0 = time.perf_counter()
    geoms = roads.geometry if isinstance(roads, gpd.GeoDataFrame) else roads
    tol = float(snap_tolerance_m)
    if not (tol >= 0 and math.isfinite(tol)):
        raise ValueError(f"snap_tolerance_m must be a finite distance >= 0, found {snap_tolerance_m!r}")

    lines: list[np.ndarray] = []
    line_row: list[int] = []
    for row, geom in enumerate(geoms.values):
        for xy in _line_coords(geom):
            lines.append(xy)
            line_row.append(row)
    graph = nx.Graph(crs=getattr(geoms, "crs", None), snap_tolerance_m=tol)
    if not lines:
        return graph

    verts = np.concatenate(lines)
    n_v = len(verts)
    starts = np.cumsum([0] + [len(x) for x in lines[:-1]])

    # --- snap vertices: clusters of vertices within the tolerance (transitively)
    if tol > 0:
        pts = shapely.points(verts)
        tree = shapely.STRtree(pts)
        a, b = tree.query(pts, predicate="dwithin", distance=tol)
    else:
        _, inv = np.unique(verts, axis=0, return_inverse=True)
        inv = np.asarray(inv).ravel()
        order = np.argsort(inv, kind="stable")
        a = order[:-1]
        b = order[1:]
        same = inv[a] == inv[b]
        a, b = a[same], b[same]
    adj = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n_v, n_v))
    _, label = connected_components(adj, directed=False)
    label = np.asarray(label).ravel()
    n_nodes = int(label.max()) + 1
    # a merged node sits where the first of its vertices (in input order) lies
    first = np.full(n_nodes, n_v, dtype=np.int64)
    np.minimum.at(first, label, np.arange(n_v))
    node_xy = verts[first].copy()

    # --- pieces between consecutive vertices (as node pairs), with their source row
    seg_u, seg_v, seg_row = [], [], []
    for k, xy in enumerate(lines):
        lab = label[starts[k] : starts[k] + len(xy)]
        keep = lab[:-1] != lab[1:]
        seg_u.append(lab[:-1][keep])
        seg_v.append(lab[1:][keep])
        seg_row.append(np.full(int(keep.sum()), line_row[k]))
    su = np.concatenate(seg_u)
    sv = np.concatenate(seg_v)
    srow = np.concatenate(seg_row)

    # --- T-junctions: line ends within the tolerance of another piece's interior
    splits: dict[int, list[int]] = {}
    if tol > 0 and len(su):
        ends = np.unique(
            np.concatenate([[label[s], label[s + len(xy) - 1]] for s, xy in zip(starts, lines, strict=True)])
        )
        seg_lines = shapely.linestrings(np.stack([node_xy[su], node_xy[sv]], axis=1))
        tree = shapely.STRtree(seg_lines)
        pi, si = tree.query(shapely.points(node_xy[ends]), predicate="dwithin", distance=tol)
        moved: set[int] = set()
        for p, s in sorted(zip(pi.tolist(), si.tolist(), strict=True)):
            node = int(ends[p])
            if node != su[s] and node != sv[s]:
                splits.setdefault(int(s), []).append(node)
                if node not in moved:  # the line end moves onto the piece it meets
                    moved.add(node)
                    line = seg_lines[s]
                    on = line.interpolate(line.project(shapely.Point(node_xy[node])))
                    node_xy[node] = (on.x, on.y)

    graph.add_nodes_from((i, {"x": float(node_xy[i, 0]), "y": float(node_xy[i, 1])}) for i in range(n_nodes))

    def add(u: int, v: int, row: int) -> None:
        if u == v:
            return
        length = float(math.hypot(node_xy[u, 0] - node_xy[v, 0], node_xy[u, 1] - node_xy[v, 1]))
        old = graph.get_edge_data(u, v)
        if old is None or length < old["length"]:
            graph.add_edge(u, v, length=length, road=int(row))

    for s in range(len(su)):
        u, v, row = int(su[s]), int(sv[s]), int(srow[s])
        if s in splits:
            line = shapely.LineString([node_xy[u], node_xy[v]])
            mids = sorted(set(splits[s]), key=lambda n: line.project(shapely.Point(node_xy[n])))
            chain = [u, *mids, v]
            for p, q in zip(chain[:-1], chain[1:], strict=True):
                add(p, q, row)
        else:
            add(u, v, row)
    # drop nodes left without edges (all vertices of a zero-length line)
    graph.remove_nodes_from([n for n in list(graph.nodes) if graph.degree(n) == 0])
    log.debug(
        "road graph: %d nodes, %d edges, %d components, %d T-junction splits (%.2f s)",
        graph.number_of_nodes(), graph.number_of_edges(), nx.number_connected_components(graph),
        len(splits), time.perf_counter() - t0,
    )
    return graph


# --------------------------------------------------------------------------------------
# travel distances
# --------------------------------------------------------------------------------------


def _edge_table(graph: nx.Graph) -> tuple[list[Any], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nodes, and per edge: u index, v index, LineString u->v, length."""
    nodes = list(graph.nodes)
    index = {n: i for i, n in enumerate(nodes)}
    xy = np.array([(graph.nodes[n]["x"], graph.nodes[n]["y"]) for n in nodes], dtype=np.float64).reshape(-1, 2)
    edges = list(graph.edges(data="length"))
    u = np.array([index[a] for a, _, _ in edges], dtype=np.int64)
    v = np.array([index[b] for _, b, _ in edges], dtype=np.int64)
    length = np.array([w for _, _, w in edges], dtype=np.float64)
    lines = shapely.linestrings(np.stack([xy[u], xy[v]], axis=1)) if len(edges) else np.array([], dtype=object)
    return nodes, u, v, lines, length


def _access(
    geoms: np.ndarray, tree: shapely.STRtree, lines: np.ndarray, length: np.ndarray, max_access_m: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per geometry: nearest edge (-1 if none within reach), access leg, and the stretch
    [lo, hi] of the edge where it joins (positions from the edge's start).

    A geometry apart from the road joins at one point (lo == hi). One that a road crosses
    or runs along joins it all along the shared stretch: travel may leave it anywhere
    there. (A single joining point, as shapely.shortest_line gives, would be the first
    crossing along the outline, so the result would depend on which way the outline of
    a polygon runs: a Shapefile's clockwise rings and a GeoPackage's counter-clockwise
    ones gave different distances.)
    """
    n = len(geoms)
    edge = np.full(n, -1, dtype=np.int64)
    acc = np.full(n, np.inf)
    lo = np.zeros(n)
    hi = np.zeros(n)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if not ok.any() or len(lines) == 0:
        return edge, acc, lo, hi
    sel = np.flatnonzero(ok)
    (gi, ei), dist = tree.query_nearest(geoms[sel], max_distance=max_access_m, return_distance=True, all_matches=False)
    gi = sel[gi]
    edge[gi] = ei
    acc[gi] = dist
    links = shapely.shortest_line(geoms[gi], lines[ei])
    # clip float noise so that both parts of the piece have a length >= 0
    at = np.clip(shapely.line_locate_point(lines[ei], shapely.get_point(links, 1)), 0.0, length[ei])
    lo[gi] = hi[gi] = at
    touch = np.flatnonzero(dist == 0)
    if len(touch):
        # at full float precision: a precision grid the layer carries in memory
        # (shapely.set_precision) would snap the crossing and is lost once written to a file
        plain = shapely.set_precision(geoms[gi[touch]], 0.0)
        shared = shapely.intersection(plain, shapely.set_precision(lines[ei[touch]], 0.0))
        points, row = shapely.get_coordinates(shared, return_index=True)
        if len(row):
            where = shapely.line_locate_point(lines[ei[touch[row]]], shapely.points(points))
            where = np.clip(where, 0.0, length[ei[touch[row]]])
            first = pd.Series(where).groupby(row).min()
            last = pd.Series(where).groupby(row).max()
            lo[gi[touch[first.index]]] = first.to_numpy()
            hi[gi[touch[last.index]]] = last.to_numpy()
    return edge, acc, lo, hi


def _two_nearest_sources(
    n_nodes: int, adj: list[list[tuple[int, float]]], seeds: list[tuple[float, int, int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dijkstra keeping, per node, the two nearest *distinct* sources.

    ``seeds`` are (start cost, node, source id). Returns best and second-best distances
    and their source ids (inf / -1 when missing).
    """
    d1 = np.full(n_nodes, np.inf)
    d2 = np.full(n_nodes, np.inf)
    s1 = np.full(n_nodes, -1, dtype=np.int64)
    s2 = np.full(n_nodes, -1, dtype=np.int64)
    heap = list(seeds)
    heapq.heapify(heap)
    while heap:
        d, node, src = heapq.heappop(heap)
        if s1[node] == -1:
            d1[node], s1[node] = d, src
        elif s2[node] == -1 and s1[node] != src:
            d2[node], s2[node] = d, src
        else:
            continue
        for nb, w in adj[node]:
            if s2[nb] == -1 and s1[nb] != src:
                heapq.heappush(heap, (d + w, nb, src))
    return d1, s1, d2, s2


def _geom_array(obj: Any, what: str) -> tuple[np.ndarray, pd.Index]:
    if isinstance(obj, gpd.GeoDataFrame):
        obj = obj.geometry
    if isinstance(obj, gpd.GeoSeries):
        return np.asarray(obj.values, dtype=object), obj.index
    arr = np.asarray(obj, dtype=object)
    if arr.ndim != 1:
        raise ValueError(f"{what}: expected a GeoSeries or 1-D array of geometries")
    return arr, pd.RangeIndex(len(arr))


def _euclidean_nearest(origins: np.ndarray, targets: np.ndarray, excl: np.ndarray) -> np.ndarray:
    """Straight distance from each origin to the nearest target other than ``excl``."""
    out = np.full(len(origins), np.nan)
    valid_t = ~(shapely.is_missing(targets) | shapely.is_empty(targets))
    if len(origins) == 0 or not valid_t.any():
        return out
    t_idx = np.flatnonzero(valid_t)
    tree = shapely.STRtree(targets[t_idx])
    valid_o = ~(shapely.is_missing(origins) | shapely.is_empty(origins))
    sel = np.flatnonzero(valid_o)
    if len(sel) == 0:
        return out
    (oi, ti), dist = tree.query_nearest(origins[sel], return_distance=True, all_matches=True)
    oi = sel[oi]
    ti = t_idx[ti]
    bad = set(oi[ti == excl[oi]].tolist())
    df = pd.DataFrame({"o": oi, "d": dist})
    best = df.groupby("o")["d"].min()
    out[best.index.to_numpy()] = best.to_numpy()
    for o in bad:  # the nearest (or a tied nearest) is the excluded target: brute force
        d = shapely.distance(origins[o], targets[t_idx])
        d[t_idx == excl[o]] = np.inf
        out[o] = float(d.min()) if np.isfinite(d.min()) else np.nan
    return out


def travel_distance_m(
    origins: gpd.GeoSeries | gpd.GeoDataFrame,
    targets: gpd.GeoSeries | gpd.GeoDataFrame,
    graph: nx.Graph,
    *,
    max_access_m: float | None = None,
    exclude_self: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """Road travel distance from every origin to its nearest target (m).

    Parameters
    ----------
    origins, targets
        Geometries in the graph's CRS (points, lines or polygons).
    graph
        From :func:`build_road_graph`.
    max_access_m
        Longest access leg between a geometry and the road network; None: no limit.
    exclude_self
        Per origin, the index label (in ``targets.index``) of a target to ignore, or
        None; None for all: ignore nothing.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``origins``: ``distance_m`` (access + road + target access, or the
        straight-line fallback; NaN only without any target), ``on_network`` (True when
        the distance was travelled along roads) and ``access_m`` (the origin's access
        leg; NaN when it has none within reach).
    """
    t0 = time.perf_counter()
    o_geoms, o_index = _geom_array(origins, "origins")
    t_geoms, t_index = _geom_array(targets, "targets")
    n_o, n_t = len(o_geoms), len(t_geoms)
    if max_access_m is not None and not (max_access_m >= 0):
        raise ValueError(f"max_access_m must be >= 0 or None, found {max_access_m!r}")

    excl = np.full(n_o, -1, dtype=np.int64)
    if exclude_self is not None:
        labels = list(exclude_self)
        if len(labels) != n_o:
            raise ValueError(f"exclude_self has {len(labels)} entries for {n_o} origins")
        for i, lab in enumerate(labels):
            if lab is None or (isinstance(lab, float) and math.isnan(lab)):
                continue
            pos = t_index.get_indexer(pd.Index([lab]))[0]
            if pos < 0:
                raise ValueError(f"exclude_self[{i}] = {lab!r} is not an index label of targets")
            excl[i] = pos

    out = pd.DataFrame(
        {"distance_m": np.full(n_o, np.nan), "on_network": np.zeros(n_o, dtype=bool), "access_m": np.full(n_o, np.nan)},
        index=o_index,
    )
    if n_o == 0:
        return out
    if n_t == 0:
        log.warning("travel distance: no targets; all %d distances are NaN", n_o)
        return out

    nodes, eu, ev, lines, length = _edge_table(graph)
    dist = np.full(n_o, np.inf)
    if len(lines):
        tree = shapely.STRtree(lines)
        o_edge, o_acc, o_lo, o_hi = _access(o_geoms, tree, lines, length, max_access_m)
        t_edge, t_acc, t_lo, t_hi = _access(t_geoms, tree, lines, length, max_access_m)
        out["access_m"] = np.where(o_edge >= 0, o_acc, np.nan)
        t_ok = np.flatnonzero(t_edge >= 0)

        # start costs of every reachable target at both ends of its road piece
        seeds: list[tuple[float, int, int]] = []
        for t in t_ok:
            e = t_edge[t]
            seeds.append((float(t_acc[t] + t_lo[t]), int(eu[e]), int(t)))
            seeds.append((float(t_acc[t] + length[e] - t_hi[t]), int(ev[e]), int(t)))

        n_nodes = len(nodes)
        if (excl >= 0).any():
            adj: list[list[tuple[int, float]]] = [[] for _ in range(n_nodes)]
            for e in range(len(eu)):
                adj[eu[e]].append((int(ev[e]), float(length[e])))
                adj[ev[e]].append((int(eu[e]), float(length[e])))
            d1, s1, d2, s2 = _two_nearest_sources(n_nodes, adj, seeds)
        else:
            # one search from a virtual node joined to every target's access point
            h = graph.copy()
            for cost, node, _ in seeds:
                key = nodes[node]
                old = h.get_edge_data(_SUPER, key)
                if old is None or cost < old["length"]:
                    h.add_edge(_SUPER, key, length=cost)
            d1 = np.full(n_nodes, np.inf)
            if seeds:
                reach = nx.single_source_dijkstra_path_length(h, _SUPER, weight="length")
                d1 = np.array([reach.get(n, np.inf) for n in nodes], dtype=np.float64)
            s1 = np.full(n_nodes, -2, dtype=np.int64)  # never equal to an exclusion
            d2 = np.full(n_nodes, np.inf)

        def node_cost(node: np.ndarray, o: np.ndarray) -> np.ndarray:
            return np.where(s1[node] != excl[o], d1[node], d2[node])

        o_ok = np.flatnonzero(o_edge >= 0)
        e = o_edge[o_ok]
        via_u = o_acc[o_ok] + o_lo[o_ok] + node_cost(eu[e], o_ok)
        via_v = o_acc[o_ok] + (length[e] - o_hi[o_ok]) + node_cost(ev[e], o_ok)
        dist[o_ok] = np.minimum(via_u, via_v)

        # origin and target on the same road piece: travel along it directly
        on_edge: dict[int, list[int]] = {}
        for t in t_ok:
            on_edge.setdefault(int(t_edge[t]), []).append(int(t))
        for o in o_ok:
            ts = on_edge.get(int(o_edge[o]))
            if not ts:
                continue
            ts_arr = np.array([t for t in ts if t != excl[o]], dtype=np.int64)
            if len(ts_arr):
                # the gap between the two stretches (0 where they overlap)
                gap = np.maximum(0.0, np.maximum(o_lo[o] - t_hi[ts_arr], t_lo[ts_arr] - o_hi[o]))
                direct = o_acc[o] + gap + t_acc[ts_arr]
                dist[o] = min(dist[o], float(direct.min()))

    on_net = np.isfinite(dist)
    out["distance_m"] = np.where(on_net, dist, np.nan)
    out["on_network"] = on_net
    fb = np.flatnonzero(~on_net)
    if len(fb):
        out.iloc[fb, cast(int, out.columns.get_loc("distance_m"))] = _euclidean_nearest(o_geoms[fb], t_geoms, excl[fb])
        log.warning(
            "travel distance: %d of %d origins cannot reach a target along roads (no road within %s m "
            "or a road component without targets); using the straight-line distance for them",
            len(fb), n_o, "inf" if max_access_m is None else f"{max_access_m:g}",
        )
    log.debug("travel distance: %d origins, %d targets in %.2f s", n_o, n_t, time.perf_counter() - t0)
    return out

"""karstflow.network on a hand-built road network with hand-computed distances.

    T1 (200,100)                       component 2: (1000,1000)-(1100,1000)
      |  road B (starts at (200.5,0.3): snapped onto A's end)
      |
      |        O1 (150,80)
      |         |  road C (ends at (150,0.6): T-junction onto A)
  (0,0)----------+-----------(200,0)   road A, vertex at (100,0)
    T2 (0,-10)    (150,0)
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, Polygon, box

from karstflow.network import build_road_graph, travel_distance_m

CRS = "EPSG:32650"


@pytest.fixture()
def roads() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"road_class": ["county", "village", "track", "track"]},
        geometry=[
            LineString([(0, 0), (100, 0), (200, 0)]),  # A
            LineString([(200.5, 0.3), (200, 100)]),  # B: 0.58 m off A's end
            LineString([(150, 80), (150, 0.6)]),  # C: 0.6 m off A's interior
            LineString([(1000, 1000), (1100, 1000)]),  # a second component
        ],
        crs=CRS,
    )


def gs(geoms) -> gpd.GeoSeries:
    return gpd.GeoSeries(geoms, crs=CRS)


def test_graph_snaps_vertices_and_t_junctions(roads):
    g = build_road_graph(roads, snap_tolerance_m=1.0)
    xy = {(round(d["x"], 6), round(d["y"], 6)) for _, d in g.nodes(data=True)}
    # B's start joined A's end (kept at A's vertex), C's end moved onto A at (150, 0)
    assert (200.0, 0.0) in xy and (200.5, 0.3) not in xy
    assert (150.0, 0.0) in xy and (150.0, 0.6) not in xy
    assert g.number_of_nodes() == 8  # (0,0) (100,0) (150,0) (200,0) (200,100) (150,80) + 2 far
    assert sorted(round(w, 6) for *_, w in g.edges(data="length")) == [50, 50, 80, 100, 100, 100]
    import networkx as nx

    assert nx.number_connected_components(g) == 2
    assert sum(w for *_, w in g.edges(data="length")) == pytest.approx(100 + 100 + 80 + 200)


def test_graph_without_snapping_leaves_gaps(roads):
    import networkx as nx

    g = build_road_graph(roads, snap_tolerance_m=0.1)
    assert nx.number_connected_components(g) == 4  # A, B, C and the far component


def test_travel_distances_hand_computed(roads):
    g = build_road_graph(roads, snap_tolerance_m=1.0)
    targets = gs([Point(200, 100), Point(0, -10)])  # T1 end of B; T2 10 m below A's start
    origins = gs(
        [
            Point(150, 80),  # O1: C 80 + A 50 + B 100 to T1 = 230 (T2: 80 + 150 + 10 = 240)
            Point(60, 5),  # O2: access 5 at (60, 0), 60 to (0,0), access 10 to T2 = 75
            Polygon([(120, 10), (110, 20), (125, 20)]),  # O3: vertex (120,10) 10 m off A -> T2: 10 + 120 + 10
            Point(1050, 1010),  # O4: on the far component without targets -> straight line to T1
        ]
    )
    d = travel_distance_m(origins, targets, g)
    assert list(d.columns[:2]) == ["distance_m", "on_network"]
    np.testing.assert_allclose(d["distance_m"].to_numpy()[:3], [230.0, 75.0, 140.0], atol=1e-9)
    assert d["distance_m"].iloc[3] == pytest.approx(math.hypot(850, 910))
    assert d["on_network"].tolist() == [True, True, True, False]
    np.testing.assert_allclose(d["access_m"].to_numpy(), [0, 5, 10, 10], atol=1e-9)


def test_max_access_fallback_and_logging(roads, caplog):
    g = build_road_graph(roads)
    targets = gs([Point(200, 100), Point(0, -10)])
    origins = gs([Point(500, 500), Point(60, 5)])
    with caplog.at_level("WARNING", logger="karstflow.network"):
        d = travel_distance_m(origins, targets, g, max_access_m=100)
    assert d["distance_m"].iloc[0] == pytest.approx(500.0)  # straight to T1
    assert not d["on_network"].iloc[0] and d["on_network"].iloc[1]
    assert np.isnan(d["access_m"].iloc[0])
    assert "straight-line" in caplog.text


def test_far_target_only_in_fallback(roads):
    g = build_road_graph(roads)
    # T_far is 300 m off every road: with max_access 100 it cannot be reached by road
    targets = gs([Point(0, -10), Point(100, 300)])
    d = travel_distance_m(gs([Point(100, 80)]), targets, g, max_access_m=100)
    # (100,80) -> nearest road point: C at (150,80)? no: A at (100,0) is 80, C is 50 away
    assert d["on_network"].iloc[0]
    assert d["distance_m"].iloc[0] == pytest.approx(50 + 80 + 150 + 10)


def test_same_piece_direct_travel(roads):
    g = build_road_graph(roads)
    targets = gs([Point(0, -10), Point(40, -5)])  # T3 joins A at (40, 0)
    d = travel_distance_m(gs([Point(20, 3)]), targets, g)
    assert d["distance_m"].iloc[0] == pytest.approx(3 + 20 + 5)  # along the piece, not via (0,0)


def test_exclude_self(roads):
    g = build_road_graph(roads)
    pts = gs([Point(200, 100), Point(0, -10), Point(40, -5)]).set_axis(["a", "b", "c"])
    plain = travel_distance_m(pts, pts, g)
    np.testing.assert_allclose(plain["distance_m"], [0.0, 20.0, 10.0])  # itself, via its access leg twice
    other = travel_distance_m(pts, pts, g, exclude_self=pts.index)
    # a -> c: B 100 + A 160 + 5; b -> c: 10 + 40 + 5; c -> b: the same
    np.testing.assert_allclose(other["distance_m"], [265.0, 55.0, 55.0])
    assert other["on_network"].all()
    # exclusions given as None everywhere equal no exclusion
    none = travel_distance_m(pts, pts, g, exclude_self=[None, None, None])
    pd.testing.assert_frame_equal(none, plain)
    # fallback honours the exclusion too
    far = gs([Point(1050, 1010), Point(1060, 1010)]).set_axis(["p", "q"])
    d = travel_distance_m(far, far, g, max_access_m=5, exclude_self=["p", "q"])
    assert d["distance_m"].tolist() == pytest.approx([10.0, 10.0])
    assert not d["on_network"].any()
    with pytest.raises(ValueError, match="not an index label"):
        travel_distance_m(pts, pts, g, exclude_self=["zz", None, None])


def test_two_label_search_matches_networkx(roads):
    """The exclusion search (own Dijkstra) agrees with the networkx search when it
    excludes a target nobody would reach first."""
    g = build_road_graph(roads)
    rng = np.random.default_rng(0)
    origins = gs([Point(x, y) for x, y in rng.uniform(-20, 220, size=(40, 2))])
    targets = gs([Point(200, 100), Point(0, -10), Point(40, -5), Point(5000, 5000)]).set_axis([0, 1, 2, 3])
    a = travel_distance_m(origins, targets, g)
    b = travel_distance_m(origins, targets, g, exclude_self=[3] * len(origins))
    pd.testing.assert_frame_equal(a, b)


def test_no_targets_and_no_roads(roads, caplog):
    g = build_road_graph(roads)
    d = travel_distance_m(gs([Point(0, 0)]), gs([]), g)
    assert d["distance_m"].isna().all() and not d["on_network"].any()
    empty = build_road_graph(roads.iloc[:0])
    d = travel_distance_m(gs([Point(0, 0)]), gs([Point(3, 4)]), empty)
    assert d["distance_m"].iloc[0] == pytest.approx(5.0) and not d["on_network"].iloc[0]


def test_scales_to_ten_thousand_parcels():
    import time

    rng = np.random.default_rng(1)
    # a 40 x 40 lattice of 250 m pieces (~3,100 segments) over 10 km
    segs = []
    for i in range(41):
        for j in range(40):
            segs.append(LineString([(i * 250, j * 250), (i * 250, (j + 1) * 250)]))
            segs.append(LineString([(j * 250, i * 250), ((j + 1) * 250, i * 250)]))
    roads = gpd.GeoDataFrame(geometry=segs, crs=CRS)
    xy = rng.uniform(0, 10000, size=(10000, 2))
    parcels = gpd.GeoSeries([box(x, y, x + 40, y + 30) for x, y in xy], crs=CRS)
    targets = gpd.GeoSeries([Point(p) for p in rng.uniform(0, 10000, size=(300, 2))], crs=CRS)
    t0 = time.perf_counter()
    g = build_road_graph(roads)
    d = travel_distance_m(parcels, targets, g)
    assert time.perf_counter() - t0 < 20
    assert d["on_network"].all() and (d["distance_m"] > 0).all()
    # travel is never shorter than the straight line
    straight = np.array([targets.distance(p).min() for p in parcels.iloc[:200]])
    assert (d["distance_m"].to_numpy()[:200] >= straight - 1e-6).all()


def test_a_polygon_crossed_by_a_road_joins_it_along_the_crossing_whatever_its_ring_order():
    """A 10 m square straddling a road leaves it anywhere between x=0 and x=10: to a
    target on the road at x=50 that is 40 m, and to one at x=-30, 30 m; reversing the
    outline (clockwise rings, as Shapefiles store them) changes nothing."""
    road = gpd.GeoDataFrame(geometry=[LineString([(-100, 5), (100, 5)])])
    graph = build_road_graph(road)
    square = Polygon([(0, 0), (10, 0), (10, 10), (0, 10)])
    reversed_square = Polygon(list(square.exterior.coords)[::-1])
    assert square.exterior.is_ccw and not reversed_square.exterior.is_ccw
    targets = [Point(50, 5), Point(-30, 5)]
    for parcel in (square, reversed_square):
        for target, expected in zip(targets, (40.0, 30.0), strict=True):
            d = travel_distance_m([parcel], [target], graph)["distance_m"].iloc[0]
            assert d == pytest.approx(expected, abs=1e-9)
    # a target polygon crossed by the same road: the gap between the two stretches
    far = box(30, 0, 45, 10)
    for parcel in (square, reversed_square):
        d = travel_distance_m([parcel], [Polygon(list(far.exterior.coords)[::-1])], graph)["distance_m"].iloc[0]
        assert d == pytest.approx(20.0, abs=1e-9)

"""Drivers x1..x10 (karstflow.drivers): the demo's planted values, hand-built layouts, bad input."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon, box

from karstflow.drivers import DRIVER_COLUMNS, DriverInputError, compute_drivers, drivers_summary
from karstflow.grid import RegionGrid
from karstflow.network import build_road_graph, travel_distance_m

CRS = "EPSG:32650"


# --------------------------------------------------------------------------------------
# the county demo: the driver stage's function gives back the planted drivers exactly
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def county():
    from karstflow.demo import generate
    from karstflow.terrain import aspect_class, slope_aspect

    grid = RegionGrid.from_bounds(CRS, 10, (500000, 2900000, 504000, 2904000))
    bundle = generate("county", grid, 42)
    dem = bundle.rasters["dem.tif"][0]
    slope, aspect = slope_aspect(dem)
    classes = aspect_class(aspect, slope, bundle.planted["options"]["flat_max_deg"])
    return bundle, dem, slope.compute(), classes.compute()


def test_demo_drivers_equal_the_planted_ones(county):
    bundle, dem, slope, classes = county
    v = bundle.vectors
    got = compute_drivers(
        v["parcels.gpkg"],
        dem=dem,
        slope_deg=slope,
        aspect_class=classes,
        settlements=v["settlements.gpkg"],
        roads=v["roads.gpkg"],
        farmland=v["farmland.gpkg"],
        villages=v["villages.gpkg"],
        grades=v["quality_grades.gpkg"],
    )
    truth = bundle.tables["parcels_truth.csv"]
    assert list(got.columns[:11]) == ["parcel_id", *DRIVER_COLUMNS]
    np.testing.assert_array_equal(got["parcel_id"], truth["parcel_id"])
    for col in DRIVER_COLUMNS:
        np.testing.assert_allclose(got[col], truth[col], rtol=1e-12, atol=0, err_msg=col)
    assert got["x4_off_network"].sum() == 0 and got["x5_off_network"].sum() == 0
    np.testing.assert_array_equal(got["village_id"], v["parcels.gpkg"]["village_id"])
    s = drivers_summary(got.assign(abandoned=truth["abandoned_true"]))
    assert s["parcels"] == len(truth) and s["abandoned"] == int(truth["abandoned_true"].sum())
    assert s["x1_elevation_m_mean"] == pytest.approx(truth["x1_elevation_m"].mean())
    assert sum(s[f"aspect_class_{k}_parcels"] for k in range(5)) == len(truth)


# --------------------------------------------------------------------------------------
# a hand-built layout: 20 x 20 px at 10 m, origin (0, 200)
# --------------------------------------------------------------------------------------

GRID = RegionGrid.from_bounds(CRS, 10, (0, 0, 200, 200))


def _rasters():
    col = np.tile(np.arange(20, dtype=np.float32), (20, 1))
    dem = GRID.data_array(100.0 + col, name="dem")  # 100 + column index
    slope = GRID.data_array(np.where(col < 10, 5.0, 15.0).astype(np.float32), name="slope")
    aspect = GRID.data_array(np.where(col < 10, 1, 4).astype(np.float32), name="aspect_class")
    return dem, slope, aspect


def _layers(parcels: list, **over):
    gdf = lambda data, geoms: gpd.GeoDataFrame(data, geometry=geoms, crs=CRS)  # noqa: E731
    layers = {
        "polygons": gdf({"parcel_id": np.arange(1, len(parcels) + 1)}, parcels),
        "settlements": gdf({"settlement_id": [1]}, [Point(190, 90)]),
        "roads": gdf({"road_id": [1]}, [LineString([(0, 90), (200, 90)])]),
        # patch 1: a diamond whose top vertex (10, 80) is 10 m below the road; patch 2 is
        # half of parcel B
        "farmland": gdf(
            {"farmland_id": [1, 2]}, [Polygon([(10, 80), (20, 70), (10, 60), (0, 70)]), box(120, 100, 150, 120)]
        ),
        # densities 500 and 300 people/km2
        "villages": gdf(
            {"village_id": [11, 12], "population": [500, 300], "area_km2": [1.0, 1.0]},
            [box(0, 0, 70, 200), box(70, 0, 200, 200)],
        ),
        "grades": gdf(
            {"natural_grade": [3, 9], "utilization_grade": [4, 10], "economic_grade": [5, 11]},
            [box(0, 0, 100, 200), box(100, 0, 200, 200)],
        ),
    }
    layers.update(over)
    return layers


def _drivers(parcels: list, **kw):
    dem, slope, aspect = _rasters()
    lay = _layers(
        parcels, **{k: kw.pop(k) for k in list(kw) if k in ("villages", "grades", "farmland", "settlements", "roads")}
    )
    return compute_drivers(lay.pop("polygons"), dem=dem, slope_deg=slope, aspect_class=aspect, **lay, **kw)


A = box(20, 100, 60, 140)  # pixel centres x 25..55 (cols 2..5), y 105..135: 16 pixels
B = box(120, 100, 180, 120)  # cols 12..17, 2 rows; farmland patch 2 covers half of it
C = box(101, 51, 104, 54)  # holds no pixel centre: the pixel under a point on its surface (col 10)
D = Polygon([(80, 100), (95, 115), (80, 130), (65, 115)])  # diamond: unique nearest road point (80, 90)
E = box(90, 150, 130, 170)  # a quarter in grade polygon 1, three quarters in 2; village 12


def test_terrain_area_village_and_grades_by_hand():
    d = _drivers([A, B, C, D, E]).set_index("parcel_id")
    assert d.loc[1, "x1_elevation_m"] == pytest.approx(100 + (2 + 3 + 4 + 5) / 4)
    assert d.loc[2, "x1_elevation_m"] == pytest.approx(100 + 14.5)
    assert d.loc[3, "x1_elevation_m"] == pytest.approx(110.0)
    assert d.loc[1, "x2_slope_deg"] == 5.0 and d.loc[2, "x2_slope_deg"] == 15.0
    assert d.loc[1, "x3_aspect_class"] == 1 and d.loc[2, "x3_aspect_class"] == 4
    # E: cols 9..12 -> one column of class 1, three of class 4
    assert d.loc[5, "x3_aspect_class"] == 4
    np.testing.assert_allclose(d["x10_area_ha"], [0.16, 0.12, 0.0009, 0.045, 0.08])
    assert list(d["x6_population_density_per_km2"]) == [500, 300, 300, 300, 300]
    assert list(d["village_id"]) == [11, 12, 12, 12, 12]
    assert d.loc[5, "x7_natural_grade"] == pytest.approx(0.25 * 3 + 0.75 * 9)
    assert d.loc[5, "x8_utilization_grade"] == pytest.approx(0.25 * 4 + 0.75 * 10)
    assert d.loc[5, "x9_economic_grade"] == pytest.approx(0.25 * 5 + 0.75 * 11)
    assert d.loc[1, "x7_natural_grade"] == 3 and d.loc[2, "x9_economic_grade"] == 11


def test_village_majority_decides_density():
    straddling = box(60, 20, 90, 40)  # 10 m in village 11, 20 m in village 12
    d = _drivers([straddling])
    assert d.loc[0, "x6_population_density_per_km2"] == 300 and d.loc[0, "village_id"] == 12


def test_density_from_population_and_polygon_area_without_area_column():
    villages = _layers([])["villages"].drop(columns=["area_km2"])
    d = _drivers([A], villages=villages)
    assert d.loc[0, "x6_population_density_per_km2"] == pytest.approx(500 / (70 * 200 / 1e6))


def test_travel_distances_by_hand_and_own_patch_skipped():
    d = _drivers([D, B])
    # D: access 10 m to (80, 90), then 110 m along the road to the settlement on it
    assert d.loc[0, "x4_settlement_distance_m"] == pytest.approx(120.0)
    # D to farmland patch 1: 10 m access, 70 m of road to (10, 90), 10 m down to its vertex
    assert d.loc[0, "x5_farmland_distance_m"] == pytest.approx(90.0)
    # patch 2 covers half of B, so it is B's own patch: B's x5 is its distance to patch 1
    lay = _layers([D, B])
    graph = build_road_graph(lay["roads"])
    b = lay["polygons"].geometry.iloc[[1]]
    to_first = float(travel_distance_m(b, lay["farmland"].geometry.iloc[[0]], graph)["distance_m"].iloc[0])
    to_any = float(travel_distance_m(b, lay["farmland"].geometry, graph)["distance_m"].iloc[0])
    assert d.loc[1, "x5_farmland_distance_m"] == pytest.approx(to_first)
    # with a larger share required, patch 2 is another patch and the nearer one
    d2 = _drivers([D, B], own_patch_min_share=0.6)
    assert d2.loc[1, "x5_farmland_distance_m"] == pytest.approx(to_any)
    assert to_any < to_first


def test_off_network_fallback_is_flagged_and_logged(caplog):
    with caplog.at_level(logging.WARNING):
        d = _drivers([D, E], max_access_m=15.0)  # E is 60 m from the road
    assert list(d["x4_off_network"]) == [0, 1]
    # E's straight distance to the settlement: from its corner (130, 150) to (190, 90)
    assert d.loc[1, "x4_settlement_distance_m"] == pytest.approx(float(np.hypot(60, 60)))
    assert "x4_off_network" in caplog.text


def test_prebuilt_graph_gives_the_same_drivers():
    lay = _layers([A, D])
    a = _drivers([A, D])
    b = _drivers([A, D], roads=build_road_graph(lay["roads"]))
    pd.testing.assert_frame_equal(a, b)


# --------------------------------------------------------------------------------------
# bad input: clear errors naming the layer, what was expected and what was found
# --------------------------------------------------------------------------------------


def test_parcel_without_a_village_is_an_error():
    only_first = _layers([])["villages"].iloc[[0]]
    with pytest.raises(
        DriverInputError, match=r"villages: 1 polygon\(s\) lie outside every village polygon.*parcel_id 2"
    ):
        _drivers([A, B], villages=only_first)


def test_parcel_without_grades_is_an_error():
    only_first = _layers([])["grades"].iloc[[0]]
    with pytest.raises(DriverInputError, match=r"grades: 1 polygon\(s\) overlap no quality-grade polygon.*parcel_id 2"):
        _drivers([A, B], grades=only_first)


def test_parcel_outside_the_rasters_is_an_error():
    with pytest.raises(DriverInputError, match=r"outside the terrain rasters.*parcel_id 2"):
        _drivers([A, box(300, 300, 301, 301)])


def test_missing_columns_crs_and_ids():
    with pytest.raises(DriverInputError, match=r"villages: expected column\(s\) \['population'\]"):
        _drivers([A], villages=_layers([])["villages"].drop(columns=["population"]))
    with pytest.raises(DriverInputError, match="settlements: expected the polygons' CRS"):
        _drivers([A], settlements=_layers([])["settlements"].to_crs("EPSG:4326"))
    dem, slope, aspect = _rasters()
    lay = _layers([A, B])
    polys = lay.pop("polygons")
    polys["parcel_id"] = [7, 7]
    with pytest.raises(DriverInputError, match="parcel_id must be unique, found duplicates 7"):
        compute_drivers(polys, dem=dem, slope_deg=slope, aspect_class=aspect, **lay)
    with pytest.raises(DriverInputError, match="expected an identifier column 'forest_id'"):
        compute_drivers(polys, dem=dem, slope_deg=slope, aspect_class=aspect, id_column="forest_id", **lay)
    polys["parcel_id"] = [7, 8]
    with pytest.raises(DriverInputError, match="expected a projected CRS in metres, found EPSG:4326"):
        compute_drivers(
            polys.set_crs("EPSG:4326", allow_override=True), dem=dem, slope_deg=slope, aspect_class=aspect, **lay
        )


def test_other_id_column_for_forest_polygons():
    dem, slope, aspect = _rasters()
    lay = _layers([])
    forest = gpd.GeoDataFrame({"forest_id": [5, 9]}, geometry=[A, shapely.box(20, 20, 50, 50)], crs=CRS)
    lay.pop("polygons")
    d = compute_drivers(forest, dem=dem, slope_deg=slope, aspect_class=aspect, id_column="forest_id", **lay)
    assert list(d["forest_id"]) == [5, 9] and d["x1_elevation_m"].notna().all()

"""Grain production capacity: the study's formula, area weighting and grade transfer, by hand."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from karstflow.capacity import (
    CapacityInputError,
    capacity_by_group,
    capacity_summary,
    grain_capacity_kg,
    nearest_grade,
    polygon_grades,
    weighted_grade,
)

CRS = "EPSG:32650"


def gdf(geoms, **cols):
    return gpd.GeoDataFrame(cols, geometry=list(geoms), crs=CRS)


# --------------------------------------------------------------------------------------
# the formula
# --------------------------------------------------------------------------------------


def test_capacity_of_one_parcel_by_hand():
    # (16 - 6) grade steps x 2 ha x 15 mu/ha x 100 kg/mu/step = 30,000 kg
    assert grain_capacity_kg(6, 2.0) == 30_000.0
    # the best land yields 15 steps (1,500 kg/mu), the worst one step (100 kg/mu)
    assert grain_capacity_kg(1, 1 / 15) == pytest.approx(1_500.0)
    assert grain_capacity_kg(15, 1 / 15) == pytest.approx(100.0)


def test_capacity_is_vectorised_and_broadcasts():
    y = grain_capacity_kg(np.array([1, 8.5, 15]), np.array([1.0, 0.4, 2.0]))
    # (15 * 1 , 7.5 * 0.4, 1 * 2) * 1500
    np.testing.assert_allclose(y, [22_500.0, 4_500.0, 3_000.0])
    np.testing.assert_allclose(grain_capacity_kg([[2], [10]], [1.0, 3.0]), [[21_000.0, 63_000.0], [9_000.0, 27_000.0]])


def test_constants_are_parameters():
    # D = 20, 16 mu/ha, 50 kg: (20 - 5) * 1 ha * 16 * 50
    assert grain_capacity_kg(5, 1.0, D=20, mu_per_ha=16, kg_per_mu_per_grade=50) == 12_000.0


def test_weighted_grade_by_hand():
    assert weighted_grade([4, 10], [1.0, 3.0]) == pytest.approx(8.5)  # (4 + 30) / 4
    assert weighted_grade([7, 9, 12], [0.5, 1.2, 0.3]) == pytest.approx(8.95)  # 17.9 / 2.0


def test_group_capacity_from_weighted_grade_equals_the_sum_over_parcels():
    # Y is linear in K: (16 - 8.95) * 2.0 ha * 1500 = 21,150 kg, parcel by parcel or at once
    grades, areas = np.array([7, 9, 12]), np.array([0.5, 1.2, 0.3])
    at_once = grain_capacity_kg(weighted_grade(grades, areas), areas.sum())
    assert at_once == pytest.approx(21_150.0)
    assert grain_capacity_kg(grades, areas).sum() == pytest.approx(at_once)


@pytest.mark.parametrize("grade", [0, 16, -3, np.nan, 15.5])
def test_grades_outside_1_to_15_are_refused(grade):
    with pytest.raises(CapacityInputError, match=r"grades in 1\.\.15"):
        grain_capacity_kg([5, grade], [1.0, 1.0])
    with pytest.raises(CapacityInputError, match=r"grades in 1\.\.15"):
        weighted_grade([5, grade], [1.0, 1.0])


def test_an_area_weighted_grade_of_15_with_rounding_error_is_a_grade():
    # what an area-weighted mean of grade-15 parcels can come to in floating point
    assert grain_capacity_kg([15.000000000000002], [1.0])[0] == pytest.approx(grain_capacity_kg([15], [1.0])[0])


def test_negative_areas_are_refused():
    with pytest.raises(CapacityInputError, match="expected areas >= 0 ha, found 1 negative"):
        grain_capacity_kg([5, 6], [1.0, -0.2])
    with pytest.raises(CapacityInputError, match="negative"):
        weighted_grade([5, 6], [1.0, -0.2])


def test_bad_constants_and_shapes_are_refused():
    with pytest.raises(CapacityInputError, match="D: expected a constant above the worst grade 15"):
        grain_capacity_kg(5, 1.0, D=15)
    with pytest.raises(CapacityInputError, match="3 grades for 2 areas"):
        weighted_grade([1, 2, 3], [1.0, 1.0])
    with pytest.raises(CapacityInputError, match="sum to 0 ha"):
        weighted_grade([1, 2], [0.0, 0.0])


# --------------------------------------------------------------------------------------
# grades of polygons
# --------------------------------------------------------------------------------------


def test_polygon_grade_is_area_weighted():
    grades = gdf([shapely.box(0, 0, 100, 100), shapely.box(100, 0, 200, 100)], utilization_grade=[4, 8])
    polys = gdf([shapely.box(75, 0, 175, 100), shapely.box(10, 10, 20, 20), shapely.box(500, 500, 510, 510)])
    g = polygon_grades(polys, grades)
    # 25 % on grade 4, 75 % on grade 8 -> 7; wholly inside grade 4; outside every grade polygon
    np.testing.assert_allclose(g[:2], [7.0, 4.0])
    assert np.isnan(g[2])


def test_polygon_grade_checks_its_layer():
    grades = gdf([shapely.box(0, 0, 100, 100)], utilization_grade=[17])
    with pytest.raises(CapacityInputError, match="grades in 1..15"):
        polygon_grades(gdf([shapely.box(0, 0, 10, 10)]), grades)
    with pytest.raises(CapacityInputError, match="expected a column 'economic_grade'"):
        polygon_grades(gdf([shapely.box(0, 0, 10, 10)]), grades, "economic_grade")


def test_reclaimed_forest_takes_the_grade_of_the_nearest_cultivated_land():
    farmland = gdf([shapely.box(0, 0, 10, 10), shapely.box(100, 0, 110, 10), shapely.box(0, 100, 30, 110)])
    grades = np.array([3.0, 9.0, 12.0])
    forest = gdf(
        [
            shapely.box(15, 0, 25, 10),  # 5 m from patch 0, 75 m from patch 1
            shapely.box(70, 0, 95, 10),  # 5 m from patch 1
            shapely.box(10, 10, 30, 100),  # touches patch 0 (area 100, grade 3) and patch 2 (area 300, grade 12)
        ]
    )
    out = nearest_grade(forest, farmland, grades)
    np.testing.assert_allclose(out["grade"], [3.0, 9.0, (3 * 100 + 12 * 300) / 400])
    np.testing.assert_allclose(out["distance_m"], [5.0, 5.0, 0.0])


def test_cultivated_land_without_a_grade_is_skipped():
    farmland = gdf([shapely.box(0, 0, 10, 10), shapely.box(100, 0, 110, 10)])
    out = nearest_grade(gdf([shapely.box(15, 0, 25, 10)]), farmland, [np.nan, 6.0])
    assert out["grade"].iloc[0] == 6.0 and out["distance_m"].iloc[0] == 75.0
    none = nearest_grade(gdf([shapely.box(15, 0, 25, 10)]), farmland, [np.nan, np.nan])
    assert none["grade"].isna().all()


# --------------------------------------------------------------------------------------
# accounts
# --------------------------------------------------------------------------------------


def test_capacity_accounts_by_forest_type():
    lost = pd.DataFrame({"grade": [8.0, 10.0], "area_ha": [1.0, 1.0]})
    activated = pd.DataFrame(
        {
            "grade": [4.0, 6.0, 9.0],
            "area_ha": [2.0, 1.0, 1.0],
            "forest_type": ["sparse forest land", "forested land", "sparse forest land"],
        }
    )
    table = capacity_summary(lost, activated, [True, False, True]).set_index(["account", "forest_type"])
    # lost: (8 + 6) steps * 1 ha * 1.5 t
    assert table.loc[("lost", "all"), "capacity_t"] == pytest.approx(21.0)
    assert table.loc[("lost", "all"), "weighted_grade"] == pytest.approx(9.0)
    # sparse: (12 * 2 + 7 * 1) * 1.5 = 46.5 t; forested: 10 * 1.5 = 15 t
    assert table.loc[("activated", "sparse forest land"), "capacity_t"] == pytest.approx(46.5)
    assert table.loc[("activated", "sparse forest land"), "weighted_grade"] == pytest.approx(17 / 3)
    assert table.loc[("activated", "forested land"), "capacity_t"] == pytest.approx(15.0)
    assert table.loc[("activated", "all"), "capacity_t"] == pytest.approx(61.5)
    assert table.loc[("planned", "all"), "capacity_t"] == pytest.approx(46.5)
    assert ("planned", "forested land") not in table.index


def test_accounts_with_nothing_activated():
    lost = pd.DataFrame({"grade": [8.0], "area_ha": [1.0]})
    empty = pd.DataFrame({"grade": [], "area_ha": [], "forest_type": []})
    table = capacity_summary(lost, empty, np.zeros(0, bool)).set_index(["account", "forest_type"])
    assert table.loc[("activated", "all"), "capacity_t"] == 0.0
    assert table.loc[("planned", "all"), "n"] == 0
    assert capacity_by_group([], [], []).empty

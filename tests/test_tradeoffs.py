"""karstflow.tradeoffs: totals by hand, Spearman rho by hand and against pandas, zones by rule."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from karstflow.grid import RegionGrid
from karstflow.tradeoffs import (
    ZONE_NODATA,
    improvement_zones,
    percentile_rank,
    service_changes,
    service_totals,
    township_ids,
    township_summary,
    tradeoff_matrix,
)

NAN = float("nan")


def test_service_totals_and_changes_by_hand():
    maps = {
        2000: {
            "carbon_storage": np.array([[100.0, 50.0], [NAN, 10.0]]),  # Mg C/ha
            "soil_retention": np.array([[200.0, 0.0], [NAN, NAN]]),  # t/ha/yr
            "water_yield": np.array([[500.0, 500.0], [500.0, 1000.0]]),  # mm
            "habitat_quality": np.array([[1.0, 0.5], [0.0, 0.5]]),
        },
        2010: {
            "carbon_storage": np.array([[110.0, 60.0], [NAN, 10.0]]),
            "soil_retention": np.array([[250.0, 10.0], [NAN, NAN]]),
            "water_yield": np.array([[400.0, 500.0], [500.0, 800.0]]),
            "habitat_quality": np.array([[1.0, 0.7], [0.2, 0.5]]),
        },
    }
    t = service_totals(maps, pixel_area_m2=900.0).set_index("year")  # 30 m pixels, 0.09 ha
    # carbon: (100 + 50 + 10) Mg/ha * 0.09 ha = 14.4 Mg C; mean 160 / 3 = 53.333 Mg/ha over 0.27 ha
    assert t.at[2000, "carbon_storage_total_mg_c"] == pytest.approx(14.4)
    assert t.at[2000, "carbon_storage_mean_mg_c_ha"] == pytest.approx(53.3333, rel=1e-5)
    assert t.at[2000, "carbon_storage_area_ha"] == pytest.approx(0.27)
    # soil: 200 * 0.09 = 18 t/yr over 0.18 ha
    assert t.at[2000, "soil_retention_total_t_yr"] == pytest.approx(18.0)
    # water: (500 + 500 + 500 + 1000) mm = 2.5 m over 900 m2 = 2250 m3; mean 625 mm
    assert t.at[2000, "water_yield_total_m3"] == pytest.approx(2250.0)
    assert t.at[2000, "water_yield_mean_mm"] == pytest.approx(625.0)
    assert t.at[2000, "habitat_quality_mean_index"] == pytest.approx(0.5)
    assert "habitat_quality_total" not in " ".join(t.columns)
    c = service_changes(t.reset_index()).iloc[0]
    assert (c["from_year"], c["to_year"]) == (2000, 2010)
    # carbon 14.4 -> 16.2 Mg C: +1.8 Mg C, +12.5 %; water 2250 -> 1980 m3: -270 m3, -12 %
    assert c["carbon_storage_total_mg_c_change"] == pytest.approx(1.8)
    assert c["carbon_storage_total_mg_c_change_pct"] == pytest.approx(12.5)
    assert c["water_yield_total_m3_change"] == pytest.approx(-270.0)
    assert c["water_yield_total_m3_change_pct"] == pytest.approx(-12.0)
    assert c["habitat_quality_mean_index_change"] == pytest.approx(0.1)


def test_changes_add_first_to_last_for_three_years():
    t = pd.DataFrame({"year": [2000, 2010, 2020], "water_yield_total_m3": [100.0, 80.0, 120.0]})
    c = service_changes(t)
    assert list(zip(c["from_year"], c["to_year"], strict=True)) == [(2000, 2010), (2010, 2020), (2000, 2020)]
    assert c["water_yield_total_m3_change"].tolist() == pytest.approx([-20.0, 40.0, 20.0])


def test_tradeoff_matrix_spearman_by_hand():
    # carbon ranks 1..5; soil 5, 6, 7, 8, 7 -> ranks 1, 2, 3.5, 5, 3.5
    # rho = sum(dx dy) / sqrt(sum dx^2 sum dy^2) = 8 / sqrt(10 * 9.5) = 0.820783
    changes = {
        "carbon_storage": np.array([1.0, 2.0, 3.0, 4.0, 5.0, NAN]),
        "soil_retention": np.array([5.0, 6.0, 7.0, 8.0, 7.0, 1.0]),
        "water_yield": np.array([-1.0, -2.0, -3.0, -4.0, -5.0, 0.0]),
        "habitat_quality": np.array([0.3, 0.1, 0.5, 0.2, 0.4, 0.0]),
    }
    m = tradeoff_matrix(changes, alpha=0.05).set_index(["service_a", "service_b"])
    assert m.loc[("carbon_storage", "soil_retention"), "rho"] == pytest.approx(8 / math.sqrt(95))
    assert m.loc[("carbon_storage", "soil_retention"), "n_pixels"] == 5  # the NaN pixel is dropped
    # a perfectly reversed order: rho = -1, p = 0 -> trade-off
    assert m.loc[("carbon_storage", "water_yield"), "rho"] == pytest.approx(-1.0)
    assert m.loc[("carbon_storage", "water_yield"), "relation"] == "trade-off"
    # habitat ranks 3, 1, 5, 2, 4 against 1..5: d = 2, -1, 2, -2, -1, rho = 1 - 6 * 14 / 120 = 0.3
    assert m.loc[("carbon_storage", "habitat_quality"), "rho"] == pytest.approx(0.3)
    assert m.loc[("carbon_storage", "habitat_quality"), "relation"] == "not significant"
    # against pandas' Spearman on the same pixels
    frame = pd.DataFrame(changes).dropna()
    assert m.loc[("soil_retention", "habitat_quality"), "rho"] == pytest.approx(
        frame["soil_retention"].corr(frame["habitat_quality"], method="spearman"))
    assert len(m) == 6


def test_tradeoff_matrix_synergy_and_not_evaluated():
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    changes = {"carbon_storage": x, "soil_retention": x + rng.normal(scale=0.5, size=500), "water_yield": np.zeros(500)}
    m = tradeoff_matrix(changes).set_index(["service_a", "service_b"])
    assert m.loc[("carbon_storage", "soil_retention"), "relation"] == "synergy"
    # a service that did not change anywhere has no rank order: not evaluated, never "no trade-off"
    assert m.loc[("carbon_storage", "water_yield"), "relation"] == "not evaluated"
    assert np.isnan(m.loc[("carbon_storage", "water_yield"), "rho"])


def test_percentile_rank():
    r = percentile_rank(np.array([10.0, NAN, 30.0, 20.0, 20.0]))
    assert r[0] == 0.0 and r[2] == 1.0 and np.isnan(r[1])
    assert r[3] == r[4] == pytest.approx(0.5)  # ranks 2.5 of 1..4 -> 1.5 / 3


def test_improvement_zones_by_rule():
    # 1 x 6 pixels; two services, equal weight. Last-year ranks (0..1 over 6 pixels):
    last = {
        "carbon_storage": np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]),
        "habitat_quality": np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]),
    }
    first = {
        "carbon_storage": np.array([[2.0, 1.0, 3.0, 5.0, 5.0, 5.0]]),  # pixel 0 fell, 1 rose
        "habitat_quality": np.array([[2.0, 1.0, 3.0, 5.0, 5.0, 5.0]]),
    }
    # composite = rank: 0, 0.2, 0.4, 0.6, 0.8, 1.0; low_quantile 0.5 -> threshold 0.5: pixels 0-2
    landcover = np.array([[6, 6, 8, 6, 1, 1]])  # grassland, grassland, built-up, ...
    slope = np.array([[5.0, 5.0, 5.0, 5.0, 30.0, 10.0]])
    zones, score = improvement_zones(
        last, first, landcover, slope, improvable_codes=[6], steep_cropland_codes=[1], steep_slope_deg=25,
        low_quantile=0.5, decline_share=0.5,
    )
    assert score[0] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    # pixel 0: low, grassland, both services fell -> 3; pixel 1: low, grassland, rose -> 2;
    # pixel 2: low, built-up -> 1; pixels 3-5 not low -> 0 (steep cropland 4 is high anyway)
    assert zones[0].tolist() == [3, 2, 1, 0, 0, 0]
    # services reversed: pixels 3-5 are low. 3 grassland -> 2; 4 cropland on 30 deg counts as
    # improvable (Grain for Green) -> 2; 5 cropland on 10 deg does not -> 1
    zones2, _ = improvement_zones(
        {k: v[:, ::-1] for k, v in last.items()}, {k: v[:, ::-1] for k, v in last.items()}, landcover, slope,
        improvable_codes=[6], steep_cropland_codes=[1], steep_slope_deg=25, low_quantile=0.5, decline_share=0.5,
    )
    assert zones2[0].tolist() == [0, 0, 0, 2, 2, 1]


def test_improvement_zones_nodata_and_weights():
    last = {"carbon_storage": np.array([[1.0, NAN, 3.0]]), "water_yield": np.array([[3.0, NAN, 1.0]])}
    zones, score = improvement_zones(
        last, last, np.array([[6, 6, 6]]), np.zeros((1, 3)), improvable_codes=[6], steep_cropland_codes=[],
        steep_slope_deg=25, low_quantile=0.5, decline_share=0.5, weights={"carbon_storage": 3.0, "water_yield": 1.0},
    )
    # weighted: pixel 0 = (3 * 0 + 1 * 1) / 4 = 0.25, pixel 2 = (3 * 1 + 0) / 4 = 0.75
    assert score[0, 0] == pytest.approx(0.25) and score[0, 2] == pytest.approx(0.75)
    assert zones[0, 1] == ZONE_NODATA


def test_township_summary_ranks_by_improvement_share():
    grid = RegionGrid.from_bounds("EPSG:32648", 10, (0, 0, 40, 20))  # 2 rows x 4 columns
    townships = gpd.GeoDataFrame(
        {"township_id": [1, 2], "township": ["west", "east"]},
        geometry=[shapely.box(0, 0, 20, 20), shapely.box(20, 0, 40, 20)], crs=grid.crs,
    )
    ids = township_ids(townships, grid.shape, grid.transform)
    assert ids.tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]
    zones = np.array([[0, 2, 3, 2], [0, 0, 2, 1]], np.uint8)
    score = np.array([[0.9, 0.1, 0.2, 0.1], [0.8, 0.7, 0.1, 0.2]])
    last = {"water_yield": np.array([[100.0, 200.0, 300.0, 400.0], [NAN, 200.0, 300.0, 400.0]])}
    t = township_summary(ids, townships.drop(columns="geometry"), zones, score, last, pixel_area_m2=100.0)
    east = t.set_index("township").loc["east"]
    # east: 3 of 4 pixels in zones 2-3 (0.03 ha of 0.04 ha), one first-priority pixel
    assert east["improvement_share"] == pytest.approx(0.75)
    assert east["improvement_zone_area_ha"] == pytest.approx(0.03)
    assert east["first_priority_area_ha"] == pytest.approx(0.01)
    assert east["water_yield_mean_mm"] == pytest.approx(350.0)
    assert east["rank"] == 1 and t.iloc[0]["township"] == "east"
    west = t.set_index("township").loc["west"]
    assert west["improvement_share"] == pytest.approx(0.25) and west["water_yield_mean_mm"] == pytest.approx(500 / 3)

"""Services summary over any subset of the four services, one service year, no slope.

Each service is a stage of its own, so a region may map any non-empty subset of them,
one year only (one land-cover map) and have no terrain. The library functions by hand
on tiny maps, then rule services_summary's script on GeoTIFFs through ``call_script``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from karstflow.grid import RegionGrid
from karstflow.io import read_raster, write_raster
from karstflow.runtime import call_script
from karstflow.tradeoffs import (
    SERVICES,
    TRADEOFF_COLUMNS,
    ZONE_NODATA,
    evaluation_scope,
    improvement_zones,
    service_changes,
    service_totals,
    township_ids,
    township_summary,
    tradeoff_matrix,
)

NAN = float("nan")
SCRIPT = Path(__file__).resolve().parents[1] / "workflow" / "scripts" / "services_summary.py"
PX_M2 = 900.0  # 30 m pixels: 0.09 ha
ZONE_RULES = {
    "improvable_codes": [6],
    "steep_cropland_codes": [1],
    "steep_slope_deg": 25,
    "low_quantile": 0.5,
    "decline_share": 0.5,
}


# --------------------------------------------------------------------------------------
# (a) two services, two years
# --------------------------------------------------------------------------------------


def test_two_services_two_years_by_hand():
    maps = {
        2000: {
            "water_yield": np.array([[500.0, 400.0], [NAN, 100.0]]),  # mm
            "carbon_storage": np.array([[10.0, 20.0], [30.0, 40.0]]),  # Mg C/ha
        },
        2020: {
            "water_yield": np.array([[400.0, 400.0], [NAN, 300.0]]),
            "carbon_storage": np.array([[20.0, 20.0], [40.0, 30.0]]),
        },
    }
    t = service_totals(maps, pixel_area_m2=PX_M2)
    # only the two services: no columns for soil retention or habitat quality
    assert list(t.columns) == [
        "year",
        "carbon_storage_mean_mg_c_ha",
        "carbon_storage_total_mg_c",
        "carbon_storage_area_ha",
        "water_yield_mean_mm",
        "water_yield_total_m3",
        "water_yield_area_ha",
    ]
    t = t.set_index("year")
    # carbon 2000: (10 + 20 + 30 + 40) Mg/ha * 0.09 ha = 9 Mg C; 2020: 110 * 0.09 = 9.9 Mg C
    assert t.at[2000, "carbon_storage_total_mg_c"] == pytest.approx(9.0)
    assert t.at[2020, "carbon_storage_total_mg_c"] == pytest.approx(9.9)
    # water 2000: (500 + 400 + 100) mm = 1 m over 900 m2 = 900 m3 (3 pixels, 0.27 ha); 2020: 1.1 m -> 990 m3
    assert t.at[2000, "water_yield_total_m3"] == pytest.approx(900.0)
    assert t.at[2020, "water_yield_total_m3"] == pytest.approx(990.0)
    assert t.at[2000, "water_yield_area_ha"] == pytest.approx(0.27)
    c = service_changes(t.reset_index())
    assert len(c) == 1
    row = c.iloc[0]
    assert row["carbon_storage_total_mg_c_change"] == pytest.approx(0.9)  # 9.9 - 9
    assert row["carbon_storage_total_mg_c_change_pct"] == pytest.approx(10.0)
    assert row["water_yield_total_m3_change"] == pytest.approx(90.0)  # 990 - 900
    assert row["water_yield_mean_mm_change"] == pytest.approx(1100 / 3 - 1000 / 3)
    assert not any(col.startswith(("soil_retention", "habitat_quality")) for col in c.columns)

    deltas = {s: maps[2020][s] - maps[2000][s] for s in ("water_yield", "carbon_storage")}
    m = tradeoff_matrix(deltas)
    assert list(m.columns) == list(TRADEOFF_COLUMNS)
    # one pair, over the 3 pixels where both changed: carbon +10, 0, -10; water -100, 0, +200 -> rho = -1
    assert (m.iloc[0]["service_a"], m.iloc[0]["service_b"]) == ("carbon_storage", "water_yield")
    assert m.iloc[0]["n_pixels"] == 3
    assert m.iloc[0]["rho"] == pytest.approx(-1.0)

    scope = evaluation_scope(["water_yield", "carbon_storage"], [2000, 2020], slope=True)
    assert scope["services"]["carbon_storage"] == {"evaluated": True, "stage": "carbon"}
    assert scope["services"]["soil_retention"] == {
        "evaluated": False,
        "stage": "soil_retention",
        "reason": "stage soil_retention does not run for this region",
    }
    assert scope["services"]["habitat_quality"]["reason"] == "stage habitat_quality does not run for this region"
    for item in ("change", "tradeoffs", "steep_cropland", "first_priority"):
        assert scope[item] == {"evaluated": True}


# --------------------------------------------------------------------------------------
# (b) habitat quality + carbon storage, one year, no slope
# --------------------------------------------------------------------------------------


def test_habitat_and_carbon_one_year_no_slope():
    maps = {
        2020: {
            "carbon_storage": np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]),
            "habitat_quality": np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]]),
        }
    }
    t = service_totals(maps, pixel_area_m2=PX_M2)
    assert len(t) == 1
    assert not any(col.startswith(("soil_retention", "water_yield")) for col in t.columns)
    # carbon: 21 Mg/ha * 0.09 ha = 1.89 Mg C; habitat: a mean only, 2.1 / 6 = 0.35
    assert t.iloc[0]["carbon_storage_total_mg_c"] == pytest.approx(1.89)
    assert t.iloc[0]["habitat_quality_mean_index"] == pytest.approx(0.35)
    c = service_changes(t)
    # one year: the header and no rows
    assert c.empty
    assert list(c.columns) == [
        "from_year",
        "to_year",
        "carbon_storage_mean_mg_c_ha_change",
        "carbon_storage_mean_mg_c_ha_change_pct",
        "carbon_storage_total_mg_c_change",
        "carbon_storage_total_mg_c_change_pct",
        "habitat_quality_mean_index_change",
        "habitat_quality_mean_index_change_pct",
    ]

    scope = evaluation_scope(["habitat_quality", "carbon_storage"], [2020], slope=False)
    assert scope["change"] == {"evaluated": False, "reason": "not evaluated: one service year"}
    assert scope["tradeoffs"] == {"evaluated": False, "reason": "not evaluated: one service year"}
    assert scope["first_priority"] == {"evaluated": False, "reason": "not evaluated: one service year"}
    assert scope["steep_cropland"]["evaluated"] is False
    assert "no slope" in scope["steep_cropland"]["reason"]
    assert {s for s, r in scope["services"].items() if r["evaluated"]} == {"habitat_quality", "carbon_storage"}
    assert scope["services"]["water_yield"]["reason"] == "stage water_yield does not run for this region"

    # composite = rank 0, 0.2, ..., 1.0; low (<= median 0.5): pixels 0-2.
    # pixel 0 grassland -> 2; pixel 1 cropland: improvable only on a steep slope, unknown -> 1;
    # pixel 2 built-up -> 1. No first year: nothing is first priority (3).
    landcover = np.array([[6, 1, 8, 6, 1, 1]])
    zones, score = improvement_zones(maps[2020], None, landcover, None, **ZONE_RULES)
    assert score[0] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert zones[0].tolist() == [2, 1, 1, 0, 0, 0]
    # the same with a steep slope: cropland pixel 1 becomes improvable
    steep, _ = improvement_zones(maps[2020], None, landcover, np.full((1, 6), 30.0), **ZONE_RULES)
    assert steep[0].tolist() == [2, 2, 1, 0, 0, 0]

    grid = RegionGrid.from_bounds("EPSG:32648", 30, (0, 0, 180, 30))  # 1 x 6 pixels
    townships = gpd.GeoDataFrame(
        {"township_id": [1, 2]},
        geometry=[shapely.box(0, 0, 90, 30), shapely.box(90, 0, 180, 30)],
        crs=grid.crs,
    )
    ids = township_ids(townships, grid.shape, grid.transform)
    by_t = township_summary(
        ids, townships.drop(columns="geometry"), zones, score, maps[2020], pixel_area_m2=PX_M2, first_priority=False
    ).set_index("township_id")
    assert by_t.at[1, "improvement_zone_area_ha"] == pytest.approx(0.09)  # pixel 0
    assert by_t.at[1, "improvement_share"] == pytest.approx(1 / 3)
    assert math.isnan(by_t.at[1, "first_priority_area_ha"])  # not evaluated, not 0
    assert by_t.at[2, "carbon_storage_mean_mg_c_ha"] == pytest.approx(5.0)
    assert "water_yield_mean_mm" not in by_t.columns


# --------------------------------------------------------------------------------------
# (c) one service
# --------------------------------------------------------------------------------------


def test_one_service():
    maps = {
        2000: {"soil_retention": np.array([[100.0, 200.0], [NAN, 300.0]])},  # t/ha/yr
        2020: {"soil_retention": np.array([[150.0, 150.0], [NAN, 300.0]])},
    }
    t = service_totals(maps, pixel_area_m2=PX_M2)
    assert list(t.columns) == [
        "year",
        "soil_retention_mean_t_ha_yr",
        "soil_retention_total_t_yr",
        "soil_retention_area_ha",
    ]
    # 600 t/ha/yr * 0.09 ha = 54 t/yr in both years
    assert t["soil_retention_total_t_yr"].tolist() == pytest.approx([54.0, 54.0])
    c = service_changes(t).iloc[0]
    assert c["soil_retention_total_t_yr_change"] == pytest.approx(0.0)
    assert c["soil_retention_total_t_yr_change_pct"] == pytest.approx(0.0)

    scope = evaluation_scope(["soil_retention"], [2000, 2020], slope=True)
    assert scope["change"] == {"evaluated": True}
    assert scope["tradeoffs"] == {"evaluated": False, "reason": "not evaluated: fewer than two services"}
    assert sum(r["evaluated"] for r in scope["services"].values()) == 1
    with pytest.raises(ValueError, match="at least two services"):
        tradeoff_matrix({"soil_retention": maps[2020]["soil_retention"] - maps[2000]["soil_retention"]})

    # the composite score is the one service's rank; pixel (0, 0) rose, (0, 1) fell, (1, 1) stayed
    zones, score = improvement_zones(maps[2020], maps[2000], np.array([[6, 6], [6, 6]]), np.zeros((2, 2)), **ZONE_RULES)
    # 150, 150, 300 -> ranks 0.25, 0.25, 1; low (<= median 0.25): pixels 0 and 1; pixel 1 fell -> 3
    assert score[0].tolist() == pytest.approx([0.25, 0.25])
    assert zones.tolist() == [[2, 3], [ZONE_NODATA, 0]]


def test_scope_rejects_no_service_and_unknown_services():
    with pytest.raises(ValueError, match="at least one service"):
        evaluation_scope([], [2000], slope=True)
    with pytest.raises(ValueError, match="unknown services"):
        evaluation_scope(["biomass"], [2000], slope=True)
    with pytest.raises(ValueError, match="same services"):
        service_totals(
            {2000: {"water_yield": np.ones((1, 1))}, 2020: {"carbon_storage": np.ones((1, 1))}}, pixel_area_m2=1.0
        )


# --------------------------------------------------------------------------------------
# the script, case (b), through call_script
# --------------------------------------------------------------------------------------


def _params(years, services):
    return {
        "years": years,
        "services": services,
        "alpha": 0.05,
        "improvement": {
            "low_quantile": 0.25,
            "improvable_classes": [4, 5, 6, 9],
            "steep_cropland_classes": [1],
            "steep_cropland_slope_deg": 25,
            "decline_share": 0.5,
            "weights": {s: 1 for s in SERVICES},
        },
        "half_saturation": "auto",
        "water_yield_z": 5,
        "r_factor_method": "renard_freimund_1994",
        "cover_factor": "landcover",
        "climate": "year",
    }


def _outputs(out: Path) -> dict[str, Path]:
    return {
        "table": out / "services.csv",
        "changes": out / "services_change.csv",
        "tradeoffs": out / "tradeoffs.csv",
        "zones": out / "improvement_zones.tif",
        "townships": out / "improvement_townships.csv",
        "summary": out / "services.json",
        "tradeoff_figure": out / "figures" / "tradeoffs.png",
        "change_figure": out / "figures" / "services_change.png",
    }


@pytest.fixture
def region_b(tmp_path):
    """10 x 10 px, 30 m: carbon i * 10 + j Mg C/ha (row i, column j), habitat 0.5 everywhere;
    grassland (6) in columns 0-4, cropland (1) in 5-9; townships west / east of x = 150 m."""
    grid = RegionGrid.from_bounds("EPSG:32648", 30, (0, 0, 300, 300))
    assert grid.shape == (10, 10)
    inp = tmp_path / "in"
    inp.mkdir()
    carbon = np.arange(100, dtype=np.float32).reshape(10, 10)
    habitat = np.full((10, 10), 0.5, np.float32)
    landcover = np.where(np.arange(10)[None, :] < 5, 6, 1).repeat(10, axis=0).astype(np.uint8)
    write_raster(grid.data_array(carbon, name="carbon_storage"), inp / "carbon_storage_2020.tif", nodata=NAN)
    write_raster(grid.data_array(habitat, name="habitat_quality"), inp / "habitat_quality_2020.tif", nodata=NAN)
    write_raster(grid.data_array(landcover, name="landcover"), inp / "landcover_2020.tif", dtype="uint8", nodata=255)
    (inp / "grid.json").write_text(json.dumps(grid.to_dict()))
    threats = {
        "year": 2020,
        "threats": {"cultivated": {"evaluated": True}, "roads": {"evaluated": False, "reason": "no roads"}},
        "degradation_max": 0.8,
        "degradation_mean": 0.3,
    }
    (inp / "habitat_threats_2020.json").write_text(json.dumps(threats))
    gpd.GeoDataFrame(
        {"township_id": [1, 2], "township": ["west", "east"]},
        geometry=[shapely.box(0, 0, 150, 300), shapely.box(150, 0, 300, 300)],
        crs=grid.crs,
    ).to_file(inp / "townships.gpkg")
    files = {
        "carbon_storage_2020": inp / "carbon_storage_2020.tif",
        "habitat_quality_2020": inp / "habitat_quality_2020.tif",
        "landcover_2020": inp / "landcover_2020.tif",
        "threats": [inp / "habitat_threats_2020.json"],
        "grid": inp / "grid.json",
        "townships": inp / "townships.gpkg",
    }
    return grid, files


def test_script_habitat_and_carbon_one_year_no_slope(tmp_path, region_b):
    grid, files = region_b
    outputs = _outputs(tmp_path / "out")
    log = tmp_path / "services_summary.log"
    call_script(
        SCRIPT,
        input=files,
        output=outputs,
        params=_params([2020], ["carbon_storage", "habitat_quality"]),
        wildcards={"region": "r"},
        log=log,
    )
    for path in outputs.values():
        assert path.exists(), path

    totals = pd.read_csv(outputs["table"])
    # carbon: sum 0..99 = 4950 Mg/ha * 0.09 ha = 445.5 Mg C, mean 49.5 over 9 ha; habitat mean 0.5
    assert totals["year"].tolist() == [2020]
    assert totals.at[0, "carbon_storage_total_mg_c"] == pytest.approx(445.5)
    assert totals.at[0, "carbon_storage_mean_mg_c_ha"] == pytest.approx(49.5)
    assert totals.at[0, "carbon_storage_area_ha"] == pytest.approx(9.0)
    assert totals.at[0, "habitat_quality_mean_index"] == pytest.approx(0.5)
    assert not any(c.startswith(("soil_retention", "water_yield")) for c in totals.columns)

    changes = pd.read_csv(outputs["changes"])
    assert changes.empty and list(changes.columns[:2]) == ["from_year", "to_year"]
    assert "carbon_storage_total_mg_c_change" in changes.columns
    tradeoffs = pd.read_csv(outputs["tradeoffs"])
    assert tradeoffs.empty and list(tradeoffs.columns) == list(TRADEOFF_COLUMNS)

    # habitat constant: every rank 0.5, the score orders pixels by carbon. Low (<= quantile 0.25
    # of 0..99 = 24.75): carbon 0-24, rows 0-1 and row 2 columns 0-4. Improvable without slope:
    # grassland only -> 15 improvement-zone pixels (2), 10 low cropland pixels (1), 75 not low (0).
    zones = read_raster(outputs["zones"], masked=False).values.squeeze()
    expected = np.zeros((10, 10), np.uint8)
    expected[:2, 5:] = 1
    expected[:3, :5] = 2
    np.testing.assert_array_equal(zones, expected)

    summary = json.loads(outputs["summary"].read_text())
    ev = summary["evaluation"]
    assert ev["services"]["carbon_storage"] == {"evaluated": True, "stage": "carbon"}
    assert ev["services"]["habitat_quality"]["evaluated"] is True
    for s, stage in (("soil_retention", "soil_retention"), ("water_yield", "water_yield")):
        assert ev["services"][s] == {
            "evaluated": False,
            "stage": stage,
            "reason": f"stage {stage} does not run for this region",
        }
    assert ev["change"]["reason"] == "not evaluated: one service year"
    assert ev["tradeoffs"]["reason"] == "not evaluated: one service year"
    assert ev["first_priority"]["reason"] == "not evaluated: one service year"
    assert ev["steep_cropland"]["evaluated"] is False
    assert ev["improvement_zones"] == {"evaluated": True}
    assert summary["change"] == {}
    assert summary["tradeoffs"]["pairs"] == {} and summary["tradeoffs"]["from_year"] is None
    imp = summary["improvement"]
    assert imp["improvement_area_ha"] == pytest.approx(1.35)  # 15 px * 0.09 ha
    assert imp["improvement_share"] == pytest.approx(0.15)
    assert imp["zone_area_ha"]["low, not improvable"] == pytest.approx(0.9)
    assert imp["first_priority_area_ha"] is None
    assert imp["zone_area_ha"]["first-priority improvement zone"] is None
    assert imp["townships"]["highest_improvement_share"]["township"] == "west"
    assert summary["method"]["habitat_half_saturation"] == pytest.approx(0.4)  # auto: max degradation / 2
    assert summary["method"]["water_yield_z"] is None and summary["method"]["r_factor"] is None

    towns = pd.read_csv(outputs["townships"]).set_index("township")
    assert towns.at["west", "improvement_share"] == pytest.approx(0.3)  # 15 of 50 pixels
    assert towns.at["east", "improvement_share"] == pytest.approx(0.0)
    assert towns["first_priority_area_ha"].isna().all()

    text = log.read_text()
    for phrase in (
        "WARNING karstflow.scripts.services_summary: service soil_retention not evaluated",
        "WARNING karstflow.scripts.services_summary: service water_yield not evaluated",
        "service changes not evaluated: one service year",
        "trade-offs not evaluated: one service year",
        "steep-cropland criterion not evaluated: no slope",
        "first-priority zones (services declined) not evaluated: one service year",
    ):
        assert phrase in text, phrase


def test_script_one_service_two_years_with_slope(tmp_path, region_b):
    grid, files = region_b
    second = files["carbon_storage_2020"].with_name("carbon_storage_2010.tif")
    write_raster(grid.data_array(np.zeros((10, 10), np.float32), name="carbon_storage"), second, nodata=NAN)
    slope = files["grid"].with_name("slope.tif")
    write_raster(grid.data_array(np.full((10, 10), 30.0, np.float32), name="slope"), slope, nodata=NAN)
    inputs = {
        "carbon_storage_2010": second,
        "carbon_storage_2020": files["carbon_storage_2020"],
        "landcover_2010": files["landcover_2020"],
        "landcover_2020": files["landcover_2020"],
        "slope": slope,
        "grid": files["grid"],
    }
    outputs = _outputs(tmp_path / "out")
    call_script(
        SCRIPT,
        input=inputs,
        output=outputs,
        params=_params([2010, 2020], ["carbon_storage"]),
        wildcards={"region": "r"},
    )
    changes = pd.read_csv(outputs["changes"])
    # 0 -> 445.5 Mg C
    assert changes.at[0, "carbon_storage_total_mg_c_change"] == pytest.approx(445.5)
    assert pd.read_csv(outputs["tradeoffs"]).empty
    summary = json.loads(outputs["summary"].read_text())
    assert summary["evaluation"]["tradeoffs"]["reason"] == "not evaluated: fewer than two services"
    assert summary["evaluation"]["services"]["habitat_quality"]["evaluated"] is False
    assert summary["method"]["habitat_half_saturation"] is None
    # every pixel on 30 deg: cropland counts as improvable; carbon rose everywhere except
    # pixel 0 (0 -> 0), so no pixel declined -> the 25 low pixels are all improvement zones (2)
    zones = read_raster(outputs["zones"], masked=False).values.squeeze()
    assert (zones == 2).sum() == 25 and (zones == 3).sum() == 0 and (zones == 0).sum() == 75
    assert summary["tradeoffs"]["from_year"] == 2010
    assert outputs["change_figure"].stat().st_size > 0 and outputs["tradeoff_figure"].stat().st_size > 0


def test_script_inconsistent_inputs_write_nothing(tmp_path, region_b):
    _, files = region_b
    outputs = _outputs(tmp_path / "out")
    with pytest.raises(ValueError, match="no input 'water_yield_2020'"):
        call_script(
            SCRIPT,
            input={k: v for k, v in files.items() if not k.startswith("habitat")},
            output=outputs,
            params=_params([2020], ["carbon_storage", "water_yield"]),
            wildcards={"region": "r"},
        )
    assert not any(path.exists() for path in outputs.values())


def test_script_no_land_cover_gives_an_all_nodata_zone_map(tmp_path, region_b):
    grid, files = region_b
    empty = files["landcover_2020"].with_name("landcover_none.tif")
    write_raster(grid.data_array(np.full((10, 10), 255, np.uint8), name="landcover"), empty, dtype="uint8", nodata=255)
    outputs = _outputs(tmp_path / "out")
    call_script(
        SCRIPT,
        input={**files, "landcover_2020": empty},
        output=outputs,
        params=_params([2020], ["carbon_storage", "habitat_quality"]),
        wildcards={"region": "r"},
        log=tmp_path / "services_summary.log",
    )
    zones = read_raster(outputs["zones"], masked=False).values
    assert (zones == ZONE_NODATA).all()
    summary = json.loads(outputs["summary"].read_text())
    assert summary["evaluation"]["improvement_zones"]["evaluated"] is False
    assert summary["improvement"]["improvement_share"] is None
    assert "improvement_zones.tif is all nodata" in (tmp_path / "services_summary.log").read_text()

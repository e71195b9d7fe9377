"""Unit tests of the layers the karst stages make when a region lacks them: the plan's
choices (a remote source pulls them; an input given wins), the sensor record of the
vegetation stage, the public land-cover crosswalk and carbonate rock from a lithology map."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from karstflow.crosswalk import DEFAULT_CROSSWALKS, CrosswalkError, apply_crosswalk, load_crosswalk
from karstflow.desertification import carbonate_from_lithology
from karstflow.grid import RegionGrid
from karstflow.sensor_plan import RecordPlanError, record_plan
from karstflow.stages import PROVIDED, STAGES, layer_path, plan_region

REMOTE = {"dem", "imagery", "remote_source"}
TABLES = {"carbon_pools", "biophysical", "lithology"}
KARST = ["greening", "desertification", "carbon", "npp", "water_yield", "habitat_quality", "services"]


def test_a_remote_region_pulls_every_karst_layer_and_only_what_its_stages_use():
    plan = plan_region(REMOTE | TABLES, KARST)
    runs = {name for name, p in plan.items() if p.runs}
    assert runs == set(KARST) | {"vegetation", "monthly_climate", "soil", "public_landcover", "lithology"}
    # services needs any one service: it pulls in none the region did not ask for
    assert not plan["soil_retention"].runs and not plan["terrain"].runs
    assert layer_path(plan, "greening", "annual_stack") == "vegetation/annual_stack.nc"
    assert layer_path(plan, "npp", "climate") == "climate/climate_annual.nc"
    assert layer_path(plan, "water_yield", "soil_grids") == "soil/soil_grids.nc"
    assert layer_path(plan, "desertification", "carbonate") == "lithology/carbonate.tif"


def test_the_owners_layers_win_over_the_pulled_ones():
    given = REMOTE | TABLES | {"annual_stack", "climate", "soil_grids", "carbonate", "landcover"}
    plan = plan_region(given, KARST)
    for stage, _ in PROVIDED.values():
        assert not plan[stage].runs, stage
    assert not plan["public_landcover"].runs
    assert layer_path(plan, "greening", "annual_stack") == "inputs/annual_stack.nc"
    assert layer_path(plan, "water_yield", "soil_grids") == "inputs/soil_grids.nc"


def test_a_local_region_says_which_key_would_give_the_layer():
    plan = plan_region({"carbon_pools"})
    assert plan["vegetation"].missing == ["vegetation_scenes"]
    assert plan["monthly_climate"].missing == ["climate_monthly"]
    assert plan["soil"].missing == ["remote_source"]
    assert "vegetation" in STAGES and PROVIDED["annual_stack"][0] == "vegetation"


def test_record_plan_years_overlaps_and_reference():
    plan = record_plan(
        [{"sensor": "landsat", "first": 2000, "last": 2017}, {"sensor": "sentinel-2", "first": 2017, "last": 2023}],
        range(2005, 2024),
    )
    assert plan.sensor_of_year[2016] == "landsat" and plan.sensor_of_year[2017] == "landsat"
    assert plan.sensor_of_year[2018] == "sentinel-2"
    assert plan.overlaps == [("landsat", "sentinel-2", 2017)]
    assert ("landsat", 2017) in plan.composites and ("sentinel-2", 2017) in plan.composites
    assert len(plan.composites) == 19 + 1  # every year once, the overlap year twice
    modis = record_plan([{"sensor": "modis", "first": 2000, "last": 2100}], range(2000, 2024))
    assert set(modis.sensor_of_year.values()) == {"modis"} and not modis.overlaps


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ([{"sensor": "landsat", "first": 2000, "last": 2010}], r"no sensor range covers year\(s\) \[2011"),
        ([{"sensor": "sentinel-2", "first": 2010, "last": 2023}], "sentinel-2 has no record before 2017"),
        (
            [{"sensor": "landsat", "first": 2000, "last": 2016}, {"sensor": "modis", "first": 2017, "last": 2023}],
            "no overlap year.*would create a trend",
        ),
        ([{"sensor": "avhrr", "first": 2000, "last": 2023}], "unknown sensor 'avhrr'"),
    ],
)
def test_record_plan_errors_name_the_key(ranges, message):
    with pytest.raises(RecordPlanError, match=message):
        record_plan(ranges, range(2000, 2024), key="regions.x.vegetation.sensors")


def test_a_switch_without_overlap_is_fine_with_configured_coefficients():
    plan = record_plan(
        [{"sensor": "landsat", "first": 2000, "last": 2016}, {"sensor": "modis", "first": 2017, "last": 2023}],
        range(2000, 2024),
        coefficients=[{"from": "modis", "to": "landsat", "gain": 1.0, "offset": -0.04}],
    )
    assert plan.sensor_of_year[2020] == "modis" and not plan.overlaps


LEGEND = {1: "cultivated", 2: "forested land", 3: "other forest land", 4: "sparse forest land", 5: "shrub",
          6: "grassland", 7: "water", 8: "built-up", 9: "bare rock"}  # fmt: skip


def test_worldcover_and_clcd_codes_map_to_the_legend():
    table = load_crosswalk(None, "worldcover", LEGEND, key="landcover.public.crosswalk")
    codes = np.array([[10, 20, 30, 40], [50, 60, 80, 0]])
    assert apply_crosswalk(codes, table, source="t").tolist() == [[2, 5, 6, 1], [8, 9, 7, 0]]
    clcd = load_crosswalk(None, "clcd", LEGEND, key="k")
    assert apply_crosswalk(np.array([1, 2, 5, 8]), clcd, source="t").tolist() == [1, 2, 7, 8]
    assert set(DEFAULT_CROSSWALKS["worldcover"].values()) <= set(LEGEND)


def test_crosswalk_errors_name_codes_and_keys(tmp_path):
    table = load_crosswalk({"10": 2}, "worldcover", LEGEND, key="landcover.public.crosswalk")
    with pytest.raises(CrosswalkError, match=r"product code\(s\) \[30\] \(2 pixels\)"):
        apply_crosswalk(np.array([10, 30, 30]), table, source="worldcover 2020")
    with pytest.raises(CrosswalkError, match=r"maps to code\(s\) \[12\]"):
        load_crosswalk({"10": 12}, "worldcover", LEGEND, key="landcover.public.crosswalk")
    path = tmp_path / "cw.csv"
    path.write_text("code,lucode\n10,2\n")
    with pytest.raises(CrosswalkError, match="expected columns"):
        load_crosswalk(str(path), "worldcover", LEGEND, key="landcover.public.crosswalk")


def test_carbonate_from_lithology_by_pixel_centre():
    grid = RegionGrid.from_bounds("EPSG:32648", 30, (0, 0, 300, 300))  # 10 x 10 px
    lith = gpd.GeoDataFrame(
        {"unit": ["C2h", "T3s", "P1m"]},
        geometry=[box(0, 0, 100, 300), box(100, 0, 200, 300), box(200, 0, 300, 150)],
        crs=grid.crs,
    )
    mask = carbonate_from_lithology(lith, ["C2h", "P1m"], grid, source="lith.gpkg")
    # columns whose centre (15, 45, 75 m) lies west of x = 100 are carbonate; 105 .. 195 not
    assert (mask[:, :3] == 1).all() and (mask[:, 4:6] == 0).all()
    assert (mask[5:, 7:] == 1).all() and (mask[:5, 7:] == 255).all()  # north-east: unmapped
    with pytest.raises(ValueError, match=r"carbonate unit\(s\) \['C2x'\].*not in the lithology map"):
        carbonate_from_lithology(lith, ["C2x"], grid, source="lith.gpkg")


def test_a_local_region_makes_the_same_layers_from_its_own_files(workflow_runner, tmp_path):
    """Dry run of a local karst region with its own scenes, monthly climate, lithology and a
    public land-cover product: the layer-making rules are planned, nothing is fetched."""
    import subprocess
    import sys

    data = tmp_path / "data"
    data.mkdir()
    for name in ("scenes.csv", "climate.nc", "lc_2014.tif", "lc_2016.tif", "pools.csv", "bio.csv", "soil.nc"):
        (data / name).write_text("")
    gpd.GeoDataFrame({"LITH": ["C2h"]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:32648").to_file(data / "lith.gpkg")
    region = {
        "source": "local",
        "aoi": {"bounds": [600000, 2800000, 603000, 2803000]},
        "crs": "EPSG:32648",
        "resolution_m": 30,
        "years": {"first": 2014, "last": 2016},
        "vegetation": {"sensors": [{"sensor": "landsat", "first": 2014, "last": 2016}]},
        "carbonate_units": ["C2h"],
        "stages": ["greening", "desertification", "carbon", "npp", "water_yield"],
        "inputs": {
            "vegetation_scenes": str(data / "scenes.csv"),
            "climate_monthly": {"path": str(data / "climate.nc"), "variables": {"temperature_c": "tas"}},
            "lithology": {"path": str(data / "lith.gpkg"), "columns": {"unit": "LITH"}},
            "landcover_product": {2014: str(data / "lc_2014.tif"), 2016: str(data / "lc_2016.tif")},
            "carbon_pools": str(data / "pools.csv"),
            "biophysical": str(data / "bio.csv"),
            "soil_grids": str(data / "soil.nc"),  # SoilGrids is pulled for remote regions only
        },
    }

    def own(config):
        config.clear()
        config["regions"] = {"my-karst": region}
        config["terrain"] = {}

    workdir = workflow_runner.copy(tmp_path / "wf", own)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--dry-run", "--cores", "1"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    jobs = dict(
        (line.split()[0], int(line.split()[1]))
        for line in out.splitlines()
        if len(line.split()) == 2 and line.split()[1].isdigit()
    )
    assert jobs["vegetation_composite"] == 3 and jobs["vegetation_stack"] == 1
    assert jobs["climate_monthly"] == 1 and jobs["climate_annual"] == 1
    assert jobs["public_landcover"] == 2 and jobs["inputs_landcover"] == 2  # the product's two years
    assert jobs["lithology_carbonate"] == 1 and jobs["services_water_yield"] == 2
    assert "vegetation_fetch" not in jobs and "soil_grids" not in jobs  # nothing remote, the owner's soil

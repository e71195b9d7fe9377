"""End-to-end: Snakemake on the tiny demo in a temporary copy of the workflow.

The session's demo run (conftest ``demo_run``) builds the whole DAG; the tests reuse it for the no-op rerun,
the parameter-change plan and the bad-input cases (each in a directory of its own).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from karstflow.grid import RegionGrid
from karstflow.io import read_raster, write_raster

pytestmark = pytest.mark.e2e

WORKFLOW_FILES = ("Snakefile", "workflow", "config")


def copy_workflow(project_root: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = project_root / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def planned_rules(workdir: Path, *args: str) -> dict[str, int]:
    """Rule -> job count of a dry run, from Snakemake's job-stats table."""
    proc = snakemake(workdir, "--dry-run", *args)
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return {}
    stats = out.split("Job stats:", 1)[1]
    rows = re.findall(r"^(\w+)\s+(\d+)\s*$", stats, flags=re.M)
    # `all` (the default target) is listed whenever anything reruns.
    return {rule: int(n) for rule, n in rows if rule not in ("total", "all")}


def test_demo_outputs_follow_the_results_contract(demo_run):
    config = yaml.safe_load((demo_run / "config" / "config.yaml").read_text())
    for region in config["regions"]:
        base = demo_run / "results" / region
        grid = RegionGrid.from_dict(json.loads((base / "grid.json").read_text()))
        for name in ("dem", "slope", "aspect", "aspect_class"):
            da = read_raster(base / "terrain" / f"{name}.tif")
            assert grid.matches(da), f"{region} {name}.tif is not on the region grid"
        slope = read_raster(base / "terrain" / "slope.tif").values
        aspect = read_raster(base / "terrain" / "aspect.tif").values
        classes = read_raster(base / "terrain" / "aspect_class.tif", masked=False).values
        assert np.nanmin(slope) >= 0 and np.nanmax(slope) < 90
        valid = np.isfinite(aspect)
        assert np.all((aspect[valid] == -1) | ((aspect[valid] >= 0) & (aspect[valid] < 360)))
        assert set(np.unique(classes)) <= {0, 1, 2, 3, 4, 255}
        summary = json.loads((base / "summary.json").read_text())
        assert summary["region"] == region
        # The terrain section restates figures of the rasters it summarises.
        assert summary["terrain"]["slope_mean_deg"] == pytest.approx(float(np.nanmean(slope)), rel=1e-4)
        assert (demo_run / "resources" / "demo" / region / "PLANTED.json").exists()
    table = pd.read_csv(demo_run / "results" / "summary.csv")
    assert sorted(table["region"]) == sorted(config["regions"])
    assert "terrain.slope_mean_deg" in table.columns
    for region in config["regions"]:
        assert (demo_run / "logs" / region / "terrain_derivatives.log").stat().st_size > 0
        assert (demo_run / "logs" / "benchmarks" / region / "terrain_derivatives.tsv").exists()


def test_demo_county_composites_lie_on_the_grid_with_named_bands(demo_run):
    import rasterio

    base = demo_run / "results" / "demo-county"
    grid = RegionGrid.from_dict(json.loads((base / "grid.json").read_text()))
    composite = base / "imagery" / "composite_2022.tif"
    count = base / "imagery" / "clear_count_2022.tif"
    for path in (composite, count):
        assert grid.matches(read_raster(path)), f"{path.name} is not on the region grid"
    with rasterio.open(composite) as f:
        assert f.descriptions == ("B2", "B3", "B4", "B8", "B11", "B12") and f.dtypes[0] == "float32"
        refl = f.read()
    with rasterio.open(count) as f:
        assert f.descriptions == ("clear_count",)
        n = f.read(1)
    planted = json.loads((demo_run / "resources" / "demo" / "demo-county" / "PLANTED.json").read_text())
    assert n.max() <= len(planted["s2"]["dates"]) and (n > 0).mean() > 0.99
    # harmonised reflectance: no 0.1 shift from the 04.00 scenes, plausible vegetation NIR
    assert 0.0 < np.nanmedian(refl[2]) < 0.15 and 0.15 < np.nanmedian(refl[3]) < 0.5
    summary = json.loads((base / "summary.json").read_text())
    assert summary["imagery"]["periods"]["2022"]["scenes"] == len(planted["s2"]["dates"])
    assert summary["imagery"]["periods"]["2022"]["clear_count_mean"] == pytest.approx(float(n.mean()))


def test_changing_the_cloud_classes_reruns_only_the_composite_and_summaries(demo_run):
    plan = planned_rules(demo_run, "--config", "imagery={scl_not_clear: [0, 1, 3, 8, 9, 10, 11]}")
    config = yaml.safe_load((demo_run / "config" / "config.yaml").read_text())
    periods = len(config["regions"]["demo-county"]["periods"])
    # every composite of the county demo and what reads them; nothing upstream of them
    assert plan["imagery_composite"] == periods and plan["imagery_summary"] == 1
    assert plan["region_summary"] == 1 and plan["summary_table"] == 1
    upstream = {
        "demo_county",
        "demo_karst",
        "region_grid",
        "terrain_dem",
        "terrain_derivatives",
        "imagery_fetch",
        "dem_fetch",
    }
    assert not upstream & set(plan), plan


# The driver and model stages of the county demo read the terrain rasters (x1..x3).
MODEL_STAGE_RULES = {"drivers_parcels": 1, "model_fit": 1, "model_rules": 1, "model_figures": 1, "model_summary": 1}
# The reserve stage reads the slope and computes the forest polygons' drivers; capacity follows it.
RESERVE_STAGE_RULES = {"reserve_evaluate": 1, "reserve_maps": 1, "capacity_plan": 1, "capacity_maps": 1}
# The land-cover classifier reads elevation and slope; the abandonment decision follows the map.
LANDCOVER_STAGE_RULES = {
    "landcover_train": 1,
    "landcover_classify": 1,
    "landcover_classify_summary": 1,
    "landcover_accuracy": 1,
    "abandonment_parcels": 1,
}
# Every raster feeds its region's maps (report_maps); the karst services read the slope
# (improvement zones) and the DEM (flow routing, LS factor, soil retention of each year).
SERVICES_SLOPE_RULES = {"services_summary": 1}
# the karst coupling tables read the terrain slope (and the services' maps and zones)
COUPLING_RULES = {"coupling_units": 1, "coupling_statistics": 1}
SERVICES_DEM_RULES = {
    "services_ls_factor": 1,
    "services_soil_retention": 2,
    "services_soil_factors": 2,
    "services_summary": 1,
}


def test_second_run_does_nothing(demo_run):
    assert planned_rules(demo_run) == {}


def test_changing_a_terrain_parameter_reruns_only_terrain_and_dependants(demo_run):
    plan = planned_rules(demo_run, "--config", "terrain={flat_max_deg: 7.5}")
    assert plan == {
        "terrain_derivatives": 2,
        "terrain_summary": 2,
        **MODEL_STAGE_RULES,
        **RESERVE_STAGE_RULES,
        **LANDCOVER_STAGE_RULES,
        **SERVICES_SLOPE_RULES,
        **COUPLING_RULES,
        "report_maps": 2,
        "region_summary": 2,
        "summary_table": 1,
    }


def test_changing_dem_resampling_reruns_dem_but_not_demo(demo_run):
    plan = planned_rules(demo_run, "--config", "terrain={dem_resampling: cubic}")
    assert plan == {
        "terrain_dem": 2,
        "terrain_derivatives": 2,
        "terrain_summary": 2,
        **MODEL_STAGE_RULES,
        **RESERVE_STAGE_RULES,
        **LANDCOVER_STAGE_RULES,
        **SERVICES_DEM_RULES,
        **COUPLING_RULES,
        "report_maps": 2,
        "region_summary": 2,
        "summary_table": 1,
    }


def test_lint_passes(project_root, tmp_path):
    workdir = copy_workflow(project_root, tmp_path)
    proc = snakemake(workdir, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _with_config(project_root: Path, tmp_path: Path, edit) -> Path:
    workdir = copy_workflow(project_root, tmp_path)
    path = workdir / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    edit(config, workdir)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return workdir


@pytest.mark.parametrize("bad_id", ["demo/county", "..", "a..b"])
def test_bad_region_id_fails_before_anything_is_written(project_root, tmp_path, bad_id):
    def edit(config, _):
        config["regions"][bad_id] = config["regions"].pop("demo-county")

    workdir = _with_config(project_root, tmp_path, edit)
    proc = snakemake(workdir, check=False)
    assert proc.returncode != 0
    assert f"region id {bad_id!r} is not allowed" in proc.stderr + proc.stdout
    assert not (workdir / "results").exists() and not (workdir / "resources").exists()


def test_wrong_type_fails_naming_the_key(project_root, tmp_path):
    def edit(config, _):
        config["terrain"]["flat_max_deg"] = "steep"

    workdir = _with_config(project_root, tmp_path, edit)
    proc = snakemake(workdir, check=False)
    assert proc.returncode != 0
    assert "config key terrain.flat_max_deg: expected number, found 'steep'" in proc.stderr + proc.stdout
    assert not (workdir / "results").exists()


def _local_region(dem_path: str, crs: str = "EPSG:32650") -> dict:
    return {
        "source": "local",
        "aoi": {"bounds": [500000, 2900000, 501000, 2901000]},
        "crs": crs,
        "resolution_m": 20,
        "years": {"first": 2020, "last": 2020},
        "inputs": {"dem": dem_path},
    }


def test_all_nodata_dem_fails_without_partial_output(project_root, tmp_path):
    def edit(config, workdir):
        grid = RegionGrid.from_bounds("EPSG:32650", 20, (500000, 2900000, 501000, 2901000))
        write_raster(grid.data_array(np.full(grid.shape, np.nan, dtype="float32")), workdir / "empty_dem.tif")
        config["regions"] = {"empty": _local_region("empty_dem.tif")}

    workdir = _with_config(project_root, tmp_path, edit)
    proc = snakemake(workdir, "results/empty/terrain/slope.tif", check=False)
    assert proc.returncode != 0
    log = (workdir / "logs" / "empty" / "terrain_dem.log").read_text()
    assert "empty_dem.tif" in log and "no valid" in log
    assert not (workdir / "results" / "empty" / "terrain").exists() or not any(
        (workdir / "results" / "empty" / "terrain").iterdir()
    )


def test_dem_in_another_crs_is_reprojected_and_logged(project_root, tmp_path):
    def edit(config, workdir):
        # The same tilted plane, delivered in geographic coordinates.
        src = RegionGrid.from_bounds("EPSG:4326", 0.0001, (116.99, 26.20, 117.02, 26.23))
        lat = src.coords()["y"][:, None]
        lon = src.coords()["x"][None, :]
        z = 100 + (lat - 26.2) * 111000 * 0.1 + 0 * lon  # rises 0.1 m per m northwards
        write_raster(src.data_array(z.astype("float32")), workdir / "geo_dem.tif")
        config["regions"] = {"geo": _local_region("geo_dem.tif")}

    workdir = _with_config(project_root, tmp_path, edit)
    snakemake(workdir, "results/geo/terrain/slope.tif")
    log = (workdir / "logs" / "geo" / "terrain_dem.log").read_text()
    assert "1 tile(s) from EPSG:4326 at 0.000100 deg -> EPSG:32650 20 m, bilinear" in log
    slope = read_raster(workdir / "results" / "geo" / "terrain" / "slope.tif").values
    # atan(0.1) = 5.71 deg; UTM grid convergence and scale distort it by well under 0.2 deg here.
    assert np.nanmedian(slope) == pytest.approx(np.degrees(np.arctan(0.1)), abs=0.2)

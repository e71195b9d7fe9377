"""End-to-end: greening, rocky desertification and carbon on the tiny karst demo.

The session's demo run (conftest ``karst_demo_run``) builds the karst stages; the tests
check the outputs against the demo's PLANTED.json, redo CASA and the InVEST storage by
hand from the workflow's own inputs, and run the bad-input cases (too few valid years, a
climate cube on another grid) in copies.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401  (the .rio accessor)
import yaml

from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_raster, write_netcdf
from test_workflow import copy_workflow, planned_rules, snakemake

pytestmark = pytest.mark.e2e

REGION = "demo-karst"
TARGET = f"results/{REGION}/summary.json"
# The coupling tables read the greening trend, the RD grade maps and the NPP trend.
COUPLING = {"coupling_units": 1, "coupling_statistics": 1}
# The demo's 30 m pixels.
PX_KM2 = 0.0009


@pytest.fixture(scope="module")
def karst_run(karst_demo_run):
    """The session's demo run (conftest), which builds the karst stages with the rest."""
    return karst_demo_run


def planted(workdir: Path) -> dict:
    return json.loads((workdir / "resources" / "demo" / REGION / "PLANTED.json").read_text())


def res(workdir: Path, rel: str) -> Path:
    return workdir / "results" / REGION / rel


def test_outputs_follow_the_results_contract(karst_run):
    grid = RegionGrid.from_dict(json.loads(res(karst_run, "grid.json").read_text()))
    rasters = [
        "greening/trend_slope.tif",
        "greening/trend_slope_low.tif",
        "greening/trend_slope_high.tif",
        "greening/trend_p.tif",
        "greening/trend_class.tif",
        "desertification/rd_grade_2000.tif",
        "desertification/rd_grade_2023.tif",
        "carbon/npp_trend_slope.tif",
        "carbon/carbon_storage_2000.tif",
        "carbon/carbon_storage_2023.tif",
        "carbon/carbon_sequestration.tif",
    ]
    for rel in rasters:
        assert grid.matches(read_raster(res(karst_run, rel))), f"{rel} is not on the region grid"
    cube = read_cube(res(karst_run, "greening/ndvi_annual.nc"))
    assert cube["year"].values.tolist() == list(range(2000, 2024))
    assert cube["ndvi"].dims == ("year", "y", "x") and cube.rio.crs == grid.crs
    assert cube["ndvi"].encoding["chunksizes"][0] == 24  # whole series per spatial chunk
    npp = read_cube(res(karst_run, "carbon/npp_annual.nc"))
    assert {"npp", "rh", "nep"} <= set(npp.data_vars) and npp.sizes["year"] == 24
    for rel in ("desertification/rd_area.csv", "desertification/rd_transition.csv"):
        assert res(karst_run, rel).stat().st_size > 0
    summary = json.loads(res(karst_run, "summary.json").read_text())
    assert {"terrain", "greening", "desertification", "carbon"} <= set(summary)
    assert summary["desertification"]["reduction_rate"] > 0
    assert (karst_run / "logs" / REGION / "greening_trend.log").stat().st_size > 0
    assert (karst_run / "logs" / "benchmarks" / REGION / "carbon_npp.tsv").exists()


def test_planted_greening_and_browning_are_recovered(karst_run):
    truth = planted(karst_run)["ndvi"]
    zones = read_raster(karst_run / "resources" / "demo" / REGION / "trend_zones_truth.tif", masked=False).values
    slope = read_raster(res(karst_run, "greening/trend_slope.tif")).values
    cls = read_raster(res(karst_run, "greening/trend_class.tif"), masked=False).values
    for name, code in (("greening", 1), ("browning", 2), ("stable", 0)):
        assert int((zones == code).sum()) == truth["zones"][name]["pixels"]
    # Zone means of the per-pixel Theil-Sen slopes against the planted slopes. Per pixel the
    # slope's spread is ~0.0006/yr (noise sd 0.02 over 24 years); the zone means average
    # 1,800 / 114 / 4,566 pixels, and the common interannual anomaly has zero OLS trend, so
    # what remains is a shared Theil-Sen wobble of a few 1e-5. 0.0004/yr (5 % of the
    # greening slope) is well above that and far below the gaps between the zones.
    g, b, s = (slope[zones == c] for c in (1, 2, 0))
    assert g.mean() == pytest.approx(truth["slopes_per_year"]["greening"], abs=4e-4)
    assert b.mean() == pytest.approx(truth["slopes_per_year"]["browning"], abs=4e-4)
    assert abs(s.mean()) < 2e-4
    # Classes: a slope of 0.008/yr is ~13 standard errors, so every greening pixel should be
    # significant; in the stable zone only the test's false positives (alpha 0.05, fewer
    # after the +-0.0005/yr stable band) may be significant.
    assert (cls[zones == 1] == 1).mean() >= 0.98
    assert (cls[zones == 2] == 5).mean() >= 0.95
    assert np.isin(cls[zones == 0], (1, 5)).mean() <= 0.06
    summary = json.loads(res(karst_run, "greening/greening.json").read_text())
    share = summary["class_share"]
    assert share["significant_greening"] == pytest.approx((cls == 1).sum() / (cls != 255).sum())
    assert summary["slope_mean_per_yr"] == pytest.approx(float(np.nanmean(slope)), rel=1e-4)


def test_planted_desertification_shrinks(karst_run):
    truth = planted(karst_run)["rocky_desertification"]
    area = pd.read_csv(res(karst_run, "desertification/rd_area.csv"))
    rd_px = area[area["grade_code"] >= 2].groupby("year")["pixels"].sum()
    # The demo plants RD as exposure >= 0.3 on carbonate, the light threshold of the grading.
    assert truth["exposure_threshold"] == 0.3
    assert rd_px[2000] == truth["first_year"]["pixels"]
    assert rd_px[2023] == truth["last_year"]["pixels"]
    for year, km2 in truth["area_km2_by_year"].items():
        planted_px = round(km2 / PX_KM2)
        # combine=min: a restoring pixel whose vegetation already recovered leaves RD a little
        # before its exposure drops below 0.3, so a year may show up to 2 % less, never more.
        assert 0.98 * planted_px <= rd_px[int(year)] <= planted_px
    summary = json.loads(res(karst_run, "desertification/desertification.json").read_text())
    assert summary["reduction_rate"] == pytest.approx(truth["relative_reduction"], abs=1e-9)
    assert summary["rd_area_first_km2"] == pytest.approx(truth["first_year"]["area_km2"])
    assert summary["rd_area_last_km2"] == pytest.approx(truth["last_year"]["area_km2"])
    restored = planted(karst_run)["ndvi"]["greening_parts"]["rocky_desertification_restoration_pixels"]
    assert summary["restored_from_rd_km2"] == pytest.approx(restored * PX_KM2)
    assert summary["new_rd_km2"] == 0
    trans = pd.read_csv(res(karst_run, "desertification/rd_transition.csv"))
    assert len(trans) == 36 and trans["pixels"].sum() == planted(karst_run)["carbonate"]["pixels"]
    grade_2000 = read_raster(res(karst_run, "desertification/rd_grade_2000.tif"), masked=False).values
    carbonate = read_raster(karst_run / "resources" / "demo" / REGION / "carbonate.tif", masked=False).values
    assert np.all((grade_2000 == 255) == (carbonate != 1))  # graded exactly on carbonate


def _by_hand_npp(ndvi, months, eps_max, ndvi_max, sr_max):
    """Monthly CASA and Rh of one pixel-year, written out with math only: the year's NDVI
    for each month, T_opt the warmest month's temperature (no monthly NDVI), W_e from the
    year's totals, NDVI_min 0.023 and SR_min 1.05."""
    t, p, eto, sol = (months[v] for v in ("temperature_c", "precipitation_mm", "eto_mm", "solar_mj_m2"))
    t_opt = max(t)
    phi = sum(p) / sum(eto)
    w_e = 0.5 + 0.5 * (1 + phi - (1 + phi**2.6) ** (1 / 2.6))
    f_ndvi = (ndvi - 0.023) / (ndvi_max - 0.023) * (0.95 - 0.001) + 0.001
    f_sr = ((1 + ndvi) / (1 - ndvi) - 1.05) / (sr_max - 1.05) * (0.95 - 0.001) + 0.001
    fpar = min(max(0.5 * f_ndvi + 0.5 * f_sr, 0.001), 0.95)
    t_e1 = 0.8 + 0.02 * t_opt - 0.0005 * t_opt**2

    def t_e2(temp):
        return 1.1814 / (1 + math.exp(0.2 * (t_opt - 10 - temp))) / (1 + math.exp(0.3 * (-t_opt - 10 + temp)))

    npp = rh = 0.0
    for k in range(12):
        stress = t_e2(t_opt) / 2 if (t[k] > t_opt + 10 or t[k] < t_opt - 13) else t_e2(t[k])
        npp += sol[k] * fpar * 0.5 * t_e1 * stress * w_e * eps_max
        rh += 0.22 * (math.exp(0.0913 * t[k]) + math.log(0.3145 * p[k] + 1)) * 30 * 0.465
    return npp, rh


def _by_code(attr: str) -> dict[int, float]:
    return {int(k): float(v) for k, v in (item.split(":") for item in attr.split(","))}


def test_casa_on_one_pixel_by_hand_from_the_workflow_inputs(karst_run):
    """Monthly CASA (the default): one forest pixel's NPP, Rh and NEP of 2000 and 2023 by
    hand from the monthly climate the rule read, and the forest FPAR end-members from the
    NDVI of the forest pixel-years."""
    demo = karst_run / "resources" / "demo" / REGION
    npp = read_cube(res(karst_run, "carbon/npp_annual.nc"))
    assert npp.attrs["time_step"] == "monthly"
    ndvi = read_cube(res(karst_run, "greening/ndvi_annual.nc"))["ndvi"].values
    monthly = read_cube(res(karst_run, "climate/climate_monthly.nc"))
    lc0 = read_raster(demo / "landcover_2000.tif", masked=False).values
    lc1 = read_raster(demo / "landcover_2023.tif", masked=False).values
    # the months aggregate to the demo's annual climate (mean temperature, sums otherwise)
    annual = read_cube(demo / "climate.nc")
    np.testing.assert_allclose(
        monthly["temperature_c"].values[:12].mean(axis=0), annual["temperature_c"].values[0], atol=1e-4
    )
    np.testing.assert_allclose(
        monthly["precipitation_mm"].values[-12:].sum(axis=0), annual["precipitation_mm"].values[-1], rtol=1e-5
    )
    # forest (code 2) end-members: 95th percentiles over its pixel-years of known class (each
    # map's own year, and between the maps the pixels of one class in both)
    between = np.where(lc0 == lc1, lc0, -1)
    known = np.stack([lc0 if y == 2000 else lc1 if y == 2023 else between for y in range(2000, 2024)])
    forest = ndvi[(known == 2) & np.isfinite(ndvi)].astype(float)
    ndvi_max, sr_max = _by_code(npp.attrs["casa_ndvi_max_by_code"]), _by_code(npp.attrs["casa_sr_max_by_code"])
    assert ndvi_max[2] == pytest.approx(np.percentile(forest, 95), abs=2e-6)
    assert sr_max[2] == pytest.approx(np.percentile((1 + forest) / (1 - forest), 95), rel=1e-5)
    assert npp.attrs["casa_ndvi_min"] == 0.023 and npp.attrs["casa_sr_min"] == 1.05
    # the first forested-land pixel (epsilon_max 0.768) in both years with a full NDVI series
    iy, ix = next(
        (i, j) for i, j in zip(*np.nonzero((lc0 == 2) & (lc1 == 2)), strict=True) if np.isfinite(ndvi[:, i, j]).all()
    )
    for k in (0, 23):  # 2000 and 2023
        months = {
            v: monthly[v].values[12 * k : 12 * k + 12, iy, ix].astype(float).tolist()
            for v in monthly.data_vars
            if monthly[v].ndim == 3
        }
        expected_npp, expected_rh = _by_hand_npp(float(ndvi[k, iy, ix]), months, 0.768, ndvi_max[2], sr_max[2])
        assert float(npp["t_opt"][k, iy, ix]) == pytest.approx(max(months["temperature_c"]), abs=1e-5)
        assert float(npp["npp"][k, iy, ix]) == pytest.approx(expected_npp, rel=1e-4)
        assert float(npp["rh"][k, iy, ix]) == pytest.approx(expected_rh, rel=1e-5)
        assert float(npp["nep"][k, iy, ix]) == pytest.approx(expected_npp - expected_rh, rel=1e-3, abs=0.05)
    # bare rock and built-up take grassland's end-members (carbon.fpar.endmembers_of)
    assert ndvi_max[9] == ndvi_max[8] == ndvi_max[6] and sr_max[9] == sr_max[6]
    # a grassland pixel of 2000 that is other forest land in 2023: in 2006 (w = 6/23) its NPP is
    # the blend of the two classes' NPP, the expectation over the unobserved change year
    eps = _by_code(npp.attrs["epsilon_max_g_c_per_mj"])
    iy, ix = next(
        (i, j) for i, j in zip(*np.nonzero((lc0 == 6) & (lc1 == 3)), strict=True) if np.isfinite(ndvi[:, i, j]).all()
    )
    k, w = 6, 6 / 23
    months = {
        v: monthly[v].values[12 * k : 12 * k + 12, iy, ix].astype(float).tolist()
        for v in monthly.data_vars
        if monthly[v].ndim == 3
    }
    as_grass, _ = _by_hand_npp(float(ndvi[k, iy, ix]), months, eps[6], ndvi_max[6], sr_max[6])
    as_forest, _ = _by_hand_npp(float(ndvi[k, iy, ix]), months, eps[3], ndvi_max[3], sr_max[3])
    assert float(npp["npp"][k, iy, ix]) == pytest.approx((1 - w) * as_grass + w * as_forest, rel=1e-4)


def test_carbon_storage_and_sequestration_by_hand(karst_run):
    demo = karst_run / "resources" / "demo" / REGION
    pools = pd.read_csv(demo / "carbon_pools.csv")
    density = dict(zip(pools["lucode"], pools[["c_above", "c_below", "c_soil", "c_dead"]].sum(axis=1), strict=True))
    summary = json.loads(res(karst_run, "carbon/carbon.json").read_text())
    totals = {}
    for year in (2000, 2023):
        lc = read_raster(demo / f"landcover_{year}.tif", masked=False).values
        codes, counts = np.unique(lc, return_counts=True)
        totals[year] = sum(density[c] * n for c, n in zip(codes, counts, strict=True)) * 0.09  # 0.09 ha per pixel
        assert summary["carbon_storage_total_mg_c"][str(year)] == pytest.approx(totals[year], rel=1e-5)
        raster = read_raster(res(karst_run, f"carbon/carbon_storage_{year}.tif")).values
        assert raster[0, 0] == pytest.approx(density[lc[0, 0]])
    assert summary["sequestration"]["total_mg_c"] == pytest.approx(totals[2023] - totals[2000], rel=1e-4)
    # afforestation and RD restoration planted in the demo store carbon
    assert summary["sequestration"]["total_mg_c"] > 0
    # greening raises NPP: the NPP trend is steeper in the greening zone than in the stable
    # zone, on pixels of one land cover throughout (where the cover changes, NPP moves to the
    # new type's end-members and epsilon_max: the same NDVI gives a forest less FPAR than a
    # grassland, and the demo's other and sparse forest have a lower epsilon_max)
    zones = read_raster(demo / "trend_zones_truth.tif", masked=False).values
    lc0 = read_raster(demo / "landcover_2000.tif", masked=False).values
    same = lc0 == read_raster(demo / "landcover_2023.tif", masked=False).values
    npp_slope = read_raster(res(karst_run, "carbon/npp_trend_slope.tif")).values
    assert np.nanmedian(npp_slope[(zones == 1) & same]) > np.nanmedian(npp_slope[(zones == 0) & same]) + 5.0


def override(tmp_path: Path, name: str, section: dict) -> str:
    """A config file with one overriding section (YAML keeps its numbers numbers)."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(section))
    return str(path)


def test_parameter_changes_rerun_only_dependants(karst_run, tmp_path):
    extra = override(tmp_path, "alpha", {"greening": {"alpha": 0.01}})
    plan = planned_rules(karst_run, TARGET, "--configfile", extra)
    # carbon storage (stage carbon) reads no trend: only the NPP stage reruns with greening,
    # and the coupling tables, which read the trend classes and the NPP trend
    assert plan == {
        "greening_trend": 1,
        "greening_summary": 1,
        "carbon_npp": 1,
        "carbon_npp_summary": 1,
        **COUPLING,
        "region_summary": 1,
    }
    extra = override(tmp_path, "combine", {"desertification": {"combine": "max"}})
    plan = planned_rules(karst_run, TARGET, "--configfile", extra)
    assert plan == {
        "desertification_grades": 1,
        "desertification_area": 1,
        "desertification_map": 2,
        "desertification_summary": 1,
        **COUPLING,
        "region_summary": 1,
    }
    extra = override(tmp_path, "omega", {"carbon": {"fu_omega": 2.2}})
    plan = planned_rules(karst_run, TARGET, "--configfile", extra)
    assert plan == {"carbon_npp": 1, "carbon_npp_summary": 1, **COUPLING, "region_summary": 1}


def test_too_few_valid_years_gives_nan_and_a_logged_count(karst_run, tmp_path):
    workdir = tmp_path / "wd"
    shutil.copytree(karst_run, workdir, symlinks=True)
    target = f"results/{REGION}/greening/greening.json"
    snakemake(workdir, target, "--configfile", override(tmp_path, "min_valid", {"greening": {"min_valid_years": 24}}))
    missing_px = planted(workdir)["ndvi"]["missing"]["pixels_with_missing_years"]
    log = (workdir / "logs" / REGION / "greening_trend.log").read_text()
    assert f"{missing_px} pixels have fewer than 24 valid years" in log
    summary = json.loads(res(workdir, "greening/greening.json").read_text())
    assert summary["pixels_too_few_valid_years"] == missing_px and summary["min_valid_years"] == 24
    ndvi = read_cube(res(workdir, "greening/ndvi_annual.nc"))["ndvi"].values
    slope = read_raster(res(workdir, "greening/trend_slope.tif")).values
    short = ~np.isfinite(ndvi).all(axis=0)
    assert np.isnan(slope[short]).all() and np.isfinite(slope[~short]).all()


def test_climate_on_another_grid_fails_naming_both_files(karst_run, tmp_path):
    """A local region whose climate cube is one pixel off: its harmonisation refuses it,
    naming the file and the region grid, before CASA runs; the greening cube still builds."""
    demo = karst_run / "resources" / "demo" / REGION
    workdir = copy_workflow(Path(__file__).resolve().parents[1], tmp_path / "wd")
    data = workdir / "data"
    data.mkdir()
    climate = read_cube(demo / "climate.nc").load()
    shifted = climate.assign_coords(x=climate["x"] + 30.0)  # one pixel east
    write_netcdf(shifted, data / "climate_shifted.nc")
    grid = json.loads(res(karst_run, "grid.json").read_text())
    region = {
        "source": "local",
        "aoi": {"bounds": grid["bounds"]},
        "crs": grid["crs"],
        "resolution_m": grid["resolution"],
        "years": {"first": 2000, "last": 2023},
        "inputs": {
            "dem": str(demo / "dem.tif"),
            "annual_stack": str(demo / "ndvi_annual.nc"),
            "carbonate": str(demo / "carbonate.tif"),
            "climate": "data/climate_shifted.nc",
            "landcover": {"2000": str(demo / "landcover_2000.tif"), "2023": str(demo / "landcover_2023.tif")},
            "carbon_pools": str(demo / "carbon_pools.csv"),
        },
    }
    path = workdir / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["regions"] = {"lk": region}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    # annual climate only: monthly CASA (the default) stops at start-up, naming the keys
    proc = snakemake(workdir, "results/lk/carbon/npp_annual.nc", "-n", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "carbon.time_step" in out and "['lk']" in out and "climate_monthly" in out
    config["carbon"] = {**(config.get("carbon") or {}), "time_step": "annual"}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = snakemake(workdir, "results/lk/carbon/npp_annual.nc", "--keep-going", check=False)
    assert proc.returncode != 0
    log = (workdir / "logs" / "lk" / "inputs_cube_climate.log").read_text()
    assert "grid mismatch" in log
    assert "data/climate_shifted.nc (input climate)" in log and "results/lk/grid.json" in log
    assert not (workdir / "results" / "lk" / "inputs" / "climate.nc").exists()
    assert not (workdir / "results" / "lk" / "carbon" / "npp_annual.nc").exists()
    # the local annual stack itself went through the greening stage
    assert (workdir / "results" / "lk" / "greening" / "ndvi_annual.nc").exists()

"""End-to-end: a karst region configured with an AOI, years and a STAC source runs the karst
chain from what the workflow pulls itself.

The catalogue (:mod:`karst_catalog`) is served by a real STAC API on loopback
(stac-fastapi-static under uvicorn): Landsat Collection 2 Level-2 scenes 2010-2017 (TM,
ETM+ and OLI, real QA_PIXEL bits and scale factors, TM/ETM+ stored before the Roy et al.
2016 harmonisation), MODIS MOD13Q1 composites 2016-2021 in the sinusoidal CRS reading
``SENSOR_OFFSET`` higher, monthly climate COGs, ESA WorldCover 2020/2021 and a SoilGrids
layout read over HTTP. The region gives only its AOI file, years, the STAC URL, the sensor
per year range (Landsat 2010-2016, MODIS 2016-2021: 2016 is the overlap year), its own
lithology map (column ``LITH_CODE``) with the carbonate units, and the carbon-pool and
biophysical tables. One Snakemake run then checks:

* the planted greening (+0.015/yr) and browning (-0.010/yr) slopes and the stable zone are
  recovered by the greening stage, and the sensor of each year is in the cube and in
  greening.json;
* the planted MODIS offset is found on the overlap year and removed (without it the stable
  zone would show a spurious trend);
* rocky desertification on carbonate shrinks in the greening zone; its bedrock exposure is
  the linear unmixing of the pulled Landsat/MODIS surface reflectance (SWIR included) and
  recovers the planted rock fraction of every zone and year;
* the annual climate is the sum/mean of the served months, in converted units; the soil
  grids and the crosswalked WorldCover match what was served;
* fetching a year again (its table deleted, the tile cache kept) pulls nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from scipy.stats import theilslopes

import karst_catalog as kc

pytestmark = pytest.mark.e2e

REGION = "karst-stac"
#: fetch outputs made again from the cache (a TM year, an OLI year, a MODIS year)
REFETCHED = tuple(
    f"resources/fetched/{REGION}/vegetation/{name}.csv" for name in ("landsat_2011", "landsat_2014", "modis_2019")
)
STAGES = ["greening", "desertification", "carbon", "npp", "water_yield", "habitat_quality", "services"]
#: The rules that claim 2 threads take one here: on a 100 x 100 px region each is a few
#: seconds of single-threaded work, and at 2 threads the 2-core run would do them one at a
#: time (13 composites in a row) instead of two side by side. Results do not depend on it.
ONE_THREAD = [
    f"{rule}=1"
    for rule in (
        "vegetation_composite",
        "vegetation_stack",
        "greening_cube",
        "greening_trend",
        "desertification_endmembers",
        "desertification_grades",
        "carbon_npp_endmembers",
        "carbon_npp",
    )
]


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--set-threads", *ONE_THREAD, "--", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-8000:]}")
    return proc


@pytest.fixture(scope="module")
def run(workflow_runner, tmp_path_factory):
    from karstflow.demo.karst import BIOPHYSICAL, CARBON_POOLS

    root = tmp_path_factory.mktemp("karst-catalog")
    cat = kc.build_karst_catalog(root)
    tables = tmp_path_factory.mktemp("karst-tables")
    CARBON_POOLS.to_csv(tables / "carbon_pools.csv", index=False)
    BIOPHYSICAL.to_csv(tables / "biophysical.csv", index=False)
    with kc.serve_catalog(cat.catalog_json) as url:
        region = {
            "source": "stac",
            "crs": cat.crs,
            "resolution_m": cat.resolution,
            "aoi": {"path": str(cat.aoi)},
            "years": {"first": cat.years[0], "last": cat.years[-1]},
            "stac": {
                "url": url,
                "collections": {
                    "landsat": cat.collections["landsat"],
                    "modis": cat.collections["modis"],
                    "climate": cat.collections["climate"],
                    "landcover": cat.collections["landcover"],
                },
            },
            "vegetation": {
                "sensors": [
                    {"sensor": "landsat", "first": 2010, "last": 2016},
                    {"sensor": "modis", "first": 2016, "last": 2021},
                ],
                "season_months": list(cat.season_months),
            },
            "carbonate_units": list(cat.carbonate_units),
            "stages": STAGES,
            "inputs": {
                "lithology": {"path": str(cat.lithology), "columns": {"unit": cat.lithology_column}},
                "carbon_pools": str(tables / "carbon_pools.csv"),
                "biophysical": str(tables / "biophysical.csv"),
            },
        }

        def own_config(config):
            config.clear()
            config["regions"] = {REGION: region}
            config["terrain"] = {}
            config["climate"] = {"product": "terraclimate"}
            config["soil"] = {"base_url": cat.soilgrids_url(url)}
            # no roads layer in this region: the roads threat is taken out explicitly
            config["services"] = {"years": [2020, 2021], "habitat_quality": {"drop_threats": {REGION: ["roads"]}}}
            # the unmixing takes the planted end-members (MODIS years have no swir1, so the
            # stack's common bands are blue, red, nir, swir2)
            names = {"swir16": "swir1", "swir22": "swir2"}
            endmembers = {em: {names.get(b, b): v for b, v in spec.items()} for em, spec in kc.ENDMEMBERS.items()}
            config["desertification"] = {"unmixing": {"endmembers": endmembers}}
            # 384 px cache tiles: one lattice tile holds the whole 100 x 100 px region, so every
            # item is read once (256 px tiles split it in two, 1024 px read 50 times its pixels)
            config["imagery"] = {"cache_tile_px": 384}

        workdir = workflow_runner.copy(tmp_path_factory.mktemp("karst-from-tiles"), own_config)
        _snakemake(workdir)
        first_manifests = sorted((workdir / "resources" / "fetched").rglob("*.json"))
        # caching: the fetch tables gone, the tile cache kept: fetching again pulls nothing
        shutil.rmtree(workdir / "resources" / "fetched")
        _snakemake(workdir, *REFETCHED)
    return {"workdir": workdir, "catalog": cat, "first_manifests": first_manifests}


def _results(run, path: str) -> Path:
    return run["workdir"] / "results" / REGION / path


def _grid_centres(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with rasterio.open(path) as src:
        data = src.read(1, masked=True).astype(np.float64).filled(np.nan)
        rows, cols = np.meshgrid(np.arange(src.height), np.arange(src.width), indexing="ij")
        xs, ys = rasterio.transform.xy(src.transform, rows.ravel(), cols.ravel())
    return data, np.asarray(xs).reshape(data.shape), np.asarray(ys).reshape(data.shape)


def _zone_interior(xs: np.ndarray, zone: str, margin: float = 300.0) -> np.ndarray:
    """Pixels of ``zone`` away from its edges (MODIS pixels straddling an edge mix zones)."""
    lo = {"greening": kc.REGION_BOUNDS[0], "browning": kc.ZONE_EDGES[0], "stable": kc.ZONE_EDGES[1]}[zone]
    hi = {"greening": kc.ZONE_EDGES[0], "browning": kc.ZONE_EDGES[1], "stable": kc.REGION_BOUNDS[2]}[zone]
    return (xs > lo + margin) & (xs < hi - margin)


def test_planted_slopes_are_recovered(run):
    slope, xs, _ = _grid_centres(_results(run, "greening/trend_slope.tif"))
    for zone, planted in (("greening", kc.GREENING_SLOPE), ("browning", kc.BROWNING_SLOPE), ("stable", 0.0)):
        found = float(np.nanmedian(slope[_zone_interior(xs, zone)]))
        assert found == pytest.approx(planted, abs=1.5e-3), zone


def test_sensor_of_each_year_in_the_cube_and_greening_json(run):
    cube = xr.open_dataset(_results(run, "greening/ndvi_annual.nc"))
    sensors = dict(zip(cube["year"].values.tolist(), cube["sensor"].values.tolist(), strict=True))
    assert sensors == {y: ("landsat" if y <= 2016 else "modis") for y in range(2010, 2022)}
    summary = json.loads(_results(run, "greening/greening.json").read_text())
    assert summary["sensor_of_year"] == {str(y): s for y, s in sensors.items()}


def test_the_planted_sensor_offset_is_found_on_the_overlap_year_and_removed(run):
    calibration = json.loads(_results(run, "vegetation/calibration.json").read_text())
    (cal,) = calibration["calibrations"]
    assert (cal["source_sensor"], cal["target_sensor"], cal["year"]) == ("modis", "landsat", 2016)
    # landsat = offset + gain * modis: the MODIS offset comes off
    assert cal["gain"] == pytest.approx(1.0, abs=0.05)
    assert cal["offset"] + (cal["gain"] - 1.0) * 0.55 == pytest.approx(-kc.SENSOR_OFFSET, abs=0.01)
    cube = xr.open_dataset(_results(run, "greening/ndvi_annual.nc"))
    xs = np.broadcast_to(cube["x"].values, cube["ndvi"].shape[1:])
    stable = _zone_interior(xs, "stable")
    calibrated = [float(np.nanmean(cube["ndvi"].sel(year=y).values[stable])) for y in range(2010, 2022)]
    raw = []
    for y in range(2010, 2022):
        sensor = "landsat" if y <= 2016 else "modis"
        with rasterio.open(_results(run, f"vegetation/{sensor}_{y}.tif")) as src:
            raw.append(float(np.nanmean(src.read(1)[stable])))
    years = np.arange(2010, 2022)
    assert theilslopes(raw, years)[0] > 0.003  # the switch alone would read as greening
    assert abs(theilslopes(calibrated, years)[0]) < 1e-3
    assert np.allclose(calibrated, kc.STABLE_NDVI, atol=0.01)


def test_rocky_desertification_shrinks_where_it_greens(run):
    grades = xr.open_dataset(_results(run, "desertification/rd_grade_annual.nc"))
    xs = np.broadcast_to(grades["x"].values, grades["rd_grade"].shape[1:])
    west = _zone_interior(xs, "greening")
    g = grades["rd_grade"].values
    first, last = g[0][west], g[-1][west]
    assert np.nanmean(last) < np.nanmean(first) - 0.5
    # the east third is sandstone: never graded
    east = _zone_interior(xs, "stable", margin=60.0)
    assert (g[:, east] == 255).all()


def test_desertification_unmixes_the_pulled_reflectance_into_the_planted_rock(run):
    grades = xr.open_dataset(_results(run, "desertification/rd_grade_annual.nc"))
    # no bedrock_exposure layer and reflectance in every year's composite: auto -> unmixing
    assert grades.attrs["exposure_method"] == "unmixing"
    assert grades.attrs["unmixing_bands"] == "blue,red,nir,swir2"  # MODIS has no 1.6 um band
    stack = xr.open_dataset(_results(run, "vegetation/annual_stack.nc"))
    assert {"blue", "red", "nir", "swir2"} <= set(stack.data_vars) and "swir1" not in stack.data_vars
    expo = grades["bedrock_exposure"]
    xs = np.broadcast_to(expo["x"].values, expo.shape[1:])
    worst = 0.0
    for zone, x in (("greening", 570500.0), ("browning", 571500.0), ("stable", 572500.0)):
        inside = _zone_interior(xs, zone)
        for k, year in enumerate(expo["year"].values.tolist()):
            found = float(np.nanmedian(expo.values[k][inside]))
            worst = max(worst, abs(found - kc.truth_rock(year, x)))
            assert found == pytest.approx(kc.truth_rock(year, x), abs=0.02), (zone, year)
    # the planted rock falls where it greens (0.47 -> 0.30) and rises where it browns
    first, last = (float(np.nanmedian(expo.values[k][_zone_interior(xs, "greening")])) for k in (0, -1))
    assert last < first - 0.1
    print(f"largest |unmixed - planted rock fraction| over zones and years: {worst:.4f}")


def test_annual_climate_is_the_months_in_converted_units(run):
    annual = xr.open_dataset(_results(run, "climate/climate_annual.nc"))
    for year in (2010, 2015, 2021):
        pr = sum(kc.truth_climate("pr", year, m) for m in range(1, 13))
        t = np.mean([(kc.truth_climate("tmmx", year, m) + kc.truth_climate("tmmn", year, m)) / 2 for m in range(1, 13)])
        pet = sum(kc.truth_climate("pet", year, m) for m in range(1, 13))
        got = annual.sel(year=year)
        assert float(got["precipitation_mm"].mean()) == pytest.approx(pr, rel=1e-3)
        assert float(got["temperature_c"].mean()) == pytest.approx(t, abs=0.01)
        assert float(got["eto_mm"].mean()) == pytest.approx(pet, rel=1e-3)
    assert annual["precipitation_mm"].attrs["units"] == "mm yr-1"
    assert annual["solar_mj_m2"].attrs["units"] == "MJ m-2 yr-1"


def test_soil_grids_and_the_crosswalked_worldcover(run):
    from karstflow.crosswalk import DEFAULT_CROSSWALKS

    soil = xr.open_dataset(_results(run, "soil/soil_grids.nc"))
    sand_top = kc.truth_soil("sand", "0-5cm") / 10.0  # g/kg -> %
    assert 0.5 * sand_top < float(soil["sand_pct"].mean()) < 1.5 * sand_top
    for year in (2020, 2021):
        lc, xs, ys = _grid_centres(_results(run, f"landcover/public_{year}.tif"))
        truth = kc.truth_landcover(year, xs, ys)
        expected = np.vectorize(DEFAULT_CROSSWALKS["worldcover"].get)(truth)
        # nearest resampling from 0.00027 deg: pixels on a band edge may take the neighbour
        assert np.mean(lc == expected) > 0.9


def test_services_and_carbon_ran_on_the_pulled_layers(run):
    summary = json.loads((run["workdir"] / "results" / REGION / "summary.json").read_text())
    assert {"greening", "desertification", "npp", "services"} <= set(summary)
    plan = json.loads(_results(run, "plan.json").read_text())
    assert plan["stages"]["vegetation"]["runs"] and plan["stages"]["soil"]["runs"]


def test_a_rerun_fetches_nothing_the_cache_holds(run):
    assert run["first_manifests"]
    assert len(run["first_manifests"]) >= 13  # every sensor-year fetched once
    again = [run["workdir"] / Path(p).with_suffix(".json") for p in REFETCHED]
    for manifest in again:
        entry = json.loads(manifest.read_text())
        assert entry["tiles_fetched"] == 0 and entry["tiles_from_cache"] > 0, manifest

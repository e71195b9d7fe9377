"""End-to-end: a user's own regions, laid out as their owners have them, and the stage plan.

1. A county laid out as its owner has it. A tiny county (400 x 400 px at 10 m, EPSG:32650,
   seed 42) is generated with :mod:`karstflow.demo` into a temporary folder and written
   out twice, as two ordinary ``source: local`` regions without a ``demo:`` block:

   * ``county-native``: every input points at the generated files as they are;
   * ``county-user``: the same data as an owner would hand it over: parcels as an ESRI
     Shapefile with their own column names (``FID_2020``, ``KXND``), villages as GeoJSON in
     EPSG:4326 with the population in ``RKZS``, forest types as the Chinese land-survey
     names in ``DLMC`` (a named GeoPackage layer), red-line kinds as Chinese names,
     quality grades under other column names, townships as FlatGeobuf and the DEM in
     EPSG:4326 as four tiles given by a glob; all mapped back with ``columns`` / ``values``.

   The DEM. Comparing the two layouts at floating-point tolerance needs both runs to see
   the same DEM on the grid. So the data set's DEM *is* the EPSG:4326 one: the generated
   DEM (edge-padded so the warp covers the whole grid) is warped to EPSG:4326 with
   rasterio (bilinear) and cut along pixel boundaries into four tiles. The user layout
   gives those tiles by glob; the native layout gives their mosaic already on the grid
   (warped by :func:`karstflow.harmonise.raster_to_grid`, bilinear like the rule), which
   terrain_dem then copies unchanged. Every figure of the study (abandonment rates, the
   logit table, capacity, reserve counts) must then agree to rounding. (The Shapefile's
   clockwise rings once moved the road distances x4/x5 of parcels a road crosses:
   karstflow.network now joins such a parcel to the road along the whole crossing.)

2. A karst-style region with only land-cover maps (2000 in EPSG:4326, 2023 on a grid whose
   origin is not a multiple of the 30 m pixel, taken as ``grid_like``) and a carbon-pool
   table with its own column names: exactly carbon, habitat quality and the service
   summary run, every GeoTIFF lies on the ``grid_like`` grid and the carbon totals equal a
   hand calculation.

3. The stage plan: printed at start-up, a requested stage without its inputs stops the dry
   run naming region, stage and key, and unit tests of :func:`karstflow.stages.plan_region`.

One Snakemake run per layout (three in all, about 3-4 minutes on 2 cores).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from rasterio.warp import Resampling, calculate_default_transform, reproject
from rasterio.windows import Window

from karstflow.stages import STAGES, PlanError, format_plan, plan_region

pytestmark = pytest.mark.e2e

COUNTY_CRS = "EPSG:32650"
COUNTY_ORIGIN = (500000.0, 2904000.0)
COUNTY_PX = 400
COUNTY_RES = 10.0
COUNTY_STAGES = ["terrain", "imagery", "landcover", "abandonment", "drivers", "model", "reserve", "capacity"]
PERIODS = {
    "2022": {"start": "2022-01-01", "end": "2022-12-31"},
    "2022-h1": {"start": "2022-01-01", "end": "2022-06-30"},
    "2022-h2": {"start": "2022-07-01", "end": "2022-12-31"},
}
FOREST_TYPES_ZH = {"forested land": "乔木林地", "other forest land": "其他林地", "sparse forest land": "疏林地"}
REDLINE_KINDS_ZH = {
    "nature_reserve": "自然保护区",
    "park": "森林公园",
    "drinking_water_source": "饮用水水源保护区",
    "fragile_zone": "生态脆弱区",
    "geohazard_zone": "地质灾害危险区",
    "flood_storage": "蓄滞洪区",
}
GRADE_COLUMNS = {"natural_grade": "ZRD", "utilization_grade": "LYD", "economic_grade": "JJD"}

KARST_CRS = "EPSG:32648"
KARST_ORIGIN = (600000.0, 2800000.0)
KARST_PX = 80
KARST_RES = 30.0
KARST_SHIFT_M = 12.5  # the grid_like raster's origin is off the 30 m lattice by this much
POOL_COLUMNS = {"lucode": "LU_CODE", "c_above": "AGB_C", "c_below": "BGB_C", "c_soil": "SOC", "c_dead": "DOM_C"}

#: Relative tolerance of the figures compared between the two county layouts.
FIGURE_RTOL = 1e-9


class WorkflowFailed(RuntimeError):
    """A Snakemake run of a fixture failed (kept apart from the tests' AssertionErrors)."""


def _snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check and proc.returncode != 0:
        raise WorkflowFailed(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


#: The default habitat-threat table has roads; a region without a roads layer takes the
#: threat out explicitly (its weight is never renormalised over the others silently).
NO_ROADS = {"habitat_quality": {"drop_threats": {"my-karst": ["roads"]}}}


def _workflow_copy(workflow_runner, dest: Path, regions: dict, terrain_section: bool = True) -> Path:
    """The workflow in ``dest`` with a config of its own: these regions, schema defaults
    for everything else (``terrain: {}`` too: see test_a_config_of_regions_alone_runs),
    and the explicit drop of the roads threat for the karst region (NO_ROADS)."""

    def own_config(config):
        config.clear()
        config["regions"] = regions
        if terrain_section:
            config["terrain"] = {}
        if "my-karst" in regions:
            config["services"] = NO_ROADS

    return workflow_runner.copy(dest, own_config)


def _plan(workdir: Path, region: str) -> dict:
    return json.loads((workdir / "results" / region / "plan.json").read_text())


# --------------------------------------------------------------------------------------
# 1. the county: the generated data set and its two layouts
# --------------------------------------------------------------------------------------


def _county_grid():
    from karstflow.grid import RegionGrid, demo_bounds

    return RegionGrid.from_bounds(COUNTY_CRS, COUNTY_RES, demo_bounds(COUNTY_ORIGIN, COUNTY_PX, COUNTY_RES))


def _dem_tiles_4326(dem_path: Path, out_dir: Path, pad_px: int = 20) -> list[Path]:
    """The generated DEM warped to EPSG:4326 (bilinear), cut into 2 x 2 tiles along pixel
    boundaries. The DEM is edge-padded first so the warped raster covers the whole grid."""
    with rasterio.open(dem_path) as src:
        dem = src.read(1).astype("float64")
        t, crs = src.transform, src.crs
    padded = np.pad(dem, pad_px, mode="edge")
    t_pad = t @ rasterio.Affine.translation(-pad_px, -pad_px)
    h, w = padded.shape
    left, top = t_pad.c, t_pad.f
    bounds = (left, top + t_pad.e * h, left + t_pad.a * w, top)
    dst_t, dst_w, dst_h = calculate_default_transform(crs, "EPSG:4326", w, h, *bounds)
    out = np.full((dst_h, dst_w), np.nan, dtype="float32")
    reproject(
        padded.astype("float32"),
        out,
        src_transform=t_pad,
        src_crs=crs,
        src_nodata=np.nan,
        dst_transform=dst_t,
        dst_crs="EPSG:4326",
        dst_nodata=np.nan,
        resampling=Resampling.bilinear,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    tiles = []
    rows, cols = (0, dst_h // 2, dst_h), (0, dst_w // 2, dst_w)
    for i in range(2):
        for j in range(2):
            win = Window(cols[j], rows[i], cols[j + 1] - cols[j], rows[i + 1] - rows[i])
            path = out_dir / f"ASTGTM_N{i}E{j}_dem.tif"
            profile = dict(
                driver="GTiff",
                height=int(win.height),
                width=int(win.width),
                count=1,
                dtype="float32",
                crs="EPSG:4326",
                transform=rasterio.windows.transform(win, dst_t),
                nodata=np.nan,
            )
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(out[rows[i] : rows[i + 1], cols[j] : cols[j + 1]], 1)
            tiles.append(path)
    return tiles


def make_county_layouts(root: Path) -> tuple[dict, dict]:
    """Generate the county into ``root`` and return (native region, user region) configs."""
    from karstflow.demo import generate, write_bundle
    from karstflow.grid import demo_bounds
    from karstflow.harmonise import raster_to_grid
    from karstflow.io import write_raster

    grid = _county_grid()
    gen = root / "generated"
    write_bundle(generate("county", grid, 42, years=(2022,)), gen)

    # the data set's DEM: EPSG:4326 tiles; the native layout gets their mosaic on the grid
    tiles = _dem_tiles_4326(gen / "dem.tif", root / "dem_tiles")
    native_dem = root / "native" / "dem_on_grid.tif"
    native_dem.parent.mkdir(parents=True)
    write_raster(raster_to_grid([str(p) for p in tiles], grid, resampling="bilinear", source="test dem"), native_dem)

    user = root / "user"
    user.mkdir()
    parcels = gpd.read_file(gen / "parcels.gpkg")
    parcels = parcels.rename(columns={"parcel_id": "FID_2020", "reclaim_year": "KXND", "abandoned_true": "TRUTH"})
    parcels.to_file(user / "parcels_2020.shp", driver="ESRI Shapefile")

    villages = gpd.read_file(gen / "villages.gpkg").rename(columns={"population": "RKZS"}).to_crs("EPSG:4326")
    villages.to_file(user / "villages.geojson", driver="GeoJSON")

    forest = gpd.read_file(gen / "forest.gpkg")
    forest["forest_type"] = forest["forest_type"].map(FOREST_TYPES_ZH)
    forest = forest.rename(columns={"forest_type": "DLMC"})
    forest.to_file(user / "lindi.gpkg", layer="lin_di", driver="GPKG")

    redline = gpd.read_file(gen / "redline.gpkg")
    redline["kind"] = redline["kind"].map(REDLINE_KINDS_ZH)
    assert redline["kind"].notna().all()
    redline.to_file(user / "shengtai_hongxian.gpkg", driver="GPKG")

    grades = gpd.read_file(gen / "quality_grades.gpkg").rename(columns=GRADE_COLUMNS)
    grades.to_file(user / "gengdi_dengbie.gpkg", driver="GPKG")

    gpd.read_file(gen / "townships.gpkg").to_file(user / "townships.fgb", driver="FlatGeobuf")

    common = {
        "source": "local",
        "crs": COUNTY_CRS,
        "resolution_m": COUNTY_RES,
        "aoi": {"bounds": list(demo_bounds(COUNTY_ORIGIN, COUNTY_PX, COUNTY_RES))},
        "years": {"first": 2022, "last": 2022},
        "stages": COUNTY_STAGES,
        "periods": PERIODS,
    }
    vectors = (
        "parcels",
        "villages",
        "settlements",
        "roads",
        "farmland",
        "quality_grades",
        "forest",
        "redline",
        "soil",
        "irrigation",
        "townships",
    )
    native_inputs = {
        "dem": str(native_dem),
        "imagery": {"date_table": str(gen / "s2" / "scenes.csv")},
        "reference": str(gen / "reference_points.gpkg"),
        **{name: str(gen / f"{name}.gpkg") for name in vectors},
        "accumulated_temperature": str(gen / "accumulated_temperature.tif"),
        "precipitation": str(gen / "precipitation.tif"),
    }
    user_inputs = {
        **native_inputs,
        "dem": str(root / "dem_tiles" / "ASTGTM_*_dem.tif"),
        "parcels": {
            "path": str(user / "parcels_2020.shp"),
            "columns": {"parcel_id": "FID_2020", "reclaim_year": "KXND"},
        },
        "villages": {"path": str(user / "villages.geojson"), "columns": {"population": "RKZS"}},
        "forest": {
            "path": str(user / "lindi.gpkg"),
            "layer": "lin_di",
            "columns": {"forest_type": "DLMC"},
            "values": {"forest_type": {zh: en for en, zh in FOREST_TYPES_ZH.items()}},
        },
        "redline": {
            "path": str(user / "shengtai_hongxian.gpkg"),
            "values": {"kind": {zh: en for en, zh in REDLINE_KINDS_ZH.items()}},
        },
        "quality_grades": {"path": str(user / "gengdi_dengbie.gpkg"), "columns": GRADE_COLUMNS},
        "townships": str(user / "townships.fgb"),
    }
    return {**common, "inputs": native_inputs}, {**common, "inputs": user_inputs}


# --------------------------------------------------------------------------------------
# 2. the karst-style region: land-cover maps and a carbon-pool table only
# --------------------------------------------------------------------------------------


def make_karst_region(root: Path) -> dict:
    """Generate the karst demo into ``root`` and return a region with only land cover
    (2000 in EPSG:4326, 2023 off the 30 m lattice and the grid) and carbon pools."""
    from karstflow.demo import generate, write_bundle
    from karstflow.grid import RegionGrid, demo_bounds

    grid = RegionGrid.from_bounds(KARST_CRS, KARST_RES, demo_bounds(KARST_ORIGIN, KARST_PX, KARST_RES))
    gen = root / "generated"
    write_bundle(generate("karst", grid, 7), gen)
    own = root / "own"
    own.mkdir()

    # 2023: the same pixels on a lattice shifted by 12.5 m east and north (the grid)
    with rasterio.open(gen / "landcover_2023.tif") as src:
        profile, data = src.profile, src.read(1)
    profile["transform"] = rasterio.Affine.translation(KARST_SHIFT_M, KARST_SHIFT_M) @ profile["transform"]
    with rasterio.open(own / "lulc_2023_shifted.tif", "w", **profile) as dst:
        dst.write(data, 1)

    # 2000: warped to EPSG:4326 (nearest), as a national product might come
    with rasterio.open(gen / "landcover_2000.tif") as src:
        t, w, h = calculate_default_transform(src.crs, "EPSG:4326", src.width, src.height, *src.bounds)
        out = np.full((h, w), 255, dtype="uint8")
        reproject(
            src.read(1),
            out,
            src_transform=src.transform,
            src_crs=src.crs,
            src_nodata=255,
            dst_transform=t,
            dst_crs="EPSG:4326",
            dst_nodata=255,
            resampling=Resampling.nearest,
        )
        profile = dict(src.profile, crs="EPSG:4326", transform=t, width=w, height=h)
    with rasterio.open(own / "lulc_2000_wgs84.tif", "w", **profile) as dst:
        dst.write(out, 1)

    pools = pd.read_csv(gen / "carbon_pools.csv").rename(columns=POOL_COLUMNS)
    pools.to_csv(own / "tan_ku.csv", index=False)

    return {
        "source": "local",
        "grid_like": str(own / "lulc_2023_shifted.tif"),
        "years": {"first": 2000, "last": 2023},
        "inputs": {
            "landcover": {2000: str(own / "lulc_2000_wgs84.tif"), 2023: str(own / "lulc_2023_shifted.tif")},
            "carbon_pools": {"path": str(own / "tan_ku.csv"), "columns": POOL_COLUMNS},
        },
    }


# --------------------------------------------------------------------------------------
# fixtures: one Snakemake run per layout
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def county_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("user-county")
    native, user = make_county_layouts(root / "data")
    return root, native, user


def _run_region(workflow_runner, root: Path, region_id: str, region: dict) -> Path:
    workdir = _workflow_copy(workflow_runner, root / f"run-{region_id}", {region_id: region})
    _snakemake(workdir)
    return workdir / "results" / region_id


@pytest.fixture(scope="module")
def county_native(workflow_runner, county_data) -> Path:
    root, native, _ = county_data
    return _run_region(workflow_runner, root, "county-native", native)


@pytest.fixture(scope="module")
def county_user(workflow_runner, county_data) -> Path:
    root, _, user = county_data
    return _run_region(workflow_runner, root, "county-user", user)


@pytest.fixture(scope="module")
def karst_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("user-karst")
    return root, make_karst_region(root / "data")


@pytest.fixture(scope="module")
def karst_run(workflow_runner, karst_data) -> Path:
    root, region = karst_data
    return _run_region(workflow_runner, root, "my-karst", region)


def _max_rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = np.maximum(np.abs(a), np.abs(b))
    diff = np.abs(a - b)
    return float(np.nanmax(np.where(scale > 0, diff / np.where(scale > 0, scale, 1), 0.0))) if a.size else 0.0


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


# --------------------------------------------------------------------------------------
# 1. the county laid out as its owner has it
# --------------------------------------------------------------------------------------


def test_every_county_stage_runs_for_the_user_region(county_user, county_native):
    for base in (county_user, county_native):
        plan = _json(base / "plan.json")
        assert plan["runs"] == COUNTY_STAGES, base.name
        assert all(plan["stages"][s]["runs"] for s in COUNTY_STAGES)
        for stage in COUNTY_STAGES:
            outputs = [o for o in STAGES[stage].outputs if "{" not in o]
            assert all((base / o).exists() for o in outputs), (base.name, stage)


def test_user_inputs_are_harmonised_to_the_canonical_layers(county_user, county_native):
    inputs, native = county_user / "inputs", county_native / "inputs"
    expected = {
        "parcels",
        "villages",
        "forest",
        "redline",
        "quality_grades",
        "townships",
        "reference",
        "settlements",
        "roads",
        "farmland",
        "soil",
        "irrigation",
    }
    assert {p.stem for p in inputs.glob("*.gpkg")} == expected
    assert {p.name for p in inputs.glob("*.tif")} == {"accumulated_temperature.tif", "precipitation.tif"}
    layers = {name: gpd.read_file(inputs / f"{name}.gpkg") for name in expected}
    assert all(g.crs == COUNTY_CRS for g in layers.values())

    parcels, parcels_native = layers["parcels"], gpd.read_file(native / "parcels.gpkg")
    assert {"parcel_id", "reclaim_year"} <= set(parcels.columns)
    assert not {"FID_2020", "KXND"} & set(parcels.columns)
    assert pd.api.types.is_integer_dtype(parcels["parcel_id"]) and pd.api.types.is_integer_dtype(
        parcels["reclaim_year"]
    )
    np.testing.assert_array_equal(parcels["parcel_id"], parcels_native["parcel_id"])
    np.testing.assert_array_equal(parcels["reclaim_year"], parcels_native["reclaim_year"])
    assert parcels.geometry.geom_equals(parcels_native.geometry).all()  # same shapes, rings reversed by the .shp

    forest, forest_native = layers["forest"], gpd.read_file(native / "forest.gpkg")
    assert set(forest["forest_type"]) == set(FOREST_TYPES_ZH)  # English again
    assert list(forest["forest_type"]) == list(forest_native["forest_type"])
    assert set(gpd.read_file(inputs / "redline.gpkg")["kind"]) <= set(REDLINE_KINDS_ZH)
    assert list(layers["redline"]["kind"]) == list(gpd.read_file(native / "redline.gpkg")["kind"])
    np.testing.assert_array_equal(
        layers["villages"]["population"], gpd.read_file(native / "villages.gpkg")["population"]
    )
    grades = layers["quality_grades"]
    for canonical, own in GRADE_COLUMNS.items():
        assert canonical in grades.columns and own not in grades.columns
    np.testing.assert_array_equal(
        layers["townships"]["township_id"], gpd.read_file(native / "townships.gpkg")["township_id"]
    )


def test_the_dem_tiles_and_the_mosaic_give_the_same_dem_on_the_grid(county_user, county_native):
    with (
        rasterio.open(county_user / "terrain" / "dem.tif") as a,
        rasterio.open(county_native / "terrain" / "dem.tif") as b,
    ):
        assert (a.crs, a.transform, a.shape) == (b.crs, b.transform, b.shape)
        user, native = a.read(1), b.read(1)
    assert np.isfinite(user).all() and np.isfinite(native).all()
    np.testing.assert_allclose(user, native, rtol=0, atol=1e-4)
    log = (county_user.parents[1] / "logs" / "county-user" / "terrain_dem.log").read_text()
    assert "4 tile(s) from EPSG:4326" in log


def test_abandonment_rates_agree_between_the_layouts(county_user, county_native):
    a, b = (
        _json(county_user / "abandonment" / "abandonment.json"),
        _json(county_native / "abandonment" / "abandonment.json"),
    )
    assert a["parcels"] == b["parcels"] and a["abandoned_parcels"] == b["abandoned_parcels"]
    assert a["abandoned_parcels"] > 0
    for key in ("abandonment_rate_by_count", "abandonment_rate_by_area", "abandoned_area_ha", "parcel_area_ha"):
        assert a[key] == pytest.approx(b[key], rel=FIGURE_RTOL), key
    assert a["by_reclaim_year"].keys() == b["by_reclaim_year"].keys()
    for year, row in a["by_reclaim_year"].items():
        assert row["abandoned_parcels"] == b["by_reclaim_year"][year]["abandoned_parcels"]
        assert row["abandonment_rate_by_area"] == pytest.approx(
            b["by_reclaim_year"][year]["abandonment_rate_by_area"], rel=FIGURE_RTOL
        )


NON_NETWORK_DRIVERS = [
    "x1_elevation_m",
    "x2_slope_deg",
    "x3_aspect_class",
    "x6_population_density_per_km2",
    "x7_natural_grade",
    "x8_utilization_grade",
    "x9_economic_grade",
    "x10_area_ha",
]


def _drivers(base: Path) -> pd.DataFrame:
    return pd.read_csv(base / "drivers" / "parcel_drivers.csv").set_index("parcel_id").sort_index()


def test_drivers_off_the_road_network_agree_between_the_layouts(county_user, county_native):
    a, b = _drivers(county_user), _drivers(county_native)
    assert a.index.equals(b.index)
    np.testing.assert_array_equal(a["abandoned"], b["abandoned"])
    for col in NON_NETWORK_DRIVERS:
        np.testing.assert_allclose(a[col], b[col], rtol=FIGURE_RTOL, err_msg=col)


def test_road_distances_agree_between_the_layouts(county_user, county_native):
    a, b = _drivers(county_user), _drivers(county_native)
    for col in ("x4_settlement_distance_m", "x5_farmland_distance_m"):
        np.testing.assert_allclose(a[col], b[col], rtol=FIGURE_RTOL, err_msg=col)


def test_logit_coefficients_agree_between_the_layouts(county_user, county_native):
    a = pd.read_csv(county_user / "model" / "logit_coefficients.csv").set_index("term")
    b = pd.read_csv(county_native / "model" / "logit_coefficients.csv").set_index("term")
    assert a.index.equals(b.index)
    for col in ("B", "SE", "Wald", "p", "exp_B"):  # SPSS: B, S.E., Wald, Sig., Exp(B)
        np.testing.assert_allclose(a[col], b[col], rtol=FIGURE_RTOL, err_msg=col)


def test_capacity_lost_and_activated_agree_between_the_layouts(county_user, county_native):
    a, b = _json(county_user / "capacity" / "capacity.json"), _json(county_native / "capacity" / "capacity.json")
    assert a["lost_parcels"] == b["lost_parcels"]
    for key in ("lost_t", "lost_area_ha", "activated_t", "reclaimable_area_ha", "planned_t", "planned_area_ha"):
        assert a[key] == pytest.approx(b[key], rel=FIGURE_RTOL), key
    assert a["lost_t"] > 0 and a["activated_t"] > 0
    for kind, t in a["activated_t_by_forest_type"].items():
        assert t == pytest.approx(b["activated_t_by_forest_type"][kind], rel=FIGURE_RTOL)
    sa = pd.read_csv(county_user / "capacity" / "capacity_summary.csv")
    sb = pd.read_csv(county_native / "capacity" / "capacity_summary.csv")
    pd.testing.assert_frame_equal(sa, sb, check_exact=False, rtol=FIGURE_RTOL)


def test_reserve_summary_agrees_between_the_layouts(county_user, county_native):
    a = pd.read_csv(county_user / "reserve" / "reserve_summary.csv")
    b = pd.read_csv(county_native / "reserve" / "reserve_summary.csv")
    counts = ["candidates", "reclaimable", "reclaimable_with_not_evaluated"]
    pd.testing.assert_frame_equal(a[["grouping", "group", *counts]], b[["grouping", "group", *counts]])
    assert set(a.loc[a["grouping"] == "forest_type", "group"]) == set(FOREST_TYPES_ZH)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=FIGURE_RTOL)
    assert a.loc[a["grouping"] == "all", "reclaimable"].item() > 0


# --------------------------------------------------------------------------------------
# 2. the karst-style region with land cover and carbon pools only
# --------------------------------------------------------------------------------------

KARST_RUNS = ["carbon", "habitat_quality", "services"]


def test_land_cover_only_region_gets_exactly_the_stages_its_inputs_allow(karst_run):
    plan = _json(karst_run / "plan.json")
    assert plan["runs"] == KARST_RUNS
    # the same as the registry gives for these inputs
    assert [s for s, p in plan_region({"landcover", "carbon_pools"}).items() if p.runs] == KARST_RUNS
    stages = plan["stages"]
    assert "annual_stack" in stages["greening"]["missing_inputs"]
    assert {"climate", "soil_grids", "biophysical"} <= set(stages["water_yield"]["missing_inputs"])
    assert stages["terrain"]["missing_inputs"] == ["dem"]
    assert all(not stages[s]["runs"] and stages[s]["missing_inputs"] for s in STAGES if s not in KARST_RUNS)
    assert {p.name for p in karst_run.iterdir() if p.is_dir()} <= {"inputs", "carbon", "services", "maps"}


def test_land_cover_only_region_writes_carbon_and_habitat_quality(karst_run):
    for year in (2000, 2023):
        assert (karst_run / "carbon" / f"carbon_storage_{year}.tif").exists()
        assert (karst_run / "services" / f"habitat_quality_{year}.tif").exists()
    with rasterio.open(karst_run / "services" / "habitat_quality_2023.tif") as src:
        quality = src.read(1)
    assert np.nanmin(quality) >= 0 and np.nanmax(quality) <= 1 and np.isfinite(quality).mean() > 0.9


def test_every_geotiff_lies_on_the_grid_like_raster(karst_run, karst_data):
    _, region = karst_data
    with rasterio.open(region["grid_like"]) as ref:
        crs, transform, shape = ref.crs, ref.transform, ref.shape
    assert transform.c % KARST_RES != 0 and transform.f % KARST_RES != 0  # off the lattice: not snapped
    tifs = sorted(karst_run.rglob("*.tif"))
    assert len(tifs) >= 10
    for path in tifs:
        with rasterio.open(path) as src:
            assert (src.crs, src.transform, src.shape) == (crs, transform, shape), path.relative_to(karst_run)


def test_land_cover_maps_are_put_on_the_grid_by_nearest(karst_run, karst_data):
    from karstflow.grid import RegionGrid
    from karstflow.harmonise import raster_to_grid

    _, region = karst_data
    maps = region["inputs"]["landcover"]
    with rasterio.open(maps[2023]) as a, rasterio.open(karst_run / "inputs" / "landcover_2023.tif") as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))  # on the grid already: copied
    grid = RegionGrid.from_raster(region["grid_like"])
    expected = raster_to_grid(maps[2000], grid, resampling="nearest", source="test").values
    with rasterio.open(karst_run / "inputs" / "landcover_2000.tif") as src:
        got = src.read(1)
    np.testing.assert_array_equal(got, expected)
    assert set(np.unique(got)) <= set(range(1, 10)) | {255}
    assert (got != 255).mean() > 0.95


def test_carbon_totals_equal_a_hand_calculation(karst_run, karst_data):
    root, region = karst_data
    pools = pd.read_csv(root / "data" / "generated" / "carbon_pools.csv").set_index("lucode")
    density = pools[["c_above", "c_below", "c_soil", "c_dead"]].sum(axis=1)
    pixel_ha = KARST_RES**2 / 1e4
    totals = _json(karst_run / "carbon" / "carbon.json")["carbon_storage_total_mg_c"]
    for year in (2000, 2023):
        with rasterio.open(karst_run / "inputs" / f"landcover_{year}.tif") as src:
            codes = src.read(1)
        valid = codes != 255
        expected = float(density.reindex(codes[valid].ravel()).to_numpy().sum()) * pixel_ha
        assert float(totals[str(year)]) == pytest.approx(expected, rel=1e-6), year
        with rasterio.open(karst_run / "carbon" / f"carbon_storage_{year}.tif") as src:
            storage = src.read(1).astype("float64")
        np.testing.assert_allclose(storage[valid], density.reindex(codes[valid]).to_numpy(), rtol=1e-6)
        assert np.isnan(storage[~valid]).all()


# --------------------------------------------------------------------------------------
# 3. the stage plan
# --------------------------------------------------------------------------------------


def _available(region: dict) -> set[str]:
    return set(region.get("inputs") or {}) | ({"periods"} if region.get("periods") else set())


def test_a_dry_run_prints_the_stage_plan(workflow_runner, tmp_path, project_root):
    workdir = workflow_runner.copy(tmp_path / "wf")
    proc = _snakemake(workdir, "--dry-run")
    out = proc.stdout + proc.stderr
    config = yaml.safe_load((project_root / "config" / "config.yaml").read_text())
    plans = {rid: plan_region(_available(r), r.get("stages"), region=rid) for rid, r in config["regions"].items()}
    assert format_plan(plans) in out
    assert "stage plan (+ runs, - does not; results/{region}/plan.json says why)" in out
    assert "  demo-karst imagery: missing imagery, periods\n" in out
    assert "  demo-karst reserve: missing forest\n" in out
    rows = [line for line in out.splitlines() if line.startswith(("demo-county ", "demo-karst "))]
    assert [r.split()[0] for r in rows[:2]] == ["demo-county", "demo-karst"]
    assert rows[0].split()[1:9] == ["+"] * 8 and rows[0].split()[9:] == ["-"] * (len(STAGES) - 8)  # its 8
    assert not (workdir / "results").exists()


def test_a_requested_stage_without_its_inputs_stops_the_dry_run(workflow_runner, tmp_path):
    def no_forest(config):
        county = config["regions"]["demo-county"]
        del county["inputs"]["forest"]
        county["stages"] = ["capacity"]
        config["regions"] = {"demo-county": county}

    workdir = workflow_runner.copy(tmp_path / "wf", no_forest)
    proc = _snakemake(workdir, "--dry-run", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert (
        "config key regions.demo-county.stages: stage 'capacity' cannot run for region demo-county: "
        "missing input(s) ['forest'] (needs stage reserve)"
    ) in out
    assert "Job stats" not in out
    assert not (workdir / "results").exists() and not (workdir / "resources").exists()


def test_a_config_of_regions_alone_runs(workflow_runner, tmp_path, karst_data):
    _, region = karst_data
    workdir = _workflow_copy(workflow_runner, tmp_path / "wf", {"my-karst": region}, terrain_section=False)
    proc = _snakemake(workdir, "--dry-run", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    # without the explicit drop, the default table's roads threat stops the plan, named
    path = workdir / "config" / "config.yaml"
    path.write_text(yaml.safe_dump({"regions": {"my-karst": region}}, sort_keys=False))
    proc = _snakemake(workdir, "--dry-run", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "threat 'roads'" in out and "drop_threats: {my-karst: [roads]}" in out


COUNTY_INPUTS = {
    "dem",
    "imagery",
    "periods",
    "reference",
    "parcels",
    "villages",
    "settlements",
    "roads",
    "farmland",
    "quality_grades",
    "forest",
    "redline",
    "soil",
    "irrigation",
    "townships",
    "accumulated_temperature",
    "precipitation",
}


def test_plan_a_landcover_input_beats_the_classified_map():
    from karstflow.stages import chosen

    need = STAGES["carbon"].requires[0]  # the owner's maps, the classified map, a public product
    with_map = plan_region(COUNTY_INPUTS | {"landcover", "carbon_pools"})
    assert with_map["landcover"].runs  # the classifier could run, yet the owner's map wins
    assert chosen(with_map, "carbon", need) == "landcover"
    assert chosen(with_map, "habitat_quality", need) == "landcover"
    without = plan_region(COUNTY_INPUTS | {"carbon_pools"})
    assert chosen(without, "carbon", need) == "@landcover"
    assert not plan_region({"carbon_pools"})["carbon"].runs


def test_plan_abandonment_labels_beat_the_abandonment_stage():
    from karstflow.stages import chosen

    need = ("abandonment_labels", "@abandonment")
    plan = plan_region(COUNTY_INPUTS | {"abandonment_labels"})
    assert plan["abandonment"].runs and chosen(plan, "drivers", need) == "abandonment_labels"
    assert chosen(plan_region(COUNTY_INPUTS), "drivers", need) == "@abandonment"
    # labels alone need no imagery: drivers and model run without the classification
    no_imagery = plan_region(COUNTY_INPUTS - {"imagery", "periods"} | {"abandonment_labels"})
    assert no_imagery["drivers"].runs and no_imagery["model"].runs and not no_imagery["abandonment"].runs


def test_plan_requested_stages_pull_in_their_dependencies():
    plan = plan_region(COUNTY_INPUTS, ["capacity"])
    runs = [s for s, p in plan.items() if p.runs]
    assert runs == ["terrain", "imagery", "landcover", "abandonment", "reserve", "capacity"]
    assert plan["model"].reason == "not requested in stages"  # optional for reserve: not pulled in
    assert plan_region(COUNTY_INPUTS, ["terrain"])["terrain"].runs
    assert [s for s, p in plan_region(COUNTY_INPUTS, ["terrain"]).items() if p.runs] == ["terrain"]


def test_plan_errors_name_region_stage_and_key():
    with pytest.raises(PlanError, match=r"regions\.mine\.stages: unknown stage\(s\) \['carbn'\]"):
        plan_region(COUNTY_INPUTS, ["carbn"], region="mine")
    with pytest.raises(
        PlanError, match=r"stage 'capacity' cannot run for region mine: missing input\(s\) \['forest'\]"
    ):
        plan_region(COUNTY_INPUTS - {"forest"}, ["capacity"], region="mine")
    # not requested: the stage is skipped and says what it lacks, without an error
    plan = plan_region(COUNTY_INPUTS - {"forest"}, region="mine")
    assert not plan["reserve"].runs and plan["reserve"].missing == ["forest"]
    assert plan["reserve"].to_dict() == {"runs": False, "missing_inputs": ["forest"], "reason": "needs forest"}

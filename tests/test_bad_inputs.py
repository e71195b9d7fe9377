"""The bad-input catalogue (issue 15): every bad input or fault a user can make stops the
run with a non-zero exit, a message naming the file or config key, and no new file under
``results/``.

Each case starts from a copy of the session's demo run (``demo_run``: both demo regions
complete, copied with their times, so only what a case changes reruns), puts one bad
file under ``data/`` and points the region's config at it (as a user's own file would
be), or changes one config value, and runs Snakemake as a user does (the default
profile). Start-up cases fail before any job; run cases fail in the first rule that reads
the bad input (the input rules run first, at a higher priority).

The cases run two at a time (one core each) in a module fixture; each test then checks
one case's exit, message and results.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
import yaml

pytestmark = pytest.mark.e2e

KARST = "demo-karst"
COUNTY = "demo-county"
KARST_DATA = Path("resources/demo/demo-karst")
COUNTY_DATA = Path("resources/demo/demo-county")


@dataclass
class Case:
    id: str
    edit: Callable[[Path, dict], Any]
    expect: tuple[str, ...]
    #: a case that fails when the config is read, before any job
    at_start: bool = False
    notes: str = ""
    extra_args: tuple[str, ...] = field(default_factory=tuple)
    #: files a case may add: outputs of jobs that succeed before the bad input is read
    allowed_new: tuple[str, ...] = ()


#: The owner's column names of the demo's township population table (config/config.yaml).
POPULATION_COLUMNS = {
    "township_id": "XZ_CODE",
    "year": "NIAN",
    "resident": "CZRK",
    "registered": "HJRK",
    "rural_share": "NCRK_BL",
}


# ------------------------------------------------------------------------------------
# helpers that write one bad copy of a demo file under data/ and point the config at it
# ------------------------------------------------------------------------------------


def _inputs(config: dict, region: str) -> dict:
    return config["regions"][region]["inputs"]


def _cube(name: str, key: str, change: Callable[[xr.Dataset], xr.Dataset], region: str = KARST) -> Callable:
    def edit(workdir: Path, config: dict) -> None:
        src = workdir / KARST_DATA / name
        with xr.open_dataset(src) as ds:
            bad = change(ds.load())
        dst = workdir / "data" / name
        dst.parent.mkdir(exist_ok=True)
        bad.to_netcdf(dst)
        entry = _inputs(config, region)[key]
        if isinstance(entry, dict):
            entry["path"] = f"data/{name}"
        else:
            _inputs(config, region)[key] = f"data/{name}"

    return edit


def _raster(
    data_dir: Path, name: str, key: str, change: Callable[[np.ndarray, dict], tuple[np.ndarray, dict]], region: str
) -> Callable:
    def edit(workdir: Path, config: dict) -> None:
        with rasterio.open(workdir / data_dir / name) as src:
            values, profile = src.read(1), dict(src.profile)
        values, profile = change(values, profile)
        dst = workdir / "data" / name
        dst.parent.mkdir(exist_ok=True)
        profile.update(dtype=values.dtype.name, count=1)
        with rasterio.open(dst, "w", **profile) as out:
            out.write(values, 1)
        if key.startswith("landcover:"):
            _inputs(config, region)["landcover"][int(key.split(":")[1])] = f"data/{name}"
        else:
            _inputs(config, region)[key] = f"data/{name}"

    return edit


def _table(
    name: str, key: str, change: Callable[[pd.DataFrame], pd.DataFrame], columns: dict | None = None
) -> Callable:
    def edit(workdir: Path, config: dict) -> None:
        bad = change(pd.read_csv(workdir / KARST_DATA / name))
        dst = workdir / "data" / name
        dst.parent.mkdir(exist_ok=True)
        bad.to_csv(dst, index=False)
        _inputs(config, KARST)[key] = {"path": f"data/{name}", **({"columns": columns} if columns else {})}

    return edit


def _vector(
    data_dir: Path,
    name: str,
    key: str,
    change: Callable[[gpd.GeoDataFrame], gpd.GeoDataFrame],
    region: str,
    out_name: str | None = None,
    columns: dict | None = None,
) -> Callable:
    def edit(workdir: Path, config: dict) -> None:
        bad = change(gpd.read_file(workdir / data_dir / name))
        dst = workdir / "data" / (out_name or name)
        dst.parent.mkdir(exist_ok=True)
        if dst.suffix == ".shp":
            bad.to_file(dst)
            if bad.crs is None:
                dst.with_suffix(".prj").unlink(missing_ok=True)
        else:
            bad.to_file(dst, driver="GPKG")
        rel = f"data/{dst.name}"
        _inputs(config, region)[key] = {"path": rel, **({"columns": columns} if columns else {})}

    return edit


def _file(name: str, key: str, content: bytes, region: str = KARST) -> Callable:
    """An input replaced by a file that is not what its name says (truncated, text)."""

    def edit(workdir: Path, config: dict) -> None:
        dst = workdir / "data" / name
        dst.parent.mkdir(exist_ok=True)
        dst.write_bytes(content)
        _inputs(config, region)[key] = f"data/{name}"

    return edit


def _config(change: Callable[[dict], Any]) -> Callable:
    def edit(workdir: Path, config: dict) -> None:
        change(config)

    return edit


def _set(path: str, value: Any) -> Callable:
    """Set the config value at a dotted key path (numeric parts are list indices)."""

    def change(config: dict) -> None:
        *parents, last = path.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value

    return _config(change)


def _aoi(make: Callable[[Path], str], resolution: float = 30) -> Callable:
    """The karst region given by an AOI file (made by ``make``) instead of its grid_like DEM."""

    def edit(workdir: Path, config: dict) -> None:
        region = config["regions"][KARST]
        region.pop("grid_like")
        region["aoi"] = {"path": make(workdir)}
        region["resolution_m"] = resolution

    return edit


def _aoi_empty(workdir: Path) -> str:
    (workdir / "data").mkdir(exist_ok=True)
    gpd.GeoDataFrame({"name": []}, geometry=[], crs="EPSG:32648").to_file(workdir / "data/aoi.gpkg")
    return "data/aoi.gpkg"


def _aoi_file(name: str, crs: str | None) -> Callable[[Path], str]:
    """An AOI of one polygon over the karst demo's grid, in ``crs`` (None: a Shapefile
    written without its .prj)."""

    def make(workdir: Path) -> str:
        from shapely.geometry import box

        (workdir / "data").mkdir(exist_ok=True)
        aoi = gpd.GeoDataFrame({"name": ["a"]}, geometry=[box(600000, 2797570, 602400, 2800000)], crs=crs)
        aoi.to_file(workdir / "data" / name)
        if crs is None:
            (workdir / "data" / name).with_suffix(".prj").unlink(missing_ok=True)
        return f"data/{name}"

    return make


_aoi_no_crs = _aoi_file("aoi.shp", None)
_aoi_ok = _aoi_file("aoi.gpkg", "EPSG:32648")


def _yaml_syntax(workdir: Path, config: dict) -> None:
    # written after the config: the runner writes `config`, then calls `post`
    config["__raw__"] = "regions:\n  demo-karst:\n    source: local\n    crs: [EPSG:32648\n"


def _refused_url() -> str:
    """A loopback port nothing listens on: connecting gets ECONNREFUSED at once."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _offline_region(source: str) -> Callable:
    """A new region whose remote source cannot be reached (STAC) or is not authorised
    (Earth Engine without credentials)."""

    def edit(workdir: Path, config: dict) -> None:
        region = {
            "source": source,
            "aoi": {"bounds": [600000, 2797570, 601200, 2798770]},
            "crs": "EPSG:32648",
            "resolution_m": 30,
            "years": {"first": 2022, "last": 2022},
            "stages": ["terrain"],
        }
        if source == "stac":
            region["stac"] = {"url": _refused_url(), "dem_collection": "cop-dem-glo-30"}
        config["regions"]["offline"] = region
        config["services"]["habitat_quality"]["drop_threats"]["offline"] = ["roads"]

    return edit


OFFLINE_PLAN = ("results/offline/grid.json", "results/offline/plan.json")


def _transpose(ds: xr.Dataset) -> xr.Dataset:
    return ds.transpose("year", "x", "y")


def _rename_latlon(ds: xr.Dataset) -> xr.Dataset:
    return ds.rename({"y": "lat", "x": "lon", "year": "time"})


def _set_var(var: str, how: Callable[[xr.DataArray], xr.DataArray]) -> Callable[[xr.Dataset], xr.Dataset]:
    def change(ds: xr.Dataset) -> xr.Dataset:
        ds[var] = how(ds[var]).astype(ds[var].dtype)
        return ds

    return change


def _shift(ds: xr.Dataset) -> xr.Dataset:
    return ds.assign_coords(x=ds["x"] + 15.0)


def _negative_some(da: xr.DataArray) -> xr.DataArray:
    out = da.copy()
    out[..., :10, :10] = -5.0
    return out


def _lc_with_code(code: int) -> Callable:
    def change(values: np.ndarray, profile: dict) -> tuple[np.ndarray, dict]:
        out = values.copy()
        out[:10, :10] = code
        return out, profile

    return change


def _raster_no_overlap(values: np.ndarray, profile: dict) -> tuple[np.ndarray, dict]:
    t = profile["transform"]
    profile["transform"] = rasterio.Affine(t.a, t.b, t.c + 1_000_000, t.d, t.e, t.f)
    return values, profile


def _far_away(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return gdf.set_geometry(gdf.geometry.translate(xoff=1_000_000))


def _points(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return gdf.set_geometry(gdf.geometry.centroid)


def _no_crs(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return gdf.set_crs(None, allow_override=True)


# ------------------------------------------------------------------------------------
# the catalogue
# ------------------------------------------------------------------------------------

K = f"regions.{KARST}"
C = f"regions.{COUNTY}"

CASES: list[Case] = [
    # --- config, found at start-up ---
    Case(
        "period-outside-years",
        _set(f"{C}.periods.2022-h1", {"start": "2019-01-01", "end": "2019-06-30"}),
        (f"{C}.periods.2022-h1", "outside the region's years"),
        at_start=True,
    ),
    Case(
        "period-start-after-end",
        _set(f"{C}.periods.2022-h1", {"start": "2022-06-30", "end": "2022-01-01"}),
        (f"{C}.periods.2022-h1", "after end"),
        at_start=True,
    ),
    Case("years-reversed", _set(f"{K}.years", {"first": 2023, "last": 2000}), (f"{K}.years",), at_start=True),
    Case("unknown-epsg", _set(f"{K}.crs", "EPSG:99999"), (f"{K}.crs", "unknown CRS 'EPSG:99999'"), at_start=True),
    Case("crs-not-a-crs", _set(f"{K}.crs", "UTM zone 48"), (f"{K}.crs", "unknown CRS"), at_start=True),
    Case("aoi-no-features", _aoi(_aoi_empty), (f"{K}.aoi.path", "data/aoi.gpkg", "no features"), at_start=True),
    Case("aoi-no-crs", _aoi(_aoi_no_crs), (f"{K}.aoi.path", "data/aoi.shp", "no CRS"), at_start=True),
    Case(
        "aoi-not-found",
        _config(
            lambda c: (c["regions"][KARST].pop("grid_like"), c["regions"][KARST].update(aoi={"path": "data/x.gpkg"}))
        ),
        (f"{K}.aoi.path", "data/x.gpkg"),
        at_start=True,
    ),
    Case(
        "grid-over-max-pixels",
        _aoi(_aoi_ok, resolution=0.01),
        (f"{K}.resolution_m", "grid.max_pixels"),
        at_start=True,
        notes="0.01 m for 10 m: 5.8e10 px; once a 217 GiB allocation and a huge grid.json",
    ),
    Case("yaml-syntax-error", _yaml_syntax, ("config/config.yaml", "line 5", "YAML syntax error"), at_start=True),
    Case("resolution-negative", _set(f"{K}.resolution_m", -30), (f"{K}.resolution_m",), at_start=True),
    Case("resolution-text", _set(f"{K}.resolution_m", "thirty"), (f"{K}.resolution_m", "'thirty'"), at_start=True),
    Case("unknown-top-level-key", _set("terrian", {"flat_max_deg": 2}), ("'terrian'",), at_start=True),
    Case("unknown-region-key", _set(f"{K}.inputz", {}), (K, "'inputz'"), at_start=True),
    Case(
        "region-id-not-a-slug",
        _config(lambda c: c["regions"].update({"Demo Karst": c["regions"][KARST]})),
        ("regions", "'Demo Karst'"),
        at_start=True,
    ),
    Case("source-unknown", _set(f"{K}.source", "ftp"), (f"{K}.source", "'ftp'"), at_start=True),
    Case(
        "input-file-missing",
        _set(f"{K}.inputs.carbon_pools", "data/missing.csv"),
        (f"{K}.inputs.carbon_pools", "data/missing.csv"),
        at_start=True,
    ),
    Case(
        "input-unknown-name",
        _set(f"{K}.inputs.carbon_pool", "data/x.csv"),
        (f"{K}.inputs", "'carbon_pool'"),
        at_start=True,
    ),
    Case(
        "grid-like-not-found",
        _set(f"{K}.grid_like", "data/nowhere.tif"),
        ("data/nowhere.tif",),
        at_start=True,
    ),
    Case("terrain-threshold-text", _set("terrain.flat_max_deg", "flat"), ("terrain.flat_max_deg",), at_start=True),
    Case(
        "carbon-time-step-unknown", _set("carbon.time_step", "weekly"), ("carbon.time_step", "'weekly'"), at_start=True
    ),
    Case("tile-px-too-small", _set("tiling.tile_px", 4), ("tiling.tile_px",), at_start=True),
    Case(
        "period-name-not-a-slug",
        _set(f"{C}.periods.Summer 2022", {"start": "2022-06-01", "end": "2022-08-31"}),
        (f"{C}.periods", "'Summer 2022'"),
        at_start=True,
    ),
    Case(
        "stage-without-inputs",
        _config(
            lambda c: (c["regions"][KARST]["inputs"].pop("carbon_pools"), c["regions"][KARST].update(stages=["carbon"]))
        ),
        (KARST, "carbon", "carbon_pools"),
        at_start=True,
    ),
    # --- cubes ---
    Case(
        "climate-negative-precipitation",
        _cube("climate.nc", "climate", _set_var("precipitation_mm", _negative_some)),
        ("data/climate.nc", "precipitation_mm", ">= 0 mm", "2,400 of 155,520 values"),
        notes="once accepted by CASA (exit 0, shifted NPP) and rejected only by water yield",
    ),
    Case(
        "climate-all-missing-precipitation",
        _cube("climate.nc", "climate", _set_var("precipitation_mm", lambda da: da * np.nan)),
        ("data/climate.nc", "precipitation_mm", "missing"),
        notes="once an empty NPP and exit 0",
    ),
    Case(
        "climate-kelvin",
        _cube("climate.nc", "climate", _set_var("temperature_c", lambda da: da + 273.15)),
        ("data/climate.nc", "temperature_c", "<= 60 degC"),
    ),
    Case(
        "climate-missing-variable",
        _cube("climate.nc", "climate", lambda ds: ds.drop_vars("eto_mm")),
        ("data/climate.nc", "eto_mm"),
    ),
    Case(
        "climate-dims-x-y",
        _cube("climate.nc", "climate", _transpose),
        ("data/climate.nc", "(year, x, y)", "(year, y, x)"),
        notes="once accepted here and failing two stages later naming no file",
    ),
    Case(
        "climate-dims-time-lat-lon",
        _cube("climate.nc", "climate", _rename_latlon),
        ("data/climate.nc", "lat -> y", "lon -> x"),
    ),
    Case("climate-off-grid", _cube("climate.nc", "climate", _shift), ("data/climate.nc", "grid mismatch")),
    Case(
        "ndvi-scaled-x10000",
        _cube("ndvi_annual.nc", "annual_stack", _set_var("ndvi", lambda da: da * 10000)),
        ("data/ndvi_annual.nc", "ndvi", "<= 1"),
    ),
    Case(
        "ndvi-dims-x-y",
        _cube("ndvi_annual.nc", "annual_stack", _transpose),
        ("data/ndvi_annual.nc", "(year, x, y)"),
    ),
    Case(
        "bedrock-exposure-percent",
        _cube("bedrock_exposure.nc", "bedrock_exposure", _set_var("bedrock_exposure", lambda da: da * 100 + 1)),
        ("data/bedrock_exposure.nc", "bedrock_exposure", "<= 1 fraction"),
    ),
    Case(
        "soil-sand-over-100",
        _cube("soil.nc", "soil_grids", _set_var("sand_pct", lambda da: da + 150)),
        ("data/soil.nc", "sand_pct", "<= 100 %"),
    ),
    Case(
        "soil-pawc-percent",
        _cube("soil.nc", "soil_grids", _set_var("pawc", lambda da: da * 100 + 2)),
        ("data/soil.nc", "pawc"),
    ),
    Case(
        "monthly-climate-negative-precipitation",
        _cube("climate_monthly.nc", "climate_monthly", _set_var("precipitation_mm", _negative_some)),
        ("climate_monthly", "precipitation_mm", ">= 0 mm"),
    ),
    Case("cube-not-netcdf", _file("climate.nc", "climate", b"not a netcdf file\n"), ("data/climate.nc",)),
    # --- rasters ---
    Case(
        "landcover-code-missing-from-carbon-pools",
        _raster(KARST_DATA, "landcover_2000.tif", "landcover:2000", _lc_with_code(12), KARST),
        ("column lucode: land-cover code(s) [12] of results/demo-karst/inputs/landcover_2000.tif have no row",),
        notes="once reported as a missing epsilon_max by CASA",
    ),
    Case(
        "landcover-off-grid",
        _raster(KARST_DATA, "landcover_2000.tif", "landcover:2000", _raster_no_overlap, KARST),
        ("data/landcover_2000.tif",),
    ),
    Case(
        "carbonate-not-a-mask",
        _raster(KARST_DATA, "carbonate.tif", "carbonate", lambda v, p: (v * 0 + 7, p), KARST),
        ("data/carbonate.tif", "carbonate"),
    ),
    Case(
        "precipitation-raster-negative",
        _raster(COUNTY_DATA, "precipitation.tif", "precipitation", lambda v, p: (v * 0 - 100, p), COUNTY),
        ("data/precipitation.tif", ">= 0"),
    ),
    Case(
        "accumulated-temperature-no-overlap",
        _raster(COUNTY_DATA, "accumulated_temperature.tif", "accumulated_temperature", _raster_no_overlap, COUNTY),
        ("data/accumulated_temperature.tif",),
    ),
    Case("raster-not-a-tiff", _file("carbonate.tif", "carbonate", b"GIF89a not a tiff"), ("data/carbonate.tif",)),
    # --- tables ---
    Case(
        "carbon-pools-missing-code",
        _table("carbon_pools.csv", "carbon_pools", lambda t: t[t["lucode"] != 5]),
        ("data/carbon_pools.csv", "lucode", "[5]"),
        notes="once reported as a missing epsilon_max",
    ),
    Case(
        "carbon-pools-negative",
        _table("carbon_pools.csv", "carbon_pools", lambda t: t.assign(c_soil=-t["c_soil"] - 1)),
        ("data/carbon_pools.csv", "c_soil", "below the minimum"),
    ),
    Case(
        "carbon-pools-text",
        _table(
            "carbon_pools.csv",
            "carbon_pools",
            lambda t: t.assign(c_above=t["c_above"].astype(str).where(t.index > 0, "five")),
        ),
        ("data/carbon_pools.csv", "c_above", "five"),
    ),
    Case(
        "carbon-pools-missing-column",
        _table("carbon_pools.csv", "carbon_pools", lambda t: t.drop(columns="c_dead")),
        ("data/carbon_pools.csv", "c_dead"),
    ),
    Case(
        "carbon-pools-mapped-column-absent",
        _table("carbon_pools.csv", "carbon_pools", lambda t: t, columns={"c_soil": "SOIL_C"}),
        ("data/carbon_pools.csv", "SOIL_C"),
    ),
    Case(
        "table-empty",
        _table("carbon_pools.csv", "carbon_pools", lambda t: t.iloc[0:0]),
        ("data/carbon_pools.csv", "no rows"),
    ),
    Case(
        "biophysical-usle-c-over-1",
        _table("biophysical.csv", "biophysical", lambda t: t.assign(usle_c=t["usle_c"] + 2)),
        ("data/biophysical.csv", "usle_c", "above the maximum"),
    ),
    Case(
        "biophysical-lulc-veg-2",
        _table("biophysical.csv", "biophysical", lambda t: t.assign(lulc_veg=2)),
        ("data/biophysical.csv", "lulc_veg"),
    ),
    Case(
        "biophysical-missing-code",
        _table("biophysical.csv", "biophysical", lambda t: t[t["lucode"] != 2]),
        ("data/biophysical.csv", "lucode", "[2]"),
    ),
    # --- the township population table (issue 16), with the owner's column names mapped ---
    Case(
        "population-table-years-outside",
        _table(
            "population_townships.csv",
            "population_table",
            lambda t: t.assign(NIAN=t["NIAN"].where(t.index > 1, 1990)),
            columns=POPULATION_COLUMNS,
        ),
        ("data/population_townships.csv", "column NIAN", "2000..2023", "2 row(s)", "1990"),
    ),
    Case(
        "population-table-duplicate-township-years",
        _table(
            "population_townships.csv",
            "population_table",
            lambda t: pd.concat([t, t.iloc[:3]], ignore_index=True),
            columns=POPULATION_COLUMNS,
        ),
        ("data/population_townships.csv", "XZ_CODE and NIAN", "duplicate township-year", "1/2000"),
    ),
    Case(
        "population-table-negative",
        _table(
            "population_townships.csv",
            "population_table",
            lambda t: t.assign(CZRK=t["CZRK"].where(t.index > 0, -5.0)),
            columns=POPULATION_COLUMNS,
        ),
        ("data/population_townships.csv", "column resident", "below the minimum 0", "-5.0"),
    ),
    Case(
        "population-table-unknown-township",
        _table(
            "population_townships.csv",
            "population_table",
            lambda t: t.assign(XZ_CODE=t["XZ_CODE"].where(t.index > 0, 99)),
            columns=POPULATION_COLUMNS,
        ),
        ("data/population_townships.csv", "column XZ_CODE", "townships.gpkg", "99"),
    ),
    Case(
        "table-not-csv",
        _file("biophysical.csv", "biophysical", b"\x89PNG\r\n\x1a\n\x00\x00"),
        ("data/biophysical.csv",),
    ),
    # --- vectors ---
    Case(
        "townships-none",
        _vector(KARST_DATA, "townships.gpkg", "townships", lambda g: g.iloc[0:0], KARST),
        ("data/townships.gpkg", "no features"),
        notes="once an empty township CSV and exit 0",
    ),
    Case(
        "townships-outside-the-grid",
        _vector(KARST_DATA, "townships.gpkg", "townships", _far_away, KARST),
        ("data/townships.gpkg", "reaches the region grid"),
    ),
    Case(
        "townships-no-crs",
        _vector(KARST_DATA, "townships.gpkg", "townships", _no_crs, KARST, out_name="townships.shp"),
        ("data/townships.shp", "no CRS"),
    ),
    Case(
        "townships-points",
        _vector(KARST_DATA, "townships.gpkg", "townships", _points, KARST),
        ("data/townships.gpkg", "Polygon"),
    ),
    Case(
        "villages-negative-population",
        _vector(COUNTY_DATA, "villages.gpkg", "villages", lambda g: g.assign(population=-g["population"] - 1), COUNTY),
        ("data/villages.gpkg", "population", "below the minimum"),
    ),
    Case(
        "villages-mapped-column-absent",
        _vector(COUNTY_DATA, "villages.gpkg", "villages", lambda g: g, COUNTY, columns={"population": "RKZS"}),
        ("data/villages.gpkg", "RKZS"),
    ),
    Case(
        "roads-empty",
        _vector(COUNTY_DATA, "roads.gpkg", "roads", lambda g: g.iloc[0:0], COUNTY),
        ("data/roads.gpkg", "no features"),
    ),
    Case(
        "parcels-outside-the-grid",
        _vector(COUNTY_DATA, "parcels.gpkg", "parcels", _far_away, COUNTY),
        ("data/parcels.gpkg", "reaches the region grid"),
    ),
    Case(
        "vector-not-a-gpkg",
        _file("townships.gpkg", "townships", b"SQLite format 2\x00garbage"),
        ("data/townships.gpkg",),
    ),
    # --- the model ---
    Case(
        "model-label-error-method-unknown",
        _set("model.label_error.method", "guess"),
        ("model.label_error.method", "'guess'"),
        at_start=True,
    ),
    Case("model-report-style-number", _set("model.report_style", 7), ("model.report_style",), at_start=True),
    Case(
        "model-validation-without-checked-labels",
        _set("model.label_error", {"method": "validation", "truth_column": "checked_by_survey"}),
        ("model.label_error.method", "'checked_by_survey'", ".gpkg has no checked labels"),
        notes="a run-time failure of the model stage: model_fit reads the labelled parcels",
    ),
    # --- remote sources ---
    Case(
        "stac-connection-refused",
        _offline_region("stac"),
        ("region offline", "cop-dem-glo-30", "connection refused at 127.0.0.1"),
        allowed_new=OFFLINE_PLAN,
        notes="bounded by imagery.fetch.retry_budget_s (20 s); once urllib3's text after 374 s",
    ),
    Case(
        "earthengine-without-credentials",
        _offline_region("earthengine"),
        ("region offline", "GOOGLE_APPLICATION_CREDENTIALS"),
        allowed_new=OFFLINE_PLAN,
    ),
]


# ------------------------------------------------------------------------------------
# running the catalogue
# ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    returncode: int
    output: str
    new_files: list[str]


def _results(workdir: Path) -> set[str]:
    root = workdir / "results"
    return {str(p.relative_to(workdir)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def _failed_logs(workdir: Path, since: float) -> str:
    texts = []
    for log in sorted((workdir / "logs").rglob("*.log")):
        if log.stat().st_mtime >= since:
            texts.append(f"--- {log}\n{log.read_text(errors='replace')[-4000:]}")
    return "\n".join(texts)


def prepare_case(case: Case, base: Path, dest: Path) -> set[str]:
    """Copy ``base`` (times kept) and make the case's change; the results present before."""
    shutil.copytree(base, dest, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete", "__pycache__"))
    config_path = dest / "config" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    case.edit(dest, config)
    raw = config.pop("__raw__", None)
    config_path.write_text(raw if raw is not None else yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return _results(dest)


def run_prepared(case: Case, dest: Path, before: set[str]) -> Outcome:
    """Run Snakemake in a prepared copy as a user would (a subprocess: safe in a thread)."""
    import time

    start = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", *case.extra_args],
        cwd=dest,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    output = proc.stdout + proc.stderr + "\n" + _failed_logs(dest, start)
    return Outcome(proc.returncode, output, sorted(_results(dest) - before))


def run_case(case: Case, base: Path, dest: Path) -> Outcome:
    return run_prepared(case, dest, prepare_case(case, base, dest))


@pytest.fixture(scope="module")
def outcomes(demo_run, tmp_path_factory) -> dict[str, Outcome]:
    root = tmp_path_factory.mktemp("bad-inputs")
    # two cases at a time, one core each: most of a case is Snakemake's start-up
    # the bad files are written here, one case after another: HDF5, GDAL and GEOS calls from
    # two threads at once crash the interpreter (netCDF4's HDF5 is not thread-safe)
    prepared = {c.id: prepare_case(c, demo_run, root / c.id) for c in CASES}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {c.id: pool.submit(run_prepared, c, root / c.id, prepared[c.id]) for c in CASES}
        return {cid: f.result() for cid, f in futures.items()}


def test_the_catalogue_has_at_least_60_cases_with_distinct_ids():
    ids = [c.id for c in CASES]
    assert len(ids) >= 60 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_stops_the_run_naming_it_and_leaves_nothing(case, outcomes):
    outcome = outcomes[case.id]
    tail = outcome.output[-6000:]
    assert outcome.returncode != 0, f"{case.id}: exit 0, the bad input was accepted\n{tail}"
    missing = [text for text in case.expect if text not in outcome.output]
    assert not missing, f"{case.id}: the message does not name {missing}\n{tail}"
    new = [f for f in outcome.new_files if f not in case.allowed_new]
    assert not new, f"{case.id}: new files under results/: {new}\n{tail}"
    if case.at_start:
        assert "Select jobs to execute" not in outcome.output, f"{case.id}: jobs ran before the config error\n{tail}"


def test_on_a_fresh_run_a_bad_townships_file_stops_the_run_before_any_service_map(
    demo_run, workflow_runner, tmp_path
):
    """Issue 15, point 2: the input rules run first (a higher priority), so a bad input a
    late stage reads stops a fresh run before the stages that could run without it."""
    workdir = workflow_runner.copy(tmp_path / "fresh")
    bad = _points(gpd.read_file(demo_run / KARST_DATA / "townships.gpkg"))
    (workdir / "data").mkdir()
    bad.to_file(workdir / "data" / "townships.gpkg", driver="GPKG")
    config_path = workdir / "config" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    _inputs(config, KARST)["townships"] = "data/townships.gpkg"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = workflow_runner.run(workdir, check=False)
    output = proc.stdout + proc.stderr + _failed_logs(workdir, 0.0)
    assert proc.returncode != 0
    assert "data/townships.gpkg" in output and "Polygon" in output
    made = _results(workdir)
    services = [f for f in made if "/services/" in f]
    assert not services, f"service maps built before the townships check failed: {services}"
    assert not any(f.startswith(f"results/{KARST}/inputs/townships") for f in made)

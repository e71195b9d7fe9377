"""Deterministic demo regions: the embedded default data of the workflow and the tests.

Two kinds, both generated on a given :class:`~karstflow.grid.RegionGrid` from one seed:

* ``county`` (:func:`karstflow.demo.county.make_county`): a mountain county shaped like
  the abandonment study (Jiangxi): DEM, true land cover, Sentinel-2 L2A scenes, reclaimed
  parcels whose abandonment follows a known logistic model over the drivers x1..x10,
  villages, settlements, roads, farmland, quality grades, forest, red line, soil,
  irrigation, climate rasters and labelled reference points.
* ``karst`` (:func:`karstflow.demo.karst.make_karst`): a karst watershed shaped like the
  southwest China karst study: DEM, carbonate lithology, land cover at the first and last
  year, annual NDVI with planted greening/browning trends, shrinking bedrock exposure
  (rocky desertification), climate and soil cubes, carbon pools and biophysical tables,
  and a population series (grid and township table) planted on the NDVI trend.

Every random draw comes from ``numpy.random.default_rng`` streams seeded with
``(seed, component name)`` (see :func:`karstflow.demo._fields.component_rng`), so the
same seed gives byte-identical rasters and an identical ``PLANTED.json``, and changing
one component does not shift the others. ``PLANTED.json`` states exactly what was planted
so that the later stages can be checked against it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import xarray as xr

log = logging.getLogger("karstflow.demo")

__all__ = [
    "COUNTY_FILES",
    "DemoBundle",
    "KARST_FILES",
    "LANDCOVER_CLASSES",
    "LANDCOVER_COLOURS",
    "county_files",
    "generate",
    "karst_files",
    "write_bundle",
]

#: Land-cover legend shared by both demo kinds (and the classification stage).
LANDCOVER_CLASSES: dict[int, str] = {
    1: "cultivated",
    2: "forested land",
    3: "other forest land",
    4: "sparse forest land",
    5: "shrub",
    6: "grassland",
    7: "water",
    8: "built-up",
    9: "bare rock",
}

#: Colour table (RGB) written into land-cover GeoTIFFs.
LANDCOVER_COLOURS: dict[int, tuple[int, int, int]] = {
    1: (240, 220, 100),  # cultivated: straw yellow
    2: (20, 100, 40),  # forested land: dark green
    3: (80, 160, 70),  # other forest land: mid green
    4: (150, 200, 110),  # sparse forest land: pale green
    5: (170, 140, 70),  # shrub: olive brown
    6: (200, 230, 150),  # grassland: light green
    7: (50, 110, 210),  # water: blue
    8: (200, 50, 50),  # built-up: red
    9: (180, 180, 180),  # bare rock: grey
}

#: Nodata value of the land-cover rasters.
LANDCOVER_NODATA = 255

#: Files every county demo writes (relative to the region folder). The Sentinel-2 scenes
#: ``s2/S2_<YYYYMMDD>.tif`` are listed in ``s2/scenes.csv``; :func:`county_files` adds
#: them for given options.
COUNTY_FILES: tuple[str, ...] = (
    "dem.tif",
    "landcover.tif",
    "accumulated_temperature.tif",
    "precipitation.tif",
    "s2/scenes.csv",
    "parcels.gpkg",
    "parcels_truth.csv",
    "villages.gpkg",
    "settlements.gpkg",
    "roads.gpkg",
    "farmland.gpkg",
    "quality_grades.gpkg",
    "forest.gpkg",
    "redline.gpkg",
    "soil.gpkg",
    "irrigation.gpkg",
    "townships.gpkg",
    "reference_points.gpkg",
    "PLANTED.json",
)

_KARST_FIXED: tuple[str, ...] = (
    "dem.tif",
    "carbonate.tif",
    "trend_zones_truth.tif",
    "townships.gpkg",
    "ndvi_annual.nc",
    "bedrock_exposure.nc",
    "climate.nc",
    "climate_monthly.nc",
    "soil.nc",
    "carbon_pools.csv",
    "biophysical.csv",
    "population.nc",
    "population_townships.csv",
)

DEFAULT_KARST_YEARS = tuple(range(2000, 2024))
DEFAULT_COUNTY_YEARS = (2022,)
DEFAULT_DATES_PER_YEAR = 8


def karst_files(years: Iterable[int] = DEFAULT_KARST_YEARS) -> tuple[str, ...]:
    """Relative paths a karst demo writes for ``years`` (land cover at first and last)."""
    ys = sorted(int(y) for y in years)
    if not ys:
        raise ValueError("karst demo: years must not be empty")
    return (*_KARST_FIXED[:2], f"landcover_{ys[0]}.tif", f"landcover_{ys[-1]}.tif", *_KARST_FIXED[2:], "PLANTED.json")


#: Files every karst demo with the default years 2000..2023 writes.
KARST_FILES: tuple[str, ...] = karst_files()


def scene_dates(
    years: Iterable[int] = DEFAULT_COUNTY_YEARS, dates_per_year: int = DEFAULT_DATES_PER_YEAR
) -> list[dt.date]:
    """Scene dates: ``dates_per_year`` per year on the 5-day revisit, from mid-January
    (before 25 January, so 2022 has both processing baselines) to mid-December."""
    n = int(dates_per_year)
    if n < 1:
        raise ValueError(f"dates_per_year must be >= 1, found {dates_per_year!r}")
    out = []
    for y in sorted(int(v) for v in years):
        start = dt.date(y, 1, 10)
        for k in range(n):
            off = 0 if n == 1 else int(round(k * 335 / (n - 1) / 5.0)) * 5
            out.append(start + dt.timedelta(days=off))
    return out


def county_files(
    years: Iterable[int] = DEFAULT_COUNTY_YEARS, dates_per_year: int = DEFAULT_DATES_PER_YEAR
) -> tuple[str, ...]:
    """All relative paths a county demo writes, Sentinel-2 scenes included.

    Scene dates depend only on ``years`` and ``dates_per_year`` (never on the seed).
    """
    scenes = tuple(f"s2/S2_{d:%Y%m%d}.tif" for d in scene_dates(years, dates_per_year))
    return (*COUNTY_FILES[:-1], *scenes, "PLANTED.json")


@dataclass
class DemoBundle:
    """Everything a demo writes, keyed by path relative to the region folder.

    ``rasters`` values are (array, keyword arguments of :func:`karstflow.io.write_raster`);
    arrays may be dask-backed (the Sentinel-2 scenes are, so they are computed one at a
    time when written). ``cubes`` are written as NetCDF, ``tables`` as CSV without the
    index, ``planted`` as ``PLANTED.json`` (last, so its presence marks a complete demo).
    """

    rasters: dict[str, tuple[xr.DataArray, dict[str, Any]]] = field(default_factory=dict)
    vectors: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    cubes: dict[str, xr.Dataset] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    planted: dict[str, Any] = field(default_factory=dict)

    def paths(self) -> list[str]:
        return [*self.rasters, *self.vectors, *self.cubes, *self.tables, "PLANTED.json"]


def generate(kind: str, grid: Any, seed: int, **options: Any) -> DemoBundle:
    """Generate a demo region of ``kind`` ("county" or "karst") on ``grid``.

    ``options`` go to :func:`~karstflow.demo.county.make_county` or
    :func:`~karstflow.demo.karst.make_karst` (e.g. ``years``).
    """
    if kind == "county":
        from karstflow.demo.county import make_county

        return make_county(grid, seed, **options)
    if kind == "karst":
        from karstflow.demo.karst import make_karst

        return make_karst(grid, seed, **options)
    raise ValueError(f"demo kind must be 'county' or 'karst', found {kind!r}")


def write_bundle(bundle: DemoBundle, out_dir: str | Path) -> list[Path]:
    """Write every file of ``bundle`` under ``out_dir``; ``PLANTED.json`` last.

    Each file is written atomically (see :mod:`karstflow.io`). Returns the paths written.
    """
    from karstflow import io

    out = Path(out_dir)
    written: list[Path] = []
    t0 = time.perf_counter()
    for rel, (da, kwargs) in bundle.rasters.items():
        path = out / rel
        t = time.perf_counter()
        io.write_raster(da, path, **kwargs)
        log.info("wrote %s (%.1f s)", rel, time.perf_counter() - t)
        written.append(path)
    for rel, gdf in bundle.vectors.items():
        path = out / rel
        io.write_vector(gdf, path)
        log.info("wrote %s (%d features)", rel, len(gdf))
        written.append(path)
    for rel, ds in bundle.cubes.items():
        path = out / rel
        t = time.perf_counter()
        chunks = {d: 1 for d in ("year", "time") if d in ds.dims}
        io.write_netcdf(ds, path, chunks=chunks or None)
        log.info("wrote %s (%.1f s)", rel, time.perf_counter() - t)
        written.append(path)
    for rel, df in bundle.tables.items():
        path = out / rel
        io.write_csv(df, path, index=False)
        written.append(path)
    path = out / "PLANTED.json"
    io.write_json(bundle.planted, path)
    written.append(path)
    log.info("demo written to %s: %d files in %.1f s", out, len(written), time.perf_counter() - t0)
    return written

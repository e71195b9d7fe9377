"""Entry script of rule vegetation_composite: the growing-season composite of one sensor and
year on the region grid (bands ndvi, evi, kndvi, clear_count, then the surface reflectance
bands blue, red, nir, swir1, swir2 the scenes have when they have a SWIR band; band
descriptions name them).

Scenes (local files or those a STAC fetch cached) are decoded and composited here
(karstflow.vegetation.composite_year); an Earth Engine composite, computed on Earth
Engine's side, is only put together from its cache tiles. Either is per pixel, on the grid
this script is given: the region's, or one tile's (rule vegetation_composite_tile). The
composite's figures ({sensor}_{year}.json) are rule vegetation_composite_summary's.
"""

import logging
from pathlib import Path

import numpy as np
import xarray as xr

from karstflow.grid import RegionGrid
from karstflow.io import read_json
from karstflow.runtime import run_script
from karstflow.sensors import SensorRules
from karstflow.sources import Layer, NoScenesError, select_period
from karstflow.sources.local import read_date_table
from karstflow.sources.rasters import limit_gdal_cache, read_layers, write_streamed
from karstflow.vegetation import BANDS, REFLECTANCE_BANDS, composite_year, season_period

log = logging.getLogger("karstflow.scripts.vegetation_composite")


def _server_side(table, grid: RegionGrid) -> xr.Dataset:
    """The cache tiles of an Earth Engine composite, mosaicked on the grid: the index bands
    and the reflectance bands (REFLECTANCE_BANDS) the tiles' band descriptions name."""
    import pandas as pd
    import rasterio

    files = [str(Path(table).parent / f) if not Path(f).is_absolute() else f for f in pd.read_csv(table)["file"]]
    with rasterio.open(files[0]) as src:
        described = [d or "" for d in src.descriptions]
    # tiles cached before the bands were named hold the index bands in BANDS order
    position = {d: i for i, d in enumerate(described, start=1) if d} if set(BANDS) <= set(described) else {}
    if not position:
        position = {name: i for i, name in enumerate(BANDS, start=1)}
    names = [*BANDS, *(b for b in REFLECTANCE_BANDS if b in position)]
    layers = {name: tuple(Layer(f, position[name]) for f in files) for name in names}
    values, valid = read_layers(layers, names, grid, (0, 0, grid.height, grid.width))
    out = {}
    for name in names:
        v = np.where(valid[name], values[name], np.nan).astype(np.float32)
        out[name] = (("y", "x"), v)
    ds = xr.Dataset(out, coords=grid.coords())
    ds["clear_count"] = ds["clear_count"].fillna(0)
    return ds


def main(input, output, params, wildcards, threads=1) -> None:
    limit_gdal_cache(params.gdal_cache_mb)  # else GDAL's cache (5 % of RAM) sets the peak
    region_id, sensor, year = wildcards.region, wildcards.sensor, int(wildcards.year)
    grid = RegionGrid.from_dict(read_json(input.grid))
    period = season_period(year, params.season_months)
    veg = params.vegetation
    table = str(input.scenes)
    manifest = Path(table).with_suffix(".json")
    fetched = read_json(manifest) if params.source in ("stac", "earthengine") and manifest.exists() else {}
    if fetched.get("server_side_composite"):
        ds = _server_side(table, grid)
        ds.attrs.update(sensor=sensor, method=veg["composite"], scenes="server-side", dates="")
    else:
        scenes = [s for s in read_date_table(table, encoding="as-is") if str(s.meta.get("sensor", sensor)) == sensor]
        try:
            scenes = select_period(scenes, period, region_id)
        except NoScenesError as err:
            raise NoScenesError(f"{err} (sensor {sensor}, growing season of {year}, table {table})") from None
        rules = SensorRules(
            landsat_qa_not_clear=tuple(veg["landsat_qa_not_clear"]),
            scl_not_clear=tuple(veg["scl_not_clear"]),
            modis_reliability_clear=tuple(veg["modis_reliability_clear"]),
        )
        ds = composite_year(
            scenes,
            grid,
            sensor,
            rules=rules,
            method=veg["composite"],
            chunk_px=veg["chunk_px"],
            resampling=veg["resampling"],
        )
    names = list(BANDS) + [b for b in REFLECTANCE_BANDS if b in ds.data_vars]
    stacked = xr.concat([ds[b].astype(np.float32) for b in names], dim="band")
    write_streamed(
        {
            output.composite: (
                stacked,
                {
                    "dtype": "float32",
                    "nodata": float("nan"),
                    "band_names": names,
                    # with what the composite's summary reports: the same on every tile
                    "tags": {
                        "sensor": sensor,
                        "year": year,
                        "season": f"{period.start}/{period.end}",
                        "method": ds.attrs.get("method", ""),
                        "scenes": ds.attrs.get("scenes", 0),
                        "dates": ds.attrs.get("dates", ""),
                    },
                },
            )
        },
        grid,
    )
    log.info("%s %s %d: composite written (%s)", region_id, sensor, year, ", ".join(names))


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

"""Entry script of rule imagery_composite: cloud-masked median composite and clear count of one
period, on the region grid or (rule imagery_composite_tile) on one tile of it.

The scenes are read from the files the source lists and put onto the grid this script is
given; the median and the count are per pixel, so a tile's composite is the region's over
the tile. The figures of the period (period_<period>.json) come from rule
imagery_period_summary, which reads the composite's tags and the clear count."""

import datetime as dt
import logging

import dask.array
import numpy as np
import xarray as xr

from karstflow.composite import median_composite
from karstflow.grid import RegionGrid
from karstflow.io import read_json
from karstflow.runtime import run_script
from karstflow.sources import AoiOutsideDataError, MaskRules, Period, context, get_source
from karstflow.sources.local import LocalSource
from karstflow.sources.rasters import covering, limit_gdal_cache, load_stack, write_streamed

log = logging.getLogger("karstflow.scripts.imagery_composite")


def _tile_without_data(scenes, grid: RegionGrid, input, region_id: str, period: Period) -> bool:
    """True on a tile (``input.region_grid`` given and not ``grid``) that no scene reaches.

    The region itself must overlap the data (karstflow.sources.rasters.covering raises
    AoiOutsideDataError otherwise, as it does untiled); a tile of it may lie beyond every
    scene, and then holds what the region's composite holds there.
    """
    if "region_grid" not in input:
        return False
    region_grid = RegionGrid.from_dict(read_json(input.region_grid))
    if region_grid.to_dict() == grid.to_dict():
        return False
    covering(scenes, region_grid, region_id, period)
    try:
        covering(scenes, grid, region_id, period)
    except AoiOutsideDataError:
        log.info("%s: no scene reaches this tile %s; its composite is empty", context(region_id, period), grid.bounds)
        return True
    return False


def main(input, output, params, wildcards, threads=1) -> None:
    limit_gdal_cache(params.gdal_cache_mb)
    region_id, name = wildcards.region, wildcards.period
    region = params.region
    period = Period(
        name,
        dt.date.fromisoformat(str(params.period["start"])),
        dt.date.fromisoformat(str(params.period["end"])),
    )
    grid = RegionGrid.from_dict(read_json(input.grid))
    imagery = {"bands": list(params.bands), "max_scene_cloud_pct": params.max_scene_cloud_pct}
    where = context(region_id, period)

    try:
        if region["source"] in ("stac", "earthengine"):
            # the fetch rule wrote the cached tiles' date table (scene cloud cover already applied)
            source = LocalSource.from_date_table(
                region_id, input.scenes[0], bands=tuple(params.bands), name=region["source"]
            )
        else:
            source = get_source(region_id, region, imagery)
        scenes = source.scenes(period, grid)
        rules = MaskRules(
            scl_not_clear=tuple(params.scl_not_clear),
            cs_cdf_threshold=float((region.get("earthengine") or {}).get("cs_cdf_threshold", 0.6)),
        )
        bands = list(source.bands)
        empty = _tile_without_data(scenes, grid, input, region_id, period)
        if not empty:
            stack = load_stack(
                scenes,
                grid,
                bands,
                chunk_px=params.chunk_px,
                rules=rules,
                resampling=params.resampling,
                region=region_id,
                period=period,
            )
    except Exception as err:
        log.error("%s", err)
        raise
    log.info(
        "%s: %d scenes, bands %s, chunks of %d px, %d threads",
        where,
        len(scenes),
        ",".join(bands),
        params.chunk_px,
        threads,
    )

    if empty:
        # what the region's composite holds where no scene reaches: no value, no observation
        chunks = (-1, params.chunk_px, params.chunk_px)
        coords = grid.coords()
        composite = xr.DataArray(
            dask.array.full((len(bands), *grid.shape), np.nan, dtype=np.float32, chunks=chunks),
            dims=("band", "y", "x"),
            coords=coords,
        )
        count = xr.DataArray(
            dask.array.zeros(grid.shape, dtype=np.uint16, chunks=chunks[1:]), dims=("y", "x"), coords=coords
        )
    else:
        composite, count = median_composite(stack["reflectance"], stack["clear"])
    # what the period summary reports besides the clear count: the same on every tile, since
    # the scene list does not depend on the grid the scenes are put on
    tags = {
        "period": f"{period.start}/{period.end}",
        "scenes": len(scenes),
        "source": source.name,
        "dates": ",".join(s.date.isoformat() for s in scenes),
        "processing_baselines": ",".join(
            sorted({str(s.meta.get("processing_baseline")) for s in scenes if s.meta.get("processing_baseline")})
        ),
    }
    write_streamed(
        {
            output.composite: (
                composite,
                {"dtype": "float32", "nodata": float("nan"), "band_names": bands, "tags": tags},
            ),
            output.clear_count: (
                count,
                {"dtype": "uint16", "nodata": 65535, "band_names": ["clear_count"], "tags": tags},
            ),
        },
        grid,
    )
    log.info("%s: composite and clear count written", where)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

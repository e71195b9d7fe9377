"""Entry script of rule dem_fetch: the region's DEM tiles into the tile cache, mosaicked on the
grid."""

import datetime as dt
import logging

import numpy as np

from karstflow.grid import RegionGrid
from karstflow.io import read_json, write_json
from karstflow.runtime import run_script
from karstflow.sources import Layer, Scene, get_source
from karstflow.sources.rasters import limit_gdal_cache, load_stack, write_streamed

log = logging.getLogger("karstflow.scripts.imagery_dem_fetch")


def main(input, output, params, wildcards, threads=1) -> None:
    region_id = wildcards.region
    limit_gdal_cache(params.imagery["gdal_cache_mb"])
    grid = RegionGrid.from_dict(read_json(input.grid))
    try:
        source = get_source(region_id, params.region, params.imagery)
        files = source.dem(grid)
    except Exception as err:
        log.error("%s", err)
        raise
    mosaic = Scene("dem", dt.date(2000, 1, 1), {"elevation": tuple(Layer(f) for f in files)}, encoding="as-is")
    stack = load_stack(
        [mosaic],
        grid,
        ["elevation"],
        chunk_px=params.imagery["chunk_px"],
        resampling=params.resampling,
        region=region_id,
    )
    dem = stack["reflectance"].isel(time=0, band=0, drop=True)
    valid = []
    write_streamed(
        {
            output.dem: (
                dem,
                {"dtype": "float32", "nodata": float("nan"), "band_names": ["elevation"]},
            )
        },
        grid,
        on_block=lambda path, window, block: valid.append(int(np.isfinite(block).sum())),
    )
    n_valid = sum(valid)
    write_json(
        {
            "region": region_id,
            "source": source.name,
            "tiles": files,
            "tiles_fetched": source.fetched,
            "tiles_from_cache": source.reused,
            "valid_pixels": int(n_valid),
            "entries": source.last_entries,
        },
        output.manifest,
    )
    log.info("DEM of %s from %d cache tiles: %d valid pixels", region_id, len(files), int(n_valid))


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

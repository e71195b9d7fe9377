"""Entry script of rule region_grid: derive the analysis grid of one region."""

import logging

from karstflow.grid import RegionGrid, aoi_bounds, check_pixel_count
from karstflow.io import read_vector, write_json
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.region_grid")


def main(input, output, params, wildcards, threads=1) -> None:
    settings = params.grid
    if settings.get("grid_like"):
        grid = RegionGrid.from_raster(input.grid_like)
        how = f"exactly as {input.grid_like}"
    else:
        aoi = settings["aoi"]
        bounds = tuple(aoi["bounds"]) if "bounds" in aoi else aoi_bounds(read_vector(input.aoi), settings["crs"])
        grid = RegionGrid.from_bounds(settings["crs"], settings["resolution_m"], bounds)
        how = "from the AOI, snapped to the resolution"
    # a grid a rule makes (an AOI file written by a rule) is not known at start-up
    check_pixel_count(grid.width * grid.height, params.max_pixels, f"the grid of {wildcards.region} ({how})")
    log.info(
        "grid of %s (%s): %s, %s m, %d x %d px",
        wildcards.region,
        how,
        grid.crs,
        grid.resolution,
        grid.width,
        grid.height,
    )
    write_json(grid.to_dict(), output.grid)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

"""Entry script of rule terrain_derivatives (and terrain_derivatives_tile): slope, aspect and aspect class."""

import logging

import dask

from karstflow.io import read_raster, write_raster
from karstflow.runtime import run_script
from karstflow.terrain import aspect_class, slope_aspect

log = logging.getLogger("karstflow.scripts.terrain_derivatives")


def main(input, output, params, wildcards, threads=1) -> None:
    chunk = params.chunk_px

    dem = read_raster(input.dem, chunks={"y": chunk, "x": chunk})
    slope_deg, aspect_deg = slope_aspect(dem)
    classes = aspect_class(aspect_deg, slope_deg, params.flat_max_deg)

    # One pass over the DEM for all three products; they fit in memory on the grid (a tile's
    # grid when tiled).
    slope_deg, aspect_deg, classes = dask.compute(slope_deg, aspect_deg, classes)
    write_raster(slope_deg, output.slope)
    write_raster(aspect_deg, output.aspect)
    write_raster(classes, output.aspect_class, dtype="uint8", nodata=255)
    log.info("terrain: slope, aspect and aspect class of %d x %d px", *slope_deg.shape)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

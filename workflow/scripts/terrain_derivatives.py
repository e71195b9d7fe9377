"""Entry script of rule terrain_derivatives: slope, aspect, aspect class and headline figures."""

import logging

import dask

from karstflow.io import read_raster, write_json, write_raster
from karstflow.runtime import run_script
from karstflow.terrain import aspect_class, slope_aspect, terrain_summary

log = logging.getLogger("karstflow.scripts.terrain_derivatives")


def main(input, output, params, wildcards, threads=1) -> None:
    chunk = params.chunk_px

    dem = read_raster(input.dem, chunks={"y": chunk, "x": chunk})
    slope_deg, aspect_deg = slope_aspect(dem)
    classes = aspect_class(aspect_deg, slope_deg, params.flat_max_deg)

    # One pass over the DEM for all three products; they fit in memory on the region grid.
    dem, slope_deg, aspect_deg, classes = dask.compute(dem, slope_deg, aspect_deg, classes)
    write_raster(slope_deg, output.slope)
    write_raster(aspect_deg, output.aspect)
    write_raster(classes, output.aspect_class, dtype="uint8", nodata=255)
    summary = terrain_summary(dem, slope_deg, classes, flat_max_deg=params.flat_max_deg)
    write_json(summary, output.summary)
    log.info("terrain: mean slope %.2f deg", summary["slope_mean_deg"])


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

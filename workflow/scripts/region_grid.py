"""Entry script of rule region_grid: derive the analysis grid of one region."""

import logging

from karstflow.grid import RegionGrid, aoi_bounds, demo_bounds
from karstflow.io import read_vector, write_json
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.region_grid")


def main(input, output, params, wildcards, threads=1) -> None:
    region = params.region

    if region["source"] == "demo":
        bounds = demo_bounds(region["demo"]["origin"], params.demo_size_px, region["resolution_m"])
    elif "bounds" in region["aoi"]:
        bounds = tuple(region["aoi"]["bounds"])
    else:
        bounds = aoi_bounds(read_vector(input.aoi[0]), region["crs"])

    grid = RegionGrid.from_bounds(region["crs"], region["resolution_m"], bounds)
    log.info(
        "grid of %s: %s, %s m, %d x %d px",
        wildcards.region,
        grid.crs,
        grid.resolution,
        grid.width,
        grid.height,
    )
    write_json(grid.to_dict(), output.grid)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

"""Entry script of rule terrain_summary: headline terrain figures from the region's DEM,
slope and aspect classes (after the tiles, if any, are put together)."""

import logging

from karstflow.io import read_raster, write_json
from karstflow.runtime import run_script
from karstflow.terrain import terrain_summary

log = logging.getLogger("karstflow.scripts.terrain_summary")


def main(input, output, params, wildcards, threads=1) -> None:
    dem, slope_deg, classes = (read_raster(input[k]) for k in ("dem", "slope", "aspect_class"))
    # masked=True reads the aspect-class nodata as NaN: give the summary its uint8 codes back
    classes = classes.fillna(255).astype("uint8")
    summary = terrain_summary(dem.values, slope_deg.values, classes.values, flat_max_deg=params.flat_max_deg)
    write_json(summary, output.summary)
    log.info("terrain: mean slope %.2f deg", summary["slope_mean_deg"])


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

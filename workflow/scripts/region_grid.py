"""Entry script of rule region_grid: derive the analysis grid of one region."""

from karstflow.grid import RegionGrid, aoi_bounds, demo_bounds
from karstflow.io import read_vector, write_json
from karstflow.runtime import configure_logging

log = configure_logging(snakemake.log[0])
region = snakemake.params.region

if region["source"] == "demo":
    bounds = demo_bounds(region["demo"]["origin"], snakemake.params.demo_size_px, region["resolution_m"])
elif "bounds" in region["aoi"]:
    bounds = tuple(region["aoi"]["bounds"])
else:
    bounds = aoi_bounds(read_vector(snakemake.input.aoi[0]), region["crs"])

grid = RegionGrid.from_bounds(region["crs"], region["resolution_m"], bounds)
log.info("grid of %s: %s, %s m, %d x %d px", snakemake.wildcards.region, grid.crs, grid.resolution, grid.width, grid.height)
write_json(grid.to_dict(), snakemake.output.grid)

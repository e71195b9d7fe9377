"""Entry script of rule terrain_derivatives: slope, aspect, aspect class and headline figures."""

import dask

from karstflow.io import read_raster, write_json, write_raster
from karstflow.runtime import configure_logging, set_threads
from karstflow.terrain import aspect_class, slope_aspect, terrain_summary

log = configure_logging(snakemake.log[0])
set_threads(snakemake.threads)
chunk = snakemake.params.chunk_px

dem = read_raster(snakemake.input.dem, chunks={"y": chunk, "x": chunk})
slope_deg, aspect_deg = slope_aspect(dem)
classes = aspect_class(aspect_deg, slope_deg, snakemake.params.flat_max_deg)

# One pass over the DEM for all three products; they fit in memory on the region grid.
dem, slope_deg, aspect_deg, classes = dask.compute(dem, slope_deg, aspect_deg, classes)
write_raster(slope_deg, snakemake.output.slope)
write_raster(aspect_deg, snakemake.output.aspect)
write_raster(classes, snakemake.output.aspect_class, dtype="uint8", nodata=255)
summary = terrain_summary(dem, slope_deg, classes, flat_max_deg=snakemake.params.flat_max_deg)
write_json(summary, snakemake.output.summary)
log.info("terrain: mean slope %.2f deg", summary["slope_mean_deg"])

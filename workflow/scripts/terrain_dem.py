"""Entry script of rule terrain_dem: put the region's DEM (a file, tiles or a glob, any CRS)
on the region grid."""

import logging

from karstflow.grid import RegionGrid
from karstflow.harmonise import raster_to_grid
from karstflow.io import read_json, write_raster
from karstflow.runtime import run_script
from karstflow.terrain import validate_dem

log = logging.getLogger("karstflow.scripts.terrain_dem")


def main(input, output, params, wildcards, threads=1) -> None:
    sources = [str(p) for p in (input.dem if isinstance(input.dem, list) else [input.dem])]
    grid = RegionGrid.from_dict(read_json(input.grid))
    name = sources[0] if len(sources) == 1 else f"{sources[0]} and {len(sources) - 1} more tile(s)"
    on_grid = raster_to_grid(sources, grid, resampling=params.resampling, source=f"DEM {name}")
    validate_dem(on_grid, source=f"{name} (on the grid of region {wildcards.region})")
    on_grid = on_grid.astype("float32")
    on_grid.attrs.update(units="m", long_name="elevation")
    write_raster(on_grid, output.dem)
    log.info("DEM on the region grid: %s", output.dem)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

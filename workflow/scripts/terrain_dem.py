"""Entry script of rule terrain_dem: put the region's DEM on the region grid."""

import logging

from karstflow.grid import RegionGrid, reproject_to_grid
from karstflow.io import read_json, read_raster, write_raster
from karstflow.runtime import run_script
from karstflow.terrain import validate_dem

log = logging.getLogger("karstflow.scripts.terrain_dem")


def main(input, output, params, wildcards, threads=1) -> None:
    source = str(input.dem)
    grid = RegionGrid.from_dict(read_json(input.grid))

    dem = read_raster(source)
    validate_dem(dem, source=source)
    on_grid = reproject_to_grid(dem, grid, resampling=params.resampling, source=source)
    validate_dem(on_grid, source=f"{source} (on the grid of region {wildcards.region})")
    on_grid = on_grid.astype("float32")
    on_grid.attrs.update(units="m", long_name="elevation")
    write_raster(on_grid, output.dem)
    log.info("DEM on the region grid: %s", output.dem)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

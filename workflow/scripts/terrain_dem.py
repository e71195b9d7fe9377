"""Entry script of rule terrain_dem: put the region's DEM on the region grid."""

from karstflow.grid import RegionGrid, reproject_to_grid
from karstflow.io import read_json, read_raster, write_raster
from karstflow.runtime import configure_logging
from karstflow.terrain import validate_dem

log = configure_logging(snakemake.log[0])
source = str(snakemake.input.dem)
grid = RegionGrid.from_dict(read_json(snakemake.input.grid))

dem = read_raster(source)
validate_dem(dem, source=source)
on_grid = reproject_to_grid(dem, grid, resampling=snakemake.params.resampling, source=source)
validate_dem(on_grid, source=f"{source} (on the grid of region {snakemake.wildcards.region})")
on_grid = on_grid.astype("float32")
on_grid.attrs.update(units="m", long_name="elevation")
write_raster(on_grid, snakemake.output.dem)
log.info("DEM on the region grid: %s", snakemake.output.dem)

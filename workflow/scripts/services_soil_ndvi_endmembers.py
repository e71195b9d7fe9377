"""Entry script of rule services_soil_ndvi_endmembers: the NDVI end-members of the fractional
vegetation cover behind the C factor (``services.soil_conservation.cover_factor:
vegetation_cover``), region figures.

The bare-soil and full-vegetation NDVI are the ``desertification.fvc_percentiles`` (default
5th and 95th) of every finite pixel-year of the region's annual NDVI cube (Gutman & Ignatov
1998's dimidiate model, karstflow.greening.percentile_endmembers). Taken on a tile they would
change from tile to tile; rule services_soil_retention reads them here, tiled or not.
"""

import logging

from karstflow.greening import percentile_endmembers
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, write_json
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.services_soil_ndvi_endmembers")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    path = str(input.ndvi)
    cube = read_cube(path)
    grid.check(cube, grid_source=input.grid, source=path)
    if "ndvi" not in cube.data_vars:
        raise ValueError(f"{path}: no variable 'ndvi'; found {sorted(map(str, cube.data_vars))}")
    low, high = (float(p) for p in params.fvc_percentiles)
    soil_ndvi, veg_ndvi = percentile_endmembers(cube["ndvi"], low, high)
    write_json(
        {"soil_ndvi": soil_ndvi, "vegetation_ndvi": veg_ndvi, "percentiles": [low, high], "source": path},
        output.endmembers,
    )
    log.info("NDVI end-members (percentiles %g / %g of %s): %.4f / %.4f", low, high, path, soil_ndvi, veg_ndvi)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

"""Entry script of rule services_ls_factor: MFD flow accumulation and the RUSLE LS factor."""

import logging
import math

import numpy as np

from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_raster, write_raster
from karstflow.runtime import run_script
from karstflow.services import flow_routing, ls_factor
from karstflow.terrain import slope_aspect

log = logging.getLogger("karstflow.scripts.services_ls_factor")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    dem_path = str(input.dem)
    dem = read_raster(dem_path)
    grid.check(dem, grid_source=input.grid, source=dem_path)
    routing = flow_routing(dem)
    filled = grid.data_array(routing.filled_dem.astype(np.float32), name="filled_dem")
    # InVEST SDR takes the slope of the pit-filled DEM; ours is Horn's, as everywhere else.
    slope, aspect = slope_aspect(filled)
    cell = math.sqrt(grid.pixel_area_m2)
    ls = ls_factor(
        np.asarray(slope.values),
        np.asarray(aspect.values),
        routing.flow_accumulation,
        cell_size_m=cell,
        l_max=params.l_max,
    )
    write_raster(grid.data_array(ls.astype(np.float32), name="ls_factor", units="1"), output.ls)
    write_raster(
        grid.data_array(routing.flow_accumulation.astype(np.float32), name="flow_accumulation", units="cells"),
        output.flow_accumulation,
    )
    filled_px = int(np.nansum(routing.filled_dem - dem.values > 1e-6))
    log.info(
        "LS factor: mean %.3f, max %.3f; %d pixel(s) raised by depression filling; max accumulation %.0f cells",
        float(np.nanmean(ls)),
        float(np.nanmax(ls)),
        filled_px,
        float(np.nanmax(routing.flow_accumulation)),
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

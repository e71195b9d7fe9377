"""Entry script of rule greening_cube: the annual vegetation-index cube on the region grid (per
pixel; tiled as greening_cube_tile)."""

import logging

import numpy as np

from karstflow.greening import check_index_range, on_grid, select_years, vegetation_index_cube
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, write_netcdf
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.greening_cube")


def main(input, output, params, wildcards, threads=1) -> None:
    # a tile reads a cut of the stack in a scratch folder: name the region's file (the cube's
    # `source` attribute must be the same on every tile)
    source = str(params.get("source") or input.stack)
    grid = RegionGrid.from_dict(read_json(input.grid))

    stack = read_cube(str(input.stack), chunks={"year": -1, "y": params.chunk_px, "x": params.chunk_px})
    grid.check(stack, grid_source=input.grid, source=source)
    stack = select_years(stack, params.years, source=source)
    cube = vegetation_index_cube(stack, params.index, source=source)
    for name in cube.data_vars:
        # one tile may lie outside the area of interest; the region as a whole may not (greening_summary)
        lo, hi = check_index_range(
            cube[name], source=source, low=-1.0, high=1.0 if name != "evi" else 2.5, allow_empty="tile" in wildcards
        )
        log.info("%s: %s in %.3f..%.3f", source, name, lo, hi)
    cube = on_grid(cube, grid)
    if "sensor" in stack.coords:  # a vegetation-stage stack: keep the sensor of each year
        cube = cube.assign_coords(sensor=("year", [str(s) for s in stack["sensor"].values]))
        cube.attrs["calibrations"] = stack.attrs.get("calibrations", "")
    cube.attrs.update(source=source, years=f"{params.years[0]}-{params.years[-1]}")
    write_netcdf(cube, output.cube, chunks={"year": len(params.years), "y": params.chunk_px, "x": params.chunk_px})
    missing = float(np.isnan(cube["ndvi"]).mean().compute())
    log.info(
        "annual cube: %s, %d years %d-%d, %d x %d px, %.2f %% missing NDVI values -> %s",
        ", ".join(map(str, cube.data_vars)),
        len(params.years),
        params.years[0],
        params.years[-1],
        grid.height,
        grid.width,
        100 * missing,
        output.cube,
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

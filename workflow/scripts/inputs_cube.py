"""Entry script of rule inputs_cube: one NetCDF cube input, checked to lie on the region
grid, copied with its stored values unchanged (karstflow never resamples a cube: regridding
a time series is the data maker's choice, see karstflow.grid.check_same_grid) but chunked
on disk in blocks, so a tile job reads its window without decompressing the whole region
(karstflow.io.rechunk_netcdf)."""

import logging

from karstflow.checks import check_cube_dims, check_variables
from karstflow.grid import RegionGrid
from karstflow.inputs import INPUTS
from karstflow.io import read_cube, read_json, rechunk_netcdf
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.inputs_cube")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    source = str(input.source[0] if isinstance(input.source, list) else input.source)
    spec = INPUTS[wildcards.layer]
    where = f"{source} (input {wildcards.layer})"
    with read_cube(source) as cube:
        check_cube_dims(cube, source=where, leading=spec.leading_dims)
        grid.check(cube, grid_source=str(input.grid), source=where)
        check_variables(cube, source=where, required=spec.variables)
        log.info("%s (input %s): variables %s, on the region grid", source, wildcards.layer, list(cube.data_vars))
    rechunk_netcdf(source, output.cube)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

"""Entry script of rule inputs_cube: one NetCDF cube input, checked to lie on the region
grid, copied unchanged (karstflow never resamples a cube: regridding a time series is the
data maker's choice, see karstflow.grid.check_same_grid)."""

import logging
import shutil

from karstflow.grid import RegionGrid
from karstflow.io import atomic_path, read_cube, read_json
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.inputs_cube")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    source = str(input.source[0] if isinstance(input.source, list) else input.source)
    with read_cube(source) as cube:
        grid.check(cube, grid_source=str(input.grid), source=f"{source} (input {wildcards.layer})")
        log.info("%s (input %s): variables %s, on the region grid", source, wildcards.layer, list(cube.data_vars))
    with atomic_path(output.cube) as tmp:
        shutil.copyfile(source, tmp)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

"""Entry script of rules inputs_raster and inputs_landcover: one raster input (a file, a
list of tiles or a glob, any CRS) on the region grid by its declared resampling."""

import logging

from karstflow.checks import Range, check_range
from karstflow.grid import RegionGrid
from karstflow.harmonise import raster_to_grid
from karstflow.inputs import INPUTS
from karstflow.io import read_json, write_raster
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.inputs_raster")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    sources = [str(p) for p in (input.source if isinstance(input.source, list) else [input.source])]
    name = wildcards.get("layer") or f"landcover {wildcards.get('year')}"
    on_grid = raster_to_grid(
        sources, grid, resampling=params.entry["resampling"], source=f"input {name} ({sources[0]})"
    )
    spec = INPUTS[wildcards.layer]
    # on the grid, so a raster that does not reach it is "all missing", naming the file
    nodata = on_grid.rio.nodata
    check_range(
        on_grid if nodata is None or nodata != nodata else on_grid.where(on_grid != nodata),
        Range(spec.units or "", *spec.valid_range),
        source=f"{', '.join(sources)} (input {name}, on the region grid)",
        variable=name,
    )
    write_raster(on_grid, output.raster)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

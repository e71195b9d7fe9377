"""Entry script of the `<rule>_mosaic` rules: the tiles of each output put together on the
region grid (karstflow.tiling.mosaic)."""

import logging

from karstflow.grid import RegionGrid
from karstflow.io import read_json
from karstflow.runtime import run_script
from karstflow.tiling import mosaic, plan_tiles

log = logging.getLogger("karstflow.scripts.tile_mosaic")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    tiles = plan_tiles(grid, int(params.tile_px))
    for key, path in output.items():
        mosaic(input[key], tiles, grid, path)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

"""Entry script of rule carbon_storage: carbon storage density of one year (InVEST pools)."""

import logging

import pandas as pd

from karstflow.carbon import carbon_storage, storage_total_mg
from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_raster, write_raster
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.carbon_storage")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    lc_path = str(input.landcover)
    landcover = read_raster(lc_path)
    grid.check(landcover, grid_source=input.grid, source=lc_path)
    pools = pd.read_csv(input.pools)
    density = carbon_storage(landcover, pools, source=lc_path)
    write_raster(
        grid.data_array(density.values.astype("float32"), name="carbon_storage", units="Mg C ha-1"),
        output.storage,
    )
    total = storage_total_mg(density, grid.pixel_area_m2 / 1e4)
    log.info(
        "carbon storage %s: %.1f Mg C (mean %.2f Mg C/ha)",
        wildcards.year,
        total,
        float(density.mean()),
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

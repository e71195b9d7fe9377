"""Entry script of rule carbon_storage: carbon storage density of one year (InVEST pools)."""

import pandas as pd

from karstflow.carbon import carbon_storage, storage_total_mg
from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_raster, write_raster
from karstflow.runtime import configure_logging

log = configure_logging(snakemake.log[0])


def main() -> None:
    grid = RegionGrid.from_dict(read_json(snakemake.input.grid))
    lc_path = str(snakemake.input.landcover)
    landcover = read_raster(lc_path)
    grid.check(landcover, grid_source=snakemake.input.grid, source=lc_path)
    pools = pd.read_csv(snakemake.input.pools)
    density = carbon_storage(landcover, pools, source=lc_path)
    write_raster(grid.data_array(density.values.astype("float32"), name="carbon_storage", units="Mg C ha-1"), snakemake.output.storage)
    total = storage_total_mg(density, grid.pixel_area_m2 / 1e4)
    log.info("carbon storage %s: %.1f Mg C (mean %.2f Mg C/ha)", snakemake.wildcards.year, total, float(density.mean()))


main()

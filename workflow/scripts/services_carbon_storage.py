"""Entry script of rule services_carbon_storage: the carbon stage's storage map as a service map.

Carbon storage is computed once, by the carbon stage (karstflow.carbon.carbon_storage);
this copies that file into services/ after checking it lies on the region grid, so the
four service maps sit side by side as the results contract lists them.
"""

import logging
import shutil

from karstflow.grid import RegionGrid
from karstflow.io import atomic_path, read_json, read_raster
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.services_carbon_storage")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    src = str(input.storage)
    grid.check(read_raster(src), grid_source=input.grid, source=src)
    with atomic_path(output.storage, suffix=".tif") as tmp:
        shutil.copyfile(src, tmp)
    log.info("carbon storage %s -> %s", src, output.storage)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

"""Entry script of rule services_carbon_storage: the carbon stage's storage map as a service map.

Carbon storage is computed once, by the carbon stage (karstflow.carbon.carbon_storage);
this copies that file into services/ after checking it lies on the region grid, so the
four service maps sit side by side as the results contract lists them.
"""

import shutil

from karstflow.grid import RegionGrid
from karstflow.io import atomic_path, read_json, read_raster
from karstflow.runtime import configure_logging

log = configure_logging(snakemake.log[0])


def main() -> None:
    grid = RegionGrid.from_dict(read_json(snakemake.input.grid))
    src = str(snakemake.input.storage)
    grid.check(read_raster(src), grid_source=snakemake.input.grid, source=src)
    with atomic_path(snakemake.output.storage, suffix=".tif") as tmp:
        shutil.copyfile(src, tmp)
    log.info("carbon storage %s -> %s", src, snakemake.output.storage)


main()

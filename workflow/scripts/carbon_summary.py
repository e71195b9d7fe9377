"""Entry script of rule carbon_summary: sequestration map and headline carbon-storage figures."""

import logging

from karstflow.carbon import storage_summary
from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_raster, write_json, write_raster
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.carbon_summary")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    paths = input.storage if isinstance(input.storage, list) else [input.storage]
    storage = {int(year): read_raster(path) for year, path in zip(params.storage_years, paths, strict=True)}
    y0, y1 = params.sequestration_years
    seq = storage[y1] - storage[y0]
    write_raster(
        grid.data_array(seq.values.astype("float32"), name="carbon_sequestration", units="Mg C ha-1"),
        output.sequestration,
    )
    summary = storage_summary(storage, pixel_area_m2=grid.pixel_area_m2, sequestration_years=(y0, y1))
    summary["sequestration"]["raster_units"] = "Mg C ha-1 (storage density difference)"
    if y0 == y1:
        log.warning("one land-cover year (%d): sequestration not evaluated (the map is zero)", y0)
    write_json(summary, output.summary)
    log.info(
        "carbon storage %s Mg C; sequestration %.1f Mg C (%d-%d)",
        summary["carbon_storage_total_mg_c"],
        summary["sequestration"]["total_mg_c"],
        y0,
        y1,
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

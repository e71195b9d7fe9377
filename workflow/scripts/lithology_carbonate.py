"""Entry script of rule lithology_carbonate: the carbonate-rock mask from the lithology map."""

import logging

import numpy as np

from karstflow.desertification import carbonate_from_lithology
from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_vector, write_json, write_raster
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.lithology_carbonate")


def main(input, output, params, wildcards, threads=1) -> None:
    if not params.carbonate_units:
        raise ValueError(
            f"config key regions.{wildcards.region}.carbonate_units: needed with a lithology input "
            "(the units of its unit column that are carbonate rock)"
        )
    grid = RegionGrid.from_dict(read_json(input.grid))
    lithology = read_vector(input.lithology)
    mask = carbonate_from_lithology(lithology, params.carbonate_units, grid, source=str(input.lithology))
    write_raster(grid.data_array(mask, name="carbonate"), output.carbonate, dtype="uint8", nodata=255)
    mapped = int((mask != 255).sum())
    write_json(
        {
            "carbonate_units": list(params.carbonate_units),
            "carbonate_share": float((mask == 1).sum()) / mapped if mapped else None,
            "carbonate_km2": float((mask == 1).sum()) * grid.pixel_area_m2 / 1e6,
            "unmapped_share": float(np.mean(mask == 255)),
        },
        output.summary,
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

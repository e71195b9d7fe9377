"""Entry script of rule services_habitat_quality (and its `_tile`): InVEST habitat quality of
one year, per pixel.

The half-saturation constant k is a region figure (the configured number, or with "auto"
half the highest degradation over every service year of the region), read from rule
services_habitat_half_saturation's JSON, so untiled and tiled runs use the same k.
"""

import logging

import numpy as np

from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_raster, write_raster
from karstflow.runtime import run_script
from karstflow.services import habitat_quality, reclassify

log = logging.getLogger("karstflow.scripts.services_habitat_quality")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    lc_path = str(input.landcover)
    landcover = read_raster(lc_path)
    grid.check(landcover, grid_source=input.grid, source=lc_path)
    lc = np.asarray(landcover.values)
    degradation = np.asarray(read_raster(input.degradation).values, dtype=np.float64)
    hs = read_json(input.half_saturation)
    k, how = float(hs["half_saturation"]), hs["method"]
    suitability = reclassify(
        lc,
        {int(c): row["suitability"] for c, row in params.habitat.items()},
        what="habitat suitability",
        table_source="config key services.habitat_quality.habitat",
        map_source=lc_path,
    )
    quality = habitat_quality(suitability, degradation, half_saturation=k, z=params.scaling_z)
    da = grid.data_array(quality.astype(np.float32), name="habitat_quality", units="1")
    da.attrs["half_saturation"] = k
    write_raster(da, output.quality)
    log.info(
        "habitat quality %s: mean %.4f (k = %.4f, %s; z = %g)",
        wildcards.year,
        float(np.nanmean(quality)),
        k,
        how,
        params.scaling_z,
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

"""Entry script of rule services_habitat_degradation (and its `_tile`): InVEST total threat D
of one year.

Threat maps come from land cover (configured codes, e.g. built-up and cultivated land)
or from vector inputs of the region (e.g. roads, burnt in along every pixel a line
touches). As InVEST's habitat_quality.py, the weights are normalised over every threat of
the region's table (``params.threats``: the configured threats less those the config takes
out), and a threat of the table without its layer stops the rule naming the threat; a
region without roads takes the threat out explicitly
(``services.habitat_quality.drop_threats`` or ``threats.<name>.enabled: false``). The
access layer (input ``access``: polygons with ``access`` 0-1) scales every threat's impact
like InVEST's ACCESS field, 1 where no polygon covers a pixel.

D of a pixel reads the threat pixels within each threat's max_distance_m: tiled, the rule
runs on the tile widened by the largest of them (docs/tiling.md). What was used per threat
(pixels, weights, access) is recorded by rule services_habitat_threats on the region.
"""

import logging

import numpy as np

from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_raster, read_vector, write_raster
from karstflow.runtime import run_script
from karstflow.services import access_raster, habitat_degradation, threat_masks

log = logging.getLogger("karstflow.scripts.services_habitat_degradation")

THREATS_KEY = "config key services.habitat_quality.threats"


def vector_layers(input, params, grid: RegionGrid) -> dict:
    """Threat name -> its vector layer in the grid's CRS, for the vector threats the rule has."""
    return {
        name: read_vector(str(input[name])).to_crs(grid.crs)
        for name in params.vectors
        if name in params.threats and name in input.keys()
    }


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    lc_path = str(input.landcover)
    landcover = read_raster(lc_path)
    grid.check(landcover, grid_source=input.grid, source=lc_path)
    lc = np.asarray(landcover.values)
    masks = threat_masks(
        lc, params.threats, vector_layers(input, params, grid), grid, region=wildcards.region, threats_key=THREATS_KEY
    )
    access = None
    if "access" in input.keys():
        access = access_raster(read_vector(str(input.access)).to_crs(grid.crs), grid, source=str(input.access))

    sensitivity = {int(code): dict(row["sensitivity"]) for code, row in params.habitat.items()}
    degradation = habitat_degradation(
        lc,
        masks,
        params.threats,
        sensitivity,
        resolution_m=grid.resolution,
        source=lc_path,
        table_source="config key services.habitat_quality.habitat",
        access=access,
        access_source=str(input.access) if access is not None else "access layer",
        threats_source=THREATS_KEY,
    )
    write_raster(
        grid.data_array(degradation.astype(np.float32), name="habitat_degradation", units="1"),
        output.degradation,
    )
    log.info(
        "habitat degradation %s of %d x %d px: threats %s; access %s",
        wildcards.year,
        *grid.shape,
        {k: int(v.sum()) for k, v in masks.items()},
        input.access if access is not None else "none (1 everywhere)",
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

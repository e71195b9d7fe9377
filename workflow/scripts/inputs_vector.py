"""Entry script of rule inputs_vector: one vector input in canonical form (columns and
codes mapped, checked, in the grid CRS) as GeoPackage."""

import logging

from karstflow.grid import RegionGrid
from karstflow.inputs import harmonise_vector
from karstflow.io import read_json, read_vector, write_vector
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.inputs_vector")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    source = str(input.source[0] if isinstance(input.source, list) else input.source)
    layer = harmonise_vector(
        read_vector(source, layer=params.entry.get("layer")),
        wildcards.layer,
        params.entry,
        grid.crs,
        source,
        bounds=grid.bounds,
    )
    write_vector(layer, output.layer)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

"""Entry script of rule reserve_maps: reclaimable forest by type and by first failing factor."""

import logging

from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_vector
from karstflow.plotting import forest_type_colours, save_figure
from karstflow.reserve import map_failing_factor, map_reclaimable_by_type
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.reserve_maps")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    candidates = read_vector(input.candidates)
    region = wildcards.region
    type_colours = forest_type_colours(sorted(candidates["forest_type"].astype(str).unique()))
    save_figure(
        map_reclaimable_by_type(
            candidates,
            grid.bounds,
            type_colours,
            title=f"{region}: reclaimable forest land by type",
        ),
        output.by_type,
    )
    save_figure(
        map_failing_factor(candidates, grid.bounds, title=f"{region}: forest land by first failing factor"),
        output.by_factor,
    )
    log.info("reserve maps written for %d candidates", len(candidates))


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

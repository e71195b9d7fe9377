"""Entry script of rule capacity_maps: the swap plan beside the abandoned parcels."""

import logging

from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_vector
from karstflow.plotting import forest_type_colours, save_figure
from karstflow.runtime import run_script
from karstflow.swap import map_swap_plan

log = logging.getLogger("karstflow.scripts.capacity_maps")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_dict(read_json(input.grid))
    planned = read_vector(input.plan)
    candidates = read_vector(input.candidates)
    reclaimable = candidates[candidates["reclaimable"] == 1]
    parcels = read_vector(input.parcels)
    figures = read_json(input.summary)
    region = wildcards.region
    subtitle = (
        f"lost {figures['lost_t']:,.0f} t, planned {figures['planned_t']:,.0f} t "
        f"on {figures['planned_area_ha']:,.1f} ha ({figures['solver']}: "
        f"{figures['solver_status'][:40]})"
    )
    fig = map_swap_plan(
        planned,
        reclaimable[~reclaimable["forest_id"].isin(planned["forest_id"])],
        parcels[parcels["abandoned"] == 1],
        grid.bounds,
        farmland=read_vector(input.farmland),
        type_colours=forest_type_colours(sorted(candidates["forest_type"].astype(str).unique())),
        title=f"{region}: forest-farmland swap plan",
        subtitle=subtitle,
    )
    save_figure(fig, output.swap_map)
    log.info("swap plan map written (%d planned patches)", len(planned))


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

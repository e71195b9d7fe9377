"""Entry script of rule reserve_maps: reclaimable forest by type and by first failing factor."""

from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_vector
from karstflow.plotting import forest_type_colours, save_figure
from karstflow.reserve import map_failing_factor, map_reclaimable_by_type
from karstflow.runtime import configure_logging

log = configure_logging(snakemake.log[0])
grid = RegionGrid.from_dict(read_json(snakemake.input.grid))
candidates = read_vector(snakemake.input.candidates)
region = snakemake.wildcards.region
type_colours = forest_type_colours(sorted(candidates["forest_type"].astype(str).unique()))
save_figure(
    map_reclaimable_by_type(candidates, grid.bounds, type_colours, title=f"{region}: reclaimable forest land by type"),
    snakemake.output.by_type,
)
save_figure(
    map_failing_factor(candidates, grid.bounds, title=f"{region}: forest land by first failing factor"),
    snakemake.output.by_factor,
)
log.info("reserve maps written for %d candidates", len(candidates))

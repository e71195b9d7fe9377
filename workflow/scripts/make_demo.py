"""Entry script of rules demo_county and demo_karst: generate one demo region."""

from pathlib import Path

from karstflow.demo import generate, write_bundle
from karstflow.grid import RegionGrid, demo_bounds
from karstflow.runtime import configure_logging

log = configure_logging(snakemake.log[0])
p = snakemake.params
grid = RegionGrid.from_bounds(p.crs, p.resolution, demo_bounds(p.demo["origin"], p.size_px, p.resolution))
years = range(p.years["first"], p.years["last"] + 1)
log.info("generating %s demo %s: %d x %d px, seed %d", p.kind, snakemake.wildcards.region, grid.width, grid.height, p.demo["seed"])
bundle = generate(p.kind, grid, p.demo["seed"], years=tuple(years))
out_dir = Path(p.out_dir)
written = write_bundle(bundle, out_dir)
log.info("wrote %d files to %s", len(written), out_dir)

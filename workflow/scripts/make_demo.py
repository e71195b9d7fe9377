"""Entry script of rules demo_county and demo_karst: generate one demo region."""

import logging
from pathlib import Path

from karstflow.demo import generate, write_bundle
from karstflow.grid import RegionGrid, demo_bounds
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.make_demo")


def main(input, output, params, wildcards, threads=1) -> None:
    p = params
    grid = RegionGrid.from_bounds(p.crs, p.resolution, demo_bounds(p.demo["origin"], p.size_px, p.resolution))
    years = range(p.years["first"], p.years["last"] + 1)
    log.info(
        "generating %s demo %s: %d x %d px, seed %d",
        p.kind,
        wildcards.region,
        grid.width,
        grid.height,
        p.demo["seed"],
    )
    bundle = generate(p.kind, grid, p.demo["seed"], years=tuple(years))
    out_dir = Path(p.out_dir)
    written = write_bundle(bundle, out_dir)
    log.info("wrote %d files to %s", len(written), out_dir)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

"""Entry script of rules demo_county and demo_karst: generate one demo region."""

import logging
from pathlib import Path

from karstflow.demo import generate, write_bundle
from karstflow.grid import RegionGrid, demo_bounds
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.make_demo")


def main(input, output, params, wildcards, threads=1) -> None:
    grid = RegionGrid.from_bounds(
        params.crs, params.resolution, demo_bounds(params.demo["origin"], params.size_px, params.resolution)
    )
    years = range(params.years["first"], params.years["last"] + 1)
    log.info(
        "generating %s demo %s: %d x %d px, seed %d",
        params.kind,
        wildcards.region,
        grid.width,
        grid.height,
        params.demo["seed"],
    )
    bundle = generate(params.kind, grid, params.demo["seed"], years=tuple(years))
    out_dir = Path(params.out_dir)
    written = write_bundle(bundle, out_dir)
    log.info("wrote %d files to %s", len(written), out_dir)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

"""Entry script of rule public_landcover_summary: the per-year figures of the public land cover."""

import logging

from karstflow.io import read_json, write_json
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.public_landcover_summary")


def main(input, output, params, wildcards, threads=1) -> None:
    years = [read_json(p) for p in input.years]
    write_json({"product": params.product, "years": {str(y["year"]): y for y in years}}, output.summary)
    log.info("%s: public land cover (%s) of %d years", wildcards.region, params.product, len(years))


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

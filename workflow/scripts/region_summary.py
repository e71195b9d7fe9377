"""Entry script of rule region_summary: merge the stage JSONs of one region."""

import logging

from karstflow.io import read_json, write_json
from karstflow.runtime import run_script
from karstflow.summary import region_summary

log = logging.getLogger("karstflow.scripts.region_summary")


def main(input, output, params, wildcards, threads=1) -> None:
    sections = {stage: read_json(input[stage]) for stage in params.stages}
    summary = region_summary(wildcards.region, read_json(input.grid), sections)
    write_json(summary, output.summary)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

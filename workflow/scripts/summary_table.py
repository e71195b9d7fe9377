"""Entry script of rule summary_table: one row per region in results/summary.csv."""

import logging

from karstflow.io import read_json, write_csv
from karstflow.runtime import run_script
from karstflow.summary import summary_table

log = logging.getLogger("karstflow.scripts.summary_table")


def main(input, output, params, wildcards, threads=1) -> None:
    table = summary_table([read_json(path) for path in input.summaries])
    write_csv(table, output.table, index=False)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

"""Entry script of rule inputs_table: one table input with its columns mapped and checked."""

import logging

import pandas as pd

from karstflow.inputs import harmonise_table
from karstflow.io import write_csv
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.inputs_table")


def main(input, output, params, wildcards, threads=1) -> None:
    source = str(input.source[0] if isinstance(input.source, list) else input.source)
    table = harmonise_table(pd.read_csv(source), wildcards.layer, params.entry, source)
    write_csv(table, output.table, index=False)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

"""Entry script of rule inputs_table: one table input with its columns mapped and checked;
a table keyed by land-cover code also against the codes of the region's land-cover maps, a
table keyed by township and year (population_table) against the region's years and the
township ids of the townships layer."""

import logging

import pandas as pd

from karstflow.checks import check_codes, check_population_table, map_codes
from karstflow.inputs import harmonise_table
from karstflow.io import read_raster, read_vector, write_csv
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.inputs_table")


def main(input, output, params, wildcards, threads=1) -> None:
    source = str(input.source[0] if isinstance(input.source, list) else input.source)
    table = harmonise_table(pd.read_csv(source), wildcards.layer, params.entry, source)
    for path in input.get("landcover", []):
        check_codes(
            map_codes(read_raster(path).values),
            table["lucode"],
            table_source=f"{source} (input {wildcards.layer})",
            column=params.entry.get("columns", {}).get("lucode", "lucode"),
            map_source=path,
        )
    if "region_years" in params.entry:
        townships = input.get("townships", [])
        check_population_table(
            table,
            source=f"{source} (input {wildcards.layer})",
            years=params.entry["region_years"],
            township_ids=read_vector(townships[0])["township_id"] if townships else None,
            columns=params.entry.get("columns", {}),
            townships_source=townships[0] if townships else "the townships layer",
        )
    write_csv(table, output.table, index=False)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

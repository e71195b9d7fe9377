"""Entry script of rule summary_table: one row per region in results/summary.csv."""

from karstflow.io import read_json, write_csv
from karstflow.runtime import configure_logging
from karstflow.summary import summary_table

configure_logging(snakemake.log[0])
table = summary_table([read_json(path) for path in snakemake.input.summaries])
write_csv(table, snakemake.output.table, index=False)

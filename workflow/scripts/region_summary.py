"""Entry script of rule region_summary: merge the stage JSONs of one region."""

from karstflow.io import read_json, write_json
from karstflow.runtime import configure_logging
from karstflow.summary import region_summary

configure_logging(snakemake.log[0])
sections = {stage: read_json(snakemake.input[stage]) for stage in snakemake.params.stages}
summary = region_summary(snakemake.wildcards.region, read_json(snakemake.input.grid), sections)
write_json(summary, snakemake.output.summary)

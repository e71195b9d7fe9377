# karstflow: satellite tiles to land-use and karst ecosystem evidence, region by region.
# Layout and the results contract: README.md, docs/ and CONTRIBUTING.md.

from pathlib import Path

from snakemake.utils import min_version

from karstflow.config import (
    check_config,
    check_yaml_file,
    coerce_cli_strings,
    fill_defaults,
    load_schema,
)

min_version("9.0")

# file and line of a syntax error, which Snakemake's own message does not name
if Path("config/config.yaml").exists():
    check_yaml_file("config/config.yaml")


configfile: "config/config.yaml"


SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
# The check names the key path of a problem; then the schema defaults fill `config` (what
# snakemake's validate(set_default=True) does). Nested --config values arrive as text: type them.
config.update(coerce_cli_strings(dict(config), load_schema(SCHEMA)))
check_config(config, load_schema(SCHEMA))
fill_defaults(config, load_schema(SCHEMA))


include: "workflow/rules/common.smk"
include: "workflow/rules/functions/resources.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/region.smk"
include: "workflow/rules/tiling.smk"
include: "workflow/rules/inputs.smk"
include: "workflow/rules/terrain.smk"
include: "workflow/rules/imagery.smk"
include: "workflow/rules/landcover.smk"
include: "workflow/rules/abandonment.smk"
include: "workflow/rules/drivers.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/vegetation.smk"
include: "workflow/rules/climate.smk"
include: "workflow/rules/soil.smk"
include: "workflow/rules/public_landcover.smk"
include: "workflow/rules/lithology.smk"
include: "workflow/rules/greening.smk"
include: "workflow/rules/desertification.smk"
include: "workflow/rules/carbon.smk"
include: "workflow/rules/reserve.smk"
include: "workflow/rules/capacity.smk"
include: "workflow/rules/services.smk"
include: "workflow/rules/coupling.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/summary.smk"


check_input_files()


# Small steps that read only tables, JSON or parcels run on the submitting host, not as
# cluster jobs; summaries that read a region's rasters or cubes are jobs, since on a large
# region they read GBs (docs/tiling.md).
localrules:
    region_plan,
    imagery_summary,
    public_landcover_summary,
    model_summary,
    model_figures,
    vegetation_summary,
    reserve_maps,
    capacity_maps,
    region_summary,
    summary_table,


rule all:
    default_target: True
    input:
        "results/summary.csv",
        expand("results/{region}/plan.json", region=REGIONS),
        expand("results/{region}/summary.json", region=REGIONS),
        expand("results/{region}/maps", region=REGIONS),
        [path for rid in REGIONS for path in stage_outputs(rid)],

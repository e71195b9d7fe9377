"""Entry script of rule region_plan: the stages a region gets and, for every other stage,
the input keys it lacks (karstflow.stages.plan_region, computed at start-up)."""

import logging

from karstflow.io import write_json
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.region_plan")


def main(input, output, params, wildcards, threads=1) -> None:
    plan = dict(params.plan)
    runs = [name for name, p in plan.items() if p["runs"]]
    write_json({"region": wildcards.region, "inputs": list(params.inputs), "runs": runs, "stages": plan}, output.plan)
    log.info("%s gets %d stages: %s", wildcards.region, len(runs), ", ".join(runs))


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

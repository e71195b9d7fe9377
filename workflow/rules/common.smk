# Cross-cutting helpers: region lookup, the stage plan, input and results paths, logs.
# Input functions of a stage live beside its rules (workflow/rules/<stage>.smk).

import os
import re

from snakemake.exceptions import WorkflowError

from karstflow.inputs import INPUTS, InputError, input_spec
from karstflow.stages import (
    EARTHENGINE_SOURCE,
    REMOTE_SOURCE,
    STAGES,
    PlanError,
    chosen,
    format_plan,
    layer_path,
    plan_region,
)

REGIONS = list(config["regions"])
# Sources that deliver the DEM and the imagery themselves (fetched by imagery.smk).
REMOTE_SOURCES = ("stac", "earthengine")


def one_of(ids):
    """A wildcard constraint matching exactly these ids (never matches when empty)."""
    return "|".join(re.escape(str(i)) for i in ids) if ids else "(?!x)x"


wildcard_constraints:
    region=one_of(REGIONS),


def region_config(wildcards):
    return config["regions"][wildcards.region]


# What karstflow.sources.get_source reads of a region: the source, its own settings block,
# and for a local source the inputs it opens.
SOURCE_KEYS = ("source", "stac", "earthengine")


def source_settings(inputs=()):
    """Params function: only what opening the region's source reads, as the ``region``
    param of the rules that open it (fetches, composites). A rule's params are part of what
    reruns it, so the rest of the region entry (other inputs, stages, tiling) stays out:
    pointing ``inputs.townships`` at another file must not recomposite the imagery.
    ``inputs``: the input keys of a local source the rule reads (none for the fetches,
    which run for remote sources)."""

    def settings(wildcards):
        region = region_config(wildcards)
        given = region.get("inputs") or {}
        out = {k: region[k] for k in SOURCE_KEYS if k in region}
        out["inputs"] = {k: given[k] for k in inputs if k in given}
        return out

    return settings


def region_years(region):
    return list(range(region["years"]["first"], region["years"]["last"] + 1))


def region_periods(region_id):
    return list(config["regions"][region_id].get("periods") or {})


def log_path(rule_name):
    return f"logs/{{region}}/{rule_name}.log"


def benchmark_path(rule_name):
    return f"logs/benchmarks/{{region}}/{rule_name}.tsv"


def results(path):
    """A path under results/{region}/ (the {region} wildcard left to Snakemake)."""
    return f"results/{{region}}/{path}"


# --- inputs ---

# Every input is checked where it enters (karstflow.inputs, karstflow.checks); the grid and
# input rules run before any stage's (a higher priority among the jobs ready to run), so
# with keep-going off a bad townships file stops the run before the service maps are built.
INPUT_CHECK_PRIORITY = 50


def region_inputs(region_id):
    """The region's input entries, normalised (karstflow.inputs.input_spec)."""
    raw = config["regions"][region_id].get("inputs") or {}
    try:
        return {name: input_spec(region_id, name, value) for name, value in raw.items()}
    except InputError as err:
        raise WorkflowError(str(err))


INPUT_ENTRIES = {rid: region_inputs(rid) for rid in REGIONS}


def available_inputs(region_id):
    region = config["regions"][region_id]
    have = set(INPUT_ENTRIES[region_id])
    if region.get("periods"):
        have.add("periods")
    if region["source"] in REMOTE_SOURCES:
        have |= {"dem", "imagery", REMOTE_SOURCE}
    if region["source"] == "earthengine":
        have.add(EARTHENGINE_SOURCE)
    return have


def input_entry(region_id, name):
    return INPUT_ENTRIES[region_id].get(name)


def inputs_file(name, year=None):
    """Input function: the harmonised copy of input ``name`` under results/{region}/inputs/."""
    ext = INPUTS[name].extension
    stem = f"{name}_{year}" if year is not None else name
    return f"results/{{region}}/inputs/{stem}.{ext}"


def input_file(region_id, name, year=None):
    """The harmonised copy of a region's input, None when the region lacks it."""
    if name not in INPUT_ENTRIES[region_id]:
        return None
    return inputs_file(name, year).format(region=region_id)


# --- the stage plan ---


def _plan(region_id):
    try:
        return plan_region(
            available_inputs(region_id),
            config["regions"][region_id].get("stages"),
            region=region_id,
        )
    except PlanError as err:
        raise WorkflowError(str(err))


PLANS = {rid: _plan(rid) for rid in REGIONS}
logger.info(format_plan(PLANS))


def regions_with(stage):
    return [rid for rid in REGIONS if PLANS[rid][stage].runs]


def stage_constraint(stage):
    """Wildcard constraint of a stage's rules: the regions that get the stage."""
    return one_of(regions_with(stage))


def uses(region_id, stage, need):
    """The alternative of a requirement the region's stage uses (karstflow.stages.chosen)."""
    return chosen(
        PLANS[region_id], stage, tuple(need) if not isinstance(need, str) else (need,)
    )


def layer_file(region_id, stage, key):
    """The file a region's stage reads layer ``key`` from: the harmonised input when the
    region gives it, else the file of the stage that provides it (karstflow.stages.PROVIDED);
    None when the stage does not read it."""
    path = layer_path(PLANS[region_id], stage, key)
    return f"results/{region_id}/{path}" if path else None


def layer_input(stage, key):
    """Input function form of layer_file (for a rule's input section)."""
    return lambda w: layer_file(w.region, stage, key)


def has_producer(path):
    return any(rule.is_producer(path) for rule in workflow.rules)


def check_input_files():
    """Every input file exists or is made by a rule (the demo generators); else stop
    naming the config key, before anything runs."""
    from karstflow.inputs import paths_of

    for rid, entries in INPUT_ENTRIES.items():
        files = [
            (f"regions.{rid}.inputs.{name}", path)
            for name, entry in entries.items()
            # imagery is checked by its reader (several layouts)
            if INPUTS[name].kind != "imagery"
            for path in paths_of(entry)
        ]
        grid_like = config["regions"][rid].get("grid_like")
        if grid_like:
            files.append((f"regions.{rid}.grid_like", grid_like))
        for key, path in files:
            if any(c in path for c in "*?[") or os.path.exists(path):
                continue
            if not has_producer(path):
                raise WorkflowError(f"config key {key}: file not found: {path}")

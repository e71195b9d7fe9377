# Reserve farmland: limiting-factor evaluation of forest land (reserve_regions), maps.

# Layers of the reserve factors made by earlier stages (the rest are region inputs).
RESERVE_STAGE_LAYERS = {
    "slope": "results/{region}/terrain/slope.tif",
    "convenience_rules": "results/{region}/model/convenience_rules.json",
}
RESERVE_FIGURES = {
    "by_type": "results/{region}/reserve/figures/reclaimable_by_type.png",
    "by_factor": "results/{region}/reserve/figures/failing_factor.png",
}


def reserve_inputs(wildcards):
    """Forest, townships and the layers the configured factors read; a layer the region
    lacks is left out (its factors are then "not evaluated")."""
    from karstflow.reserve import config_layers

    rid = wildcards.region
    inputs = {
        "forest": input_file(rid, "forest"),
        "townships": input_file(rid, "townships"),
    }
    for name in sorted(config_layers(config["reserve"])):
        if name == "convenience_rules" and not PLANS[rid]["model"].runs:
            continue  # no abandonment model for the region, so no rules
        if name in RESERVE_STAGE_LAYERS:
            inputs[name] = RESERVE_STAGE_LAYERS[name].format(region=rid)
        else:
            inputs[name] = input_file(rid, name)
    if inputs.get("convenience_rules"):
        inputs.update(driver_layers(rid))
    return {k: v for k, v in inputs.items() if v}


def reserve_drivers_settings():
    """compute_drivers settings of the driver stage (config section drivers, when present)."""
    section = config.get("drivers") or {}
    keys = ("snap_tolerance_m", "max_access_m", "own_patch_min_share")
    return {k: section[k] for k in keys if k in section}


rule reserve_evaluate:
    input:
        unpack(reserve_inputs),
    output:
        candidates="results/{region}/reserve/reclaimable_forest.gpkg",
        summary_table=report(
            "results/{region}/reserve/reserve_summary.csv",
            caption="../report/reserve_summary.rst",
            category="Reserve farmland and grain capacity",
            subcategory="{region}",
        ),
        summary="results/{region}/reserve/reserve.json",
    log:
        log_path("reserve_evaluate"),
    benchmark:
        benchmark_path("reserve_evaluate")
    wildcard_constraints:
        region=stage_constraint("reserve"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        reserve=config["reserve"],
        drivers=reserve_drivers_settings(),
    message:
        "Evaluating the forest land of {wildcards.region} against the reserve-farmland factors"
    script:
        "../scripts/reserve_evaluate.py"


rule reserve_maps:
    input:
        candidates="results/{region}/reserve/reclaimable_forest.gpkg",
        grid="results/{region}/grid.json",
    output:
        by_type=report(
            RESERVE_FIGURES["by_type"],
            caption="../report/reserve_maps.rst",
            category="Reserve farmland and grain capacity",
            subcategory="{region}",
        ),
        by_factor=report(
            RESERVE_FIGURES["by_factor"],
            caption="../report/reserve_maps.rst",
            category="Reserve farmland and grain capacity",
            subcategory="{region}",
        ),
    log:
        log_path("reserve_maps"),
    benchmark:
        benchmark_path("reserve_maps")
    wildcard_constraints:
        region=stage_constraint("reserve"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    message:
        "Mapping the reclaimable forest of {wildcards.region}"
    script:
        "../scripts/reserve_maps.py"

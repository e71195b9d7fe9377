# Helpers and input functions of the rules in reserve.smk.

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

# Helpers and input functions of the rules in services.smk.

SERVICE_STAGES = {
    "carbon_storage": "carbon",
    "soil_retention": "soil_retention",
    "water_yield": "water_yield",
    "habitat_quality": "habitat_quality",
}


def region_services(region_id):
    """The service maps a region gets (their stages run)."""
    return [s for s, stage in SERVICE_STAGES.items() if PLANS[region_id][stage].runs]


def service_years(region_id):
    """Years mapped (config services.years, default the first and last land-cover year)."""
    have = landcover_years(region_id)
    chosen = config["services"]["years"] or sorted({have[0], have[-1]})
    missing = sorted(set(chosen) - set(have))
    if missing:
        raise WorkflowError(
            f"config key services.years: no land-cover map of region {region_id} for "
            f"{missing} (maps: {have})"
        )
    return sorted(chosen)


def service_landcover(wildcards):
    return landcover_maps(wildcards.region)[int(wildcards.year)]


def threat_vectors(region_id):
    """Threat name -> harmonised vector layer, for configured vector threats the region has."""
    out = {}
    for name, spec in config["services"]["habitat_quality"]["threats"].items():
        path = spec.get("vector_input") and input_file(region_id, spec["vector_input"])
        if path:
            out[name] = path
    return out


def soil_retention_inputs(wildcards):
    rid = wildcards.region
    inputs = {
        "ls": f"results/{rid}/services/ls_factor.tif",
        "landcover": service_landcover(wildcards),
        "climate": layer_file(rid, "soil_retention", "climate"),
        "soil": layer_file(rid, "soil_retention", "soil_grids"),
        "biophysical": input_file(rid, "biophysical"),
        "grid": f"results/{rid}/grid.json",
    }
    if config["services"]["soil_conservation"]["cover_factor"] == "vegetation_cover":
        if not PLANS[rid]["greening"].runs:
            raise WorkflowError(
                "config key services.soil_conservation.cover_factor: vegetation_cover needs "
                f"the greening stage's NDVI cube, which region {rid} does not get"
            )
        inputs["ndvi"] = f"results/{rid}/greening/ndvi_annual.nc"
    return inputs


def services_summary_inputs(wildcards):
    rid = wildcards.region
    years = service_years(rid)
    inputs = {
        f"{service}_{year}": f"results/{rid}/services/{service}_{year}.tif"
        for service in region_services(rid)
        for year in years
    }
    maps = landcover_maps(rid)
    for year in years:
        inputs[f"landcover_{year}"] = maps[year]
    if PLANS[rid]["habitat_quality"].runs:
        inputs["threats"] = [
            f"results/{rid}/services/habitat_threats_{year}.json" for year in years
        ]
    if PLANS[rid]["terrain"].runs:
        inputs["slope"] = f"results/{rid}/terrain/slope.tif"
    inputs["grid"] = f"results/{rid}/grid.json"
    townships = input_file(rid, "townships")
    if townships:
        inputs["townships"] = townships
    return inputs

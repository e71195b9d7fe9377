# Helpers and input functions of the rules in services.smk.

from karstflow.services import MONTHLY_R_FACTOR_METHODS

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


def _dropped_threats(region_id):
    """Threat name -> why the config takes it out of the region's threat table."""
    hq = config["services"]["habitat_quality"]
    drop = hq["drop_threats"].get(region_id, [])
    unknown = sorted(set(drop) - set(hq["threats"]))
    if unknown:
        raise WorkflowError(
            f"config key services.habitat_quality.drop_threats.{region_id}: unknown threat(s) "
            f"{unknown}; the threats are {sorted(hq['threats'])}"
        )
    out = {}
    for name, spec in hq["threats"].items():
        if not spec.get("enabled", True):
            out[name] = (
                f"config key services.habitat_quality.threats.{name}.enabled: false"
            )
        elif name in drop:
            out[name] = (
                f"config key services.habitat_quality.drop_threats.{region_id} lists it"
            )
    return out


def habitat_threats(region_id):
    """The region's threat table (InVEST's threat table): the configured threats less those
    the config takes out; the weights are normalised over exactly these."""
    dropped = _dropped_threats(region_id)
    threats = {
        name: spec
        for name, spec in config["services"]["habitat_quality"]["threats"].items()
        if name not in dropped
    }
    if not threats:
        raise WorkflowError(
            "config key services.habitat_quality.threats: every threat is taken out of the "
            f"table of region {region_id} (enabled: false or drop_threats); one is needed"
        )
    return threats


def threat_vectors(region_id):
    """Threat name -> harmonised vector layer of every vector threat of the region's table.
    A threat of the table whose input the region lacks stops here, naming the threat and
    the keys that would resolve it (InVEST stops for a threat raster it cannot find)."""
    out = {}
    for name, spec in habitat_threats(region_id).items():
        key = spec.get("vector_input")
        if not key:
            continue
        path = input_file(region_id, key)
        if not path:
            raise WorkflowError(
                f"config key services.habitat_quality.threats.{name}: threat {name!r} reads the "
                f"input {key!r}, which region {region_id} does not give (regions.{region_id}."
                f"inputs.{key}); give the layer, or take the threat out of this region's table "
                f"(services.habitat_quality.drop_threats: {{{region_id}: [{name}]}}) or of every "
                f"region's (services.habitat_quality.threats.{name}.enabled: false); its weight "
                "is not renormalised over the other threats silently"
            )
        out[name] = path
    return out


def habitat_degradation_inputs(wildcards):
    rid = wildcards.region
    inputs = dict(threat_vectors(rid))
    inputs["landcover"] = service_landcover(wildcards)
    inputs["grid"] = f"results/{rid}/grid.json"
    access = input_file(rid, "access")
    if access:
        inputs["access"] = access
    return inputs


def threat_halo_m(region_id):
    """Halo (m) of a degradation tile: the largest max_distance_m of the region's threat
    table, the farthest a threat pixel reaches."""
    return max(
        float(spec["max_distance_m"]) for spec in habitat_threats(region_id).values()
    )


def half_saturation_inputs(wildcards):
    rid = wildcards.region
    inputs = {"grid": f"results/{rid}/grid.json"}
    if config["services"]["habitat_quality"]["half_saturation"] == "auto":
        inputs["degradation"] = [
            f"results/{rid}/services/habitat_degradation_{year}.tif"
            for year in service_years(rid)
        ]
    return inputs


def erosivity_source(region_id):
    """The file R is computed from (recorded in soil_factors_{year}.json)."""
    method = config["services"]["soil_conservation"]["r_factor"]["method"]
    if method in MONTHLY_R_FACTOR_METHODS:
        return f"results/{region_id}/climate/climate_monthly.nc"
    return layer_file(region_id, "soil_retention", "climate")


def soil_retention_inputs(wildcards):
    rid = wildcards.region
    inputs = {
        "ls": f"results/{rid}/services/ls_factor.tif",
        "landcover": service_landcover(wildcards),
        "soil": layer_file(rid, "soil_retention", "soil_grids"),
        "biophysical": input_file(rid, "biophysical"),
        "grid": f"results/{rid}/grid.json",
    }
    method = config["services"]["soil_conservation"]["r_factor"]["method"]
    if method in MONTHLY_R_FACTOR_METHODS:
        # the monthly form has no annual fallback: a region without monthly climate stops
        if not PLANS[rid]["monthly_climate"].runs:
            raise WorkflowError(
                f"config key services.soil_conservation.r_factor.method: {method} needs the "
                f"monthly precipitation of region {rid} (stage monthly_climate, from an input "
                f"climate_monthly or a remote source), which it does not have (stage "
                f"monthly_climate: {PLANS[rid]['monthly_climate'].reason or 'not run'}); give "
                "regions.<id>.inputs.climate_monthly, or choose an annual method "
                "(renard_freimund_1994, or power with a and b)"
            )
        inputs["climate_monthly"] = f"results/{rid}/climate/climate_monthly.nc"
    else:
        inputs["climate"] = layer_file(rid, "soil_retention", "climate")
    if config["services"]["soil_conservation"]["cover_factor"] == "vegetation_cover":
        if not PLANS[rid]["greening"].runs:
            raise WorkflowError(
                "config key services.soil_conservation.cover_factor: vegetation_cover needs "
                f"the greening stage's NDVI cube, which region {rid} does not get"
            )
        inputs["ndvi"] = f"results/{rid}/greening/ndvi_annual.nc"
        inputs["ndvi_endmembers"] = f"results/{rid}/services/ndvi_endmembers.json"
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
    if PLANS[rid]["soil_retention"].runs:
        inputs["soil_factors"] = [
            f"results/{rid}/services/soil_factors_{year}.json" for year in years
        ]
    if PLANS[rid]["terrain"].runs:
        inputs["slope"] = f"results/{rid}/terrain/slope.tif"
    inputs["grid"] = f"results/{rid}/grid.json"
    townships = input_file(rid, "townships")
    if townships:
        inputs["townships"] = townships
    return inputs

# Helpers and input functions of the rules in coupling.smk.

# optional ecological layer group -> the stage that makes it (karstflow.coupling_units)
COUPLING_OPTIONAL = {
    "desertification": "desertification",
    "npp": "npp",
    "services": "services",
    "improvement_zones": "services",
    "terrain": "terrain",
}


def coupling_not_evaluated(region_id):
    """Group -> why the region's coupling tables lack it (its stage does not run): the
    reason is written to the tables' record, never dropped silently."""
    out = {}
    for group, stage in COUPLING_OPTIONAL.items():
        plan = PLANS[region_id][stage]
        if not plan.runs:
            missing = ", ".join(plan.missing) or "-"
            out[group] = (
                f"stage {stage} does not run for region {region_id} ({plan.reason}; "
                f"missing inputs: {missing})"
            )
    return out


def coupling_service_years(region_id):
    years = service_years(region_id)
    return [years[0], years[-1]]


def coupling_units_inputs(wildcards):
    rid = wildcards.region
    inputs = {
        "grid": f"results/{rid}/grid.json",
        "townships": input_file(rid, "townships"),
        "trend_slope": f"results/{rid}/greening/trend_slope.tif",
        "trend_class": f"results/{rid}/greening/trend_class.tif",
    }
    # the gridded population: the region's input, else the worldpop stage's cube
    grid_population = layer_file(rid, "coupling", "population")
    if grid_population:
        inputs["population"] = grid_population
    table = input_file(rid, "population_table")
    if table:
        inputs["population_table"] = table
    if PLANS[rid]["desertification"].runs:
        years = rd_map_years(rid)
        inputs["rd_first"] = f"results/{rid}/desertification/rd_grade_{years[0]}.tif"
        inputs["rd_last"] = f"results/{rid}/desertification/rd_grade_{years[-1]}.tif"
    if PLANS[rid]["npp"].runs:
        inputs["npp_slope"] = f"results/{rid}/carbon/npp_trend_slope.tif"
    if PLANS[rid]["services"].runs:
        first, last = coupling_service_years(rid)
        for service in region_services(rid):
            inputs[f"service_{service}_first"] = (
                f"results/{rid}/services/{service}_{first}.tif"
            )
            inputs[f"service_{service}_last"] = (
                f"results/{rid}/services/{service}_{last}.tif"
            )
        inputs["zones"] = f"results/{rid}/services/improvement_zones.tif"
    if PLANS[rid]["terrain"].runs:
        inputs["slope"] = f"results/{rid}/terrain/slope.tif"
    return inputs


def coupling_years(wildcards):
    """First and last year of the region, and the years of the maps the tables compare."""
    rid = wildcards.region
    region = region_config(wildcards)
    out = {"first": region["years"]["first"], "last": region["years"]["last"]}
    if PLANS[rid]["desertification"].runs:
        years = rd_map_years(rid)
        out["rd"] = [years[0], years[-1]]
    if PLANS[rid]["services"].runs:
        out["services"] = coupling_service_years(rid)
    return out


def worldpop_years(region_id):
    """The region's years WorldPop has (2000-2020); at least two, else stop naming the keys."""
    from karstflow.sources.ee_products import WORLDPOP_YEARS

    years = [
        y for y in region_years(config["regions"][region_id]) if y in WORLDPOP_YEARS
    ]
    if len(years) < 2:
        raise WorkflowError(
            f"config key regions.{region_id}.years: stage worldpop needs at least two years of "
            f"WorldPop ({WORLDPOP_YEARS[0]}-{WORLDPOP_YEARS[-1]}) within the region's years, found "
            f"{years}; give regions.{region_id}.inputs.population or population_table instead"
        )
    return years

# Helpers and input functions of the rules in desertification.smk.

RD_GRADE_CODES = {
    "potential": 1,
    "light": 2,
    "moderate": 3,
    "severe": 4,
    "extremely severe": 5,
}


def rd_map_years(region_id):
    """Years written as rd_grade_{year}.tif (config desertification.map_years)."""
    years = region_years(config["regions"][region_id])
    chosen = config["desertification"]["map_years"]
    if chosen == "ends":
        return [years[0], years[-1]]
    if chosen == "all":
        return years
    outside = sorted(set(chosen) - set(years))
    if outside:
        raise WorkflowError(
            f"config key desertification.map_years: year(s) {outside} are outside the "
            f"years of region {region_id} ({years[0]}..{years[-1]})"
        )
    return sorted(set(chosen) | {years[0], years[-1]})


def _exposure_inputs(rid):
    """The exposure layer or the annual stack the configured exposure method reads."""
    exposure = input_file(rid, "bedrock_exposure")
    method = config["desertification"]["exposure_method"]
    if exposure and method in ("auto", "layer"):
        return {"exposure": exposure}
    if method in ("auto", "unmixing"):
        # the annual stack the greening cube came from: its reflectance bands, if any, are
        # unmixed (the greening cube keeps the indices only)
        return {"stack": layer_file(rid, "greening", "annual_stack")}
    return {}


def desertification_endmember_inputs(wildcards):
    """What desertification_endmembers reads (the whole region's NDVI, stack or layer,
    carbonate mask and land-cover maps)."""
    rid = wildcards.region
    inputs = {
        "cube": f"results/{rid}/greening/ndvi_annual.nc",
        "carbonate": layer_file(rid, "desertification", "carbonate"),
        "grid": f"results/{rid}/grid.json",
        **_exposure_inputs(rid),
    }
    # FVC end-members leave out water and built-up land of the region's land-cover maps
    for year, path in landcover_maps(rid).items():
        inputs[f"landcover_{year}"] = path
    return inputs


def desertification_inputs(wildcards):
    """What desertification_grades reads, untiled and on each tile (the per-pixel layers
    and the region's end-members)."""
    rid = wildcards.region
    inputs = {
        "cube": f"results/{rid}/greening/ndvi_annual.nc",
        "carbonate": layer_file(rid, "desertification", "carbonate"),
        "grid": f"results/{rid}/grid.json",
        "endmembers": f"results/{rid}/desertification/endmembers.json",
        **_exposure_inputs(rid),
    }
    if "slope" in config["desertification"]["indicators"]:
        if not PLANS[rid]["terrain"].runs:
            raise WorkflowError(
                f"config key desertification.indicators: slope needs the terrain stage, "
                f"which region {rid} does not get (no inputs.dem)"
            )
        inputs["slope"] = f"results/{rid}/terrain/slope.tif"
    return inputs

# Helpers and input functions of the rules in carbon.smk.


def landcover_maps(region_id):
    """Year -> land-cover map: the region's landcover input on the grid when given, else
    the classified map (stage landcover), taken as the land cover of the region's last year.
    """
    entry = input_entry(region_id, "landcover")
    if entry:
        return {
            y: input_file(region_id, "landcover", y) for y in sorted(entry["years"])
        }
    if PLANS[region_id]["landcover"].runs:
        last = config["regions"][region_id]["years"]["last"]
        return {last: f"results/{region_id}/landcover/landcover.tif"}
    if PLANS[region_id]["public_landcover"].runs:
        return {
            y: f"results/{region_id}/landcover/public_{y}.tif"
            for y in public_landcover_years(region_id)
        }
    return {}


def landcover_years(region_id):
    return sorted(landcover_maps(region_id))


def sequestration_years(region_id):
    have = landcover_years(region_id)
    chosen = config["carbon"]["sequestration_years"]
    if chosen is None:
        return [have[0], have[-1]]
    missing = sorted(set(chosen) - set(have))
    if missing:
        raise WorkflowError(
            f"config key carbon.sequestration_years: no land-cover map of region {region_id} "
            f"for {missing} (maps: {have})"
        )
    return list(chosen)


def npp_climate_file(region_id):
    """The climate CASA reads: the monthly cube of stage monthly_climate by default
    (carbon.time_step: monthly), the annual cube with carbon.time_step: annual."""
    if config["carbon"]["time_step"] == "monthly":
        return f"results/{region_id}/climate/climate_monthly.nc"
    return layer_file(region_id, "npp", "climate")


def check_npp_time_step():
    """Monthly CASA (the default) needs monthly climate: stop at start-up, naming the keys,
    for a region whose npp stage would otherwise fall back on annual climate."""
    if config["carbon"]["time_step"] != "monthly":
        return
    lacking = [
        rid for rid in regions_with("npp") if not PLANS[rid]["monthly_climate"].runs
    ]
    if lacking:
        raise WorkflowError(
            f"config key carbon.time_step is 'monthly' (the default), but region(s) {lacking} "
            "get the npp stage without monthly climate (stage monthly_climate does not run): "
            "give regions.<id>.inputs.climate_monthly or a remote source (and, with "
            "regions.<id>.stages, list monthly_climate), or set carbon.time_step: annual "
            "(CASA on annual steps, biased high: see the schema)"
        )


check_npp_time_step()


def carbon_endmember_inputs(wildcards):
    """The NDVI cube and every land-cover map: what the FPAR end-members pool."""
    rid = wildcards.region
    inputs = {
        "cube": f"results/{rid}/greening/ndvi_annual.nc",
        "grid": f"results/{rid}/grid.json",
    }
    for year, path in landcover_maps(rid).items():
        inputs[f"landcover_{year}"] = path
    return inputs


def carbon_npp_inputs(wildcards):
    rid = wildcards.region
    inputs = carbon_endmember_inputs(wildcards)
    inputs["climate"] = npp_climate_file(rid)
    inputs["endmembers"] = f"results/{rid}/carbon/fpar_endmembers.json"
    return inputs

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


def carbon_npp_inputs(wildcards):
    rid = wildcards.region
    inputs = {
        "cube": f"results/{rid}/greening/ndvi_annual.nc",
        "climate": layer_file(rid, "npp", "climate"),
        "grid": f"results/{rid}/grid.json",
    }
    for year, path in landcover_maps(rid).items():
        inputs[f"landcover_{year}"] = path
    return inputs

# Helpers and input functions of the rules in terrain.smk.


def dem_source(wildcards):
    """The DEM as its source delivers it: the owner's file or tiles, or the fetched mosaic."""
    if region_config(wildcards)["source"] in REMOTE_SOURCES:
        # fetched into the tile cache and mosaicked on the grid by rule dem_fetch
        return [f"resources/fetched/{wildcards.region}/dem.tif"]
    return raw_input_files(wildcards, "dem")


def dem_resampling(wildcards):
    """inputs.dem.resampling when the region sets it, else terrain.dem_resampling."""
    given = (region_config(wildcards).get("inputs") or {}).get("dem")
    if isinstance(given, dict) and "resampling" in given:
        return given["resampling"]
    return config["terrain"]["dem_resampling"]

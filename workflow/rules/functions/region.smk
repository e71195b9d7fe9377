# Helpers and input functions of the rules in region.smk.


def grid_inputs(wildcards):
    region = region_config(wildcards)
    if region.get("grid_like"):
        return {"grid_like": region["grid_like"]}
    path = (region.get("aoi") or {}).get("path")
    return {"aoi": path} if path else {}


def grid_settings(wildcards):
    """Only what the grid is made of, so other region keys do not rerun it."""
    region = region_config(wildcards)
    keys = ("crs", "resolution_m", "aoi", "grid_like")
    return {k: region[k] for k in keys if k in region}

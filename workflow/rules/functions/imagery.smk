# Helpers and input functions of the rules in imagery.smk.


def remote_regions():
    return [r for r in REGIONS if config["regions"][r]["source"] in REMOTE_SOURCES]


def period_config(wildcards):
    return region_config(wildcards)["periods"][wildcards.period]


def imagery_scenes(wildcards):
    """What a period's composite reads: the date table, the time stacks, the SAFE
    products, or the fetched scene table of a remote source."""
    if region_config(wildcards)["source"] in REMOTE_SOURCES:
        return [f"resources/fetched/{wildcards.region}/s2_{wildcards.period}.csv"]
    spec = input_entry(wildcards.region, "imagery")["path"]
    if isinstance(spec, str):
        spec = {"date_table": spec}
    if "date_table" in spec:
        return [spec["date_table"]]
    if "safe" in spec:
        import glob

        patterns = [spec["safe"]] if isinstance(spec["safe"], str) else spec["safe"]
        return sorted(
            {p for pattern in patterns for p in (glob.glob(pattern) or [pattern])}
        )
    extra = [spec[k] for k in ("cloud_mask", "dates") if spec.get(k)]
    return list(spec["stacks"].values()) + extra


# What a fetch depends on; the masking and compositing keys rerun only the composite.
FETCH_KEYS = (
    "bands",
    "max_scene_cloud_pct",
    "resampling",
    "cache_dir",
    "cache_tile_px",
    "fetch",
)


DEM_FETCH_KEYS = ("cache_dir", "cache_tile_px", "fetch", "chunk_px", "gdal_cache_mb")


def imagery_settings(keys):
    return {k: config["imagery"][k] for k in keys}


def imagery_period_summary_inputs(wildcards):
    """A period's composite and clear count, and the fetch manifest (bytes pulled) when
    there is one: the fetch rule's of a remote region, else one beside the scene table.
    """
    base = f"results/{wildcards.region}/imagery"
    inputs = {
        "composite": f"{base}/composite_{wildcards.period}.tif",
        "clear_count": f"{base}/clear_count_{wildcards.period}.tif",
    }
    scenes = imagery_scenes(wildcards)
    manifest = os.path.join(
        os.path.dirname(scenes[0]), f"manifest_{wildcards.period}.json"
    )
    if region_config(wildcards)["source"] in REMOTE_SOURCES or os.path.exists(manifest):
        inputs["manifest"] = manifest
    return inputs

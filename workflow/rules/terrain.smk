# Terrain: the DEM on the region grid, then slope, aspect and aspect class (Horn).


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


rule terrain_dem:
    input:
        dem=dem_source,
        grid=results("grid.json"),
    output:
        dem="results/{region}/terrain/dem.tif",
    log:
        log_path("terrain_dem"),
    benchmark:
        benchmark_path("terrain_dem")
    wildcard_constraints:
        region=stage_constraint("terrain"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=4000,
    params:
        resampling=dem_resampling,
    message:
        "Putting the DEM of {wildcards.region} on the region grid"
    script:
        "../scripts/terrain_dem.py"


rule terrain_derivatives:
    input:
        dem="results/{region}/terrain/dem.tif",
    output:
        slope="results/{region}/terrain/slope.tif",
        aspect="results/{region}/terrain/aspect.tif",
        aspect_class="results/{region}/terrain/aspect_class.tif",
        summary="results/{region}/terrain/terrain.json",
    log:
        log_path("terrain_derivatives"),
    benchmark:
        benchmark_path("terrain_derivatives")
    conda:
        "../envs/karstflow.yaml"
    wildcard_constraints:
        region=stage_constraint("terrain"),
    threads: 2
    resources:
        mem_mb=4000,
    params:
        flat_max_deg=config["terrain"]["flat_max_deg"],
        chunk_px=config["terrain"]["chunk_px"],
    message:
        "Computing slope, aspect and aspect class of {wildcards.region}"
    script:
        "../scripts/terrain_derivatives.py"

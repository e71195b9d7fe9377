# Terrain: the DEM on the region grid, then slope, aspect and aspect class (Horn).


include: "functions/terrain.smk"


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
    wildcard_constraints:
        region=stage_constraint("terrain"),
    conda:
        "../envs/karstflow.yaml"
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

# Terrain: the DEM on the region grid, then slope, aspect and aspect class (Horn).


rule terrain_dem:
    message:
        "Putting the DEM of {wildcards.region} on the region grid"
    input:
        dem=dem_source,
        grid="results/{region}/grid.json",
    output:
        dem="results/{region}/terrain/dem.tif",
    params:
        resampling=config["terrain"]["dem_resampling"],
    log:
        log_path("terrain_dem"),
    benchmark:
        benchmark_path("terrain_dem")
    threads: 1
    resources:
        mem_mb=4000,
    script:
        "../scripts/terrain_dem.py"


rule terrain_derivatives:
    message:
        "Computing slope, aspect and aspect class of {wildcards.region}"
    input:
        dem="results/{region}/terrain/dem.tif",
    output:
        slope="results/{region}/terrain/slope.tif",
        aspect="results/{region}/terrain/aspect.tif",
        aspect_class="results/{region}/terrain/aspect_class.tif",
        summary="results/{region}/terrain/terrain.json",
    params:
        flat_max_deg=config["terrain"]["flat_max_deg"],
        chunk_px=config["terrain"]["chunk_px"],
    log:
        log_path("terrain_derivatives"),
    benchmark:
        benchmark_path("terrain_derivatives")
    threads: 2
    resources:
        mem_mb=4000,
    script:
        "../scripts/terrain_derivatives.py"

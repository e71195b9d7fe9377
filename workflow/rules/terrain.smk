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
        mem_mb=mem_mb("terrain_dem"),
        runtime=runtime("terrain_dem"),
    params:
        resampling=dem_resampling,
    message:
        "Putting the DEM of {wildcards.region} on the region grid"
    script:
        "../scripts/terrain_dem.py"


rule terrain_derivatives:
    input:
        dem="results/{region}/terrain/dem.tif",
        grid=results("grid.json"),
    output:
        slope="results/{region}/terrain/slope.tif",
        aspect="results/{region}/terrain/aspect.tif",
        aspect_class="results/{region}/terrain/aspect_class.tif",
    log:
        log_path("terrain_derivatives"),
    benchmark:
        benchmark_path("terrain_derivatives")
    wildcard_constraints:
        region=untiled_constraint("terrain"),
    conda:
        "../envs/karstflow.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("terrain_derivatives"),
        runtime=runtime("terrain_derivatives"),
    params:
        flat_max_deg=config["terrain"]["flat_max_deg"],
        chunk_px=config["terrain"]["chunk_px"],
    message:
        "Computing slope, aspect and aspect class of {wildcards.region}"
    script:
        "../scripts/terrain_derivatives.py"


# Horn's slope reads the 3 x 3 neighbourhood: a halo of one pixel.
use rule terrain_derivatives as terrain_derivatives_tile with:
    output:
        **tile_outputs(rules.terrain_derivatives.output),
    log:
        tile_log("terrain_derivatives"),
    benchmark:
        tile_benchmark("terrain_derivatives")
    wildcard_constraints:
        region=tiled_constraint("terrain"),
    params:
        tile=tile_spec(halo_px=1),
    message:
        "Computing slope, aspect and aspect class of {wildcards.region}, tile {wildcards.tile}"


use rule tile_mosaic as terrain_derivatives_mosaic with:
    input:
        unpack(mosaic_inputs("terrain_derivatives_tile")),
    output:
        **rules.terrain_derivatives.output,
    log:
        log_path("terrain_derivatives_mosaic"),
    benchmark:
        benchmark_path("terrain_derivatives_mosaic")
    wildcard_constraints:
        region=tiled_constraint("terrain"),


rule terrain_summary:
    input:
        dem="results/{region}/terrain/dem.tif",
        slope="results/{region}/terrain/slope.tif",
        aspect_class="results/{region}/terrain/aspect_class.tif",
    output:
        summary="results/{region}/terrain/terrain.json",
    log:
        log_path("terrain_summary"),
    benchmark:
        benchmark_path("terrain_summary")
    wildcard_constraints:
        region=stage_constraint("terrain"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("terrain_summary"),
        runtime=runtime("terrain_summary"),
    params:
        flat_max_deg=config["terrain"]["flat_max_deg"],
    message:
        "Headline terrain figures of {wildcards.region}"
    script:
        "../scripts/terrain_summary.py"

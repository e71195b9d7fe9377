# Soil grids from SoilGrids 250 m (ISRIC's VRTs over HTTP, or its Earth Engine assets).


rule soil_grids:
    input:
        grid="results/{region}/grid.json",
    output:
        soil="results/{region}/soil/soil_grids.nc",
        summary="results/{region}/soil/soil.json",
    log:
        log_path("soil_grids"),
    benchmark:
        benchmark_path("soil_grids")
    wildcard_constraints:
        region=stage_constraint("soil"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("soil_grids"),
        runtime=runtime("soil_grids"),
    params:
        region=source_settings(),
        imagery=imagery_settings(("cache_dir", "cache_tile_px", "fetch")),
        soil=config["soil"],
    message:
        "Soil grids of {wildcards.region} from SoilGrids"
    script:
        "../scripts/soil_grids.py"

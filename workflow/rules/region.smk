# The region grid: CRS, resolution and snapped extent every stage writes on.


rule region_grid:
    message:
        "Deriving the analysis grid of {wildcards.region}"
    input:
        aoi=aoi_input,
    output:
        grid="results/{region}/grid.json",
    params:
        region=region_config,
        demo_size_px=lambda w: (
            demo_size_px(region_config(w))
            if region_config(w)["source"] == "demo"
            else None
        ),
    log:
        log_path("region_grid"),
    benchmark:
        benchmark_path("region_grid")
    threads: 1
    resources:
        mem_mb=500,
    script:
        "../scripts/region_grid.py"

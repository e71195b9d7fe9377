# The region grid: CRS, resolution and snapped extent every stage writes on.


rule region_grid:
    input:
        aoi=aoi_input,
    output:
        grid="results/{region}/grid.json",
    log:
        log_path("region_grid"),
    benchmark:
        benchmark_path("region_grid")
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=500,
    params:
        region=region_config,
        demo_size_px=lambda w: (
            demo_size_px(region_config(w))
            if region_config(w)["source"] == "demo"
            else None
        ),
    message:
        "Deriving the analysis grid of {wildcards.region}"
    script:
        "../scripts/region_grid.py"

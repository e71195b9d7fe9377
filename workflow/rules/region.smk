# The region grid (CRS, resolution and extent every stage writes on) and the stage plan.


include: "functions/region.smk"


# a checkpoint: the tiles of a tiled region are known once its grid is
checkpoint region_grid:
    input:
        unpack(grid_inputs),
    output:
        grid=results("grid.json"),
    log:
        log_path("region_grid"),
    benchmark:
        benchmark_path("region_grid")
    priority: INPUT_CHECK_PRIORITY
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("region_grid"),
        runtime=runtime("region_grid"),
    params:
        grid=grid_settings,
        max_pixels=config["grid"]["max_pixels"],
    message:
        "Deriving the analysis grid of {wildcards.region}"
    script:
        "../scripts/region_grid.py"


rule region_plan:
    output:
        plan=results("plan.json"),
    log:
        log_path("region_plan"),
    benchmark:
        benchmark_path("region_plan")
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("region_plan"),
        runtime=runtime("region_plan"),
    params:
        plan=lambda w: {name: p.to_dict() for name, p in PLANS[w.region].items()},
        inputs=lambda w: sorted(available_inputs(w.region)),
    message:
        "Writing the stage plan of {wildcards.region}"
    script:
        "../scripts/region_plan.py"

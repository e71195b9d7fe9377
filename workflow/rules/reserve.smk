# Reserve farmland: limiting-factor evaluation of forest land (reserve_regions), maps.

# Layers of the reserve factors made by earlier stages (the rest are region inputs).


include: "functions/reserve.smk"


rule reserve_evaluate:
    input:
        unpack(reserve_inputs),
    output:
        candidates="results/{region}/reserve/reclaimable_forest.gpkg",
        summary_table=report(
            "results/{region}/reserve/reserve_summary.csv",
            caption="../report/reserve_summary.rst",
            category="Reserve farmland and grain capacity",
            subcategory="{region}",
        ),
        summary="results/{region}/reserve/reserve.json",
    log:
        log_path("reserve_evaluate"),
    benchmark:
        benchmark_path("reserve_evaluate")
    wildcard_constraints:
        region=stage_constraint("reserve"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("reserve_evaluate"),
        runtime=runtime("reserve_evaluate"),
    params:
        reserve=config["reserve"],
        drivers=reserve_drivers_settings(),
    message:
        "Evaluating the forest land of {wildcards.region} against the reserve-farmland factors"
    script:
        "../scripts/reserve_evaluate.py"


rule reserve_maps:
    input:
        candidates="results/{region}/reserve/reclaimable_forest.gpkg",
        grid="results/{region}/grid.json",
    output:
        by_type=report(
            RESERVE_FIGURES["by_type"],
            caption="../report/reserve_maps.rst",
            category="Reserve farmland and grain capacity",
            subcategory="{region}",
        ),
        by_factor=report(
            RESERVE_FIGURES["by_factor"],
            caption="../report/reserve_maps.rst",
            category="Reserve farmland and grain capacity",
            subcategory="{region}",
        ),
    log:
        log_path("reserve_maps"),
    benchmark:
        benchmark_path("reserve_maps")
    wildcard_constraints:
        region=stage_constraint("reserve"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("reserve_maps"),
        runtime=runtime("reserve_maps"),
    message:
        "Mapping the reclaimable forest of {wildcards.region}"
    script:
        "../scripts/reserve_maps.py"

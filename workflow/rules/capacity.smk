# Grain production capacity lost with abandoned parcels and activated by reclaimable
# forest, the forest-farmland swap plan (reserve_regions), and its map.


include: "functions/capacity.smk"


rule capacity_plan:
    input:
        candidates="results/{region}/reserve/reclaimable_forest.gpkg",
        parcels="results/{region}/abandonment/parcels.gpkg",
        farmland=lambda w: input_file(w.region, "farmland"),
        quality_grades=lambda w: input_file(w.region, "quality_grades"),
    output:
        plan="results/{region}/capacity/swap_plan.gpkg",
        table=report(
            "results/{region}/capacity/capacity_summary.csv",
            caption="../report/capacity_summary.rst",
            category="Reserve farmland and grain capacity",
            subcategory="{region}",
        ),
        summary="results/{region}/capacity/capacity.json",
    log:
        log_path("capacity_plan"),
    benchmark:
        benchmark_path("capacity_plan")
    wildcard_constraints:
        region=stage_constraint("capacity"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("capacity_plan"),
        runtime=runtime("capacity_plan"),
    params:
        capacity=config["capacity"],
    message:
        "Accounting grain capacity and planning the forest-farmland swap of {wildcards.region}"
    script:
        "../scripts/capacity_plan.py"


rule capacity_maps:
    input:
        plan="results/{region}/capacity/swap_plan.gpkg",
        summary="results/{region}/capacity/capacity.json",
        candidates="results/{region}/reserve/reclaimable_forest.gpkg",
        parcels="results/{region}/abandonment/parcels.gpkg",
        farmland=lambda w: input_file(w.region, "farmland"),
        grid="results/{region}/grid.json",
    output:
        swap_map=report(
            CAPACITY_FIGURES["swap_map"],
            caption="../report/swap_plan_map.rst",
            category="Reserve farmland and grain capacity",
            subcategory="{region}",
        ),
    log:
        log_path("capacity_maps"),
    benchmark:
        benchmark_path("capacity_maps")
    wildcard_constraints:
        region=stage_constraint("capacity"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("capacity_maps"),
        runtime=runtime("capacity_maps"),
    message:
        "Mapping the swap plan of {wildcards.region}"
    script:
        "../scripts/capacity_maps.py"

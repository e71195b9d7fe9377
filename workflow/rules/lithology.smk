# Carbonate rock from the region's lithology map and its carbonate units.


rule lithology_carbonate:
    input:
        lithology=results("inputs/lithology.gpkg"),
        grid="results/{region}/grid.json",
    output:
        carbonate="results/{region}/lithology/carbonate.tif",
        summary="results/{region}/lithology/lithology.json",
    log:
        log_path("lithology_carbonate"),
    benchmark:
        benchmark_path("lithology_carbonate")
    wildcard_constraints:
        region=stage_constraint("lithology"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("lithology_carbonate"),
        runtime=runtime("lithology_carbonate"),
    params:
        carbonate_units=lambda w: region_config(w).get("carbonate_units") or [],
    message:
        "Carbonate rock of {wildcards.region} from its lithology map"
    script:
        "../scripts/lithology_carbonate.py"

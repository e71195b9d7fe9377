# Abandonment: exact area-weighted class fractions of every reclaimed parcel on the
# assessed land-cover map (the accuracy gate must pass first) and the abandonment decision.


rule abandonment_parcels:
    input:
        landcover=results("landcover/landcover.tif"),
        accuracy="results/{region}/landcover/accuracy.json",
        parcels=lambda w: input_file(w.region, "parcels"),
        grid="results/{region}/grid.json",
    output:
        parcels="results/{region}/abandonment/parcels.gpkg",
        summary="results/{region}/abandonment/abandonment.json",
    log:
        log_path("abandonment_parcels"),
    benchmark:
        benchmark_path("abandonment_parcels")
    wildcard_constraints:
        region=stage_constraint("abandonment"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("abandonment_parcels"),
        runtime=runtime("abandonment_parcels"),
    params:
        classes=landcover_classes(),
        abandonment=config["abandonment"],
    message:
        "Deciding which reclaimed parcels of {wildcards.region} are abandoned"
    script:
        "../scripts/abandonment_parcels.py"

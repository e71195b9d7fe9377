# Drivers x1..x10 of every reclaimed parcel (karstflow.drivers.compute_drivers), with the
# abandonment outcome: the table the abandonment model is fitted to.


include: "functions/drivers.smk"


rule drivers_parcels:
    input:
        unpack(driver_inputs),
    output:
        drivers="results/{region}/drivers/parcel_drivers.csv",
        summary="results/{region}/drivers/drivers.json",
    log:
        log_path("drivers_parcels"),
    benchmark:
        benchmark_path("drivers_parcels")
    wildcard_constraints:
        region=stage_constraint("drivers"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("drivers_parcels"),
        runtime=runtime("drivers_parcels"),
    params:
        drivers=config["drivers"],
        id_column=config["abandonment"]["id_column"],
        labels=lambda w: (
            "input"
            if labelled_parcels(w.region) == input_file(w.region, "abandonment_labels")
            else "classified"
        ),
    message:
        "Computing the abandonment drivers x1..x10 of the parcels of {wildcards.region}"
    script:
        "../scripts/drivers_parcels.py"

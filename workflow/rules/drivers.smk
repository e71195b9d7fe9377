# Drivers x1..x10 of every reclaimed parcel (karstflow.drivers.compute_drivers), with the
# abandonment outcome: the table the abandonment model is fitted to.

DRIVER_LAYERS = ("settlements", "roads", "farmland", "villages", "quality_grades")


def model_regions():
    """Regions that get the driver and model stages: those whose parcels have labels
    (abandonment_regions; with drivers.labels planted, the demo county regions)."""
    if config["drivers"]["labels"] == "planted":
        return [
            rid
            for rid in county_regions()
            if config["regions"][rid]["source"] == "demo"
        ]
    return abandonment_regions()


def labelled_parcels(wildcards):
    """The reclaimed parcels with their abandonment outcome."""
    if config["drivers"]["labels"] == "planted":
        return f"resources/demo/{wildcards.region}/parcels.gpkg"
    return f"results/{wildcards.region}/abandonment/parcels.gpkg"


def driver_inputs(wildcards):
    inputs = {
        "parcels": labelled_parcels(wildcards),
        "dem": f"results/{wildcards.region}/terrain/dem.tif",
        "slope": f"results/{wildcards.region}/terrain/slope.tif",
        "aspect_class": f"results/{wildcards.region}/terrain/aspect_class.tif",
    }
    for name in DRIVER_LAYERS:
        path = county_input(wildcards.region, name)
        if not path:
            raise WorkflowError(
                f"config key regions.{wildcards.region}.inputs.{name}: the driver stage needs "
                f"the {name} layer of the region; none is given"
            )
        inputs[name] = path
    return inputs


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
        region=one_of(model_regions()),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=3000,
    params:
        drivers=config["drivers"],
        id_column=config["abandonment"]["id_column"],
    message:
        "Computing the abandonment drivers x1..x10 of the parcels of {wildcards.region}"
    script:
        "../scripts/drivers_parcels.py"

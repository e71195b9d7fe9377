# Drivers x1..x10 of every reclaimed parcel (karstflow.drivers.compute_drivers), with the
# abandonment outcome: the table the abandonment model is fitted to.

DRIVER_LAYERS = ("settlements", "roads", "farmland", "villages", "quality_grades")
TERRAIN_DRIVERS = {
    "dem": "terrain/dem.tif",
    "slope": "terrain/slope.tif",
    "aspect_class": "terrain/aspect_class.tif",
}


def labelled_parcels(region_id):
    """The parcels with their abandonment outcome: the region's abandonment_labels input
    (a survey, or the demo's planted truth) when given, else the classified abandonment."""
    if uses(region_id, "drivers", ("abandonment_labels", "@abandonment")) == "abandonment_labels":
        return input_file(region_id, "abandonment_labels")
    return f"results/{region_id}/abandonment/parcels.gpkg"


def driver_layers(region_id):
    """Terrain and the five driver layers the driver stage and the reserve rules read."""
    layers = {k: f"results/{region_id}/{v}" for k, v in TERRAIN_DRIVERS.items()}
    layers.update({name: input_file(region_id, name) for name in DRIVER_LAYERS})
    return layers


def driver_inputs(wildcards):
    return {"parcels": labelled_parcels(wildcards.region), **driver_layers(wildcards.region)}


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
        mem_mb=3000,
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

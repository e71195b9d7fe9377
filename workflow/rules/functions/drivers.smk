# Helpers and input functions of the rules in drivers.smk.

DRIVER_LAYERS = ("settlements", "roads", "farmland", "villages", "quality_grades")


TERRAIN_DRIVERS = {
    "dem": "terrain/dem.tif",
    "slope": "terrain/slope.tif",
    "aspect_class": "terrain/aspect_class.tif",
}


def labelled_parcels(region_id):
    """The parcels with their abandonment outcome: the region's abandonment_labels input
    (a survey, or the demo's planted truth) when given, else the classified abandonment.
    """
    if (
        uses(region_id, "drivers", ("abandonment_labels", "@abandonment"))
        == "abandonment_labels"
    ):
        return input_file(region_id, "abandonment_labels")
    return f"results/{region_id}/abandonment/parcels.gpkg"


def driver_layers(region_id):
    """Terrain and the five driver layers the driver stage and the reserve rules read."""
    layers = {k: f"results/{region_id}/{v}" for k, v in TERRAIN_DRIVERS.items()}
    layers.update({name: input_file(region_id, name) for name in DRIVER_LAYERS})
    return layers


def driver_inputs(wildcards):
    return {
        "parcels": labelled_parcels(wildcards.region),
        **driver_layers(wildcards.region),
    }

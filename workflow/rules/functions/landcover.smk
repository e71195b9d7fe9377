# Helpers and input functions of the rules in landcover.smk.


def landcover_classes():
    """The legend as {int code: name} (YAML may give the codes as strings)."""
    return {int(code): name for code, name in config["landcover"]["classes"].items()}


def landcover_inputs(wildcards):
    """The features' files: the period composites and (landcover.features.terrain) the DEM
    and slope, and the region grid."""
    region = wildcards.region
    inputs = {
        "composites": expand(
            "results/{region}/imagery/composite_{period}.tif",
            region=region,
            period=region_periods(region),
        ),
        "grid": f"results/{region}/grid.json",
    }
    if config["landcover"]["features"]["terrain"]:
        inputs["dem"] = f"results/{region}/terrain/dem.tif"
        inputs["slope"] = f"results/{region}/terrain/slope.tif"
    return inputs


def landcover_accuracy_inputs(wildcards):
    inputs = {
        "landcover": f"results/{wildcards.region}/landcover/landcover.tif",
        "samples": f"results/{wildcards.region}/landcover/samples.csv",
    }
    validation = input_file(wildcards.region, "validation")
    if validation:
        inputs["validation"] = validation
    return inputs

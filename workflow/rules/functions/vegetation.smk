# Helpers and input functions of the rules in vegetation.smk.

from karstflow.sensor_plan import RecordPlanError, record_plan


def vegetation_settings(region_id):
    """The region's sensor ranges and season (regions.<id>.vegetation over vegetation)."""
    own = config["regions"][region_id].get("vegetation") or {}
    return {
        "sensors": own.get("sensors") or config["vegetation"]["sensors"],
        "season_months": own.get("season_months")
        or config["vegetation"]["season_months"],
    }


def _record(region_id):
    region = config["regions"][region_id]
    key = (
        f"regions.{region_id}.vegetation.sensors"
        if (region.get("vegetation") or {}).get("sensors")
        else "vegetation.sensors"
    )
    try:
        return record_plan(
            vegetation_settings(region_id)["sensors"],
            region_years(region),
            calibration=config["vegetation"]["calibration"],
            coefficients=config["vegetation"]["coefficients"],
            reference=config["vegetation"]["reference_sensor"],
            key=key,
        )
    except RecordPlanError as err:
        raise WorkflowError(f"region {region_id}: {err}")


RECORDS = {rid: _record(rid) for rid in regions_with("vegetation")}


def vegetation_scene_table(wildcards):
    """The scenes a composite reads: the fetched table of a remote region, or the region's
    vegetation_scenes date table."""
    if config["regions"][wildcards.region]["source"] in REMOTE_SOURCES:
        return (
            f"resources/fetched/{wildcards.region}/vegetation/"
            f"{wildcards.sensor}_{wildcards.year}.csv"
        )
    return input_entry(wildcards.region, "vegetation_scenes")["path"]


def vegetation_composites(wildcards):
    return {
        f"{sensor}_{year}": f"results/{wildcards.region}/vegetation/{sensor}_{year}.tif"
        for sensor, year in RECORDS[wildcards.region].composites
    }


def vegetation_composite_summaries(wildcards):
    """The figures of every composite of the record, keyed as vegetation_composites."""
    return {
        key: path[: -len(".tif")] + ".json"
        for key, path in vegetation_composites(wildcards).items()
    }


def vegetation_overlap_composites(wildcards):
    """The composites the calibration is fitted on: both sensors of each overlap year
    (none when the calibration is configured)."""
    if config["vegetation"]["calibration"] == "coefficients":
        return {}
    base = f"results/{wildcards.region}/vegetation"
    files = {}
    for pair in RECORDS[wildcards.region].to_dict()["overlap_years"]:
        for sensor in (pair["to"], pair["from"]):
            files[f"{sensor}_{pair['year']}"] = f"{base}/{sensor}_{pair['year']}.tif"
    return files


def vegetation_composite_summary_inputs(wildcards):
    """The region's composite, and the fetch manifest (bytes pulled) of a remote region."""
    inputs = {
        "composite": f"results/{wildcards.region}/vegetation/{wildcards.sensor}_{wildcards.year}.tif"
    }
    if config["regions"][wildcards.region]["source"] in REMOTE_SOURCES:
        inputs["manifest"] = (
            f"resources/fetched/{wildcards.region}/vegetation/"
            f"{wildcards.sensor}_{wildcards.year}.json"
        )
    return inputs


# What the acquisition of a year's scenes depends on (the compositing keys rerun only the composite).
VEGETATION_FETCH_KEYS = (
    "composite",
    "landsat_qa_not_clear",
    "scl_not_clear",
    "modis_reliability_clear",
)

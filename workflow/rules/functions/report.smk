# Helpers and input functions of the rules in report.smk.


def stage_paths(region_id, templates):
    """Templates of karstflow.stages filled for a region: periods, years of the
    desertification maps, land-cover years and service years."""
    fill = {
        "period": lambda: region_periods(region_id),
        "rd_year": lambda: rd_map_years(region_id),
        "lc_year": lambda: landcover_years(region_id),
        "service_year": lambda: service_years(region_id),
    }
    out = []
    for template in templates:
        keys = [k for k in fill if f"{{{k}}}" in template]
        values = {k: fill[k]() for k in keys}
        out += (
            expand(f"results/{region_id}/{template}", **values)
            if keys
            else [f"results/{region_id}/{template}"]
        )
    return out


def report_rasters(region_id):
    """Key -> path of every raster output the region's stages map (karstflow.stages maps),
    keyed `{folder}-{name}` (the PNG's file name); only paths some rule makes."""
    out = {}
    for name, stage in STAGES.items():
        if PLANS[region_id][name].runs:
            for path in stage_paths(region_id, stage.maps):
                folder, file = path.split("/")[-2:]
                if has_producer(path):
                    out[f"{folder}-{file.removesuffix('.tif')}"] = path
    return out


def stage_outputs(region_id):
    """Every output of the region's stages (karstflow.stages: the results contract), filled
    for the region. Rule all asks for them all, not only for the summaries that read some:
    Snakemake does not remake a missing file whose readers are up to date, so an output a
    run lost when it was interrupted (a job deletes its outputs when it starts) would stay
    missing after the next run."""
    return [
        path
        for name, stage in STAGES.items()
        if PLANS[region_id][name].runs
        for path in stage_paths(region_id, stage.outputs)
    ]

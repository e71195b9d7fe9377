# Report: `snakemake --report report.html` shows a map of every raster output of every
# region (legend, scale bar, north arrow; rule report_maps) and the tables and figures the
# stages mark with report().


report: "../report/workflow.rst"


def _has_producer(path):
    return any(rule.is_producer(path) for rule in workflow.rules)


def report_rasters(region_id):
    """Key -> path of every raster output of the region that some rule produces.

    Keys are `{stage}-{name}` (the PNG's file name). Candidates cover every stage of the
    results contract; a rule's wildcard constraints decide whether the region has it.
    """
    region = config["regions"][region_id]
    candidates = [f"terrain/{n}" for n in ("dem", "slope", "aspect", "aspect_class")]
    for period in region_periods(region_id):
        candidates += [f"imagery/composite_{period}", f"imagery/clear_count_{period}"]
    candidates.append("landcover/landcover")
    candidates += [f"greening/{n}" for n in ("trend_slope", "trend_p", "trend_class")]
    candidates += [f"desertification/rd_grade_{y}" for y in rd_map_years(region_id)]
    candidates += [
        f"carbon/{n}"
        for n in ("npp_trend_slope", "npp_trend_class", "carbon_sequestration")
    ]
    candidates += [f"carbon/carbon_storage_{y}" for y in landcover_years(region_id)]
    if region_id in services_regions():
        candidates += [
            f"services/{n}"
            for n in ("ls_factor", "flow_accumulation", "improvement_zones")
        ]
        for year in service_years(region_id):
            candidates += [
                f"services/{kind}_{year}"
                for kind in (*SERVICE_MAPS, "soil_loss", "habitat_degradation")
            ]
    out = {}
    for rel in candidates:
        path = f"results/{region_id}/{rel}.tif"
        if _has_producer(path):
            out[rel.replace("/", "-", 1)] = path
    return out


rule report_maps:
    input:
        unpack(lambda w: report_rasters(w.region)),
    output:
        maps=report(
            directory("results/{region}/maps"),
            patterns=["{stage}-{name}.png"],
            caption="../report/map.rst",
            category="Maps",
            subcategory="{region}",
            labels={"region": "{region}", "stage": "{stage}", "map": "{name}"},
        ),
    log:
        log_path("report_maps"),
    benchmark:
        benchmark_path("report_maps")
    threads: 1
    resources:
        mem_mb=2000,
    params:
        rasters=lambda w: list(report_rasters(w.region)),
    message:
        "Drawing a map of every raster output of {wildcards.region}"
    script:
        "../scripts/report_maps.py"

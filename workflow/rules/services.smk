# Ecosystem services per service year, each a stage of its own with only the inputs its
# science needs: soil retention (RUSLE), water yield and habitat quality (InVEST), carbon
# storage (stage carbon); then totals, changes, trade-offs and improvement zones over the
# services a region has (stage services).

SERVICE_STAGES = {
    "carbon_storage": "carbon",
    "soil_retention": "soil_retention",
    "water_yield": "water_yield",
    "habitat_quality": "habitat_quality",
}


def region_services(region_id):
    """The service maps a region gets (their stages run)."""
    return [s for s, stage in SERVICE_STAGES.items() if PLANS[region_id][stage].runs]


def service_years(region_id):
    """Years mapped (config services.years, default the first and last land-cover year)."""
    have = landcover_years(region_id)
    chosen = config["services"]["years"] or sorted({have[0], have[-1]})
    missing = sorted(set(chosen) - set(have))
    if missing:
        raise WorkflowError(
            f"config key services.years: no land-cover map of region {region_id} for "
            f"{missing} (maps: {have})"
        )
    return sorted(chosen)


def service_landcover(wildcards):
    return landcover_maps(wildcards.region)[int(wildcards.year)]


def threat_vectors(region_id):
    """Threat name -> harmonised vector layer, for configured vector threats the region has."""
    out = {}
    for name, spec in config["services"]["habitat_quality"]["threats"].items():
        path = spec.get("vector_input") and input_file(region_id, spec["vector_input"])
        if path:
            out[name] = path
    return out


def soil_retention_inputs(wildcards):
    rid = wildcards.region
    inputs = {
        "ls": f"results/{rid}/services/ls_factor.tif",
        "landcover": service_landcover(wildcards),
        "climate": input_file(rid, "climate"),
        "soil": input_file(rid, "soil_grids"),
        "biophysical": input_file(rid, "biophysical"),
        "grid": f"results/{rid}/grid.json",
    }
    if config["services"]["soil_conservation"]["cover_factor"] == "vegetation_cover":
        if not PLANS[rid]["greening"].runs:
            raise WorkflowError(
                "config key services.soil_conservation.cover_factor: vegetation_cover needs "
                f"the greening stage's NDVI cube, which region {rid} does not get"
            )
        inputs["ndvi"] = f"results/{rid}/greening/ndvi_annual.nc"
    return inputs


def services_summary_inputs(wildcards):
    rid = wildcards.region
    years = service_years(rid)
    inputs = {
        f"{service}_{year}": f"results/{rid}/services/{service}_{year}.tif"
        for service in region_services(rid)
        for year in years
    }
    maps = landcover_maps(rid)
    for year in years:
        inputs[f"landcover_{year}"] = maps[year]
    if PLANS[rid]["habitat_quality"].runs:
        inputs["threats"] = [
            f"results/{rid}/services/habitat_threats_{year}.json" for year in years
        ]
    if PLANS[rid]["terrain"].runs:
        inputs["slope"] = f"results/{rid}/terrain/slope.tif"
    inputs["grid"] = f"results/{rid}/grid.json"
    townships = input_file(rid, "townships")
    if townships:
        inputs["townships"] = townships
    return inputs


rule services_ls_factor:
    input:
        dem="results/{region}/terrain/dem.tif",
        grid="results/{region}/grid.json",
    output:
        ls="results/{region}/services/ls_factor.tif",
        flow_accumulation="results/{region}/services/flow_accumulation.tif",
    log:
        log_path("services_ls_factor"),
    benchmark:
        benchmark_path("services_ls_factor")
    wildcard_constraints:
        region=stage_constraint("soil_retention"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=3000,
    params:
        l_max=config["services"]["soil_conservation"]["l_max"],
    message:
        "Flow routing (pysheds MFD) and the RUSLE LS factor of {wildcards.region}"
    script:
        "../scripts/services_ls_factor.py"


rule services_soil_retention:
    input:
        unpack(soil_retention_inputs),
    output:
        retention="results/{region}/services/soil_retention_{year}.tif",
        soil_loss="results/{region}/services/soil_loss_{year}.tif",
        factors="results/{region}/services/soil_factors_{year}.json",
    log:
        log_path("services_soil_retention_{year}"),
    benchmark:
        benchmark_path("services_soil_retention_{year}")
    wildcard_constraints:
        region=stage_constraint("soil_retention"),
        year=r"\d{4}",
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=3000,
    params:
        soil_conservation=config["services"]["soil_conservation"],
        climate=config["services"]["climate"],
        fvc_percentiles=config["desertification"]["fvc_percentiles"],
    message:
        "Soil retention (RUSLE) of {wildcards.region} in {wildcards.year}"
    script:
        "../scripts/services_soil_retention.py"


rule services_water_yield:
    input:
        landcover=service_landcover,
        climate=lambda w: input_file(w.region, "climate"),
        soil=lambda w: input_file(w.region, "soil_grids"),
        biophysical=lambda w: input_file(w.region, "biophysical"),
        grid="results/{region}/grid.json",
    output:
        water_yield="results/{region}/services/water_yield_{year}.tif",
    log:
        log_path("services_water_yield_{year}"),
    benchmark:
        benchmark_path("services_water_yield_{year}")
    wildcard_constraints:
        region=stage_constraint("water_yield"),
        year=r"\d{4}",
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=3000,
    params:
        z=config["services"]["water_yield"]["z"],
        climate=config["services"]["climate"],
    message:
        "Water yield (InVEST annual water yield) of {wildcards.region} in {wildcards.year}"
    script:
        "../scripts/services_water_yield.py"


rule services_habitat_degradation:
    input:
        unpack(lambda w: threat_vectors(w.region)),
        landcover=service_landcover,
        grid="results/{region}/grid.json",
    output:
        degradation="results/{region}/services/habitat_degradation_{year}.tif",
        threats="results/{region}/services/habitat_threats_{year}.json",
    log:
        log_path("services_habitat_degradation_{year}"),
    benchmark:
        benchmark_path("services_habitat_degradation_{year}")
    wildcard_constraints:
        region=stage_constraint("habitat_quality"),
        year=r"\d{4}",
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=3000,
    params:
        threats=config["services"]["habitat_quality"]["threats"],
        habitat=config["services"]["habitat_quality"]["habitat"],
        vectors=lambda w: sorted(threat_vectors(w.region)),
    message:
        "Habitat degradation (InVEST threats) of {wildcards.region} in {wildcards.year}"
    script:
        "../scripts/services_habitat_degradation.py"


rule services_habitat_quality:
    input:
        landcover=service_landcover,
        degradation="results/{region}/services/habitat_degradation_{year}.tif",
        all_degradation=lambda w: expand(
            "results/{region}/services/habitat_degradation_{year}.tif",
            region=w.region,
            year=service_years(w.region),
        ),
        grid="results/{region}/grid.json",
    output:
        quality="results/{region}/services/habitat_quality_{year}.tif",
    log:
        log_path("services_habitat_quality_{year}"),
    benchmark:
        benchmark_path("services_habitat_quality_{year}")
    wildcard_constraints:
        region=stage_constraint("habitat_quality"),
        year=r"\d{4}",
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        habitat=config["services"]["habitat_quality"]["habitat"],
        half_saturation=config["services"]["habitat_quality"]["half_saturation"],
        scaling_z=config["services"]["habitat_quality"]["scaling_z"],
    message:
        "Habitat quality (InVEST) of {wildcards.region} in {wildcards.year}"
    script:
        "../scripts/services_habitat_quality.py"


rule services_carbon_storage:
    input:
        storage="results/{region}/carbon/carbon_storage_{year}.tif",
        grid="results/{region}/grid.json",
    output:
        storage="results/{region}/services/carbon_storage_{year}.tif",
    log:
        log_path("services_carbon_storage_{year}"),
    benchmark:
        benchmark_path("services_carbon_storage_{year}")
    wildcard_constraints:
        region=one_of(set(regions_with("services")) & set(regions_with("carbon"))),
        year=r"\d{4}",
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=1000,
    message:
        "Carbon storage of {wildcards.region} in {wildcards.year} as a service map"
    script:
        "../scripts/services_carbon_storage.py"


rule services_summary:
    input:
        unpack(services_summary_inputs),
    output:
        table=report(
            "results/{region}/services/services.csv",
            caption="../report/services_table.rst",
            category="Ecosystem services",
            subcategory="{region}",
        ),
        changes=report(
            "results/{region}/services/services_change.csv",
            caption="../report/services_change.rst",
            category="Ecosystem services",
            subcategory="{region}",
        ),
        tradeoffs=report(
            "results/{region}/services/tradeoffs.csv",
            caption="../report/tradeoffs.rst",
            category="Ecosystem services",
            subcategory="{region}",
        ),
        zones="results/{region}/services/improvement_zones.tif",
        townships=report(
            "results/{region}/services/improvement_townships.csv",
            caption="../report/improvement_townships.rst",
            category="Ecosystem services",
            subcategory="{region}",
        ),
        summary="results/{region}/services/services.json",
        tradeoff_figure=report(
            "results/{region}/services/figures/tradeoffs.png",
            caption="../report/tradeoffs.rst",
            category="Ecosystem services",
            subcategory="{region}",
        ),
        change_figure=report(
            "results/{region}/services/figures/services_change.png",
            caption="../report/services_change.rst",
            category="Ecosystem services",
            subcategory="{region}",
        ),
    log:
        log_path("services_summary"),
    benchmark:
        benchmark_path("services_summary")
    wildcard_constraints:
        region=stage_constraint("services"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        years=lambda w: service_years(w.region),
        services=lambda w: region_services(w.region),
        alpha=config["services"]["tradeoffs"]["alpha"],
        improvement=config["services"]["improvement"],
        habitat=config["services"]["habitat_quality"],
        water_yield=config["services"]["water_yield"],
        soil_conservation=config["services"]["soil_conservation"],
        climate=config["services"]["climate"],
    message:
        "Service totals, changes, trade-offs and improvement zones of {wildcards.region}"
    script:
        "../scripts/services_summary.py"

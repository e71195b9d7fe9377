# Ecosystem services per service year: soil conservation (RUSLE), water yield and habitat
# quality (InVEST), carbon storage (from the carbon stage); then totals, changes, trade-offs
# and improvement zones per region.

# Inputs of the karst demo that only this stage reads.
SERVICES_DEMO_INPUTS = {
    "soil_grids": "soil.nc",
    "biophysical": "biophysical.csv",
    "townships": "townships.gpkg",
}
SERVICE_MAPS = ("carbon_storage", "soil_retention", "water_yield", "habitat_quality")


def services_input(region_id, name):
    """Path of a services input of a region, None when it has none (roads, townships are optional)."""
    region = config["regions"][region_id]
    if region["source"] == "demo":
        if region["demo"]["kind"] != "karst":
            return None
        if name in SERVICES_DEMO_INPUTS:
            return f"resources/demo/{region_id}/{SERVICES_DEMO_INPUTS[name]}"
        if name == "landcover" or name in KARST_DEMO_INPUTS:
            return karst_input(region_id, name)
        return None
    return karst_input(region_id, name)


def services_regions():
    """Regions with the carbon stage's inputs plus soil grids and a biophysical table."""
    carbon = set(karst_regions("carbon"))
    return [
        rid
        for rid in REGIONS
        if rid in carbon
        and all(services_input(rid, n) for n in ("soil_grids", "biophysical"))
    ]


def service_years(region_id):
    """Years mapped (config services.years, default the region's first and last)."""
    years = region_years(config["regions"][region_id])
    chosen = config["services"]["years"] or [years[0], years[-1]]
    have = landcover_years(region_id)
    missing = sorted(set(chosen) - set(have))
    if missing:
        raise ValueError(
            f"config key services.years: no land-cover map of region {region_id} for "
            f"{missing} (maps: {have})"
        )
    return sorted(chosen)


def service_landcover(wildcards):
    return karst_input(wildcards.region, "landcover")[int(wildcards.year)]


def threat_vectors(region_id):
    """Threat name -> vector file, for configured vector threats the region has."""
    out = {}
    for name, spec in config["services"]["habitat_quality"]["threats"].items():
        if spec.get("vector_input"):
            path = services_input(region_id, spec["vector_input"])
            if path:
                out[name] = path
    return out


def soil_retention_inputs(wildcards):
    rid = wildcards.region
    inputs = {
        "ls": f"results/{rid}/services/ls_factor.tif",
        "landcover": service_landcover(wildcards),
        "climate": services_input(rid, "climate"),
        "soil": services_input(rid, "soil_grids"),
        "biophysical": services_input(rid, "biophysical"),
        "grid": f"results/{rid}/grid.json",
    }
    if config["services"]["soil_conservation"]["cover_factor"] == "vegetation_cover":
        inputs["ndvi"] = f"results/{rid}/greening/ndvi_annual.nc"
    return inputs


def services_summary_inputs(wildcards):
    rid = wildcards.region
    years = service_years(rid)
    inputs = {
        f"{service}_{year}": f"results/{rid}/services/{service}_{year}.tif"
        for service in SERVICE_MAPS
        for year in years
    }
    for year in years:
        inputs[f"landcover_{year}"] = karst_input(rid, "landcover")[year]
    inputs["threats"] = [
        f"results/{rid}/services/habitat_threats_{year}.json" for year in years
    ]
    inputs["slope"] = f"results/{rid}/terrain/slope.tif"
    inputs["grid"] = f"results/{rid}/grid.json"
    townships = services_input(rid, "townships")
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
        region=one_of(services_regions()),
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
        region=one_of(services_regions()),
        year=r"\d{4}",
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
        climate=lambda w: services_input(w.region, "climate"),
        soil=lambda w: services_input(w.region, "soil_grids"),
        biophysical=lambda w: services_input(w.region, "biophysical"),
        grid="results/{region}/grid.json",
    output:
        water_yield="results/{region}/services/water_yield_{year}.tif",
    log:
        log_path("services_water_yield_{year}"),
    benchmark:
        benchmark_path("services_water_yield_{year}")
    wildcard_constraints:
        region=one_of(services_regions()),
        year=r"\d{4}",
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
        region=one_of(services_regions()),
        year=r"\d{4}",
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
        region=one_of(services_regions()),
        year=r"\d{4}",
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
        region=one_of(services_regions()),
        year=r"\d{4}",
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
    log:
        log_path("services_summary"),
    benchmark:
        benchmark_path("services_summary")
    wildcard_constraints:
        region=one_of(services_regions()),
    threads: 1
    resources:
        mem_mb=2000,
    params:
        years=lambda w: service_years(w.region),
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

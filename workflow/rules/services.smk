# Ecosystem services per service year, each a stage of its own with only the inputs its
# science needs: soil retention (RUSLE), water yield and habitat quality (InVEST), carbon
# storage (stage carbon); then totals, changes, trade-offs and improvement zones over the
# services a region has (stage services).


include: "functions/services.smk"


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
        mem_mb=mem_mb("services_ls_factor"),
        runtime=runtime("services_ls_factor"),
    params:
        l_max=config["services"]["soil_conservation"]["l_max"],
    message:
        "Flow routing (pysheds MFD) and the RUSLE LS factor of {wildcards.region}"
    script:
        "../scripts/services_ls_factor.py"


# The NDVI end-members of the cover-derived C factor: region figures (percentiles of the
# whole region's NDVI cube), computed once and read by every tile.
rule services_soil_ndvi_endmembers:
    input:
        ndvi="results/{region}/greening/ndvi_annual.nc",
        grid="results/{region}/grid.json",
    output:
        endmembers="results/{region}/services/ndvi_endmembers.json",
    log:
        log_path("services_soil_ndvi_endmembers"),
    benchmark:
        benchmark_path("services_soil_ndvi_endmembers")
    wildcard_constraints:
        region=stage_constraint("soil_retention"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("services_soil_ndvi_endmembers"),
        runtime=runtime("services_soil_ndvi_endmembers"),
    params:
        fvc_percentiles=config["desertification"]["fvc_percentiles"],
    message:
        "NDVI end-members of the soil cover factor of {wildcards.region}"
    script:
        "../scripts/services_soil_ndvi_endmembers.py"


rule services_soil_retention:
    input:
        unpack(soil_retention_inputs),
    output:
        retention="results/{region}/services/soil_retention_{year}.tif",
        soil_loss="results/{region}/services/soil_loss_{year}.tif",
        factors_map="results/{region}/services/soil_factors_{year}.tif",
    log:
        log_path("services_soil_retention_{year}"),
    benchmark:
        benchmark_path("services_soil_retention_{year}")
    wildcard_constraints:
        region=untiled_constraint("soil_retention"),
        year=r"\d{4}",
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("services_soil_retention"),
        runtime=runtime("services_soil_retention"),
    params:
        soil_conservation=config["services"]["soil_conservation"],
        climate=config["services"]["climate"],
    message:
        "Soil retention (RUSLE) of {wildcards.region} in {wildcards.year}"
    script:
        "../scripts/services_soil_retention.py"


# RUSLE is per pixel once LS is given (LS itself is not tiled: services_ls_factor).
use rule services_soil_retention as services_soil_retention_tile with:
    output:
        **tile_outputs(rules.services_soil_retention.output),
    log:
        tile_log("services_soil_retention_{year}"),
    benchmark:
        tile_benchmark("services_soil_retention_{year}")
    wildcard_constraints:
        region=tiled_constraint("soil_retention"),
        year=r"\d{4}",
    params:
        tile=tile_spec(halo_px=0),
    message:
        "Soil retention (RUSLE) of {wildcards.region} in {wildcards.year}, tile {wildcards.tile}"


use rule tile_mosaic as services_soil_retention_mosaic with:
    input:
        unpack(mosaic_inputs("services_soil_retention_tile")),
    output:
        **rules.services_soil_retention.output,
    log:
        log_path("services_soil_retention_mosaic_{year}"),
    benchmark:
        benchmark_path("services_soil_retention_mosaic_{year}")
    wildcard_constraints:
        region=tiled_constraint("soil_retention"),
        year=r"\d{4}",


rule services_soil_factors:
    input:
        factors_map="results/{region}/services/soil_factors_{year}.tif",
        retention="results/{region}/services/soil_retention_{year}.tif",
        soil_loss="results/{region}/services/soil_loss_{year}.tif",
        ls="results/{region}/services/ls_factor.tif",
        landcover=service_landcover,
        grid="results/{region}/grid.json",
    output:
        factors="results/{region}/services/soil_factors_{year}.json",
    log:
        log_path("services_soil_factors_{year}"),
    benchmark:
        benchmark_path("services_soil_factors_{year}")
    wildcard_constraints:
        region=stage_constraint("soil_retention"),
        year=r"\d{4}",
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("services_soil_factors"),
        runtime=runtime("services_soil_factors"),
    params:
        soil_conservation=config["services"]["soil_conservation"],
        climate=config["services"]["climate"],
        r_factor_source=lambda w: erosivity_source(w.region),
    message:
        "Region means of the RUSLE factors of {wildcards.region} in {wildcards.year}"
    script:
        "../scripts/services_soil_factors.py"


rule services_water_yield:
    input:
        landcover=service_landcover,
        climate=layer_input("water_yield", "climate"),
        soil=layer_input("water_yield", "soil_grids"),
        biophysical=lambda w: input_file(w.region, "biophysical"),
        grid="results/{region}/grid.json",
    output:
        water_yield="results/{region}/services/water_yield_{year}.tif",
    log:
        log_path("services_water_yield_{year}"),
    benchmark:
        benchmark_path("services_water_yield_{year}")
    wildcard_constraints:
        region=untiled_constraint("water_yield"),
        year=r"\d{4}",
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("services_water_yield"),
        runtime=runtime("services_water_yield"),
    params:
        z=config["services"]["water_yield"]["z"],
        climate=config["services"]["climate"],
    message:
        "Water yield (InVEST annual water yield) of {wildcards.region} in {wildcards.year}"
    script:
        "../scripts/services_water_yield.py"


# Budyko water yield is per pixel (the region totals are services_summary's).
use rule services_water_yield as services_water_yield_tile with:
    output:
        **tile_outputs(rules.services_water_yield.output),
    log:
        tile_log("services_water_yield_{year}"),
    benchmark:
        tile_benchmark("services_water_yield_{year}")
    wildcard_constraints:
        region=tiled_constraint("water_yield"),
        year=r"\d{4}",
    params:
        tile=tile_spec(halo_px=0),
    message:
        "Water yield (InVEST annual water yield) of {wildcards.region} in {wildcards.year}, tile {wildcards.tile}"


use rule tile_mosaic as services_water_yield_mosaic with:
    input:
        unpack(mosaic_inputs("services_water_yield_tile")),
    output:
        **rules.services_water_yield.output,
    log:
        log_path("services_water_yield_mosaic_{year}"),
    benchmark:
        benchmark_path("services_water_yield_mosaic_{year}")
    wildcard_constraints:
        region=tiled_constraint("water_yield"),
        year=r"\d{4}",


rule services_habitat_degradation:
    input:
        unpack(habitat_degradation_inputs),
    output:
        degradation="results/{region}/services/habitat_degradation_{year}.tif",
    log:
        log_path("services_habitat_degradation_{year}"),
    benchmark:
        benchmark_path("services_habitat_degradation_{year}")
    wildcard_constraints:
        region=untiled_constraint("habitat_quality"),
        year=r"\d{4}",
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("services_habitat_degradation"),
        runtime=runtime("services_habitat_degradation"),
    params:
        threats=lambda w: habitat_threats(w.region),
        habitat=config["services"]["habitat_quality"]["habitat"],
        vectors=lambda w: sorted(threat_vectors(w.region)),
    message:
        "Habitat degradation (InVEST threats) of {wildcards.region} in {wildcards.year}"
    script:
        "../scripts/services_habitat_degradation.py"


# A pixel's D reads every threat pixel within the threat's max_distance_m: the halo is the
# largest max distance of the region's threat table.
use rule services_habitat_degradation as services_habitat_degradation_tile with:
    output:
        **tile_outputs(rules.services_habitat_degradation.output),
    log:
        tile_log("services_habitat_degradation_{year}"),
    benchmark:
        tile_benchmark("services_habitat_degradation_{year}")
    wildcard_constraints:
        region=tiled_constraint("habitat_quality"),
        year=r"\d{4}",
    params:
        tile=tile_spec(halo_m=lambda w: threat_halo_m(w.region)),
    message:
        "Habitat degradation (InVEST threats) of {wildcards.region} in {wildcards.year}, tile {wildcards.tile}"


use rule tile_mosaic as services_habitat_degradation_mosaic with:
    input:
        unpack(mosaic_inputs("services_habitat_degradation_tile")),
    output:
        **rules.services_habitat_degradation.output,
    log:
        log_path("services_habitat_degradation_mosaic_{year}"),
    benchmark:
        benchmark_path("services_habitat_degradation_mosaic_{year}")
    wildcard_constraints:
        region=tiled_constraint("habitat_quality"),
        year=r"\d{4}",


rule services_habitat_threats:
    input:
        unpack(habitat_degradation_inputs),
        degradation="results/{region}/services/habitat_degradation_{year}.tif",
    output:
        threats="results/{region}/services/habitat_threats_{year}.json",
    log:
        log_path("services_habitat_threats_{year}"),
    benchmark:
        benchmark_path("services_habitat_threats_{year}")
    wildcard_constraints:
        region=stage_constraint("habitat_quality"),
        year=r"\d{4}",
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("services_habitat_threats"),
        runtime=runtime("services_habitat_threats"),
    params:
        threats=lambda w: habitat_threats(w.region),
        dropped=lambda w: _dropped_threats(w.region),
        vectors=lambda w: sorted(threat_vectors(w.region)),
    message:
        "The threat table of {wildcards.region} in {wildcards.year} as used"
    script:
        "../scripts/services_habitat_threats.py"


# The half-saturation constant k: one region figure for every year and tile.
rule services_habitat_half_saturation:
    input:
        unpack(half_saturation_inputs),
    output:
        half_saturation="results/{region}/services/habitat_half_saturation.json",
    log:
        log_path("services_habitat_half_saturation"),
    benchmark:
        benchmark_path("services_habitat_half_saturation")
    wildcard_constraints:
        region=stage_constraint("habitat_quality"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("services_habitat_half_saturation"),
        runtime=runtime("services_habitat_half_saturation"),
    params:
        half_saturation=config["services"]["habitat_quality"]["half_saturation"],
    message:
        "Habitat quality half-saturation constant of {wildcards.region}"
    script:
        "../scripts/services_habitat_half_saturation.py"


rule services_habitat_quality:
    input:
        landcover=service_landcover,
        degradation="results/{region}/services/habitat_degradation_{year}.tif",
        half_saturation="results/{region}/services/habitat_half_saturation.json",
        grid="results/{region}/grid.json",
    output:
        quality="results/{region}/services/habitat_quality_{year}.tif",
    log:
        log_path("services_habitat_quality_{year}"),
    benchmark:
        benchmark_path("services_habitat_quality_{year}")
    wildcard_constraints:
        region=untiled_constraint("habitat_quality"),
        year=r"\d{4}",
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("services_habitat_quality"),
        runtime=runtime("services_habitat_quality"),
    params:
        habitat=config["services"]["habitat_quality"]["habitat"],
        scaling_z=config["services"]["habitat_quality"]["scaling_z"],
    message:
        "Habitat quality (InVEST) of {wildcards.region} in {wildcards.year}"
    script:
        "../scripts/services_habitat_quality.py"


# Q is per pixel given D and the region's k.
use rule services_habitat_quality as services_habitat_quality_tile with:
    output:
        **tile_outputs(rules.services_habitat_quality.output),
    log:
        tile_log("services_habitat_quality_{year}"),
    benchmark:
        tile_benchmark("services_habitat_quality_{year}")
    wildcard_constraints:
        region=tiled_constraint("habitat_quality"),
        year=r"\d{4}",
    params:
        tile=tile_spec(halo_px=0),
    message:
        "Habitat quality (InVEST) of {wildcards.region} in {wildcards.year}, tile {wildcards.tile}"


use rule tile_mosaic as services_habitat_quality_mosaic with:
    input:
        unpack(mosaic_inputs("services_habitat_quality_tile")),
    output:
        **rules.services_habitat_quality.output,
    log:
        log_path("services_habitat_quality_mosaic_{year}"),
    benchmark:
        benchmark_path("services_habitat_quality_mosaic_{year}")
    wildcard_constraints:
        region=tiled_constraint("habitat_quality"),
        year=r"\d{4}",


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
        mem_mb=mem_mb("services_carbon_storage"),
        runtime=runtime("services_carbon_storage"),
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
        mem_mb=mem_mb("services_summary"),
        runtime=runtime("services_summary"),
    params:
        years=lambda w: service_years(w.region),
        services=lambda w: region_services(w.region),
        alpha=config["services"]["tradeoffs"]["alpha"],
        improvement=config["services"]["improvement"],
        # only the keys the summary reports: another key of these sections reruns the rule
        # that reads it, and the summary through that rule's output
        half_saturation=config["services"]["habitat_quality"]["half_saturation"],
        water_yield_z=config["services"]["water_yield"]["z"],
        r_factor_method=config["services"]["soil_conservation"]["r_factor"]["method"],
        cover_factor=config["services"]["soil_conservation"]["cover_factor"],
        climate=config["services"]["climate"],
    message:
        "Service totals, changes, trade-offs and improvement zones of {wildcards.region}"
    script:
        "../scripts/services_summary.py"

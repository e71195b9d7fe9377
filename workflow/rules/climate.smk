# Monthly climate on the region grid (pulled from Earth Engine or STAC, or the region's
# monthly files), its units checked and converted, and the annual climate cube the karst
# stages read.


rule climate_monthly:
    input:
        unpack(
            lambda w: (
                {"monthly": input_entry(w.region, "climate_monthly")["path"]}
                if input_entry(w.region, "climate_monthly")
                else {}
            )
        ),
        grid="results/{region}/grid.json",
    output:
        monthly="results/{region}/climate/climate_monthly.nc",
    log:
        log_path("climate_monthly"),
    benchmark:
        benchmark_path("climate_monthly")
    wildcard_constraints:
        region=stage_constraint("monthly_climate"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("climate_monthly"),
        runtime=runtime("climate_monthly"),
    params:
        region=source_settings(),
        imagery=imagery_settings(("cache_dir", "cache_tile_px", "fetch")),
        entry=lambda w: input_entry(w.region, "climate_monthly"),
        product=config["climate"]["product"],
        resampling=config["climate"]["resampling"],
        years=lambda w: region_years(region_config(w)),
    message:
        "Monthly climate of {wildcards.region} on the region grid"
    script:
        "../scripts/climate_monthly.py"


rule climate_annual:
    input:
        monthly="results/{region}/climate/climate_monthly.nc",
    output:
        annual="results/{region}/climate/climate_annual.nc",
        summary="results/{region}/climate/climate.json",
    log:
        log_path("climate_annual"),
    benchmark:
        benchmark_path("climate_annual")
    wildcard_constraints:
        region=stage_constraint("monthly_climate"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("climate_annual"),
        runtime=runtime("climate_annual"),
    params:
        years=lambda w: region_years(region_config(w)),
    message:
        "Annual climate of {wildcards.region} from its months"
    script:
        "../scripts/climate_annual.py"

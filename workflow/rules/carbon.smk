# Carbon: InVEST carbon storage per land-cover year and sequestration (stage carbon); CASA
# NPP, Rh and NEP per year and the NPP trend (stage npp), on monthly steps by default
# (carbon.time_step).


include: "functions/carbon.smk"


rule carbon_npp:
    input:
        unpack(carbon_npp_inputs),
    output:
        npp=results("carbon/npp_annual.nc"),
        slope=results("carbon/npp_trend_slope.tif"),
        trend_class=results("carbon/npp_trend_class.tif"),
        summary=results("carbon/npp.json"),
    log:
        log_path("carbon_npp"),
    benchmark:
        benchmark_path("carbon_npp")
    wildcard_constraints:
        region=stage_constraint("npp"),
    conda:
        "../envs/karstflow.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        epsilon_max=config["carbon"]["epsilon_max"],
        fpar=config["carbon"]["fpar"],
        fu_omega=config["carbon"]["fu_omega"],
        rh_model=config["carbon"]["heterotrophic_respiration"],
        time_step=config["carbon"]["time_step"],
        ndvi_peak_month=config["carbon"]["ndvi_peak_month"],
        landcover_years=lambda w: landcover_years(w.region),
        alpha=config["greening"]["alpha"],
        min_valid_years=config["greening"]["min_valid_years"],
        autocorrelation=config["greening"]["autocorrelation"],
        stable_slope=config["carbon"]["npp_stable_slope"],
        chunk_px=config["carbon"]["chunk_px"],
    message:
        "CASA NPP, heterotrophic respiration and NEP of {wildcards.region}, and the NPP trend"
    script:
        "../scripts/carbon_npp.py"


rule carbon_storage:
    input:
        landcover=lambda w: landcover_maps(w.region)[int(w.year)],
        pools=inputs_file("carbon_pools"),
        grid=results("grid.json"),
    output:
        storage=results("carbon/carbon_storage_{year}.tif"),
    log:
        log_path("carbon_storage_{year}"),
    benchmark:
        benchmark_path("carbon_storage_{year}")
    wildcard_constraints:
        region=stage_constraint("carbon"),
        year=r"\d{4}",
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    message:
        "Carbon storage of {wildcards.region} in {wildcards.year} (InVEST carbon pools)"
    script:
        "../scripts/carbon_storage.py"


rule carbon_summary:
    input:
        storage=lambda w: expand(
            "results/{region}/carbon/carbon_storage_{year}.tif",
            region=w.region,
            year=landcover_years(w.region),
        ),
        grid=results("grid.json"),
    output:
        sequestration=results("carbon/carbon_sequestration.tif"),
        summary=results("carbon/carbon.json"),
    log:
        log_path("carbon_summary"),
    benchmark:
        benchmark_path("carbon_summary")
    wildcard_constraints:
        region=stage_constraint("carbon"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        storage_years=lambda w: landcover_years(w.region),
        sequestration_years=lambda w: sequestration_years(w.region),
    message:
        "Carbon sequestration and headline carbon figures of {wildcards.region}"
    script:
        "../scripts/carbon_summary.py"

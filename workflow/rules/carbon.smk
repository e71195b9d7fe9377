# Carbon: CASA NPP, Rh and NEP per year, the NPP trend, InVEST carbon storage, sequestration.


rule carbon_npp:
    input:
        unpack(carbon_npp_inputs),
    output:
        npp="results/{region}/carbon/npp_annual.nc",
        slope="results/{region}/carbon/npp_trend_slope.tif",
        trend_class="results/{region}/carbon/npp_trend_class.tif",
    log:
        log_path("carbon_npp"),
    benchmark:
        benchmark_path("carbon_npp")
    wildcard_constraints:
        region=one_of(karst_regions("carbon")),
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
        months_per_step=config["carbon"]["months_per_step"],
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
        landcover=lambda w: karst_input(w.region, "landcover")[int(w.year)],
        pools=karst_file("carbon_pools"),
        grid="results/{region}/grid.json",
    output:
        storage="results/{region}/carbon/carbon_storage_{year}.tif",
    log:
        log_path("carbon_storage_{year}"),
    benchmark:
        benchmark_path("carbon_storage_{year}")
    wildcard_constraints:
        region=one_of(karst_regions("carbon")),
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
        npp="results/{region}/carbon/npp_annual.nc",
        slope="results/{region}/carbon/npp_trend_slope.tif",
        trend_class="results/{region}/carbon/npp_trend_class.tif",
        storage=lambda w: expand(
            "results/{region}/carbon/carbon_storage_{year}.tif",
            region=w.region,
            year=landcover_years(w.region),
        ),
        grid="results/{region}/grid.json",
    output:
        sequestration="results/{region}/carbon/carbon_sequestration.tif",
        summary="results/{region}/carbon/carbon.json",
    log:
        log_path("carbon_summary"),
    benchmark:
        benchmark_path("carbon_summary")
    wildcard_constraints:
        region=one_of(karst_regions("carbon")),
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

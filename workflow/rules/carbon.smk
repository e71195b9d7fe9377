# Carbon: InVEST carbon storage per land-cover year and sequestration (stage carbon); CASA
# NPP, Rh and NEP per year and the NPP trend (stage npp), on monthly steps by default
# (carbon.time_step). The per-pixel rules are tiled (docs/tiling.md); the end-members and
# the summaries are region rules.


include: "functions/carbon.smk"


# The FPAR end-members are 95th percentiles per land-cover code over the whole region: a
# region statistic, computed once and read by carbon_npp, untiled and on every tile.
rule carbon_npp_endmembers:
    input:
        unpack(carbon_endmember_inputs),
    output:
        endmembers=results("carbon/fpar_endmembers.json"),
    log:
        log_path("carbon_npp_endmembers"),
    benchmark:
        benchmark_path("carbon_npp_endmembers")
    wildcard_constraints:
        region=stage_constraint("npp"),
    conda:
        "../envs/karstflow.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("carbon_npp_endmembers"),
        runtime=runtime("carbon_npp_endmembers"),
    params:
        fpar=config["carbon"]["fpar"],
        landcover_years=lambda w: landcover_years(w.region),
        chunk_px=config["carbon"]["chunk_px"],
    message:
        "FPAR end-members per land-cover code of {wildcards.region} (CASA)"
    script:
        "../scripts/carbon_npp_endmembers.py"


rule carbon_npp:
    input:
        unpack(carbon_npp_inputs),
    output:
        npp=results("carbon/npp_annual.nc"),
        slope=results("carbon/npp_trend_slope.tif"),
        trend_class=results("carbon/npp_trend_class.tif"),
    log:
        log_path("carbon_npp"),
    benchmark:
        benchmark_path("carbon_npp")
    wildcard_constraints:
        region=untiled_constraint("npp"),
    conda:
        "../envs/karstflow.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("carbon_npp"),
        runtime=runtime("carbon_npp"),
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


# CASA is per pixel (T_opt is the temperature of each pixel's own peak month) and the NPP
# trend per pixel series: no halo.
use rule carbon_npp as carbon_npp_tile with:
    output:
        **tile_outputs(rules.carbon_npp.output),
    log:
        tile_log("carbon_npp"),
    benchmark:
        tile_benchmark("carbon_npp")
    wildcard_constraints:
        region=tiled_constraint("npp"),
    params:
        tile=tile_spec(halo_px=0),
    message:
        "CASA NPP, heterotrophic respiration and NEP of {wildcards.region}, and the NPP trend, tile {wildcards.tile}"


use rule tile_mosaic as carbon_npp_mosaic with:
    input:
        unpack(mosaic_inputs("carbon_npp_tile")),
    output:
        **rules.carbon_npp.output,
    log:
        log_path("carbon_npp_mosaic"),
    benchmark:
        benchmark_path("carbon_npp_mosaic")
    wildcard_constraints:
        region=tiled_constraint("npp"),


rule carbon_npp_summary:
    input:
        npp=results("carbon/npp_annual.nc"),
        slope=results("carbon/npp_trend_slope.tif"),
        trend_class=results("carbon/npp_trend_class.tif"),
        grid=results("grid.json"),
    output:
        summary=results("carbon/npp.json"),
    log:
        log_path("carbon_npp_summary"),
    benchmark:
        benchmark_path("carbon_npp_summary")
    wildcard_constraints:
        region=stage_constraint("npp"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("carbon_npp_summary"),
        runtime=runtime("carbon_npp_summary"),
    message:
        "Headline NPP, Rh and NEP figures of {wildcards.region}"
    script:
        "../scripts/carbon_npp_summary.py"


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
        region=untiled_constraint("carbon"),
        year=r"\d{4}",
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("carbon_storage"),
        runtime=runtime("carbon_storage"),
    message:
        "Carbon storage of {wildcards.region} in {wildcards.year} (InVEST carbon pools)"
    script:
        "../scripts/carbon_storage.py"


# A pixel's storage is its class's pools: no halo.
use rule carbon_storage as carbon_storage_tile with:
    output:
        **tile_outputs(rules.carbon_storage.output),
    log:
        tile_log("carbon_storage_{year}"),
    benchmark:
        tile_benchmark("carbon_storage_{year}")
    wildcard_constraints:
        region=tiled_constraint("carbon"),
        year=r"\d{4}",
    params:
        tile=tile_spec(halo_px=0),
    message:
        "Carbon storage of {wildcards.region} in {wildcards.year} (InVEST carbon pools), tile {wildcards.tile}"


use rule tile_mosaic as carbon_storage_mosaic with:
    input:
        unpack(mosaic_inputs("carbon_storage_tile")),
    output:
        **rules.carbon_storage.output,
    log:
        log_path("carbon_storage_{year}_mosaic"),
    benchmark:
        benchmark_path("carbon_storage_{year}_mosaic")
    wildcard_constraints:
        region=tiled_constraint("carbon"),
        year=r"\d{4}",


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
        mem_mb=mem_mb("carbon_summary"),
        runtime=runtime("carbon_summary"),
    params:
        storage_years=lambda w: landcover_years(w.region),
        sequestration_years=lambda w: sequestration_years(w.region),
    message:
        "Carbon sequestration and headline carbon figures of {wildcards.region}"
    script:
        "../scripts/carbon_summary.py"

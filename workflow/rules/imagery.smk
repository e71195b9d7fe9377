# Imagery: the scenes of each period from the region's source (fetched into the tile cache
# for stac/earthengine), cloud-masked median composites and clear counts on the region grid.


include: "functions/imagery.smk"


wildcard_constraints:
    period="[a-z0-9]+(-[a-z0-9]+)*",


rule imagery_fetch:
    input:
        grid="results/{region}/grid.json",
    output:
        table="resources/fetched/{region}/s2_{period}.csv",
        manifest="resources/fetched/{region}/manifest_{period}.json",
    log:
        log_path("imagery_fetch_{period}"),
    benchmark:
        benchmark_path("imagery_fetch_{period}")
    wildcard_constraints:
        region=one_of(remote_regions()),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("imagery_fetch"),
        runtime=runtime("imagery_fetch"),
    params:
        region=source_settings(),
        period=period_config,
        imagery=imagery_settings(FETCH_KEYS),
    message:
        "Fetching the {wildcards.period} scenes of {wildcards.region} into the tile cache"
    script:
        "../scripts/imagery_fetch.py"


rule dem_fetch:
    input:
        grid="results/{region}/grid.json",
    output:
        dem="resources/fetched/{region}/dem.tif",
        manifest="resources/fetched/{region}/dem_manifest.json",
    log:
        log_path("dem_fetch"),
    benchmark:
        benchmark_path("dem_fetch")
    wildcard_constraints:
        region=one_of(remote_regions()),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("dem_fetch"),
        runtime=runtime("dem_fetch"),
    params:
        region=source_settings(),
        imagery=imagery_settings(DEM_FETCH_KEYS),
        resampling=config["terrain"]["dem_resampling"],
    message:
        "Fetching the DEM of {wildcards.region} into the tile cache and onto the region grid"
    script:
        "../scripts/imagery_dem_fetch.py"


rule imagery_composite:
    input:
        scenes=imagery_scenes,
        grid="results/{region}/grid.json",
        # stays the region's on a tile (run_tile gives `grid` the tile's): a tile no scene
        # reaches is empty, as the region's composite is there
        region_grid="results/{region}/grid.json",
    output:
        composite="results/{region}/imagery/composite_{period}.tif",
        clear_count="results/{region}/imagery/clear_count_{period}.tif",
    log:
        log_path("imagery_composite_{period}"),
    benchmark:
        benchmark_path("imagery_composite_{period}")
    wildcard_constraints:
        region=untiled_constraint("imagery"),
    conda:
        "../envs/karstflow.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("imagery_composite"),
        runtime=runtime("imagery_composite"),
    params:
        # the DEM is not read here: the scenes' inputs only
        region=source_settings(inputs=("imagery",)),
        period=period_config,
        bands=config["imagery"]["bands"],
        scl_not_clear=config["imagery"]["scl_not_clear"],
        max_scene_cloud_pct=config["imagery"]["max_scene_cloud_pct"],
        chunk_px=config["imagery"]["chunk_px"],
        gdal_cache_mb=config["imagery"]["gdal_cache_mb"],
        resampling=config["imagery"]["resampling"],
    message:
        "Compositing the {wildcards.period} scenes of {wildcards.region}"
    script:
        "../scripts/imagery_composite.py"


# The median and the clear count are per pixel over the scenes: no halo. The scenes are
# not on the region grid (their own files, or a table listing them), so run_tile passes
# them whole and the script puts them onto the tile's grid.
use rule imagery_composite as imagery_composite_tile with:
    output:
        **tile_outputs(rules.imagery_composite.output),
    log:
        tile_log("imagery_composite_{period}"),
    benchmark:
        tile_benchmark("imagery_composite_{period}")
    wildcard_constraints:
        region=tiled_constraint("imagery"),
    params:
        tile=tile_spec(halo_px=0),
    message:
        "Compositing the {wildcards.period} scenes of {wildcards.region}, tile {wildcards.tile}"


use rule tile_mosaic as imagery_composite_mosaic with:
    input:
        unpack(mosaic_inputs("imagery_composite_tile")),
    output:
        **rules.imagery_composite.output,
    log:
        log_path("imagery_composite_mosaic_{period}"),
    benchmark:
        benchmark_path("imagery_composite_mosaic_{period}")
    wildcard_constraints:
        region=tiled_constraint("imagery"),


rule imagery_period_summary:
    input:
        unpack(imagery_period_summary_inputs),
    output:
        summary="results/{region}/imagery/period_{period}.json",
    log:
        log_path("imagery_period_summary_{period}"),
    benchmark:
        benchmark_path("imagery_period_summary_{period}")
    wildcard_constraints:
        region=stage_constraint("imagery"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("imagery_period_summary"),
        runtime=runtime("imagery_period_summary"),
    message:
        "Headline figures of the {wildcards.period} composite of {wildcards.region}"
    script:
        "../scripts/imagery_period_summary.py"


rule imagery_summary:
    input:
        periods=lambda w: expand(
            "results/{region}/imagery/period_{period}.json",
            region=w.region,
            period=region_periods(w.region),
        ),
    output:
        summary="results/{region}/imagery/imagery.json",
    log:
        log_path("imagery_summary"),
    benchmark:
        benchmark_path("imagery_summary")
    wildcard_constraints:
        region=stage_constraint("imagery"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("imagery_summary"),
        runtime=runtime("imagery_summary"),
    params:
        periods=lambda w: region_periods(w.region),
    message:
        "Collecting the imagery figures of {wildcards.region}"
    script:
        "../scripts/imagery_summary.py"

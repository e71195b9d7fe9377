# The long vegetation record: per year and sensor a growing-season composite of NDVI, EVI
# and kNDVI with its clear count (Landsat C2 L2, Sentinel-2 L2A, MODIS MOD13Q1), and the
# cross-calibrated annual stack the greening stage reads.


include: "functions/vegetation.smk"


wildcard_constraints:
    sensor="landsat|sentinel-2|modis",
    year=r"\d{4}",


rule vegetation_fetch:
    input:
        grid="results/{region}/grid.json",
    output:
        table="resources/fetched/{region}/vegetation/{sensor}_{year}.csv",
        manifest="resources/fetched/{region}/vegetation/{sensor}_{year}.json",
    log:
        log_path("vegetation_fetch_{sensor}_{year}"),
    benchmark:
        benchmark_path("vegetation_fetch_{sensor}_{year}")
    wildcard_constraints:
        region=one_of([r for r in remote_regions() if r in RECORDS]),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("vegetation_fetch"),
        runtime=runtime("vegetation_fetch"),
    params:
        region=source_settings(),
        imagery=imagery_settings(FETCH_KEYS),
        season_months=lambda w: vegetation_settings(w.region)["season_months"],
        vegetation=lambda w: {k: config["vegetation"][k] for k in VEGETATION_FETCH_KEYS},
    message:
        "Acquiring the {wildcards.year} {wildcards.sensor} season of {wildcards.region}"
    script:
        "../scripts/vegetation_fetch.py"


rule vegetation_composite:
    input:
        scenes=vegetation_scene_table,
        grid="results/{region}/grid.json",
    output:
        composite="results/{region}/vegetation/{sensor}_{year}.tif",
    log:
        log_path("vegetation_composite_{sensor}_{year}"),
    benchmark:
        benchmark_path("vegetation_composite_{sensor}_{year}")
    wildcard_constraints:
        region=untiled_constraint("vegetation"),
    conda:
        "../envs/karstflow.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("vegetation_composite"),
        runtime=runtime("vegetation_composite"),
    params:
        source=lambda w: config["regions"][w.region]["source"],
        season_months=lambda w: vegetation_settings(w.region)["season_months"],
        vegetation=lambda w: {
            k: config["vegetation"][k]
            for k in VEGETATION_FETCH_KEYS + ("resampling", "chunk_px")
        },
        gdal_cache_mb=config["imagery"]["gdal_cache_mb"],
    message:
        "Compositing the {wildcards.year} {wildcards.sensor} season of {wildcards.region}"
    script:
        "../scripts/vegetation_composite.py"


# Per pixel over the season's scenes (median or the greenest date): no halo. The scene
# table is not on the region grid, so run_tile passes it whole and the script puts the
# scenes onto the tile's grid.
use rule vegetation_composite as vegetation_composite_tile with:
    output:
        **tile_outputs(rules.vegetation_composite.output),
    log:
        tile_log("vegetation_composite_{sensor}_{year}"),
    benchmark:
        tile_benchmark("vegetation_composite_{sensor}_{year}")
    wildcard_constraints:
        region=tiled_constraint("vegetation"),
    params:
        tile=tile_spec(halo_px=0),
    message:
        "Compositing the {wildcards.year} {wildcards.sensor} season of {wildcards.region}, tile {wildcards.tile}"


use rule tile_mosaic as vegetation_composite_mosaic with:
    input:
        unpack(mosaic_inputs("vegetation_composite_tile")),
    output:
        **rules.vegetation_composite.output,
    log:
        log_path("vegetation_composite_mosaic_{sensor}_{year}"),
    benchmark:
        benchmark_path("vegetation_composite_mosaic_{sensor}_{year}")
    wildcard_constraints:
        region=tiled_constraint("vegetation"),


rule vegetation_composite_summary:
    input:
        unpack(vegetation_composite_summary_inputs),
    output:
        summary="results/{region}/vegetation/{sensor}_{year}.json",
    log:
        log_path("vegetation_composite_summary_{sensor}_{year}"),
    benchmark:
        benchmark_path("vegetation_composite_summary_{sensor}_{year}")
    wildcard_constraints:
        region=stage_constraint("vegetation"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("vegetation_composite_summary"),
        runtime=runtime("vegetation_composite_summary"),
    params:
        source=lambda w: config["regions"][w.region]["source"],
    message:
        "Figures of the {wildcards.year} {wildcards.sensor} composite of {wildcards.region}"
    script:
        "../scripts/vegetation_composite_summary.py"


# A fitted calibration is a region-wide figure (least squares over every pixel both
# sensors see clear): one region step, read by the stack untiled or tiled alike.
rule vegetation_calibration:
    input:
        unpack(vegetation_overlap_composites),
        grid="results/{region}/grid.json",
    output:
        calibration="results/{region}/vegetation/calibration.json",
    log:
        log_path("vegetation_calibration"),
    benchmark:
        benchmark_path("vegetation_calibration")
    wildcard_constraints:
        region=stage_constraint("vegetation"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("vegetation_calibration"),
        runtime=runtime("vegetation_calibration"),
    params:
        record=lambda w: RECORDS[w.region].to_dict(),
        calibration=config["vegetation"]["calibration"],
        coefficients=config["vegetation"]["coefficients"],
        min_pixels=config["vegetation"]["min_calibration_pixels"],
        window_m=config["vegetation"]["calibration_window_m"],
        max_std=config["vegetation"]["calibration_max_std"],
    message:
        "Cross-calibrating the sensors of the vegetation record of {wildcards.region}"
    script:
        "../scripts/vegetation_calibration.py"


rule vegetation_stack:
    input:
        unpack(vegetation_composites),
        calibration="results/{region}/vegetation/calibration.json",
        grid="results/{region}/grid.json",
    output:
        stack="results/{region}/vegetation/annual_stack.nc",
    log:
        log_path("vegetation_stack"),
    benchmark:
        benchmark_path("vegetation_stack")
    wildcard_constraints:
        region=untiled_constraint("vegetation"),
    conda:
        "../envs/karstflow.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("vegetation_stack"),
        runtime=runtime("vegetation_stack"),
    params:
        record=lambda w: RECORDS[w.region].to_dict(),
        chunk_px=config["greening"]["chunk_px"],
        gdal_cache_mb=config["imagery"]["gdal_cache_mb"],
    message:
        "Stacking the vegetation record of {wildcards.region}"
    script:
        "../scripts/vegetation_stack.py"


# Each year's composite with its sensor's gain and offset, pixel by pixel: no halo.
use rule vegetation_stack as vegetation_stack_tile with:
    output:
        **tile_outputs(rules.vegetation_stack.output),
    log:
        tile_log("vegetation_stack"),
    benchmark:
        tile_benchmark("vegetation_stack")
    wildcard_constraints:
        region=tiled_constraint("vegetation"),
    params:
        tile=tile_spec(halo_px=0),
    message:
        "Stacking the vegetation record of {wildcards.region}, tile {wildcards.tile}"


use rule tile_mosaic as vegetation_stack_mosaic with:
    input:
        unpack(mosaic_inputs("vegetation_stack_tile")),
    output:
        **rules.vegetation_stack.output,
    log:
        log_path("vegetation_stack_mosaic"),
    benchmark:
        benchmark_path("vegetation_stack_mosaic")
    wildcard_constraints:
        region=tiled_constraint("vegetation"),


rule vegetation_summary:
    input:
        unpack(vegetation_composite_summaries),
        calibration="results/{region}/vegetation/calibration.json",
    output:
        summary="results/{region}/vegetation/vegetation.json",
    log:
        log_path("vegetation_summary"),
    benchmark:
        benchmark_path("vegetation_summary")
    wildcard_constraints:
        region=stage_constraint("vegetation"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("vegetation_summary"),
        runtime=runtime("vegetation_summary"),
    params:
        record=lambda w: RECORDS[w.region].to_dict(),
    message:
        "Collecting the vegetation figures of {wildcards.region}"
    script:
        "../scripts/vegetation_summary.py"

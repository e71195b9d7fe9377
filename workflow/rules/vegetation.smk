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
        mem_mb=3000,
    params:
        region=region_config,
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
        summary="results/{region}/vegetation/{sensor}_{year}.json",
    log:
        log_path("vegetation_composite_{sensor}_{year}"),
    benchmark:
        benchmark_path("vegetation_composite_{sensor}_{year}")
    wildcard_constraints:
        region=stage_constraint("vegetation"),
    conda:
        "../envs/karstflow.yaml"
    threads: 2
    resources:
        mem_mb=4000,
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


rule vegetation_stack:
    input:
        unpack(vegetation_composites),
        grid="results/{region}/grid.json",
    output:
        stack="results/{region}/vegetation/annual_stack.nc",
        calibration="results/{region}/vegetation/calibration.json",
        summary="results/{region}/vegetation/vegetation.json",
    log:
        log_path("vegetation_stack"),
    benchmark:
        benchmark_path("vegetation_stack")
    wildcard_constraints:
        region=stage_constraint("vegetation"),
    conda:
        "../envs/karstflow.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        record=lambda w: RECORDS[w.region].to_dict(),
        calibration=config["vegetation"]["calibration"],
        coefficients=config["vegetation"]["coefficients"],
        min_pixels=config["vegetation"]["min_calibration_pixels"],
        window_m=config["vegetation"]["calibration_window_m"],
        max_std=config["vegetation"]["calibration_max_std"],
        chunk_px=config["greening"]["chunk_px"],
        gdal_cache_mb=config["imagery"]["gdal_cache_mb"],
    message:
        "Stacking and cross-calibrating the vegetation record of {wildcards.region}"
    script:
        "../scripts/vegetation_stack.py"

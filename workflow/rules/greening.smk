# Karst greening: the annual vegetation-index cube and its Theil-Sen / Mann-Kendall trend,
# both per pixel (tiled: docs/tiling.md), and the headline figures of the trend.


rule greening_cube:
    input:
        stack=layer_input("greening", "annual_stack"),
        grid="results/{region}/grid.json",
    output:
        cube="results/{region}/greening/ndvi_annual.nc",
    log:
        log_path("greening_cube"),
    benchmark:
        benchmark_path("greening_cube")
    wildcard_constraints:
        region=untiled_constraint("greening"),
    conda:
        "../envs/karstflow.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("greening_cube"),
        runtime=runtime("greening_cube"),
    params:
        index=config["greening"]["index"],
        chunk_px=config["greening"]["chunk_px"],
        years=lambda w: region_years(region_config(w)),
        # the region's stack, the cube's `source` attribute (a tile reads a cut of it)
        source=layer_input("greening", "annual_stack"),
    message:
        "Assembling the annual {params.index} cube of {wildcards.region}"
    script:
        "../scripts/greening_cube.py"


# The index of a pixel-year is computed from that pixel-year's bands: no halo.
use rule greening_cube as greening_cube_tile with:
    output:
        **tile_outputs(rules.greening_cube.output),
    log:
        tile_log("greening_cube"),
    benchmark:
        tile_benchmark("greening_cube")
    wildcard_constraints:
        region=tiled_constraint("greening"),
    params:
        tile=tile_spec(halo_px=0),
    message:
        "Assembling the annual {params.index} cube of {wildcards.region}, tile {wildcards.tile}"


use rule tile_mosaic as greening_cube_mosaic with:
    input:
        unpack(mosaic_inputs("greening_cube_tile")),
    output:
        **rules.greening_cube.output,
    log:
        log_path("greening_cube_mosaic"),
    benchmark:
        benchmark_path("greening_cube_mosaic")
    wildcard_constraints:
        region=tiled_constraint("greening"),


rule greening_trend:
    input:
        cube="results/{region}/greening/ndvi_annual.nc",
        grid="results/{region}/grid.json",
    output:
        slope="results/{region}/greening/trend_slope.tif",
        slope_low="results/{region}/greening/trend_slope_low.tif",
        slope_high="results/{region}/greening/trend_slope_high.tif",
        p="results/{region}/greening/trend_p.tif",
        trend_class="results/{region}/greening/trend_class.tif",
    log:
        log_path("greening_trend"),
    benchmark:
        benchmark_path("greening_trend")
    wildcard_constraints:
        region=untiled_constraint("greening"),
    conda:
        "../envs/karstflow.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("greening_trend"),
        runtime=runtime("greening_trend"),
    params:
        index=config["greening"]["index"],
        alpha=config["greening"]["alpha"],
        min_valid_years=config["greening"]["min_valid_years"],
        autocorrelation=config["greening"]["autocorrelation"],
        stable_slope=config["greening"]["stable_slope"],
        chunk_px=config["greening"]["chunk_px"],
    message:
        "Theil-Sen slope and Mann-Kendall test of the {params.index} cube of {wildcards.region}"
    script:
        "../scripts/greening_trend.py"


# The trend of a pixel reads that pixel's series only: no halo.
use rule greening_trend as greening_trend_tile with:
    output:
        **tile_outputs(rules.greening_trend.output),
    log:
        tile_log("greening_trend"),
    benchmark:
        tile_benchmark("greening_trend")
    wildcard_constraints:
        region=tiled_constraint("greening"),
    params:
        tile=tile_spec(halo_px=0),
    message:
        "Theil-Sen slope and Mann-Kendall test of the {params.index} cube of {wildcards.region}, tile {wildcards.tile}"


use rule tile_mosaic as greening_trend_mosaic with:
    input:
        unpack(mosaic_inputs("greening_trend_tile")),
    output:
        **rules.greening_trend.output,
    log:
        log_path("greening_trend_mosaic"),
    benchmark:
        benchmark_path("greening_trend_mosaic")
    wildcard_constraints:
        region=tiled_constraint("greening"),


rule greening_summary:
    input:
        cube="results/{region}/greening/ndvi_annual.nc",
        slope="results/{region}/greening/trend_slope.tif",
        trend_class="results/{region}/greening/trend_class.tif",
        grid="results/{region}/grid.json",
    output:
        summary="results/{region}/greening/greening.json",
    log:
        log_path("greening_summary"),
    benchmark:
        benchmark_path("greening_summary")
    wildcard_constraints:
        region=stage_constraint("greening"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("greening_summary"),
        runtime=runtime("greening_summary"),
    params:
        index=config["greening"]["index"],
        alpha=config["greening"]["alpha"],
        min_valid_years=config["greening"]["min_valid_years"],
        autocorrelation=config["greening"]["autocorrelation"],
        stable_slope=config["greening"]["stable_slope"],
        chunk_px=config["greening"]["chunk_px"],
    message:
        "Headline greening figures of {wildcards.region}"
    script:
        "../scripts/greening_summary.py"

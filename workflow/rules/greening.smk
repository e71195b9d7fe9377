# Karst greening: the annual vegetation-index cube and its Theil-Sen / Mann-Kendall trend.


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
        region=stage_constraint("greening"),
    conda:
        "../envs/karstflow.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        index=config["greening"]["index"],
        chunk_px=config["greening"]["chunk_px"],
        years=lambda w: region_years(region_config(w)),
    message:
        "Assembling the annual {params.index} cube of {wildcards.region}"
    script:
        "../scripts/greening_cube.py"


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
        summary="results/{region}/greening/greening.json",
    log:
        log_path("greening_trend"),
    benchmark:
        benchmark_path("greening_trend")
    wildcard_constraints:
        region=stage_constraint("greening"),
    conda:
        "../envs/karstflow.yaml"
    threads: 2
    resources:
        mem_mb=4000,
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

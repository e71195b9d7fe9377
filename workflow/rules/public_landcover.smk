# Land cover per year from a public product (ESA WorldCover, CLCD), crosswalked to the legend.


include: "functions/public_landcover.smk"


rule public_landcover:
    input:
        unpack(
            lambda w: (
                {"product": input_file(w.region, "landcover_product", w.year)}
                if input_entry(w.region, "landcover_product")
                else {}
            )
        ),
        grid="results/{region}/grid.json",
    output:
        landcover="results/{region}/landcover/public_{year}.tif",
        summary="results/{region}/landcover/public_{year}.json",
    log:
        log_path("public_landcover_{year}"),
    benchmark:
        benchmark_path("public_landcover_{year}")
    wildcard_constraints:
        region=stage_constraint("public_landcover"),
        year=r"\d{4}",
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("public_landcover"),
        runtime=runtime("public_landcover"),
    params:
        region=source_settings(),
        imagery=imagery_settings(("cache_dir", "cache_tile_px", "fetch")),
        product=config["landcover"]["public"]["product"],
        crosswalk=config["landcover"]["public"]["crosswalk"],
        classes=config["landcover"]["classes"],
        colours=config["landcover"]["colours"],
    message:
        "Public land cover ({params.product}) of {wildcards.region} in {wildcards.year}"
    script:
        "../scripts/public_landcover.py"


rule public_landcover_summary:
    input:
        years=lambda w: [
            f"results/{w.region}/landcover/public_{y}.json"
            for y in public_landcover_years(w.region)
        ],
    output:
        summary="results/{region}/landcover/public_landcover.json",
    log:
        log_path("public_landcover_summary"),
    benchmark:
        benchmark_path("public_landcover_summary")
    wildcard_constraints:
        region=stage_constraint("public_landcover"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("public_landcover_summary"),
        runtime=runtime("public_landcover_summary"),
    params:
        product=config["landcover"]["public"]["product"],
    message:
        "Collecting the public land-cover figures of {wildcards.region}"
    script:
        "../scripts/public_landcover_summary.py"

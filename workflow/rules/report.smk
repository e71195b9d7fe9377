# Report: `snakemake --report report.html` shows a map of every raster output of every
# region (legend, scale bar, north arrow; rule report_maps) and the tables and figures the
# stages mark with report().


include: "functions/report.smk"


report: "../report/workflow.rst"


rule report_maps:
    input:
        unpack(lambda w: report_rasters(w.region)),
    output:
        maps=report(
            directory("results/{region}/maps"),
            patterns=["{stage,[a-z]+}-{name}.png"],
            caption="../report/map.rst",
            category="Maps",
            subcategory="{region}",
            labels={"region": "{region}", "stage": "{stage}", "map": "{name}"},
        ),
    log:
        log_path("report_maps"),
    benchmark:
        benchmark_path("report_maps")
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("report_maps"),
        runtime=runtime("report_maps"),
    params:
        rasters=lambda w: list(report_rasters(w.region)),
        landcover_legend=landcover_classes(),
        landcover_colours={
            int(code): tuple(rgb)
            for code, rgb in config["landcover"]["colours"].items()
        },
    message:
        "Drawing a map of every raster output of {wildcards.region}"
    script:
        "../scripts/report_maps.py"

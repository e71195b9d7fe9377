# Summaries: every stage's headline JSON merged per region, and one row per region.


include: "functions/summary.smk"


rule region_summary:
    input:
        unpack(stage_summaries),
        grid="results/{region}/grid.json",
    output:
        summary="results/{region}/summary.json",
    log:
        log_path("region_summary"),
    benchmark:
        benchmark_path("region_summary")
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("region_summary"),
        runtime=runtime("region_summary"),
    params:
        stages=lambda w: list(stage_summaries(w)),
    message:
        "Collecting the headline figures of {wildcards.region}"
    script:
        "../scripts/region_summary.py"


rule summary_table:
    input:
        summaries=expand("results/{region}/summary.json", region=REGIONS),
    output:
        table=report(
            "results/summary.csv",
            caption="../report/summary_table.rst",
            category="Summaries",
        ),
    log:
        "logs/summary_table.log",
    benchmark:
        "logs/benchmarks/summary_table.tsv"
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("summary_table"),
        runtime=runtime("summary_table"),
    message:
        "Writing one row per region to results/summary.csv"
    script:
        "../scripts/summary_table.py"

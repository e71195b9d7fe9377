# Summaries: every stage's headline JSON merged per region, and one row per region.

# Stage name -> headline JSON of that stage; each stage adds its entry as it lands.
STAGE_SUMMARIES = {
    "terrain": "results/{region}/terrain/terrain.json",
}


rule region_summary:
    message:
        "Collecting the headline figures of {wildcards.region}"
    input:
        grid="results/{region}/grid.json",
        **STAGE_SUMMARIES,
    output:
        summary="results/{region}/summary.json",
    params:
        stages=list(STAGE_SUMMARIES),
    log:
        log_path("region_summary"),
    benchmark:
        benchmark_path("region_summary")
    threads: 1
    resources:
        mem_mb=500,
    script:
        "../scripts/region_summary.py"


rule summary_table:
    message:
        "Writing one row per region to results/summary.csv"
    input:
        summaries=expand("results/{region}/summary.json", region=REGIONS),
    output:
        table="results/summary.csv",
    log:
        "logs/summary_table.log",
    benchmark:
        "logs/benchmarks/summary_table.tsv"
    threads: 1
    resources:
        mem_mb=500,
    script:
        "../scripts/summary_table.py"

# Summaries: every stage's headline JSON merged per region, and one row per region.


def stage_summaries(wildcards):
    """Stage name -> headline JSON of that stage for this region; stages add theirs here."""
    stages = {"terrain": "results/{region}/terrain/terrain.json"}
    return {name: path.format(region=wildcards.region) for name, path in stages.items()}


rule region_summary:
    message:
        "Collecting the headline figures of {wildcards.region}"
    input:
        unpack(stage_summaries),
        grid="results/{region}/grid.json",
    output:
        summary="results/{region}/summary.json",
    params:
        stages=lambda w: list(stage_summaries(w)),
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

# Summaries: every stage's headline JSON merged per region, and one row per region.


def stage_summaries(wildcards):
    """Stage name -> headline JSON of that stage for this region; stages add theirs here."""
    stages = {"terrain": "results/{region}/terrain/terrain.json"}
    karst_stages = {
        "greening": "results/{region}/greening/greening.json",
        "desertification": "results/{region}/desertification/desertification.json",
        "carbon": "results/{region}/carbon/carbon.json",
    }
    for stage, path in karst_stages.items():
        if wildcards.region in karst_regions(stage):
            stages[stage] = path
    if wildcards.region in imagery_regions():
        stages["imagery"] = "results/{region}/imagery/imagery.json"
    if wildcards.region in landcover_regions():
        stages["landcover"] = "results/{region}/landcover/landcover.json"
    if wildcards.region in abandonment_regions():
        stages["abandonment"] = "results/{region}/abandonment/abandonment.json"
    if wildcards.region in model_regions():
        stages["drivers"] = "results/{region}/drivers/drivers.json"
        stages["model"] = "results/{region}/model/model.json"
    if wildcards.region in reserve_regions():
        stages["reserve"] = "results/{region}/reserve/reserve.json"
        stages["capacity"] = "results/{region}/capacity/capacity.json"
    if wildcards.region in services_regions():
        stages["services"] = "results/{region}/services/services.json"
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

# Helpers and input functions of the rules in summary.smk.


def stage_summaries(wildcards):
    """Stage name -> headline JSON of each stage the region gets (karstflow.stages)."""
    rid = wildcards.region
    return {
        name: f"results/{rid}/{stage.summary}"
        for name, stage in STAGES.items()
        if stage.summary and PLANS[rid][name].runs
    }

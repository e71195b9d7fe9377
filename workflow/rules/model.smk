# The abandonment model: logit with Hosmer-Lemeshow and VIFs, convenience rules, figures.


include: "functions/model.smk"


rule model_fit:
    input:
        drivers="results/{region}/drivers/parcel_drivers.csv",
        drivers_summary="results/{region}/drivers/drivers.json",
        labels=lambda w: labelled_parcels(w.region),
    output:
        coefficients=report(
            "results/{region}/model/logit_coefficients.csv",
            caption="../report/logit_coefficients.rst",
            category="Abandonment model",
            subcategory="{region}",
        ),
        fit="results/{region}/model/model_fit.json",
        vif=report(
            "results/{region}/model/vif.csv",
            caption="../report/vif.rst",
            category="Abandonment model",
            subcategory="{region}",
        ),
        risk_groups="results/{region}/model/risk_groups.csv",
        predicted="results/{region}/model/predicted.csv",
        corrected="results/{region}/model/logit_coefficients_corrected.csv",
    log:
        log_path("model_fit"),
    benchmark:
        benchmark_path("model_fit")
    wildcard_constraints:
        region=stage_constraint("model"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("model_fit"),
        runtime=runtime("model_fit"),
    params:
        model={
            k: v
            for k, v in config["model"].items()
            if k not in ("rules", "rule_search", "alpha")
        },
        id_column=config["abandonment"]["id_column"],
    message:
        "Fitting the abandonment logit of {wildcards.region}"
    script:
        "../scripts/model_fit.py"


rule model_rules:
    input:
        drivers="results/{region}/drivers/parcel_drivers.csv",
        coefficients="results/{region}/model/logit_coefficients.csv",
        fit="results/{region}/model/model_fit.json",
    output:
        rules="results/{region}/model/convenience_rules.json",
        search="results/{region}/model/rule_search.csv",
    log:
        log_path("model_rules"),
    benchmark:
        benchmark_path("model_rules")
    wildcard_constraints:
        region=stage_constraint("model"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("model_rules"),
        runtime=runtime("model_rules"),
    params:
        rules=config["model"]["rules"],
        rule_search=config["model"]["rule_search"],
        alpha=config["model"]["alpha"],
        aspect_reference=config["model"]["aspect_reference"],
    message:
        "Deriving the cultivation-convenience rules of {wildcards.region}"
    script:
        "../scripts/model_rules.py"


rule model_figures:
    input:
        drivers="results/{region}/drivers/parcel_drivers.csv",
        coefficients="results/{region}/model/logit_coefficients.csv",
        risk_groups="results/{region}/model/risk_groups.csv",
        predicted="results/{region}/model/predicted.csv",
        fit="results/{region}/model/model_fit.json",
        rules="results/{region}/model/convenience_rules.json",
    output:
        **{
            name: report(
                path,
                caption="../report/model_figures.rst",
                category="Abandonment model",
                subcategory="{region}",
            )
            for name, path in MODEL_FIGURES.items()
        },
    log:
        log_path("model_figures"),
    benchmark:
        benchmark_path("model_figures")
    wildcard_constraints:
        region=stage_constraint("model"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("model_figures"),
        runtime=runtime("model_figures"),
    message:
        "Drawing the abandonment model figures of {wildcards.region}"
    script:
        "../scripts/model_figures.py"


rule model_summary:
    input:
        unpack(
            lambda w: {
                f"figure_{k}": v.format(region=w.region)
                for k, v in MODEL_FIGURES.items()
            }
        ),
        fit="results/{region}/model/model_fit.json",
        rules="results/{region}/model/convenience_rules.json",
        coefficients="results/{region}/model/logit_coefficients.csv",
        drivers_summary="results/{region}/drivers/drivers.json",
    output:
        summary="results/{region}/model/model.json",
    log:
        log_path("model_summary"),
    benchmark:
        benchmark_path("model_summary")
    wildcard_constraints:
        region=stage_constraint("model"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("model_summary"),
        runtime=runtime("model_summary"),
    params:
        figures=list(MODEL_FIGURES),
    message:
        "Collecting the headline figures of the abandonment model of {wildcards.region}"
    script:
        "../scripts/model_summary.py"

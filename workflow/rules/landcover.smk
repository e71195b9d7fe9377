# Land cover: a seeded random forest over the period composites, their indices, seasonal
# NDVI statistics and terrain, trained on the region's reference samples; its accuracy on
# samples never used in training (the run stops when Kappa is below
# landcover.validation.kappa_min); a stratified random sample of the map to label. Area
# estimates come only from a probability sample (a labelled map-stratified or simple random
# validation file); the held-out split of the reference samples is not one.


include: "functions/landcover.smk"


rule landcover_classify:
    input:
        unpack(landcover_inputs),
    output:
        landcover="results/{region}/landcover/landcover.tif",
        samples="results/{region}/landcover/samples.csv",
        summary="results/{region}/landcover/classification.json",
    log:
        log_path("landcover_classify"),
    benchmark:
        benchmark_path("landcover_classify")
    wildcard_constraints:
        region=stage_constraint("landcover"),
    conda:
        "../envs/karstflow.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        periods=lambda w: region_periods(w.region),
        classes=landcover_classes(),
        colours=config["landcover"]["colours"],
        reference=config["landcover"]["reference"],
        features=config["landcover"]["features"],
        classifier=config["landcover"]["classifier"],
        split={k: config["landcover"]["validation"][k] for k in ("fraction", "seed")},
        validation_file=lambda w: input_file(w.region, "validation") or "",
        chunk_px=config["landcover"]["chunk_px"],
    message:
        "Classifying the land cover of {wildcards.region}"
    script:
        "../scripts/landcover_classify.py"


rule landcover_accuracy:
    input:
        unpack(landcover_accuracy_inputs),
    output:
        accuracy="results/{region}/landcover/accuracy.json",
        matrix=report(
            "results/{region}/landcover/confusion_matrix.csv",
            caption="../report/confusion_matrix.rst",
            category="Land cover",
            subcategory="{region}",
        ),
        summary="results/{region}/landcover/landcover.json",
    log:
        log_path("landcover_accuracy"),
    benchmark:
        benchmark_path("landcover_accuracy")
    wildcard_constraints:
        region=stage_constraint("landcover"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        classes=landcover_classes(),
        kappa_min=config["landcover"]["validation"]["kappa_min"],
        alpha=config["landcover"]["validation"]["alpha"],
        label_column=config["landcover"]["validation"]["label_column"],
        # the file's own record of its design (column design) wins; this is the fallback
        design=config["landcover"]["validation"].get("design"),
        # messages name the owner's file, not only its harmonised copy
        validation_file=lambda w: raw_input_name(w.region, "validation"),
    message:
        "Assessing the land-cover map of {wildcards.region}"
    script:
        "../scripts/landcover_accuracy.py"


rule landcover_sampling_design:
    input:
        landcover="results/{region}/landcover/landcover.tif",
    output:
        gpkg="results/{region}/landcover/validation_sample.gpkg",
        kml="results/{region}/landcover/validation_sample.kml",
        design="results/{region}/landcover/sampling_design.csv",
    log:
        log_path("landcover_sampling_design"),
    benchmark:
        benchmark_path("landcover_sampling_design")
    wildcard_constraints:
        region=stage_constraint("landcover"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        classes=landcover_classes(),
        sampling=config["landcover"]["sampling"],
    message:
        "Drawing a stratified validation sample of the land-cover map of {wildcards.region}"
    script:
        "../scripts/landcover_sampling_design.py"

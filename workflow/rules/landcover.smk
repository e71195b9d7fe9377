# Land cover: a seeded random forest over the period composites, their indices, seasonal
# NDVI statistics and terrain, trained on the region's reference samples; its accuracy on
# samples never used in training (the run stops when Kappa is below
# landcover.validation.kappa_min); a stratified random sample of the map to label. Area
# estimates come only from a probability sample (a labelled map-stratified or simple random
# validation file); the held-out split of the reference samples is not one.


include: "functions/landcover.smk"


# The forest is trained once on the reference samples of the whole region (they lie
# anywhere in it); the map is predicted pixel by pixel with it, tile by tile when the
# region is tiled; the sample table and the figures are read off the region's map.
rule landcover_train:
    input:
        unpack(landcover_inputs),
        reference=lambda w: input_file(w.region, "reference"),
    output:
        model="results/{region}/landcover/model.joblib",
        samples="results/{region}/landcover/reference_samples.csv",
    log:
        log_path("landcover_train"),
    benchmark:
        benchmark_path("landcover_train")
    wildcard_constraints:
        region=stage_constraint("landcover"),
    conda:
        "../envs/karstflow.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("landcover_train"),
        runtime=runtime("landcover_train"),
    params:
        periods=lambda w: region_periods(w.region),
        classes=landcover_classes(),
        reference=config["landcover"]["reference"],
        features=config["landcover"]["features"],
        classifier=config["landcover"]["classifier"],
        split={k: config["landcover"]["validation"][k] for k in ("fraction", "seed")},
        validation_file=lambda w: input_file(w.region, "validation") or "",
        chunk_px=config["landcover"]["chunk_px"],
    message:
        "Training the land-cover random forest of {wildcards.region}"
    script:
        "../scripts/landcover_train.py"


rule landcover_classify:
    input:
        unpack(landcover_inputs),
        model="results/{region}/landcover/model.joblib",
    output:
        landcover="results/{region}/landcover/landcover.tif",
    log:
        log_path("landcover_classify"),
    benchmark:
        benchmark_path("landcover_classify")
    wildcard_constraints:
        region=untiled_constraint("landcover"),
    conda:
        "../envs/karstflow.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("landcover_classify"),
        runtime=runtime("landcover_classify"),
    params:
        periods=lambda w: region_periods(w.region),
        classes=landcover_classes(),
        colours=config["landcover"]["colours"],
        features=config["landcover"]["features"],
        chunk_px=config["landcover"]["chunk_px"],
    message:
        "Classifying the land cover of {wildcards.region}"
    script:
        "../scripts/landcover_classify.py"


# Every feature is a value of the pixel itself (bands, indices, seasonal statistics,
# elevation, slope): no halo.
use rule landcover_classify as landcover_classify_tile with:
    output:
        **tile_outputs(rules.landcover_classify.output),
    log:
        tile_log("landcover_classify"),
    benchmark:
        tile_benchmark("landcover_classify")
    wildcard_constraints:
        region=tiled_constraint("landcover"),
    params:
        tile=tile_spec(halo_px=0),
    message:
        "Classifying the land cover of {wildcards.region}, tile {wildcards.tile}"


use rule tile_mosaic as landcover_classify_mosaic with:
    input:
        unpack(mosaic_inputs("landcover_classify_tile")),
    output:
        **rules.landcover_classify.output,
    log:
        log_path("landcover_classify_mosaic"),
    benchmark:
        benchmark_path("landcover_classify_mosaic")
    wildcard_constraints:
        region=tiled_constraint("landcover"),


rule landcover_classify_summary:
    input:
        landcover="results/{region}/landcover/landcover.tif",
        samples="results/{region}/landcover/reference_samples.csv",
        model="results/{region}/landcover/model.joblib",
    output:
        samples="results/{region}/landcover/samples.csv",
        summary="results/{region}/landcover/classification.json",
    log:
        log_path("landcover_classify_summary"),
    benchmark:
        benchmark_path("landcover_classify_summary")
    wildcard_constraints:
        region=stage_constraint("landcover"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("landcover_classify_summary"),
        runtime=runtime("landcover_classify_summary"),
    params:
        classes=landcover_classes(),
    message:
        "The land-cover samples and figures of {wildcards.region}"
    script:
        "../scripts/landcover_classify_summary.py"


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
        mem_mb=mem_mb("landcover_accuracy"),
        runtime=runtime("landcover_accuracy"),
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
        mem_mb=mem_mb("landcover_sampling_design"),
        runtime=runtime("landcover_sampling_design"),
    params:
        classes=landcover_classes(),
        sampling=config["landcover"]["sampling"],
    message:
        "Drawing a stratified validation sample of the land-cover map of {wildcards.region}"
    script:
        "../scripts/landcover_sampling_design.py"

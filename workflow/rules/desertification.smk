# Rocky desertification on carbonate rock: FVC, grades per year, areas and transitions.


include: "functions/desertification.smk"


rule desertification_grades:
    input:
        unpack(desertification_inputs),
    output:
        grades="results/{region}/desertification/rd_grade_annual.nc",
        area=report(
            "results/{region}/desertification/rd_area.csv",
            caption="../report/rd_area.rst",
            category="Rocky desertification",
            subcategory="{region}",
        ),
    log:
        log_path("desertification_grades"),
    benchmark:
        benchmark_path("desertification_grades")
    wildcard_constraints:
        region=stage_constraint("desertification"),
    conda:
        "../envs/karstflow.yaml"
    threads: 2
    resources:
        mem_mb=4000,
    params:
        fvc_percentiles=config["desertification"]["fvc_percentiles"],
        fvc_exclude_classes=config["desertification"]["fvc_exclude_classes"],
        exposure_method=config["desertification"]["exposure_method"],
        unmixing=config["desertification"]["unmixing"],
        indicators=config["desertification"]["indicators"],
        combine=config["desertification"]["combine"],
        thresholds=config["desertification"]["thresholds"],
        chunk_px=config["desertification"]["chunk_px"],
    message:
        "Grading rocky desertification of {wildcards.region}, every year"
    script:
        "../scripts/desertification_grades.py"


rule desertification_map:
    input:
        grades="results/{region}/desertification/rd_grade_annual.nc",
        grid="results/{region}/grid.json",
    output:
        grade="results/{region}/desertification/rd_grade_{year}.tif",
    log:
        log_path("desertification_map_{year}"),
    benchmark:
        benchmark_path("desertification_map_{year}")
    wildcard_constraints:
        region=stage_constraint("desertification"),
        year=r"\d{4}",
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    message:
        "Writing the rocky desertification grades of {wildcards.region} in {wildcards.year}"
    script:
        "../scripts/desertification_map.py"


rule desertification_summary:
    input:
        area="results/{region}/desertification/rd_area.csv",
        grades="results/{region}/desertification/rd_grade_annual.nc",
        first=lambda w: f"results/{w.region}/desertification/rd_grade_{rd_map_years(w.region)[0]}.tif",
        last=lambda w: f"results/{w.region}/desertification/rd_grade_{rd_map_years(w.region)[-1]}.tif",
        maps=lambda w: expand(
            "results/{region}/desertification/rd_grade_{year}.tif",
            region=w.region,
            year=rd_map_years(w.region),
        ),
        grid="results/{region}/grid.json",
    output:
        transition=report(
            "results/{region}/desertification/rd_transition.csv",
            caption="../report/rd_transition.rst",
            category="Rocky desertification",
            subcategory="{region}",
        ),
        summary="results/{region}/desertification/desertification.json",
    log:
        log_path("desertification_summary"),
    benchmark:
        benchmark_path("desertification_summary")
    wildcard_constraints:
        region=stage_constraint("desertification"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
    params:
        rd_min_grade=RD_GRADE_CODES[config["desertification"]["rd_min_grade"]],
        years=lambda w: [
            region_years(region_config(w))[0],
            region_years(region_config(w))[-1],
        ],
    message:
        "Rocky desertification transitions and headline figures of {wildcards.region}"
    script:
        "../scripts/desertification_summary.py"

# Rocky desertification on carbonate rock: FVC, grades per year, areas and transitions.


include: "functions/desertification.smk"


# The region-wide figures every pixel's grade shares (FVC end-members as percentiles over the
# region, the exposure method, the unmixing end-members), once for the region: the grades
# of a tile then equal the region's (docs/tiling.md).
rule desertification_endmembers:
    input:
        unpack(desertification_endmember_inputs),
    output:
        endmembers="results/{region}/desertification/endmembers.json",
    log:
        log_path("desertification_endmembers"),
    benchmark:
        benchmark_path("desertification_endmembers")
    wildcard_constraints:
        region=stage_constraint("desertification"),
    conda:
        "../envs/karstflow.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("desertification_endmembers"),
        runtime=runtime("desertification_endmembers"),
    params:
        fvc_percentiles=config["desertification"]["fvc_percentiles"],
        fvc_exclude_classes=config["desertification"]["fvc_exclude_classes"],
        exposure_method=config["desertification"]["exposure_method"],
        unmixing=config["desertification"]["unmixing"],
        chunk_px=config["desertification"]["chunk_px"],
    message:
        "FVC and unmixing end-members and the exposure method of {wildcards.region}"
    script:
        "../scripts/desertification_endmembers.py"


rule desertification_grades:
    input:
        unpack(desertification_inputs),
    output:
        grades="results/{region}/desertification/rd_grade_annual.nc",
    log:
        log_path("desertification_grades"),
    benchmark:
        benchmark_path("desertification_grades")
    wildcard_constraints:
        region=untiled_constraint("desertification"),
    conda:
        "../envs/karstflow.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb("desertification_grades"),
        runtime=runtime("desertification_grades"),
    params:
        indicators=config["desertification"]["indicators"],
        combine=config["desertification"]["combine"],
        thresholds=config["desertification"]["thresholds"],
        chunk_px=config["desertification"]["chunk_px"],
    message:
        "Grading rocky desertification of {wildcards.region}, every year"
    script:
        "../scripts/desertification_grades.py"


# FVC, unmixing and the grades are per pixel (the end-members come from the region rule
# above): no halo.
use rule desertification_grades as desertification_grades_tile with:
    output:
        **tile_outputs(rules.desertification_grades.output),
    log:
        tile_log("desertification_grades"),
    benchmark:
        tile_benchmark("desertification_grades")
    wildcard_constraints:
        region=tiled_constraint("desertification"),
    params:
        tile=tile_spec(halo_px=0),
    message:
        "Grading rocky desertification of {wildcards.region}, every year, tile {wildcards.tile}"


use rule tile_mosaic as desertification_grades_mosaic with:
    input:
        unpack(mosaic_inputs("desertification_grades_tile")),
    output:
        **rules.desertification_grades.output,
    log:
        log_path("desertification_grades_mosaic"),
    benchmark:
        benchmark_path("desertification_grades_mosaic")
    wildcard_constraints:
        region=tiled_constraint("desertification"),


rule desertification_area:
    input:
        grades="results/{region}/desertification/rd_grade_annual.nc",
        grid=results("grid.json"),
    output:
        area=report(
            "results/{region}/desertification/rd_area.csv",
            caption="../report/rd_area.rst",
            category="Rocky desertification",
            subcategory="{region}",
        ),
    log:
        log_path("desertification_area"),
    benchmark:
        benchmark_path("desertification_area")
    wildcard_constraints:
        region=stage_constraint("desertification"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("desertification_area"),
        runtime=runtime("desertification_area"),
    message:
        "Area of each rocky desertification grade of {wildcards.region}, every year"
    script:
        "../scripts/desertification_area.py"


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
        mem_mb=mem_mb("desertification_map"),
        runtime=runtime("desertification_map"),
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
        mem_mb=mem_mb("desertification_summary"),
        runtime=runtime("desertification_summary"),
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

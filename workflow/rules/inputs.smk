# Region inputs brought to canonical form once (karstflow.inputs): vectors in the grid CRS
# with the owner's columns and codes mapped, tables with their columns mapped, rasters and
# cubes on the region grid by the layer's declared resampling. Stages read only these
# copies under results/{region}/inputs/. The DEM is put on the grid by terrain_dem, the
# imagery by the composites.


include: "functions/inputs.smk"


rule inputs_vector:
    input:
        source=raw_input_files,
        grid=results("grid.json"),
    output:
        layer=results("inputs/{layer}.gpkg"),
    log:
        log_path("inputs_vector_{layer}"),
    benchmark:
        benchmark_path("inputs_vector_{layer}")
    wildcard_constraints:
        layer=one_of(inputs_of_kind("vector")),
    priority: INPUT_CHECK_PRIORITY
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("inputs_vector"),
        runtime=runtime("inputs_vector"),
    params:
        entry=lambda w: input_entry(w.region, w.layer),
    message:
        "Harmonising the {wildcards.layer} layer of {wildcards.region}"
    script:
        "../scripts/inputs_vector.py"


rule inputs_table:
    input:
        source=raw_input_files,
        landcover=landcover_maps_of_table,
        townships=townships_of_table,
    output:
        table=results("inputs/{layer}.csv"),
    log:
        log_path("inputs_table_{layer}"),
    benchmark:
        benchmark_path("inputs_table_{layer}")
    wildcard_constraints:
        layer=one_of(inputs_of_kind("table")),
    priority: INPUT_CHECK_PRIORITY
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("inputs_table"),
        runtime=runtime("inputs_table"),
    params:
        entry=table_entry,
    message:
        "Harmonising the {wildcards.layer} table of {wildcards.region}"
    script:
        "../scripts/inputs_table.py"


rule inputs_raster:
    input:
        source=raw_input_files,
        grid=results("grid.json"),
    output:
        raster=results("inputs/{layer}.tif"),
    log:
        log_path("inputs_raster_{layer}"),
    benchmark:
        benchmark_path("inputs_raster_{layer}")
    wildcard_constraints:
        layer=one_of(inputs_of_kind("raster")),
    priority: INPUT_CHECK_PRIORITY
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("inputs_raster"),
        runtime=runtime("inputs_raster"),
    params:
        entry=lambda w: input_entry(w.region, w.layer),
    message:
        "Putting the {wildcards.layer} raster of {wildcards.region} on the region grid"
    script:
        "../scripts/inputs_raster.py"


rule inputs_landcover:
    input:
        source=raw_landcover_file,
        grid=results("grid.json"),
    output:
        raster=results("inputs/{layer}_{year}.tif"),
    log:
        log_path("inputs_{layer}_{year}"),
    benchmark:
        benchmark_path("inputs_{layer}_{year}")
    wildcard_constraints:
        layer=one_of(inputs_of_kind("raster_by_year")),
        year=r"\d{4}",
    priority: INPUT_CHECK_PRIORITY
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("inputs_landcover"),
        runtime=runtime("inputs_landcover"),
    params:
        entry=lambda w: {
            "path": raw_landcover_file(w),
            "resampling": input_entry(w.region, w.layer)["resampling"],
        },
    message:
        "Putting the {wildcards.year} {wildcards.layer} map of {wildcards.region} on the region grid"
    script:
        "../scripts/inputs_raster.py"


rule inputs_cube:
    input:
        source=raw_input_files,
        grid=results("grid.json"),
    output:
        cube=results("inputs/{layer}.nc"),
    log:
        log_path("inputs_cube_{layer}"),
    benchmark:
        benchmark_path("inputs_cube_{layer}")
    wildcard_constraints:
        layer=one_of(inputs_of_kind("cube")),
    priority: INPUT_CHECK_PRIORITY
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("inputs_cube"),
        runtime=runtime("inputs_cube"),
    params:
        entry=lambda w: input_entry(w.region, w.layer),
    message:
        "Putting the {wildcards.layer} cube of {wildcards.region} on the region grid"
    script:
        "../scripts/inputs_cube.py"

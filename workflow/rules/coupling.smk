# Social-ecological coupling (stage coupling): population change against greening, rocky
# desertification, the NPP trend and the services, per township and per grid cell; the
# coupling coordination degree and coupling types; Moran's I, the spatial regression the
# LM tests choose and GWR on the cells (karstflow.coupling, karstflow.coupling_units).


include: "functions/coupling.smk"


# Gridded population of an Earth Engine region from WorldPop 100 m (stage worldpop): the
# density pulled per cache tile and year, times the grid pixel's area (totals kept).
rule population_worldpop:
    input:
        grid="results/{region}/grid.json",
    output:
        cube="results/{region}/population/population.nc",
        summary="results/{region}/population/population.json",
    log:
        log_path("population_worldpop"),
    benchmark:
        benchmark_path("population_worldpop")
    wildcard_constraints:
        region=stage_constraint("worldpop"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("population_worldpop"),
        runtime=runtime("population_worldpop"),
    params:
        region=source_settings(),
        imagery=imagery_settings(("cache_dir", "cache_tile_px", "fetch")),
        years=lambda w: worldpop_years(w.region),
        country=config["coupling"]["worldpop_country"],
    message:
        "Population of {wildcards.region} from WorldPop 100 m (Earth Engine)"
    script:
        "../scripts/population_worldpop.py"


rule coupling_units:
    input:
        unpack(coupling_units_inputs),
    output:
        townships=report(
            "results/{region}/coupling/coupling_townships.csv",
            caption="../report/coupling_townships.rst",
            category="Social-ecological coupling",
            subcategory="{region}",
        ),
        cells="results/{region}/coupling/coupling_cells.gpkg",
        record="results/{region}/coupling/coupling_units.json",
    log:
        log_path("coupling_units"),
    benchmark:
        benchmark_path("coupling_units")
    wildcard_constraints:
        region=stage_constraint("coupling"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("coupling_units"),
        runtime=runtime("coupling_units"),
    params:
        cell_size_m=config["coupling"]["cell_size_m"],
        years=coupling_years,
        not_evaluated=lambda w: coupling_not_evaluated(w.region),
        social=config["coupling"]["social"],
        ecological=config["coupling"]["ecological"],
        indicator_weights=config["coupling"]["indicator_weights"],
        weights=config["coupling"]["weights"],
        classes=config["coupling"]["classes"],
        types=config["coupling"]["types"],
        rd_min_grade=RD_GRADE_CODES[config["desertification"]["rd_min_grade"]],
        greening_classes=config["coupling"]["greening_classes"],
        improvement_codes=config["coupling"]["improvement_codes"],
    message:
        "Coupling indicators, coordination degree and types per township and cell of {wildcards.region}"
    script:
        "../scripts/coupling_units.py"


rule coupling_statistics:
    input:
        cells="results/{region}/coupling/coupling_cells.gpkg",
        townships_table="results/{region}/coupling/coupling_townships.csv",
        record="results/{region}/coupling/coupling_units.json",
        townships=lambda w: input_file(w.region, "townships"),
    output:
        statistics="results/{region}/coupling/coupling_statistics.json",
        summary="results/{region}/coupling/coupling.json",
        types_map=report(
            "results/{region}/coupling/figures/coupling_types.png",
            caption="../report/coupling_figures.rst",
            category="Social-ecological coupling",
            subcategory="{region}",
        ),
        gwr_map=report(
            "results/{region}/coupling/figures/gwr_coefficients.png",
            caption="../report/coupling_figures.rst",
            category="Social-ecological coupling",
            subcategory="{region}",
        ),
        moran_scatter=report(
            "results/{region}/coupling/figures/moran_scatter.png",
            caption="../report/coupling_figures.rst",
            category="Social-ecological coupling",
            subcategory="{region}",
        ),
    log:
        log_path("coupling_statistics"),
    benchmark:
        benchmark_path("coupling_statistics")
    wildcard_constraints:
        region=stage_constraint("coupling"),
    conda:
        "../envs/karstflow.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb("coupling_statistics"),
        runtime=runtime("coupling_statistics"),
    params:
        spatial_weights=config["coupling"]["spatial_weights"],
        alpha=config["coupling"]["alpha"],
        permutations=config["coupling"]["permutations"],
        seed=config["coupling"]["seed"],
        regression=config["coupling"]["regression"],
        gwr=config["coupling"]["gwr"],
        local_moran=config["coupling"]["local_moran"],
        min_units=config["coupling"]["min_units"],
    message:
        "Moran's I, spatial regression and GWR of the coupling of {wildcards.region}"
    script:
        "../scripts/coupling_statistics.py"

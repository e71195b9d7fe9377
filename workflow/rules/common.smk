# Helpers shared by the stage rules: region lookup, inputs per source, log/benchmark paths.

import re

from snakemake.exceptions import WorkflowError

REGIONS = list(config["regions"])


def regions_where(predicate):
    return [rid for rid, region in config["regions"].items() if predicate(region)]


def demo_regions(kind):
    return regions_where(lambda r: r["source"] == "demo" and r["demo"]["kind"] == kind)


def one_of(ids):
    """A wildcard constraint matching exactly these ids (never matches when empty)."""
    return "|".join(re.escape(i) for i in ids) if ids else "(?!x)x"


wildcard_constraints:
    region=one_of(REGIONS),


def region_config(wildcards):
    return config["regions"][wildcards.region]


def demo_size_px(region):
    size = config["demo"]["size"]
    return config["demo"]["sizes"][size][region["demo"]["kind"]]


def demo_file(name):
    """Path of a generated demo input of the current region."""
    return f"resources/demo/{{region}}/{name}"


def dem_source(wildcards):
    """The DEM of a region as its source delivers it, before it is put on the grid."""
    region = region_config(wildcards)
    if region["source"] == "demo":
        return demo_file("dem.tif").format(region=wildcards.region)
    if region["source"] in ("stac", "earthengine"):
        # fetched into the tile cache and mosaicked on the grid by rule dem_fetch
        return f"resources/fetched/{wildcards.region}/dem.tif"
    return region["inputs"]["dem"]


def aoi_input(wildcards):
    path = region_config(wildcards).get("aoi", {}).get("path")
    return [path] if path else []


def log_path(rule_name):
    return f"logs/{{region}}/{rule_name}.log"


def benchmark_path(rule_name):
    return f"logs/benchmarks/{{region}}/{rule_name}.tsv"


# Imagery (rules in imagery.smk): which regions composite, what they read.


def imagery_regions():
    """Regions with periods whose source delivers Sentinel-2 scenes (not the karst demo)."""
    return regions_where(
        lambda r: bool(r.get("periods"))
        and (r["source"] != "demo" or r["demo"]["kind"] == "county")
    )


def remote_regions():
    return regions_where(lambda r: r["source"] in ("stac", "earthengine"))


def region_periods(region_id):
    return list(config["regions"][region_id].get("periods") or {})


def period_config(wildcards):
    return region_config(wildcards)["periods"][wildcards.period]


def imagery_scenes(wildcards):
    """What a period's composite reads: the source's date table or time stacks."""
    region = region_config(wildcards)
    if region["source"] == "demo":
        return [demo_file("s2/scenes.csv").format(region=wildcards.region)]
    if region["source"] == "local":
        spec = region["inputs"]["imagery"]
        if "date_table" in spec:
            return [spec["date_table"]]
        extra = [spec[k] for k in ("cloud_mask", "dates") if spec.get(k)]
        return list(spec["stacks"].values()) + extra
    return [f"resources/fetched/{wildcards.region}/s2_{wildcards.period}.csv"]


# What a fetch depends on; the masking and compositing keys rerun only the composite.
FETCH_KEYS = (
    "bands",
    "max_scene_cloud_pct",
    "resampling",
    "cache_dir",
    "cache_tile_px",
    "fetch",
)
DEM_FETCH_KEYS = ("cache_dir", "cache_tile_px", "fetch", "chunk_px", "gdal_cache_mb")


def imagery_settings(keys):
    return {k: config["imagery"][k] for k in keys}


# Karst stages (greening, desertification, carbon): which regions get them, their inputs.

KARST_DEMO_INPUTS = {
    "annual_stack": "ndvi_annual.nc",
    "carbonate": "carbonate.tif",
    "bedrock_exposure": "bedrock_exposure.nc",
    "climate": "climate.nc",
    "carbon_pools": "carbon_pools.csv",
}


def region_years(region):
    return list(range(region["years"]["first"], region["years"]["last"] + 1))


def karst_input(region_id, name):
    """Path of a karst-stage input of a region, None when it has none.

    Demo karst regions use their generated files; other regions name them under
    `inputs` (landcover is a dict year -> path, keys as int here).
    """
    region = config["regions"][region_id]
    if region["source"] == "demo":
        if region["demo"]["kind"] != "karst":
            return None
        base = f"resources/demo/{region_id}/"
        if name == "landcover":
            years = region["years"]
            return {
                y: f"{base}landcover_{y}.tif" for y in (years["first"], years["last"])
            }
        return base + KARST_DEMO_INPUTS[name]
    value = (region.get("inputs") or {}).get(name)
    if name == "landcover" and value:
        return {int(y): path for y, path in value.items()}
    return value


def karst_regions(stage="greening"):
    """Regions that get a karst stage: an annual stack plus the inputs of the stage."""
    needs = {
        "greening": ("annual_stack",),
        "desertification": ("annual_stack", "carbonate"),
        "carbon": ("annual_stack", "climate", "landcover", "carbon_pools"),
    }[stage]
    return [rid for rid in REGIONS if all(karst_input(rid, n) for n in needs)]


def karst_file(name):
    """Input function: the karst-stage input `name` of the current region."""

    def inner(wildcards):
        return karst_input(wildcards.region, name)

    return inner


RD_GRADE_CODES = {
    "potential": 1,
    "light": 2,
    "moderate": 3,
    "severe": 4,
    "extremely severe": 5,
}


def rd_map_years(region_id):
    """Years written as rd_grade_{year}.tif (config desertification.map_years)."""
    years = region_years(config["regions"][region_id])
    chosen = config["desertification"]["map_years"]
    if chosen == "ends":
        return [years[0], years[-1]]
    if chosen == "all":
        return years
    outside = sorted(set(chosen) - set(years))
    if outside:
        raise ValueError(
            f"config key desertification.map_years: year(s) {outside} are outside the "
            f"years of region {region_id} ({years[0]}..{years[-1]})"
        )
    return sorted(set(chosen) | {years[0], years[-1]})


def desertification_inputs(wildcards):
    inputs = {
        "cube": f"results/{wildcards.region}/greening/ndvi_annual.nc",
        "carbonate": karst_input(wildcards.region, "carbonate"),
        "grid": f"results/{wildcards.region}/grid.json",
    }
    exposure = karst_input(wildcards.region, "bedrock_exposure")
    if exposure:
        inputs["exposure"] = exposure
    if "slope" in config["desertification"]["indicators"]:
        inputs["slope"] = f"results/{wildcards.region}/terrain/slope.tif"
    return inputs


def landcover_years(region_id):
    return sorted(karst_input(region_id, "landcover") or {})


def sequestration_years(region_id):
    have = landcover_years(region_id)
    chosen = config["carbon"]["sequestration_years"]
    if chosen is None:
        return [have[0], have[-1]]
    missing = sorted(set(chosen) - set(have))
    if missing:
        raise ValueError(
            f"config key carbon.sequestration_years: no land-cover map of region {region_id} "
            f"for {missing} (maps: {have})"
        )
    return list(chosen)


def carbon_npp_inputs(wildcards):
    inputs = {
        "cube": f"results/{wildcards.region}/greening/ndvi_annual.nc",
        "climate": karst_input(wildcards.region, "climate"),
        "grid": f"results/{wildcards.region}/grid.json",
    }
    for year, path in karst_input(wildcards.region, "landcover").items():
        inputs[f"landcover_{year}"] = path
    return inputs


# County stages (abandonment, drivers, model, reserve, capacity): which regions get them,
# their input layers.

COUNTY_DEMO_INPUTS = {
    name: f"{name}.{ext}"
    for name, ext in (
        ("parcels", "gpkg"),
        ("forest", "gpkg"),
        ("redline", "gpkg"),
        ("soil", "gpkg"),
        ("irrigation", "gpkg"),
        ("farmland", "gpkg"),
        ("quality_grades", "gpkg"),
        ("townships", "gpkg"),
        ("villages", "gpkg"),
        ("settlements", "gpkg"),
        ("roads", "gpkg"),
        ("accumulated_temperature", "tif"),
        ("precipitation", "tif"),
    )
}


def county_regions():
    """Regions whose source provides reclaimed parcels: for now the demo county regions."""
    return demo_regions("county")


def county_input(region_id, name):
    """Path of a county-stage input layer of a region (COUNTY_DEMO_INPUTS names), None when
    it has none. Demo county regions use their generated files; other regions name them
    under `inputs`."""
    region = config["regions"][region_id]
    if region["source"] == "demo":
        if region["demo"]["kind"] != "county":
            return None
        return f"resources/demo/{region_id}/{COUNTY_DEMO_INPUTS[name]}"
    return (region.get("inputs") or {}).get(name)


# Reserve farmland and capacity stages (reserve.smk, capacity.smk): inputs and figures.

# Layers of the reserve factors made by earlier stages (the rest are county inputs).
RESERVE_STAGE_LAYERS = {
    "slope": "results/{region}/terrain/slope.tif",
    "convenience_rules": "results/{region}/model/convenience_rules.json",
}
# What the convenience rules need to compute the forest polygons' drivers, as the driver
# stage does for parcels.
RESERVE_DRIVER_INPUTS = {
    "dem": "results/{region}/terrain/dem.tif",
    "slope": "results/{region}/terrain/slope.tif",
    "aspect_class": "results/{region}/terrain/aspect_class.tif",
}
RESERVE_DRIVER_LAYERS = (
    "settlements",
    "roads",
    "farmland",
    "villages",
    "quality_grades",
)
RESERVE_FIGURES = {
    "by_type": "results/{region}/reserve/figures/reclaimable_by_type.png",
    "by_factor": "results/{region}/reserve/figures/failing_factor.png",
}
CAPACITY_FIGURES = {"swap_map": "results/{region}/capacity/figures/swap_plan.png"}


def reserve_regions():
    """Regions that get the reserve and capacity stages: their parcels are judged
    (abandonment_regions) and they have forest land."""
    return [rid for rid in abandonment_regions() if county_input(rid, "forest")]


def reserve_inputs(wildcards):
    """Forest, townships and the layers the configured factors read; a layer the region
    lacks is left out (its factors are then "not evaluated")."""
    from karstflow.reserve import config_layers

    rid = wildcards.region
    inputs = {
        "forest": county_input(rid, "forest"),
        "townships": county_input(rid, "townships"),
    }
    for name in sorted(config_layers(config["reserve"])):
        if name == "convenience_rules" and rid not in model_regions():
            continue  # no abandonment model for the region, so no rules
        if name in RESERVE_STAGE_LAYERS:
            inputs[name] = RESERVE_STAGE_LAYERS[name].format(region=rid)
        else:
            inputs[name] = county_input(rid, name)
    if inputs.get("convenience_rules"):
        for name, path in RESERVE_DRIVER_INPUTS.items():
            inputs[name] = path.format(region=rid)
        for name in RESERVE_DRIVER_LAYERS:
            inputs[name] = county_input(rid, name)
    return {k: v for k, v in inputs.items() if v}


def reserve_drivers_settings():
    """compute_drivers settings of the driver stage (config section drivers, when present)."""
    section = config.get("drivers") or {}
    keys = ("snap_tolerance_m", "max_access_m", "own_patch_min_share")
    return {k: section[k] for k in keys if k in section}


def county_figures(region_id):
    """Map PNGs of the reserve and capacity stages of a region."""
    paths = [*RESERVE_FIGURES.values(), *CAPACITY_FIGURES.values()]
    return [path.format(region=region_id) for path in paths]


# Land cover and abandonment: which regions get them, their reference and validation samples.


def landcover_reference(region_id):
    """Reference samples of a region: the demo county's generated points, or inputs.reference."""
    region = config["regions"][region_id]
    if region["source"] == "demo":
        if region["demo"]["kind"] != "county":
            return None
        return f"resources/demo/{region_id}/reference_points.gpkg"
    return (region.get("inputs") or {}).get("reference")


def landcover_validation(region_id):
    """The labelled validation sample a region names (inputs.validation), None without one."""
    return (config["regions"][region_id].get("inputs") or {}).get("validation")


def landcover_regions():
    """Regions classified: imagery periods (imagery_regions) plus reference samples."""
    return [rid for rid in imagery_regions() if landcover_reference(rid)]


def landcover_classes():
    """The legend as {int code: name} (YAML may give the codes as strings)."""
    return {int(code): name for code, name in config["landcover"]["classes"].items()}


def landcover_inputs(wildcards):
    region = wildcards.region
    inputs = {
        "composites": expand(
            "results/{region}/imagery/composite_{period}.tif",
            region=region,
            period=region_periods(region),
        ),
        "reference": landcover_reference(region),
        "grid": f"results/{region}/grid.json",
    }
    if config["landcover"]["features"]["terrain"]:
        inputs["dem"] = f"results/{region}/terrain/dem.tif"
        inputs["slope"] = f"results/{region}/terrain/slope.tif"
    return inputs


def landcover_accuracy_inputs(wildcards):
    inputs = {
        "landcover": f"results/{wildcards.region}/landcover/landcover.tif",
        "samples": f"results/{wildcards.region}/landcover/samples.csv",
    }
    validation = landcover_validation(wildcards.region)
    if validation:
        inputs["validation"] = validation
    return inputs


def abandonment_regions():
    """Regions whose reclaimed parcels are judged: county regions with a land-cover map."""
    classified = set(landcover_regions())
    return [
        rid
        for rid in county_regions()
        if rid in classified and county_input(rid, "parcels")
    ]


# --- demo inputs ---

from karstflow.demo import county_files, karst_files

DEMO_FILES = {"county": county_files, "karst": karst_files}


def demo_outputs(kind):
    """Files declared by the demo rule of ``kind``; they depend on the regions' years, which
    Snakemake needs to know before it sees a region, so regions of one kind share them.
    """
    spans = {
        (
            config["regions"][rid]["years"]["first"],
            config["regions"][rid]["years"]["last"],
        )
        for rid in demo_regions(kind)
    }
    if len(spans) > 1:
        raise WorkflowError(
            f"config key regions: demo regions of kind {kind!r} must share their years; "
            f"found {sorted(spans)}"
        )
    first, last = spans.pop()
    return [demo_file(name) for name in DEMO_FILES[kind](range(first, last + 1))]


# --- summaries ---


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


# --- drivers stage ---

DRIVER_LAYERS = ("settlements", "roads", "farmland", "villages", "quality_grades")


def model_regions():
    """Regions that get the driver and model stages: those whose parcels have labels
    (abandonment_regions; with drivers.labels planted, the demo county regions)."""
    if config["drivers"]["labels"] == "planted":
        return [
            rid
            for rid in county_regions()
            if config["regions"][rid]["source"] == "demo"
        ]
    return abandonment_regions()


def labelled_parcels(wildcards):
    """The reclaimed parcels with their abandonment outcome."""
    if config["drivers"]["labels"] == "planted":
        return f"resources/demo/{wildcards.region}/parcels.gpkg"
    return f"results/{wildcards.region}/abandonment/parcels.gpkg"


def driver_inputs(wildcards):
    inputs = {
        "parcels": labelled_parcels(wildcards),
        "dem": f"results/{wildcards.region}/terrain/dem.tif",
        "slope": f"results/{wildcards.region}/terrain/slope.tif",
        "aspect_class": f"results/{wildcards.region}/terrain/aspect_class.tif",
    }
    for name in DRIVER_LAYERS:
        path = county_input(wildcards.region, name)
        if not path:
            raise WorkflowError(
                f"config key regions.{wildcards.region}.inputs.{name}: the driver stage needs "
                f"the {name} layer of the region; none is given"
            )
        inputs[name] = path
    return inputs


# --- model stage ---

from karstflow.drivers import DRIVER_COLUMNS
from karstflow.conditions import RuleError, rule_variables


def check_rule_keys():
    """Rules in the config are expressions over the driver columns: checked at start-up."""
    for key in ("rules", "interaction_terms"):
        for i, expression in enumerate(config["model"][key] or []):
            try:
                rule_variables(expression, DRIVER_COLUMNS)
            except RuleError as err:
                raise WorkflowError(f"config key model.{key}[{i}]: {err}")


check_rule_keys()

MODEL_FIGURES = {
    "coefficients": "results/{region}/model/figures/coefficients.png",
    "calibration": "results/{region}/model/figures/calibration.png",
    "roc": "results/{region}/model/figures/roc.png",
    "rule_heatmaps": "results/{region}/model/figures/rule_heatmaps.png",
}


# --- ecosystem services stage ---

# Inputs of the karst demo that only this stage reads.
SERVICES_DEMO_INPUTS = {
    "soil_grids": "soil.nc",
    "biophysical": "biophysical.csv",
    "townships": "townships.gpkg",
}
SERVICE_MAPS = ("carbon_storage", "soil_retention", "water_yield", "habitat_quality")


def services_input(region_id, name):
    """Path of a services input of a region, None when it has none (roads, townships are optional)."""
    region = config["regions"][region_id]
    if region["source"] == "demo":
        if region["demo"]["kind"] != "karst":
            return None
        if name in SERVICES_DEMO_INPUTS:
            return f"resources/demo/{region_id}/{SERVICES_DEMO_INPUTS[name]}"
        if name == "landcover" or name in KARST_DEMO_INPUTS:
            return karst_input(region_id, name)
        return None
    return karst_input(region_id, name)


def services_regions():
    """Regions with the carbon stage's inputs plus soil grids and a biophysical table."""
    carbon = set(karst_regions("carbon"))
    return [
        rid
        for rid in REGIONS
        if rid in carbon
        and all(services_input(rid, n) for n in ("soil_grids", "biophysical"))
    ]


def service_years(region_id):
    """Years mapped (config services.years, default the region's first and last)."""
    years = region_years(config["regions"][region_id])
    chosen = config["services"]["years"] or [years[0], years[-1]]
    have = landcover_years(region_id)
    missing = sorted(set(chosen) - set(have))
    if missing:
        raise ValueError(
            f"config key services.years: no land-cover map of region {region_id} for "
            f"{missing} (maps: {have})"
        )
    return sorted(chosen)


def service_landcover(wildcards):
    return karst_input(wildcards.region, "landcover")[int(wildcards.year)]


def threat_vectors(region_id):
    """Threat name -> vector file, for configured vector threats the region has."""
    out = {}
    for name, spec in config["services"]["habitat_quality"]["threats"].items():
        if spec.get("vector_input"):
            path = services_input(region_id, spec["vector_input"])
            if path:
                out[name] = path
    return out


def soil_retention_inputs(wildcards):
    rid = wildcards.region
    inputs = {
        "ls": f"results/{rid}/services/ls_factor.tif",
        "landcover": service_landcover(wildcards),
        "climate": services_input(rid, "climate"),
        "soil": services_input(rid, "soil_grids"),
        "biophysical": services_input(rid, "biophysical"),
        "grid": f"results/{rid}/grid.json",
    }
    if config["services"]["soil_conservation"]["cover_factor"] == "vegetation_cover":
        inputs["ndvi"] = f"results/{rid}/greening/ndvi_annual.nc"
    return inputs


def services_summary_inputs(wildcards):
    rid = wildcards.region
    years = service_years(rid)
    inputs = {
        f"{service}_{year}": f"results/{rid}/services/{service}_{year}.tif"
        for service in SERVICE_MAPS
        for year in years
    }
    for year in years:
        inputs[f"landcover_{year}"] = karst_input(rid, "landcover")[year]
    inputs["threats"] = [
        f"results/{rid}/services/habitat_threats_{year}.json" for year in years
    ]
    inputs["slope"] = f"results/{rid}/terrain/slope.tif"
    inputs["grid"] = f"results/{rid}/grid.json"
    townships = services_input(rid, "townships")
    if townships:
        inputs["townships"] = townships
    return inputs


# --- report ---


def _has_producer(path):
    return any(rule.is_producer(path) for rule in workflow.rules)


def report_rasters(region_id):
    """Key -> path of every raster output of the region that some rule produces.

    Keys are `{stage}-{name}` (the PNG's file name). Candidates cover every stage of the
    results contract; a rule's wildcard constraints decide whether the region has it.
    """
    candidates = [("terrain", n) for n in ("dem", "slope", "aspect", "aspect_class")]
    for period in region_periods(region_id):
        candidates += [
            ("imagery", f"composite_{period}"),
            ("imagery", f"clear_count_{period}"),
        ]
    candidates.append(("landcover", "landcover"))
    candidates += [("greening", n) for n in ("trend_slope", "trend_p", "trend_class")]
    candidates += [
        ("desertification", f"rd_grade_{y}") for y in rd_map_years(region_id)
    ]
    candidates += [
        ("carbon", n)
        for n in ("npp_trend_slope", "npp_trend_class", "carbon_sequestration")
    ]
    candidates += [
        ("carbon", f"carbon_storage_{y}") for y in landcover_years(region_id)
    ]
    if region_id in services_regions():
        candidates += [
            ("services", n)
            for n in ("ls_factor", "flow_accumulation", "improvement_zones")
        ]
        for year in service_years(region_id):
            candidates += [
                ("services", f"{kind}_{year}")
                for kind in (*SERVICE_MAPS, "soil_loss", "habitat_degradation")
            ]
    out = {}
    for stage, name in candidates:
        path = f"results/{region_id}/{stage}/{name}.tif"
        if _has_producer(path):
            out[f"{stage}-{name}"] = path
    return out

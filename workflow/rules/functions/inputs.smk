# Helpers and input functions of the rules in inputs.smk.


def inputs_of_kind(*kinds):
    return [
        name for name, spec in INPUTS.items() if spec.kind in kinds and name != "dem"
    ]


def raw_input_files(wildcards, name=None):
    """The files of the region's input ``name`` (default: the layer wildcard) as its owner
    gives them, globs expanded."""
    from karstflow.inputs import paths_of

    name = name or wildcards.layer
    entry = input_entry(wildcards.region, name)
    if entry is None:
        raise WorkflowError(
            f"config key regions.{wildcards.region}.inputs.{name}: not given"
        )
    import glob

    files = []
    for path in paths_of(entry):
        files += sorted(glob.glob(path)) if any(c in path for c in "*?[") else [path]
    return files


def raw_landcover_file(wildcards):
    """The owner's map of a year of a raster_by_year input (landcover, landcover_product)."""
    entry = input_entry(wildcards.region, wildcards.layer)
    return entry["years"][int(wildcards.year)]


def raw_input_name(region_id, name):
    """The owner's file(s) of an input, as text for messages ("" when not given)."""
    from karstflow.inputs import paths_of

    entry = input_entry(region_id, name)
    return ", ".join(map(str, paths_of(entry))) if entry else ""


def landcover_maps_of_table(wildcards):
    """The region's land-cover input maps a table keyed by land-cover code is checked
    against (every code of every map needs a row), so a carbon-pool or biophysical table
    missing a code fails where it enters, naming the table; none for other tables, or when
    the land cover is made by a stage (whose rules check it then)."""
    if "lucode" not in INPUTS[wildcards.layer].required_columns:
        return []
    entry = input_entry(wildcards.region, "landcover")
    if not entry:
        return []
    return [
        inputs_file("landcover", year).format(region=wildcards.region)
        for year in sorted(entry["years"])
    ]


def townships_of_table(wildcards):
    """The harmonised townships layer a table keyed by township is checked against (every
    township id of the population table must be a township of the layer), as the land-cover
    codes of landcover_maps_of_table; none for other tables or without townships."""
    if "township_id" not in INPUTS[wildcards.layer].required_columns:
        return []
    path = input_file(wildcards.region, "townships")
    return [path] if path else []


def table_entry(wildcards):
    """Params of inputs_table: the input's entry; for a table keyed by year (the population
    table) with the region's years its rows must lie in. Other tables' entries stay as they
    were, so they do not rerun when the region's years change."""
    entry = dict(input_entry(wildcards.region, wildcards.layer))
    if "year" in INPUTS[wildcards.layer].required_columns:
        entry["region_years"] = region_years(region_config(wildcards))
    return entry

"""Region inputs: every layer a stage reads, declared once, and brought to canonical form.

:data:`INPUTS` names each key of ``regions.<id>.inputs`` with its kind and, for vector and
table layers, the canonical columns the stages read (the demo's column names) with their
units and allowed values. A user keeps their own names and codes and maps them in the
config::

    parcels:
      path: data/parcels_2020.shp
      columns: {parcel_id: FID_2020, reclaim_year: YEAR}
    forest:
      path: data/forest.gpkg
      layer: lin_di
      columns: {forest_type: DLMC}
      values: {forest_type: {乔木林地: forested land, 其他林地: other forest land}}

A plain string is the path alone. Raster inputs may be one file, a list of tiles or a glob
(``data/ASTGTMV003_*_dem.tif``), with ``resampling`` to override the layer's default.

The harmonisation rules (workflow/rules/inputs.smk) write the canonical copy of every
layer under ``results/{region}/inputs/``: vectors as GeoPackage in the grid CRS with the
canonical columns (other columns kept), tables as CSV, rasters on the region grid. Later
stages read only those copies.

API::

    INPUTS: dict[str, InputSpec]
    input_spec(region_id, name, value) -> dict      # the normalised config entry
    harmonise_vector(gdf, name, spec, crs, source) -> GeoDataFrame
    harmonise_table(df, name, spec, source) -> DataFrame
    InputError
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


class InputError(ValueError):
    """A region input does not have what its stage needs (the message names file and key)."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # int | number | text | yesno
    description: str
    units: str | None = None
    allowed: tuple[Any, ...] | None = None
    required: bool = True
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class InputSpec:
    name: str
    kind: str  # raster | vector | table | cube | imagery | raster_by_year | monthly
    description: str
    columns: tuple[Column, ...] = ()
    geometry: tuple[str, ...] = ()
    resampling: str | None = None
    units: str | None = None
    extension: str = ""
    #: cubes: the variables a stage reads and the dimensions before (y, x)
    variables: tuple[str, ...] = ()
    leading_dims: tuple[str, ...] | None = None
    #: rasters: the physical range (minimum, maximum) of the values, None unbounded
    valid_range: tuple[float | None, float | None] = (None, None)

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


def _col(name: str, kind: str, description: str, **kw: Any) -> Column:
    if "allowed" in kw and kw["allowed"] is not None:
        kw["allowed"] = tuple(kw["allowed"])
    return Column(name, kind, description, **kw)


POLYGONS = ("Polygon", "MultiPolygon")
POINTS = ("Point", "MultiPoint")
LINES = ("LineString", "MultiLineString")
GRADE_UNITS = "grade (1 best, 15 worst; GB/T 28407-2012)"
FOREST_TYPES = ("forested land", "other forest land", "sparse forest land")
YES_NO = {"true", "yes", "y", "1", "t", "false", "no", "n", "0", "f"}

_SPECS: tuple[InputSpec, ...] = (
    InputSpec(
        "dem",
        "raster",
        "Elevation (m); one file, a list of tiles or a glob, any CRS.",
        resampling="bilinear",
        units="m",
        extension="tif",
    ),
    InputSpec(
        "imagery",
        "imagery",
        "Sentinel-2 L2A scenes: a date table, per-band time stacks or SAFE products; "
        "composited per period straight onto the grid (imagery/composite_{period}.tif is their harmonised form).",
    ),
    InputSpec(
        "reference",
        "vector",
        "Labelled reference samples (points or polygons) for training the classifier.",
        (
            _col(
                "class_code",
                "int",
                "land-cover code (or the column landcover.reference.class_column names)",
                required=False,
            ),
        ),
        POINTS + POLYGONS,
        extension="gpkg",
    ),
    InputSpec(
        "validation",
        "vector",
        "Labelled validation sample (points), e.g. landcover/validation_sample.gpkg "
        "after labelling; unlabelled points are skipped.",
        (_col("reference_code", "int", "land-cover code read on the ground or on imagery", required=False),),
        POINTS,
        extension="gpkg",
    ),
    InputSpec(
        "parcels",
        "vector",
        "Reclaimed (supplementary) farmland parcels.",
        (
            _col("parcel_id", "int", "unique parcel id (or the column abandonment.id_column names)", required=False),
            _col("reclaim_year", "int", "year of reclamation", required=False, units="year"),
        ),
        POLYGONS,
        extension="gpkg",
    ),
    InputSpec(
        "abandonment_labels",
        "vector",
        "Known abandonment outcome of the parcels (field survey, or the demo's "
        "planted truth): used by the driver stage instead of the classified abandonment.",
        (
            _col("parcel_id", "int", "parcel id as in parcels"),
            _col("abandoned", "int", "0 used, 1 abandoned", allowed=(0, 1)),
        ),
        POLYGONS,
        extension="gpkg",
    ),
    InputSpec(
        "villages",
        "vector",
        "Administrative villages with their resident population (x6).",
        (
            _col("village_id", "int", "unique village id", required=False),
            _col("population", "number", "resident population", units="people", minimum=0),
        ),
        POLYGONS,
        extension="gpkg",
    ),
    InputSpec(
        "settlements",
        "vector",
        "Settlements (points or polygons): targets of x4.",
        (),
        POINTS + POLYGONS,
        extension="gpkg",
    ),
    InputSpec(
        "roads",
        "vector",
        "Road lines: the network of x4 and x5; a habitat-quality threat when configured.",
        (),
        LINES,
        extension="gpkg",
    ),
    InputSpec(
        "access",
        "vector",
        "Accessibility to threats (InVEST habitat quality's access layer): polygons whose "
        "access scales every threat's impact; pixels no polygon covers have access 1.",
        (
            _col(
                "access",
                "number",
                "relative accessibility to threats, 0 inaccessible to 1 fully accessible "
                "(InVEST's ACCESS field: map it with columns: {access: ACCESS})",
                minimum=0,
                maximum=1,
            ),
        ),
        POLYGONS,
        extension="gpkg",
    ),
    InputSpec(
        "farmland",
        "vector",
        "Cultivated farmland patches: targets of x5, grades for capacity.",
        (),
        POLYGONS,
        extension="gpkg",
    ),
    InputSpec(
        "quality_grades",
        "vector",
        "Farmland quality-grade polygons (x7-x9; K of the capacity formula).",
        (
            _col("natural_grade", "int", "natural grade", minimum=1, maximum=15, units=GRADE_UNITS),
            _col("utilization_grade", "int", "utilization grade", minimum=1, maximum=15, units=GRADE_UNITS),
            _col("economic_grade", "int", "economic grade", minimum=1, maximum=15, units=GRADE_UNITS),
        ),
        POLYGONS,
        extension="gpkg",
    ),
    InputSpec(
        "forest",
        "vector",
        "Forest-land polygons, the reserve-farmland candidates.",
        (
            _col("forest_type", "text", "forest type", allowed=FOREST_TYPES),
            _col(
                "carbon_mg_ha",
                "number",
                "carbon density (swap cost carbon)",
                units="Mg C ha-1",
                required=False,
                minimum=0,
            ),
        ),
        POLYGONS,
        extension="gpkg",
    ),
    InputSpec(
        "redline",
        "vector",
        "Ecological protection red-line zones.",
        (_col("kind", "text", "zone kind, a key of reserve.redline.kinds"),),
        POLYGONS,
        extension="gpkg",
    ),
    InputSpec(
        "soil",
        "vector",
        "Soil units for the reserve soil factors.",
        (
            _col("texture", "text", "soil texture (reserve.texture.allowed)", required=False),
            _col("depth_cm", "number", "soil depth", units="cm", required=False, minimum=0),
            _col("ph", "number", "soil pH", required=False, minimum=0, maximum=14),
            _col("salinization", "text", "salinization degree (reserve.salinization)", required=False),
            _col("polluted", "yesno", "soil polluted", required=False),
            _col("drainage", "yesno", "drainage possible", required=False),
            _col("weatherable_bedrock", "yesno", "weatherable bedrock", required=False),
        ),
        POLYGONS,
        extension="gpkg",
    ),
    InputSpec(
        "irrigation",
        "vector",
        "Irrigation zones (reserve precipitation-or-irrigation factor).",
        (),
        POLYGONS,
        extension="gpkg",
    ),
    InputSpec(
        "townships",
        "vector",
        "Townships, for per-township summaries.",
        (
            _col("township_id", "int", "unique positive township id", minimum=1),
            _col("township", "text", "township name", required=False),
        ),
        POLYGONS,
        extension="gpkg",
    ),
    InputSpec(
        "population_table",
        "table",
        "Population per township and year (census or statistical yearbook), for the coupling "
        "stage: one row per township and year of the region's years.",
        (
            _col("township_id", "int", "township id, as in the townships layer", minimum=1),
            _col("year", "int", "year of the figures", units="year"),
            _col("resident", "number", "resident population", units="persons", minimum=0),
            _col("registered", "number", "registered (hukou) population", units="persons", required=False, minimum=0),
            _col("rural_share", "number", "share of the residents who are rural", required=False, minimum=0, maximum=1),
        ),
        extension="csv",
    ),
    InputSpec(
        "population",
        "cube",
        "Gridded population per year (NetCDF, dims year, y, x; variable population, persons "
        "per pixel of the region grid), e.g. WorldPop 100 m brought to the grid keeping totals.",
        extension="nc",
        variables=("population",),
        leading_dims=("year",),
    ),
    InputSpec(
        "accumulated_temperature",
        "raster",
        "Accumulated temperature >= 10 degC (degC day).",
        resampling="bilinear",
        units="degC day",
        extension="tif",
        valid_range=(0.0, None),
    ),
    InputSpec(
        "precipitation",
        "raster",
        "Annual precipitation (mm).",
        resampling="bilinear",
        units="mm",
        extension="tif",
        valid_range=(0.0, None),
    ),
    InputSpec(
        "annual_stack",
        "cube",
        "Annual vegetation stack (NetCDF, dims year, y, x): the greening index (ndvi, "
        "evi, kndvi) or the bands to compute it.",
        resampling="bilinear",
        extension="nc",
        leading_dims=("year",),
    ),
    InputSpec(
        "carbonate",
        "raster",
        "Carbonate-rock mask (1 carbonate, 0 other).",
        resampling="nearest",
        extension="tif",
        valid_range=(0.0, 1.0),
    ),
    InputSpec(
        "bedrock_exposure",
        "cube",
        "Bedrock exposure fraction 0..1 per year (NetCDF, dims year, y, x).",
        resampling="bilinear",
        extension="nc",
        leading_dims=("year",),
    ),
    InputSpec(
        "climate",
        "cube",
        "Climate (NetCDF, dims year, y, x): temperature_c, precipitation_mm, solar_mj_m2, eto_mm.",
        resampling="bilinear",
        extension="nc",
        variables=("temperature_c", "precipitation_mm", "solar_mj_m2", "eto_mm"),
        leading_dims=("year",),
    ),
    InputSpec(
        "vegetation_scenes",
        "imagery",
        "Scenes of the long vegetation record (stage vegetation): a date table (CSV) with "
        "columns date, file, sensor (landsat, sentinel-2, modis) and, for Landsat, platform "
        "(landsat-5 ... landsat-9); each file's band descriptions name the layers of its "
        "sensor (karstflow.sensors.LAYERS), stored as the provider stores them.",
        extension="csv",
    ),
    InputSpec(
        "climate_monthly",
        "monthly",
        "Monthly climate (stage monthly_climate): a CF NetCDF or GeoTIFF per variable with a "
        "monthly time axis, as {path, variables: {temperature_c: <var>, precipitation_mm: "
        "<var>, solar_mj_m2: <var>, eto_mm: <var>}, units: {<canonical>: <units>}}; units are "
        "read from each variable's units attribute unless given, and converted.",
        resampling="bilinear",
        extension="nc",
    ),
    InputSpec(
        "lithology",
        "vector",
        "Lithology map (polygons, stage lithology): the carbonate-rock mask is the union of "
        "the polygons whose unit is one of regions.<id>.carbonate_units.",
        (_col("unit", "text", "lithological unit code or name"),),
        POLYGONS,
        extension="gpkg",
    ),
    InputSpec(
        "landcover_product",
        "raster_by_year",
        "Public land-cover maps keyed by year in the product's own codes (ESA WorldCover, "
        "CLCD), mapped to the legend by landcover.public.crosswalk (stage public_landcover).",
        resampling="nearest",
        extension="tif",
    ),
    InputSpec(
        "landcover",
        "raster_by_year",
        "Land-cover maps keyed by year (codes of landcover.classes).",
        resampling="nearest",
        extension="tif",
        valid_range=(0.0, None),
    ),
    InputSpec(
        "carbon_pools",
        "table",
        "InVEST carbon pools per land-cover code (Mg C/ha).",
        (
            _col("lucode", "int", "land-cover code"),
            *(
                _col(c, "number", f"{c[2:]} carbon", units="Mg C ha-1", minimum=0)
                for c in ("c_above", "c_below", "c_soil", "c_dead")
            ),
        ),
        extension="csv",
    ),
    InputSpec(
        "soil_grids",
        "cube",
        "Soil grids (NetCDF, dims y, x): soil_depth_mm, pawc, sand_pct, silt_pct, clay_pct, organic_carbon_pct.",
        resampling="bilinear",
        extension="nc",
        leading_dims=(),
    ),
    InputSpec(
        "biophysical",
        "table",
        "InVEST biophysical table per land-cover code.",
        (
            _col("lucode", "int", "land-cover code"),
            _col("root_depth_mm", "number", "root depth", units="mm", minimum=0),
            _col("kc", "number", "crop coefficient", minimum=0),
            _col("lulc_veg", "int", "1 vegetated, 0 not", allowed=(0, 1)),
            _col("usle_c", "number", "USLE cover factor", minimum=0, maximum=1),
            _col("usle_p", "number", "USLE support-practice factor", minimum=0, maximum=1),
        ),
        extension="csv",
    ),
)

INPUTS: dict[str, InputSpec] = {s.name: s for s in _SPECS}
#: Canonical variables of a monthly climate input (karstflow.climate.MONTHLY_VARIABLES).
MONTHLY_NAMES = ("temperature_c", "precipitation_mm", "solar_mj_m2", "eto_mm")
KINDS_HARMONISED = ("vector", "table", "raster", "cube", "raster_by_year")


def input_spec(region_id: str, name: str, value: Any) -> dict[str, Any]:
    """The normalised entry of ``regions.<id>.inputs.<name>``: path(s), layer, column and
    value maps, resampling. A string is a path; raster inputs may give a list or a glob."""
    key = f"regions.{region_id}.inputs.{name}"
    if name not in INPUTS:
        raise InputError(f"config key {key}: unknown input; inputs: {sorted(INPUTS)}")
    spec = INPUTS[name]
    if spec.kind == "imagery":
        return {"path": value}  # a layout mapping (date_table, stacks or safe), read by LocalSource
    if spec.kind == "monthly":
        entry = {"path": value} if isinstance(value, str | list) else dict(value)
        if "path" not in entry:
            raise InputError(f"config key {key}: expected a path or a mapping with path, found {value!r}")
        unknown = sorted((set(entry.get("variables") or {}) | set(entry.get("units") or {})) - set(MONTHLY_NAMES))
        if unknown:
            raise InputError(f"config key {key}: unknown variable(s) {unknown}; expected some of {list(MONTHLY_NAMES)}")
        entry.setdefault("variables", {})
        entry.setdefault("units", {})
        entry.setdefault("resampling", spec.resampling)
        return entry
    if spec.kind == "raster_by_year":
        # {year: path} or {years: {year: path}, resampling: ...}
        raw = dict(value) if isinstance(value, Mapping) else {}
        years = raw.pop("years", None) or {k: v for k, v in raw.items() if str(k).isdigit()}
        if not years or not all(str(y).isdigit() and len(str(y)) == 4 for y in years):
            raise InputError(f"config key {key}: expected a mapping year -> raster path, found {value!r}")
        entry = {"years": {int(y): p for y, p in years.items()}, "resampling": raw.get("resampling", spec.resampling)}
        return entry
    entry = {"path": value} if isinstance(value, str | list) else dict(value)
    if "path" not in entry:
        raise InputError(f"config key {key}: expected a path or a mapping with path, found {value!r}")
    canonical = {c.name for c in spec.columns}
    for what in ("columns", "values"):
        extra = sorted(set(entry.get(what) or {}) - canonical)
        if extra and spec.kind in ("vector", "table"):
            raise InputError(
                f"config key {key}.{what}: {extra} are not columns of the {name} input; "
                f"its columns: {sorted(canonical)}"
            )
    entry.setdefault("columns", {})
    entry.setdefault("values", {})
    if spec.resampling:
        entry.setdefault("resampling", spec.resampling)
    return entry


def _rename(df: pd.DataFrame, name: str, entry: Mapping[str, Any], source: str) -> pd.DataFrame:
    spec = INPUTS[name]
    mapping = {file_col: canonical for canonical, file_col in (entry.get("columns") or {}).items()}
    absent = sorted(set(mapping) - set(df.columns))
    if absent:
        raise InputError(
            f"{source} (input {name}): mapped column(s) {absent} are not in the file; its columns: {list(df.columns)}"
        )
    clash = sorted(c for c in mapping.values() if c in df.columns and c not in mapping)
    if clash:
        # the file already has a column of the canonical name: keep the owner's under its own name
        df = df.rename(columns={c: f"{c}_original" for c in clash})
    df = df.rename(columns=mapping)
    missing = [c for c in spec.required_columns if c not in df.columns]
    if missing:
        raise InputError(
            f"{source} (input {name}): expected column(s) {missing}, "
            f"found {[c for c in df.columns if c != 'geometry']}; "
            f"map your own names with inputs.{name}.columns: {{{missing[0]}: <your column>}}"
        )
    for canonical, codes in (entry.get("values") or {}).items():
        if canonical in df.columns:
            as_text = {str(k): v for k, v in codes.items()}
            df[canonical] = [as_text.get(str(v), v) if v is not None else v for v in df[canonical]]
    for column in spec.columns:
        if column.name in df.columns:
            df[column.name] = _check_column(df[column.name], column, name, source)
    return df


def _check_column(values: pd.Series, column: Column, name: str, source: str) -> pd.Series:
    where = f"{source} (input {name}), column {column.name}"
    present = values.notna()
    if column.required and not present.all():
        raise InputError(
            f"{where}: {int((~present).sum())} of {len(values)} rows are empty; expected {column.description}"
        )
    if column.kind in ("int", "number"):
        numeric = pd.to_numeric(values, errors="coerce")
        bad = present & numeric.isna()
        if bad.any():
            raise InputError(
                f"{where}: expected numbers ({column.description}), found {sorted(map(str, values[bad].unique()))[:5]} "
                f"in {int(bad.sum())} row(s)"
            )
        if column.kind == "int":
            frac = present & (numeric != np.round(numeric))
            if frac.any():
                raise InputError(f"{where}: expected whole numbers, found {numeric[frac].tolist()[:5]}")
        for word, bound, test in (
            ("below the minimum", column.minimum, numeric < (column.minimum or 0)),
            ("above the maximum", column.maximum, numeric > (column.maximum or 0)),
        ):
            if bound is not None and (present & test).any():
                units = f" {column.units}" if column.units else ""
                raise InputError(
                    f"{where}: {int((present & test).sum())} row(s) {word} {bound:g}{units} "
                    f"({column.description}): {numeric[present & test].tolist()[:5]}"
                )
        values = numeric.astype("Int64") if column.kind == "int" else numeric
    if column.kind == "yesno":
        bad = present & ~values.astype(str).str.strip().str.lower().isin(YES_NO)
        if bad.any():
            raise InputError(
                f"{where}: expected yes/no values (yes/no, true/false, 1/0), found "
                f"{sorted(map(str, values[bad].unique()))[:8]} in {int(bad.sum())} row(s)"
            )
    if column.allowed is not None:
        allowed = {str(a) for a in column.allowed}
        bad = present & ~values.astype(str).isin(allowed)
        if bad.any():
            raise InputError(
                f"{where}: value(s) {sorted(map(str, values[bad].unique()))[:8]} in {int(bad.sum())} row(s) are not "
                f"allowed; expected one of {list(column.allowed)} (map yours with inputs.{name}.values.{column.name})"
            )
    return values


def harmonise_vector(
    gdf: Any,
    name: str,
    entry: Mapping[str, Any],
    crs: str,
    source: str,
    bounds: tuple[float, float, float, float] | None = None,
) -> Any:
    """The canonical form of a vector input: columns renamed and checked, values mapped,
    geometry types checked, reprojected to ``crs`` (logged). With the region grid's
    ``bounds`` (in ``crs``), a layer none of whose features reaches the grid is an error
    (a layer in the wrong CRS, or of another region, would otherwise give empty tables)."""
    spec = INPUTS[name]
    if gdf.crs is None:
        raise InputError(f"{source} (input {name}): the layer has no CRS; set one (e.g. with ogr2ogr -a_srs)")
    if len(gdf) == 0:
        raise InputError(f"{source} (input {name}): the layer has no features")
    if spec.geometry:
        types = set(gdf.geometry.geom_type.dropna())
        wrong = sorted(types - set(spec.geometry))
        if wrong:
            raise InputError(f"{source} (input {name}): expected {'/'.join(spec.geometry)} geometries, found {wrong}")
    from pyproj import CRS

    out: Any = _rename(gdf, name, entry, source)  # still a GeoDataFrame
    file_crs = CRS.from_user_input(gdf.crs)
    if not file_crs.equals(CRS.from_user_input(crs)):
        log.info("%s (input %s): %d features reprojected from %s to %s", source, name, len(out), file_crs, crs)
        out = out.to_crs(crs)
    else:
        log.info("%s (input %s): %d features, already in %s", source, name, len(out), crs)
    if bounds is not None:
        from shapely.geometry import box

        inside = out.geometry.intersects(box(*bounds))
        if not inside.any():
            raise InputError(
                f"{source} (input {name}): none of its {len(out)} features reaches the region grid "
                f"{tuple(round(b, 1) for b in bounds)} ({crs}); its extent there is "
                f"{tuple(round(float(b), 1) for b in out.total_bounds)} (wrong CRS, or another region?)"
            )
        if not inside.all():
            outside = int((~inside).sum())
            log.warning("%s (input %s): %d of %d features lie outside the region grid", source, name, outside, len(out))
    return out


def harmonise_table(df: pd.DataFrame, name: str, entry: Mapping[str, Any], source: str) -> pd.DataFrame:
    """The canonical form of a table input: columns renamed and checked, values mapped."""
    if len(df) == 0:
        raise InputError(f"{source} (input {name}): the table has no rows")
    out = _rename(df, name, entry, source)
    log.info("%s (input %s): %d rows", source, name, len(out))
    return out


def schema_kinds() -> dict[str, str]:
    """Input name -> kind, for the schema test (every input documented with its kind)."""
    return {n: s.kind for n, s in INPUTS.items()}


def paths_of(entry: Mapping[str, Any]) -> Sequence[str]:
    """Every file an entry names (the year maps of a raster_by_year input included)."""
    if "years" in entry:
        return list(entry["years"].values())
    path = entry["path"]
    return list(path) if isinstance(path, list) else [path]

"""Reserve farmland: the limiting-factor evaluation of forest land that could be farmed.

Every forest polygon is a candidate. It is checked against the factors of the study
(every factor must pass), in this order, which is also the order in which the *first
failing factor* is named:

==========================  ===========================================================
factor                      passes when
==========================  ===========================================================
``redline``                 the polygon overlaps no ecological red-line zone of a kind
                            that excludes (nature reserve, park, drinking-water source,
                            fragile zone, geohazard zone, flood storage)
``slope``                   mean slope < ``slope_max_deg`` (25 deg)
``accumulated_temperature`` mean accumulated temperature >= 1800 degC.day
``water``                   mean precipitation >= 400 mm/yr **or** irrigated
``texture``                 soil texture loam, clay or sand (not gravelly)
``pollution``               soil not polluted
``salinization``            salinization below severe
``drainage``                drainage possible
``soil_depth``              soil depth >= 30 cm **or** weatherable bedrock
``ph``                      4.0 < pH < 9.5
``convenience``             no high-abandonment subgroup rule of the model holds for
                            the polygon's drivers (cultivation convenience)
==========================  ===========================================================

Each factor of each candidate is ``"pass"``, ``"fail"`` or ``"not evaluated"``. A factor
is not evaluated for every candidate when its layer is missing (``None``), its column is
missing from the layer, or (convenience) the rules file holds no rules; and for single
candidates when the layer holds no data there (raster nodata, no soil unit). A candidate
is *reclaimable* when no factor fails; how many were decided with some factor not
evaluated is reported beside (:func:`reserve_headline`), never hidden.

"or" factors (water, soil depth) use three-valued (Kleene) logic: pass when either part
passes, fail only when both parts are known to fail, not evaluated otherwise (low
precipitation and no irrigation layer is *not evaluated*, not a fail).

Conventions (decisions, as a careful analyst would make them)
-------------------------------------------------------------
* **Rasters (slope, accumulated temperature, precipitation)**: the mean over the pixels
  whose centres fall inside the polygon, with the pixel under a point on the surface for
  polygons holding no pixel centre. This is the rule of the driver x2 (mean slope) in
  :mod:`karstflow.drivers`, so a forest polygon's slope factor and its x2 agree exactly.
* **Red line: any overlap excludes.** A polygon whose intersection with a zone of an
  excluding kind exceeds ``redline_min_overlap_m2`` fails (the tolerance absorbs
  digitising slivers; shared boundaries do not count). The kinds overlapped are listed in
  ``redline_kinds``.
* **Soil: the dominant unit.** Soil attributes are those of the soil unit covering the
  largest part of the polygon (ties to the first unit in file order), as soil maps give
  one attribute set per unit; the unit is in ``soil_unit``.
* **Irrigation: area share.** A polygon is irrigated when at least
  ``irrigated_min_share`` of its area lies inside irrigation polygons.
* **Convenience**: the rule texts are ``pandas.DataFrame.eval`` expressions over the
  driver columns (``x1_elevation_m`` ... ``x10_area_ha``) computed for the forest polygons
  by :func:`karstflow.drivers.compute_drivers`, the function of the driver stage. A rule
  that holds fails the polygon; where a rule cannot be decided (a driver is NaN) and no
  other rule holds, the factor is not evaluated.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from pyproj import CRS
from rasterio import features

from karstflow.grid import register_rio

log = logging.getLogger(__name__)

__all__ = [
    "FACTORS",
    "FAIL",
    "NOT_EVALUATED",
    "PASS",
    "REDLINE_KINDS",
    "ReserveCriteria",
    "ReserveEvaluation",
    "ReserveInputError",
    "ReserveLayers",
    "config_layers",
    "criteria_from_config",
    "dominant_zone",
    "evaluate_reserve",
    "map_failing_factor",
    "map_reclaimable_by_type",
    "polygon_pixel_mean",
    "reserve_headline",
    "reserve_summary",
    "rules_from_json",
]

PASS, FAIL, NOT_EVALUATED = "pass", "fail", "not evaluated"

#: The factors, in the study's order (the first failing factor is named in this order).
FACTORS: tuple[str, ...] = (
    "redline",
    "slope",
    "accumulated_temperature",
    "water",
    "texture",
    "pollution",
    "salinization",
    "drainage",
    "soil_depth",
    "ph",
    "convenience",
)

#: Red-line kinds of the study (the ecological protection red line and its zones).
REDLINE_KINDS: tuple[str, ...] = (
    "nature_reserve",
    "park",
    "drinking_water_source",
    "fragile_zone",
    "geohazard_zone",
    "flood_storage",
)

#: Soil columns each soil factor reads (the soil layer's contract).
SOIL_COLUMNS: dict[str, tuple[str, ...]] = {
    "texture": ("texture",),
    "pollution": ("polluted",),
    "salinization": ("salinization",),
    "drainage": ("drainage",),
    "soil_depth": ("depth_cm", "weatherable_bedrock"),
    "ph": ("ph",),
}


class ReserveInputError(ValueError):
    """Input layers or criteria that do not allow the evaluation; the message names the layer."""


@dataclass(frozen=True)
class ReserveCriteria:
    """Thresholds of the factors; defaults are the study's (see the config schema, key reserve).

    ``factors_off`` lists factors the user chose not to evaluate (their layer is set to
    null in the config); they are reported as not evaluated.
    """

    redline_kinds: Mapping[str, bool] = field(default_factory=lambda: {k: True for k in REDLINE_KINDS})
    redline_min_overlap_m2: float = 1.0
    slope_max_deg: float = 25.0
    accumulated_temperature_min_degc_day: float = 1800.0
    precipitation_min_mm: float = 400.0
    irrigated_min_share: float = 0.5
    textures_allowed: Sequence[str] = ("loam", "clay", "sand")
    salinization_levels: Sequence[str] = ("none", "light", "moderate", "severe")
    salinization_max_level: str = "moderate"
    soil_depth_min_cm: float = 30.0
    ph_min_exclusive: float = 4.0
    ph_max_exclusive: float = 9.5

    def __post_init__(self) -> None:
        if self.salinization_max_level not in self.salinization_levels:
            raise ReserveInputError(
                f"salinization_max_level: expected one of {list(self.salinization_levels)}, "
                f"found {self.salinization_max_level!r}"
            )
        if not self.ph_min_exclusive < self.ph_max_exclusive:
            raise ReserveInputError(
                f"pH window: expected min < max, found {self.ph_min_exclusive} .. {self.ph_max_exclusive}"
            )
        if not 0 < self.irrigated_min_share <= 1:
            raise ReserveInputError(
                f"irrigated_min_share: expected a share in (0, 1], found {self.irrigated_min_share}"
            )
        if self.redline_min_overlap_m2 < 0:
            raise ReserveInputError(f"redline_min_overlap_m2: expected >= 0, found {self.redline_min_overlap_m2}")


@dataclass
class ReserveLayers:
    """The layers of the evaluation; ``None`` marks a missing layer (its factors: not evaluated).

    ``names`` maps a layer to the file (or description) it came from, for messages.
    ``drivers`` is one row per candidate in candidate order (from
    :func:`karstflow.drivers.compute_drivers`); ``rules`` the rule texts (an empty list:
    the rules file holds no rules).
    """

    redline: gpd.GeoDataFrame | None = None
    slope_deg: xr.DataArray | None = None
    accumulated_temperature: xr.DataArray | None = None
    precipitation: xr.DataArray | None = None
    irrigation: gpd.GeoDataFrame | None = None
    soil: gpd.GeoDataFrame | None = None
    rules: Sequence[str] | None = None
    drivers: pd.DataFrame | None = None
    names: Mapping[str, str] = field(default_factory=dict)

    def name(self, layer: str) -> str:
        return self.names.get(layer, layer)


@dataclass
class ReserveEvaluation:
    """Candidates with one column per factor, and why factors went unevaluated."""

    candidates: gpd.GeoDataFrame
    not_evaluated: dict[str, str]


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _some(values: Any, k: int = 5) -> str:
    vals = list(values)
    head = ", ".join(str(v) for v in vals[:k])
    return head + (f", ... ({len(vals)} in all)" if len(vals) > k else "")


def _same_crs(name: str, crs: Any, target: Any) -> None:
    if crs is None or CRS.from_user_input(crs) != CRS.from_user_input(target):
        raise ReserveInputError(f"{name}: expected the candidates' CRS ({target}), found {crs}")


def _overlap_areas(a: np.ndarray, b: np.ndarray) -> pd.DataFrame:
    """Intersection area (m2) of every overlapping (a, b) pair: columns ia, ib, area."""
    if len(a) == 0 or len(b) == 0:
        return pd.DataFrame({"ia": np.array([], int), "ib": np.array([], int), "area": np.array([], float)})
    tree = shapely.STRtree(b)
    ia, ib = tree.query(a, predicate="intersects")
    area = shapely.area(shapely.intersection(a[ia], b[ib]))
    df = pd.DataFrame({"ia": ia, "ib": ib, "area": area})
    return df[df["area"] > 0].reset_index(drop=True)


def _as_bool(values: pd.Series, what: str) -> np.ndarray:
    """Booleans of a yes/no column as float (1.0 true, 0.0 false, NaN unknown)."""
    true = {"true", "yes", "y", "1", "t"}
    false = {"false", "no", "n", "0", "f"}
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values.to_numpy(dtype=object)):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        if isinstance(v, bool | np.bool_):
            out[i] = float(v)
        elif isinstance(v, int | np.integer | float | np.floating) and v in (0, 1):
            out[i] = float(v)
        elif isinstance(v, str) and v.strip().lower() in true | false:
            out[i] = float(v.strip().lower() in true)
        else:
            raise ReserveInputError(f"{what}: expected yes/no values (true/false, 1/0), found {v!r}")
    return out


def _text(values: pd.Series) -> list[str | None]:
    """Lower-case, stripped text of a categorical column; None where missing."""
    return [
        None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v).strip().lower()
        for v in values.to_numpy(dtype=object)
    ]


def _numeric(values: pd.Series, what: str) -> np.ndarray:
    try:
        return pd.to_numeric(values, errors="raise").to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ReserveInputError(f"{what}: expected numbers, found {err}") from err


def _kleene_or(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Three-valued OR of factor results."""
    out = np.full(a.shape, NOT_EVALUATED, dtype=object)
    out[(a == FAIL) & (b == FAIL)] = FAIL
    out[(a == PASS) | (b == PASS)] = PASS
    return out


def _threshold(values: np.ndarray, passes: np.ndarray) -> np.ndarray:
    """pass/fail from a comparison, not evaluated where the value is NaN."""
    out = np.where(passes, PASS, FAIL).astype(object)
    out[~np.isfinite(values)] = NOT_EVALUATED
    return out


def polygon_pixel_mean(polygons: gpd.GeoSeries, raster: xr.DataArray, *, name: str = "raster") -> np.ndarray:
    """Mean of ``raster`` over each polygon: pixels whose centres fall inside it.

    A polygon holding no pixel centre takes the pixel under a point on its surface (the
    rule of driver x2 in :mod:`karstflow.drivers`). NaN where the polygon covers only
    nodata or lies outside the raster. Where polygons overlap, a pixel goes to the later one.
    """
    register_rio()

    _same_crs(name, raster.rio.crs, polygons.crs)
    n = len(polygons)
    out = np.full(n, np.nan)
    if n == 0:
        return out
    shape = (raster.sizes["y"], raster.sizes["x"])
    transform = raster.rio.transform()
    geoms = np.asarray(polygons.values, dtype=object)
    zone = features.rasterize(
        ((g, i + 1) for i, g in enumerate(geoms)), out_shape=shape, transform=transform, fill=0, dtype="int32"
    ).ravel()
    values = np.asarray(raster.values, dtype=np.float64).ravel()
    ok = (zone > 0) & np.isfinite(values)
    total = np.bincount(zone[ok], weights=values[ok], minlength=n + 1)[1:]
    count = np.bincount(zone[ok], minlength=n + 1)[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    n_px = np.bincount(zone, minlength=n + 1)[1:]
    empty = np.flatnonzero(n_px == 0)
    if len(empty):
        pts = shapely.get_coordinates(shapely.point_on_surface(geoms[empty]))
        col, row = (~transform) @ (pts[:, 0], pts[:, 1])
        row = np.floor(row).astype(np.int64)
        col = np.floor(col).astype(np.int64)
        inside = (row >= 0) & (row < shape[0]) & (col >= 0) & (col < shape[1])
        out[empty[inside]] = values[row[inside] * shape[1] + col[inside]]
    return out


def dominant_zone(polygons: gpd.GeoSeries, zones: gpd.GeoDataFrame, column: str, *, name: str = "zones") -> np.ndarray:
    """``column`` of the zone covering the largest part of each polygon (None: no zone).

    Ties go to the first zone in file order. Used for the township of a candidate when the
    forest layer does not carry one.
    """
    _same_crs(name, zones.crs, polygons.crs)
    if column not in zones.columns:
        raise ReserveInputError(f"{name}: expected a column {column!r}, found {list(zones.columns)}")
    ov = _overlap_areas(np.asarray(polygons.values, dtype=object), np.asarray(zones.geometry.values, dtype=object))
    ov = ov.sort_values(["ia", "area", "ib"], ascending=[True, False, True]).drop_duplicates("ia")
    out = np.full(len(polygons), None, dtype=object)
    out[ov["ia"].to_numpy()] = zones[column].to_numpy(dtype=object)[ov["ib"].to_numpy()]
    return out


# --------------------------------------------------------------------------------------
# the factors
# --------------------------------------------------------------------------------------


def _redline(cand: gpd.GeoDataFrame, layers: ReserveLayers, crit: ReserveCriteria) -> tuple[np.ndarray, list[str]]:
    zones = layers.redline
    assert zones is not None
    name = layers.name("redline")
    _same_crs(name, zones.crs, cand.crs)
    if "kind" not in zones.columns:
        raise ReserveInputError(
            f"{name}: expected a column 'kind' (one of {list(crit.redline_kinds)}), found {list(zones.columns)}"
        )
    kinds = zones["kind"].astype(str).str.strip().to_numpy()
    unknown = sorted(set(kinds) - set(crit.redline_kinds))
    if unknown:
        raise ReserveInputError(
            f"{name}: red-line kind(s) {unknown} are not configured; expected kinds {sorted(crit.redline_kinds)} "
            "(config key reserve.redline.kinds: kind -> whether it excludes)"
        )
    absent = [k for k, excl in crit.redline_kinds.items() if excl and k not in set(kinds)]
    if absent:
        log.warning("reserve: %s holds no zone of kind(s) %s; none there to exclude", name, ", ".join(absent))
    ov = _overlap_areas(np.asarray(cand.geometry.values), np.asarray(zones.geometry.values))
    ov = ov[ov["area"] > crit.redline_min_overlap_m2]
    ov = ov.assign(kind=kinds[ov["ib"].to_numpy()])
    excl = ov[ov["kind"].map(lambda k: bool(crit.redline_kinds[k]))]
    result = np.full(len(cand), PASS, dtype=object)
    result[np.unique(excl["ia"].to_numpy())] = FAIL
    found = [""] * len(cand)
    for ia, grp in ov.groupby("ia"):
        found[int(cast(int, ia))] = ";".join(sorted(set(grp["kind"])))
    return result, found


def _soil_units(cand: gpd.GeoDataFrame, soil: gpd.GeoDataFrame, name: str) -> np.ndarray:
    """Row position of the dominant soil unit of each candidate (-1: none)."""
    _same_crs(name, soil.crs, cand.crs)
    ov = _overlap_areas(np.asarray(cand.geometry.values), np.asarray(soil.geometry.values))
    ov = ov.sort_values(["ia", "area", "ib"], ascending=[True, False, True]).drop_duplicates("ia")
    unit = np.full(len(cand), -1, dtype=np.int64)
    unit[ov["ia"].to_numpy()] = ov["ib"].to_numpy()
    return unit


def _soil_factors(
    cand: gpd.GeoDataFrame, layers: ReserveLayers, crit: ReserveCriteria, factors: Sequence[str], notes: dict[str, str]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    soil = layers.soil
    assert soil is not None
    name = layers.name("soil")
    unit = _soil_units(cand, soil, name)
    has = unit >= 0
    if (~has).any():
        log.warning(
            "reserve: %d candidate(s) overlap no soil unit of %s; their soil factors are not evaluated",
            int((~has).sum()),
            name,
        )

    def column(col: str) -> pd.Series:
        vals = soil[col].reset_index(drop=True)
        picked = vals.reindex(np.where(has, unit, -1)).reset_index(drop=True)
        picked[~has] = None
        return picked

    out: dict[str, np.ndarray] = {}
    for factor in factors:
        needed = SOIL_COLUMNS[factor]
        primary = needed[0]
        if primary not in soil.columns:
            notes[factor] = f"{name} has no column {primary!r}"
            continue
        vals = column(primary)
        if factor == "texture":
            text = _text(vals)
            allowed = {t.lower() for t in crit.textures_allowed}
            res = np.array([NOT_EVALUATED if t is None else PASS if t in allowed else FAIL for t in text], dtype=object)
        elif factor in ("pollution", "drainage"):
            b = _as_bool(vals, f"{name} column {primary!r}")
            good = (b == 0) if factor == "pollution" else (b == 1)
            res = _threshold(b, good)
        elif factor == "salinization":
            levels = [lv.lower() for lv in crit.salinization_levels]
            text = _text(vals)
            unknown = sorted({t for t in text if t is not None} - set(levels))
            if unknown:
                raise ReserveInputError(
                    f"{name} column 'salinization': level(s) {unknown} are not among the configured levels "
                    f"{levels} (config key reserve.salinization.levels)"
                )
            rank = np.array([np.nan if t is None else float(levels.index(t)) for t in text])
            res = _threshold(rank, rank <= levels.index(crit.salinization_max_level.lower()))
        elif factor == "soil_depth":
            depth = _numeric(vals, f"{name} column 'depth_cm'")
            res = _threshold(depth, depth >= crit.soil_depth_min_cm)
            if "weatherable_bedrock" in soil.columns:
                b = _as_bool(column("weatherable_bedrock"), f"{name} column 'weatherable_bedrock'")
                res = _kleene_or(res, _threshold(b, b == 1))
            else:
                log.warning(
                    "reserve: %s has no column 'weatherable_bedrock'; shallow soil cannot pass on weatherable bedrock",
                    name,
                )
                res = _kleene_or(res, np.full(len(cand), NOT_EVALUATED, dtype=object))
        elif factor == "ph":
            ph = _numeric(vals, f"{name} column 'ph'")
            res = _threshold(ph, (ph > crit.ph_min_exclusive) & (ph < crit.ph_max_exclusive))
        else:  # pragma: no cover - SOIL_COLUMNS and this dispatch list the same factors
            raise AssertionError(factor)
        res[~has] = NOT_EVALUATED
        out[factor] = res
    return out, unit


def _convenience(cand: gpd.GeoDataFrame, layers: ReserveLayers) -> tuple[np.ndarray, list[str]]:
    """Fail where any rule holds (:func:`karstflow.conditions.rule_mask`, the model stage's
    reading of a rule); not evaluated where no rule holds but one cannot be decided."""
    from karstflow.conditions import RuleError, rule_mask, rule_variables

    rules = list(layers.rules or [])
    drivers = layers.drivers
    name = layers.name("convenience_rules")
    if drivers is None:
        raise ReserveInputError(f"{name}: the convenience rules need the drivers of the candidates; none were given")
    if len(drivers) != len(cand):
        raise ReserveInputError(f"drivers: expected one row per candidate ({len(cand)}), found {len(drivers)}")
    drivers = drivers.reset_index(drop=True)
    holds = np.zeros(len(cand), dtype=bool)
    unknown = np.zeros(len(cand), dtype=bool)
    first_rule = [""] * len(cand)
    for rule in rules:
        try:
            variables = rule_variables(rule, drivers.columns)
            value = rule_mask(drivers, rule)
        except RuleError as err:
            raise ReserveInputError(f"{name}: {err}") from err
        # a comparison with a missing driver is False in pandas: such a rule is undecided
        undecided = drivers[variables].isna().any(axis=1).to_numpy()
        for i in np.flatnonzero(value & ~holds):
            first_rule[i] = rule
        holds |= value
        unknown |= undecided & ~value
    result = np.where(holds, FAIL, PASS).astype(object)
    result[~holds & unknown] = NOT_EVALUATED
    return result, first_rule


# --------------------------------------------------------------------------------------
# the evaluation
# --------------------------------------------------------------------------------------


def evaluate_reserve(
    candidates: gpd.GeoDataFrame,
    layers: ReserveLayers,
    criteria: ReserveCriteria = ReserveCriteria(),
    *,
    id_column: str = "forest_id",
    skip: Mapping[str, str] | None = None,
) -> ReserveEvaluation:
    """Evaluate every candidate polygon against every factor (see the module notes).

    Parameters
    ----------
    candidates
        Forest polygons in a projected CRS (metres) with ``id_column``; other columns
        (forest_type, township, carbon_mg_ha, ...) are kept.
    layers
        The factor layers; ``None`` for a missing layer.
    criteria
        Thresholds.
    skip
        Factors not to evaluate, with the reason (e.g. their layer is switched off in the
        config); they are reported as not evaluated.

    Returns
    -------
    ReserveEvaluation
        ``candidates``: the input rows with ``area_ha``, one column per factor in
        :data:`FACTORS` (pass / fail / not evaluated), the values behind them
        (``slope_mean_deg``, ``accumulated_temperature_degc_day``, ``precipitation_mm``,
        ``irrigated_share``, ``soil_unit``, ``redline_kinds``, ``convenience_rule``),
        ``first_failing_factor`` (empty when none fails), ``not_evaluated_factors``
        (";"-joined), ``n_not_evaluated`` and ``reclaimable`` (1 when no factor fails).
        ``not_evaluated``: factor -> why it was not evaluated for any candidate.
    """
    if not isinstance(candidates, gpd.GeoDataFrame):
        raise ReserveInputError(f"candidates: expected a GeoDataFrame, found {type(candidates).__name__}")
    if id_column not in candidates.columns:
        raise ReserveInputError(
            f"candidates: expected an identifier column {id_column!r}, found {list(candidates.columns)}"
        )
    if candidates.crs is None or not CRS.from_user_input(candidates.crs).is_projected:
        raise ReserveInputError(f"candidates: expected a projected CRS in metres, found {candidates.crs}")
    if candidates[id_column].duplicated().any():
        raise ReserveInputError(
            f"candidates: {id_column} must be unique, found duplicates "
            f"{_some(candidates.loc[candidates[id_column].duplicated(), id_column])}"
        )
    bad = candidates.geometry.isna() | candidates.geometry.is_empty
    if bad.any():
        raise ReserveInputError(
            f"candidates: {int(bad.sum())} empty geometries ({id_column} {_some(candidates.loc[bad, id_column])})"
        )

    cand = candidates.reset_index(drop=True).copy()
    n = len(cand)
    cand["area_ha"] = shapely.area(cand.geometry.values) / 1e4
    results: dict[str, np.ndarray] = {}
    notes: dict[str, str] = {}

    def missing(factor: str, reason: str) -> None:
        notes[factor] = reason

    # red line
    cand["redline_kinds"] = ""
    if layers.redline is None:
        missing("redline", f"no red-line layer ({layers.name('redline')})")
    else:
        results["redline"], cand["redline_kinds"] = _redline(cand, layers, criteria)

    # rasters
    for factor, layer, col, _attr in (
        ("slope", "slope_deg", "slope_mean_deg", None),
        ("accumulated_temperature", "accumulated_temperature", "accumulated_temperature_degc_day", None),
        ("water", "precipitation", "precipitation_mm", None),
    ):
        da = getattr(layers, layer)
        cand[col] = np.full(n, np.nan) if da is None else polygon_pixel_mean(cand.geometry, da, name=layers.name(layer))
        if da is not None:
            nodata = int(np.isnan(cand[col]).sum())
            if nodata:
                log.warning(
                    "reserve: %d candidate(s) hold no valid pixel of %s; %s is not evaluated for them",
                    nodata,
                    layers.name(layer),
                    factor,
                )
    v = cand["slope_mean_deg"].to_numpy()
    if layers.slope_deg is None:
        missing("slope", f"no slope raster ({layers.name('slope_deg')})")
    else:
        results["slope"] = _threshold(v, v < criteria.slope_max_deg)
    v = cand["accumulated_temperature_degc_day"].to_numpy()
    if layers.accumulated_temperature is None:
        missing(
            "accumulated_temperature", f"no accumulated temperature raster ({layers.name('accumulated_temperature')})"
        )
    else:
        results["accumulated_temperature"] = _threshold(v, v >= criteria.accumulated_temperature_min_degc_day)

    # water: precipitation or irrigation
    cand["irrigated_share"] = np.nan
    precip = np.full(n, NOT_EVALUATED, dtype=object)
    irrigated = np.full(n, NOT_EVALUATED, dtype=object)
    if layers.precipitation is not None:
        v = cand["precipitation_mm"].to_numpy()
        precip = _threshold(v, v >= criteria.precipitation_min_mm)
    if layers.irrigation is not None:
        zones = layers.irrigation
        _same_crs(layers.name("irrigation"), zones.crs, cand.crs)
        # dissolve first: overlapping irrigation zones must not count twice
        union = shapely.union_all(np.asarray(zones.geometry.values)) if len(zones) else shapely.Polygon()
        covered = shapely.area(shapely.intersection(np.asarray(cand.geometry.values), union))
        share = covered / np.maximum(shapely.area(cand.geometry.values), 1e-12)
        cand["irrigated_share"] = share
        irrigated = np.where(share >= criteria.irrigated_min_share, PASS, FAIL).astype(object)
    if layers.precipitation is None and layers.irrigation is None:
        missing(
            "water",
            f"no precipitation raster ({layers.name('precipitation')}) and no irrigation layer "
            f"({layers.name('irrigation')})",
        )
    else:
        if layers.precipitation is None:
            log.warning("reserve: no precipitation raster; water passes only where irrigated, else not evaluated")
        if layers.irrigation is None:
            log.warning(
                "reserve: no irrigation layer; water passes only where precipitation suffices, else not evaluated"
            )
        results["water"] = _kleene_or(precip, irrigated)

    # soil
    soil_factors = list(SOIL_COLUMNS)
    cand["soil_unit"] = -1
    if layers.soil is None:
        for f in soil_factors:
            missing(f, f"no soil layer ({layers.name('soil')})")
    else:
        soil_results, unit = _soil_factors(cand, layers, criteria, soil_factors, notes)
        results.update(soil_results)
        soil = layers.soil.reset_index(drop=True)
        ids = soil["soil_id"].to_numpy() if "soil_id" in soil.columns else np.arange(len(soil))
        cand["soil_unit"] = np.where(unit >= 0, ids[np.maximum(unit, 0)], -1)

    # convenience
    cand["convenience_rule"] = ""
    if layers.rules is None:
        missing("convenience", f"no convenience rules ({layers.name('convenience_rules')})")
    elif len(layers.rules) == 0:
        missing("convenience", f"{layers.name('convenience_rules')} holds no rules")
    else:
        results["convenience"], cand["convenience_rule"] = _convenience(cand, layers)

    for factor, reason in (skip or {}).items():
        if factor not in FACTORS:
            raise ReserveInputError(f"skip: unknown factor {factor!r}; expected one of {list(FACTORS)}")
        results.pop(factor, None)
        notes[factor] = reason

    table = np.empty((n, len(FACTORS)), dtype=object)
    for j, factor in enumerate(FACTORS):
        table[:, j] = results.get(factor, np.full(n, NOT_EVALUATED, dtype=object))
        cand[factor] = table[:, j]
    fails = table == FAIL
    first = np.where(fails.any(axis=1), np.array(FACTORS, dtype=object)[np.argmax(fails, axis=1)], "")
    cand["first_failing_factor"] = first
    ne = table == NOT_EVALUATED
    cand["n_not_evaluated"] = ne.sum(axis=1).astype(np.int64)
    cand["not_evaluated_factors"] = [";".join(np.array(FACTORS)[row]) for row in ne]
    cand["reclaimable"] = (~fails.any(axis=1)).astype(np.int64)
    for factor, reason in notes.items():
        log.warning("reserve: factor %s is not evaluated: %s", factor, reason)
    log.info(
        "reserve: %d of %d candidates reclaimable (%d decided with some factor not evaluated)",
        int(cand["reclaimable"].sum()), n, int(((cand["reclaimable"] == 1) & (cand["n_not_evaluated"] > 0)).sum()),
    )
    return ReserveEvaluation(
        candidates=gpd.GeoDataFrame(cand, geometry="geometry", crs=candidates.crs), not_evaluated=notes
    )


# --------------------------------------------------------------------------------------
# summaries
# --------------------------------------------------------------------------------------


def reserve_summary(evaluated: pd.DataFrame, groupings: Sequence[str] = ("forest_type", "township")) -> pd.DataFrame:
    """Candidates and reclaimable forest by forest type and by township (and in all).

    Columns: ``grouping`` (forest_type, township or all), ``group``, ``candidates``,
    ``candidate_area_ha``, ``reclaimable``, ``reclaimable_area_ha``,
    ``reclaimable_share_of_group`` (reclaimable area / candidate area of the group),
    ``share_of_reclaimable`` (group's reclaimable area / all reclaimable area),
    ``reclaimable_with_not_evaluated`` (reclaimable candidates decided with some factor
    not evaluated).
    """
    df = pd.DataFrame(
        {
            "area_ha": evaluated["area_ha"].to_numpy(dtype=np.float64),
            "reclaimable": evaluated["reclaimable"].to_numpy() == 1,
            "with_ne": (evaluated["reclaimable"].to_numpy() == 1) & (evaluated["n_not_evaluated"].to_numpy() > 0),
            "all": "all",
            **{g: evaluated[g].astype(str).to_numpy() for g in groupings if g in evaluated.columns},
        }
    )
    total_recl = float(df.loc[df["reclaimable"], "area_ha"].sum())
    rows = []
    for grouping in [*[g for g in groupings if g in df.columns], "all"]:
        for group, sub in df.groupby(grouping, sort=True):
            cand_area = float(sub["area_ha"].sum())
            recl_area = float(sub.loc[sub["reclaimable"], "area_ha"].sum())
            rows.append(
                {
                    "grouping": grouping,
                    "group": group,
                    "candidates": len(sub),
                    "candidate_area_ha": cand_area,
                    "reclaimable": int(sub["reclaimable"].sum()),
                    "reclaimable_area_ha": recl_area,
                    "reclaimable_share_of_group": recl_area / cand_area if cand_area > 0 else np.nan,
                    "share_of_reclaimable": recl_area / total_recl if total_recl > 0 else np.nan,
                    "reclaimable_with_not_evaluated": int(sub["with_ne"].sum()),
                }
            )
    if not rows:
        rows.append(
            {"grouping": "all", "group": "all", "candidates": 0, "candidate_area_ha": 0.0, "reclaimable": 0,
             "reclaimable_area_ha": 0.0, "reclaimable_share_of_group": np.nan, "share_of_reclaimable": np.nan,
             "reclaimable_with_not_evaluated": 0}
        )
    return pd.DataFrame(rows)


def reserve_headline(evaluation: ReserveEvaluation) -> dict[str, Any]:
    """Headline figures of the evaluation (reserve.json)."""
    c = evaluation.candidates
    area = c["area_ha"].to_numpy(dtype=np.float64)
    recl = c["reclaimable"].to_numpy() == 1
    with_ne = recl & (c["n_not_evaluated"].to_numpy() > 0)
    by_type = {}
    if "forest_type" in c.columns:
        for t, sub in c.groupby("forest_type", sort=True):
            by_type[str(t)] = float(sub.loc[sub["reclaimable"] == 1, "area_ha"].sum())
    first = c["first_failing_factor"].to_numpy()
    return {
        "candidates": int(len(c)),
        "candidate_area_ha": float(area.sum()),
        "reclaimable": int(recl.sum()),
        "reclaimable_area_ha": float(area[recl].sum()),
        "reclaimable_share": float(area[recl].sum() / area.sum()) if area.sum() > 0 else None,
        "reclaimable_area_ha_by_forest_type": by_type,
        "reclaimable_with_not_evaluated": int(with_ne.sum()),
        "reclaimable_with_not_evaluated_area_ha": float(area[with_ne].sum()),
        "first_failing_factor_counts": {f: int((first == f).sum()) for f in FACTORS},
        "first_failing_factor_area_ha": {f: float(area[first == f].sum()) for f in FACTORS},
        "failing_counts": {f: int((c[f].to_numpy() == FAIL).sum()) for f in FACTORS},
        "not_evaluated_counts": {f: int((c[f].to_numpy() == NOT_EVALUATED).sum()) for f in FACTORS},
        "factors_not_evaluated": dict(evaluation.not_evaluated),
    }


# --------------------------------------------------------------------------------------
# configuration and maps
# --------------------------------------------------------------------------------------


def criteria_from_config(cfg: Mapping[str, Any]) -> tuple[ReserveCriteria, dict[str, str]]:
    """Criteria and switched-off factors from the config section ``reserve`` (schema defaults filled)."""
    ph_low, ph_high = cfg["ph"]["window"]
    criteria = ReserveCriteria(
        redline_kinds=dict(cfg["redline"]["kinds"]),
        redline_min_overlap_m2=float(cfg["redline"]["min_overlap_m2"]),
        slope_max_deg=float(cfg["slope"]["max_deg"]),
        accumulated_temperature_min_degc_day=float(cfg["accumulated_temperature"]["min_degc_day"]),
        precipitation_min_mm=float(cfg["water"]["min_precipitation_mm"]),
        irrigated_min_share=float(cfg["water"]["irrigated_min_share"]),
        textures_allowed=tuple(cfg["texture"]["allowed"]),
        salinization_levels=tuple(cfg["salinization"]["levels"]),
        salinization_max_level=str(cfg["salinization"]["max_level"]),
        soil_depth_min_cm=float(cfg["soil_depth"]["min_cm"]),
        ph_min_exclusive=float(ph_low),
        ph_max_exclusive=float(ph_high),
    )
    skip = {}
    for factor in FACTORS:
        section = cfg[factor]
        keys = ("precipitation_layer", "irrigation_layer") if factor == "water" else ("layer",)
        if all(section[k] is None for k in keys):
            skip[factor] = f"layer switched off (config key reserve.{factor}.{' and '.join(keys)}: null)"
    return criteria, skip


def rules_from_json(obj: Any, name: str = "convenience_rules.json") -> list[str]:
    """The rule texts of a convenience_rules.json document (``{"source", "rules": [{"rule": ...}]}``)."""
    if not isinstance(obj, Mapping) or not isinstance(obj.get("rules"), list):
        found = sorted(obj) if isinstance(obj, Mapping) else type(obj).__name__
        raise ReserveInputError(f"{name}: expected an object with a list 'rules' of {{'rule': ...}}, found {found}")
    rules = []
    for i, entry in enumerate(obj["rules"]):
        text = entry.get("rule") if isinstance(entry, Mapping) else None
        if not isinstance(text, str) or not text.strip():
            raise ReserveInputError(
                f"{name}: rules[{i}] has no rule text (expected {{'rule': 'x1_elevation_m > 130 and ...'}}), found "
                f"{entry!r}"
            )
        rules.append(text.strip())
    return rules


def config_layers(cfg: Mapping[str, Any]) -> set[str]:
    """Names of the layers the config's factors read (null layers left out)."""
    names = set()
    for factor in FACTORS:
        for key, value in cfg[factor].items():
            if key.endswith("layer") and value is not None:
                names.add(value)
    return names


def _factor_colours() -> dict[str, Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return {f: cmap(i / 20) for i, f in enumerate(FACTORS)}


def map_reclaimable_by_type(
    evaluated: gpd.GeoDataFrame, bounds: Sequence[float], type_colours: Mapping[str, Any], *, title: str | None = None
):
    """Map: reclaimable forest by forest type, the other candidates in grey."""
    from karstflow.plotting import finish_map, map_figure

    fig, ax = map_figure(bounds, title=title or "Reclaimable forest land by forest type")
    recl = evaluated[evaluated["reclaimable"] == 1]
    rest = evaluated[evaluated["reclaimable"] != 1]
    if len(rest):
        rest.plot(ax=ax, color="0.85", edgecolor="0.6", linewidth=0.2)
    entries: dict[str, Any] = {}
    for ftype, colour in type_colours.items():
        sub = recl[recl["forest_type"] == ftype]
        area = float(sub["area_ha"].sum())
        if len(sub):
            sub.plot(ax=ax, color=colour, edgecolor="black", linewidth=0.3)
        entries[f"{ftype} ({area:.1f} ha)"] = colour
    entries["not reclaimable"] = "0.85"
    finish_map(ax, entries, legend_title="reclaimable forest")
    return fig


def map_failing_factor(evaluated: gpd.GeoDataFrame, bounds: Sequence[float], *, title: str | None = None):
    """Map: candidates coloured by their first failing factor (reclaimable ones hatched green)."""
    from karstflow.plotting import finish_map, map_figure

    fig, ax = map_figure(bounds, title=title or "Forest land by first failing factor")
    colours = _factor_colours()
    entries: dict[str, Any] = {}
    first = evaluated["first_failing_factor"].fillna("").astype(str)
    for factor in FACTORS:
        sub = evaluated[first == factor]
        if len(sub):
            sub.plot(ax=ax, color=colours[factor], edgecolor="0.3", linewidth=0.2)
            entries[f"{factor} ({len(sub)})"] = colours[factor]
    ok = evaluated[first == ""]
    if len(ok):
        ok.plot(ax=ax, facecolor="white", edgecolor="darkgreen", hatch="///", linewidth=0.4)
    entries[f"none: reclaimable ({len(ok)})"] = {"facecolor": "white", "edgecolor": "darkgreen", "hatch": "///"}
    finish_map(ax, entries, legend_title="first failing factor")
    return fig

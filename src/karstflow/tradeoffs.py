"""Ecosystem-service summaries, trade-offs and synergies, and service-improvement zones.

Pure functions over numpy arrays on one region grid (every map the same shape) and
pandas/geopandas objects; no paths.

* :func:`service_totals`: totals and means of each service per year (``services.csv``)
  and :func:`service_changes`, their change between years.
* :func:`tradeoff_matrix`: Spearman rank correlations of the per-pixel *changes* of
  every pair of services (the usual trade-off / synergy analysis of karst ecosystem
  services): a significant positive rho is a synergy (the services rose or fell
  together), a significant negative rho a trade-off. Pixels are not independent
  (spatial autocorrelation), so the p-values are optimistic: read rho first.
* :func:`improvement_zones`: where services are low and could be raised. Each service
  of the last year is turned into its percentile rank among the region's pixels
  (0 worst, 1 best), the composite score is their weighted mean over the services the
  pixel has; "low" is a composite score at or below the ``low_quantile`` of the region;
  "improvable" is land whose cover restoration can raise services (configured codes,
  by default sparse forest, shrub, grassland and bare rock, plus cropland on slopes of
  25 degrees and more, which China's Grain for Green programme converts). Zones:

  ====  ==============================================================
  0     not low
  1     low, not improvable by land cover (water, built-up, forest, gentle cropland)
  2     improvement zone: low and improvable
  3     first-priority improvement zone: low, improvable, and at least
        ``decline_share`` of its services fell between the first and last year
  ====  ==============================================================

* :func:`township_summary`: the same per township (area in improvement zones, mean
  composite score and services), ranked by the share of the township in improvement
  zones.
* :func:`evaluation_scope`: what a region's summary can evaluate. Each service is a stage
  of its own, so a region may have any non-empty subset of the four services, a single
  service year and no slope (no terrain stage). Services absent from ``maps`` have no
  columns in the tables; with one year there are no changes, trade-offs or first-priority
  zones; with one service no trade-offs; without slope the steep-cropland criterion is
  left out of "improvable". The scope records every such omission, with its reason, for
  ``services.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

log = logging.getLogger(__name__)

__all__ = [
    "SERVICES",
    "SERVICE_STAGES",
    "SERVICE_UNITS",
    "TRADEOFF_COLUMNS",
    "ZONE_NAMES",
    "ZONE_NODATA",
    "evaluation_scope",
    "improvement_zones",
    "percentile_rank",
    "service_changes",
    "service_totals",
    "township_ids",
    "township_summary",
    "tradeoff_matrix",
]

#: The four services, in report order.
SERVICES = ("carbon_storage", "soil_retention", "water_yield", "habitat_quality")
#: Per-pixel unit of each service map, and the unit of its regional total (None: no total).
SERVICE_UNITS: dict[str, dict[str, Any]] = {
    "carbon_storage": {"pixel": "Mg C ha-1", "mean_col": "mean_mg_c_ha", "total_col": "total_mg_c", "per": "ha"},
    "soil_retention": {"pixel": "t ha-1 yr-1", "mean_col": "mean_t_ha_yr", "total_col": "total_t_yr", "per": "ha"},
    "water_yield": {"pixel": "mm yr-1", "mean_col": "mean_mm", "total_col": "total_m3", "per": "mm"},
    "habitat_quality": {"pixel": "index 0-1", "mean_col": "mean_index", "total_col": None, "per": None},
}
ZONE_NAMES = {
    0: "not low",
    1: "low, not improvable",
    2: "improvement zone",
    3: "first-priority improvement zone",
}
ZONE_NODATA = 255
#: The workflow stage that maps each service (workflow/rules/services.smk).
SERVICE_STAGES = {
    "carbon_storage": "carbon",
    "soil_retention": "soil_retention",
    "water_yield": "water_yield",
    "habitat_quality": "habitat_quality",
}
#: Columns of :func:`tradeoff_matrix` (also the header of an empty trade-off table).
TRADEOFF_COLUMNS = ("service_a", "service_b", "rho", "p_value", "n_pixels", "relation")

ONE_YEAR = "not evaluated: one service year"
FEWER_THAN_TWO_SERVICES = "not evaluated: fewer than two services"
NO_SLOPE = "not evaluated: no slope (stage terrain does not run for this region)"


def evaluation_scope(services: Sequence[str], years: Sequence[int], *, slope: bool) -> dict[str, Any]:
    """What a services summary evaluates, given the services and years mapped and whether
    a slope map exists; every item ``{"evaluated": bool}`` plus ``"reason"`` when not.

    * ``services``: each of the four :data:`SERVICES` with its ``stage``; an absent one has
      reason "stage <stage> does not run for this region".
    * ``change``: needs two years; ``tradeoffs``: two years and two services (with one
      year the reason is the year, whatever the number of services).
    * ``steep_cropland`` (cropland on steep slopes counts as improvable): needs slope.
    * ``first_priority`` (improvement zones whose services declined): needs two years.
    """
    unknown = sorted(set(services) - set(SERVICES))
    if unknown:
        raise ValueError(f"unknown services {unknown}; known: {list(SERVICES)}")
    if not services:
        raise ValueError("a services summary needs at least one service map")
    if not years:
        raise ValueError("a services summary needs at least one service year")

    def item(reason: str | None) -> dict[str, Any]:
        return {"evaluated": True} if reason is None else {"evaluated": False, "reason": reason}

    one_year = len(set(years)) < 2
    return {
        "services": {
            s: {
                **item(None if s in services else f"stage {SERVICE_STAGES[s]} does not run for this region"),
                "stage": SERVICE_STAGES[s],
            }
            for s in SERVICES
        },
        "change": item(ONE_YEAR if one_year else None),
        "tradeoffs": item(ONE_YEAR if one_year else FEWER_THAN_TWO_SERVICES if len(services) < 2 else None),
        "steep_cropland": item(None if slope else NO_SLOPE),
        "first_priority": item(ONE_YEAR if one_year else None),
    }


def _total(service: str, values: np.ndarray, pixel_area_m2: float) -> float | None:
    per = SERVICE_UNITS[service]["per"]
    v = values[np.isfinite(values)]
    if per == "ha":
        return float(v.sum() * pixel_area_m2 / 1e4)
    if per == "mm":
        return float(v.sum() / 1000.0 * pixel_area_m2)  # mm over the pixel -> m3
    return None


def service_totals(maps: Mapping[int, Mapping[str, np.ndarray]], *, pixel_area_m2: float) -> pd.DataFrame:
    """One row per year: mean (per pixel with data) and total of every service.

    ``maps``: year -> service -> 2-D array in the unit of :data:`SERVICE_UNITS`. Totals
    are Mg C, t yr-1 and m3 yr-1; habitat quality has a mean only. ``*_area_ha`` is the
    area with data.

    Only the services in ``maps`` get columns: a service a region does not map (its stage
    does not run) is left out, not written as empty values (:func:`evaluation_scope`
    records why). Every year must have the same services; one year gives one row.
    """
    if not maps:
        raise ValueError("service totals need at least one year of maps")
    present = [set(m) for m in maps.values()]
    if any(p != present[0] for p in present):
        raise ValueError(f"every year needs the same services, found {[sorted(p) for p in present]}")
    if not present[0] & set(SERVICES):
        raise ValueError(f"service totals need at least one of {list(SERVICES)}, found {sorted(present[0])}")
    rows = []
    for year in sorted(maps):
        row: dict[str, Any] = {"year": int(year)}
        for service in SERVICES:
            if service not in maps[year]:
                continue
            values = np.asarray(maps[year][service], dtype=np.float64)
            unit = SERVICE_UNITS[service]
            finite = np.isfinite(values)
            row[f"{service}_{unit['mean_col']}"] = float(values[finite].mean()) if finite.any() else float("nan")
            if unit["total_col"]:
                row[f"{service}_{unit['total_col']}"] = _total(service, values, pixel_area_m2)
            row[f"{service}_area_ha"] = float(finite.sum() * pixel_area_m2 / 1e4)
        rows.append(row)
    return pd.DataFrame(rows)


def service_changes(totals: pd.DataFrame) -> pd.DataFrame:
    """Change of every figure of :func:`service_totals` between consecutive years, and
    from the first to the last year when there are more than two (absolute and %).

    With one year there is nothing to compare: a table with the columns and no rows.
    """
    years = totals["year"].tolist()
    pairs = list(zip(years[:-1], years[1:], strict=True))
    if len(years) > 2:
        pairs.append((years[0], years[-1]))
    cols = [c for c in totals.columns if c != "year" and not c.endswith("_area_ha")]
    columns = ["from_year", "to_year"] + [f"{c}{suffix}" for c in cols for suffix in ("_change", "_change_pct")]
    by_year = totals.set_index("year")
    rows = []
    for y0, y1 in pairs:
        row: dict[str, Any] = {"from_year": int(y0), "to_year": int(y1)}
        for c in cols:
            a, b = float(by_year[c].loc[y0]), float(by_year[c].loc[y1])
            row[f"{c}_change"] = b - a
            row[f"{c}_change_pct"] = (b - a) / abs(a) * 100.0 if a != 0 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def tradeoff_matrix(changes: Mapping[str, np.ndarray], *, alpha: float = 0.05) -> pd.DataFrame:
    """Spearman rho of the per-pixel changes of every pair of services.

    Uses the pixels where every service has a finite change. One row per pair:
    ``service_a``, ``service_b``, ``rho``, ``p_value``, ``n_pixels``, ``relation``
    (synergy, trade-off, not significant, or not evaluated when a change is constant).
    Raises ``ValueError`` with fewer than two services (a caller without pairs writes an
    empty table with :data:`TRADEOFF_COLUMNS`).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), found {alpha!r}")
    names = [s for s in SERVICES if s in changes] + [s for s in changes if s not in SERVICES]
    if len(names) < 2:
        raise ValueError(f"trade-offs need at least two services, found {names}")
    stack = np.stack([np.asarray(changes[n], dtype=np.float64).ravel() for n in names], axis=1)
    ok = np.isfinite(stack).all(axis=1)
    data = stack[ok]
    rows = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            a, b = data[:, i], data[:, j]
            if data.shape[0] < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
                rho, p = float("nan"), float("nan")
                relation = "not evaluated"
            else:
                res = stats.spearmanr(a, b)
                rho, p = float(res.statistic), float(res.pvalue)
                relation = "not significant" if not p < alpha else ("synergy" if rho > 0 else "trade-off")
            rows.append({"service_a": names[i], "service_b": names[j], "rho": rho, "p_value": p,
                         "n_pixels": int(data.shape[0]), "relation": relation})
    return pd.DataFrame(rows, columns=list(TRADEOFF_COLUMNS))


def percentile_rank(values: np.ndarray) -> np.ndarray:
    """Rank of each finite value among the finite values, scaled to [0, 1] (ties averaged)."""
    v = np.asarray(values, dtype=np.float64)
    out = np.full(v.shape, np.nan)
    finite = np.isfinite(v)
    n = int(finite.sum())
    if n == 1:
        out[finite] = 0.5
    elif n > 1:
        out[finite] = (stats.rankdata(v[finite], method="average") - 1.0) / (n - 1.0)
    return out


def improvement_zones(
    last: Mapping[str, np.ndarray],
    first: Mapping[str, np.ndarray] | None,
    landcover: np.ndarray,
    slope_deg: np.ndarray | None,
    *,
    improvable_codes: Sequence[int],
    steep_cropland_codes: Sequence[int],
    steep_slope_deg: float,
    low_quantile: float,
    decline_share: float,
    weights: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Improvement zones (uint8, codes of :data:`ZONE_NAMES`, 255 nodata) and composite score.

    ``last`` / ``first``: service -> map of the last / first year; ``landcover`` of the
    last year; see the module docstring for the rules. The score uses the services in
    ``last`` (any non-empty subset of :data:`SERVICES`).

    * ``first`` None (one service year): declines are not evaluated, so no pixel is first
      priority (3); low and improvable pixels are improvement zones (2).
    * ``slope_deg`` None (no terrain): the steep-cropland criterion is not evaluated;
      improvable is ``improvable_codes`` only, so cropland counts as not improvable.
    """
    if not 0 < low_quantile < 1:
        raise ValueError(f"low_quantile must be in (0, 1), found {low_quantile!r}")
    if not 0 < decline_share <= 1:
        raise ValueError(f"decline_share must be in (0, 1], found {decline_share!r}")
    services = [s for s in SERVICES if s in last]
    if not services:
        raise ValueError(f"improvement zones need at least one of {list(SERVICES)}, found {sorted(last)}")
    w = {s: float((weights or {}).get(s, 1.0)) for s in services}
    if any(v < 0 for v in w.values()) or sum(w.values()) <= 0:
        raise ValueError(f"service weights must be >= 0 with a positive sum, found {w}")
    ranks = np.stack([percentile_rank(last[s]) for s in services])
    wv = np.array([w[s] for s in services])[:, None, None] * np.isfinite(ranks)
    wsum = wv.sum(axis=0)
    with np.errstate(invalid="ignore"):
        score = np.where(wsum > 0, np.nansum(ranks * wv, axis=0) / np.where(wsum > 0, wsum, 1.0), np.nan)
    lc = np.asarray(landcover)
    valid = np.isfinite(score) & np.isfinite(lc.astype(float))
    zones = np.full(score.shape, ZONE_NODATA, np.uint8)
    if not valid.any():
        return zones, score
    threshold = float(np.quantile(score[valid], low_quantile))
    low = valid & (score <= threshold)
    improvable = np.isin(lc, list(improvable_codes))
    if slope_deg is not None:
        improvable |= np.isin(lc, list(steep_cropland_codes)) & (np.asarray(slope_deg) >= steep_slope_deg)
    declined = np.zeros(score.shape)
    counted = np.zeros(score.shape)
    for s in services:
        if first is not None and s in first:
            d = np.asarray(last[s], float) - np.asarray(first[s], float)
            fin = np.isfinite(d)
            declined += fin & (d < 0)
            counted += fin
    declining = (counted > 0) & (declined >= decline_share * np.maximum(counted, 1))
    zones[valid] = 0
    zones[low & ~improvable] = 1
    zones[low & improvable] = 2
    zones[low & improvable & declining] = 3
    return zones, score


def township_ids(townships: Any, shape: tuple[int, int], transform: Any, id_column: str = "township_id") -> np.ndarray:
    """Township id of every pixel (pixel centre inside the polygon, GDAL's rule); 0 outside."""
    from rasterio import features

    if id_column not in townships.columns:
        raise ValueError(f"townships: no column {id_column!r}; found {list(townships.columns)}")
    ids = townships[id_column].astype(np.int64)
    if (ids <= 0).any() or ids.duplicated().any():
        raise ValueError(f"townships: {id_column} must be unique positive integers")
    shapes = ((g, int(i)) for g, i in zip(townships.geometry, ids, strict=True) if g is not None and not g.is_empty)
    return features.rasterize(shapes, out_shape=shape, transform=transform, fill=0, dtype="int32")


def township_summary(
    ids: np.ndarray,
    townships: pd.DataFrame,
    zones: np.ndarray,
    score: np.ndarray,
    last: Mapping[str, np.ndarray],
    *,
    pixel_area_m2: float,
    id_column: str = "township_id",
    name_column: str = "township",
    first_priority: bool = True,
) -> pd.DataFrame:
    """Per township: area, improvement-zone area and share, mean composite score and
    services (last year), ranked by improvement share (1 = most to improve).

    Service columns only for the services in ``last``. ``first_priority`` False (one
    service year, no declines): ``first_priority_area_ha`` is NaN (not evaluated), not 0.
    """
    px_ha = pixel_area_m2 / 1e4
    rows = []
    for _, t in townships.iterrows():
        tid = int(t[id_column])
        inside = ids == tid
        n = int(inside.sum())
        z = zones[inside]
        row: dict[str, Any] = {id_column: tid}
        if name_column in townships.columns:
            row[name_column] = t[name_column]
        row["area_ha"] = n * px_ha
        row["improvement_zone_area_ha"] = float(np.isin(z, (2, 3)).sum() * px_ha)
        row["first_priority_area_ha"] = float((z == 3).sum() * px_ha) if first_priority else float("nan")
        row["improvement_share"] = float(np.isin(z, (2, 3)).sum() / n) if n else float("nan")
        sc = score[inside]
        row["composite_score_mean"] = float(np.nanmean(sc)) if np.isfinite(sc).any() else float("nan")
        for s in SERVICES:
            if s in last:
                v = np.asarray(last[s], float)[inside]
                row[f"{s}_{SERVICE_UNITS[s]['mean_col']}"] = (
                    float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
                )
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        table["rank"] = table["improvement_share"].rank(ascending=False, method="min", na_option="bottom").astype(int)
        table = table.sort_values(["rank", id_column]).reset_index(drop=True)
    return table

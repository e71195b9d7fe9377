"""Units of the coupling stage: townships and grid cells, and their social and ecological indicators.

The statistics live in :mod:`karstflow.coupling` (coupling coordination degree, Moran's I,
spatial regression, GWR); this module turns the rasters and tables of the earlier stages
into one row per unit (a township or a regular grid cell) that those functions read.
Pure functions over numpy arrays and pandas/geopandas objects; no paths.

* :func:`cell_labels` and :func:`cell_polygons`: a regular grid of square cells of
  ``cell_size_m`` anchored at the region grid's top-left corner; a pixel belongs to the cell
  its centre falls in (the last row and column of cells may be partial).
* :func:`zonal_share`, and :func:`zonal_mean`, :func:`zonal_sum` (karstflow.zonal, shared with the
  drivers): per-unit statistics of a
  raster over a label raster (0 = no unit), NaN-aware.
* :func:`unit_indicators`: the indicator table (population change and rate, rural
  density, NDVI trend, greening share, rocky-desertification change, NPP trend, service
  changes, improvement-zone share) of every unit, with what was not evaluated and why.
* :func:`population_by_area`: a township population table distributed to cells by the
  area each cell shares with each township (when no gridded population is given).
* :func:`add_coupling`: subsystem scores U1 (social) and U2 (ecological), C, T, D, the D
  class and the coupling type of every unit.

Association, not cause: see :mod:`karstflow.coupling`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from karstflow.coupling import (
    COUPLING_TYPES,
    TEN_BANDS,
    coordination_class,
    coupling_coordination,
    coupling_types,
    normalise_scores,
)
from karstflow.zonal import check_label_shape, zonal_mean, zonal_sum

log = logging.getLogger(__name__)

__all__ = [
    "GREENING_CLASSES",
    "INDICATOR_UNITS",
    "add_coupling",
    "cell_labels",
    "cell_polygons",
    "population_by_area",
    "unit_indicators",
    "zonal_mean",
    "zonal_share",
    "zonal_sum",
]

#: Default trend classes (karstflow.trends.TREND_CLASSES) that count as greening in the
#: greening share: significant greening only (1), the share a reader takes for "greened"
#: (config coupling.greening_classes).
GREENING_CLASSES = (1,)
#: Default improvement-zone codes (karstflow.tradeoffs.ZONE_NAMES) of the improvement-zone
#: share: improvement and first-priority improvement zones (config coupling.improvement_codes).
IMPROVEMENT_CODES = (2, 3)

#: Indicator column -> units (the column names of coupling_townships.csv and coupling_cells.gpkg).
INDICATOR_UNITS: dict[str, str] = {
    "area_km2": "km2",
    "population_start": "persons",
    "population_end": "persons",
    "population_change": "persons",
    "population_rate": "fraction of the start population ((end - start) / start)",
    "rural_density_per_km2": "rural residents per km2 (last year)",
    "ndvi_slope_mean": "vegetation index per year (Theil-Sen, mean over the unit)",
    "greening_share": "share of the unit's pixels in significant greening",
    "rd_area_change_ha": "ha (rocky desertification, grade >= rd_min_grade, last minus first year)",
    "rd_grade_shift_mean": "grade steps (last minus first year, mean over the unit)",
    "npp_slope_mean": "g C m-2 yr-1 per year (NPP trend, mean over the unit)",
    "improvement_zone_share": "share of the unit's pixels in (first-priority) improvement zones",
    "slope_mean": "degree (terrain slope, mean over the unit)",
}


# --------------------------------------------------------------------------------------
# cells
# --------------------------------------------------------------------------------------


def cell_labels(shape: tuple[int, int], resolution: float, cell_size_m: float) -> tuple[np.ndarray, int, int]:
    """Cell id (1..n, row-major from the top-left) of every pixel of a grid of ``shape``.

    A pixel belongs to the cell its centre falls in: pixel ``(r, c)`` has its centre at
    ``(c + 0.5) * resolution`` east and ``(r + 0.5) * resolution`` south of the grid's
    top-left corner. Returns ``(labels, n_rows, n_cols)`` of the cell grid.
    """
    if cell_size_m <= 0 or resolution <= 0:
        raise ValueError(f"cell_size_m: expected a positive cell size, found {cell_size_m} (resolution {resolution})")
    if cell_size_m < resolution:
        raise ValueError(
            f"cell_size_m: expected a cell at least one pixel wide ({resolution} m), found {cell_size_m} m"
        )
    h, w = shape
    rows = np.floor((np.arange(h) + 0.5) * resolution / cell_size_m).astype(np.int64)
    cols = np.floor((np.arange(w) + 0.5) * resolution / cell_size_m).astype(np.int64)
    n_rows, n_cols = int(rows[-1]) + 1, int(cols[-1]) + 1
    labels = rows[:, None] * n_cols + cols[None, :] + 1
    return labels.astype(np.int32), n_rows, n_cols


def cell_polygons(
    bounds: tuple[float, float, float, float], cell_size_m: float, n_rows: int, n_cols: int, crs: Any
) -> Any:
    """The cells of :func:`cell_labels` as polygons clipped to the grid ``bounds``
    (``cell_id``, ``cell_row``, ``cell_col``, ``geometry``)."""
    import geopandas as gpd
    import shapely

    xmin, ymin, xmax, ymax = bounds
    ids, rr, cc, geoms = [], [], [], []
    for r in range(n_rows):
        for c in range(n_cols):
            x0, y1 = xmin + c * cell_size_m, ymax - r * cell_size_m
            geoms.append(shapely.box(x0, max(y1 - cell_size_m, ymin), min(x0 + cell_size_m, xmax), y1))
            ids.append(r * n_cols + c + 1)
            rr.append(r)
            cc.append(c)
    return gpd.GeoDataFrame({"cell_id": ids, "cell_row": rr, "cell_col": cc}, geometry=geoms, crs=crs)


# --------------------------------------------------------------------------------------
# zonal statistics
# --------------------------------------------------------------------------------------


def zonal_share(
    values: np.ndarray, labels: np.ndarray, ids: Sequence[int], codes: Sequence[int], nodata: int, what: str = "values"
) -> np.ndarray:
    """Share of a unit's valid pixels (not ``nodata``, not NaN) whose code is in ``codes``."""
    v = np.asarray(values)
    check_label_shape(labels, v, what)
    valid = (v != nodata) & (labels > 0)
    if np.issubdtype(v.dtype, np.floating):
        valid &= np.isfinite(v)
    hit = valid & np.isin(v, list(codes))
    n = int(max(int(labels.max(initial=0)), max(ids, default=0))) + 1
    counts = np.bincount(labels[valid].ravel(), minlength=n)
    hits = np.bincount(labels[hit].ravel(), minlength=n)
    idx = np.asarray(ids, dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts[idx] > 0, hits[idx] / np.maximum(counts[idx], 1), np.nan)


# --------------------------------------------------------------------------------------
# indicators
# --------------------------------------------------------------------------------------


def _not_evaluated(reason: str) -> dict[str, Any]:
    return {"evaluated": False, "reason": reason}


def unit_indicators(
    labels: np.ndarray,
    ids: Sequence[int],
    *,
    pixel_area_m2: float,
    population: tuple[np.ndarray, np.ndarray] | None = None,
    population_table: pd.DataFrame | None = None,
    rural_share: np.ndarray | None = None,
    trend_slope: np.ndarray | None = None,
    trend_class: np.ndarray | None = None,
    trend_nodata: int = 255,
    greening_classes: Sequence[int] = GREENING_CLASSES,
    rd_grades: tuple[np.ndarray, np.ndarray] | None = None,
    rd_nodata: int = 255,
    rd_min_grade: int = 2,
    npp_slope: np.ndarray | None = None,
    services: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    zones: np.ndarray | None = None,
    zone_nodata: int = 255,
    improvement_codes: Sequence[int] = IMPROVEMENT_CODES,
    slope: np.ndarray | None = None,
    reasons: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per unit id with every indicator the given layers allow.

    Population comes from the gridded series (``population``: the first- and last-year
    persons-per-pixel rasters, summed per unit) or from ``population_table`` (one row per
    unit id, columns ``population_start``, ``population_end`` and optionally
    ``rural_share``), not both. Rural density is the last-year population times the rural
    share (1 when none is given: every resident counted) per km2 of the unit.

    A layer that is None is "not evaluated": its columns are absent and the returned
    evaluation record says why (``reasons[<indicator group>]``, else "input not given").
    Groups: ``population``, ``greening``, ``desertification``, ``npp``, ``services``,
    ``improvement_zones``, ``terrain``.

    Returns ``(table, evaluation)``; the table has ``unit_id`` and ``area_km2`` first.
    """
    reasons = dict(reasons or {})
    ids = [int(i) for i in ids]
    n_px = np.bincount(labels[labels > 0].ravel(), minlength=max(ids, default=0) + 1)[ids]
    df = pd.DataFrame({"unit_id": ids, "area_km2": n_px * pixel_area_m2 / 1e6})
    evaluation: dict[str, Any] = {}
    start: np.ndarray | None = None
    end: np.ndarray | None = None
    share: np.ndarray | None = None

    def skip(group: str) -> None:
        evaluation[group] = _not_evaluated(reasons.get(group, "input not given"))

    if population is not None and population_table is not None:
        raise ValueError("population: expected the gridded series or the table per unit, found both")
    if population is not None:
        start = zonal_sum(population[0], labels, ids, "population (first year)")
        end = zonal_sum(population[1], labels, ids, "population (last year)")
        share = np.ones(len(ids)) if rural_share is None else np.asarray(rural_share, dtype=float)
        evaluation["population"] = {"evaluated": True, "source": "gridded population summed per unit"}
    elif population_table is not None:
        table = population_table.set_index("unit_id").reindex(ids)
        start = table["population_start"].to_numpy(dtype=float)
        end = table["population_end"].to_numpy(dtype=float)
        share = table["rural_share"].to_numpy(dtype=float) if "rural_share" in table.columns else np.ones(len(ids))
        evaluation["population"] = {"evaluated": True, "source": "township population table"}
    else:
        skip("population")
    if start is not None and end is not None and share is not None:
        df["population_start"] = start
        df["population_end"] = end
        df["population_change"] = end - start
        with np.errstate(invalid="ignore", divide="ignore"):
            df["population_rate"] = np.where(start > 0, (end - start) / np.where(start > 0, start, 1.0), np.nan)
            df["rural_density_per_km2"] = np.where(
                df["area_km2"] > 0, end * np.where(np.isnan(share), 1.0, share) / df["area_km2"], np.nan
            )

    if trend_slope is not None:
        df["ndvi_slope_mean"] = zonal_mean(trend_slope, labels, ids, "greening trend slope")
        evaluation["greening"] = {"evaluated": True, "greening_classes": [int(c) for c in greening_classes]}
    else:
        skip("greening")
    if trend_class is not None:
        df["greening_share"] = zonal_share(
            trend_class, labels, ids, tuple(greening_classes), trend_nodata, "greening trend class"
        )
    if rd_grades is not None:
        first, last = (np.asarray(g) for g in rd_grades)
        px_ha = pixel_area_m2 / 1e4
        valid_f = first != rd_nodata
        valid_l = last != rd_nodata
        rd_f = zonal_sum((valid_f & (first >= rd_min_grade)).astype(float), labels, ids)
        rd_l = zonal_sum((valid_l & (last >= rd_min_grade)).astype(float), labels, ids)
        df["rd_area_change_ha"] = (rd_l - rd_f) * px_ha
        both = valid_f & valid_l
        shift = np.where(both, last.astype(float) - first.astype(float), np.nan)
        df["rd_grade_shift_mean"] = zonal_mean(shift, labels, ids, "rocky-desertification grades")
        evaluation["desertification"] = {"evaluated": True, "rd_min_grade": rd_min_grade}
    else:
        skip("desertification")
    if npp_slope is not None:
        df["npp_slope_mean"] = zonal_mean(npp_slope, labels, ids, "NPP trend slope")
        evaluation["npp"] = {"evaluated": True}
    else:
        skip("npp")
    if services:
        for name, (first_map, last_map) in services.items():
            df[f"{name}_change_mean"] = zonal_mean(
                np.asarray(last_map, dtype=float) - np.asarray(first_map, dtype=float), labels, ids, name
            )
        evaluation["services"] = {"evaluated": True, "services": sorted(services)}
    else:
        skip("services")
    if zones is not None:
        df["improvement_zone_share"] = zonal_share(
            zones, labels, ids, tuple(improvement_codes), zone_nodata, "improvement zones"
        )
        evaluation["improvement_zones"] = {"evaluated": True, "codes": [int(c) for c in improvement_codes]}
    else:
        skip("improvement_zones")
    if slope is not None:
        df["slope_mean"] = zonal_mean(slope, labels, ids, "terrain slope")
        evaluation["terrain"] = {"evaluated": True}
    else:
        skip("terrain")
    return df, evaluation


def population_by_area(
    overlap_km2: pd.DataFrame, township_population: pd.DataFrame, township_area_km2: Mapping[int, float]
) -> pd.DataFrame:
    """A township table distributed to cells in proportion to area (areal weighting).

    ``overlap_km2``: columns ``unit_id`` (cell), ``township_id``, ``area_km2`` (the area the
    cell shares with the township). ``township_population``: ``township_id``,
    ``population_start``, ``population_end``, optional ``rural_share``. A cell receives each
    township's population times the share of the township's area it holds, so township
    totals are kept; its rural share is the population-weighted mean of its townships'.
    Within a township, density is taken as uniform: a cell's rate is the mean of its
    townships' rates, so cell-level statistics on table-only regions see township
    differences only.
    """
    pop = township_population.set_index("township_id")
    rows = overlap_km2.copy()
    rows["weight"] = [
        a / township_area_km2[int(t)] if township_area_km2.get(int(t), 0) > 0 else 0.0
        for t, a in zip(rows["township_id"], rows["area_km2"], strict=True)
    ]
    for col in ("population_start", "population_end"):
        rows[col] = rows["weight"] * pop[col].reindex(rows["township_id"]).to_numpy(dtype=float)
    has_share = "rural_share" in pop.columns
    if has_share:
        rows["rural_end"] = rows["population_end"] * pop["rural_share"].reindex(rows["township_id"]).to_numpy(
            dtype=float
        )
    out = rows.groupby("unit_id").agg(
        population_start=("population_start", "sum"),
        population_end=("population_end", "sum"),
        **({"rural_end": ("rural_end", "sum")} if has_share else {}),
    )
    if has_share:
        with np.errstate(invalid="ignore", divide="ignore"):
            out["rural_share"] = np.where(out["population_end"] > 0, out["rural_end"] / out["population_end"], np.nan)
        out = out.drop(columns="rural_end")
    return out.reset_index()


# --------------------------------------------------------------------------------------
# coupling coordination and types
# --------------------------------------------------------------------------------------


def _usable(df: pd.DataFrame, columns: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The indicator columns that can enter a score, and why each other one cannot."""
    use, dropped = [], {}
    for col in columns:
        if col not in df.columns:
            dropped[col] = "not evaluated (its input is missing)"
            continue
        values = df[col].to_numpy(dtype=float)
        if np.isnan(values).any():
            dropped[col] = f"missing in {int(np.isnan(values).sum())} of {len(values)} units"
        elif len(values) < 2 or np.ptp(values) == 0:
            dropped[col] = "no variance between units (min-max normalisation undefined)"
        else:
            use.append(col)
    return use, dropped


def add_coupling(
    df: pd.DataFrame,
    *,
    social: Mapping[str, Sequence[str]],
    ecological: Mapping[str, Sequence[str]],
    indicator_weights: str = "equal",
    a: float = 0.5,
    b: float = 0.5,
    edges: Sequence[float] = TEN_BANDS[0],
    labels: Sequence[str] = TEN_BANDS[1],
    pop_threshold: float = 0.05,
    greening_threshold: float = 0.0005,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Add ``U1`` (social), ``U2`` (ecological), ``C``, ``T``, ``D``, ``D_class`` and
    ``coupling_type`` to a unit table (:func:`karstflow.coupling.normalise_scores`,
    :func:`~karstflow.coupling.coupling_coordination`,
    :func:`~karstflow.coupling.coordination_class`, :func:`~karstflow.coupling.coupling_types`).

    ``social`` and ``ecological``: ``{"positive": [...], "negative": [...]}`` indicator
    columns. An indicator that is absent, incomplete or constant across the units is left
    out of its score, and the record says so; a subsystem with no usable indicator leaves
    U, C, T, D and the class NaN (not evaluated). ``indicator_weights``: ``"equal"`` or
    ``"entropy"``. The coupling type needs ``population_rate`` and ``ndvi_slope_mean``.

    Returns ``(table, record)``, the record with the indicators and weights of each score.
    """
    out = df.copy()
    record: dict[str, Any] = {"a": a, "b": b, "indicator_weights": indicator_weights}
    scores: dict[str, pd.Series | None] = {}
    for key, spec in (("U1", social), ("U2", ecological)):
        pos, dropped_p = _usable(out, spec.get("positive") or [])
        neg, dropped_n = _usable(out, spec.get("negative") or [])
        dropped = {**dropped_p, **dropped_n}
        name = "social" if key == "U1" else "ecological"
        if not pos and not neg:
            record[name] = {
                "evaluated": False,
                "reason": "no usable indicator",
                "dropped": dropped,
            }
            scores[key] = None
            continue
        result = normalise_scores(
            out, positive=pos, negative=neg, weights="entropy" if indicator_weights == "entropy" else None
        )
        scores[key] = result.score
        record[name] = {
            "evaluated": True,
            "positive": pos,
            "negative": neg,
            "weights": {k: float(v) for k, v in result.weights.items()},
            "dropped": dropped,
        }
    u1, u2 = scores["U1"], scores["U2"]
    if u1 is not None and u2 is not None:
        out["U1"] = u1.to_numpy()
        out["U2"] = u2.to_numpy()
        ccd = coupling_coordination(out["U1"], out["U2"], a=a, b=b)
        out["C"], out["T"], out["D"] = ccd["C"].to_numpy(), ccd["T"].to_numpy(), ccd["D"].to_numpy()
        out["D_class"] = coordination_class(out["D"], edges=edges, labels=labels).astype(str).to_numpy()
        record["evaluated"] = True
    else:
        for col in ("U1", "U2", "C", "T", "D"):
            out[col] = math.nan
        out["D_class"] = None
        record["evaluated"] = False
        record["reason"] = "a subsystem has no usable indicator"
    if {"population_rate", "ndvi_slope_mean"} <= set(out.columns):
        types = coupling_types(
            out,
            "population_rate",
            "ndvi_slope_mean",
            pop_threshold=pop_threshold,
            greening_threshold=greening_threshold,
        )
        out["coupling_type"] = types.astype(object).where(types.notna(), None).to_numpy()
        record["coupling_types"] = {
            "evaluated": True,
            "pop_threshold": pop_threshold,
            "greening_threshold": greening_threshold,
            "counts": {t: int((types == t).sum()) for t in COUPLING_TYPES if (types == t).any()},
        }
    else:
        out["coupling_type"] = None
        record["coupling_types"] = {"evaluated": False, "reason": "needs population_rate and ndvi_slope_mean"}
    return out, record

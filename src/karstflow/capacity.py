"""Grain production capacity of farmland, after the national farmland quality grades.

The study's formula (DESIGN.md, science reference)::

    Y = (D - K) * S * mu_per_ha * kg_per_mu_per_grade        (kg)

with K the area-weighted utilization grade (1 best .. 15 worst, GB/T 28407-2012), S the
area (ha), 15 mu per ha, 100 kg per mu per grade step and D = 16, so the best land (grade
1) yields 15 grade steps = 1,500 kg/mu and the worst (grade 15) one step = 100 kg/mu.
The formula is linear in K, so the capacity of a set of polygons is the same whether
summed polygon by polygon or computed once from their area-weighted grade and total area.

* Capacity **lost**: abandoned parcels, each with its own utilization grade (the
  area-weighted grade of the grade polygons it overlaps, :func:`polygon_grades`, the
  method of driver x8 in :mod:`karstflow.drivers`).
* Capacity **activated**: reclaimable forest has no farmland grade of its own (grading
  covers farmland), so each polygon takes the utilization grade of the nearest cultivated
  land (:func:`nearest_grade`; straight-line distance between geometries, 0 when they
  touch; equally near patches contribute their area-weighted grade).
"""

from __future__ import annotations

import logging
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import CRS

log = logging.getLogger(__name__)

__all__ = [
    "GRADE_BEST",
    "GRADE_WORST",
    "CapacityInputError",
    "capacity_by_group",
    "capacity_summary",
    "grain_capacity_kg",
    "nearest_grade",
    "polygon_grades",
    "weighted_grade",
]

#: The national farmland quality grade scale (GB/T 28407-2012): 1 best .. 15 worst.
GRADE_BEST, GRADE_WORST = 1, 15


class CapacityInputError(ValueError):
    """Grades, areas or constants that do not allow a capacity to be computed."""


def _check_grades(grade: np.ndarray, what: str = "grade") -> None:
    # area-weighted grades may land a rounding error outside the range (15.000000000000002)
    bad = ~np.isfinite(grade) | (grade < GRADE_BEST - 1e-9) | (grade > GRADE_WORST + 1e-9)
    if bad.any():
        found = np.unique(grade[bad])[:10]
        raise CapacityInputError(
            f"{what}: expected farmland quality grades in {GRADE_BEST}..{GRADE_WORST} (GB/T 28407, 1 best), "
            f"found {int(bad.sum())} value(s) outside, e.g. {found.tolist()}"
        )


def _check_areas(area: np.ndarray, what: str = "area_ha") -> None:
    bad = ~np.isfinite(area) | (area < 0)
    if bad.any():
        found = np.unique(area[bad])[:10]
        raise CapacityInputError(
            f"{what}: expected areas >= 0 ha, found {int(bad.sum())} negative or missing value(s), e.g. "
            f"{found.tolist()}"
        )


def grain_capacity_kg(
    grade: npt.ArrayLike,
    area_ha: npt.ArrayLike,
    D: float = 16,
    mu_per_ha: float = 15,
    kg_per_mu_per_grade: float = 100,
) -> np.ndarray | float:
    """Grain production capacity Y = (D - K) * S * mu_per_ha * kg_per_mu_per_grade (kg).

    Vectorised: ``grade`` and ``area_ha`` broadcast against each other; a float for
    scalar input. Grades must lie in 1..15, areas be >= 0 and D exceed the worst grade
    (else the worst land would have no or a negative capacity).

    >>> grain_capacity_kg(6, 2.0)   # (16 - 6) * 2 ha * 15 mu/ha * 100 kg/mu
    30000.0
    """
    k = np.asarray(grade, dtype=np.float64)
    s = np.asarray(area_ha, dtype=np.float64)
    _check_grades(k.ravel())
    _check_areas(s.ravel())
    if not D > GRADE_WORST:
        raise CapacityInputError(
            f"D: expected a constant above the worst grade {GRADE_WORST} (the study uses 16), found {D}"
        )
    if not (mu_per_ha > 0 and kg_per_mu_per_grade > 0):
        raise CapacityInputError(
            f"mu_per_ha and kg_per_mu_per_grade: expected positive constants (15 and 100), found {mu_per_ha} and "
            f"{kg_per_mu_per_grade}"
        )
    y = (D - k) * s * mu_per_ha * kg_per_mu_per_grade
    return float(y) if y.ndim == 0 else y


def weighted_grade(grades: npt.ArrayLike, areas_ha: npt.ArrayLike) -> float:
    """Area-weighted grade sum(grade * area) / sum(area) (the K of the formula).

    >>> weighted_grade([4, 10], [1.0, 3.0])   # (4 * 1 + 10 * 3) / 4
    8.5
    """
    g = np.asarray(grades, dtype=np.float64).ravel()
    a = np.asarray(areas_ha, dtype=np.float64).ravel()
    if g.shape != a.shape:
        raise CapacityInputError(f"weighted_grade: {g.size} grades for {a.size} areas; expected one grade per area")
    _check_grades(g)
    _check_areas(a)
    total = a.sum()
    if not total > 0:
        raise CapacityInputError("weighted_grade: the areas sum to 0 ha; a weighted grade needs some area")
    return float((g * a).sum() / total)


def _same_crs(name: str, crs: Any, target: Any) -> None:
    if crs is None or CRS.from_user_input(crs) != CRS.from_user_input(target):
        raise CapacityInputError(f"{name}: expected the CRS {target}, found {crs}")


def polygon_grades(
    polygons: gpd.GeoSeries | gpd.GeoDataFrame,
    grade_polygons: gpd.GeoDataFrame,
    column: str = "utilization_grade",
    *,
    name: str = "grade polygons",
) -> np.ndarray:
    """Area-weighted ``column`` of the grade polygons each polygon overlaps (NaN: none).

    The method of driver x8 (:mod:`karstflow.drivers`); kept here for layers the driver
    stage does not see (existing farmland patches).
    """
    geoms = polygons.geometry if isinstance(polygons, gpd.GeoDataFrame) else polygons
    _same_crs(name, grade_polygons.crs, geoms.crs)
    if column not in grade_polygons.columns:
        raise CapacityInputError(f"{name}: expected a column {column!r}, found {list(grade_polygons.columns)}")
    values = grade_polygons[column].to_numpy(dtype=np.float64)
    _check_grades(values[np.isfinite(values)], f"{name} column {column!r}")
    n = len(geoms)
    if n == 0 or len(grade_polygons) == 0:
        return np.full(n, np.nan)
    g = np.asarray(geoms.values, dtype=object)
    b = np.asarray(grade_polygons.geometry.values, dtype=object)
    ia, ib = shapely.STRtree(b).query(g, predicate="intersects")
    area = shapely.area(shapely.intersection(g[ia], b[ib]))
    ok = (area > 0) & np.isfinite(values[ib])
    ia, ib, area = ia[ok], ib[ok], area[ok]
    total = np.bincount(ia, weights=area, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.bincount(ia, weights=values[ib] * area, minlength=n) / total, np.nan)


def nearest_grade(
    polygons: gpd.GeoSeries | gpd.GeoDataFrame,
    cultivated: gpd.GeoSeries | gpd.GeoDataFrame,
    cultivated_grades: npt.ArrayLike,
) -> pd.DataFrame:
    """Grade of the nearest cultivated land of each polygon.

    Distance is between geometries (0 when they touch or overlap). Polygons with several
    equally near cultivated patches take their area-weighted grade. Cultivated patches
    without a grade (NaN) are skipped.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``polygons``: ``grade`` and ``distance_m`` to the nearest graded
        cultivated land (NaN for both when there is none).
    """
    geoms = polygons.geometry if isinstance(polygons, gpd.GeoDataFrame) else polygons
    cult = cultivated.geometry if isinstance(cultivated, gpd.GeoDataFrame) else cultivated
    _same_crs("cultivated land", cult.crs, geoms.crs)
    grades = np.asarray(cultivated_grades, dtype=np.float64)
    if grades.shape != (len(cult),):
        raise CapacityInputError(f"nearest_grade: {grades.size} grades for {len(cult)} cultivated patches")
    out = pd.DataFrame({"grade": np.nan, "distance_m": np.nan}, index=geoms.index)
    ok = np.flatnonzero(np.isfinite(grades))
    _check_grades(grades[ok], "cultivated land grades")
    if len(geoms) == 0 or len(ok) == 0:
        return out
    c = np.asarray(cult.values, dtype=object)[ok]
    tree = shapely.STRtree(c)
    (gi, ci), dist = tree.query_nearest(np.asarray(geoms.values, dtype=object), return_distance=True, all_matches=True)
    df = pd.DataFrame({"gi": gi, "grade": grades[ok][ci], "area": shapely.area(c[ci]), "dist": dist})
    # all_matches returns every equally near patch; keep only the nearest in case of float noise
    df = df[df["dist"] <= df.groupby("gi")["dist"].transform("min") + 1e-9]
    df["ga"] = df["grade"] * df["area"]
    agg = df.groupby("gi").agg(ga=("ga", "sum"), area=("area", "sum"), grade=("grade", "mean"), dist=("dist", "min"))
    k = np.where(agg["area"] > 0, agg["ga"] / agg["area"].where(agg["area"] > 0, 1.0), agg["grade"])
    out.iloc[agg.index.to_numpy(), 0] = k
    out.iloc[agg.index.to_numpy(), 1] = agg["dist"].to_numpy()
    return out


def capacity_by_group(
    grade: npt.ArrayLike,
    area_ha: npt.ArrayLike,
    groups: npt.ArrayLike,
    *,
    D: float = 16,
    mu_per_ha: float = 15,
    kg_per_mu_per_grade: float = 100,
) -> pd.DataFrame:
    """Count, area, area-weighted grade and capacity (t) per group.

    Columns: ``group``, ``n``, ``area_ha``, ``weighted_grade``, ``capacity_t``; sorted by
    group. An empty input gives an empty frame with these columns.
    """
    k = np.asarray(grade, dtype=np.float64)
    s = np.asarray(area_ha, dtype=np.float64)
    g = np.asarray(groups, dtype=object)
    cap = np.asarray(grain_capacity_kg(k, s, D, mu_per_ha, kg_per_mu_per_grade), dtype=np.float64).reshape(-1)
    rows = []
    for group in sorted(set(g.tolist())):
        sel = g == group
        area = float(s[sel].sum())
        rows.append(
            {
                "group": group,
                "n": int(sel.sum()),
                "area_ha": area,
                "weighted_grade": weighted_grade(k[sel], s[sel]) if area > 0 else np.nan,
                "capacity_t": float(cap[sel].sum()) / 1000.0,
            }
        )
    return pd.DataFrame(rows, columns=["group", "n", "area_ha", "weighted_grade", "capacity_t"])


def capacity_summary(
    lost: pd.DataFrame,
    activated: pd.DataFrame,
    planned: npt.ArrayLike,
    *,
    D: float = 16,
    mu_per_ha: float = 15,
    kg_per_mu_per_grade: float = 100,
    type_column: str = "forest_type",
) -> pd.DataFrame:
    """The capacity accounts: lost, activated by forest type, planned by forest type.

    ``lost``: abandoned parcels with ``grade`` and ``area_ha``; ``activated``: reclaimable
    forest with ``grade``, ``area_ha`` and ``type_column``; ``planned``: boolean per row of
    ``activated`` (the swap plan). Columns: ``account`` (lost, activated, planned),
    ``forest_type`` ("all" for totals), ``n``, ``area_ha``, ``weighted_grade``,
    ``capacity_t``.
    """
    constants = {"D": D, "mu_per_ha": mu_per_ha, "kg_per_mu_per_grade": kg_per_mu_per_grade}
    sel = np.asarray(planned, dtype=bool)
    if sel.shape != (len(activated),):
        raise CapacityInputError(
            f"planned: expected one flag per reclaimable patch ({len(activated)}), found {sel.shape}"
        )
    parts = []

    def add(account: str, frame: pd.DataFrame, by_type: bool) -> None:
        total = capacity_by_group(
            frame["grade"], frame["area_ha"], np.full(len(frame), "all", dtype=object), **constants
        )
        if total.empty:
            total = pd.DataFrame(
                [{"group": "all", "n": 0, "area_ha": 0.0, "weighted_grade": np.nan, "capacity_t": 0.0}]
            )
        tables = [total]
        if by_type:
            tables.insert(
                0, capacity_by_group(frame["grade"], frame["area_ha"], frame[type_column].astype(str), **constants)
            )
        for t in tables:
            parts.append(t.rename(columns={"group": "forest_type"}).assign(account=account))

    add("lost", lost, by_type=False)
    add("activated", activated, by_type=True)
    add("planned", activated[sel], by_type=True)
    out = pd.concat(parts, ignore_index=True)
    return out[["account", "forest_type", "n", "area_ha", "weighted_grade", "capacity_t"]]

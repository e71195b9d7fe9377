"""Karst rocky desertification (RD): vegetation cover, grading, areas and transitions.

Pure functions over xarray (lazy on dask-backed cubes); no paths.

Fractional vegetation cover (FVC), the dimidiate pixel model (Gutman and Ignatov 1998;
with end-members at cumulative-frequency percentiles as in Li Miaomiao et al. 2004)::

    FVC = (NDVI - NDVI_soil) / (NDVI_veg - NDVI_soil), clipped to [0, 1]

Grading. Each indicator gives a grade 0..5 (:data:`RD_GRADES`: none, potential, light,
moderate, severe, extremely severe) by five thresholds:

* bedrock exposure (fraction of rock outcrop): grade = number of thresholds ``t`` with
  ``exposure >= t``; the defaults 0.2, 0.3, 0.5, 0.7, 0.9 are the bedrock-exposure
  classes of Xiong et al. (2002): none < 20 %, potential 20-30 %, light 31-50 %,
  moderate 51-70 %, severe 71-90 %, extremely severe > 90 %;
* cover (FVC here; "vegetation + soil cover" in Xiong et al. 2002): grade = number of
  thresholds ``t`` with ``cover < t``; defaults 0.7, 0.5, 0.35, 0.2, 0.1 (none > 70 %,
  potential 50-70 %, light 35-50 %, moderate 20-35 %, severe 10-20 %, extremely
  severe < 10 %);
* slope (degrees; optional): grade = number of thresholds with ``slope >= t``; defaults
  15, 18, 22, 25, 30 deg (Xiong et al. 2002).

The pixel grade combines the indicators in use by ``combine``: ``"min"`` (the least
severe: a grade needs all its indicators, so low-NDVI land that is not rocky, e.g.
built-up land or water, and rocky land under closed vegetation are not graded as RD)
or ``"max"`` (the most severe). An indicator that is NaN at a pixel (e.g. a missing NDVI
year) is left out there; with none left, or outside the carbonate mask, the grade is
:data:`RD_NODATA` (255).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
import xarray as xr

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_THRESHOLDS",
    "RD_GRADES",
    "RD_NODATA",
    "fvc_dimidiate",
    "grade_area_table",
    "grade_indicator",
    "rd_grade",
    "rd_summary",
    "transition_table",
]

RD_GRADES: dict[int, str] = {
    0: "none",
    1: "potential",
    2: "light",
    3: "moderate",
    4: "severe",
    5: "extremely severe",
}
RD_NODATA = 255

#: Xiong et al. (2002) thresholds: exposure and slope rise with the grade, cover falls.
DEFAULT_THRESHOLDS: dict[str, tuple[float, ...]] = {
    "exposure": (0.2, 0.3, 0.5, 0.7, 0.9),
    "cover": (0.7, 0.5, 0.35, 0.2, 0.1),
    "slope_deg": (15.0, 18.0, 22.0, 25.0, 30.0),
}
_INDICATORS = ("exposure", "cover", "slope")
_THRESHOLD_KEY = {"exposure": "exposure", "cover": "cover", "slope": "slope_deg"}


def fvc_dimidiate(ndvi: xr.DataArray, ndvi_soil: float, ndvi_veg: float) -> xr.DataArray:
    """FVC = (NDVI - NDVI_soil) / (NDVI_veg - NDVI_soil) clipped to [0, 1]; NaN stays NaN."""
    if not np.isfinite(ndvi_soil) or not np.isfinite(ndvi_veg) or ndvi_veg <= ndvi_soil:
        raise ValueError(
            f"FVC end-members must be finite with NDVI_veg > NDVI_soil, found soil {ndvi_soil!r}, veg {ndvi_veg!r}"
        )
    fvc = ((ndvi - np.float32(ndvi_soil)) / np.float32(ndvi_veg - ndvi_soil)).clip(0.0, 1.0).astype(np.float32)
    fvc.name = "fvc"
    fvc.attrs = {
        "long_name": "fractional vegetation cover (dimidiate pixel model)",
        "units": "1",
        "ndvi_soil": float(ndvi_soil),
        "ndvi_veg": float(ndvi_veg),
    }
    return fvc


def _check_thresholds(name: str, t: Sequence[float], decreasing: bool) -> tuple[float, ...]:
    t = tuple(float(v) for v in t)
    if len(t) != 5:
        raise ValueError(f"{name} thresholds: expected 5 values (potential .. extremely severe), found {len(t)}")
    steps = np.diff(t)
    if (decreasing and not np.all(steps < 0)) or (not decreasing and not np.all(steps > 0)):
        order = "decreasing" if decreasing else "increasing"
        raise ValueError(f"{name} thresholds must be strictly {order}, found {list(t)}")
    return t


def grade_indicator(values: xr.DataArray, thresholds: Sequence[float], *, decreasing: bool = False) -> xr.DataArray:
    """Grade 0..5 of one indicator: the number of thresholds passed; 255 where NaN.

    ``decreasing=False``: passed means ``value >= t`` (exposure, slope);
    ``decreasing=True``: passed means ``value < t`` (cover).
    """
    t = _check_thresholds(str(values.name or "indicator"), thresholds, decreasing)
    grade = xr.zeros_like(values, dtype=np.uint8)
    for thr in t:
        passed = values < thr if decreasing else values >= thr
        grade = grade + passed.astype(np.uint8)
    return xr.where(values.isnull(), np.uint8(RD_NODATA), grade).astype(np.uint8)


def rd_grade(
    *,
    carbonate: xr.DataArray,
    exposure: xr.DataArray | None = None,
    cover: xr.DataArray | None = None,
    slope: xr.DataArray | None = None,
    indicators: Sequence[str] = ("exposure", "cover"),
    combine: str = "min",
    thresholds: Mapping[str, Sequence[float]] | None = None,
) -> xr.DataArray:
    """RD grade (uint8, :data:`RD_GRADES`, nodata 255) within the carbonate mask.

    ``carbonate`` is True/1 on carbonate rock (NaN or 0 elsewhere); the indicators are
    broadcast against each other (e.g. ``(year, y, x)`` exposure and cover with a
    ``(y, x)`` slope). See the module docstring for the rule.
    """
    if combine not in ("min", "max"):
        raise ValueError(f"combine must be 'min' or 'max', found {combine!r}")
    if not indicators:
        raise ValueError("at least one RD indicator is needed (exposure, cover, slope)")
    bad = [i for i in indicators if i not in _INDICATORS]
    if bad:
        raise ValueError(f"unknown RD indicator(s) {bad}; expected some of {_INDICATORS}")
    thr = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    layers = {"exposure": exposure, "cover": cover, "slope": slope}
    grades = []
    for name in indicators:
        da = layers[name]
        if da is None:
            raise ValueError(f"RD indicator {name!r} is in use but no {name} layer was given")
        grades.append(grade_indicator(da.rename(name), thr[_THRESHOLD_KEY[name]], decreasing=name == "cover"))
    grades = list(xr.broadcast(*grades))
    # missing indicators drop out: 255 -> a value that loses the min / max
    if combine == "min":
        stacked = [g.astype(np.int16).where(g != RD_NODATA, 6) for g in grades]
        out = stacked[0]
        for g in stacked[1:]:
            out = cast(xr.DataArray, np.minimum(out, g))  # a DataArray through __array_ufunc__
        out = out.where(out != 6, RD_NODATA)
    else:
        stacked = [g.astype(np.int16).where(g != RD_NODATA, -1) for g in grades]
        out = stacked[0]
        for g in stacked[1:]:
            out = cast(xr.DataArray, np.maximum(out, g))
        out = out.where(out != -1, RD_NODATA)
    on_carbonate = carbonate.fillna(0) > 0
    out = xr.where(on_carbonate, out, RD_NODATA).astype(np.uint8)
    dims = [d for d in ("year",) if d in out.dims] + [d for d in out.dims if d != "year"]
    out = out.transpose(*dims)
    out.name = "rd_grade"
    out.attrs = {
        "long_name": "rocky desertification grade",
        "flag_values": list(RD_GRADES),
        "flag_meanings": " ".join(v.replace(" ", "_") for v in RD_GRADES.values()),
        "nodata": RD_NODATA,
        "indicators": ",".join(indicators),
        "combine": combine,
    }
    return out


def grade_area_table(grades: xr.DataArray, pixel_area_km2: float) -> pd.DataFrame:
    """Area by grade and year: columns year, grade_code, grade, pixels, area_km2, share.

    ``share`` is of the graded pixels of that year (carbonate with data). Computes one
    year at a time, so a dask cube never has to fit in memory at once.
    """
    rows = []
    has_year = "year" in grades.dims
    years = grades["year"].values.tolist() if has_year else [None]
    for year in years:
        g = np.asarray((grades.sel(year=year) if has_year else grades).values).ravel()
        counts = np.bincount(g, minlength=256)
        graded = int(counts[: len(RD_GRADES)].sum())
        for code, name in RD_GRADES.items():
            n = int(counts[code])
            rows.append(
                {
                    "year": year,
                    "grade_code": code,
                    "grade": name,
                    "pixels": n,
                    "area_km2": n * pixel_area_km2,
                    "share": n / graded if graded else float("nan"),
                }
            )
    return pd.DataFrame(rows)


def transition_table(
    first: xr.DataArray | np.ndarray, last: xr.DataArray | np.ndarray, pixel_area_km2: float, years: tuple[int, int]
) -> pd.DataFrame:
    """Complete grade-to-grade transition matrix in long form (every pair, zeros too).

    Columns: from_year, to_year, from_code, from_grade, to_code, to_grade, pixels,
    area_km2. Pixels without a grade in either year are left out.
    """
    a = np.asarray(first).ravel()
    b = np.asarray(last).ravel()
    if a.shape != b.shape:
        raise ValueError(f"grade maps differ in size: {a.shape} vs {b.shape}")
    ok = (a != RD_NODATA) & (b != RD_NODATA)
    k = len(RD_GRADES)
    counts = np.bincount(a[ok].astype(np.int64) * k + b[ok], minlength=k * k).reshape(k, k)
    rows = [
        {
            "from_year": int(years[0]),
            "to_year": int(years[1]),
            "from_code": i,
            "from_grade": RD_GRADES[i],
            "to_code": j,
            "to_grade": RD_GRADES[j],
            "pixels": int(counts[i, j]),
            "area_km2": int(counts[i, j]) * pixel_area_km2,
        }
        for i in range(k)
        for j in range(k)
    ]
    return pd.DataFrame(rows)


def rd_summary(area: pd.DataFrame, transitions: pd.DataFrame, *, rd_min_grade: int = 2) -> dict[str, Any]:
    """Headline RD figures from :func:`grade_area_table` and :func:`transition_table`.

    RD area is the area graded ``rd_min_grade`` (light) or worse. ``reduction_rate`` is
    ``(A_first - A_last) / A_first``; ``annual_change_km2_per_yr`` is the OLS slope of the
    yearly RD area; ``improved_km2`` / ``worsened_km2`` are the areas whose grade fell /
    rose from the first to the last year.
    """
    if rd_min_grade not in RD_GRADES or rd_min_grade == 0:
        raise ValueError(f"rd_min_grade must be one of 1..5, found {rd_min_grade!r}")
    rd = area[area["grade_code"] >= rd_min_grade].groupby("year")["area_km2"].sum().sort_index()
    by_grade = area.pivot(index="year", columns="grade", values="area_km2")
    years = rd.index.to_numpy()
    first, last = float(rd.iloc[0]), float(rd.iloc[-1])
    nan = float("nan")
    slope = float(np.polyfit(years.astype(float), rd.to_numpy(float), 1)[0]) if len(rd) > 1 else nan
    up = transitions["to_code"] > transitions["from_code"]
    down = transitions["to_code"] < transitions["from_code"]
    was_rd = transitions["from_code"] >= rd_min_grade
    now_rd = transitions["to_code"] >= rd_min_grade
    return {
        "rd_definition": f"grade {RD_GRADES[rd_min_grade]} or worse",
        "first_year": int(years[0]),
        "last_year": int(years[-1]),
        "rd_area_first_km2": first,
        "rd_area_last_km2": last,
        "reduction_rate": (first - last) / first if first > 0 else nan,
        "annual_change_km2_per_yr": slope,
        "rd_area_km2_by_year": {str(int(cast(int, y))): float(v) for y, v in rd.items()},
        "grade_area_first_km2": {str(k): float(v) for k, v in by_grade.iloc[0].items()},
        "grade_area_last_km2": {str(k): float(v) for k, v in by_grade.iloc[-1].items()},
        "improved_km2": float(transitions.loc[down, "area_km2"].sum()),
        "worsened_km2": float(transitions.loc[up, "area_km2"].sum()),
        "restored_from_rd_km2": float(transitions.loc[was_rd & ~now_rd, "area_km2"].sum()),
        "new_rd_km2": float(transitions.loc[~was_rd & now_rd, "area_km2"].sum()),
    }


# --------------------------------------------------------------------------------------
# carbonate rock from a lithology map
# --------------------------------------------------------------------------------------


def carbonate_from_lithology(lithology: Any, carbonate_units: Sequence[str], grid: Any, *, source: str) -> np.ndarray:
    """Carbonate-rock mask (uint8: 1 carbonate, 0 other, 255 outside the map) on ``grid``.

    ``lithology`` is the harmonised lithology layer (a GeoDataFrame in the grid CRS with a
    ``unit`` column); a pixel is carbonate when its centre falls in a polygon whose unit is
    one of ``carbonate_units`` (rasterio's default centre rule, so areas are unbiased at the
    polygon edges). Units named in the config that the map does not have stop the stage:
    a misspelt unit would silently shrink the carbonate area.
    """
    from rasterio.features import rasterize

    units = {str(u) for u in carbonate_units}
    present = {str(u) for u in lithology["unit"].dropna().unique()}
    absent = sorted(units - present)
    if absent:
        raise ValueError(
            f"{source}: carbonate unit(s) {absent} (regions.<id>.carbonate_units) are not in the lithology map; "
            f"its units: {sorted(present)[:30]}"
        )
    is_carbonate = lithology["unit"].astype(str).isin(units).to_numpy()
    shapes = [(geom, 1 if c else 0) for geom, c in zip(lithology.geometry, is_carbonate, strict=True) if geom]
    out = rasterize(shapes, out_shape=grid.shape, transform=grid.transform, fill=255, dtype="uint8")
    log.info(
        "%s: %d of %d polygons carbonate (%s); %.1f %% of the mapped pixels carbonate",
        source,
        int(is_carbonate.sum()),
        len(is_carbonate),
        ", ".join(sorted(units)),
        100.0 * float((out == 1).sum()) / max(int((out != 255).sum()), 1),
    )
    return out

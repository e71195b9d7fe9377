"""Carbon: CASA net primary production, heterotrophic respiration, NEP, carbon storage.

Pure functions over xarray, lazy on dask-backed cubes; no paths.

CASA (Potter et al. 1993; Field et al. 1995; the Chinese parameterisation of Zhu Wenquan
et al. 2006, 2007) runs on **monthly** steps (:func:`casa_monthly`, the workflow's default,
``carbon.time_step: monthly``)::

    NPP   = APAR * epsilon                                   g C m-2 month-1
    APAR  = SOL * FPAR * 0.5                                 MJ m-2 month-1
    epsilon = T_e1 * T_e2 * W_e * epsilon_max                g C MJ-1

and the annual NPP, Rh and NEP are the sums of the 12 months of each year.

* SOL: total incoming solar radiation of the month (MJ m-2); 0.5 is the share of
  photosynthetically active radiation (400-700 nm) in it.
* FPAR (Zhu et al. 2006: the mean of the NDVI- and the simple-ratio-based estimates)::

      FPAR_NDVI = (NDVI - NDVI_min) / (NDVI_max - NDVI_min) * (FPAR_max - FPAR_min) + FPAR_min
      FPAR_SR   = (SR - SR_min) / (SR_max - SR_min) * (FPAR_max - FPAR_min) + FPAR_min,
                  SR = (1 + NDVI) / (1 - NDVI)
      FPAR      = w * FPAR_NDVI + (1 - w) * FPAR_SR,  w = 0.5

  clipped to [FPAR_min, FPAR_max] = [0.001, 0.95]. NDVI_min = 0.023 and SR_min = 1.05 are
  fixed (bare ground, Zhu et al. 2006/2007); NDVI_max and SR_max are the 95th percentiles
  of the NDVI and SR of each vegetation type (land-cover code, pixel-years pooled;
  :func:`fpar_endmembers`), so a pixel's FPAR does not depend on what else is in its
  region. A type whose 95th percentile does not exceed the minimum has FPAR_min.
* Temperature stress (Potter et al. 1993)::

      T_e1 = 0.8 + 0.02 T_opt - 0.0005 T_opt^2      (0 where T <= -10 degC)
      T_e2 = 1.1814 / (1 + exp(0.2 (T_opt - 10 - T))) / (1 + exp(0.3 (-T_opt - 10 + T)))
             and half of T_e2(T_opt) where T > T_opt + 10 or T < T_opt - 13

  with T the month's mean air temperature (degC) and T_opt the mean temperature of the
  month of peak NDVI *of each year* (:func:`optimal_temperature_by_year`). Where the NDVI
  has no months (the annual growing-season NDVI used for every month of its year) the
  month of peak NDVI is not observed: it is taken as ``peak_month`` ("warmest": the
  pixel's warmest month of that year, the peak of the summer-monsoon growing season in
  southern China; or a fixed month 1-12).
* Water stress: ``W_e = 0.5 + 0.5 * AET / PET`` (Potter et al. 1993). CASA takes AET
  from a monthly soil-water balance, which needs soil water holding capacity; here AET
  is taken from Fu's Budyko curve (Fu 1981; Zhang et al. 2004) on each year's totals of
  precipitation P and reference ET (PET) and applied to every month of that year::

      AET / PET = 1 + P/PET - (1 + (P/PET)^omega)^(1/omega),   omega = 2.6

  (the curve holds for annual totals, where storage changes are small; at the month
  scale it would ignore the soil water carried from the wet into the dry season).

Heterotrophic respiration (Pei Zhiyong et al. 2009, from a soil-respiration relation of
Chinese ecosystems; T monthly mean degC, R monthly precipitation mm)::

    Rh_month = 0.22 * (exp(0.0913 T) + ln(0.3145 R + 1)) * 30 * 46.5 %    g C m-2 month-1

computed for each month and summed over the year. NEP = NPP - Rh (> 0 is a sink).

The **annual** mode (``carbon.time_step: annual``, :func:`casa_npp` on ``(year, y, x)``
cubes) is kept as an explicit option: APAR = annual SOL x FPAR(annual NDVI) x 0.5, T_opt
the temperature of the year of peak NDVI, and Rh = 12 Rh_month(annual mean T, P / 12).
It is biased: with one step per year T is always near T_opt, so T_e1 T_e2 is about 0.98
against about 0.74 APAR-weighted over a Guizhou-like annual cycle (NPP about +33 %), and
because exp() is convex Rh on the annual mean temperature is about 8 % low; NEP comes out
high by more than half.

Carbon storage follows the InVEST carbon model: each land-cover code carries four pools
(``c_above``, ``c_below``, ``c_soil``, ``c_dead``, Mg C ha-1); the storage density of a
pixel is their sum (Mg C ha-1), its stock that times the pixel area (ha); sequestration
between two years is the difference of the stocks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import pandas as pd
import xarray as xr

log = logging.getLogger(__name__)

__all__ = [
    "CARBON_POOLS",
    "NPP_TREND_CLASSES",
    "carbon_summary",
    "PAR_FRACTION",
    "budyko_fu_aet_ratio",
    "carbon_storage",
    "casa_monthly",
    "casa_npp",
    "endmember_maps",
    "endmembers_from_record",
    "endmembers_record",
    "endmembers_settings",
    "epsilon_max_map",
    "fpar_endmembers",
    "landcover_endmembers",
    "fpar_from_ndvi",
    "heterotrophic_respiration",
    "landcover_by_year",
    "optimal_temperature",
    "optimal_temperature_by_year",
    "read_carbon_pools",
    "storage_total_mg",
    "temperature_stress",
    "water_stress",
    "year_month",
]

#: Share of photosynthetically active radiation in total solar radiation (CASA).
PAR_FRACTION = 0.5
#: Names of the trend classes (karstflow.trends.TREND_CLASSES) when the series is NPP.
NPP_TREND_CLASSES = {
    1: "significant_increase",
    2: "non_significant_increase",
    3: "stable",
    4: "non_significant_decrease",
    5: "significant_decrease",
}
#: The four carbon pools of the InVEST carbon model (Mg C ha-1).
CARBON_POOLS = ("c_above", "c_below", "c_soil", "c_dead")


# --------------------------------------------------------------------------------------
# CASA
# --------------------------------------------------------------------------------------


def fpar_from_ndvi(
    ndvi: xr.DataArray,
    ndvi_min: float | xr.DataArray,
    ndvi_max: float | xr.DataArray,
    *,
    fpar_min: float = 0.001,
    fpar_max: float = 0.95,
    ndvi_weight: float = 0.5,
    sr_min: float | xr.DataArray | None = None,
    sr_max: float | xr.DataArray | None = None,
) -> xr.DataArray:
    """FPAR as the weighted mean of the NDVI- and SR-based linear estimates (Zhu et al. 2006).

    The end-members may be scalars or per-pixel arrays (per vegetation type, see
    :func:`fpar_endmembers`); ``sr_min`` / ``sr_max`` default to the SR of ``ndvi_min`` /
    ``ndvi_max``. Where ``ndvi_max <= ndvi_min`` (a type without a vegetation signal) FPAR
    is ``fpar_min``.
    """
    if not (0 <= fpar_min < fpar_max <= 1):
        raise ValueError(f"FPAR needs 0 <= FPAR_min < FPAR_max <= 1, found {fpar_min!r}, {fpar_max!r}")
    if not 0 <= ndvi_weight <= 1:
        raise ValueError(f"ndvi_weight must be in [0, 1], found {ndvi_weight!r}")
    scalar = all(isinstance(v, int | float) for v in (ndvi_min, ndvi_max))
    if scalar and not (-1 < float(ndvi_min) < float(ndvi_max) < 1):  # type: ignore[arg-type]
        raise ValueError(f"FPAR needs -1 < NDVI_min < NDVI_max < 1, found {ndvi_min!r}, {ndvi_max!r}")
    if sr_min is None:
        sr_min = (1 + ndvi_min) / (1 - ndvi_min)
    if sr_max is None:
        sr_max = (1 + ndvi_max) / (1 - ndvi_max)
    span = fpar_max - fpar_min
    v = ndvi.astype(np.float64).clip(-0.999999, 0.999999)
    d_ndvi = ndvi_max - ndvi_min
    d_sr = sr_max - sr_min
    ok = (d_ndvi > 0) & (d_sr > 0)
    if not isinstance(ok, xr.DataArray) and not ok:
        raise ValueError(f"FPAR needs SR_min < SR_max, found {sr_min!r}, {sr_max!r}")
    safe_ndvi = xr.where(ok, d_ndvi, 1.0) if isinstance(ok, xr.DataArray) else d_ndvi
    safe_sr = xr.where(ok, d_sr, 1.0) if isinstance(ok, xr.DataArray) else d_sr
    f_ndvi = (v - ndvi_min) / safe_ndvi * span + fpar_min
    sr = (1 + v) / (1 - v)
    f_sr = (sr - sr_min) / safe_sr * span + fpar_min
    fpar = (ndvi_weight * f_ndvi + (1 - ndvi_weight) * f_sr).clip(fpar_min, fpar_max)
    if isinstance(ok, xr.DataArray):
        # no signal (or no end-member: NaN) -> FPAR_min; NaN NDVI stays NaN below
        fpar = fpar.where(ok, fpar_min)
    fpar = fpar.where(ndvi.notnull()).astype(np.float32)
    if isinstance(ok, xr.DataArray):
        fpar = fpar.transpose(*xr.broadcast(ndvi, ok)[0].dims)
    fpar.name = "fpar"
    fpar.attrs = {"long_name": "fraction of absorbed PAR", "units": "1"}
    return fpar


def fpar_endmembers(
    ndvi: xr.DataArray,
    landcover: xr.DataArray,
    *,
    percentile: float = 95.0,
    ndvi_min: float = 0.023,
    sr_min: float = 1.05,
) -> pd.DataFrame:
    """FPAR end-members per vegetation type (land-cover code), after Zhu et al. (2006).

    NDVI_max and SR_max of a code are the ``percentile``-th percentiles of the NDVI and of
    SR = (1 + NDVI) / (1 - NDVI) over the pixel-years of that code (``landcover`` may be
    ``(y, x)`` or carry NDVI's time dims); NDVI_min and SR_min are the fixed bare-ground
    values. Returns one row per code present: ``code, n, ndvi_min, ndvi_max, sr_min,
    sr_max`` (n: pixel-years with NDVI).
    """
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], found {percentile!r}")
    if not (-1 < ndvi_min < 1) or not sr_min > 0:
        raise ValueError(f"fixed FPAR end-members out of range: NDVI_min {ndvi_min!r}, SR_min {sr_min!r}")
    from karstflow.greening import percentile_endmembers

    if not hasattr(ndvi.data, "dask") or ndvi.size * 8 <= EXACT_ENDMEMBER_BYTES:
        return _endmembers_in_memory(ndvi, landcover, percentile, ndvi_min, sr_min)
    v, lc = xr.broadcast(ndvi.astype(np.float64).clip(-0.999999, 0.999999), landcover)
    lc = lc.where(v.notnull())
    data = lc.data
    if hasattr(data, "dask"):
        import dask.array as dsa

        present = np.asarray(dsa.unique(dsa.where(dsa.isfinite(data), data, -1)).compute())
    else:
        present = np.unique(np.where(np.isfinite(data), data, -1))
    rows = []
    for code in sorted(int(c) for c in present if c >= 0):
        x = v.where(lc == code)
        n = int(x.count())
        # exact percentiles (linear) up to 512 MB, streamed through a fine histogram beyond
        ndvi_max = percentile_endmembers(x, 0.0, percentile)[1]
        sr_max = percentile_endmembers((1 + x) / (1 - x), 0.0, percentile)[1]
        rows.append(
            {
                "code": code,
                "n": n,
                "ndvi_min": float(ndvi_min),
                "ndvi_max": ndvi_max,
                "sr_min": float(sr_min),
                "sr_max": sr_max,
            }
        )
    return pd.DataFrame(rows, columns=["code", "n", "ndvi_min", "ndvi_max", "sr_min", "sr_max"])


#: Up to this size (the NDVI cube as float64) the end-members are exact percentiles of the
#: cube read once; beyond it each code streams the cube through a fine histogram
#: (karstflow.greening.percentile_endmembers), three passes a code.
EXACT_ENDMEMBER_BYTES = 512 * 2**20


def _endmembers_in_memory(
    ndvi: xr.DataArray, landcover: xr.DataArray, percentile: float, ndvi_min: float, sr_min: float
) -> pd.DataFrame:
    """:func:`fpar_endmembers` on a cube read once: the pixel-years of each code picked from
    it, the same values and so the same exact percentiles as one masked pass per code, which
    read the cube three times a code (9 codes at 16 Mpx x 4 years: 111 s before, 12 s; peak
    1.5 GB). The cube is held as stored (float32) and a code's values are made
    float64 and clipped as fpar_endmembers does, one code at a time."""
    nd, lc = (np.asarray(a.values) for a in xr.broadcast(ndvi, landcover))
    has_ndvi = ~np.isnan(nd)  # a code counts where it has NDVI, as lc.where(v.notnull())
    rows = []
    for code in sorted(int(c) for c in pd.unique(lc[has_ndvi]) if np.isfinite(c) and c >= 0):
        x = nd[(lc == code) & has_ndvi].astype(np.float64).clip(-0.999999, 0.999999)
        # percentiles do not depend on the order: partition x in place, then take SR from it
        ndvi_max = float(np.percentile(x, percentile, overwrite_input=True))
        sr = 1 - x
        np.divide(1 + x, sr, out=sr)
        rows.append(
            {
                "code": code,
                "n": int(x.size),
                "ndvi_min": float(ndvi_min),
                "ndvi_max": ndvi_max,
                "sr_min": float(sr_min),
                "sr_max": float(np.percentile(sr, percentile, overwrite_input=True)),
            }
        )
    return pd.DataFrame(rows, columns=["code", "n", "ndvi_min", "ndvi_max", "sr_min", "sr_max"])


def borrow_endmembers(table: pd.DataFrame, endmembers_of: Mapping[Any, Any], *, key: str) -> pd.DataFrame:
    """``table`` (:func:`fpar_endmembers`) with each non-vegetation code taking the NDVI_max
    and SR_max of the vegetation type ``endmembers_of`` maps it to (Zhu et al. 2006 give
    non-forest "other" types the grassland values). A mapped code absent from the table (no
    pixel) is skipped; a target type absent from it is an error naming ``key``."""
    out = table.set_index("code")
    for code, target in sorted((int(c), int(t)) for c, t in endmembers_of.items()):
        if target not in out.index:
            raise ValueError(
                f"config key {key}: code {code} takes the end-members of code {target}, which no pixel of "
                f"the land cover has; codes present: {sorted(int(c) for c in out.index)}"
            )
        if code in out.index:
            out.loc[code, ["ndvi_max", "sr_max"]] = out.loc[target, ["ndvi_max", "sr_max"]].to_numpy()
    return out.reset_index()


def landcover_endmembers(
    ndvi: xr.DataArray,
    landcovers: Mapping[int, xr.DataArray],
    *,
    percentile: float = 95.0,
    ndvi_min: float = 0.023,
    sr_min: float = 1.05,
    endmembers_of: Mapping[Any, Any] | None = None,
    key: str = "carbon.fpar.endmembers_of",
) -> pd.DataFrame:
    """The region's FPAR end-member table of stage npp: :func:`fpar_endmembers` over the
    pixel-years whose class is known, then :func:`borrow_endmembers`.

    A pixel-year between two land-cover maps counts for its code only where both maps give
    that code (:func:`landcover_bracket`: where they differ, the year of change is unknown).
    The percentiles pool every such pixel-year of the region, so the table is a region-wide
    figure: a tiled run computes it once on the whole region and every tile reads it.
    """
    years = [int(y) for y in np.asarray(ndvi["year"].values)]
    before, after, _ = landcover_bracket(landcovers, years)
    known = before.assign_coords(y=ndvi["y"], x=ndvi["x"]).where(before == after)
    table = fpar_endmembers(ndvi, known, percentile=percentile, ndvi_min=ndvi_min, sr_min=sr_min)
    return borrow_endmembers(table, endmembers_of or {}, key=key)


def endmembers_settings(fpar: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of config section ``carbon.fpar`` the end-member table depends on, in
    the form :func:`endmembers_record` stores them (JSON keys are strings)."""
    return {
        "percentile": float(fpar["max_percentile"]),
        "ndvi_min": float(fpar["ndvi_min"]),
        "sr_min": float(fpar["sr_min"]),
        "endmembers_of": {
            str(c): int(t) for c, t in sorted((fpar.get("endmembers_of") or {}).items(), key=lambda kv: int(kv[0]))
        },
    }


def endmembers_record(table: pd.DataFrame, **settings: Any) -> dict[str, Any]:
    """``table`` (:func:`landcover_endmembers`) as a JSON-ready dict: ``settings`` (the
    percentile and fixed minima it was computed with) and one entry per code. Floats keep
    every digit (JSON's repr round-trips them), so a reader gets the exact table back."""
    rows = [
        {
            "code": int(r["code"]),
            "n": int(r["n"]),
            **{k: float(r[k]) for k in ("ndvi_min", "ndvi_max", "sr_min", "sr_max")},
        }
        for r in table.to_dict("records")
    ]
    return {**settings, "endmembers": rows}


def endmembers_from_record(
    record: Mapping[str, Any], *, source: str = "FPAR end-members", expect: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """The end-member table of :func:`endmembers_record`; ``ValueError`` naming ``source``
    when an entry lacks a column or a setting differs from ``expect`` (a stale file)."""
    columns = ["code", "n", "ndvi_min", "ndvi_max", "sr_min", "sr_max"]
    rows = record.get("endmembers")
    if not isinstance(rows, list) or any(not isinstance(r, Mapping) or set(columns) - set(r) for r in rows):
        raise ValueError(f"{source}: expected 'endmembers', a list of entries with {columns}; found {rows!r:.200}")
    for name, value in (expect or {}).items():
        if record.get(name) != value:
            raise ValueError(f"{source}: computed with {name} {record.get(name)!r}, the configuration has {value!r}")
    table = pd.DataFrame([{c: r[c] for c in columns} for r in rows], columns=columns)
    return table.astype({"code": np.int64, "n": np.int64})


def endmember_maps(landcover: xr.DataArray, table: pd.DataFrame) -> tuple[xr.DataArray, xr.DataArray]:
    """NDVI_max and SR_max per pixel from :func:`fpar_endmembers`' table (NaN for a code
    without a row: FPAR_min there)."""
    ndvi_max = _code_lookup(landcover, dict(zip(table["code"], table["ndvi_max"], strict=True)))
    sr_max = _code_lookup(landcover, dict(zip(table["code"], table["sr_max"], strict=True)))
    return ndvi_max.rename("ndvi_max"), sr_max.rename("sr_max")


def _code_lookup(landcover: xr.DataArray, table: Mapping[Any, float]) -> xr.DataArray:
    """Value per pixel of its land-cover code (NaN where the code is NaN or not in ``table``)."""
    tab = {int(k): float(v) for k, v in table.items()}
    codes = np.unique(np.asarray(landcover.values))
    codes = codes[np.isfinite(codes)] if np.issubdtype(codes.dtype, np.floating) else codes
    lut = np.full(max([*tab, *[int(c) for c in codes], 0]) + 1, np.nan, dtype=np.float32)
    for k, v in tab.items():
        lut[k] = v

    def lookup(a: np.ndarray) -> np.ndarray:
        out = np.full(a.shape, np.nan, dtype=np.float32)
        ok = np.isfinite(a) if np.issubdtype(a.dtype, np.floating) else np.ones(a.shape, bool)
        out[ok] = lut[a[ok].astype(np.int64)]
        return out

    return xr.apply_ufunc(lookup, landcover, dask="parallelized", output_dtypes=[np.float32])


def optimal_temperature(ndvi: xr.DataArray, temperature_c: xr.DataArray, dim: str = "year") -> xr.DataArray:
    """T_opt of the annual mode: the temperature of the step (year) with the pixel's highest
    NDVI over the whole series (mean over ties). Monthly CASA takes T_opt per year instead
    (:func:`optimal_temperature_by_year`)."""
    peak = ndvi.max(dim, skipna=True)
    at_peak = (ndvi == peak) & ndvi.notnull()
    t_opt = temperature_c.where(at_peak).mean(dim, skipna=True).astype(np.float32)
    t_opt.name = "t_opt"
    t_opt.attrs = {"long_name": "optimal temperature (at peak NDVI)", "units": "degC"}
    return t_opt


def year_month(da: xr.DataArray, years: Any = None, *, dim: str = "time", source: str = "monthly cube") -> xr.DataArray:
    """A monthly ``(time, ...)`` series as ``(year, month, ...)``, months 1..12 of each year.

    ``years`` selects the years (default: every year in the series). Raises ``ValueError``
    naming ``source`` and the year when a selected year lacks any of its 12 months.
    """
    if dim not in da.dims:
        raise ValueError(f"{source}: no {dim!r} dimension (dims {tuple(da.dims)})")
    t = pd.DatetimeIndex(da[dim].values)
    want = sorted({int(y) for y in (t.year if years is None else years)})
    idx: list[int] = []
    for year in want:
        sel = np.nonzero(np.asarray(t.year == year))[0]
        months = t.month[sel].tolist()
        if sorted(months) != list(range(1, 13)):
            raise ValueError(
                f"{source}: year {year} has {len(sel)} monthly step(s) (months {sorted(set(months))}); "
                "12 months are needed"
            )
        idx.extend(int(i) for i in sel[np.argsort(t.month[sel])])
    picked = da.isel({dim: idx})
    out = picked.coarsen({dim: 12}).construct({dim: ("year", "month")})
    out = out.drop_vars(dim, errors="ignore").assign_coords(
        year=np.asarray(want, dtype=np.int32), month=np.arange(1, 13)
    )
    return out


def optimal_temperature_by_year(
    temperature_c: xr.DataArray,
    ndvi: xr.DataArray | None = None,
    *,
    peak_month: str | int = "warmest",
    month_dim: str = "month",
) -> xr.DataArray:
    """CASA T_opt per year: the mean temperature of the month of peak NDVI of that year
    (Potter et al. 1993), from ``(year, month, y, x)`` temperatures.

    With a monthly ``ndvi`` (carrying ``month_dim``) the month is the one with the year's
    highest NDVI (ties: mean of their temperatures). Without one (no NDVI, or an NDVI
    without months: the annual NDVI used for every month) the peak month is not observed
    and ``peak_month`` decides: ``"warmest"`` takes the year's warmest month, an integer
    1..12 that month. Returns ``(year, y, x)``.
    """
    t = temperature_c.astype(np.float64)
    if ndvi is not None and month_dim in ndvi.dims:
        peak = ndvi.max(month_dim, skipna=True)
        at_peak = (ndvi == peak) & ndvi.notnull()
        t_opt = t.where(at_peak).mean(month_dim, skipna=True)
        how = "month of peak NDVI of each year"
    elif peak_month == "warmest":
        t_opt = t.max(month_dim, skipna=True)
        how = "warmest month of each year (no monthly NDVI: month of peak NDVI taken as the warmest)"
    elif isinstance(peak_month, int | np.integer) and not isinstance(peak_month, bool) and 1 <= int(peak_month) <= 12:
        t_opt = t.sel({month_dim: int(peak_month)}, drop=True)
        how = f"month {int(peak_month)} of each year (no monthly NDVI: configured peak month)"
    else:
        raise ValueError(
            f"config key carbon.ndvi_peak_month: expected 'warmest' or a month 1..12, found {peak_month!r}"
        )
    t_opt = t_opt.astype(np.float32)
    t_opt.name = "t_opt"
    t_opt.attrs = {"long_name": "optimal temperature (CASA T_opt)", "units": "degC", "method": how}
    return t_opt


def temperature_stress(temperature_c: xr.DataArray, t_opt: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """CASA T_e1 and T_e2 (Potter et al. 1993); see the module docstring."""
    t = temperature_c.astype(np.float64)
    to = t_opt.astype(np.float64)
    t_e1 = (0.8 + 0.02 * to - 0.0005 * to**2).broadcast_like(t)
    t_e1 = t_e1.where(~(t <= -10.0), 0.0).where(t.notnull())

    def te2(temp: Any) -> Any:
        return 1.1814 / (1 + np.exp(0.2 * (to - 10 - temp))) / (1 + np.exp(0.3 * (-to - 10 + temp)))

    t_e2 = te2(t)
    far = (t > to + 10) | (t < to - 13)
    t_e2 = t_e2.where(~far, te2(to) / 2)
    dims = temperature_c.dims
    return (
        t_e1.transpose(*dims).astype(np.float32).rename("t_e1"),
        t_e2.transpose(*dims).astype(np.float32).rename("t_e2"),
    )


def budyko_fu_aet_ratio(precip_mm: xr.DataArray, pet_mm: xr.DataArray, omega: float = 2.6) -> xr.DataArray:
    """AET / PET from Fu's equation: 1 + P/PET - (1 + (P/PET)^omega)^(1/omega), in [0, 1]."""
    if not omega > 1:
        raise ValueError(f"Fu's omega must be > 1, found {omega!r}")
    pet = pet_mm.astype(np.float64)
    phi = precip_mm.astype(np.float64).clip(min=0) / pet.where(pet > 0)
    ratio = (1 + phi - (1 + phi**omega) ** (1 / omega)).clip(0.0, 1.0)
    # no evaporative demand: no water stress
    ratio = ratio.where(~(pet <= 0), 1.0)
    return ratio.astype(np.float32).rename("aet_pet_ratio")


def water_stress(aet_pet_ratio: xr.DataArray) -> xr.DataArray:
    """W_e = 0.5 + 0.5 * AET / PET (Potter et al. 1993)."""
    w = (0.5 + 0.5 * aet_pet_ratio.astype(np.float64).clip(0.0, 1.0)).astype(np.float32)
    w.name = "w_e"
    return w


def casa_npp(
    ndvi: xr.DataArray,
    solar_mj_m2: xr.DataArray,
    temperature_c: xr.DataArray,
    w_e: xr.DataArray,
    epsilon_max: xr.DataArray,
    *,
    ndvi_min: float | xr.DataArray,
    ndvi_max: float | xr.DataArray,
    fpar_min: float = 0.001,
    fpar_max: float = 0.95,
    ndvi_weight: float = 0.5,
    dim: str = "year",
    sr_min: float | xr.DataArray | None = None,
    sr_max: float | xr.DataArray | None = None,
    t_opt: xr.DataArray | None = None,
) -> xr.Dataset:
    """CASA NPP per step (g C m-2 per step) with its factors, lazily.

    ``epsilon_max`` (g C MJ-1) may be ``(y, x)`` or carry ``dim`` (land cover changing
    over time); the FPAR end-members may be scalars or per-pixel arrays. ``t_opt``
    (broadcastable to the steps) defaults to :func:`optimal_temperature` over ``dim``
    (the annual mode); ``ndvi`` may lack dims of the climate (an annual NDVI for every
    month). Returns a Dataset with ``npp``, ``apar``, ``fpar``, ``epsilon``, ``t_e1``,
    ``t_e2``, ``w_e`` (step-wise) and ``t_opt``.
    """
    fpar = fpar_from_ndvi(
        ndvi,
        ndvi_min,
        ndvi_max,
        fpar_min=fpar_min,
        fpar_max=fpar_max,
        ndvi_weight=ndvi_weight,
        sr_min=sr_min,
        sr_max=sr_max,
    )
    apar = (solar_mj_m2.astype(np.float64) * fpar * PAR_FRACTION).astype(np.float32)
    if t_opt is None:
        t_opt = optimal_temperature(ndvi, temperature_c, dim)
    t_e1, t_e2 = temperature_stress(temperature_c, t_opt)
    eps = (t_e1.astype(np.float64) * t_e2 * w_e * epsilon_max).astype(np.float32)
    npp = (apar.astype(np.float64) * eps).astype(np.float32)
    # the climate's dim order (year, month, y, x), with any dims only the NDVI has
    dims = xr.broadcast(solar_mj_m2, temperature_c, ndvi)[0].dims
    npp, apar, fpar, eps = (v.transpose(*dims, missing_dims="ignore") for v in (npp, apar, fpar, eps))
    ds = xr.Dataset(
        {
            "npp": npp.assign_attrs(long_name="net primary production (CASA)", units="g C m-2 per step"),
            "apar": apar.assign_attrs(long_name="absorbed PAR", units="MJ m-2 per step"),
            "fpar": fpar,
            "epsilon": eps.assign_attrs(long_name="light use efficiency", units="g C MJ-1"),
            "t_e1": t_e1.transpose(*dims, missing_dims="ignore").assign_attrs(units="1"),
            "t_e2": t_e2.transpose(*dims, missing_dims="ignore").assign_attrs(units="1"),
            "w_e": w_e.astype(np.float32).broadcast_like(npp).transpose(*dims).assign_attrs(units="1"),
            "t_opt": t_opt,
        }
    )
    ds.attrs.update(
        fpar_min=float(fpar_min),
        fpar_max=float(fpar_max),
        ndvi_weight=float(ndvi_weight),
        par_fraction=PAR_FRACTION,
    )
    if isinstance(ndvi_min, int | float) and isinstance(ndvi_max, int | float):
        ds.attrs.update(ndvi_min=float(ndvi_min), ndvi_max=float(ndvi_max))
    return ds


def casa_monthly(
    ndvi: xr.DataArray,
    climate: xr.Dataset,
    epsilon_max: xr.DataArray,
    *,
    ndvi_min: float | xr.DataArray,
    ndvi_max: float | xr.DataArray,
    sr_min: float | xr.DataArray | None = None,
    sr_max: float | xr.DataArray | None = None,
    fpar_min: float = 0.001,
    fpar_max: float = 0.95,
    ndvi_weight: float = 0.5,
    omega: float = 2.6,
    peak_month: str | int = "warmest",
) -> xr.Dataset:
    """Monthly CASA NPP, Pei et al. (2009) Rh and NEP, summed to years (see the module
    docstring).

    ``climate`` holds ``temperature_c`` (degC), ``precipitation_mm``, ``solar_mj_m2`` and
    ``eto_mm`` (per month) on ``(year, month, y, x)`` (:func:`year_month`). ``ndvi`` is
    ``(year, month, y, x)`` (monthly NDVI) or ``(year, y, x)`` (the year's NDVI for each
    of its months; T_opt then from ``peak_month``). ``epsilon_max`` and the end-members
    may be ``(y, x)`` or ``(year, y, x)``. Returns ``npp``, ``rh``, ``nep`` (g C m-2 yr-1,
    ``(year, y, x)``), ``t_opt`` (degC, per year), ``w_e`` (per year), ``t_stress_apar``
    (the APAR-weighted T_e1 T_e2 of the year) and the monthly ``npp_month`` and
    ``rh_month`` (g C m-2 month-1, ``(year, month, y, x)``).
    """
    missing = [v for v in ("temperature_c", "precipitation_mm", "solar_mj_m2", "eto_mm") if v not in climate]
    if missing:
        raise ValueError(f"monthly CASA: climate lacks {missing}; found {sorted(map(str, climate.data_vars))}")
    if "month" not in climate.dims:
        raise ValueError(
            f"monthly CASA: climate needs a month dimension (year, month, y, x); dims {dict(climate.sizes)}"
        )
    temp = climate["temperature_c"]
    t_opt = optimal_temperature_by_year(temp, ndvi, peak_month=peak_month)
    p_year = climate["precipitation_mm"].sum("month", skipna=False)
    eto_year = climate["eto_mm"].sum("month", skipna=False)
    w_e = water_stress(budyko_fu_aet_ratio(p_year, eto_year, omega=omega))
    casa = casa_npp(
        ndvi,
        climate["solar_mj_m2"],
        temp,
        w_e,
        epsilon_max,
        ndvi_min=ndvi_min,
        ndvi_max=ndvi_max,
        sr_min=sr_min,
        sr_max=sr_max,
        fpar_min=fpar_min,
        fpar_max=fpar_max,
        ndvi_weight=ndvi_weight,
        t_opt=t_opt,
    )
    valid = ndvi.notnull()
    npp_month = casa["npp"].where(valid)
    rh_month = heterotrophic_respiration(temp, climate["precipitation_mm"], months_per_step=1)
    has = valid.any("month") if "month" in valid.dims else valid
    npp = npp_month.sum("month", skipna=False).where(has)
    rh = rh_month.sum("month", skipna=False)
    apar = casa["apar"].astype(np.float64)
    stress = casa["t_e1"].astype(np.float64) * casa["t_e2"]
    t_stress = ((apar * stress).sum("month") / apar.sum("month").where(apar.sum("month") > 0)).where(has)
    unit = "g C m-2 yr-1"
    out = xr.Dataset(
        {
            "npp": npp.astype(np.float32).assign_attrs(
                long_name="net primary production (CASA, months summed)", units=unit
            ),
            "rh": rh.astype(np.float32).assign_attrs(
                long_name="heterotrophic respiration (Pei et al. 2009, months summed)", units=unit
            ),
            "nep": (npp - rh)
            .astype(np.float32)
            .assign_attrs(long_name="net ecosystem production, NPP - Rh", units=unit),
            "t_opt": t_opt,
            "w_e": w_e.assign_attrs(long_name="water stress (Fu's curve on the year's totals)", units="1"),
            "t_stress_apar": t_stress.astype(np.float32).assign_attrs(
                long_name="APAR-weighted temperature stress T_e1 T_e2 of the year", units="1"
            ),
            "npp_month": npp_month.astype(np.float32).assign_attrs(units="g C m-2 month-1"),
            "rh_month": rh_month.astype(np.float32).assign_attrs(units="g C m-2 month-1"),
        }
    )
    out.attrs.update(casa.attrs)
    return out


def heterotrophic_respiration(
    temperature_c: xr.DataArray, precip_mm: xr.DataArray, *, months_per_step: float = 12
) -> xr.DataArray:
    """Rh (g C m-2 per step) after Pei et al. (2009), spread over ``months_per_step`` months."""
    if not months_per_step > 0:
        raise ValueError(f"months_per_step must be > 0, found {months_per_step!r}")
    m = float(months_per_step)
    t = temperature_c.astype(np.float64)
    r = precip_mm.astype(np.float64).clip(min=0) / m
    # DataArrays through numpy ufuncs stay DataArrays (__array_ufunc__; numpy's stubs say ndarray)
    rh_month = cast(xr.DataArray, 0.22 * (np.exp(0.0913 * t) + np.log(0.3145 * r + 1)) * 30 * 0.465)
    rh = (m * rh_month).astype(np.float32)
    rh.name = "rh"
    rh.attrs = {
        "long_name": "heterotrophic respiration (Pei et al. 2009)",
        "units": "g C m-2 per step",
        "months_per_step": m,
    }
    return rh


# --------------------------------------------------------------------------------------
# land cover, epsilon_max and the InVEST carbon pools
# --------------------------------------------------------------------------------------


def landcover_by_year(landcovers: Mapping[int, xr.DataArray], years: Any, dim: str = "year") -> xr.DataArray:
    """A ``(year, y, x)`` land-cover cube: each year takes the map of the nearest year.

    Ties (a year midway between two maps) take the earlier map.
    """
    if not landcovers:
        raise ValueError("no land-cover maps given")
    have = np.array(sorted(int(y) for y in landcovers))
    layers = []
    for year in np.asarray(years).tolist():
        nearest = int(have[np.argmin(np.abs(have - int(year)))])
        layers.append(
            landcovers[nearest].drop_vars([c for c in ("band", "spatial_ref") if c in landcovers[nearest].coords])
        )
    cube = xr.concat(layers, dim=dim).assign_coords({dim: np.asarray(years)})
    cube.name = "landcover"
    return cube


def landcover_bracket(
    landcovers: Mapping[int, xr.DataArray], years: Any, dim: str = "year"
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """The land cover each year sits between: ``(before, after, weight)``.

    ``before`` / ``after`` are ``(year, y, x)`` cubes of the map of the nearest map year at
    or before / at or after each year (outside the maps' span both are the end map), and
    ``weight`` (over ``dim``) the share of the later map, ``(t - t0) / (t1 - t0)`` (0 outside
    the span and on a map year). A pixel whose class differs between two maps changed in an
    unobserved year between them; with that year uniform over the interval, the expected
    value of anything computed from the class in year t is ``(1 - w) f(before) + w
    f(after)``. Blending so avoids the step that taking the nearest map puts at the interval's
    midpoint (with per-type FPAR end-members the demo's changed pixels lost a third of their
    NPP in one year).
    """
    if not landcovers:
        raise ValueError("no land-cover maps given")
    have = sorted(int(y) for y in landcovers)
    clean = {
        y: landcovers[y].drop_vars([c for c in ("band", "spatial_ref") if c in landcovers[y].coords]) for y in have
    }
    before, after, weight = [], [], []
    for year in np.asarray(years).tolist():
        t = int(year)
        t0 = max([y for y in have if y <= t], default=have[0])
        t1 = min([y for y in have if y >= t], default=have[-1])
        before.append(clean[t0])
        after.append(clean[t1])
        weight.append(0.0 if t1 == t0 else (t - t0) / (t1 - t0))
    coords = {dim: np.asarray(years)}
    cube0 = xr.concat(before, dim=dim).assign_coords(coords).rename("landcover")
    cube1 = xr.concat(after, dim=dim).assign_coords(coords).rename("landcover")
    w = xr.DataArray(np.asarray(weight, dtype=np.float32), dims=(dim,), coords=coords, name="landcover_weight")
    return cube0, cube1, w


def epsilon_max_map(
    landcover: xr.DataArray, epsilon_max: Mapping[Any, float], *, source: str = "land cover"
) -> xr.DataArray:
    """epsilon_max (g C MJ-1) per pixel from its land-cover code; NaN where the code is NaN.

    Raises ``ValueError`` naming ``source`` and the codes present in the map but missing
    from the table.
    """
    table = {int(k): float(v) for k, v in epsilon_max.items()}
    codes = np.unique(np.asarray(landcover.values))
    codes = codes[np.isfinite(codes)] if np.issubdtype(codes.dtype, np.floating) else codes
    missing = sorted({int(c) for c in codes} - set(table))
    if missing:
        raise ValueError(
            f"{source}: land-cover code(s) {missing} have no epsilon_max (config key carbon.epsilon_max); "
            f"configured codes: {sorted(table)}"
        )
    eps = _code_lookup(landcover, table)
    eps.name = "epsilon_max"
    eps.attrs = {"long_name": "maximum light use efficiency", "units": "g C MJ-1"}
    return eps


def read_carbon_pools(table: pd.DataFrame, *, source: str = "carbon pools table") -> dict[int, float]:
    """Validate an InVEST carbon-pool table; return lucode -> total (Mg C ha-1)."""
    missing = [c for c in ("lucode", *CARBON_POOLS) if c not in table.columns]
    if missing:
        raise ValueError(
            f"{source}: missing column(s) {missing}; an InVEST carbon-pool table needs lucode, "
            f"{', '.join(CARBON_POOLS)} (Mg C/ha); found {list(table.columns)}"
        )
    if table["lucode"].duplicated().any():
        raise ValueError(f"{source}: duplicate lucode(s) {sorted(table.loc[table['lucode'].duplicated(), 'lucode'])}")
    pools = table[list(CARBON_POOLS)].astype(float)
    if pools.isna().any().any() or (pools < 0).any().any():
        raise ValueError(f"{source}: carbon pools must be non-negative numbers (Mg C/ha)")
    return {int(k): float(v) for k, v in zip(table["lucode"], pools.sum(axis=1), strict=True)}


def carbon_storage(landcover: xr.DataArray, pools: pd.DataFrame, *, source: str = "land cover") -> xr.DataArray:
    """Carbon storage density (Mg C ha-1) = c_above + c_below + c_soil + c_dead of the class."""
    totals = read_carbon_pools(pools)
    density = epsilon_max_map(landcover, totals, source=source)  # the same table lookup
    density.name = "carbon_storage"
    density.attrs = {"long_name": "carbon storage density (InVEST carbon pools)", "units": "Mg C ha-1"}
    return density


def storage_total_mg(density: xr.DataArray, pixel_area_ha: float) -> float:
    """Total carbon stock (Mg C) of a density map (Mg C ha-1)."""
    return float(np.nansum(np.asarray(density.values, dtype=np.float64)) * pixel_area_ha)


def npp_summary(npp: xr.Dataset, trend: xr.Dataset, *, pixel_area_m2: float) -> dict[str, Any]:
    """Headline NPP/Rh/NEP figures and the NPP trend (stage npp, ``carbon/npp.json``).

    Means are per m2 of pixels with data; totals in Gg C (1e9 g) per year.
    """
    from karstflow.trends import TREND_CLASSES, TREND_NODATA

    out: dict[str, Any] = {}
    for var in ("npp", "rh", "nep"):
        da = npp[var]
        yearly = da.mean(("y", "x"), skipna=True).values.astype(float)
        totals = da.sum(("y", "x"), skipna=True).values.astype(float) * pixel_area_m2 / 1e9
        out[f"{var}_mean_g_c_m2_yr"] = float(np.nanmean(yearly))
        out[f"{var}_mean_g_c_m2_yr_by_year"] = {
            str(int(y)): float(v) for y, v in zip(npp["year"].values, yearly, strict=True)
        }
        out[f"{var}_total_gg_c_yr_mean"] = float(np.nanmean(totals))
    cls = np.asarray(trend["trend_class"].values)
    slope = np.asarray(trend["slope"].values, dtype=float)
    tested = cls != TREND_NODATA
    n = int(tested.sum())
    out["npp_trend_slope_mean_g_c_m2_yr2"] = float(slope[tested].mean()) if n else float("nan")
    out["npp_trend_class_share"] = {
        NPP_TREND_CLASSES[code]: (float((cls == code).sum() / n) if n else float("nan")) for code in TREND_CLASSES
    }
    if not math.isfinite(out["npp_mean_g_c_m2_yr"]):
        log.warning("mean NPP is not finite: no pixel with data?")
    return out


def storage_summary(
    storage: Mapping[int, xr.DataArray], *, pixel_area_m2: float, sequestration_years: tuple[int, int]
) -> dict[str, Any]:
    """Carbon storage totals and means per year and the sequestration between two years
    (stage carbon, ``carbon/carbon.json``); one map gives no sequestration (NaN)."""
    area_ha = pixel_area_m2 / 1e4
    out: dict[str, Any] = {}
    stocks = {int(y): storage_total_mg(d, area_ha) for y, d in storage.items()}
    out["carbon_storage_total_mg_c"] = {str(y): v for y, v in sorted(stocks.items())}
    out["carbon_storage_mean_mg_c_ha"] = {
        str(y): float(np.nanmean(np.asarray(d.values, dtype=float))) for y, d in sorted(storage.items())
    }
    y0, y1 = (int(y) for y in sequestration_years)
    seq = stocks[y1] - stocks[y0]
    out["sequestration"] = {
        "from_year": y0,
        "to_year": y1,
        "total_mg_c": seq if y1 != y0 else float("nan"),
        "mg_c_per_yr": seq / (y1 - y0) if y1 != y0 else float("nan"),
    }
    return out


def carbon_summary(
    npp: xr.Dataset,
    trend: xr.Dataset,
    storage: Mapping[int, xr.DataArray],
    *,
    pixel_area_m2: float,
    sequestration_years: tuple[int, int],
) -> dict[str, Any]:
    """Both summaries in one dict (:func:`npp_summary` and :func:`storage_summary`)."""
    return {
        **npp_summary(npp, trend, pixel_area_m2=pixel_area_m2),
        **storage_summary(storage, pixel_area_m2=pixel_area_m2, sequestration_years=sequestration_years),
    }

"""Carbon: CASA net primary production, heterotrophic respiration, NEP, carbon storage.

Pure functions over xarray, lazy on dask-backed cubes; no paths. Every formula is
applied per time step of the cubes (``dim``, ``"year"`` in the workflow), so monthly
cubes work the same way as annual ones; the annual simplifications are marked.

CASA (Potter et al. 1993; Field et al. 1995; the Chinese parameterisation of Zhu Wenquan
et al. 2006, 2007)::

    NPP   = APAR * epsilon                                   g C m-2 per step
    APAR  = SOL * FPAR * 0.5                                 MJ m-2 per step
    epsilon = T_e1 * T_e2 * W_e * epsilon_max                g C MJ-1

* SOL: total incoming solar radiation per step (MJ m-2); 0.5 is the share of
  photosynthetically active radiation (400-700 nm) in it.
* FPAR (Zhu et al. 2006: the mean of the NDVI- and the simple-ratio-based estimates)::

      FPAR_NDVI = (NDVI - NDVI_min) / (NDVI_max - NDVI_min) * (FPAR_max - FPAR_min) + FPAR_min
      FPAR_SR   = (SR - SR_min) / (SR_max - SR_min) * (FPAR_max - FPAR_min) + FPAR_min,
                  SR = (1 + NDVI) / (1 - NDVI)
      FPAR      = w * FPAR_NDVI + (1 - w) * FPAR_SR,  w = 0.5

  clipped to [FPAR_min, FPAR_max] = [0.001, 0.95]; NDVI_min and NDVI_max are the 5th
  and 95th percentiles of the region's NDVI (Zhu et al. take them per vegetation type;
  one pair per region is the simplification used here), SR_min / SR_max follow from them.
* Temperature stress (Potter et al. 1993)::

      T_e1 = 0.8 + 0.02 T_opt - 0.0005 T_opt^2      (0 where T <= -10 degC)
      T_e2 = 1.1814 / (1 + exp(0.2 (T_opt - 10 - T))) / (1 + exp(0.3 (-T_opt - 10 + T)))
             and half of T_e2(T_opt) where T > T_opt + 10 or T < T_opt - 13

  with T the mean air temperature of the step (degC) and T_opt the temperature of the
  step with the highest NDVI of the pixel's series (CASA: the month of peak NDVI; with
  annual steps, the year of peak NDVI -- a simplification, documented in the outputs).
* Water stress: ``W_e = 0.5 + 0.5 * AET / PET`` (Potter et al. 1993). CASA takes AET
  from a soil-water balance; from annual precipitation P and reference ET (PET) alone,
  AET is taken from Fu's Budyko curve (Fu 1981; Zhang et al. 2004)::

      AET / PET = 1 + P/PET - (1 + (P/PET)^omega)^(1/omega),   omega = 2.6

  which is meant for annual (or longer) totals.

Heterotrophic respiration (Pei Zhiyong et al. 2009, from a soil-respiration relation of
Chinese ecosystems; T monthly mean degC, R monthly precipitation mm)::

    Rh_month = 0.22 * (exp(0.0913 T) + ln(0.3145 R + 1)) * 30 * 46.5 %    g C m-2 month-1

For a step of ``m`` months with mean temperature T and total precipitation P the step
value is ``m * Rh_month(T, P / m)``, i.e. each month is given the step's mean
temperature and an equal share of its precipitation (annual steps: m = 12). Because
exp() is convex, ignoring the seasonal temperature cycle underestimates Rh somewhat;
use monthly cubes (m = 1) where they exist. NEP = NPP - Rh (g C m-2 per step; > 0 is a
sink).

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
    "casa_npp",
    "epsilon_max_map",
    "fpar_from_ndvi",
    "heterotrophic_respiration",
    "landcover_by_year",
    "optimal_temperature",
    "read_carbon_pools",
    "storage_total_mg",
    "temperature_stress",
    "water_stress",
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
    ndvi_min: float,
    ndvi_max: float,
    *,
    fpar_min: float = 0.001,
    fpar_max: float = 0.95,
    ndvi_weight: float = 0.5,
) -> xr.DataArray:
    """FPAR as the weighted mean of the NDVI- and SR-based linear estimates (Zhu et al. 2006)."""
    if not (-1 < ndvi_min < ndvi_max < 1):
        raise ValueError(f"FPAR needs -1 < NDVI_min < NDVI_max < 1, found {ndvi_min!r}, {ndvi_max!r}")
    if not (0 <= fpar_min < fpar_max <= 1):
        raise ValueError(f"FPAR needs 0 <= FPAR_min < FPAR_max <= 1, found {fpar_min!r}, {fpar_max!r}")
    if not 0 <= ndvi_weight <= 1:
        raise ValueError(f"ndvi_weight must be in [0, 1], found {ndvi_weight!r}")
    span = fpar_max - fpar_min
    sr_min = (1 + ndvi_min) / (1 - ndvi_min)
    sr_max = (1 + ndvi_max) / (1 - ndvi_max)
    v = ndvi.astype(np.float64).clip(-0.999999, 0.999999)
    f_ndvi = (v - ndvi_min) / (ndvi_max - ndvi_min) * span + fpar_min
    sr = (1 + v) / (1 - v)
    f_sr = (sr - sr_min) / (sr_max - sr_min) * span + fpar_min
    fpar = (ndvi_weight * f_ndvi + (1 - ndvi_weight) * f_sr).clip(fpar_min, fpar_max)
    fpar = fpar.where(ndvi.notnull()).astype(np.float32)
    fpar.name = "fpar"
    fpar.attrs = {"long_name": "fraction of absorbed PAR", "units": "1"}
    return fpar


def optimal_temperature(ndvi: xr.DataArray, temperature_c: xr.DataArray, dim: str = "year") -> xr.DataArray:
    """T_opt: the temperature of the step with the pixel's highest NDVI (mean over ties)."""
    peak = ndvi.max(dim, skipna=True)
    at_peak = (ndvi == peak) & ndvi.notnull()
    t_opt = temperature_c.where(at_peak).mean(dim, skipna=True).astype(np.float32)
    t_opt.name = "t_opt"
    t_opt.attrs = {"long_name": "optimal temperature (at peak NDVI)", "units": "degC"}
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
    ndvi_min: float,
    ndvi_max: float,
    fpar_min: float = 0.001,
    fpar_max: float = 0.95,
    ndvi_weight: float = 0.5,
    dim: str = "year",
) -> xr.Dataset:
    """CASA NPP per step (g C m-2 per step) with its factors, lazily.

    ``epsilon_max`` (g C MJ-1) may be ``(y, x)`` or carry ``dim`` (land cover changing
    over time). Returns a Dataset with ``npp``, ``apar``, ``fpar``, ``epsilon``,
    ``t_e1``, ``t_e2``, ``w_e`` (step-wise) and ``t_opt`` (per pixel).
    """
    fpar = fpar_from_ndvi(ndvi, ndvi_min, ndvi_max, fpar_min=fpar_min, fpar_max=fpar_max, ndvi_weight=ndvi_weight)
    apar = (solar_mj_m2.astype(np.float64) * fpar * PAR_FRACTION).astype(np.float32)
    t_opt = optimal_temperature(ndvi, temperature_c, dim)
    t_e1, t_e2 = temperature_stress(temperature_c, t_opt)
    eps = (t_e1.astype(np.float64) * t_e2 * w_e * epsilon_max).astype(np.float32)
    npp = (apar.astype(np.float64) * eps).astype(np.float32)
    dims = ndvi.dims
    npp, apar, fpar, eps = (v.transpose(*dims) for v in (npp, apar, fpar, eps))
    ds = xr.Dataset(
        {
            "npp": npp.assign_attrs(long_name="net primary production (CASA)", units="g C m-2 per step"),
            "apar": apar.assign_attrs(long_name="absorbed PAR", units="MJ m-2 per step"),
            "fpar": fpar,
            "epsilon": eps.assign_attrs(long_name="light use efficiency", units="g C MJ-1"),
            "t_e1": t_e1.transpose(*dims).assign_attrs(units="1"),
            "t_e2": t_e2.transpose(*dims).assign_attrs(units="1"),
            "w_e": w_e.astype(np.float32).broadcast_like(ndvi).transpose(*dims).assign_attrs(units="1"),
            "t_opt": t_opt,
        }
    )
    ds.attrs.update(
        ndvi_min=float(ndvi_min), ndvi_max=float(ndvi_max), fpar_min=float(fpar_min), fpar_max=float(fpar_max),
        ndvi_weight=float(ndvi_weight), par_fraction=PAR_FRACTION,
    )
    return ds


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
    lut = np.full(max([*table, *[int(c) for c in codes], 0]) + 1, np.nan, dtype=np.float32)
    for k, v in table.items():
        lut[k] = v

    def lookup(a: np.ndarray) -> np.ndarray:
        out = np.full(a.shape, np.nan, dtype=np.float32)
        ok = np.isfinite(a) if np.issubdtype(a.dtype, np.floating) else np.ones(a.shape, bool)
        out[ok] = lut[a[ok].astype(np.int64)]
        return out

    eps = xr.apply_ufunc(lookup, landcover, dask="parallelized", output_dtypes=[np.float32])
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

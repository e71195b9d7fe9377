"""Monthly climate cubes on the region grid, FAO-56 reference ET and the annual climate cube.

karstflow's CASA NPP (:mod:`karstflow.carbon`) and the InVEST-style services
(:mod:`karstflow.services`) read an *annual* climate cube: a NetCDF with dims
``(year, y, x)`` and the variables ``temperature_c`` (degC, annual mean of monthly means),
``precipitation_mm``, ``solar_mj_m2`` and ``eto_mm`` (annual sums). This module builds that
cube from monthly data:

* cached GeoTIFF tiles written by the remote sources (Earth Engine, STAC), one band per
  provider variable and month with the band description ``<variable>_<YYYY-MM>`` and a
  GDAL ``units`` tag, values already in the provider's physical units
  (:func:`read_monthly_bands`);
* a local CF NetCDF or GeoTIFF in any CRS (:func:`read_monthly_local`);
* provider recipes: ERA5-Land monthly aggregates (:func:`era5_land_to_monthly`, ETo by
  FAO-56 Penman-Monteith, :func:`fao56_eto_monthly`) and TerraClimate
  (:func:`terraclimate_to_monthly`, its Penman-Monteith ``pet`` kept);
* :func:`annual_from_monthly`: months to years (means for temperature, sums otherwise).

Every conversion goes through one table (:data:`UNIT_CONVERSIONS`); a unit the table does
not know, or a variable without a unit, is an error naming the file, the variable and the
unit found. Every dataset returned carries ``units`` per variable and ``source`` /
``conversions`` attributes saying where the numbers came from and what was done to them.

References
----------
Allen, R.G., Pereira, L.S., Raes, D., Smith, M. (1998). Crop evapotranspiration - Guidelines
for computing crop water requirements. FAO Irrigation and Drainage Paper 56. Equation
numbers below are the paper's.
Munoz Sabater, J. (2019). ERA5-Land monthly averaged data from 1981 to present. Copernicus
C3S CDS; Earth Engine ``ECMWF/ERA5_LAND/MONTHLY_AGGR`` (flow bands ``*_sum`` are monthly
sums, the other bands monthly means of the hourly fields).
Abatzoglou, J.T., Dobrowski, S.Z., Parks, S.A., Hegewisch, K.C. (2018). TerraClimate, a
high-resolution global dataset of monthly climate and climatic water balance from
1958-2015. Scientific Data 5, 170191 (``pet`` is FAO-56 Penman-Monteith reference ET).
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr

from karstflow.grid import RegionGrid

log = logging.getLogger(__name__)

__all__ = [
    "MONTHLY_VARIABLES",
    "ERA5_LAND_BANDS",
    "TERRACLIMATE_BANDS",
    "UNIT_CONVERSIONS",
    "normalise_unit",
    "convert_units",
    "saturation_vapour_pressure",
    "extraterrestrial_radiation",
    "daylight_hours",
    "month_day_of_year",
    "fao56_terms",
    "fao56_eto_monthly",
    "monthly_soil_heat_flux",
    "era5_land_to_monthly",
    "terraclimate_to_monthly",
    "read_monthly_bands",
    "read_monthly_local",
    "annual_from_monthly",
]

#: Canonical monthly variables: units (per month for fluxes), what the monthly value is,
#: and how months combine into the annual cube that carbon/services read.
MONTHLY_VARIABLES: dict[str, dict[str, str]] = {
    "temperature_c": {
        "units": "degC",
        "long_name": "air temperature at 2 m, monthly mean",
        "annual": "mean",
        "annual_units": "degC",
    },
    "precipitation_mm": {
        "units": "mm month-1",
        "long_name": "precipitation, monthly total",
        "annual": "sum",
        "annual_units": "mm yr-1",
    },
    "solar_mj_m2": {
        "units": "MJ m-2 month-1",
        "long_name": "incoming shortwave (global) radiation at the surface, monthly total",
        "annual": "sum",
        "annual_units": "MJ m-2 yr-1",
    },
    "eto_mm": {
        "units": "mm month-1",
        "long_name": "FAO-56 grass reference evapotranspiration, monthly total",
        "annual": "sum",
        "annual_units": "mm yr-1",
    },
}

#: Earth Engine ``ECMWF/ERA5_LAND/MONTHLY_AGGR`` bands used here and their catalog units.
#: ``temperature_2m_min``/``_max`` are the month's extremes of the hourly field (not means of
#: daily extremes), so they are not used for FAO-56 eq. 12 (see :func:`era5_land_to_monthly`).
ERA5_LAND_BANDS: dict[str, str] = {
    "temperature_2m": "K",
    "temperature_2m_min": "K",
    "temperature_2m_max": "K",
    "dewpoint_temperature_2m": "K",
    "surface_pressure": "Pa",
    "u_component_of_wind_10m": "m s-1",
    "v_component_of_wind_10m": "m s-1",
    "surface_net_solar_radiation_sum": "J m-2",
    "surface_net_thermal_radiation_sum": "J m-2",
    "surface_solar_radiation_downwards_sum": "J m-2",
    "total_precipitation_sum": "m",
}

#: TerraClimate variables each ETo choice reads (what a source needs to pull).
TERRACLIMATE_NEEDED: dict[str, tuple[str, ...]] = {
    "pet": ("tmmx", "tmmn", "pr", "srad", "pet"),
    "fao56": ("tmmx", "tmmn", "pr", "srad", "vap", "vs"),
}
#: Earth Engine ``IDAHO_EPSCOR/TERRACLIMATE`` bands used here and their units after the
#: catalog scale factors (tmmx/tmmn 0.1 degC, srad 0.1 W m-2, pet 0.1 mm, vap 0.001 kPa,
#: vs 0.01 m s-1, wind at 10 m).
TERRACLIMATE_BANDS: dict[str, str] = {
    "tmmx": "degC",
    "tmmn": "degC",
    "pr": "mm",
    "srad": "W m-2",
    "pet": "mm",
    "vap": "kPa",
    "vs": "m s-1",
}

_DESCRIPTION = re.compile(r"^(?P<var>.+)_(?P<year>\d{4})-(?P<month>\d{2})$")

# --------------------------------------------------------------------------------------
# units
# --------------------------------------------------------------------------------------

# Spellings seen in CF files, GDAL tags and catalogs -> one canonical spelling.
_UNIT_ALIASES: dict[str, str] = {
    "k": "K",
    "kelvin": "K",
    "degk": "K",
    "degc": "degC",
    "deg_c": "degC",
    "°c": "degC",
    "c": "degC",
    "celsius": "degC",
    "degree_celsius": "degC",
    "degrees_celsius": "degC",
    "degrees c": "degC",
    "m": "m",
    "m of water equivalent": "m",
    "mm": "mm",
    "kg m-2": "mm",  # 1 kg of water per m2 is 1 mm
    # "mm/m" is what bcsd_obs_1999.nc (Maurer et al. 2002) says for monthly sums
    "mm/m": "mm month-1",
    "mm/month": "mm month-1",
    "mm month-1": "mm month-1",
    "mm mon-1": "mm month-1",
    "mm/mon": "mm month-1",
    "kg m-2 month-1": "mm month-1",
    "kg m-2 s-1": "kg m-2 s-1",
    "kg/m2/s": "kg m-2 s-1",
    "kg m-2s-1": "kg m-2 s-1",
    "mm s-1": "kg m-2 s-1",
    "mm/s": "kg m-2 s-1",
    "mm/day": "mm day-1",
    "mm/d": "mm day-1",
    "mm d-1": "mm day-1",
    "mm day-1": "mm day-1",
    "j m-2": "J m-2",
    "j/m2": "J m-2",
    "mj m-2": "MJ m-2",
    "mj/m2": "MJ m-2",
    "mj m-2 month-1": "MJ m-2",
    "w m-2": "W m-2",
    "w/m2": "W m-2",
    "pa": "Pa",
    "hpa": "hPa",
    "kpa": "kPa",
    "m s-1": "m s-1",
    "m/s": "m s-1",
}


def normalise_unit(unit: str | None) -> str | None:
    """The canonical spelling of ``unit`` (``"W/m^2"`` -> ``"W m-2"``), ``None`` if unknown."""
    if unit is None:
        return None
    u = str(unit).strip().lower()
    u = u.replace("**", "").replace("^", "").replace("⁻²", "-2").replace("²", "2")
    u = re.sub(r"\s+", " ", u)
    u = re.sub(r"\s*/\s*", "/", u)
    if u in _UNIT_ALIASES:
        return _UNIT_ALIASES[u]
    # "W m-2" written "W m^-2" arrives here as "w m-2"; "kg m^-2 s^-1" likewise
    return _UNIT_ALIASES.get(u.replace("m -2", "m-2"))


def _days(days_in_month: Any) -> Any:
    if days_in_month is None:
        raise ValueError("days_in_month is needed for this conversion")
    return days_in_month


#: (canonical source unit, target unit) -> (description, f(values, days_in_month)).
#: Targets: ``degC``, ``mm month-1``, ``MJ m-2 month-1``, ``kPa``, ``m s-1``.
UNIT_CONVERSIONS: dict[tuple[str, str], tuple[str, Callable[[Any, Any], Any]]] = {
    ("K", "degC"): ("K - 273.15", lambda v, d: v - 273.15),
    ("degC", "degC"): ("none", lambda v, d: v),
    ("m", "mm month-1"): ("m (monthly total) x 1000", lambda v, d: v * 1000.0),
    ("mm", "mm month-1"): ("mm (monthly total), none", lambda v, d: v),
    ("mm month-1", "mm month-1"): ("none", lambda v, d: v),
    ("kg m-2 s-1", "mm month-1"): ("kg m-2 s-1 x 86400 s x days in month", lambda v, d: v * 86400.0 * _days(d)),
    ("mm day-1", "mm month-1"): ("mm day-1 x days in month", lambda v, d: v * _days(d)),
    ("J m-2", "MJ m-2 month-1"): ("J m-2 (monthly total) / 1e6", lambda v, d: v / 1.0e6),
    ("MJ m-2", "MJ m-2 month-1"): ("MJ m-2 (monthly total), none", lambda v, d: v),
    ("W m-2", "MJ m-2 month-1"): (
        "W m-2 (monthly mean) x 0.0864 MJ m-2 day-1 per W m-2 x days in month",
        lambda v, d: v * 0.0864 * _days(d),
    ),
    ("Pa", "kPa"): ("Pa / 1000", lambda v, d: v / 1000.0),
    ("hPa", "kPa"): ("hPa / 10", lambda v, d: v / 10.0),
    ("kPa", "kPa"): ("none", lambda v, d: v),
    ("m s-1", "m s-1"): ("none", lambda v, d: v),
}


def convert_units(
    values: Any,
    unit: str | None,
    target: str,
    *,
    source: str,
    variable: str,
    days_in_month: Any = None,
) -> tuple[Any, str]:
    """Convert ``values`` from ``unit`` to ``target`` by :data:`UNIT_CONVERSIONS`.

    Returns ``(converted, description)``. ``days_in_month`` (scalar or broadcastable, e.g.
    ``time.dt.days_in_month``) is needed for rates and mean fluxes. Raises ``ValueError``
    naming ``source`` (the file), ``variable`` and the unit found when the unit is missing,
    unknown, or cannot become ``target``.
    """
    if unit is None or str(unit).strip() == "":
        raise ValueError(f"{source}: variable {variable!r} has no units; expected a unit convertible to {target}")
    canon = normalise_unit(unit)
    key = (canon or "", target)
    if key not in UNIT_CONVERSIONS:
        known = sorted({a for a, b in UNIT_CONVERSIONS if b == target})
        raise ValueError(
            f"{source}: variable {variable!r} has units {unit!r}, which cannot be converted to {target} "
            f"(known units for {target}: {', '.join(known)}); set the units override in the config if the "
            "file's attribute is wrong"
        )
    what, func = UNIT_CONVERSIONS[key]
    return func(values, days_in_month), f"{variable}: {unit} -> {target} ({what})"


# --------------------------------------------------------------------------------------
# FAO-56 Penman-Monteith
# --------------------------------------------------------------------------------------

_GSC = 0.0820  # solar constant, MJ m-2 min-1 (FAO-56 eq. 21)
_SIGMA = 4.903e-9  # Stefan-Boltzmann constant, MJ K-4 m-2 day-1 (FAO-56 eq. 39)


def saturation_vapour_pressure(t_c: Any) -> Any:
    """e°(T) in kPa for air temperature ``t_c`` in degC (FAO-56 eq. 11)."""
    return 0.6108 * np.exp(17.27 * t_c / (t_c + 237.3))


def month_day_of_year(month: Any) -> Any:
    """Day of the year in the middle of ``month`` (1..12): J = INT(30.4 M - 15) (FAO-56 Annex 2)."""
    return np.floor(30.4 * np.asarray(month, dtype=float) - 15.0)


def _solar_geometry(latitude_deg: Any, doy: Any) -> tuple[Any, Any, Any, Any]:
    phi = np.deg2rad(latitude_deg)
    j = np.asarray(doy, dtype=float) if not isinstance(doy, xr.DataArray) else doy
    dr = 1.0 + 0.033 * np.cos(2.0 * np.pi * j / 365.0)  # eq. 23
    delta = 0.409 * np.sin(2.0 * np.pi * j / 365.0 - 1.39)  # eq. 24
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1.0, 1.0))  # eq. 25 (clipped: polar day/night)
    return phi, dr, delta, ws


def extraterrestrial_radiation(latitude_deg: Any, doy: Any) -> Any:
    """Ra in MJ m-2 day-1 for latitude (degrees, north positive) and day of year (FAO-56 eq. 21)."""
    phi, dr, delta, ws = _solar_geometry(latitude_deg, doy)
    return (
        24.0 * 60.0 / np.pi * _GSC * dr * (ws * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(ws))
    )


def daylight_hours(latitude_deg: Any, doy: Any) -> Any:
    """Maximum possible sunshine duration N in hours (FAO-56 eq. 34)."""
    _, _, _, ws = _solar_geometry(latitude_deg, doy)
    return 24.0 / np.pi * ws


def monthly_soil_heat_flux(t_mean_c: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """G (MJ m-2 day-1) of each month from the neighbouring months' mean temperature.

    FAO-56 eq. 43, G_i = 0.07 (T_{i+1} - T_{i-1}), where both neighbours exist; eq. 44,
    G_i = 0.14 (T_i - T_{i-1}), for the last month; for the first month the forward analogue
    of eq. 44, 0.14 (T_{i+1} - T_i). A single month gets G = 0. Neighbours are the previous
    and next steps along ``dim``, which must be consecutive months.
    """
    n = t_mean_c.sizes[dim]
    if n < 2:
        return xr.zeros_like(t_mean_c)
    prev = t_mean_c.shift({dim: 1})
    nxt = t_mean_c.shift({dim: -1})
    g = 0.07 * (nxt - prev)
    g = xr.where(prev.isnull(), 0.14 * (nxt - t_mean_c), g)
    g = xr.where(nxt.isnull(), 0.14 * (t_mean_c - prev), g)
    return g.transpose(*t_mean_c.dims)


def fao56_terms(
    t_mean_c: Any,
    *,
    t_max_c: Any = None,
    t_min_c: Any = None,
    dewpoint_c: Any = None,
    ea_kpa: Any = None,
    wind_10m_m_s: Any = None,
    wind_2m_m_s: Any = None,
    net_radiation_mj_m2_day: Any = None,
    net_solar_mj_m2_day: Any = None,
    net_thermal_mj_m2_day: Any = None,
    rs_mj_m2_day: Any = None,
    latitude_deg: Any = None,
    doy: Any = None,
    elevation_m: Any = None,
    pressure_kpa: Any = None,
    soil_heat_flux_mj_m2_day: Any = 0.0,
    albedo: float = 0.23,
) -> dict[str, Any]:
    """The terms of FAO-56 Penman-Monteith (eq. 6) for daily-mean values of one period.

    Inputs are numpy arrays, xarray objects or scalars (broadcast together); radiation in
    MJ m-2 day-1 (the period's mean day). Returns a dict with ``delta`` (eq. 13, kPa/degC),
    ``pressure`` (kPa, given or eq. 7), ``gamma`` (eq. 8), ``es`` (eq. 12 from Tmax/Tmin if both
    are given, else e°(Tmean) - which underestimates es because e° is convex), ``ea`` (given,
    or eq. 14 from the dewpoint), ``u2`` (given, or eq. 47 from 10 m wind), ``rn`` (given; or
    net solar + net thermal, the ERA5 sign convention being downward positive; or eqs. 37-40
    from Rs, needing latitude, day of year and elevation, and Tmax/Tmin or Tmean for eq. 39),
    ``g`` and ``eto`` in mm day-1.
    """
    t = t_mean_c
    # saturation vapour pressure and its slope
    if (t_max_c is None) != (t_min_c is None):
        raise ValueError("FAO-56: give both t_max_c and t_min_c, or neither")
    if t_max_c is not None:
        es = (saturation_vapour_pressure(t_max_c) + saturation_vapour_pressure(t_min_c)) / 2.0  # eq. 12
        es_method = "eq. 12 from Tmax/Tmin"
    else:
        es = saturation_vapour_pressure(t)
        es_method = "e°(Tmean) (eq. 11; biased low against eq. 12, e° being convex)"
    delta = 4098.0 * saturation_vapour_pressure(t) / (t + 237.3) ** 2  # eq. 13
    # actual vapour pressure
    if ea_kpa is not None:
        ea = ea_kpa
    elif dewpoint_c is not None:
        ea = saturation_vapour_pressure(dewpoint_c)  # eq. 14
    else:
        raise ValueError("FAO-56: give ea_kpa or dewpoint_c (actual vapour pressure)")
    # psychrometric constant
    if pressure_kpa is not None:
        p = pressure_kpa
    elif elevation_m is not None:
        p = 101.3 * ((293.0 - 0.0065 * elevation_m) / 293.0) ** 5.26  # eq. 7
    else:
        raise ValueError("FAO-56: give pressure_kpa or elevation_m (psychrometric constant, eqs. 7-8)")
    gamma = 0.665e-3 * p  # eq. 8
    # wind at 2 m
    if wind_2m_m_s is not None:
        u2 = wind_2m_m_s
    elif wind_10m_m_s is not None:
        u2 = wind_10m_m_s * 4.87 / math.log(67.8 * 10.0 - 5.42)  # eq. 47, z = 10 m
    else:
        raise ValueError("FAO-56: give wind_2m_m_s or wind_10m_m_s")
    # net radiation
    out: dict[str, Any] = {}
    if net_radiation_mj_m2_day is not None:
        rn = net_radiation_mj_m2_day
        rn_method = "given"
    elif net_solar_mj_m2_day is not None and net_thermal_mj_m2_day is not None:
        rn = net_solar_mj_m2_day + net_thermal_mj_m2_day
        rn_method = "net solar + net thermal"
    elif rs_mj_m2_day is not None:
        if latitude_deg is None or doy is None or elevation_m is None:
            raise ValueError("FAO-56: Rn from Rs needs latitude_deg, doy and elevation_m (eqs. 21, 37)")
        ra = extraterrestrial_radiation(latitude_deg, doy)
        rso = (0.75 + 2.0e-5 * elevation_m) * ra  # eq. 37
        rns = (1.0 - albedo) * rs_mj_m2_day  # eq. 38
        tk4 = ((t_max_c + 273.16) ** 4 + (t_min_c + 273.16) ** 4) / 2.0 if t_max_c is not None else (t + 273.16) ** 4
        ratio = np.minimum(rs_mj_m2_day / rso, 1.0)
        rnl = _SIGMA * tk4 * (0.34 - 0.14 * np.sqrt(ea)) * (1.35 * ratio - 0.35)  # eq. 39
        rn = rns - rnl  # eq. 40
        out.update(ra=ra, rso=rso, rns=rns, rnl=rnl)
        rn_method = "eqs. 37-40 from Rs"
    else:
        raise ValueError("FAO-56: give net_radiation, net_solar + net_thermal, or rs (with latitude, doy, elevation)")
    g = soil_heat_flux_mj_m2_day
    eto = (0.408 * delta * (rn - g) + gamma * 900.0 / (t + 273.0) * u2 * (es - ea)) / (
        delta + gamma * (1.0 + 0.34 * u2)
    )  # eq. 6
    out.update(
        delta=delta,
        pressure=p,
        gamma=gamma,
        es=es,
        ea=ea,
        u2=u2,
        rn=rn,
        g=g,
        eto=eto,
        es_method=es_method,
        rn_method=rn_method,
    )
    return out


def fao56_eto_monthly(t_mean_c: Any, *, days_in_month: Any, **kwargs: Any) -> Any:
    """FAO-56 Penman-Monteith reference ET of a month in mm per month.

    ``t_mean_c`` and the keyword inputs of :func:`fao56_terms` are the month's means
    (radiation as the month's mean daily total in MJ m-2 day-1, G from
    :func:`monthly_soil_heat_flux` via ``soil_heat_flux_mj_m2_day``); the daily ETo (eq. 6)
    times ``days_in_month``. Negative monthly values (possible in cold months with negative
    net radiation) are kept: they are the equation's answer, clipping is the caller's choice.
    """
    terms = fao56_terms(t_mean_c, **kwargs)
    return terms["eto"] * days_in_month


# --------------------------------------------------------------------------------------
# provider recipes
# --------------------------------------------------------------------------------------


def _need(raw: xr.Dataset, names: Sequence[str], what: str) -> None:
    missing = [n for n in names if n not in raw.data_vars]
    if missing:
        src = raw.attrs.get("source", "raw monthly dataset")
        raise ValueError(f"{src}: {what} needs variable(s) {missing}; found {sorted(map(str, raw.data_vars))}")


def _conv(raw: xr.Dataset, name: str, target: str, days: Any, log_: list[str]) -> xr.DataArray:
    da = raw[name]
    src = da.attrs.get("source_file") or raw.attrs.get("source", "raw monthly dataset")
    out, what = convert_units(
        da.astype(np.float64), da.attrs.get("units"), target, source=str(src), variable=name, days_in_month=days
    )
    log_.append(what)
    return out


def _finish(data: dict[str, xr.DataArray], raw: xr.Dataset, source: str, conversions: list[str]) -> xr.Dataset:
    ds = xr.Dataset()
    for name, da in data.items():
        spec = MONTHLY_VARIABLES[name]
        ds[name] = da.astype(np.float32).assign_attrs(units=spec["units"], long_name=spec["long_name"])
    ds.attrs["source"] = source
    ds.attrs["conversions"] = "; ".join(conversions)
    crs = raw.rio.crs if hasattr(raw, "rio") else None
    if crs is not None:
        ds = ds.rio.write_crs(crs)
    return ds


def _latitude(raw: xr.Dataset) -> xr.DataArray:
    """Latitude (degrees) of each (y, x) cell of ``raw`` from its CRS."""
    from pyproj import CRS, Transformer

    crs = raw.rio.crs
    if crs is None:
        raise ValueError(f"{raw.attrs.get('source', 'raw monthly dataset')}: no CRS, so latitude is unknown")
    xx, yy = np.meshgrid(raw["x"].values, raw["y"].values)
    c = CRS.from_user_input(crs.to_wkt())
    if c.is_geographic:
        lat = yy
    else:
        _, lat = Transformer.from_crs(c, "EPSG:4326", always_xy=True).transform(xx, yy)
    return xr.DataArray(lat, dims=("y", "x"), coords={"y": raw["y"], "x": raw["x"]})


def era5_land_to_monthly(raw: xr.Dataset, *, use_min_max: bool = False) -> xr.Dataset:
    """ERA5-Land monthly aggregates (Earth Engine band names, provider units) -> canonical months.

    ``raw`` has dims (time, y, x) with ``units`` per variable (as :func:`read_monthly_bands`
    returns). temperature_c = temperature_2m; precipitation_mm = total_precipitation_sum
    (m per month); solar_mj_m2 = surface_solar_radiation_downwards_sum (J m-2 per month);
    eto_mm by :func:`fao56_eto_monthly` with ea from the dewpoint (eq. 14), gamma from
    surface pressure (eq. 8), u2 from the 10 m wind (eq. 47) of the monthly mean u and v
    (vector mean: underestimates the mean speed where the wind direction varies), Rn =
    net solar + net thermal sums / days, G from neighbouring months (eqs. 43/44).

    The catalog's temperature_2m_min/max are the month's extremes of hourly values, not
    the means of daily extremes that eq. 12 needs, so es is e°(Tmean) by default (biased
    low by roughly 5-15 %, more where the diurnal range is large); ``use_min_max=True``
    uses them anyway (biased high).
    """
    need = [
        "temperature_2m",
        "dewpoint_temperature_2m",
        "surface_pressure",
        "u_component_of_wind_10m",
        "v_component_of_wind_10m",
        "surface_net_solar_radiation_sum",
        "surface_net_thermal_radiation_sum",
        "surface_solar_radiation_downwards_sum",
        "total_precipitation_sum",
    ]
    if use_min_max:
        need += ["temperature_2m_min", "temperature_2m_max"]
    _need(raw, need, "ERA5-Land monthly (era5_land_to_monthly)")
    days = raw["time"].dt.days_in_month
    conv: list[str] = []
    t = _conv(raw, "temperature_2m", "degC", days, conv)
    td = _conv(raw, "dewpoint_temperature_2m", "degC", days, conv)
    p = _conv(raw, "surface_pressure", "kPa", days, conv)
    u = _conv(raw, "u_component_of_wind_10m", "m s-1", days, conv)
    v = _conv(raw, "v_component_of_wind_10m", "m s-1", days, conv)
    ssr = _conv(raw, "surface_net_solar_radiation_sum", "MJ m-2 month-1", days, conv) / days
    strd = _conv(raw, "surface_net_thermal_radiation_sum", "MJ m-2 month-1", days, conv) / days
    ssrd = _conv(raw, "surface_solar_radiation_downwards_sum", "MJ m-2 month-1", days, conv)
    tp = _conv(raw, "total_precipitation_sum", "mm month-1", days, conv)
    # the catalog warns that flow (_sum) bands can hold small, physically meaningless negatives
    tp, ssrd = tp.clip(min=0.0), ssrd.clip(min=0.0)
    conv.append("total_precipitation_sum, surface_solar_radiation_downwards_sum: negatives set to 0")
    extra: dict[str, Any] = {}
    if use_min_max:
        extra["t_max_c"] = _conv(raw, "temperature_2m_max", "degC", days, conv)
        extra["t_min_c"] = _conv(raw, "temperature_2m_min", "degC", days, conv)
    g = monthly_soil_heat_flux(t, "time")
    eto = fao56_eto_monthly(
        t,
        days_in_month=days,
        dewpoint_c=td,
        pressure_kpa=p,
        wind_10m_m_s=np.hypot(u, v),
        net_solar_mj_m2_day=ssr,
        net_thermal_mj_m2_day=strd,
        soil_heat_flux_mj_m2_day=g,
        **extra,
    )
    conv.append(
        "eto_mm: FAO-56 eq. 6 per month x days; es "
        + ("eq. 12 from temperature_2m_min/max (monthly extremes, biased high)" if use_min_max else "e°(Tmean)")
        + "; ea eq. 14 from dewpoint; gamma eq. 8 from surface_pressure; u2 eq. 47 from |mean u, mean v| at 10 m; "
        "Rn = (net solar + net thermal) / days; G eqs. 43/44"
    )
    if use_min_max:
        conv.append("warning: ERA5-Land temperature_2m_min/max are monthly extremes of hourly values")
    src = f"ERA5-Land monthly (ECMWF/ERA5_LAND/MONTHLY_AGGR) from {raw.attrs.get('source', 'raw bands')}"
    out = _finish({"temperature_c": t, "precipitation_mm": tp, "solar_mj_m2": ssrd, "eto_mm": eto}, raw, src, conv)
    out["eto_mm"].attrs["es_method"] = "eq. 12 from monthly extremes" if use_min_max else "e°(Tmean), biased low"
    return out


def terraclimate_to_monthly(
    raw: xr.Dataset, *, eto: str = "pet", elevation_m: xr.DataArray | float | None = None
) -> xr.Dataset:
    """TerraClimate months (tmmx, tmmn, pr, srad, pet; vap, vs for ``eto="fao56"``) -> canonical months.

    temperature_c = (tmmx + tmmn) / 2; precipitation_mm = pr (mm per month); solar_mj_m2 =
    srad (W m-2, monthly mean) x 0.0864 x days; eto_mm = pet, TerraClimate's own FAO-56
    Penman-Monteith ETo in mm per month (Abatzoglou et al. 2018), kept as is by default.
    ``eto="fao56"`` recomputes it here (es eq. 12 from tmmx/tmmn, ea = vap, u2 eq. 47 from
    vs at 10 m, Rn eqs. 37-40 from srad with latitude from the grid and ``elevation_m``,
    gamma from elevation eq. 7, G eqs. 43/44).
    """
    if eto not in ("pet", "fao56"):
        raise ValueError(f"terraclimate_to_monthly: eto must be 'pet' or 'fao56', found {eto!r}")
    need = list(TERRACLIMATE_NEEDED[eto])
    _need(raw, need, "TerraClimate (terraclimate_to_monthly)")
    days = raw["time"].dt.days_in_month
    conv: list[str] = []
    tmax = _conv(raw, "tmmx", "degC", days, conv)
    tmin = _conv(raw, "tmmn", "degC", days, conv)
    t = (tmax + tmin) / 2.0
    conv.append("temperature_c = (tmmx + tmmn) / 2")
    pr = _conv(raw, "pr", "mm month-1", days, conv)
    solar = _conv(raw, "srad", "MJ m-2 month-1", days, conv)
    if eto == "pet":
        e = _conv(raw, "pet", "mm month-1", days, conv)
        conv.append("eto_mm = pet (TerraClimate FAO-56 Penman-Monteith)")
    else:
        if elevation_m is None:
            raise ValueError("terraclimate_to_monthly: eto='fao56' needs elevation_m (eqs. 7 and 37)")
        vap = _conv(raw, "vap", "kPa", days, conv)
        vs = _conv(raw, "vs", "m s-1", days, conv)
        doy = xr.DataArray(month_day_of_year(raw["time"].dt.month.values), dims="time", coords={"time": raw["time"]})
        e = fao56_eto_monthly(
            t,
            days_in_month=days,
            t_max_c=tmax,
            t_min_c=tmin,
            ea_kpa=vap,
            wind_10m_m_s=vs,
            rs_mj_m2_day=solar / days,
            latitude_deg=_latitude(raw),
            doy=doy,
            elevation_m=elevation_m,
            soil_heat_flux_mj_m2_day=monthly_soil_heat_flux(t, "time"),
        )
        conv.append("eto_mm: FAO-56 eq. 6 (es eq. 12, ea = vap, u2 eq. 47, Rn eqs. 37-40, gamma eq. 7, G eqs. 43/44)")
    src = f"TerraClimate (IDAHO_EPSCOR/TERRACLIMATE) from {raw.attrs.get('source', 'raw bands')}"
    return _finish({"temperature_c": t, "precipitation_mm": pr, "solar_mj_m2": solar, "eto_mm": e}, raw, src, conv)


# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------


def _month_start(year: int, month: int) -> np.datetime64:
    return np.datetime64(f"{year:04d}-{month:02d}-01", "ns")


def _assemble(
    arrays: Mapping[str, Mapping[np.datetime64, np.ndarray]],
    units: Mapping[str, str],
    files_of: Mapping[str, set[str]],
    grid: RegionGrid,
    source: str,
) -> xr.Dataset:
    months = {v: sorted(m) for v, m in arrays.items()}
    ref_var = max(months, key=lambda v: len(months[v]))
    ref = months[ref_var]
    for v, m in months.items():
        if m != ref:
            lacking = sorted(set(ref) - set(m))
            extra = sorted(set(m) - set(ref))
            raise ValueError(
                f"{source}: variable {v!r} does not cover the same months as {ref_var!r} "
                f"(missing {[str(x)[:7] for x in lacking]}, extra {[str(x)[:7] for x in extra]})"
            )
    coords = grid.coords()
    time = np.array(ref, dtype="datetime64[ns]")
    ds = xr.Dataset(coords={"time": time, "y": coords["y"], "x": coords["x"]})
    for v in sorted(arrays):
        data = np.stack([arrays[v][t] for t in ref])
        attrs = {"source_file": ", ".join(sorted(files_of[v]))}
        if units.get(v):
            attrs["units"] = units[v]
        ds[v] = xr.DataArray(data, dims=("time", "y", "x"), attrs=attrs)
    ds = ds.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
    ds.attrs["source"] = source
    return ds


def read_monthly_bands(
    files: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    grid: RegionGrid,
    *,
    resampling: str = "bilinear",
) -> xr.Dataset:
    """Cached monthly GeoTIFF tiles -> raw Dataset (time, y, x) of provider variables.

    Each band's description is ``<variable>_<YYYY-MM>`` and its GDAL tag ``units`` the
    provider's physical unit. Tiles are mosaicked (the first file, in the order given,
    wins where tiles overlap) with :func:`karstflow.sources.rasters.read_window`, which copies
    tiles already on the grid's lattice and warps others with ``resampling``. ``time`` is the
    month start. Raises ``ValueError`` naming the file and band for a malformed description,
    a missing units tag or units that differ between bands of one variable.
    """
    import rasterio

    from karstflow.sources.rasters import read_window

    paths = [os.fspath(files)] if isinstance(files, str | os.PathLike) else [os.fspath(f) for f in files]
    if not paths:
        raise ValueError("read_monthly_bands: no files given")
    arrays: dict[str, dict[np.datetime64, np.ndarray]] = {}
    valid_of: dict[tuple[str, np.datetime64], np.ndarray] = {}
    units: dict[str, str] = {}
    files_of: dict[str, set[str]] = {}
    window = (0, 0, grid.height, grid.width)
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"monthly climate tile not found: {path}")
        with rasterio.open(path) as ds:
            descs = list(ds.descriptions)
            tags = [ds.tags(i + 1) for i in range(ds.count)]
        keys = []
        for i, desc in enumerate(descs):
            m = _DESCRIPTION.match(desc or "")
            if not m:
                raise ValueError(f"{path}: band {i + 1} description {desc!r} is not '<variable>_<YYYY-MM>'")
            var, year, month = m["var"], int(m["year"]), int(m["month"])
            if not 1 <= month <= 12:
                raise ValueError(f"{path}: band {i + 1} description {desc!r} has month {month}")
            unit = tags[i].get("units") or tags[i].get("UNITS")
            if not unit:
                raise ValueError(f"{path}: band {i + 1} ({desc}) of variable {var!r} has no 'units' tag")
            if var in units and normalise_unit(units[var]) != normalise_unit(unit):
                raise ValueError(
                    f"{path}: variable {var!r} band {desc} has units {unit!r}, other bands have {units[var]!r}"
                )
            units.setdefault(var, unit)
            keys.append((var, _month_start(year, month)))
        data, valid = read_window(path, list(range(1, len(descs) + 1)), grid, window, resampling=resampling)
        for i, (var, t) in enumerate(keys):
            files_of.setdefault(var, set()).add(path)
            band = data[i].astype(np.float64)
            ok = valid[i]
            if (var, t) not in valid_of:
                arr = np.full(grid.shape, np.nan)
                arr[ok] = band[ok]
                arrays.setdefault(var, {})[t] = arr
                valid_of[(var, t)] = ok.copy()
            else:  # the earlier tile wins; fill only where it had no value
                have = valid_of[(var, t)]
                fill = ok & ~have
                arrays[var][t][fill] = band[fill]
                have |= fill
    return _assemble(arrays, units, files_of, grid, source=", ".join(paths))


_LAT_NAMES = ("lat", "latitude")
_LON_NAMES = ("lon", "longitude")


def _spatial_dims(da: xr.DataArray, path: str, variable: str) -> tuple[str, str, bool]:
    dims = list(da.dims)
    for ylat in _LAT_NAMES:
        for xlon in _LON_NAMES:
            if ylat in dims and xlon in dims:
                return ylat, xlon, True
    if "y" in dims and "x" in dims:
        return "y", "x", False
    raise ValueError(f"{path}: variable {variable!r} has dims {tuple(dims)}; expected (time, lat, lon) or (time, y, x)")


def _time_dim(da: xr.DataArray, path: str, variable: str) -> str:
    for d in da.dims:
        c = da.coords.get(d)
        if d == "time" or (c is not None and (c.attrs.get("axis") == "T" or c.attrs.get("standard_name") == "time")):
            return str(d)
    raise ValueError(f"{path}: variable {variable!r} has no time axis (dims {tuple(da.dims)})")


def _to_month_start(values: Any, path: str) -> np.ndarray:
    vals = np.asarray(values)
    if vals.dtype == object and vals.size and hasattr(vals.flat[0], "month"):
        # cftime dates (noleap, 360_day, ...): only year and month matter for a monthly series
        vals = np.array([f"{v.year:04d}-{v.month:02d}-01" for v in vals.flat], dtype="datetime64[ns]")
    idx = pd.DatetimeIndex(pd.to_datetime(vals))
    starts = idx.to_period("M").to_timestamp()
    if starts.has_duplicates:
        dup = sorted({str(t)[:7] for t in starts[starts.duplicated()]})
        raise ValueError(f"{path}: more than one time step in month(s) {dup}; a monthly series is expected")
    return np.asarray(starts.values, dtype="datetime64[ns]")


def _warp_stack(stack: xr.DataArray, crs: Any, grid: RegionGrid, resampling: str, source: str) -> np.ndarray:
    """(time, y, x) array in ``crs`` -> (time, grid.height, grid.width) float64 on ``grid``.

    Each step is written to a temporary GeoTIFF (cut to the grid's footprint plus a margin)
    and put on the grid by :func:`karstflow.harmonise.raster_to_grid`, which warps with the
    coordinate transform computed to 1e-8 source pixels (not GDAL's approximate default).
    """
    import rasterio
    from affine import Affine
    from rasterio.warp import transform_bounds

    from karstflow.harmonise import raster_to_grid

    ys, xs = stack["y"].values.astype(float), stack["x"].values.astype(float)
    if len(xs) < 2 or len(ys) < 2:
        raise ValueError(f"{source}: needs at least 2 x 2 cells to define a grid, found {len(ys)} x {len(xs)}")
    if ys[0] < ys[-1]:  # south-up arrays (ascending latitude) become north-up
        stack = stack.isel(y=slice(None, None, -1))
        ys = ys[::-1]
    dx, dy = float(np.diff(xs).mean()), float(np.diff(ys).mean())
    if not (np.allclose(np.diff(xs), dx, rtol=1e-4) and np.allclose(np.diff(ys), dy, rtol=1e-4)):
        raise ValueError(f"{source}: the x/y coordinates are not regularly spaced; cannot georeference")
    # cut to the grid's footprint (plus 3 cells) so a global file does not become a global GeoTIFF
    try:
        gx0, gy0, gx1, gy1 = transform_bounds(grid.crs, crs, *grid.bounds, densify_pts=21)
        keep_x = np.nonzero((xs >= gx0 - 3 * abs(dx)) & (xs <= gx1 + 3 * abs(dx)))[0]
        keep_y = np.nonzero((ys >= gy0 - 3 * abs(dy)) & (ys <= gy1 + 3 * abs(dy)))[0]
        if keep_x.size >= 2 and keep_y.size >= 2:
            stack = stack.isel(x=slice(keep_x[0], keep_x[-1] + 1), y=slice(keep_y[0], keep_y[-1] + 1))
            xs, ys = xs[keep_x[0] : keep_x[-1] + 1], ys[keep_y[0] : keep_y[-1] + 1]
    except Exception:  # noqa: BLE001 - footprint not representable: warp the whole file
        pass
    transform = Affine(dx, 0.0, xs[0] - dx / 2.0, 0.0, dy, ys[0] - dy / 2.0)
    values = np.asarray(stack.values, dtype=np.float64)
    out = np.empty((values.shape[0],) + grid.shape, dtype=np.float64)
    with tempfile.TemporaryDirectory(prefix="karstflow-climate-") as tmp:
        for i in range(values.shape[0]):
            path = str(Path(tmp) / f"step_{i}.tif")
            with rasterio.open(
                path,
                "w",
                driver="GTiff",
                width=values.shape[2],
                height=values.shape[1],
                count=1,
                dtype="float64",
                crs=crs,
                transform=transform,
                nodata=np.nan,
            ) as dst:
                dst.write(values[i], 1)
            out[i] = raster_to_grid(path, grid, resampling=resampling, source=source).values.astype(np.float64)
    return out


def read_monthly_local(
    path: str | os.PathLike[str],
    variables: Mapping[str, str],
    grid: RegionGrid,
    *,
    resampling: str = "bilinear",
    units: Mapping[str, str] | None = None,
) -> xr.Dataset:
    """A local monthly file (CF NetCDF, or GeoTIFF with ``<var>_<YYYY-MM>`` bands) on ``grid``.

    ``variables`` maps canonical names (keys of :data:`MONTHLY_VARIABLES`) to the file's
    variable names, e.g. ``{"precipitation_mm": "pr", "temperature_c": "tas"}``. NetCDF
    variables have a time axis and (lat, lon) / (latitude, longitude) dims - geographic,
    EPSG:4326 - or (y, x) with a CF grid mapping. Values are put on the grid with
    ``resampling`` (see :func:`_warp_stack`, exact transforms) and converted from the
    variable's ``units`` attribute, or from ``units[canonical]`` when configured (an override
    for files whose attribute is wrong). Time becomes the month start.

    Raises ``ValueError`` naming the file and variable for an unknown canonical name, a
    missing variable, time axis or CRS, or units that cannot be converted.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"monthly climate file not found: {path}")
    if not variables:
        raise ValueError(
            f"{path}: no variables mapped; give canonical -> file variable, e.g. {{'precipitation_mm': 'pr'}}"
        )
    bad = [k for k in variables if k not in MONTHLY_VARIABLES]
    if bad:
        raise ValueError(f"{path}: unknown climate variable(s) {bad}; use {sorted(MONTHLY_VARIABLES)}")
    overrides = dict(units or {})
    suffix = Path(path).suffix.lower()
    if suffix in (".tif", ".tiff"):
        raw = _local_tif(path, grid, resampling)
        missing = [f for f in variables.values() if f not in raw.data_vars]
        if missing:
            found = sorted(map(str, raw.data_vars))
            raise ValueError(f"{path}: no variable(s) {missing} in the band descriptions; found {found}")
        stacks = {canon: (raw[fv].values, raw[fv].attrs.get("units")) for canon, fv in variables.items()}
        time = raw["time"].values
    else:
        from pyproj import CRS

        ds = xr.open_dataset(path)
        stacks = {}
        time = None
        for canon, fv in variables.items():
            if fv not in ds.data_vars:
                raise ValueError(f"{path}: no variable {fv!r} (for {canon}); found {sorted(map(str, ds.data_vars))}")
            da = ds[fv]
            tdim = _time_dim(da, path, fv)
            ydim, xdim, geographic = _spatial_dims(da, path, fv)
            extra = [d for d in da.dims if d not in (tdim, ydim, xdim)]
            if extra:
                raise ValueError(f"{path}: variable {fv!r} has extra dims {extra}; expected (time, y, x)")
            if geographic:
                crs = CRS.from_epsg(4326)
            else:
                gm = da.attrs.get("grid_mapping") or da.encoding.get("grid_mapping")
                if gm and gm in ds.variables:
                    crs = CRS.from_cf(ds[gm].attrs)
                else:
                    rc = ds.rio.crs
                    if rc is None:
                        raise ValueError(f"{path}: variable {fv!r} has (y, x) dims but no grid mapping / CRS")
                    crs = CRS.from_user_input(rc.to_wkt())
            t = _to_month_start(da[tdim].values, path)
            if time is None:
                time = t
            elif not np.array_equal(time, t):
                raise ValueError(f"{path}: variable {fv!r} has a different time axis than the other variables")
            stack = da.transpose(tdim, ydim, xdim).rename({ydim: "y", xdim: "x"})
            values = _warp_stack(stack, crs.to_wkt(), grid, resampling, source=f"{path}: {fv}")
            stacks[canon] = (values, da.attrs.get("units"))
        ds.close()
    assert time is not None
    days = xr.DataArray(pd.DatetimeIndex(time).days_in_month.values, dims="time")
    coords = grid.coords()
    out = xr.Dataset(coords={"time": time, "y": coords["y"], "x": coords["x"]})
    conv: list[str] = []
    for canon, (values, unit_attr) in stacks.items():
        fv = variables[canon]
        unit = overrides.get(canon, unit_attr)
        da = xr.DataArray(values, dims=("time", "y", "x"))
        converted, what = convert_units(
            da, unit, MONTHLY_VARIABLES[canon]["units"], source=path, variable=fv, days_in_month=days
        )
        conv.append(what + (" (units from the config override)" if canon in overrides else ""))
        spec = MONTHLY_VARIABLES[canon]
        out[canon] = converted.astype(np.float32).assign_attrs(
            units=spec["units"], long_name=spec["long_name"], source_variable=fv
        )
    out = out.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
    out.attrs["source"] = f"{path} ({resampling} onto {grid.crs} {grid.resolution:g})"
    out.attrs["conversions"] = "; ".join(conv)
    return out


def _local_tif(path: str, grid: RegionGrid, resampling: str) -> xr.Dataset:
    """A GeoTIFF with ``<var>_<YYYY-MM>`` bands in any CRS -> raw Dataset on ``grid``."""
    import rasterio

    with rasterio.open(path) as src:
        descs, crs, transform = list(src.descriptions), src.crs, src.transform
        tags = [src.tags(i + 1) for i in range(src.count)]
        data = src.read().astype(np.float64)
        if src.nodata is not None and not np.isnan(src.nodata):
            data[data == src.nodata] = np.nan
    if crs is None:
        raise ValueError(f"{path}: GeoTIFF has no CRS")
    if transform.b != 0 or transform.d != 0:
        raise ValueError(f"{path}: rotated GeoTIFFs are not supported")
    groups: dict[str, list[tuple[np.datetime64, int]]] = {}
    units: dict[str, str] = {}
    for i, desc in enumerate(descs):
        m = _DESCRIPTION.match(desc or "")
        if not m:
            raise ValueError(f"{path}: band {i + 1} description {desc!r} is not '<variable>_<YYYY-MM>'")
        groups.setdefault(m["var"], []).append((_month_start(int(m["year"]), int(m["month"])), i))
        u = tags[i].get("units")
        if u:
            units.setdefault(m["var"], u)
    h, w = data.shape[1:]
    xs = transform.c + transform.a * (np.arange(w) + 0.5)
    ys = transform.f + transform.e * (np.arange(h) + 0.5)
    arrays: dict[str, dict[np.datetime64, np.ndarray]] = {}
    for var, items in groups.items():
        items.sort()
        stack = xr.DataArray(data[[i for _, i in items]], dims=("time", "y", "x"), coords={"y": ys, "x": xs})
        warped = _warp_stack(stack, crs.to_wkt(), grid, resampling, source=f"{path}: {var}")
        arrays[var] = {t: warped[k] for k, (t, _) in enumerate(items)}
    ds = _assemble(arrays, units, {v: {path} for v in arrays}, grid, source=path)
    return ds


# --------------------------------------------------------------------------------------
# months -> years
# --------------------------------------------------------------------------------------


def annual_from_monthly(monthly: xr.Dataset, years: Sequence[int]) -> xr.Dataset:
    """Annual climate cube (year, y, x) from canonical months: what carbon/services read.

    temperature_c: arithmetic mean of the 12 monthly means (degC); precipitation_mm,
    solar_mj_m2, eto_mm: sums of the 12 months (mm, MJ m-2 per year). Raises ``ValueError``
    naming the year and the months found when a year lacks any month, and for a variable
    that is not canonical or lacks its monthly units. Attributes: ``units`` and
    ``aggregation`` per variable, ``source`` and ``conversions`` carried from ``monthly``.
    """
    src = monthly.attrs.get("source", "monthly climate")
    if "time" not in monthly.dims:
        raise ValueError(f"{src}: no time dimension (dims {tuple(monthly.dims)})")
    # a CRS variable read back from NetCDF (spatial_ref, no dims) is not climate data
    crs = monthly.rio.crs
    scalars = [v for v in monthly.data_vars if monthly[v].ndim == 0]
    if crs is None:  # read back from NetCDF the grid mapping may be a data variable
        for v in scalars:
            wkt = monthly[v].attrs.get("crs_wkt") or monthly[v].attrs.get("spatial_ref")
            if wkt:
                crs = wkt
                break
    try:
        transform = monthly.rio.transform() if crs is not None else None
    except Exception:  # noqa: BLE001 - transform not derivable (1-cell grid): CRS alone
        transform = None
    monthly = monthly.drop_vars(scalars)
    unknown = [v for v in monthly.data_vars if v not in MONTHLY_VARIABLES]
    if unknown:
        raise ValueError(f"{src}: variable(s) {unknown} are not canonical monthly variables {list(MONTHLY_VARIABLES)}")
    for v in monthly.data_vars:
        want = MONTHLY_VARIABLES[str(v)]["units"]
        if monthly[v].attrs.get("units") != want:
            raise ValueError(f"{src}: {v} has units {monthly[v].attrs.get('units')!r}, expected {want!r} (per month)")
    t = pd.DatetimeIndex(monthly["time"].values)
    layers: dict[str, list[xr.DataArray]] = {str(v): [] for v in monthly.data_vars}
    for year in years:
        sel = np.asarray(t.year == int(year))
        months = sorted(set(t.month[sel].tolist()))
        if months != list(range(1, 13)) or int(sel.sum()) != 12:
            raise ValueError(
                f"{src}: year {int(year)} has {int(sel.sum())} monthly step(s) (months {months}); 12 months are needed"
            )
        part = monthly.isel(time=np.nonzero(sel)[0])
        for v in layers:
            how = MONTHLY_VARIABLES[v]["annual"]
            da = part[v].astype(np.float64)
            agg = da.mean("time", skipna=False) if how == "mean" else da.sum("time", skipna=False)
            layers[v].append(agg)
    year_coord = np.array([int(y) for y in years], dtype=np.int64)
    out = xr.Dataset(coords={"year": year_coord, "y": monthly["y"], "x": monthly["x"]})
    for v, arrs in layers.items():
        spec = MONTHLY_VARIABLES[v]
        out[v] = (
            xr.concat(arrs, dim="year")
            .assign_coords(year=year_coord)
            .transpose("year", "y", "x")
            .astype(np.float32)
            .assign_attrs(
                units=spec["annual_units"],
                long_name=spec["long_name"].replace("monthly", "annual"),
                aggregation=("mean of the 12 monthly means" if spec["annual"] == "mean" else "sum of the 12 months"),
            )
        )
    if crs is not None:
        out = out.rio.write_crs(crs)
        if transform is not None:
            out = out.rio.write_transform(transform)
    out.attrs["source"] = src
    out.attrs["conversions"] = monthly.attrs.get("conversions", "")
    out.attrs["aggregation"] = "calendar years of 12 months; temperature mean, fluxes sums"
    return out

"""Ecosystem services: soil conservation (RUSLE), water yield and habitat quality (InVEST).

Pure functions over numpy arrays and xarray DataArrays (a function given DataArrays
returns DataArrays on the same coordinates, given numpy arrays returns numpy arrays);
no paths. Carbon storage, the fourth service, is :func:`karstflow.carbon.carbon_storage`
(InVEST carbon pools); it is not repeated here.

Soil conservation (RUSLE; Renard et al. 1997), in t ha-1 yr-1::

    potential soil loss  A_p = R * K * LS
    actual soil loss     A_a = R * K * LS * C * P
    soil retention       SR  = A_p - A_a

* R, rainfall erosivity (MJ mm ha-1 h-1 yr-1). Default ``wischmeier_smith_monthly``
  (:func:`r_factor_monthly`), the monthly modified-Fournier form of Wischmeier & Smith
  (1978, USDA Agriculture Handbook 537; Arnoldus 1980) used by RUSLE studies of the
  southwest-China karst, from the 12 monthly totals P_i and the annual total P (mm)::

      R = f * sum_i a * 10^(b * log10(P_i^2 / P) + c),   a = 1.735, b = 1.5, c = -0.8188

  in US customary units (hundreds of ft tonf in ac-1 h-1 yr-1) times f = 17.02 to SI
  (Foster et al. 1981); a, b, c and f are configurable for a regional calibration. From
  annual precipitation alone, :func:`r_factor`: ``renard_freimund_1994`` (Renard &
  Freimund 1994, J. Hydrol. 157: 287-306, fitted on US stations), R = 0.0483 P^1.61 for
  P <= 850 mm and R = 587.8 - 1.219 P + 0.004105 P^2 above; or ``power``, R = a P^b with
  a and b from the config (a regional fit).
* K, soil erodibility (t ha h ha-1 MJ-1 mm-1), :func:`k_factor_epic`: the EPIC equation of
  Williams (1995; Sharpley & Williams 1990) from sand, silt, clay and organic carbon (%),
  in US customary units, times 0.1317 to SI (Foster et al. 1981).
* LS, slope length and steepness, :func:`ls_factor`: Desmet & Govers (1996) in the form
  InVEST SDR 3.14+ computes it (Winchell et al. 2008 eq. 3 with the square root of the
  MFD catchment area as contributing area, on-pixel aspect term; McCool et al. 1987 S;
  m from the slope table, beta / (1 + beta) above 9 %; L capped at l_max).
* C and P, cover-management and support practice, from the land-cover biophysical table
  (``usle_c``, ``usle_p``), or C from fractional vegetation cover (Cai Chongfa et al.
  2000, :func:`c_factor_from_cover`).

Flow routing uses pysheds (multiple flow directions after Freeman 1991 with exponent 1,
as InVEST's pygeoprocessing MFD; depressions filled and flats resolved first, as InVEST
fills pits): a maintained, pip-installable routing library with numba kernels. Of the
alternatives, richdem pins numpy < 2, whitebox downloads its binary at run time and
xarray-spatial (0.5) has no flow accumulation.

Water yield (InVEST Annual Water Yield; Budyko curve in Fu's form, Zhang et al. 2004),
:func:`annual_water_yield`::

    AWC   = min(root depth, soil depth) * PAWC                        mm
    w     = Z * AWC / P + 1.25, at most 5
    AET/P = min(PET/P, 1 + PET/P - (1 + (PET/P)^w)^(1/w)),  PET = Kc * ETo    vegetated
    AET   = min(Kc * ETo, P)                                                    not vegetated
    Y     = P - AET                                                   mm

Habitat quality (InVEST Habitat Quality 3.13 and later, distance-based decay),
:func:`habitat_degradation` and :func:`habitat_quality`::

    i_r(x) = 1 - d_r(x) / d_r,max               linear       (0 beyond d_r,max)
           = exp(-2.99 d_r(x) / d_r,max)         exponential  (0 beyond d_r,max)
    D_x    = sum_r (w_r / sum_all w) * i_r(x) * beta_x * S_j(x),r
    Q_x    = H_j(x) * (1 - D_x^z / (D_x^z + k^z)),  z = 2.5

with d_r(x) the Euclidean distance (m) from pixel x to the nearest pixel of threat r, S
the sensitivity of the pixel's habitat type j to threat r, beta_x the access (0-1, 1 where
no access polygon covers x), H its habitat suitability and k the half-saturation constant
(InVEST's user guide advises half the highest D). As InVEST's ``habitat_quality.py``
(``weight_sum = threat_df['weight'].sum()``), the weights are normalised by the sum over
*every* threat of the table, and a threat of the table without a map is an error: a threat
is left out only by taking it out of the table, never by renormalising over the rest.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from karstflow.grid import register_rio

if TYPE_CHECKING:
    from karstflow.grid import RegionGrid

log = logging.getLogger(__name__)

__all__ = [
    "BIOPHYSICAL_COLUMNS",
    "HQ_SCALING_Z",
    "MONTHLY_R_FACTOR_METHODS",
    "R_FACTOR_METHODS",
    "RusleResult",
    "WISCHMEIER_SMITH_MONTHLY",
    "WaterYield",
    "access_raster",
    "annual_water_yield",
    "c_factor_from_cover",
    "check_biophysical_table",
    "climate_of_year",
    "half_saturation_auto",
    "flow_routing",
    "habitat_degradation",
    "habitat_quality",
    "k_factor_epic",
    "ls_factor",
    "months_of_year",
    "r_factor",
    "r_factor_monthly",
    "reclassify",
    "rusle",
    "threat_masks",
    "threat_proximity",
]

#: Columns a biophysical table needs (InVEST conventions) and what each holds.
BIOPHYSICAL_COLUMNS: dict[str, str] = {
    "lucode": "land-cover code",
    "root_depth_mm": "maximum root depth (mm)",
    "kc": "crop coefficient Kc (PET = Kc * ETo)",
    "lulc_veg": "1 vegetated (Budyko AET), 0 not (AET = min(Kc * ETo, P))",
    "usle_c": "USLE cover-management factor C (0-1)",
    "usle_p": "USLE support practice factor P (0-1)",
}
#: InVEST's scaling parameter z of the habitat-quality half-saturation function.
HQ_SCALING_Z = 2.5
#: Erosivity methods from the 12 monthly precipitation totals of a year.
MONTHLY_R_FACTOR_METHODS = ("wischmeier_smith_monthly",)
#: Erosivity methods; the first is the default. The others read annual precipitation.
R_FACTOR_METHODS = (*MONTHLY_R_FACTOR_METHODS, "renard_freimund_1994", "power")
#: Coefficients of the monthly modified-Fournier form R = f sum a 10^(b log10(P_i^2 / P) + c):
#: Wischmeier & Smith (1978) via Arnoldus (1980), US customary units; f = 17.02 converts
#: hundreds of ft tonf in ac-1 h-1 yr-1 to MJ mm ha-1 h-1 yr-1 (Foster et al. 1981).
WISCHMEIER_SMITH_MONTHLY: dict[str, float] = {"a": 1.735, "b": 1.5, "c": -0.8188, "si_factor": 17.02}
#: InVEST's exponential decay constant: the impact falls to 5 % (e^-2.99) at d_max.
_EXP_DECAY = 2.99
#: US customary K (t acre h / (100 acre ft tonf in)) to SI (t ha h / (ha MJ mm)); Foster et al. 1981.
K_US_TO_SI = 0.1317


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _apply(func: Any, *args: Any, n_out: int = 1) -> Any:
    """Run a numpy kernel on numpy arrays or (dask-backed) DataArrays alike."""
    if any(isinstance(a, xr.DataArray) for a in args):
        core_dims: dict[str, Any] = {"output_core_dims": [[]] * n_out} if n_out > 1 else {}
        out = xr.apply_ufunc(
            func,
            *args,
            dask="parallelized",
            output_dtypes=[np.float64] * n_out,
            **core_dims,
        )
        return out
    return func(*(np.asarray(a, dtype=np.float64) for a in args))


def _values(a: Any) -> np.ndarray:
    if isinstance(a, xr.DataArray):
        return np.asarray(a.values)
    return np.asarray(a)


def _check_range(
    a: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    names: Mapping[str, str] | None = None,
    rule: str = "",
) -> None:
    """:func:`karstflow.checks.check_range` of a service input, named by ``names`` (the file
    and variable a script read it from) or by ``name``; a wholly missing input is left to
    the caller (a tile outside the area of interest)."""
    from karstflow.checks import Range, check_range

    label = (names or {}).get(name, name)
    rng = Range("", low, high, exclusive_minimum=low_open)
    check_range(_values(a), rng, source=label, variable=None, allow_empty=True, hint=rule)


def reclassify(
    landcover: xr.DataArray | np.ndarray,
    mapping: Mapping[int, float],
    *,
    what: str,
    table_source: str,
    map_source: str = "land cover",
) -> xr.DataArray | np.ndarray:
    """Per-pixel value of each land-cover code (NaN where the code is NaN).

    Raises ``ValueError`` listing every code present in the map but missing from the
    table, naming both sources.
    """
    table = {int(k): float(v) for k, v in mapping.items()}
    lc = _values(landcover)
    codes = np.unique(lc[np.isfinite(lc)] if np.issubdtype(lc.dtype, np.floating) else lc)
    present = sorted({int(c) for c in codes})
    missing = sorted(set(present) - set(table))
    if missing:
        raise ValueError(
            f"{table_source}: land-cover code(s) {missing} present in {map_source} have no "
            f"{what}; the table has codes {sorted(table)}, the map has {present}"
        )
    size = max([*table, *present, 0]) + 1
    lut = np.full(size, np.nan)
    for k, v in table.items():
        if k >= 0:
            lut[k] = v

    def kernel(a: np.ndarray) -> np.ndarray:
        out = np.full(a.shape, np.nan)
        ok = np.isfinite(a) if np.issubdtype(a.dtype, np.floating) else np.ones(a.shape, bool)
        out[ok] = lut[a[ok].astype(np.int64)]
        return out

    if isinstance(landcover, xr.DataArray):
        return xr.apply_ufunc(kernel, landcover, dask="parallelized", output_dtypes=[np.float64])
    return kernel(lc)


def check_biophysical_table(table: pd.DataFrame, *, source: str = "biophysical table") -> pd.DataFrame:
    """Validate an InVEST-style biophysical table; return it indexed by ``lucode``."""
    missing = [c for c in BIOPHYSICAL_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(
            f"{source}: missing column(s) {missing}; expected {list(BIOPHYSICAL_COLUMNS)}, found {list(table.columns)}"
        )
    numeric = table[list(BIOPHYSICAL_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    bad_cols = [c for c in BIOPHYSICAL_COLUMNS if numeric[c].isna().any()]
    if bad_cols:
        raise ValueError(f"{source}: non-numeric or empty values in column(s) {bad_cols}")
    if numeric["lucode"].duplicated().any():
        dups = sorted(int(c) for c in numeric.loc[numeric["lucode"].duplicated(), "lucode"])
        raise ValueError(f"{source}: duplicate lucode(s) {dups}")
    checks = {
        "root_depth_mm": (0.0, None),
        "kc": (0.0, None),
        "usle_c": (0.0, 1.0),
        "usle_p": (0.0, 1.0),
    }
    for col, (lo, hi) in checks.items():
        v = numeric[col]
        bad = (v < lo) | ((v > hi) if hi is not None else False)
        if bad.any():
            rng = f"[{lo:g}, {hi:g}]" if hi is not None else f">= {lo:g}"
            raise ValueError(
                f"{source}: column {col} must be {rng}; lucode(s) "
                f"{sorted(int(c) for c in numeric.loc[bad, 'lucode'])} have {v[bad].tolist()}"
            )
    if not numeric["lulc_veg"].isin([0, 1]).all():
        bad = numeric.loc[~numeric["lulc_veg"].isin([0, 1])]
        raise ValueError(
            f"{source}: lulc_veg must be 0 or 1; lucode(s) {bad['lucode'].astype(int).tolist()} have "
            f"{bad['lulc_veg'].tolist()}"
        )
    numeric["lucode"] = numeric["lucode"].astype(np.int64)
    return numeric.set_index("lucode")


def climate_of_year(
    climate: xr.Dataset, variable: str, year: int, *, mode: str = "year", source: str = "climate cube"
) -> xr.DataArray:
    """One climate variable for a service year: that year's layer (``mode="year"``) or the
    mean over every year of the cube (``"period_mean"``, so that changes between service
    years come from land cover alone)."""
    if variable not in climate.data_vars:
        raise ValueError(f"{source}: no variable {variable!r}; found {sorted(map(str, climate.data_vars))}")
    da = climate[variable]
    if "year" not in da.dims:
        raise ValueError(f"{source}: {variable} has no year dimension (dims {da.dims})")
    if mode == "period_mean":
        return da.mean("year", skipna=True)
    if mode != "year":
        raise ValueError(f"climate mode must be 'year' or 'period_mean', found {mode!r}")
    have = [int(y) for y in np.asarray(da["year"].values).tolist()]
    if int(year) not in have:
        raise ValueError(f"{source}: {variable} has no year {year} (years {min(have)}..{max(have)})")
    return da.sel(year=int(year))


def months_of_year(
    monthly: xr.Dataset, variable: str, year: int, *, source: str = "monthly climate cube"
) -> xr.DataArray:
    """The 12 monthly layers (time, y, x) of ``variable`` in calendar ``year`` of a monthly
    climate cube (:mod:`karstflow.climate` conventions: a ``time`` axis of month starts,
    ``units`` per variable, fluxes as monthly totals such as ``mm month-1``).

    Raises ``ValueError`` naming ``source`` when the variable is missing, has no time axis,
    is not in the canonical monthly units, or the year does not have all 12 months.
    """
    from karstflow.climate import MONTHLY_VARIABLES

    if variable not in monthly.data_vars:
        raise ValueError(f"{source}: no variable {variable!r}; found {sorted(map(str, monthly.data_vars))}")
    da = monthly[variable]
    if "time" not in da.dims:
        raise ValueError(f"{source}: {variable} has no time dimension (dims {da.dims}); a monthly cube is expected")
    want = MONTHLY_VARIABLES.get(variable, {}).get("units")
    if want is not None and da.attrs.get("units") != want:
        found = da.attrs.get("units")
        raise ValueError(f"{source}: {variable} has units {found!r}, expected {want!r} (monthly totals)")
    t = pd.DatetimeIndex(da["time"].values)
    sel = np.asarray(t.year == int(year))
    months = sorted(set(t.month[sel].tolist()))
    if months != list(range(1, 13)) or int(sel.sum()) != 12:
        have = sorted(set(t.year.tolist()))
        raise ValueError(
            f"{source}: {variable} of {int(year)} has {int(sel.sum())} monthly step(s) (months {months}); 12 are "
            f"needed (years in the cube: {have[0] if have else '-'}..{have[-1] if have else '-'})"
        )
    return da.isel(time=np.nonzero(sel)[0])


# --------------------------------------------------------------------------------------
# soil conservation (RUSLE)
# --------------------------------------------------------------------------------------


def r_factor(
    precip_mm: Any,
    *,
    method: str = "renard_freimund_1994",
    a: float | None = None,
    b: float | None = None,
    name: str = "precipitation",
) -> Any:
    """Rainfall erosivity R (MJ mm ha-1 h-1 yr-1) from annual precipitation (mm).

    ``renard_freimund_1994``: 0.0483 P^1.61 (P <= 850 mm), 587.8 - 1.219 P + 0.004105 P^2
    (P > 850 mm). ``power``: a * P^b.
    """
    if method in MONTHLY_R_FACTOR_METHODS:
        raise ValueError(
            f"R factor method {method!r} needs the 12 monthly precipitation totals of the year "
            "(r_factor_monthly), not annual precipitation"
        )
    _check_range(precip_mm, name, low=0.0)
    if method == "renard_freimund_1994":

        def kernel(p: np.ndarray) -> np.ndarray:
            return np.where(p <= 850.0, 0.0483 * np.power(p, 1.61), 587.8 - 1.219 * p + 0.004105 * p * p)
    elif method == "power":
        if a is None or b is None or not (a > 0 and b > 0):
            raise ValueError(f"R factor method power needs a > 0 and b > 0, found a={a!r}, b={b!r}")

        def kernel(p: np.ndarray) -> np.ndarray:
            return a * np.power(p, b)
    else:
        raise ValueError(f"R factor method must be one of {R_FACTOR_METHODS}, found {method!r}")
    return _apply(kernel, precip_mm)


def r_factor_monthly(
    monthly_precip_mm: Any,
    *,
    a: float = WISCHMEIER_SMITH_MONTHLY["a"],
    b: float = WISCHMEIER_SMITH_MONTHLY["b"],
    c: float = WISCHMEIER_SMITH_MONTHLY["c"],
    si_factor: float = WISCHMEIER_SMITH_MONTHLY["si_factor"],
    name: str = "monthly precipitation",
) -> Any:
    """Rainfall erosivity R (MJ mm ha-1 h-1 yr-1) of one year from its 12 monthly totals (mm)::

        R = si_factor * sum_{i=1..12} a * 10^(b * log10(P_i^2 / P) + c),   P = sum_i P_i

    the monthly modified-Fournier form of Wischmeier & Smith (1978) with a = 1.735,
    b = 1.5, c = -0.8188 in US customary units (hundreds of ft tonf in ac-1 h-1 yr-1) and
    si_factor = 17.02 to SI (Foster et al. 1981). A dry month adds nothing (the limit of
    the term as P_i -> 0); a year without rain has R = 0; NaN in any month gives NaN.

    ``monthly_precip_mm``: an array whose first axis holds the 12 months, or a DataArray
    with a ``time`` dimension of length 12. Raises ``ValueError`` for another number of
    months, negative precipitation (naming ``name``) or non-positive coefficients a, b, f.
    """
    for label, v in (("a", a), ("b", b), ("si_factor", si_factor)):
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise ValueError(f"monthly R factor: coefficient {label} must be a positive number, found {v!r}")
    if not (isinstance(c, int | float) and math.isfinite(c)):
        raise ValueError(f"monthly R factor: coefficient c must be a finite number, found {c!r}")
    _check_range(monthly_precip_mm, name, low=0.0)
    scale = float(si_factor) * float(a) * 10.0 ** float(c)
    bf = float(b)

    def kernel(p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        if p.shape[0] != 12:
            raise ValueError(f"{name}: expected 12 monthly totals along the first axis, found {p.shape[0]}")
        total = p.sum(axis=0)  # NaN in any month propagates
        with np.errstate(divide="ignore", invalid="ignore"):
            fournier = np.where(total > 0, p * p / total, 0.0)
        # 10^(b log10 x + c) = 10^c x^b, which is 0 at x = 0 (a dry month) instead of 10^-inf
        r = scale * np.power(fournier, bf).sum(axis=0)
        return np.where(np.isfinite(total), r, np.nan)

    if isinstance(monthly_precip_mm, xr.DataArray):
        da = monthly_precip_mm
        if "time" not in da.dims:
            raise ValueError(f"{name}: expected a time dimension of 12 months, found dims {da.dims}")
        if da.sizes["time"] != 12:
            raise ValueError(f"{name}: expected 12 monthly totals along time, found {da.sizes['time']}")
        return xr.apply_ufunc(
            lambda arr: kernel(np.moveaxis(arr, -1, 0)),
            da,
            input_core_dims=[["time"]],
            dask="parallelized",
            output_dtypes=[np.float64],
        ).assign_attrs(units="MJ mm ha-1 h-1 yr-1", long_name="rainfall erosivity R (monthly modified Fournier)")
    return kernel(np.asarray(monthly_precip_mm, dtype=np.float64))


def k_factor_epic(
    sand_pct: Any,
    silt_pct: Any,
    clay_pct: Any,
    organic_carbon_pct: Any,
    *,
    si_factor: float = K_US_TO_SI,
    names: Mapping[str, str] | None = None,
) -> Any:
    """Soil erodibility K (t ha h ha-1 MJ-1 mm-1) by the EPIC equation (Williams 1995)::

        K = f_csand * f_cl-si * f_orgc * f_hisand * si_factor
        f_csand  = 0.2 + 0.3 exp(-0.0256 SAN (1 - SIL / 100))
        f_cl-si  = (SIL / (CLA + SIL))^0.3
        f_orgc   = 1 - 0.25 C / (C + exp(3.72 - 2.95 C))
        f_hisand = 1 - 0.7 SN1 / (SN1 + exp(-5.51 + 22.9 SN1)),  SN1 = 1 - SAN / 100

    SAN, SIL, CLA: sand, silt, clay (%); C organic carbon (%). The product is in US
    customary units; ``si_factor`` (0.1317) converts it to SI.
    """
    for nm, v in (("sand_pct", sand_pct), ("silt_pct", silt_pct), ("clay_pct", clay_pct)):
        _check_range(v, nm, low=0.0, high=100.0, names=names)
    _check_range(organic_carbon_pct, "organic_carbon_pct", low=0.0, high=100.0, names=names)
    total = _values(sand_pct).astype(float) + _values(silt_pct) + _values(clay_pct)
    off = np.isfinite(total) & (np.abs(total - 100.0) > 2.0)
    if off.any():
        label = ", ".join((names or {}).get(n, n) for n in ("sand_pct", "silt_pct", "clay_pct"))
        raise ValueError(
            f"{label}: sand + silt + clay must be 100 % (+-2); found {int(off.sum())} pixel(s) "
            f"off (range {np.nanmin(total[off]):g} to {np.nanmax(total[off]):g})"
        )

    def kernel(san: np.ndarray, sil: np.ndarray, cla: np.ndarray, c: np.ndarray) -> np.ndarray:
        f_csand = 0.2 + 0.3 * np.exp(-0.0256 * san * (1.0 - sil / 100.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            f_clsi = np.power(sil / (cla + sil), 0.3)
        f_clsi = np.where((cla + sil) > 0, f_clsi, 0.0)
        f_orgc = 1.0 - 0.25 * c / (c + np.exp(3.72 - 2.95 * c))
        sn1 = 1.0 - san / 100.0
        f_hisand = 1.0 - 0.7 * sn1 / (sn1 + np.exp(-5.51 + 22.9 * sn1))
        return f_csand * f_clsi * f_orgc * f_hisand * si_factor

    return _apply(kernel, sand_pct, silt_pct, clay_pct, organic_carbon_pct)


def c_factor_from_cover(fvc: Any) -> Any:
    """Cover-management C from fractional vegetation cover (0-1), Cai Chongfa et al. (2000)::

    C = 1                                 f = 0
    C = 0.6508 - 0.3436 log10(f * 100)    0 < f < 78.3 %
    C = 0                                 f >= 78.3 %
    """
    _check_range(fvc, "vegetation cover", low=0.0, high=1.0)

    def kernel(f: np.ndarray) -> np.ndarray:
        pct = f * 100.0
        with np.errstate(divide="ignore", invalid="ignore"):
            mid = 0.6508 - 0.3436 * np.log10(pct)
        c = np.where(pct <= 0, 1.0, np.where(pct >= 78.3, 0.0, mid))
        return np.where(np.isfinite(f), np.clip(c, 0.0, 1.0), np.nan)

    return _apply(kernel, fvc)


class RoutingResult(NamedTuple):
    """Flow routing of a DEM on its grid (numpy, shape of the DEM)."""

    filled_dem: np.ndarray  # depressions filled (m)
    flow_accumulation: np.ndarray  # MFD accumulation in cells, the cell itself included


_PYSHEDS_READY = False


def _pysheds_compiled() -> None:
    """Compile (or load from numba's cache) pysheds' kernels once per process, one process
    at a time.

    pysheds compiles its kernels with ``numba.njit(cache=True)``; two processes compiling
    ``_priority_flood`` (it uses an ``itertools.count`` generator) into a cold cache at once
    make one of them fail with ``KeyError: int64 generator(func=<function count ...>)``
    (seen with two jobs, or two test workers, on a fresh install; numba 0.6x). So the first
    call in a process routes a 3 x 3 DEM under an exclusive lock beside the cache.
    """
    global _PYSHEDS_READY
    if _PYSHEDS_READY:
        return
    import fcntl
    import os
    import tempfile
    from pathlib import Path

    import pysheds
    from affine import Affine
    from pysheds.grid import Grid
    from pysheds.sview import Raster, ViewFinder

    cache = Path(os.environ.get("NUMBA_CACHE_DIR") or Path(pysheds.__file__).parent / "__pycache__")
    lock_dir = cache if os.access(cache, os.W_OK) else Path(tempfile.gettempdir())
    with open(lock_dir / "karstflow-pysheds-compile.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        vf = ViewFinder(affine=Affine(1.0, 0.0, 0.0, 0.0, -1.0, 3.0), shape=(3, 3), nodata=np.nan)
        grid = Grid(viewfinder=vf)
        z = Raster(np.array([[3.0, 2.0, 3.0], [2.0, 1.0, 2.0], [3.0, 0.5, 3.0]]), viewfinder=vf)
        filled = grid.fill_depressions(grid.fill_pits(z))
        grid.accumulation(grid.flowdir(grid.resolve_flats(filled), routing="mfd"), routing="mfd")
    _PYSHEDS_READY = True


def flow_routing(dem: xr.DataArray) -> RoutingResult:
    """Fill depressions, resolve flats and accumulate flow by MFD with pysheds.

    As InVEST SDR (pygeoprocessing's fill_pits, flow_dir_mfd, flow_accumulation_mfd):
    every depression is filled to its pour point first (karst dolines included: RUSLE has
    no underground drainage), flow is split between all lower neighbours in proportion
    to the drop over the distance (Freeman 1991 with exponent 1), and the accumulation
    counts the cell itself. Square pixels are required.
    """
    register_rio()
    from affine import Affine
    from pysheds.grid import Grid
    from pysheds.sview import Raster, ViewFinder

    z = np.asarray(dem.values, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"DEM must be 2-D (y, x), found dims {dem.dims}")
    transform = dem.rio.transform()
    if not math.isclose(abs(transform.a), abs(transform.e), rel_tol=1e-9):
        raise ValueError(f"flow routing needs square pixels, found {abs(transform.a)} x {abs(transform.e)}")
    nodata = ~np.isfinite(z)
    if nodata.all():
        raise ValueError("DEM has no valid elevation")
    _pysheds_compiled()
    vf = ViewFinder(affine=Affine(*tuple(transform)[:6]), shape=z.shape, nodata=np.nan)
    grid = Grid(viewfinder=vf)
    filled = grid.fill_depressions(grid.fill_pits(Raster(np.where(nodata, np.nan, z), viewfinder=vf)))
    fdir = grid.flowdir(grid.resolve_flats(filled), routing="mfd")
    acc = np.asarray(grid.accumulation(fdir, routing="mfd"), dtype=np.float64)
    filled_np = np.asarray(filled, dtype=np.float64)
    acc[nodata] = np.nan
    filled_np[nodata] = np.nan
    return RoutingResult(filled_np, acc)


def ls_factor(
    slope_deg: Any,
    aspect_deg: Any,
    flow_accumulation: Any,
    *,
    cell_size_m: float,
    l_max: float = 122.0,
) -> Any:
    """RUSLE LS by Desmet & Govers (1996) in the form of InVEST SDR 3.14 and later::

        LS = S * min(L, l_max)
        L  = ((A + D^2)^(m+1) - A^(m+1)) / (D^(m+2) * x^m * 22.13^m)
        A  = sqrt((flow accumulation - 1) * D^2)        "square root of catchment area"
        x  = |sin a| + |cos a|,  a the on-pixel aspect (1 where flat)
        S  = 10.8 sin(theta) + 0.03   (slope < 9 %),  16.8 sin(theta) - 0.5  otherwise
        m  = 0.2 (<= 1 %), 0.3 (<= 3.5 %), 0.4 (<= 5 %), 0.5 (<= 9 %), beta / (1 + beta) above,
        beta = (sin(theta) / 0.0896) / (3 sin(theta)^0.8 + 0.56)

    InVEST's ADR-0001 replaced the whole upslope area (and an MFD-weighted x) of 3.8-3.13
    by the square root of the catchment area, SAGA's option, because the former gave
    unrealistically long slope lengths; its decision is the on-pixel aspect for x (Desmet
    & Govers eq. 3), which is what this uses (InVEST 3.14's code evaluates |sin| + |cos|
    at the slope angle instead; the two differ by a factor x^m of at most 1.3).
    ``slope_deg`` and ``aspect_deg`` in degrees (aspect -1 = flat, as
    :func:`karstflow.terrain.slope_aspect`), ``flow_accumulation`` in cells (the cell
    included), D the cell size (m).
    """
    if not cell_size_m > 0:
        raise ValueError(f"cell size must be > 0 m, found {cell_size_m!r}")
    if not l_max > 0:
        raise ValueError(f"l_max must be > 0, found {l_max!r}")
    _check_range(slope_deg, "slope", low=0.0, high=90.0)
    _check_range(flow_accumulation, "flow accumulation", low=1.0)
    d = float(cell_size_m)

    def kernel(slope: np.ndarray, aspect: np.ndarray, acc: np.ndarray) -> np.ndarray:
        theta = np.radians(slope)
        pct = np.tan(theta) * 100.0
        sin = np.sin(theta)
        s_factor = np.where(pct < 9.0, 10.8 * sin + 0.03, 16.8 * sin - 0.5)
        with np.errstate(divide="ignore", invalid="ignore"):
            beta = (sin / 0.0896) / (3.0 * np.power(sin, 0.8) + 0.56)
        m = np.select([pct <= 1.0, pct <= 3.5, pct <= 5.0, pct <= 9.0], [0.2, 0.3, 0.4, 0.5], beta / (1.0 + beta))
        alpha = np.radians(aspect)
        x = np.where(aspect < 0, 1.0, np.abs(np.sin(alpha)) + np.abs(np.cos(alpha)))
        area = np.sqrt((acc - 1.0) * d * d)
        l_factor = (np.power(area + d * d, m + 1) - np.power(area, m + 1)) / (
            np.power(d, m + 2) * np.power(x, m) * np.power(22.13, m)
        )
        return np.minimum(l_factor, l_max) * s_factor

    return _apply(kernel, slope_deg, aspect_deg, flow_accumulation)


class RusleResult(NamedTuple):
    potential: Any  # R K LS, t ha-1 yr-1
    actual: Any  # R K LS C P
    retention: Any  # potential - actual


def rusle(r: Any, k: Any, ls: Any, c: Any, p: Any) -> RusleResult:
    """Potential and actual soil loss and soil retention (t ha-1 yr-1) by RUSLE."""
    _check_range(c, "C factor", low=0.0, high=1.0)
    _check_range(p, "P factor", low=0.0, high=1.0)
    potential = r * k * ls
    actual = potential * c * p
    return RusleResult(potential, actual, potential - actual)


# --------------------------------------------------------------------------------------
# water yield (InVEST Annual Water Yield)
# --------------------------------------------------------------------------------------


class WaterYield(NamedTuple):
    water_yield_mm: Any
    aet_mm: Any
    pet_mm: Any
    w: Any  # Budyko w (NaN where not vegetated)


def annual_water_yield(
    precip_mm: Any,
    eto_mm: Any,
    kc: Any,
    root_depth_mm: Any,
    soil_depth_mm: Any,
    pawc: Any,
    z: float,
    vegetated: Any,
    *,
    names: Mapping[str, str] | None = None,
) -> WaterYield:
    """Annual water yield (mm) per pixel, InVEST Annual Water Yield; vectorised.

    Every argument but ``z`` is an array (or scalar) broadcastable to the others: annual
    precipitation and reference ET (mm), crop coefficient Kc, root depth and depth to the
    root-restricting layer (mm), plant available water content (fraction 0-1) and
    ``vegetated`` (1 Budyko, 0 AET = min(Kc ETo, P)). ``z`` is the seasonality constant.
    NaN anywhere gives NaN. ``names`` maps argument names to file/variable names used in
    error messages.

    Raises ``ValueError`` (naming the input) for precipitation <= 0 (w = Z AWC / P is
    undefined; InVEST silently drops such pixels), negative ETo, Kc, depths, PAWC outside
    [0, 1], ``vegetated`` other than 0/1 or Z <= 0.
    """
    if not (isinstance(z, int | float) and z > 0 and math.isfinite(z)):
        raise ValueError(f"seasonality constant Z must be a positive number, found {z!r}")
    _check_range(
        precip_mm,
        "precip_mm",
        low=0.0,
        low_open=True,
        names=names,
        rule=" (annual precipitation; w = Z * AWC / P is undefined at P = 0)",
    )
    _check_range(eto_mm, "eto_mm", low=0.0, names=names, rule=" (reference evapotranspiration)")
    _check_range(kc, "kc", low=0.0, names=names)
    _check_range(root_depth_mm, "root_depth_mm", low=0.0, names=names)
    _check_range(soil_depth_mm, "soil_depth_mm", low=0.0, names=names)
    _check_range(pawc, "pawc", low=0.0, high=1.0, names=names)
    veg = _values(vegetated)
    vf = veg[np.isfinite(veg)] if np.issubdtype(veg.dtype, np.floating) else veg
    if not np.isin(vf, (0, 1)).all():
        raise ValueError(
            f"{(names or {}).get('vegetated', 'vegetated')}: expected 0 or 1, found "
            f"{sorted(set(np.unique(vf).tolist()) - {0, 1})}"
        )
    zf = float(z)

    def kernel(
        p: np.ndarray, eto: np.ndarray, k: np.ndarray, root: np.ndarray, soil: np.ndarray, pw: np.ndarray, v: np.ndarray
    ):
        pet = k * eto
        awc = np.minimum(root, soil) * pw
        w = np.minimum(zf * awc / p + 1.25, 5.0)
        phi = pet / p
        with np.errstate(over="ignore", invalid="ignore"):
            budyko = 1.0 + phi - np.power(1.0 + np.power(phi, w), 1.0 / w)
        aet_p_veg = np.minimum(phi, budyko)
        aet_p_bare = np.minimum(pet, p) / p
        aet_p = np.where(v == 1, aet_p_veg, aet_p_bare)
        nan = ~(
            np.isfinite(p)
            & np.isfinite(eto)
            & np.isfinite(k)
            & np.isfinite(root)
            & np.isfinite(soil)
            & np.isfinite(pw)
            & np.isfinite(v)
        )
        aet = np.where(nan, np.nan, aet_p * p)
        wy = np.where(nan, np.nan, p - aet)
        return wy, aet, np.where(nan, np.nan, pet), np.where(nan | (v != 1), np.nan, w)

    out = _apply(kernel, precip_mm, eto_mm, kc, root_depth_mm, soil_depth_mm, pawc, vegetated, n_out=4)
    return WaterYield(*out)


# --------------------------------------------------------------------------------------
# habitat quality (InVEST)
# --------------------------------------------------------------------------------------


def threat_proximity(threat: Any, *, max_distance_m: float, decay: str, resolution_m: float) -> np.ndarray:
    """InVEST's distance decay i_r of one threat: 1 on the threat, 0 beyond ``max_distance_m``.

    ``threat`` is a 2-D boolean (or 0/1) mask of threat pixels; distances are Euclidean
    between pixel centres (scipy's exact distance transform, as InVEST's
    pygeoprocessing.distance_transform_edt), in metres.
    """
    from scipy import ndimage

    if not max_distance_m > 0:
        raise ValueError(f"threat max distance must be > 0 m, found {max_distance_m!r}")
    if decay not in ("linear", "exponential"):
        raise ValueError(f"threat decay must be linear or exponential, found {decay!r}")
    mask = _values(threat).astype(bool)
    if not mask.any():
        return np.zeros(mask.shape)
    dist = ndimage.distance_transform_edt(~mask, sampling=(resolution_m, resolution_m))
    if decay == "linear":
        impact = (max_distance_m - dist) / max_distance_m
    else:
        impact = np.exp(-_EXP_DECAY * dist / max_distance_m)
    return np.where(dist > max_distance_m, 0.0, impact)


def habitat_degradation(
    landcover: xr.DataArray | np.ndarray,
    threat_masks: Mapping[str, Any],
    threats: Mapping[str, Mapping[str, Any]],
    sensitivity: Mapping[int, Mapping[str, float]],
    *,
    resolution_m: float,
    source: str = "land cover",
    table_source: str = "habitat sensitivity table",
    access: Any = None,
    access_source: str = "access layer",
    threats_source: str = "threat table",
) -> xr.DataArray | np.ndarray:
    """Total threat D per pixel as InVEST habitat quality computes it::

        D_x = sum_r (w_r / sum_{r' in table} w_r') * i_r(x) * beta_x * S_j(x),r

    ``threats``: the threat table, name -> {weight, max_distance_m, decay[, enabled]}; a
    threat with ``enabled: False`` is not part of the table. Every threat of the table
    needs a map in ``threat_masks`` (a 2-D mask, all False when the region has none of it):
    InVEST's ``execute`` raises for a threat raster it cannot find, and normalises the
    weights by the sum over the whole table (``weight_sum = threat_df['weight'].sum()``),
    so leaving a threat out without taking it out of the table would inflate the others'
    weights. ``sensitivity``: land-cover code -> {threat name: S (0-1)}. ``access``: beta
    (0-1) per pixel, InVEST's rasterised access layer (1 where no polygon covers the
    pixel); None means 1 everywhere.

    Raises ``ValueError`` naming ``threats_source`` and the threat(s) for a threat of the
    table without a map or a map of a threat not in the table, and naming
    ``access_source`` for access values outside [0, 1] or of another shape.
    """
    table = {name: spec for name, spec in threats.items() if spec.get("enabled", True)}
    if not table:
        raise ValueError(f"{threats_source}: no threat (every threat is disabled); habitat degradation needs one")
    missing = sorted(set(table) - set(threat_masks))
    if missing:
        raise ValueError(
            f"{threats_source}: threat(s) {missing} have no threat map; InVEST normalises the weights over every "
            f"threat of the table ({sorted(table)}), so a threat without data is not left out silently: give its "
            "data, or take it out of the table explicitly"
        )
    unknown = sorted(set(threat_masks) - set(table))
    if unknown:
        raise ValueError(f"threat map(s) {unknown} have no entry in the {threats_source} ({sorted(table)})")
    weights = {name: float(spec["weight"]) for name, spec in table.items()}
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"{threats_source}: threat weights must be >= 0 with a positive sum, found {weights}")
    total_w = sum(weights.values())
    shape = _values(landcover).shape
    if access is None:
        beta: np.ndarray | float = 1.0
    else:
        beta = _values(access).astype(np.float64)
        if beta.shape != shape:
            raise ValueError(f"{access_source}: access shape {beta.shape} differs from the land cover {shape}")
        if not np.isfinite(beta).all():
            raise ValueError(f"{access_source}: {int((~np.isfinite(beta)).sum())} pixel(s) without an access value")
        _check_range(beta, access_source, low=0.0, high=1.0, rule=" (access to threats, InVEST ACCESS)")
    d = np.zeros(shape)
    for name in table:
        mask = threat_masks[name]
        if _values(mask).shape != shape:
            raise ValueError(f"threat {name}: map shape {_values(mask).shape} differs from the land cover {shape}")
        no_value = [code for code, row in sensitivity.items() if name not in row]
        if no_value:
            raise ValueError(
                f"{table_source}: no sensitivity to threat {name!r} for land-cover code(s) {sorted(no_value)}"
            )
        sens = reclassify(
            landcover,
            {c: row[name] for c, row in sensitivity.items()},
            what=f"sensitivity to {name}",
            table_source=table_source,
            map_source=source,
        )
        spec = table[name]
        impact = threat_proximity(
            mask, max_distance_m=float(spec["max_distance_m"]), decay=str(spec["decay"]), resolution_m=resolution_m
        )
        d = d + weights[name] / total_w * impact * beta * _values(sens)
    d = np.where(np.isfinite(_values(landcover).astype(float)), d, np.nan)
    if isinstance(landcover, xr.DataArray):
        return (
            landcover.copy(data=d)
            .rename("habitat_degradation")
            .assign_attrs(units="1", long_name="total threat D (InVEST habitat quality)")
        )
    return d


def habitat_quality(habitat: Any, degradation: Any, *, half_saturation: float, z: float = HQ_SCALING_Z) -> Any:
    """Q = H (1 - D^z / (D^z + k^z)) (InVEST); H habitat suitability (0-1), D degradation."""
    if not half_saturation > 0:
        raise ValueError(f"half-saturation constant k must be > 0, found {half_saturation!r}")
    _check_range(habitat, "habitat suitability", low=0.0, high=1.0)
    _check_range(degradation, "degradation", low=0.0)
    ksq = float(half_saturation) ** z

    def kernel(h: np.ndarray, d: np.ndarray) -> np.ndarray:
        dz = np.power(d, z)
        return h * (1.0 - dz / (dz + ksq))

    return _apply(kernel, habitat, degradation)


def half_saturation_auto(degradations: Iterable[Any]) -> float:
    """Half the highest degradation over the given maps (InVEST user guide's advice).

    A region statistic: computed once over every service year's map of the whole region
    (rule services_habitat_half_saturation), never per tile. ``degradations`` may be a
    generator, so one map at a time is in memory.
    """
    highest = max(
        (float(np.nanmax(v)) if np.isfinite(v).any() else 0.0 for v in (_values(d) for d in degradations)),
        default=0.0,
    )
    if not highest > 0:
        raise ValueError(
            "all degradation maps are 0 or empty: no threat reaches any pixel, k cannot be derived (set "
            "services.habitat_quality.half_saturation)"
        )
    return highest / 2.0


def threat_masks(
    landcover: Any,
    threats: Mapping[str, Mapping[str, Any]],
    layers: Mapping[str, Any],
    grid: RegionGrid,
    *,
    region: str,
    threats_key: str = "config key services.habitat_quality.threats",
) -> dict[str, np.ndarray]:
    """The map of every threat of the table on ``grid``: the pixels of its ``landcover_codes``,
    or its vector layer (``layers[name]``, a GeoDataFrame in the grid's CRS) burnt in along
    every pixel a geometry touches (``all_touched``, so a road narrower than a pixel still
    marks the pixels it crosses).

    A threat of the table with neither stops naming the threat and the config keys that
    resolve it: InVEST stops for a threat raster it cannot find, and renormalising the
    weights over the other threats would raise each of theirs (by 2.5 / 1.7 for roads).
    """
    from rasterio import features

    lc = _values(landcover)
    masks: dict[str, np.ndarray] = {}
    for name, spec in threats.items():
        if spec.get("landcover_codes"):
            masks[name] = np.isin(lc, list(spec["landcover_codes"]))
        elif name in layers:
            geoms = [g for g in layers[name].geometry if g is not None and not g.is_empty]
            masks[name] = (
                features.rasterize(
                    ((g, 1) for g in geoms),
                    out_shape=grid.shape,
                    transform=grid.transform,
                    fill=0,
                    all_touched=True,
                    dtype="uint8",
                ).astype(bool)
                if geoms
                else np.zeros(grid.shape, bool)
            )
        else:
            key = spec.get("vector_input")
            raise ValueError(
                f"{threats_key}.{name}: threat {name!r} reads the region's {key!r} input, which region {region} "
                f"does not give; give the layer (regions.{region}.inputs.{key}), or take the threat out of this "
                f"region's table (services.habitat_quality.drop_threats: {{{region}: [{name}]}}) or of every "
                f"region's ({threats_key}.{name}.enabled: false)"
            )
    return masks


def access_raster(layer: Any, grid: RegionGrid, *, source: str = "access layer") -> np.ndarray:
    """InVEST's access raster beta on ``grid``: 1.0 everywhere, then each polygon's ``access``
    (0-1) burnt in at the pixels whose centre it covers (pygeoprocessing.rasterize with
    ATTRIBUTE=ACCESS: GDAL's default, not all-touched; a later polygon overwrites an earlier
    one). ``layer`` is a GeoDataFrame in the grid's CRS; ``source`` names it in errors."""
    from rasterio import features

    if "access" not in layer.columns:
        raise ValueError(f"{source}: the access layer has no column 'access'; found {list(layer.columns)}")
    values = layer["access"].astype(float)
    bad = ~np.isfinite(values) | (values < 0) | (values > 1)
    if bad.any():
        raise ValueError(
            f"{source}: column access must be 0-1 (0 inaccessible, 1 fully accessible to threats); "
            f"{int(bad.sum())} polygon(s) have {values[bad].tolist()[:5]}"
        )
    shapes = [(g, float(v)) for g, v in zip(layer.geometry, values, strict=True) if g is not None and not g.is_empty]
    if not shapes:
        return np.ones(grid.shape)
    return features.rasterize(
        shapes, out_shape=grid.shape, transform=grid.transform, fill=1.0, all_touched=False, dtype="float64"
    )

"""Karst greening: annual vegetation-index cubes, their trends and the greening summary.

Functions here take and return xarray objects (no paths) and stay lazy on dask-backed
cubes; the per-pixel trend itself is :func:`karstflow.trends.theil_sen_mk`.

Vegetation indices (per pixel, from surface reflectance; NaN where undefined):

* NDVI = (NIR - red) / (NIR + red) (Rouse et al. 1974);
* EVI = G (NIR - red) / (NIR + C1 red - C2 blue + L) with G = 2.5, C1 = 6, C2 = 7.5,
  L = 1 (Huete et al. 2002, the MODIS EVI);
* kNDVI = tanh(NDVI^2) (Camps-Valls et al. 2021, Sci. Adv. 7, eabc7447: the kernel NDVI
  with an RBF kernel whose length scale is sigma = (NIR + red) / 2, which reduces to
  tanh(NDVI^2)), so it can be derived from an NDVI-only stack.

An annual stack is a Dataset with a ``year`` dim holding either the index itself
(``ndvi``, ``evi``, ``kndvi``) or the bands it needs (``red``, ``nir``, ``blue``; the
Sentinel-2 names ``B04``, ``B08``/``B8A``, ``B02`` are accepted too).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr

# Grid checks live with the region grid; re-exported here for existing callers.
from karstflow.grid import check_same_grid, describe_grid, grid_template  # noqa: F401
from karstflow.trends import TREND_CLASSES, TREND_NODATA, default_min_valid, theil_sen_mk

log = logging.getLogger(__name__)

__all__ = [
    "BAND_ALIASES",
    "INDICES",
    "annual_stack_from_composites",
    "check_index_range",
    "select_years",
    "grid_template",
    "on_grid",
    "check_same_grid",
    "describe_grid",
    "evi",
    "greening_summary",
    "greening_trend",
    "kndvi",
    "log_short_series",
    "ndvi",
    "trend_from_rasters",
    "percentile_endmembers",
    "vegetation_index_cube",
]

INDICES = ("ndvi", "evi", "kndvi")

#: Variable names accepted for each band in an annual stack (first match wins).
BAND_ALIASES: dict[str, tuple[str, ...]] = {
    "red": ("red", "B04", "B4"),
    "nir": ("nir", "B08", "B8", "B8A"),
    "blue": ("blue", "B02", "B2"),
}

#: MODIS EVI coefficients (Huete et al. 2002): gain, aerosol terms C1 and C2, canopy L.
EVI_COEFFICIENTS = {"g": 2.5, "c1": 6.0, "c2": 7.5, "l": 1.0}


# --------------------------------------------------------------------------------------
# indices
# --------------------------------------------------------------------------------------


def _ratio(num: xr.DataArray, den: xr.DataArray) -> xr.DataArray:
    return (num / den.where(den != 0)).astype(np.float32)


def ndvi(red: xr.DataArray, nir: xr.DataArray) -> xr.DataArray:
    """NDVI = (NIR - red) / (NIR + red); NaN where the denominator is 0 or a band is NaN."""
    out = _ratio(nir - red, nir + red)
    out.name = "ndvi"
    out.attrs = {"long_name": "normalized difference vegetation index", "units": "1"}
    return out


def evi(
    blue: xr.DataArray,
    red: xr.DataArray,
    nir: xr.DataArray,
    *,
    g: float = EVI_COEFFICIENTS["g"],
    c1: float = EVI_COEFFICIENTS["c1"],
    c2: float = EVI_COEFFICIENTS["c2"],
    l: float = EVI_COEFFICIENTS["l"],  # noqa: E741  (the symbol of the formula)
) -> xr.DataArray:
    """EVI = G (NIR - red) / (NIR + C1 red - C2 blue + L); reflectance as fractions (0..1)."""
    out = (g * _ratio(nir - red, nir + c1 * red - c2 * blue + l)).astype(np.float32)
    out.name = "evi"
    out.attrs = {"long_name": "enhanced vegetation index (MODIS coefficients)", "units": "1"}
    return out


def kndvi(ndvi_: xr.DataArray) -> xr.DataArray:
    """kNDVI = tanh(NDVI^2) (Camps-Valls et al. 2021, sigma = (NIR + red) / 2)."""
    # a DataArray: xarray implements __array_ufunc__ (numpy's stubs say ndarray)
    out = cast(xr.DataArray, np.tanh(ndvi_.astype(np.float32) ** 2)).astype(np.float32)
    out.name = "kndvi"
    out.attrs = {"long_name": "kernel NDVI, tanh(NDVI^2)", "units": "1"}
    return out


def _band(stack: xr.Dataset, band: str) -> xr.DataArray | None:
    for name in BAND_ALIASES[band]:
        if name in stack.data_vars:
            return stack[name].astype(np.float32)
    return None


def _need_bands(stack: xr.Dataset, index: str, bands: tuple[str, ...], source: str) -> list[xr.DataArray]:
    found = [_band(stack, b) for b in bands]
    missing = [b for b, da in zip(bands, found, strict=True) if da is None]
    if missing:
        raise ValueError(
            f"{source}: cannot build {index!r}: expected a variable {index!r} or the bands "
            f"{', '.join(bands)} (names {', '.join('/'.join(BAND_ALIASES[b]) for b in missing)} for the "
            f"missing {', '.join(missing)}); found variables {sorted(map(str, stack.data_vars))}"
        )
    return found  # type: ignore[return-value]


def vegetation_index_cube(stack: xr.Dataset, index: str = "ndvi", *, source: str = "annual stack") -> xr.Dataset:
    """The annual cube of the greening stage: ``ndvi`` always, plus ``index`` if not NDVI.

    NDVI is kept whatever the trend index is, because fractional vegetation cover and
    CASA FPAR are defined on NDVI. Variables are float32 with dims ``(year, y, x)``;
    years are sorted and must be unique integers. Lazy on dask input.

    Raises
    ------
    ValueError
        Naming ``source`` when the stack has no ``year`` dim, duplicate years, or lacks
        both the index and the bands it needs.
    """
    if index not in INDICES:
        raise ValueError(f"vegetation index must be one of {INDICES}, found {index!r}")
    if "year" not in stack.dims:
        raise ValueError(f"{source}: expected a 'year' dimension, found dims {tuple(stack.dims)}")
    years = np.asarray(stack["year"].values)
    if not np.issubdtype(years.dtype, np.integer):
        if np.issubdtype(years.dtype, np.floating) and np.all(years == np.round(years)):
            stack = stack.assign_coords(year=years.astype(np.int32))
        else:
            raise ValueError(f"{source}: 'year' must hold integer years, found {years[:5].tolist()}...")
    if len(np.unique(stack["year"].values)) != stack.sizes["year"]:
        raise ValueError(f"{source}: duplicate years in {stack['year'].values.tolist()}")
    stack = stack.sortby("year")

    if "ndvi" in stack.data_vars:
        nd = stack["ndvi"].astype(np.float32)
        nd.attrs = {"long_name": stack["ndvi"].attrs.get("long_name", "NDVI"), "units": "1"}
    else:
        red, nir = _need_bands(stack, "ndvi", ("red", "nir"), source)
        nd = ndvi(red, nir)
    out = {"ndvi": nd}
    if index == "evi":
        if "evi" in stack.data_vars:
            out["evi"] = stack["evi"].astype(np.float32)
        else:
            blue, red, nir = _need_bands(stack, "evi", ("blue", "red", "nir"), source)
            out["evi"] = evi(blue, red, nir)
    elif index == "kndvi":
        out["kndvi"] = stack["kndvi"].astype(np.float32) if "kndvi" in stack.data_vars else kndvi(nd)
    ds = xr.Dataset({k: v.transpose("year", ...) for k, v in out.items()})
    ds["year"] = ds["year"].astype(np.int32)
    ds.attrs = {"trend_index": index}
    return ds


def annual_stack_from_composites(composites: Mapping[int, xr.DataArray | xr.Dataset]) -> xr.Dataset:
    """Stack per-year composites (bands as a ``band`` dim or as variables) on a ``year`` dim.

    Band coordinate values become variable names, so a composite with bands
    ``B02, B04, B08`` gives a stack :func:`vegetation_index_cube` understands.
    """
    if not composites:
        raise ValueError("no composites to stack")
    parts = []
    for year in sorted(composites):
        c = composites[year]
        if isinstance(c, xr.DataArray):
            if "band" not in c.dims:
                raise ValueError(f"composite of {year}: expected a 'band' dim, found {c.dims}")
            c = c.to_dataset("band")
            c = c.rename({k: str(k) for k in c.data_vars})
        parts.append(c.expand_dims(year=[int(year)]))
    return xr.concat(parts, dim="year")


# --------------------------------------------------------------------------------------
# grids and end-members
# --------------------------------------------------------------------------------------


def percentile_endmembers(
    da: xr.DataArray, low: float = 5.0, high: float = 95.0, *, max_exact_bytes: int = 512 * 2**20
) -> tuple[float, float]:
    """The ``low`` and ``high`` percentiles of the finite values of ``da`` (all dims pooled).

    Exact (``numpy.nanpercentile``, linear interpolation) for numpy input and for dask
    input up to ``max_exact_bytes``; larger dask cubes are streamed through a 2**17-bin
    histogram between their minimum and maximum (interpolating inside the bin), accurate
    to (max - min) / 131072, i.e. 1.5e-5 for NDVI in [-1, 1].
    """
    if not 0 <= low < high <= 100:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, found {low}, {high}")
    data = da.data
    is_dask = hasattr(data, "dask")
    if not is_dask or da.nbytes <= max_exact_bytes:
        values = np.asarray(da.values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise ValueError(f"{da.name or 'array'}: no finite values to take percentiles of")
        lo, hi = np.percentile(values, [low, high])
        return float(lo), float(hi)
    import dask
    import dask.array as dsa

    finite = dsa.where(dsa.isfinite(data), data, np.nan)
    vmin, vmax, count = dask.compute(dsa.nanmin(finite), dsa.nanmax(finite), dsa.isfinite(data).sum())
    if count == 0:
        raise ValueError(f"{da.name or 'array'}: no finite values to take percentiles of")
    if vmin == vmax:
        return float(vmin), float(vmax)
    nbins = 2**17
    hist, edges = dsa.histogram(finite, bins=nbins, range=(float(vmin), float(vmax)))
    hist = np.asarray(hist.compute(), dtype=np.float64)
    cum = np.cumsum(hist)

    def pct(q: float) -> float:
        target = q / 100.0 * (cum[-1] - 1)  # rank as numpy's linear method, 0-based
        i = int(np.searchsorted(cum, target + 1, side="left"))
        i = min(i, nbins - 1)
        before = cum[i - 1] if i else 0.0
        frac = (target + 1 - before) / max(hist[i], 1.0)
        return float(edges[i] + min(max(frac, 0.0), 1.0) * (edges[i + 1] - edges[i]))

    return pct(low), pct(high)


# --------------------------------------------------------------------------------------
# trend and summary
# --------------------------------------------------------------------------------------


def greening_trend(
    cube: xr.DataArray,
    *,
    alpha: float = 0.05,
    min_valid: int | None = None,
    autocorrelation: str | None = None,
    stable_slope: float = 0.0,
) -> xr.Dataset:
    """Per-pixel Theil-Sen / Mann-Kendall trend of an index cube along ``year`` (lazy).

    A thin wrapper of :func:`karstflow.trends.theil_sen_mk` (see it for the formulas and
    the class rule) that records the index in the attributes.
    """
    ds = theil_sen_mk(
        cube, dim="year", alpha=alpha, autocorrelation=autocorrelation, min_valid=min_valid, stable_slope=stable_slope
    )
    ds.attrs["index"] = str(cube.name)
    return ds


def _min_valid(trend: xr.Dataset) -> int:
    nvalid = np.asarray(trend["n_valid"].values)
    return int(trend.attrs.get("min_valid", default_min_valid(int(nvalid.max(initial=0)))))


def log_short_series(trend: xr.Dataset) -> int:
    """Count (and log as a warning) the pixels with some valid years but fewer than the
    trend's ``min_valid``: they get no trend (NaN slope, class nodata), never an error."""
    nvalid = np.asarray(trend["n_valid"].values)
    n_short = int(((nvalid > 0) & (np.asarray(trend["trend_class"].values) == TREND_NODATA)).sum())
    if n_short:
        log.warning(
            "%d pixels have fewer than %d valid years (but at least one): no trend there "
            "(slope, p NaN; class nodata %d)",
            n_short,
            _min_valid(trend),
            TREND_NODATA,
        )
    return n_short


def trend_from_rasters(
    slope: xr.DataArray,
    trend_class: xr.DataArray,
    cube: xr.DataArray,
    *,
    alpha: float,
    autocorrelation: str | None,
    min_valid: int | None,
    stable_slope: float,
) -> xr.Dataset:
    """The trend Dataset :func:`greening_summary` reads, from the written rasters of rule
    greening_trend (``slope``; ``trend_class`` as uint8 codes, nodata 255) and the index
    ``cube`` it was computed from: ``n_valid`` is the count of finite values along ``year``
    (as :func:`karstflow.trends.theil_sen_mk` counts them), the attributes are the trend's
    settings as theil_sen_mk records them (``min_valid`` None -> its default for the cube's
    length)."""
    # finite, as the kernel counts (NaN and +-inf are missing)
    n_valid = xr.apply_ufunc(np.isfinite, cube, dask="allowed").sum("year").astype(np.int32)
    if n_valid.shape != slope.shape or trend_class.shape != slope.shape:
        raise ValueError(
            f"trend rasters {slope.shape} / {trend_class.shape} and index cube {n_valid.shape} differ in shape"
        )
    ds = xr.Dataset(
        {
            "slope": (("y", "x"), np.asarray(slope.values)),
            "trend_class": (("y", "x"), np.asarray(trend_class.values)),
            "n_valid": (("y", "x"), np.asarray(n_valid.values)),
        }
    )
    ds.attrs.update(
        alpha=float(alpha),
        autocorrelation=str(autocorrelation),
        min_valid=int(default_min_valid(cube.sizes["year"]) if min_valid is None else min_valid),
        stable_slope=float(stable_slope),
    )
    return ds


def greening_summary(
    trend: xr.Dataset, *, pixel_area_km2: float, index: str, years: tuple[int, int] | None = None
) -> dict[str, Any]:
    """Headline figures of a computed trend Dataset (from :func:`greening_trend`).

    Areas are km2, shares are of the tested pixels (enough valid years); the slope is in
    index units per year. Pixels with some but too few valid years are counted and
    logged (their outputs are NaN / nodata), never an error.
    """
    cls = np.asarray(trend["trend_class"].values)
    nvalid = np.asarray(trend["n_valid"].values)
    slope = np.asarray(trend["slope"].values, dtype=np.float64)
    min_valid = _min_valid(trend)
    tested = cls != TREND_NODATA
    n_tested = int(tested.sum())
    n_empty = int((nvalid == 0).sum())
    n_short = log_short_series(trend)
    nan = float("nan")
    area: dict[str, float] = {}
    share: dict[str, float] = {}
    mean_by_class: dict[str, float] = {}
    for code, name in TREND_CLASSES.items():
        sel = cls == code
        n = int(sel.sum())
        key = name.replace(" ", "_").replace("-", "_")
        area[key] = n * pixel_area_km2
        share[key] = n / n_tested if n_tested else nan
        mean_by_class[key] = float(slope[sel].mean()) if n else nan
    s = slope[tested]
    out: dict[str, Any] = {
        "index": index,
        "alpha": float(trend.attrs.get("alpha", nan)),
        "autocorrelation": str(trend.attrs.get("autocorrelation", "None")).replace("None", "none"),
        "min_valid_years": min_valid,
        "stable_slope_per_yr": float(trend.attrs.get("stable_slope", nan)),
        "pixels_tested": n_tested,
        "pixels_too_few_valid_years": n_short,
        "pixels_without_data": n_empty,
        "tested_area_km2": n_tested * pixel_area_km2,
        "slope_mean_per_yr": float(s.mean()) if n_tested else nan,
        "slope_median_per_yr": float(np.median(s)) if n_tested else nan,
        "class_area_km2": area,
        "class_share": share,
        "slope_mean_per_yr_by_class": mean_by_class,
        "greening_share": (share["significant_greening"] + share["non_significant_greening"]) if n_tested else nan,
        "browning_share": (share["significant_browning"] + share["non_significant_browning"]) if n_tested else nan,
    }
    if years is not None:
        out["first_year"], out["last_year"] = int(years[0]), int(years[1])
    if n_tested and not math.isfinite(out["slope_mean_per_yr"]):
        log.warning("mean slope is not finite")
    return out


def on_grid(obj: xr.Dataset | xr.DataArray, grid: Any) -> xr.Dataset | xr.DataArray:
    """Attach the CRS and transform of ``grid`` (a :class:`~karstflow.grid.RegionGrid`).

    The CF ``grid_mapping`` link is kept as a variable attribute, so it survives
    :func:`karstflow.io.write_netcdf` (whose per-variable encoding replaces the encoding).
    """
    out = obj.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
    variables = out.data_vars.values() if isinstance(out, xr.Dataset) else [out]
    for var in variables:
        gm = var.encoding.pop("grid_mapping", None)
        if gm:
            var.attrs["grid_mapping"] = gm
    return out


def select_years(ds: xr.Dataset, years: Any, *, source: str) -> xr.Dataset:
    """The ``years`` of a cube; ``ValueError`` naming ``source`` and the missing years."""
    want = [int(y) for y in years]
    have = {int(y) for y in np.asarray(ds["year"].values).tolist()}
    missing = [y for y in want if y not in have]
    if missing:
        raise ValueError(
            f"{source}: year(s) {missing} are missing (the file has {min(have, default=None)}.."
            f"{max(have, default=None)}, {len(have)} years); the region needs {want[0]}..{want[-1]}"
        )
    return ds.sel(year=want)


def check_index_range(
    da: xr.DataArray, *, source: str, low: float = -1.0, high: float = 1.0, allow_empty: bool = False
) -> tuple[float, float]:
    """Fail with the file name when an index leaves [low, high] (e.g. NDVI stored x 10000):
    :func:`karstflow.checks.check_range`, allowing float rounding (1e-6).

    An index without any valid value is an error too, unless ``allow_empty`` (one tile of a
    region may lie wholly outside its area of interest): then ``(nan, nan)``.
    """
    from karstflow.checks import Range, check_range

    return check_range(
        da,
        Range("", low, high),
        source=source,
        variable=str(da.name),
        allow_empty=allow_empty,
        hint=" (scaled integers? divide by the scale factor first)",
        tolerance=1e-6,
    )

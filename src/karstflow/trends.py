"""Per-pixel monotonic trends: Theil-Sen slope + Mann-Kendall test on dask-backed cubes.

The core is a numba kernel that loops over the pixels of one block; :func:`theil_sen_mk`
maps it over the blocks of an xarray cube with ``xr.apply_ufunc(dask="parallelized")``,
so the work is lazy and runs on whatever dask scheduler the caller computes with (the
workflow passes ``snakemake.threads`` to it). The kernel releases the GIL, so the threaded
scheduler runs blocks truly in parallel. The kernel itself is serial (no numba
``parallel=True``): parallelism and the thread count belong to the caller's dask scheduler,
e.g. ``ds.compute(scheduler="threads", num_workers=threads)``. One 24 x 1000 x 1000 cube
costs ~1.7 CPU-microseconds per pixel without the slope's confidence interval (see
``benchmarks/bench_trends.py``); the interval (two more order statistics per pixel, on by
default) makes the kernel ~1.4-1.5x slower, ``interval=False`` skips it.

Statistics per pixel, over the valid values of the series (finite; NaN and +-inf are
missing), in coordinate order:

* ``slope``: Theil-Sen estimator, the median of the pairwise slopes
  ``(y_j - y_i) / (x_j - x_i)`` for ``i < j``, where ``x`` are the **real** coordinate values
  of the time dimension (e.g. years 2000..2023 with gaps). Identical to
  ``scipy.stats.theilslopes(y, x).slope``; with unit-spaced coordinates it is also
  ``pymannkendall.sens_slope`` (which uses positions, gaps included).
* ``intercept``: as ``scipy.stats.theilslopes`` (``method="separate"``):
  ``median(y) - slope * median(x)`` over the valid points, so it is the value at ``x = 0``
  (for years that is year 0: use ``intercept + slope * year`` to evaluate the line).
* ``z``, ``p``: Mann-Kendall S, its variance with the tie correction
  ``(n(n-1)(2n+5) - sum t(t-1)(2t+5)) / 18``, ``z = (S - sign(S)) / sqrt(var)`` (continuity
  correction, 0 when S == 0), two-sided normal ``p`` -- as ``pymannkendall.original_test``.
  ``p`` is computed as ``erfc(|z|/sqrt(2))`` (pymannkendall uses ``2*(1-cdf)``; equal to
  ~1e-16 absolute, ours keeps relative precision for tiny p).
* ``tau``: Kendall tau as pymannkendall reports it, ``S / (n(n-1)/2)``.
* ``slope_low``, ``slope_high``: the ``1 - alpha`` confidence interval of the slope by
  Sen (1968, eq. 2.6; Gilbert 1987, ch. 16.5): with ``N = n(n-1)/2`` ordered pairwise
  slopes and ``C = z_{1-alpha/2} sqrt(Var(S))`` (the tie-corrected variance above; with
  ``autocorrelation="hamed_rao"`` the corrected one, so the interval widens with the
  autocorrelation), the bounds are the slopes of 0-based ranks ``round((N - C)/2) - 1``
  and ``round((N + C)/2)``, i.e. Gilbert's ``M1``-th and ``(M2 + 1)``-th ordered slope
  with ``M1 = (N - C)/2``, ``M2 = (N + C)/2`` rounded to the nearest integer (numpy's
  round-half-to-even) and clipped to ``[0, N-1]``. This is exactly
  ``scipy.stats.theilslopes(y, x, alpha)``'s ``low_slope``/``high_slope`` (scipy reads its
  ``alpha`` as the confidence degree, symmetric about 0.5: 0.05 and 0.95 both give the
  95 % interval), whose Var(S) is Sen's eq. 2.6 with the same tie correction (ties in
  ``x`` are impossible here). Without correction the variance is written as scipy writes
  it, so the ranks are bit-identical. NaN where the corrected variance is negative (as
  scipy, whose ``sqrt`` of it is NaN). As the test and the interval share ``alpha`` and
  ``Var(S)``, the interval excludes 0 about when the test is significant (not exactly:
  the test has a continuity correction, the ranks are rounded).
* ``autocorrelation="hamed_rao"``: the Hamed and Rao (1998) variance correction exactly as
  ``pymannkendall.hamed_rao_modification_test(x, alpha)`` with its default ``lag=None``: the
  series is detrended with the Theil-Sen slope, ranked (average ranks for ties), the ACF of
  the ranks is computed for lags ``1..n-1``, and only lags whose ACF ``r_i`` lies outside
  ``+-norm.ppf(1-alpha/2)/sqrt(n)`` enter the variance factor
  ``n/n* = 1 + 2/(n(n-1)(n-2)) * sum_i (n-i)(n-i-1)(n-i-2) r_i``.
  Two edge cases: if the corrected variance is not positive (happens for ~1-2 % of pure
  noise series of length 24) ``z`` and ``p`` are NaN, as in pymannkendall; if the detrended
  series is constant (an exactly linear series), the ACF is undefined and the correction
  is skipped (pymannkendall returns NaN there); with fewer than 3 valid values (possible
  only with ``min_valid=2``) the correction is undefined and skipped. Detrending uses the
  real coordinates, ``y - slope * (x - x_first + 1)``; pymannkendall uses the positions
  ``1..n`` of the series with its gaps removed, which is the same number for gap-free,
  unit-spaced coordinates (e.g. consecutive years). With gaps, ours is the consistent
  choice (the slope is fitted on the real coordinates in both).

``trend_class`` (uint8, nodata 255, legend :data:`TREND_CLASSES`), in this order:

1. fewer than ``min_valid`` valid values -> 255 (all float outputs NaN);
2. ``|slope| <= stable_slope`` -> 3 "stable" (with the default ``stable_slope=0`` that is
   ``slope == 0``, e.g. a constant series);
3. ``slope > 0`` -> 1 if ``p < alpha`` else 2; ``slope < 0`` -> 5 if ``p < alpha`` else 4.

The sign comes from the slope and the significance from the Mann-Kendall p; a NaN ``p``
(see Hamed-Rao above) counts as not significant.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr
from numba import njit
from scipy.stats import norm

__all__ = [
    "TREND_CLASSES",
    "TREND_NODATA",
    "default_min_valid",
    "mann_kendall_1d",
    "theil_sen_mk",
]

TREND_CLASSES: dict[int, str] = {
    1: "significant greening",
    2: "non-significant greening",
    3: "stable",
    4: "non-significant browning",
    5: "significant browning",
}
TREND_NODATA = 255

_AUTOCORRELATION = (None, "hamed_rao")
_VARS_FLOAT = ("slope", "intercept", "z", "p", "tau", "slope_low", "slope_high")


def default_min_valid(n_time: int) -> int:
    """Default ``min_valid``: at least half of the time steps, and never fewer than 3.

    ``max(3, ceil(n_time / 2))``: 12 of 24 years. Fewer than 3 points give no usable
    Mann-Kendall test; requiring half of the series keeps a trend from resting on a few
    years at one end of the period.
    """
    return max(3, math.ceil(n_time / 2))


# --------------------------------------------------------------------------------------
# numba kernel
# --------------------------------------------------------------------------------------


_INSERTION_CUTOFF = 16


@njit(nogil=True, cache=True)
def _select(a, m, k):  # pragma: no cover - compiled
    """Return the k-th smallest of ``a[:m]`` (0-based), rearranging ``a[:m]`` in place.

    Quickselect with branch-free Lomuto partitions (no mispredicted branches: 2-3x faster
    than a Hoare partition on random data) and a median-of-three pivot; values equal to
    the pivot are split off in a second pass, so many ties (rounded data) stay O(m).
    Afterwards every element of ``a[:k]`` is ``<= a[k]`` and every element of ``a[k+1:m]``
    is ``>= a[k]`` (:func:`_order_stat` relies on both). ``a`` must hold no NaN.
    """
    lo = 0
    hi = m
    while hi - lo > _INSERTION_CUTOFF:
        mid = (lo + hi) >> 1
        x = a[lo]
        y = a[mid]
        z = a[hi - 1]
        pivot = max(min(x, y), min(max(x, y), z))
        j = lo
        for i in range(lo, hi):  # a[lo:j] < pivot <= a[j:i]
            t = a[i]
            a[i] = a[j]
            a[j] = t
            j += t < pivot
        if k < j:
            hi = j
            continue
        e = j
        for i in range(j, hi):  # a[j:e] == pivot < a[e:i]
            t = a[i]
            a[i] = a[e]
            a[e] = t
            e += t == pivot
        if k < e:
            return pivot
        lo = e
    for i in range(lo + 1, hi):  # insertion sort of the remaining few
        t = a[i]
        j = i - 1
        while j >= lo and a[j] > t:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = t
    return a[k]


@njit(nogil=True, cache=True)
def _median_inplace(a, m):  # pragma: no cover - compiled
    """Median of ``a[:m]`` (m >= 1), equal to ``np.median``; permutes ``a[:m]``."""
    h = m >> 1
    upper = _select(a, m, h)
    if m & 1:
        return upper
    lower = a[0]  # a[:h] <= upper: the lower middle is their maximum
    for i in range(1, h):
        lower = max(lower, a[i])
    return (lower + upper) / 2.0


@njit(nogil=True, cache=True)
def _max_of(a, m):  # pragma: no cover - compiled
    out = a[0]
    for i in range(1, m):
        out = max(out, a[i])
    return out


@njit(nogil=True, cache=True)
def _min_of(a, m):  # pragma: no cover - compiled
    out = a[0]
    for i in range(1, m):
        out = min(out, a[i])
    return out


@njit(nogil=True, cache=True)
def _order_stat(parts, sizes, picked, npicked, r):  # pragma: no cover - compiled
    """The ``r``-th smallest (0-based) of values split into three parts, any rank order.

    ``parts[g, :sizes[g]]`` for ``g = 0, 1, 2`` hold the values, every value of a part
    ``<=`` every value of the next one (the slopes below, inside and above the pilot
    bracket). ``picked[g, :npicked[g]]`` are the local ranks already selected in part
    ``g``: :func:`_select` leaves each of them in place with the smaller ones left of it
    and the larger ones right of it, so a later rank only searches the window between the
    two picked ranks around it (the median first, then the two confidence ranks, which lie
    outside it). The window's maximum or minimum is one pass without rearranging.
    """
    g = 0
    while r >= sizes[g]:
        r -= sizes[g]
        g += 1
    a = parts[g]
    lo = 0
    hi = sizes[g]
    for q in range(npicked[g]):
        k = picked[g, q]
        if k == r:
            return a[r]
        if k < r:
            lo = max(lo, k + 1)
        else:
            hi = min(hi, k)
    if r == hi - 1:
        return _max_of(a[lo:hi], hi - lo)
    if r == lo:
        return _min_of(a[lo:hi], hi - lo)
    picked[g, npicked[g]] = r
    npicked[g] += 1
    return _select(a[lo:hi], hi - lo, r - lo)


@njit(nogil=True, cache=True, error_model="numpy")
def _mk_kernel(
    data,  # (npix, n) float32/float64, any layout
    xcoord,  # (n,) float64, strictly increasing
    min_valid,
    hamed_rao,
    z_crit,
    z_ci,
    interval,
    alpha,
    stable_slope,
    fout,  # (7, npix) float64: slope, intercept, z, p, tau, slope_low, slope_high
    class_out,
    nvalid_out,
):  # pragma: no cover - compiled
    npix, n = data.shape
    nan = np.nan
    inv_sqrt2 = 1.0 / math.sqrt(2.0)
    # scratch, allocated once per block
    xv = np.empty(n, np.float64)
    yv = np.empty(n, np.float64)
    ytmp = np.empty(n, np.float64)
    ties = np.empty(n, np.int64)
    npairs = max(1, n * (n - 1) // 2)
    slopes = np.empty(npairs, np.float64)
    parts = np.empty((3, npairs), np.float64)  # slopes below, inside, above the bracket
    sizes = np.empty(3, np.int64)
    picked = np.empty((3, 4), np.int64)
    npicked = np.empty(3, np.int64)
    det = np.empty(n, np.float64)
    ranks = np.empty(n, np.float64)

    for p in range(npix):
        # gather the valid values
        m = 0
        for k in range(n):
            v = data[p, k]
            if v - v == 0.0:  # finite (NaN and +-inf are missing)
                xv[m] = xcoord[k]
                yv[m] = v
                m += 1
        nvalid_out[p] = m
        if m < min_valid or m < 2:
            for q in range(7):
                fout[q, p] = nan
            class_out[p] = 255
            continue

        # one O(n^2) pass: S, tie counts, pairwise slopes (branch-free)
        for i in range(m):
            ties[i] = 1
        s = 0
        ns = 0
        for i in range(m - 1):
            yi = yv[i]
            xi = xv[i]
            ti = 0
            base = ns - i - 1
            for j in range(i + 1, m):
                dy = yv[j] - yi
                s += (dy > 0) - (dy < 0)
                eq = dy == 0.0
                ties[j] += eq
                ti += eq
                slopes[base + j] = dy / (xv[j] - xi)
            ties[i] += ti
            ns += m - 1 - i

        # Order statistics of the slopes (the median, later the two confidence ranks).
        # Pilot bracket [lo, hi]: min and max of the slopes between the first kk and the
        # last kk points (kk <= 3), which holds the median for ~97 % of noisy series while
        # only ~1/3 of the slopes fall inside it. One branch-free pass splits the slopes
        # into the parts below, inside and above it, and each rank is then selected in
        # its own part only (:func:`_order_stat`); a missed bracket costs a selection in
        # a larger part, never a wrong value.
        kk = min(3, m >> 1)
        lo = np.inf
        hi = -np.inf
        for i in range(kk):
            for j in range(m - kk, m):
                sl = slopes[i * (2 * m - i - 3) // 2 + j - 1]  # pair (i, j)
                lo = min(lo, sl)
                hi = max(hi, sl)
        nb = 0
        nm = 0
        na = 0
        for q in range(ns):
            sl = slopes[q]
            below = sl < lo
            above = sl > hi
            parts[0, nb] = sl
            parts[1, nm] = sl
            parts[2, na] = sl
            nb += below
            na += above
            nm += (sl >= lo) & (sl <= hi)
        sizes[0] = nb
        sizes[1] = nm
        sizes[2] = na
        for g in range(3):
            npicked[g] = 0
        h = ns >> 1
        slope = _order_stat(parts, sizes, picked, npicked, h)
        if not ns & 1:
            slope = (_order_stat(parts, sizes, picked, npicked, h - 1) + slope) / 2.0

        # intercept = median(y) - slope * median(x)  (x sorted)
        for i in range(m):
            ytmp[i] = yv[i]
        med_y = _median_inplace(ytmp, m)
        h = m >> 1
        if m & 1:
            med_x = xv[h]
        else:
            med_x = (xv[h - 1] + xv[h]) / 2.0
        intercept = med_y - slope * med_x

        # variance of S with tie correction: sum over groups t(t-1)(2t+5)
        # == sum over members (t-1)(2t+5)
        tie_sum = 0
        for i in range(m):
            t = ties[i]
            tie_sum += (t - 1) * (2 * t + 5)
        var_int = m * (m - 1) * (2 * m + 5) - tie_sum
        var_s = var_int / 18.0
        # the interval's variance, written as scipy.stats.theilslopes does (1/18. * ...),
        # so its ranks are bit-identical to scipy's
        var_ci = (1.0 / 18.0) * var_int

        if hamed_rao and m >= 3:
            # detrend, rank (average ranks), ACF of the ranks for lags 1..m-1
            # positions (x - x_first + 1): 1..m for gap-free unit steps, bit-identical to
            # pymannkendall's detrending (ties between detrended values survive rounding
            # identically)
            x_first = xv[0]
            for i in range(m):
                det[i] = yv[i] - (xv[i] - x_first + 1.0) * slope
            for i in range(m):
                di = det[i]
                n_lt = 0
                n_eq = 0
                for j in range(m):
                    dj = det[j]
                    n_lt += dj < di
                    n_eq += dj == di
                ranks[i] = n_lt + (n_eq + 1) / 2.0
            mean_r = (m + 1) / 2.0
            for i in range(m):
                ranks[i] -= mean_r
            acov0 = 0.0
            for i in range(m):
                acov0 += ranks[i] * ranks[i]
            if acov0 > 0.0:
                bound = z_crit / math.sqrt(m)
                sni = 0.0
                for lag in range(1, m):
                    c = 0.0
                    for i in range(m - lag):
                        c += ranks[i] * ranks[i + lag]
                    r = c / acov0
                    if r > bound or r < -bound:
                        sni += (m - lag) * (m - lag - 1) * (m - lag - 2) * r
                factor = 1.0 + (2.0 / (m * (m - 1) * (m - 2))) * sni
                var_s = var_s * factor
                var_ci = var_ci * factor

        if s == 0:
            z = 0.0
            pv = 1.0
        elif var_s > 0.0:
            if s > 0:
                z = (s - 1) / math.sqrt(var_s)
            else:
                z = (s + 1) / math.sqrt(var_s)
            pv = math.erfc(abs(z) * inv_sqrt2)
        else:
            z = nan
            pv = nan

        # Sen (1968) confidence interval of the slope, ranks as scipy.stats.theilslopes:
        # C = z_{1-alpha/2} sqrt(Var S); lower = rank round((N - C)/2) - 1, upper = rank
        # round((N + C)/2) (0-based, numpy's round-half-to-even, clipped to [0, N-1]);
        # undefined (NaN) where the corrected variance is negative; NaN too when not asked
        # for (the two selections are ~1/3 of the kernel's time)
        if interval and var_ci >= 0.0:
            c = z_ci * math.sqrt(var_ci)
            r_hi = min(int(np.rint((ns + c) / 2.0)), ns - 1)
            r_lo = max(int(np.rint((ns - c) / 2.0)) - 1, 0)
            slope_low = _order_stat(parts, sizes, picked, npicked, r_lo)
            slope_high = _order_stat(parts, sizes, picked, npicked, r_hi)
        else:
            slope_low = nan
            slope_high = nan

        fout[0, p] = slope
        fout[1, p] = intercept
        fout[2, p] = z
        fout[3, p] = pv
        fout[4, p] = s / (0.5 * m * (m - 1))
        fout[5, p] = slope_low
        fout[6, p] = slope_high
        if abs(slope) <= stable_slope:
            class_out[p] = 3
        elif slope > 0:
            class_out[p] = 1 if pv < alpha else 2
        else:
            class_out[p] = 5 if pv < alpha else 4


def _block(
    arr: np.ndarray,
    xcoord: np.ndarray,
    min_valid: int,
    hamed_rao: bool,
    z_crit: float,
    z_ci: float,
    interval: bool,
    alpha: float,
    stable_slope: float,
) -> tuple[np.ndarray, ...]:
    """Run the kernel on one block whose last axis is time; returns 9 arrays (7 without ``interval``)."""
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    shape = arr.shape[:-1]
    flat = arr.reshape(-1, arr.shape[-1])  # a view whenever the layout allows
    npix = flat.shape[0]
    fout = np.empty((len(_VARS_FLOAT), npix), np.float64)
    cls = np.empty(npix, np.uint8)
    nvalid = np.empty(npix, np.int32)
    _mk_kernel(flat, xcoord, min_valid, hamed_rao, z_crit, z_ci, interval, alpha, stable_slope, fout, cls, nvalid)
    outs = [f.astype(np.float32).reshape(shape) for f in fout[: len(_float_vars(interval))]]
    return (*outs, cls.reshape(shape), nvalid.reshape(shape))


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------


def _float_vars(interval: bool) -> tuple[str, ...]:
    """The float outputs, in the kernel's row order (the interval's two rows last)."""
    return _VARS_FLOAT if interval else _VARS_FLOAT[:5]


def _z_values(alpha: float) -> tuple[float, float]:
    """Normal quantiles of the test and of the interval: ``z_{1-alpha/2}`` twice.

    The first as pymannkendall writes it (``norm.ppf(1 - alpha/2)``, the Hamed-Rao ACF
    bound), the second as scipy.stats.theilslopes does (``-norm.ppf(alpha/2)``), so that
    each matches its reference bit for bit (the two may differ in the last ulp).
    """
    return float(norm.ppf(1.0 - alpha / 2.0)), float(-norm.ppf(alpha / 2.0))


def _coord_values(da: xr.DataArray, dim: str) -> np.ndarray:
    """Numeric coordinate of ``dim`` as float64 (datetimes -> decimal years)."""
    if dim not in da.coords:
        return np.arange(da.sizes[dim], dtype=np.float64)
    values = da[dim].values
    if np.issubdtype(values.dtype, np.datetime64):
        idx = da.indexes[dim]
        start = idx.year.values.astype("datetime64[Y]").astype("datetime64[ns]")
        ny = idx.year.values
        days = np.where((ny % 4 == 0) & ((ny % 100 != 0) | (ny % 400 == 0)), 366.0, 365.0)
        frac = (values.astype("datetime64[ns]") - start) / np.timedelta64(1, "D") / days
        return ny.astype(np.float64) + frac
    if not np.issubdtype(values.dtype, np.number):
        raise ValueError(f"theil_sen_mk: coordinate {dim!r} must be numeric or datetime64, found dtype {values.dtype}")
    return values.astype(np.float64)


def theil_sen_mk(
    da: xr.DataArray,
    dim: str = "year",
    alpha: float = 0.05,
    autocorrelation: str | None = None,
    min_valid: int | None = None,
    stable_slope: float = 0.0,
    interval: bool = True,
) -> xr.Dataset:
    """Per-pixel Theil-Sen slope and Mann-Kendall trend test along ``dim``.

    Parameters
    ----------
    da
        Cube with a time dimension ``dim`` (e.g. ``(year, y, x)``), numpy- or dask-backed.
        NaN (and +-inf) mark missing values (they are skipped); integer input is cast to float64.
        If ``dim`` is split into several dask chunks it is rechunked to a single chunk
        (the kernel needs the whole series of a pixel); spatial chunks are kept, and they
        are the unit of parallelism. Numpy input is computed eagerly on one thread.
    dim
        Time dimension. Its coordinate values are the ``x`` of the slopes (slope is per
        unit of the coordinate, e.g. per year); datetime coordinates are converted to
        decimal years; without a coordinate the positions ``0..n-1`` are used. Must be
        strictly increasing after sorting (duplicates raise ``ValueError``).
    alpha
        Significance level of the two-sided test (and of the Hamed-Rao ACF bounds); the
        slope's confidence interval is the ``1 - alpha`` one.
    autocorrelation
        ``None`` (original Mann-Kendall test) or ``"hamed_rao"`` (Hamed and Rao 1998
        variance correction, as ``pymannkendall.hamed_rao_modification_test``).
    min_valid
        Minimum number of valid values for a pixel to be tested; default
        :func:`default_min_valid` = ``max(3, ceil(n/2))``. Must be in ``[2, n]``.
    stable_slope
        Pixels with ``|slope| <= stable_slope`` are class 3 "stable" (default 0: only an
        exactly zero slope is stable).
    interval
        Compute the slope's confidence interval (``slope_low``, ``slope_high``); ``False``
        leaves the two variables out and skips their two order statistics per pixel (about
        a third of the kernel's time).

    Returns
    -------
    xr.Dataset
        ``slope``, ``intercept``, ``z``, ``p``, ``tau``, ``slope_low``, ``slope_high`` (the
        ``1 - alpha`` confidence interval of the slope, Sen 1968, unless ``interval=False``;
        float32, NaN where not tested),
        ``trend_class`` (uint8, nodata 255, legend :data:`TREND_CLASSES`) and ``n_valid``
        (int32), on the non-time dims of ``da``; lazy (dask) when ``da`` is dask-backed.
        See the module docstring for the exact formulas and the class rule.
    """
    if autocorrelation not in _AUTOCORRELATION:
        raise ValueError(f"theil_sen_mk: autocorrelation must be None or 'hamed_rao', found {autocorrelation!r}")
    if not isinstance(da, xr.DataArray):
        raise TypeError(f"theil_sen_mk: expected an xarray.DataArray, found {type(da).__name__}")
    if dim not in da.dims:
        raise ValueError(f"theil_sen_mk: dimension {dim!r} not in the input dims {da.dims}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"theil_sen_mk: alpha must be in (0, 1), found {alpha!r}")
    if not (np.isfinite(stable_slope) and stable_slope >= 0):
        raise ValueError(f"theil_sen_mk: stable_slope must be >= 0, found {stable_slope!r}")
    n_time = da.sizes[dim]
    if min_valid is None:
        min_valid = default_min_valid(n_time)
    if not (2 <= int(min_valid) <= max(2, n_time)) or int(min_valid) != min_valid:
        raise ValueError(
            f"theil_sen_mk: min_valid must be an integer in [2, {n_time}] (the length of {dim!r}), found {min_valid!r}"
        )
    min_valid = int(min_valid)

    xcoord = _coord_values(da, dim)
    if np.any(np.diff(xcoord) < 0):
        order = np.argsort(xcoord, kind="stable")
        da = da.isel({dim: order})
        xcoord = xcoord[order]
    if not np.all(np.isfinite(xcoord)) or np.any(np.diff(xcoord) == 0):
        raise ValueError(
            f"theil_sen_mk: coordinate {dim!r} must be finite and without duplicates, found {xcoord.tolist()}"
        )
    xcoord = np.ascontiguousarray(xcoord, dtype=np.float64)

    if da.chunks is not None:
        axis = da.get_axis_num(dim)
        if len(da.chunks[axis]) > 1:
            da = da.chunk({dim: -1})

    z_crit, z_ci = _z_values(alpha)
    float_vars = _float_vars(bool(interval))
    outs = xr.apply_ufunc(
        _block,
        da,
        kwargs=dict(
            xcoord=xcoord,
            min_valid=min_valid,
            hamed_rao=autocorrelation == "hamed_rao",
            z_crit=z_crit,
            z_ci=z_ci,
            interval=bool(interval),
            alpha=float(alpha),
            stable_slope=float(stable_slope),
        ),
        input_core_dims=[[dim]],
        output_core_dims=[[]] * (len(float_vars) + 2),
        dask="parallelized",
        output_dtypes=[np.float32] * len(float_vars) + [np.uint8, np.int32],
        keep_attrs=False,
    )
    ds = xr.Dataset(dict(zip((*float_vars, "trend_class", "n_valid"), outs, strict=True)))
    unit = f"per unit of {dim}" if dim in da.coords else "per time step"
    src_units = da.attrs.get("units")
    ds["slope"].attrs.update(
        long_name="Theil-Sen slope",
        units=f"{src_units} {unit}" if src_units else unit,
    )
    pct = f"{100 * (1 - alpha):g} %"
    for v, side in (("slope_low", "lower"), ("slope_high", "upper")):
        if v in ds:
            ds[v].attrs.update(
                long_name=f"{side} bound of the {pct} confidence interval of the Theil-Sen slope (Sen 1968)",
                units=ds["slope"].attrs["units"],
            )
    ds["intercept"].attrs.update(long_name=f"Theil-Sen intercept at {dim} = 0 (median(y) - slope * median(x))")
    ds["z"].attrs.update(long_name="Mann-Kendall z (continuity-corrected)")
    ds["p"].attrs.update(long_name="two-sided Mann-Kendall p-value")
    ds["tau"].attrs.update(long_name="Kendall tau, S / (n(n-1)/2)")
    ds["trend_class"].attrs.update(
        long_name="trend class",
        nodata=TREND_NODATA,
        flag_values=list(TREND_CLASSES),
        flag_meanings=" ".join(v.replace(" ", "_") for v in TREND_CLASSES.values()),
    )
    ds["n_valid"].attrs.update(long_name=f"number of valid values along {dim}")
    ds.attrs.update(
        method="Theil-Sen slope, Mann-Kendall test",
        dim=dim,
        alpha=float(alpha),
        autocorrelation=str(autocorrelation),
        min_valid=min_valid,
        stable_slope=float(stable_slope),
    )
    return ds


def mann_kendall_1d(
    y: Any,
    x: Any = None,
    alpha: float = 0.05,
    autocorrelation: str | None = None,
    min_valid: int = 2,
    stable_slope: float = 0.0,
) -> dict[str, float | int]:
    """The kernel on one series: slope, intercept, z, p, tau, slope_low, slope_high, trend_class, n_valid.

    ``x`` defaults to ``0..n-1``. Same formulas as :func:`theil_sen_mk` (float64 throughout,
    no float32 rounding); meant for tests and spot checks.
    """
    if autocorrelation not in _AUTOCORRELATION:
        raise ValueError(f"mann_kendall_1d: autocorrelation must be None or 'hamed_rao', found {autocorrelation!r}")
    yy = np.asarray(y, dtype=np.float64).ravel()
    coord = np.arange(yy.size, dtype=np.float64) if x is None else np.asarray(x, np.float64)
    if coord.shape != yy.shape:
        raise ValueError(f"mann_kendall_1d: x has shape {coord.shape}, y has {yy.shape}")
    order = np.argsort(coord, kind="stable")
    xc = np.ascontiguousarray(coord[order])
    if not np.all(np.isfinite(xc)) or np.any(np.diff(xc) == 0):
        raise ValueError("mann_kendall_1d: x must be finite and without duplicates")
    data = np.ascontiguousarray(yy[order][None, :])
    f = np.empty((len(_VARS_FLOAT), 1), np.float64)
    cls = np.empty(1, np.uint8)
    nv = np.empty(1, np.int32)
    _mk_kernel(
        data,
        xc,
        int(min_valid),
        autocorrelation == "hamed_rao",
        *_z_values(alpha),
        True,
        float(alpha),
        float(stable_slope),
        f,
        cls,
        nv,
    )
    out: dict[str, float | int] = {k: float(a[0]) for k, a in zip(_VARS_FLOAT, f, strict=True)}
    out["trend_class"] = int(cls[0])
    out["n_valid"] = int(nv[0])
    return out

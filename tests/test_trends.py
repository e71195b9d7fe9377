"""Tests of karstflow.trends: Theil-Sen slope + Mann-Kendall test per pixel.

Reference implementations: pymannkendall (original_test, hamed_rao_modification_test,
sens_slope) and scipy.stats.theilslopes. Float outputs of theil_sen_mk are float32, so
comparisons through the Dataset use rtol 1e-6; mann_kendall_1d (float64) is compared
at 1e-9.
"""

from __future__ import annotations

import warnings

import dask.array as dska
import numpy as np
import pytest
import xarray as xr
from scipy.stats import norm, theilslopes

from karstflow.trends import (
    TREND_CLASSES,
    TREND_NODATA,
    _median_inplace,
    _order_stat,
    default_min_valid,
    mann_kendall_1d,
    theil_sen_mk,
)

mk = pytest.importorskip("pymannkendall")

N_YEARS = 24
YEARS = np.arange(2000, 2000 + N_YEARS)
RTOL = 1e-6


def _cube(series: np.ndarray, coord: np.ndarray | None = None) -> xr.DataArray:
    """(pixel, year) DataArray from a 2-D array of series."""
    coord = np.arange(series.shape[1]) if coord is None else coord
    return xr.DataArray(series, dims=("pixel", "year"), coords={"year": coord})


def _ar1(rng: np.random.Generator, npix: int, n: int, phi: float) -> np.ndarray:
    e = rng.normal(size=(npix, n))
    y = np.empty_like(e)
    y[:, 0] = e[:, 0]
    for t in range(1, n):
        y[:, t] = phi * y[:, t - 1] + e[:, t]
    return y


def _close(a, b, rtol=RTOL, atol=1e-12):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=rtol, atol=atol)


@pytest.fixture(scope="module")
def tied_series() -> np.ndarray:
    """Random series with many ties (rounded to 0.1) and a range of trends."""
    rng = np.random.default_rng(42)
    trend = rng.uniform(-0.08, 0.08, size=(150, 1))
    return np.round(rng.normal(size=(150, N_YEARS)) + trend * np.arange(N_YEARS), 1)


# ---------------------------------------------------------------------------- references


def test_original_matches_pymannkendall_with_ties(tied_series):
    ds = theil_sen_mk(_cube(tied_series), dim="year", min_valid=3)
    assert (ds["n_valid"] == N_YEARS).all()
    n_tied = 0
    for k, y in enumerate(tied_series):
        ref = mk.original_test(y)
        sens = mk.sens_slope(y)
        n_tied += len(np.unique(y)) < N_YEARS
        got = {v: float(ds[v][k]) for v in ("slope", "intercept", "z", "p", "tau")}
        _close(got["z"], ref.z)
        _close(got["p"], ref.p)
        _close(got["tau"], ref.Tau)
        _close(got["tau"] * N_YEARS * (N_YEARS - 1) / 2, ref.s)
        _close(got["slope"], sens.slope)
        # with coordinates 0..n-1 pymannkendall's intercept (Conover) is the same number
        _close(got["intercept"], sens.intercept, atol=1e-6)
        assert (got["p"] < 0.05) == bool(ref.h)
        one = mann_kendall_1d(y)
        for v, r in (("z", ref.z), ("p", ref.p), ("tau", ref.Tau), ("slope", ref.slope)):
            _close(one[v], r, rtol=1e-9)
    assert n_tied > 100  # the ties correction is really exercised


def test_hamed_rao_matches_pymannkendall_ar1():
    rng = np.random.default_rng(7)
    y = _ar1(rng, 150, N_YEARS, 0.6) + rng.uniform(-0.15, 0.15, (150, 1)) * np.arange(N_YEARS)
    y[75:] = np.round(y[75:], 1)  # half of them with ties
    ds = theil_sen_mk(_cube(y, YEARS), autocorrelation="hamed_rao", min_valid=3)
    plain = theil_sen_mk(_cube(y, YEARS), min_valid=3)
    n_corrected = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pymannkendall's sqrt(negative)
        refs = [mk.hamed_rao_modification_test(s) for s in y]
    for k, ref in enumerate(refs):
        if np.isnan(ref.z):  # corrected variance <= 0: undefined in both
            assert np.isnan(float(ds["z"][k])) and np.isnan(float(ds["p"][k]))
            continue
        _close(float(ds["z"][k]), ref.z)
        _close(float(ds["p"][k]), ref.p)
        _close(float(ds["tau"][k]), ref.Tau)
        _close(float(ds["slope"][k]), ref.slope)
        one = mann_kendall_1d(y[k], YEARS, autocorrelation="hamed_rao")
        _close(one["z"], ref.z, rtol=1e-9)
        n_corrected += not np.isclose(float(plain["z"][k]), ref.z, rtol=1e-3)
    assert n_corrected > 50  # the correction changes most AR(1) results


def test_gapped_years_match_scipy_and_pymannkendall():
    rng = np.random.default_rng(3)
    npix = 120
    y = rng.normal(size=(npix, N_YEARS)) + rng.uniform(-0.1, 0.1, (npix, 1)) * np.arange(N_YEARS)
    y[60:] = np.round(y[60:], 1)
    for k in range(npix):
        y[k, rng.choice(N_YEARS, 5, replace=False)] = np.nan
    ds = theil_sen_mk(_cube(y, YEARS), dim="year")
    assert (ds["n_valid"] == N_YEARS - 5).all()
    for k in range(npix):
        ok = ~np.isnan(y[k])
        ref = theilslopes(y[k, ok], YEARS[ok].astype(float))
        _close(float(ds["slope"][k]), ref.slope)
        _close(float(ds["intercept"][k]), ref.intercept, rtol=1e-5, atol=1e-5)
        one = mann_kendall_1d(y[k], YEARS)
        assert one["slope"] == pytest.approx(ref.slope, rel=1e-12, abs=1e-15)
        assert one["intercept"] == pytest.approx(ref.intercept, rel=1e-12, abs=1e-12)
        # the MK statistics skip the gaps; the slope equals pymannkendall's positional one
        pmk = mk.original_test(y[k])
        _close(float(ds["z"][k]), pmk.z)
        _close(float(ds["p"][k]), pmk.p)
        _close(float(ds["slope"][k]), pmk.slope)


def test_real_coordinate_spacing_is_used():
    # same values on years 2000, 2002, ... : slope per year is half the per-step slope
    y = np.arange(10, dtype=float) * 3.0
    step = mann_kendall_1d(y)
    spaced = mann_kendall_1d(y, 2000 + 2 * np.arange(10))
    assert step["slope"] == 3.0 and spaced["slope"] == 1.5
    assert spaced["intercept"] == pytest.approx(-1.5 * 2000)
    assert spaced["z"] == step["z"] and spaced["p"] == step["p"]


def test_median_selection_matches_numpy():
    rng = np.random.default_rng(11)
    for m in (1, 2, 3, 4, 16, 17, 18, 33, 276):
        for decimals in (0, 1, 6):
            for _ in range(20):
                a = np.round(rng.standard_t(2, size=m), decimals)
                assert _median_inplace(a.copy(), m) == np.median(a)


# ------------------------------------------------------------- slope confidence interval


def _sen_interval(y: np.ndarray, x: np.ndarray, var_s: float, alpha: float) -> tuple[float, float]:
    """Sen (1968) interval from a given Var(S), with scipy.stats.theilslopes' rank rule.

    scipy 1.17 ``_stats_mstats_common.theilslopes``: ``z = norm.ppf(alpha/2)``,
    ``Ru = min(int(np.round((nt - z*sigma)/2.)), nt-1)``,
    ``Rl = max(int(np.round((nt + z*sigma)/2.)) - 1, 0)``, bounds ``sorted_slopes[[Rl, Ru]]``.
    Written out here so that the Hamed-Rao interval can be checked with pymannkendall's
    corrected variance (the helper is first checked against scipy itself).
    """
    i, j = np.triu_indices(len(y), 1)
    slopes = np.sort((y[j] - y[i]) / (x[j] - x[i]))
    if var_s < 0:
        return np.nan, np.nan
    z = norm.ppf(alpha / 2.0)
    sigma = np.sqrt(var_s)
    nt = len(slopes)
    ru = min(int(np.round((nt - z * sigma) / 2.0)), nt - 1)
    rl = max(int(np.round((nt + z * sigma) / 2.0)) - 1, 0)
    return float(slopes[rl]), float(slopes[ru])


def test_slope_interval_by_hand():
    # y = 1 3 2 5 4 on x = 0..4: the 10 slopes sorted are -1 -1 1/3 1/2 3/4 1 1 4/3 2 3,
    # median (3/4 + 1)/2 = 7/8, Var(S) = 5*4*15/18 = 16.67, sd 4.082.
    y = np.array([1.0, 3.0, 2.0, 5.0, 4.0])
    # 95 %: C = 1.960 * 4.082 = 8.00; M1 = (10 - 8.00)/2 = 1.00 -> the 1st slope, -1;
    # M2 + 1 = round((10 + 8.00)/2) + 1 = 10 -> the 10th slope, 3
    one = mann_kendall_1d(y, alpha=0.05)
    assert (one["slope_low"], one["slope"], one["slope_high"]) == (-1.0, 0.875, 3.0)
    # 50 %: C = 0.6745 * 4.082 = 2.754; M1 = round(3.62) = 4 -> 1/2; M2 + 1 = round(6.38) + 1 = 7 -> 1
    one = mann_kendall_1d(y, alpha=0.5)
    assert (one["slope_low"], one["slope_high"]) == (0.5, 1.0)
    # a constant series: Var(S) = 0, C = 0, both bounds are middle slopes, 0
    flat = mann_kendall_1d(np.full(N_YEARS, 0.3))
    assert flat["slope_low"] == flat["slope_high"] == 0.0


def test_slope_interval_equals_scipy_with_ties_gaps_and_missing_values():
    rng = np.random.default_rng(21)
    n_checked = n_ties_move_rank = 0
    for n in (2, 3, 4, 5, 8, 13, 24, 31):
        npix = 25
        y = rng.normal(size=(npix, n)) + rng.uniform(-0.3, 0.3, (npix, 1)) * np.arange(n)
        y[npix // 3 :] = np.round(y[npix // 3 :], 0 if n > 10 else 1)  # two thirds with ties, many of them
        x = np.sort(rng.choice(np.arange(1980, 2030), n, replace=False)).astype(float)  # gapped years
        if n >= 8:  # a few missing values in half of the pixels
            for k in range(0, npix, 2):
                y[k, rng.choice(n, 3, replace=False)] = np.nan
        for alpha in (0.05, 0.1, 0.32):
            ds = theil_sen_mk(_cube(y, x), alpha=alpha, min_valid=2)
            for k in range(npix):
                ok = np.isfinite(y[k])
                yk, xk = y[k, ok], x[ok]
                ref = theilslopes(yk, xk, alpha=alpha)
                one = mann_kendall_1d(y[k], x, alpha=alpha, min_valid=2)
                # float64 kernel: the same order statistics, bit for bit
                assert (one["slope_low"], one["slope_high"]) == (ref.low_slope, ref.high_slope), (n, alpha, k)
                assert one["slope_low"] <= one["slope"] <= one["slope_high"]
                # the Dataset holds the float32 of the same numbers
                assert float(ds["slope_low"][k]) == np.float32(ref.low_slope)
                assert float(ds["slope_high"][k]) == np.float32(ref.high_slope)
                n_checked += 1
                # the tie correction of Var(S) matters: without it some ranks move
                m = len(yk)
                no_ties = _sen_interval(yk, xk, m * (m - 1) * (2 * m + 5) / 18.0, alpha)
                n_ties_move_rank += no_ties != (ref.low_slope, ref.high_slope)
    assert n_checked == 8 * 3 * 25
    assert n_ties_move_rank > 30


def test_slope_interval_helper_and_pymannkendall_variance_match_scipy(tied_series):
    # the reference rule above, fed with pymannkendall's (tie-corrected) var_s, is scipy's
    for y in tied_series[:60]:
        ref = theilslopes(y, np.arange(N_YEARS, dtype=float), alpha=0.05)
        var_s = mk.original_test(y).var_s
        assert _sen_interval(y, np.arange(N_YEARS, dtype=float), var_s, 0.05) == (ref.low_slope, ref.high_slope)


def test_hamed_rao_interval_uses_the_corrected_variance():
    rng = np.random.default_rng(8)
    npix = 80
    y = _ar1(rng, npix, N_YEARS, 0.6) + rng.uniform(-0.15, 0.15, (npix, 1)) * np.arange(N_YEARS)
    y[npix // 2 :] = np.round(y[npix // 2 :], 1)
    x = np.arange(N_YEARS, dtype=float)  # gap-free unit steps: pymannkendall's detrending is ours
    ds = theil_sen_mk(_cube(y, YEARS), autocorrelation="hamed_rao", min_valid=3)
    n_wider = n_moved = n_nan = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pymannkendall's sqrt(negative)
        refs = [mk.hamed_rao_modification_test(s) for s in y]
    for k, ref in enumerate(refs):
        low, high = _sen_interval(y[k], x, ref.var_s, 0.05)
        one = mann_kendall_1d(y[k], YEARS, autocorrelation="hamed_rao")
        plain = theilslopes(y[k], x, alpha=0.05)
        if ref.var_s < 0:  # corrected variance negative: undefined
            assert np.isnan(one["slope_low"]) and np.isnan(one["slope_high"])
            assert np.isnan(float(ds["slope_low"][k])) and np.isnan(float(ds["slope_high"][k]))
            n_nan += 1
            continue
        assert (one["slope_low"], one["slope_high"]) == (low, high), k
        assert float(ds["slope_low"][k]) == np.float32(low) and float(ds["slope_high"][k]) == np.float32(high)
        # positive autocorrelation inflates Var(S), so the interval can only widen
        if ref.var_s > mk.original_test(y[k]).var_s:
            assert low <= plain.low_slope and high >= plain.high_slope
        n_wider += (high - low) > (plain.high_slope - plain.low_slope)
        n_moved += (low, high) != (plain.low_slope, plain.high_slope)
    assert n_moved > 30 and n_wider > 20, (n_moved, n_wider)  # the correction really changes the interval
    assert n_nan < 10


def test_order_stat_any_rank_order_matches_sort():
    rng = np.random.default_rng(4)
    for trial in range(300):
        n = int(rng.integers(1, 120))
        v = np.round(rng.standard_t(2, n), int(rng.integers(0, 3)))
        lo, hi = np.sort(rng.choice(v, 2))
        split = [v[v < lo], v[(v >= lo) & (v <= hi)], v[v > hi]]
        parts = np.zeros((3, n))
        sizes = np.array([len(q) for q in split], dtype=np.int64)
        for g, q in enumerate(split):
            parts[g, : len(q)] = rng.permutation(q)
        picked = np.empty((3, 4), np.int64)
        npicked = np.zeros(3, np.int64)
        ranks = rng.integers(0, n, 6)  # the kernel asks for at most 4 ranks, repeats allowed
        ranks[2] = ranks[1]
        want = np.sort(v)
        for r in ranks[: 4 if trial % 2 else 6]:
            if npicked.max() >= 4:
                break
            assert _order_stat(parts, sizes, picked, npicked, r) == want[r], (trial, r)
        # the parts still hold the same values
        for g, q in enumerate(split):
            np.testing.assert_array_equal(np.sort(parts[g, : sizes[g]]), np.sort(q))


def test_slope_interval_in_the_dataset(cube):
    ds = theil_sen_mk(cube, alpha=0.1)
    low, slope, high = (ds[v].values for v in ("slope_low", "slope", "slope_high"))
    tested = ds["n_valid"].values >= ds.attrs["min_valid"]
    assert low.dtype == high.dtype == np.float32
    assert np.isnan(low[~tested]).all() and np.isnan(high[~tested]).all()
    assert (low[tested] <= slope[tested]).all() and (slope[tested] <= high[tested]).all()
    assert (high[tested] > low[tested]).all()
    assert ds["slope_low"].attrs["units"] == ds["slope"].attrs["units"] == "1 per unit of year"
    assert "90 % confidence interval" in ds["slope_high"].attrs["long_name"]
    # with the same alpha, an interval excluding 0 goes with a significant test (nearly always)
    sig = ds["p"].values[tested] < 0.1
    excl = (low[tested] > 0) | (high[tested] < 0)
    assert (sig == excl).mean() > 0.97


def test_interval_false_leaves_the_interval_out(cube):
    full = theil_sen_mk(cube.chunk({"y": 16, "x": 16}), autocorrelation="hamed_rao").compute()
    lean = theil_sen_mk(cube.chunk({"y": 16, "x": 16}), autocorrelation="hamed_rao", interval=False).compute()
    assert set(full.data_vars) - set(lean.data_vars) == {"slope_low", "slope_high"}
    xr.testing.assert_identical(full.drop_vars(["slope_low", "slope_high"]), lean)


# ------------------------------------------------------------------- edge cases and classes


def test_min_valid_and_default():
    assert default_min_valid(24) == 12 and default_min_valid(5) == 3 and default_min_valid(2) == 3
    y = np.full((3, N_YEARS), np.nan)
    y[0, :11] = np.arange(11.0)  # 11 valid < default 12
    y[1, :12] = np.arange(12.0)  # 12 valid
    y[2, [0, 5]] = [1.0, 2.0]  # 2 valid
    ds = theil_sen_mk(_cube(y, YEARS))
    assert ds.attrs["min_valid"] == 12
    np.testing.assert_array_equal(ds["n_valid"], [11, 12, 2])
    for v in ("slope", "intercept", "z", "p", "tau"):
        assert ds[v].dtype == np.float32
        assert np.isnan(ds[v][0]) and np.isnan(ds[v][2]) and not np.isnan(ds[v][1])
    assert ds["trend_class"].dtype == np.uint8
    np.testing.assert_array_equal(ds["trend_class"], [TREND_NODATA, 1, TREND_NODATA])
    ds3 = theil_sen_mk(_cube(y, YEARS), min_valid=2)
    assert float(ds3["slope"][2]) == pytest.approx(1 / 5)
    hr2 = theil_sen_mk(_cube(y, YEARS), min_valid=2, autocorrelation="hamed_rao")
    assert float(hr2["z"][2]) == 0.0 and float(hr2["p"][2]) == 1.0  # no correction for n < 3
    # infinities count as missing
    y_inf = y.copy()
    y_inf[1, 3] = np.inf
    assert int(theil_sen_mk(_cube(y_inf, YEARS), min_valid=2)["n_valid"][1]) == 11
    with pytest.raises(ValueError, match="min_valid"):
        theil_sen_mk(_cube(y, YEARS), min_valid=1)
    with pytest.raises(ValueError, match="min_valid"):
        theil_sen_mk(_cube(y, YEARS), min_valid=25)


@pytest.mark.parametrize("autocorrelation", [None, "hamed_rao"])
def test_constant_series_is_stable_without_warnings(autocorrelation):
    y = np.full((2, N_YEARS), 0.42)
    y[1, ::3] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = theil_sen_mk(_cube(y, YEARS), autocorrelation=autocorrelation).compute()
    np.testing.assert_array_equal(ds["slope"], 0.0)
    np.testing.assert_array_equal(ds["z"], 0.0)
    np.testing.assert_array_equal(ds["p"], 1.0)
    np.testing.assert_array_equal(ds["tau"], 0.0)
    np.testing.assert_allclose(ds["intercept"], 0.42, rtol=1e-6)
    np.testing.assert_array_equal(ds["trend_class"], 3)


def test_exact_line_hamed_rao_skips_undefined_acf():
    # detrended series is constant: ACF undefined, correction skipped (pymannkendall: NaN)
    one = mann_kendall_1d(np.arange(N_YEARS) * 0.5, autocorrelation="hamed_rao")
    ref = mk.original_test(np.arange(N_YEARS) * 0.5)
    assert one["z"] == pytest.approx(ref.z) and one["trend_class"] == 1


def test_trend_class_rule():
    t = np.arange(N_YEARS)
    noise = np.random.default_rng(5).normal(0, 0.02, N_YEARS)
    weak = 0.001 * t + np.random.default_rng(0).normal(0, 0.05, N_YEARS)  # slope ~9e-4, p 0.44
    y = np.stack(
        [
            0.5 + 0.01 * t + noise,  # strong increase
            0.5 - 0.01 * t + noise,  # strong decrease
            0.5 + weak,  # weak increase in noise
            0.5 - weak,  # its mirror: same p, opposite slope
            np.full(N_YEARS, 0.3),  # constant
        ]
    )
    ds = theil_sen_mk(_cube(y, YEARS))
    assert float(ds["slope"][2]) > 0 > float(ds["slope"][3])
    assert float(ds["p"][2]) >= 0.05 and float(ds["p"][3]) >= 0.05
    np.testing.assert_array_equal(ds["trend_class"], [1, 5, 2, 4, 3])
    assert set(TREND_CLASSES) == {1, 2, 3, 4, 5}
    assert TREND_CLASSES[1] == "significant greening" and TREND_CLASSES[5] == "significant browning"
    # stable_slope: |slope| <= threshold is stable whatever p says
    ds_st = theil_sen_mk(_cube(y, YEARS), stable_slope=0.005)
    np.testing.assert_array_equal(ds_st["trend_class"], [1, 5, 3, 3, 3])


def test_trend_class_rule_on_random_pixels(tied_series):
    ds = theil_sen_mk(_cube(tied_series), alpha=0.1)
    slope, p, cls = (ds[v].values for v in ("slope", "p", "trend_class"))
    expected = np.where(
        slope == 0,
        3,
        np.where(slope > 0, np.where(p < 0.1, 1, 2), np.where(p < 0.1, 5, 4)),
    )
    np.testing.assert_array_equal(cls, expected)
    assert len(np.unique(cls)) >= 4


# ------------------------------------------------------------------------- xarray / dask


@pytest.fixture(scope="module")
def cube() -> xr.DataArray:
    rng = np.random.default_rng(9)
    trend = rng.uniform(-0.01, 0.01, (30, 40))
    data = 0.5 + trend * np.arange(N_YEARS)[:, None, None] + rng.normal(0, 0.02, (N_YEARS, 30, 40))
    data[rng.random(data.shape) < 0.1] = np.nan
    data[:, 0, 0] = np.nan  # an all-missing pixel
    return xr.DataArray(
        data.astype(np.float32),
        dims=("year", "y", "x"),
        coords={"year": YEARS, "y": np.arange(30.0), "x": np.arange(40.0)},
        attrs={"units": "1"},
    )


@pytest.mark.parametrize("autocorrelation", [None, "hamed_rao"])
def test_dask_equals_numpy_and_is_lazy(cube, autocorrelation):
    eager = theil_sen_mk(cube, autocorrelation=autocorrelation)
    assert not any(isinstance(v.data, dska.Array) for v in eager.data_vars.values())
    # time split over several chunks: rechunked to one
    lazy = theil_sen_mk(cube.chunk({"year": 8, "y": 16, "x": 16}), autocorrelation=autocorrelation)
    for v in lazy.data_vars.values():
        assert isinstance(v.data, dska.Array)
        assert v.data.chunks == ((16, 14), (16, 16, 8))
    assert lazy["trend_class"].dtype == np.uint8 and lazy["n_valid"].dtype == np.int32
    computed = lazy.compute(scheduler="threads", num_workers=2)
    xr.testing.assert_identical(computed, eager)
    assert int(eager["trend_class"][0, 0]) == TREND_NODATA and int(eager["n_valid"][0, 0]) == 0
    assert eager["slope"].dims == ("y", "x") and "year" not in eager.coords
    assert eager["slope"].attrs["units"] == "1 per unit of year"


def test_dim_order_and_unsorted_coordinate(cube):
    ref = theil_sen_mk(cube)
    moved = theil_sen_mk(cube.transpose("y", "x", "year"))
    xr.testing.assert_identical(moved, ref)
    shuffled = theil_sen_mk(cube.isel(year=np.random.default_rng(0).permutation(N_YEARS)))
    xr.testing.assert_identical(shuffled, ref)


def test_datetime_coordinate_gives_per_year_slope():
    t = np.array([f"{y}-07-02" for y in YEARS], dtype="datetime64[ns]")
    y = 0.5 + 0.02 * np.arange(N_YEARS)
    ds = theil_sen_mk(xr.DataArray(y, dims="time", coords={"time": t}), dim="time")
    assert float(ds["slope"]) == pytest.approx(0.02, rel=1e-3)


def test_bad_arguments(cube):
    with pytest.raises(ValueError, match="autocorrelation"):
        theil_sen_mk(cube, autocorrelation="yue_wang")
    with pytest.raises(ValueError, match="autocorrelation"):
        mann_kendall_1d(np.arange(5.0), autocorrelation="HR")
    with pytest.raises(ValueError, match="'time'"):
        theil_sen_mk(cube, dim="time")
    with pytest.raises(ValueError, match="alpha"):
        theil_sen_mk(cube, alpha=1.5)
    dup = cube.assign_coords(year=np.r_[YEARS[:-1], YEARS[-2]])
    with pytest.raises(ValueError, match="duplicates"):
        theil_sen_mk(dup)

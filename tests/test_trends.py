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
from scipy.stats import theilslopes

from karstflow.trends import (
    TREND_CLASSES,
    TREND_NODATA,
    _median_inplace,
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

"""karstflow.greening: index formulas, cube assembly, end-members, grid checks, summary."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr
from scipy.stats import theilslopes

from karstflow.greening import (
    annual_stack_from_composites,
    check_index_range,
    check_same_grid,
    evi,
    greening_summary,
    greening_trend,
    kndvi,
    ndvi,
    percentile_endmembers,
    select_years,
    trend_from_rasters,
    vegetation_index_cube,
)
from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_raster, write_netcdf
from karstflow.runtime import call_script
from karstflow.trends import mann_kendall_1d

YEARS = np.arange(2000, 2024)
WORKFLOW = Path(__file__).resolve().parents[1] / "workflow"


def test_index_formulas_by_hand():
    red, nir, blue = (xr.DataArray(np.array([v, 0.0])) for v in (0.05, 0.45, 0.03))
    nir = xr.DataArray(np.array([0.45, 0.0]))
    # (0.45 - 0.05) / (0.45 + 0.05) = 0.8; 0 / 0 -> NaN
    nd = ndvi(red, nir).values
    assert nd[0] == pytest.approx(0.8) and np.isnan(nd[1])
    # 2.5 * 0.4 / (0.45 + 6 * 0.05 - 7.5 * 0.03 + 1) = 1.0 / 1.525
    assert float(evi(blue, red, nir)[0]) == pytest.approx(1.0 / 1.525, rel=1e-6)
    assert float(kndvi(ndvi(red, nir))[0]) == pytest.approx(np.tanh(0.64), rel=1e-6)


def _stack(**variables) -> xr.Dataset:
    coords = {"year": YEARS[:3], "y": [1.5, 0.5], "x": [0.5, 1.5]}
    return xr.Dataset({k: (("year", "y", "x"), v) for k, v in variables.items()}, coords=coords)


def test_cube_from_bands_or_index_keeps_ndvi():
    rng = np.random.default_rng(1)
    red, nir, blue = (rng.uniform(0.01, 0.5, (3, 2, 2)).astype(np.float32) for _ in range(3))
    ds = vegetation_index_cube(_stack(B04=red, B08=nir, B02=blue), "evi", source="stack.nc")
    assert set(ds.data_vars) == {"ndvi", "evi"} and ds["evi"].dims == ("year", "y", "x")
    np.testing.assert_allclose(ds["ndvi"].values, (nir - red) / (nir + red), rtol=1e-6)
    only_ndvi = _stack(ndvi=((nir - red) / (nir + red)).astype(np.float32))
    k = vegetation_index_cube(only_ndvi, "kndvi")
    np.testing.assert_allclose(k["kndvi"].values, np.tanh(only_ndvi["ndvi"].values ** 2), rtol=1e-6)
    with pytest.raises(ValueError, match=r"stack.nc: cannot build 'evi'.*blue.*found variables \['ndvi'\]"):
        vegetation_index_cube(only_ndvi, "evi", source="stack.nc")
    with pytest.raises(ValueError, match="stack.nc: expected a 'year' dimension"):
        vegetation_index_cube(only_ndvi.isel(year=0), source="stack.nc")


def test_composites_stack_by_year():
    bands = xr.DataArray(
        np.ones((3, 2, 2), np.float32) * np.array([0.03, 0.05, 0.45], np.float32)[:, None, None],
        dims=("band", "y", "x"),
        coords={"band": ["B02", "B04", "B08"]},
    )
    stack = annual_stack_from_composites({2021: bands, 2020: bands})
    assert stack["year"].values.tolist() == [2020, 2021]
    ds = vegetation_index_cube(stack, "ndvi")
    np.testing.assert_allclose(ds["ndvi"].values, 0.8, rtol=1e-6)


def test_select_years_and_range_name_the_file():
    stack = _stack(ndvi=np.full((3, 2, 2), 0.5, np.float32))
    with pytest.raises(ValueError, match=r"climate.nc: year\(s\) \[2003\] are missing"):
        select_years(stack, [2001, 2002, 2003], source="climate.nc")
    scaled = _stack(ndvi=np.full((3, 2, 2), 5000, np.float32))["ndvi"]
    with pytest.raises(ValueError, match=r"ndvi.nc, variable ndvi: expected values >= -1 and <= 1 \(scaled.*min 5000"):
        check_index_range(scaled, source="ndvi.nc")


def test_percentile_endmembers_exact_and_streamed():
    rng = np.random.default_rng(2)
    v = rng.uniform(-0.1, 0.9, (24, 50, 40)).astype(np.float32)
    v[rng.random(v.shape) < 0.05] = np.nan
    da = xr.DataArray(v, dims=("year", "y", "x"))
    expected = np.nanpercentile(v.astype(np.float64), [5, 95])
    assert percentile_endmembers(da, 5, 95) == pytest.approx(tuple(expected), abs=1e-9)
    # the histogram path for cubes too big to hold: within one bin of (max - min) / 2**17
    streamed = percentile_endmembers(da.chunk({"year": 4}), 5, 95, max_exact_bytes=0)
    assert streamed == pytest.approx(tuple(expected), abs=1.0 / 2**17 * 2)


def test_mismatched_grids_name_both_files():
    a = RegionGrid.from_bounds("EPSG:32648", 30, (600000, 2797590, 602400, 2800020))
    b = RegionGrid.from_bounds("EPSG:32648", 30, (600030, 2797590, 602430, 2800020))  # one pixel east
    ndvi_cube = a.data_array(np.zeros(a.shape, np.float32))
    climate = b.data_array(np.zeros(b.shape, np.float32))
    check_same_grid(ndvi_cube, a.data_array(np.ones(a.shape)), "ndvi_annual.nc", "same.nc")
    with pytest.raises(
        ValueError,
        match=(
            r"grid mismatch.*climate.nc \[81 x 80 px, upper-left \(600030, 2800020\).*ndvi_annual.nc \[81 x 80 px, "
            r"upper-left \(600000"
        ),
    ):
        check_same_grid(ndvi_cube, climate, "ndvi_annual.nc", "climate.nc")
    other_crs = a.data_array(np.zeros(a.shape)).rio.write_crs("EPSG:32649")
    with pytest.raises(ValueError, match="different CRS"):
        check_same_grid(ndvi_cube, other_crs, "ndvi_annual.nc", "climate.nc")
    small = RegionGrid.from_bounds("EPSG:32648", 30, (600000, 2797590, 601200, 2800020))
    with pytest.raises(ValueError, match="different sizes"):
        check_same_grid(ndvi_cube, small.data_array(np.zeros(small.shape)), "ndvi_annual.nc", "climate.nc")


def _trend_cube() -> xr.DataArray:
    rng = np.random.default_rng(3)
    n = len(YEARS)
    data = 0.5 + rng.normal(0, 0.02, (n, 3, 4)).astype(np.float32)
    data[:, 0, 0] += 0.01 * np.arange(n)  # greening
    data[:, 0, 1] -= 0.01 * np.arange(n)  # browning
    data[:, 0, 2] = 0.42  # constant series
    data[:5, 0, 3] = np.nan  # 19 valid years: enough
    data[:, 1, 0] = np.nan
    data[[0, 7, 15, 23], 1, 0] = 0.3  # 4 valid years: too few
    data[:, 1, 1] = np.nan  # no data at all
    return xr.DataArray(data, dims=("year", "y", "x"), coords={"year": YEARS}, name="ndvi")


def test_trend_summary_with_too_few_years_constant_series_and_gaps(caplog):
    cube = _trend_cube().chunk({"y": 2, "x": 2})
    trend = greening_trend(cube, alpha=0.05, min_valid=12, stable_slope=0.0005)
    assert trend["slope"].chunks is not None  # lazy
    trend = trend.compute()
    cls = trend["trend_class"].values
    assert cls[0, 0] == 1 and cls[0, 1] == 5
    # constant series: slope 0, no trend, stable -- not an error
    assert trend["slope"].values[0, 2] == 0 and trend["p"].values[0, 2] == 1.0 and cls[0, 2] == 3
    assert trend["n_valid"].values[0, 3] == 19 and np.isfinite(trend["slope"].values[0, 3])
    # fewer valid years than the minimum: NaN and nodata, counted and logged
    assert np.isnan(trend["slope"].values[1, 0]) and np.isnan(trend["p"].values[1, 0]) and cls[1, 0] == 255
    with caplog.at_level(logging.WARNING, logger="karstflow.greening"):
        s = greening_summary(trend, pixel_area_km2=0.0009, index="ndvi", years=(2000, 2023))
    assert s["pixels_too_few_valid_years"] == 1 and s["pixels_without_data"] == 1
    assert "1 pixels have fewer than 12 valid years" in caplog.text
    assert s["pixels_tested"] == 10
    assert sum(s["class_share"].values()) == pytest.approx(1.0)
    assert s["class_area_km2"]["significant_greening"] == pytest.approx(0.0009)
    assert s["slope_mean_per_yr"] == pytest.approx(float(np.nanmean(trend["slope"].values)), rel=1e-6)


def test_all_pixels_too_short_gives_nan_not_a_crash(caplog):
    cube = _trend_cube().isel(year=slice(0, 5))  # 5 years, min_valid 12 is impossible -> error
    with pytest.raises(ValueError, match="min_valid must be an integer in"):
        greening_trend(cube, min_valid=12)
    sparse = _trend_cube().copy()
    sparse[3:, :, :] = np.nan  # 3 valid years everywhere, minimum 12
    with caplog.at_level(logging.WARNING, logger="karstflow.greening"):
        s = greening_summary(greening_trend(sparse, min_valid=12).compute(), pixel_area_km2=1.0, index="ndvi")
    assert s["pixels_tested"] == 0 and np.isnan(s["slope_mean_per_yr"])
    assert "have fewer than 12 valid years" in caplog.text


# --------------------------------------------------------------------------------------
# rule greening_trend: the script writes the slope's confidence interval
# --------------------------------------------------------------------------------------


def test_greening_trend_rule_declares_the_interval_rasters():
    rule = (WORKFLOW / "rules" / "greening.smk").read_text().split("rule greening_trend:")[1]
    outputs = rule.split("output:")[1].split("log:")[0]
    assert re.search(r'slope_low="results/\{region\}/greening/trend_slope_low\.tif"', outputs)
    assert re.search(r'slope_high="results/\{region\}/greening/trend_slope_high\.tif"', outputs)


@pytest.mark.parametrize("autocorrelation", ["none", "hamed_rao"])
def test_greening_trend_script_writes_the_slope_interval(tmp_path, autocorrelation):
    grid = RegionGrid.from_bounds("EPSG:32648", 30.0, (499980.0, 2799840.0, 500100.0, 2800020.0))
    planted = _trend_cube().values  # (24, 3, 4): trends, a constant, gaps, too few years, no data
    rng = np.random.default_rng(12)
    tied = np.round(planted + rng.normal(0, 0.01, planted.shape) + 0.002 * np.arange(len(YEARS))[:, None, None], 2)
    data = np.concatenate([planted, tied], axis=1)  # (24, 6, 4), the lower half with many ties
    assert data.shape[1:] == grid.shape
    ds = xr.Dataset({"ndvi": (("year", "y", "x"), data)}, coords={"year": YEARS, **grid.coords()})
    write_netcdf(ds.rio.write_crs(grid.crs), tmp_path / "ndvi_annual.nc")
    (tmp_path / "grid.json").write_text(json.dumps(grid.to_dict()))
    out = tmp_path / "greening"
    names = {"slope": "trend_slope", "slope_low": "trend_slope_low", "slope_high": "trend_slope_high"}
    outputs = {k: out / f"{v}.tif" for k, v in names.items()}
    outputs.update(p=out / "trend_p.tif", trend_class=out / "trend_class.tif")
    call_script(
        WORKFLOW / "scripts" / "greening_trend.py",
        input={"cube": tmp_path / "ndvi_annual.nc", "grid": tmp_path / "grid.json"},
        output=outputs,
        params={
            "index": "ndvi",
            "alpha": 0.1,
            "min_valid_years": 12,
            "autocorrelation": autocorrelation,
            "stable_slope": 0.0005,
            "chunk_px": 2,
        },
        wildcards={"region": "r1"},
        log=tmp_path / "greening_trend.log",
    )
    rasters = {k: read_raster(outputs[k]) for k in names}
    for k, da in rasters.items():
        assert grid.matches(da), k
        assert da.attrs["units"] == "ndvi per year"
    low, slope, high = (np.squeeze(rasters[k].values) for k in ("slope_low", "slope", "slope_high"))
    tested = np.isfinite(slope)
    assert tested.sum() == 6 * 4 - 4  # in each half: 4 valid years (too few) and an empty pixel
    assert not np.isfinite(low[~tested]).any() and not np.isfinite(high[~tested]).any()
    if autocorrelation == "none":
        assert np.isfinite(low[tested]).all() and np.isfinite(high[tested]).all()
    defined = np.isfinite(low)  # Hamed-Rao: NaN where the corrected variance is negative
    assert (low[defined] <= slope[defined]).all() and (slope[defined] <= high[defined]).all()
    n_differ = 0
    for iy, ix in zip(*np.nonzero(tested), strict=True):
        y = data[:, iy, ix]
        ok = np.isfinite(y)
        plain = theilslopes(y[ok], YEARS[ok].astype(float), alpha=0.1)  # scipy's interval, pixel by pixel
        if autocorrelation == "none":
            assert (low[iy, ix], high[iy, ix]) == (np.float32(plain.low_slope), np.float32(plain.high_slope))
        else:  # the Hamed-Rao corrected variance (checked against pymannkendall in test_trends)
            one = mann_kendall_1d(y, YEARS, alpha=0.1, autocorrelation="hamed_rao", min_valid=12)
            np.testing.assert_array_equal(
                [low[iy, ix], high[iy, ix]], np.float32([one["slope_low"], one["slope_high"]])
            )
            n_differ += (one["slope_low"], one["slope_high"]) != (plain.low_slope, plain.high_slope)
    assert n_differ > 0 or autocorrelation == "none"
    # the summary (its own rule) is as before: the interval rasters add no figure
    params = {"index": "ndvi", "alpha": 0.1, "min_valid_years": 12, "autocorrelation": autocorrelation}
    call_script(
        WORKFLOW / "scripts" / "greening_summary.py",
        input={
            "cube": tmp_path / "ndvi_annual.nc",
            "slope": outputs["slope"],
            "trend_class": outputs["trend_class"],
            "grid": tmp_path / "grid.json",
        },
        output={"summary": out / "greening.json"},
        params={**params, "stable_slope": 0.0005, "chunk_px": 2},
        wildcards={"region": "r1"},
        log=tmp_path / "greening_summary.log",
    )
    summary = read_json(out / "greening.json")
    assert summary["pixels_tested"] == 20
    # the same figures as greening_summary on the trend in memory (the rule's former output)
    trend = greening_trend(
        ds["ndvi"],
        alpha=0.1,
        min_valid=12,
        autocorrelation=None if autocorrelation == "none" else autocorrelation,
        stable_slope=0.0005,
    ).compute()
    expected = json.loads(json.dumps(greening_summary(trend, pixel_area_km2=0.0009, index="ndvi", years=(2000, 2023))))
    assert summary == expected
    assert "2 pixels have fewer than 12 valid years" in (tmp_path / "greening_trend.log").read_text()


def test_trend_from_rasters_gives_the_summary_of_the_trend_in_memory():
    cube = _trend_cube()
    trend = greening_trend(cube, alpha=0.05, min_valid=None, stable_slope=0.0005).compute()
    # as the summary rule reads them: the slope raster (float32) and the class raster (uint8)
    rebuilt = trend_from_rasters(
        trend["slope"],
        trend["trend_class"],
        cube,
        alpha=0.05,
        autocorrelation=None,
        min_valid=None,
        stable_slope=0.0005,
    )
    np.testing.assert_array_equal(rebuilt["n_valid"].values, trend["n_valid"].values)
    assert rebuilt["n_valid"].values[1, 0] == 4 and rebuilt["n_valid"].values[0, 3] == 19
    # min_valid None: the kernel's default max(3, ceil(24 / 2)) = 12; autocorrelation "None"
    assert rebuilt.attrs == {"alpha": 0.05, "autocorrelation": "None", "min_valid": 12, "stable_slope": 0.0005}
    assert {k: trend.attrs[k] for k in rebuilt.attrs} == rebuilt.attrs
    a = greening_summary(trend, pixel_area_km2=0.0009, index="ndvi")
    b = greening_summary(rebuilt, pixel_area_km2=0.0009, index="ndvi")
    assert json.dumps(a) == json.dumps(b)
    with pytest.raises(ValueError, match="differ in shape"):
        trend_from_rasters(trend["slope"], trend["trend_class"], cube.isel(x=[0]), **rebuilt.attrs)


def test_an_empty_tile_passes_the_range_check_only_when_allowed():
    empty = xr.DataArray(np.full((2, 2, 2), np.nan, np.float32), dims=("year", "y", "x"), name="ndvi")
    with pytest.raises(ValueError, match="stack.nc, variable ndvi: all 8 values are missing"):
        check_index_range(empty, source="stack.nc")
    lo, hi = check_index_range(empty, source="stack.nc", allow_empty=True)
    assert np.isnan(lo) and np.isnan(hi)
    with pytest.raises(ValueError, match=r"expected values >= -1 and <= 1 .*found 8 of 8 values outside \(min 5000"):
        check_index_range(empty.fillna(5000.0), source="stack.nc", allow_empty=True)

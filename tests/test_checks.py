"""Unit tests of the shared input checks (karstflow.checks) and the start-up checks of
karstflow.config and karstflow.grid; the end-to-end catalogue is tests/test_bad_inputs.py."""

from __future__ import annotations

import dask.array as dsa
import numpy as np
import pytest
import xarray as xr

from karstflow.checks import (
    VARIABLE_RANGES,
    Range,
    check_codes,
    check_cube_dims,
    check_range,
    check_variables,
    map_codes,
)
from karstflow.config import ConfigError, check_yaml_file
from karstflow.grid import check_pixel_count, startup_pixels
from karstflow.inputs import InputError


def test_check_range_counts_the_values_outside_and_reports_min_and_max():
    values = np.array([[1.0, -2.0, np.nan], [3.0, -0.5, 4.0]])
    with pytest.raises(InputError) as err:
        check_range(values, VARIABLE_RANGES["precipitation_mm"], source="c.nc", variable="precipitation_mm")
    assert str(err.value) == (
        "c.nc, variable precipitation_mm: expected values >= 0 mm; found 2 of 6 values outside (min -2, max 4)"
    )


def test_check_range_on_dask_matches_numpy_and_returns_the_range():
    rng = np.random.default_rng(1)
    values = rng.uniform(-1, 1, (7, 9))
    lazy = xr.DataArray(dsa.from_array(values, chunks=(3, 4)))
    assert check_range(lazy, Range("", -1, 1), source="s", variable="ndvi") == (values.min(), values.max())


def test_check_range_rejects_all_missing_unless_allowed():
    empty = np.full((3, 3), np.nan)
    with pytest.raises(InputError, match=r"s, variable t: all 9 values are missing"):
        check_range(empty, Range("degC", -90, 60), source="s", variable="t")
    lo, hi = check_range(empty, Range("degC", -90, 60), source="s", variable="t", allow_empty=True)
    assert np.isnan(lo) and np.isnan(hi)


def test_check_cube_dims_names_swapped_axes_aliases_and_leading_dims():
    ok = xr.Dataset({"ndvi": (("year", "y", "x"), np.zeros((2, 3, 4)))})
    check_cube_dims(ok, source="c.nc", leading=("year",))
    with pytest.raises(InputError, match=r"c.nc, variable ndvi: dimensions \(year, x, y\), expected \(year, y, x\)"):
        check_cube_dims(ok.transpose("year", "x", "y"), source="c.nc")
    with pytest.raises(InputError, match=r"rename lat -> y, lon -> x"):
        check_cube_dims(ok.rename(y="lat", x="lon"), source="c.nc")
    with pytest.raises(InputError, match=r"dimensions \(time, y, x\), expected \(year, y, x\) \(one value per year"):
        check_cube_dims(ok.rename(year="time"), source="c.nc", leading=("year",))
    with pytest.raises(InputError, match=r"c.nc: no variable on \(y, x\)"):
        check_cube_dims(xr.Dataset({"v": ("year", [1, 2])}), source="c.nc")


def test_check_variables_requires_and_ranges_each_known_variable():
    ds = xr.Dataset({"sand_pct": (("y", "x"), np.full((2, 2), 101.0)), "other": (("y", "x"), np.full((2, 2), -9.0))})
    with pytest.raises(InputError, match=r"expected variable\(s\) \['pawc'\]"):
        check_variables(ds, source="soil.nc", required=("pawc",))
    with pytest.raises(InputError, match=r"soil.nc, variable sand_pct: expected values >= 0 and <= 100 %"):
        check_variables(ds, source="soil.nc")


def test_check_codes_lists_the_codes_without_a_row():
    lc = np.array([[1, 2, 255], [9, 12, 2]], dtype=float)
    lc[0, 2] = np.nan
    assert map_codes(lc) == [1, 2, 9, 12]
    with pytest.raises(InputError) as err:
        check_codes(map_codes(lc), [1, 2, 9], table_source="pools.csv", column="LU", map_source="lc.tif")
    assert str(err.value) == (
        "pools.csv, column LU: land-cover code(s) [12] of lc.tif have no row; the table has [1, 2, 9], "
        "the map has [1, 2, 9, 12]"
    )


def test_yaml_syntax_errors_name_file_line_and_column(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("regions:\n  a:\n    crs: EPSG:32648\n   bad: [1\n")
    with pytest.raises(ConfigError, match=r"config.yaml, line 4, column 4: YAML syntax error"):
        check_yaml_file(path)
    path.write_text("regions:\n  a: {crs: EPSG:32648}\n")
    check_yaml_file(path)


def test_startup_pixels_from_bounds_and_the_max_pixels_check():
    region = {"aoi": {"bounds": [0, 0, 3000, 2000]}, "crs": "EPSG:32648", "resolution_m": 30}
    assert startup_pixels(region) == 100 * 67
    assert startup_pixels({**region, "resolution_m": 0.01}) == 300_000 * 200_000
    check_pixel_count(6700, 6700, "g")
    with pytest.raises(ValueError, match=r"g has 6,701 px, more than grid.max_pixels \(6,700\)"):
        check_pixel_count(6701, 6700, "g")
    assert startup_pixels({"grid_like": "made/by/a/rule.tif"}) is None

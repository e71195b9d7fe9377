"""karstflow.desertification: FVC, indicator grades, combination, areas, transitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from karstflow.desertification import (
    RD_NODATA,
    fvc_dimidiate,
    grade_area_table,
    grade_indicator,
    rd_grade,
    rd_summary,
    transition_table,
)


def da(values, dims=("y", "x")) -> xr.DataArray:
    return xr.DataArray(np.asarray(values, dtype=np.float32), dims=dims)


def test_fvc_dimidiate_by_hand():
    ndvi = da([[0.1, 0.45, 0.8], [0.9, -0.2, np.nan]])
    fvc = fvc_dimidiate(ndvi, 0.1, 0.8).values
    # (0.45 - 0.1) / (0.8 - 0.1) = 0.5; outside the end-members clipped to 0 and 1
    np.testing.assert_allclose(fvc[0], [0.0, 0.5, 1.0], atol=1e-6)
    assert fvc[1, 0] == 1.0 and fvc[1, 1] == 0.0 and np.isnan(fvc[1, 2])
    with pytest.raises(ValueError, match="NDVI_veg > NDVI_soil"):
        fvc_dimidiate(ndvi, 0.8, 0.1)


def test_indicator_grades_at_the_xiong_thresholds():
    exposure = da([0.0, 0.19, 0.2, 0.3, 0.49, 0.5, 0.7, 0.9, 1.0, np.nan], dims=("i",))
    g = grade_indicator(exposure, (0.2, 0.3, 0.5, 0.7, 0.9)).values
    assert g.tolist() == [0, 0, 1, 2, 2, 3, 4, 5, 5, RD_NODATA]
    cover = da([0.9, 0.7, 0.69, 0.5, 0.34, 0.19, 0.09, 0.0], dims=("i",))
    g = grade_indicator(cover, (0.7, 0.5, 0.35, 0.2, 0.1), decreasing=True).values
    assert g.tolist() == [0, 0, 1, 1, 3, 4, 5, 5]
    with pytest.raises(ValueError, match="strictly decreasing"):
        grade_indicator(cover, (0.1, 0.2, 0.35, 0.5, 0.7), decreasing=True)
    with pytest.raises(ValueError, match="expected 5 values"):
        grade_indicator(exposure, (0.2, 0.3))


def test_rd_grade_combines_indicators_within_the_carbonate_mask():
    carbonate = da([[1, 1, 1, 1, 0, np.nan]])
    exposure = da([[0.6, 0.6, 0.05, np.nan, 0.9, 0.9]])  # moderate, moderate, none, missing
    cover = da([[0.8, 0.15, 0.05, 0.3, 0.0, 0.0]])  # none, severe, extremely severe, moderate
    g_min = rd_grade(carbonate=carbonate, exposure=exposure, cover=cover, combine="min").values
    # rock under closed vegetation -> none; both -> the less severe; bare but not rocky -> none;
    # missing exposure -> cover alone; off carbonate -> nodata
    assert g_min.tolist() == [[0, 3, 0, 3, RD_NODATA, RD_NODATA]]
    g_max = rd_grade(carbonate=carbonate, exposure=exposure, cover=cover, combine="max").values
    assert g_max.tolist() == [[3, 4, 5, 3, RD_NODATA, RD_NODATA]]
    g_exp = rd_grade(carbonate=carbonate, exposure=exposure, indicators=["exposure"]).values
    assert g_exp.tolist() == [[3, 3, 0, RD_NODATA, RD_NODATA, RD_NODATA]]
    slope = da([[10.0, 40.0, 40.0, 40.0, 40.0, 40.0]])
    g_slope = rd_grade(
        carbonate=carbonate, exposure=exposure, slope=slope, indicators=["exposure", "slope"], combine="min"
    ).values
    assert g_slope.tolist() == [[0, 3, 0, 5, RD_NODATA, RD_NODATA]]
    with pytest.raises(ValueError, match="no cover layer"):
        rd_grade(carbonate=carbonate, exposure=exposure)


def test_rd_grade_broadcasts_years_and_stays_lazy():
    years = [2000, 2001]
    exposure = xr.DataArray(
        np.array([[[0.6, 0.1]], [[0.25, 0.1]]], np.float32), dims=("year", "y", "x"), coords={"year": years}
    ).chunk({"year": 1})
    cover = xr.DataArray(
        np.array([[[0.1, 0.9]], [[0.6, 0.9]]], np.float32), dims=("year", "y", "x"), coords={"year": years}
    ).chunk({"year": 1})
    carbonate = da([[1, 1]])
    g = rd_grade(carbonate=carbonate, exposure=exposure, cover=cover)
    assert g.chunks is not None and g.dims == ("year", "y", "x")
    assert g.values.tolist() == [[[3, 0]], [[1, 0]]]


def test_area_table_transitions_and_reduction_rate():
    first = np.array([[2, 3, 0, 255], [4, 1, 0, 2]], np.uint8)
    last = np.array([[0, 2, 0, 255], [4, 1, 2, 1]], np.uint8)
    grades = xr.DataArray(np.stack([first, last]), dims=("year", "y", "x"), coords={"year": [2000, 2023]})
    area = grade_area_table(grades, pixel_area_km2=0.01)
    a0 = area[area.year == 2000].set_index("grade")["pixels"]
    assert a0.to_dict() == {"none": 2, "potential": 1, "light": 2, "moderate": 1, "severe": 1, "extremely severe": 0}
    assert area[area.year == 2000]["share"].sum() == pytest.approx(1.0)
    trans = transition_table(first, last, 0.01, (2000, 2023))
    assert len(trans) == 36 and trans["pixels"].sum() == 7  # the nodata pixel is left out
    cell = trans.set_index(["from_code", "to_code"])["pixels"]
    assert cell[(2, 0)] == 1 and cell[(3, 2)] == 1 and cell[(0, 2)] == 1 and cell[(2, 1)] == 1
    s = rd_summary(area, trans, rd_min_grade=2)
    # RD (light or worse): 4 pixels -> 3 pixels
    assert s["rd_area_first_km2"] == pytest.approx(0.04) and s["rd_area_last_km2"] == pytest.approx(0.03)
    assert s["reduction_rate"] == pytest.approx(0.25)
    assert s["restored_from_rd_km2"] == pytest.approx(0.02)  # 2->0 and 2->1
    assert s["new_rd_km2"] == pytest.approx(0.01)  # 0->2
    assert s["improved_km2"] == pytest.approx(0.03) and s["worsened_km2"] == pytest.approx(0.01)
    assert isinstance(area, pd.DataFrame) and list(area.columns) == [
        "year", "grade_code", "grade", "pixels", "area_km2", "share"
    ]

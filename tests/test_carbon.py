"""karstflow.carbon: CASA on one pixel by hand (annual and monthly steps), T_opt per year,
FPAR end-members per vegetation type, Rh (Pei et al. 2009) by hand, InVEST storage."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from karstflow.carbon import (
    borrow_endmembers,
    budyko_fu_aet_ratio,
    carbon_storage,
    casa_monthly,
    casa_npp,
    endmember_maps,
    endmembers_from_record,
    endmembers_record,
    endmembers_settings,
    epsilon_max_map,
    fpar_endmembers,
    fpar_from_ndvi,
    heterotrophic_respiration,
    landcover_bracket,
    landcover_by_year,
    landcover_endmembers,
    optimal_temperature_by_year,
    read_carbon_pools,
    storage_total_mg,
    temperature_stress,
    water_stress,
    year_month,
)
from karstflow.greening import on_grid
from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, read_raster, write_json, write_netcdf, write_raster
from karstflow.runtime import Files, Params, call_script, load_script
from karstflow.tiling import plan_tiles, run_tile


def cube(values, years=(2000, 2001)) -> xr.DataArray:
    """(year, 1, 1) cube of one pixel."""
    arr = np.asarray(values, dtype=np.float32).reshape(len(years), 1, 1)
    return xr.DataArray(arr, dims=("year", "y", "x"), coords={"year": list(years), "y": [0.5], "x": [0.5]})


def test_casa_on_one_pixel_by_hand():
    # Two years at one pixel. Year 2 has the peak NDVI, so T_opt = its temperature, 20 degC.
    ndvi = cube([0.6, 0.7])
    temp = cube([18.0, 20.0])
    sol = cube([4000.0, 4000.0])  # MJ m-2 yr-1
    precip, pet = cube([1200.0, 1200.0]), cube([1000.0, 1000.0])
    eps_max = xr.DataArray(np.array([[0.768]], np.float32), dims=("y", "x"), coords={"y": [0.5], "x": [0.5]})
    w_e = water_stress(budyko_fu_aet_ratio(precip, pet, omega=2.6))
    ds = casa_npp(ndvi, sol, temp, w_e, eps_max, ndvi_min=0.1, ndvi_max=0.8, fpar_min=0.001, fpar_max=0.95)

    # Year 1 by hand.
    # FPAR_NDVI = (0.6 - 0.1) / (0.8 - 0.1) * (0.95 - 0.001) + 0.001             = 0.678857
    # SR = 1.6 / 0.4 = 4; SR_min = 1.1 / 0.9 = 1.222222; SR_max = 1.8 / 0.2 = 9
    # FPAR_SR   = (4 - 1.222222) / (9 - 1.222222) * 0.949 + 0.001                 = 0.339929
    # FPAR      = (0.678857 + 0.339929) / 2                                       = 0.509393
    assert float(ds["fpar"][0, 0, 0]) == pytest.approx(0.509393, abs=2e-6)
    # APAR = 4000 * 0.509393 * 0.5                                                = 1018.786
    assert float(ds["apar"][0, 0, 0]) == pytest.approx(1018.786, rel=1e-5)
    # T_e1 = 0.8 + 0.02 * 20 - 0.0005 * 20**2                                     = 1.0
    assert float(ds["t_e1"][0, 0, 0]) == pytest.approx(1.0, abs=1e-6)
    # T_e2 = 1.1814 / (1 + e^(0.2 (20 - 10 - 18))) / (1 + e^(0.3 (-20 - 10 + 18)))  = 0.956803
    assert float(ds["t_e2"][0, 0, 0]) == pytest.approx(0.956803, abs=1e-6)
    # W_e: P/PET = 1.2, AET/PET = 1 + 1.2 - (1 + 1.2^2.6)^(1/2.6) = 0.754494 -> 0.5 + 0.5 * 0.754494
    assert float(ds["w_e"][0, 0, 0]) == pytest.approx(0.877247, abs=1e-6)
    # NPP = 1018.786 * 1.0 * 0.956803 * 0.877247 * 0.768                          = 656.73 g C m-2
    assert float(ds["npp"][0, 0, 0]) == pytest.approx(656.732, rel=1e-5)
    # Year 2: T = T_opt, T_e2 = 1.1814 / (1 + e^-2) / (1 + e^-3) = 0.991224
    assert float(ds["t_e2"][1, 0, 0]) == pytest.approx(0.991224, abs=1e-6)
    assert float(ds["npp"][1, 0, 0]) == pytest.approx(906.699, rel=1e-5)
    assert float(ds["t_opt"][0, 0]) == 20.0


# One pixel, one Guizhou-like year (2010): monthly T (degC), P, ETo (mm), SOL (MJ m-2), NDVI.
T_M = [5, 7, 11, 16, 20, 23, 25, 24, 21, 16, 11, 6]
P_M = [20, 25, 35, 85, 190, 220, 185, 130, 100, 90, 45, 20]  # 1145 mm
ETO_M = [25, 30, 50, 70, 95, 100, 120, 115, 85, 60, 40, 28]  # 818 mm
SOL_M = [190, 215, 290, 360, 410, 405, 510, 495, 385, 280, 225, 190]  # 3955 MJ m-2
NDVI_M = [0.40, 0.42, 0.48, 0.55, 0.62, 0.70, 0.78, 0.80, 0.72, 0.60, 0.50, 0.42]  # peak in August
PIXEL = {"y": [0.5], "x": [0.5]}


def months(values, start="2010-01-01") -> xr.DataArray:
    """(time, 1, 1) monthly series of one pixel from ``start``."""
    time = pd.date_range(start, periods=len(values), freq="MS")
    arr = np.asarray(values, dtype=np.float32).reshape(len(values), 1, 1)
    return xr.DataArray(arr, dims=("time", "y", "x"), coords={"time": time, **PIXEL})


def monthly_climate(t, p, eto, sol, start="2010-01-01") -> xr.Dataset:
    raw = {"temperature_c": t, "precipitation_mm": p, "eto_mm": eto, "solar_mj_m2": sol}
    return xr.Dataset({k: year_month(months(v, start)) for k, v in raw.items()})


def test_monthly_casa_on_one_pixel_by_hand():
    """12 months of T, P, ETo, solar and NDVI -> NPP, Rh and NEP of the year, by hand."""
    clim = monthly_climate(T_M, P_M, ETO_M, SOL_M)
    ndvi = year_month(months(NDVI_M))
    eps = xr.DataArray(np.array([[0.768]], np.float32), dims=("y", "x"), coords=PIXEL)
    ds = casa_monthly(ndvi, clim, eps, ndvi_min=0.023, ndvi_max=0.85, sr_min=1.05, sr_max=12.0)

    # T_opt: NDVI peaks in August (0.80), whose mean temperature is 24 degC
    assert float(ds["t_opt"][0, 0, 0]) == 24.0
    # W_e on the year's totals: P/ETo = 1145 / 818 = 1.399756;
    # AET/PET = 1 + 1.399756 - (1 + 1.399756^2.6)^(1/2.6) = 0.799144 -> W_e = 0.899572
    assert float(ds["w_e"][0, 0, 0]) == pytest.approx(0.899572, abs=1e-6)
    # July: FPAR_NDVI = (0.78 - 0.023) / (0.85 - 0.023) * 0.949 + 0.001             = 0.869674
    #       SR = 1.78 / 0.22 = 8.090909; FPAR_SR = (8.090909 - 1.05) / (12 - 1.05) * 0.949 + 0.001 = 0.611212
    #       FPAR = 0.740443; APAR = 510 * 0.740443 * 0.5                            = 188.8129
    #       T_e1 = 0.8 + 0.02 * 24 - 0.0005 * 24^2                                   = 0.992
    #       T_e2 = 1.1814 / (1 + e^(0.2 (24 - 10 - 25))) / (1 + e^(0.3 (-24 - 10 + 25)))  = 0.996579
    #       NPP = 188.8129 * 0.992 * 0.996579 * 0.899572 * 0.768                    = 128.9592
    assert float(ds["npp_month"][0, 6, 0, 0]) == pytest.approx(128.9592, rel=1e-5)
    # January: T = 5 < T_opt - 13, so T_e2 = T_e2(T_opt) / 2 = 0.519000; NPP = 8.8066
    assert float(ds["npp_month"][0, 0, 0, 0]) == pytest.approx(8.806587, rel=1e-5)
    # Rh in July: 0.22 * (e^(0.0913 * 25) + ln(0.3145 * 185 + 1)) * 30 * 0.465     = 42.6032
    assert float(ds["rh_month"][0, 6, 0, 0]) == pytest.approx(42.603178, rel=1e-6)
    # the year: the 12 months summed (each month as July above, written out in _by_hand)
    npp, rh = _monthly_by_hand(T_M, P_M, ETO_M, SOL_M, NDVI_M, 0.768, 0.023, 0.85, 1.05, 12.0)
    assert npp == pytest.approx(599.7440, rel=1e-6) and rh == pytest.approx(297.4407, rel=1e-6)
    assert float(ds["npp"][0, 0, 0]) == pytest.approx(npp, rel=1e-5)
    assert float(ds["rh"][0, 0, 0]) == pytest.approx(rh, rel=1e-5)
    assert float(ds["nep"][0, 0, 0]) == pytest.approx(npp - rh, rel=1e-4)  # 302.30 g C m-2 yr-1
    assert ds["npp"].attrs["units"] == "g C m-2 yr-1"


def _monthly_by_hand(t, p, eto, sol, ndvi, eps_max, ndvi_min, ndvi_max, sr_min, sr_max):
    """Monthly CASA and Pei et al. (2009) Rh of one pixel-year with math only."""
    t_opt = t[int(np.argmax(ndvi))]
    phi = sum(p) / sum(eto)
    w_e = 0.5 + 0.5 * (1 + phi - (1 + phi**2.6) ** (1 / 2.6))
    t_e1 = 0.8 + 0.02 * t_opt - 0.0005 * t_opt**2

    def t_e2(temp):
        return 1.1814 / (1 + math.exp(0.2 * (t_opt - 10 - temp))) / (1 + math.exp(0.3 * (-t_opt - 10 + temp)))

    npp = rh = 0.0
    for k in range(12):
        f_ndvi = (ndvi[k] - ndvi_min) / (ndvi_max - ndvi_min) * 0.949 + 0.001
        f_sr = ((1 + ndvi[k]) / (1 - ndvi[k]) - sr_min) / (sr_max - sr_min) * 0.949 + 0.001
        fpar = min(max(0.5 * f_ndvi + 0.5 * f_sr, 0.001), 0.95)
        stress = t_e2(t_opt) / 2 if (t[k] > t_opt + 10 or t[k] < t_opt - 13) else t_e2(t[k])
        npp += sol[k] * fpar * 0.5 * t_e1 * stress * w_e * eps_max
        rh += 0.22 * (math.exp(0.0913 * t[k]) + math.log(0.3145 * p[k] + 1)) * 30 * 0.465
    return npp, rh


def test_annual_steps_overstate_nep_against_the_months():
    """The same pixel-year and FPAR on one annual step: T_e1 T_e2 near 1 and Rh low."""
    clim = monthly_climate(T_M, P_M, ETO_M, SOL_M)
    eps = xr.DataArray(np.array([[0.768]], np.float32), dims=("y", "x"), coords=PIXEL)
    kw = {"ndvi_min": 0.023, "ndvi_max": 0.85, "sr_min": 1.05, "sr_max": 12.0}

    def year(values, how):
        return xr.DataArray(
            np.array([[[how(values)]]], np.float32), dims=("year", "y", "x"), coords={"year": [2010], **PIXEL}
        )

    ndvi_y = year([0.7], np.mean)  # the year's NDVI, the same FPAR for every month
    monthly = casa_monthly(ndvi_y, clim, eps, **kw)
    # T_opt = July (warmest, 25 degC); APAR-weighted T_e1 T_e2 of the months well below 1
    stress_m = float(monthly["t_stress_apar"][0, 0, 0])
    assert float(monthly["t_opt"][0, 0, 0]) == 25.0 and stress_m < 0.85
    t_y = year(T_M, np.mean)  # 15.4167 degC
    w_e = water_stress(budyko_fu_aet_ratio(year(P_M, np.sum), year(ETO_M, np.sum)))
    annual = casa_npp(ndvi_y, year(SOL_M, np.sum), t_y, w_e, eps, **kw)
    # one step: T = T_opt = 15.4167, T_e1 T_e2 = (0.8 + 0.308333 - 0.118837) * 0.991224 = 0.980812
    stress_a = float(annual["t_e1"][0, 0, 0] * annual["t_e2"][0, 0, 0])
    assert stress_a == pytest.approx(0.980812, abs=1e-5)
    # with FPAR constant, APAR of the year = sum of the months': NPP scales with the stresses
    ratio = float(annual["npp"][0, 0, 0] / monthly["npp"][0, 0, 0])
    assert ratio == pytest.approx(stress_a / stress_m, rel=1e-5) and ratio > 1.15
    rh_y = heterotrophic_respiration(t_y, year(P_M, np.sum), months_per_step=12)
    assert float(rh_y[0, 0, 0]) < 0.95 * float(monthly["rh"][0, 0, 0])  # exp() is convex
    nep_annual = float(annual["npp"][0, 0, 0] - rh_y[0, 0, 0])
    assert nep_annual > 1.3 * float(monthly["nep"][0, 0, 0])


def test_t_opt_per_year_from_the_month_of_peak_ndvi():
    # 2010 peaks in July (T 25), 2011 in September (T 21 + 1 = 22): one T_opt per year
    t = T_M + [v + 1 for v in T_M]
    ndvi = NDVI_M[:6] + [0.90] + NDVI_M[7:] + NDVI_M[:8] + [0.95] + NDVI_M[9:]
    t_ym = year_month(months(t))
    ndvi_ym = year_month(months(ndvi))
    t_opt = optimal_temperature_by_year(t_ym, ndvi_ym)
    assert t_opt.dims == ("year", "y", "x") and t_opt["year"].values.tolist() == [2010, 2011]
    assert t_opt.values.ravel().tolist() == [25.0, 22.0]
    # an annual NDVI has no month: the peak month is the warmest (July: 25, 26) or configured
    annual = xr.DataArray(
        np.full((2, 1, 1), 0.6, np.float32), dims=("year", "y", "x"), coords={"year": [2010, 2011], **PIXEL}
    )
    assert optimal_temperature_by_year(t_ym, annual).values.ravel().tolist() == [25.0, 26.0]
    assert optimal_temperature_by_year(t_ym, annual, peak_month=9).values.ravel().tolist() == [21.0, 22.0]
    with pytest.raises(ValueError, match="carbon.ndvi_peak_month"):
        optimal_temperature_by_year(t_ym, annual, peak_month=13)


def test_year_month_needs_twelve_months_per_year():
    series = months(list(range(18)))  # 2010-01 .. 2011-06
    ym = year_month(series, [2010], source="climate_monthly.nc")
    assert ym.dims == ("year", "month", "y", "x") and ym.values.ravel().tolist() == list(range(12))
    with pytest.raises(ValueError, match=r"climate_monthly.nc: year 2011 has 6 monthly step\(s\)"):
        year_month(series, [2010, 2011], source="climate_monthly.nc")


def test_fpar_endmembers_read_once_and_streamed_agree(monkeypatch):
    # dask input: the cube read once (exact percentiles) and, forced past the size limit, each
    # code streamed through the histogram (accurate to 2 / 2**17 in NDVI), on the same data
    import karstflow.carbon as carbon

    rng = np.random.default_rng(3)
    ndvi = xr.DataArray(
        rng.uniform(-0.2, 0.9, (3, 40, 50)), dims=("year", "y", "x"), coords={"year": [2001, 2002, 2003]}
    )
    ndvi[0, :5, :5] = np.nan
    lc = xr.DataArray(rng.integers(1, 5, (40, 50)).astype(float), dims=("y", "x"))
    lc[10, :] = np.nan
    exact = fpar_endmembers(ndvi.chunk({"y": 16, "x": 16}), lc.chunk({"y": 16, "x": 16}))
    by_numpy = [
        float(np.percentile(ndvi.values[:, lc.values == c][np.isfinite(ndvi.values[:, lc.values == c])], 95))
        for c in (1, 2, 3, 4)
    ]
    assert exact["code"].tolist() == [1, 2, 3, 4]
    assert exact["ndvi_max"].tolist() == pytest.approx(by_numpy, abs=1e-12)
    monkeypatch.setattr(carbon, "EXACT_ENDMEMBER_BYTES", 0)
    streamed = fpar_endmembers(ndvi.chunk({"y": 16, "x": 16}), lc.chunk({"y": 16, "x": 16}))
    assert streamed["n"].tolist() == exact["n"].tolist()
    assert streamed["ndvi_max"].tolist() == pytest.approx(exact["ndvi_max"].tolist(), abs=2e-5)
    assert streamed["sr_max"].tolist() == pytest.approx(exact["sr_max"].tolist(), rel=1e-3)


def test_fpar_endmembers_per_vegetation_type():
    # 20 forest pixel-years with NDVI 0.70, 0.71, ..., 0.89 and 20 cropland ones 0.30 .. 0.49
    forest = 0.70 + 0.01 * np.arange(20)
    crop = 0.30 + 0.01 * np.arange(20)
    ndvi = xr.DataArray(
        np.concatenate([forest, crop]).reshape(1, 2, 20),
        dims=("year", "y", "x"),
        coords={"year": [2010], "y": [0.5, 1.5], "x": np.arange(20.0)},
    )
    lc = xr.DataArray(
        np.array([[2.0] * 20, [1.0] * 20]), dims=("y", "x"), coords={"y": [0.5, 1.5], "x": np.arange(20.0)}
    )
    table = fpar_endmembers(ndvi, lc).set_index("code")
    # 95th percentile of 20 values (linear): rank 0.95 * 19 = 18.05 -> v18 + 0.05 (v19 - v18)
    assert table.loc[2, "ndvi_max"] == pytest.approx(0.88 + 0.05 * 0.01, abs=1e-9)  # 0.8805
    # SR of 0.88 and 0.89: 15.666667, 17.181818 -> 15.742424
    assert table.loc[2, "sr_max"] == pytest.approx(1.88 / 0.12 + 0.05 * (1.89 / 0.11 - 1.88 / 0.12), rel=1e-9)
    assert table.loc[1, "ndvi_max"] == pytest.approx(0.4805, abs=1e-9)
    assert (table["ndvi_min"] == 0.023).all() and (table["sr_min"] == 1.05).all()
    assert table.loc[2, "n"] == 20

    ndvi_max, sr_max = endmember_maps(lc, table.reset_index())
    fpar = fpar_from_ndvi(ndvi, 0.023, ndvi_max, sr_min=1.05, sr_max=sr_max)
    # a forest pixel at NDVI 0.75, by hand: FPAR_NDVI = (0.75 - 0.023) / (0.8805 - 0.023) * 0.949 + 0.001
    # = 0.805575; SR = 7, FPAR_SR = (7 - 1.05) / (15.742424 - 1.05) * 0.949 + 0.001 = 0.385317 -> 0.595446
    assert float(fpar[0, 0, 5]) == pytest.approx(0.595446, abs=2e-6)
    # the cropland pixel at the region's lowest NDVI (0.30) is not put at FPAR_min as the
    # region's pooled 5th percentile put it: FPAR_NDVI = (0.30 - 0.023) / (0.4805 - 0.023) * 0.949
    # + 0.001 = 0.575586; SR_max(crop) = 2.849925, FPAR_SR = (1.857143 - 1.05) / 1.799925 * 0.949
    # + 0.001 = 0.426561 -> FPAR 0.501074
    assert float(fpar[0, 1, 0]) == pytest.approx(0.501074, abs=2e-6)
    # a forest pixel's FPAR does not depend on the other types in its region
    alone = fpar_endmembers(ndvi.isel(y=[0]), lc.isel(y=[0]))
    assert alone["ndvi_max"].tolist() == [table.loc[2, "ndvi_max"]]
    # a type without a vegetation signal (95th percentile <= NDVI_min) gets FPAR_min
    water = fpar_from_ndvi(
        ndvi.isel(y=[0]),
        0.023,
        xr.full_like(ndvi_max.isel(y=[0]), 0.01),
        sr_min=1.05,
        sr_max=xr.full_like(sr_max.isel(y=[0]), 1.02),
    )
    np.testing.assert_allclose(water.values, 0.001, rtol=1e-5)


def test_casa_is_lazy_and_equal_on_dask():
    rng = np.random.default_rng(0)
    shape = (6, 20, 30)
    coords = {"year": np.arange(2000, 2006), "y": np.arange(20.0), "x": np.arange(30.0)}

    def da(v):
        return xr.DataArray(v.astype(np.float32), dims=("year", "y", "x"), coords=coords)

    ndvi = da(rng.uniform(0.05, 0.85, shape))
    ndvi[2, 3, 4] = np.nan
    temp, sol = da(rng.uniform(5, 25, shape)), da(rng.uniform(3000, 5000, shape))
    w = da(rng.uniform(0.6, 1.0, shape))
    eps = xr.DataArray(np.full((20, 30), 0.5, np.float32), dims=("y", "x"), coords={"y": coords["y"], "x": coords["x"]})
    eager = casa_npp(ndvi, sol, temp, w, eps, ndvi_min=0.1, ndvi_max=0.8)
    chunks = {"year": -1, "y": 7, "x": 11}
    lazy = casa_npp(
        ndvi.chunk(chunks), sol.chunk(chunks), temp.chunk(chunks), w.chunk(chunks), eps, ndvi_min=0.1, ndvi_max=0.8
    )
    assert lazy["npp"].chunks is not None
    xr.testing.assert_allclose(lazy.compute(), eager)
    assert np.isnan(eager["npp"][2, 3, 4])


def test_fpar_is_clipped_and_nan_aware():
    v = xr.DataArray(np.array([-0.5, 0.0, 0.1, 0.8, 0.95, np.nan], np.float32))
    f = fpar_from_ndvi(v, 0.1, 0.8).values
    np.testing.assert_allclose(f[:3], 0.001, rtol=1e-5)  # at or below NDVI_min: FPAR_min
    np.testing.assert_allclose(f[3:5], 0.95, rtol=1e-6)  # at or above NDVI_max: FPAR_max
    assert np.isnan(f[5])
    with pytest.raises(ValueError, match="NDVI_min < NDVI_max"):
        fpar_from_ndvi(v, 0.8, 0.1)


def test_temperature_stress_far_from_optimum_is_half_the_optimum_value():
    t_opt = xr.DataArray(np.array([20.0, 20.0, 20.0, 20.0]))
    t = xr.DataArray(np.array([31.0, 6.0, 25.0, -12.0]))
    t_e1, t_e2 = temperature_stress(t, t_opt)
    at_opt = 1.1814 / (1 + math.exp(-2)) / (1 + math.exp(-3))
    assert float(t_e2[0]) == pytest.approx(at_opt / 2, rel=1e-6)  # T > T_opt + 10
    assert float(t_e2[1]) == pytest.approx(at_opt / 2, rel=1e-6)  # T < T_opt - 13
    expected = 1.1814 / (1 + math.exp(0.2 * (20 - 10 - 25))) / (1 + math.exp(0.3 * (-20 - 10 + 25)))
    assert float(t_e2[2]) == pytest.approx(expected, rel=1e-6)
    assert float(t_e1[3]) == 0.0  # T <= -10 degC
    assert float(t_e1[2]) == pytest.approx(1.0)


def test_budyko_fu_limits_and_value():
    p = xr.DataArray(np.array([0.0, 500.0, 1e6, 100.0]))
    pet = xr.DataArray(np.array([1000.0, 1000.0, 1000.0, 0.0]))
    r = budyko_fu_aet_ratio(p, pet, omega=2.6).values
    assert r[0] == pytest.approx(0.0, abs=1e-7)  # no rain, no ET
    # P/PET = 0.5: 1 + 0.5 - (1 + 0.5^2.6)^(1/2.6)
    assert r[1] == pytest.approx(1.5 - (1 + 0.5**2.6) ** (1 / 2.6), rel=1e-6)
    assert r[2] == pytest.approx(1.0, abs=1e-4)  # energy-limited
    assert r[3] == 1.0  # no demand: no stress


def test_heterotrophic_respiration_by_hand():
    t = xr.DataArray(np.array([18.0]))
    p = xr.DataArray(np.array([1200.0]))
    # monthly: T = 18, R = 1200 / 12 = 100 mm
    # 0.22 * (e^(0.0913 * 18) + ln(0.3145 * 100 + 1)) * 30 * 0.465 = 26.5543 g C m-2 month-1
    rh_year = heterotrophic_respiration(t, p, months_per_step=12)
    assert float(rh_year[0]) == pytest.approx(12 * 26.554300, rel=1e-6)
    rh_month = heterotrophic_respiration(t, xr.DataArray(np.array([100.0])), months_per_step=1)
    assert float(rh_month[0]) == pytest.approx(26.554300, rel=1e-6)
    assert rh_year.attrs["units"] == "g C m-2 per step"


POOLS = pd.DataFrame(
    {
        "lucode": [1, 2, 9],
        "lulc_name": ["cultivated", "forest", "rock"],
        "c_above": [5.0, 60.0, 0.5],
        "c_below": [1.0, 15.0, 0.2],
        "c_soil": [55.0, 100.0, 8.0],
        "c_dead": [0.0, 5.0, 0.0],
    }
)


def test_invest_carbon_storage_by_hand():
    lc = xr.DataArray(np.array([[1, 2], [9, np.nan]], np.float32), dims=("y", "x"))
    density = carbon_storage(lc, POOLS)
    # cultivated 5 + 1 + 55 + 0 = 61; forest 60 + 15 + 100 + 5 = 180; rock 0.5 + 0.2 + 8 = 8.7
    np.testing.assert_allclose(density.values, [[61.0, 180.0], [8.7, np.nan]], rtol=1e-6)
    assert density.attrs["units"] == "Mg C ha-1"
    # 30 m pixels: 0.09 ha each -> (61 + 180 + 8.7) * 0.09 Mg C
    assert storage_total_mg(density, 0.09) == pytest.approx(249.7 * 0.09, rel=1e-6)


def test_carbon_storage_names_missing_codes_and_columns():
    lc = xr.DataArray(np.array([[1, 5]], np.float32), dims=("y", "x"))
    with pytest.raises(ValueError, match=r"landcover_2000.tif: land-cover code\(s\) \[5\]"):
        carbon_storage(lc, POOLS, source="landcover_2000.tif")
    with pytest.raises(ValueError, match="missing column"):
        read_carbon_pools(POOLS.drop(columns="c_dead"), source="pools.csv")


def test_epsilon_max_and_landcover_by_year():
    a = xr.DataArray(np.array([[1.0, 2.0]]), dims=("y", "x"))
    b = xr.DataArray(np.array([[2.0, 2.0]]), dims=("y", "x"))
    lc = landcover_by_year({2000: a, 2010: b}, [2000, 2004, 2005, 2006, 2010])
    # nearest map; 2005 is a tie and takes the earlier one
    assert lc.sel(year=2005).values.tolist() == [[1.0, 2.0]]
    assert lc.sel(year=2006).values.tolist() == [[2.0, 2.0]]
    eps = epsilon_max_map(lc, {"1": 0.542, "2": 0.768})
    np.testing.assert_allclose(eps.sel(year=2004).values, [[0.542, 0.768]], rtol=1e-6)


def test_landcover_bracket_weights_the_later_map_linearly_between_maps():
    """Between two maps the class is known only to change in some year between them: the
    weight of the later map grows linearly (the expectation over a uniform change year), so
    a changed pixel has no step at the interval's midpoint, as the nearest map gives."""
    a = xr.DataArray(np.array([[1.0, 2.0]]), dims=("y", "x"))
    b = xr.DataArray(np.array([[2.0, 2.0]]), dims=("y", "x"))
    c = xr.DataArray(np.array([[3.0, 3.0]]), dims=("y", "x"))
    years = [1998, 2000, 2004, 2010, 2015, 2020, 2022]
    before, after, w = landcover_bracket({2000: a, 2010: b, 2020: c}, years)
    np.testing.assert_allclose(w.values, [0, 0, 0.4, 0, 0.5, 0, 0])
    assert before.sel(year=2004).values.tolist() == [[1.0, 2.0]] and after.sel(year=2004).values.tolist() == [
        [2.0, 2.0]
    ]
    assert before.sel(year=2015).values.tolist() == [[2.0, 2.0]] and after.sel(year=2015).values.tolist() == [
        [3.0, 3.0]
    ]
    # outside the span and on a map year both sides are that map
    for y, m in ((1998, a), (2010, b), (2022, c)):
        assert before.sel(year=y).values.tolist() == after.sel(year=y).values.tolist() == m.values.tolist()
    # a parameter blended by hand: epsilon_max 0.542 -> 0.768 over 2000-2010, 2004 at w = 0.4
    e0 = epsilon_max_map(before, {"1": 0.542, "2": 0.768, "3": 0.475})
    e1 = epsilon_max_map(after, {"1": 0.542, "2": 0.768, "3": 0.475})
    blended = e0 * (1 - w) + e1 * w
    assert float(blended.sel(year=2004)[0, 0]) == pytest.approx(0.6 * 0.542 + 0.4 * 0.768, rel=1e-6)
    with pytest.raises(ValueError, match="no land-cover maps"):
        landcover_bracket({}, years)


def test_non_vegetation_codes_borrow_a_vegetation_types_endmembers():
    table = pd.DataFrame(
        {
            "code": [6, 9],
            "n": [10, 10],
            "ndvi_min": [0.023, 0.023],
            "ndvi_max": [0.634, 0.32],
            "sr_min": [1.05, 1.05],
            "sr_max": [4.46, 1.94],
        }
    )
    out = borrow_endmembers(table, {"8": 6, "9": 6}, key="carbon.fpar.endmembers_of")
    row = out.set_index("code").loc[9]
    # bare rock's own 95th percentile (0.32) would put FPAR near 0.95 on sparse plants; it
    # takes grassland's: an NDVI of 0.3 gives (0.3 - 0.023) / (0.634 - 0.023) x 0.949 + 0.001
    assert row["ndvi_max"] == 0.634 and row["sr_max"] == 4.46 and 8 not in out["code"].tolist()
    fpar = fpar_from_ndvi(
        xr.DataArray([0.3]), ndvi_min=0.023, ndvi_max=row["ndvi_max"], sr_min=1.05, sr_max=row["sr_max"]
    )
    sr = 1.3 / 0.7
    by_hand = 0.5 * ((0.3 - 0.023) / (0.634 - 0.023) * 0.949 + 0.001) + 0.5 * (
        (sr - 1.05) / (4.46 - 1.05) * 0.949 + 0.001
    )
    assert float(fpar[0]) == pytest.approx(by_hand, rel=1e-5)
    with pytest.raises(ValueError, match=r"carbon.fpar.endmembers_of: code 9 takes the end-members of code 5"):
        borrow_endmembers(table, {9: 5}, key="carbon.fpar.endmembers_of")


def _two_map_region():
    """A 2 x 3 px region, 2000-2003, land-cover maps of 2000 and 2003: pixel (1, 2) turns from
    code 2 to 6 in an unobserved year; code 9 (bare rock) takes code 6's end-members."""
    coords = {"y": [1.5, 0.5], "x": [0.5, 1.5, 2.5]}
    lc2000 = xr.DataArray(np.array([[2, 2, 6], [6, 9, 2]], np.float32), dims=("y", "x"), coords=coords)
    lc2003 = lc2000.copy(data=np.array([[2, 2, 6], [6, 9, 6]], np.float32))
    ndvi = np.zeros((4, 2, 3), np.float32)
    ndvi[:, 0, 0] = [0.60, 0.61, 0.62, 0.63]
    ndvi[:, 0, 1] = [0.64, 0.65, 0.66, 0.67]
    ndvi[:, 0, 2] = [0.40, 0.41, 0.42, 0.43]
    ndvi[:, 1, 0] = [0.44, 0.45, 0.46, 0.47]
    ndvi[:, 1, 1] = [0.05, 0.06, 0.07, 0.08]
    ndvi[:, 1, 2] = [0.90, 0.99, 0.99, 0.10]  # 2001-2002: class unknown, must not count
    cube = xr.DataArray(ndvi, dims=("year", "y", "x"), coords={"year": [2000, 2001, 2002, 2003], **coords})
    return cube, {2000: lc2000, 2003: lc2003}


def test_region_endmembers_pool_the_pixel_years_of_known_class_by_hand():
    cube, maps = _two_map_region()
    table = landcover_endmembers(cube, maps, percentile=95.0, endmembers_of={"9": 6}).set_index("code")
    assert table.index.tolist() == [2, 6, 9]
    # code 2: 8 pixel-years 0.60..0.67 and (1, 2) in 2000 (0.90; both its maps say 2 then);
    # 95th percentile of 9 values (linear): rank 0.95 * 8 = 7.6 -> 0.67 + 0.6 (0.90 - 0.67) = 0.808
    assert table.loc[2, "n"] == 9 and table.loc[2, "ndvi_max"] == pytest.approx(0.808, abs=1e-6)
    # SR of 0.67 and 0.90: 1.67 / 0.33 = 5.060606, 1.9 / 0.1 = 19 -> 5.060606 + 0.6 x 13.939394
    assert table.loc[2, "sr_max"] == pytest.approx(1.67 / 0.33 + 0.6 * (19 - 1.67 / 0.33), rel=1e-5)
    # code 6: 0.40..0.47 and (1, 2) in 2003 (0.10) -> rank 7.6: 0.46 + 0.6 x 0.01 = 0.466
    assert table.loc[6, "n"] == 9 and table.loc[6, "ndvi_max"] == pytest.approx(0.466, abs=1e-6)
    # bare rock keeps its own count but takes code 6's end-members (its own would be 0.0785)
    assert table.loc[9, "n"] == 4 and table.loc[9, "ndvi_max"] == table.loc[6, "ndvi_max"]
    assert table.loc[9, "sr_max"] == table.loc[6, "sr_max"]
    assert (table["ndvi_min"] == 0.023).all() and (table["sr_min"] == 1.05).all()
    # a region-wide figure: the upper row alone (one tile) gives code 2 another end-member
    tile = landcover_endmembers(cube.isel(y=[0]), {y: m.isel(y=[0]) for y, m in maps.items()})
    # 8 values 0.60..0.67: rank 0.95 x 7 = 6.65 -> 0.66 + 0.65 x 0.01
    assert tile.set_index("code").loc[2, "ndvi_max"] == pytest.approx(0.6665, abs=1e-6)


def test_endmember_record_round_trips_exactly_and_refuses_a_stale_file():
    cube, maps = _two_map_region()
    fpar = {"max_percentile": 95, "ndvi_min": 0.023, "sr_min": 1.05, "endmembers_of": {9: 6}}
    settings = endmembers_settings(fpar)
    assert settings == {"percentile": 95.0, "ndvi_min": 0.023, "sr_min": 1.05, "endmembers_of": {"9": 6}}
    table = landcover_endmembers(cube, maps, endmembers_of=fpar["endmembers_of"])
    record = json.loads(json.dumps(endmembers_record(table, **settings)))  # through a JSON file
    back = endmembers_from_record(record, source="fpar_endmembers.json", expect=settings)
    pd.testing.assert_frame_equal(back, table)  # every digit: untiled and tiled read the same table
    with pytest.raises(ValueError, match=r"fpar_endmembers.json: computed with percentile 95.0, the config.*90.0"):
        endmembers_from_record(record, source="fpar_endmembers.json", expect={**settings, "percentile": 90.0})
    del record["endmembers"][0]["sr_max"]
    with pytest.raises(ValueError, match=r"fpar_endmembers.json: expected 'endmembers'"):
        endmembers_from_record(record, source="fpar_endmembers.json")


# --------------------------------------------------------------------------------------
# rule carbon_npp on tiles: the region's end-members, the untiled pixels
# --------------------------------------------------------------------------------------


def _npp_inputs(folder):
    """A 32 x 16 px region (two 16 px tiles, one above the other), 2000-2003, monthly climate,
    land-cover maps of 2000 and 2003 (forest west, grassland east, a block turning from forest
    to grassland)."""
    grid = RegionGrid.from_bounds("EPSG:32648", 30.0, (600000.0, 2799360.0, 600480.0, 2800320.0))
    rng = np.random.default_rng(14)
    years = [2000, 2001, 2002, 2003]
    # NDVI rising to the east and south, so a percentile per tile would differ from the region's
    ramp = np.add.outer(np.linspace(0.0, 0.2, 32), np.linspace(0.0, 0.25, 16))
    ndvi = (0.35 + ramp + rng.normal(0, 0.03, (4, 32, 16))).astype(np.float32)
    ndvi[1, 3, 5] = np.nan
    cube = xr.Dataset({"ndvi": (("year", "y", "x"), ndvi)}, coords={"year": years, **grid.coords()})
    write_netcdf(on_grid(cube, grid), folder / "ndvi_annual.nc")
    months = pd.date_range("2000-01-01", periods=48, freq="MS")
    season = np.sin((months.month.values - 4) / 12 * 2 * np.pi)[:, None, None]
    field = rng.normal(0, 1, (48, 32, 16))
    climate = xr.Dataset(
        {
            "temperature_c": (("time", "y", "x"), 16 + 9 * season + 0.5 * field, {"units": "degC"}),
            "precipitation_mm": (("time", "y", "x"), 100 + 80 * season + 5 * field, {"units": "mm month-1"}),
            "solar_mj_m2": (("time", "y", "x"), 380 + 120 * season + 4 * field, {"units": "MJ m-2 month-1"}),
            "eto_mm": (("time", "y", "x"), 80 + 40 * season + 2 * field, {"units": "mm month-1"}),
        },
        coords={"time": months, **grid.coords()},
    )
    write_netcdf(on_grid(climate, grid), folder / "climate_monthly.nc")
    lc = np.where(np.arange(16)[None, :] < 8, 2, 6) * np.ones((32, 1))
    later = lc.copy()
    later[4:12, 2:8] = 6
    for year, codes in ((2000, lc), (2003, later)):
        write_raster(grid.data_array(codes.astype(np.uint8)), folder / f"landcover_{year}.tif", dtype="uint8", nodata=0)
    write_json(grid.to_dict(), folder / "grid.json")
    inputs = {
        "cube": folder / "ndvi_annual.nc",
        "climate": folder / "climate_monthly.nc",
        "landcover_2000": folder / "landcover_2000.tif",
        "landcover_2003": folder / "landcover_2003.tif",
        "grid": folder / "grid.json",
    }
    params = {
        "epsilon_max": {"2": 0.768, "6": 0.542},
        "fpar": {
            "max_percentile": 95,
            "ndvi_min": 0.023,
            "sr_min": 1.05,
            "min": 0.001,
            "max": 0.95,
            "ndvi_weight": 0.5,
            "endmembers_of": {},
        },
        "fu_omega": 2.6,
        "rh_model": "pei2009",
        "time_step": "monthly",
        "ndvi_peak_month": "warmest",
        "landcover_years": [2000, 2003],
        "alpha": 0.05,
        "min_valid_years": None,
        "autocorrelation": "none",
        "stable_slope": 0.0,
        "chunk_px": 16,
    }
    return grid, inputs, params


def test_carbon_npp_on_tiles_gives_the_untiled_pixels(tmp_path):
    scripts = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
    grid, inputs, params = _npp_inputs(tmp_path)
    call_script(
        scripts / "carbon_npp_endmembers.py",
        input=inputs,
        output={"endmembers": tmp_path / "fpar_endmembers.json"},
        params={k: params[k] for k in ("fpar", "landcover_years", "chunk_px")},
        wildcards={"region": "r1"},
    )
    inputs["endmembers"] = tmp_path / "fpar_endmembers.json"
    record = read_json(inputs["endmembers"])
    # 256 px of each code; the 48 px block that changed class counts for code 2 in 2000 and
    # for code 6 in 2003 only (the class of 2001-2002 is unknown); one NDVI value is missing
    assert {r["code"]: r["n"] for r in record["endmembers"]} == {2: 4 * 256 - 3 * 48 - 1, 6: 4 * 256 + 48}
    names = {"npp": "npp_annual.nc", "slope": "npp_trend_slope.tif", "trend_class": "npp_trend_class.tif"}
    whole = {k: tmp_path / "region" / v for k, v in names.items()}
    call_script(scripts / "carbon_npp.py", input=inputs, output=whole, params=params, wildcards={"region": "r1"})
    region = read_cube(whole["npp"]).load()
    main = load_script(scripts / "carbon_npp.py").main
    tiles = plan_tiles(grid, 16)
    assert len(tiles) == 2
    for tile in tiles:
        out = {k: tmp_path / tile.id / v for k, v in names.items()}
        for p in out.values():
            p.parent.mkdir(exist_ok=True)
        run_tile(
            main,
            Files({k: str(v) for k, v in inputs.items()}),
            Files({k: str(v) for k, v in out.items()}),
            Params(params),
            Params({"region": "r1", "tile": tile.id}),
            1,
            {"tile_px": 16, "halo_px": 0},
        )
        part = read_cube(out["npp"]).load()
        # the mosaic's condition: every tile carries the region's attributes (end-members included)
        assert part.attrs == region.attrs
        window = region.isel(tile.window.slices)
        for var in ("npp", "rh", "nep", "t_opt", "t_stress_apar"):
            np.testing.assert_array_equal(part[var].values, window[var].values, err_msg=f"{tile.id} {var}")
        for key in ("slope", "trend_class"):
            a = read_raster(out[key], masked=False).values
            b = read_raster(whole[key], masked=False).values[tile.window.slices["y"], tile.window.slices["x"]]
            np.testing.assert_array_equal(a, b, err_msg=f"{tile.id} {key}")

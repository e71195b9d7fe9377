"""karstflow.carbon: CASA on one pixel by hand, Rh (Pei et al. 2009) by hand, InVEST storage."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from karstflow.carbon import (
    budyko_fu_aet_ratio,
    carbon_storage,
    casa_npp,
    epsilon_max_map,
    fpar_from_ndvi,
    heterotrophic_respiration,
    landcover_by_year,
    read_carbon_pools,
    storage_total_mg,
    temperature_stress,
    water_stress,
)


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

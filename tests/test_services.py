"""karstflow.services: every service formula against a hand calculation on a few pixels,
the flow routing on planes whose answer is known, and the bad inputs of the issue."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from karstflow.grid import RegionGrid
from karstflow.services import (
    annual_water_yield,
    c_factor_from_cover,
    check_biophysical_table,
    climate_of_year,
    flow_routing,
    habitat_degradation,
    habitat_quality,
    half_saturation_auto,
    k_factor_epic,
    ls_factor,
    r_factor,
    reclassify,
    rusle,
    threat_proximity,
)

# --------------------------------------------------------------------------------------
# RUSLE factors
# --------------------------------------------------------------------------------------


def test_r_factor_renard_freimund_by_hand():
    r = r_factor(np.array([800.0, 1200.0, 0.0]))
    # P = 800 <= 850: 0.0483 * 800^1.61 = 0.0483 * e^(1.61 * 6.684612) = 0.0483 * 47203.6 = 2279.93
    assert r[0] == pytest.approx(2279.93, rel=1e-5)
    # P = 1200 > 850: 587.8 - 1.219 * 1200 + 0.004105 * 1200^2 = 587.8 - 1462.8 + 5911.2 = 5036.2
    assert r[1] == pytest.approx(5036.2, rel=1e-9)
    assert r[2] == 0.0
    # the two fitted branches nearly meet at 850 mm: 2513.69 and 2517.51 (0.15 % apart)
    lo, hi = r_factor(np.array([850.0, 850.0 + 1e-9]))
    assert (lo, hi) == pytest.approx((2513.69, 2517.51), abs=0.01)
    # power form: 0.5 * 1000^1.2 = 0.5 * 3981.07 = 1990.54
    assert r_factor(np.array([1000.0]), method="power", a=0.5, b=1.2)[0] == pytest.approx(1990.536, rel=1e-6)
    with pytest.raises(ValueError, match="needs a > 0 and b > 0"):
        r_factor(np.array([1000.0]), method="power")


def test_k_factor_epic_by_hand():
    # SAN 20, SIL 35, CLA 45, C 2 %:
    # f_csand  = 0.2 + 0.3 exp(-0.0256 * 20 * 0.65)         = 0.2 + 0.3 * 0.716918 = 0.415075
    # f_cl-si  = (35 / 80)^0.3                               = 0.780375
    # f_orgc   = 1 - 0.25 * 2 / (2 + exp(3.72 - 5.9))        = 1 - 0.5 / 2.113042  = 0.763374
    # f_hisand = 1 - 0.7 * 0.8 / (0.8 + exp(-5.51 + 18.32))  = 0.9999985
    # K = 0.415075 * 0.780375 * 0.763374 * 0.9999985 * 0.1317 = 0.032565
    k = k_factor_epic(np.array([20.0]), np.array([35.0]), np.array([45.0]), np.array([2.0]))
    assert k[0] == pytest.approx(0.032565, rel=1e-4)
    # a sandy soil (SAN 80, SIL 10, CLA 10, C 0.5): the high-sand term bites
    # f_csand = 0.2 + 0.3 exp(-0.0256 * 80 * 0.9) = 0.2 + 0.3 * 0.158...; SN1 = 0.2:
    # f_hisand = 1 - 0.14 / (0.2 + exp(-0.93)) = 1 - 0.14 / 0.594554 = 0.764531
    sandy = k_factor_epic(np.array([80.0]), np.array([10.0]), np.array([10.0]), np.array([0.5]))
    f_csand = 0.2 + 0.3 * math.exp(-0.0256 * 80 * 0.9)
    f_clsi = 0.5**0.3
    f_orgc = 1 - 0.25 * 0.5 / (0.5 + math.exp(3.72 - 1.475))
    assert sandy[0] == pytest.approx(f_csand * f_clsi * f_orgc * 0.764531 * 0.1317, rel=1e-5)
    with pytest.raises(ValueError, match=r"sand \+ silt \+ clay must be 100"):
        k_factor_epic(np.array([50.0]), np.array([30.0]), np.array([40.0]), np.array([1.0]))


def test_ls_factor_unit_plot_is_one():
    # The USLE unit plot: 22.13 m long, 9 % slope. One 22.13 m cell with no upslope area,
    # facing north (x = |sin 0| + |cos 0| = 1): L = D^(2m+2) / (D^(m+2) 22.13^m) = 1;
    # S = 16.8 sin(atan 0.09) - 0.5 = 1.00591.
    slope = math.degrees(math.atan(0.09))
    ls = ls_factor(np.array([slope]), np.array([0.0]), np.array([1.0]), cell_size_m=22.13)
    assert ls[0] == pytest.approx(1.00591, abs=1e-5)


def test_ls_factor_desmet_govers_by_hand():
    # 20 deg facing 30 deg, 9 cells upslope (accumulation 10), D = 30 m:
    # pct = 36.4 % -> S = 16.8 sin 20 - 0.5 = 5.245938
    # beta = (0.342020 / 0.0896) / (3 * 0.342020^0.8 + 0.56) = 2.084033, m = beta / (1 + beta) = 0.675749
    # A = sqrt(9 * 900) = 90 m (InVEST 3.14+: square root of the catchment area)
    # x = |sin 30| + |cos 30| = 1.366025
    # L = (990^1.675749 - 90^1.675749) / (30^2.675749 * 1.366025^0.675749 * 22.13^0.675749)
    #   = (104696.8 - 1882.87) / (8962.02 * 1.234628 * 8.107188) = 102813.96 / 89704.15 = 1.146145
    # LS = 1.146145 * 5.245938 = 6.0126
    ls = ls_factor(np.array([20.0]), np.array([30.0]), np.array([10.0]), cell_size_m=30.0)
    assert ls[0] == pytest.approx(6.0126, rel=1e-4)
    # the aspect term is symmetric: 30, 150, 210 and 330 deg give the same x
    same = ls_factor(np.full(4, 20.0), np.array([150.0, 210.0, 330.0, 60.0]), np.full(4, 10.0), cell_size_m=30.0)
    assert same == pytest.approx(np.full(4, 6.0126), rel=1e-4)
    # m from the slope table: 4 deg (6.99 %) -> m = 0.5, S = 10.8 sin 4 + 0.03 = 0.783370;
    # east-facing (x = 1), A = sqrt(3 * 100) = 17.3205:
    # L = (117.3205^1.5 - 17.3205^1.5) / (10^2.5 * 22.13^0.5) = (1270.752 - 72.084) / 1487.616 = 0.805765
    ls4 = ls_factor(np.array([4.0]), np.array([90.0]), np.array([4.0]), cell_size_m=10.0)
    assert ls4[0] == pytest.approx(0.783370 * 0.805765, rel=1e-5)
    # 0.3 deg (0.52 %) -> m = 0.2; flat aspect (-1) counts as x = 1
    a = math.sqrt(300.0)
    l02 = ((a + 100) ** 1.2 - a**1.2) / (10**2.2 * 22.13**0.2)
    ls03 = ls_factor(np.array([0.3]), np.array([-1.0]), np.array([4.0]), cell_size_m=10.0)
    assert ls03[0] == pytest.approx((10.8 * math.sin(math.radians(0.3)) + 0.03) * l02, rel=1e-9)
    # L is capped at l_max
    capped = ls_factor(np.array([20.0]), np.array([0.0]), np.array([1e12]), cell_size_m=30.0, l_max=122.0)
    assert capped[0] == pytest.approx(122.0 * 5.245938, rel=1e-6)


def test_c_factor_from_vegetation_cover_by_hand():
    c = c_factor_from_cover(np.array([0.0, 0.1, 0.5, 0.78, 0.9, np.nan]))
    # f = 10 %: 0.6508 - 0.3436 * 1 = 0.3072; 50 %: 0.6508 - 0.3436 * 1.69897 = 0.067034
    assert c[:3] == pytest.approx([1.0, 0.3072, 0.067034], abs=1e-6)
    # 78 %: 0.6508 - 0.3436 * 1.892095 = 0.000676, just below the 78.3 % where C reaches 0
    assert c[3] == pytest.approx(0.000676, abs=1e-6)
    assert c[4] == 0.0 and np.isnan(c[5])


def test_rusle_potential_actual_retention():
    r, k, ls = np.array([5000.0]), np.array([0.03]), np.array([2.0])
    out = rusle(r, k, ls, np.array([0.2]), np.array([0.5]))
    # potential 5000 * 0.03 * 2 = 300 t/ha/yr; actual 300 * 0.2 * 0.5 = 30; retention 270
    assert (out.potential[0], out.actual[0], out.retention[0]) == pytest.approx((300.0, 30.0, 270.0))
    with pytest.raises(ValueError, match="C factor"):
        rusle(r, k, ls, np.array([1.5]), np.array([1.0]))


# --------------------------------------------------------------------------------------
# flow routing (pysheds)
# --------------------------------------------------------------------------------------


def _grid_da(values: np.ndarray, res: float = 30.0) -> xr.DataArray:
    grid = RegionGrid.from_bounds("EPSG:32648", res, (0, 0, values.shape[1] * res, values.shape[0] * res))
    return grid.data_array(values.astype(np.float64))


def test_flow_routing_on_an_east_tilted_plane():
    # Elevation falls 10 m per column eastwards. Every cell sends its water to its three
    # eastern neighbours (E 0.414, NE and SE 0.293 each: drop / distance, 10/30 and
    # 10/42.4, normalised), so away from the north and south edges each column passes on
    # all it holds and the accumulation grows by one cell per column: 1, 2, 3, ...
    z = np.tile(np.arange(8, 0, -1, dtype=float) * 10.0, (15, 1))
    routing = flow_routing(_grid_da(z))
    acc = routing.flow_accumulation
    # the edges reach one row further per column, so the middle row (7) is exact up to column 7
    assert acc[7, :7] == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    # the north edge has no north-east neighbour: its cells split between E and SE only, so
    # (0, 1) gets E of (0, 0), w_e / (w_e + w_d), and NE of (1, 0), p_d
    w_e, w_d = (10 / 30), (10 / math.hypot(30, 30))
    p_d = w_d / (w_e + 2 * w_d)
    assert acc[0, 1] == pytest.approx(1 + w_e / (w_e + w_d) + p_d, rel=1e-9)
    assert np.array_equal(routing.filled_dem, z)  # nothing to fill


def test_flow_routing_fills_a_pit():
    z = np.tile(np.arange(5, 0, -1, dtype=float) * 10.0, (5, 1))
    z[2, 2] = 0.0  # a one-cell pit
    routing = flow_routing(_grid_da(z))
    assert routing.filled_dem[2, 2] >= 20.0 - 1e-6  # raised to its pour point
    assert np.isfinite(routing.flow_accumulation).all()
    assert routing.flow_accumulation.max() <= z.size + 1e-9


# --------------------------------------------------------------------------------------
# water yield (InVEST annual water yield)
# --------------------------------------------------------------------------------------


def test_annual_water_yield_by_hand():
    out = annual_water_yield(
        precip_mm=np.array([1200.0, 1200.0, 1000.0, 500.0]),
        eto_mm=np.array([1000.0, 1000.0, 1200.0, 600.0]),
        kc=np.array([0.8, 0.3, 1.0, 1.0]),
        root_depth_mm=np.array([2500.0, 1.0, 5000.0, 5000.0]),
        soil_depth_mm=np.array([400.0, 400.0, 1000.0, 1000.0]),
        pawc=np.array([0.11, 0.11, 0.16, 0.15]),
        z=5.0,
        vegetated=np.array([1, 0, 1, 1]),
    )
    # Pixel 1, vegetated: AWC = min(2500, 400) * 0.11 = 44 mm; w = 5 * 44 / 1200 + 1.25 = 1.433333
    # PET = 800, PET/P = 0.666667; AET/P = 1 + 0.666667 - (1 + 0.666667^1.433333)^(1/1.433333)
    #       = 1.666667 - 1.55923^0.697674 = 1.666667 - 1.363302 = 0.303365 (< PET/P)
    # AET = 364.04 mm, yield = 1200 - 364.04 = 835.96 mm
    assert out.w[0] == pytest.approx(1.433333, rel=1e-6)
    assert out.aet_mm[0] == pytest.approx(364.04, abs=0.01)
    assert out.water_yield_mm[0] == pytest.approx(835.96, abs=0.01)
    # Pixel 2, not vegetated: AET = min(0.3 * 1000, 1200) = 300, yield 900; no Budyko w
    assert out.aet_mm[1] == pytest.approx(300.0) and out.water_yield_mm[1] == pytest.approx(900.0)
    assert np.isnan(out.w[1])
    # Pixel 3, PET > P: AWC = 160, w = 5 * 160 / 1000 + 1.25 = 2.05; PET/P = 1.2
    # AET/P = 2.2 - (1 + 1.2^2.05)^(1/2.05) = 2.2 - 2.453196^0.487805 = 2.2 - 1.549218 = 0.650782
    assert out.water_yield_mm[2] == pytest.approx(1000 * (1 - 0.650782), abs=0.01)
    # Pixel 4: w = 5 * 150 / 500 + 1.25 = 2.75 (under the cap); with Z = 30, w = 10.25 -> capped at 5
    capped = annual_water_yield(np.array([500.0]), np.array([600.0]), np.array([1.0]), np.array([5000.0]),
                                np.array([1000.0]), np.array([0.15]), 30.0, np.array([1]))
    assert capped.w[0] == 5.0
    # AET/P = 2.2 - (1 + 1.2^5)^(1/5) = 2.2 - 3.48832^0.2 = 2.2 - 1.283877 = 0.916123
    assert capped.aet_mm[0] == pytest.approx(500 * (1 + 1.2 - (1 + 1.2**5) ** 0.2), rel=1e-9)
    assert capped.aet_mm[0] == pytest.approx(458.06, abs=0.01)


def test_annual_water_yield_keeps_xarray_and_nan():
    da = xr.DataArray(np.array([[1200.0, np.nan]]), dims=("y", "x"))
    out = annual_water_yield(da, da * 0 + 1000.0, 0.8, 2500.0, 400.0, 0.11, 5.0, 1)
    assert isinstance(out.water_yield_mm, xr.DataArray)
    assert float(out.water_yield_mm[0, 0]) == pytest.approx(835.96, abs=0.01)
    assert np.isnan(out.water_yield_mm[0, 1])


def test_water_yield_rejects_zero_precipitation_and_negative_eto():
    args = dict(kc=0.8, root_depth_mm=2500.0, soil_depth_mm=400.0, pawc=0.11, z=5.0, vegetated=1)
    with pytest.raises(ValueError, match=r"climate.nc: precipitation_mm 2000: expected values > 0 .* 1 pixel\(s\)"):
        annual_water_yield(np.array([1200.0, 0.0]), np.array([900.0, 900.0]),
                           names={"precip_mm": "climate.nc: precipitation_mm 2000"}, **args)
    with pytest.raises(
        ValueError, match=r"eto_mm: expected values >= 0 \(reference evapotranspiration\); found 1 pixel"
    ):
        annual_water_yield(np.array([1200.0, 1100.0]), np.array([900.0, -5.0]), **args)
    with pytest.raises(ValueError, match="seasonality constant Z"):
        annual_water_yield(np.array([1200.0]), np.array([900.0]), 0.8, 2500.0, 400.0, 0.11, 0.0, 1)


# --------------------------------------------------------------------------------------
# biophysical table
# --------------------------------------------------------------------------------------


def _biophysical(codes=(1, 2)) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lucode": list(codes),
            "lulc_name": [f"c{c}" for c in codes],
            "root_depth_mm": [1500.0] * len(codes),
            "kc": [0.8] * len(codes),
            "lulc_veg": [1] * len(codes),
            "usle_c": [0.2] * len(codes),
            "usle_p": [1.0] * len(codes),
        }
    )


def test_biophysical_table_missing_a_landcover_code_names_the_codes():
    table = check_biophysical_table(_biophysical((1, 2)), source="bio.csv")
    landcover = np.array([[1, 2], [9, 12]])
    with pytest.raises(ValueError) as err:
        reclassify(landcover, table["kc"].to_dict(), what="kc", table_source="bio.csv", map_source="landcover_2000.tif")
    msg = str(err.value)
    assert "bio.csv" in msg and "landcover_2000.tif" in msg and "[9, 12]" in msg and "codes [1, 2]" in msg


def test_biophysical_table_checks_columns_and_ranges():
    with pytest.raises(ValueError, match=r"missing column\(s\) \['usle_p'\]"):
        check_biophysical_table(_biophysical().drop(columns="usle_p"), source="bio.csv")
    bad = _biophysical()
    bad.loc[1, "usle_c"] = 1.4
    with pytest.raises(ValueError, match=r"usle_c must be \[0, 1\]; lucode\(s\) \[2\]"):
        check_biophysical_table(bad)
    dup = _biophysical((3, 3))
    with pytest.raises(ValueError, match=r"duplicate lucode\(s\) \[3\]"):
        check_biophysical_table(dup)


def test_reclassify_keeps_nan():
    out = reclassify(np.array([[1.0, np.nan]]), {1: 0.5}, what="x", table_source="t")
    assert out[0, 0] == 0.5 and np.isnan(out[0, 1])


# --------------------------------------------------------------------------------------
# habitat quality (InVEST)
# --------------------------------------------------------------------------------------

THREATS = {
    "built_up": {"weight": 1.0, "max_distance_m": 250.0, "decay": "linear"},
    "cultivated": {"weight": 0.5, "max_distance_m": 300.0, "decay": "exponential"},
}
SENSITIVITY = {
    8: {"built_up": 0.0, "cultivated": 0.0},
    2: {"built_up": 0.85, "cultivated": 0.7},
    6: {"built_up": 0.75, "cultivated": 0.6},
    1: {"built_up": 0.5, "cultivated": 0.35},
}


def test_threat_decay_linear_and_exponential():
    mask = np.zeros((1, 6), bool)
    mask[0, 0] = True
    lin = threat_proximity(mask, max_distance_m=250.0, decay="linear", resolution_m=100.0)
    # distances 0, 100, 200, 300 ...: 1 - d / 250 -> 1, 0.6, 0.2, then 0 beyond 250 m
    assert lin[0] == pytest.approx([1.0, 0.6, 0.2, 0.0, 0.0, 0.0])
    exp = threat_proximity(mask, max_distance_m=300.0, decay="exponential", resolution_m=100.0)
    # exp(-2.99 d / 300): d = 100 -> e^-0.996667 = 0.369108; 200 -> e^-1.993333 = 0.136241;
    # d = 300 -> e^-2.99 = 0.050287 (InVEST: 5 % left at the maximum distance); 400 -> 0
    assert exp[0, :5] == pytest.approx([1.0, 0.369108, 0.136241, 0.050287, 0.0], abs=1e-6)
    # diagonal distance: sqrt(2) * 100 = 141.42 m -> 1 - 141.42 / 250 = 0.434315
    m2 = np.zeros((2, 2), bool)
    m2[0, 0] = True
    assert threat_proximity(m2, max_distance_m=250.0, decay="linear", resolution_m=100.0)[1, 1] == pytest.approx(
        0.434315, abs=1e-6
    )
    assert not threat_proximity(np.zeros((2, 2), bool), max_distance_m=250.0, decay="linear", resolution_m=100.0).any()


def test_habitat_degradation_and_quality_by_hand():
    landcover = np.array([[8, 2, 2, 2, 6]])
    masks = {"built_up": landcover == 8, "cultivated": landcover == 1}  # no cropland here
    d = habitat_degradation(landcover, masks, THREATS, SENSITIVITY, resolution_m=100.0)
    # weights normalised over both threats: built-up 1 / 1.5; its impact 1, 0.6, 0.2, 0, 0
    # D = 2/3 * impact * S_built_up(class): [0, 0.6 * 0.85, 0.2 * 0.85, 0, 0] * 2/3
    assert d[0] == pytest.approx([0.0, 0.34, 0.113333, 0.0, 0.0], abs=1e-6)
    # k = half the highest D = 0.17; Q = H (1 - D^2.5 / (D^2.5 + k^2.5)), H = 0, 1, 1, 1, 0.7
    # pixel 1: 0.34^2.5 = 0.067407, 0.17^2.5 = 0.011916 -> 1 - 0.067407 / 0.079323 = 0.150221
    # pixel 2: 0.113333^2.5 = 0.004324 -> 1 - 0.004324 / 0.016240 = 0.733744
    k = half_saturation_auto([d])
    assert k == pytest.approx(0.17)
    q = habitat_quality(np.array([[0.0, 1.0, 1.0, 1.0, 0.7]]), d, half_saturation=k)
    assert q[0] == pytest.approx([0.0, 0.150221, 0.733744, 1.0, 0.7], abs=1e-5)


def test_habitat_degradation_errors_name_the_table():
    landcover = np.array([[8, 2, 5]])
    with pytest.raises(ValueError, match=r"config key services.habitat_quality.habitat: land-cover code\(s\) \[5\]"):
        habitat_degradation(landcover, {"built_up": landcover == 8}, THREATS, SENSITIVITY, resolution_m=30.0,
                            table_source="config key services.habitat_quality.habitat")
    partial = {8: {"built_up": 0.0}, 2: {"built_up": 0.8}, 5: {}}
    with pytest.raises(ValueError, match=r"no sensitivity to threat 'built_up' for land-cover code\(s\) \[5\]"):
        habitat_degradation(landcover, {"built_up": landcover == 8}, THREATS, partial, resolution_m=30.0)
    with pytest.raises(ValueError, match="k must be > 0"):
        habitat_quality(np.array([1.0]), np.array([0.1]), half_saturation=0.0)


# --------------------------------------------------------------------------------------
# climate of a service year
# --------------------------------------------------------------------------------------


def test_climate_of_year_and_period_mean():
    ds = xr.Dataset({"precipitation_mm": (("year", "y", "x"), np.array([[[1000.0]], [[1200.0]], [[1400.0]]]))},
                    coords={"year": [2000, 2001, 2002]})
    assert climate_of_year(ds, "precipitation_mm", 2001, source="c.nc").item() == 1200.0
    assert climate_of_year(ds, "precipitation_mm", 2002).item() == 1400.0
    assert climate_of_year(ds, "precipitation_mm", 2000, mode="period_mean").item() == 1200.0
    with pytest.raises(ValueError, match=r"c.nc: precipitation_mm has no year 1999"):
        climate_of_year(ds, "precipitation_mm", 1999, source="c.nc")
    with pytest.raises(ValueError, match=r"c.nc: no variable 'eto_mm'"):
        climate_of_year(ds, "eto_mm", 2000, source="c.nc")

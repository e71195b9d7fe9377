"""karstflow.services: every service formula against a hand calculation on a few pixels,
the flow routing on planes whose answer is known, and the bad inputs of the issue."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401  (the .rio accessor)
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


def test_two_processes_route_flow_at_once_on_a_cold_numba_cache(tmp_path):
    # pysheds' kernels are cached by numba; two processes compiling them into an empty
    # cache at once made one fail (KeyError on an itertools.count generator type) before
    # services._pysheds_compiled took a lock for the first compile
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from karstflow.grid import RegionGrid\n"
        "from karstflow.services import flow_routing\n"
        "z = np.tile(np.arange(8, 0, -1, dtype=float) * 10.0, (15, 1))\n"
        "grid = RegionGrid.from_bounds('EPSG:32648', 30.0, (0, 0, 240, 450))\n"
        "acc = flow_routing(grid.data_array(z)).flow_accumulation\n"
        "assert np.isfinite(acc).all()\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(e[-2000:] for e in errors)


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
    capped = annual_water_yield(
        np.array([500.0]),
        np.array([600.0]),
        np.array([1.0]),
        np.array([5000.0]),
        np.array([1000.0]),
        np.array([0.15]),
        30.0,
        np.array([1]),
    )
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
    with pytest.raises(ValueError, match=r"climate.nc: precipitation_mm 2000: expected values > 0 .*; found 1 of 2"):
        annual_water_yield(
            np.array([1200.0, 0.0]),
            np.array([900.0, 900.0]),
            names={"precip_mm": "climate.nc: precipitation_mm 2000"},
            **args,
        )
    with pytest.raises(
        ValueError, match=r"eto_mm: expected values >= 0 \(reference evapotranspiration\); found 1 of"
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
    masks = {"built_up": landcover == 8, "cultivated": landcover == 1}
    with pytest.raises(ValueError, match=r"config key services.habitat_quality.habitat: land-cover code\(s\) \[5\]"):
        habitat_degradation(
            landcover,
            masks,
            THREATS,
            SENSITIVITY,
            resolution_m=30.0,
            table_source="config key services.habitat_quality.habitat",
        )
    partial = {8: {"built_up": 0.0}, 2: {"built_up": 0.8}, 5: {}}
    with pytest.raises(ValueError, match=r"no sensitivity to threat 'built_up' for land-cover code\(s\) \[5\]"):
        habitat_degradation(landcover, masks, THREATS, partial, resolution_m=30.0)
    with pytest.raises(ValueError, match="k must be > 0"):
        habitat_quality(np.array([1.0]), np.array([0.1]), half_saturation=0.0)


# --------------------------------------------------------------------------------------
# climate of a service year
# --------------------------------------------------------------------------------------


def test_climate_of_year_and_period_mean():
    ds = xr.Dataset(
        {"precipitation_mm": (("year", "y", "x"), np.array([[[1000.0]], [[1200.0]], [[1400.0]]]))},
        coords={"year": [2000, 2001, 2002]},
    )
    assert climate_of_year(ds, "precipitation_mm", 2001, source="c.nc").item() == 1200.0
    assert climate_of_year(ds, "precipitation_mm", 2002).item() == 1400.0
    assert climate_of_year(ds, "precipitation_mm", 2000, mode="period_mean").item() == 1200.0
    with pytest.raises(ValueError, match=r"c.nc: precipitation_mm has no year 1999"):
        climate_of_year(ds, "precipitation_mm", 1999, source="c.nc")
    with pytest.raises(ValueError, match=r"c.nc: no variable 'eto_mm'"):
        climate_of_year(ds, "eto_mm", 2000, source="c.nc")


# --------------------------------------------------------------------------------------
# issue 13: habitat degradation exactly as InVEST (weights over the whole threat table,
# a missing threat stops, the access layer), erosivity from monthly precipitation
# --------------------------------------------------------------------------------------

RES_HQ = 30.0
# the default threat table's shape: cultivated land, built-up land and roads
TABLE3 = {
    "cultivated": {"weight": 0.7, "max_distance_m": 120.0, "decay": "linear"},
    "built_up": {"weight": 1.0, "max_distance_m": 150.0, "decay": "exponential"},
    "roads": {"weight": 0.8, "max_distance_m": 90.0, "decay": "linear"},
}
SENS3 = {
    1: {"cultivated": 0.35, "built_up": 0.5, "roads": 0.4},
    2: {"cultivated": 0.7, "built_up": 0.85, "roads": 0.7},
    6: {"cultivated": 0.6, "built_up": 0.75, "roads": 0.65},
    8: {"cultivated": 0.0, "built_up": 0.0, "roads": 0.0},
}


def _hq_grid() -> np.ndarray:
    lc = np.full((6, 8), 2)  # forest
    lc[:, 6:] = 6  # grassland
    lc[0:2, 0:2] = 1  # cultivated
    lc[5, 7] = 8  # built-up
    return lc


def _invest_degradation(lc, threat_rasters, table, sensitivity, access, pixel_size):
    """InVEST 3.13+ habitat_quality.execute, step by step (natcap/invest
    src/natcap/invest/habitat_quality/habitat_quality.py), on numpy arrays:

    * a threat of the table without a raster raises (execute: "There was an Error
      locating a threat raster ... for column: cur_path and threat: ...");
    * weight_sum = threat_df['weight'].sum(), weight_avg = row['weight'] / weight_sum;
    * distance_transform_edt of the threat raster, in pixels; _decay_distance with
      max_dist_pixel = max_dist / pixel size: linear (max - d) / max, exponential
      exp(-d * 2.99 / max), 0 where d > max;
    * _calculate_individual_degradation: filtered * sensitivity * weight_avg * access;
      _calculate_total_degradation: their sum.
    """
    weight_sum = sum(row["weight"] for row in table.values())
    rows, cols = np.indices(lc.shape)
    total = np.zeros(lc.shape)
    for threat, row in table.items():
        if threat not in threat_rasters:
            raise ValueError(f"There was an Error locating a threat raster for column: cur_path and threat: {threat}")
        ys, xs = np.nonzero(threat_rasters[threat] > 0)
        if ys.size:
            dist = np.min(np.hypot(rows[..., None] - ys, cols[..., None] - xs), axis=-1)
        else:
            dist = np.full(lc.shape, np.inf)
        max_dist_pixel = row["max_distance_m"] / pixel_size
        if row["decay"] == "linear":
            filtered = np.where(dist > max_dist_pixel, 0, (max_dist_pixel - dist) / max_dist_pixel)
        else:
            filtered = np.where(dist > max_dist_pixel, 0, np.exp((-dist * 2.99) / max_dist_pixel))
        sens = np.vectorize(lambda c, t=threat: sensitivity[int(c)][t])(lc)
        total = total + filtered * sens * (row["weight"] / weight_sum) * access
    return total


def test_habitat_degradation_normalises_over_every_threat_and_stops_for_a_missing_one():
    lc = _hq_grid()
    roads = np.zeros(lc.shape, bool)
    roads[:, 4] = True  # a road down column 4
    masks = {"cultivated": lc == 1, "built_up": lc == 8}
    ones = np.ones(lc.shape)
    # a region without a roads layer, roads in the table: InVEST stops, and so must we
    # (today's code renormalised over cultivated + built-up, D x 2.5 / 1.7 = 1.47)
    with pytest.raises(ValueError, match="There was an Error locating a threat raster"):
        _invest_degradation(lc, masks, TABLE3, SENS3, ones, RES_HQ)
    with pytest.raises(ValueError, match=r"threat table: threat\(s\) \['roads'\] have no threat map"):
        habitat_degradation(lc, masks, TABLE3, SENS3, resolution_m=RES_HQ)
    # a roads layer without a road inside the region: the weight still counts (sum 2.5)
    empty = {**masks, "roads": np.zeros(lc.shape, bool)}
    d_full = habitat_degradation(lc, empty, TABLE3, SENS3, resolution_m=RES_HQ)
    np.testing.assert_allclose(d_full, _invest_degradation(lc, empty, TABLE3, SENS3, ones, RES_HQ), atol=1e-12)
    # by hand, pixel (2, 2) (forest): cultivated pixel (1, 1) at sqrt(2) px = 42.43 m of
    # 120 m -> 1 - 42.43 / 120 = 0.646447; built-up (5, 7) at sqrt(9 + 25) = 5.83 px = 174.9 m
    # > 150 m -> 0. D = 0.7 / 2.5 * 0.646447 * 0.7 = 0.126704
    assert d_full[2, 2] == pytest.approx(0.7 / 2.5 * (1 - math.sqrt(2) * 30 / 120) * 0.7, abs=1e-9)
    assert d_full[2, 2] == pytest.approx(0.126704, abs=1e-6)
    # with roads: the road at 2 px (60 m of 90 m) adds 0.8 / 2.5 * (1 - 60 / 90) * 0.7 = 0.074667
    with_roads = {**masks, "roads": roads}
    d_roads = habitat_degradation(lc, with_roads, TABLE3, SENS3, resolution_m=RES_HQ)
    np.testing.assert_allclose(d_roads, _invest_degradation(lc, with_roads, TABLE3, SENS3, ones, RES_HQ), atol=1e-12)
    assert d_roads[2, 2] == pytest.approx(0.126704 + 0.8 / 2.5 * (1 / 3) * 0.7, abs=1e-6)
    # roads taken out of the table explicitly: InVEST's table of two threats (sum 1.7)
    dropped = {**TABLE3, "roads": {**TABLE3["roads"], "enabled": False}}
    d_two = habitat_degradation(lc, masks, dropped, SENS3, resolution_m=RES_HQ)
    two = {k: v for k, v in TABLE3.items() if k != "roads"}
    np.testing.assert_allclose(d_two, _invest_degradation(lc, masks, two, SENS3, ones, RES_HQ), atol=1e-12)
    np.testing.assert_allclose(d_two, d_full * 2.5 / 1.7, atol=1e-12)
    # a map of a threat that is not in the table is an error too
    with pytest.raises(ValueError, match=r"threat map\(s\) \['roads'\] have no entry"):
        habitat_degradation(lc, empty, dropped, SENS3, resolution_m=RES_HQ)


def test_access_scales_degradation_like_invest():
    lc = _hq_grid()
    masks = {"cultivated": lc == 1, "built_up": lc == 8, "roads": np.zeros(lc.shape, bool)}
    masks["roads"][:, 4] = True
    access = np.ones(lc.shape)
    access[:, :3] = 0.25  # a protected area west of column 3
    access[4:, 5:] = 0.0  # an inaccessible corner
    plain = habitat_degradation(lc, masks, TABLE3, SENS3, resolution_m=RES_HQ)
    d = habitat_degradation(lc, masks, TABLE3, SENS3, resolution_m=RES_HQ, access=access)
    np.testing.assert_allclose(d, _invest_degradation(lc, masks, TABLE3, SENS3, access, RES_HQ), atol=1e-12)
    # beta multiplies every threat's term: D = beta * D(access 1)
    np.testing.assert_allclose(d, access * plain, atol=1e-12)
    assert d[2, 2] == pytest.approx(0.25 * plain[2, 2]) and plain[2, 2] > 0
    assert (d[4:, 5:] == 0).all() and plain[4:, 5:].max() > 0
    bad = access.copy()
    bad[0, 0] = 1.5
    with pytest.raises(ValueError, match=r"access.gpkg: expected values >= 0 and <= 1"):
        habitat_degradation(lc, masks, TABLE3, SENS3, resolution_m=RES_HQ, access=bad, access_source="access.gpkg")


def test_r_factor_monthly_wischmeier_smith_by_hand():
    from karstflow.services import R_FACTOR_METHODS, r_factor_monthly

    assert R_FACTOR_METHODS[0] == "wischmeier_smith_monthly"
    # 100 mm in every month, P = 1200 mm: P_i^2 / P = 8.333333, log10 = 0.920819;
    # 1.5 * 0.920819 - 0.8188 = 0.562428; 10^0.562428 = 3.651166; * 1.735 = 6.334773
    # per month, * 12 = 76.0167 (hundreds of ft tonf in ac-1 h-1 yr-1), * 17.02 = 1293.80
    # MJ mm ha-1 h-1 yr-1
    flat = r_factor_monthly(np.full((12, 1), 100.0))
    assert flat[0] == pytest.approx(1293.80, abs=0.01)
    # a Guizhou-like year of 1,300 mm with a June peak: months (mm)
    months = np.array([20, 25, 40, 90, 180, 235, 200, 150, 120, 100, 90, 50], float)
    terms = [1.735 * 10 ** (1.5 * math.log10(p * p / 1300.0) - 0.8188) for p in months]
    # June: 235^2 / 1300 = 42.480769, log10 = 1.628192, 10^(2.442289 - 0.8188) = 42.0231,
    # * 1.735 = 72.910; the year sums to 194.291 -> 194.291 * 17.02 = 3306.84
    assert terms[5] == pytest.approx(72.910, abs=1e-3)
    r = r_factor_monthly(months[:, None])
    assert r[0] == pytest.approx(17.02 * sum(terms), rel=1e-12)
    assert r[0] == pytest.approx(3306.84, abs=0.01)
    # the US-station fit of Renard & Freimund (1994) at the same 1,300 mm: 5940.55, 1.8x
    assert r_factor(np.array([1300.0]))[0] == pytest.approx(5940.55, abs=0.01)
    # a dry month adds nothing; a year without rain has R = 0; NaN stays NaN
    dry = months.copy()
    dry[0] = 0.0
    expect = 17.02 * sum(1.735 * 10 ** (1.5 * math.log10(p * p / dry.sum()) - 0.8188) for p in dry[1:])
    out = r_factor_monthly(np.stack([dry, np.zeros(12), np.full(12, np.nan)], axis=1))
    assert out[0] == pytest.approx(expect, rel=1e-12) and out[1] == 0.0 and np.isnan(out[2])
    # a regional calibration of the same form: a, b, c and the unit factor are parameters
    assert r_factor_monthly(months[:, None], a=1.0, b=1.0, c=0.0, si_factor=1.0)[0] == pytest.approx(
        float((months**2).sum() / 1300.0)  # Arnoldus' modified Fournier index itself
    )
    # a DataArray with a time axis of 12 months
    da = xr.DataArray(np.broadcast_to(months[:, None, None], (12, 2, 3)).copy(), dims=("time", "y", "x"))
    assert np.allclose(r_factor_monthly(da).values, 3306.838, atol=1e-3)
    with pytest.raises(ValueError, match="expected 12 monthly totals"):
        r_factor_monthly(np.full((11, 1), 100.0))
    with pytest.raises(ValueError, match=r"c.nc: expected values >= 0"):
        r_factor_monthly(np.full((12, 1), -1.0), name="c.nc")
    with pytest.raises(ValueError, match="needs the 12 monthly precipitation totals"):
        r_factor(np.array([1300.0]), method="wischmeier_smith_monthly")


# --------------------------------------------------------------------------------------
# the rules' scripts on tiny GeoTIFF / NetCDF inputs (no Snakemake)
# --------------------------------------------------------------------------------------

SCRIPTS = __import__("pathlib").Path(__file__).resolve().parents[1] / "workflow" / "scripts"


def _hq_region(tmp_path):
    from karstflow.io import write_raster

    grid = RegionGrid.from_bounds("EPSG:32648", RES_HQ, (600000, 2799990, 600000 + 8 * RES_HQ, 2799990 + 6 * RES_HQ))
    assert grid.shape == (6, 8)
    lc = _hq_grid()
    write_raster(grid.data_array(lc.astype("uint8"), name="landcover"), tmp_path / "lc.tif", dtype="uint8", nodata=255)
    (tmp_path / "grid.json").write_text(__import__("json").dumps(grid.to_dict()))
    habitat = {str(c): {"suitability": 1.0, "sensitivity": s} for c, s in SENS3.items()}
    threats = {
        "cultivated": {**TABLE3["cultivated"], "landcover_codes": [1]},
        "built_up": {**TABLE3["built_up"], "landcover_codes": [8]},
        "roads": {**TABLE3["roads"], "vector_input": "roads"},
    }
    return grid, lc, habitat, threats


def _run_degradation(tmp_path, params, **inputs):
    """Scripts services_habitat_degradation, then services_habitat_threats (the record of the
    table, on the region after the map), on the _hq_region files (plus ``inputs``) -> outputs."""
    from karstflow.runtime import call_script

    out = {"degradation": tmp_path / "d.tif", "threats": tmp_path / "t.json"}
    files = {"landcover": tmp_path / "lc.tif", "grid": tmp_path / "grid.json", **inputs}
    wildcards = {"region": "r1", "year": "2020"}
    call_script(
        SCRIPTS / "services_habitat_degradation.py",
        input=files,
        output={"degradation": out["degradation"]},
        params=params,
        wildcards=wildcards,
    )
    call_script(
        SCRIPTS / "services_habitat_threats.py",
        input={**files, "degradation": out["degradation"]},
        output={"threats": out["threats"]},
        params=params,
        wildcards=wildcards,
    )
    return out


def test_degradation_script_stops_for_a_threat_without_its_layer(tmp_path):
    grid, lc, habitat, threats = _hq_region(tmp_path)
    params = {"threats": threats, "dropped": {}, "habitat": habitat, "vectors": []}
    # today the script logged "not evaluated" and renormalised over the other two threats
    with pytest.raises(ValueError, match=r"config key services.habitat_quality.threats.roads: threat 'roads'") as err:
        _run_degradation(tmp_path, params)
    assert "drop_threats: {r1: [roads]}" in str(err.value) and "enabled: false" in str(err.value)
    assert not (tmp_path / "d.tif").exists()
    # dropped explicitly: normalised over the two left (1.7), recorded as not evaluated
    two = {k: v for k, v in threats.items() if k != "roads"}
    params = {"threats": two, "dropped": {"roads": "drop_threats lists it"}, "habitat": habitat, "vectors": []}
    out = _run_degradation(tmp_path, params)
    from karstflow.io import read_json, read_raster

    d = read_raster(out["degradation"]).values
    masks = {"cultivated": lc == 1, "built_up": lc == 8}
    expected = _invest_degradation(lc, masks, {k: TABLE3[k] for k in two}, SENS3, np.ones(lc.shape), RES_HQ)
    np.testing.assert_allclose(d, expected, atol=1e-6)
    record = read_json(out["threats"])
    assert record["weight_sum"] == pytest.approx(1.7)
    assert record["threats"]["roads"] == {"evaluated": False, "reason": "drop_threats lists it"}
    assert record["threats"]["built_up"]["normalised_weight"] == pytest.approx(1.0 / 1.7)
    # the record's pixels and D figures are the region's: 4 cultivated, 1 built-up pixel
    assert record["threats"]["cultivated"]["pixels"] == 4 and record["threats"]["built_up"]["pixels"] == 1
    assert record["degradation_max"] == pytest.approx(float(np.nanmax(expected)), rel=1e-6)
    assert record["degradation_mean"] == pytest.approx(float(np.nanmean(expected)), rel=1e-6)


def test_degradation_script_rasterises_the_access_layer_like_invest(tmp_path):
    import geopandas as gpd
    import shapely

    from karstflow.io import read_json, read_raster

    grid, lc, habitat, threats = _hq_region(tmp_path)
    x0, y1 = 600000.0, 2799990.0 + 6 * RES_HQ
    gpd.GeoDataFrame(
        {"ACCESS": [0.25, 0.0]},
        geometry=[
            # columns 0-2 (pixel centres at x0 + 15, 45, 75 m: the box ends at 80 m, past the
            # third centre and short of the fourth at 105 m)
            shapely.box(x0, y1 - 6 * RES_HQ, x0 + 80.0, y1),
            # rows 4-5, columns 5-7 (centres y1 - 135 and - 165; x0 + 165 ... 225)
            shapely.box(x0 + 160.0, y1 - 6 * RES_HQ, x0 + 8 * RES_HQ, y1 - 130.0),
        ],
        crs=grid.crs,
    ).rename(columns={"ACCESS": "access"}).to_file(tmp_path / "access.gpkg")
    roads = gpd.GeoDataFrame(geometry=[shapely.LineString([(x0 + 135, y1 + 10), (x0 + 135, y1 - 200)])], crs=grid.crs)
    roads.to_file(tmp_path / "roads.gpkg")
    out = _run_degradation(
        tmp_path,
        {"threats": threats, "dropped": {}, "habitat": habitat, "vectors": ["roads"]},
        roads=tmp_path / "roads.gpkg",
        access=tmp_path / "access.gpkg",
    )
    # InVEST's access raster: 1 everywhere, each polygon's ACCESS at the pixels whose centre it covers
    access = np.ones(lc.shape)
    access[:, :3] = 0.25
    access[4:, 5:] = 0.0
    road_mask = np.zeros(lc.shape, bool)
    road_mask[:, 4] = True  # the line at x0 + 135 m runs through column 4
    masks = {"cultivated": lc == 1, "built_up": lc == 8, "roads": road_mask}
    d = read_raster(out["degradation"]).values
    np.testing.assert_allclose(d, _invest_degradation(lc, masks, TABLE3, SENS3, access, RES_HQ), atol=1e-6)
    record = read_json(out["threats"])
    assert record["access"]["source"].endswith("access.gpkg")
    assert record["access"]["mean"] == pytest.approx(access.mean())
    assert record["threats"]["roads"]["pixels"] == 6 and record["threats"]["roads"]["source"].endswith("roads.gpkg")
    assert record["weight_sum"] == pytest.approx(2.5)


def _soil_region(tmp_path, months_mm):
    """A 2 x 3 px region: forest on LS 2, monthly precipitation of 2000 and 2001 (mm month-1)."""
    from karstflow.io import write_netcdf, write_raster

    grid = RegionGrid.from_bounds("EPSG:32648", 30, (600000, 2799990, 600090, 2800050))
    assert grid.shape == (2, 3)
    write_raster(grid.data_array(np.full(grid.shape, 2, np.uint8)), tmp_path / "lc.tif", dtype="uint8", nodata=255)
    write_raster(grid.data_array(np.full(grid.shape, 2.0, np.float32)), tmp_path / "ls.tif")
    (tmp_path / "grid.json").write_text(__import__("json").dumps(grid.to_dict()))
    coords = grid.coords()
    soil = xr.Dataset(
        {
            v: (("y", "x"), np.full(grid.shape, val))
            for v, val in (("sand_pct", 20.0), ("silt_pct", 35.0), ("clay_pct", 45.0), ("organic_carbon_pct", 2.0))
        },
        coords=coords,
    ).rio.write_crs(grid.crs)
    write_netcdf(soil, tmp_path / "soil.nc")
    time = pd.date_range("2000-01-01", periods=24, freq="MS")
    data = np.broadcast_to(np.tile(np.asarray(months_mm, float), 2)[:, None, None], (24, *grid.shape)).copy()
    data[12:] *= 1.5  # 2001 is wetter
    monthly = xr.Dataset(
        {"precipitation_mm": (("time", "y", "x"), data, {"units": "mm month-1"})},
        coords={"time": time, **coords},
    ).rio.write_crs(grid.crs)
    write_netcdf(monthly, tmp_path / "climate_monthly.nc")
    annual = xr.Dataset(
        {"precipitation_mm": (("year", "y", "x"), np.stack([data[:12].sum(0), data[12:].sum(0)]))},
        coords={"year": [2000, 2001], **coords},
    ).rio.write_crs(grid.crs)
    write_netcdf(annual, tmp_path / "climate.nc")
    pd.DataFrame(
        {"lucode": [2], "root_depth_mm": [5000], "kc": [1.0], "lulc_veg": [1], "usle_c": [0.1], "usle_p": [1.0]}
    ).to_csv(tmp_path / "bio.csv", index=False)
    return grid


def _soil_params(method="wischmeier_smith_monthly", climate="year"):
    return {
        "soil_conservation": {
            "r_factor": {
                "method": method,
                "a": None,
                "b": None,
                "monthly": {"a": 1.735, "b": 1.5, "c": -0.8188, "si_factor": 17.02},
            },
            "k_si_factor": 0.1317,
            "cover_factor": "landcover",
            "non_soil_classes": [7, 8],
        },
        "climate": climate,
        "fvc_percentiles": [5, 95],
    }


def test_soil_retention_script_reads_the_monthly_cube(tmp_path):
    from karstflow.io import read_json, read_raster
    from karstflow.runtime import call_script

    months = [20, 25, 40, 90, 180, 235, 200, 150, 120, 100, 90, 50]  # 1,300 mm in 2000
    _soil_region(tmp_path, months)
    files = {
        "ls": tmp_path / "ls.tif",
        "landcover": tmp_path / "lc.tif",
        "soil": tmp_path / "soil.nc",
        "biophysical": tmp_path / "bio.csv",
        "grid": tmp_path / "grid.json",
        "climate_monthly": tmp_path / "climate_monthly.nc",
    }
    out = {
        "retention": tmp_path / "sr.tif",
        "soil_loss": tmp_path / "loss.tif",
        "factors_map": tmp_path / "factors.tif",
    }

    def soil_retention(inputs, params, year):
        """Rule services_soil_retention, then services_soil_factors: the factors' region means."""
        call_script(
            SCRIPTS / "services_soil_retention.py",
            input=inputs,
            output=out,
            params=params,
            wildcards={"region": "r1", "year": str(year)},
        )
        call_script(
            SCRIPTS / "services_soil_factors.py",
            input={**out, "ls": files["ls"], "landcover": files["landcover"], "grid": files["grid"]},
            output={"factors": tmp_path / "f.json"},
            params={**params, "r_factor_source": "climate file"},
            wildcards={"region": "r1", "year": str(year)},
        )
        return read_json(tmp_path / "f.json")

    factors = soil_retention(files, _soil_params(), 2000)
    # R of 2000 by hand above (3306.84); K of SAN 20 / SIL 35 / CLA 45 / C 2 % is 0.032565
    assert factors["r_factor_method"] == "wischmeier_smith_monthly"
    assert factors["r_mean_mj_mm_ha_h_yr"] == pytest.approx(3306.84, abs=0.01)
    potential = 3306.84 * 0.032565 * 2.0
    assert read_raster(out["retention"]).values == pytest.approx(np.full((2, 3), potential * 0.9), rel=1e-4)
    # the factor maps behind the means: R, K, C = 0.1, P = 1 and R K LS in every pixel
    import rasterio

    with rasterio.open(out["factors_map"]) as ds:
        assert ds.descriptions == ("r_factor", "k_factor", "c_factor", "p_factor", "potential_soil_loss")
        bands = ds.read().astype(np.float64)
    for band, value in zip(bands, (3306.84, 0.032565, 0.1, 1.0, potential), strict=True):
        assert band == pytest.approx(np.full((2, 3), value), rel=1e-4)
    assert factors["k_mean_t_ha_h_ha_mj_mm"] == pytest.approx(0.032565, rel=1e-4)
    assert factors["ls_mean"] == 2.0 and factors["c_mean"] == pytest.approx(0.1)
    assert factors["potential_soil_loss_mean_t_ha_yr"] == pytest.approx(potential, rel=1e-4)
    assert factors["soil_retention_mean_t_ha_yr"] == pytest.approx(potential * 0.9, rel=1e-4)
    assert factors["non_soil_pixels"] == 0 and factors["r_factor_source"] == "climate file"
    # 2001 is 1.5x wetter month by month: (P_i^2 / P) scales by 1.5, R by 1.5^1.5
    factors = soil_retention(files, _soil_params(), 2001)
    assert factors["r_mean_mj_mm_ha_h_yr"] == pytest.approx(3306.84 * 1.5**1.5, abs=0.02)
    # period_mean: the mean of the two years' R
    factors = soil_retention(files, _soil_params(climate="period_mean"), 2000)
    assert factors["r_mean_mj_mm_ha_h_yr"] == pytest.approx(3306.84 * (1 + 1.5**1.5) / 2, abs=0.02)
    # an annual method still reads the annual cube: Renard & Freimund at 1,300 mm
    annual = {**{k: v for k, v in files.items() if k != "climate_monthly"}, "climate": tmp_path / "climate.nc"}
    factors = soil_retention(annual, _soil_params("renard_freimund_1994"), 2000)
    assert factors["r_mean_mj_mm_ha_h_yr"] == pytest.approx(5940.55, abs=0.01)
    # the monthly method without the monthly cube stops naming the key; no fallback
    for path in out.values():
        path.unlink()
    with pytest.raises(
        ValueError,
        match=r"config key services.soil_conservation.r_factor.method: "
        r"wischmeier_smith_monthly needs the monthly climate cube",
    ):
        call_script(
            SCRIPTS / "services_soil_retention.py",
            input=annual,
            output=out,
            params=_soil_params(),
            wildcards={"region": "r1", "year": "2000"},
        )
    assert not out["retention"].exists()


def test_months_of_year_checks_the_monthly_cube():
    from karstflow.services import months_of_year

    time = pd.date_range("2000-01-01", periods=23, freq="MS")  # December 2001 missing
    ds = xr.Dataset(
        {"precipitation_mm": (("time", "y", "x"), np.ones((23, 1, 1)), {"units": "mm month-1"})}, coords={"time": time}
    )
    assert months_of_year(ds, "precipitation_mm", 2000, source="m.nc").sizes["time"] == 12
    with pytest.raises(ValueError, match=r"m.nc: precipitation_mm of 2001 has 11 monthly step\(s\)"):
        months_of_year(ds, "precipitation_mm", 2001, source="m.nc")
    ds["precipitation_mm"].attrs["units"] = "mm"
    with pytest.raises(ValueError, match=r"m.nc: precipitation_mm has units 'mm', expected 'mm month-1'"):
        months_of_year(ds, "precipitation_mm", 2000, source="m.nc")

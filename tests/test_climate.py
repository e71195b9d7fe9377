"""Monthly climate: FAO-56 worked examples, unit table, tile reading, real CF NetCDF, annual cube."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer

from karstflow.climate import (
    MONTHLY_VARIABLES,
    annual_from_monthly,
    convert_units,
    daylight_hours,
    era5_land_to_monthly,
    extraterrestrial_radiation,
    fao56_eto_monthly,
    fao56_terms,
    month_day_of_year,
    monthly_soil_heat_flux,
    normalise_unit,
    read_monthly_bands,
    read_monthly_local,
    saturation_vapour_pressure,
    terraclimate_to_monthly,
)
from karstflow.grid import RegionGrid

BCSD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "climate-monthly" / "bcsd_obs_1999.nc"

# u10 giving u2 = 2 m/s by FAO-56 eq. 47 (4.87 / ln(67.8 * 10 - 5.42) = 0.748)
U10_FOR_U2_2 = 2.0 * math.log(67.8 * 10 - 5.42) / 4.87


# --------------------------------------------------------------------------------------
# FAO-56 worked examples (Allen et al. 1998)
# --------------------------------------------------------------------------------------


def test_fao56_example_17_monthly_bangkok_april():
    """Example 17: Bangkok (13°44'N, 2 m), April; ETo = 5.72 mm/day."""
    lat, doy = 13 + 44 / 60, month_day_of_year(4)
    assert doy == 106  # J = INT(30.4 M - 15)
    ra = extraterrestrial_radiation(lat, doy)
    n_max = daylight_hours(lat, doy)
    rs = (0.25 + 0.50 * 8.5 / n_max) * ra  # Angstrom, eq. 35, as in the example
    terms = fao56_terms(
        30.2,
        t_max_c=34.8,
        t_min_c=25.6,
        ea_kpa=2.85,
        wind_2m_m_s=2.0,
        rs_mj_m2_day=rs,
        latitude_deg=lat,
        doy=doy,
        elevation_m=2.0,
        soil_heat_flux_mj_m2_day=0.14 * (30.2 - 29.2),  # eq. 44, T March 29.2
    )
    # the book's rounded intermediate values (its Ra comes from a table: 38.06)
    assert terms["delta"] == pytest.approx(0.246, abs=0.0005)
    assert terms["pressure"] == pytest.approx(101.3, abs=0.05)
    assert terms["gamma"] == pytest.approx(0.0674, abs=0.0001)  # the book rounds P to 101.3 first
    assert terms["es"] == pytest.approx(4.42, abs=0.005)
    assert terms["es"] - terms["ea"] == pytest.approx(1.57, abs=0.005)
    assert ra == pytest.approx(38.06, abs=0.05)
    assert n_max == pytest.approx(12.31, abs=0.02)
    assert rs == pytest.approx(22.65, abs=0.02)
    assert terms["rso"] == pytest.approx(28.54, abs=0.05)
    assert terms["rns"] == pytest.approx(17.44, abs=0.02)
    assert terms["rnl"] == pytest.approx(3.11, abs=0.005)
    assert terms["rn"] == pytest.approx(14.33, abs=0.02)
    assert round(float(terms["eto"]), 2) == 5.72
    monthly = fao56_eto_monthly(
        30.2,
        days_in_month=30,
        t_max_c=34.8,
        t_min_c=25.6,
        ea_kpa=2.85,
        wind_2m_m_s=2.0,
        rs_mj_m2_day=rs,
        latitude_deg=lat,
        doy=doy,
        elevation_m=2.0,
        soil_heat_flux_mj_m2_day=0.14,
    )
    assert float(monthly) == pytest.approx(float(terms["eto"]) * 30)
    assert round(float(monthly) / 30, 2) == 5.72


def test_fao56_example_18_daily_brussels_wind_at_10m_and_elevation():
    """Example 18: Brussels (50°48'N, 100 m), 6 July; wind 10 km/h at 10 m; ETo = 3.9 mm/day."""
    lat, doy = 50 + 48 / 60, 187
    ra = extraterrestrial_radiation(lat, doy)
    n_max = daylight_hours(lat, doy)
    rs = (0.25 + 0.50 * 9.25 / n_max) * ra
    terms = fao56_terms(
        16.9,
        t_max_c=21.5,
        t_min_c=12.3,
        ea_kpa=1.409,
        wind_10m_m_s=10 / 3.6,
        rs_mj_m2_day=rs,
        latitude_deg=lat,
        doy=doy,
        elevation_m=100.0,
        soil_heat_flux_mj_m2_day=0.0,
    )
    assert terms["u2"] == pytest.approx(2.078, abs=0.001)  # eq. 47
    assert terms["pressure"] == pytest.approx(100.1, abs=0.05)  # eq. 7
    assert terms["gamma"] == pytest.approx(0.0666, abs=0.00005)
    assert terms["delta"] == pytest.approx(0.122, abs=0.0005)
    assert terms["es"] == pytest.approx(1.997, abs=0.001)
    assert ra == pytest.approx(41.09, abs=0.01)
    assert n_max == pytest.approx(16.1, abs=0.05)
    assert rs == pytest.approx(22.07, abs=0.01)
    assert terms["rso"] == pytest.approx(30.90, abs=0.01)
    assert terms["rnl"] == pytest.approx(3.71, abs=0.005)
    assert terms["rn"] == pytest.approx(13.28, abs=0.01)
    assert round(float(terms["eto"]), 1) == 3.9


def test_dewpoint_and_tmean_options_and_missing_inputs():
    # eq. 14: ea = e°(Tdew); e°(20 degC) = 2.338 kPa (FAO-56 Annex 2, Table 2.3)
    assert saturation_vapour_pressure(20.0) == pytest.approx(2.338, abs=0.0005)
    t = fao56_terms(20.0, dewpoint_c=20.0, wind_2m_m_s=2.0, net_radiation_mj_m2_day=10.0, pressure_kpa=101.3)
    assert t["ea"] == pytest.approx(2.338, abs=0.0005)
    assert "biased" in t["es_method"]
    with pytest.raises(ValueError, match="ea_kpa or dewpoint_c"):
        fao56_terms(20.0, wind_2m_m_s=2.0, net_radiation_mj_m2_day=10.0, pressure_kpa=101.3)
    with pytest.raises(ValueError, match="latitude_deg, doy and elevation_m"):
        fao56_terms(20.0, ea_kpa=1.0, wind_2m_m_s=2.0, rs_mj_m2_day=20.0, pressure_kpa=101.3)


def test_monthly_soil_heat_flux_eqs_43_44():
    t = xr.DataArray([29.2, 30.2, 31.0], dims="time")
    g = monthly_soil_heat_flux(t).values
    assert g[1] == pytest.approx(0.07 * (31.0 - 29.2))  # eq. 43
    assert g[2] == pytest.approx(0.14 * (31.0 - 30.2))  # eq. 44
    assert g[0] == pytest.approx(0.14 * (30.2 - 29.2))  # forward form at the start


# --------------------------------------------------------------------------------------
# units
# --------------------------------------------------------------------------------------


def test_unit_conversions_by_hand():
    def c(v, unit, target, days=None):
        return convert_units(np.float64(v), unit, target, source="f.nc", variable="v", days_in_month=days)[0]

    assert c(300.0, "K", "degC") == pytest.approx(26.85)
    assert c(12.5, "C", "degC") == 12.5
    assert c(0.1, "m", "mm month-1") == pytest.approx(100.0)
    assert c(1e-5, "kg m-2 s-1", "mm month-1", 28) == pytest.approx(1e-5 * 86400 * 28)  # 24.192
    assert c(3.0, "mm/day", "mm month-1", 31) == pytest.approx(93.0)
    assert c(80.0, "mm/m", "mm month-1") == 80.0  # what bcsd_obs_1999.nc says for monthly sums
    assert c(5e8, "J m-2", "MJ m-2 month-1") == pytest.approx(500.0)
    assert c(200.0, "W m-2", "MJ m-2 month-1", 30) == pytest.approx(518.4)  # 200 x 86400 x 30 / 1e6
    assert c(200.0, "W/m^2", "MJ m-2 month-1", 30) == pytest.approx(518.4)
    assert c(101300.0, "Pa", "kPa") == pytest.approx(101.3)
    assert normalise_unit("kg m**-2 s**-1") == "kg m-2 s-1"


def test_wrong_or_missing_unit_names_file_variable_and_unit():
    with pytest.raises(ValueError, match=r"clim\.nc: variable 'pr' has units 'furlongs'"):
        convert_units(1.0, "furlongs", "mm month-1", source="clim.nc", variable="pr")
    with pytest.raises(ValueError, match=r"clim\.nc: variable 'tas' has no units"):
        convert_units(1.0, None, "degC", source="clim.nc", variable="tas")
    with pytest.raises(ValueError, match=r"'K'.*cannot be converted to mm month-1"):
        convert_units(1.0, "K", "mm month-1", source="clim.nc", variable="pr")


# --------------------------------------------------------------------------------------
# provider recipes
# --------------------------------------------------------------------------------------

GRID = RegionGrid(crs="EPSG:32648", resolution=1000.0, bounds=(500000.0, 1500000.0, 502000.0, 1502000.0))


def _raw(values: dict[str, tuple[list[float], str]], months: list[str], grid: RegionGrid = GRID) -> xr.Dataset:
    coords = grid.coords()
    time = pd.to_datetime(months).values
    ds = xr.Dataset(coords={"time": time, "y": coords["y"], "x": coords["x"]})
    for name, (series, unit) in values.items():
        arr = np.broadcast_to(np.asarray(series, float)[:, None, None], (len(months),) + grid.shape).copy()
        ds[name] = xr.DataArray(arr, dims=("time", "y", "x"), attrs={"units": unit})
    ds.attrs["source"] = "test tiles"
    return ds.rio.write_crs(grid.crs)


def test_era5_land_to_monthly_units_and_eto():
    months = ["2020-03-01", "2020-04-01", "2020-05-01"]
    t_k = [29.2 + 273.15, 30.2 + 273.15, 31.2 + 273.15]
    # dewpoint giving ea = 2.85 kPa (inverse of eq. 11)
    a = math.log(2.85 / 0.6108)
    td = 237.3 * a / (17.27 - a)
    days = [31, 30, 31]
    raw = _raw(
        {
            "temperature_2m": (t_k, "K"),
            "dewpoint_temperature_2m": ([td + 273.15] * 3, "K"),
            "surface_pressure": ([101300.0] * 3, "Pa"),
            "u_component_of_wind_10m": ([U10_FOR_U2_2 * 0.6] * 3, "m s-1"),
            "v_component_of_wind_10m": ([U10_FOR_U2_2 * 0.8] * 3, "m s-1"),
            "surface_net_solar_radiation_sum": ([17.44e6 * d for d in days], "J m-2"),
            "surface_net_thermal_radiation_sum": ([-3.11e6 * d for d in days], "J m-2"),
            "surface_solar_radiation_downwards_sum": ([22.65e6 * d for d in days], "J m-2"),
            "total_precipitation_sum": ([0.05, 0.1, 0.2], "m"),
        },
        months,
    )
    out = era5_land_to_monthly(raw)
    assert set(out.data_vars) == set(MONTHLY_VARIABLES)
    for v, spec in MONTHLY_VARIABLES.items():
        assert out[v].attrs["units"] == spec["units"]
    assert "K -> degC" in out.attrs["conversions"] and "ERA5-Land" in out.attrs["source"]
    assert out["temperature_c"].values[:, 0, 0] == pytest.approx([29.2, 30.2, 31.2], abs=1e-4)
    assert out["precipitation_mm"].values[:, 0, 0] == pytest.approx([50.0, 100.0, 200.0], rel=1e-6)
    assert out["solar_mj_m2"].values[1, 0, 0] == pytest.approx(22.65 * 30, rel=1e-6)
    # April by hand: es = e°(30.2), Δ eq. 13, γ = 0.665e-3 x 101.3, u2 = 2, Rn = 14.33, G = 0.07 (31.2 - 29.2)
    es = 0.6108 * math.exp(17.27 * 30.2 / (30.2 + 237.3))
    delta = 4098 * es / (30.2 + 237.3) ** 2
    gamma = 0.665e-3 * 101.3
    g = 0.07 * 2.0
    eto_day = (0.408 * delta * (14.33 - g) + gamma * 900 / 303.2 * 2.0 * (es - 2.85)) / (delta + gamma * 1.68)
    assert out["eto_mm"].values[1, 0, 0] == pytest.approx(eto_day * 30, rel=1e-5)
    with pytest.raises(
        ValueError, match=r"test tiles: ERA5-Land monthly .* needs variable\(s\) \['total_precipitation"
    ):
        era5_land_to_monthly(raw.drop_vars("total_precipitation_sum"))


def test_terraclimate_to_monthly_keeps_pet_and_fao56_reproduces_example_17():
    # a grid at Bangkok's latitude (13°44'N) in EPSG:4326
    lat = 13 + 44 / 60
    grid = RegionGrid(crs="EPSG:4326", resolution=0.01, bounds=(100.5, lat - 0.005, 100.51, lat + 0.005))
    months = ["2020-03-01", "2020-04-01", "2020-05-01"]
    srad_w = 22.65 / 0.0864  # W m-2 giving Rs = 22.65 MJ m-2 day-1
    raw = _raw(
        {
            "tmmx": ([33.8, 34.8, 35.8], "degC"),
            "tmmn": ([24.6, 25.6, 26.6], "degC"),  # Tmean 29.2, 30.2, 31.2 -> G(April) = 0.14
            "pr": ([20.0, 60.0, 180.0], "mm"),
            "srad": ([srad_w] * 3, "W m-2"),
            "pet": ([150.0, 170.0, 160.0], "mm"),
            "vap": ([2.85] * 3, "kPa"),
            "vs": ([U10_FOR_U2_2] * 3, "m s-1"),
        },
        months,
        grid,
    )
    out = terraclimate_to_monthly(raw)
    assert out["eto_mm"].values[:, 0, 0] == pytest.approx([150.0, 170.0, 160.0])
    assert out["temperature_c"].values[:, 0, 0] == pytest.approx([29.2, 30.2, 31.2], abs=1e-5)
    assert out["solar_mj_m2"].values[1, 0, 0] == pytest.approx(22.65 * 30, rel=1e-6)
    assert out["solar_mj_m2"].values[0, 0, 0] == pytest.approx(22.65 * 31, rel=1e-6)
    fao = terraclimate_to_monthly(raw, eto="fao56", elevation_m=2.0)
    assert round(float(fao["eto_mm"].values[1, 0, 0]) / 30, 2) == 5.72
    with pytest.raises(ValueError, match="elevation_m"):
        terraclimate_to_monthly(raw, eto="fao56")


# --------------------------------------------------------------------------------------
# tiles with <var>_<YYYY-MM> bands
# --------------------------------------------------------------------------------------


def _tile(path: Path, grid: RegionGrid, col0: int, ncols: int, bands: dict[str, tuple[np.ndarray, str | None]]):
    t = grid.transform
    transform = Affine(grid.resolution, 0.0, t.c + col0 * grid.resolution, 0.0, -grid.resolution, t.f)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=ncols,
        height=grid.height,
        count=len(bands),
        dtype="float32",
        crs=grid.crs,
        transform=transform,
        nodata=np.nan,
    ) as dst:
        for i, (desc, (arr, unit)) in enumerate(bands.items(), start=1):
            dst.write(arr.astype(np.float32), i)
            dst.set_band_description(i, desc)
            if unit is not None:
                dst.update_tags(i, units=unit)


def test_read_monthly_bands_mosaics_tiles_and_checks_tags(tmp_path):
    grid = RegionGrid(crs="EPSG:32648", resolution=1000.0, bounds=(500000.0, 1500000.0, 504000.0, 1503000.0))
    rng = np.random.default_rng(1)
    full = {f"pr_2020-{m:02d}": rng.uniform(0, 300, grid.shape) for m in (1, 2)}
    full.update({f"temperature_2m_2020-{m:02d}": rng.uniform(270, 300, grid.shape) for m in (1, 2)})
    units = {"pr": "mm", "temperature_2m": "K"}
    for name, c0 in (("west.tif", 0), ("east.tif", 2)):
        _tile(
            tmp_path / name,
            grid,
            c0,
            2,
            {k: (v[:, c0 : c0 + 2], units[k.rsplit("_", 1)[0]]) for k, v in full.items()},
        )
    raw = read_monthly_bands([tmp_path / "west.tif", tmp_path / "east.tif"], grid)
    assert list(raw["time"].values) == list(pd.to_datetime(["2020-01-01", "2020-02-01"]).values)
    assert raw["pr"].attrs["units"] == "mm" and raw["temperature_2m"].attrs["units"] == "K"
    np.testing.assert_allclose(raw["pr"].values[1], full["pr_2020-02"].astype(np.float32))
    np.testing.assert_allclose(raw["temperature_2m"].values[0], full["temperature_2m_2020-01"].astype(np.float32))
    assert raw.rio.crs.to_epsg() == 32648

    _tile(tmp_path / "nounit.tif", grid, 0, 4, {"pr_2020-01": (full["pr_2020-01"], None)})
    with pytest.raises(ValueError, match=r"nounit\.tif: band 1 \(pr_2020-01\) of variable 'pr' has no 'units' tag"):
        read_monthly_bands([tmp_path / "nounit.tif"], grid)
    _tile(tmp_path / "baddesc.tif", grid, 0, 4, {"pr-2020-01": (full["pr_2020-01"], "mm")})
    with pytest.raises(ValueError, match=r"baddesc\.tif: band 1 description 'pr-2020-01'"):
        read_monthly_bands([tmp_path / "baddesc.tif"], grid)
    # an unknown unit surfaces in the recipe, naming the tile and variable
    _tile(tmp_path / "odd.tif", grid, 0, 4, {"pr_2020-01": (full["pr_2020-01"], "inch")})
    odd = read_monthly_bands([tmp_path / "odd.tif"], grid)
    with pytest.raises(ValueError, match=r"odd\.tif: variable 'pr' has units 'inch'"):
        ok = {u: odd["pr"].copy().assign_attrs(units=unit) for u, unit in (("t", "degC"), ("s", "W m-2"), ("e", "mm"))}
        terraclimate_to_monthly(odd.assign(tmmx=ok["t"], tmmn=ok["t"], srad=ok["s"], pet=ok["e"]))


# --------------------------------------------------------------------------------------
# months -> years
# --------------------------------------------------------------------------------------


def _canonical_months(months: pd.DatetimeIndex, grid: RegionGrid = GRID) -> xr.Dataset:
    coords = grid.coords()
    n = len(months)
    ds = xr.Dataset(coords={"time": months.values, "y": coords["y"], "x": coords["x"]})
    base = np.arange(n, dtype=float)[:, None, None] * np.ones((1,) + grid.shape)
    for i, (v, spec) in enumerate(MONTHLY_VARIABLES.items()):
        ds[v] = xr.DataArray(base + 10 * i, dims=("time", "y", "x"), attrs={"units": spec["units"]})
    ds.attrs.update(source="synthetic", conversions="none")
    return ds.rio.write_crs(grid.crs)


def test_annual_from_monthly_sums_means_and_attrs():
    months = pd.date_range("2019-01-01", periods=24, freq="MS")
    ann = annual_from_monthly(_canonical_months(months), [2019, 2020])
    assert ann["temperature_c"].dims == ("year", "y", "x")
    assert list(ann["year"].values) == [2019, 2020]
    # temperature: mean of 0..11 (+0) and 12..23; precipitation (+10): sums
    assert ann["temperature_c"].values[:, 0, 0] == pytest.approx([5.5, 17.5])
    assert ann["precipitation_mm"].values[:, 0, 0] == pytest.approx([sum(range(12)) + 120, sum(range(12, 24)) + 120])
    assert ann["precipitation_mm"].attrs["units"] == "mm yr-1"
    assert ann["temperature_c"].attrs["aggregation"] == "mean of the 12 monthly means"
    assert ann["eto_mm"].attrs["aggregation"] == "sum of the 12 months"
    assert ann.attrs["source"] == "synthetic" and "conversions" in ann.attrs
    assert ann.rio.crs.to_epsg() == 32648


def test_monthly_and_annual_cubes_round_trip_through_netcdf(tmp_path):
    from karstflow.io import read_cube, write_netcdf

    months = pd.date_range("2019-01-01", periods=12, freq="MS")
    write_netcdf(_canonical_months(months), tmp_path / "monthly.nc")
    ann = annual_from_monthly(read_cube(tmp_path / "monthly.nc"), [2019])
    write_netcdf(ann, tmp_path / "annual.nc")
    back = read_cube(tmp_path / "annual.nc")
    assert ann.rio.crs.to_epsg() == 32648  # recovered from the monthly file's grid mapping
    assert back["eto_mm"].dims == ("year", "y", "x")
    assert CRS.from_wkt(back["spatial_ref"].attrs["crs_wkt"]).to_epsg() == 32648
    assert float(back["eto_mm"][0, 0, 0]) == pytest.approx(sum(range(12)) + 12 * 30)
    assert back["eto_mm"].attrs["units"] == "mm yr-1"


def test_annual_from_monthly_incomplete_year_names_year_and_months():
    months = pd.date_range("2019-01-01", periods=11, freq="MS")
    with pytest.raises(ValueError, match=r"year 2019 has 11 monthly step\(s\) \(months \[1, 2, .*, 11\]\)"):
        annual_from_monthly(_canonical_months(months), [2019])
    with pytest.raises(ValueError, match=r"year 2020 has 0 monthly step\(s\)"):
        annual_from_monthly(_canonical_months(pd.date_range("2019-01-01", periods=12, freq="MS")), [2020])


# --------------------------------------------------------------------------------------
# real data: BCSD observations, North Carolina 1999 (CF NetCDF, 0.125 deg, month ends)
# --------------------------------------------------------------------------------------

UTM_GRID = RegionGrid(crs="EPSG:32617", resolution=10000.0, bounds=(300000.0, 3700000.0, 700000.0, 4050000.0))


@pytest.fixture(scope="module")
def bcsd() -> xr.Dataset:
    if not BCSD.exists():
        pytest.skip(f"real monthly climate file not found: {BCSD}")
    with xr.open_dataset(BCSD) as ds:
        return ds.load()


def _cell_lonlat(grid: RegionGrid) -> tuple[np.ndarray, np.ndarray]:
    c = grid.coords()
    xx, yy = np.meshgrid(c["x"], c["y"])
    return Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(xx, yy)


def test_bcsd_nearest_equals_independent_sampling(bcsd):
    monthly = read_monthly_local(
        BCSD, {"precipitation_mm": "pr", "temperature_c": "tas"}, UTM_GRID, resampling="nearest"
    )
    assert monthly.sizes == {"time": 12, "y": 35, "x": 40}
    assert str(monthly["time"].values[0])[:10] == "1999-01-01"  # month ends -> month starts
    assert monthly["precipitation_mm"].attrs["units"] == "mm month-1"
    assert "pr: mm/m -> mm month-1" in monthly.attrs["conversions"]
    assert "tas: C -> degC" in monthly.attrs["conversions"]
    annual = annual_from_monthly(monthly, [1999])

    # independent: the raw file's annual sum / mean, sampled at the nearest 0.125-deg cell of each centre
    lon, lat = _cell_lonlat(UTM_GRID)
    raw_p = bcsd["pr"].sum("time", skipna=False)
    raw_t = bcsd["tas"].mean("time", skipna=False)
    pts = {"latitude": xr.DataArray(lat, dims=("y", "x")), "longitude": xr.DataArray(lon, dims=("y", "x"))}
    exp_p = raw_p.sel(pts, method="nearest").values
    exp_t = raw_t.sel(pts, method="nearest").values
    got_p = annual["precipitation_mm"].values[0]
    got_t = annual["temperature_c"].values[0]
    np.testing.assert_array_equal(np.isnan(got_p), np.isnan(exp_p))
    ok = np.isfinite(exp_p)
    assert ok.sum() > 900  # most of the grid is land with data
    np.testing.assert_allclose(got_p[ok], exp_p[ok], rtol=1e-5)
    np.testing.assert_allclose(got_t[ok], exp_t[ok], rtol=1e-5, atol=1e-4)
    assert 900 < np.nanmean(got_p) < 1600  # mm yr-1, plausible for North Carolina


def test_bcsd_bilinear_matches_independent_interpolation(bcsd):
    monthly = read_monthly_local(BCSD, {"precipitation_mm": "pr", "temperature_c": "tas"}, UTM_GRID)
    annual = annual_from_monthly(monthly, [1999])
    lon, lat = _cell_lonlat(UTM_GRID)
    pts = {"latitude": xr.DataArray(lat, dims=("y", "x")), "longitude": xr.DataArray(lon, dims=("y", "x"))}
    exp_p = bcsd["pr"].sum("time", skipna=False).interp(pts, method="linear").values
    exp_t = bcsd["tas"].mean("time", skipna=False).interp(pts, method="linear").values
    got_p = annual["precipitation_mm"].values[0]
    got_t = annual["temperature_c"].values[0]
    ok = np.isfinite(exp_p) & np.isfinite(got_p)
    assert ok.sum() > 800
    np.testing.assert_allclose(got_p[ok], exp_p[ok], rtol=1e-4)
    np.testing.assert_allclose(got_t[ok], exp_t[ok], rtol=1e-4, atol=1e-3)
    # coarse scale: the grid means agree
    assert np.mean(got_p[ok]) == pytest.approx(np.mean(exp_p[ok]), rel=1e-5)


def test_read_monthly_local_errors_name_file_and_variable(bcsd, tmp_path):
    with pytest.raises(ValueError, match=r"bcsd_obs_1999\.nc: no variable 'prcp' \(for precipitation_mm\)"):
        read_monthly_local(BCSD, {"precipitation_mm": "prcp"}, UTM_GRID)
    with pytest.raises(ValueError, match=r"bcsd_obs_1999\.nc: variable 'pr' has units 'furlong'"):
        read_monthly_local(BCSD, {"precipitation_mm": "pr"}, UTM_GRID, units={"precipitation_mm": "furlong"})
    no_time = tmp_path / "no_time.nc"
    flat = bcsd[["pr"]].isel(time=0, drop=True)
    flat.encoding = {}
    flat.to_netcdf(no_time)
    with pytest.raises(ValueError, match=r"no_time\.nc: variable 'pr' has no time axis"):
        read_monthly_local(no_time, {"precipitation_mm": "pr"}, UTM_GRID)
    # a units override is applied and recorded
    over = read_monthly_local(
        BCSD, {"precipitation_mm": "pr"}, UTM_GRID, resampling="nearest", units={"precipitation_mm": "mm"}
    )
    assert "config override" in over.attrs["conversions"]


def test_read_monthly_local_geotiff_plane_is_exact_under_bilinear(tmp_path):
    """A GeoTIFF in EPSG:4326 with <var>_<YYYY-MM> bands; a plane in lon/lat survives bilinear exactly."""
    path = tmp_path / "tas.tif"
    res, lon0, lat0, w, h = 0.05, -82.0, 36.0, 40, 30
    lons = lon0 + res * (np.arange(w) + 0.5)
    lats = lat0 - res * (np.arange(h) + 0.5)
    lon2, lat2 = np.meshgrid(lons, lats)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=w,
        height=h,
        count=12,
        dtype="float64",
        crs="EPSG:4326",
        transform=Affine(res, 0.0, lon0, 0.0, -res, lat0),
    ) as dst:
        for m in range(1, 13):
            dst.write(280.0 + m + 2.0 * (lon2 + 82.0) - 3.0 * (lat2 - 35.0), m)
            dst.set_band_description(m, f"t2m_2001-{m:02d}")
            dst.update_tags(m, units="K")
    # 2 km cells, finer than the source's ~4.5 x 5.5 km, so GDAL's bilinear is the plain 2 x 2 kernel
    grid = RegionGrid(crs="EPSG:32617", resolution=2000.0, bounds=(420000.0, 3930000.0, 480000.0, 3970000.0))
    monthly = read_monthly_local(path, {"temperature_c": "t2m"}, grid, resampling="bilinear")
    assert "t2m: K -> degC" in monthly.attrs["conversions"]
    lon, lat = _cell_lonlat(grid)
    for m in (1, 7):
        expected = 280.0 + m + 2.0 * (lon + 82.0) - 3.0 * (lat - 35.0) - 273.15
        np.testing.assert_allclose(monthly["temperature_c"].values[m - 1], expected, atol=2e-4)

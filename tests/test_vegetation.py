"""Growing-season composites, cross-calibration and the annual cube (karstflow.vegetation).

Synthetic Landsat scenes with planted clouds (median and max-NDVI by hand, clear count,
laziness and chunks); the real MOD13Q1 dates of the R package sits composited onto a UTM
region grid against an independent rasterio + numpy computation; a synthetic overlap year
with a planted inter-sensor relation (fit recovers it) and an annual cube whose Theil-Sen
slope is the planted one only after calibration.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr
from scipy.stats import theilslopes

from karstflow.greening import vegetation_index_cube
from karstflow.grid import RegionGrid
from karstflow.sources import Layer, MissingBandError, Scene
from karstflow.trends import theil_sen_mk
from karstflow.vegetation import (
    Calibration,
    annual_cube,
    apply_calibration,
    calibration_from_config,
    composite_summary_of_year,
    composite_year,
    fit_calibration,
    season_period,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MODIS_DATA = PROJECT_ROOT.parent / "shared" / "data" / "modis-mod13q1"

CRS = "EPSG:32649"  # UTM 49N (Guangxi karst)
GRID = RegionGrid.from_bounds(CRS, 30.0, (500010.0, 2700000.0, 500010.0 + 6 * 30, 2700000.0 + 5 * 30))


# -- season ---------------------------------------------------------------------------------


def test_season_period():
    p = season_period(2014, range(4, 11))
    assert (p.start, p.end, p.name) == (dt.date(2014, 4, 1), dt.date(2014, 10, 31), "season-2014")
    # crossing the year end: the season belongs to the year of its last month
    p = season_period(2016, [11, 12, 1, 2])
    assert (p.start, p.end) == (dt.date(2015, 11, 1), dt.date(2016, 2, 29))
    p = season_period(2014, range(1, 13))
    assert (p.start, p.end) == (dt.date(2014, 1, 1), dt.date(2014, 12, 31))
    with pytest.raises(ValueError, match=r"vegetation\.season_months.*consecutive"):
        season_period(2014, [4, 6])
    with pytest.raises(ValueError, match=r"vegetation\.season_months.*13"):
        season_period(2014, [12, 13])
    with pytest.raises(ValueError, match=r"vegetation\.season_months"):
        season_period(2014, [])


# -- synthetic Landsat scenes -----------------------------------------------------------------


def sr_dn(sr):
    """Landsat C2 L2 DN of a surface reflectance (inverse of DN * 2.75e-5 - 0.2)."""
    return np.round((np.asarray(sr) + 0.2) / 2.75e-5).astype(np.uint16)


def write_scene(tmp_path: Path, name: str, bands: dict[str, np.ndarray], grid: RegionGrid = GRID) -> dict:
    path = tmp_path / f"{name}.tif"
    names = list(bands)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=grid.width,
        height=grid.height,
        count=len(names),
        dtype=next(iter(bands.values())).dtype.name,
        crs=grid.crs,
        transform=grid.transform,
        nodata=None,
    ) as dst:
        for i, n in enumerate(names, start=1):
            dst.write(bands[n], i)
    return {n: (Layer(str(path), i),) for i, n in enumerate(names, start=1)}


CLOUD = 1 << 3


@pytest.fixture
def landsat_scenes(tmp_path):
    """Four dates of red/NIR/blue reflectance with planted clouds, and the decoded truth.

    Landsat 8 except date 3 (Landsat 7, harmonised with Roy et al. 2016 in the truth).
    Pixel (0, 0) is cloudy on every date; column 5 cloudy on dates 0 and 1.
    """
    h, w = GRID.shape
    rng = np.random.default_rng(42)
    platforms = ["landsat-8", "landsat-8", "landsat-9", "landsat-7"]
    scenes, truth_nd, truth_ev, clear = [], [], [], []
    for t, platform in enumerate(platforms):
        red = rng.uniform(0.03, 0.12, (h, w))
        nir = rng.uniform(0.2, 0.5, (h, w))
        blue = rng.uniform(0.01, 0.05, (h, w))
        qa = np.full((h, w), 1 << 6, np.uint16)
        qa[0, 0] = CLOUD
        if t < 2:
            qa[:, 5] = CLOUD | (1 << 1)
        if t == 2:
            qa[2, 2] = 1 << 4  # shadow
        dn = {"blue": sr_dn(blue), "red": sr_dn(red), "nir": sr_dn(nir)}
        sr = {k: v.astype(np.float64) * 2.75e-5 - 0.2 for k, v in dn.items()}
        if platform == "landsat-7":
            sr = {
                "red": 0.0061 + 0.9047 * sr["red"],
                "nir": 0.0412 + 0.8462 * sr["nir"],
                "blue": 0.0003 + 0.8474 * sr["blue"],
            }
        ok = (qa & 0b111111) == 0
        nd = np.where(ok, (sr["nir"] - sr["red"]) / (sr["nir"] + sr["red"]), np.nan)
        ev = np.where(ok, 2.5 * (sr["nir"] - sr["red"]) / (sr["nir"] + 6 * sr["red"] - 7.5 * sr["blue"] + 1), np.nan)
        layers = write_scene(tmp_path, f"ls{t}", {**dn, "qa_pixel": qa})
        scenes.append(
            Scene(
                id=f"LS{t}",
                date=dt.date(2015, 4 + t, 10),
                layers=layers,
                meta={"sensor": "landsat", "platform": platform},
                encoding="as-is",
            )
        )
        truth_nd.append(nd)
        truth_ev.append(ev)
        clear.append(ok)
    return scenes, np.array(truth_nd), np.array(truth_ev), np.array(clear)


def test_composite_median_by_hand(landsat_scenes):
    scenes, nd, ev, clear = landsat_scenes
    ds = composite_year(scenes[::-1], GRID, "landsat", chunk_px=4)  # order of the list does not matter
    # lazy: one dask array, blocks of 4 px
    for v in ("ndvi", "evi", "kndvi", "clear_count"):
        assert isinstance(ds[v].data, da.Array)
    assert ds["ndvi"].data.chunks == ((4, 1), (4, 2))
    assert ds["ndvi"].dtype == np.float32 and ds["clear_count"].dtype == np.uint16
    assert ds.attrs["sensor"] == "landsat" and ds.attrs["method"] == "median" and ds.attrs["scenes"] == 4
    assert ds.attrs["dates"].split(",") == ["2015-04-10", "2015-05-10", "2015-06-10", "2015-07-10"]
    np.testing.assert_array_equal(ds["x"].values, GRID.coords()["x"])
    assert ds.rio.crs.to_epsg() == 32649
    ds = ds.load()
    np.testing.assert_array_equal(ds["clear_count"].values, clear.sum(axis=0))
    assert ds["clear_count"].values[0, 0] == 0 and ds["clear_count"].values[0, 5] == 2
    assert ds["clear_count"].values[2, 2] == 3 and ds["clear_count"].values[1, 1] == 4
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want_nd = np.nanmedian(nd, axis=0)
            want_ev = np.nanmedian(ev, axis=0)
            want_kn = np.nanmedian(np.tanh(nd**2), axis=0)
    np.testing.assert_allclose(ds["ndvi"].values, want_nd, atol=2e-6)
    np.testing.assert_allclose(ds["evi"].values, want_ev, atol=2e-6)
    np.testing.assert_allclose(ds["kndvi"].values, want_kn, atol=2e-6)
    assert np.isnan(ds["ndvi"].values[0, 0])
    # by hand on one pixel with an even count (2 clear dates in column 5: mean of the two)
    assert ds["ndvi"].values[3, 5] == pytest.approx((nd[2, 3, 5] + nd[3, 3, 5]) / 2, abs=2e-6)

    summary = composite_summary_of_year(ds, year=2015)
    assert summary["sensor"] == "landsat" and summary["scenes"] == 4 and summary["pixels"] == 30
    assert summary["clear_share"] == pytest.approx(29 / 30)
    assert summary["clear_count_mean"] == pytest.approx(clear.sum() / 30)
    json.dumps(summary)


def test_composite_max_ndvi_by_hand(landsat_scenes):
    scenes, nd, ev, clear = landsat_scenes
    ds = composite_year(scenes, GRID, "landsat", method="max-ndvi", chunk_px=3).load()
    key = np.where(clear, nd, -np.inf)
    idx = np.argmax(key, axis=0)
    yy, xx = np.indices(idx.shape)
    want_nd = np.where(clear.any(0), nd[idx, yy, xx], np.nan)
    want_ev = np.where(clear.any(0), ev[idx, yy, xx], np.nan)
    np.testing.assert_allclose(ds["ndvi"].values, want_nd, atol=2e-6)
    np.testing.assert_allclose(ds["evi"].values, want_ev, atol=2e-6)  # the EVI of the max-NDVI date
    np.testing.assert_allclose(ds["kndvi"].values, np.tanh(want_nd**2), atol=2e-6)
    # the max is not the median
    full = clear.all(axis=0)
    assert full.sum() >= 20
    assert (ds["ndvi"].values[full] > np.median(nd, axis=0)[full] + 1e-3).all()
    np.testing.assert_array_equal(ds["clear_count"].values, clear.sum(axis=0))


def test_composite_all_cloudy_and_errors(tmp_path, landsat_scenes):
    scenes, *_ = landsat_scenes
    h, w = GRID.shape
    layers = write_scene(
        tmp_path,
        "cloudy",
        {
            "blue": np.full((h, w), 9000, np.uint16),
            "red": np.full((h, w), 10000, np.uint16),
            "nir": np.full((h, w), 20000, np.uint16),
            "qa_pixel": np.full((h, w), CLOUD, np.uint16),
        },
    )
    cloudy = Scene("C", dt.date(2015, 5, 1), layers, {"sensor": "landsat", "platform": "landsat-8"}, "as-is")
    ds = composite_year([cloudy], GRID, "landsat", chunk_px=4).load()
    assert np.isnan(ds["ndvi"].values).all() and (ds["clear_count"].values == 0).all()
    with pytest.warns(UserWarning, match="no clear observation"):
        assert composite_summary_of_year(ds)["all_cloudy"]

    wrong = Scene("S", dt.date(2015, 5, 1), layers, {"sensor": "modis"}, "as-is")
    with pytest.raises(ValueError, match=r"scene S .*'modis'.*expected 'landsat'"):
        composite_year([*scenes, wrong], GRID, "landsat")
    no_qa = Scene("Q", dt.date(2015, 5, 1), {k: v for k, v in layers.items() if k != "qa_pixel"}, cloudy.meta, "as-is")
    with pytest.raises(MissingBandError, match=r"scene Q .*qa_pixel"):
        composite_year([no_qa], GRID, "landsat")
    bad = Scene("P", dt.date(2015, 5, 1), layers, {"sensor": "landsat", "platform": "landsat-6"}, "as-is")
    with pytest.raises(ValueError, match="landsat-6"):
        composite_year([bad], GRID, "landsat")
    with pytest.raises(ValueError, match="method"):
        composite_year(scenes, GRID, "landsat", method="mean")
    with pytest.raises(ValueError, match="no landsat scenes"):
        composite_year([], GRID, "landsat")


# -- real MOD13Q1 onto a UTM grid -------------------------------------------------------------

#: The wet season of Sinop, Mato Grosso (rains October to April; southern hemisphere):
#: season 2014 = 2013-10-01 .. 2014-04-30, which also exercises a season crossing the year
#: end. Seven of the twelve dates fall in it.
MODIS_SEASON = [10, 11, 12, 1, 2, 3, 4]
#: the planted "cloudy" block of the synthetic reliability layer of the 2014-01-17 date
CLOUDY_DATE = "2014-01-17"


@pytest.fixture
def modis_scenes(tmp_path):
    if not MODIS_DATA.is_dir():
        pytest.skip(f"real MOD13Q1 data (sits) not found at {MODIS_DATA}")
    files = sorted(MODIS_DATA.glob("TERRA_MODIS_012010_NDVI_*.tif"))
    assert len(files) == 12
    scenes = []
    for f in files:
        date = dt.date.fromisoformat(f.stem.rsplit("_", 1)[1])
        # the sits files carry no SummaryQA: a reliability layer on the same sinusoidal grid
        # is written, 0 (good) everywhere but a block of 3 (cloudy) on one date, with the
        # product's fill value -1 as nodata (without one, the warped read of
        # karstflow.sources.rasters.read_window takes 0, i.e. "good", for nodata)
        with rasterio.open(f) as src:
            profile = src.profile
            rel = np.zeros((src.height, src.width), np.int8)
        if date.isoformat() == CLOUDY_DATE:
            rel[40:90, 100:180] = 3
        profile.update(dtype="int8", count=1, nodata=-1)
        rel_path = tmp_path / f"rel_{date}.tif"
        with rasterio.open(rel_path, "w", **profile) as dst:
            dst.write(rel, 1)
        layers = {"ndvi": (Layer(str(f), 1),), "pixel_reliability": (Layer(str(rel_path), 1),)}
        scenes.append(Scene(f"MOD13Q1.{date}", date, layers, {"sensor": "modis"}, "as-is"))
    return scenes


def test_modis_real_season_composite_equals_rasterio_numpy(modis_scenes):
    from rasterio.warp import Resampling, reproject

    period = season_period(2014, MODIS_SEASON)
    assert (period.start, period.end) == (dt.date(2013, 10, 1), dt.date(2014, 4, 30))
    chosen = [s for s in modis_scenes if period.contains(s.date)]
    assert len(chosen) == 7
    # UTM 21S inside the data (lon -55.80..-55.20, lat -11.80..-11.50), 250 m
    grid = RegionGrid.from_bounds("EPSG:32721", 250.0, (640000.0, 8700000.0, 685000.0, 8722000.0))
    ds = composite_year(chosen, grid, "modis", chunk_px=64)
    assert ds["ndvi"].data.chunks == ((64, 24), (64, 64, 52))
    ds = ds.load()

    # independent: reproject each date with rasterio (nearest), mask, scale, np.nanmedian
    stack, count = [], np.zeros(grid.shape, int)
    for s in chosen:
        planes = {}
        for name in ("ndvi", "pixel_reliability"):
            with rasterio.open(s.layers[name][0].path) as src:
                dst = np.full(grid.shape, -32768, np.int16)
                reproject(
                    src.read(1).astype(np.int16),
                    dst,
                    src_transform=src.transform,
                    src_crs=src.crs,
                    dst_transform=grid.transform,
                    dst_crs=grid.crs,
                    resampling=Resampling.nearest,
                    src_nodata=None,
                    dst_nodata=-32768,
                )
            planes[name] = dst
        dn, rel = planes["ndvi"], planes["pixel_reliability"]
        ok = (dn >= -2000) & (dn <= 10000) & np.isin(rel, (0, 1))
        stack.append(np.where(ok, dn * 1e-4, np.nan))
        count += ok
    stack = np.array(stack)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanmedian(stack, axis=0)
    np.testing.assert_array_equal(ds["clear_count"].values, count)
    np.testing.assert_allclose(ds["ndvi"].values, want, atol=1e-6, equal_nan=True)
    # the planted cloudy block and the out-of-range DNs did drop observations
    assert count.min() < 7 and count.max() == 7
    assert np.isfinite(ds["ndvi"].values).mean() > 0.99
    assert 0.2 < float(np.nanmean(ds["ndvi"].values)) < 0.95
    # NDVI-only files: EVI is NaN; kNDVI is the median of tanh(NDVI^2) of the clear dates
    assert np.isnan(ds["evi"].values).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_allclose(
            ds["kndvi"].values, np.nanmedian(np.tanh(stack**2), axis=0), atol=1e-6, equal_nan=True
        )
    assert ds.attrs["scenes"] == 7 and ds.attrs["dates"].split(",")[0] == "2013-10-16"


# -- cross-calibration ------------------------------------------------------------------------

YX = {"y": np.arange(30) * -30.0 + 2700000.0, "x": np.arange(30) * 30.0 + 500000.0}


def da2(values, sensor, name="ndvi"):
    return xr.DataArray(values.astype(np.float32), dims=("y", "x"), coords=YX, name=name, attrs={"sensor": sensor})


def overlap(seed=1):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.2, 0.85, (30, 30))
    b = 0.04 + 0.97 * a + rng.normal(0, 0.005, a.shape)
    a[:3] = np.nan  # not clear in A
    b[-2:, :5] = np.nan  # not clear in B
    return a, b


def test_fit_calibration_recovers_planted_relation():
    a, b = overlap()
    # regressing B on A recovers the planted B = 0.04 + 0.97 A
    cal = fit_calibration(da2(b, "modis"), da2(a, "landsat"), year=2010)
    assert cal.gain == pytest.approx(0.97, abs=0.005) and cal.offset == pytest.approx(0.04, abs=0.003)
    assert cal.n_pixels == 900 - 90 - 10
    assert (cal.source_sensor, cal.target_sensor, cal.year, cal.method, cal.index) == (
        "landsat",
        "modis",
        2010,
        "ols",
        "ndvi",
    )
    assert cal.r2 > 0.99
    # mapping B onto A's scale: A = (B - 0.04) / 0.97
    cal = fit_calibration(da2(a, "landsat"), da2(b, "modis"), year=2010)
    assert cal.gain == pytest.approx(1 / 0.97, abs=0.006)
    assert cal.offset == pytest.approx(-0.04 / 0.97, abs=0.004)
    back = apply_calibration(da2(b, "modis"), cal)
    assert back.attrs["sensor"] == "landsat" and back.dtype == np.float32
    ok = np.isfinite(a) & np.isfinite(b)
    assert np.abs(back.values[ok] - a[ok]).mean() < 0.005  # the noise level
    # offset-only: gain 1, offset = mean difference
    cal = fit_calibration(da2(a, "landsat"), da2(b, "modis"), year=2010, method="offset")
    a32, b32 = a.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64)
    assert cal.gain == 1.0 and cal.offset == pytest.approx(np.mean(a32[ok] - b32[ok]), abs=1e-12)
    with pytest.raises(ValueError, match=r"only 10 pixels .* at least 100"):
        fit_calibration(da2(a, "landsat"), da2(np.where(np.arange(900).reshape(30, 30) < 100, b, np.nan), "modis"),
                        year=2010, min_pixels=100)  # fmt: skip
    with pytest.raises(ValueError, match="apply_calibration"):
        apply_calibration(da2(b, "sentinel-2"), cal)


def test_calibration_from_config():
    cal = calibration_from_config({"from": "modis", "to": "landsat", "gain": 1.0, "offset": -0.04})
    assert (cal.source_sensor, cal.target_sensor, cal.gain, cal.offset, cal.method) == (
        "modis",
        "landsat",
        1.0,
        -0.04,
        "configured",
    )
    json.dumps(cal.to_dict())
    with pytest.raises(ValueError, match=r"vegetation\.calibration\.from.*'avhrr'"):
        calibration_from_config({"from": "avhrr", "to": "landsat"})
    with pytest.raises(ValueError, match=r"vegetation\.calibration\.gain"):
        calibration_from_config({"from": "modis", "to": "landsat", "gain": "x"})
    with pytest.raises(ValueError, match=r"vegetation\.calibration: unknown entries \['slope'\]"):
        calibration_from_config({"from": "modis", "to": "landsat", "slope": 1})


def composite(values, sensor, evi=None, count=5):
    cc = np.where(np.isfinite(values), count, 0).astype(np.uint16)
    ds = xr.Dataset(
        {
            "ndvi": da2(values, sensor),
            "evi": da2(values * 0.8 if evi is None else evi, sensor, "evi"),
            "kndvi": da2(np.tanh(values**2), sensor, "kndvi"),
            "clear_count": (("y", "x"), cc),
        }
    )
    ds.attrs = {"sensor": sensor, "method": "median", "scenes": count}
    return ds.rio.write_crs("EPSG:32649")


def test_annual_cube_removes_sensor_switch_trend(tmp_path):
    rng = np.random.default_rng(7)
    base = rng.uniform(0.3, 0.6, (30, 30))
    slope = 0.004  # planted greening per year
    years = list(range(2000, 2016))
    sensor_of_year = {y: ("landsat" if y < 2008 else "modis") for y in years}

    def truth(y):
        return base + slope * (y - 2000)

    def modis(v):  # the planted inter-sensor relation, small noise
        return 0.04 + 0.97 * v + rng.normal(0, 0.003, v.shape)

    comps = {y: composite(truth(y) if s == "landsat" else modis(truth(y)), s) for y, s in sensor_of_year.items()}
    # overlap year 2008: both sensors
    cal = fit_calibration(composite(truth(2008), "landsat")["ndvi"], comps[2008]["ndvi"], year=2008)
    assert cal.gain == pytest.approx(1 / 0.97, abs=0.01) and cal.offset == pytest.approx(-0.04 / 0.97, abs=0.006)

    cube = annual_cube(comps, sensor_of_year, [cal], reference="landsat")
    assert cube["year"].dtype == np.int32 and cube["year"].values.tolist() == years
    assert cube["sensor"].values.tolist() == [sensor_of_year[y] for y in years]
    assert cube["clear_count"].dtype == np.uint16 and cube["ndvi"].dtype == np.float32
    assert cube["ndvi"].dims == ("year", "y", "x")
    np.testing.assert_allclose(cube["kndvi"].values, np.tanh(cube["ndvi"].values.astype(np.float64) ** 2), atol=1e-6)
    used = json.loads(cube.attrs["calibrations"])
    assert {u["applied_to"] for u in used} == {"ndvi", "evi"} and used[0]["source_sensor"] == "modis"

    naive = annual_cube(
        comps, sensor_of_year, [Calibration("modis", "landsat", 1.0, 0.0, 0, math.nan, "configured", None)],
        reference="landsat",
    )  # fmt: skip
    after = theil_sen_mk(cube["ndvi"])["slope"].values
    before = theil_sen_mk(naive["ndvi"])["slope"].values
    assert np.median(after) == pytest.approx(slope, abs=2e-4)
    assert abs(np.median(before) - slope) > 1e-3  # the uncalibrated switch is a visible false trend
    # one pixel with scipy
    ts = theilslopes(cube["ndvi"].values[:, 4, 7], years)
    assert ts.slope == pytest.approx(slope, abs=3e-4)
    assert abs(theilslopes(naive["ndvi"].values[:, 4, 7], years).slope - slope) > 1e-3

    # the greening stage reads it; and it survives a NetCDF round trip
    vic = vegetation_index_cube(cube, "kndvi", source="cube")
    assert set(vic.data_vars) == {"ndvi", "kndvi"}
    from karstflow.io import read_cube, write_netcdf

    write_netcdf(cube, tmp_path / "cube.nc")
    back = read_cube(tmp_path / "cube.nc")
    assert back["sensor"].values.tolist() == cube["sensor"].values.tolist()
    assert back.rio.crs.to_epsg() == 32649
    np.testing.assert_allclose(back["ndvi"].values, cube["ndvi"].values)
    assert json.loads(back.attrs["calibrations"])[0]["gain"] == pytest.approx(cal.gain)

    with pytest.raises(ValueError, match="no calibration maps modis onto the reference sensor landsat"):
        annual_cube(comps, sensor_of_year, [], reference="landsat")
    with pytest.raises(ValueError, match=r"no sensor given for year\(s\) \[2015\]"):
        annual_cube(comps, {y: s for y, s in sensor_of_year.items() if y != 2015}, [cal], reference="landsat")


def test_annual_cube_is_lazy_on_composites(landsat_scenes):
    scenes, *_ = landsat_scenes
    comp = composite_year(scenes, GRID, "landsat", chunk_px=4)
    cube = annual_cube({2015: comp, 2016: comp}, {2015: "landsat", 2016: "landsat"}, [], reference="landsat")
    assert isinstance(cube["ndvi"].data, da.Array)
    assert cube["ndvi"].data.chunks == ((1, 1), (4, 1), (4, 2))
    np.testing.assert_allclose(cube["ndvi"].values[1], comp["ndvi"].values)


def test_composite_geotiff_round_trip_into_the_cube(tmp_path, landsat_scenes):
    """The workflow writes composites as GeoTIFF bands BANDS and stacks them read back."""
    from karstflow.io import read_raster
    from karstflow.sources.rasters import write_streamed
    from karstflow.vegetation import BANDS

    scenes, nd, _, clear = landsat_scenes
    comp = composite_year(scenes, GRID, "landsat", chunk_px=4)
    path = tmp_path / "landsat_2015.tif"
    stacked = xr.concat([comp[b].astype(np.float32) for b in BANDS], dim="band")
    write_streamed(
        {path: (stacked, {"dtype": "float32", "nodata": float("nan"), "band_names": list(BANDS),
                          "tags": {"sensor": "landsat"}})},
        GRID,
    )  # fmt: skip
    back = read_raster(path).assign_coords(band=list(BANDS)).to_dataset("band")
    cube = annual_cube({2015: back, 2016: back}, {2015: "landsat", 2016: "landsat"}, [], reference="landsat")
    np.testing.assert_array_equal(cube["clear_count"].values[0], clear.sum(axis=0))
    np.testing.assert_allclose(cube["ndvi"].values[0], comp["ndvi"].values, equal_nan=True)
    # read back without a sensor attribute, the fit names the pair "unknown"
    other = back["ndvi"].copy(data=back["ndvi"].values * 0.9 + 0.05)
    other.attrs = {}
    ref = back["ndvi"].copy()
    ref.attrs = {}
    cal = fit_calibration(ref, other, year=2015, min_pixels=20)
    assert (cal.source_sensor, cal.target_sensor) == ("unknown", "unknown")
    assert cal.gain == pytest.approx(1 / 0.9, rel=1e-4) and cal.offset == pytest.approx(-0.05 / 0.9, abs=1e-4)
    # a composite made on Earth Engine's side has no scene list
    server = comp.load().assign_attrs(scenes="server-side", dates="")
    summary = composite_summary_of_year(server)
    assert summary["scenes"] == "server-side" and summary["clear_share"] == pytest.approx(29 / 30)


S2_DATA = PROJECT_ROOT.parent / "shared" / "data" / "sen2r-s2l2a"


@pytest.mark.skipif(not S2_DATA.is_dir(), reason=f"real Sentinel-2 L2A data (sen2r) not found at {S2_DATA}")
def test_sentinel2_real_composite_reads_scl_with_nearest_whatever_the_resampling():
    scenes, expected_clear, ndvi = [], [], []
    for date in ("20170703", "20190723"):
        boa = str(S2_DATA / f"S2A2A_{date}_022_Barbellino_BOA_10.tif")
        scl = str(S2_DATA / f"S2A2A_{date}_022_Barbellino_SCL_10.tif")
        layers = {"B2": (Layer(boa, 2),), "B4": (Layer(boa, 4),), "B8": (Layer(boa, 8),), "SCL": (Layer(scl, 1),)}
        scenes.append(Scene(date, dt.date.fromisoformat(date), layers, {"sensor": "sentinel-2"}, "as-is"))
        with rasterio.open(scl) as src:
            expected_clear.append(~np.isin(np.kron(src.read(1), np.ones((2, 2), np.uint8)), (0, 1, 3, 8, 9, 10, 11)))
        with rasterio.open(boa) as src:
            red, nir = src.read(4).astype(np.float64) / 1e4, src.read(8).astype(np.float64) / 1e4
        ndvi.append((nir - red) / (nir + red))
    grid = RegionGrid.from_raster(scenes[0].layers["B4"][0].path)
    ds = composite_year(scenes, grid, "sentinel-2", resampling="bilinear", chunk_px=16).load()
    clear = np.array(expected_clear)
    # a bilinear SCL would blend class codes (4 and 8 -> 6 ...) and change these counts
    np.testing.assert_array_equal(ds["clear_count"].values, clear.sum(axis=0))
    assert int((ds["clear_count"].values == 1).sum()) == 132  # the 2017 clouds, 4 x (30 + 3)
    both = clear.all(axis=0)
    np.testing.assert_allclose(ds["ndvi"].values[both], np.mean(np.array(ndvi), axis=0)[both], atol=2e-6)
    only_2019 = ~clear[0] & clear[1]
    np.testing.assert_allclose(ds["ndvi"].values[only_2019], ndvi[1][only_2019], atol=2e-6)


def test_the_overlap_fit_on_homogeneous_pixels_is_not_attenuated_by_mixed_edges():
    """A coarse sensor puts an edge a few pixels off: least squares on every pixel bends the
    gain (errors in the regressor); on homogeneous neighbourhoods the planted offset alone
    comes back."""
    from karstflow.vegetation import fit_calibration, homogeneous_pixels

    cols = np.arange(100)
    reference = np.where(cols < 50, 0.40, 0.60)[None, :].repeat(60, axis=0)
    other = np.where(cols < 54, 0.40, 0.60)[None, :].repeat(60, axis=0) + 0.04  # edge 4 px east
    ref = xr.DataArray(reference, dims=("y", "x"))
    oth = xr.DataArray(other, dims=("y", "x"))
    everything = fit_calibration(ref, oth, year=2016, reference_sensor="landsat", other_sensor="modis")
    assert everything.gain < 0.95
    homogeneous = fit_calibration(
        ref, oth, year=2016, reference_sensor="landsat", other_sensor="modis", window_px=9, max_std=0.01
    )
    assert homogeneous.gain == pytest.approx(1.0, abs=1e-9)
    assert homogeneous.offset == pytest.approx(-0.04, abs=1e-9)
    # the window excludes exactly the columns within 4 px of either edge, and the frame
    mask = homogeneous_pixels(reference, 9, 0.01) & homogeneous_pixels(other, 9, 0.01)
    assert homogeneous.n_pixels == int(mask.sum())
    assert not mask[:, 46:58].any() and mask[10:50, 10:40].all()
    with pytest.raises(ValueError, match="calibration_max_std"):
        fit_calibration(ref, oth, year=2016, window_px=9, max_std=0.01, min_pixels=10**6)


# -- surface reflectance bands for the unmixing ---------------------------------------------


def test_composite_carries_swir_reflectance_through_the_geotiff_into_the_cube(tmp_path):
    """Scenes with SWIR layers give season-median reflectance bands (TM/ETM+ harmonised to
    OLI with Roy et al. 2016), written as named GeoTIFF bands and stacked into the cube the
    desertification stage unmixes; scenes without SWIR give none."""
    from karstflow.runtime import load_script
    from karstflow.sources.rasters import write_streamed
    from karstflow.vegetation import BANDS, REFLECTANCE_BANDS

    h, w = GRID.shape
    rng = np.random.default_rng(3)
    platforms = ["landsat-8", "landsat-7", "landsat-8"]
    scenes, sr_truth, clear = [], [], []
    for t, platform in enumerate(platforms):
        sr = {
            "blue": rng.uniform(0.01, 0.05, (h, w)),
            "red": rng.uniform(0.03, 0.2, (h, w)),
            "nir": rng.uniform(0.2, 0.5, (h, w)),
            "swir16": rng.uniform(0.1, 0.4, (h, w)),
            "swir22": rng.uniform(0.05, 0.3, (h, w)),
        }
        dn = {k: sr_dn(v) for k, v in sr.items()}
        qa = np.full((h, w), 1 << 6, np.uint16)
        if t == 0:
            qa[1, :] = CLOUD
        back = {k: v.astype(np.float64) * 2.75e-5 - 0.2 for k, v in dn.items()}
        if platform == "landsat-7":  # Roy et al. (2016) Table 2 OLS: OLI = a + b * ETM+
            coef = {"blue": (0.8474, 0.0003), "red": (0.9047, 0.0061), "nir": (0.8462, 0.0412),
                    "swir16": (0.8937, 0.0254), "swir22": (0.9071, 0.0172)}  # fmt: skip
            back = {k: coef[k][1] + coef[k][0] * v for k, v in back.items()}
        ok = (qa & 0b111111) == 0
        sr_truth.append({k: np.where(ok, v, np.nan) for k, v in back.items()})
        clear.append(ok)
        layers = write_scene(tmp_path, f"sw{t}", {**dn, "qa_pixel": qa})
        meta = {"sensor": "landsat", "platform": platform}
        scenes.append(Scene(f"SW{t}", dt.date(2015, 5 + t, 1), layers, meta, encoding="as-is"))
    ds = composite_year(scenes, GRID, "landsat", chunk_px=4)
    assert [b for b in REFLECTANCE_BANDS if b in ds.data_vars] == ["blue", "red", "nir", "swir1", "swir2"]
    ds = ds.load()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for band, layer in (("red", "red"), ("nir", "nir"), ("swir1", "swir16"), ("swir2", "swir22")):
            want = np.nanmedian(np.stack([s[layer] for s in sr_truth]), axis=0)
            np.testing.assert_allclose(ds[band].values, want, atol=2e-6, err_msg=band)
    # row 1 is cloudy on date 0: the median of the two others (one of them ETM+ harmonised)
    assert ds["swir1"].values[1, 0] == pytest.approx(
        (sr_truth[1]["swir16"][1, 0] + sr_truth[2]["swir16"][1, 0]) / 2, abs=2e-6
    )

    # without SWIR layers no reflectance band is composited (the composite costs what it did)
    no_swir = [
        Scene(s.id, s.date, {k: v for k, v in s.layers.items() if not k.startswith("swir")}, s.meta, encoding="as-is")
        for s in scenes
    ]
    assert set(composite_year(no_swir, GRID, "landsat").data_vars) == set(BANDS)

    # the GeoTIFF of rule vegetation_composite names its bands; rule vegetation_stack reads them back
    names = list(BANDS) + [b for b in REFLECTANCE_BANDS if b in ds.data_vars]
    path = tmp_path / "landsat_2015.tif"
    stacked = xr.concat([ds[b].astype(np.float32) for b in names], dim="band")
    write_streamed({path: (stacked, {"dtype": "float32", "nodata": float("nan"), "band_names": names})}, GRID)
    stack_script = load_script(PROJECT_ROOT / "workflow" / "scripts" / "vegetation_stack.py")
    back = stack_script._composite(str(path), 4)
    assert list(back.data_vars) == names
    cube = annual_cube({2015: back, 2016: back}, {2015: "landsat", 2016: "landsat"}, [], reference="landsat")
    assert {"red", "nir", "swir1", "swir2"} <= set(cube.data_vars)
    assert cube["swir2"].dims == ("year", "y", "x") and cube["swir2"].attrs["units"] == "1"
    np.testing.assert_allclose(cube["swir2"].values[1], ds["swir2"].values, equal_nan=True)
    # a year without the bands leaves them out of the cube
    no_bands = back[list(BANDS)]
    cube = annual_cube({2015: back, 2016: no_bands}, {2015: "landsat", 2016: "landsat"}, [], reference="landsat")
    assert "swir1" not in cube.data_vars and "ndvi" in cube.data_vars

"""The local adapter: the real eo-learn time series, and per-date files with a date table.

The real patch (68 Sentinel-2 dates of NDVI with an s2cloudless cloud mask) shows that
the masked composite departs from a naive median exactly where clouds were, and that
the clear counts are the mask's. A small date-table fixture in the demo's layout
(uint16 DN, band descriptions B2..B12, SCL) covers harmonisation per item and the bad
inputs: AOI outside the data, no scenes in a period, a period cloudy everywhere, a
missing band.
"""

from __future__ import annotations

import datetime as dt

import dask
import numpy as np
import pandas as pd
import pytest
import rasterio

from karstflow.composite import AllCloudyWarning, clear_count_reductions, composite_summary, median_composite
from karstflow.grid import RegionGrid, reproject_to_grid
from karstflow.io import read_raster, write_raster
from karstflow.sources import (
    AoiOutsideDataError,
    HarmonisationError,
    MissingBandError,
    NoScenesError,
    Period,
    get_source,
)
from karstflow.sources.local import LocalSource
from karstflow.sources.rasters import load_stack

ALL = Period("all", dt.date(2015, 1, 1), dt.date(2017, 12, 31))


# --------------------------------------------------------------------------------------
# the real eo-learn patch
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def patch(eolearn_patch):
    src = LocalSource.from_stacks(
        "eolearn",
        {"NDVI": eolearn_patch / "ndvi.tif"},
        cloud_mask=eolearn_patch / "cloud_mask.tif",
        dem=eolearn_patch / "dem.tif",
    )
    with rasterio.open(eolearn_patch / "ndvi.tif") as f:
        grid = RegionGrid.from_bounds(f.crs.to_string(), 10, tuple(f.bounds))
    return src, grid, eolearn_patch


def _on_grid(path, grid):
    """Every band of a stack put on the grid by rioxarray (GDAL nearest), independently of the adapter."""
    da = read_raster(path, masked=False)
    return reproject_to_grid(da, grid, resampling="nearest").values


def test_patch_scenes_come_from_the_band_descriptions(patch):
    src, grid, _ = patch
    scenes = src.scenes(ALL, grid)
    assert len(scenes) == 68 and scenes[0].date == dt.date(2015, 7, 11) and scenes[-1].date == dt.date(2017, 12, 22)
    only_2016 = src.scenes(Period("2016", dt.date(2016, 1, 1), dt.date(2016, 12, 31)), grid)
    assert all(s.date.year == 2016 for s in only_2016) and 0 < len(only_2016) < 68


def test_masked_composite_departs_from_the_naive_median_where_clouds_are(patch):
    src, grid, path = patch
    ds = load_stack(src.scenes(ALL, grid), grid, src.bands, chunk_px=40, region="eolearn", period=ALL)
    composite, count = median_composite(ds["reflectance"], ds["clear"])
    got, n_clear = composite.sel(band="NDVI").values, count.values
    ndvi = _on_grid(path / "ndvi.tif", grid)
    cloud = _on_grid(path / "cloud_mask.tif", grid)
    assert ndvi.shape == (68, *grid.shape)
    # clear counts are the mask's
    np.testing.assert_array_equal(n_clear, (cloud == 0).sum(0))
    naive = np.median(ndvi, axis=0)
    inside = np.isfinite(ndvi).all(0)  # the grid is snapped outward: its last row/column lies off the data
    assert inside.mean() > 0.97
    ever_cloudy = (cloud > 0).any(0) & inside
    assert ever_cloudy.mean() > 0.5  # the real series is cloudy
    # where the mask never flags a cloud, masking changes nothing
    np.testing.assert_allclose(got[~ever_cloudy & inside], naive[~ever_cloudy & inside], rtol=0, atol=1e-7)
    assert np.isnan(got[~inside]).all() and (n_clear[~inside] == 0).all()
    # where clouds were, the composite differs, and clouds pull NDVI down
    differs = ~np.isclose(got, naive, atol=1e-6)
    assert differs[ever_cloudy].mean() > 0.9
    assert np.nanmean(got[ever_cloudy]) > np.mean(naive[ever_cloudy]) + 0.05
    # and equals the median of the clear observations computed directly
    want = np.nanmedian(np.where(cloud == 0, ndvi, np.nan), axis=0)
    np.testing.assert_allclose(got, want, atol=1e-7)


def test_patch_composite_is_the_same_at_any_chunk_size(patch):
    src, grid, _ = patch
    scenes = src.scenes(Period("2017", dt.date(2017, 1, 1), dt.date(2017, 12, 31)), grid)
    small = load_stack(scenes, grid, ["NDVI"], chunk_px=40)  # ragged: 40, 40, 22 rows
    a = median_composite(small["reflectance"], small["clear"])
    whole = load_stack(scenes, grid, ["NDVI"], chunk_px=1024)
    b = median_composite(whole["reflectance"], whole["clear"])
    np.testing.assert_array_equal(a[0].values, b[0].values)
    np.testing.assert_array_equal(a[1].values, b[1].values)


# --------------------------------------------------------------------------------------
# a date table in the demo layout
# --------------------------------------------------------------------------------------

GRID = RegionGrid.from_bounds("EPSG:32650", 10, (500000, 2900000, 500640, 2900480))  # 64 x 48 px
S2 = ["B2", "B3", "B4", "B8", "B11", "B12", "SCL"]


def _refl(day: dt.date) -> np.ndarray:
    yy, xx = np.mgrid[0 : GRID.height, 0 : GRID.width]
    return np.stack(
        [np.round(0.03 + 0.04 * b + 0.0001 * ((xx + 2 * yy) % 300) + 0.002 * day.month, 4) for b in range(6)]
    )


def write_scene(folder, day, *, offset, cloudy=None, all_cloudy=False, bands=S2, grid=GRID):
    refl = _refl(day)
    dn = (np.round(refl * 10000) - offset).astype(np.uint16)
    scl = np.full(grid.shape, 4, np.uint8)
    if cloudy is not None:
        scl[cloudy] = 9
        dn[:, cloudy] = 9000
    if all_cloudy:
        scl[:] = 8
    data = np.concatenate([dn, scl[None].astype(np.uint16)])[[S2.index(b) for b in bands]]
    da = grid.data_array(data).rename({"dim_0": "band"})
    name = f"S2_{day:%Y%m%d}.tif"
    write_raster(da, folder / name, nodata=0, dtype="uint16", band_names=list(bands))
    return name


@pytest.fixture()
def table(tmp_path):
    """Four scenes in 2022: 03.01 (no offset) and 04.00 (offset) baselines, some clouds."""
    folder = tmp_path / "s2"
    folder.mkdir()
    cloud_a = np.zeros(GRID.shape, bool)
    cloud_a[:20, :30] = True
    cloud_b = np.zeros(GRID.shape, bool)
    cloud_b[10:40, 20:50] = True
    rows = [
        (dt.date(2022, 1, 15), "03.01", 0, None),
        # dated 2021 but reprocessed under 05.09: the offset comes from metadata, not the date
        (dt.date(2021, 12, 20), "05.09", -1000, cloud_a),
        (dt.date(2022, 3, 6), "04.00", -1000, cloud_b),
        (dt.date(2022, 6, 9), "04.00", -1000, None),
    ]
    out = []
    for day, pb, off, cloud in rows:
        name = write_scene(folder, day, offset=off, cloudy=cloud)
        out.append(
            {
                "date": day.isoformat(),
                "file": name,
                "processing_baseline": pb,
                "boa_add_offset": off,
                "cloud_cover_pct": 0.0 if cloud is None else 30.0,
            }
        )
    pd.DataFrame(out).to_csv(folder / "scenes.csv", index=False)
    return folder / "scenes.csv", rows


def test_date_table_harmonises_each_item_from_its_metadata(table):
    path, rows = table
    src = LocalSource.from_date_table("county", path)
    period = Period("all", dt.date(2021, 1, 1), dt.date(2022, 12, 31))
    ds = load_stack(src.scenes(period, GRID), GRID, src.bands, chunk_px=32, region="county", period=period)
    assert list(ds["boa_add_offset"].values) == [-1000, 0, -1000, -1000]  # sorted by date: 2021-12-20 first
    for t, (day, _, _, cloud) in enumerate(sorted(rows, key=lambda r: r[0])):
        clear = ds["clear"].isel(time=t).values
        np.testing.assert_array_equal(clear, np.ones(GRID.shape, bool) if cloud is None else ~cloud)
        got = ds["reflectance"].isel(time=t).values
        assert list(ds["band"].values) == list(src.bands)
        np.testing.assert_allclose(got[:, clear], _refl(day)[:, clear], atol=1e-6)


def test_a_date_table_without_baseline_metadata_is_refused(table):
    path, _ = table
    df = pd.read_csv(path).drop(columns=["processing_baseline", "boa_add_offset"])
    df.to_csv(path, index=False)
    src = LocalSource.from_date_table("county", path)
    period = Period("2022", dt.date(2022, 1, 1), dt.date(2022, 12, 31))
    with pytest.raises(
        HarmonisationError,
        match=r"region county, period 2022: scene .* cannot tell whether the processing-baseline 04.00 offset applies",
    ):
        load_stack(src.scenes(period, GRID), GRID, src.bands, region="county", period=period)


def test_aoi_outside_the_data_names_region_and_period(table):
    path, _ = table
    src = LocalSource.from_date_table("county", path)
    far = RegionGrid.from_bounds("EPSG:32650", 10, (600000, 2900000, 600640, 2900480))
    period = Period("2022", dt.date(2022, 1, 1), dt.date(2022, 12, 31))
    with pytest.raises(
        AoiOutsideDataError,
        match=r"region county, period 2022: the region grid .* does not overlap the data of its 3 scenes",
    ):
        load_stack(src.scenes(period, far), far, src.bands, region="county", period=period)


def test_no_scenes_in_a_period_names_region_period_and_what_exists(table):
    path, _ = table
    src = LocalSource.from_date_table("county", path)
    with pytest.raises(
        NoScenesError,
        match=(
            r"region county, period 2019: no scenes between 2019-01-01 and 2019-12-31; the source has 4 scenes from "
            r"2021-12-20 to 2022-06-09"
        ),
    ):
        src.scenes(Period("2019", dt.date(2019, 1, 1), dt.date(2019, 12, 31)), GRID)


def test_missing_band_names_region_period_scene_and_band(tmp_path):
    folder = tmp_path / "s2"
    folder.mkdir()
    name = write_scene(folder, dt.date(2022, 5, 1), offset=-1000, bands=["B2", "B3", "B4", "B8", "B11", "SCL"])
    pd.DataFrame([{"date": "2022-05-01", "file": name, "processing_baseline": "04.00"}]).to_csv(
        folder / "scenes.csv", index=False
    )
    src = LocalSource.from_date_table("county", folder / "scenes.csv")
    period = Period("spring", dt.date(2022, 3, 1), dt.date(2022, 5, 31))
    with pytest.raises(
        MissingBandError, match=r"region county, period spring: scene 2022-05-01 \(2022-05-01\) has no band B12"
    ):
        load_stack(src.scenes(period, GRID), GRID, src.bands, region="county", period=period)


def test_a_period_cloudy_everywhere_gives_nodata_count_zero_and_a_warning(tmp_path):
    folder = tmp_path / "s2"
    folder.mkdir()
    rows = []
    for day in (dt.date(2022, 7, 1), dt.date(2022, 7, 6)):
        rows.append(
            {
                "date": day.isoformat(),
                "file": write_scene(folder, day, offset=-1000, all_cloudy=True),
                "processing_baseline": "04.00",
            }
        )
    pd.DataFrame(rows).to_csv(folder / "scenes.csv", index=False)
    src = LocalSource.from_date_table("county", folder / "scenes.csv")
    period = Period("july", dt.date(2022, 7, 1), dt.date(2022, 7, 31))
    ds = load_stack(src.scenes(period, GRID), GRID, src.bands, chunk_px=32, region="county", period=period)
    composite, count = median_composite(ds["reflectance"], ds["clear"])
    assert np.isnan(composite.values).all() and (count.values == 0).all()
    with_clear, total, mx = (int(v) for v in dask.compute(*clear_count_reductions(count)))
    with pytest.warns(
        AllCloudyWarning, match=r"region county, period july: no clear observation in any of the 2 scenes"
    ):
        summary = composite_summary(
            pixels=count.size,
            pixels_with_clear=with_clear,
            clear_count_sum=total,
            clear_count_max=mx,
            n_scenes=2,
            period="july",
            context="region county, period july",
        )
    assert summary["clear_share"] == 0 and summary["all_cloudy"]


def test_local_region_config_resolves(tmp_path, table):
    path, _ = table
    dem = tmp_path / "dem.tif"
    write_raster(GRID.data_array(np.ones(GRID.shape, "float32")), dem)
    region = {
        "source": "local",
        "crs": GRID.crs,
        "resolution_m": 10,
        "years": {"first": 2022, "last": 2022},
        "aoi": {"bounds": list(GRID.bounds)},
        "inputs": {"dem": "dem.tif", "imagery": {"date_table": str(path.relative_to(tmp_path))}},
    }
    src = get_source("mine", region, {"bands": ["B4", "B8"], "max_scene_cloud_pct": 20}, workdir=tmp_path)
    assert src.bands == ("B4", "B8") and src.dem() == [str(dem)]
    period = Period("2022", dt.date(2022, 1, 1), dt.date(2022, 12, 31))
    assert [s.date for s in src.scenes(period, GRID)] == [
        dt.date(2022, 1, 15),
        dt.date(2022, 6, 9),
    ]  # cloudier ones skipped


def test_an_integer_file_without_nodata_keeps_its_zeros_when_warped(tmp_path):
    """0 is data in such a file (MOD13Q1 pixel reliability 0 = good): only what lies outside
    the file is invalid after the warp onto the region grid."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.warp import transform_bounds

    from karstflow.grid import RegionGrid
    from karstflow.sources.rasters import read_window

    path = tmp_path / "reliability.tif"
    data = np.zeros((1, 20, 20), np.int8)
    data[0, :5] = 3
    profile = dict(driver="GTiff", width=20, height=20, count=1, dtype="int8", crs="EPSG:4326")
    with rasterio.open(path, "w", transform=from_origin(106.7, 26.6, 0.001, 0.001), **profile) as dst:
        dst.write(data)
    west, south, east, north = transform_bounds("EPSG:4326", "EPSG:32648", 106.7, 26.58, 106.72, 26.6)
    grid = RegionGrid.from_bounds("EPSG:32648", 30, (west - 300, south, east, north))  # 300 m off the file
    values, valid = read_window(str(path), [1], grid, (0, 0, grid.height, grid.width))
    assert set(np.unique(values[valid])) == {0, 3}
    assert (values[valid] == 0).mean() > 0.6
    assert not valid[0, :, :5].any()  # the strip west of the file

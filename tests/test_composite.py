"""median_composite: NaN-aware, mask-aware, lazy, and the same chunked or not."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr

from karstflow.composite import median_composite, nanmedian_time
from karstflow.grid import RegionGrid

GRID = RegionGrid.from_bounds("EPSG:32650", 10, (0, 0, 370, 290))  # 37 x 29 px: ragged chunks


def cube(seed=0, t=11, nan_share=0.1):
    rng = np.random.default_rng(seed)
    refl = rng.random((t, 2, *GRID.shape), dtype=np.float32)
    refl[rng.random(refl.shape) < nan_share] = np.nan
    clear = rng.random((t, *GRID.shape)) > 0.35
    coords = {"time": np.arange(t), "band": ["B4", "B8"], **GRID.coords()}
    r = xr.DataArray(refl, dims=("time", "band", "y", "x"), coords=coords).rio.write_crs(GRID.crs)
    c = xr.DataArray(clear, dims=("time", "y", "x"), coords={k: v for k, v in coords.items() if k != "band"})
    return r, c


def test_kernel_matches_numpy_nanmedian():
    rng = np.random.default_rng(1)
    for t in (1, 2, 7, 40):
        a = rng.random((t, 5, 300), dtype=np.float32)
        a[rng.random(a.shape) < 0.3] = np.nan
        with np.errstate(all="ignore"), pytest.warns(RuntimeWarning) if np.isnan(a).all(0).any() else _null():
            want = np.nanmedian(a, axis=0)
        np.testing.assert_allclose(nanmedian_time(a), want, equal_nan=True, rtol=0, atol=0)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_composite_uses_only_observations_clear_and_valid_in_every_band():
    refl, clear = cube()
    comp, count = median_composite(refl, clear)
    valid = clear.values & np.isfinite(refl.values).all(axis=1)
    np.testing.assert_array_equal(count.values, valid.sum(0))
    assert count.dtype == np.uint16 and comp.dims == ("band", "y", "x")
    for b in range(2):
        want = np.full(GRID.shape, np.nan, np.float32)
        for iy, ix in np.ndindex(*GRID.shape):
            v = refl.values[valid[:, iy, ix], b, iy, ix]
            if v.size:
                want[iy, ix] = np.median(v)
        np.testing.assert_allclose(comp.values[b], want, equal_nan=True, atol=1e-7)
    assert comp.rio.crs is not None


def test_dask_is_lazy_and_equal_to_numpy_for_any_chunking():
    refl, clear = cube(seed=3)
    eager, n_eager = median_composite(refl, clear)
    for chunks in ({"y": 8, "x": 10}, {"y": 29, "x": 37}, {"y": 5, "x": 37, "time": 3}):
        r = refl.chunk({k: v for k, v in chunks.items()})
        c = clear.chunk({k: v for k, v in chunks.items()})
        lazy, n_lazy = median_composite(r, c)
        assert isinstance(lazy.data, da.Array) and isinstance(n_lazy.data, da.Array)
        np.testing.assert_array_equal(lazy.values, eager.values)
        np.testing.assert_array_equal(n_lazy.values, n_eager.values)


def test_dataset_in_dataset_out_and_all_cloudy_pixels_are_nan():
    refl, clear = cube(seed=5)
    ds = refl.to_dataset("band")
    clear = clear.copy()
    clear[:, :3, :4] = False
    comp, count = median_composite(ds, clear)
    assert list(comp.data_vars) == ["B4", "B8"]
    assert np.isnan(comp["B4"].values[:3, :4]).all() and (count.values[:3, :4] == 0).all()


def test_bad_masks_are_refused():
    refl, clear = cube()
    with pytest.raises(ValueError, match="boolean"):
        median_composite(refl, clear.astype(int))
    with pytest.raises(ValueError, match="no 'time' dimension"):
        median_composite(refl, clear.isel(time=0))


def test_write_streamed_writes_blocks_with_band_names_and_leaves_nothing_on_failure(tmp_path):
    import rasterio

    from karstflow.composite import ClearCountTally
    from karstflow.sources.rasters import write_streamed

    refl, clear = cube(seed=7)
    comp, count = median_composite(refl.chunk({"y": 10, "x": 16}), clear.chunk({"y": 10, "x": 16}))
    tally = ClearCountTally()
    out_c, out_n = tmp_path / "composite.tif", tmp_path / "clear_count.tif"
    write_streamed(
        {
            str(out_c): (comp, {"dtype": "float32", "nodata": float("nan"), "band_names": ["B4", "B8"]}),
            str(out_n): (count, {"dtype": "uint16", "nodata": 65535}),
        },
        GRID,
        batch=3,
        on_block=lambda path, window, block: tally.add(block) if path == str(out_n) else None,
    )
    with rasterio.open(out_c) as f:
        assert f.descriptions == ("B4", "B8") and f.transform == GRID.transform
        np.testing.assert_array_equal(f.read(), comp.values)
    with rasterio.open(out_n) as f:
        np.testing.assert_array_equal(f.read(1), count.values)
    assert tally.pixels == GRID.width * GRID.height and tally.clear_count_sum == int(count.values.sum())

    def boom(block):
        raise RuntimeError("disk full")

    bad = count.copy(data=count.data.map_blocks(boom, dtype=np.uint16))
    with pytest.raises(RuntimeError, match="disk full"):
        write_streamed({str(tmp_path / "bad.tif"): (bad, {"dtype": "uint16", "nodata": 65535})}, GRID)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clear_count.tif", "composite.tif"]

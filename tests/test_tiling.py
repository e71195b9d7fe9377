"""Tiles of a region grid: the layout, cutting inputs with a halo, running a script on a
tile, and the mosaic, checked against the same computation on the whole grid."""

import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr
from scipy import ndimage

from karstflow.grid import RegionGrid
from karstflow.io import read_cube, read_json, read_raster, write_json, write_netcdf, write_raster
from karstflow.runtime import Files, Params
from karstflow.tiling import (
    Window,
    cut,
    halo_px,
    mosaic,
    plan_tiles,
    run_tile,
    tile_layout,
    tile_of,
    window_grid,
    with_halo,
)

GRID = RegionGrid("EPSG:32648", 30.0, (600_000.0, 2_900_000.0, 600_000.0 + 30 * 70, 2_900_000.0 + 30 * 45))


def test_layout_and_windows_cover_the_grid_once():
    assert GRID.shape == (45, 70)
    assert tile_layout(GRID.shape, 32) == (2, 3)
    tiles = plan_tiles(GRID, 32)
    assert [t.id for t in tiles] == ["r000c000", "r000c001", "r000c002", "r001c000", "r001c001", "r001c002"]
    # the last row and column are the remainders: 45 - 32 = 13 rows, 70 - 64 = 6 columns
    assert tiles[-1].window == Window(32, 64, 13, 6)
    cover = np.zeros(GRID.shape, int)
    for t in tiles:
        cover[t.window.slices["y"], t.window.slices["x"]] += 1
    assert (cover == 1).all()
    # the halo stays inside the grid
    assert with_halo(GRID, tiles[0].window, 3) == Window(0, 0, 35, 35)
    assert with_halo(GRID, tiles[4].window, 3) == Window(29, 29, 16, 38)
    # a window's grid has the window's bounds
    sub = window_grid(GRID, Window(32, 64, 13, 6))
    assert sub.bounds == (600_000.0 + 64 * 30, 2_900_000.0, 600_000.0 + 70 * 30, 2_900_000.0 + 13 * 30)
    assert halo_px(GRID, {"halo_m": 61}) == 3 and halo_px(GRID, {"halo_m": 60}) == 2 and halo_px(GRID, {}) == 0


def test_bad_tiles_are_refused():
    with pytest.raises(ValueError, match="tile_px must be an integer of at least 16"):
        tile_layout(GRID.shape, 4)
    with pytest.raises(ValueError, match="not one of the 2 x 3 tiles"):
        tile_of(GRID, 32, "r002c000")


def _field(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=GRID.shape).astype("float32")


def test_cut_and_mosaic_give_back_raster_and_cube(tmp_path):
    values = _field()
    values[3, 5] = np.nan
    src = tmp_path / "slope.tif"
    write_raster(GRID.data_array(values, name="slope_deg", units="degree"), src)
    classes = tmp_path / "classes.tif"
    write_raster(GRID.data_array((values > 0).astype("uint8")), classes, dtype="uint8", colormap={0: (0, 0, 0)})
    years = [2000, 2001, 2002]
    # written as the stages write cubes: a CF grid mapping with the grid's GeoTransform,
    # which each tile carries for its own window and the mosaic must give the region's
    ndvi = GRID.data_array(np.stack([values + i for i in range(3)])).rename(dim_0="year")
    cube = xr.Dataset({"ndvi": ndvi.assign_coords(year=years)}, attrs={"index": "ndvi", "calibrations": "none"})
    assert "GeoTransform" in cube["spatial_ref"].attrs
    write_netcdf(cube, tmp_path / "cube.nc")

    tiles = plan_tiles(GRID, 32)
    for name in ("slope.tif", "classes.tif", "cube.nc"):
        parts = []
        for t in tiles:
            part = tmp_path / f"{t.id}-{name}"
            assert cut(tmp_path / name, part, GRID, t.window)
            parts.append(part)
        mosaic(parts, tiles, GRID, tmp_path / f"mosaic-{name}")
    for name in ("slope.tif", "classes.tif"):
        with rasterio.open(tmp_path / name) as a, rasterio.open(tmp_path / f"mosaic-{name}") as b:
            pa, pb = dict(a.profile), dict(b.profile)
            assert str(pa.pop("nodata")) == str(pb.pop("nodata")) and pa == pb
            assert a.tags() == b.tags() and a.descriptions == b.descriptions
            np.testing.assert_array_equal(a.read(), b.read())
            if name == "classes.tif":
                assert b.colormap(1)[0] == (0, 0, 0, 255)
    whole, again = read_cube(tmp_path / "cube.nc"), read_cube(tmp_path / "mosaic-cube.nc")
    xr.testing.assert_identical(whole, again)
    assert again.rio.crs == whole.rio.crs
    # as stored: dtype, fill value and attributes of the spatial variable, chunked by tile
    with (
        xr.open_dataset(tmp_path / "cube.nc", decode_cf=False) as a,
        xr.open_dataset(tmp_path / "mosaic-cube.nc", decode_cf=False) as b,
    ):
        assert a["ndvi"].dtype == b["ndvi"].dtype and a["ndvi"].attrs.keys() == b["ndvi"].attrs.keys()
        for key, value in a["ndvi"].attrs.items():  # the fill value is NaN
            np.testing.assert_array_equal(value, b["ndvi"].attrs[key])
        np.testing.assert_array_equal(a["ndvi"].values, b["ndvi"].values)
        assert b["ndvi"].encoding["chunksizes"] == (3, 32, 32) and b["ndvi"].encoding["zlib"]


def test_a_cube_mosaic_of_large_tiles_is_chunked_for_its_readers(tmp_path):
    # tiles of 600 px: the mosaic is stored in 512 px chunks (karstflow.io.CUBE_CHUNK_PX), not
    # one chunk per tile that every reader of a window would decompress whole
    grid = RegionGrid("EPSG:32648", 30.0, (600_000.0, 2_900_000.0, 600_000.0 + 30 * 1200, 2_900_000.0 + 30 * 700))
    values = np.random.default_rng(1).random((2, 700, 1200), dtype=np.float32)
    cube = xr.Dataset({"ndvi": grid.data_array(values).rename(dim_0="year").assign_coords(year=[2000, 2001])})
    write_netcdf(cube, tmp_path / "cube.nc")
    tiles = plan_tiles(grid, 600)
    parts = [tmp_path / f"{t.id}.nc" for t in tiles]
    for t, part in zip(tiles, parts, strict=True):
        assert cut(tmp_path / "cube.nc", part, grid, t.window)
    mosaic(parts, tiles, grid, tmp_path / "mosaic.nc")
    again = read_cube(tmp_path / "mosaic.nc")
    xr.testing.assert_identical(read_cube(tmp_path / "cube.nc"), again)
    assert again["ndvi"].encoding["chunksizes"] == (2, 512, 512)


def test_a_file_off_the_grid_is_not_cut(tmp_path):
    other = RegionGrid("EPSG:32648", 10.0, GRID.bounds)
    write_raster(other.data_array(np.zeros(other.shape, "float32")), tmp_path / "fine.tif")
    assert not cut(tmp_path / "fine.tif", tmp_path / "out.tif", GRID, Window(0, 0, 10, 10))
    assert not (tmp_path / "out.tif").exists()


def test_tiles_disagreeing_in_metadata_are_refused(tmp_path):
    tiles = plan_tiles(GRID, 32)
    parts = []
    for i, t in enumerate(tiles):
        sub = window_grid(GRID, t.window)
        da = sub.data_array(np.zeros(sub.shape, "float32"), name="fvc", ndvi_soil=0.1 + 0.01 * i)
        parts.append(tmp_path / f"{t.id}.tif")
        write_raster(da, parts[-1])
    with pytest.raises(ValueError, match="region-wide figure per tile"):
        mosaic(parts, tiles, GRID, tmp_path / "fvc.tif")


def _smooth_main(input, output, params, wildcards, threads=1):
    """A stand-in entry script: a 5 x 5 mean (a neighbourhood of 2 px) of a raster and a cube."""
    grid = RegionGrid.from_dict(read_json(input.grid))
    da = read_raster(input.dem)
    grid.check(da, grid_source=input.grid, source=input.dem)
    mean = ndimage.uniform_filter(np.nan_to_num(da.values.astype("float64")), size=5, mode="nearest")
    write_raster(grid.data_array(mean.astype("float32"), name="mean"), output.mean)
    cube = read_cube(input.cube)
    write_netcdf(cube * params.scale, output.scaled)
    write_json({"pixels": int(grid.height * grid.width)}, output.summary)


def test_run_tile_with_halo_equals_the_whole_grid(tmp_path):
    write_json(GRID.to_dict(), tmp_path / "grid.json")
    write_raster(GRID.data_array(_field(1), name="dem"), tmp_path / "dem.tif")
    cube = xr.Dataset({"ndvi": (("year", "y", "x"), _field(2)[None])}, coords={"year": [2000], **GRID.coords()})
    write_netcdf(cube.rio.write_crs(GRID.crs), tmp_path / "cube.nc")
    inputs = Files(grid=str(tmp_path / "grid.json"), dem=str(tmp_path / "dem.tif"), cube=str(tmp_path / "cube.nc"))

    def outputs(folder):
        return Files(mean=f"{folder}/mean.tif", scaled=f"{folder}/scaled.nc", summary=f"{folder}/s.json")

    _smooth_main(inputs, outputs(tmp_path / "whole"), Params(scale=2.0), Params(), 1)
    tiles = plan_tiles(GRID, 32)
    for t in tiles:
        folder = tmp_path / "tiles" / t.id
        folder.mkdir(parents=True)
        run_tile(
            _smooth_main,
            inputs,
            outputs(folder),
            Params(scale=2.0),
            Params(tile=t.id),
            1,
            {"tile_px": 32, "halo_px": 2},
        )
        # the script saw the tile with its halo; its outputs are cut back to the tile
        seen = read_json(folder / "s.json")["pixels"]
        outer = with_halo(GRID, t.window, 2)
        assert seen == outer.height * outer.width
        assert read_raster(folder / "mean.tif").shape == (t.window.height, t.window.width)
    for key in ("mean", "scaled"):
        name = outputs("x")[key].split("/")[-1]
        mosaic([tmp_path / "tiles" / t.id / name for t in tiles], tiles, GRID, tmp_path / f"mosaic-{name}")
    whole = read_raster(tmp_path / "whole/mean.tif").values
    # uniform_filter sums along running windows, so the last bits depend on where a row starts
    np.testing.assert_allclose(read_raster(tmp_path / "mosaic-mean.tif").values, whole, rtol=0, atol=1e-6)
    xr.testing.assert_identical(read_cube(tmp_path / "whole/scaled.nc"), read_cube(tmp_path / "mosaic-scaled.nc"))
    # without the halo the tile edges differ: the test would catch a halo that is not applied
    folder = tmp_path / "nohalo"
    folder.mkdir()
    run_tile(_smooth_main, inputs, outputs(folder), Params(scale=2.0), Params(tile="r000c000"), 1, {"tile_px": 32})
    assert np.abs(read_raster(folder / "mean.tif").values - whole[:32, :32]).max() > 0.01


def test_run_tile_needs_the_grid():
    with pytest.raises(ValueError, match="needs the region grid as input `grid`"):
        run_tile(_smooth_main, Files(dem="x.tif"), Files(), Params(), Params(tile="r000c000"), 1, {"tile_px": 32})


def test_a_tile_job_gives_dask_and_numba_the_rule_threads(tmp_path):
    """Threads granted to a `_tile` job reach dask and numba as in an untiled job."""
    import copy
    from types import SimpleNamespace

    import dask
    import numba

    from karstflow.runtime import run_script

    write_json(GRID.to_dict(), tmp_path / "grid.json")
    seen = {}

    def main(input, output, params, wildcards, threads=1):
        seen.update(dask=dask.config.get("num_workers"), numba=numba.get_num_threads(), threads=threads)
        seen["grid"] = read_json(input.grid)["width"]

    smk = SimpleNamespace(
        input=Files(grid=str(tmp_path / "grid.json")),
        output=Files(),
        params=Params(tile={"tile_px": 32, "halo_px": 0}),
        wildcards=Params(tile="r000c002"),
        threads=2,
        log=[],
    )
    import logging
    import sys

    saved_dask, saved_numba = copy.deepcopy(dask.config.config), numba.get_num_threads()
    root = logging.getLogger()
    saved_handlers, saved_level, saved_hook = root.handlers[:], root.level, sys.excepthook
    try:
        run_script(main, smk)
    finally:
        dask.config.set(saved_dask)
        numba.set_num_threads(saved_numba)
        root.handlers[:], sys.excepthook = saved_handlers, saved_hook
        root.setLevel(saved_level)
        logging.captureWarnings(False)
    assert seen == {"dask": 2, "numba": min(2, numba.config.NUMBA_NUM_THREADS), "threads": 2, "grid": 6}

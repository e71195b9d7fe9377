"""karstflow.io.write_netcdf_blocks writes what write_netcdf writes, one block at a time; a
dask-backed cube written twice gives the same bytes."""

from __future__ import annotations

import dask.array as da
import netCDF4
import numpy as np
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr

from karstflow.grid import RegionGrid
from karstflow.io import read_cube, write_netcdf, write_netcdf_blocks


def _cube() -> xr.Dataset:
    grid = RegionGrid.from_bounds("EPSG:32648", 30, (600000, 2800000, 602700, 2802100))  # 70 x 90 px
    rng = np.random.default_rng(3)
    ndvi = rng.uniform(-0.2, 0.9, (5, *grid.shape)).astype(np.float32)
    ndvi[ndvi < -0.1] = np.nan
    count = rng.integers(0, 9, (5, *grid.shape)).astype(np.uint16)
    ds = xr.Dataset(
        {
            "ndvi": (("year", "y", "x"), da.from_array(ndvi, chunks=(1, 32, 32)), {"units": "1"}),
            "clear_count": (("year", "y", "x"), da.from_array(count, chunks=(1, 32, 32))),
        },
        coords={"year": np.arange(2001, 2006, dtype=np.int32), **grid.coords()},
        attrs={"source": "test"},
    )
    ds = ds.assign_coords(sensor=("year", ["landsat"] * 3 + ["modis"] * 2))
    return ds.rio.write_crs(grid.crs)


def test_blocks_equal_the_whole_write_values_attrs_and_crs(tmp_path):
    cube = _cube()
    write_netcdf(cube, tmp_path / "whole.nc", chunks={"year": 5, "y": 32, "x": 32})
    write_netcdf_blocks(cube, tmp_path / "blocks.nc", block_px=32)
    whole, blocks = read_cube(tmp_path / "whole.nc"), read_cube(tmp_path / "blocks.nc")
    xr.testing.assert_identical(whole, blocks)
    assert blocks["spatial_ref"].attrs["crs_wkt"] == cube["spatial_ref"].attrs["crs_wkt"]
    np.testing.assert_array_equal(blocks["ndvi"].values, cube["ndvi"].values)
    with netCDF4.Dataset(tmp_path / "blocks.nc") as nc:
        assert nc["ndvi"].chunking() == [5, 32, 32]


def test_a_dask_cube_is_written_as_its_values_would_be(tmp_path):
    cube = _cube()
    write_netcdf(cube, tmp_path / "dask.nc", chunks={"year": 5, "y": 32, "x": 32})
    write_netcdf(cube.load(), tmp_path / "numpy.nc", chunks={"year": 5, "y": 32, "x": 32})
    xr.testing.assert_identical(read_cube(tmp_path / "dask.nc"), read_cube(tmp_path / "numpy.nc"))
    with netCDF4.Dataset(tmp_path / "dask.nc") as a, netCDF4.Dataset(tmp_path / "numpy.nc") as b:
        assert {k: a.getncattr(k) for k in a.ncattrs()} == {k: b.getncattr(k) for k in b.ncattrs()}
        for name in ("ndvi", "clear_count"):
            # repr: the NaN fill value of ndvi compares unequal to itself
            attrs = [{k: repr(v[name].getncattr(k)) for k in v[name].ncattrs()} for v in (a, b)]
            assert attrs[0] == attrs[1], name
            assert a[name].dtype == b[name].dtype and a[name].chunking() == b[name].chunking()


def test_a_dask_cube_written_twice_gives_the_same_bytes(tmp_path):
    """Chunks that finish in a random order (as dask's threads finish them) are stored in a
    fixed one: before, HDF5 placed each where the file ended when it arrived."""
    import time

    import dask

    cube = _cube()
    delay = np.random.default_rng(11)

    def late(block):
        time.sleep(float(delay.uniform(0, 0.01)))
        return block

    cube["ndvi"] = cube["ndvi"].copy(data=cube["ndvi"].data.map_blocks(late, dtype=np.float32))
    paths = [tmp_path / "first.nc", tmp_path / "second.nc"]
    with dask.config.set(scheduler="threads", num_workers=4):
        for path in paths:
            write_netcdf(cube, path, chunks={"year": 1, "y": 16, "x": 16})
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_rechunk_netcdf_keeps_every_stored_value_and_chunks_in_blocks(tmp_path):
    """A cube stored as whole (y, x) planes (an int16 variable with scale and fill, a float
    one, a 2-D one, a 1-D coordinate and a global attribute) comes out with the same raw and
    decoded values and attributes, in 1 x block x block chunks."""
    from karstflow.io import rechunk_netcdf

    rng = np.random.default_rng(7)
    years, ny, nx = 3, 37, 29
    ndvi = rng.integers(-500, 9000, size=(years, ny, nx)) * 1e-4
    ndvi[0, :4, :5] = np.nan  # stored as the int16 fill value
    ds = xr.Dataset(
        {
            "ndvi": (("year", "y", "x"), ndvi, {"long_name": "NDVI", "units": "1"}),
            "precipitation_mm": (("year", "y", "x"), rng.random((years, ny, nx)).astype("float32")),
            "soil_depth_mm": (("y", "x"), rng.random((ny, nx))),
        },
        coords={"year": [2020, 2021, 2022], "y": np.arange(ny) * -30.0, "x": np.arange(nx) * 30.0},
        attrs={"source": "test", "history": "made here"},
    )
    src, dst = tmp_path / "planes.nc", tmp_path / "blocks.nc"
    encoding = {
        "ndvi": {"dtype": "int16", "scale_factor": 1e-4, "_FillValue": -32768, "chunksizes": (1, ny, nx), "zlib": True},
        "precipitation_mm": {"chunksizes": (1, ny, nx), "zlib": True},
    }
    ds.to_netcdf(src, engine="netcdf4", encoding=encoding)
    rechunk_netcdf(src, dst, block_px=16)

    with netCDF4.Dataset(src) as a, netCDF4.Dataset(dst) as b:
        assert {k: a.getncattr(k) for k in a.ncattrs()} == {k: b.getncattr(k) for k in b.ncattrs()}
        assert b["ndvi"].chunking() == [1, 16, 16]
        assert b["precipitation_mm"].chunking() == [1, 16, 16]
        assert b["soil_depth_mm"].chunking() == [16, 16]
        for name in a.variables:
            va, vb = a[name], b[name]
            va.set_auto_maskandscale(False)
            vb.set_auto_maskandscale(False)
            assert va.dtype == vb.dtype, name
            # assert_equal: a NaN _FillValue equals itself
            attrs_a, attrs_b = ({k: v.getncattr(k) for k in v.ncattrs()} for v in (va, vb))
            np.testing.assert_equal(attrs_a, attrs_b)
            np.testing.assert_array_equal(va[...], vb[...], err_msg=name)
    with xr.open_dataset(src) as a, xr.open_dataset(dst) as b:
        xr.testing.assert_identical(a.load(), b.load())
        assert np.isnan(b["ndvi"].values[0, :4, :5]).all()

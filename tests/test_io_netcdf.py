"""karstflow.io.write_netcdf_blocks writes what write_netcdf writes, one block at a time."""

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

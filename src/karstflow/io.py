"""File I/O: rasters, vectors, cubes and JSON, written atomically.

Every writer goes through a temporary file in the target folder and renames it into
place, so an interrupted step never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from karstflow.grid import register_rio

PathLike = str | os.PathLike[str]


@contextlib.contextmanager
def atomic_path(path: PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix or "".join(target.suffixes), dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # writers such as GDAL want to create the file themselves
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, np.generic):
        return _nan_to_none(value.item())
    return value


def write_json(obj: Any, path: PathLike) -> None:
    """Write ``obj`` as indented JSON; NaN and infinities become null (valid JSON)."""
    with atomic_path(path) as tmp:
        tmp.write_text(
            json.dumps(_nan_to_none(obj), indent=2, default=_json_default, allow_nan=False) + "\n"
        )


def read_json(path: PathLike) -> Any:
    return json.loads(Path(path).read_text())


def read_raster(path: PathLike, *, masked: bool = True, chunks: Any = None) -> xr.DataArray:
    """Open a single- or multi-band raster with rioxarray; nodata becomes NaN if ``masked``.

    Single-band rasters are returned as 2-D (y, x) arrays.
    """
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"raster not found: {path}")
    da = rioxarray.open_rasterio(path, masked=masked, chunks=chunks)
    assert isinstance(da, xr.DataArray)
    if da.sizes.get("band", 1) == 1:
        da = da.squeeze("band", drop=True)
    da.name = path.stem
    return da


def write_raster(
    da: xr.DataArray,
    path: PathLike,
    *,
    nodata: float | int | None = None,
    dtype: str | np.dtype | None = None,
    band_names: list[str] | None = None,
    colormap: Mapping[int, tuple[int, int, int]] | None = None,
    compress: str = "deflate",
    blocksize: int = 256,
) -> None:
    """Write a (band,) y, x DataArray as a tiled, compressed GeoTIFF with nodata set.

    NaN is written as ``nodata`` (default: NaN for floats, 255 for uint8, the dtype's
    maximum for other integers). Band descriptions carry ``band_names`` when given, else
    the ``band`` coordinate values when they are strings.
    """
    import rasterio

    register_rio()
    out_dtype = np.dtype(dtype or da.dtype)
    if nodata is None:
        if np.issubdtype(out_dtype, np.floating):
            nodata = float("nan")
        elif np.issubdtype(out_dtype, np.integer):
            nodata = int(np.iinfo(out_dtype).max)
    data = da
    if np.issubdtype(out_dtype, np.integer) and np.issubdtype(da.dtype, np.floating):
        data = da.fillna(nodata)
    data = data.astype(out_dtype)
    data = data.rio.write_nodata(nodata, encoded=False)
    if "_FillValue" in data.attrs:
        del data.attrs["_FillValue"]
    data.encoding = {}
    if band_names is None and "band" in da.dims and da["band"].dtype.kind in "US":
        band_names = [str(b) for b in da["band"].values]
    if "band" in data.dims and data["band"].dtype.kind in "US":
        data = data.assign_coords(band=np.arange(1, data.sizes["band"] + 1))
    kwargs = gtiff_options(out_dtype, data.sizes["y"], data.sizes["x"], compress=compress, blocksize=blocksize)
    with atomic_path(path, suffix=".tif") as tmp:
        data.rio.to_raster(tmp, **kwargs)
        if band_names or colormap:
            with rasterio.open(tmp, "r+") as dst:
                for i, name in enumerate(band_names or [], start=1):
                    dst.set_band_description(i, name)
                if colormap:
                    dst.write_colormap(1, {int(k): tuple(v) + (255,) for k, v in colormap.items()})


def gtiff_options(
    dtype: str | np.dtype, height: int, width: int, *, compress: str = "deflate", blocksize: int = 256
) -> dict[str, Any]:
    """The GeoTIFF creation options of every raster karstflow writes: compressed, with the
    predictor of the data type, internally tiled when the raster spans a block."""
    out_dtype = np.dtype(dtype)
    kwargs: dict[str, Any] = {"compress": compress, "driver": "GTiff"}
    if height >= blocksize and width >= blocksize:
        kwargs.update(tiled=True, blockxsize=blocksize, blockysize=blocksize)
    else:
        kwargs["tiled"] = False
    if np.issubdtype(out_dtype, np.floating):
        kwargs["predictor"] = 3
    elif out_dtype.itemsize > 1:
        kwargs["predictor"] = 2
    return kwargs


def read_vector(path: PathLike, layer: str | None = None):
    import geopandas as gpd

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"vector file not found: {path}")
    return gpd.read_file(path, layer=layer)


#: The timestamp GDAL writes into a GeoPackage (``gpkg_contents.last_change``, the
#: metadata tables) instead of the time of writing, so that two runs write the same bytes.
#: GDAL's configuration option ``OGR_CURRENT_DATE``; a fixed date, not a figure of the data.
GPKG_TIMESTAMP = "2000-01-01T00:00:00.000Z"


def write_vector(gdf, path: PathLike, layer: str | None = None) -> None:
    """Write a GeoDataFrame as GeoPackage (one layer, named after the file by default),
    with the fixed :data:`GPKG_TIMESTAMP`: the same frame gives the same bytes."""
    import pyogrio

    path = Path(path)
    previous = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_TIMESTAMP})
    try:
        with atomic_path(path, suffix=".gpkg") as tmp:
            gdf.to_file(tmp, layer=layer or path.stem, driver="GPKG", engine="pyogrio")
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": previous})


def write_netcdf(obj: xr.Dataset | xr.DataArray, path: PathLike, *, chunks: Mapping[str, int] | None = None) -> None:
    """Write a cube as compressed NetCDF4, chunked on disk as ``chunks`` (dim -> size).

    The same cube gives the same bytes. xarray hands dask-backed variables to dask, whose
    threads store the chunks in the order they finish; HDF5 places each chunk where the
    file ends when it arrives, so two runs wrote the same values in different places (the
    CASA cube at 16 px chunks: 250,000-330,000 bytes differed, values identical). Such
    cubes are written by :func:`_write_dask_cube`, in a fixed order, as many blocks at a
    time as dask has workers."""
    import dask

    ds = (obj.to_dataset() if isinstance(obj, xr.DataArray) else obj).copy()
    if not {"y", "x"} <= set(ds.dims):
        ds = ds.load()  # no spatial blocks to write in order: small enough to hold
    if not any(dask.is_dask_collection(v.data) for v in ds.data_vars.values()):
        encoding = _netcdf_encoding(ds, chunks)
        with atomic_path(path, suffix=".nc") as tmp:
            ds.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
        return
    disk = {str(d): min(int((chunks or {}).get(str(d), n)), int(n)) for d, n in ds.sizes.items()}
    group = max(1, int(dask.config.get("num_workers", None) or 1))
    _write_dask_cube(ds, path, disk, group=group)


def _netcdf_encoding(ds: xr.Dataset, chunks: Mapping[str, int] | None) -> dict[str, dict[str, Any]]:
    """zlib level 4, on-disk ``chunks``, and the CF link to the CRS variable rioxarray
    writes (``spatial_ref``) kept as an encoding (moved out of ``ds``'s attrs in place)."""
    encoding: dict[str, dict[str, Any]] = {}
    for name, var in ds.data_vars.items():
        enc: dict[str, Any] = {"zlib": True, "complevel": 4}
        mapping = var.encoding.get("grid_mapping", var.attrs.get("grid_mapping"))
        if mapping is not None:
            # out of both: xarray lists a variable named by a grid_mapping it can see when it
            # encodes the coordinates as not a coordinate, and the CRS variable would then
            # read back as a data variable (no CRS for rioxarray without decode_coords="all")
            enc["grid_mapping"] = mapping
            ds[name].attrs = {k: v for k, v in var.attrs.items() if k != "grid_mapping"}
            ds[name].encoding = {k: v for k, v in var.encoding.items() if k != "grid_mapping"}
        if chunks:
            enc["chunksizes"] = tuple(min(chunks.get(str(d), var.sizes[d]), var.sizes[d]) for d in var.dims)
        encoding[str(name)] = enc
    return encoding


def write_netcdf_blocks(ds: xr.Dataset, path: PathLike, *, block_px: int) -> None:
    """Write a dask-backed ``(..., y, x)`` cube as :func:`write_netcdf` does, one spatial
    block of ``block_px`` at a time (on-disk chunks of all leading dims x ``block_px``
    squared), so peak memory follows the block size, not the region (letting dask store a
    concatenation of yearly arrays held every year of a row of chunks at once).
    """
    disk = {str(d): int(n) for d, n in ds.sizes.items()}
    disk.update(y=min(block_px, ds.sizes["y"]), x=min(block_px, ds.sizes["x"]))
    _write_dask_cube(ds.copy(), path, disk, group=1)


def _write_dask_cube(ds: xr.Dataset, path: PathLike, disk: Mapping[str, int], *, group: int) -> None:
    """Write ``ds`` with on-disk chunks ``disk`` (dim -> size), its dask-backed ``(..., y, x)``
    variables block by block in a fixed order (row by row of the on-disk chunks, variables
    in order), ``group`` blocks computed at a time: the same cube gives the same bytes.

    xarray writes everything else (coordinates, metadata, small variables, loaded first);
    the blocked variables are then created empty with netCDF4 (HDF5 allocates a chunk when
    it is first written, so in the order below), with the dtype, fill value and attributes
    xarray's encoding gives them, and each block is encoded as xarray would encode it.
    """
    import dask
    import netCDF4

    h, w = ds.sizes["y"], ds.sizes["x"]
    names = [
        str(n) for n, v in ds.data_vars.items() if dask.is_dask_collection(v.data) and v.dims[-2:] == ("y", "x")
    ]
    for name, var in ds.data_vars.items():
        if str(name) not in names and dask.is_dask_collection(var.data):
            ds[name] = var.load()
    encoding = _netcdf_encoding(ds, disk)  # moves grid_mapping from attrs to the encoding
    by, bx = disk["y"], disk["x"]
    windows = [
        {"y": slice(y0, min(y0 + by, h)), "x": slice(x0, min(x0 + bx, w))}
        for y0 in range(0, h, by)
        for x0 in range(0, w, bx)
    ]
    with atomic_path(path, suffix=".nc") as tmp:
        rest = ds.drop_vars(names)
        rest.to_netcdf(tmp, engine="netcdf4", encoding={k: v for k, v in encoding.items() if k in rest.data_vars})
        # the "coordinates" attributes xarray gives the whole dataset (written without the
        # blocked variables, the dataset would list their coordinates as global ones)
        coordinates, global_attrs = xr.conventions.encode_dataset_coordinates(ds)
        with netCDF4.Dataset(tmp, "r+") as nc:
            if "coordinates" in global_attrs:
                nc.setncattr("coordinates", global_attrs["coordinates"])
            elif "coordinates" in nc.ncattrs():
                nc.delncattr("coordinates")
            for name in names:
                cube = ds[name].variable
                # the encoded form of a one-value stand-in: dtype, _FillValue, scale, units
                probe = xr.Variable(cube.dims, np.zeros((1,) * cube.ndim, cube.dtype), cube.attrs, cube.encoding)
                enc = xr.conventions.encode_cf_variable(probe, name=name)
                attrs = dict(enc.attrs)
                fill = attrs.pop("_FillValue", None)
                if "grid_mapping" in encoding[name]:
                    attrs["grid_mapping"] = encoding[name]["grid_mapping"]
                if "coordinates" in coordinates[name].attrs:
                    attrs["coordinates"] = coordinates[name].attrs["coordinates"]
                out = nc.createVariable(
                    name, enc.dtype, tuple(str(d) for d in cube.dims), zlib=True, complevel=4,
                    chunksizes=encoding[name]["chunksizes"], fill_value=fill,
                )
                out.setncatts(attrs)
                out.set_auto_maskandscale(False)
            for i in range(0, len(windows), group):
                batch = windows[i : i + group]
                values = iter(dask.compute(*[ds[n].isel(win).variable for win in batch for n in names]))
                for win in batch:
                    for name in names:
                        encoded = xr.conventions.encode_cf_variable(next(values), name=name)
                        nc[name][..., win["y"], win["x"]] = np.asarray(encoded.values).astype(nc[name].dtype)


#: On-disk chunk edge of the cubes karstflow copies (``rechunk_netcdf``) or puts together from
#: tiles (``karstflow.tiling.mosaic``): a job reading a window decompresses its own chunks and
#: a rim of at most one chunk, whatever the tile size of the run that wrote the file.
CUBE_CHUNK_PX = 512


def rechunk_netcdf(src: PathLike, dst: PathLike, *, block_px: int = CUBE_CHUNK_PX) -> None:
    """Copy the NetCDF ``src`` to ``dst`` with every ``(..., y, x)`` variable chunked on disk
    as 1 x ... x ``block_px`` x ``block_px`` (zlib level 4); everything else as stored:
    dimensions, dtypes, raw values (no masking or scaling on the way), attributes.

    Why not a copy: a cube chunked as whole (y, x) planes, as many tools write them, makes
    every tile job decompress the whole region to read its window (the 16 Mpx benchmark:
    1.9 s for a 1 Mpx window of one variable, 2.0 s for all of it). Why not xarray with dask
    chunks: reading such a file block by block decompresses each plane once per block. Here
    each plane (one index of the leading dims) is read once and written into its chunks, so
    memory is one plane of one variable. nccopy -c does the same, but is not a Python
    dependency.
    """
    import itertools

    import netCDF4

    with netCDF4.Dataset(src) as nc_in, atomic_path(dst, suffix=".nc") as tmp:
        with netCDF4.Dataset(tmp, "w", format=nc_in.data_model) as nc_out:
            nc_out.setncatts({k: nc_in.getncattr(k) for k in nc_in.ncattrs()})
            for name, dim in nc_in.dimensions.items():
                nc_out.createDimension(name, None if dim.isunlimited() else len(dim))
            for name, var in nc_in.variables.items():
                var.set_auto_maskandscale(False)
                attrs = {k: var.getncattr(k) for k in var.ncattrs()}
                fill = attrs.pop("_FillValue", None)
                spatial = var.dimensions[-2:] == ("y", "x")
                kwargs: dict[str, Any] = {"fill_value": fill if fill is not None else False}
                if spatial:
                    h, w = var.shape[-2:]
                    lead = (1,) * (var.ndim - 2)
                    kwargs.update(zlib=True, complevel=4, chunksizes=(*lead, min(block_px, h), min(block_px, w)))
                out = nc_out.createVariable(name, var.dtype, var.dimensions, **kwargs)
                out.set_auto_maskandscale(False)
                out.setncatts(attrs)
                if not spatial:
                    out[...] = var[...]
                    continue
                plane = (slice(None), slice(None))
                for index in itertools.product(*(range(n) for n in var.shape[:-2])):
                    out[(*index, *plane)] = var[(*index, *plane)]


def read_cube(path: PathLike, *, chunks: Mapping[str, int] | None = None) -> xr.Dataset:
    """Open a NetCDF (or Zarr, by a ``.zarr`` suffix) cube lazily; ``chunks`` as dim -> size.

    Float fill values become NaN; the CRS stays readable through ``ds.rio.crs`` when the
    file carries a CF grid mapping (``spatial_ref``).
    """
    register_rio()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"cube not found: {path}")
    engine = "zarr" if path.suffix == ".zarr" else "netcdf4"
    ds = xr.open_dataset(path, engine=engine, chunks=dict(chunks) if chunks is not None else None)
    from karstflow.checks import check_cube_dims

    try:
        # every stage reads its cubes here: (year, x, y) or lat/lon fail naming the file
        check_cube_dims(ds, source=str(path), require_gridded=False)
    except Exception:
        ds.close()
        raise
    return ds


def write_csv(df, path: PathLike, **kwargs: Any) -> None:
    with atomic_path(path, suffix=".csv") as tmp:
        df.to_csv(tmp, **kwargs)

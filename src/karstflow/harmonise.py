"""Raster inputs onto the region grid: one file, a list of tiles or a glob, any CRS.

A DEM or class raster often arrives as tiles (ASTER GDEM's 1-degree
``ASTGTMV003_N28E117_dem.tif``, SRTM, national map sheets) in a CRS and resolution of
its own. :func:`raster_to_grid` mosaics the tiles first and warps the mosaic onto the
region grid in one pass, so a resampling kernel near a tile edge sees the neighbouring
tile (no seams) and tiles cut from one file give exactly the array the file gives.

How it is done
--------------
* Tiles sharing CRS, pixel size and pixel lattice are mosaicked as a GDAL VRT written
  here in Python (the same document ``gdalbuildvrt`` writes: one ``ComplexSource`` per
  tile, placed at whole-pixel offsets, no resampling). The first tile listed wins where
  tiles overlap, except where it is nodata. Pixel values read through the VRT are the
  tiles' own bytes, so warping the VRT equals warping the single original file.
* The mosaic is warped with GDAL (a ``WarpedVRT``) with the coordinate transform
  approximated to 1e-8 source pixels instead of GDAL's default 0.125 px, so a plane in
  lon/lat stays that plane (to 1e-10 m) under bilinear resampling to a projected grid.
* Tiles in different CRSs or resolutions are warped group by group onto the grid and
  combined pixel by pixel: the first group (in sorted path order) that has a value wins.
* A source whose pixels already lie on the grid's lattice (same CRS and pixel size,
  origin on a multiple of the pixel) is copied, not resampled: bit-identical values.
"""

from __future__ import annotations

import glob as _glob
import logging
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr
from affine import Affine
from pyproj import CRS

from karstflow.grid import RegionGrid

log = logging.getLogger(__name__)

__all__ = ["expand_raster_paths", "raster_to_grid", "RESAMPLING_KEEPS_DTYPE"]

#: Resampling methods that return source values, so the source dtype is kept.
RESAMPLING_KEEPS_DTYPE = frozenset({"nearest", "mode"})

_GLOB_CHARS = set("*?[")

# Relative tolerances: pixel sizes equal, tile origins on one lattice.
_RES_RTOL = 1e-9
_LATTICE_TOL_PX = 1e-4
# Error allowed when GDAL approximates the coordinate transform, in source pixels.
# GDAL's default (0.125 px) moves a bilinear sample of a lon/lat plane (3 m per arc-second)
# by up to 0.05 m on a 10 m UTM grid, 1e-6 px by 2e-6 m; 1e-8 px is exact to 1e-10 m
# (as a per-pixel transform) and takes about 3.5x the time of the default.
_WARP_TOLERANCE_PX = 1e-8

_GDAL_TYPES = {
    "uint8": "Byte",
    "int8": "Int8",
    "uint16": "UInt16",
    "int16": "Int16",
    "uint32": "UInt32",
    "int32": "Int32",
    "uint64": "UInt64",
    "int64": "Int64",
    "float32": "Float32",
    "float64": "Float64",
}


# --------------------------------------------------------------------------------------
# paths
# --------------------------------------------------------------------------------------


def expand_raster_paths(spec: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[str]:
    """Paths named by ``spec``: a path, a glob pattern, or a list of paths and patterns.

    Returns the sorted, deduplicated list of files. A pattern that matches nothing
    raises ``ValueError`` naming the pattern; a plain path that does not exist raises
    ``FileNotFoundError`` naming the path. ``~`` is expanded.
    """
    items = [spec] if isinstance(spec, str | os.PathLike) else list(spec)
    if not items:
        raise ValueError("no raster given: the list of paths/patterns is empty")
    found: set[str] = set()
    for item in items:
        text = os.path.expanduser(os.fspath(item))
        if _GLOB_CHARS & set(text):
            matches = [m for m in _glob.glob(text, recursive=True) if os.path.isfile(m)]
            if not matches:
                raise ValueError(f"raster pattern {text!r} matches no file")
            found.update(matches)
        elif not os.path.isfile(text):
            raise FileNotFoundError(f"raster not found: {text}")
        else:
            found.add(text)
    return sorted(found)


# --------------------------------------------------------------------------------------
# tiles and their groups
# --------------------------------------------------------------------------------------


@dataclass
class _Tile:
    path: str
    crs: Any  # rasterio CRS
    transform: Affine
    width: int
    height: int
    dtype: str
    nodata: float | int | None
    block: tuple[int, int]


def _open_tile(path: str, source: str) -> _Tile:
    import rasterio

    with rasterio.open(path) as ds:
        if ds.count != 1:
            raise ValueError(f"{source}: {path} has {ds.count} bands; raster_to_grid takes single-band rasters")
        if ds.crs is None:
            raise ValueError(f"{source}: {path} has no CRS; cannot place it on the region grid")
        block = ds.block_shapes[0] if ds.block_shapes else (1, ds.width)
        return _Tile(path, ds.crs, ds.transform, ds.width, ds.height, ds.dtypes[0], ds.nodata, block)


def _north_up(t: Affine) -> bool:
    return t.b == 0 and t.d == 0 and t.a > 0 and t.e < 0


def _fits(group: list[_Tile], tile: _Tile) -> bool:
    """Whether ``tile`` joins the VRT mosaic of ``group`` without any resampling."""
    ref = group[0]
    if not (_north_up(ref.transform) and _north_up(tile.transform)):
        return False
    same_nodata = tile.nodata == ref.nodata or (_isnan(tile.nodata) and _isnan(ref.nodata))
    if tile.crs != ref.crs or tile.dtype != ref.dtype or not same_nodata:
        return False
    a, e = ref.transform.a, ref.transform.e
    if not (
        math.isclose(tile.transform.a, a, rel_tol=_RES_RTOL) and math.isclose(tile.transform.e, e, rel_tol=_RES_RTOL)
    ):
        return False
    cols = (tile.transform.c - ref.transform.c) / a
    rows = (tile.transform.f - ref.transform.f) / e
    return abs(cols - round(cols)) < _LATTICE_TOL_PX and abs(rows - round(rows)) < _LATTICE_TOL_PX


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _group_tiles(tiles: Sequence[_Tile]) -> list[list[_Tile]]:
    groups: list[list[_Tile]] = []
    for tile in tiles:
        for group in groups:
            if _fits(group, tile):
                group.append(tile)
                break
        else:
            groups.append([tile])
    return groups


def _vrt_xml(group: list[_Tile], nodata: float | int | None) -> str:
    """A ``gdalbuildvrt``-style mosaic of ``group`` (first tile on top where they overlap)."""
    ref = group[0].transform
    a, e = ref.a, ref.e
    offsets = [(int(round((t.transform.c - ref.c) / a)), int(round((t.transform.f - ref.f) / e))) for t in group]
    col0 = min(c for c, _ in offsets)
    row0 = min(r for _, r in offsets)
    width = max(c + t.width for (c, _), t in zip(offsets, group, strict=True)) - col0
    height = max(r + t.height for (_, r), t in zip(offsets, group, strict=True)) - row0
    transform = ref @ Affine.translation(col0, row0)
    gdal_type = _GDAL_TYPES[group[0].dtype]
    nodata_xml = "" if nodata is None else f"    <NoDataValue>{_nodata_text(nodata)}</NoDataValue>\n"
    src_nodata_xml = "" if nodata is None else f"      <NODATA>{_nodata_text(nodata)}</NODATA>\n"
    sources = []
    # VRT sources are drawn in order, later ones on top: list the first tile last.
    for (col, row), t in reversed(list(zip(offsets, group, strict=True))):
        sources.append(
            "    <ComplexSource>\n"
            f'      <SourceFilename relativeToVRT="0">{escape(os.path.abspath(t.path))}</SourceFilename>\n'
            "      <SourceBand>1</SourceBand>\n"
            f'      <SourceProperties RasterXSize="{t.width}" RasterYSize="{t.height}" '
            f'DataType="{gdal_type}" BlockXSize="{t.block[1]}" BlockYSize="{t.block[0]}" />\n'
            f'      <SrcRect xOff="0" yOff="0" xSize="{t.width}" ySize="{t.height}" />\n'
            f'      <DstRect xOff="{col - col0}" yOff="{row - row0}" xSize="{t.width}" ySize="{t.height}" />\n'
            f"{src_nodata_xml}"
            "    </ComplexSource>\n"
        )
    gt = ", ".join(
        repr(float(v)) for v in (transform.c, transform.a, transform.b, transform.f, transform.d, transform.e)
    )
    xml = (
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">\n'
        f'  <SRS dataAxisToSRSAxisMapping="2,1">{escape(group[0].crs.to_wkt())}</SRS>\n'
        f"  <GeoTransform>{gt}</GeoTransform>\n"
        f'  <VRTRasterBand dataType={quoteattr(gdal_type)} band="1">\n'
        f"{nodata_xml}" + "".join(sources) + "  </VRTRasterBand>\n</VRTDataset>\n"
    )
    return xml


def _nodata_text(v: float | int) -> str:
    if _isnan(v):
        return "nan"
    return repr(float(v)) if isinstance(v, float) and not float(v).is_integer() else str(int(v))


# --------------------------------------------------------------------------------------
# warping
# --------------------------------------------------------------------------------------


def _out_dtype(src_dtype: np.dtype, resampling: str) -> np.dtype:
    if resampling in RESAMPLING_KEEPS_DTYPE:
        return src_dtype
    if src_dtype == np.float64 or (np.issubdtype(src_dtype, np.integer) and src_dtype.itemsize >= 4):
        return np.dtype("float64")
    return np.dtype("float32")


def _default_fill(dtype: np.dtype) -> float | int:
    """Nodata for a source that declares none (as :func:`karstflow.io.write_raster`)."""
    if np.issubdtype(dtype, np.floating):
        return float("nan")
    return int(np.iinfo(dtype).max)


def _valid(arr: np.ndarray, nodata: float | int | None) -> np.ndarray:
    if np.issubdtype(arr.dtype, np.floating):
        ok = ~np.isnan(arr)
        if nodata is not None and not _isnan(nodata):
            ok &= arr != nodata
        return ok
    return np.ones(arr.shape, bool) if nodata is None else arr != nodata


def _on_lattice(crs: Any, transform: Affine, grid: RegionGrid) -> bool:
    """Source pixels coincide with grid pixels (same CRS, pixel size, aligned origin)."""
    if not _north_up(transform) or CRS.from_user_input(crs.to_wkt()) != CRS.from_user_input(grid.crs):
        return False
    r = grid.resolution
    if not (math.isclose(transform.a, r, rel_tol=_RES_RTOL) and math.isclose(-transform.e, r, rel_tol=_RES_RTOL)):
        return False
    cols = (transform.c - grid.bounds[0]) / r
    rows = (grid.bounds[3] - transform.f) / r
    return abs(cols - round(cols)) < 1e-6 and abs(rows - round(rows)) < 1e-6


def _copy_window(ds: Any, grid: RegionGrid, dst: np.ndarray) -> bool:
    """Copy the source pixels that fall on ``grid`` into ``dst``; True if any did."""
    t = ds.transform
    r = grid.resolution
    col = int(round((grid.bounds[0] - t.c) / r))  # grid column 0 in source columns
    row = int(round((t.f - grid.bounds[3]) / r))
    gh, gw = grid.shape
    c0, c1 = max(col, 0), min(col + gw, ds.width)
    r0, r1 = max(row, 0), min(row + gh, ds.height)
    if c1 <= c0 or r1 <= r0:
        return False
    from rasterio.windows import Window

    block = ds.read(1, window=Window(c0, r0, c1 - c0, r1 - r0))
    dst[r0 - row : r1 - row, c0 - col : c1 - col] = block
    return True


def _overlaps(ds: Any, grid: RegionGrid) -> bool:
    from rasterio.warp import transform_bounds

    try:
        gx0, gy0, gx1, gy1 = transform_bounds(grid.crs, ds.crs, *grid.bounds, densify_pts=21)
    except Exception:  # noqa: BLE001 - grid not representable in the source CRS: let GDAL decide
        return True
    sx0, sy0, sx1, sy1 = ds.bounds
    if sx0 > sx1:
        sx0, sx1 = sx1, sx0
    if sy0 > sy1:
        sy0, sy1 = sy1, sy0
    if not all(map(math.isfinite, (gx0, gy0, gx1, gy1))):
        return True
    if gx0 > gx1 and CRS.from_user_input(ds.crs.to_wkt()).is_geographic:  # antimeridian
        return gy0 < sy1 and gy1 > sy0
    return gx0 < sx1 and gx1 > sx0 and gy0 < sy1 and gy1 > sy0


def _fmt_res(transform: Affine, crs: Any) -> str:
    pc = CRS.from_user_input(crs if isinstance(crs, str) else crs.to_wkt())
    if pc.is_geographic:
        unit, fmt = "deg", "{:.6f}"
    else:
        name = pc.axis_info[0].unit_name if pc.axis_info else "m"
        unit = {"metre": "m", "meter": "m"}.get(name, name)
        fmt = "{:g}"
    xs, ys = abs(transform.a), abs(transform.e)
    if transform.b or transform.d:
        return f"rotated pixels {fmt.format(math.hypot(transform.a, transform.d))} {unit}"
    if math.isclose(xs, ys, rel_tol=_RES_RTOL):
        return f"{fmt.format(xs)} {unit}"
    return f"{fmt.format(xs)} x {fmt.format(ys)} {unit}"


def _crs_name(crs: Any) -> str:
    s = crs.to_string() if not isinstance(crs, str) else crs
    return s if len(s) < 40 else (CRS.from_user_input(s).name or s[:40])


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------


def raster_to_grid(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    grid: RegionGrid,
    *,
    resampling: str,
    source: str,
    nodata: float | int | None = None,
) -> xr.DataArray:
    """Mosaic the single-band raster(s) ``paths`` and put them on ``grid`` with ``resampling``.

    Parameters
    ----------
    paths
        A path, a glob pattern or a list of paths/patterns (see :func:`expand_raster_paths`).
    grid
        The region grid.
    resampling
        A ``rasterio.enums.Resampling`` name: ``nearest``, ``bilinear``, ``cubic``,
        ``cubic_spline``, ``lanczos``, ``average``, ``mode``, ``max``, ``min``, ``med``,
        ``q1``, ``q3``, ``sum``, ``rms``.
    source
        Names the input in log messages and errors (e.g. ``"dem (config: inputs.dem)"``).
    nodata
        Source nodata value, overriding what the files declare (for tiles that declare
        none). Without either, floats use NaN and integers the dtype's maximum.

    Returns
    -------
    xr.DataArray
        (y, x) on ``grid`` (coords, CRS and transform written, ``rio.nodata`` set).
        ``nearest`` and ``mode`` keep the source dtype; integer results carry the source
        nodata where there is no data. Other methods return float32 (float64 for float64
        or 32-bit and wider integer sources). Float results have NaN where there is no data.

    Raises
    ------
    ValueError
        Unknown resampling, a pattern matching nothing, multi-band or CRS-less files,
        or tiles that do not overlap the grid at all (naming ``source``).
    FileNotFoundError
        A named file is missing.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    try:
        method = Resampling[resampling]
    except KeyError:
        valid = ", ".join(m.name for m in Resampling if m.name != "gauss")
        raise ValueError(f"{source}: unknown resampling {resampling!r}; use one of {valid}") from None

    files = expand_raster_paths(paths)
    tiles = [_open_tile(p, source) for p in files]
    src_dtype = np.result_type(*[np.dtype(t.dtype) for t in tiles])
    out_dtype = _out_dtype(src_dtype, resampling)

    def src_nodata_of(tile: _Tile) -> float | int:
        if nodata is not None:
            return nodata
        if tile.nodata is not None:
            return tile.nodata
        return _default_fill(np.dtype(tile.dtype))

    if out_dtype.kind == "f":
        dst_nodata: float | int = float("nan")
    else:
        dst_nodata = src_nodata_of(tiles[0])
    if nodata is not None:
        for t in tiles:  # the override applies to every tile, so they group as one mosaic
            t.nodata = nodata

    out = np.full(grid.shape, dst_nodata, dtype=out_dtype)
    groups = _group_tiles(tiles)
    described: list[str] = []
    any_overlap = False
    with tempfile.TemporaryDirectory(prefix="karstflow-mosaic-") as tmp:
        for i, group in enumerate(groups):
            src_nodata = src_nodata_of(group[0])
            if len(group) == 1:
                ds_path = group[0].path
            else:
                ds_path = os.path.join(tmp, f"mosaic_{i}.vrt")
                Path(ds_path).write_text(_vrt_xml(group, src_nodata))
            with rasterio.open(ds_path) as ds:
                what = f"{len(group)} tile(s) from {_crs_name(ds.crs)} at {_fmt_res(ds.transform, ds.crs)}"
                if not _overlaps(ds, grid):
                    described.append(f"{what}: outside the grid")
                    continue
                dst = np.full(grid.shape, dst_nodata, dtype=out_dtype)
                if _on_lattice(ds.crs, ds.transform, grid):
                    raw = np.full(grid.shape, src_nodata, dtype=np.dtype(ds.dtypes[0]))
                    if not _copy_window(ds, grid, raw):
                        described.append(f"{what}: outside the grid")
                        continue
                    ok = _valid(raw, src_nodata)
                    dst[ok] = raw[ok].astype(out_dtype)
                    exact = (ds.width, ds.height) == (grid.width, grid.height) and all(
                        math.isclose(u, v, rel_tol=0, abs_tol=grid.resolution * 1e-6)
                        for u, v in zip(tuple(ds.transform)[:6], tuple(grid.transform)[:6], strict=True)
                    )
                    described.append(
                        f"{what}: already on the region grid, no resampling"
                        if exact
                        else f"{what}: pixels on the region grid's lattice, copied (no resampling)"
                    )
                else:
                    with WarpedVRT(
                        ds,
                        crs=grid.crs,
                        transform=grid.transform,
                        width=grid.width,
                        height=grid.height,
                        src_nodata=src_nodata,
                        nodata=dst_nodata,
                        dtype=out_dtype.name,
                        resampling=method,
                        tolerance=_WARP_TOLERANCE_PX,
                    ) as warped:
                        dst = warped.read(1)
                    described.append(
                        f"{what} -> {_crs_name(grid.crs)} {_fmt_res(grid.transform, grid.crs)}, {resampling}"
                    )
                if not any_overlap:
                    out = dst
                else:  # the first group with a value wins
                    fill = ~_valid(out, dst_nodata) & _valid(dst, dst_nodata)
                    out[fill] = dst[fill]
                any_overlap = True

    if not any_overlap:
        raise ValueError(
            f"{source}: the raster(s) {_short_list(files)} do not overlap the region grid "
            f"({grid.crs}, bounds {grid.bounds}); check the input or the region extent"
        )
    log.info("%s: %s", source, "; ".join(described))
    da = grid.data_array(out, name=Path(files[0]).stem if len(files) == 1 else None)
    da.attrs["source"] = source
    da.attrs["resampling"] = resampling
    return da.rio.write_nodata(dst_nodata, encoded=False)


def _short_list(files: Sequence[str], n: int = 3) -> str:
    head = ", ".join(files[:n])
    return head + (f" and {len(files) - n} more" if len(files) > n else "")

"""Tiles of a region grid: a stage whose work is per pixel or per neighbourhood runs one job
per tile, and the tiles are put together again as one file on the region grid.

A tile is a window of ``tile_px`` x ``tile_px`` region pixels (smaller at the right and bottom
edges), named ``r<row>c<col>`` by its place in the tile grid. A rule runs on a tile through
:func:`run_tile`: every input that lies on the region grid is cut to the tile's window widened
by a *halo* (the neighbourhood the stage looks at: one pixel for slope, the threats' maximum
distance for habitat quality), the stage's unchanged entry script computes on that window, and
its outputs are cut back to the tile itself. :func:`mosaic` then writes the tiles into one
GeoTIFF or NetCDF on the region grid, which later stages read as if no tiling had happened.

Because each output pixel is computed from the same input pixels, tiled and untiled runs are
pixel-identical wherever the arithmetic is per pixel; a stage that needs region-wide figures
(percentile end-members, say) computes them in a region step first and reads them as input.
The mosaic refuses tiles whose metadata (attributes, tags) differ, the sign of a stage that
computed a region-wide figure per tile.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from karstflow.grid import RegionGrid
from karstflow.io import CUBE_CHUNK_PX, atomic_path, gtiff_options, read_json, write_json

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
TILE_ID = re.compile(r"^r(\d{3})c(\d{3})$")
RASTER_SUFFIXES = (".tif", ".tiff")
CUBE_SUFFIXES = (".nc",)


@dataclass(frozen=True)
class Window:
    """Rows ``y0:y0+height`` and columns ``x0:x0+width`` of a grid."""

    y0: int
    x0: int
    height: int
    width: int

    @property
    def slices(self) -> dict[str, slice]:
        return {"y": slice(self.y0, self.y0 + self.height), "x": slice(self.x0, self.x0 + self.width)}

    def within(self, outer: Window) -> Window:
        """This window in the pixel coordinates of ``outer`` (which contains it)."""
        return Window(self.y0 - outer.y0, self.x0 - outer.x0, self.height, self.width)


@dataclass(frozen=True)
class Tile:
    """One tile of a region: its id and its window in region pixels."""

    id: str
    window: Window


def tile_id(row: int, col: int) -> str:
    return f"r{row:03d}c{col:03d}"


def _check_tile_px(tile_px: int) -> int:
    if not isinstance(tile_px, int | np.integer) or isinstance(tile_px, bool) or tile_px < 16:
        raise ValueError(f"tiling.tile_px must be an integer of at least 16 pixels, found {tile_px!r}")
    return int(tile_px)


def tile_layout(shape: tuple[int, int], tile_px: int) -> tuple[int, int]:
    """Rows and columns of tiles covering a grid of ``shape`` (height, width)."""
    tile_px = _check_tile_px(tile_px)
    rows, cols = math.ceil(shape[0] / tile_px), math.ceil(shape[1] / tile_px)
    if rows > 999 or cols > 999:
        raise ValueError(
            f"tiling.tile_px {tile_px} cuts a {shape[0]} x {shape[1]} px grid into {rows} x {cols} tiles; "
            "at most 999 per side: choose a larger tile_px"
        )
    return rows, cols


def plan_tiles(grid: RegionGrid, tile_px: int) -> list[Tile]:
    """The tiles covering ``grid``, row by row."""
    rows, cols = tile_layout(grid.shape, tile_px)
    return [tile_of(grid, tile_px, tile_id(r, c)) for r in range(rows) for c in range(cols)]


def tile_of(grid: RegionGrid, tile_px: int, tid: str) -> Tile:
    """The tile named ``tid`` (``r<row>c<col>``) of ``grid``; ``ValueError`` when it has none."""
    match = TILE_ID.match(tid)
    rows, cols = tile_layout(grid.shape, tile_px)
    if not match or int(match[1]) >= rows or int(match[2]) >= cols:
        raise ValueError(f"tile {tid!r} is not one of the {rows} x {cols} tiles of tile_px {tile_px}")
    y0, x0 = int(match[1]) * tile_px, int(match[2]) * tile_px
    return Tile(tid, Window(y0, x0, min(tile_px, grid.height - y0), min(tile_px, grid.width - x0)))


def with_halo(grid: RegionGrid, window: Window, halo_px: int) -> Window:
    """``window`` widened by ``halo_px`` on every side, kept inside ``grid``."""
    y0, x0 = max(0, window.y0 - halo_px), max(0, window.x0 - halo_px)
    y1 = min(grid.height, window.y0 + window.height + halo_px)
    x1 = min(grid.width, window.x0 + window.width + halo_px)
    return Window(y0, x0, y1 - y0, x1 - x0)


def window_grid(grid: RegionGrid, window: Window) -> RegionGrid:
    """The grid of ``window``: same CRS and resolution, the window's bounds."""
    r = grid.resolution
    xmin, ymax = grid.bounds[0] + window.x0 * r, grid.bounds[3] - window.y0 * r
    return RegionGrid(grid.crs, r, (xmin, ymax - window.height * r, xmin + window.width * r, ymax))


def halo_px(grid: RegionGrid, spec: Mapping[str, Any]) -> int:
    """The halo of a tiled rule in pixels: ``halo_px`` or ``halo_m`` (metres, rounded up)."""
    px = int(spec.get("halo_px") or 0)
    metres = float(spec.get("halo_m") or 0.0)
    return max(px, math.ceil(metres / grid.resolution - 1e-9)) if metres > 0 else px


# --- cutting files to a window ---


def _raster_on(path: PathLike, grid: RegionGrid) -> bool:
    import rasterio
    from pyproj import CRS

    with rasterio.open(path) as ds:
        if ds.crs is None or (ds.height, ds.width) != grid.shape:
            return False
        same_crs = CRS.from_wkt(ds.crs.to_wkt()) == CRS.from_user_input(grid.crs)
        return same_crs and np.allclose(tuple(ds.transform)[:6], tuple(grid.transform)[:6], atol=grid.resolution * 1e-6)


def _cube_on(ds: xr.Dataset, grid: RegionGrid) -> bool:
    if "y" not in ds.dims or "x" not in ds.dims or (ds.sizes["y"], ds.sizes["x"]) != grid.shape:
        return False
    if "x" not in ds.coords or "y" not in ds.coords:
        return False
    coords = grid.coords()
    tol = grid.resolution * 1e-6
    return bool(
        np.allclose(ds["x"].values, coords["x"], atol=tol) and np.allclose(ds["y"].values, coords["y"], atol=tol)
    )


def cut(src: PathLike, dst: PathLike, grid: RegionGrid, window: Window) -> bool:
    """Write the ``window`` of ``src`` (a GeoTIFF or NetCDF on ``grid``) to ``dst``.

    Returns False, writing nothing, when ``src`` is another kind of file or is not on ``grid``
    (a vector layer, a table, a raster still in its source CRS): such inputs are read whole.
    The cut keeps data type, nodata, band names, tags and attributes, so the stage reads it as
    it reads the whole file.
    """
    suffix = Path(src).suffix.lower()
    if suffix in RASTER_SUFFIXES:
        if not _raster_on(src, grid):
            return False
        _cut_raster(src, dst, window)
        return True
    if suffix in CUBE_SUFFIXES:
        with xr.open_dataset(src, decode_cf=False, decode_times=False) as ds:
            if not _cube_on(ds, grid):
                return False
            part = ds.isel(window.slices).load()
        _write_raw_cube(part, dst)
        return True
    return False


def _cut_raster(src: PathLike, dst: PathLike, window: Window) -> None:
    import rasterio
    from rasterio.windows import Window as RioWindow

    with rasterio.open(src) as ds:
        rio_window = RioWindow(window.x0, window.y0, window.width, window.height)
        data = ds.read(window=rio_window)
        profile = ds.profile.copy()
        profile.update(
            width=window.width,
            height=window.height,
            transform=ds.window_transform(rio_window),
            **gtiff_options(data.dtype, window.height, window.width),
        )
        if not (window.height >= 256 and window.width >= 256):
            profile.pop("blockxsize", None), profile.pop("blockysize", None)
        descriptions, tags = ds.descriptions, ds.tags()
        band_tags = [ds.tags(i) for i in range(1, ds.count + 1)]
        colormap = _colormap(ds)
    with atomic_path(dst, suffix=".tif") as tmp, rasterio.open(tmp, "w", **profile) as out:
        out.write(data)
        _copy_metadata(out, descriptions, tags, band_tags, colormap)


def _colormap(ds: Any) -> dict[int, tuple[int, ...]] | None:
    try:
        return ds.colormap(1)
    except ValueError:  # no colour table
        return None


def _copy_metadata(out: Any, descriptions: Sequence[str | None], tags: dict, band_tags: list[dict], colormap) -> None:
    for i, name in enumerate(descriptions, start=1):
        if name:
            out.set_band_description(i, name)
    out.update_tags(**tags)
    for i, btags in enumerate(band_tags, start=1):
        if btags:
            out.update_tags(i, **btags)
    if colormap:
        out.write_colormap(1, colormap)


def _write_raw_cube(ds: xr.Dataset, dst: PathLike, chunk_px: int | None = None) -> None:
    """Write a cube opened with ``decode_cf=False`` back as it was stored: the stored dtypes,
    fill values and scale attributes travel as attributes, untouched."""
    encoding: dict[str, dict[str, Any]] = {}
    for name, var in ds.variables.items():
        enc: dict[str, Any] = {"zlib": True, "complevel": 4} if name in ds.data_vars else {}
        if "_FillValue" in var.attrs:
            enc["_FillValue"] = var.attrs["_FillValue"]
        else:
            enc["_FillValue"] = None  # do not let xarray add a fill value the source did not have
        if chunk_px and name in ds.data_vars and var.dims[-2:] == ("y", "x"):
            enc["chunksizes"] = tuple(min(chunk_px, n) if d in ("y", "x") else n for d, n in var.sizes.items())
        encoding[str(name)] = enc
    clean = ds.copy()
    for name in clean.variables:
        clean[name].attrs = {k: v for k, v in clean[name].attrs.items() if k != "_FillValue"}
        clean[name].encoding = {}
    with atomic_path(dst, suffix=".nc") as tmp:
        clean.to_netcdf(tmp, engine="netcdf4", encoding=encoding)


# --- running a rule on one tile ---


def run_tile(
    main: Callable[..., Any],
    input: Any,
    output: Any,
    params: Any,
    wildcards: Any,
    threads: int,
    spec: Mapping[str, Any],
) -> Any:
    """Run an entry script's ``main`` on tile ``wildcards.tile``.

    ``spec`` is the rule's ``params.tile``: ``tile_px`` and the halo (``halo_px`` or ``halo_m``).
    The rule must read the region grid as input ``grid``. Inputs on the region grid are cut to
    the tile with its halo in a scratch folder (``$TMPDIR``); the outputs, written there on
    the halo's grid, are cut back to the tile into their real paths.
    """
    if "grid" not in input:
        raise ValueError("a tiled rule needs the region grid as input `grid` (results/{region}/grid.json)")
    tid = str(wildcards["tile"])
    grid = RegionGrid.from_dict(read_json(input["grid"]))
    tile = tile_of(grid, int(spec["tile_px"]), tid)
    halo = halo_px(grid, spec)
    outer = with_halo(grid, tile.window, halo)
    log.info(
        "tile %s: rows %d-%d, columns %d-%d of %d x %d px, halo %d px",
        tid,
        tile.window.y0,
        tile.window.y0 + tile.window.height - 1,
        tile.window.x0,
        tile.window.x0 + tile.window.width - 1,
        grid.height,
        grid.width,
        halo,
    )
    scratch = Path(tempfile.mkdtemp(prefix=f"karstflow-{tid}-", dir=os.environ.get("TMPDIR")))
    try:
        tile_input = _cut_inputs(input, grid, outer, scratch / "in")
        tile_input["grid"] = str(scratch / "grid.json")
        write_json(window_grid(grid, outer).to_dict(), tile_input["grid"])
        if outer == tile.window:
            return main(tile_input, output, params, wildcards, threads)
        staged = _map_paths(output, lambda p: str(scratch / "out" / Path(p).name))
        for path in _flat(staged):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        result = main(tile_input, staged, params, wildcards, threads)
        core = tile.window.within(outer)
        outer_grid = window_grid(grid, outer)
        for src, dst in zip(_flat(staged), _flat(output), strict=True):
            Path(dst).parent.mkdir(parents=True, exist_ok=True)
            if not cut(src, dst, outer_grid, core):
                shutil.copyfile(src, dst)
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _flat(files: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for value in files.values():
        out.extend(value if isinstance(value, list) else [value])
    return out


def _map_paths(files: Any, fn: Callable[[str], str]) -> Any:
    mapped = type(files)(files)
    for key, value in files.items():
        mapped[key] = type(value)(fn(v) for v in value) if isinstance(value, list) else fn(value)
    return mapped


def _cut_inputs(input: Any, grid: RegionGrid, window: Window, folder: Path) -> Any:
    folder.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1_000_000))

    def cut_one(path: str) -> str:
        if not Path(path).is_file():
            return path
        dst = folder / f"{next(counter):03d}-{Path(path).name}"
        return str(dst) if cut(path, dst, grid, window) else path

    return _map_paths(input, cut_one)


# --- putting tiles together ---


def mosaic(tile_paths: Sequence[PathLike], tiles: Sequence[Tile], grid: RegionGrid, dst: PathLike) -> None:
    """Write the tiles (``tile_paths[i]`` holds ``tiles[i]``) as one file on ``grid``.

    GeoTIFFs become one tiled, compressed GeoTIFF, written tile by tile (memory is one tile);
    NetCDF cubes one NetCDF, written block by block. Every tile must carry the same metadata.
    """
    if len(tile_paths) != len(tiles):
        raise ValueError(f"{dst}: {len(tile_paths)} tile files for {len(tiles)} tiles")
    covered = sum(t.window.height * t.window.width for t in tiles)
    if covered != grid.height * grid.width:
        raise ValueError(f"{dst}: the tiles cover {covered} px of a {grid.height} x {grid.width} px grid")
    suffix = Path(dst).suffix.lower()
    if suffix in RASTER_SUFFIXES:
        _mosaic_rasters(tile_paths, tiles, grid, dst)
    elif suffix in CUBE_SUFFIXES:
        _mosaic_cubes(tile_paths, tiles, grid, dst)
    else:
        raise ValueError(f"{dst}: only GeoTIFF and NetCDF outputs can be put together from tiles")
    log.info("mosaic of %d tiles written: %s", len(tiles), dst)


def _disagreement(name: str, dst: PathLike, first: PathLike, other: PathLike, a: Any, b: Any) -> ValueError:
    return ValueError(
        f"{dst}: tiles {first} and {other} differ in {name} ({a!r} vs {b!r}); the stage computed a "
        "region-wide figure per tile, so it cannot be tiled as it is"
    )


def _same_attrs(a: Mapping[str, Any], b: Mapping[str, Any], ignore: Sequence[str] = ()) -> bool:
    """Attribute dicts equal, array values included (NaN equal to NaN), but for ``ignore``."""
    if set(a) - set(ignore) != set(b) - set(ignore):
        return False
    for key in set(a) - set(ignore):
        x, y = np.asarray(a[key]), np.asarray(b[key])
        numeric = x.dtype.kind in "fc" and y.dtype.kind in "fc"
        if not np.array_equal(x, y, equal_nan=numeric):
            return False
    return True


def _mosaic_rasters(tile_paths: Sequence[PathLike], tiles: Sequence[Tile], grid: RegionGrid, dst: PathLike) -> None:
    import rasterio
    from rasterio.windows import Window as RioWindow

    with rasterio.open(tile_paths[0]) as first:
        profile = first.profile.copy()
        meta = (first.descriptions, first.tags(), [first.tags(i) for i in range(1, first.count + 1)], _colormap(first))
        dtype = first.dtypes[0]
    profile.update(
        width=grid.width, height=grid.height, transform=grid.transform, **gtiff_options(dtype, grid.height, grid.width)
    )
    if not (grid.height >= 256 and grid.width >= 256):
        profile.pop("blockxsize", None), profile.pop("blockysize", None)
    with atomic_path(dst, suffix=".tif") as tmp, rasterio.open(tmp, "w", **profile) as out:
        for path, tile in zip(tile_paths, tiles, strict=True):
            with rasterio.open(path) as ds:
                if (ds.height, ds.width) != (tile.window.height, tile.window.width):
                    raise ValueError(f"{path}: {ds.height} x {ds.width} px, tile {tile.id} is {tile.window}")
                these = (ds.descriptions, ds.tags(), [ds.tags(i) for i in range(1, ds.count + 1)], _colormap(ds))
                for what, a, b in zip(("band names", "tags", "band tags", "colour table"), meta, these, strict=True):
                    if a != b:
                        raise _disagreement(what, dst, tile_paths[0], path, a, b)
                w = tile.window
                out.write(ds.read(), window=RioWindow(w.x0, w.y0, w.width, w.height))
        _copy_metadata(out, *meta)


def _mosaic_cubes(tile_paths: Sequence[PathLike], tiles: Sequence[Tile], grid: RegionGrid, dst: PathLike) -> None:
    import netCDF4

    # cache=False: a tile's values, once written, are not kept with its Dataset
    opened = [xr.open_dataset(p, decode_cf=False, decode_times=False, cache=False) for p in tile_paths]
    try:
        first = opened[0]
        for path, ds in zip(tile_paths[1:], opened[1:], strict=True):
            if not _same_attrs(ds.attrs, first.attrs):
                raise _disagreement("attributes", dst, tile_paths[0], path, first.attrs, ds.attrs)
            for key, var in first.variables.items():
                name = str(key)
                if name in ("x", "y"):
                    continue
                # a CF grid mapping (rioxarray's spatial_ref) carries the tile's own GeoTransform
                ignore = ("GeoTransform",) if "grid_mapping_name" in var.attrs or "crs_wkt" in var.attrs else ()
                if name not in ds.variables or not _same_attrs(ds[name].attrs, var.attrs, ignore):
                    raise _disagreement(f"variable {name}", dst, tile_paths[0], path, var.attrs, ds[name].attrs)
                if "y" not in var.dims and "x" not in var.dims and not var.equals(ds[name]):
                    raise _disagreement(f"values of {name}", dst, tile_paths[0], path, var.values, ds[name].values)
        spatial = [str(n) for n, v in first.data_vars.items() if v.dims[-2:] == ("y", "x")]
        layout = first.drop_vars(spatial).drop_vars(["x", "y"])
        for var in layout.variables.values():
            if "GeoTransform" in var.attrs:  # the region's, not the first tile's
                var.attrs["GeoTransform"] = " ".join(str(float(v)) for v in grid.transform.to_gdal())
        coords = grid.coords()
        layout = layout.assign_coords(y=("y", coords["y"], first["y"].attrs), x=("x", coords["x"], first["x"].attrs))
        # chunks of a tile where tiles are small, else of CUBE_CHUNK_PX: a whole large tile per
        # chunk (64 MB for 2,000 px x 4 years) made every reader of a window decompress it all
        block = min(max(t.window.height for t in tiles), CUBE_CHUNK_PX)
        with atomic_path(dst, suffix=".nc") as tmp:
            _write_raw_cube(layout, tmp)
            with netCDF4.Dataset(tmp, "r+") as nc:
                # the spatial variables are made here, empty, stored as _write_raw_cube stores
                # them, and filled tile by tile: no array of the region's size is ever made
                for name in spatial:
                    var = first[name].variable
                    dims = tuple(str(d) for d in var.dims)
                    shape = {d: grid.height if d == "y" else grid.width if d == "x" else var.sizes[d] for d in dims}
                    for dim, size in shape.items():
                        if dim not in nc.dimensions:
                            nc.createDimension(dim, size)
                    out = nc.createVariable(
                        name,
                        var.dtype,
                        dims,
                        zlib=True,
                        complevel=4,
                        chunksizes=[min(block, n) if d in ("y", "x") else n for d, n in shape.items()],
                        fill_value=var.attrs.get("_FillValue"),
                    )
                    out.setncatts({k: v for k, v in var.attrs.items() if k != "_FillValue"})
                    out.set_auto_maskandscale(False)
                for ds, tile in zip(opened, tiles, strict=True):
                    s = tile.window.slices
                    for name in spatial:
                        nc[name][..., s["y"], s["x"]] = ds[name].values
                    # an open tile keeps the chunks it read in its own HDF5 cache (64 MB a
                    # variable); closed once written, the mosaic holds one tile, not all
                    ds.close()
    finally:
        for ds in opened:
            ds.close()

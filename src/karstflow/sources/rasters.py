"""Scene files onto the region grid, block by block, and composites streamed to disk.

:func:`load_stack` turns a list of :class:`~karstflow.sources.Scene` into a lazy,
dask-backed ``xarray.Dataset`` on the region grid: float32 ``reflectance`` with dims
``(time, band, y, x)`` (NaN where there is no valid observation) and a boolean ``clear``
``(time, y, x)``. One dask task reads one spatial block of every scene, so the
memory a task needs is ``dates x (bands + 1) x chunk_px**2 x 4`` bytes, whatever the
size of the region. Files already on the grid's lattice (same CRS and resolution, pixel
edges aligned) are read with plain windows; others through a GDAL warped VRT.

:func:`write_streamed` writes dask-backed rasters block by block into tiled, compressed
GeoTIFFs (band names in the band descriptions), atomically, in one pass over the graph.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr

from karstflow.grid import RegionGrid
from karstflow.sources import (
    AoiOutsideDataError,
    Layer,
    MaskRules,
    MissingBandError,
    Scene,
    context,
)
from karstflow.sources.harmonise import DN_NODATA, QUANTIFICATION_VALUE, boa_add_offset

log = logging.getLogger(__name__)

#: QA60 bits 10 (opaque clouds) and 11 (cirrus).
QA60_CLOUD_BITS = (1 << 10) | (1 << 11)
#: Scale of the CS_CDF layer when stored as uint16 in the tile cache.
CS_CDF_SCALE = 10000.0


# --------------------------------------------------------------------------------------
# reading one window of one file onto the grid
# --------------------------------------------------------------------------------------


def limit_gdal_cache(mb: int) -> None:
    """Cap GDAL's block cache of this process at ``mb`` megabytes.

    GDAL's default is 5 % of the machine's RAM (1.2 GB on 24 GB), filled with decompressed
    blocks as scenes are read; capping it keeps a compositing job's peak memory a function
    of the chunk size. Call before the process reads its first raster (GDAL reads the
    setting when its cache is first used).
    """
    import os

    os.environ["GDAL_CACHEMAX"] = str(int(mb))  # values below 100000 are megabytes
    try:
        from rasterio.env import set_gdal_config

        set_gdal_config("GDAL_CACHEMAX", str(int(mb)))
    except Exception:  # noqa: BLE001 - the environment variable is what GDAL reads first
        pass


def _aligned(src: Any, grid: RegionGrid) -> bool:
    """True when ``src`` shares the grid's CRS, resolution and pixel lattice."""
    from pyproj import CRS

    if src.crs is None or CRS.from_user_input(src.crs.to_wkt()) != CRS.from_user_input(grid.crs):
        return False
    t = src.transform
    r = grid.resolution
    if abs(t.b) > 1e-12 or abs(t.d) > 1e-12 or abs(t.a - r) > 1e-9 * r or abs(t.e + r) > 1e-9 * r:
        return False
    dx = (t.c - grid.bounds[0]) / r
    dy = (grid.bounds[3] - t.f) / r
    return abs(dx - round(dx)) < 1e-6 and abs(dy - round(dy)) < 1e-6


def read_window(
    path: str,
    indexes: Sequence[int],
    grid: RegionGrid,
    window: tuple[int, int, int, int],
    *,
    resampling: str = "nearest",
) -> tuple[np.ndarray, np.ndarray]:
    """Read bands ``indexes`` of ``path`` over ``window`` = (row, col, height, width) of ``grid``.

    Returns ``(data, valid)``, both ``(len(indexes), height, width)``; ``valid`` is False
    outside the file and where the file's nodata (or NaN) is.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window

    r0, c0, h, w = window
    idx = [int(i) for i in indexes]
    with rasterio.open(path) as src:
        nodata = src.nodata
        dtype = np.dtype(src.dtypes[idx[0] - 1])
        if _aligned(src, grid):
            res = grid.resolution
            col_off = int(round((grid.bounds[0] - src.transform.c) / res)) + c0
            row_off = int(round((src.transform.f - grid.bounds[3]) / res)) + r0
            fill = nodata if nodata is not None else (np.nan if dtype.kind == "f" else 0)
            data = np.full((len(idx), h, w), fill, dtype=dtype)
            inside = np.zeros((h, w), dtype=bool)
            rr0, rr1 = max(row_off, 0), min(row_off + h, src.height)
            cc0, cc1 = max(col_off, 0), min(col_off + w, src.width)
            if rr1 > rr0 and cc1 > cc0:
                part = src.read(idx, window=Window(cc0, rr0, cc1 - cc0, rr1 - rr0))
                data[:, rr0 - row_off : rr1 - row_off, cc0 - col_off : cc1 - col_off] = part
                inside[rr0 - row_off : rr1 - row_off, cc0 - col_off : cc1 - col_off] = True
            valid = np.broadcast_to(inside, data.shape).copy()
        elif nodata is None and dtype.kind != "f":
            # no declared nodata: every value is data (0 is "good" in MOD13Q1 reliability), so
            # what lies outside the file comes from an alpha band, not from a fill value
            with WarpedVRT(
                src,
                crs=grid.crs,
                transform=grid.transform,
                width=grid.width,
                height=grid.height,
                resampling=getattr(Resampling, resampling),
                add_alpha=True,
            ) as vrt:
                win = Window(c0, r0, w, h)
                data = vrt.read(idx, window=win)
                alpha = vrt.read(vrt.count, window=win) > 0
                valid = np.broadcast_to(alpha, data.shape).copy()
        else:
            vrt_nodata = nodata if nodata is not None else np.nan
            with WarpedVRT(
                src,
                crs=grid.crs,
                transform=grid.transform,
                width=grid.width,
                height=grid.height,
                resampling=getattr(Resampling, resampling),
                src_nodata=nodata,
                nodata=vrt_nodata,
            ) as vrt:
                win = Window(c0, r0, w, h)
                data = vrt.read(idx, window=win)
                valid = vrt.read_masks(idx, window=win) > 0
        if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
            valid &= data != np.asarray(nodata).astype(data.dtype)
        if data.dtype.kind == "f":
            valid &= np.isfinite(data)
    return data, valid


def read_layers_many(
    requests: Sequence[tuple[Mapping[str, Sequence[Layer]], Sequence[str]]],
    grid: RegionGrid,
    window: tuple[int, int, int, int],
    *,
    resampling: Mapping[str, str] | str = "nearest",
) -> list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """Read and mosaic layers of several scenes over one window.

    ``requests`` holds, per scene, its layers and the names to read. Every file is
    opened once per resampling method, reading all the band indexes any scene needs
    from it (a time stack is read in one call). Layers listing several files are
    mosaicked in the order listed: the first valid pixel wins.
    """
    method = (lambda n: resampling) if isinstance(resampling, str) else (lambda n: resampling.get(n, "nearest"))
    groups: dict[tuple[str, str], list[tuple[int, str, int, int]]] = {}
    for t, (layers, names) in enumerate(requests):
        for name in names:
            for pos, layer in enumerate(layers[name]):
                groups.setdefault((layer.path, method(name)), []).append((t, name, pos, layer.index))
    parts: dict[tuple[int, str], list[tuple[int, np.ndarray, np.ndarray]]] = {}
    for (path, how), members in groups.items():
        indexes = sorted({m[3] for m in members})
        data, valid = read_window(path, indexes, grid, window, resampling=how)
        where = {i: k for k, i in enumerate(indexes)}
        for t, name, pos, index in members:
            parts.setdefault((t, name), []).append((pos, data[where[index]], valid[where[index]]))
    out: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = [({}, {}) for _ in requests]
    for (t, name), pieces in parts.items():
        pieces.sort(key=lambda p: p[0])
        value, ok = pieces[0][1], pieces[0][2]
        for _, d, v in pieces[1:]:
            todo = ~ok & v
            if todo.any():
                value = np.where(todo, d, value)
                ok = ok | todo
        out[t][0][name], out[t][1][name] = value, ok
    return out


def read_layers(
    layers: Mapping[str, Sequence[Layer]],
    names: Iterable[str],
    grid: RegionGrid,
    window: tuple[int, int, int, int],
    *,
    resampling: Mapping[str, str] | str = "nearest",
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Read and mosaic ``names`` of one scene's layers (first valid pixel wins)."""
    return read_layers_many([(layers, list(names))], grid, window, resampling=resampling)[0]


# --------------------------------------------------------------------------------------
# clear mask and reflectance of one scene block
# --------------------------------------------------------------------------------------


def clear_mask(values: Mapping[str, np.ndarray], valids: Mapping[str, np.ndarray], rules: MaskRules) -> np.ndarray:
    """Clear pixels of one scene from whichever mask layers it has, most trusted first.

    * ``CS_CDF`` (Cloud Score+, stored x10000 as uint16 or as a 0-1 float): clear where
      ``cs_cdf >= rules.cs_cdf_threshold``; pixels without a score fall through;
    * ``MSK_CLASSI_OPAQUE`` / ``MSK_CLASSI_CIRRUS``: not clear where either is set;
    * ``QA60``: not clear where bit 10 (opaque) or 11 (cirrus) is set;
    * ``SCL``: not clear where the class is in ``rules.scl_not_clear``;
    * ``CLOUD_MASK``: not clear where non-zero (e.g. s2cloudless 1 = cloud).

    A pixel no layer decides (no mask layer at all, or all invalid) counts as clear: the
    reflectance validity check still applies. Returns a bool array.
    """
    shape = next(iter(values.values())).shape
    clear = np.ones(shape, dtype=bool)
    decided = np.zeros(shape, dtype=bool)

    def decide(where_valid: np.ndarray, is_clear: np.ndarray) -> None:
        nonlocal clear, decided
        todo = where_valid & ~decided
        clear = np.where(todo, is_clear, clear)
        decided |= todo

    if "CS_CDF" in values:
        cs = values["CS_CDF"].astype(np.float32)
        if values["CS_CDF"].dtype.kind in "ui":
            cs = cs / np.float32(CS_CDF_SCALE)
            has = valids["CS_CDF"] & (values["CS_CDF"] > 0)
        else:
            has = valids["CS_CDF"] & np.isfinite(cs)
        decide(has, cs >= np.float32(rules.cs_cdf_threshold))
    if "MSK_CLASSI_OPAQUE" in values or "MSK_CLASSI_CIRRUS" in values:
        flagged = np.zeros(shape, dtype=bool)
        has = np.zeros(shape, dtype=bool)
        for name in ("MSK_CLASSI_OPAQUE", "MSK_CLASSI_CIRRUS"):
            if name in values:
                flagged |= valids[name] & (values[name] > 0)
                has |= valids[name]
        decide(has, ~flagged)
    if "QA60" in values:
        qa = values["QA60"].astype(np.int64)
        decide(valids["QA60"], (qa & QA60_CLOUD_BITS) == 0)
    if "SCL" in values:
        scl = values["SCL"]
        # an SCL pixel of no data (0) is "valid" as a class: it says not clear
        decide(np.ones(shape, dtype=bool), valids["SCL"] & ~np.isin(scl, rules.scl_not_clear))
    if "CLOUD_MASK" in values:
        decide(valids["CLOUD_MASK"], values["CLOUD_MASK"] == 0)
    return clear


def scene_block(
    scene: Scene,
    bands: Sequence[str],
    grid: RegionGrid,
    window: tuple[int, int, int, int],
    rules: MaskRules,
    resampling: str = "nearest",
) -> np.ndarray:
    """``(len(bands) + 1, h, w)`` float32: reflectance per band, then clear (0/1)."""
    masks = _scene_masks(scene, bands)
    values, valids = read_layers(
        scene.layers, [*bands, *masks], grid, window, resampling={b: resampling for b in bands}
    )
    return _scene_values(scene, bands, masks, values, valids, rules, window[2:])


def _scene_masks(scene: Scene, bands: Sequence[str]) -> list[str]:
    return [m for m in scene.layers if m not in bands and m in _mask_names()]


def _scene_values(
    scene: Scene,
    bands: Sequence[str],
    masks: Sequence[str],
    values: Mapping[str, np.ndarray],
    valids: Mapping[str, np.ndarray],
    rules: MaskRules,
    shape: tuple[int, int],
) -> np.ndarray:
    out = np.empty((len(bands) + 1, *shape), dtype=np.float32)
    ok = np.ones(shape, dtype=bool)
    if scene.encoding == "s2-l2a-dn":
        offset = np.float32(scene.meta["boa_add_offset"])
        for i, b in enumerate(bands):
            v = valids[b] & (values[b] != DN_NODATA)
            out[i] = np.where(
                v, (values[b].astype(np.float32) + offset) / np.float32(QUANTIFICATION_VALUE), np.float32(np.nan)
            )
            ok &= v
    else:
        for i, b in enumerate(bands):
            v = valids[b]
            out[i] = np.where(v, values[b].astype(np.float32), np.float32(np.nan))
            ok &= v
    if masks:
        clear = clear_mask({m: values[m] for m in masks}, {m: valids[m] for m in masks}, rules)
    else:
        clear = np.ones(shape, dtype=bool)
    out[-1] = (clear & ok).astype(np.float32)
    return out


def _mask_names() -> tuple[str, ...]:
    from karstflow.sources import MASK_LAYERS

    return MASK_LAYERS


def _stack_block(
    scenes: Sequence[Scene],
    bands: Sequence[str],
    grid: RegionGrid,
    rules: MaskRules,
    resampling: str,
    block_info: Any = None,
) -> np.ndarray:
    (_, _), (_, _), (r0, r1), (c0, c1) = block_info[None]["array-location"]
    window = (r0, c0, r1 - r0, c1 - c0)
    shape = (r1 - r0, c1 - c0)
    how = {b: resampling for b in bands}
    out = np.empty((len(scenes), len(bands) + 1, *shape), dtype=np.float32)
    # Consecutive scenes reading the same files (the bands of a time stack) are read in
    # one call per file; otherwise scene by scene, so only one scene's raw pixels are
    # held next to the output block.
    t = 0
    while t < len(scenes):
        files = scenes[t].files
        end = t + 1
        while end < len(scenes) and scenes[end].files == files:
            end += 1
        group = scenes[t:end]
        masks = [_scene_masks(s, bands) for s in group]
        read = read_layers_many(
            [(s.layers, [*bands, *m]) for s, m in zip(group, masks, strict=True)], grid, window, resampling=how
        )
        for k, (scene, m, (values, valids)) in enumerate(zip(group, masks, read, strict=True)):
            out[t + k] = _scene_values(scene, bands, m, values, valids, rules, shape)
        del read
        t = end
    return out


# --------------------------------------------------------------------------------------
# checks before reading
# --------------------------------------------------------------------------------------


def check_bands(scenes: Sequence[Scene], bands: Sequence[str], region: str, period: Any) -> None:
    """:class:`MissingBandError` naming region, period, scene and band for the first gap."""
    for scene in scenes:
        missing = [b for b in bands if b not in scene.layers]
        if missing:
            have = ", ".join(scene.layers) or "none"
            raise MissingBandError(
                f"{context(region, period)}: scene {scene.id} ({scene.date}) has no band "
                f"{', '.join(missing)}; its files {', '.join(scene.files)} hold: {have}. "
                "Band names come from the GeoTIFF band descriptions (or inputs.imagery.band_names)."
            )


def file_bounds_in(path: str, crs: str) -> tuple[float, float, float, float]:
    """Bounds of a raster file in ``crs``."""
    import rasterio
    from rasterio.warp import transform_bounds

    with rasterio.open(path) as src:
        if src.crs is None:
            raise ValueError(f"{path}: raster has no CRS; cannot place it on the region grid ({crs})")
        return tuple(transform_bounds(src.crs, crs, *src.bounds, densify_pts=21))  # type: ignore[return-value]


def _overlaps(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def covering(scenes: Sequence[Scene], grid: RegionGrid, region: str, period: Any) -> list[Scene]:
    """Scenes with at least one file overlapping the grid.

    Raises :class:`AoiOutsideDataError` (naming the region, period, the grid's bounds and
    the data's) when none does; logs the scenes dropped otherwise.
    """
    bounds_cache: dict[str, tuple[float, float, float, float]] = {}

    def bounds(path: str) -> tuple[float, float, float, float]:
        if path not in bounds_cache:
            bounds_cache[path] = file_bounds_in(path, grid.crs)
        return bounds_cache[path]

    kept = [s for s in scenes if any(_overlaps(bounds(p), grid.bounds) for p in s.files)]
    if not kept:
        all_b = np.array(list(bounds_cache.values()))
        data = (
            (float(all_b[:, 0].min()), float(all_b[:, 1].min()), float(all_b[:, 2].max()), float(all_b[:, 3].max()))
            if len(all_b)
            else None
        )
        raise AoiOutsideDataError(
            f"{context(region, period)}: the region grid {tuple(round(b, 3) for b in grid.bounds)} ({grid.crs}) "
            f"does not overlap the data of its {len(scenes)} scenes, which span "
            f"{tuple(round(b, 3) for b in data) if data else 'nothing'} "
            f"in the same CRS. Check regions.{region}.aoi and regions.{region}.crs."
        )
    if len(kept) < len(scenes):
        log.info(
            "%s: %d of %d scenes do not overlap the region grid and are skipped",
            context(region, period),
            len(scenes) - len(kept),
            len(scenes),
        )
    return kept


def resolve_offsets(scenes: Sequence[Scene], region: str, period: Any) -> list[Scene]:
    """Decide each ``s2-l2a-dn`` scene's BOA offset from its metadata (harmonise.py)."""
    from dataclasses import replace

    from karstflow.sources.harmonise import HarmonisationError

    out = []
    for s in scenes:
        if s.encoding == "s2-l2a-dn":
            try:
                offset = boa_add_offset(s.meta, item=f"scene {s.id} ({', '.join(s.files)})")
            except HarmonisationError as err:
                raise HarmonisationError(f"{context(region, period)}: {err}") from None
            s = replace(s, meta={**s.meta, "boa_add_offset": offset})
        out.append(s)
    return out


# --------------------------------------------------------------------------------------
# the lazy stack
# --------------------------------------------------------------------------------------


def load_stack(
    scenes: Sequence[Scene],
    grid: RegionGrid,
    bands: Sequence[str],
    *,
    chunk_px: int = 512,
    rules: MaskRules | None = None,
    resampling: str = "nearest",
    region: str = "region",
    period: Any = None,
) -> xr.Dataset:
    """Lazy ``reflectance`` ``(time, band, y, x)`` and ``clear`` ``(time, y, x)`` on ``grid``.

    Scenes are checked first (bands present, footprint overlapping the grid, BOA
    offset decidable), so the errors name region and period before any pixel is read.
    ``time`` carries the scene ids and metadata as coordinates.
    """
    import dask.array as da
    from dask.base import tokenize

    rules = rules or MaskRules()
    bands = list(bands)
    check_bands(scenes, bands, region, period)
    scenes = covering(scenes, grid, region, period)
    scenes = resolve_offsets(scenes, region, period)
    h, w = grid.shape
    c = max(int(chunk_px), 1)
    chunks = ((len(scenes),), (len(bands) + 1,), _split(h, c), _split(w, c))
    name = "karstflow-stack-" + tokenize(
        [(s.id, s.date.isoformat(), s.files, s.encoding, sorted(s.meta.items(), key=str)) for s in scenes],
        grid.to_dict(),
        bands,
        rules,
        resampling,
        c,
    )
    arr = da.map_blocks(
        _stack_block,
        dtype=np.float32,
        chunks=chunks,
        name=name,
        meta=np.empty((0, 0, 0, 0), dtype=np.float32),
        scenes=list(scenes),
        bands=bands,
        grid=grid,
        rules=rules,
        resampling=resampling,
    )
    coords: dict[str, Any] = {
        "time": np.array([np.datetime64(s.date.isoformat(), "ns") for s in scenes]),
        **grid.coords(),
    }
    coords["scene_id"] = ("time", [s.id for s in scenes])
    for key in ("boa_add_offset", "processing_baseline", "cloud_cover_pct"):
        if any(key in s.meta for s in scenes):
            coords[key] = ("time", [_scalar(s.meta.get(key)) for s in scenes])
    coords["band"] = np.array(bands)
    data_vars = {
        # slices of one array: one task reads a block of every scene and band
        "reflectance": (("time", "band", "y", "x"), arr[:, : len(bands)]),
        "clear": (("time", "y", "x"), arr[:, len(bands)] > 0.5),
    }
    ds = xr.Dataset(data_vars, coords=coords)
    ds = ds.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
    ds["reflectance"].attrs.update(long_name="surface reflectance (or the as-is values of the scenes)")
    ds["clear"].attrs.update(long_name="clear observation (mask layers and valid reflectance)")
    return ds


def _scalar(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float) and math.isnan(v):
        return float("nan")
    return v if isinstance(v, int | float) else str(v)


def _split(n: int, c: int) -> tuple[int, ...]:
    full, rest = divmod(n, c)
    return (c,) * full + ((rest,) if rest else ())


# --------------------------------------------------------------------------------------
# streamed writing
# --------------------------------------------------------------------------------------


def _profile(grid: RegionGrid, count: int, dtype: np.dtype, nodata: Any, blocksize: int = 256) -> dict[str, Any]:
    tiled = grid.height >= blocksize and grid.width >= blocksize
    p: dict[str, Any] = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": count,
        "dtype": dtype.name,
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": nodata,
        "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
    }
    if tiled:
        p.update(tiled=True, blockxsize=blocksize, blockysize=blocksize)
    if dtype.kind == "f":
        p["predictor"] = 3
    elif dtype.itemsize > 1:
        p["predictor"] = 2
    return p


def write_streamed(
    outputs: Mapping[str, tuple[xr.DataArray, Mapping[str, Any]]],
    grid: RegionGrid,
    *,
    batch: int | None = None,
    on_block: Callable[[str, tuple[int, int, int, int], np.ndarray], None] | None = None,
) -> None:
    """Write dask-backed rasters on ``grid`` a few spatial blocks at a time.

    ``outputs`` maps a path to ``(array, options)``: array dims ``(band, y, x)`` or
    ``(y, x)`` on ``grid``; options ``dtype``, ``nodata`` (NaN is written as nodata for
    integer outputs), ``band_names`` (the GeoTIFF band descriptions) and ``tags``.

    All outputs are computed together, ``batch`` spatial blocks per pass (default: the
    dask thread count), so blocks they share upstream (a stack block read once for a
    composite and its clear count) are computed once, and at most ``batch`` of them are
    in memory at a time: peak memory follows the chunk size, not the region size.
    ``on_block(path, (row, col, height, width), values)`` is called for every block
    written (e.g. to accumulate headline figures). Every file goes through a temporary
    file renamed into place on success, so a failure leaves none.
    """
    import dask
    import dask.array as da
    import rasterio
    from rasterio.windows import Window

    from karstflow.io import atomic_path

    if batch is None:
        batch = int(dask.config.get("num_workers", None) or os.cpu_count() or 1)
    batch = max(1, batch)
    with ExitStack() as stack:
        arrays, targets = [], []
        for path, (arr, opts) in outputs.items():
            dtype = np.dtype(opts.get("dtype", arr.dtype))
            nodata = opts.get("nodata")
            data = arr.transpose(*([d for d in arr.dims if d not in ("y", "x")] + ["y", "x"]))
            if data.ndim not in (2, 3):
                raise ValueError(f"{path}: expected dims (band, y, x) or (y, x), found {arr.dims}")
            if tuple(data.shape[-2:]) != grid.shape:
                raise ValueError(f"{path}: array shape {data.shape} is not on the region grid {grid.shape}")
            d = (
                data.data
                if isinstance(data.data, da.Array)
                else da.from_array(np.asarray(data.data), chunks=(-1,) * data.ndim)
            )
            if dtype.kind in "ui" and d.dtype.kind == "f":
                d = da.where(da.isnan(d), nodata if nodata is not None else 0, d)
            d = d.astype(dtype)
            if d.ndim == 2:
                d = d[None]
            tmp = stack.enter_context(atomic_path(path, suffix=".tif"))
            dst = stack.enter_context(rasterio.open(tmp, "w", **_profile(grid, d.shape[0], dtype, nodata)))
            for i, name in enumerate(opts.get("band_names") or [], start=1):
                dst.set_band_description(i, str(name))
            for k, v in (opts.get("tags") or {}).items():
                dst.update_tags(**{k: str(v)})
            arrays.append(d)
            targets.append((path, dst))
        ychunks, xchunks = arrays[0].chunks[1:]
        arrays = [a.rechunk({0: -1, 1: ychunks, 2: xchunks}) for a in arrays]
        yoff, xoff = np.cumsum((0, *ychunks)), np.cumsum((0, *xchunks))
        blocks = [(i, j) for i in range(len(ychunks)) for j in range(len(xchunks))]
        for k in range(0, len(blocks), batch):
            group = blocks[k : k + batch]
            values = dask.compute(*[a.blocks[:, i, j] for (i, j) in group for a in arrays])
            for n, (i, j) in enumerate(group):
                window = (int(yoff[i]), int(xoff[j]), int(ychunks[i]), int(xchunks[j]))
                for m, (path, dst) in enumerate(targets):
                    block = values[n * len(arrays) + m]
                    dst.write(block, window=Window(window[1], window[0], window[3], window[2]))
                    if on_block is not None:
                        on_block(path, window, block)

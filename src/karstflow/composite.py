"""Cloud-masked median composites: one value per band and pixel from the clear observations.

:func:`median_composite` takes reflectance with a ``time`` axis and a boolean clear
mask, and returns the per-pixel median of the clear, valid observations and how many
there were. It is NaN-aware (NaN reflectance never enters the median nor the count) and
lazy for dask-backed inputs: the median runs block by block with the whole time axis of
a block in memory, so memory is set by the chunk size, not the region size.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr

log = logging.getLogger(__name__)

__all__ = [
    "AllCloudyWarning",
    "ClearCountTally",
    "clear_count_reductions",
    "composite_summary",
    "median_composite",
    "nanmedian_time",
]


class AllCloudyWarning(UserWarning):
    """A composite has no clear observation at all."""


@numba.njit(nogil=True, cache=True)
def _nanmedian_3d(a: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Median over axis 0 of a (t, y, x) float32 array, skipping NaN; NaN where none."""
    t, ny, nx = a.shape
    out = np.empty((ny, nx), dtype=np.float32)
    block = 256
    tile = np.empty((block, t), dtype=np.float32)
    buf = np.empty(max(t, 1), dtype=np.float32)
    for y in range(ny):
        for x0 in range(0, nx, block):
            m = min(block, nx - x0)
            # gather the time series of `m` pixels; reads stay contiguous along x
            for i in range(t):
                for j in range(m):
                    tile[j, i] = a[i, y, x0 + j]
            for j in range(m):
                k = 0
                for i in range(t):
                    v = tile[j, i]
                    if v == v:  # not NaN: insertion into the sorted buffer
                        p = k
                        while p > 0 and buf[p - 1] > v:
                            buf[p] = buf[p - 1]
                            p -= 1
                        buf[p] = v
                        k += 1
                if k == 0:
                    out[y, x0 + j] = np.nan
                elif k % 2 == 1:
                    out[y, x0 + j] = buf[k // 2]
                else:
                    out[y, x0 + j] = np.float32(0.5) * (buf[k // 2 - 1] + buf[k // 2])
    return out


def nanmedian_time(a: np.ndarray) -> np.ndarray:
    """NaN-skipping median over axis 0 of a ``(time, ..., y, x)`` array (float32 result).

    Equal to ``np.nanmedian(a, axis=0)`` (without its all-NaN warning), several times faster.
    """
    a = np.asarray(a, dtype=np.float32)
    if a.ndim < 2:
        raise ValueError(f"nanmedian_time needs (time, ..., x), found shape {a.shape}")
    lead = a.shape[1:-1]
    flat = a.reshape(a.shape[0], int(np.prod(lead)) if lead else 1, a.shape[-1])
    return _nanmedian_3d(flat).reshape(a.shape[1:])


@numba.njit(nogil=True, cache=True)
def _masked_median_4d(refl: np.ndarray, clear: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """``(t, b, y, x)`` float32 and ``(t, y, x)`` bool -> ``(b + 1, y, x)`` float32.

    Per pixel, the observations that are clear and finite in every band enter each
    band's median; the last plane is their count. No copy of the input is made.
    """
    t, nb, ny, nx = refl.shape
    out = np.empty((nb + 1, ny, nx), dtype=np.float32)
    block = 128
    vals = np.empty((nb, block, max(t, 1)), dtype=np.float32)
    ok = np.empty((block, max(t, 1)), dtype=np.bool_)
    buf = np.empty(max(t, 1), dtype=np.float32)
    for y in range(ny):
        for x0 in range(0, nx, block):
            m = min(block, nx - x0)
            for i in range(t):
                for j in range(m):
                    ok[j, i] = clear[i, y, x0 + j]
                for b in range(nb):
                    for j in range(m):
                        v = refl[i, b, y, x0 + j]
                        vals[b, j, i] = v
                        if v != v:
                            ok[j, i] = False
            for j in range(m):
                n = 0
                for i in range(t):
                    if ok[j, i]:
                        n += 1
                out[nb, y, x0 + j] = n
                for b in range(nb):
                    if n == 0:
                        out[b, y, x0 + j] = np.nan
                        continue
                    k = 0
                    for i in range(t):
                        if ok[j, i]:
                            v = vals[b, j, i]
                            p = k
                            while p > 0 and buf[p - 1] > v:
                                buf[p] = buf[p - 1]
                                p -= 1
                            buf[p] = v
                            k += 1
                    if k % 2 == 1:
                        out[b, y, x0 + j] = buf[k // 2]
                    else:
                        out[b, y, x0 + j] = np.float32(0.5) * (buf[k // 2 - 1] + buf[k // 2])
    return out


def _composite_block(refl: np.ndarray, clear: np.ndarray) -> np.ndarray:
    """``(t, b, y, x)`` reflectance and ``(t, 1, y, x)`` clear -> ``(b + 1, y, x)``: medians, count.

    An observation counts when it is clear and finite in every band.
    """
    r = np.asarray(refl, dtype=np.float32)
    c = np.asarray(clear[:, 0], dtype=np.bool_)
    lead = r.shape[2:-1]
    if lead:  # more than (y, x): fold the leading spatial dims into y
        r = r.reshape(r.shape[0], r.shape[1], -1, r.shape[-1])
        c = c.reshape(c.shape[0], -1, c.shape[-1])
    out = _masked_median_4d(r, c)
    return out.reshape((refl.shape[1] + 1, *refl.shape[2:]))


def median_composite(
    reflectance: xr.Dataset | xr.DataArray,
    clear: xr.DataArray,
    *,
    dim: str = "time",
) -> tuple[xr.Dataset | xr.DataArray, xr.DataArray]:
    """Cloud-masked median composite and clear-observation count.

    Parameters
    ----------
    reflectance
        A Dataset of bands, each with dims ``(dim, *clear's other dims)``, or a
        DataArray with those dims and optionally more (e.g. ``band``). NaN = no
        observation.
    clear
        Boolean with ``dim`` and the spatial dims (typically ``(time, y, x)``): True
        where the observation is clear.

    Returns
    -------
    (composite, clear_count)
        ``composite``: same type and bands as ``reflectance`` without ``dim``, float32,
        the median over the observations that are clear and not NaN in *every* band
        (so all bands of a pixel come from the same observations), NaN where there is
        none. ``clear_count``: uint16 count of those observations. For dask-backed
        inputs both are lazy and come from one task per spatial block (the whole time
        axis of the block in memory, then only the small results), so memory follows
        the chunk size; CRS and transform are kept.
    """
    if dim not in clear.dims:
        raise ValueError(f"clear mask has no {dim!r} dimension (dims {clear.dims})")
    if clear.dtype != bool:
        raise ValueError(f"clear mask must be boolean, found {clear.dtype}")
    space = [d for d in clear.dims if d != dim]
    if isinstance(reflectance, xr.Dataset):
        names = [str(n) for n in reflectance.data_vars]
        if not names:
            raise ValueError("reflectance Dataset has no bands")
        cube = reflectance[names].to_dataarray("__band__")
        extra: list[Hashable] = ["__band__"]
    else:
        extra = [d for d in reflectance.dims if d not in clear.dims]
        cube = (
            reflectance.stack(__band__=extra)
            if len(extra) > 1
            else (reflectance.rename({extra[0]: "__band__"}) if extra else reflectance.expand_dims("__band__", axis=1))
        )
    missing = [d for d in space if d not in cube.dims]
    if missing:
        raise ValueError(f"reflectance lacks the clear mask's dims {missing} (dims {cube.dims})")
    cube = cube.transpose(dim, "__band__", *space)
    mask = clear.transpose(dim, *space)
    data, cdata = cube.data, mask.data[:, None]
    nb = cube.sizes["__band__"]
    if hasattr(data, "dask") or hasattr(cdata, "dask"):
        import dask.array as da

        data = da.asarray(data).rechunk({0: -1, 1: -1})
        cdata = da.asarray(cdata).rechunk(((cdata.shape[0],), (1,), *data.chunks[2:]))
        out = da.map_blocks(
            _composite_block,
            data,
            cdata,
            chunks=((nb + 1,), *data.chunks[2:]),
            drop_axis=0,
            dtype=np.float32,
            meta=np.empty((0,) * (data.ndim - 1), dtype=np.float32),
        )
    else:
        out = _composite_block(np.asarray(data), np.asarray(cdata))
    coords = {k: v for k, v in mask.coords.items() if dim not in v.dims}
    count = xr.DataArray(out[-1], dims=tuple(space), coords=coords, name="clear_count").astype(np.uint16)
    count.attrs = {"long_name": "clear observations per pixel", "units": "1"}
    if isinstance(reflectance, xr.Dataset):
        composite: xr.Dataset | xr.DataArray = xr.Dataset(
            {
                n: xr.DataArray(out[i], dims=tuple(space), coords=coords, name=n, attrs=dict(reflectance[n].attrs))
                for i, n in enumerate(names)
            },
            attrs=dict(reflectance.attrs),
        )
    else:
        med = xr.DataArray(
            out[:-1],
            dims=("__band__", *space),
            coords={**coords, **{k: v for k, v in cube.coords.items() if v.dims == ("__band__",)}},
        )
        if len(extra) > 1:
            med = med.unstack("__band__")
        elif extra:
            med = med.rename({"__band__": extra[0]})
        else:
            med = med.isel(__band__=0, drop=True)
        order = [d for d in reflectance.dims if d != dim]
        composite = med.transpose(*order)
        composite.name, composite.attrs = reflectance.name, dict(reflectance.attrs)
    crs = reflectance.rio.crs if hasattr(reflectance, "rio") else None
    crs = crs or (clear.rio.crs if hasattr(clear, "rio") else None)
    if crs is not None:
        composite = composite.rio.write_crs(crs)
        count = count.rio.write_crs(crs)
    return composite, count


@dataclass
class ClearCountTally:
    """Running figures of a clear-count raster fed block by block (see ``write_streamed``)."""

    pixels: int = 0
    pixels_with_clear: int = 0
    clear_count_sum: int = 0
    clear_count_max: int = 0

    def add(self, block: np.ndarray) -> None:
        b = np.asarray(block)
        self.pixels += int(b.size)
        self.pixels_with_clear += int((b > 0).sum())
        self.clear_count_sum += int(b.sum(dtype=np.int64))
        self.clear_count_max = max(self.clear_count_max, int(b.max()) if b.size else 0)


def clear_count_reductions(clear_count: xr.DataArray) -> list[Any]:
    """Lazy reductions :func:`composite_summary` needs: pixels with a clear observation, sum, max.

    Compute them in the same pass as the composite (e.g. ``write_streamed(also_compute=...)``).
    """
    c = clear_count.data
    return [(c > 0).sum(), c.astype(np.int64).sum(), c.max()]


def composite_summary(
    *,
    pixels: int,
    pixels_with_clear: int,
    clear_count_sum: int,
    clear_count_max: int,
    n_scenes: int,
    period: str,
    context: str = "",
) -> dict[str, Any]:
    """Headline figures of one period from the reductions of its clear count.

    ``clear_share``: share of pixels with at least one clear observation;
    ``clear_count_mean``: mean clear observations per pixel. Warns with
    :class:`AllCloudyWarning` (and records ``all_cloudy``) when no pixel has a clear
    observation: the composite is then all nodata, which is not an error.
    """
    n = int(pixels)
    with_clear = int(pixels_with_clear)
    all_cloudy = with_clear == 0
    if all_cloudy:
        msg = (
            f"{context or period}: no clear observation in any of the {n_scenes} scenes; the composite is all "
            "nodata and the clear count 0 everywhere"
        )
        log.warning(msg)
        warnings.warn(msg, AllCloudyWarning, stacklevel=2)
    return {
        "period": period,
        "scenes": int(n_scenes),
        "pixels": n,
        "clear_share": with_clear / n if n else float("nan"),
        "clear_count_mean": int(clear_count_sum) / n if n else float("nan"),
        "clear_count_max": int(clear_count_max),
        "all_cloudy": all_cloudy,
    }

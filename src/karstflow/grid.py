"""The region grid: one CRS, resolution and snapped extent per region.

Every raster a stage writes for a region lies on its grid, so stages can be combined
pixel by pixel without resampling.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor used on every grid array)
import xarray as xr
from affine import Affine
from pyproj import CRS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegionGrid:
    """A north-up grid: ``bounds`` (xmin, ymin, xmax, ymax) are multiples of ``resolution``."""

    crs: str
    resolution: float
    bounds: tuple[float, float, float, float]

    def __post_init__(self) -> None:
        xmin, ymin, xmax, ymax = self.bounds
        if not (self.resolution > 0 and math.isfinite(self.resolution)):
            raise ValueError(f"grid resolution must be a positive number, found {self.resolution!r}")
        if not (xmax > xmin and ymax > ymin):
            raise ValueError(f"grid bounds must have xmax > xmin and ymax > ymin, found {self.bounds}")
        CRS.from_user_input(self.crs)  # raises on an unknown CRS

    @classmethod
    def from_bounds(cls, crs: str, resolution: float, bounds: tuple[float, float, float, float]) -> RegionGrid:
        """Snap ``bounds`` outward to multiples of ``resolution`` so grids of one CRS align."""
        xmin, ymin, xmax, ymax = (float(b) for b in bounds)
        r = float(resolution)
        snapped = (
            math.floor(round(xmin / r, 9)) * r,
            math.floor(round(ymin / r, 9)) * r,
            math.ceil(round(xmax / r, 9)) * r,
            math.ceil(round(ymax / r, 9)) * r,
        )
        return cls(crs=str(crs), resolution=r, bounds=snapped)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegionGrid:
        return cls(crs=d["crs"], resolution=float(d["resolution"]), bounds=tuple(float(b) for b in d["bounds"]))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["bounds"] = list(self.bounds)
        d["width"], d["height"] = self.width, self.height
        return d

    @property
    def width(self) -> int:
        return int(round((self.bounds[2] - self.bounds[0]) / self.resolution))

    @property
    def height(self) -> int:
        return int(round((self.bounds[3] - self.bounds[1]) / self.resolution))

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def transform(self) -> Affine:
        return Affine(self.resolution, 0.0, self.bounds[0], 0.0, -self.resolution, self.bounds[3])

    @property
    def pixel_area_m2(self) -> float:
        """Area of one pixel in m2; only meaningful for a projected CRS in metres."""
        crs = CRS.from_user_input(self.crs)
        if crs.is_geographic:
            raise ValueError(f"pixel area in m2 needs a projected CRS, the grid is in {self.crs}")
        return self.resolution**2

    def coords(self) -> dict[str, np.ndarray]:
        """Pixel-centre coordinates."""
        r = self.resolution
        x = self.bounds[0] + r * (np.arange(self.width) + 0.5)
        y = self.bounds[3] - r * (np.arange(self.height) + 0.5)
        return {"y": y, "x": x}

    def data_array(self, data: np.ndarray | Any, name: str | None = None, **attrs: Any) -> xr.DataArray:
        """Wrap a (..., height, width) array as a georeferenced DataArray on this grid."""
        if tuple(data.shape[-2:]) != self.shape:
            raise ValueError(f"array shape {data.shape} does not match grid shape {self.shape}")
        dims = tuple(f"dim_{i}" for i in range(data.ndim - 2)) + ("y", "x")
        da = xr.DataArray(data, dims=dims, coords=self.coords(), name=name, attrs=dict(attrs))
        da = da.rio.write_crs(self.crs)
        return da.rio.write_transform(self.transform)

    def matches(self, da: xr.DataArray, atol: float | None = None) -> bool:
        """True when ``da`` lies exactly on this grid (CRS, shape and transform)."""
        if da.rio.crs is None or CRS.from_user_input(da.rio.crs) != CRS.from_user_input(self.crs):
            return False
        if (da.sizes["y"], da.sizes["x"]) != self.shape:
            return False
        tol = atol if atol is not None else self.resolution * 1e-6
        return bool(np.allclose(tuple(da.rio.transform())[:6], tuple(self.transform)[:6], atol=tol))


def reproject_to_grid(
    da: xr.DataArray, grid: RegionGrid, *, resampling: str = "bilinear", source: str = "raster"
) -> xr.DataArray:
    """Put ``da`` on ``grid``; logs when a reprojection or resampling happens.

    ``source`` names the input in log messages and errors.
    """
    from rasterio.enums import Resampling

    if da.rio.crs is None:
        raise ValueError(f"{source}: raster has no CRS; cannot place it on the region grid ({grid.crs})")
    if grid.matches(da):
        return da
    src_crs = CRS.from_user_input(da.rio.crs)
    if src_crs != CRS.from_user_input(grid.crs):
        log.info("%s: reprojecting from %s to the region grid %s (%s resampling)", source, src_crs.to_string(), grid.crs, resampling)
    else:
        log.info("%s: resampling onto the region grid (%s resampling)", source, resampling)
    out = da.rio.reproject(
        grid.crs,
        shape=grid.shape,
        transform=grid.transform,
        resampling=getattr(Resampling, resampling),
        nodata=np.nan if np.issubdtype(da.dtype, np.floating) else da.rio.nodata,
    )
    # rioxarray recomputes coordinates from the transform; pin them to ours exactly.
    return out.assign_coords(grid.coords())


def demo_bounds(origin: tuple[float, float], size_px: int, resolution: float) -> tuple[float, float, float, float]:
    """Square demo extent of ``size_px`` pixels hanging down-right from the upper-left ``origin``."""
    x0, y0 = float(origin[0]), float(origin[1])
    edge = size_px * float(resolution)
    return (x0, y0 - edge, x0 + edge, y0)


def aoi_bounds(aoi, crs: str) -> tuple[float, float, float, float]:
    """Total bounds of an AOI GeoDataFrame in ``crs``; the AOI must carry a CRS."""
    if aoi.crs is None:
        raise ValueError("AOI has no CRS; set one so it can be placed on the region grid")
    if aoi.empty:
        raise ValueError("AOI has no features")
    return tuple(float(b) for b in aoi.to_crs(crs).total_bounds)  # type: ignore[return-value]

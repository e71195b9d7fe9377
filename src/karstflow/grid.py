"""The region grid: one CRS, resolution and snapped extent per region.

Every raster a stage writes for a region lies on its grid, so stages can be combined
pixel by pixel without resampling.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from affine import Affine
from pyproj import CRS


def register_rio() -> None:
    """Register rioxarray's ``.rio`` accessor; call it in a function before it uses ``.rio``.

    Imported on first use, not with the module: the Snakefile reads region grids at
    start-up (tile plans, job resources), and rioxarray (rasterio and dask.array with it)
    would add 0.8 s to every Snakemake start, and to every cluster job, which starts one.
    """
    import rioxarray  # noqa: F401


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
    def from_raster(cls, path: str | Any) -> RegionGrid:
        """The grid of the raster at ``path``: its CRS, pixel size and extent, not snapped.

        Raises ``ValueError`` for a raster without CRS, with a rotated transform, with
        non-square pixels (x and y sizes reported) or that is not north-up.
        """
        import rasterio

        with rasterio.open(path) as ds:
            t, crs, width, height = ds.transform, ds.crs, ds.width, ds.height
        if crs is None:
            raise ValueError(f"{path}: raster has no CRS, so it cannot define a region grid")
        if t.b != 0 or t.d != 0:
            raise ValueError(f"{path}: raster transform is rotated ({tuple(t)[:6]}); a region grid is north-up")
        if not (t.a > 0 and t.e < 0):
            raise ValueError(f"{path}: raster is not north-up (pixel x {t.a}, y {t.e}); a region grid is north-up")
        if not math.isclose(t.a, -t.e, rel_tol=1e-9):
            raise ValueError(
                f"{path}: pixels are not square (x size {t.a!r}, y size {-t.e!r}); a region grid needs one resolution"
            )
        epsg = crs.to_epsg()
        same_as_epsg = epsg is not None and CRS.from_epsg(epsg) == CRS.from_wkt(crs.to_wkt())
        crs_text = f"EPSG:{epsg}" if same_as_epsg else crs.to_wkt()
        r = float(t.a)
        bounds = (float(t.c), float(t.f) - r * height, float(t.c) + r * width, float(t.f))
        return cls(crs=crs_text, resolution=r, bounds=bounds)

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
        register_rio()
        if tuple(data.shape[-2:]) != self.shape:
            raise ValueError(f"array shape {data.shape} does not match grid shape {self.shape}")
        dims = tuple(f"dim_{i}" for i in range(data.ndim - 2)) + ("y", "x")
        da = xr.DataArray(data, dims=dims, coords=self.coords(), name=name, attrs=dict(attrs))
        da = da.rio.write_crs(self.crs)
        return da.rio.write_transform(self.transform)

    def check(self, obj: xr.DataArray | xr.Dataset, *, grid_source: str, source: str) -> None:
        """Raise ``ValueError`` naming ``source`` and ``grid_source`` unless ``obj`` is on this grid."""
        check_same_grid(grid_template(self), obj, f"the region grid ({grid_source})", source)

    def matches(self, da: xr.DataArray, atol: float | None = None) -> bool:
        """True when ``da`` lies exactly on this grid (CRS, shape and transform)."""
        register_rio()
        if da.rio.crs is None or CRS.from_user_input(da.rio.crs) != CRS.from_user_input(self.crs):
            return False
        if (da.sizes["y"], da.sizes["x"]) != self.shape:
            return False
        tol = atol if atol is not None else self.resolution * 1e-6
        return bool(np.allclose(tuple(da.rio.transform())[:6], tuple(self.transform)[:6], atol=tol))


def check_pixel_count(px: int, max_pixels: int, what: str) -> None:
    """Raise ``ValueError`` when a grid of ``px`` pixels exceeds ``grid.max_pixels``."""
    if px > max_pixels:
        raise ValueError(
            f"{what} has {px:,} px, more than grid.max_pixels ({max_pixels:,}); "
            "check the resolution's unit (metres) or raise grid.max_pixels"
        )


def startup_pixels(region: Mapping[str, Any], workdir: str | Path = ".") -> int | None:
    """The pixel count of a region's grid as far as it is known before any rule runs: from
    the AOI bounds, the AOI file's extent (read with pyogrio, reprojected to the region CRS)
    or the ``grid_like`` raster; None when a rule makes them (the demo's generated DEM).

    Read at Snakemake start-up (tiling.auto_above_px, grid.max_pixels), so it reads file
    headers only: no geometry, no pixels.
    """
    workdir = Path(workdir)
    if region.get("grid_like"):
        path = workdir / region["grid_like"]
        if not path.exists():
            return None
        grid = RegionGrid.from_raster(path)
        return grid.width * grid.height
    aoi = region.get("aoi") or {}
    if "bounds" in aoi:
        xmin, ymin, xmax, ymax = (float(b) for b in aoi["bounds"])
    elif aoi.get("path") and (workdir / aoi["path"]).exists():
        import pyogrio
        from pyproj import Transformer

        info = pyogrio.read_info(workdir / aoi["path"])
        xmin, ymin, xmax, ymax = (float(b) for b in info["total_bounds"])
        if info["crs"]:
            transformer = Transformer.from_crs(info["crs"], region["crs"], always_xy=True)
            xmin, ymin, xmax, ymax = transformer.transform_bounds(xmin, ymin, xmax, ymax)
    else:
        return None
    r = float(region["resolution_m"])
    return math.ceil((xmax - xmin) / r) * math.ceil((ymax - ymin) / r)


def reproject_to_grid(
    da: xr.DataArray, grid: RegionGrid, *, resampling: str = "bilinear", source: str = "raster"
) -> xr.DataArray:
    """Put ``da`` on ``grid``; logs when a reprojection or resampling happens.

    ``source`` names the input in log messages and errors.
    """
    from rasterio.enums import Resampling

    register_rio()
    if da.rio.crs is None:
        raise ValueError(f"{source}: raster has no CRS; cannot place it on the region grid ({grid.crs})")
    if grid.matches(da):
        return da
    src_crs = CRS.from_user_input(da.rio.crs)
    if src_crs != CRS.from_user_input(grid.crs):
        log.info(
            "%s: reprojecting from %s to the region grid %s (%s resampling)",
            source,
            src_crs.to_string(),
            grid.crs,
            resampling,
        )
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


def describe_grid(da: xr.DataArray | xr.Dataset) -> str:
    """``"81 x 80 px, upper-left (600000, 2800020), pixel 30 x 30, EPSG:32648"``."""
    register_rio()
    ny, nx = da.sizes["y"], da.sizes["x"]
    x, y = np.asarray(da["x"].values, dtype=float), np.asarray(da["y"].values, dtype=float)
    dx = float(x[1] - x[0]) if nx > 1 else float("nan")
    dy = float(y[1] - y[0]) if ny > 1 else float("nan")
    x0 = x[0] - dx / 2 if nx > 1 else x[0]
    y0 = y[0] - dy / 2 if ny > 1 else y[0]
    try:
        crs = da.rio.crs
    except Exception:  # noqa: BLE001 - a broken grid mapping is just "unknown" here
        crs = None
    crs_text = crs.to_string() if crs else "no CRS"
    return f"{ny} x {nx} px, upper-left ({x0:.10g}, {y0:.10g}), pixel {abs(dx):.10g} x {abs(dy):.10g}, {crs_text}"


def check_same_grid(a: xr.DataArray | xr.Dataset, b: xr.DataArray | xr.Dataset, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` naming both inputs unless ``a`` and ``b`` share one pixel grid.

    Compares the sizes and the pixel-centre coordinates of ``y`` and ``x`` (to 1e-6 of a
    pixel) and the CRS when both carry one. karstflow never resamples annual cubes
    silently: put every input on the region grid first.
    """
    register_rio()
    problem = None
    if (a.sizes.get("y"), a.sizes.get("x")) != (b.sizes.get("y"), b.sizes.get("x")):
        problem = "different sizes"
    else:
        xa, xb = np.asarray(a["x"].values, float), np.asarray(b["x"].values, float)
        ya, yb = np.asarray(a["y"].values, float), np.asarray(b["y"].values, float)
        res = float(np.abs(np.diff(xa)).min()) if xa.size > 1 else 1.0
        if not (np.allclose(xa, xb, rtol=0, atol=res * 1e-6) and np.allclose(ya, yb, rtol=0, atol=res * 1e-6)):
            problem = "different pixel coordinates"
        else:
            try:
                ca, cb = a.rio.crs, b.rio.crs
            except Exception:  # noqa: BLE001
                ca = cb = None
            if ca is not None and cb is not None and ca != cb:
                problem = "different CRS"
    if problem:
        raise ValueError(
            f"grid mismatch ({problem}): {name_b} [{describe_grid(b)}] is not on the grid of "
            f"{name_a} [{describe_grid(a)}]; put both on the region grid"
        )


def grid_template(grid: RegionGrid) -> xr.Dataset:
    """A data-less Dataset with the coordinates and CRS of ``grid`` (for :func:`check_same_grid`)."""
    register_rio()
    return xr.Dataset(coords=grid.coords()).rio.write_crs(grid.crs)

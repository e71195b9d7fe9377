"""Terrain derivatives of a DEM: slope, aspect and the study's aspect classes.

Slope and aspect follow ``gdaldem slope`` / ``gdaldem aspect`` (Horn's 3x3 method), so
the numbers in ``results/{region}/terrain/`` can be reproduced with GDAL. They work on
numpy- and dask-backed rioxarray DataArrays alike; with dask the result stays lazy and
is identical to the in-memory result, chunk boundaries included.
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

__all__ = [
    "ASPECT_CLASSES",
    "ASPECT_CLASS_NODATA",
    "FLAT",
    "SEMI_SHADY",
    "SEMI_SUNNY",
    "SHADY",
    "SUNNY",
    "aspect_class",
    "slope_aspect",
    "terrain_summary",
    "validate_dem",
]

# Aspect class codes of the abandonment study (driver x3, categorical).
FLAT = 0
SHADY = 1
SEMI_SHADY = 2
SEMI_SUNNY = 3
SUNNY = 4
ASPECT_CLASS_NODATA = 255

ASPECT_CLASSES: dict[int, str] = {
    FLAT: "flat",
    SHADY: "shady",
    SEMI_SHADY: "semi-shady",
    SEMI_SUNNY: "semi-sunny",
    SUNNY: "sunny",
}

#: Aspect value written where the surface is exactly flat (no downslope direction).
FLAT_ASPECT = -1.0

# WGS84 ellipsoid. Used for every geographic CRS: the datums a DEM here comes in
# (WGS84, CGCS2000 = EPSG:4490) differ by far less than the DEM's own error.
_WGS84_A = 6378137.0
_WGS84_F = 1.0 / 298.257223563
_WGS84_E2 = _WGS84_F * (2.0 - _WGS84_F)


# --------------------------------------------------------------------------------------
# validation and nodata
# --------------------------------------------------------------------------------------


def _nodata_mask(dem: xr.DataArray) -> xr.DataArray:
    """True where ``dem`` holds a usable elevation (finite and not the declared nodata)."""
    # np.isfinite keeps the DataArray (xarray's __array_ufunc__; numpy's stubs say ndarray)
    if np.issubdtype(dem.dtype, np.floating):
        valid = cast(xr.DataArray, np.isfinite(dem))
    else:
        valid = xr.ones_like(dem, dtype=bool)
    # rio.nodata reads _FillValue/nodata from the attrs: set when the file was opened
    # without mask_and_scale, i.e. the fill value is still in the data.
    nodata = dem.rio.nodata
    if nodata is not None and not np.isnan(nodata):
        # compare in the array's own dtype so a float32 fill like -3.4e38 matches
        valid = valid & (dem != np.asarray(nodata).astype(dem.dtype))
    return valid


def validate_dem(dem: xr.DataArray, source: str) -> None:
    """Fail early when a DEM cannot give any terrain value.

    Parameters
    ----------
    dem
        Elevation raster, masked (NaN) or still holding its ``_FillValue``/rio nodata.
    source
        What to name in the message: a file path or config key.

    Raises
    ------
    ValueError
        If the DEM is empty or every pixel is nodata. For a dask-backed DEM this
        computes one reduction over the array.
    """
    n = int(dem.size)
    if n == 0:
        raise ValueError(f"{source}: DEM is empty (shape {tuple(dem.shape)})")
    n_valid = int(_nodata_mask(dem).sum().compute())
    if n_valid == 0:
        raise ValueError(f"{source}: DEM has no valid pixels (all {n} are nodata)")


# --------------------------------------------------------------------------------------
# the Horn stencil
# --------------------------------------------------------------------------------------


def _horn_block(padded: np.ndarray) -> np.ndarray:
    """Horn derivatives of the interior of a block padded by one pixel on every side.

    Pad pixels are ``+inf`` where they lie outside the raster and real neighbours
    (possibly NaN = nodata) elsewhere, which is what both ``np.pad(..., inf)`` and
    ``dask.array.map_overlap(boundary=inf)`` produce; so numpy and dask inputs go through
    exactly the same arithmetic.

    Returns ``gx + 1j * gy`` for the interior pixels, where ``gx`` is dz per column step
    and ``gy`` is dz per row step (not yet divided by the pixel size). Both derivatives
    travel in one complex array so that a single ``map_overlap`` pass yields them.
    """
    q = np.array(padded, dtype=np.float64, copy=True)
    # A pad row/column lies outside the raster iff it is +inf beside the block's
    # interior; its corner entries may be real halo values of a neighbouring chunk.
    top_out, bottom_out = np.isposinf(q[0, 1]), np.isposinf(q[-1, 1])
    left_out, right_out = np.isposinf(q[1, 0]), np.isposinf(q[1, -1])
    # gdaldem -compute_edges: outside the raster, extrapolate linearly from the two
    # nearest pixels (exact for planes). Rows first, then columns, so that a corner
    # outside both is extrapolated from the already extrapolated pad row. inf - inf
    # (a 1-pixel-wide raster) gives NaN, which the centre substitution below handles.
    with np.errstate(invalid="ignore"):
        if top_out:
            q[0] = 2.0 * q[1] - q[2]
        if bottom_out:
            q[-1] = 2.0 * q[-2] - q[-3]
        if left_out:
            q[:, 0] = 2.0 * q[:, 1] - q[:, 2]
        if right_out:
            q[:, -1] = 2.0 * q[:, -2] - q[:, -3]

    nrow, ncol = q.shape[0] - 2, q.shape[1] - 2
    centre = q[1:-1, 1:-1]

    def neighbour(dr: int, dc: int) -> np.ndarray:
        v = q[1 + dr : 1 + dr + nrow, 1 + dc : 1 + dc + ncol]
        # gdaldem -compute_edges: a nodata neighbour (or an extrapolation that used
        # one) takes the centre value, so pixels beside holes keep a value.
        return np.where(np.isfinite(v), v, centre)

    # compass names assume north-up; the signed pixel steps fix the sign otherwise
    nw, n, ne = neighbour(-1, -1), neighbour(-1, 0), neighbour(-1, 1)
    w, e = neighbour(0, -1), neighbour(0, 1)
    sw, s, se = neighbour(1, -1), neighbour(1, 0), neighbour(1, 1)
    gx = ((ne + 2.0 * e + se) - (nw + 2.0 * w + sw)) / 8.0
    gy = ((sw + 2.0 * s + se) - (nw + 2.0 * n + ne)) / 8.0
    g = gx + 1j * gy
    g[np.isnan(centre)] = np.nan
    return g


def _horn_gradient(z: Any) -> Any:
    """Per-step Horn derivatives (complex ``gx + 1j*gy``) of a 2-D numpy or dask array."""
    if hasattr(z, "dask"):
        import dask.array as da

        return da.map_overlap(
            _horn_block,
            z,
            depth=1,
            boundary=np.inf,
            trim=False,
            chunks=z.chunks,
            dtype=np.complex128,
            meta=np.array((), dtype=np.complex128),
        )
    return _horn_block(np.pad(np.asarray(z, dtype=np.float64), 1, constant_values=np.inf))


# --------------------------------------------------------------------------------------
# pixel sizes in metres
# --------------------------------------------------------------------------------------


def _metres_per_degree(lat_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Metres per degree of (latitude, longitude) at ``lat_deg`` on the WGS84 ellipsoid.

    Uses the ellipsoid's radii of curvature: meridional M = a(1-e2)/(1-e2 sin2 phi)^1.5
    for a degree of latitude and prime-vertical N = a/sqrt(1-e2 sin2 phi) times cos(phi)
    for a degree of longitude. A sphere would be off by up to ~0.7 %.
    """
    phi = np.deg2rad(np.asarray(lat_deg, dtype=np.float64))
    w2 = 1.0 - _WGS84_E2 * np.sin(phi) ** 2
    m = _WGS84_A * (1.0 - _WGS84_E2) / w2**1.5
    nu = _WGS84_A / np.sqrt(w2)
    rad = math.pi / 180.0
    return m * rad, nu * np.cos(phi) * rad


def _pixel_steps_m(dem: xr.DataArray, y_dim: str) -> tuple[Any, Any]:
    """Signed ground distance (m) of one column step eastward and one row step northward.

    Returns ``(x_step, y_step)``: floats for a projected CRS, DataArrays along ``y_dim``
    for a geographic one. Signs come from the transform, so south-up or east-left
    rasters need no special case: dz/dE = gx / x_step and dz/dN = gy / y_step.
    """
    crs = dem.rio.crs
    t = dem.rio.transform(recalc=True)
    if t.b != 0 or t.d != 0:
        raise ValueError(
            f"DEM transform is rotated/sheared ({t.b}, {t.d}); slope_aspect needs a "
            "north-up or south-up grid: reproject the DEM first"
        )
    if crs.is_geographic:
        lat = dem[y_dim]
        if float(np.abs(lat).max()) > 90.0:
            raise ValueError(
                f"DEM CRS {crs} is geographic but the {y_dim!r} coordinate reaches "
                f"{float(np.abs(lat).max())} (not a latitude)"
            )
        m_lat, m_lon = _metres_per_degree(lat.values)
        x_step = xr.DataArray(t.a * m_lon, dims=(y_dim,), coords={y_dim: lat.values})
        y_step = xr.DataArray(t.e * m_lat, dims=(y_dim,), coords={y_dim: lat.values})
        return x_step, y_step
    unit_m = crs.linear_units_factor[1]
    return t.a * unit_m, t.e * unit_m


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------


def slope_aspect(dem: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """Slope and aspect of a DEM by Horn's method, as ``gdaldem slope``/``aspect``.

    Parameters
    ----------
    dem
        2-D elevation raster in metres with dims (y, x), a CRS and an axis-aligned
        transform (``dem.rio.crs``, ``dem.rio.transform()``). Nodata is NaN, or the
        rio nodata/``_FillValue`` still present in an unmasked array. Integer DEMs
        are fine. numpy- or dask-backed.

    Returns
    -------
    (slope_deg, aspect_deg)
        float32 DataArrays on the DEM's grid (same coords, CRS written), NaN where the
        DEM is nodata, attrs ``units="degree"`` and ``long_name``. Dask-backed and lazy
        when ``dem`` is.

        * slope: 0 (flat) to 90 degrees, ``atan(hypot(dz/dE, dz/dN))``.
        * aspect: azimuth clockwise from north of the direction the slope faces
          (downslope), in [0, 360); exactly ``-1`` where dz/dx == dz/dy == 0.

    Notes
    -----
    * Derivatives: Horn's 3x3 weighted differences, as GDAL. Pixel sizes come from the
      transform, so non-square and south-up grids are handled; in a projected CRS the
      linear unit is converted to metres. In a geographic CRS each row uses metres per
      degree of latitude and longitude at its own latitude, on the WGS84 ellipsoid
      (see :func:`_metres_per_degree`).
    * Aspect uses the metric derivatives. ``gdaldem aspect`` uses the raw differences
      (ignoring pixel size); the two agree for square projected pixels and ours stays
      correct for non-square or geographic pixels.
    * Edges and holes follow ``gdaldem -compute_edges`` so no pixel next to the raster
      edge or to nodata is lost: a neighbour outside the raster is extrapolated
      linearly from the two nearest pixels (exact for planes), and a nodata neighbour,
      or an extrapolation that needed one, takes the centre pixel's value. Only the
      four corner pixels differ from GDAL, which replicates the centre column there
      instead of extrapolating it.
    * Dask: one ``map_overlap`` pass with a halo of 1 whose outside-the-raster padding
      is marked by ``+inf`` (DEM infinities are treated as nodata first), so chunked
      results are bit-identical to in-memory ones.
    * An all-nodata DEM raises ``ValueError`` via :func:`validate_dem` (for dask this
      computes one reduction).

    Raises
    ------
    ValueError
        If the DEM is not 2-D, has no CRS, a rotated transform, or no valid pixel.
    """
    source = str(dem.name) if dem.name is not None else "DEM"
    if dem.ndim != 2:
        raise ValueError(
            f"{source}: slope_aspect needs a 2-D (y, x) DEM, got dims {dem.dims}; "
            "select one band first, e.g. dem.squeeze('band', drop=True)"
        )
    crs = dem.rio.crs
    if crs is None:
        raise ValueError(
            f"{source}: DEM has no CRS, so its pixel size cannot be turned into metres; "
            "write one with dem.rio.write_crs(...)"
        )
    y_dim, x_dim = dem.rio.y_dim, dem.rio.x_dim
    if dem.dims != (y_dim, x_dim):
        dem = dem.transpose(y_dim, x_dim)
    validate_dem(dem, source)

    z = dem.astype(np.float64).where(_nodata_mask(dem))
    grad = xr.DataArray(_horn_gradient(z.data), dims=dem.dims, coords=dem.coords)
    x_step, y_step = _pixel_steps_m(dem, y_dim)
    dz_de = grad.real / x_step
    dz_dn = grad.imag / y_step

    slope = np.degrees(np.arctan(np.hypot(dz_de, dz_dn)))
    # azimuth of the downslope vector (-dz/dE, -dz/dN), measured from north to east
    aspect = np.degrees(np.arctan2(-dz_de, -dz_dn)) % 360.0
    aspect = aspect.astype(np.float32)
    # float32 rounding can turn 359.99999 into 360; gdaldem writes 0 there too
    aspect = aspect.where(~(aspect >= 360.0), np.float32(0.0))
    flat = (grad.real == 0) & (grad.imag == 0)
    aspect = aspect.where(~flat, np.float32(FLAT_ASPECT))

    def finish(da: xr.DataArray, name: str, long_name: str) -> xr.DataArray:
        out = da.astype(np.float32).transpose(*dem.dims)
        out = out.assign_coords(dem.coords)
        out.name = name
        out.attrs = {"units": "degree", "long_name": long_name}
        out = out.rio.write_crs(crs)
        out = out.rio.write_transform(dem.rio.transform(recalc=True))
        return out.rio.write_nodata(np.nan, encoded=False)

    return (
        finish(slope, "slope", "terrain slope (Horn)"),
        finish(
            aspect,
            "aspect",
            "terrain aspect, degrees clockwise from north of the downslope direction; -1 flat",
        ),
    )


def aspect_class(
    aspect_deg: xr.DataArray, slope_deg: xr.DataArray, flat_max_deg: float
) -> xr.DataArray:
    """Classify aspect into the study's five classes (driver x3).

    Codes (module constants, legend in :data:`ASPECT_CLASSES`):

    * ``FLAT`` 0: slope < ``flat_max_deg`` or aspect == -1;
    * ``SHADY`` 1: aspect in [0, 45) or [315, 360];
    * ``SEMI_SHADY`` 2: [45, 135);
    * ``SUNNY`` 4: [135, 225);
    * ``SEMI_SUNNY`` 3: [225, 315).

    Returns uint8 with ``ASPECT_CLASS_NODATA`` (255, also written as ``_FillValue`` /
    rio nodata) where either input is NaN, or where the aspect is outside [0, 360]
    and not -1 (not an aspect in this convention). Plain xarray ops: dask stays lazy.

    Raises
    ------
    ValueError
        If ``flat_max_deg`` is negative or not finite.
    """
    flat_max = float(flat_max_deg)
    if not math.isfinite(flat_max) or flat_max < 0:
        raise ValueError(f"flat_max_deg must be a finite angle >= 0 degrees, got {flat_max_deg!r}")
    a, s = aspect_deg, slope_deg
    missing = a.isnull() | s.isnull()
    flat = (s < flat_max) | (a == FLAT_ASPECT)

    code = xr.full_like(a, ASPECT_CLASS_NODATA, dtype=np.uint8)
    # later assignments win, so the order encodes precedence: nodata > flat > direction
    for cls, cond in (
        (SHADY, ((a >= 0) & (a < 45)) | ((a >= 315) & (a <= 360))),
        (SEMI_SHADY, (a >= 45) & (a < 135)),
        (SUNNY, (a >= 135) & (a < 225)),
        (SEMI_SUNNY, (a >= 225) & (a < 315)),
        (FLAT, flat),
    ):
        code = xr.where(cond, np.uint8(cls), code)
    code = xr.where(missing, np.uint8(ASPECT_CLASS_NODATA), code).astype(np.uint8)

    code.name = "aspect_class"
    code.attrs = {
        "long_name": "aspect class",
        "flag_values": np.array(sorted(ASPECT_CLASSES), dtype=np.uint8),
        "flag_meanings": " ".join(
            ASPECT_CLASSES[k].replace("-", "_") for k in sorted(ASPECT_CLASSES)
        ),
        "flat_max_deg": flat_max,
    }
    crs = aspect_deg.rio.crs
    if crs is not None:
        code = code.rio.write_crs(crs)
    return code.rio.write_nodata(ASPECT_CLASS_NODATA, encoded=False)


def terrain_summary(
    dem: xr.DataArray, slope_deg: xr.DataArray, classes: xr.DataArray, *, flat_max_deg: float
) -> dict[str, Any]:
    """Headline terrain figures of a region: elevation range, slope, aspect-class shares.

    Takes computed (in-memory) arrays: the median needs all values at once.
    """
    z = np.asarray(dem, dtype="float64")
    slope = np.asarray(slope_deg, dtype="float64")
    cls = np.asarray(classes)
    valid = np.isfinite(z)
    n_valid = int(valid.sum())
    n_class = int((cls != ASPECT_CLASS_NODATA).sum())
    nan = float("nan")
    return {
        "valid_pixels": n_valid,
        "elevation_min_m": float(np.nanmin(z)) if n_valid else nan,
        "elevation_mean_m": float(np.nanmean(z)) if n_valid else nan,
        "elevation_max_m": float(np.nanmax(z)) if n_valid else nan,
        "slope_mean_deg": float(np.nanmean(slope)) if n_valid else nan,
        "slope_median_deg": float(np.nanmedian(slope)) if n_valid else nan,
        # 25 deg is the reserve-farmland slope limit of the study (DESIGN.md).
        "slope_ge_25deg_share": float((slope >= 25).sum() / n_valid) if n_valid else nan,
        "flat_max_deg": float(flat_max_deg),
        "aspect_class_share": {
            name: (float((cls == code).sum() / n_class) if n_class else nan) for code, name in ASPECT_CLASSES.items()
        },
    }

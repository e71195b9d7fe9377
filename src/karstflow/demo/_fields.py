"""Shared helpers of the demo generators: seeded streams, smooth noise, shapes, terrain.

Everything here is deterministic given its ``numpy.random.Generator`` and fast at county
size (10 million pixels): smooth noise is a cubic B-spline through a coarse lattice of
Gaussian values, evaluated with two sparse matrix products instead of a filter.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import shapely
import xarray as xr
from affine import Affine
from rasterio import features

log = logging.getLogger("karstflow.demo")


# --------------------------------------------------------------------------------------
# random streams
# --------------------------------------------------------------------------------------


def component_rng(seed: int, component: str) -> np.random.Generator:
    """An independent generator for one named component of a demo.

    Seeded from ``(seed, crc32(component))`` so that changing, adding or removing one
    component never shifts the random numbers of another.
    """
    return np.random.default_rng([int(seed), zlib.crc32(component.encode("utf-8"))])


# --------------------------------------------------------------------------------------
# smooth noise
# --------------------------------------------------------------------------------------


def _bspline_matrix(n_out: int, step_px: float) -> sp.csr_matrix:
    """Sparse (n_out x n_nodes) matrix of cubic B-spline weights.

    Lattice nodes are ``step_px`` output pixels apart; pixel ``i`` (centre ``i + 0.5``)
    sits at lattice coordinate ``(i + 0.5) / step_px + 1``.
    """
    n_nodes = int(math.ceil(n_out / step_px)) + 4
    p = (np.arange(n_out) + 0.5) / step_px + 1.0
    i0 = np.floor(p).astype(np.int64)
    t = p - i0
    w = np.stack(
        [
            (1 - t) ** 3 / 6.0,
            (3 * t**3 - 6 * t**2 + 4) / 6.0,
            (-3 * t**3 + 3 * t**2 + 3 * t + 1) / 6.0,
            t**3 / 6.0,
        ],
        axis=1,
    )
    cols = i0[:, None] + np.arange(-1, 3)[None, :]
    rows = np.repeat(np.arange(n_out), 4)
    return sp.csr_matrix((w.ravel(), (rows, cols.ravel())), shape=(n_out, n_nodes))


def smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int], length_px: float, *, normalise: bool = True
) -> np.ndarray:
    """Smooth Gaussian noise with correlation length about ``length_px`` pixels (float32).

    A cubic B-spline through N(0, 1) values on a lattice ``length_px`` apart. With
    ``normalise`` the field is rescaled to mean 0 and standard deviation 1 exactly.
    """
    h, w = shape
    step = max(float(length_px), 1.0)
    wy = _bspline_matrix(h, step)
    wx = _bspline_matrix(w, step)
    lattice = rng.standard_normal((wy.shape[1], wx.shape[1]))
    field = np.asarray((wx @ (wy @ lattice).T).T, dtype=np.float64)
    if normalise:
        sd = field.std()
        field = (field - field.mean()) / (sd if sd > 0 else 1.0)
    return field.astype(np.float32)


def fractal_noise(
    rng: np.random.Generator,
    shape: tuple[int, int],
    base_length_px: float,
    *,
    octaves: int = 5,
    persistence: float = 0.5,
    min_length_px: float = 2.0,
) -> np.ndarray:
    """Sum of smooth-noise octaves (lengths halving, amplitudes x ``persistence``), sd 1."""
    total = np.zeros(shape, dtype=np.float32)
    amp, length = 1.0, float(base_length_px)
    for _ in range(octaves):
        if length < min_length_px:
            break
        total += np.float32(amp) * smooth_noise(rng, shape, length)
        amp *= persistence
        length /= 2.0
    sd = float(total.std())
    return ((total - total.mean()) / (sd if sd > 0 else 1.0)).astype(np.float32)


def quantile_threshold(values: np.ndarray, share: float, mask: np.ndarray | None = None) -> float:
    """The value above which ``share`` of ``values`` (within ``mask``) lie."""
    v = values[mask] if mask is not None else values.ravel()
    if v.size == 0:
        return float("inf")
    return float(np.quantile(v, 1.0 - share))


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


# --------------------------------------------------------------------------------------
# shapes
# --------------------------------------------------------------------------------------


def blob_polygon(
    rng: np.random.Generator,
    cx: float,
    cy: float,
    radius: float,
    *,
    n_vertices: int = 40,
    roughness: float = 0.3,
) -> shapely.Polygon:
    """An irregular star-shaped polygon around (cx, cy) with mean radius ``radius``."""
    theta = np.linspace(0.0, 2.0 * math.pi, n_vertices, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 6):
        r += rng.uniform(0.0, roughness / (k - 1)) * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
    r = radius * np.clip(r, 0.3, None)
    coords = np.column_stack([cx + r * np.sin(theta), cy + r * np.cos(theta)])
    return shapely.Polygon(np.round(coords, 2))


def smooth_curve(
    rng: np.random.Generator,
    start: tuple[float, float],
    end: tuple[float, float],
    *,
    wiggle: float,
    n_points: int = 200,
    harmonics: int = 4,
) -> np.ndarray:
    """Points of a smooth random curve from ``start`` to ``end`` (n_points x 2).

    The curve departs sideways from the straight line by sinusoids that vanish at both
    ends; ``wiggle`` is the largest amplitude (m).
    """
    (x0, y0), (x1, y1) = start, end
    t = np.linspace(0.0, 1.0, n_points)
    dx, dy = x1 - x0, y1 - y0
    length = math.hypot(dx, dy) or 1.0
    nx_, ny_ = -dy / length, dx / length
    offset = np.zeros_like(t)
    for k in range(1, harmonics + 1):
        offset += rng.uniform(-1, 1) * wiggle / k * np.sin(k * math.pi * t)
    return np.column_stack([x0 + t * dx + offset * nx_, y0 + t * dy + offset * ny_])


def voronoi_cells(points: np.ndarray, bounds: Sequence[float]) -> list[shapely.Polygon]:
    """Voronoi cells of ``points`` clipped to ``bounds``, in the order of ``points``."""
    xmin, ymin, xmax, ymax = bounds
    box = shapely.box(xmin, ymin, xmax, ymax)
    mp = shapely.MultiPoint(points)
    cells = shapely.get_parts(shapely.voronoi_polygons(mp, extend_to=box))
    cells = shapely.intersection(cells, box)
    # match every point to the cell that contains it (voronoi output order is arbitrary)
    tree = shapely.STRtree(cells)
    pts = shapely.points(points)
    idx_pt, idx_cell = tree.query(pts, predicate="intersects")
    order = np.full(len(points), -1, dtype=np.int64)
    for p, c in zip(idx_pt, idx_cell, strict=True):
        if order[p] < 0:
            order[p] = c
    if (order < 0).any():
        raise RuntimeError("voronoi: a point lies in no cell")
    out = [cells[i] for i in order]
    return [shapely.make_valid(c) if not c.is_valid else c for c in out]


def poisson_points(
    rng: np.random.Generator,
    weights: np.ndarray,
    transform: Affine,
    n: int,
    min_dist: float,
    *,
    max_tries: int | None = None,
) -> np.ndarray:
    """Up to ``n`` points (x, y) drawn with probability ~ ``weights`` (per pixel), at
    least ``min_dist`` apart (simple dart throwing with a hash grid)."""
    w = np.clip(weights.astype(np.float64).ravel(), 0, None)
    total = w.sum()
    if total <= 0:
        return np.empty((0, 2))
    p = w / total
    tries = max_tries or n * 30
    cand = rng.choice(w.size, size=tries, p=p)
    jitter = rng.uniform(0, 1, size=(tries, 2))
    h, width = weights.shape
    rows, cols = np.divmod(cand, width)
    xs = transform.c + (cols + jitter[:, 0]) * transform.a
    ys = transform.f + (rows + jitter[:, 1]) * transform.e
    cell = min_dist
    grid: dict[tuple[int, int], list[int]] = {}
    out: list[tuple[float, float]] = []
    md2 = min_dist * min_dist
    for x, y in zip(xs, ys, strict=True):
        gx, gy = int(x // cell), int(y // cell)
        ok = True
        for i in (gx - 1, gx, gx + 1):
            for j in (gy - 1, gy, gy + 1):
                for k in grid.get((i, j), ()):
                    ox, oy = out[k]
                    if (ox - x) ** 2 + (oy - y) ** 2 < md2:
                        ok = False
                        break
                if not ok:
                    break
            if not ok:
                break
        if ok:
            grid.setdefault((gx, gy), []).append(len(out))
            out.append((float(x), float(y)))
            if len(out) >= n:
                break
    return np.round(np.array(out, dtype=np.float64).reshape(-1, 2), 2)


# --------------------------------------------------------------------------------------
# rasterising and zonal statistics
# --------------------------------------------------------------------------------------


def rasterize_ids(
    geoms: Sequence[shapely.Geometry],
    shape: tuple[int, int],
    transform: Affine,
    *,
    ids: Sequence[int] | None = None,
    fill: int = 0,
    all_touched: bool = False,
    dtype: str = "int32",
) -> np.ndarray:
    """Burn ``ids`` (default 1..n) of ``geoms`` into a raster; pixel centres inside count.

    Later geometries win where they overlap.
    """
    if len(geoms) == 0:
        return np.full(shape, fill, dtype=dtype)
    values = ids if ids is not None else range(1, len(geoms) + 1)
    return features.rasterize(
        ((g, int(v)) for g, v in zip(geoms, values, strict=True) if g is not None and not g.is_empty),
        out_shape=shape,
        transform=transform,
        fill=fill,
        all_touched=all_touched,
        dtype=dtype,
    )


def zonal_mean(ids: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Mean of ``values`` per zone id 1..n (NaN values ignored); NaN for empty zones."""
    flat_ids = ids.ravel()
    v = values.ravel().astype(np.float64)
    ok = (flat_ids > 0) & np.isfinite(v)
    s = np.bincount(flat_ids[ok], weights=v[ok], minlength=n + 1)[1:]
    c = np.bincount(flat_ids[ok], minlength=n + 1)[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, s / np.maximum(c, 1), np.nan)


def zonal_counts(ids: np.ndarray, classes: np.ndarray, n: int, n_classes: int) -> np.ndarray:
    """(n x n_classes) pixel counts of class codes 0..n_classes-1 per zone id 1..n."""
    flat_ids = ids.ravel().astype(np.int64)
    c = classes.ravel().astype(np.int64)
    ok = (flat_ids > 0) & (c >= 0) & (c < n_classes)
    counts = np.bincount(flat_ids[ok] * n_classes + c[ok], minlength=(n + 1) * n_classes)
    return counts.reshape(n + 1, n_classes)[1:]


# --------------------------------------------------------------------------------------
# terrain
# --------------------------------------------------------------------------------------


def slope_aspect_np(dem: xr.DataArray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Slope and aspect (degrees, float32 numpy) of a georeferenced DEM.

    Uses :func:`karstflow.terrain.slope_aspect` (Horn, as the terrain stage) on a
    dask-chunked copy so memory stays bounded at county size; results are identical.
    """
    from karstflow.terrain import slope_aspect

    src = dem.chunk({"y": chunk, "x": chunk}) if max(dem.shape) > chunk else dem
    slope, aspect = slope_aspect(src)
    return np.asarray(slope.values, dtype=np.float32), np.asarray(aspect.values, dtype=np.float32)


def aspect_class_np(aspect: np.ndarray, slope: np.ndarray, flat_max_deg: float, template: xr.DataArray) -> np.ndarray:
    """The study's aspect classes (0..4, 255 nodata) via :func:`karstflow.terrain.aspect_class`."""
    from karstflow.terrain import aspect_class

    a = template.copy(data=aspect)
    s = template.copy(data=slope)
    return np.asarray(aspect_class(a, s, flat_max_deg).values, dtype=np.uint8)


def interior_mask(shape: tuple[int, int], mask: np.ndarray, margin: int = 1) -> np.ndarray:
    """Pixels of ``mask`` whose (2*margin+1)^2 neighbourhood is entirely in ``mask``."""
    from scipy import ndimage

    if margin <= 0:
        return mask.copy()
    return ndimage.binary_erosion(mask, structure=np.ones((2 * margin + 1,) * 2, bool), border_value=0)

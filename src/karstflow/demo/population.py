"""The karst demo's population: a gridded series and a township table with a PLANTED effect.

The demo's NDVI trends are planted first (zones of greening and browning, see
:mod:`karstflow.demo.karst`), so the social side is generated from the ecological side:
on the coupling stage's cells (``cell_px`` pixels square, anchored at the grid's top-left
corner as :func:`karstflow.coupling_units.cell_labels` lays them), with ``y`` the cell mean
of the planted NDVI slope and ``s`` the cell mean terrain slope (degree), the relative
population change ``x`` of every cell is chosen so that::

    y = alpha + beta * x + u

holds exactly, with ``u`` spatially autocorrelated and, in the sample of cells, orthogonal
to the constant, to ``x`` and to ``s`` (so OLS and the spatial models estimate ``beta``
without bias, and the coefficient of ``s`` is 0):

* ``y~`` is ``y`` with the constant and ``s`` regressed out;
* ``u`` is the smooth part of ``y~``: its components on the Moran eigenvectors of the
  cells (of the normalised queen contiguity, orthogonal to the constant and ``s``) whose
  eigenvalue exceeds ``smooth_above``; ``x = (y - alpha - u) / beta`` takes the other components. Disjoint
  components keep ``u`` orthogonal to ``x`` under OLS and under any weighting that is a
  function of the contiguity (the GLS of the spatial error model), and ``u`` strongly
  autocorrelated while ``x`` is only mildly so: the Lagrange-multiplier tests point to the
  error model;
* ``alpha`` puts the mean of ``x`` at ``mean_rate``.

An endogenous alternative (``x = (y - alpha - u) / beta`` with ``u`` drawn independently
of ``y``) would correlate ``x`` with ``u`` and attenuate the estimate; this construction
does not. ``beta`` is then recovered by OLS exactly and by the spatial error model within
its interval (the measured slope is Theil-Sen on the noisy NDVI, not the planted slope).
Persons per pixel then follow ``P0 * (1 + x * (year - first) / (last - first))``
with ``P0`` a rural density field, so every cell's population changes by exactly ``x``
from the first to the last year. The township table sums the pixels of each township.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from karstflow.coupling_units import cell_labels

#: The owner's column names of the demo township table (a statistical-yearbook layout:
#: township code, year, resident (常住) and registered (户籍) population, rural share),
#: mapped to the canonical names in config/config.yaml like a user's own table.
TABLE_COLUMNS = {
    "township_id": "XZ_CODE",
    "year": "NIAN",
    "resident": "CZRK",
    "registered": "HJRK",
    "rural_share": "NCRK_BL",
}


def _residualise(v: np.ndarray, design: np.ndarray) -> np.ndarray:
    return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]


def _moran_eigenvectors(n_rows: int, n_cols: int, design: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors of M S M: S = D^-1/2 A D^-1/2 with A the queen contiguity
    of an n_rows x n_cols lattice, M the projection off the columns of ``design`` (Moran
    eigenvectors, as in eigenvector spatial filtering: orthogonal to the design, ordered
    from the most negatively to the most positively autocorrelated pattern)."""
    n = n_rows * n_cols
    a = np.zeros((n, n))
    for r in range(n_rows):
        for c in range(n_cols):
            i = r * n_cols + c
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    if (dr or dc) and 0 <= rr < n_rows and 0 <= cc < n_cols:
                        a[i, rr * n_cols + cc] = 1.0
    d = 1.0 / np.sqrt(a.sum(axis=1))
    m = np.eye(n) - design @ np.linalg.pinv(design)
    values, vectors = np.linalg.eigh(m @ (a * d[:, None] * d[None, :]) @ m)
    return values, vectors


def plant_population(
    rng: np.random.Generator,
    shape: tuple[int, int],
    resolution: float,
    years: tuple[int, ...],
    ndvi_slope: np.ndarray,
    terrain_slope: np.ndarray,
    township_ids: np.ndarray,
    *,
    cell_px: int = 8,
    beta: float = -0.02,
    smooth_above: float = 0.5,
    mean_rate: float = -0.15,
    density_km2: float = 250.0,
) -> dict[str, Any]:
    """The population cube values (year, y, x), the township table and the PLANTED record."""
    cell_m = cell_px * resolution
    labels, n_rows, n_cols = cell_labels(shape, resolution, cell_m)
    n = n_rows * n_cols
    counts = np.bincount(labels.ravel(), minlength=n + 1)[1:]

    def cell_mean(v: np.ndarray) -> np.ndarray:
        return np.bincount(labels.ravel(), weights=v.astype(np.float64).ravel(), minlength=n + 1)[1:] / counts

    y = cell_mean(ndvi_slope)
    s = cell_mean(terrain_slope)
    one = np.ones(n)
    ys = _residualise(y, np.column_stack([one, s]))
    # u: the smooth part of y~, its components on the eigenvectors of the (symmetric,
    # normalised) queen contiguity of the cells whose eigenvalue exceeds smooth_above;
    # x the rest. Disjoint components keep u orthogonal to x not only in OLS but under
    # any weighting that is a function of the contiguity (the spatial error model's GLS)
    # (Moran eigenvectors orthogonal to the constant and s: u is an orthogonal projection
    # of y~ onto some of them, so u is exactly orthogonal to x, to the constant and to s)
    values, basis = _moran_eigenvectors(n_rows, n_cols, np.column_stack([one, s]))
    smooth = basis[:, values > smooth_above]
    u = smooth @ (smooth.T @ ys)
    alpha = float(y.mean() - beta * mean_rate)
    x = (y - alpha - u) / beta
    if (1.0 + x).min() <= 0.05:
        raise ValueError(
            f"population demo: a cell would lose {-x.min():.0%} of its people; choose a larger |beta| "
            f"(found {beta}) or a mean_rate nearer 0 (found {mean_rate})"
        )
    # persons per pixel at the first year: a rural density field (persons per km2)
    dens = density_km2 * np.exp(0.35 * ndimage.gaussian_filter(rng.standard_normal(shape), sigma=6.0) * 6.0)
    p0 = dens * resolution**2 / 1e6
    rate_px = x[labels - 1]
    first, last = years[0], years[-1]
    span = float(last - first)
    cube = np.stack([p0 * (1.0 + rate_px * (yr - first) / span) for yr in years]).astype(np.float32)

    rows = []
    ids = sorted(int(i) for i in np.unique(township_ids) if i > 0)
    for k, yr in enumerate(years):
        t = (yr - first) / span
        for tid in ids:
            resident = float(cube[k][township_ids == tid].astype(np.float64).sum())
            rows.append(
                {
                    TABLE_COLUMNS["township_id"]: tid,
                    TABLE_COLUMNS["year"]: yr,
                    TABLE_COLUMNS["resident"]: round(resident, 3),
                    # migrants keep their household registration where they left
                    TABLE_COLUMNS["registered"]: round(resident * (1.0 + 0.25 * t), 3),
                    TABLE_COLUMNS["rural_share"]: round(0.85 - 0.15 * t, 4),
                }
            )
    table = pd.DataFrame(rows)
    design = np.column_stack([one, x, s])
    planted = {
        "model": "cell mean NDVI slope y = alpha + beta * population_rate + 0 * slope_mean + u",
        "construction": (
            "population_rate chosen per cell from the planted NDVI slope so that u is spatially "
            "autocorrelated and orthogonal to (1, population_rate, slope_mean) in the sample "
            "(karstflow.demo.population)"
        ),
        "cell_px": cell_px,
        "cell_size_m": cell_m,
        "cells": n,
        "beta": beta,
        "alpha": alpha,
        "smooth_above": smooth_above,
        "mean_rate": mean_rate,
        "rate_range": [float(x.min()), float(x.max())],
        "u_sd": float(u.std()),
        "ols_check": [float(v) for v in np.linalg.lstsq(design, y, rcond=None)[0]],
        "dependent": "ndvi_slope_mean",
        "explanatory": ["population_rate", "slope_mean"],
        "density_km2": density_km2,
        "files": {"grid": "population.nc", "table": "population_townships.csv"},
        "table_columns": dict(TABLE_COLUMNS),
    }
    return {"cube": cube, "table": table, "planted": planted, "cell_rate": x, "cell_y": y}

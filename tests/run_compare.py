"""Compare the results of two workflow runs file by file (tiled against untiled, a Slurm
run against a local one): rasters and cubes pixel by pixel, JSON and CSV value by value.

``tolerances`` maps a glob of result paths to an absolute tolerance; a file it does not
match must be identical (NaN equal to NaN).
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np


def _tolerance(rel: str, tolerances: Mapping[str, float]) -> float:
    return max((tol for pattern, tol in tolerances.items() if fnmatch.fnmatch(rel, pattern)), default=0.0)


def _arrays(a: np.ndarray, b: np.ndarray, what: str, tol: float) -> list[str]:
    if a.shape != b.shape:
        return [f"{what}: shape {a.shape} vs {b.shape}"]
    if a.dtype.kind in "fc":
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        if not np.array_equal(nan_a, nan_b):
            return [f"{what}: {int((nan_a != nan_b).sum())} px missing in one run only"]
        diff = np.abs(a[~nan_a].astype("float64") - b[~nan_b].astype("float64"))
        worst = float(diff.max()) if diff.size else 0.0
        return [f"{what}: max difference {worst:.3g} > {tol:g}"] if worst > tol else []
    same = np.array_equal(a, b) if tol == 0 else bool(np.all(np.abs(a.astype("int64") - b.astype("int64")) <= tol))
    return [] if same else [f"{what}: {int((a != b).sum())} px differ"]


def _values(a, b, what: str, tol: float) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{what}: keys {sorted(set(a) ^ set(b))} in one run only"]
        return [m for k in a for m in _values(a[k], b[k], f"{what}.{k}", tol)]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{what}: {len(a)} vs {len(b)} items"]
        return [m for i, (x, y) in enumerate(zip(a, b, strict=True)) for m in _values(x, y, f"{what}[{i}]", tol)]
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        if (a is None) != (b is None):
            return [f"{what}: {a!r} vs {b!r}"]
        if math.isnan(a) and math.isnan(b):
            return []
        scale = max(1.0, abs(float(a)), abs(float(b)))
        return [] if abs(float(a) - float(b)) <= tol * scale else [f"{what}: {a!r} vs {b!r}"]
    return [] if a == b else [f"{what}: {a!r} vs {b!r}"]


def compare_file(a: Path, b: Path, rel: str, tol: float = 0.0) -> list[str]:
    """Differences between one result file of two runs (empty when they agree)."""
    suffix = a.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import rasterio

        with rasterio.open(a) as ra, rasterio.open(b) as rb:
            if ra.crs != rb.crs or ra.transform != rb.transform:
                return [f"{rel}: grid differs"]
            return _arrays(ra.read(), rb.read(), rel, tol)
    if suffix == ".nc":
        import xarray as xr

        with xr.open_dataset(a) as da, xr.open_dataset(b) as db:
            if set(da.data_vars) != set(db.data_vars):
                return [f"{rel}: variables {sorted(set(da.data_vars) ^ set(db.data_vars))} in one run only"]
            out = []
            for name in da.data_vars:
                out += _arrays(da[name].values, db[name].values, f"{rel}:{name}", tol)
            return out
    if suffix == ".json":
        return _values(json.loads(a.read_text()), json.loads(b.read_text()), rel, tol)
    if suffix == ".csv":
        import pandas as pd

        ta, tb = pd.read_csv(a), pd.read_csv(b)
        if list(ta.columns) != list(tb.columns) or len(ta) != len(tb):
            return [f"{rel}: columns or rows differ"]
        return _values(ta.to_dict("list"), tb.to_dict("list"), rel, tol)
    return [] if a.read_bytes() == b.read_bytes() else [f"{rel}: bytes differ"]


def compare_runs(
    run_a: Path, run_b: Path, paths: Iterable[str], tolerances: Mapping[str, float] | None = None
) -> list[str]:
    """Differences between the files ``paths`` (relative to each run directory) of two runs."""
    problems = []
    for rel in paths:
        a, b = Path(run_a) / rel, Path(run_b) / rel
        missing = [str(p) for p in (a, b) if not p.exists()]
        if missing:
            problems.append(f"{rel}: missing in {', '.join(missing)}")
            continue
        problems += compare_file(a, b, rel, _tolerance(rel, tolerances or {}))
    return problems

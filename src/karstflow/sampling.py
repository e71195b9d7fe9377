"""Validation sampling design: stratified random sampling of a classified map.

Following Olofsson et al. (2014, Remote Sensing of Environment 148:42-57, section 5.1.2):

* total sample size (their eq. 13), for a target standard error S(O) of the overall
  accuracy and anticipated user's accuracies U_i of the strata (map classes) with area
  weights W_i::

      n = ( sum_i W_i S_i / S(O) )^2,   S_i = sqrt(U_i (1 - U_i))

* allocation: proportional to area, but no class below ``min_per_class`` (their advice:
  50-100 samples for rare classes, so that their user's accuracy is estimated with a
  usable precision); the proportional share of the other classes is recomputed over
  what is left, and no class gets more samples than it has pixels.

Points are drawn at pixel centres, without replacement, with
``numpy.random.default_rng(seed)``, and exported for labelling (GeoPackage and KML, the
latter for Google Earth). :func:`labelled_codes` reads the labels back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from karstflow.classify import SampleError, check_class_codes, pixel_centres

__all__ = [
    "LABEL_HINT",
    "allocate_samples",
    "kml_description",
    "labelled_codes",
    "olofsson_sample_size",
    "sampling_design",
    "stratified_sample",
]

#: Line of a KML placemark's description where the labeller writes the reference code.
LABEL_HINT = "reference_code:"


def olofsson_sample_size(
    weights: np.ndarray | pd.Series, users_accuracy: np.ndarray | pd.Series, target_se: float
) -> int:
    """Olofsson et al. (2014) eq. 13, rounded up."""
    w = np.asarray(weights, dtype=float)
    u = np.asarray(users_accuracy, dtype=float)
    if not target_se > 0:
        raise ValueError(f"target standard error must be > 0, found {target_se}")
    if np.any((u < 0) | (u > 1)):
        raise ValueError(f"anticipated user's accuracies must lie in [0, 1], found {u.tolist()}")
    w = w / w.sum()
    s = np.sqrt(u * (1.0 - u))
    return int(math.ceil(round((float(np.sum(w * s)) / target_se) ** 2, 9)))


def allocate_samples(n_total: int, weights: pd.Series, available: pd.Series, min_per_class: int) -> pd.Series:
    """Proportional allocation with a floor of ``min_per_class`` and a cap of ``available``.

    Classes whose proportional share is below the floor (or above what they have) are
    fixed at the floor (or their pixel count) and the rest of ``n_total`` is shared again
    in proportion to the remaining weights, until nothing changes; shares are rounded by
    largest remainder so they add up to the total left for them.
    """
    w = weights.astype(float)
    cap = available.astype(int)
    fixed: dict = {}
    while True:
        free = [c for c in w.index if c not in fixed]
        left = max(n_total - sum(fixed.values()), 0)
        wf = w[free]
        share = wf / wf.sum() * left if len(free) and wf.sum() > 0 else pd.Series(0.0, index=free)
        changed = False
        for c in free:
            floor_c = min(min_per_class, cap[c])
            if share[c] < floor_c:
                fixed[c] = floor_c
                changed = True
            elif share[c] > cap[c]:
                fixed[c] = int(cap[c])
                changed = True
        if not changed:
            break
    alloc = pd.Series(0, index=w.index, dtype=int)
    for c, v in fixed.items():
        alloc[c] = int(v)
    if free:
        base = np.floor(share.to_numpy()).astype(int)
        rest = int(round(share.sum())) - int(base.sum())
        order = np.argsort(-(share.to_numpy() - base), kind="stable")
        base[order[:rest]] += 1
        alloc[free] = np.minimum(base, cap[free].to_numpy())
    return alloc


def sampling_design(
    pixel_counts: pd.Series,
    legend: Mapping[int, str],
    *,
    target_se: float,
    users_accuracy: Mapping[int, float] | float,
    min_per_class: int,
) -> pd.DataFrame:
    """One row per mapped class: pixels, weight, anticipated U_i, S_i and allocated samples.

    ``pixel_counts`` maps class code -> mapped pixels; classes without pixels are left out.
    ``users_accuracy`` is one anticipated user's accuracy for all classes or one per code.
    """
    counts = pixel_counts[pixel_counts > 0].astype(int)
    if counts.empty:
        raise ValueError("the map has no classified pixels to sample")
    if isinstance(users_accuracy, Mapping):
        missing = [c for c in counts.index if c not in users_accuracy]
        if missing:
            raise ValueError(f"anticipated user's accuracy missing for class code(s) {missing}")
        u = pd.Series({c: float(users_accuracy[c]) for c in counts.index})
    else:
        u = pd.Series(float(users_accuracy), index=counts.index)
    w = counts / counts.sum()
    n = olofsson_sample_size(w, u, target_se)
    alloc = allocate_samples(n, w, counts, min_per_class)
    return pd.DataFrame(
        {
            "class_code": counts.index.astype(int),
            "class_name": [legend.get(int(c), str(c)) for c in counts.index],
            "mapped_pixels": counts.to_numpy(),
            "weight": w.to_numpy(),
            "anticipated_users_accuracy": u.to_numpy(),
            "stratum_sd": np.sqrt((u * (1 - u)).to_numpy()),
            "n_eq13": n,
            "n_samples": alloc.to_numpy(),
        }
    )


def stratified_sample(
    landcover: xr.DataArray, design: pd.DataFrame, legend: Mapping[int, str], seed: int
) -> gpd.GeoDataFrame:
    """Points at the centres of pixels drawn without replacement, ``n_samples`` per class.

    Columns: ``sample_id``, ``map_code``, ``map_class``, ``reference_code`` (empty, for
    the labeller), in the map's CRS.
    """
    values = np.asarray(landcover.values)
    rng = np.random.default_rng(seed)
    picks, codes = [], []
    for code, n in zip(design["class_code"], design["n_samples"], strict=True):
        idx = np.flatnonzero(values.ravel() == code)
        n = min(int(n), len(idx))
        if n == 0:
            continue
        picks.append(np.sort(rng.choice(idx, n, replace=False)))
        codes.append(np.full(n, code))
    flat = np.concatenate(picks) if picks else np.array([], dtype=np.int64)
    code = np.concatenate(codes) if codes else np.array([], dtype=np.int64)
    rows, cols = np.divmod(flat, values.shape[1])
    x, y = pixel_centres(landcover.rio.transform(), rows, cols)
    sample = gpd.GeoDataFrame(
        {
            "sample_id": np.arange(1, len(flat) + 1),
            "map_code": code.astype(np.int64),
            "map_class": [legend.get(int(c), str(c)) for c in code],
            "reference_code": pd.array([pd.NA] * len(flat), dtype="Int64"),
        },
        geometry=gpd.points_from_xy(x, y),
        crs=landcover.rio.crs,
    )
    return sample


def labelled_codes(
    labelled: gpd.GeoDataFrame | pd.DataFrame,
    legend: Mapping[int, str],
    *,
    label_column: str = "reference_code",
    source: str = "validation sample",
) -> pd.Series:
    """Reference codes of a labelled validation sample (<NA> where not labelled yet).

    The code is read from ``label_column``; for KML placemarks whose field is empty, from
    a ``reference_code: <code>`` line of their description (what Google Earth lets a
    labeller edit). Codes outside the legend raise :class:`~karstflow.classify.SampleError`.
    """
    frame = labelled.copy()
    if label_column not in frame.columns:
        frame[label_column] = pd.NA
    if "description" in frame.columns:
        pattern = re.compile(re.escape(LABEL_HINT) + r"\s*([^\s<]+)")
        from_text = frame["description"].astype("string").str.extract(pattern, expand=False)
        empty = frame[label_column].isna() | (frame[label_column].astype("string").str.strip() == "")
        frame.loc[empty.fillna(True), label_column] = from_text[empty.fillna(True)]
    if frame[label_column].isna().all():
        raise SampleError(f"{source}: no sample is labelled (column {label_column!r} is empty everywhere)")
    id_column = "sample_id" if "sample_id" in frame.columns else None
    return check_class_codes(frame, label_column, legend, source=source, id_column=id_column, allow_missing=True)


def kml_description(legend: Mapping[int, str]) -> str:
    """Description of every placemark: the legend and the line to fill in."""
    codes = "; ".join(f"{c} {n}" for c, n in legend.items())
    return f"Legend: {codes}. {LABEL_HINT} "


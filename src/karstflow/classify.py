"""Supervised land-cover classification: reference samples, a seeded random forest,
chunked prediction over the region and the accuracy assessment of the map.

Decisions (see also docs/methods.md, "Land cover"):

* Reference samples are points (the pixel under each point is one sample) or polygons
  (every pixel whose centre lies inside is a sample, grouped by polygon).
* Training and validation never share a sample: :func:`split_samples` draws, per class,
  a seeded share of the *groups* (points, or whole polygons, because neighbouring pixels
  of one polygon are not independent) for validation. A class with a single group stays
  in training only and is reported as missing from the validation sample.
* The classifier is scikit-learn's random forest; pixels with some NaN features (a period
  without a clear observation) are still classified (scikit-learn >= 1.4 routes missing
  values), pixels whose features are all NaN are nodata.
* :func:`assess_landcover` computes every figure over the classes present in the
  validation sample (mapped or reference) and lists the legend classes it lacks; the
  Olofsson et al. (2014) area estimates leave out map classes that have mapped area but
  no validation sample (their stratum cannot be estimated) and report them.
* Area estimates, area-adjusted accuracies and area-weighted disagreement need a
  probability sample of the map (``design`` map-stratified or simple-random, see
  :data:`karstflow.accuracy.DESIGNS`); for any other design :func:`assess_landcover`
  reports them as "not evaluated" with the reason. A map-stratified sample whose strata
  are not this map's classes (drawn from an earlier map) gets the Stehman (2014)
  estimator when its points' strata and the strata's sizes are given.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (the .rio accessor)
import shapely
import xarray as xr
from numpy.typing import ArrayLike

from karstflow.accuracy import AccuracyAssessment, assess, assess_stratified, confusion_matrix, design_reason

log = logging.getLogger(__name__)

__all__ = [
    "SampleError",
    "assess_landcover",
    "check_class_codes",
    "confusion_table",
    "map_to_pixel",
    "mapped_area_ha",
    "pixel_centres",
    "predict_map",
    "reference_samples",
    "split_samples",
    "train_random_forest",
]

LANDCOVER_NODATA = 255


class SampleError(ValueError):
    """Reference or validation samples are unusable; the message names the file and the samples."""


def _ids(frame: pd.DataFrame | gpd.GeoDataFrame, id_column: str | None) -> np.ndarray:
    if id_column and id_column in frame.columns:
        return frame[id_column].to_numpy()
    return np.arange(1, len(frame) + 1)


def _first(values: Iterable[Any], n: int = 10) -> str:
    values = list(values)
    more = f" and {len(values) - n} more" if len(values) > n else ""
    return ", ".join(map(str, values[:n])) + more


def check_class_codes(
    frame: pd.DataFrame | gpd.GeoDataFrame,
    column: str,
    legend: Mapping[int, str],
    *,
    source: str,
    id_column: str | None = None,
    allow_missing: bool = False,
) -> pd.Series:
    """The class codes of ``frame[column]`` as integers, checked against ``legend``.

    Raises :class:`SampleError` naming ``source``, the column and the offending ids
    for a missing column, non-integer codes, codes outside the legend or (unless
    ``allow_missing``) empty codes. With ``allow_missing`` empty codes become <NA>.
    """
    if column not in frame.columns:
        raise SampleError(f"{source}: expected a class-code column {column!r}, found columns {list(frame.columns)}")
    ids = _ids(frame, id_column)
    raw = frame[column]
    empty = raw.isna().to_numpy() | (raw.astype(str).str.strip() == "").to_numpy()
    if empty.any() and not allow_missing:
        raise SampleError(
            f"{source}: {int(empty.sum())} sample(s) have no class code in {column!r} (ids {_first(ids[empty])})"
        )
    numeric = pd.to_numeric(raw.where(~empty), errors="coerce")
    not_int = (~empty) & (numeric.isna().to_numpy() | (numeric.fillna(0) % 1 != 0).to_numpy())
    if not_int.any():
        raise SampleError(
            f"{source}: column {column!r} must hold integer class codes of the legend {dict(legend)}; "
            f"found {sorted(set(map(str, raw[not_int])))[:10]} (ids {_first(ids[not_int])})"
        )
    codes = numeric.astype("Int64")
    outside = (~empty) & ~codes.isin(list(legend)).fillna(False).to_numpy()
    if outside.any():
        raise SampleError(
            f"{source}: class code(s) {sorted(set(codes[outside].astype(int).tolist()))} in column {column!r} are "
            f"outside the legend (config key landcover.classes: {sorted(legend)}); ids {_first(ids[outside])}"
        )
    return codes


def reference_samples(
    features: xr.DataArray,
    reference: gpd.GeoDataFrame,
    class_column: str,
    legend: Mapping[int, str],
    *,
    source: str = "reference samples",
    id_column: str | None = None,
) -> pd.DataFrame:
    """One row per sample pixel: ``sample_id``, ``group``, ``class_code``, ``row``, ``col``,
    ``x``, ``y`` and one column per feature.

    Points take the pixel they fall in; polygons every pixel whose centre lies inside (or
    the pixel under their representative point when they hold no centre). Samples outside
    the raster raise :class:`SampleError` listing their ids.
    """
    from rasterio import features as rfeatures

    if reference.empty:
        raise SampleError(f"{source}: no samples")
    codes = check_class_codes(reference, class_column, legend, source=source, id_column=id_column)
    ids = _ids(reference, id_column)
    if reference.crs is not None and features.rio.crs is not None and reference.crs != features.rio.crs:
        reference = reference.to_crs(features.rio.crs)
    geoms = reference.geometry.values
    broken = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if broken.any():
        raise SampleError(f"{source}: {int(broken.sum())} sample(s) have an empty geometry (ids {_first(ids[broken])})")
    kinds = shapely.get_type_id(geoms)
    is_point = np.isin(kinds, (0, 4))
    is_poly = np.isin(kinds, (3, 6))
    if not (is_point | is_poly).all():
        raise SampleError(
            f"{source}: samples must be points or polygons; ids {_first(ids[~(is_point | is_poly)])} are not"
        )
    transform = features.rio.transform()
    height, width = features.sizes["y"], features.sizes["x"]
    rows_l, cols_l, idx_l = [], [], []
    if is_point.any():
        pts = shapely.get_coordinates(shapely.centroid(geoms[is_point]))
        r, c = map_to_pixel(transform, pts[:, 0], pts[:, 1])
        rows_l.append(np.floor(r).astype(np.int64))
        cols_l.append(np.floor(c).astype(np.int64))
        idx_l.append(np.flatnonzero(is_point))
    if is_poly.any():
        poly_idx = np.flatnonzero(is_poly)
        burned = rfeatures.rasterize(
            zip(geoms[poly_idx], poly_idx + 1, strict=True),
            out_shape=(height, width),
            transform=transform,
            fill=0,
            dtype="int64",
        )
        r, c = np.nonzero(burned)
        which = burned[r, c] - 1
        rows_l.append(r)
        cols_l.append(c)
        idx_l.append(which)
        hit = np.zeros(len(reference), bool)
        hit[which] = True
        empty_polys = poly_idx[~hit[poly_idx]]
        if len(empty_polys):
            # polygons cut by the region edge: a point of their part inside the grid
            x0, y0 = transform.c, transform.f
            box = shapely.box(x0, y0 + height * transform.e, x0 + width * transform.a, y0)
            clipped = shapely.intersection(geoms[empty_polys], box)
            clipped = np.where(shapely.is_empty(clipped), geoms[empty_polys], clipped)
            rp = shapely.get_coordinates(shapely.point_on_surface(clipped))
            r2, c2 = map_to_pixel(transform, rp[:, 0], rp[:, 1])
            rows_l.append(np.floor(r2).astype(np.int64))
            cols_l.append(np.floor(c2).astype(np.int64))
            idx_l.append(empty_polys)
            log.info(
                "%s: %d polygon(s) hold no pixel centre; used the pixel under a point inside each",
                source,
                len(empty_polys),
            )
    rows = np.concatenate(rows_l)
    cols = np.concatenate(cols_l)
    which = np.concatenate(idx_l)
    outside = (rows < 0) | (rows >= height) | (cols < 0) | (cols >= width)
    if outside.any():
        bad = np.unique(ids[which[outside]])
        raise SampleError(
            f"{source}: {len(bad)} sample(s) lie outside the region grid (ids {_first(bad)}); "
            "check their CRS or clip them to the region"
        )
    order = np.lexsort((cols, rows, which))
    rows, cols, which = rows[order], cols[order], which[order]
    values = _gather(features, rows, cols)
    x, y = pixel_centres(transform, rows, cols)
    table = pd.DataFrame(
        {
            "sample_id": ids[which],
            "group": which,
            "class_code": codes.to_numpy()[which].astype(np.int64),
            "row": rows,
            "col": cols,
            "x": x,
            "y": y,
        }
    )
    feat = pd.DataFrame(values, columns=[str(f) for f in features["feature"].values])
    return pd.concat([table, feat], axis=1)


def map_to_pixel(transform: Any, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractional (row, col) of map coordinates on a north-up grid."""
    return (y - transform.f) / transform.e, (x - transform.c) / transform.a


def pixel_centres(transform: Any, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of pixel centres on a north-up grid."""
    return transform.c + (np.asarray(cols) + 0.5) * transform.a, transform.f + (np.asarray(rows) + 0.5) * transform.e


def _gather(features: xr.DataArray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Feature values at pixels (n, features), reading only the rows that hold samples."""
    out = np.empty((len(rows), features.sizes["feature"]), dtype=np.float32)
    if not len(rows):
        return out
    r0, r1 = int(rows.min()), int(rows.max()) + 1
    step = 256
    for a in range(r0, r1, step):
        b = min(a + step, r1)
        sel = (rows >= a) & (rows < b)
        if not sel.any():
            continue
        block = np.asarray(features.isel(y=slice(a, b)).values)
        out[sel] = block[:, rows[sel] - a, cols[sel]].T
    return out


def split_samples(groups: ArrayLike, classes: ArrayLike, validation_fraction: float, seed: int) -> np.ndarray:
    """Stratified, seeded split: True for samples drawn for validation.

    Per class (in code order) the distinct groups are shuffled with
    ``numpy.random.default_rng(seed)`` and ``round(fraction * n_groups)`` of them go to
    validation, at least one when the class has two or more groups, never all of them.
    """
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), found {validation_fraction}")
    groups = np.asarray(groups)
    classes = np.asarray(classes)
    rng = np.random.default_rng(seed)
    chosen: list[Any] = []
    for code in np.unique(classes):
        g = np.unique(groups[classes == code])
        if len(g) < 2:
            continue
        n_val = min(max(int(round(validation_fraction * len(g))), 1), len(g) - 1)
        chosen.extend(rng.permutation(g)[:n_val].tolist())
    return np.isin(groups, chosen)


def train_random_forest(
    X: np.ndarray | pd.DataFrame,
    y: ArrayLike,
    *,
    n_estimators: int,
    seed: int,
    n_jobs: int = 1,
    min_samples_leaf: int = 1,
    max_features: str | float | int | None = "sqrt",
    class_weight: str | None = "balanced",
    max_samples_per_class: int | None = None,
):
    """A fitted :class:`sklearn.ensemble.RandomForestClassifier` (seeded).

    ``max_samples_per_class`` caps the training pixels of each class (a seeded draw), so
    a few large reference polygons do not swamp the forest or the run time.
    """
    from sklearn.ensemble import RandomForestClassifier

    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    if len(y) == 0:
        raise ValueError("no training samples")
    if len(np.unique(y)) < 2:
        raise ValueError(f"training needs at least two classes, found only {np.unique(y).tolist()}")
    keep = np.arange(len(y))
    if max_samples_per_class:
        rng = np.random.default_rng(seed)
        parts = []
        for code in np.unique(y):
            idx = np.flatnonzero(y == code)
            if len(idx) > max_samples_per_class:
                idx = np.sort(rng.choice(idx, max_samples_per_class, replace=False))
            parts.append(idx)
        keep = np.concatenate(parts)
    model = RandomForestClassifier(
        n_estimators=n_estimators,
        min_samples_leaf=min_samples_leaf,
        max_features=max_features,
        class_weight=class_weight,
        random_state=seed,
        n_jobs=n_jobs,
    )
    model.fit(X[keep], y[keep])
    return model


def predict_map(
    model: Any, features: xr.DataArray, chunk_px: int = 512, nodata: int = LANDCOVER_NODATA
) -> xr.DataArray:
    """Class codes (uint8, ``nodata`` where every feature is NaN) over the grid of ``features``.

    Predicts ``chunk_px`` rows at a time, so only one block of features is in memory at
    once (dask-backed features are computed block by block).
    """
    height, width = features.sizes["y"], features.sizes["x"]
    out = np.full((height, width), nodata, dtype=np.uint8)
    n_feat = features.sizes["feature"]
    for a in range(0, height, chunk_px):
        b = min(a + chunk_px, height)
        block = np.asarray(features.isel(y=slice(a, b)).values, dtype=np.float32)
        flat = block.reshape(n_feat, -1).T
        valid = ~np.all(np.isnan(flat), axis=1)
        if valid.any():
            pred = model.predict(flat[valid])
            target = out[a:b].reshape(-1)
            target[valid] = pred.astype(np.uint8)
    da = xr.DataArray(out, dims=("y", "x"), coords={"y": features["y"], "x": features["x"]}, name="landcover")
    if features.rio.crs is not None:
        da = da.rio.write_crs(features.rio.crs).rio.write_transform(features.rio.transform())
    return da.rio.write_nodata(nodata)


def mapped_area_ha(landcover: xr.DataArray, codes: Sequence[int], pixel_area_m2: float) -> pd.Series:
    """Mapped area (ha) of each code."""
    values = np.asarray(landcover.values)
    counts = np.bincount(values[values != LANDCOVER_NODATA].astype(np.int64).ravel(), minlength=max(codes) + 1)
    return pd.Series([counts[c] * pixel_area_m2 / 1e4 for c in codes], index=list(codes), dtype=float)


def assess_landcover(
    mapped: ArrayLike,
    reference: ArrayLike,
    legend: Mapping[int, str],
    mapped_area: pd.Series | None = None,
    alpha: float = 0.05,
    design: str = "map-stratified",
    not_evaluated: str | None = None,
    *,
    stratum: ArrayLike | None = None,
    stratum_size: Mapping[int, float] | None = None,
) -> tuple[AccuracyAssessment, dict[str, Any]]:
    """Accuracy of a map from validation pairs, over the classes present.

    ``mapped`` and ``reference`` are the map and reference codes of the validation
    samples (map nodata marks samples on unclassified pixels; they are dropped and
    counted). ``mapped_area`` (code -> area, ha) adds the area figures for a probability
    ``design`` (see :func:`karstflow.accuracy.assess`; any other design, or a
    ``not_evaluated`` reason, records them as "not evaluated"): the Olofsson et al. (2014)
    estimator with the map classes as strata, or, with ``stratum`` (each sample's stratum
    code) and ``stratum_size`` (stratum code -> area, ha), the Stehman (2014) estimator
    (:func:`karstflow.accuracy.assess_stratified`) for strata that are not this map's
    classes. Strata (map classes, for Olofsson) with area but no sample are left out of
    the population and reported.

    Returns the :class:`~karstflow.accuracy.AccuracyAssessment` and a JSON-ready report:
    its :meth:`~karstflow.accuracy.AccuracyAssessment.to_dict`, the class names, the
    legend classes missing from the validation sample, the samples dropped, and the map
    classes (strata) left out of the area estimates.
    """
    mapped = np.asarray(mapped, dtype=np.int64)
    reference = np.asarray(reference, dtype=np.int64)
    if mapped.shape != reference.shape:
        raise ValueError(f"mapped and reference must pair up, found {mapped.shape} and {reference.shape}")
    if (stratum is None) != (stratum_size is None):
        raise ValueError("stratum and stratum_size go together: give both (Stehman 2014 estimator) or neither")
    strata = None if stratum is None else np.asarray(stratum, dtype=np.int64)
    if strata is not None and strata.shape != mapped.shape:
        raise ValueError(f"stratum must have one code per sample, found {strata.shape} for {mapped.shape}")
    on_map = np.isin(mapped, list(legend))
    dropped = int((~on_map).sum())
    mapped, reference = mapped[on_map], reference[on_map]
    if len(mapped) == 0:
        raise ValueError("no validation sample lies on a classified pixel")
    present = set(mapped.tolist()) | set(reference.tolist())
    labels = [c for c in legend if c in present]
    missing = [c for c in legend if c not in set(reference.tolist())]
    matrix = confusion_matrix(mapped, reference, labels)
    estimate = mapped_area is not None and (not_evaluated or design_reason(design)) is None
    area = None
    left_out: dict[str, float] = {}
    if mapped_area is not None:
        area = np.array([float(mapped_area.get(c, 0.0)) for c in labels])
        if estimate and strata is None:
            rows = matrix.sum(axis=1)
            for i, c in enumerate(labels):
                if area[i] > 0 and rows[i] == 0:
                    left_out[legend[c]] = float(area[i])
                    area[i] = 0.0
            for c in legend:
                if c not in labels and float(mapped_area.get(c, 0.0)) > 0:
                    left_out[legend[c]] = float(mapped_area[c])
        if area.sum() <= 0:
            area = None
    if strata is not None and stratum_size is not None:
        strata = strata[on_map]
        sampled = set(strata.tolist())
        sizes = {int(h): float(v) for h, v in stratum_size.items() if int(h) in sampled}
        left_out = {
            legend.get(int(h), str(h)): float(v) for h, v in stratum_size.items() if int(h) not in sampled and v > 0
        }
        result = assess_stratified(
            strata,
            mapped,
            reference,
            labels,
            sizes,
            mapped_area=area,
            alpha=alpha,
            design=design,
            not_evaluated=not_evaluated,
        )
    else:
        result = assess(matrix, labels, mapped_area=area, alpha=alpha, design=design, not_evaluated=not_evaluated)
    report = result.to_dict()
    report.update(
        class_names=[legend[c] for c in labels],
        classes_missing_from_validation=[legend[c] for c in missing],
        validation_samples=int(len(mapped)),
        validation_samples_on_nodata=dropped,
    )
    if mapped_area is not None:
        report["area_unit"] = "ha"
        if estimate:
            report["area_strata_without_samples_ha"] = left_out
    return result, report


def confusion_table(result: AccuracyAssessment, legend: Mapping[int, str]) -> pd.DataFrame:
    """The confusion matrix with class names: map classes as rows, reference as columns."""
    names = [legend[c] for c in result.labels]
    table = pd.DataFrame(np.asarray(result.matrix), index=names, columns=names)
    table.index.name = "map \\ reference"
    return table

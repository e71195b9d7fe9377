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

The sample records its design, so that a labelled copy given back as the region's
``inputs.validation`` gets area estimates without further configuration: every point
carries ``design`` = ``"map-stratified"`` (see :data:`karstflow.accuracy.DESIGNS`), its
stratum (``map_code``, the map class it was drawn in) and ``stratum_pixels`` (the mapped
pixels of that stratum when it was drawn); the KML placemarks also say
``design: map-stratified`` in their description, which Google Earth keeps.
:func:`validation_design` reads the design back (column, KML description or the config
key ``landcover.validation.design``), :func:`strata_mismatch` checks whether the strata
are still the classes of the map being assessed and :func:`stratum_sizes` reads the
strata's pixels back. Naming the labelled file as the validation input retrains the
classifier on every reference sample, so the map assessed is not the map the sample was
drawn from; its area figures then come from the Stehman (2014, Int. J. Remote Sens.
35:4923-4939) estimator for strata that differ from the map classes
(:func:`karstflow.accuracy.assess_stratified`), with each point's ``map_code`` as its
stratum and ``stratum_pixels`` as the stratum sizes N_h.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr

from karstflow.accuracy import DESIGNS
from karstflow.classify import SampleError, check_class_codes, pixel_centres

__all__ = [
    "DESIGN_HINT",
    "LABEL_HINT",
    "SAMPLE_DESIGN",
    "allocate_samples",
    "kml_description",
    "labelled_codes",
    "olofsson_sample_size",
    "sampling_design",
    "strata_mismatch",
    "stratified_sample",
    "stratum_sizes",
    "validation_design",
]

#: Line of a KML placemark's description where the labeller writes the reference code.
LABEL_HINT = "reference_code:"
#: Part of a KML placemark's description that records the sampling design.
DESIGN_HINT = "design:"
#: The design of the samples :func:`stratified_sample` draws (strata = map classes).
SAMPLE_DESIGN = "map-stratified"


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
    """One row per mapped class: pixels, weight, anticipated U_i, S_i, allocated samples and
    the ``design`` of the sample they make (:data:`SAMPLE_DESIGN`; the weights are the
    stratum weights W_i of the estimator).

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
            "design": SAMPLE_DESIGN,
        }
    )


def stratified_sample(
    landcover: xr.DataArray, design: pd.DataFrame, legend: Mapping[int, str], seed: int
) -> gpd.GeoDataFrame:
    """Points at the centres of pixels drawn without replacement, ``n_samples`` per class.

    Columns: ``sample_id``, ``map_code`` (the stratum), ``map_class``, ``design``
    (:data:`SAMPLE_DESIGN`), ``stratum_pixels`` (mapped pixels of the stratum),
    ``reference_code`` (empty, for the labeller), in the map's CRS.
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
    pixels = dict(zip(design["class_code"].astype(int), design["mapped_pixels"].astype(int), strict=True))
    sample = gpd.GeoDataFrame(
        {
            "sample_id": np.arange(1, len(flat) + 1),
            "map_code": code.astype(np.int64),
            "map_class": [legend.get(int(c), str(c)) for c in code],
            "design": [SAMPLE_DESIGN] * len(flat),
            "stratum_pixels": np.array([pixels[int(c)] for c in code], dtype=np.int64),
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


def kml_description(legend: Mapping[int, str], design: str = SAMPLE_DESIGN) -> str:
    """Description of every placemark: the design, the legend and the line to fill in."""
    codes = "; ".join(f"{c} {n}" for c, n in legend.items())
    return f"{DESIGN_HINT} {design}. Legend: {codes}. {LABEL_HINT} "


def validation_design(
    labelled: gpd.GeoDataFrame | pd.DataFrame,
    configured: str | None = None,
    *,
    source: str = "validation sample",
    rows: np.ndarray | pd.Series | None = None,
) -> tuple[str, str]:
    """The sampling design of a labelled validation file and where it was read from.

    In order: a ``design`` column (what :func:`stratified_sample` writes), else a
    ``design: <name>`` part of a KML description (what :func:`kml_description` writes),
    else ``configured`` (config key ``landcover.validation.design``), else ``"unknown"``
    (not a probability design). ``rows`` (a boolean mask, e.g. the labelled points)
    restricts the rows read. The file's design and ``configured`` must agree, the file's
    rows must hold one design of :data:`karstflow.accuracy.DESIGNS`; otherwise
    :class:`~karstflow.classify.SampleError` naming ``source``.

    Returns ``(design, origin)``, origin one of ``"column design"``, ``"KML description"``,
    ``"config landcover.validation.design"``, ``"not declared"``.
    """
    frame = labelled if rows is None else labelled[np.asarray(rows, dtype=bool)]
    found: pd.Series | None = None
    origin = ""
    if "design" in frame.columns and frame["design"].notna().any():
        found, origin = frame["design"], "column design"
    elif "description" in frame.columns:
        pattern = re.compile(r"(?:^|\s)" + re.escape(DESIGN_HINT) + r"\s*([A-Za-z-]+)")
        from_text = frame["description"].astype("string").str.extract(pattern, expand=False)
        if from_text.notna().any():
            found, origin = from_text, "KML description"
    if found is None:
        if configured is None:
            return "unknown", "not declared"
        if configured not in DESIGNS:
            raise SampleError(
                f"config key landcover.validation.design must be one of {list(DESIGNS)}, found {configured!r}"
            )
        return configured, "config landcover.validation.design"
    values = sorted({str(v).strip() for v in found.dropna()})
    if found.isna().any():
        values.append("<empty>")
    if len(values) != 1:
        raise SampleError(f"{source}: the {origin} must hold one sampling design for every point, found {values}")
    design = values[0]
    if design not in DESIGNS:
        raise SampleError(f"{source}: the {origin} holds the design {design!r}; expected one of {list(DESIGNS)}")
    if configured is not None and configured != design:
        raise SampleError(
            f"{source}: its {origin} says the sample is {design!r} but config key landcover.validation.design "
            f"says {configured!r}; remove one or make them agree"
        )
    return design, origin


def strata_mismatch(
    labelled: gpd.GeoDataFrame | pd.DataFrame, mapped: np.ndarray, pixel_counts: Mapping[int, int]
) -> str | None:
    """Why the strata of a map-stratified sample are not the classes of this map, or None.

    ``mapped`` is the current map's code at each point of ``labelled`` and
    ``pixel_counts`` its pixels per class. The point's ``map_code`` (its stratum) must be
    the map's code there and, when the file has ``stratum_pixels``, each stratum must
    still have that many pixels; a file without those columns cannot be checked (None).
    Olofsson et al. (2014)'s estimator needs strata = map classes; when this returns a
    reason, the Stehman (2014, Int. J. Remote Sens. 35:4923-4939) estimator for strata
    that differ from the map classes applies instead (:func:`stratum_sizes` gives its N_h).
    """
    if "map_code" not in labelled.columns:
        return None
    stratum = pd.to_numeric(labelled["map_code"], errors="coerce").to_numpy()
    differ = int(np.sum(stratum != np.asarray(mapped)))
    problems = []
    if differ:
        problems.append(
            f"{differ} of {len(stratum)} point(s) lie on a map class other than the stratum they were drawn in"
        )
    if "stratum_pixels" in labelled.columns:
        recorded = (
            pd.DataFrame({"c": stratum, "n": pd.to_numeric(labelled["stratum_pixels"], errors="coerce").to_numpy()})
            .dropna()
            .drop_duplicates("c")
        )
        changed = [
            f"{int(c)}: {int(n)} -> {int(pixel_counts.get(int(c), 0))}"
            for c, n in zip(recorded["c"], recorded["n"], strict=True)
            if int(pixel_counts.get(int(c), 0)) != int(n)
        ]
        if changed:
            problems.append(f"the mapped pixels of strata changed since the draw ({', '.join(changed[:10])})")
    if not problems:
        return None
    return (
        "the sample was drawn from another map than the one assessed ("
        + "; ".join(problems)
        + "): its strata are not this map's classes, so the Olofsson et al. (2014) estimator does not apply; "
        "the Stehman 2014 estimator for strata that differ from the map classes does"
    )


def stratum_sizes(
    labelled: gpd.GeoDataFrame | pd.DataFrame, *, source: str = "validation sample"
) -> dict[int, int] | None:
    """Pixels per stratum (N_h) of a map-stratified sample: ``map_code`` -> ``stratum_pixels``.

    Read from every row of the file (labelled or not), so that a stratum none of whose
    points is labelled yet is still part of the population. None when the file lacks either
    column (or they are empty); :class:`~karstflow.classify.SampleError` naming ``source``
    when a stratum carries two sizes, or a size is missing or not a positive whole number.
    """
    if "map_code" not in labelled.columns or "stratum_pixels" not in labelled.columns:
        return None
    frame = pd.DataFrame(
        {
            "h": pd.to_numeric(labelled["map_code"], errors="coerce"),
            "n": pd.to_numeric(labelled["stratum_pixels"], errors="coerce"),
        }
    )
    if frame["n"].isna().all():
        return None
    bad = frame["h"].isna() | frame["n"].isna() | ~(frame["n"] > 0) | (frame["n"] != frame["n"].round())
    if bad.any():
        ids = (
            labelled["sample_id"].to_numpy()[bad.to_numpy()]
            if "sample_id" in labelled.columns
            else np.flatnonzero(bad) + 1
        )
        raise SampleError(
            f"{source}: {int(bad.sum())} point(s) lack a stratum map_code or a positive whole stratum_pixels "
            f"(ids {ids[:20].tolist()}); both are written by the sampling-design rule and must be kept"
        )
    found: dict[int, set[int]] = {}
    for h, n in zip(frame["h"].to_numpy(dtype=float), frame["n"].to_numpy(dtype=float), strict=True):
        found.setdefault(int(h), set()).add(int(n))
    sizes = {h: sorted(found[h]) for h in sorted(found)}
    clash = {h: n for h, n in sizes.items() if len(n) > 1}
    if clash:
        raise SampleError(f"{source}: a stratum must have one stratum_pixels value, found {clash}")
    return {h: n[0] for h, n in sizes.items()}

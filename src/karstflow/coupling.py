"""Social-ecological coupling per township and per grid cell.

How rural population change (outmigration) and the karst ecosystem (NDVI greening, rocky
desertification, carbon sink, ecosystem services) move together in space. Pure functions
over numpy arrays and pandas/geopandas objects; no paths. Every threshold is a keyword
parameter with a documented default, for the workflow to take from the config.

Coupling coordination degree model (CCDM)
    * :func:`normalise_scores`: min-max normalisation of the indicators of one subsystem
      (positive: ``(x - min) / (max - min)``, negative: ``(max - x) / (max - min)``) and
      the subsystem score U as their weighted mean, with equal weights (default), given
      weights or weights from the entropy weight method (Shannon 1948; as applied to
      indicator weighting by Zou, Yun & Sun 2006, J. Environ. Sci. 18(5): 1020-1023).
      :func:`entropy_weights` is that method on its own.
    * :func:`coupling_coordination`: coupling degree ``C = 2 sqrt(U1 U2) / (U1 + U2)``,
      comprehensive development index ``T = a U1 + b U2`` and coupling coordination degree
      ``D = sqrt(C T)`` of two subsystems (the two-system form of the CCDM, e.g. Liao 1999,
      Tropical Geography 19(2): 171-177; on its misuses and the corrected two-system form,
      Wang, Kong, Ren, Zhi & Dai 2021, Journal of Natural Resources 36(3): 793-810).
    * :func:`coordination_class`: D in bands (default: the ten 0.1-wide bands of Liao 1999,
      :data:`TEN_BANDS`; :data:`FIVE_BANDS` is the coarser 0.2-wide alternative).

Coupling types
    * :func:`coupling_types`: townships as depopulating / stable / growing crossed with
      greening / stagnant / degrading (:data:`COUPLING_TYPES`).

Spatial statistics (PySAL: libpysal, esda, spreg, mgwr)
    * :func:`spatial_weights`: row-standardised queen contiguity or k-nearest-neighbour
      weights; contiguity islands get their nearest neighbour attached.
    * :func:`moran_table`: global Moran's I (Moran 1950; Cliff & Ord 1981) per variable with
      the analytical z and p under normality and a permutation pseudo p-value.
    * :func:`local_moran`: local Moran's I (LISA, Anselin 1995) per feature with its
      permutation pseudo p-value and Moran-scatterplot quadrant (HH, LH, LL, HL).
    * :func:`spatial_regression`: OLS with the Lagrange-multiplier diagnostics, the
      spatial lag or error model chosen by the decision rule of Anselin (1988; 2005,
      *Exploring Spatial Data with GeoDa: A Workbook*, ch. 23) and fitted by maximum
      likelihood (Anselin 1988; Ord 1975 for the log-determinant).
      :func:`choose_spatial_model` is that rule on its own.
    * :func:`gwr`: geographically weighted regression (Brunsdon, Fotheringham & Charlton
      1996; Fotheringham, Brunsdon & Charlton 2002) with the bandwidth chosen by AICc
      (Hurvich, Simonoff & Tsai 1998) and local t-values filtered at the multiple-testing
      corrected alpha of da Silva & Fotheringham (2016).

All regressions here measure association across space, not cause: a township that lost
people and greened may have greened for reasons the model does not see (afforestation
programmes, climate, abandonment of steep farmland that itself follows outmigration).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import stats

log = logging.getLogger(__name__)

__all__ = [
    "COUPLING_TYPES",
    "FIVE_BANDS",
    "GWRResult",
    "QUADRANTS",
    "SpatialRegressionResult",
    "SubsystemScore",
    "TEN_BANDS",
    "choose_spatial_model",
    "coordination_class",
    "coupling_coordination",
    "coupling_types",
    "entropy_weights",
    "gwr",
    "local_moran",
    "moran_table",
    "normalise_scores",
    "spatial_regression",
    "spatial_weights",
]

#: Ten 0.1-wide bands of the coupling coordination degree D (lower edge inclusive, the last
#: band closed at 1), as in Liao (1999) and most CCDM studies of Chinese regions since.
TEN_BANDS: tuple[tuple[float, ...], tuple[str, ...]] = (
    (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    (
        "extreme disorder",
        "severe disorder",
        "moderate disorder",
        "mild disorder",
        "on the verge of disorder",
        "barely coordinated",
        "primary coordination",
        "intermediate coordination",
        "good coordination",
        "high-quality coordination",
    ),
)
#: Five 0.2-wide bands of D, the coarser scheme of many later studies.
FIVE_BANDS: tuple[tuple[float, ...], tuple[str, ...]] = (
    (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
    (
        "severely uncoordinated",
        "moderately uncoordinated",
        "basically coordinated",
        "moderately coordinated",
        "highly coordinated",
    ),
)

POPULATION_CLASSES = ("depopulating", "stable", "growing")
ECOLOGY_CLASSES = ("greening", "stagnant", "degrading")
#: Every township coupling type, population trend first: the categories of :func:`coupling_types`.
COUPLING_TYPES = tuple(f"{p}-{e}" for p in POPULATION_CLASSES for e in ECOLOGY_CLASSES)

#: Moran-scatterplot quadrants in esda's numbering (1 HH, 2 LH, 3 LL, 4 HL), and the label
#: of a feature whose local Moran's I is not significant.
QUADRANTS = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}
NOT_SIGNIFICANT = "not significant"

# ML estimation with the dense log-determinant (method "full") is O(n^3) in time and O(n^2)
# in memory; above this many features the sparse LU log-determinant is faster and fits.
_ML_FULL_MAX_N = 1500


# --------------------------------------------------------------------------------------
# Coupling coordination degree model
# --------------------------------------------------------------------------------------


def _as_float_array(values: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected numbers, found {type(values).__name__} ({exc})") from exc
    return arr


def coupling_coordination(u1: Any, u2: Any, *, a: float = 0.5, b: float = 0.5) -> pd.DataFrame:
    """Coupling degree C, comprehensive development index T and coupling coordination degree D.

    For two subsystem scores U1 (e.g. the social subsystem: population, income) and U2 (the
    ecological subsystem: greening, rocky desertification, carbon sink, services), both in
    [0, 1] (see :func:`normalise_scores`)::

        C = 2 * sqrt(U1 * U2) / (U1 + U2)      # 0 .. 1: how balanced the two are
        T = a * U1 + b * U2                    # 0 .. 1: how developed they are together
        D = sqrt(C * T)                        # 0 .. 1: coupling coordination degree

    C alone is high for two equally poor subsystems; D discounts it by their level T.

    Parameters
    ----------
    u1, u2
        Scores of the two subsystems, array-likes of one shape (a pandas Series keeps its
        index in the result). NaN is missing: C, T and D are NaN there.
    a, b
        Contributions of the subsystems to T, each in [0, 1] with ``a + b == 1``; equal
        (0.5, 0.5) unless one subsystem is held to matter more.

    Returns
    -------
    pandas.DataFrame
        Columns ``C``, ``T``, ``D``, one row per element (the input flattened).

    Raises
    ------
    ValueError
        A score outside [0, 1] (naming ``u1`` or ``u2``, the range and the offending
        value), different shapes, or weights outside [0, 1] or not summing to 1.

    Notes
    -----
    Where ``U1 + U2 == 0`` (both subsystems at their worst) the formula for C is 0/0; C is
    defined as 0 there (no coupling between two absent subsystems), so T and D are 0 too,
    without a NumPy warning.
    """
    for name, weight in (("a", a), ("b", b)):
        if not (0.0 <= weight <= 1.0):
            raise ValueError(f"{name}: expected a subsystem weight in [0, 1], found {weight}")
    if not math.isclose(a + b, 1.0, rel_tol=0.0, abs_tol=1e-9):
        raise ValueError(f"a + b: expected the subsystem weights to sum to 1, found {a} + {b} = {a + b}")
    index = u1.index if isinstance(u1, pd.Series) else None
    x1 = _as_float_array(u1, "u1")
    x2 = _as_float_array(u2, "u2")
    if x1.shape != x2.shape:
        raise ValueError(f"u1 and u2: expected one shape, found {x1.shape} and {x2.shape}")
    for name, arr in (("u1", x1), ("u2", x2)):
        bad = ~np.isnan(arr) & ((arr < 0.0) | (arr > 1.0))
        if bad.any():
            first = arr[bad].flat[0]
            raise ValueError(
                f"{name}: expected subsystem scores in [0, 1] (normalise them first), "
                f"found {int(bad.sum())} outside, e.g. {first}"
            )
    x1, x2 = x1.ravel(), x2.ravel()
    total = x1 + x2
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(total > 0, 2.0 * np.sqrt(x1 * x2) / np.where(total > 0, total, 1.0), 0.0)
    c = np.where(np.isnan(total), np.nan, c)
    t = a * x1 + b * x2
    d = np.sqrt(c * t)
    return pd.DataFrame({"C": c, "T": t, "D": d}, index=index if x1.size == len(c) and index is not None else None)


def coordination_class(
    d: Any,
    *,
    edges: Sequence[float] = TEN_BANDS[0],
    labels: Sequence[str] = TEN_BANDS[1],
) -> pd.Series:
    """The coordination class of each coupling coordination degree D.

    Bands are ``[edges[i], edges[i+1])``, the last one closed (D = 1 is in the top band).
    The default is the ten 0.1-wide bands of Liao (1999) (:data:`TEN_BANDS`: 0-0.1
    extreme disorder, 0.1-0.2 severe disorder, ..., 0.5-0.6 barely coordinated, ...,
    0.9-1 high-quality coordination). Pass ``edges, labels = FIVE_BANDS`` for the five
    0.2-wide bands (0-0.2 severely uncoordinated ... 0.8-1 highly coordinated), or any
    other banding that covers [0, 1].

    Returns an ordered categorical Series (NaN where D is NaN), with the index of ``d`` if
    it is a Series. D is compared as a float: a D that should be 0.7 but is computed as
    0.6999999 falls in the band below.

    Raises
    ------
    ValueError
        Edges not strictly increasing or not covering [0, 1], ``len(labels) !=
        len(edges) - 1``, or a D outside [0, 1].
    """
    e = np.asarray(edges, dtype=float)
    if e.ndim != 1 or len(e) < 2 or np.any(np.diff(e) <= 0):
        raise ValueError(f"edges: expected strictly increasing band edges, found {list(edges)}")
    if e[0] > 0.0 or e[-1] < 1.0:
        raise ValueError(f"edges: expected bands covering [0, 1], found {e[0]} .. {e[-1]}")
    if len(labels) != len(e) - 1:
        raise ValueError(f"labels: expected {len(e) - 1} labels for {len(e)} edges, found {len(labels)}")
    index = d.index if isinstance(d, pd.Series) else None
    x = _as_float_array(d, "d").ravel()
    bad = ~np.isnan(x) & ((x < 0.0) | (x > 1.0))
    if bad.any():
        raise ValueError(f"d: expected coupling coordination degrees in [0, 1], found {x[bad][0]}")
    # side="right" puts a D equal to an edge into the band above it: bands are [lo, hi);
    # the clip keeps D equal to the top edge in the last band
    idx = np.searchsorted(e, x, side="right") - 1
    idx = np.clip(idx, 0, len(labels) - 1)
    codes = np.where(np.isnan(x), -1, idx)
    cat = pd.Categorical.from_codes(codes.astype(np.int64), categories=pd.Index(list(labels)), ordered=True)
    return pd.Series(cat, index=index, name="coordination_class")


@dataclass(frozen=True)
class SubsystemScore:
    """Result of :func:`normalise_scores`.

    Attributes
    ----------
    normalised
        The indicators min-max normalised to [0, 1], 1 the best (same index and columns,
        positive then negative indicators in the order given).
    weights
        The weight of each indicator (sums to 1).
    score
        The subsystem score U, ``normalised @ weights``, in [0, 1].
    """

    normalised: pd.DataFrame
    weights: pd.Series
    score: pd.Series


def entropy_weights(normalised: pd.DataFrame) -> pd.Series:
    """Entropy weight method on min-max normalised indicators (rows: units, columns: indicators).

    ``p_ij = x_ij / sum_i x_ij``, entropy ``e_j = -(1 / ln n) sum_i p_ij ln p_ij`` (with
    ``0 ln 0 = 0``), divergence ``d_j = 1 - e_j``, weight ``w_j = d_j / sum_j d_j``. An
    indicator that differs more between units carries more information and more weight.
    No 0.0001 shift is added to the normalised values (some studies do, to avoid ln 0).
    """
    x = normalised.to_numpy(dtype=float)
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"entropy weights: expected at least 2 units (rows), found {n}")
    col_sum = x.sum(axis=0)
    p = x / col_sum
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    e = -plogp.sum(axis=0) / math.log(n)
    div = 1.0 - e
    if div.sum() <= 0:
        raise ValueError("entropy weights: every indicator has maximal entropy (equal values); no weights follow")
    return pd.Series(div / div.sum(), index=normalised.columns, name="weight")


def normalise_scores(
    df: pd.DataFrame,
    positive: Sequence[str] = (),
    negative: Sequence[str] = (),
    weights: None | Literal["entropy"] | Mapping[str, float] = None,
) -> SubsystemScore:
    """Min-max normalise a subsystem's indicators and combine them into its score U.

    Positive indicators (more is better: NDVI, carbon sink, income) become
    ``(x - min) / (max - min)``; negative ones (more is worse: rocky-desertification area,
    soil loss, population loss) ``(max - x) / (max - min)``; min and max over the rows of
    ``df``. The score is the weighted mean of the normalised indicators.

    Parameters
    ----------
    df
        One row per unit (township, cell), the indicator columns numeric and complete.
    positive, negative
        Indicator column names; each name in at most one list.
    weights
        None: equal weights (default). ``"entropy"``: the entropy weight method (see
        :func:`entropy_weights`; objective, but driven by the spread in this sample, so
        weights differ between regions). A mapping ``{column: weight}`` with one
        non-negative weight for every indicator, summing to 1.

    Raises
    ------
    ValueError
        A missing or non-numeric column, missing values, a column without variance
        (min == max: nothing to normalise), a column in both lists, no indicators, or bad
        weights; the message names the column.
    """
    positive, negative = list(positive), list(negative)
    columns = positive + negative
    if not columns:
        raise ValueError("normalise_scores: expected at least one indicator in positive or negative, found none")
    both = sorted(set(positive) & set(negative))
    if both:
        raise ValueError(f"columns {both}: expected each indicator in positive or negative, found in both")
    dup = sorted({c for c in columns if columns.count(c) > 1})
    if dup:
        raise ValueError(f"columns {dup}: listed more than once")
    for col in columns:
        _check_numeric_column(df, col, need_variance=True)
    x = df[columns].astype(float)
    lo, hi = x.min(), x.max()
    norm = (x - lo) / (hi - lo)
    norm[negative] = (hi[negative] - x[negative]) / (hi[negative] - lo[negative])

    if weights is None:
        w = pd.Series(1.0 / len(columns), index=columns, name="weight")
    elif isinstance(weights, str):
        if weights != "entropy":
            raise ValueError(f"weights: expected None, 'entropy' or a mapping, found {weights!r}")
        w = entropy_weights(norm)
    else:
        missing = [c for c in columns if c not in weights]
        extra = [c for c in weights if c not in columns]
        if missing or extra:
            raise ValueError(
                f"weights: expected one weight per indicator {columns}, found missing {missing}, extra {extra}"
            )
        w = pd.Series({c: float(weights[c]) for c in columns}, name="weight")
        if (w < 0).any():
            raise ValueError(f"weights: expected non-negative weights, found {w[w < 0].to_dict()}")
        if not math.isclose(float(w.sum()), 1.0, abs_tol=1e-9):
            raise ValueError(f"weights: expected weights summing to 1, found {float(w.sum())}")
    score = pd.Series(norm.to_numpy() @ w.to_numpy(), index=df.index, name="score")
    # the weighted mean of values in [0, 1] stays there up to rounding; clip it so the score
    # always passes coupling_coordination's range check
    score = score.clip(0.0, 1.0)
    return SubsystemScore(normalised=norm, weights=w, score=score)


def _check_numeric_column(df: pd.DataFrame, col: str, *, need_variance: bool) -> np.ndarray:
    if col not in df.columns:
        raise ValueError(f"column {col!r}: expected in the table, found only {list(df.columns)}")
    if not pd.api.types.is_numeric_dtype(df[col]) or pd.api.types.is_bool_dtype(df[col]):
        raise ValueError(f"column {col!r}: expected numbers, found dtype {df[col].dtype}")
    values = df[col].to_numpy(dtype=float)
    n_missing = int(np.isnan(values).sum())
    if n_missing:
        raise ValueError(f"column {col!r}: expected complete values, found {n_missing} missing of {len(values)}")
    if not np.isfinite(values).all():
        raise ValueError(f"column {col!r}: expected finite values, found infinities")
    if need_variance and (len(values) < 2 or np.ptp(values) == 0):
        raise ValueError(
            f"column {col!r}: expected values that vary between features, found "
            f"{'a single feature' if len(values) < 2 else f'every value equal to {values[0]}'} (no variance)"
        )
    return values


# --------------------------------------------------------------------------------------
# Coupling types
# --------------------------------------------------------------------------------------


def coupling_types(
    df: pd.DataFrame,
    pop_change_col: str,
    greening_col: str,
    *,
    greening_p_col: str | None = None,
    pop_threshold: float = 0.05,
    greening_threshold: float = 0.0005,
    alpha: float = 0.05,
) -> pd.Series:
    """Classify townships by population trend and vegetation trend.

    Population (``pop_change_col``, the relative change over the study period as a
    fraction, ``(P_end - P_start) / P_start``; -0.12 is a 12 % loss):

    * depopulating: rate < ``-pop_threshold``;
    * stable: ``|rate| <= pop_threshold``;
    * growing: rate > ``pop_threshold``.

    The default 0.05 (5 % over the period) treats census noise and small boundary changes
    as stable.

    Ecology (``greening_col``, a trend slope where positive is improvement: the NDVI
    Theil-Sen slope per year by default; for a rocky-desertification or soil-loss trend
    pass its negative):

    * greening: slope > ``greening_threshold`` (and, if ``greening_p_col`` is given, the
      trend's p-value < ``alpha``);
    * degrading: slope < ``-greening_threshold`` (and p < ``alpha`` if given);
    * stagnant: otherwise.

    The default 0.0005 NDVI per year is the "basically unchanged" band commonly used with
    Sen's slope for NDVI trends in China; set it to 0 to classify by the sign alone (with a
    p-value column the significance test then decides).

    Returns
    -------
    pandas.Series
        Categorical with the categories :data:`COUPLING_TYPES` (e.g.
        ``"depopulating-greening"``, ``"stable-stagnant"``, ``"growing-degrading"``), the
        index of ``df``; NaN where an input is missing.
    """
    if pop_threshold < 0:
        raise ValueError(f"pop_threshold: expected a non-negative fraction, found {pop_threshold}")
    if greening_threshold < 0:
        raise ValueError(f"greening_threshold: expected a non-negative slope, found {greening_threshold}")
    if not (0.0 < alpha < 1.0):
        raise ValueError(f"alpha: expected a significance level in (0, 1), found {alpha}")
    cols = [pop_change_col, greening_col] + ([greening_p_col] if greening_p_col else [])
    for col in cols:
        if col not in df.columns:
            raise ValueError(f"column {col!r}: expected in the table, found only {list(df.columns)}")
        if not pd.api.types.is_numeric_dtype(df[col]):
            raise ValueError(f"column {col!r}: expected numbers, found dtype {df[col].dtype}")
    rate = df[pop_change_col].to_numpy(dtype=float)
    slope = df[greening_col].to_numpy(dtype=float)
    if np.any(rate[~np.isnan(rate)] < -1.0):
        raise ValueError(
            f"column {pop_change_col!r}: expected a relative change >= -1 (a fraction, -1 is total loss), "
            f"found {np.nanmin(rate)}"
        )
    significant = np.ones(len(df), dtype=bool)
    missing = np.isnan(rate) | np.isnan(slope)
    if greening_p_col:
        p = df[greening_p_col].to_numpy(dtype=float)
        if np.any((p[~np.isnan(p)] < 0) | (p[~np.isnan(p)] > 1)):
            raise ValueError(
                f"column {greening_p_col!r}: expected p-values in [0, 1], found {np.nanmin(p)} .. {np.nanmax(p)}"
            )
        significant = p < alpha
        missing |= np.isnan(p)
    pop = np.select([rate < -pop_threshold, rate > pop_threshold], [0, 2], default=1)
    eco = np.select(
        [(slope > greening_threshold) & significant, (slope < -greening_threshold) & significant], [0, 2], default=1
    )
    codes = np.where(missing, -1, pop * len(ECOLOGY_CLASSES) + eco)
    return pd.Series(
        pd.Categorical.from_codes(codes.astype(np.int64), categories=pd.Index(list(COUPLING_TYPES))),
        index=df.index,
        name="coupling_type",
    )


# --------------------------------------------------------------------------------------
# Spatial weights and spatial autocorrelation
# --------------------------------------------------------------------------------------


def _require_projected(gdf: gpd.GeoDataFrame, what: str) -> None:
    if gdf.crs is None:
        raise ValueError(f"{what}: expected features in a projected CRS (distances in metres), found no CRS")
    if gdf.crs.is_geographic:
        raise ValueError(
            f"{what}: expected features in a projected CRS (distances in metres), found the geographic CRS "
            f"{gdf.crs.to_string()}; reproject first (e.g. to the region grid's UTM zone)"
        )


def _centroids(gdf: gpd.GeoDataFrame) -> np.ndarray:
    if gdf.geometry.isna().any() or gdf.geometry.is_empty.any():
        n_bad = int((gdf.geometry.isna() | gdf.geometry.is_empty).sum())
        raise ValueError(f"geometry: expected a geometry for every feature, found {n_bad} missing or empty")
    c = gdf.geometry.centroid
    return np.column_stack([c.x.to_numpy(), c.y.to_numpy()])


def spatial_weights(gdf: gpd.GeoDataFrame, kind: Literal["queen", "knn"] = "queen", k: int = 6) -> Any:
    """Row-standardised spatial weights (a ``libpysal.weights.W``) for the features of ``gdf``.

    * ``"queen"``: polygons sharing an edge or a vertex are neighbours (townships, cells).
      A feature with no neighbour (an island: an enclave cut off by a missing township,
      a cell surrounded by nodata) would have a zero row and break the row standardisation
      and the regressions; each gets its nearest other feature (by centroid) attached as
      its neighbour, and a warning says which.
    * ``"knn"``: the ``k`` nearest features by centroid distance (points, or polygons of
      very uneven size); never has islands, but is not symmetric.

    The weights are indexed by position (0 .. n-1) in the row order of ``gdf``, whatever its
    index, so they line up with the columns passed to the other functions here. kNN and the
    island fix need a projected CRS.
    """
    from libpysal import weights as lw

    if len(gdf) < 2:
        raise ValueError(f"spatial_weights: expected at least 2 features, found {len(gdf)}")
    if kind == "knn":
        _require_projected(gdf, "spatial_weights(kind='knn')")
        if not (1 <= k < len(gdf)):
            raise ValueError(f"k: expected 1 <= k < the number of features ({len(gdf)}), found {k}")
        w = lw.KNN.from_array(_centroids(gdf), k=k)
    elif kind == "queen":
        _centroids(gdf)  # the same geometry check as kNN
        with warnings.catch_warnings():
            # libpysal warns about islands and disconnected components itself; we log them
            warnings.simplefilter("ignore", UserWarning)
            w = lw.Queen.from_dataframe(gdf, use_index=False)
        if w.islands:
            _require_projected(gdf, f"spatial_weights: attaching nearest neighbours to {len(w.islands)} islands")
            if len(w.islands) == w.n:
                log.warning(
                    "queen contiguity: no feature touches another (points or scattered polygons); "
                    "using the %d nearest neighbours instead",
                    k,
                )
                return spatial_weights(gdf, "knn", k=min(k, len(gdf) - 1))
            log.warning(
                "queen contiguity: %d features without a neighbour (positions %s); attaching each to its nearest "
                "feature by centroid (kNN, k=1)",
                len(w.islands),
                w.islands[:20],
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                w = lw.attach_islands(w, lw.KNN.from_array(_centroids(gdf), k=1))
    else:
        raise ValueError(f"kind: expected 'queen' or 'knn', found {kind!r}")
    if w.n_components > 1:
        log.info("spatial weights (%s): %d disconnected components", kind, w.n_components)
    w.transform = "r"
    return w


def _check_w(w: Any, n: int) -> None:
    if getattr(w, "n", None) != n:
        raise ValueError(f"w: expected spatial weights for {n} features, found {getattr(w, 'n', None)}")
    if w.islands:
        raise ValueError(f"w: expected every feature to have a neighbour, found {len(w.islands)} islands")


def moran_table(
    gdf: pd.DataFrame,
    columns: Sequence[str],
    w: Any,
    permutations: int = 999,
    seed: int = 0,
) -> pd.DataFrame:
    """Global Moran's I of each column (``esda.Moran``, row-standardised weights).

    ``I = (n / S0) * (z' W z) / (z' z)`` with ``z`` the deviations from the mean and ``S0``
    the sum of the weights. Under no spatial autocorrelation ``E[I] = -1 / (n - 1)``.

    Returns one row per column (index ``variable``): ``moran_i``, ``expected_i``, ``z``
    and ``p_norm`` (analytical, under normality, two-sided), ``z_sim`` and ``p_sim``
    (from ``permutations`` random permutations: the pseudo p-value
    ``(min(#sim >= I, #sim < I) + 1) / (permutations + 1)``, one-sided in the direction
    of the observed I), and ``n``.

    The permutations are drawn from NumPy's global generator (esda offers no other);
    it is seeded with ``seed`` before each column and restored afterwards, so the table
    is reproducible and the caller's random state is left as it was.

    Raises
    ------
    ValueError
        A missing, non-numeric or incomplete column, a column with no variance (Moran's I
        is 0/0), or weights for another number of features.
    """
    import esda

    _check_w(w, len(gdf))
    if permutations < 0:
        raise ValueError(f"permutations: expected >= 0, found {permutations}")
    rows = []
    for col in columns:
        values = _check_numeric_column(gdf, col, need_variance=True)
        state = np.random.get_state()
        try:
            np.random.seed(seed)
            mi = esda.Moran(values, w, transformation="r", permutations=permutations)
        finally:
            np.random.set_state(state)
        rows.append(
            {
                "variable": col,
                "moran_i": float(mi.I),
                "expected_i": float(mi.EI),
                "z": float(mi.z_norm),
                "p_norm": float(mi.p_norm),
                "z_sim": float(mi.z_sim) if permutations else np.nan,
                "p_sim": float(mi.p_sim) if permutations else np.nan,
                "n": int(mi.n),
            }
        )
    return pd.DataFrame(rows).set_index("variable")


def local_moran(
    gdf: pd.DataFrame,
    column: str,
    w: Any,
    permutations: int = 999,
    alpha: float = 0.05,
    seed: int = 0,
    *,
    two_sided: bool = False,
) -> pd.DataFrame:
    """Local Moran's I (LISA; ``esda.Moran_Local``) of one column for every feature.

    ``I_i = z_i * sum_j w_ij z_j / m2`` with ``z`` the deviations from the mean and
    ``m2 = sum_k z_k^2 / (n - 1)``.

    Returns a table with the index of ``gdf`` and the columns

    * ``local_i``;
    * ``p_sim``: the conditional permutation pseudo p-value (``permutations`` draws of the
      other features' values around each feature, seeded by ``seed``) as esda and GeoDa
      report it: ``(M + 1) / (permutations + 1)`` with M the draws at least as extreme in
      the tail where the observed I lies ("directed");
    * ``p_two_sided``: ``min(1, 2 * p_sim)``, the two-sided value esda will move to;
    * ``quadrant``: the Moran-scatterplot quadrant (HH a high value among high
      neighbours, LH low among high, LL, HL);
    * ``cluster``: the quadrant where the p-value is below ``alpha`` (``p_sim`` by
      default, for maps comparable with GeoDa's; ``p_two_sided`` with ``two_sided=True``),
      "not significant" elsewhere.

    The p-values are not corrected for testing every feature: with many features, read
    them with a stricter ``alpha`` (e.g. a Bonferroni or FDR bound) before naming clusters.

    The first call in a process spends 20-40 s compiling esda's numba kernels.
    """
    import esda

    _check_w(w, len(gdf))
    values = _check_numeric_column(gdf, column, need_variance=True)
    if not (0.0 < alpha < 1.0):
        raise ValueError(f"alpha: expected a significance level in (0, 1), found {alpha}")
    if permutations < 1:
        raise ValueError(f"permutations: expected >= 1 (p_sim needs them), found {permutations}")
    # esda's permutation kernels are numba functions without an on-disk cache: the first call
    # in a process compiles them (20-40 s on two cores), later calls take milliseconds
    log.info(
        "local Moran's I of %s: %d features, %d permutations (the first call in a process compiles esda's kernels)",
        column,
        len(values),
        permutations,
    )
    with warnings.catch_warnings():
        # esda announces that its default alternative will become two-sided; the pinned
        # esda computes the directed p-value documented above, and p_two_sided is here too
        warnings.filterwarnings("ignore", message="The alternative hypothesis", category=DeprecationWarning)
        lisa = esda.Moran_Local(
            values, w, transformation="r", permutations=permutations, seed=seed, n_jobs=1, keep_simulations=False
        )
    p_sim = np.asarray(lisa.p_sim, dtype=float)
    p_two = np.minimum(1.0, 2.0 * p_sim)
    quadrant = pd.Series(lisa.q).map(QUADRANTS).to_numpy()
    cluster = np.where((p_two if two_sided else p_sim) < alpha, quadrant, NOT_SIGNIFICANT)
    labels = [*QUADRANTS.values(), NOT_SIGNIFICANT]
    return pd.DataFrame(
        {
            "local_i": np.asarray(lisa.Is, dtype=float),
            "p_sim": p_sim,
            "p_two_sided": p_two,
            "quadrant": pd.Categorical(quadrant, categories=list(QUADRANTS.values())),
            "cluster": pd.Categorical(cluster, categories=labels),
        },
        index=gdf.index,
    )


# --------------------------------------------------------------------------------------
# Spatial regression
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpatialRegressionResult:
    """Result of :func:`spatial_regression`.

    Attributes
    ----------
    model
        ``"OLS"``, ``"ML_Lag"`` (spatial lag: ``y = rho W y + X beta + e``) or
        ``"ML_Error"`` (spatial error: ``y = X beta + u, u = lambda W u + e``).
    reason
        Which branch of the decision rule chose the model, in words.
    lm_tests
        Index ``LM_lag``, ``LM_error``, ``robust_LM_lag``, ``robust_LM_error``, ``LM_SARMA``;
        columns ``statistic``, ``df``, ``p``.
    coefficients
        The chosen model: one row per term (``CONSTANT``, the X columns, and ``rho`` or
        ``lambda``): ``estimate``, ``std_err``, ``statistic`` (t for OLS, z for ML), ``p``,
        ``ci_low``, ``ci_high`` (95 % by default: ``1 - alpha``).
    ols_coefficients
        The same table for the OLS fit, for comparison.
    spatial_parameter
        ``{"name": "rho" | "lambda", "estimate", "std_err", "ci_low", "ci_high", "p"}``,
        None for OLS.
    ols_residual_moran
        Moran's I of the OLS residuals: ``{"I", "z", "p"}`` (analytical, under normality).
    fit
        ``n``, ``k`` (regressors with the constant), ``log_likelihood``, ``aic``,
        ``pseudo_r2`` (squared correlation of y and the prediction; R2 for OLS),
        ``ols_r2``, ``ols_aic``, ``ml_method`` (log-determinant method) for ML fits.
    """

    model: str
    reason: str
    lm_tests: pd.DataFrame
    coefficients: pd.DataFrame
    ols_coefficients: pd.DataFrame
    spatial_parameter: dict[str, Any] | None
    ols_residual_moran: dict[str, float]
    fit: dict[str, Any] = field(default_factory=dict)


def choose_spatial_model(lm_tests: pd.DataFrame, alpha: float = 0.05) -> tuple[str, str]:
    """The decision rule of Anselin (2005, ch. 23; after Anselin et al. 1996) on LM tests.

    1. Neither LM-lag nor LM-error significant at ``alpha``: keep OLS.
    2. Exactly one significant: that model.
    3. Both significant: look at the robust tests. Exactly one robust test significant:
       that model. Both or neither robust test significant: the model whose robust test
       has the larger statistic (smaller p); with both robust tests significant, a model
       with both processes (SARMA) may fit better, which the reason says.

    Returns ``(model, reason)`` with model ``"OLS"``, ``"ML_Lag"`` or ``"ML_Error"``.
    """
    p = {str(k): float(v) for k, v in lm_tests["p"].items()}
    s = {str(k): float(v) for k, v in lm_tests["statistic"].items()}
    p_lag, p_err = p["LM_lag"], p["LM_error"]
    sig_lag, sig_err = p_lag < alpha, p_err < alpha
    if not sig_lag and not sig_err:
        return "OLS", f"neither LM-lag (p={p_lag:.3g}) nor LM-error (p={p_err:.3g}) significant at {alpha}"
    if sig_lag != sig_err:
        if sig_lag:
            return "ML_Lag", f"LM-lag significant (p={p_lag:.3g}), LM-error not (p={p_err:.3g})"
        return "ML_Error", f"LM-error significant (p={p_err:.3g}), LM-lag not (p={p_lag:.3g})"
    rp_lag, rp_err = p["robust_LM_lag"], p["robust_LM_error"]
    rs_lag, rs_err = s["robust_LM_lag"], s["robust_LM_error"]
    both = f"LM-lag and LM-error both significant (p={p_lag:.3g}, {p_err:.3g})"
    rsig_lag, rsig_err = rp_lag < alpha, rp_err < alpha
    if rsig_lag != rsig_err:
        if rsig_lag:
            return "ML_Lag", f"{both}; robust LM-lag significant (p={rp_lag:.3g}), robust LM-error not (p={rp_err:.3g})"
        return "ML_Error", f"{both}; robust LM-error significant (p={rp_err:.3g}), robust LM-lag not (p={rp_lag:.3g})"
    which = "ML_Lag" if rs_lag > rs_err else "ML_Error"
    if rsig_lag:
        tail = "both robust tests significant: the larger robust statistic decides (a SARMA model may fit better)"
    else:
        tail = "neither robust test significant: the larger robust statistic decides"
    return which, f"{both}; {tail} (robust LM-lag {rs_lag:.3g}, robust LM-error {rs_err:.3g})"


@contextlib.contextmanager
def _quiet_spreg() -> Iterator[None]:
    """spreg 1.9 prints the model class name from its output formatter, uses pandas
    ``inplace=`` (deprecated in pandas 3.1) and its ML fits pass a relative tolerance that
    scipy's bounded minimiser ignores with a warning; none of it concerns the results, so the
    print goes to the debug log and those warnings are dropped."""
    buffer = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(buffer):
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"spreg\.")
        warnings.filterwarnings("ignore", message="Method 'bounded' does not support relative tolerance")
        yield
    if buffer.getvalue().strip():
        log.debug("spreg printed: %s", buffer.getvalue().strip())


def _coef_table(names: Sequence[str], est: np.ndarray, se: np.ndarray, dist: Any, alpha: float) -> pd.DataFrame:
    stat = est / se
    p = 2.0 * dist.sf(np.abs(stat))
    q = dist.ppf(1.0 - alpha / 2.0)
    return pd.DataFrame(
        {
            "estimate": est,
            "std_err": se,
            "statistic": stat,
            "p": p,
            "ci_low": est - q * se,
            "ci_high": est + q * se,
        },
        index=pd.Index(list(names), name="term"),
    )


def _design(gdf: pd.DataFrame, y: str, x_cols: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    x_cols = list(x_cols)
    if not x_cols:
        raise ValueError("X: expected at least one explanatory column, found none")
    if y in x_cols:
        raise ValueError(f"X: expected explanatory columns other than y {y!r}, found it among them")
    yv = _check_numeric_column(gdf, y, need_variance=True)
    xv = np.column_stack([_check_numeric_column(gdf, c, need_variance=True) for c in x_cols])
    n, k = xv.shape
    if n <= k + 2:
        raise ValueError(f"X: expected more features ({n}) than regressors + 2 ({k + 2})")
    if np.linalg.matrix_rank(np.column_stack([np.ones(n), xv])) < k + 1:
        raise ValueError(f"X: expected linearly independent columns {x_cols}, found collinear ones")
    return yv[:, None], xv


def spatial_regression(
    gdf: pd.DataFrame,
    y: str,
    X: Sequence[str],
    w: Any,
    alpha: float = 0.05,
    *,
    ml_method: Literal["auto", "full", "ord", "LU"] = "auto",
) -> SpatialRegressionResult:
    """OLS with spatial diagnostics, then the spatial lag or error model the LM tests call for.

    1. ``spreg.OLS(y, X, w=w, spat_diag=True, moran=True)``: coefficients, Moran's I of the
       residuals and the Lagrange-multiplier tests LM-lag, LM-error, their robust forms
       and LM-SARMA (Anselin 1988; Anselin, Bera, Florax & Yoon 1996).
    2. :func:`choose_spatial_model` applies the Anselin (2005) decision rule at ``alpha``.
    3. The chosen spatial model is fitted by maximum likelihood (``spreg.ML_Lag`` or
       ``spreg.ML_Error``). ML rather than GMM (``GM_Lag``/``GM_Error``): its estimates are
       efficient for the Gaussian model and give a standard error for rho and lambda
       (GM_Error gives none for lambda), and at township or coarse-cell counts (hundreds to
       about a thousand features) the fit takes seconds. The log-determinant
       ``ln|I - rho W|`` is computed densely (``"full"``) up to 1,500 features and by
       sparse LU decomposition (``"LU"``) above (``ml_method="auto"``); ``"ord"`` uses the
       eigenvalues of W (Ord 1975). The asymptotic variance of ML still inverts an n x n
       matrix, so tens of thousands of cells call for aggregating first.

    Confidence intervals are ``estimate +- q * std_err`` with q from the t distribution
    (n - k df) for OLS and the normal distribution for the ML models; level ``1 - alpha``.

    In the lag model a coefficient is not the marginal effect of its variable: a change
    spreads through the neighbours, and with row-standardised W the average total effect
    is ``beta / (1 - rho)``. All of it is association across space, not cause.

    Parameters
    ----------
    gdf
        One row per feature, in the row order of ``w``.
    y, X
        Dependent and explanatory column names (a constant is added).
    w
        Row-standardised weights, as from :func:`spatial_weights`.
    """
    import spreg

    if not (0.0 < alpha < 1.0):
        raise ValueError(f"alpha: expected a significance level in (0, 1), found {alpha}")
    _check_w(w, len(gdf))
    if getattr(w, "transform", "r").lower() != "r":
        raise ValueError(f"w: expected row-standardised weights (transform 'r'), found transform {w.transform!r}")
    x_cols = list(X)
    yv, xv = _design(gdf, y, x_cols)
    n, k = xv.shape[0], xv.shape[1] + 1
    log.info("spatial regression of %s on %s: OLS with spatial diagnostics, %d features", y, x_cols, n)
    with _quiet_spreg():
        ols = spreg.OLS(yv, xv, w=w, spat_diag=True, moran=True, name_y=y, name_x=x_cols)
    names = ["CONSTANT", *x_cols]
    ols_table = _coef_table(names, ols.betas.ravel(), np.asarray(ols.std_err, dtype=float), stats.t(df=n - k), alpha)
    lm = pd.DataFrame(
        {
            "statistic": [
                float(ols.lm_lag[0]),
                float(ols.lm_error[0]),
                float(ols.rlm_lag[0]),
                float(ols.rlm_error[0]),
                float(ols.lm_sarma[0]),
            ],
            "df": [1, 1, 1, 1, 2],
            "p": [
                float(ols.lm_lag[1]),
                float(ols.lm_error[1]),
                float(ols.rlm_lag[1]),
                float(ols.rlm_error[1]),
                float(ols.lm_sarma[1]),
            ],
        },
        index=pd.Index(["LM_lag", "LM_error", "robust_LM_lag", "robust_LM_error", "LM_SARMA"], name="test"),
    )
    moran_res = {"I": float(ols.moran_res[0]), "z": float(ols.moran_res[1]), "p": float(ols.moran_res[2])}
    model, reason = choose_spatial_model(lm, alpha)
    log.info("spatial regression of %s: %s (%s)", y, model, reason)
    fit: dict[str, Any] = {
        "n": n,
        "k": k,
        "ols_r2": float(ols.r2),
        "ols_aic": float(ols.aic),
    }
    if model == "OLS":
        fit.update(log_likelihood=float(ols.logll), aic=float(ols.aic), pseudo_r2=float(ols.r2))
        return SpatialRegressionResult(model, reason, lm, ols_table, ols_table, None, moran_res, fit)

    method = ml_method if ml_method != "auto" else ("full" if n <= _ML_FULL_MAX_N else "LU")
    log.info("fitting %s by maximum likelihood (log-determinant method %s), %d features", model, method, n)
    with _quiet_spreg():
        if model == "ML_Lag":
            reg = spreg.ML_Lag(yv, xv, w=w, method=method, name_y=y, name_x=x_cols)
            param = "rho"
        else:
            reg = spreg.ML_Error(yv, xv, w=w, method=method, name_y=y, name_x=x_cols)
            param = "lambda"
    table = _coef_table([*names, param], reg.betas.ravel(), np.asarray(reg.std_err, dtype=float), stats.norm(), alpha)
    sp = {str(k): float(v) for k, v in table.iloc[-1].items()}
    spatial = {
        "name": param,
        "estimate": sp["estimate"],
        "std_err": sp["std_err"],
        "ci_low": sp["ci_low"],
        "ci_high": sp["ci_high"],
        "p": sp["p"],
    }
    fit.update(log_likelihood=float(reg.logll), aic=float(reg.aic), pseudo_r2=float(reg.pr2), ml_method=method)
    return SpatialRegressionResult(model, reason, lm, table, ols_table, spatial, moran_res, fit)


# --------------------------------------------------------------------------------------
# Geographically weighted regression
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GWRResult:
    """Result of :func:`gwr`.

    Attributes
    ----------
    bandwidth
        The selected bandwidth: a number of nearest neighbours (adaptive kernel) or a
        distance in CRS units (fixed kernel).
    local
        One row per feature (the index of ``gdf``): for each term (``CONSTANT`` and the
        X columns) ``<term>_coef``, ``<term>_se``, ``<term>_t``, ``<term>_t_filtered``
        (t where ``|t|`` exceeds the corrected critical value, else 0) and
        ``<term>_significant``; and ``local_r2``.
    summary
        ``n``, ``kernel``, ``fixed``, ``criterion``, ``bandwidth``, ``aicc``, ``r2``,
        ``adj_r2``, ``effective_parameters`` (trace of the hat matrix), ``sigma2``,
        ``adjusted_alpha``, ``critical_t``.
    """

    bandwidth: float
    local: pd.DataFrame
    summary: dict[str, Any]


def gwr(
    gdf: gpd.GeoDataFrame,
    y: str,
    X: Sequence[str],
    *,
    kernel: Literal["bisquare", "gaussian", "exponential"] = "bisquare",
    fixed: bool = False,
    criterion: Literal["AICc", "AIC", "BIC", "CV"] = "AICc",
    alpha: float = 0.05,
    n_jobs: int = 1,
) -> GWRResult:
    """Geographically weighted regression of ``y`` on ``X`` with a data-driven bandwidth.

    The bandwidth is chosen by golden-section search minimising ``criterion``
    (``mgwr.sel_bw.Sel_BW``; AICc by default, Hurvich et al. 1998), with an adaptive
    bisquare kernel by default (the bandwidth is a number of nearest neighbours, so sparse
    and dense areas get comparable local samples), then the model is fitted
    (``mgwr.gwr.GWR``). Coordinates are the feature centroids, which must be in a
    projected CRS. Variables are used in their own units (not standardised), so local
    coefficients read like OLS ones.

    Local t-values are judged against the critical t of the alpha corrected for the
    number of effective tests (da Silva & Fotheringham 2016): with ``alpha=0.05`` that is
    ``0.05 / (ENP / p)`` rather than 0.05, so few local coefficients pass by chance.

    ``n_jobs`` is the number of worker processes of mgwr (1: none; -1 all cores).
    Association, not cause.

    Raises
    ------
    ValueError
        A geographic or missing CRS, or the column problems of :func:`spatial_regression`.
    """
    from mgwr.gwr import GWR
    from mgwr.sel_bw import Sel_BW

    _require_projected(gdf, "gwr")
    if not (0.0 < alpha < 1.0):
        raise ValueError(f"alpha: expected a significance level in (0, 1), found {alpha}")
    x_cols = list(X)
    yv, xv = _design(gdf, y, x_cols)
    coords = _centroids(gdf)
    n = len(yv)
    log.info(
        "GWR of %s on %s: bandwidth search (%s, %s kernel, %s), %d features",
        y,
        x_cols,
        criterion,
        "fixed" if fixed else "adaptive",
        kernel,
        n,
    )
    selector = Sel_BW(coords, yv, xv, kernel=kernel, fixed=fixed, n_jobs=n_jobs)
    bw = float(selector.search(criterion=criterion))
    log.info("GWR of %s: bandwidth %s; fitting", y, bw)
    res = GWR(coords, yv, xv, bw, kernel=kernel, fixed=fixed, n_jobs=n_jobs).fit()
    names = ["CONSTANT", *x_cols]
    # da Silva & Fotheringham (2016): alpha over the effective number of independent tests,
    # ENP / k (mgwr's adj_alpha holds this for three fixed alphas only)
    adj_alpha = float(alpha * res.k / res.ENP)
    critical_t = float(res.critical_tval(alpha=adj_alpha))
    t_filtered = res.filter_tvals(critical_t=critical_t)
    cols: dict[str, Any] = {}
    for j, name in enumerate(names):
        cols[f"{name}_coef"] = res.params[:, j]
        cols[f"{name}_se"] = res.bse[:, j]
        cols[f"{name}_t"] = res.tvalues[:, j]
        cols[f"{name}_t_filtered"] = t_filtered[:, j]
        cols[f"{name}_significant"] = t_filtered[:, j] != 0
    cols["local_r2"] = np.asarray(res.localR2, dtype=float).ravel()
    local = pd.DataFrame(cols, index=gdf.index)
    summary = {
        "n": n,
        "kernel": kernel,
        "fixed": fixed,
        "criterion": criterion,
        "bandwidth": bw,
        "aicc": float(res.aicc),
        "r2": float(res.R2),
        "adj_r2": float(res.adj_R2),
        "effective_parameters": float(res.tr_S),
        "sigma2": float(res.sigma2),
        "adjusted_alpha": adj_alpha,
        "critical_t": critical_t,
    }
    log.info("GWR of %s: AICc %.4g, R2 %.3f", y, summary["aicc"], summary["r2"])
    return GWRResult(bandwidth=bw, local=local, summary=summary)

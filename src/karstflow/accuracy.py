"""Thematic map accuracy: confusion matrix, Kappa, disagreement and area estimation.

Conventions
-----------
Every confusion (error) matrix in this module has **map classes as rows and reference
classes as columns**: ``matrix[i][j]`` is the number of validation samples that the map
labels ``labels[i]`` and the reference labels ``labels[j]``. Row totals ``n_i+`` are the
samples per map class, column totals ``n_+j`` the samples per reference class. This is the
layout of Congalton & Green (2009) and of Olofsson et al. (2014).

Statistics
----------
Sample-based (always reported, computed from the counts as they are):

* ``overall_accuracy`` = sum(n_ii) / n;
* ``users_accuracy[i]`` = n_ii / n_i+ (NaN where a map class has no samples);
* ``producers_accuracy[j]`` = n_jj / n_+j (NaN where a reference class has no samples);
* ``kappa`` (Cohen's Kappa, "KHAT") with the large-sample delta-method variance of
  Bishop, Fienberg & Holland (1975) as given by Congalton & Green (2009)::

      theta1 = sum_i n_ii / n
      theta2 = sum_i n_i+ n_+i / n^2
      theta3 = sum_i n_ii (n_i+ + n_+i) / n^2
      theta4 = sum_i sum_j n_ij (n_j+ + n_+i)^2 / n^3
      var(K) = 1/n * [ theta1 (1 - theta1) / (1 - theta2)^2
                       + 2 (1 - theta1)(2 theta1 theta2 - theta3) / (1 - theta2)^3
                       + (1 - theta1)^2 (theta4 - 4 theta2^2) / (1 - theta2)^4 ]

  and ``kappa_ci`` = K -/+ z_{1-alpha/2} sqrt(var(K)) (normal approximation). Kappa is
  undefined (NaN) when the chance agreement theta2 equals 1 (a single class in both map
  and reference).
* quantity and allocation disagreement (Pontius & Millones 2011) of the sample
  proportions p_ij = n_ij / n (``quantity_disagreement_sample``,
  ``allocation_disagreement_sample``)::

      q_g = |p_g+ - p_+g|,  a_g = 2 min(p_g+ - p_gg, p_+g - p_gg)
      Q = sum_g q_g / 2,     A = sum_g a_g / 2,     Q + A = 1 - sum_g p_gg

Area-weighted (only with ``mapped_area``), Olofsson et al. (2014, Remote Sensing of
Environment 148:42-57, eqs. 2-10), a stratified estimator with the map classes as strata,
which is right for stratified random sampling by map class and, as a post-stratified
estimator, for simple random and systematic samples:

* W_i = mapped_area_i / sum(mapped_area);  p_ij = W_i n_ij / n_i+ (eq. 4, the estimated
  population error matrix of area proportions, ``area_proportion_matrix``);
* overall accuracy O = sum_j p_jj (eq. 1), V(O) = sum_i W_i^2 U_i (1 - U_i) / (n_i+ - 1)
  (eq. 5);
* user's accuracy U_i = p_ii / p_i+ = n_ii / n_i+ (eq. 2), V(U_i) = U_i (1 - U_i) / (n_i+ - 1)
  (eq. 6);
* producer's accuracy P_j = p_jj / p_+j (eq. 3) with the variance of eq. 7 (written with
  the area weights W in place of pixel counts N, which cancels);
* area proportion p_+k = sum_i p_ik (eq. 9), its standard error
  S(p_+k) = sqrt(sum_i W_i^2 (n_ik / n_i+)(1 - n_ik / n_i+) / (n_i+ - 1)) (eq. 10), the area
  estimate A_k = A_total p_+k and its standard error A_total S(p_+k), in the unit of
  ``mapped_area``;
* every confidence interval is estimate -/+ z_{1-alpha/2} SE (1.96 for alpha = 0.05), not
  clipped to [0, 1] or to non-negative areas, exactly as in the paper.

With ``mapped_area`` the headline ``quantity_disagreement`` / ``allocation_disagreement``
are computed on the area-weighted population matrix p_ij above (``disagreement_basis`` is
``"area_weighted"``), as Pontius & Millones recommend for a stratified sample; without it
they equal the sample-based values (``disagreement_basis`` is ``"sample"``).

Sampling design
---------------
The area-weighted figures are design-based estimates: they are unbiased only when the
validation sample is a *probability* sample of the map (Olofsson et al. 2014, section 4;
Stehman 2009, Int. J. Remote Sens. 30:5243-5272). :func:`assess` takes the ``design`` of
the sample, one of :data:`DESIGNS`:

* ``"map-stratified"`` (probability): stratified random sampling with the map classes as
  strata (the sampling-design rule's ``validation_sample.gpkg``); the stratum weights W_i
  are the mapped areas of the map classes, the estimator above is the one of the paper.
* ``"simple-random"`` (probability): simple random (or systematic) sampling of the map;
  the same formulas are the post-stratified estimator with the map classes as post-strata
  (Olofsson et al. 2014, section 4.3; Card 1982).
* ``"reference-split"`` (not a probability sample): a held-out share of reference samples
  stratified by *reference* class, typically from class interiors. Its composition is
  set by how many reference samples each class has, not by the map, so Olofsson's
  estimator is biased: map A 90 % of the area (5 % of it really B), map B 10 % (20 % really
  A), 50 samples per reference class give a B share of 0.339 +- 0.097 (95 % CI) against a
  true 0.125.
* ``"purposive"`` (not a probability sample): any other sample chosen by a person (field
  visits along roads, clear cases).
* ``"unknown"`` (not a probability sample): a sample whose design nobody declared.

For a design that is not a probability design, ``mapped_area`` is recorded but no area
estimate, area-adjusted accuracy or area-weighted disagreement is computed:
``has_area`` is False, the ``area_*`` fields are None, the headline
``quantity_disagreement`` / ``allocation_disagreement`` are NaN with
``disagreement_basis`` ``"not evaluated"``, and ``area_not_evaluated_reason`` says why;
:meth:`AccuracyAssessment.to_dict` writes ``"not evaluated"`` for each of those keys. The
sample-based figures (overall accuracy, Kappa, user's and producer's accuracy, the
``*_sample`` disagreements) are kept: they describe the sample, labelled by ``design``,
not the map. A probability design can still be withheld from area estimation with
``not_evaluated=<reason>``.

Strata that are not the map classes (Stehman 2014)
--------------------------------------------------
Olofsson's estimator needs the strata to be the classes of the map assessed. A sample drawn
stratified by one map and used to assess another (the land-cover map retrained once the
labelled sample is named as the validation file) has strata that differ from the map
classes. :func:`assess_stratified` then applies Stehman (2014, Int. J. Remote Sens.
35(13):4923-4939), computed from the sample units. Stratum h has N_h units (pixels) in the
population, N = sum_h N_h, n_h sample units; each unit u carries an indicator y_u:

* every proportion is the stratified estimator (eq. 3) P = sum_h (N_h / N) ybar_h with
  V(P) = sum_h (N_h / N)^2 (1 - n_h / N_h) s^2_yh / n_h (eq. 25), s^2_yh the sample variance
  of y in stratum h (eq. 26, divisor n_h - 1). With y_u = 1 when the unit is mapped i and
  its reference is j this is the cell p_ij of the area-proportion error matrix; with y_u = 1
  for reference class k the area proportion p_+k (eq. 14); with y_u = 1 when map and
  reference agree the overall accuracy (eq. 12). Area A_k = A p_+k, SE = A SE(p_+k), with A
  the total area of the strata;
* user's and producer's accuracy are ratios R = Y / X of two such totals (eq. 27),
  R = sum_h N_h ybar_h / sum_h N_h xbar_h: user's accuracy of k with y_u = 1 if mapped k
  and correct, x_u = 1 if mapped k (eqs. 18-19); producer's accuracy of k with y_u = 1 if
  reference k and correct, x_u = 1 if reference k (eqs. 22-23); its variance (eq. 28)
  V(R) = (1 / X^2) sum_h N_h^2 (1 - n_h / N_h) (s^2_yh + R^2 s^2_xh - 2 R s_xyh) / n_h, with
  s_xyh the covariance of y and x in stratum h (eq. 29). The bracket is computed as the
  sample variance of d_u = y_u - R x_u in stratum h, which is the same number;
* the headline quantity / allocation disagreement come from that matrix p_ij.

The finite population correction (1 - n_h / N_h) of eqs. 25 and 28 is left out by default
(``fpc=False``), as Olofsson et al. (2014) eqs. 5-7 and 10 leave it out: with strata =
map classes the estimates and standard errors then equal those of :func:`assess` exactly
(the sample of a class is a few hundred of its 10^4-10^7 pixels, so the factor is 1 to the
fourth decimal). A stratum with N_h > 0 and no sample unit makes the estimator undefined
(ValueError); one with a single unit gives NaN standard errors (RuntimeWarning).
Stehman's numerical example (his Table 2: 40 units in 4 strata of 40,000, 30,000, 20,000
and 10,000 pixels) is reproduced in the tests.

Edge cases (the choices made):

* A map class with no validation samples (a zero row): its user's accuracy is NaN. If
  its mapped area is also 0 it is simply an empty stratum. If its mapped area is > 0 the
  stratified estimator is undefined (that stratum's reference composition is unknown), so
  :func:`assess` raises ``ValueError`` naming the class; it never imputes.
* A reference class that no sample has (a zero column): its producer's accuracy is NaN,
  its estimated area is 0 with a zero-width interval.
* A map class with exactly one sample and mapped area > 0: the point estimates exist, but
  the variances of eqs. 5-7 and 10 divide by n_i+ - 1 = 0; the affected standard errors
  and intervals are NaN and a ``RuntimeWarning`` is issued.
* A mapped class whose mapped area is 0 but which has samples contributes nothing to the
  area-weighted figures (W_i = 0); its user's accuracy is still n_ii / n_i+.

:meth:`AccuracyAssessment.to_dict` turns every NaN into ``None`` so the result can be
written with :func:`json.dump` directly.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

__all__ = [
    "DESIGNS",
    "NOT_EVALUATED",
    "PROBABILITY_DESIGNS",
    "AccuracyAssessment",
    "AREA_ESTIMATORS",
    "assess",
    "assess_stratified",
    "confusion_matrix",
    "design_reason",
    "kappa_variance",
]

#: Sampling designs of a validation sample and whether each is a probability design.
DESIGNS: dict[str, bool] = {
    "map-stratified": True,
    "simple-random": True,
    "reference-split": False,
    "purposive": False,
    "unknown": False,
}
PROBABILITY_DESIGNS = tuple(d for d, p in DESIGNS.items() if p)
#: What :meth:`AccuracyAssessment.to_dict` writes for a figure that is not evaluated.
NOT_EVALUATED = "not evaluated"
#: The area estimators: strata = map classes (:func:`assess`), strata of another map or
#: another stratification (:func:`assess_stratified`).
AREA_ESTIMATORS = ("olofsson-2014", "stehman-2014")

_REASONS = {
    "reference-split": (
        "the validation sample is a held-out split of the reference samples, stratified by reference "
        "class (design reference-split), not a probability sample of the map; area estimates, "
        "area-adjusted accuracies and area-weighted disagreement need a sample stratified by map class "
        "or a simple random one (Olofsson et al. 2014)"
    ),
    "purposive": (
        "the validation sample was chosen purposively (design purposive), not a probability sample of "
        "the map; area estimates, area-adjusted accuracies and area-weighted disagreement need a sample "
        "stratified by map class or a simple random one (Olofsson et al. 2014)"
    ),
    "unknown": (
        "the sampling design of the validation sample is not declared (design unknown); area estimates, "
        "area-adjusted accuracies and area-weighted disagreement need a sample stratified by map class "
        "or a simple random one (Olofsson et al. 2014)"
    ),
}

_AREA_FIELDS = (
    "mapped_area",
    "area_weights",
    "area_proportion_matrix",
    "area_proportion",
    "area_proportion_se",
    "area_estimate",
    "area_se",
    "area_ci",
    "area_adjusted_overall_accuracy",
    "area_adjusted_overall_accuracy_se",
    "area_adjusted_overall_accuracy_ci",
    "area_adjusted_users_accuracy",
    "area_adjusted_users_accuracy_se",
    "area_adjusted_users_accuracy_ci",
    "area_adjusted_producers_accuracy",
    "area_adjusted_producers_accuracy_se",
    "area_adjusted_producers_accuracy_ci",
    "area_estimator",
)
#: Facts of a Stehman (2014) sample: the strata, their sizes N_h and sample units n_h.
_STRATA_FIELDS = ("area_strata", "area_stratum_size", "area_stratum_samples", "area_fpc")


@dataclass(frozen=True)
class AccuracyAssessment:
    """Result of :func:`assess`; see the module docstring for every formula.

    Arrays are read-only numpy arrays, per class in the order of ``labels``; confidence
    intervals are ``(low, high)`` pairs (arrays of shape ``(k, 2)`` for per-class ones).
    The ``area_*`` fields are ``None`` unless ``mapped_area`` was given for a probability
    ``design`` (``area_not_evaluated_reason`` says why they are missing otherwise).
    ``area_estimator`` names the estimator of the area figures (:data:`AREA_ESTIMATORS`);
    ``area_strata``, ``area_stratum_size``, ``area_stratum_samples`` and ``area_fpc`` are
    set by :func:`assess_stratified` only.
    """

    labels: tuple
    matrix: np.ndarray
    n: float
    alpha: float
    confidence_level: float
    z: float
    overall_accuracy: float
    kappa: float
    kappa_variance: float
    kappa_se: float
    kappa_ci: tuple[float, float]
    users_accuracy: np.ndarray
    producers_accuracy: np.ndarray
    quantity_disagreement: float
    allocation_disagreement: float
    disagreement_basis: str
    quantity_disagreement_sample: float
    allocation_disagreement_sample: float
    mapped_area: np.ndarray | None = None
    area_weights: np.ndarray | None = None
    area_proportion_matrix: np.ndarray | None = None
    area_proportion: np.ndarray | None = None
    area_proportion_se: np.ndarray | None = None
    area_estimate: np.ndarray | None = None
    area_se: np.ndarray | None = None
    area_ci: np.ndarray | None = None
    area_adjusted_overall_accuracy: float | None = None
    area_adjusted_overall_accuracy_se: float | None = None
    area_adjusted_overall_accuracy_ci: tuple[float, float] | None = None
    area_adjusted_users_accuracy: np.ndarray | None = None
    area_adjusted_users_accuracy_se: np.ndarray | None = None
    area_adjusted_users_accuracy_ci: np.ndarray | None = None
    area_adjusted_producers_accuracy: np.ndarray | None = None
    area_adjusted_producers_accuracy_se: np.ndarray | None = None
    area_adjusted_producers_accuracy_ci: np.ndarray | None = None
    design: str = "map-stratified"
    probability_design: bool = True
    area_not_evaluated_reason: str | None = None
    area_estimator: str | None = None
    area_strata: tuple | None = None
    area_stratum_size: np.ndarray | None = None
    area_stratum_samples: np.ndarray | None = None
    area_fpc: bool | None = None

    @property
    def has_area(self) -> bool:
        return self.area_estimate is not None

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable dict: floats, ints, strings, lists; NaN -> ``None``.

        The ``area_*`` keys (and ``mapped_area``) are present only when ``mapped_area``
        was given to :func:`assess`. When the area figures were not evaluated (a design
        that is not a probability design, or ``not_evaluated``), every ``area_*`` key,
        ``quantity_disagreement`` and ``allocation_disagreement`` hold
        :data:`NOT_EVALUATED`, ``area_estimates`` is :data:`NOT_EVALUATED` and
        ``area_not_evaluated_reason`` gives the reason; ``mapped_area`` and
        ``area_weights`` (facts of the map, not estimates) stay numbers.
        """
        withheld = self.area_not_evaluated_reason is not None
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "area_not_evaluated_reason":
                continue
            if withheld and f.name in _AREA_FIELDS and f.name not in ("mapped_area", "area_weights"):
                out[f.name] = NOT_EVALUATED
                continue
            if withheld and f.name in ("quantity_disagreement", "allocation_disagreement"):
                out[f.name] = NOT_EVALUATED
                continue
            if f.name in _AREA_FIELDS + _STRATA_FIELDS and getattr(self, f.name) is None:
                continue
            out[f.name] = _plain(getattr(self, f.name))
        if withheld:
            out["area_estimates"] = NOT_EVALUATED
            out["area_not_evaluated_reason"] = self.area_not_evaluated_reason
        return out


def _plain(value: Any) -> Any:
    """Convert numpy / tuple values to JSON-friendly Python values, NaN -> None."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()] if value.ndim else _plain(value.item())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def _check_labels(labels: Sequence, where: str = "labels") -> tuple:
    if isinstance(labels, (str, bytes)):
        raise ValueError(f"{where} must be a sequence of class labels, found a string {labels!r}")
    try:
        labs = tuple(np.asarray(labels, dtype=object).ravel().tolist())
    except Exception as exc:  # pragma: no cover - exotic input
        raise ValueError(f"{where} must be a sequence of class labels: {exc}") from exc
    if len(labs) == 0:
        raise ValueError(f"{where} is empty: expected at least one class label")
    seen: set = set()
    dups = []
    for lab in labs:
        if lab in seen:
            dups.append(lab)
        seen.add(lab)
    if dups:
        raise ValueError(f"{where} must be unique; duplicated: {sorted(set(map(repr, dups)))}")
    return labs


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise ValueError(f"alpha must be a number in (0, 1), found {alpha!r}")
    a = float(alpha)
    if not (0.0 < a < 1.0):
        raise ValueError(f"alpha must be in the open interval (0, 1), found {alpha!r}")
    return a


def _check_matrix(matrix: Any, k: int) -> np.ndarray:
    try:
        m = np.asarray(matrix, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"matrix must be a square array of counts: {exc}") from exc
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix must be square (k x k), found shape {m.shape}")
    if m.shape[0] != k:
        raise ValueError(
            f"matrix is {m.shape[0]} x {m.shape[1]} but labels has {k} entries; "
            "expected one row and one column per label"
        )
    if not np.all(np.isfinite(m)):
        raise ValueError("matrix contains non-finite counts (NaN or inf)")
    if np.any(m < 0):
        bad = np.argwhere(m < 0)[0]
        raise ValueError(f"matrix contains negative counts, e.g. matrix[{bad[0]}][{bad[1]}] = {m[tuple(bad)]}")
    if m.sum() <= 0:
        raise ValueError("matrix is empty: it holds no samples (n == 0)")
    return m


def _check_mapped_area(mapped_area: Any, labels: tuple, matrix: np.ndarray) -> np.ndarray:
    k = len(labels)
    try:
        a = np.asarray(mapped_area, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"mapped_area must be {k} numbers (one per label): {exc}") from exc
    if a.ndim != 1 or a.shape[0] != k:
        raise ValueError(f"mapped_area must have one value per label ({k}), found shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("mapped_area contains non-finite values (NaN or inf)")
    if np.any(a < 0):
        bad = [labels[i] for i in np.flatnonzero(a < 0)]
        raise ValueError(f"mapped_area must be non-negative; negative for classes {bad}")
    if a.sum() <= 0:
        raise ValueError("mapped_area sums to 0: at least one class must have mapped area")
    n_row = matrix.sum(axis=1)
    missing = [labels[i] for i in np.flatnonzero((a > 0) & (n_row == 0))]
    if missing:
        raise ValueError(
            "the stratified area estimator is undefined for map classes with mapped area > 0 "
            f"but no validation samples: {missing}; add samples for them or merge the classes"
        )
    return a


def _safe_div(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    """num / den with NaN (not a warning) where den == 0."""
    num_a = np.asarray(num, dtype=float)
    den_a = np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den_a != 0, num_a / np.where(den_a != 0, den_a, 1.0), np.nan)
    return out


def kappa_variance(matrix: Any) -> float:
    """Delta-method variance of Cohen's Kappa (Congalton & Green 2009, theta1..theta4).

    ``matrix`` is a k x k array of counts (orientation does not matter: the formula is
    invariant under transposition). Returns NaN when the chance agreement equals 1.
    """
    m = np.asarray(matrix, dtype=float)
    n = m.sum()
    rows = m.sum(axis=1)  # n_i+
    cols = m.sum(axis=0)  # n_+i
    diag = np.diag(m)
    t1 = diag.sum() / n
    t2 = float(np.sum(rows * cols)) / n**2
    t3 = float(np.sum(diag * (rows + cols))) / n**2
    # theta4: sum_ij n_ij (n_j+ + n_+i)^2 ; element (i, j) needs row total of j, col total of i
    t4 = float(np.sum(m * (rows[np.newaxis, :] + cols[:, np.newaxis]) ** 2)) / n**3
    if t2 >= 1.0:
        return float("nan")
    d = 1.0 - t2
    var = (
        t1 * (1 - t1) / d**2 + 2 * (1 - t1) * (2 * t1 * t2 - t3) / d**3 + (1 - t1) ** 2 * (t4 - 4 * t2**2) / d**4
    ) / n
    return float(var)


def _disagreement(p: np.ndarray) -> tuple[float, float]:
    """Pontius & Millones (2011) quantity and allocation disagreement of a proportion matrix."""
    p = p / p.sum()
    rows = p.sum(axis=1)
    cols = p.sum(axis=0)
    diag = np.diag(p)
    quantity = float(np.sum(np.abs(rows - cols)) / 2.0)
    allocation = float(np.sum(2.0 * np.minimum(rows - diag, cols - diag)) / 2.0)
    return quantity, allocation


def _ci(est: np.ndarray | float, se: np.ndarray | float, z: float) -> np.ndarray:
    est_a = np.asarray(est, dtype=float)
    se_a = np.asarray(se, dtype=float)
    return np.stack([est_a - z * se_a, est_a + z * se_a], axis=-1)


def assess(
    matrix: Any,
    labels: Sequence,
    mapped_area: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
    design: str = "map-stratified",
    *,
    not_evaluated: str | None = None,
) -> AccuracyAssessment:
    """Accuracy assessment of a classified map from a confusion matrix of sample counts.

    Parameters
    ----------
    matrix
        k x k counts, **map classes as rows, reference classes as columns**:
        ``matrix[i][j]`` = samples mapped as ``labels[i]`` whose reference is ``labels[j]``
        (see :func:`confusion_matrix`). Non-negative and finite; need not be integers.
    labels
        The k class labels (unique), giving the order of rows, columns and every per-class
        output.
    mapped_area
        Optional mapped area of each map class (same order as ``labels``, any unit, e.g.
        pixels or ha). When given, the Olofsson et al. (2014) stratified estimates of area
        and of area-adjusted accuracies are added, in that unit, and the headline
        quantity / allocation disagreement are computed on the area-weighted matrix.
    alpha
        1 - confidence level of every interval (default 0.05 -> 95 %, z = 1.96).
    design
        The sampling design of the validation sample, one of :data:`DESIGNS` (see the
        module docstring). Only a probability design (``"map-stratified"``, the default,
        which is what the estimator assumes, or ``"simple-random"``) gives area estimates,
        area-adjusted accuracies and area-weighted disagreement; for any other design they
        are "not evaluated", with the reason in ``area_not_evaluated_reason``.
    not_evaluated
        A reason to withhold the area figures even for a probability design (e.g. the
        sample's strata are not the classes of this map); only used with ``mapped_area``.

    Raises
    ------
    ValueError
        For a non-square matrix or one not matching ``labels``, negative or non-finite
        counts, an empty matrix, duplicated labels, ``mapped_area`` of the wrong length,
        negative or all zero, a map class with mapped area > 0 but no samples (for a
        probability design), ``alpha`` outside (0, 1), or a ``design`` outside
        :data:`DESIGNS`.
    """
    labs = _check_labels(labels)
    a = _check_alpha(alpha)
    m = _check_matrix(matrix, len(labs))
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {list(DESIGNS)}, found {design!r}")
    reason = None
    if mapped_area is not None:
        reason = not_evaluated or design_reason(design)
    if reason is None:
        area = None if mapped_area is None else _check_mapped_area(mapped_area, labs, m)
    else:
        # the map's areas are still recorded; the empty-stratum check only matters to the estimator
        area = _check_mapped_area(mapped_area, labs, np.ones_like(m))
    z = float(norm.ppf(1.0 - a / 2.0))

    n = float(m.sum())
    rows = m.sum(axis=1)
    cols = m.sum(axis=0)
    diag = np.diag(m)

    overall = float(diag.sum() / n)
    users = _safe_div(diag, rows)
    producers = _safe_div(diag, cols)

    pe = float(np.sum(rows * cols)) / n**2
    kappa = float((overall - pe) / (1.0 - pe)) if pe < 1.0 else float("nan")
    kvar = kappa_variance(m)
    kse = math.sqrt(kvar) if math.isfinite(kvar) and kvar >= 0 else float("nan")
    kci = (kappa - z * kse, kappa + z * kse)

    q_s, a_s = _disagreement(m / n)

    result: dict[str, Any] = dict(
        labels=labs,
        matrix=_readonly(m.astype(np.int64) if np.all(m == np.round(m)) else m),
        n=int(n) if n == round(n) else n,
        alpha=a,
        confidence_level=1.0 - a,
        z=z,
        overall_accuracy=overall,
        kappa=kappa,
        kappa_variance=kvar,
        kappa_se=kse,
        kappa_ci=kci,
        users_accuracy=_readonly(users),
        producers_accuracy=_readonly(producers),
        quantity_disagreement=q_s,
        allocation_disagreement=a_s,
        disagreement_basis="sample",
        quantity_disagreement_sample=q_s,
        allocation_disagreement_sample=a_s,
        design=design,
        probability_design=DESIGNS[design],
    )

    if reason is not None and area is not None:
        result.update(
            mapped_area=_readonly(area),
            area_weights=_readonly(area / area.sum()),
            quantity_disagreement=float("nan"),
            allocation_disagreement=float("nan"),
            disagreement_basis=NOT_EVALUATED,
            area_not_evaluated_reason=reason,
        )
    elif area is not None:
        result.update(_area_estimates(m, area, z))
        result["area_estimator"] = "olofsson-2014"
        q_w, a_w = _disagreement(result["area_proportion_matrix"])
        result.update(
            quantity_disagreement=q_w,
            allocation_disagreement=a_w,
            disagreement_basis="area_weighted",
        )
        for key in _AREA_FIELDS:
            if isinstance(result[key], np.ndarray):
                result[key] = _readonly(result[key])

    return AccuracyAssessment(**result)


def design_reason(design: str) -> str | None:
    """Why a sample of ``design`` gives no area estimates; None for a probability design."""
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {list(DESIGNS)}, found {design!r}")
    return None if DESIGNS[design] else _REASONS[design]


def _area_estimates(m: np.ndarray, area: np.ndarray, z: float) -> dict[str, Any]:
    """Olofsson et al. (2014) eqs. 1-10, strata = map classes."""
    total = float(area.sum())
    w = area / total
    n_i = m.sum(axis=1)
    active = w > 0  # strata that carry weight; all of them have n_i > 0 (checked)
    # Row-conditional proportions n_ij / n_i+ (0 for empty rows, which have w == 0).
    frac = np.zeros_like(m)
    frac[n_i > 0] = m[n_i > 0] / n_i[n_i > 0, np.newaxis]
    p = w[:, np.newaxis] * frac  # eq. 4

    thin = [i for i in np.flatnonzero(active) if n_i[i] < 2]
    if thin:
        warnings.warn(
            f"map class(es) at index {thin} have a single validation sample: the variances "
            "of Olofsson et al. (2014) eqs. 5-7 and 10 divide by n_i - 1 = 0, so the "
            "affected standard errors and confidence intervals are NaN",
            RuntimeWarning,
            stacklevel=3,
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_nm1 = np.where(n_i > 1, 1.0 / np.where(n_i > 1, n_i - 1.0, 1.0), np.nan)

    def stratum_terms(x: np.ndarray) -> np.ndarray:
        """W_i^2 x_i / (n_i - 1), exactly 0 for strata without weight."""
        with np.errstate(invalid="ignore"):
            t = (w**2)[:, None] * x * inv_nm1[:, None] if x.ndim == 2 else w**2 * x * inv_nm1
        return np.where(active[:, None] if x.ndim == 2 else active, t, 0.0)

    # Users' accuracy (eq. 2), from the samples of each stratum; variance eq. 6.
    users = _safe_div(np.diag(m), n_i)
    users_var = users * (1.0 - users) * inv_nm1
    users_se = np.sqrt(users_var)

    # Overall accuracy (eq. 1) and its variance (eq. 5).
    overall = float(np.trace(p))
    overall_var = float(np.sum(stratum_terms(np.nan_to_num(users) * (1.0 - np.nan_to_num(users)))))
    overall_se = math.sqrt(overall_var) if math.isfinite(overall_var) else float("nan")

    # Area proportions (eq. 9) and standard errors (eq. 10).
    p_col = p.sum(axis=0)
    prop_var = stratum_terms(frac * (1.0 - frac)).sum(axis=0)
    prop_se = np.sqrt(prop_var)

    # Producer's accuracy (eq. 3) and variance (eq. 7), N_i. replaced by W_i (scale-free).
    k = m.shape[0]
    p_diag = np.diag(p)
    producers = _safe_div(p_diag, p_col)
    prod_var = np.full(k, np.nan)
    for j in range(k):
        if not p_col[j] > 0:
            continue
        pj = producers[j]
        uj = users[j]
        if active[j]:
            first = w[j] ** 2 * (1.0 - pj) ** 2 * uj * (1.0 - uj) * inv_nm1[j]
        else:
            first = 0.0
        others = stratum_terms(frac[:, j] * (1.0 - frac[:, j]))
        others[j] = 0.0
        second = pj**2 * float(np.sum(others))
        prod_var[j] = (first + second) / p_col[j] ** 2
    prod_se = np.sqrt(prod_var)

    return dict(
        mapped_area=area,
        area_weights=w,
        **_area_fields(p, p_col, prop_se, total, (overall, overall_se), (users, users_se), (producers, prod_se), z),
    )


def _area_fields(
    p: np.ndarray,
    prop: np.ndarray,
    prop_se: np.ndarray,
    total: float,
    overall: tuple[float, float],
    users: tuple[np.ndarray, np.ndarray],
    producers: tuple[np.ndarray, np.ndarray],
    z: float,
) -> dict[str, Any]:
    """The area and area-adjusted accuracy fields of :class:`AccuracyAssessment` from the
    estimates of either estimator (Olofsson et al. 2014 or Stehman 2014): the area
    proportion matrix, the class area proportions and (est, se) pairs of the accuracies."""
    (oa, oa_se), (ua, ua_se), (pa, pa_se) = overall, users, producers
    return dict(
        area_proportion_matrix=p,
        area_proportion=prop,
        area_proportion_se=prop_se,
        area_estimate=prop * total,
        area_se=prop_se * total,
        area_ci=_ci(prop * total, prop_se * total, z),
        area_adjusted_overall_accuracy=oa,
        area_adjusted_overall_accuracy_se=oa_se,
        area_adjusted_overall_accuracy_ci=tuple(_ci(oa, oa_se, z).tolist()),
        area_adjusted_users_accuracy=ua,
        area_adjusted_users_accuracy_se=ua_se,
        area_adjusted_users_accuracy_ci=_ci(ua, ua_se, z),
        area_adjusted_producers_accuracy=pa,
        area_adjusted_producers_accuracy_se=pa_se,
        area_adjusted_producers_accuracy_ci=_ci(pa, pa_se, z),
    )


def assess_stratified(
    stratum: Any,
    mapped: Any,
    reference: Any,
    labels: Sequence,
    stratum_size: Any,
    mapped_area: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
    design: str = "map-stratified",
    *,
    not_evaluated: str | None = None,
    unit_area: float = 1.0,
    fpc: bool = False,
) -> AccuracyAssessment:
    """Accuracy and area from a stratified random sample whose strata need not be the map classes.

    Stehman (2014, Int. J. Remote Sens. 35(13):4923-4939); see the module docstring for the
    estimators and their equation numbers. With strata = map classes and ``fpc=False`` every
    figure equals the one of :func:`assess` with ``mapped_area`` = the stratum sizes.

    Parameters
    ----------
    stratum, mapped, reference
        Per sample unit: its stratum (the label it was drawn in), the class of the map
        assessed at it and its reference class (equal length; ``mapped`` and ``reference``
        values must be in ``labels``).
    labels
        The class labels (order of every per-class output and of the error matrix).
    stratum_size
        Mapping stratum -> N_h, the units (pixels) of each stratum in the population; every
        stratum of ``stratum`` must be in it, and every stratum with N_h > 0 needs units.
    mapped_area
        Optional mapped area of each class of the map assessed (order of ``labels``),
        recorded as ``mapped_area`` / ``area_weights`` (facts of the map; the estimator's
        weights are the strata's).
    alpha, design, not_evaluated
        As in :func:`assess`: only a probability design gets area figures, and
        ``not_evaluated`` withholds them with that reason.
    unit_area
        Area of one unit in the unit wanted for ``area_estimate`` (e.g. ha per pixel); the
        total area is ``unit_area * sum(N_h)``.
    fpc
        Apply the finite population correction (1 - n_h / N_h) of eqs. 25 and 28 (default
        False, as Olofsson et al. 2014, so that both estimators agree when the strata are
        the map classes).

    The sample-based figures (overall accuracy, Kappa, ``*_sample`` disagreement) are those
    of :func:`assess` on the sample's counts.
    """
    labs = _check_labels(labels)
    st = _as_flat(stratum)
    mp = _as_flat(mapped)
    rf = _as_flat(reference)
    if not (len(st) == len(mp) == len(rf)):
        raise ValueError(
            f"stratum, mapped and reference must have one value per sample unit, found {len(st)}, {len(mp)} "
            f"and {len(rf)}"
        )
    if not isinstance(stratum_size, Mapping):
        raise ValueError(f"stratum_size must map each stratum to its size N_h, found {type(stratum_size).__name__}")
    strata = tuple(stratum_size)
    sizes = np.array([float(stratum_size[h]) for h in strata])
    if not np.all(np.isfinite(sizes)) or np.any(sizes < 0) or sizes.sum() <= 0:
        raise ValueError(f"stratum_size must be non-negative, finite and not all 0, found {dict(stratum_size)}")
    if not (isinstance(unit_area, numbers.Real) and math.isfinite(unit_area) and unit_area > 0):
        raise ValueError(f"unit_area must be a positive number, found {unit_area!r}")
    h_idx = pd.Index(list(strata)).get_indexer(pd.Index(st))
    if np.any(h_idx < 0):
        unknown = sorted({repr(v) for v in st[h_idx < 0].tolist()})
        raise ValueError(f"sample units in strata without a size in stratum_size: {', '.join(unknown)}")
    matrix = confusion_matrix(mp, rf, labs)
    base = assess(matrix, labs, alpha=alpha, design=design)
    reason = not_evaluated or design_reason(design)
    if reason is not None:
        if mapped_area is not None:
            return assess(matrix, labs, mapped_area, alpha=alpha, design=design, not_evaluated=reason)
        return replace(
            base,
            quantity_disagreement=float("nan"),
            allocation_disagreement=float("nan"),
            disagreement_basis=NOT_EVALUATED,
            area_not_evaluated_reason=reason,
        )
    cats = pd.Index(list(labs))
    n_h, *estimates = _stehman_estimates(
        h_idx, cats.get_indexer(pd.Index(mp)), cats.get_indexer(pd.Index(rf)), len(labs), sizes, strata, fpc
    )
    update: dict[str, Any] = dict(
        **_area_fields(*estimates[:3], float(sizes.sum()) * float(unit_area), *estimates[3:], base.z),
        area_estimator="stehman-2014",
        area_strata=strata,
        area_stratum_size=sizes,
        area_stratum_samples=n_h.astype(np.int64),
        area_fpc=bool(fpc),
    )
    if mapped_area is not None:
        area = _check_mapped_area(mapped_area, labs, np.ones_like(matrix, dtype=float))
        update.update(mapped_area=area, area_weights=area / area.sum())
    q_w, a_w = _disagreement(update["area_proportion_matrix"])
    update.update(quantity_disagreement=q_w, allocation_disagreement=a_w, disagreement_basis="area_weighted")
    for key, value in update.items():
        if isinstance(value, np.ndarray):
            update[key] = _readonly(value)
    return replace(base, **update)


def _stehman_estimates(
    h: np.ndarray, i: np.ndarray, j: np.ndarray, k: int, sizes: np.ndarray, strata: tuple, fpc: bool
) -> tuple:
    """Stehman (2014) eqs. 3, 12, 14, 18-19, 22-29 from unit stratum / map / reference indices:
    (n_h, area proportion matrix, class area proportions, their SE, (overall, se),
    (user's, se), (producer's, se))."""
    n_h = np.bincount(h, minlength=len(sizes)).astype(float)
    empty = [strata[s] for s in np.flatnonzero((sizes > 0) & (n_h == 0))]
    if empty:
        raise ValueError(
            f"the stratified estimator is undefined for strata with units but no sample unit: {empty}; "
            "label a unit of each of them or leave the stratum out of the population"
        )
    thin = [strata[s] for s in np.flatnonzero((sizes > 0) & (n_h == 1))]
    if thin:
        warnings.warn(
            f"strata {thin} have a single sample unit: the stratum variances of Stehman (2014) eqs. 26 and "
            "28-29 divide by n_h - 1 = 0, so the affected standard errors and confidence intervals are NaN",
            RuntimeWarning,
            stacklevel=3,
        )
    big_n = float(sizes.sum())
    w = sizes / big_n
    corr = 1.0 - np.divide(n_h, sizes, out=np.zeros_like(n_h), where=sizes > 0) if fpc else np.ones_like(n_h)
    onehot = np.zeros((len(sizes), len(h)))
    onehot[h, np.arange(len(h))] = 1.0

    def means(y: np.ndarray) -> np.ndarray:
        """ybar_h per stratum and column of y (units x q); 0 in strata without units (weight 0)."""
        return np.divide(onehot @ y, n_h[:, None], out=np.zeros((len(sizes), y.shape[1])), where=n_h[:, None] > 0)

    def variances(d: np.ndarray) -> np.ndarray:
        """s^2 per stratum (eq. 26, divisor n_h - 1): NaN for one unit, 0 for strata without weight."""
        dev = d - means(d)[h]
        with np.errstate(invalid="ignore", divide="ignore"):
            s2 = (onehot @ dev**2) / (n_h - 1.0)[:, None]
        return np.where((w > 0)[:, None], s2, 0.0)

    def mean_variance(d: np.ndarray) -> np.ndarray:
        """sum_h W_h^2 (fpc) s^2_h / n_h: the variance of a stratified mean of d (eqs. 25, 28)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return ((w**2 * corr)[:, None] * variances(d) / np.where(n_h > 0, n_h, 1.0)[:, None]).sum(axis=0)

    def proportion(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return w @ means(y), np.sqrt(mean_variance(y))  # eqs. 3, 25

    def ratio(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y_tot, x_tot = w @ means(y), w @ means(x)  # totals / N; N cancels in R and in eq. 28
        r = _safe_div(y_tot, x_tot)  # eq. 27
        resid = y - np.nan_to_num(r)[None, :] * x  # s2_d = s2_y + R^2 s2_x - 2 R s_xy (eqs. 26, 29)
        return r, np.where(np.isfinite(r), np.sqrt(_safe_div(mean_variance(resid), x_tot**2)), np.nan)  # eq. 28

    units = np.arange(len(h))
    on_map = np.zeros((len(h), k))
    on_map[units, i] = 1.0
    on_ref = np.zeros((len(h), k))
    on_ref[units, j] = 1.0
    correct = (i == j).astype(float)[:, None]
    cell = (on_map[:, :, None] * on_ref[:, None, :]).reshape(len(h), k * k)
    p = proportion(cell)[0].reshape(k, k)
    prop, prop_se = proportion(on_ref)  # eq. 14
    overall, overall_se = proportion(correct)  # eq. 12
    users = ratio(on_map * correct, on_map)  # eqs. 18-19, 27-28
    producers = ratio(on_ref * correct, on_ref)  # eqs. 22-23, 27-28
    return n_h, p, prop, prop_se, (float(overall[0]), float(overall_se[0])), users, producers


def _as_flat(values: Any) -> np.ndarray:
    if isinstance(values, (pd.Series, pd.Index)):
        values = values.to_numpy()
    if isinstance(values, np.ndarray):
        return values.ravel()
    return np.asarray(list(values) if not np.isscalar(values) else [values], dtype=object).ravel()


def confusion_matrix(mapped: Any, reference: Any, labels: Sequence, strict: bool = True) -> np.ndarray:
    """Count samples into a k x k confusion matrix, **map classes as rows**.

    ``result[i, j]`` is the number of pairs with ``mapped == labels[i]`` and
    ``reference == labels[j]``. ``mapped`` and ``reference`` are equally shaped array-likes
    (flattened). With ``strict=True`` (the default) any value not in ``labels`` raises a
    ValueError listing the unknown labels; with ``strict=False`` pairs where either side
    is outside ``labels`` (including NaN / None) are dropped.
    """
    labs = _check_labels(labels)
    mp = _as_flat(mapped)
    rf = _as_flat(reference)
    if mp.shape != rf.shape:
        raise ValueError(
            f"mapped and reference must have the same number of samples, found {mp.shape[0]} and {rf.shape[0]}"
        )
    cats = pd.Index(list(labs))
    i = cats.get_indexer(pd.Index(mp))
    j = cats.get_indexer(pd.Index(rf))
    bad = (i < 0) | (j < 0)
    if strict and bad.any():
        unknown_vals = list(mp[i < 0].tolist()) + list(rf[j < 0].tolist())
        unknown = sorted({repr(v) for v in unknown_vals})
        raise ValueError(
            f"{int(bad.sum())} sample pair(s) have labels outside {list(labs)}: "
            f"unknown labels {', '.join(unknown)} (pass strict=False to drop them)"
        )
    keep = ~bad
    k = len(labs)
    counts = np.bincount(i[keep] * k + j[keep], minlength=k * k)
    return counts.reshape(k, k).astype(np.int64)

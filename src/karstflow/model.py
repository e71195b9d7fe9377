"""The abandonment model: binary logit over the drivers, its fit, calibration and collinearity.

API::

    fit_abandonment_model(drivers: pd.DataFrame, *, outcome="abandoned", predictors=DRIVER_COLUMNS,
                          categorical=("x3_aspect_class",), reference_class=0, ci_level=0.95,
                          hl_groups=10, hl_method="quantile", maxiter=100) -> LogitModel
    hosmer_lemeshow(y, p, groups=10, *, method="quantile"|"spss") -> (statistic, df, pvalue)
    risk_groups(y, p, groups=10, *, method="quantile"|"spss") -> pd.DataFrame  # the table behind the HL test
    equal_size_groups(p, groups=10) -> np.ndarray      # SPSS's groups of equal size
    vif_table(drivers, predictors, categorical=("x3_aspect_class",)) -> pd.DataFrame
    reduce_collinearity(drivers, predictors, *, threshold, action="warn"|"drop", ...) -> (predictors, vif table)
    check_model_input(drivers, outcome, predictors, ...) -> None   # raises ModelInputError

Conventions (the study's SPSS table, a step further)
----------------------------------------------------
* **Design.** Continuous predictors enter as they are; a categorical predictor (the aspect
  class x3) enters as 0/1 indicators of every class present except the reference
  (``reference_class``, default 0 flat), named ``x3_aspect_class[1 shady]`` etc.
* **Coefficient table** (:attr:`LogitModel.coefficients`, ``model/logit_coefficients.csv``):
  one row per term in the order of the predictors, the categorical predictor first as one
  joint row (``term`` = the column name; Wald = b' V^-1 b over its indicators, df = number
  of indicators; B, SE, exp_B, CI empty) followed by its indicator rows, and ``const``
  last. ``Wald`` = (B / SE)^2 with df 1, ``p`` from chi-square, ``exp_B`` = e^B,
  ``ci_low``/``ci_high`` the Wald confidence interval **of exp_B** (exp(B -+ z SE), SPSS's
  "95 % C.I. for EXP(B)"), ``B_std`` = B x SD of the predictor column (change in log-odds
  per standard deviation; for an indicator, per SD of the 0/1 column).
* **Hosmer-Lemeshow.** Two groupings (``method``). ``quantile``: deciles of predicted
  risk cut at the quantiles of the predicted probabilities (linear interpolation,
  intervals closed on the right, the lowest included: R's
  ``ResourceSelection::hoslem.test``); tied probabilities stay in one group, so tied
  quantiles merge groups. ``spss`` (what the study's SPSS computed): cases sorted by
  predicted probability and loaded into about ten groups of equal size, ties never split
  (:func:`equal_size_groups`). Either way df = realised groups - 2 (logged when fewer).
  HL = sum over groups (O - E)^2 / (E (1 - E / n)), chi-square with g - 2 df.
* **Fit figures.** McFadden R2 = 1 - LL / LL0; Cox-Snell R2 = 1 - exp(2 (LL0 - LL) / n);
  Nagelkerke R2 = Cox-Snell / (1 - exp(2 LL0 / n)); AUC (scikit-learn); the
  classification table at the cut-off 0.5.
* **Collinearity.** VIF of every continuous predictor from the auxiliary regressions on
  the other predictors (statsmodels ``variance_inflation_factor`` on the design with a
  constant); for the categorical predictor the generalised VIF of Fox & Monette (1992,
  JASA 87:178) over its indicators, compared with the threshold as GVIF^(1/df)
  (``gvif_per_df``; equal to the VIF for one df).
* **Bad input** raises :class:`ModelInputError` (never a statsmodels traceback): no
  abandoned (or no used) parcels, missing values, a constant predictor, a reference class
  absent from the data, complete or quasi-complete separation (found with the linear
  program of Konis 2007 before fitting, the predictors involved named), no convergence.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from karstflow.conditions import RuleError, rule_mask
from karstflow.drivers import DRIVER_COLUMNS

log = logging.getLogger(__name__)

__all__ = [
    "ASPECT_CLASS_NAMES",
    "COEFFICIENT_COLUMNS",
    "LogitModel",
    "ModelInputError",
    "check_model_input",
    "design_matrix",
    "equal_size_groups",
    "fit_abandonment_model",
    "hosmer_lemeshow",
    "reduce_collinearity",
    "risk_groups",
    "significant_predictors",
    "vif_table",
]

#: Names of the aspect classes (karstflow.terrain.aspect_class codes).
ASPECT_CLASS_NAMES: dict[int, str] = {0: "flat", 1: "shady", 2: "semi-shady", 3: "semi-sunny", 4: "sunny"}

#: Columns of model/logit_coefficients.csv.
COEFFICIENT_COLUMNS = ("term", "B", "SE", "Wald", "df", "p", "exp_B", "ci_low", "ci_high", "B_std")

#: Class names per categorical predictor (labels of the indicator columns).
CATEGORY_NAMES: dict[str, dict[int, str]] = {"x3_aspect_class": ASPECT_CLASS_NAMES}


class ModelInputError(ValueError):
    """Drivers and outcomes that a logit model cannot be (meaningfully) fitted to."""


def _some(values: Iterable[Any], k: int = 5) -> str:
    vals = list(values)
    head = ", ".join(str(v) for v in vals[:k])
    return head + (f", ... ({len(vals)} in all)" if len(vals) > k else "")


def indicator_name(column: str, code: int) -> str:
    """Name of the 0/1 column of class ``code`` of a categorical predictor."""
    name = CATEGORY_NAMES.get(column, {}).get(int(code))
    return f"{column}[{int(code)} {name}]" if name else f"{column}[{int(code)}]"


# --------------------------------------------------------------------------------------
# design and input checks
# --------------------------------------------------------------------------------------


def design_matrix(
    drivers: pd.DataFrame,
    predictors: Sequence[str],
    *,
    categorical: Sequence[str] = ("x3_aspect_class",),
    reference_class: int = 0,
    interaction_terms: Sequence[str] = (),
    constant: bool = True,
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Design matrix of ``predictors`` and, per predictor, its design columns.

    Categorical predictors become indicators of every class present but the reference;
    each of ``interaction_terms`` (a rule expression, :mod:`karstflow.conditions`) a 0/1
    column named by its text. The constant, when asked for, is the last column (``const``).
    """
    cols: dict[str, np.ndarray] = {}
    groups: dict[str, list[str]] = {}
    for p in predictors:
        if p in categorical:
            codes = drivers[p].to_numpy()
            present = sorted(int(c) for c in pd.unique(codes) if int(c) != int(reference_class))
            groups[p] = []
            for c in present:
                name = indicator_name(p, c)
                cols[name] = (codes == c).astype(np.float64)
                groups[p].append(name)
        else:
            cols[p] = drivers[p].to_numpy(dtype=np.float64)
            groups[p] = [p]
    if interaction_terms:
        for term in interaction_terms:
            cols[term] = rule_mask(drivers, term).astype(np.float64)
            groups[term] = [term]
    x = pd.DataFrame(cols, index=drivers.index)
    if constant:
        x["const"] = 1.0
    return x, groups


def check_model_input(
    drivers: pd.DataFrame,
    outcome: str,
    predictors: Sequence[str],
    *,
    categorical: Sequence[str] = ("x3_aspect_class",),
    reference_class: int = 0,
    id_column: str = "parcel_id",
    source: str = "drivers",
    interaction_terms: Sequence[str] = (),
) -> None:
    """Raise :class:`ModelInputError` for input no logit model should be fitted to.

    ``source`` names the table in the messages (e.g. the CSV path).
    """
    missing = [c for c in [outcome, *predictors] if c not in drivers.columns]
    if missing:
        raise ModelInputError(f"{source}: expected column(s) {missing}, found {list(drivers.columns)}")
    if not predictors:
        raise ModelInputError(
            f"{source}: no predictors to fit (config key model.predictors is empty or all were dropped)"
        )
    ids = drivers[id_column] if id_column in drivers.columns else pd.Series(drivers.index, index=drivers.index)
    y = drivers[outcome]
    if y.isna().any():
        raise ModelInputError(
            f"{source}: {outcome} is missing for {int(y.isna().sum())} parcel(s) ({id_column} {_some(ids[y.isna()])})"
        )
    bad = ~y.isin([0, 1])
    if bad.any():
        raise ModelInputError(
            f"{source}: {outcome} must be 0 (used) or 1 (abandoned), found {_some(pd.unique(y[bad]))}"
        )
    n, events = len(y), int(y.sum())
    if events == 0:
        raise ModelInputError(
            f"{source}: no abandoned parcels ({outcome} = 1 for 0 of {n}); the logit model needs both "
            "abandoned and used parcels"
        )
    if events == n:
        raise ModelInputError(
            f"{source}: every parcel is abandoned ({outcome} = 1 for {n} of {n}); the logit model needs "
            "both abandoned and used parcels"
        )
    for p in predictors:
        v = drivers[p]
        if v.isna().any():
            raise ModelInputError(
                f"{source}: {p} is missing for {int(v.isna().sum())} parcel(s) ({id_column} {_some(ids[v.isna()])})"
            )
        if not np.isfinite(v.to_numpy(dtype=np.float64)).all():
            raise ModelInputError(
                f"{source}: {p} is not finite for some parcels ({id_column} "
                f"{_some(ids[~np.isfinite(v.to_numpy(dtype=float))])})"
            )
        if v.nunique() < 2:
            raise ModelInputError(
                f"{source}: predictor {p} is constant ({float(v.iloc[0])!r} for all {n} parcels), so its coefficient "
                "is not identifiable; remove it from config key model.predictors"
            )
        if p in categorical:
            codes = set(int(c) for c in pd.unique(v))
            if int(reference_class) not in codes:
                raise ModelInputError(
                    f"{source}: the reference class {reference_class} of {p} has no parcels (classes found: "
                    f"{sorted(codes)}); set config key model.aspect_reference to one of them"
                )
    for term in interaction_terms:
        try:
            m = rule_mask(drivers, term)
        except RuleError as err:
            raise ModelInputError(f"config key model.interaction_terms: {err}") from err
        if m.all() or not m.any():
            raise ModelInputError(
                f"config key model.interaction_terms: {term!r} holds for {int(m.sum())} of {len(m)} parcels; "
                "a term that holds for all or none is constant"
            )
    x, groups = design_matrix(
        drivers,
        predictors,
        categorical=categorical,
        reference_class=reference_class,
        interaction_terms=interaction_terms,
    )
    rank = np.linalg.matrix_rank(_standardised(x.to_numpy()))
    if rank < x.shape[1]:
        raise ModelInputError(
            f"{source}: the design matrix is rank deficient ({rank} of {x.shape[1]} columns independent): some "
            f"predictors are exact linear combinations of others ({', '.join(x.columns[:-1])}); drop one of them"
        )
    sep = separation(x, y.to_numpy())
    if sep is not None:
        kind, involved = sep
        terms = sorted({p for p, cols in groups.items() for c in cols if c in involved})
        hint = _single_separator(drivers, y, predictors, categorical)
        raise ModelInputError(
            f"{source}: {kind} separation: a combination of {', '.join(terms) or 'the constant'} predicts "
            f"{outcome} {'perfectly' if kind == 'complete' else 'perfectly for a subset of parcels'}"
            f"{' (' + hint + ')' if hint else ''}, so maximum-likelihood coefficients do not exist (they run "
            "to infinity). Remove or coarsen the predictor(s), or use more parcels"
        )


def _standardised(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=0)
    centre = np.where(sd > 0, x.mean(axis=0), 0.0)
    return (x - centre) / np.where(sd > 0, sd, 1.0)


def separation(x: pd.DataFrame, y: np.ndarray, tol: float = 1e-7) -> tuple[str, list[str]] | None:
    """Complete or quasi-complete separation of ``y`` by the columns of ``x``, or None.

    The linear program of Konis (2007, D.Phil. thesis, Oxford; R package
    safeBinaryRegression): with s_i = 2 y_i - 1, maximise sum_i s_i x_i'b subject to
    s_i x_i'b >= 0 and -1 <= b <= 1. The optimum is positive exactly when some direction b
    separates the outcomes (maximum-likelihood estimates then do not exist). Returns the
    kind ("complete" when every s_i x_i'b > 0, else "quasi-complete") and the columns
    with a non-zero coefficient in the separating direction.
    """
    xs = _standardised(x.to_numpy(dtype=np.float64))
    if "const" in x.columns:
        xs[:, list(x.columns).index("const")] = 1.0
    s = 2.0 * np.asarray(y, dtype=np.float64) - 1.0
    a = xs * s[:, None]
    res = optimize.linprog(
        c=-a.sum(axis=0), A_ub=-a, b_ub=np.zeros(len(a)), bounds=[(-1.0, 1.0)] * a.shape[1], method="highs"
    )
    if res.status != 0 or -res.fun <= tol * len(a):
        return None
    b = res.x
    margin = a @ b
    kind = "complete" if (margin > tol).all() else "quasi-complete"
    involved = [c for c, v in zip(x.columns, b, strict=True) if abs(v) > 1e-6 and c != "const"]
    return kind, involved


def _single_separator(
    drivers: pd.DataFrame, y: pd.Series, predictors: Sequence[str], categorical: Sequence[str]
) -> str:
    """A plain-words description of one predictor that separates on its own, if any."""
    y = y.astype(int)
    for p in predictors:
        v = drivers[p]
        if p in categorical:
            for code, grp in y.groupby(v):
                if grp.nunique() == 1:
                    return f"every parcel of {p} = {code} has outcome {int(grp.iloc[0])}"
            continue
        lo1, hi1 = v[y == 1].min(), v[y == 1].max()
        lo0, hi0 = v[y == 0].min(), v[y == 0].max()
        if hi0 < lo1:
            return f"{p} > {hi0:g} exactly for the abandoned parcels"
        if hi1 < lo0:
            return f"{p} < {lo0:g} exactly for the abandoned parcels"
        if hi0 <= lo1 or hi1 <= lo0:
            return f"{p} splits the outcomes, overlapping only at one value"
    return ""


# --------------------------------------------------------------------------------------
# Hosmer-Lemeshow
# --------------------------------------------------------------------------------------


#: Ways of forming the Hosmer-Lemeshow groups (``method`` of :func:`risk_groups`).
HL_METHODS = ("quantile", "spss")


def _check_yp(y: Any, p: Any, groups: int) -> tuple[np.ndarray, np.ndarray]:
    yv = np.asarray(y, dtype=np.float64).ravel()
    pv = np.asarray(p, dtype=np.float64).ravel()
    if yv.shape != pv.shape:
        raise ValueError(f"y and p must have the same length, found {yv.size} and {pv.size}")
    if yv.size == 0:
        raise ValueError("y and p are empty")
    if not np.isin(yv, (0.0, 1.0)).all():
        raise ValueError("y must hold 0/1 outcomes")
    if not (np.isfinite(pv).all() and (pv >= 0).all() and (pv <= 1).all()):
        raise ValueError("p must hold probabilities in [0, 1]")
    if int(groups) < 3:
        raise ValueError(f"groups must be >= 3 (df = groups - 2), found {groups!r}")
    return yv, pv


def equal_size_groups(p: Any, groups: int = 10) -> np.ndarray:
    """Group number (0 = lowest risk) of each case: SPSS's "deciles of risk" of equal size.

    Cases are sorted by predicted probability and loaded into groups of a target size
    M = [n / groups + 0.5]; cases with the same predicted probability (a block) are never
    split. A block joins the current group, holding c cases, when c < M and
    c + [m / 2] <= M (m the block's size), else it starts the next group; the last group
    takes every remaining block, and a last group of no more than [0.05 n] cases
    (half the target) is merged into the one before. IBM SPSS Statistics, LOGISTIC
    REGRESSION (Hosmer-Lemeshow "Contingency Table": cases sorted by predicted
    probability, about ten groups of about equal size, ties never split; IBM Knowledge
    Center, "Tests of Model Fit", SSLVMB_24.0.0/spss/tutorials/log_loan_fit.html); the
    loading rule as published for the same test by SAS (PROC LOGISTIC, "The
    Hosmer-Lemeshow Goodness-of-Fit Test", SAS/STAT 14.1 User's Guide) and by Hosmer &
    Lemeshow (2000, Applied Logistic Regression, 2nd ed., sec. 5.2.2).
    """
    pv = np.asarray(p, dtype=np.float64).ravel()
    n = pv.size
    target = int(math.floor(n / int(groups) + 0.5))
    order = np.argsort(pv, kind="mergesort")
    values, sizes = np.unique(pv[order], return_counts=True)
    block_group = np.zeros(len(values), dtype=np.int64)
    g, c = 0, 0
    for b, m in enumerate(sizes):
        if c > 0 and g < int(groups) - 1 and not (c < target and c + m // 2 <= target):
            g, c = g + 1, 0
        block_group[b] = g
        c += int(m)
    if g > 0 and c <= int(math.floor(n / (2 * int(groups)))):
        block_group[block_group == g] = g - 1
    out = np.empty(n, dtype=np.int64)
    out[order] = np.repeat(block_group, sizes)
    return out


def risk_groups(y: Any, p: Any, groups: int = 10, *, method: str = "quantile") -> pd.DataFrame:
    """Groups of predicted risk (see the module notes) with observed and expected events.

    ``method`` ``quantile`` (default): groups cut at the quantiles of p (R's
    ``ResourceSelection::hoslem.test``); ``spss``: groups of equal size in the order of p
    (:func:`equal_size_groups`, as SPSS LOGISTIC REGRESSION forms them). Returns one row
    per non-empty group: ``group`` (1 = lowest risk), ``p_low``/``p_high`` (its interval
    of predicted probability: the quantile breaks, or for ``spss`` the smallest and
    largest p in the group), ``n``, ``observed`` events, ``expected`` events (sum of p),
    ``mean_predicted``, ``observed_rate``.
    """
    yv, pv = _check_yp(y, p, groups)
    if method not in HL_METHODS:
        raise ValueError(f"Hosmer-Lemeshow grouping must be one of {HL_METHODS}, found {method!r}")
    if method == "spss":
        g = equal_size_groups(pv, groups)
        df = pd.DataFrame({"g": g, "y": yv, "p": pv})
        agg = df.groupby("g").agg(
            n=("y", "size"),
            observed=("y", "sum"),
            expected=("p", "sum"),
            mean_predicted=("p", "mean"),
            p_low=("p", "min"),
            p_high=("p", "max"),
        )
    else:
        breaks = np.unique(np.quantile(pv, np.linspace(0.0, 1.0, int(groups) + 1)))
        # (b_k, b_k+1], the first closed on the left too: index = interior breaks below p
        g = np.searchsorted(breaks[1:-1], pv, side="left")
        df = pd.DataFrame({"g": g, "y": yv, "p": pv})
        agg = df.groupby("g").agg(
            n=("y", "size"), observed=("y", "sum"), expected=("p", "sum"), mean_predicted=("p", "mean")
        )
        agg["p_low"] = breaks[agg.index.to_numpy()]
        agg["p_high"] = breaks[np.minimum(agg.index.to_numpy() + 1, len(breaks) - 1)]
    agg["observed_rate"] = agg["observed"] / agg["n"]
    agg = agg.reset_index(drop=True)
    agg.insert(0, "group", np.arange(1, len(agg) + 1))
    return agg[["group", "p_low", "p_high", "n", "observed", "expected", "mean_predicted", "observed_rate"]]


def hosmer_lemeshow(y: Any, p: Any, groups: int = 10, *, method: str = "quantile") -> tuple[float, int, float]:
    """Hosmer-Lemeshow goodness-of-fit test over deciles (``groups``) of predicted risk.

    Returns (statistic, df, p-value) with df = realised groups - 2; p > 0.05 is read as an
    adequate fit. ``method`` forms the groups (:func:`risk_groups`: ``quantile`` or
    ``spss``).
    """
    tab = risk_groups(y, p, groups, method=method)
    if len(tab) < int(groups):
        log.warning(
            "Hosmer-Lemeshow: tied predicted probabilities leave %d of %d groups; df = %d",
            len(tab),
            groups,
            len(tab) - 2,
        )
    if len(tab) < 3:
        raise ValueError(f"Hosmer-Lemeshow needs >= 3 distinct risk groups, the predictions give {len(tab)}")
    o = tab["observed"].to_numpy()
    e = tab["expected"].to_numpy()
    n = tab["n"].to_numpy()
    denom = e * (1.0 - e / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(denom > 0, (o - e) ** 2 / denom, np.where((o - e) == 0, 0.0, np.inf))
    stat = float(terms.sum())
    dof = int(len(tab) - 2)
    return stat, dof, float(stats.chi2.sf(stat, dof))


# --------------------------------------------------------------------------------------
# collinearity
# --------------------------------------------------------------------------------------


def vif_table(
    drivers: pd.DataFrame,
    predictors: Sequence[str],
    *,
    categorical: Sequence[str] = ("x3_aspect_class",),
    reference_class: int = 0,
) -> pd.DataFrame:
    """VIF per predictor (GVIF for categorical ones): columns predictor, df, vif, gvif_per_df."""
    from statsmodels.stats.outliers_influence import variance_inflation_factor

    x, groups = design_matrix(drivers, predictors, categorical=categorical, reference_class=reference_class)
    xv = x.to_numpy(dtype=np.float64)
    cols = list(x.columns)
    rows = []
    # Fox & Monette's GVIF: det(R11) det(R22) / det(R) over the correlation matrix of the
    # non-constant design columns, block 1 = the predictor's columns.
    r = np.corrcoef(xv[:, :-1], rowvar=False) if xv.shape[1] > 2 else None
    for p in predictors:
        idx = [cols.index(c) for c in groups[p]]
        k = len(idx)
        if k == 1:
            with np.errstate(divide="ignore"):
                v = float(variance_inflation_factor(xv, idx[0])) if len(predictors) > 1 else 1.0
        elif k == 0:
            v = float("nan")
        else:
            if r is None or r.shape[0] == k:
                v = 1.0
            else:
                rest = [j for j in range(r.shape[0]) if j not in idx]
                det_all = np.linalg.det(r)
                v = (
                    float(np.linalg.det(r[np.ix_(idx, idx)]) * np.linalg.det(r[np.ix_(rest, rest)]) / det_all)
                    if det_all > 0
                    else float("inf")
                )
        rows.append({"predictor": p, "df": k, "vif": v, "gvif_per_df": v ** (1.0 / k) if k else float("nan")})
    return pd.DataFrame(rows, columns=["predictor", "df", "vif", "gvif_per_df"])


def reduce_collinearity(
    drivers: pd.DataFrame,
    predictors: Sequence[str],
    *,
    threshold: float,
    action: str = "warn",
    categorical: Sequence[str] = ("x3_aspect_class",),
    reference_class: int = 0,
) -> tuple[list[str], pd.DataFrame]:
    """Apply the configured collinearity action; returns (kept predictors, VIF table).

    ``warn`` keeps every predictor and logs those whose ``gvif_per_df`` exceeds
    ``threshold``; ``drop`` removes the predictor with the largest ``gvif_per_df`` above
    the threshold, recomputes, and repeats until none exceeds it (each step logged). The
    table holds the VIFs of all initial predictors (``vif_initial``) and, for kept ones,
    their final VIFs (``vif``, ``gvif_per_df``), with ``dropped`` (0/1) and
    ``drop_step`` (1 = dropped first).
    """
    if action not in ("warn", "drop"):
        raise ValueError(f"collinearity action must be 'warn' or 'drop', found {action!r}")
    kept = list(predictors)
    first = vif_table(drivers, kept, categorical=categorical, reference_class=reference_class)
    table = first.rename(columns={"vif": "vif_initial", "gvif_per_df": "gvif_per_df_initial"})
    step: dict[str, int] = {}
    current = first
    if action == "drop":
        while len(kept) > 1:
            worst = current.sort_values("gvif_per_df", ascending=False).iloc[0]
            if not worst["gvif_per_df"] > threshold:
                break
            kept.remove(worst["predictor"])
            step[worst["predictor"]] = len(step) + 1
            log.warning(
                "collinearity: dropping %s (VIF %.2f, GVIF^(1/df) %.2f > %g) and refitting",
                worst["predictor"],
                worst["vif"],
                worst["gvif_per_df"],
                threshold,
            )
            current = vif_table(drivers, kept, categorical=categorical, reference_class=reference_class)
    else:
        high = current[current["gvif_per_df"] > threshold]
        for row in high.itertuples():
            log.warning(
                "collinearity: %s has VIF %.2f (GVIF^(1/df) %.2f) above %g; kept (action warn)",
                row.predictor,
                row.vif,
                row.gvif_per_df,
                threshold,
            )
    final = current.set_index("predictor")
    table["vif"] = table["predictor"].map(final["vif"])
    table["gvif_per_df"] = table["predictor"].map(final["gvif_per_df"])
    table["dropped"] = table["predictor"].isin(step).astype(int)
    table["drop_step"] = table["predictor"].map(step).astype("Int64")
    return kept, table[
        ["predictor", "df", "vif", "gvif_per_df", "vif_initial", "gvif_per_df_initial", "dropped", "drop_step"]
    ]


# --------------------------------------------------------------------------------------
# the logit model
# --------------------------------------------------------------------------------------


@dataclass
class LogitModel:
    """A fitted abandonment model."""

    coefficients: pd.DataFrame
    fit: dict[str, Any]
    predicted: pd.Series
    risk_groups: pd.DataFrame
    design: pd.DataFrame
    term_groups: dict[str, list[str]]
    result: Any = field(repr=False)

    def term_p(self) -> dict[str, float]:
        """p-value per predictor and interaction term (the joint test for a categorical one)."""
        tab = self.coefficients.set_index("term")
        return {p: float(tab["p"].loc[p]) for p in self.term_groups}


def fit_abandonment_model(
    drivers: pd.DataFrame,
    *,
    outcome: str = "abandoned",
    predictors: Sequence[str] = DRIVER_COLUMNS,
    categorical: Sequence[str] = ("x3_aspect_class",),
    reference_class: int = 0,
    ci_level: float = 0.95,
    hl_groups: int = 10,
    hl_method: str = "quantile",
    cutoff: float = 0.5,
    maxiter: int = 100,
    id_column: str = "parcel_id",
    source: str = "drivers",
    interaction_terms: Sequence[str] = (),
) -> LogitModel:
    """Fit the binary logit of ``outcome`` on ``predictors`` (see the module notes).

    ``interaction_terms`` (rule expressions) enter as extra 0/1 terms after the predictors.
    """
    from threadpoolctl import threadpool_limits

    # A few thousand rows by a dozen columns: BLAS threads cost more than they save
    # (measured 4x slower with 2 threads on a busy 2-core machine).
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit_model(
            drivers,
            outcome=outcome,
            predictors=predictors,
            categorical=categorical,
            reference_class=reference_class,
            ci_level=ci_level,
            hl_groups=hl_groups,
            hl_method=hl_method,
            cutoff=cutoff,
            maxiter=maxiter,
            id_column=id_column,
            source=source,
            interaction_terms=interaction_terms,
        )


def _fit_model(
    drivers: pd.DataFrame,
    *,
    outcome: str,
    predictors: Sequence[str],
    categorical: Sequence[str],
    reference_class: int,
    ci_level: float,
    hl_groups: int,
    hl_method: str,
    cutoff: float,
    maxiter: int,
    id_column: str,
    source: str,
    interaction_terms: Sequence[str],
) -> LogitModel:
    import statsmodels.api as sm
    from sklearn.metrics import roc_auc_score
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    if not 0 < ci_level < 1:
        raise ValueError(f"ci_level must be in (0, 1), found {ci_level!r}")
    predictors = list(predictors)
    categorical = [c for c in categorical if c in predictors]
    interaction_terms = list(interaction_terms)
    check_model_input(
        drivers,
        outcome,
        predictors,
        categorical=categorical,
        reference_class=reference_class,
        id_column=id_column,
        source=source,
        interaction_terms=interaction_terms,
    )
    y = drivers[outcome].astype(int)
    x, groups = design_matrix(
        drivers,
        predictors,
        categorical=categorical,
        reference_class=reference_class,
        interaction_terms=interaction_terms,
    )
    n, events = len(y), int(y.sum())
    epv = min(events, n - events) / (x.shape[1] - 1)
    if epv < 10:
        log.warning(
            "model: %.1f events per predictor column (%d of %d parcels abandoned, %d columns); below 10 "
            "the estimates are biased away from zero (Peduzzi et al. 1996)",
            epv,
            events,
            n,
            x.shape[1] - 1,
        )
    for p, cols in groups.items():
        if p in categorical:
            absent = sorted(set(CATEGORY_NAMES.get(p, {})) - {int(c) for c in pd.unique(drivers[p])})
            if absent:
                log.warning("model: %s has no parcels in class(es) %s; the joint test has %d df", p, absent, len(cols))

    with warnings.catch_warnings():
        warnings.simplefilter("error", PerfectSeparationWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            res = sm.Logit(y.to_numpy(), x).fit(method="newton", maxiter=maxiter, disp=0)
        except (PerfectSeparationWarning, np.linalg.LinAlgError) as err:
            raise ModelInputError(
                f"{source}: the logit fit failed ({err}); check the predictors for separation or collinearity"
            ) from err
    if not res.mle_retvals.get("converged", False):
        raise ModelInputError(
            f"{source}: the logit fit did not converge in {maxiter} Newton iterations; the drivers may nearly "
            "separate the outcomes or be badly scaled"
        )
    b = res.params
    cov = res.cov_params()
    se = res.bse
    z = stats.norm.ppf(0.5 + ci_level / 2)
    sd = x.std(ddof=1)
    rows = []
    for p in [*predictors, *interaction_terms]:
        cols = groups[p]
        if p in categorical:
            bb = b[cols].to_numpy()
            vv = cov.loc[cols, cols].to_numpy()
            wald = float(bb @ np.linalg.solve(vv, bb))
            rows.append(
                {
                    "term": p,
                    "B": np.nan,
                    "SE": np.nan,
                    "Wald": wald,
                    "df": len(cols),
                    "p": float(stats.chi2.sf(wald, len(cols))),
                    "exp_B": np.nan,
                    "ci_low": np.nan,
                    "ci_high": np.nan,
                    "B_std": np.nan,
                }
            )
        for c in cols:
            rows.append(_term_row(c, b[c], se[c], z, sd[c]))
    rows.append(_term_row("const", b["const"], se["const"], z, np.nan))
    coef = pd.DataFrame(rows, columns=list(COEFFICIENT_COLUMNS))

    prob = pd.Series(np.asarray(res.predict(x), dtype=np.float64), index=drivers.index, name="p_abandoned")
    ll, ll0 = float(res.llf), float(res.llnull)
    cox_snell = 1.0 - math.exp(2.0 * (ll0 - ll) / n)
    nagelkerke = cox_snell / (1.0 - math.exp(2.0 * ll0 / n))
    hl_stat, hl_df, hl_p = hosmer_lemeshow(y, prob, hl_groups, method=hl_method)
    pred = (prob.to_numpy() >= cutoff).astype(int)
    yv = y.to_numpy()
    tn, fp = int(((yv == 0) & (pred == 0)).sum()), int(((yv == 0) & (pred == 1)).sum())
    fn, tp = int(((yv == 1) & (pred == 0)).sum()), int(((yv == 1) & (pred == 1)).sum())
    fit = {
        "n": int(n),
        "events": events,
        "non_events": int(n - events),
        "event_rate": events / n,
        "predictors": predictors,
        "interaction_terms": interaction_terms,
        "design_columns": [c for c in x.columns],
        "aspect_reference": ASPECT_CLASS_NAMES.get(int(reference_class), str(reference_class)) if categorical else None,
        "converged": True,
        "iterations": int(res.mle_retvals.get("iterations", -1)),
        "log_likelihood": ll,
        "log_likelihood_null": ll0,
        "minus_2_log_likelihood": -2.0 * ll,
        "lr_chi2": float(res.llr),
        "lr_df": int(res.df_model),
        "lr_p": float(res.llr_pvalue),
        "aic": float(res.aic),
        "bic": float(res.bic),
        "mcfadden_r2": 1.0 - ll / ll0,
        "cox_snell_r2": cox_snell,
        "nagelkerke_r2": nagelkerke,
        "auc": float(roc_auc_score(yv, prob.to_numpy())),
        "classification_table": {
            "cutoff": float(cutoff),
            "observed_used_predicted_used": tn,
            "observed_used_predicted_abandoned": fp,
            "observed_abandoned_predicted_used": fn,
            "observed_abandoned_predicted_abandoned": tp,
            "percent_correct_used": 100.0 * tn / max(tn + fp, 1),
            "percent_correct_abandoned": 100.0 * tp / max(tp + fn, 1),
            "percent_correct_overall": 100.0 * (tn + tp) / n,
        },
        "hosmer_lemeshow": {
            "statistic": hl_stat,
            "df": hl_df,
            "p": hl_p,
            "groups": int(hl_groups),
            "grouping": hl_method,
            "adequate_fit_at_0.05": bool(hl_p > 0.05),
        },
        "ci_level": float(ci_level),
        "ci_of": "exp_B",
        "events_per_predictor_column": epv,
    }
    return LogitModel(
        coefficients=coef,
        fit=fit,
        predicted=prob,
        risk_groups=risk_groups(y, prob, hl_groups, method=hl_method),
        design=x,
        term_groups=groups,
        result=res,
    )


def _term_row(term: str, b: float, se: float, z: float, sd: float) -> dict[str, Any]:
    wald = (b / se) ** 2
    return {
        "term": term,
        "B": float(b),
        "SE": float(se),
        "Wald": float(wald),
        "df": 1,
        "p": float(stats.chi2.sf(wald, 1)),
        "exp_B": math.exp(b),
        "ci_low": math.exp(b - z * se),
        "ci_high": math.exp(b + z * se),
        "B_std": float(b * sd),
    }


def significant_predictors(model: LogitModel, alpha: float = 0.05) -> list[str]:
    """Predictors whose term (joint test for a categorical one) has p < ``alpha``."""
    return [p for p, pv in model.term_p().items() if pv < alpha and p not in model.fit.get("interaction_terms", [])]


def significant_from_table(coefficients: pd.DataFrame, predictors: Sequence[str], alpha: float = 0.05) -> list[str]:
    """As :func:`significant_predictors`, from a logit_coefficients.csv table."""
    tab = coefficients.set_index("term")
    return [p for p in predictors if p in tab.index and float(tab["p"].loc[p]) < alpha]


def read_driver_table(
    table: pd.DataFrame, *, outcome: str = "abandoned", source: str = "parcel_drivers.csv"
) -> pd.DataFrame:
    """The parcels of a driver table that have an outcome, ``outcome`` as int.

    Parcels the abandonment stage could not evaluate (empty outcome) are left out and
    counted in ``attrs["not_evaluated"]`` (logged).
    """
    missing = [c for c in ("parcel_id", outcome, *DRIVER_COLUMNS) if c not in table.columns]
    if missing:
        raise ModelInputError(f"{source}: expected column(s) {missing}, found {list(table.columns)}")
    y = pd.to_numeric(table[outcome], errors="coerce")
    keep = y.notna()
    out = table.loc[keep].reset_index(drop=True).copy()
    out[outcome] = y[keep].astype(int).to_numpy()
    out.attrs["not_evaluated"] = int((~keep).sum())
    if (~keep).any():
        log.warning(
            "%s: %d parcel(s) without an outcome (not evaluated) are left out of the model", source, int((~keep).sum())
        )
    return out


def model_summary(
    fit: dict[str, Any],
    rules: dict[str, Any],
    coefficients: pd.DataFrame,
    drivers: dict[str, Any],
    figures: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Headline figures of the driver and model stages (model/model.json)."""
    hl = fit["hosmer_lemeshow"]
    tab = coefficients.set_index("term")
    out: dict[str, Any] = {
        "parcels": drivers.get("parcels"),
        "parcels_modelled": fit["n"],
        "abandoned": fit["events"],
        "parcels_not_evaluated": fit.get("parcels_not_evaluated", 0),
        "x4_off_network": drivers.get("x4_off_network"),
        "x5_off_network": drivers.get("x5_off_network"),
        "predictors": len(fit["predictors"]),
        "dropped_for_collinearity": ";".join(fit.get("collinearity", {}).get("dropped", [])),
        "max_gvif_per_df": fit.get("collinearity", {}).get("max_gvif_per_df"),
        "significant_at_0.05": ";".join(
            p for p in fit["predictors"] if p in tab.index and float(tab.loc[p, "p"]) < 0.05
        ),
        "mcfadden_r2": fit["mcfadden_r2"],
        "nagelkerke_r2": fit["nagelkerke_r2"],
        "auc": fit["auc"],
        "percent_correct": fit["classification_table"]["percent_correct_overall"],
        "hosmer_lemeshow_statistic": hl["statistic"],
        "hosmer_lemeshow_df": hl["df"],
        "hosmer_lemeshow_p": hl["p"],
        "hosmer_lemeshow_grouping": hl.get("grouping", "quantile"),
        "label_error_method": fit.get("label_error", {}).get("method", "none"),
        "label_sensitivity": fit.get("label_error", {}).get("sensitivity"),
        "label_specificity": fit.get("label_error", {}).get("specificity"),
        "rules_source": rules.get("source"),
        "rules": len(rules.get("rules") or []),
        "rule_texts": ";".join(r["rule"] for r in rules.get("rules") or []),
    }
    if figures:
        out["figures"] = dict(figures)
    return out


# --------------------------------------------------------------------------------------
# figures (matplotlib, Agg): pure functions returning a Figure; scripts save them
# --------------------------------------------------------------------------------------


def coefficient_figure(coefficients: pd.DataFrame, *, ci_level: float = 0.95) -> Any:
    """Odds ratios with their confidence intervals (log axis), the constant left out.

    Continuous drivers per standard deviation (exp(B x SD), so that metres and hectares
    compare), class indicators and 0/1 terms per class against the reference.
    """
    from karstflow.plotting import plt

    tab = coefficients[(coefficients["term"] != "const") & coefficients["B"].notna()].iloc[::-1].copy()
    z = stats.norm.ppf(0.5 + ci_level / 2)
    indicator = tab["term"].str.contains(r"\[", regex=True) | (
        tab["term"].str.contains(" ") & ~tab["term"].str.contains(r"\[", regex=True)
    )
    scale = np.where(indicator | (tab["B"] == 0), 1.0, tab["B_std"] / tab["B"].where(tab["B"] != 0, 1.0))
    centre = np.exp(tab["B"] * scale)
    low = np.exp((tab["B"] - z * tab["SE"]) * scale)
    high = np.exp((tab["B"] + z * tab["SE"]) * scale)
    lo_, hi_ = np.minimum(low, high), np.maximum(low, high)
    labels = [t if ind else f"{t} (per SD)" for t, ind in zip(tab["term"], indicator, strict=True)]
    fig, ax = plt.subplots(figsize=(7.8, 0.38 * len(tab) + 1.5))
    yy = np.arange(len(tab))
    sig = tab["p"].to_numpy() < 0.05
    ax.errorbar(centre, yy, xerr=[centre - lo_, hi_ - centre], fmt="none", ecolor="0.45", capsize=2)
    ax.scatter(centre, yy, c=np.where(sig, "#c0392b", "#7f8c8d"), zorder=3, s=22)
    ax.axvline(1.0, color="0.2", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yticks(yy, labels)
    ax.set_xlabel(f"odds ratio of abandonment with {100 * ci_level:g} % CI (red: p < 0.05)")
    ax.set_title("Abandonment logit: odds ratios")
    fig.tight_layout()
    return fig


def calibration_figure(groups: pd.DataFrame, hl: dict[str, Any] | None = None) -> Any:
    """Observed vs mean predicted abandonment per risk group (the Hosmer-Lemeshow groups)."""
    from karstflow.plotting import plt

    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--", label="perfect calibration")
    n = groups["n"].to_numpy(dtype=float)
    rate = groups["observed_rate"].to_numpy(dtype=float)
    # Wilson score interval: stays inside [0, 1] for groups with no or only abandoned parcels
    zz = 1.96
    centre = (rate + zz**2 / (2 * n)) / (1 + zz**2 / n)
    half = zz * np.sqrt(rate * (1 - rate) / n + zz**2 / (4 * n**2)) / (1 + zz**2 / n)
    ax.errorbar(
        groups["mean_predicted"],
        rate,
        yerr=[rate - (centre - half), centre + half - rate],
        fmt="o",
        color="#2c3e50",
        capsize=2,
        label="risk group (95 % Wilson CI)",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted probability of abandonment")
    ax.set_ylabel("observed share abandoned")
    title = "Calibration by group of predicted risk"
    if hl:
        title += f"\nHosmer-Lemeshow {hl['statistic']:.2f}, df {hl['df']}, p = {hl['p']:.3f}"
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def roc_figure(y: Any, p: Any) -> Any:
    """ROC curve of the predicted probabilities, with the AUC."""
    from sklearn.metrics import roc_auc_score, roc_curve

    from karstflow.plotting import plt

    fpr, tpr, _ = roc_curve(np.asarray(y), np.asarray(p))
    auc = roc_auc_score(np.asarray(y), np.asarray(p))
    fig, ax = plt.subplots(figsize=(5.0, 5.0))
    ax.plot(fpr, tpr, color="#c0392b", lw=1.5, label=f"logit (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--", label="chance")
    ax.set_xlabel("false positive rate (used parcels called abandoned)")
    ax.set_ylabel("true positive rate (abandoned parcels found)")
    ax.set_title("ROC of the abandonment logit")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def rule_heatmap_figure(
    drivers: pd.DataFrame, rules: dict[str, Any], *, outcome: str = "abandoned", bins: int = 5
) -> Any:
    """Abandonment rate over quantile bins of each rule's two drivers (parcel counts in
    brackets); dashed lines mark the rule's thresholds."""
    from karstflow.plotting import plt

    entries = [r for r in (rules.get("rules") or []) if len(r.get("variables", [])) == 2]
    if not entries:
        fig, ax = plt.subplots(figsize=(5.5, 2.2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no two-driver convenience rule to show", ha="center", va="center")
        return fig
    ncol = min(2, len(entries))
    nrow = int(math.ceil(len(entries) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.6 * ncol, 4.6 * nrow), squeeze=False)
    y = drivers[outcome].to_numpy(dtype=float)
    for ax, entry in zip(axes.ravel(), entries, strict=False):
        va, vb = entry["variables"]
        ea, eb = _bin_edges(drivers[va], bins), _bin_edges(drivers[vb], bins)
        ia = np.clip(np.searchsorted(ea, drivers[va].to_numpy(), side="right") - 1, 0, len(ea) - 2)
        ib = np.clip(np.searchsorted(eb, drivers[vb].to_numpy(), side="right") - 1, 0, len(eb) - 2)
        tot = np.zeros((len(eb) - 1, len(ea) - 1))
        ev = np.zeros_like(tot)
        np.add.at(tot, (ib, ia), 1)
        np.add.at(ev, (ib, ia), y)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(tot > 0, ev / tot, np.nan)
        im = ax.imshow(rate, origin="lower", cmap="YlOrRd", vmin=0, vmax=1, aspect="auto")
        for (r, c), v in np.ndenumerate(rate):
            if np.isfinite(v):
                ax.text(c, r, f"{v:.2f}\n({int(tot[r, c])})", ha="center", va="center", fontsize=6.5)
        ax.set_xticks(
            np.arange(len(ea) - 1),
            [f"{ea[k]:.3g}-{ea[k + 1]:.3g}" for k in range(len(ea) - 1)],
            rotation=30,
            fontsize=7,
        )
        ax.set_yticks(np.arange(len(eb) - 1), [f"{eb[k]:.3g}-{eb[k + 1]:.3g}" for k in range(len(eb) - 1)], fontsize=7)
        for var, edges, line in ((va, ea, ax.axvline), (vb, eb, ax.axhline)):
            t = _rule_threshold(entry["rule"], var)
            if t is not None and edges[0] < t < edges[-1]:
                k = int(np.clip(np.searchsorted(edges, t, side="right") - 1, 0, len(edges) - 2))
                line(k - 0.5 + (t - edges[k]) / (edges[k + 1] - edges[k]), color="#1f4e79", ls="--", lw=1.2)
        ax.set_xlabel(va)
        ax.set_ylabel(vb)
        ax.set_title(
            f"{entry['rule']}\nrate {entry['rate']:.2f}, lift {entry['lift']:.2f}, support {entry['support']}",
            fontsize=8,
        )
        fig.colorbar(im, ax=ax, label="abandonment rate (parcels)")
    for ax in axes.ravel()[len(entries) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def _rule_threshold(rule: str, variable: str) -> float | None:
    """The number ``variable`` is compared with in ``rule`` (``v > 130``), None if not simple."""
    import re

    m = re.search(rf"\b{re.escape(variable)}\s*(?:<=|>=|<|>)\s*(-?[0-9.eE+-]+)", rule)
    try:
        return float(m.group(1)) if m else None
    except ValueError:
        return None


def _bin_edges(values: pd.Series, bins: int) -> np.ndarray:
    v = values.to_numpy(dtype=float)
    edges = np.unique(np.quantile(v, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        edges = np.array([v.min() - 0.5, v.max() + 0.5])
    return edges

"""Cultivation-convenience rules: high-abandonment subgroups from pairs of significant drivers.

A rule is a pandas ``DataFrame.eval`` expression over the driver columns, two conditions
joined by ``and``, e.g. ``x1_elevation_m > 130 and x10_area_ha < 0.2`` (the study's
first subgroup). Parsing and evaluating one (``rule_variables``, ``rule_mask``,
``inconvenient``, ``RuleError``) lives in :mod:`karstflow.conditions`; this module tests
given rules and searches for new ones.

API::

    evaluate_rules(drivers, rules, outcome="abandoned") -> list[dict]   # config rules
    find_interaction_rules(drivers, variables, outcome="abandoned", *, criterion="interaction",
                           base_design=None, quantiles, min_support, alpha, n_bootstrap, n_null,
                           min_bootstrap_frequency, min_lift, max_rules, seed, ...) -> RuleSearch

The search (a step further than the study, which reports its subgroups without one)
-----------------------------------------------------------------------------------
Over every pair of variables (the model's significant drivers):

1. **Grid.** Thresholds are the ``quantiles`` (default the deciles 0.1..0.9) of each
   variable, rounded to ``significant_digits`` (default 2: 131.7 m -> 130 m, 0.1843 ha ->
   0.18 ha) so rules read like the study's, duplicates dropped. A condition is ``v > t``
   or ``v < t``; a categorical variable (aspect class) gives ``v == k`` per class. Every
   pair of conditions of two variables is a candidate subgroup; only candidates holding
   at least ``min_support`` parcels count.
2. **Choice**, by ``criterion``:

   * ``interaction`` (default): forward selection. The candidate with the largest score
     statistic for adding its 0/1 indicator to the fitted additive logit (Rao's score
     test, one-sided: more abandonment than the main effects explain; candidates whose
     rate is not above the overall rate are skipped) enters the model, the model is
     refitted, and the search repeats over the remaining pairs. Each step's
     ``p_search`` accounts for the whole search (every pair, every threshold): it is the
     share of ``n_null`` outcome sets simulated from the current model whose search
     statistic reaches the observed one (a Monte-Carlo max-statistic test). The selection
     stops at the first step with ``p_search >= alpha``. On the demo this recovers the
     planted subgroups; main effects alone never make a rule.
   * ``rate`` (the study's reading): per pair the candidate with the highest abandonment
     rate (ties: larger support, then grid positions). Where two drivers both raise
     abandonment this is the corner of their main effects, e.g. elevation > 250 m and
     area < 0.17 ha on the demo, whether or not they interact.

3. **Test.** ``p``: one-sided Fisher exact test of abandonment inside vs outside the
   subgroup; ``p_holm``: Holm's correction over the pairs reported. For the rate criterion
   these p-values are nominal (they ignore the threshold search); ``p_interaction`` is the
   score test of the subgroup against the additive model (nominal too).
4. **Bootstrap.** ``n_bootstrap`` resamples of the parcels (with replacement, seeded);
   ``bootstrap_frequency`` is the share of resamples whose search for the same pair (on
   the same grid; for ``interaction`` after refitting the current model) returns the same
   directions (or classes) with every threshold within one grid step of the original's.
5. **Selection.** A rule is kept when ``p_holm < alpha`` (and ``p_search < alpha``),
   ``bootstrap_frequency >= min_bootstrap_frequency`` and ``lift >= min_lift``; at most
   ``max_rules`` (by lift).

``lift`` is the subgroup's abandonment rate over the overall rate.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
from scipy import stats

from karstflow.conditions import rule_mask, rule_variables
from karstflow.model import design_matrix

log = logging.getLogger(__name__)

__all__ = [
    "RuleSearch",
    "evaluate_rules",
    "find_interaction_rules",
    "threshold_grid",
]

def _fisher_greater(events_in: int, n_in: int, events_out: int, n_out: int) -> float:
    table = [[events_in, n_in - events_in], [events_out, n_out - events_out]]
    return float(stats.fisher_exact(table, alternative="greater").pvalue)


def evaluate_rules(drivers: pd.DataFrame, rules: Sequence[str], outcome: str = "abandoned") -> list[dict[str, Any]]:
    """Support, rate, lift and one-sided Fisher p of given rules (Holm over the list).

    Used for rules from the config; ``bootstrap_frequency`` is None (nothing was searched).
    """
    from statsmodels.stats.multitest import multipletests

    y = drivers[outcome].to_numpy(dtype=np.int64) if outcome in drivers.columns else None
    out = []
    for rule in rules:
        variables = rule_variables(rule, drivers.columns)
        row: dict[str, Any] = {"rule": rule, "variables": variables}
        if y is None:
            row.update(support=int(rule_mask(drivers, rule).sum()), rate=None, lift=None, p=None)
        else:
            m = rule_mask(drivers, rule)
            n_in, e_in = int(m.sum()), int(y[m].sum())
            n_out, e_out = int((~m).sum()), int(y[~m].sum())
            overall = y.mean() if len(y) else float("nan")
            rate = e_in / n_in if n_in else None
            row.update(
                support=n_in,
                rate=rate,
                lift=(rate / overall) if (rate is not None and overall > 0) else None,
                p=_fisher_greater(e_in, n_in, e_out, n_out) if n_in and n_out else None,
            )
        row["bootstrap_frequency"] = None
        out.append(row)
    # Holm over the rules that could be tested (a rule holding for all or no parcels cannot)
    tested = [r for r in out if r.get("p") is not None]
    for r in out:
        r["p_holm"] = None
    if tested:
        holm = multipletests([r["p"] for r in tested], method="holm")[1]
        for r, p in zip(tested, holm, strict=True):
            r["p_holm"] = float(p)
    return out


# --------------------------------------------------------------------------------------
# the search
# --------------------------------------------------------------------------------------


def _round_sig(v: float, digits: int) -> float:
    if v == 0 or not math.isfinite(v):
        return float(v)
    return float(round(v, digits - 1 - int(math.floor(math.log10(abs(v))))))


def threshold_grid(values: Any, quantiles: Sequence[float], significant_digits: int = 2) -> np.ndarray:
    """Rounded, distinct quantiles of ``values`` (ascending), strictly inside their range."""
    v = np.asarray(values, dtype=np.float64)
    q = np.quantile(v, np.asarray(quantiles, dtype=np.float64))
    r = np.unique([_round_sig(float(t), int(significant_digits)) for t in q])
    lo, hi = float(v.min()), float(v.max())
    return r[(r > lo) & (r < hi)] if len(r) else r


@dataclass(frozen=True)
class _Conditions:
    """The candidate conditions of one variable: a 0/1 matrix (conditions x parcels)."""

    variable: str
    labels: list[tuple[str, float, int]]  # (operator, value, grid position)
    matrix: np.ndarray

    def text(self, k: int) -> str:
        op, value, _ = self.labels[k]
        if op == "==":
            return f"{self.variable} == {int(value)}"
        return f"{self.variable} {op} {value:g}"


def _conditions(
    x: np.ndarray, variable: str, categorical: bool, quantiles: Sequence[float], digits: int
) -> _Conditions:
    labels: list[tuple[str, float, int]] = []
    rows = []
    if categorical:
        for pos, code in enumerate(sorted(int(c) for c in np.unique(x))):
            labels.append(("==", float(code), pos))
            rows.append(x == code)
    else:
        grid = threshold_grid(x, quantiles, digits)
        for pos, t in enumerate(grid):
            labels.append((">", float(t), pos))
            rows.append(x > t)
        for pos, t in enumerate(grid):
            labels.append(("<", float(t), pos))
            rows.append(x < t)
    m = np.array(rows, dtype=np.float64).reshape(len(rows), len(x))
    return _Conditions(variable, labels, m)


def _best(a: _Conditions, b: _Conditions, y: np.ndarray, w: np.ndarray, min_support: float) -> tuple[int, int] | None:
    """(i, j) of the condition pair with the highest rate among those with support >= min."""
    aw = a.matrix * w
    support = aw @ b.matrix.T
    events = (aw * y) @ b.matrix.T
    ok = support >= min_support - 1e-9
    if not ok.any():
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(ok, events / np.where(ok, support, 1.0), -1.0)
    best = rate.max()
    cand = np.argwhere(rate >= best - 1e-12)
    # ties: larger support, then grid positions (deterministic)
    key = [(-support[i, j], a.labels[i][2], b.labels[j][2], i, j) for i, j in cand]
    _, _, _, i, j = min(key)
    return int(i), int(j)


def _same_rule(a: _Conditions, b: _Conditions, ij: tuple[int, int], other: tuple[int, int] | None) -> bool:
    if other is None:
        return False
    for cond, k0, k1 in ((a, ij[0], other[0]), (b, ij[1], other[1])):
        op0, _, p0 = cond.labels[k0]
        op1, _, p1 = cond.labels[k1]
        if op0 != op1:
            return False
        if op0 == "==" and p0 != p1:
            return False
        if abs(p0 - p1) > 1:
            return False
    return True


def _score_z(x: np.ndarray, p: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """One-sided score statistics for adding each row of ``z`` (0/1 indicators) to a fitted logit.

    With W = diag(p (1 - p)): U = z'(y - p), I = z'Wz - z'WX (X'WX)^-1 X'Wz, statistic
    U / sqrt(I) (standard normal under no interaction; large where abandonment exceeds
    what the model explains). Rao's score test: no refit per candidate, so a whole
    threshold grid is scored at once.
    """
    w = p * (1.0 - p)
    info = x.T @ (x * w[:, None])
    u = z @ (y - p)
    zwx = (z * w) @ x
    var = np.einsum("ij,ij->i", z * w, z) - np.einsum("ij,ij->i", zwx, np.linalg.solve(info, zwx.T).T)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = u / np.sqrt(var)
    return np.where(np.isfinite(out) & (var > 1e-12), out, -np.inf)


def _fit_logit(
    x: np.ndarray, y: np.ndarray, start: np.ndarray | None = None, maxiter: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Fitted probabilities and coefficients of a logit by Newton-Raphson (IRLS).

    Our own few lines instead of statsmodels here: the search refits thousands of times
    (bootstrap and null simulations x steps) and statsmodels' Logit checks the rank of
    every design with a full QR decomposition (O(n^2)), which dominated the run time. The
    reported model itself is fitted with statsmodels (karstflow.model). Raises
    ArithmeticError when the fit does not converge (e.g. separation in a resample).
    """
    beta = np.zeros(x.shape[1]) if start is None else np.asarray(start, dtype=np.float64).copy()
    for _ in range(maxiter):
        eta = np.clip(x @ beta, -35.0, 35.0)
        p = 1.0 / (1.0 + np.exp(-eta))
        w = p * (1.0 - p)
        try:
            step = np.linalg.solve(x.T @ (x * w[:, None]), x.T @ (y - p))
        except np.linalg.LinAlgError as err:
            raise ArithmeticError(f"logit refit failed: {err}") from err
        if not np.isfinite(step).all():
            raise ArithmeticError("logit refit diverges")
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            eta = x @ beta
            if np.max(np.abs(eta)) >= 35.0:
                raise ArithmeticError("logit refit diverges (separation)")
            return 1.0 / (1.0 + np.exp(-eta)), beta
    raise ArithmeticError(f"logit refit did not converge in {maxiter} iterations")


def _pair_candidates(a: _Conditions, b: _Conditions) -> np.ndarray:
    """0/1 indicators of every condition pair (rows: i * len(b) + j)."""
    return (a.matrix[:, None, :] * b.matrix[None, :, :]).reshape(-1, a.matrix.shape[1])


def _pair_scores(
    a: _Conditions, b: _Conditions, x: np.ndarray, p: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score statistics (as :func:`_score_z`), supports and events of every condition pair.

    Works on the two condition matrices (conditions x parcels) instead of the
    conditions^2 x parcels indicator matrix: for 0/1 indicators z = a * b,
    z'v = a diag(v) b', so every term is a small matrix product.
    """
    am, bm = a.matrix, b.matrix
    w = p * (1.0 - p)
    support = am @ bm.T
    events = (am * y) @ bm.T
    u = (am * (y - p)) @ bm.T
    zwz = (am * w) @ bm.T
    k = x.shape[1]
    # zwx[c, i, j] = sum_n a_i(n) b_j(n) w(n) x_c(n)
    zwx = ((am[None, :, :] * (w * x.T)[:, None, :]).reshape(k * am.shape[0], -1) @ bm.T).reshape(
        k, am.shape[0], bm.shape[0]
    )
    info = x.T @ (x * w[:, None])
    proj = np.einsum("cij,cd,dij->ij", zwx, np.linalg.inv(info), zwx)
    var = zwz - proj
    with np.errstate(invalid="ignore", divide="ignore"):
        stat = u / np.sqrt(var)
    stat = np.where(np.isfinite(stat) & (var > 1e-12), stat, -np.inf)
    return stat, support, events


def _best_interaction(
    a: _Conditions, b: _Conditions, x: np.ndarray, p: np.ndarray, y: np.ndarray, min_support: float
) -> tuple[tuple[int, int], float] | None:
    """The condition pair the model (x, p) explains least: max score statistic among the
    candidates with support >= min_support and an abandonment rate above the overall rate."""
    stat, support, events = _pair_scores(a, b, x, p, y)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = events / support
    stat[(support < min_support - 1e-9) | ~(rate > y.mean())] = -np.inf
    if not np.isfinite(stat).any():
        return None
    i, j = np.unravel_index(int(np.argmax(stat)), stat.shape)
    return (int(i), int(j)), float(stat[i, j])


def _null_max(
    conds: dict[str, _Conditions],
    pairs: Sequence[tuple[str, str]],
    x: np.ndarray,
    p: np.ndarray,
    y_sim: np.ndarray,
    min_support: float,
) -> np.ndarray:
    """Largest search statistic over ``pairs`` for each simulated outcome column of ``y_sim``.

    The refit on simulated outcomes is replaced by its first Newton step from the current
    fit (residuals projected off the model's columns, e* = (I - W X (X'WX)^-1 X') (y* - p)),
    which is exact to first order and turns the whole simulation into matrix products.
    """
    w = p * (1.0 - p)
    info_inv = np.linalg.inv(x.T @ (x * w[:, None]))
    e = y_sim - p[:, None]
    e = e - (x * w[:, None]) @ (info_inv @ (x.T @ e))
    y_mean = y_sim.mean(axis=0)
    best = np.full(y_sim.shape[1], -np.inf)
    for va, vb in pairs:
        z = _pair_candidates(conds[va], conds[vb])
        support = z.sum(axis=1)
        zwx = (z * w) @ x
        var = z @ w - np.einsum("ij,jk,ik->i", zwx, info_inv, zwx)
        ok_var = var > 1e-12
        with np.errstate(invalid="ignore", divide="ignore"):
            stat = (z @ e) / np.sqrt(np.where(ok_var, var, np.nan))[:, None]
            rate = (z @ y_sim) / support[:, None]
        bad = (
            (support < min_support - 1e-9)[:, None] | ~ok_var[:, None] | ~(rate > y_mean[None, :]) | ~np.isfinite(stat)
        )
        stat = np.where(bad, -np.inf, stat)
        best = np.maximum(best, stat.max(axis=0))
    return best


@dataclass
class RuleSearch:
    """Outcome of :func:`find_interaction_rules`: every pair searched, and the kept rules."""

    pairs: pd.DataFrame
    rules: list[dict[str, Any]]
    settings: dict[str, Any]


RULE_FIELDS = ("rule", "variables", "support", "rate", "lift", "p", "p_holm", "bootstrap_frequency")


def find_interaction_rules(
    drivers: pd.DataFrame,
    variables: Sequence[str],
    outcome: str = "abandoned",
    *,
    criterion: str = "interaction",
    base_design: pd.DataFrame | None = None,
    categorical: Sequence[str] = ("x3_aspect_class",),
    quantiles: Sequence[float] = tuple(np.round(np.arange(1, 10) / 10, 2)),
    significant_digits: int = 2,
    min_support: int | float = 0.05,
    alpha: float = 0.05,
    n_bootstrap: int = 200,
    n_null: int = 99,
    min_bootstrap_frequency: float = 0.5,
    min_lift: float = 1.0,
    max_rules: int | None = None,
    seed: int = 0,
) -> RuleSearch:
    """Search, test and bootstrap a rule per pair of ``variables`` (see the module notes).

    ``criterion`` "interaction" (default: forward selection of the subgroups that the
    additive model ``base_design`` explains least) or "rate" (per pair the subgroup with
    the highest abandonment rate, the study's reading).
    ``min_support`` below 1 is a share of the parcels, from 1 on a count.
    """
    if criterion not in ("rate", "interaction"):
        raise ValueError(f"criterion must be 'rate' or 'interaction', found {criterion!r}")
    from threadpoolctl import threadpool_limits

    # The search is thousands of small matrix products; BLAS threads cost more than they
    # save on them (measured: 60x slower with 2 threads on a busy 2-core machine).
    with threadpool_limits(limits=1, user_api="blas"):
        return _find_rules(
            drivers, variables, outcome, criterion=criterion, base_design=base_design, categorical=categorical,
            quantiles=quantiles, significant_digits=significant_digits, min_support=min_support, alpha=alpha,
            n_bootstrap=n_bootstrap, n_null=n_null, min_bootstrap_frequency=min_bootstrap_frequency, min_lift=min_lift,
            max_rules=max_rules, seed=seed,
        )


def _find_rules(
    drivers: pd.DataFrame,
    variables: Sequence[str],
    outcome: str,
    *,
    criterion: str,
    base_design: pd.DataFrame | None,
    categorical: Sequence[str],
    quantiles: Sequence[float],
    significant_digits: int,
    min_support: int | float,
    alpha: float,
    n_bootstrap: int,
    n_null: int,
    min_bootstrap_frequency: float,
    min_lift: float,
    max_rules: int | None,
    seed: int,
) -> RuleSearch:
    y = drivers[outcome].to_numpy(dtype=np.float64)
    n = len(y)
    support_min = max(float(min_support) * n if float(min_support) < 1 else float(min_support), 1.0)
    overall = float(y.mean()) if n else float("nan")
    conds = {
        v: _conditions(drivers[v].to_numpy(dtype=np.float64), v, v in categorical, quantiles, significant_digits)
        for v in variables
    }
    pairs = [(a, b) for a, b in itertools.combinations(variables, 2) if len(conds[a].labels) and len(conds[b].labels)]
    if base_design is None:
        base_design, _ = design_matrix(drivers, list(variables), categorical=[c for c in categorical if c in variables])
    x0 = base_design.to_numpy(dtype=np.float64)
    p0, _ = _fit_logit(x0, y)
    rng = np.random.default_rng(seed)
    boot_idx = rng.integers(0, n, size=(int(n_bootstrap), n)) if n_bootstrap and n else np.zeros((0, n), dtype=np.int64)

    def describe(va: str, vb: str, ij: tuple[int, int]) -> dict[str, Any]:
        a, b = conds[va], conds[vb]
        i, j = ij
        m = (a.matrix[i] > 0) & (b.matrix[j] > 0)
        n_in, e_in = int(m.sum()), int(y[m].sum())
        n_out, e_out = n - n_in, int(y.sum()) - e_in
        rate = e_in / n_in
        z_main = _score_z(x0, p0, y, m[None, :].astype(np.float64))[0]
        return {
            "rule": f"{a.text(i)} and {b.text(j)}",
            "variables": [va, vb],
            "support": n_in,
            "events": e_in,
            "rate": rate,
            "lift": rate / overall if overall > 0 else float("nan"),
            "p": _fisher_greater(e_in, n_in, e_out, n_out) if n_out else 1.0,
            "p_interaction": float(stats.norm.sf(z_main)) if np.isfinite(z_main) else 1.0,
            "expected_events": float(p0[m].sum()),
            "ij": ij,
        }

    rows: list[dict[str, Any]] = []
    if criterion == "rate":
        ones = np.ones(n)
        counts = [np.bincount(idx, minlength=n).astype(np.float64) for idx in boot_idx]
        for va, vb in pairs:
            a, b = conds[va], conds[vb]
            ij = _best(a, b, y, ones, support_min)
            if ij is None:
                log.info("rules: %s x %s: no subgroup with support >= %g", va, vb, support_min)
                continue
            row = describe(va, vb, ij)
            hits = sum(_same_rule(a, b, ij, _best(a, b, y, w, support_min)) for w in counts)
            row["bootstrap_frequency"] = hits / len(counts) if counts else float("nan")
            rows.append(row)
        table = pd.DataFrame(rows)
        if len(table):
            from statsmodels.stats.multitest import multipletests

            table["p_holm"] = multipletests(table["p"].to_numpy(), method="holm")[1]
            keep = (table["p_holm"] < alpha) & (table["lift"] >= min_lift)
            if n_bootstrap:
                keep &= table["bootstrap_frequency"] >= min_bootstrap_frequency
            table["step"] = pd.NA
        else:
            keep = pd.Series(dtype=bool)
    else:
        # Forward selection: the high-abandonment subgroup the current model explains least
        # (largest score statistic over every pair's grid) enters it, and the model is
        # refitted. Its p-value accounts for the whole search: the largest statistic of the
        # same search on outcomes simulated from the current model (n_null draws; a
        # Monte-Carlo max-statistic test). The selection stops at the first p >= alpha.
        x = x0.copy()
        p, beta = _fit_logit(x, y)
        rng_null = np.random.default_rng([seed, 1])
        remaining = list(pairs)
        step = 0
        while remaining:
            scored = []
            for va, vb in remaining:
                best = _best_interaction(conds[va], conds[vb], x, p, y, support_min)
                if best is not None:
                    scored.append((best[1], va, vb, best[0]))
            if not scored:
                break
            scored.sort(key=lambda t: -t[0])
            stat, va, vb, ij = scored[0]
            y_sim = (rng_null.random((n, int(n_null))) < p[:, None]).astype(np.float64)
            null_max = _null_max(conds, remaining, x, p, y_sim, support_min) if n_null else np.array([])
            p_search = float((1 + np.sum(null_max >= stat)) / (1 + len(null_max)))
            row = describe(va, vb, ij)
            row["p_search"] = p_search
            step += 1
            row["step"] = step
            a, b = conds[va], conds[vb]
            # bootstrap: refit the current model on the resample, search this pair again
            hits = 0
            for idx in boot_idx:
                try:
                    pb, _ = _fit_logit(x[idx], y[idx], start=beta)
                except ArithmeticError:  # a resample that separates: counts as not reproduced
                    continue
                ab = _Conditions(a.variable, a.labels, a.matrix[:, idx])
                bb = _Conditions(b.variable, b.labels, b.matrix[:, idx])
                got = _best_interaction(ab, bb, x[idx], pb, y[idx], support_min)
                hits += _same_rule(a, b, ij, got[0] if got else None)
            row["bootstrap_frequency"] = hits / len(boot_idx) if len(boot_idx) else float("nan")
            rows.append(row)
            log.info(
                "rules: step %d: %s (score z %.2f, search p %.3f, bootstrap %.2f)",
                step, row["rule"], stat, p_search, row["bootstrap_frequency"],
            )
            remaining.remove((va, vb))
            if p_search >= alpha:
                break
            m = ((a.matrix[ij[0]] > 0) & (b.matrix[ij[1]] > 0)).astype(np.float64)
            x = np.column_stack([x, m])
            try:
                p, beta = _fit_logit(x, y, start=np.r_[beta, 0.0])
            except ArithmeticError as err:  # the new indicator separates: stop here
                log.warning("rules: refit after %s failed (%s); stopping the forward selection", row["rule"], err)
                break
        table = pd.DataFrame(rows)
        if len(table):
            from statsmodels.stats.multitest import multipletests

            table["p_holm"] = multipletests(table["p"].to_numpy(), method="holm")[1]
            keep = (table["p_search"] < alpha) & (table["p_holm"] < alpha) & (table["lift"] >= min_lift)
            if n_bootstrap:
                keep &= table["bootstrap_frequency"] >= min_bootstrap_frequency
        else:
            keep = pd.Series(dtype=bool)

    cols = [
        "rule",
        "variables",
        "support",
        "events",
        "expected_events",
        "rate",
        "lift",
        "p",
        "p_holm",
        "p_interaction",
        "p_search",
        "bootstrap_frequency",
        "step",
    ]
    if not len(table):
        table = pd.DataFrame(columns=[*cols, "selected"])
        chosen_rows = table
    else:
        table = table.reindex(columns=cols)
        table["selected"] = keep.astype(int).to_numpy()
        chosen_rows = table[table["selected"] == 1].sort_values(["lift", "support"], ascending=[False, False])
        if max_rules is not None:
            chosen_rows = chosen_rows.head(int(max_rules))
            table["selected"] = table.index.isin(chosen_rows.index).astype(int)
    rules = [
        {
            "rule": r.rule,
            "variables": list(r.variables),
            "support": int(r.support),
            "rate": float(r.rate),
            "lift": float(r.lift),
            "p": float(r.p),
            "p_holm": float(r.p_holm),
            "bootstrap_frequency": float(r.bootstrap_frequency),
            "p_interaction": float(r.p_interaction),
            "p_search": None if pd.isna(r.p_search) else float(r.p_search),
            "expected_events": float(r.expected_events),
        }
        # pandas-stubs types itertuples() fields as any scalar; these are the columns above
        for r in cast(Iterable[Any], chosen_rows.itertuples())
    ]
    settings = {
        "criterion": criterion,
        "variables": list(variables),
        "pairs_searched": len(pairs),
        "quantiles": [float(q) for q in quantiles],
        "significant_digits": int(significant_digits),
        "min_support": support_min,
        "alpha": float(alpha),
        "n_bootstrap": int(n_bootstrap),
        "n_null": int(n_null) if criterion == "interaction" else None,
        "min_bootstrap_frequency": float(min_bootstrap_frequency),
        "min_lift": float(min_lift),
        "max_rules": max_rules,
        "seed": int(seed),
        "overall_rate": overall,
    }
    return RuleSearch(pairs=table, rules=rules, settings=settings)

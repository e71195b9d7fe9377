"""The abandonment logit corrected for misclassified outcome labels.

The model's outcome is a *classified* label Y* (abandoned from the land-cover map), not the
true state Y. With sensitivity Se = P(Y* = 1 | Y = 1) and specificity Sp = P(Y* = 0 | Y = 0)
of the label, the same for every parcel (non-differential misclassification), the
observed-label probability is (Magder & Hughes 1997, Am. J. Epidemiol. 146:195-203, eq. 1)::

    P(Y* = 1 | x) = (1 - Sp) + (Se + Sp - 1) expit(x'b)

and b is estimated by maximising the binomial likelihood of Y* under it (their "direct"
maximum-likelihood route; the EM form gives the same estimate). A naive logit of Y* on x
estimates something else: with 10 % of labels flipped each way its slopes shrink towards
zero by about a third, and its intervals miss the true b (tests/test_label_error.py).

API::

    LabelError(sensitivity, specificity, n_abandoned=None, n_used=None, source="config")
    label_error_from_validation(classified, truth, *, source="validation") -> LabelError
    label_error_from_config(cfg, *, key="model.label_error") -> LabelError
    fit_misclassified_logit(y, x, sensitivity, specificity, *, start=None, maxiter=100) -> result
    batch_fit(y, x, a, c, *, start=None, maxiter=50) -> (b, cov, converged)     # many fits at once
    corrected_logit(y, x, error, *, n_bootstrap=200, seed=0, ci_level=0.95, naive=None) -> (table, info)

Uncertainty of the rates
------------------------
The rates come from a validation sample of n1 truly abandoned and n0 truly used parcels
(or are configured with those counts). Their sampling error is carried into the
intervals by a parametric bootstrap: B draws Se* ~ Binomial(n1, Se) / n1,
Sp* ~ Binomial(n0, Sp) / n0, the corrected logit refitted with each pair on the same
labels, and the covariance of b is the covariance with the rates known (inverse Fisher
information) plus the covariance of the B refits (the decomposition
V = E[V(b | rates)] + V(E[b | rates]) of the two-stage estimator; Lyles et al. 2011,
Biometrics 67:1101, use the same split for validation-based misclassification models).
With rates given without counts the intervals are those with the rates known.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

log = logging.getLogger(__name__)

__all__ = [
    "CORRECTED_COLUMNS",
    "LabelError",
    "LabelErrorInputError",
    "batch_fit",
    "corrected_logit",
    "fit_misclassified_logit",
    "label_error_from_config",
    "label_error_from_validation",
    "observed_probability",
]

#: Columns of model/logit_coefficients_corrected.csv.
CORRECTED_COLUMNS = (
    "term",
    "B_naive",
    "SE_naive",
    "B_low_naive",
    "B_high_naive",
    "B_corrected",
    "SE_corrected_rates_known",
    "SE_corrected",
    "B_low_corrected",
    "B_high_corrected",
    "exp_B_naive",
    "exp_B_corrected",
    "p_corrected",
)


class LabelErrorInputError(ValueError):
    """Misclassification rates or validation data that cannot be used."""


@dataclass(frozen=True)
class LabelError:
    """Sensitivity and specificity of the abandoned label, with the validation counts behind them."""

    sensitivity: float
    specificity: float
    n_abandoned: int | None = None
    n_used: int | None = None
    source: str = "config"

    def __post_init__(self) -> None:
        for name in ("sensitivity", "specificity"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 < float(v) <= 1.0):
                raise LabelErrorInputError(f"label error ({self.source}): {name} must be in (0, 1], found {v!r}")
        if self.sensitivity + self.specificity <= 1.0:
            raise LabelErrorInputError(
                f"label error ({self.source}): sensitivity + specificity must exceed 1 (labels better than chance), "
                f"found {self.sensitivity:g} + {self.specificity:g}"
            )
        for name in ("n_abandoned", "n_used"):
            v = getattr(self, name)
            if v is not None and (int(v) != v or v < 1):
                raise LabelErrorInputError(f"label error ({self.source}): {name} must be a count >= 1, found {v!r}")

    @property
    def has_counts(self) -> bool:
        return self.n_abandoned is not None and self.n_used is not None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name, k, r in (
            ("sensitivity", self.n_abandoned, self.sensitivity),
            ("specificity", self.n_used, self.specificity),
        ):
            if k is not None:
                # Wilson score interval of the rate, for the record
                z = 1.959963984540054
                centre = (r + z * z / (2 * k)) / (1 + z * z / k)
                half = z * math.sqrt(r * (1 - r) / k + z * z / (4 * k * k)) / (1 + z * z / k)
                out[f"{name}_ci95"] = [centre - half, centre + half]
        return out


def label_error_from_validation(classified: Any, truth: Any, *, source: str = "validation") -> LabelError:
    """Rates of the classified labels against checked (true) labels of the same parcels.

    Se = share of truly abandoned parcels labelled abandoned, Sp = share of truly used
    parcels labelled used; the counts of truly abandoned and used parcels are kept for the
    bootstrap. Parcels without a checked label (NaN) are left out.
    """
    yc = pd.to_numeric(pd.Series(np.asarray(classified).ravel()), errors="coerce")
    yt = pd.to_numeric(pd.Series(np.asarray(truth).ravel()), errors="coerce")
    if len(yc) != len(yt):
        raise LabelErrorInputError(f"{source}: classified and checked labels differ in length ({len(yc)}, {len(yt)})")
    keep = yc.notna() & yt.notna()
    yc, yt = yc[keep].astype(int), yt[keep].astype(int)
    bad = sorted(set(pd.unique(pd.concat([yc, yt]))) - {0, 1})
    if bad:
        raise LabelErrorInputError(f"{source}: labels must be 0 (used) or 1 (abandoned), found {bad}")
    n1, n0 = int((yt == 1).sum()), int((yt == 0).sum())
    if n1 == 0 or n0 == 0:
        raise LabelErrorInputError(
            f"{source}: the validation sample needs truly abandoned and truly used parcels, found {n1} abandoned "
            f"and {n0} used among {int(keep.sum())} checked parcels"
        )
    se = float(((yc == 1) & (yt == 1)).sum() / n1)
    sp = float(((yc == 0) & (yt == 0)).sum() / n0)
    return LabelError(se, sp, n1, n0, source)


def label_error_from_config(cfg: Mapping[str, Any], *, key: str = "model.label_error") -> LabelError:
    """Rates given in the config (``sensitivity``, ``specificity``, optional ``n_abandoned``/``n_used``)."""
    missing = [k for k in ("sensitivity", "specificity") if cfg.get(k) is None]
    if missing:
        raise LabelErrorInputError(f"config key {key}: method 'config' needs {missing}, found {dict(cfg)}")
    n1, n0 = cfg.get("n_abandoned"), cfg.get("n_used")
    if (n1 is None) != (n0 is None):
        raise LabelErrorInputError(f"config key {key}: give both n_abandoned and n_used or neither, found {n1}, {n0}")
    return LabelError(float(cfg["sensitivity"]), float(cfg["specificity"]), n1, n0, source=f"config key {key}")


def observed_probability(eta: Any, sensitivity: float, specificity: float) -> np.ndarray:
    """P(Y* = 1 | x) = (1 - Sp) + (Se + Sp - 1) expit(eta) (Magder & Hughes 1997, eq. 1)."""
    return (1.0 - specificity) + (sensitivity + specificity - 1.0) * expit(np.asarray(eta, dtype=np.float64))


# --------------------------------------------------------------------------------------
# fits
# --------------------------------------------------------------------------------------


def _model_class() -> type:
    from statsmodels.base.model import GenericLikelihoodModel

    class MisclassifiedLogit(GenericLikelihoodModel):  # type: ignore[misc]
        """Binary logit of a label with known sensitivity and specificity (statsmodels)."""

        def __init__(self, endog: Any, exog: Any, sensitivity: float, specificity: float, **kw: Any) -> None:
            self.a = 1.0 - float(specificity)
            self.c = float(sensitivity) + float(specificity) - 1.0
            super().__init__(endog, exog, **kw)

        def _parts(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            mu = expit(self.exog @ params)
            return mu, self.a + self.c * mu, self.c * mu * (1.0 - mu)

        def loglikeobs(self, params: np.ndarray) -> np.ndarray:
            _, ps, _ = self._parts(params)
            y = self.endog
            return y * np.log(ps) + (1.0 - y) * np.log1p(-ps)

        def score_obs(self, params: np.ndarray) -> np.ndarray:
            _, ps, g = self._parts(params)
            return ((self.endog - ps) / (ps * (1.0 - ps)) * g)[:, None] * self.exog

        def score(self, params: np.ndarray) -> np.ndarray:
            return self.score_obs(params).sum(axis=0)

        def hessian(self, params: np.ndarray) -> np.ndarray:
            mu, ps, g = self._parts(params)
            y = self.endog
            d1 = (y - ps) / (ps * (1.0 - ps))
            d2 = -y / ps**2 - (1.0 - y) / (1.0 - ps) ** 2
            w = d2 * g**2 + d1 * g * (1.0 - 2.0 * mu)
            return (self.exog * w[:, None]).T @ self.exog

    return MisclassifiedLogit


def fit_misclassified_logit(
    y: Any,
    x: pd.DataFrame | np.ndarray,
    sensitivity: float,
    specificity: float,
    *,
    start: Any = None,
    maxiter: int = 100,
) -> Any:
    """Maximum-likelihood fit of b with the rates known (statsmodels GenericLikelihoodModel, Newton).

    ``x`` holds the design (with its constant); ``start`` defaults to the naive logit.
    Returns the statsmodels result (``params``, ``bse``, ``cov_params()``, ``llf``).
    """
    import statsmodels.api as sm

    yv = np.asarray(y, dtype=np.float64)
    if start is None:
        start = sm.Logit(yv, x).fit(disp=0, method="newton", maxiter=maxiter).params
    model = _model_class()(yv, x, sensitivity, specificity)
    res = model.fit(start_params=np.asarray(start, dtype=np.float64), method="newton", maxiter=maxiter, disp=0)
    return res


def batch_fit(
    y: np.ndarray,
    x: np.ndarray,
    a: Any,
    c: Any,
    *,
    start: np.ndarray | None = None,
    maxiter: int = 50,
    tol: float = 1e-9,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Many corrected fits at once: Fisher scoring with step halving, vectorised over fits.

    ``y`` (m, n) labels of m data sets on the shared design ``x`` (n, k); ``a`` = 1 - Sp and
    ``c`` = Se + Sp - 1, scalars or (m,); a = 0, c = 1 is the ordinary logit. Returns the
    estimates (m, k), the inverse observed information at the estimates (m, k, k) and a
    converged flag (m,).
    """
    yv = np.atleast_2d(np.asarray(y, dtype=np.float64))
    m, n = yv.shape
    k = x.shape[1]
    av = np.broadcast_to(np.asarray(a, dtype=np.float64), (m,))[:, None]
    cv = np.broadcast_to(np.asarray(c, dtype=np.float64), (m,))[:, None]
    b = np.zeros((m, k)) if start is None else np.array(np.broadcast_to(start, (m, k)), dtype=np.float64)

    def loglik(bb: np.ndarray) -> np.ndarray:
        ps = np.clip(av + cv * expit(bb @ x.T), 1e-300, 1 - 1e-16)
        return (yv * np.log(ps) + (1.0 - yv) * np.log1p(-ps)).sum(axis=1)

    ll = loglik(b)
    done = np.zeros(m, dtype=bool)
    iterations = 0
    for iterations in range(1, maxiter + 1):  # noqa: B007
        mu = expit(b @ x.T)
        ps = np.clip(av + cv * mu, 1e-300, 1 - 1e-16)
        g = cv * mu * (1.0 - mu)
        score = ((yv - ps) / (ps * (1.0 - ps)) * g) @ x
        w = g**2 / (ps * (1.0 - ps))
        info = np.swapaxes(w[:, :, None] * x[None], 1, 2) @ x
        try:
            step = np.linalg.solve(info, score[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = np.einsum("mij,mj->mi", np.linalg.pinv(info), score)
        step[done] = 0.0
        t = np.ones(m)
        new = b + step
        new_ll = loglik(new)
        for _h in range(30):
            worse = new_ll < ll - 1e-12
            if not worse.any():
                break
            t = np.where(worse, t / 2, t)
            new = b + t[:, None] * step
            new_ll = loglik(new)
        b, ll_old, ll = new, ll, new_ll
        # Fisher scoring converges linearly here (the link is not canonical): stop when a
        # step changes no estimate by more than tol of its SE scale and the log-likelihood
        # by less than tol
        moved = np.abs(t[:, None] * step).max(axis=1)
        done = done | ((moved < math.sqrt(tol)) & (np.abs(ll - ll_old) < tol * (1 + np.abs(ll))))
        if done.all():
            break
    mu = expit(b @ x.T)
    ps = np.clip(av + cv * mu, 1e-300, 1 - 1e-16)
    g = cv * mu * (1.0 - mu)
    # the covariance from the observed information (the negative Hessian), as statsmodels
    # reports it for the single fit
    d1 = (yv - ps) / (ps * (1.0 - ps))
    d2 = -yv / ps**2 - (1.0 - yv) / (1.0 - ps) ** 2
    w_obs = -(d2 * g**2 + d1 * g * (1.0 - 2.0 * mu))
    info = np.swapaxes(w_obs[:, :, None] * x[None], 1, 2) @ x
    cov = np.linalg.pinv(info)
    return b, cov, done & np.isfinite(b).all(axis=1)


def corrected_logit(
    y: Any,
    x: pd.DataFrame,
    error: LabelError,
    *,
    n_bootstrap: int = 200,
    seed: int = 0,
    ci_level: float = 0.95,
    naive: Any = None,
    maxiter: int = 100,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Naive and misclassification-corrected coefficients side by side (see the module notes).

    ``x`` the design (with ``const``), ``naive`` an already fitted statsmodels Logit result
    of the same design (fitted here when None). Returns the table (:data:`CORRECTED_COLUMNS`,
    one row per design column, intervals on the B scale) and a dict for model_fit.json.
    """
    import statsmodels.api as sm

    if not 0 < ci_level < 1:
        raise ValueError(f"ci_level must be in (0, 1), found {ci_level!r}")
    yv = np.asarray(y, dtype=np.float64)
    xv = x.to_numpy(dtype=np.float64)
    if naive is None:
        naive = sm.Logit(yv, x).fit(disp=0, method="newton", maxiter=maxiter)
    b0 = np.asarray(naive.params, dtype=np.float64)
    se0 = np.asarray(naive.bse, dtype=np.float64)
    res = fit_misclassified_logit(yv, x, error.sensitivity, error.specificity, start=b0, maxiter=maxiter)
    converged = bool(res.mle_retvals.get("converged", False)) and np.isfinite(res.params).all()
    if not converged:
        raise LabelErrorInputError(
            f"label error ({error.source}): the corrected logit did not converge with sensitivity "
            f"{error.sensitivity:.3f} and specificity {error.specificity:.3f}; the labels may be more often "
            "abandoned (or used) in some drivers' range than the rates allow"
        )
    b = np.asarray(res.params, dtype=np.float64)
    cov_known = np.linalg.inv(-res.model.hessian(b))
    cov = cov_known.copy()
    boot_info: dict[str, Any] = {"n_bootstrap": 0}
    if error.n_abandoned is not None and error.n_used is not None and n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        n1, n0 = int(error.n_abandoned), int(error.n_used)
        se_s = rng.binomial(n1, error.sensitivity, n_bootstrap) / n1
        sp_s = rng.binomial(n0, error.specificity, n_bootstrap) / n0
        ok = se_s + sp_s > 1.0 + 1e-6
        bb, _, conv = batch_fit(
            np.broadcast_to(yv, (int(ok.sum()), len(yv))),
            xv,
            1.0 - sp_s[ok],
            se_s[ok] + sp_s[ok] - 1.0,
            start=b,
            maxiter=maxiter,
        )
        bb = bb[conv]
        if len(bb) >= 2:
            cov = cov_known + np.cov(bb, rowvar=False)
        boot_info = {
            "n_bootstrap": int(n_bootstrap),
            "n_bootstrap_used": int(len(bb)),
            "n_bootstrap_unusable_rates": int((~ok).sum()),
            "n_bootstrap_not_converged": int(ok.sum() - len(bb)),
            "seed": int(seed),
        }
    se_known = np.sqrt(np.diag(cov_known))
    se = np.sqrt(np.diag(cov))
    z = float(stats.norm.ppf(0.5 + ci_level / 2))
    table = pd.DataFrame(
        {
            "term": list(x.columns),
            "B_naive": b0,
            "SE_naive": se0,
            "B_low_naive": b0 - z * se0,
            "B_high_naive": b0 + z * se0,
            "B_corrected": b,
            "SE_corrected_rates_known": se_known,
            "SE_corrected": se,
            "B_low_corrected": b - z * se,
            "B_high_corrected": b + z * se,
            "exp_B_naive": np.exp(b0),
            "exp_B_corrected": np.exp(b),
            "p_corrected": stats.chi2.sf((b / se) ** 2, 1),
        },
        columns=list(CORRECTED_COLUMNS),
    )
    info = {
        **error.to_dict(),
        "log_likelihood_corrected": float(res.llf),
        "log_likelihood_naive": float(naive.llf),
        "ci_level": float(ci_level),
        "ci_of": "B",
        "bootstrap": boot_info,
        "intervals": (
            "Wald, covariance with the rates known plus the parametric-bootstrap covariance of the rates"
            if boot_info["n_bootstrap"]
            else "Wald with the rates known (no validation counts)"
        ),
    }
    return table, info

"""Tests of karstflow.accuracy against published figures and independent implementations.

Matrices here are map classes as rows, reference classes as columns.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from karstflow.accuracy import AccuracyAssessment, assess, assess_stratified, confusion_matrix, kappa_variance

# --------------------------------------------------------------------------------------
# Olofsson et al. (2014) RSE 148:42-57, section 5 example (Table 8): strata = map classes
# deforestation, forest gain, stable forest, stable non-forest; 30 m pixels (0.09 ha).
OLOFSSON_LABELS = ["deforestation", "forest_gain", "stable_forest", "stable_non_forest"]
OLOFSSON_COUNTS = np.array(
    [
        [66, 0, 5, 4],
        [0, 55, 8, 12],
        [1, 0, 153, 11],
        [2, 1, 9, 313],
    ]
)
OLOFSSON_PIXELS = np.array([200_000, 150_000, 3_200_000, 6_450_000])
OLOFSSON_HA = OLOFSSON_PIXELS * 0.09

# Congalton (1991) RSE 37:35-46 / Congalton & Green (2009) example, 434 samples:
# deciduous, conifer, agriculture, shrub; overall 74 %, KHAT 0.65.
CG_LABELS = ["D", "C", "AG", "SB"]
CG_COUNTS = np.array(
    [
        [65, 4, 22, 24],
        [6, 81, 5, 8],
        [0, 11, 85, 19],
        [4, 7, 3, 90],
    ]
)


@pytest.fixture(scope="module")
def olofsson() -> AccuracyAssessment:
    return assess(OLOFSSON_COUNTS, OLOFSSON_LABELS, mapped_area=OLOFSSON_HA)


# ------------------------------------------------------------------ Olofsson et al. 2014


def test_olofsson_published_area_estimates(olofsson):
    # Published: 21,158 +/- 6,158; 11,686 +/- 3,756; 285,770 +/- 15,510; 581,386 +/- 16,282 ha
    published = {
        "deforestation": (21_158, 6_158),
        "forest_gain": (11_686, 3_756),
        "stable_forest": (285_770, 15_510),
        "stable_non_forest": (581_386, 16_282),
    }
    for k, label in enumerate(OLOFSSON_LABELS):
        est, half = published[label]
        assert round(olofsson.area_estimate[k]) == est, label
        # The paper builds the interval as 1.96 * SE.
        assert round(1.96 * olofsson.area_se[k]) == half, label
        # We use the exact normal quantile (1.959964), which differs by < 0.01 %.
        lo, hi = olofsson.area_ci[k]
        assert (hi - lo) / 2 == pytest.approx(half, rel=1e-4, abs=1.0), label
        assert (lo + hi) / 2 == pytest.approx(olofsson.area_estimate[k])
    assert olofsson.area_estimate.sum() == pytest.approx(OLOFSSON_HA.sum())
    assert OLOFSSON_HA[0] == pytest.approx(18_000)  # mapped deforestation, for contrast


def test_olofsson_area_in_pixels_scales(olofsson):
    in_pixels = assess(OLOFSSON_COUNTS, OLOFSSON_LABELS, mapped_area=OLOFSSON_PIXELS)
    np.testing.assert_allclose(in_pixels.area_estimate * 0.09, olofsson.area_estimate)
    np.testing.assert_allclose(in_pixels.area_ci * 0.09, olofsson.area_ci)
    np.testing.assert_allclose(in_pixels.area_proportion, olofsson.area_proportion)


def test_olofsson_published_accuracies(olofsson):
    # Published: user's 0.88 +/- 0.07, producer's 0.75 +/- 0.21 (deforestation),
    # overall 0.95 +/- 0.02.
    assert round(olofsson.area_adjusted_users_accuracy[0], 2) == 0.88
    assert round(1.96 * olofsson.area_adjusted_users_accuracy_se[0], 2) == 0.07
    assert round(olofsson.area_adjusted_producers_accuracy[0], 2) == 0.75
    assert round(1.96 * olofsson.area_adjusted_producers_accuracy_se[0], 2) == 0.21
    assert round(olofsson.area_adjusted_overall_accuracy, 2) == 0.95
    assert round(1.96 * olofsson.area_adjusted_overall_accuracy_se, 2) == 0.02
    # Sample-based figures are different (and reported separately).
    assert olofsson.overall_accuracy == pytest.approx(587 / 640)
    assert olofsson.producers_accuracy[0] == pytest.approx(66 / 69)


def test_olofsson_proportion_matrix(olofsson):
    # Estimated area proportions p_ij = W_i n_ij / n_i. (the paper's Table 9, 4 decimals).
    expected = np.array(
        [
            [0.0176, 0.0000, 0.0013, 0.0011],
            [0.0000, 0.0110, 0.0016, 0.0024],
            [0.0019, 0.0000, 0.2967, 0.0213],
            [0.0040, 0.0020, 0.0179, 0.6212],
        ]
    )
    np.testing.assert_array_equal(np.round(olofsson.area_proportion_matrix, 4), expected)
    np.testing.assert_array_equal(np.round(olofsson.area_proportion, 4), [0.0235, 0.0130, 0.3175, 0.6460])
    np.testing.assert_allclose(olofsson.area_weights, [0.02, 0.015, 0.32, 0.645])


def _olofsson_by_pixels(counts: np.ndarray, pixels: np.ndarray):
    """Eqs. 5, 7 and 10 written literally with pixel counts N and explicit loops."""
    q = counts.shape[0]
    n_i = counts.sum(axis=1)
    N = pixels.sum()
    n_hat_col = [sum(pixels[i] / n_i[i] * counts[i, j] for i in range(q)) for j in range(q)]
    users = [counts[i, i] / n_i[i] for i in range(q)]
    prod = [pixels[j] / n_i[j] * counts[j, j] / n_hat_col[j] for j in range(q)]
    var_o = sum((pixels[i] / N) ** 2 * users[i] * (1 - users[i]) / (n_i[i] - 1) for i in range(q))
    var_p = []
    for j in range(q):
        first = pixels[j] ** 2 * (1 - prod[j]) ** 2 * users[j] * (1 - users[j]) / (n_i[j] - 1)
        second = 0.0
        for i in range(q):
            if i != j:
                f = counts[i, j] / n_i[i]
                second += pixels[i] ** 2 * f * (1 - f) / (n_i[i] - 1)
        var_p.append((first + prod[j] ** 2 * second) / n_hat_col[j] ** 2)
    se_area = []
    for k in range(q):
        s = 0.0
        for i in range(q):
            f = counts[i, k] / n_i[i]
            s += (pixels[i] / N) ** 2 * f * (1 - f) / (n_i[i] - 1)
        se_area.append(N * math.sqrt(s))
    return math.sqrt(var_o), np.sqrt(var_p), np.array(se_area), np.array(n_hat_col)


def test_olofsson_standard_errors_against_literal_equations():
    rng = np.random.default_rng(7)
    for counts, pixels in [
        (OLOFSSON_COUNTS, OLOFSSON_PIXELS),
        (rng.integers(1, 40, size=(3, 3)) + np.diag([50, 60, 70]), np.array([5e4, 3e5, 2e6])),
    ]:
        r = assess(counts, list("abcd")[: len(pixels)], mapped_area=pixels)
        se_o, se_p, se_area, n_hat = _olofsson_by_pixels(counts.astype(float), pixels.astype(float))
        assert r.area_adjusted_overall_accuracy_se == pytest.approx(se_o, rel=1e-12)
        np.testing.assert_allclose(r.area_adjusted_producers_accuracy_se, se_p, rtol=1e-12)
        np.testing.assert_allclose(r.area_se, se_area, rtol=1e-12)
        np.testing.assert_allclose(r.area_estimate, n_hat, rtol=1e-12)


def test_proportional_allocation_reduces_to_sample_figures():
    # When the mapped areas are proportional to the sample sizes per map class, the
    # stratified estimator equals the plain sample proportions.
    counts = np.array([[40, 5, 3], [7, 30, 2], [1, 6, 50]])
    r = assess(counts, ["a", "b", "c"], mapped_area=counts.sum(axis=1) * 12.5)
    assert r.area_adjusted_overall_accuracy == pytest.approx(r.overall_accuracy)
    np.testing.assert_allclose(r.area_adjusted_producers_accuracy, r.producers_accuracy)
    np.testing.assert_allclose(r.area_proportion_matrix, counts / counts.sum())
    assert r.quantity_disagreement == pytest.approx(r.quantity_disagreement_sample)
    assert r.allocation_disagreement == pytest.approx(r.allocation_disagreement_sample)


# ------------------------------------------------------------------ Kappa


def _expand(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = matrix.shape[0]
    mapped = np.repeat(np.repeat(np.arange(k), k), matrix.ravel())
    reference = np.repeat(np.tile(np.arange(k), k), matrix.ravel())
    return mapped, reference


def _kappa_variance_delta_numeric(matrix: np.ndarray) -> float:
    """Multinomial delta method, gradient by central differences (independent of theta1-4)."""
    n = matrix.sum()
    p = (matrix / n).ravel()
    grad = np.empty_like(p)
    h = 1e-6
    for idx in range(p.size):
        up, dn = p.copy(), p.copy()
        up[idx] += h
        dn[idx] -= h
        shape = matrix.shape
        # Unnormalised perturbation: kappa is evaluated on p itself (no renormalisation),
        # so that the multinomial covariance (diag(p) - p p^T) / n applies directly.
        grad[idx] = (_kappa_raw(up.reshape(shape)) - _kappa_raw(dn.reshape(shape))) / (2 * h)
    cov = (np.diag(p) - np.outer(p, p)) / n
    return float(grad @ cov @ grad)


def _kappa_raw(p: np.ndarray) -> float:
    po = np.trace(p)
    pe = float(p.sum(axis=1) @ p.sum(axis=0))
    return (po - pe) / (1 - pe)


@pytest.mark.parametrize(
    "counts",
    [
        CG_COUNTS,
        OLOFSSON_COUNTS,
        np.array([[60, 30], [0, 10]]),
        np.array([[45, 15, 5], [2, 20, 3], [1, 2, 7]]),
    ],
)
def test_kappa_matches_sklearn_and_variance_matches_delta_method(counts):
    r = assess(counts, list(range(counts.shape[0])))
    mapped, reference = _expand(counts)
    assert len(mapped) == counts.sum()
    assert r.kappa == pytest.approx(cohen_kappa_score(mapped, reference), rel=1e-12)
    assert r.kappa_variance == pytest.approx(_kappa_variance_delta_numeric(counts), rel=1e-6)
    # orientation does not matter for Kappa or its variance
    rt = assess(counts.T, list(range(counts.shape[0])))
    assert rt.kappa == pytest.approx(r.kappa)
    assert rt.kappa_variance == pytest.approx(r.kappa_variance)
    z = 1.959963984540054
    lo, hi = r.kappa_ci
    assert lo == pytest.approx(r.kappa - z * math.sqrt(r.kappa_variance))
    assert hi == pytest.approx(r.kappa + z * math.sqrt(r.kappa_variance))


def test_kappa_variance_is_not_the_simple_approximation():
    counts = np.array([[600, 300], [0, 100]])
    r = assess(counts, ["a", "b"])
    n = counts.sum()
    po = np.trace(counts) / n
    pe = float(counts.sum(axis=1) @ counts.sum(axis=0)) / n**2
    simple = po * (1 - po) / (n * (1 - pe) ** 2)
    assert simple / r.kappa_variance == pytest.approx(2.0417, rel=1e-3)
    # Monte Carlo under multinomial sampling agrees with the full formula, not the simple one.
    rng = np.random.default_rng(20240501)
    draws = rng.multinomial(n, (counts / n).ravel(), size=20_000).reshape(-1, 2, 2) / n
    po_s = draws[:, 0, 0] + draws[:, 1, 1]
    pe_s = np.einsum("ri,ri->r", draws.sum(axis=2), draws.sum(axis=1))
    mc_var = np.var((po_s - pe_s) / (1 - pe_s), ddof=1)
    assert mc_var == pytest.approx(r.kappa_variance, rel=0.06)
    assert abs(mc_var - simple) / simple > 0.4


def test_kappa_variance_explicit_sum_over_cells():
    # theta4 transcribed cell by cell with explicit loops (catches a row/column index swap).
    m = CG_COUNTS.astype(float)
    n = m.sum()
    k = m.shape[0]
    row = [sum(m[i, :]) for i in range(k)]
    col = [sum(m[:, i]) for i in range(k)]
    t1 = sum(m[i, i] for i in range(k)) / n
    t2 = sum(row[i] * col[i] for i in range(k)) / n**2
    t3 = sum(m[i, i] * (row[i] + col[i]) for i in range(k)) / n**2
    t4 = sum(m[i, j] * (row[j] + col[i]) ** 2 for i in range(k) for j in range(k)) / n**3
    v = (
        t1 * (1 - t1) / (1 - t2) ** 2
        + 2 * (1 - t1) * (2 * t1 * t2 - t3) / (1 - t2) ** 3
        + (1 - t1) ** 2 * (t4 - 4 * t2**2) / (1 - t2) ** 4
    ) / n
    assert kappa_variance(CG_COUNTS) == pytest.approx(v, rel=1e-12)
    assert assess(CG_COUNTS, CG_LABELS).kappa_variance == pytest.approx(v, rel=1e-12)


def test_congalton_green_published_example():
    r = assess(CG_COUNTS, CG_LABELS)
    assert r.n == 434
    assert round(r.overall_accuracy, 2) == 0.74  # 321 / 434
    assert round(r.kappa, 2) == 0.65
    # producer's: D 65/75 = 87 %, C 81/103 = 79 %, AG 85/115 = 74 %, SB 90/141 = 64 %
    np.testing.assert_array_equal(np.round(r.producers_accuracy * 100), [87, 79, 74, 64])
    # user's: D 65/115 = 57 %, C 81/100 = 81 %, AG 85/115 = 74 %, SB 90/104 = 87 %
    np.testing.assert_array_equal(np.round(r.users_accuracy * 100), [57, 81, 74, 87])


def test_kappa_undefined_for_single_class():
    r = assess([[12]], ["forest"])
    assert math.isnan(r.kappa) and math.isnan(r.kappa_variance)
    d = r.to_dict()
    assert d["kappa"] is None and d["kappa_ci"] == [None, None]
    assert d["overall_accuracy"] == 1.0
    json.dumps(d, allow_nan=False)


# ------------------------------------------------------------------ Pontius & Millones


@pytest.mark.parametrize(
    "counts, quantity, allocation",
    [
        ([[40, 10], [5, 45]], 0.05, 0.10),
        ([[50, 10], [0, 40]], 0.10, 0.00),  # pure quantity disagreement
        ([[40, 10], [10, 40]], 0.00, 0.20),  # pure allocation disagreement
        ([[30, 5, 5], [10, 20, 0], [0, 10, 20]], 0.05, 0.25),
    ],
)
def test_pontius_millones_hand_examples(counts, quantity, allocation):
    r = assess(counts, list(range(len(counts))))
    assert r.disagreement_basis == "sample"
    assert r.quantity_disagreement == pytest.approx(quantity)
    assert r.allocation_disagreement == pytest.approx(allocation)
    assert r.quantity_disagreement_sample == pytest.approx(quantity)
    assert r.allocation_disagreement_sample == pytest.approx(allocation)
    assert quantity + allocation == pytest.approx(1 - r.overall_accuracy)


def test_pontius_millones_sum_to_disagreement_random():
    rng = np.random.default_rng(3)
    for _ in range(20):
        k = int(rng.integers(2, 7))
        counts = rng.integers(0, 30, size=(k, k)) + np.diag(rng.integers(1, 60, size=k))
        area = rng.uniform(1, 1000, size=k)
        r = assess(counts, list(range(k)), mapped_area=area)
        assert r.disagreement_basis == "area_weighted"
        assert r.quantity_disagreement_sample + r.allocation_disagreement_sample == pytest.approx(
            1 - r.overall_accuracy
        )
        assert r.quantity_disagreement + r.allocation_disagreement == pytest.approx(
            1 - r.area_adjusted_overall_accuracy
        )
        assert r.quantity_disagreement >= 0 and r.allocation_disagreement >= 0


def test_olofsson_area_weighted_disagreement(olofsson):
    # |0.020-0.0235086| + |0.015-0.0129846| + |0.320-0.3175221| + |0.645-0.6459846|, halved
    assert olofsson.quantity_disagreement == pytest.approx(0.0044932, abs=1e-7)
    assert olofsson.allocation_disagreement == pytest.approx(
        1 - olofsson.area_adjusted_overall_accuracy - 0.0044932, abs=1e-7
    )
    # sample rows 75, 75, 165, 325 vs columns 69, 56, 175, 340: (6 + 19 + 10 + 15) / 2 / 640
    assert olofsson.quantity_disagreement_sample == pytest.approx(25 / 640)


# ------------------------------------------------------------------ missing classes


def test_map_class_without_samples_and_without_area():
    counts = np.zeros((5, 5), dtype=int)
    counts[:4, :4] = OLOFSSON_COUNTS
    labels = OLOFSSON_LABELS + ["water"]
    area = np.append(OLOFSSON_HA, 0.0)
    r = assess(counts, labels, mapped_area=area)
    base = assess(OLOFSSON_COUNTS, OLOFSSON_LABELS, mapped_area=OLOFSSON_HA)
    assert math.isnan(r.users_accuracy[4]) and math.isnan(r.producers_accuracy[4])
    assert math.isnan(r.area_adjusted_users_accuracy[4])
    assert math.isnan(r.area_adjusted_producers_accuracy[4])
    np.testing.assert_allclose(r.area_estimate[:4], base.area_estimate)
    np.testing.assert_allclose(r.area_se[:4], base.area_se)
    np.testing.assert_allclose(r.area_adjusted_producers_accuracy_se[:4], base.area_adjusted_producers_accuracy_se)
    assert r.area_estimate[4] == 0 and list(r.area_ci[4]) == [0.0, 0.0]
    assert r.area_adjusted_overall_accuracy == pytest.approx(base.area_adjusted_overall_accuracy)
    assert r.kappa == pytest.approx(base.kappa)
    d = r.to_dict()
    assert d["users_accuracy"][4] is None and d["producers_accuracy"][4] is None
    json.dumps(d, allow_nan=False)


def test_map_class_without_samples_but_with_area_raises():
    counts = np.array([[20, 2, 0], [0, 0, 0], [3, 1, 30]])
    with pytest.raises(ValueError, match=r"mapped area > 0 but no validation samples.*'b'"):
        assess(counts, ["a", "b", "c"], mapped_area=[10, 5, 50])
    # without areas it is fine: the user's accuracy of b is simply undefined
    r = assess(counts, ["a", "b", "c"])
    assert math.isnan(r.users_accuracy[1])
    assert r.producers_accuracy[1] == pytest.approx(0.0)


def test_reference_class_never_observed():
    counts = np.array([[20, 0, 2], [3, 0, 5], [1, 0, 30]])  # class b never in the reference
    r = assess(counts, ["a", "b", "c"], mapped_area=[100, 20, 400])
    assert math.isnan(r.producers_accuracy[1])
    assert r.users_accuracy[1] == 0.0
    assert math.isnan(r.area_adjusted_producers_accuracy[1])
    assert r.area_estimate[1] == 0.0 and r.area_se[1] == 0.0
    assert r.area_estimate.sum() == pytest.approx(520)
    json.dumps(r.to_dict(), allow_nan=False)


def test_single_sample_stratum_warns_and_gives_nan_se():
    counts = np.array([[20, 2], [0, 1]])
    with pytest.warns(RuntimeWarning, match="single validation sample"):
        r = assess(counts, ["a", "b"], mapped_area=[90, 10])
    assert np.all(np.isfinite(r.area_estimate))
    assert np.all(np.isnan(r.area_se))
    assert math.isnan(r.area_adjusted_overall_accuracy_se)
    assert math.isnan(r.area_adjusted_users_accuracy_se[1])
    assert np.isfinite(r.area_adjusted_users_accuracy_se[0])
    json.dumps(r.to_dict(), allow_nan=False)
    # with zero mapped area the thin stratum carries no weight: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r0 = assess(counts, ["a", "b"], mapped_area=[90, 0])
    assert np.all(np.isfinite(r0.area_se))


# ------------------------------------------------------------------ output


def _all_plain(x) -> bool:
    if isinstance(x, dict):
        return all(isinstance(k, str) and _all_plain(v) for k, v in x.items())
    if isinstance(x, list):
        return all(_all_plain(v) for v in x)
    return x is None or type(x) in (int, float, str, bool)


def test_to_dict_is_plain_json(olofsson):
    d = olofsson.to_dict()
    assert _all_plain(d)
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert back["labels"] == OLOFSSON_LABELS
    assert back["matrix"] == OLOFSSON_COUNTS.tolist()
    assert back["n"] == 640
    assert len(back["kappa_ci"]) == 2
    assert len(back["area_ci"]) == 4 and len(back["area_ci"][0]) == 2
    for key in [
        "overall_accuracy",
        "kappa",
        "kappa_variance",
        "users_accuracy",
        "producers_accuracy",
        "quantity_disagreement",
        "allocation_disagreement",
        "area_estimate",
        "area_adjusted_users_accuracy",
        "area_adjusted_producers_accuracy",
        "area_adjusted_overall_accuracy",
    ]:
        assert key in back


def test_to_dict_without_area_has_no_area_keys():
    d = assess(CG_COUNTS, np.array(CG_LABELS)).to_dict()
    assert not any(k.startswith("area") for k in d) and "mapped_area" not in d
    assert d["labels"] == CG_LABELS and _all_plain(d)


def test_result_is_frozen(olofsson):
    with pytest.raises(AttributeError):
        olofsson.kappa = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        olofsson.area_estimate[0] = 0.0


def test_alpha_changes_interval_width():
    r90 = assess(CG_COUNTS, CG_LABELS, alpha=0.10)
    r95 = assess(CG_COUNTS, CG_LABELS)
    w90 = r90.kappa_ci[1] - r90.kappa_ci[0]
    w95 = r95.kappa_ci[1] - r95.kappa_ci[0]
    assert w90 / w95 == pytest.approx(1.6448536269514722 / 1.959963984540054)
    assert r90.confidence_level == pytest.approx(0.90)


# ------------------------------------------------------------------ invalid input


@pytest.mark.parametrize(
    "matrix, labels, kwargs, message",
    [
        ([[1, 2, 3], [4, 5, 6]], ["a", "b"], {}, "square"),
        ([1, 2, 3], ["a", "b", "c"], {}, "square"),
        ([[1, 2], [3, 4]], ["a", "b", "c"], {}, "labels has 3"),
        ([[1, -2], [3, 4]], ["a", "b"], {}, "negative"),
        ([[1, np.nan], [3, 4]], ["a", "b"], {}, "non-finite"),
        ([[1, np.inf], [3, 4]], ["a", "b"], {}, "non-finite"),
        ([[0, 0], [0, 0]], ["a", "b"], {}, "empty"),
        ([[1, 2], [3, 4]], ["a", "a"], {}, "unique"),
        ([[1, 2], [3, 4]], ["a", "b"], {"mapped_area": [1, 2, 3]}, "one value per label"),
        ([[1, 2], [3, 4]], ["a", "b"], {"mapped_area": [1, -2]}, "non-negative"),
        ([[1, 2], [3, 4]], ["a", "b"], {"mapped_area": [0, 0]}, "sums to 0"),
        ([[1, 2], [3, 4]], ["a", "b"], {"mapped_area": [1, np.nan]}, "non-finite"),
        ([[1, 2], [3, 4]], ["a", "b"], {"alpha": 0.0}, "alpha"),
        ([[1, 2], [3, 4]], ["a", "b"], {"alpha": 1.0}, "alpha"),
        ([[1, 2], [3, 4]], ["a", "b"], {"alpha": -0.1}, "alpha"),
        ([[1, 2], [3, 4]], ["a", "b"], {"alpha": "0.05"}, "alpha"),
        ([[1, 2], [3, 4]], ["a", "b"], {"alpha": True}, "alpha"),
    ],
)
def test_invalid_input(matrix, labels, kwargs, message):
    with pytest.raises(ValueError, match=message):
        assess(matrix, labels, **kwargs)


# ------------------------------------------------------------------ confusion_matrix


def test_confusion_matrix_orientation_and_counts():
    mapped = ["forest", "forest", "crop", "crop", "crop", "water"]
    reference = ["forest", "crop", "crop", "crop", "forest", "water"]
    cm = confusion_matrix(mapped, reference, ["forest", "crop", "water"])
    np.testing.assert_array_equal(cm, [[1, 1, 0], [1, 2, 0], [0, 0, 1]])
    assert cm.dtype.kind == "i"
    # rows = map: the map says forest twice, one of which is crop in the reference
    r = assess(cm, ["forest", "crop", "water"])
    assert r.users_accuracy[0] == 0.5 and r.producers_accuracy[1] == pytest.approx(2 / 3)


def test_confusion_matrix_roundtrip_and_numeric_arrays():
    mapped, reference = _expand(OLOFSSON_COUNTS)
    codes = np.array([10, 20, 30, 40])
    cm = confusion_matrix(codes[mapped], codes[reference].reshape(-1, 1), codes)
    np.testing.assert_array_equal(cm, OLOFSSON_COUNTS)
    # label order defines row/column order
    cm_rev = confusion_matrix(codes[mapped], codes[reference], codes[::-1])
    np.testing.assert_array_equal(cm_rev, OLOFSSON_COUNTS[::-1, ::-1])


def test_confusion_matrix_unknown_labels():
    mapped = np.array([1, 2, 3, 9, 1])
    reference = np.array([1, 2, 7, 2, 1])
    with pytest.raises(ValueError, match=r"unknown labels 7, 9"):
        confusion_matrix(mapped, reference, [1, 2, 3])
    cm = confusion_matrix(mapped, reference, [1, 2, 3], strict=False)
    np.testing.assert_array_equal(cm, [[2, 0, 0], [0, 1, 0], [0, 0, 0]])
    # NaN (e.g. nodata) counts as unknown
    with pytest.raises(ValueError, match="unknown labels"):
        confusion_matrix([1.0, np.nan], [1.0, 2.0], [1, 2])
    assert confusion_matrix([1.0, np.nan], [1.0, 2.0], [1, 2], strict=False).sum() == 1


def test_confusion_matrix_length_mismatch():
    with pytest.raises(ValueError, match="same number of samples"):
        confusion_matrix([1, 2, 3], [1, 2], [1, 2, 3])


# ------------------------------------------------------------------ sampling design
# Issue 13's two-class case: map A covers 90 % of the area and 5 % of it is really B; map B
# covers 10 % and 20 % of it is really A. True B share = 0.9 * 0.05 + 0.1 * 0.8 = 0.125.
TWO = ["A", "B"]
TWO_AREA = [900.0, 100.0]
P_REF_GIVEN_MAP = np.array([[0.95, 0.05], [0.20, 0.80]])  # rows map A, B


def test_two_class_map_stratified_sample_is_unbiased_by_hand():
    # the expected composition of a map-stratified sample of 100 (map A) + 50 (map B)
    counts = np.array([[95, 5], [10, 40]])
    r = assess(counts, TWO, mapped_area=TWO_AREA, design="map-stratified")
    assert r.probability_design and r.has_area and r.area_not_evaluated_reason is None
    assert r.area_proportion[1] == pytest.approx(0.125)  # 0.9 * 5/100 + 0.1 * 40/50
    # eq. 10: 0.9^2 * 0.05 * 0.95 / 99 + 0.1^2 * 0.8 * 0.2 / 49
    se = math.sqrt(0.81 * 0.05 * 0.95 / 99 + 0.01 * 0.8 * 0.2 / 49)
    assert r.area_proportion_se[1] == pytest.approx(se) and se == pytest.approx(0.020526, abs=1e-6)
    assert r.area_estimate[1] == pytest.approx(125.0)
    # simple random: the same numbers (post-stratified estimator)
    s = assess(counts, TWO, mapped_area=TWO_AREA, design="simple-random")
    assert s.area_proportion[1] == pytest.approx(0.125) and s.design == "simple-random"


def test_two_class_reference_split_is_not_evaluated():
    # 50 samples per reference class: P(map | ref) = W_i p(ref | map) / p(ref); ref A: 0.855 / 0.875
    # from map A, ref B: 0.045 / 0.125 = 0.36 from map A
    counts = np.array([[50 * 0.855 / 0.875, 50 * 0.36], [50 * 0.02 / 0.875, 50 * 0.64]])
    # what the estimator gives when it ignores the design (today's default): the 0.339 +- 0.097
    blind = assess(counts, TWO, mapped_area=TWO_AREA, design="map-stratified")
    assert blind.area_proportion[1] == pytest.approx(0.339, abs=5e-4)
    assert blind.z * blind.area_proportion_se[1] == pytest.approx(0.097, abs=5e-4)
    r = assess(counts, TWO, mapped_area=TWO_AREA, design="reference-split")
    assert not r.probability_design and not r.has_area
    assert r.area_estimate is None and r.area_proportion is None and r.area_adjusted_overall_accuracy is None
    assert math.isnan(r.quantity_disagreement) and r.disagreement_basis == "not evaluated"
    assert "reference-split" in r.area_not_evaluated_reason and "stratified by map class" in r.area_not_evaluated_reason
    # sample-based figures stay, and equal those without areas
    plain = assess(counts, TWO)
    assert r.kappa == pytest.approx(plain.kappa) and r.overall_accuracy == pytest.approx(plain.overall_accuracy)
    assert r.quantity_disagreement_sample == pytest.approx(plain.quantity_disagreement_sample)
    d = r.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["design"] == "reference-split" and d["probability_design"] is False
    assert d["area_estimates"] == "not evaluated" and d["area_not_evaluated_reason"] == r.area_not_evaluated_reason
    for key in (
        "area_estimate",
        "area_ci",
        "area_proportion",
        "area_adjusted_overall_accuracy",
        "area_adjusted_users_accuracy",
        "quantity_disagreement",
        "allocation_disagreement",
    ):
        assert d[key] == "not evaluated", key
    assert d["mapped_area"] == TWO_AREA and d["area_weights"] == [0.9, 0.1]
    assert isinstance(d["kappa"], float) and isinstance(d["allocation_disagreement_sample"], float)


def test_two_class_designs_by_simulation():
    # 300 seeded replicates of each design: map-stratified estimates centre on 0.125 with
    # ~68 % of them within one SE; the reference-split ones centre on 0.339.
    rng = np.random.default_rng(13)
    est, cover = [], []
    for _ in range(300):
        b_in_a = rng.binomial(100, 0.05)
        b_in_b = rng.binomial(50, 0.80)
        r = assess([[100 - b_in_a, b_in_a], [50 - b_in_b, b_in_b]], TWO, mapped_area=TWO_AREA)
        est.append(r.area_proportion[1])
        cover.append(abs(r.area_proportion[1] - 0.125) <= r.area_proportion_se[1])
    assert np.mean(est) == pytest.approx(0.125, abs=0.003)  # MC s.e. 0.0205 / sqrt(300) = 0.0012
    assert 0.6 <= np.mean(cover) <= 0.76
    ref = []
    for _ in range(300):
        a_from_b = rng.binomial(50, 0.02 / 0.875)
        b_from_a = rng.binomial(50, 0.36)
        m = [[50 - a_from_b, b_from_a], [a_from_b, 50 - b_from_a]]
        ref.append(assess(m, TWO, mapped_area=TWO_AREA).area_proportion[1])
    assert np.mean(ref) == pytest.approx(0.339, abs=0.01)
    assert assess(m, TWO, mapped_area=TWO_AREA, design="reference-split").area_proportion is None


def test_probability_design_withheld_with_a_reason_and_bad_design():
    r = assess([[95, 5], [10, 40]], TWO, mapped_area=TWO_AREA, not_evaluated="strata are another map's")
    assert r.design == "map-stratified" and r.area_estimate is None
    assert r.to_dict()["area_not_evaluated_reason"] == "strata are another map's"
    with pytest.raises(ValueError, match=r"design must be one of \['map-stratified', 'simple-random'.*'random'"):
        assess([[95, 5], [10, 40]], TWO, design="random")
    # a non-probability design does not need a sample in every mapped stratum
    r = assess([[10, 2], [0, 0]], TWO, mapped_area=TWO_AREA, design="purposive")
    assert r.area_not_evaluated_reason and "purposive" in r.area_not_evaluated_reason
    # without mapped areas nothing is withheld: the sample figures as before
    d = assess([[95, 5], [10, 40]], TWO, design="unknown").to_dict()
    assert d["disagreement_basis"] == "sample" and "area_estimates" not in d and d["design"] == "unknown"


# ------------------------------------------------------------------ Stehman (2014)
# Int. J. Remote Sens. 35(13):4923-4939, numerical example (his Table 2): 40 units, 10 per
# stratum, strata of 40,000 / 30,000 / 20,000 / 10,000 pixels, map classes that differ from
# the strata for 6 units.
STEHMAN_STRATUM = list("A" * 10 + "B" * 10 + "C" * 10 + "D" * 10)
STEHMAN_MAP = list("AAAAAAABBB" + "A" + "B" * 11 + "C" * 6 + "BB" + "D" * 10)
STEHMAN_REF = list("AAAAACBABC" + "ABBBBBAABB" + "CCCCCDDBBA" + "DDDDDDDCCB")
STEHMAN_N = {"A": 40_000, "B": 30_000, "C": 20_000, "D": 10_000}


def test_stehman_2014_published_example():
    r = assess_stratified(STEHMAN_STRATUM, STEHMAN_MAP, STEHMAN_REF, list("ABCD"), STEHMAN_N)
    assert r.area_estimator == "stehman-2014" and r.area_stratum_samples.tolist() == [10, 10, 10, 10]
    # published (pp. 4932-4936), to the 2-3 decimals printed
    assert round(r.area_proportion[0], 2) == 0.35 and round(r.area_proportion[2], 2) == 0.20
    assert round(r.area_adjusted_overall_accuracy, 2) == 0.63
    assert round(r.area_adjusted_users_accuracy[1], 3) == 0.574
    assert round(r.area_adjusted_producers_accuracy[1], 3) == 0.794
    assert round(r.area_proportion_matrix[1, 2], 2) == 0.08
    assert round(r.area_proportion_se[0], 3) == 0.082 and round(r.area_proportion_se[2], 3) == 0.064
    assert round(r.area_adjusted_overall_accuracy_se, 3) == 0.085
    assert round(r.area_adjusted_users_accuracy_se[1], 3) == 0.125
    # the paper prints SE(P_B) = 0.114; eq. 28 on Table 2 gives 0.1166 (also with the fpc, and so
    # do the mapaccuracy R package and EnMAP-Box): the printed value is not reproduced
    assert r.area_adjusted_producers_accuracy_se[1] == pytest.approx(0.116567, abs=1e-6)
    # full precision, ratios by hand: U_B = (0.3 * 0.1 + 0.3 * 0.5 ... ) = 0.27 / 0.47; P_B = 0.27 / 0.34
    assert r.area_adjusted_users_accuracy[1] == pytest.approx(0.27 / 0.47, abs=1e-15)
    assert r.area_adjusted_producers_accuracy[1] == pytest.approx(0.27 / 0.34, abs=1e-15)
    assert r.area_proportion.tolist() == pytest.approx([0.35, 0.34, 0.20, 0.11], abs=1e-15)
    assert r.area_proportion_se.tolist() == pytest.approx([0.08225975, 0.07586538, 0.06429101, 0.03073181], abs=1e-8)
    assert r.area_estimate.tolist() == pytest.approx([35_000, 34_000, 20_000, 11_000])  # unit_area 1 (pixels)
    # headline disagreement from the estimated matrix p_ij
    q, a = r.quantity_disagreement, r.allocation_disagreement
    assert r.disagreement_basis == "area_weighted" and q + a == pytest.approx(1 - 0.63)
    rows, cols = r.area_proportion_matrix.sum(axis=1), r.area_proportion_matrix.sum(axis=0)
    assert q == pytest.approx(np.abs(rows - cols).sum() / 2)
    d = r.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["area_estimator"] == "stehman-2014" and d["area_strata"] == list("ABCD") and d["area_fpc"] is False


def test_stehman_by_hand_two_strata_three_classes():
    # h1 (600 px): (map, ref) aa aa ab bb ca ac; h2 (400 px): bb bc cc bb; W = 0.6, 0.4
    stratum = [1] * 6 + [2] * 4
    mapped = list("aaabca") + list("bbcb")
    ref = list("aabbac") + list("bccb")
    r = assess_stratified(stratum, mapped, ref, ["a", "b", "c"], {1: 600, 2: 400}, unit_area=0.5)
    # p_a = 0.6 * 3/6 = 0.3, V = 0.6^2 * s2 / 6 with s2 = 6/5 * 0.25 = 0.3 -> 0.018
    # p_b = 0.6 / 3 + 0.4 * 0.5 = 0.4, V = 0.36 * (4/3 / 5) / 6 + 0.16 * (1/3) / 4 = 0.0293333
    assert r.area_proportion.tolist() == pytest.approx([0.3, 0.4, 0.3], abs=1e-15)
    assert r.area_proportion_se[:2].tolist() == pytest.approx([math.sqrt(0.018), math.sqrt(0.016 + 0.04 / 3)])
    assert r.area_estimate.tolist() == pytest.approx([150.0, 200.0, 150.0])  # 1000 px of 0.5
    # O = 0.6 * 0.5 + 0.4 * 0.75 = 0.6, V = 0.36 * 0.3 / 6 + 0.16 * 0.25 / 4 = 0.028
    assert r.area_adjusted_overall_accuracy == pytest.approx(0.6)
    assert r.area_adjusted_overall_accuracy_se == pytest.approx(math.sqrt(0.028))
    # U_a = 0.2 / 0.4 = 0.5; d = y - 0.5 x in h1 = (.5, .5, -.5, 0, 0, -.5): s2 = 0.2; V = 0.36 * 0.2 / 6 / 0.4^2
    # U_b = 0.3 / 0.4 = 0.75; d h1 = (0, 0, 0, .25, 0, 0), h2 = (.25, -.75, 0, .25): s2_d = 0.0104167, 0.2239583
    assert r.area_adjusted_users_accuracy[:2].tolist() == pytest.approx([0.5, 0.75])
    assert r.area_adjusted_users_accuracy_se[:2].tolist() == pytest.approx(
        [
            math.sqrt(0.075),
            math.sqrt((0.36 * ((0.0625 - 6 / 24**2) / 5) / 6 + 0.16 * ((0.6875 - 4 / 16**2) / 3) / 4) / 0.16),
        ],
        rel=1e-12,
    )
    # P_a = 0.2 / 0.3; d h1 = (1/3, 1/3, 0, 0, -2/3, 0): s2 = (6/9) / 5; V = 0.36 * s2 / 6 / 0.09
    assert r.area_adjusted_producers_accuracy[0] == pytest.approx(2 / 3)
    assert r.area_adjusted_producers_accuracy_se[0] == pytest.approx(math.sqrt(0.36 * (6 / 9 / 5) / 6 / 0.09))
    # cells: p_ab (unit 3) = p_ca (unit 5) = 0.6 / 6; p_bc = 0.4 / 4
    p = r.area_proportion_matrix
    assert (p[0, 1], p[2, 0], p[1, 2]) == pytest.approx((0.1, 0.1, 0.1)) and p.sum() == pytest.approx(1.0)
    # with the finite population correction (1 - n_h / N_h) of eqs. 25 and 28: 0.99 and 0.99
    f = assess_stratified(stratum, mapped, ref, ["a", "b", "c"], {1: 600, 2: 400}, fpc=True)
    assert f.area_proportion_se[0] == pytest.approx(math.sqrt(0.99 * 0.018))
    assert f.area_adjusted_overall_accuracy_se == pytest.approx(math.sqrt(0.99 * 0.018 + 0.99 * 0.01))
    assert f.area_adjusted_users_accuracy_se[0] == pytest.approx(math.sqrt(0.99 * 0.075))
    # one stratum (a simple random sample): the plain sample proportions
    s = assess_stratified([0] * 10, mapped, ref, ["a", "b", "c"], {0: 1000})
    assert s.area_proportion.tolist() == pytest.approx([0.3, 0.4, 0.3])
    assert s.area_adjusted_users_accuracy[0] == pytest.approx(2 / 4)  # sample: 2 of the 4 mapped a
    assert s.area_proportion_se[0] == pytest.approx(math.sqrt(0.3 * 0.7 / 9))


def test_stehman_with_map_classes_as_strata_equals_olofsson():
    mapped, ref = [], []
    for i, a in enumerate(OLOFSSON_LABELS):
        for j, b in enumerate(OLOFSSON_LABELS):
            mapped += [a] * int(OLOFSSON_COUNTS[i, j])
            ref += [b] * int(OLOFSSON_COUNTS[i, j])
    sizes = dict(zip(OLOFSSON_LABELS, OLOFSSON_HA, strict=True))
    st = assess_stratified(mapped, mapped, ref, OLOFSSON_LABELS, sizes, mapped_area=OLOFSSON_HA)
    ol = assess(OLOFSSON_COUNTS, OLOFSSON_LABELS, mapped_area=OLOFSSON_HA)
    assert (st.area_estimator, ol.area_estimator) == ("stehman-2014", "olofsson-2014")
    for key in (
        "area_weights",
        "area_proportion_matrix",
        "area_proportion",
        "area_proportion_se",
        "area_adjusted_overall_accuracy",
        "area_adjusted_overall_accuracy_se",
        "area_adjusted_users_accuracy",
        "area_adjusted_users_accuracy_se",
        "area_adjusted_producers_accuracy",
        "area_adjusted_producers_accuracy_se",
        "quantity_disagreement",
        "allocation_disagreement",
        "kappa",
        "overall_accuracy",
    ):
        np.testing.assert_allclose(getattr(st, key), getattr(ol, key), rtol=0, atol=1e-12, err_msg=key)
    for key in ("area_estimate", "area_se", "area_ci"):  # ha, up to 5.8e5: relative 1e-12
        np.testing.assert_allclose(getattr(st, key), getattr(ol, key), rtol=1e-12, atol=0, err_msg=key)


def test_stehman_errors_and_edge_cases():
    args = ([1, 1, 2], ["a", "b", "a"], ["a", "b", "b"], ["a", "b"])
    with pytest.raises(ValueError, match=r"strata without a size in stratum_size: 2"):
        assess_stratified(*args, {1: 10})
    with pytest.raises(ValueError, match=r"strata with units but no sample unit: \[3\]"):
        assess_stratified(*args, {1: 10, 2: 5, 3: 4})
    with pytest.raises(ValueError, match="one value per sample unit"):
        assess_stratified([1, 1], ["a", "b", "a"], ["a", "b", "b"], ["a", "b"], {1: 10})
    with pytest.warns(RuntimeWarning, match=r"strata \[2\] have a single sample unit"):
        r = assess_stratified(*args, {1: 10, 2: 5})
    assert math.isnan(r.area_proportion_se[0]) and r.area_proportion[1] == pytest.approx(10 / 15 * 0.5 + 5 / 15)
    # a non-probability design or a reason: not evaluated, as with assess
    n = assess_stratified(*args, {1: 10, 2: 5}, mapped_area=[8.0, 7.0], design="purposive")
    assert not n.has_area and n.to_dict()["area_estimator"] == "not evaluated" and n.area_stratum_size is None
    w = assess_stratified(*args, {1: 10, 2: 5}, not_evaluated="no")
    assert w.area_not_evaluated_reason == "no" and w.disagreement_basis == "not evaluated"


def test_stehman_unbiased_when_the_map_changed_by_simulation():
    # A map (A 9,000 px, 5 % of it really B; B 1,000 px, 20 % really A) is sampled by its classes,
    # 100 + 50 px; a retrained map then corrects 300 of the B pixels mapped A and maps 250 A
    # pixels B. 200 seeded replicates: Stehman's estimates of the retrained map centre on the
    # truth and about 92 % of the 95 % intervals hold it (2,000 replicates: 0.917, the normal
    # approximation with ~5 B units in stratum A); Olofsson's with the new classes as strata is biased.
    rng = np.random.default_rng(2014)
    first = np.repeat([1, 2], [9000, 1000])
    truth = first.copy()
    truth[rng.choice(9000, 450, replace=False)] = 2
    truth[9000 + rng.choice(1000, 200, replace=False)] = 1
    second = first.copy()
    second[rng.choice(np.flatnonzero((first == 1) & (truth == 2)), 300, replace=False)] = 2
    second[rng.choice(np.flatnonzero((first == 1) & (truth == 1)), 250, replace=False)] = 2
    true_b, true_oa = float((truth == 2).mean()), float((second == truth).mean())
    sizes = {1: 9000, 2: 1000}
    est, oa, cover, naive = [], [], [], []
    for _ in range(200):
        units = np.concatenate([rng.choice(9000, 100, replace=False), 9000 + rng.choice(1000, 50, replace=False)])
        r = assess_stratified(first[units], second[units], truth[units], [1, 2], sizes)
        est.append(r.area_proportion[1])
        oa.append(r.area_adjusted_overall_accuracy)
        cover.append(abs(r.area_proportion[1] - true_b) <= r.z * r.area_proportion_se[1])
        m = confusion_matrix(second[units], truth[units], [1, 2])
        naive.append(assess(m, [1, 2], mapped_area=[8450, 1550]).area_proportion[1])
    assert np.mean(est) == pytest.approx(true_b, abs=0.005)  # MC s.e. 0.020 / sqrt(200) = 0.0014
    assert np.mean(oa) == pytest.approx(true_oa, abs=0.004) and true_oa == pytest.approx(0.94)
    assert 0.85 <= np.mean(cover) <= 0.97
    assert np.mean(naive) - true_b > 0.005  # new map's classes taken for the strata: +0.0094 (2,000 replicates)

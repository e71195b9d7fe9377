"""Cultivation-convenience rules (karstflow.conditions, karstflow.convenience): expressions, tests, the search."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from karstflow.conditions import RuleError, inconvenient, rule_mask, rule_variables
from karstflow.convenience import (
    _Conditions,
    _pair_candidates,
    _pair_scores,
    _score_z,
    evaluate_rules,
    find_interaction_rules,
    threshold_grid,
)
from karstflow.model import fit_abandonment_model, significant_predictors

COLS = ["x1_elevation_m", "x10_area_ha", "x6_population_density_per_km2"]


def test_rule_expressions_are_validated():
    assert rule_variables("x1_elevation_m > 130 and x10_area_ha < 0.2", COLS) == ["x1_elevation_m", "x10_area_ha"]
    assert rule_variables("not (x10_area_ha >= 0.2) or x1_elevation_m == -3", COLS) == ["x10_area_ha", "x1_elevation_m"]
    for bad, msg in (
        ("__import__('os').system('true')", "Call is not allowed"),
        ("x1_elevation_m.max() > 3", "not allowed"),
        ("x1_elevation_m > 'high'", "only numbers may be compared"),
        ("x1_elevation_m > 130 and slope > 3", r"unknown column\(s\) \['slope'\]"),
        ("x1_elevation_m >", "not a valid expression"),
        ("", "non-empty"),
        ("3 > 2", "uses no driver column"),
        ("x1_elevation_m + 3 > 2", "BinOp is not allowed"),
    ):
        with pytest.raises(RuleError, match=msg):
            rule_variables(bad, COLS)


def test_rule_mask_and_inconvenient():
    d = pd.DataFrame(
        {
            "x1_elevation_m": [100, 150, 200, np.nan],
            "x10_area_ha": [0.1, 0.1, 0.5, 0.1],
            "x6_population_density_per_km2": [300, 500, 300, 300],
        }
    )
    assert list(rule_mask(d, "x1_elevation_m > 130 and x10_area_ha < 0.2")) == [False, True, False, False]
    rules = ["x1_elevation_m > 130 and x10_area_ha < 0.2", "x6_population_density_per_km2 < 400 and x10_area_ha < 0.2"]
    assert list(inconvenient(d, rules)) == [True, True, False, True]
    assert list(inconvenient(d, [])) == [False] * 4


def test_evaluate_rules_by_hand():
    # 20 parcels: the rule holds for 6 of them, 5 abandoned; outside 3 of 14 abandoned
    d = pd.DataFrame(
        {
            "x1_elevation_m": [200] * 6 + [50] * 14,
            "x10_area_ha": [0.1] * 20,
            "x6_population_density_per_km2": [300] * 20,
        }
    )
    d["abandoned"] = [1, 1, 1, 1, 1, 0] + [1, 1, 1] + [0] * 11
    out = evaluate_rules(
        d, ["x1_elevation_m > 130 and x10_area_ha < 0.2", "x6_population_density_per_km2 < 400 and x10_area_ha < 0.2"]
    )
    r = out[0]
    assert (r["support"], r["rate"]) == (6, pytest.approx(5 / 6))
    assert r["lift"] == pytest.approx((5 / 6) / (8 / 20))
    # one-sided Fisher: P(>= 5 abandoned among 6 drawn from 8 abandoned of 20)
    p_hand = sum(stats.hypergeom.pmf(k, 20, 8, 6) for k in (5, 6))
    assert r["p"] == pytest.approx(p_hand, rel=1e-10)
    # a rule holding for every parcel has nothing to be compared with: not evaluated
    assert out[1]["support"] == 20 and out[1]["p"] is None and out[1]["p_holm"] is None
    assert r["p_holm"] == pytest.approx(p_hand)  # Holm over the one test made
    assert r["bootstrap_frequency"] is None and r["variables"] == ["x1_elevation_m", "x10_area_ha"]


def test_threshold_grid_rounds_to_significant_digits():
    v = np.linspace(0, 1000, 1001) + 0.37
    assert list(threshold_grid(v, [0.131, 0.5, 0.9], 2)) == [130.0, 500.0, 900.0]
    assert list(threshold_grid(np.linspace(0, 1, 1001), [0.301, 0.304], 2)) == [0.3]  # duplicates dropped
    assert len(threshold_grid(np.ones(10), [0.5], 2)) == 0  # inside the range only


def test_score_statistic_matches_statsmodels_score_test():
    """Independent check of the vectorised score test against statsmodels' GLM score_test."""
    rng = np.random.default_rng(5)
    n = 600
    x = np.column_stack([rng.normal(size=n), rng.normal(size=n), np.ones(n)])
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ [0.8, -0.5, -0.3])))).astype(float)
    fit = sm.GLM(y, x, family=sm.families.Binomial()).fit()
    z = np.array([(x[:, 0] > 0.5) & (x[:, 1] < 0), x[:, 1] > 1.0], dtype=float)
    got = _score_z(x, np.asarray(fit.fittedvalues), y, z)
    for k in range(2):
        chi2 = fit.score_test(exog_extra=z[k][:, None])[0]
        assert got[k] ** 2 == pytest.approx(float(np.squeeze(chi2)), rel=1e-6)
    # the pairwise form (condition matrices) equals the indicator form
    a = _Conditions(
        "a", [(">", 0.0, i) for i in range(3)], np.array([x[:, 0] > t for t in (-0.5, 0, 0.5)], dtype=float)
    )
    b = _Conditions("b", [("<", 0.0, i) for i in range(2)], np.array([x[:, 1] < t for t in (0, 1)], dtype=float))
    s1, support, _ = _pair_scores(a, b, x, np.asarray(fit.fittedvalues), y)
    s2 = _score_z(x, np.asarray(fit.fittedvalues), y, _pair_candidates(a, b)).reshape(3, 2)
    np.testing.assert_allclose(s1, s2, rtol=1e-10)
    assert support[2, 0] == ((x[:, 0] > 0.5) & (x[:, 1] < 0)).sum()


# --------------------------------------------------------------------------------------
# the search on synthetic tables
# --------------------------------------------------------------------------------------


def corner_table(n=1200, seed=0, effect=2.5):
    """No main effects; abandonment jumps where elevation > 250 and area < 0.2."""
    rng = np.random.default_rng(seed)
    d = pd.DataFrame(
        {
            "x1_elevation_m": rng.uniform(20, 400, n),
            "x10_area_ha": rng.uniform(0.05, 1.0, n),
            "x6_population_density_per_km2": rng.uniform(100, 900, n),
        }
    )
    inside = (d["x1_elevation_m"] > 250) & (d["x10_area_ha"] < 0.2)
    eta = -1.5 + effect * inside
    d["abandoned"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return d, inside.to_numpy()


@pytest.mark.parametrize("criterion", ["rate", "interaction"])
def test_search_finds_a_planted_corner(criterion):
    d, inside = corner_table()
    res = find_interaction_rules(d, COLS, criterion=criterion, n_bootstrap=100, n_null=49, seed=1)
    assert len(res.rules) >= 1
    best = res.rules[0]
    assert best["variables"] == ["x1_elevation_m", "x10_area_ha"]
    assert "x1_elevation_m >" in best["rule"] and "x10_area_ha <" in best["rule"]
    found = rule_mask(d, best["rule"])
    assert (found & inside).sum() / (found | inside).sum() > 0.5  # Jaccard overlap
    assert best["p_holm"] < 1e-6 and best["bootstrap_frequency"] >= 0.5 and best["lift"] > 2
    assert set(res.pairs.columns) >= {
        "rule",
        "support",
        "rate",
        "lift",
        "p",
        "p_holm",
        "bootstrap_frequency",
        "selected",
    }
    assert res.pairs["selected"].sum() == len(res.rules)


@pytest.mark.parametrize("criterion", ["rate", "interaction"])
def test_search_on_noise_keeps_no_rule(criterion):
    d, _ = corner_table(effect=0.0, seed=4)
    res = find_interaction_rules(d, COLS, criterion=criterion, n_bootstrap=50, n_null=49, seed=1)
    assert res.rules == []


def test_search_is_deterministic_and_respects_support_and_max_rules():
    d, _ = corner_table()
    a = find_interaction_rules(d, COLS, n_bootstrap=30, seed=3, criterion="rate", min_support=100, max_rules=1)
    b = find_interaction_rules(d, COLS, n_bootstrap=30, seed=3, criterion="rate", min_support=100, max_rules=1)
    pd.testing.assert_frame_equal(a.pairs, b.pairs)
    assert (a.pairs["support"] >= 100).all() and len(a.rules) <= 1
    with pytest.raises(ValueError, match="criterion must be 'rate' or 'interaction'"):
        find_interaction_rules(d, COLS, criterion="lift")


# --------------------------------------------------------------------------------------
# the county demo (800 x 800 px, about 1,600 parcels): the planted interactions are found
# --------------------------------------------------------------------------------------


def test_planted_interactions_are_found_on_the_demo(county_demo_1600):
    """The default search (interaction criterion) on the main-effects model of the planted
    labels keeps exactly the two planted subgroups: same drivers and directions, thresholds
    near the planted 130 m / 0.2 ha / 400 people/km2, most parcels shared."""
    truth, planted = county_demo_1600
    df = truth.rename(columns={"abandoned_true": "abandoned"})
    model = fit_abandonment_model(df)
    sig = significant_predictors(model)
    res = find_interaction_rules(df, sig, base_design=model.design, seed=42)
    assert len(res.rules) == 2, res.pairs
    for rule, term in zip(
        sorted(res.rules, key=lambda r: r["variables"]),
        sorted(planted["interactions"], key=lambda t: t["expr"]),
        strict=True,
    ):
        want = rule_variables(term["expr"], df.columns)
        assert rule["variables"] == want, (rule["rule"], term["expr"])
        found, true = rule_mask(df, rule["rule"]), rule_mask(df, term["expr"])
        assert (found & true).sum() / (found | true).sum() > 0.6, (rule["rule"], term["expr"])
        assert rule["bootstrap_frequency"] >= 0.5 and rule["p_holm"] < 0.05 and rule["lift"] > 1.5


def test_rate_criterion_on_the_demo_keeps_high_rate_corners(county_demo_1600):
    """The study's reading (highest rate per pair) finds many significant corners of two
    main effects; every kept rule has a rate far above the overall rate."""
    truth, _ = county_demo_1600
    df = truth.rename(columns={"abandoned_true": "abandoned"})
    model = fit_abandonment_model(df)
    res = find_interaction_rules(
        df, significant_predictors(model), criterion="rate", base_design=model.design, n_bootstrap=50, seed=42
    )
    assert len(res.rules) >= 5
    assert min(r["lift"] for r in res.rules) > 1.5 and max(r["p_holm"] for r in res.rules) < 0.05

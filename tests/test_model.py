"""The abandonment logit (karstflow.model): Hosmer-Lemeshow, the coefficient table, fit
figures, VIFs, recovery of the demo's planted model, and bad input."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from karstflow.drivers import DRIVER_COLUMNS
from karstflow.model import (
    ModelInputError,
    design_matrix,
    equal_size_groups,
    fit_abandonment_model,
    hosmer_lemeshow,
    read_driver_table,
    reduce_collinearity,
    risk_groups,
    significant_predictors,
    vif_table,
)

# --------------------------------------------------------------------------------------
# Hosmer-Lemeshow
# --------------------------------------------------------------------------------------


def test_hosmer_lemeshow_by_hand():
    # three groups cut at the 1/3 and 2/3 quantiles of p (0.3667 and 0.6333):
    # (O - E)^2 / (E (1 - E/n)): (1 - 0.3)^2 / 0.27 + 0.5^2 / 0.75 + 0.3^2 / 0.27
    p = np.array([0.1, 0.1, 0.1, 0.5, 0.5, 0.5, 0.9, 0.9, 0.9])
    y = np.array([0, 0, 1, 0, 1, 1, 1, 1, 1])
    stat, df, pv = hosmer_lemeshow(y, p, groups=3)
    expected = 0.49 / 0.27 + 0.25 / 0.75 + 0.09 / 0.27
    assert stat == pytest.approx(expected, rel=1e-12)
    assert df == 1
    assert pv == pytest.approx(stats.chi2.sf(expected, 1), rel=1e-12)
    assert pv == pytest.approx(0.11522, abs=5e-5)


def test_hosmer_lemeshow_equals_pearson_chi_square_of_the_2g_table():
    """Independent calculation: pandas' quantile cut and scipy's chi-square over the 20
    cells (events and non-events per decile); HL is the Pearson statistic of that table."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 2))
    p_true = 1 / (1 + np.exp(-(-0.5 + x @ [1.0, -0.7])))
    y = (rng.random(500) < p_true).astype(int)
    p_hat = np.clip(p_true + rng.normal(0, 0.03, 500), 0.001, 0.999)  # a slightly wrong model
    stat, df, pv = hosmer_lemeshow(y, p_hat, groups=10)
    g = pd.qcut(p_hat, 10, labels=False)
    obs, exp = [], []
    for k in range(10):
        m = g == k
        obs += [y[m].sum(), (1 - y[m]).sum()]
        exp += [p_hat[m].sum(), (1 - p_hat[m]).sum()]
    ref = stats.chisquare(obs, exp, ddof=10 + 1)  # 20 cells, df = 20 - 1 - 11 = 8
    assert stat == pytest.approx(ref.statistic, rel=1e-10)
    assert df == 8
    assert pv == pytest.approx(ref.pvalue, rel=1e-8)
    tab = risk_groups(y, p_hat, 10)
    assert list(tab["n"]) == list(pd.Series(g).value_counts().sort_index())
    assert tab["expected"].sum() == pytest.approx(p_hat.sum())


def test_hosmer_lemeshow_ties_merge_groups(caplog):
    # four distinct risks, 25 parcels each: the decile breaks are 0.2, 0.4, 0.6 and 0.8, and
    # with intervals closed on the right (the lowest closed on both sides, as R's cut with
    # include.lowest) the groups are {0.2, 0.4}, {0.6}, {0.8}
    p = np.repeat([0.2, 0.4, 0.6, 0.8], 25)
    y = (np.arange(100) % 5 == 0).astype(int)
    with caplog.at_level(logging.WARNING):
        stat, df, _ = hosmer_lemeshow(y, p, groups=10)
    assert df == 1 and "tied predicted probabilities leave 3 of 10 groups" in caplog.text
    groups = [np.isin(p, [0.2, 0.4]), p == 0.6, p == 0.8]
    o = np.array([y[g].sum() for g in groups])
    e = np.array([p[g].sum() for g in groups])
    n = np.array([g.sum() for g in groups])
    assert stat == pytest.approx(float(((o - e) ** 2 / (e * (1 - e / n))).sum()))


# Twelve parcels, five groups: the two groupings differ (hand calculations below).
HL_P = np.array([0.05, 0.1, 0.15, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
HL_Y = np.array([0, 0, 1, 0, 0, 1, 0, 1, 0, 1, 1, 1])


def test_hosmer_lemeshow_spss_groups_by_hand():
    """SPSS: target size M = [12 / 5 + 0.5] = 2 in the order of p, the last group takes the
    rest: {0.05, 0.1} {0.15, 0.2} {0.3, 0.35} {0.4, 0.5} {0.6 .. 0.9}; O = 0, 1, 1, 1, 3 and
    E = 0.15, 0.35, 0.65, 0.9, 3.0; HL = sum (O - E)^2 / (E (1 - E / n))."""
    stat, df, pv = hosmer_lemeshow(HL_Y, HL_P, groups=5, method="spss")
    expected = (
        0.15**2 / (0.15 * (1 - 0.15 / 2))
        + 0.65**2 / (0.35 * (1 - 0.35 / 2))
        + 0.35**2 / (0.65 * (1 - 0.65 / 2))
        + 0.1**2 / (0.9 * (1 - 0.9 / 2))
        + 0.0
    )
    assert stat == pytest.approx(expected, rel=1e-12)
    assert stat == pytest.approx(1.924769, abs=1e-6)
    assert df == 3 and pv == pytest.approx(stats.chi2.sf(expected, 3), rel=1e-12)
    tab = risk_groups(HL_Y, HL_P, 5, method="spss")
    assert list(tab["n"]) == [2, 2, 2, 2, 4]
    assert list(tab["p_low"]) == [0.05, 0.15, 0.3, 0.4, 0.6] and list(tab["p_high"]) == [0.1, 0.2, 0.35, 0.5, 0.9]


def test_hosmer_lemeshow_quantile_groups_by_hand_differ_from_spss():
    """Quantile breaks (linear interpolation at 11 q): 0.16, 0.32, 0.46, 0.68 give groups
    of 3, 2, 2, 2, 3 parcels: O = 1, 0, 1, 1, 3; E = 0.3, 0.5, 0.75, 1.1, 2.4."""
    stat, df, _ = hosmer_lemeshow(HL_Y, HL_P, groups=5, method="quantile")
    expected = (
        0.7**2 / (0.3 * (1 - 0.3 / 3))
        + 0.5**2 / (0.5 * (1 - 0.5 / 2))
        + 0.25**2 / (0.75 * (1 - 0.75 / 2))
        + 0.1**2 / (1.1 * (1 - 1.1 / 2))
        + 0.6**2 / (2.4 * (1 - 2.4 / 3))
    )
    assert stat == pytest.approx(expected, rel=1e-12) and stat == pytest.approx(3.385017, abs=1e-6)
    assert df == 3
    assert list(risk_groups(HL_Y, HL_P, 5)["n"]) == [3, 2, 2, 2, 3]
    assert hosmer_lemeshow(HL_Y, HL_P, groups=5) == (stat, df, pytest.approx(stats.chi2.sf(expected, 3)))


def test_spss_groups_keep_ties_together_and_merge_a_small_last_group():
    # 4 risks x 25 parcels, ten groups: M = 10, every tied block fills (and overfills) a
    # group of its own -> 4 groups, df 2 (the quantile grouping merges 0.2 and 0.4: 3)
    p = np.repeat([0.2, 0.4, 0.6, 0.8], 25)
    y = (np.arange(100) % 5 == 0).astype(int)
    assert list(risk_groups(y, p, 10, method="spss")["n"]) == [25, 25, 25, 25]
    assert hosmer_lemeshow(y, p, 10, method="spss")[1] == 2 and hosmer_lemeshow(y, p, 10)[1] == 1
    # 20 parcels, four groups (M = 5): a tied block of 8, then 5, 5 and a last group of 2,
    # which is no more than [20 / 8] = 2 and joins the group before: sizes 8, 5, 7
    p2 = np.concatenate([np.full(8, 0.1), np.linspace(0.2, 0.9, 12)])
    assert list(np.bincount(equal_size_groups(p2, 4))) == [8, 5, 7]
    # a tied block straddling a boundary goes where most of it fits: c = 1 < M = 2 and
    # 1 + [3 / 2] = 2 <= M, so the three 0.2s join the first group (never split)
    g = equal_size_groups(np.array([0.1, 0.2, 0.2, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]), 5)
    assert list(g) == [0, 0, 0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="grouping must be one of"):
        risk_groups(y, p, 10, method="deciles")


def test_fit_records_the_hosmer_lemeshow_grouping():
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"a": rng.normal(size=150), "b": rng.normal(size=150)})
    df["abandoned"] = (rng.random(150) < 1 / (1 + np.exp(-(df["a"] - 0.5 * df["b"])))).astype(int)
    for method in ("spss", "quantile"):
        m = fit_abandonment_model(df, predictors=["a", "b"], categorical=(), hl_method=method)
        hl = hosmer_lemeshow(df["abandoned"], m.predicted, 10, method=method)
        assert m.fit["hosmer_lemeshow"]["grouping"] == method
        assert m.fit["hosmer_lemeshow"]["statistic"] == pytest.approx(hl[0])
        assert list(m.risk_groups["n"]) == list(risk_groups(df["abandoned"], m.predicted, 10, method=method)["n"])


def test_hosmer_lemeshow_rejects_bad_input():
    with pytest.raises(ValueError, match="0/1"):
        hosmer_lemeshow([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="probabilities"):
        hosmer_lemeshow([0, 1, 1], [0.1, 1.2, 0.3])
    with pytest.raises(ValueError, match="groups must be >= 3"):
        hosmer_lemeshow([0, 1, 1], [0.1, 0.2, 0.3], groups=2)


# --------------------------------------------------------------------------------------
# a synthetic driver table with a known logit (fast; the demo comes later)
# --------------------------------------------------------------------------------------

TRUE_B = {"x1_elevation_m": 0.01, "x2_slope_deg": 0.08, "x10_area_ha": -2.0, "x6_population_density_per_km2": -0.002}


def synthetic(n: int = 1500, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"parcel_id": np.arange(1, n + 1)})
    d["x1_elevation_m"] = rng.uniform(20, 400, n)
    d["x2_slope_deg"] = rng.gamma(2.0, 5.0, n)
    d["x3_aspect_class"] = rng.choice(5, n, p=[0.2, 0.2, 0.2, 0.2, 0.2])
    d["x4_settlement_distance_m"] = rng.gamma(2.0, 300.0, n)
    d["x5_farmland_distance_m"] = rng.gamma(2.0, 400.0, n)
    d["x6_population_density_per_km2"] = rng.lognormal(np.log(400), 0.4, n)
    for k, col in enumerate(("x7_natural_grade", "x8_utilization_grade", "x9_economic_grade")):
        d[col] = rng.uniform(1, 15, n).round(1 + k % 2)
    d["x10_area_ha"] = rng.lognormal(np.log(0.35), 0.7, n)
    eta = -1.0 + sum(b * d[c] for c, b in TRUE_B.items()) + np.where(d["x3_aspect_class"] == 1, 1.0, 0.0)
    d["abandoned"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return d


@pytest.fixture(scope="module")
def table():
    return synthetic()


@pytest.fixture(scope="module")
def model(table):
    return fit_abandonment_model(table)


def test_coefficient_table_matches_statsmodels(table, model):
    x, groups = design_matrix(table, DRIVER_COLUMNS)
    ref = sm.Logit(table["abandoned"], x).fit(disp=0)
    coef = model.coefficients.set_index("term")
    assert list(model.coefficients.columns) == [
        "term",
        "B",
        "SE",
        "Wald",
        "df",
        "p",
        "exp_B",
        "ci_low",
        "ci_high",
        "B_std",
    ]
    # SPSS order: x1, x2, aspect (joint) and its classes, x4..x10, constant last
    assert list(model.coefficients["term"])[:3] == ["x1_elevation_m", "x2_slope_deg", "x3_aspect_class"]
    assert model.coefficients["term"].iloc[3] == "x3_aspect_class[1 shady]"
    assert model.coefficients["term"].iloc[-1] == "const"
    ci = ref.conf_int(0.05)
    for c in x.columns:
        row = coef.loc[c]
        assert row["B"] == pytest.approx(ref.params[c], rel=1e-6)
        assert row["SE"] == pytest.approx(ref.bse[c], rel=1e-6)
        assert row["Wald"] == pytest.approx((ref.params[c] / ref.bse[c]) ** 2, rel=1e-6)
        assert row["p"] == pytest.approx(ref.pvalues[c], rel=1e-5)
        assert row["exp_B"] == pytest.approx(np.exp(ref.params[c]), rel=1e-6)
        assert row["ci_low"] == pytest.approx(np.exp(ci.loc[c, 0]), rel=1e-6)
        assert row["ci_high"] == pytest.approx(np.exp(ci.loc[c, 1]), rel=1e-6)
        if c != "const":
            assert row["B_std"] == pytest.approx(ref.params[c] * x[c].std(ddof=1), rel=1e-6)
    # the joint aspect test: statsmodels' Wald test of the four class coefficients
    names = groups["x3_aspect_class"]
    restriction = np.eye(len(x.columns))[[list(x.columns).index(n) for n in names]]
    joint = ref.wald_test(restriction, scalar=True)
    assert coef.loc["x3_aspect_class", "Wald"] == pytest.approx(float(joint.statistic), rel=1e-6)
    assert coef.loc["x3_aspect_class", "df"] == 4
    assert coef.loc["x3_aspect_class", "p"] == pytest.approx(float(joint.pvalue), rel=1e-5)
    assert np.isnan(coef.loc["x3_aspect_class", "B"])


def test_fit_figures_by_their_formulas(table, model):
    x, _ = design_matrix(table, DRIVER_COLUMNS)
    ref = sm.Logit(table["abandoned"], x).fit(disp=0)
    f = model.fit
    n = len(table)
    assert f["n"] == n and f["events"] == int(table["abandoned"].sum())
    assert f["log_likelihood"] == pytest.approx(ref.llf, rel=1e-8)
    assert f["mcfadden_r2"] == pytest.approx(ref.prsquared, rel=1e-8)
    cs = 1 - np.exp(2 * (ref.llnull - ref.llf) / n)
    assert f["nagelkerke_r2"] == pytest.approx(cs / (1 - np.exp(2 * ref.llnull / n)), rel=1e-8)
    # AUC = Mann-Whitney U / (n1 n0)
    p = model.predicted.to_numpy()
    y = table["abandoned"].to_numpy()
    u = stats.mannwhitneyu(p[y == 1], p[y == 0]).statistic
    assert f["auc"] == pytest.approx(u / ((y == 1).sum() * (y == 0).sum()), rel=1e-10)
    ct = f["classification_table"]
    assert ct["observed_abandoned_predicted_abandoned"] == int(((p >= 0.5) & (y == 1)).sum())
    assert ct["percent_correct_overall"] == pytest.approx(100 * ((p >= 0.5) == (y == 1)).mean())
    hl = hosmer_lemeshow(y, p, 10)
    assert (f["hosmer_lemeshow"]["statistic"], f["hosmer_lemeshow"]["df"]) == (pytest.approx(hl[0]), hl[1])
    # the synthetic data follow the fitted model's form: adequate fit, the real drivers significant
    assert f["hosmer_lemeshow"]["p"] > 0.05
    sig = significant_predictors(model)
    assert {"x1_elevation_m", "x2_slope_deg", "x10_area_ha", "x6_population_density_per_km2", "x3_aspect_class"} <= set(
        sig
    )


def test_interaction_terms_enter_as_indicators(table):
    term = "x1_elevation_m > 200 and x10_area_ha < 0.3"
    m = fit_abandonment_model(table, interaction_terms=[term])
    x, _ = design_matrix(table, DRIVER_COLUMNS)
    x.insert(len(x.columns) - 1, term, table.eval(term).astype(float).to_numpy())
    ref = sm.Logit(table["abandoned"], x).fit(disp=0)
    assert m.coefficients.set_index("term").loc[term, "B"] == pytest.approx(ref.params[term], rel=1e-6)
    assert m.fit["interaction_terms"] == [term]


# --------------------------------------------------------------------------------------
# collinearity
# --------------------------------------------------------------------------------------


def test_vif_by_auxiliary_regressions(table):
    cont = [c for c in DRIVER_COLUMNS if c != "x3_aspect_class"]
    got = vif_table(table, cont).set_index("predictor")
    x = table[cont].to_numpy(float)
    for j, c in enumerate(cont):
        others = np.column_stack([np.ones(len(x)), np.delete(x, j, axis=1)])
        beta, *_ = np.linalg.lstsq(others, x[:, j], rcond=None)
        resid = x[:, j] - others @ beta
        r2 = 1 - resid.var() / x[:, j].var()
        assert got.loc[c, "vif"] == pytest.approx(1 / (1 - r2), rel=1e-8)
        assert got.loc[c, "gvif_per_df"] == pytest.approx(got.loc[c, "vif"])


def test_gvif_of_a_two_class_categorical_is_its_vif(table):
    t = table.assign(x3_aspect_class=np.where(table["x1_elevation_m"] + 100 * table["x2_slope_deg"] > 900, 1, 0))
    cols = ["x1_elevation_m", "x2_slope_deg", "x3_aspect_class", "x10_area_ha"]
    got = vif_table(t, cols).set_index("predictor")
    plain = vif_table(
        t.assign(dummy=t["x3_aspect_class"].astype(float)),
        ["x1_elevation_m", "x2_slope_deg", "dummy", "x10_area_ha"],
        categorical=(),
    ).set_index("predictor")
    assert got.loc["x3_aspect_class", "df"] == 1
    assert got.loc["x3_aspect_class", "vif"] == pytest.approx(plain.loc["dummy", "vif"], rel=1e-8)
    assert got.loc["x3_aspect_class", "vif"] > 1.3  # the class follows elevation and slope
    five = vif_table(table, DRIVER_COLUMNS).set_index("predictor")
    assert five.loc["x3_aspect_class", "df"] == 4
    assert five.loc["x3_aspect_class", "gvif_per_df"] == pytest.approx(five.loc["x3_aspect_class", "vif"] ** 0.25)


def test_collinear_predictor_dropped_or_warned(table, caplog):
    t = table.copy()
    t["x9_economic_grade"] = t["x8_utilization_grade"] + np.random.default_rng(0).normal(0, 0.05, len(t))
    with caplog.at_level(logging.WARNING):
        kept, vif = reduce_collinearity(t, list(DRIVER_COLUMNS), threshold=10, action="drop")
    assert len(kept) == 9 and ("x8_utilization_grade" not in kept) != ("x9_economic_grade" not in kept)
    assert vif["dropped"].sum() == 1 and vif["vif_initial"].max() > 100
    assert vif.loc[vif["dropped"] == 0, "gvif_per_df"].max() < 10
    assert "collinearity: dropping" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        kept, vif = reduce_collinearity(t, list(DRIVER_COLUMNS), threshold=10, action="warn")
    assert kept == list(DRIVER_COLUMNS) and vif["dropped"].sum() == 0
    assert "above 10; kept (action warn)" in caplog.text


# --------------------------------------------------------------------------------------
# bad input: clear errors, never a statsmodels traceback
# --------------------------------------------------------------------------------------


def test_perfect_separation_is_an_error(table):
    t = table.assign(abandoned=(table["x10_area_ha"] < 0.3).astype(int))
    with pytest.raises(
        ModelInputError,
        match=r"complete separation.*x10_area_ha < 0\.3.* exactly for the abandoned parcels.*do not exist",
    ):
        fit_abandonment_model(t)


def test_quasi_complete_separation_is_an_error(table):
    t = table.copy()
    t.loc[t["x3_aspect_class"] == 4, "abandoned"] = 0
    with pytest.raises(
        ModelInputError,
        match=r"quasi-complete separation.*x3_aspect_class.*every parcel of x3_aspect_class = 4 has outcome 0",
    ):
        fit_abandonment_model(t)


def test_no_abandoned_parcels_is_an_error(table):
    with pytest.raises(ModelInputError, match=r"no abandoned parcels \(abandoned = 1 for 0 of 1500\)"):
        fit_abandonment_model(table.assign(abandoned=0))
    with pytest.raises(ModelInputError, match="every parcel is abandoned"):
        fit_abandonment_model(table.assign(abandoned=1))


def test_constant_or_missing_predictor_is_an_error(table):
    with pytest.raises(
        ModelInputError,
        match=r"predictor x7_natural_grade is constant \(5\.0 for all 1500 parcels\).*model\.predictors",
    ):
        fit_abandonment_model(table.assign(x7_natural_grade=5.0))
    t = table.copy()
    t.loc[[3, 8], "x6_population_density_per_km2"] = np.nan
    with pytest.raises(
        ModelInputError, match=r"x6_population_density_per_km2 is missing for 2 parcel\(s\) \(parcel_id 4, 9\)"
    ):
        fit_abandonment_model(t)
    with pytest.raises(
        ModelInputError, match=r"the reference class 0 of x3_aspect_class has no parcels.*model\.aspect_reference"
    ):
        fit_abandonment_model(table[table["x3_aspect_class"] != 0])
    with pytest.raises(ModelInputError, match=r"expected column\(s\) \['x2_slope_deg'\]"):
        fit_abandonment_model(table.drop(columns=["x2_slope_deg"]))


def test_driver_table_leaves_out_parcels_not_evaluated(table):
    t = table.astype({"abandoned": "Float64"})
    t.loc[[0, 1, 2], "abandoned"] = pd.NA
    got = read_driver_table(t)
    assert len(got) == len(t) - 3 and got.attrs["not_evaluated"] == 3 and got["abandoned"].dtype.kind == "i"


# --------------------------------------------------------------------------------------
# the county demo (800 x 800 px, about 1,600 parcels): the planted model is recovered
# --------------------------------------------------------------------------------------


def planted_terms(planted: dict) -> dict[str, float]:
    """Planted coefficient per coefficient-table term."""
    names = {0: "flat", 1: "shady", 2: "semi-shady", 3: "semi-sunny", 4: "sunny"}
    out = {}
    for key, value in planted["coefficient_vector"].items():
        if key.startswith("x3_aspect_"):
            k = int(key.rsplit("_", 1)[1])
            out[f"x3_aspect_class[{k} {names[k]}]"] = value
        elif key.startswith("interaction_"):
            out[planted["interactions"][int(key.split("_")[1]) - 1]["expr"]] = value
        else:
            out[key] = value
    return out


def test_planted_coefficients_inside_their_confidence_intervals(county_demo_1600):
    """The correctly specified model (main effects + the two planted subgroups) on the
    planted labels. Family-wise: with 16 coefficients, all inside their own 95 % CIs has
    probability about 0.95^16 = 0.44 even for a perfect estimator, so the test asks every
    planted value to lie inside its Bonferroni interval (level 1 - 0.05/16: all inside with
    probability >= 0.95) and at most 3 outside the 95 % intervals (P(4 or more of 16
    outside) = 0.007 for a correct 95 % interval); the coverage test below checks the
    95 % intervals' rate directly."""
    truth, planted = county_demo_1600
    df = truth.rename(columns={"abandoned_true": "abandoned"})
    inter = [t["expr"] for t in planted["interactions"]]
    plant = planted_terms(planted)
    m95 = fit_abandonment_model(df, interaction_terms=inter, ci_level=0.95)
    bonf = fit_abandonment_model(df, interaction_terms=inter, ci_level=1 - 0.05 / len(plant))
    for fit in (m95, bonf):
        assert set(fit.coefficients["term"]) - {"x3_aspect_class"} == set(plant)
    c95 = m95.coefficients.set_index("term")
    cb = bonf.coefficients.set_index("term")
    outside = [t for t, b in plant.items() if not np.log(c95.loc[t, "ci_low"]) <= b <= np.log(c95.loc[t, "ci_high"])]
    for term, b in plant.items():
        assert np.log(cb.loc[term, "ci_low"]) <= b <= np.log(cb.loc[term, "ci_high"]), term
    assert len(outside) <= 3, outside
    assert m95.fit["n"] == planted["n_parcels"] and m95.fit["hosmer_lemeshow"]["p"] > 0.05


def test_confidence_intervals_cover_at_their_level(county_demo_1600):
    """Outcomes redrawn from the planted probabilities on the demo's drivers: the 95 %
    intervals of the coefficient table cover the planted coefficients about 95 % of the
    time (60 redraws x 16 coefficients = 960 intervals; binomial SD 0.007)."""
    truth, planted = county_demo_1600
    inter = [t["expr"] for t in planted["interactions"]]
    plant = planted_terms(planted)
    from karstflow.demo.county import design_matrix as planted_design

    x = planted_design(truth, planted["interactions"])
    beta = pd.Series(planted["coefficient_vector"])[x.columns].to_numpy()
    prob = 1 / (1 + np.exp(-(x.to_numpy() @ beta)))
    rng = np.random.default_rng(2024)
    hits = total = 0
    for _ in range(60):
        df = truth.assign(abandoned=(rng.random(len(prob)) < prob).astype(int))
        coef = fit_abandonment_model(df, interaction_terms=inter).coefficients.set_index("term")
        for term, b in plant.items():
            hits += np.log(coef.loc[term, "ci_low"]) <= b <= np.log(coef.loc[term, "ci_high"])
            total += 1
    assert 0.925 <= hits / total <= 0.975, hits / total

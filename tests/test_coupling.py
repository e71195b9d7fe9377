"""karstflow.coupling: coupling coordination by hand, coupling types, and planted spatial processes."""

from __future__ import annotations

import logging
import math
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from karstflow import coupling as cp

CRS = "EPSG:32648"  # UTM 48N: the karst of Guizhou and Guangxi


def lattice(side: int, cell: float = 1000.0, crs: str = CRS) -> gpd.GeoDataFrame:
    """side x side square polygons, row by row from the south-west corner; index 100.. to make
    sure nothing relies on a 0-based index."""
    boxes = [shapely.box(i * cell, j * cell, (i + 1) * cell, (j + 1) * cell) for j in range(side) for i in range(side)]
    return gpd.GeoDataFrame({"cell": np.arange(side * side)}, geometry=boxes, crs=crs, index=np.arange(side**2) + 100)


@pytest.fixture(scope="module")
def grid20():
    gdf = lattice(20)
    w = cp.spatial_weights(gdf, "queen")
    return gdf, w, w.full()[0]


# --------------------------------------------------------------------------------------
# coupling coordination degree
# --------------------------------------------------------------------------------------


def test_coupling_coordination_by_hand():
    # township 1: U1 = 0.3, U2 = 0.6
    #   C = 2 * sqrt(0.3 * 0.6) / (0.3 + 0.6) = 2 * sqrt(0.18) / 0.9 = 2 * 0.4242640687 / 0.9 = 0.9428090416
    #   T = 0.5 * 0.3 + 0.5 * 0.6 = 0.45
    #   D = sqrt(0.9428090416 * 0.45) = sqrt(0.4242640687) = 0.6513556
    # township 2: U1 = 0.8, U2 = 0.2
    #   C = 2 * sqrt(0.16) / 1.0 = 0.8;  T = 0.5;  D = sqrt(0.4) = 0.6324555
    out = cp.coupling_coordination(pd.Series([0.3, 0.8], index=["t1", "t2"]), [0.6, 0.2])
    assert list(out.index) == ["t1", "t2"]
    np.testing.assert_allclose(out["C"], [0.9428090416, 0.8], rtol=1e-9)
    np.testing.assert_allclose(out["T"], [0.45, 0.5], rtol=1e-12)
    np.testing.assert_allclose(out["D"], [0.6513556, 0.6324555], rtol=1e-6)

    # unequal contributions, a = 0.4, b = 0.6 (township 1):
    #   T = 0.4 * 0.3 + 0.6 * 0.6 = 0.12 + 0.36 = 0.48;  C unchanged
    #   D = sqrt(0.9428090416 * 0.48) = sqrt(0.4525483400) = 0.6727171
    out = cp.coupling_coordination([0.3], [0.6], a=0.4, b=0.6)
    np.testing.assert_allclose(out["C"], [0.9428090416], rtol=1e-9)
    np.testing.assert_allclose(out["T"], [0.48], rtol=1e-12)
    np.testing.assert_allclose(out["D"], [0.6727171], rtol=1e-6)
    # C is symmetric in U1, U2; T is not when a != b
    swapped = cp.coupling_coordination([0.6], [0.3], a=0.4, b=0.6)
    np.testing.assert_allclose(swapped["C"], out["C"])
    np.testing.assert_allclose(swapped["T"], [0.4 * 0.6 + 0.6 * 0.3])


def test_coupling_coordination_zero_and_missing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # U1 + U2 == 0 must not warn
        out = cp.coupling_coordination([0.0, 0.0, np.nan], [0.0, 0.5, 0.5])
    assert out["C"].iloc[0] == 0.0 and out["T"].iloc[0] == 0.0 and out["D"].iloc[0] == 0.0
    # one subsystem at zero: no coupling at all, C = 0 by the formula itself
    assert out["C"].iloc[1] == 0.0 and out["T"].iloc[1] == 0.25 and out["D"].iloc[1] == 0.0
    assert out.iloc[2].isna().all()


def test_coordination_class_bands():
    d = pd.Series([0.0, 0.05, 0.1, 0.4999, 0.5, 0.65, 0.9, 1.0, np.nan], index=list("abcdefghi"))
    ten = cp.coordination_class(d)
    assert list(ten.index) == list("abcdefghi")
    assert list(ten.iloc[:8]) == [
        "extreme disorder",
        "extreme disorder",
        "severe disorder",  # the lower edge belongs to the band above it
        "on the verge of disorder",
        "barely coordinated",
        "primary coordination",
        "high-quality coordination",
        "high-quality coordination",  # D = 1 is in the top band
    ]
    assert pd.isna(ten.iloc[8])
    assert ten.cat.ordered and ten.iloc[2] > ten.iloc[0]

    edges, labels = cp.FIVE_BANDS
    five = cp.coordination_class([0.19, 0.2, 0.59, 0.8, 1.0], edges=edges, labels=labels)
    assert list(five) == [
        "severely uncoordinated",
        "moderately uncoordinated",
        "basically coordinated",
        "highly coordinated",
        "highly coordinated",
    ]
    custom = cp.coordination_class([0.3, 0.7], edges=(0, 0.5, 1), labels=("low", "high"))
    assert list(custom) == ["low", "high"]

    with pytest.raises(ValueError, match="edges: expected strictly increasing"):
        cp.coordination_class([0.3], edges=(0, 0.6, 0.5, 1), labels=("a", "b", "c"))
    with pytest.raises(ValueError, match=r"edges: expected bands covering \[0, 1\], found 0.0 .. 0.9"):
        cp.coordination_class([0.3], edges=(0, 0.5, 0.9), labels=("a", "b"))
    with pytest.raises(ValueError, match="labels: expected 2 labels for 3 edges, found 3"):
        cp.coordination_class([0.3], edges=(0, 0.5, 1), labels=("a", "b", "c"))
    with pytest.raises(ValueError, match=r"d: expected .* \[0, 1\], found 1.2"):
        cp.coordination_class([1.2])


def test_normalise_scores_by_hand():
    df = pd.DataFrame({"ndvi": [1.0, 2.0, 3.0], "rd_km2": [10.0, 20.0, 40.0]}, index=["t1", "t2", "t3"])
    res = cp.normalise_scores(df, positive=["ndvi"], negative=["rd_km2"])
    # positive: (x - 1) / (3 - 1) = 0, 0.5, 1;  negative: (40 - x) / (40 - 10) = 1, 2/3, 0
    np.testing.assert_allclose(res.normalised["ndvi"], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(res.normalised["rd_km2"], [1.0, 2 / 3, 0.0])
    # equal weights: (0 + 1) / 2, (0.5 + 2/3) / 2, (1 + 0) / 2
    np.testing.assert_allclose(res.score, [0.5, 7 / 12, 0.5])
    assert list(res.score.index) == ["t1", "t2", "t3"]
    np.testing.assert_allclose(res.weights, [0.5, 0.5])

    given = cp.normalise_scores(df, positive=["ndvi"], negative=["rd_km2"], weights={"ndvi": 0.25, "rd_km2": 0.75})
    # 0.25 * 0 + 0.75 * 1, 0.25 * 0.5 + 0.75 * 2/3, 0.25 * 1 + 0.75 * 0
    np.testing.assert_allclose(given.score, [0.75, 0.625, 0.25])


def test_entropy_weights_by_hand():
    df = pd.DataFrame({"ndvi": [1.0, 2.0, 3.0], "rd_km2": [10.0, 20.0, 40.0]})
    res = cp.normalise_scores(df, positive=["ndvi"], negative=["rd_km2"], weights="entropy")
    # normalised ndvi 0, 0.5, 1 -> shares p = 0, 1/3, 2/3
    e_ndvi = -(1 / math.log(3)) * (1 / 3 * math.log(1 / 3) + 2 / 3 * math.log(2 / 3))  # 0 ln 0 = 0
    # normalised rd 1, 2/3, 0 (sum 5/3) -> p = 0.6, 0.4, 0
    e_rd = -(1 / math.log(3)) * (0.6 * math.log(0.6) + 0.4 * math.log(0.4))
    d_ndvi, d_rd = 1 - e_ndvi, 1 - e_rd
    w_ndvi, w_rd = d_ndvi / (d_ndvi + d_rd), d_rd / (d_ndvi + d_rd)
    assert w_ndvi == pytest.approx(0.520557, abs=1e-6)  # 0.4206198 / 0.8080182
    np.testing.assert_allclose(res.weights, [w_ndvi, w_rd], rtol=1e-12)
    np.testing.assert_allclose(res.score, [w_rd * 1.0, w_ndvi * 0.5 + w_rd * 2 / 3, w_ndvi * 1.0], rtol=1e-12)


def test_normalise_scores_bad_input():
    df = pd.DataFrame({"a": [1.0, 2.0], "flat": [3.0, 3.0], "gap": [1.0, np.nan]})
    with pytest.raises(ValueError, match=r"column 'flat': expected values that vary .* every value equal to 3.0"):
        cp.normalise_scores(df, positive=["a", "flat"])
    with pytest.raises(ValueError, match=r"column 'gap': expected complete values, found 1 missing of 2"):
        cp.normalise_scores(df, negative=["gap"])
    with pytest.raises(ValueError, match=r"column 'nope': expected in the table"):
        cp.normalise_scores(df, positive=["nope"])
    with pytest.raises(ValueError, match=r"columns \['a'\]: expected each indicator in positive or negative"):
        cp.normalise_scores(df, positive=["a"], negative=["a"])
    with pytest.raises(ValueError, match="weights: expected weights summing to 1, found 0.9"):
        cp.normalise_scores(df, positive=["a"], weights={"a": 0.9})
    with pytest.raises(ValueError, match=r"weights: expected one weight per indicator \['a'\], found missing \['a'\]"):
        cp.normalise_scores(df, positive=["a"], weights={"b": 1.0})


def test_coupling_coordination_bad_input():
    with pytest.raises(ValueError, match=r"u1: expected subsystem scores in \[0, 1\].*found 1 outside, e.g. 1.3"):
        cp.coupling_coordination([0.2, 1.3], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"u2: expected subsystem scores in \[0, 1\].*e.g. -0.1"):
        cp.coupling_coordination([0.2], [-0.1])
    with pytest.raises(ValueError, match=r"a \+ b: expected the subsystem weights to sum to 1, found 0.6 \+ 0.6"):
        cp.coupling_coordination([0.2], [0.5], a=0.6, b=0.6)
    with pytest.raises(ValueError, match=r"a: expected a subsystem weight in \[0, 1\], found 1.5"):
        cp.coupling_coordination([0.2], [0.5], a=1.5, b=-0.5)
    with pytest.raises(ValueError, match=r"u1 and u2: expected one shape, found \(2,\) and \(1,\)"):
        cp.coupling_coordination([0.2, 0.3], [0.5])


# --------------------------------------------------------------------------------------
# coupling types
# --------------------------------------------------------------------------------------


def test_coupling_types_one_row_per_type():
    # defaults: population threshold 5 % over the period, NDVI slope threshold 0.0005 / yr
    table = pd.DataFrame(
        [
            ("depopulating-greening", -0.20, 0.004),
            ("depopulating-stagnant", -0.20, 0.0001),
            ("depopulating-degrading", -0.20, -0.003),
            ("stable-greening", 0.01, 0.004),
            ("stable-stagnant", 0.0, 0.0),
            ("stable-degrading", -0.05, -0.002),  # |rate| == threshold counts as stable
            ("growing-greening", 0.30, 0.0006),
            ("growing-stagnant", 0.30, -0.0005),  # |slope| == threshold counts as stagnant
            ("growing-degrading", 0.051, -0.01),
        ],
        columns=["expected", "pop_change", "ndvi_slope"],
    ).set_index("expected", drop=False)
    types = cp.coupling_types(table, "pop_change", "ndvi_slope")
    assert list(types) == list(table["expected"])
    assert list(types.index) == list(table.index)
    assert list(types.cat.categories) == list(cp.COUPLING_TYPES)
    assert len(cp.COUPLING_TYPES) == 9

    # a significance column: a steep but insignificant trend is stagnant
    table["ndvi_p"] = [0.01, 0.01, 0.3, 0.01, 0.01, 0.01, 0.01, 0.01, 0.04]
    with_p = cp.coupling_types(table, "pop_change", "ndvi_slope", greening_p_col="ndvi_p")
    assert with_p.iloc[2] == "depopulating-stagnant"
    assert with_p.iloc[8] == "growing-degrading"
    # other thresholds move the class boundaries
    loose = cp.coupling_types(table, "pop_change", "ndvi_slope", pop_threshold=0.25, greening_threshold=0.005)
    assert loose.iloc[0] == "stable-stagnant" and loose.iloc[6] == "growing-stagnant"

    missing = cp.coupling_types(pd.DataFrame({"p": [np.nan, -0.1], "s": [0.01, np.nan]}), "p", "s")
    assert missing.isna().all()
    with pytest.raises(ValueError, match=r"column 'p': expected a relative change >= -1 .* found -3.0"):
        cp.coupling_types(pd.DataFrame({"p": [-3.0], "s": [0.0]}), "p", "s")


# --------------------------------------------------------------------------------------
# spatial weights and Moran's I
# --------------------------------------------------------------------------------------


def test_spatial_weights_queen_knn_and_islands(caplog):
    gdf = lattice(5)
    w = cp.spatial_weights(gdf, "queen")
    assert w.transform.lower() == "r" and w.n == 25
    assert w.cardinalities[0] == 3 and w.cardinalities[12] == 8  # a corner and an inner cell
    np.testing.assert_allclose(np.asarray(w.full()[0]).sum(axis=1), 1.0)

    knn = cp.spatial_weights(gdf, "knn", k=4)
    assert set(knn.cardinalities.values()) == {4}

    # a township cut off from the others: it gets its nearest feature as neighbour
    far = gpd.GeoDataFrame(geometry=[shapely.box(9000, 9000, 10000, 10000)], crs=CRS, index=[999])
    with_island = pd.concat([gdf, far])
    with caplog.at_level(logging.WARNING, logger="karstflow.coupling"):
        wi = cp.spatial_weights(with_island, "queen")
    assert "1 features without a neighbour" in caplog.text
    assert not wi.islands
    assert list(wi.neighbors[25]) == [24]  # the north-east corner cell of the lattice
    np.testing.assert_allclose(np.asarray(wi.full()[0]).sum(axis=1), 1.0)

    with pytest.raises(ValueError, match="projected CRS .* geographic CRS EPSG:4326"):
        cp.spatial_weights(lattice(3, cell=0.01, crs="EPSG:4326"), "knn", k=2)
    with pytest.raises(ValueError, match="kind: expected 'queen' or 'knn', found 'rook'"):
        cp.spatial_weights(gdf, "rook")  # type: ignore[arg-type]


def test_moran_table_against_numpy(grid20):
    gdf, w, W = grid20
    rng = np.random.default_rng(7)
    n = len(gdf)
    smooth = np.linalg.solve(np.eye(n) - 0.8 * W, rng.normal(size=n))
    gdf = gdf.assign(smooth=smooth, noise=rng.normal(size=n))
    state = np.random.get_state()[1].copy()
    table = cp.moran_table(gdf, ["smooth", "noise"], w, permutations=199, seed=3)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # the caller's random state is kept

    z = smooth - smooth.mean()
    s0 = W.sum()  # = n for row-standardised weights
    i_hand = (n / s0) * (z @ W @ z) / (z @ z)
    assert table.loc["smooth", "moran_i"] == pytest.approx(i_hand, rel=1e-10)
    assert table.loc["smooth", "expected_i"] == pytest.approx(-1 / (n - 1))
    assert table.loc["smooth", "p_sim"] == pytest.approx(1 / 200)  # no permutation beats a strong I
    assert table.loc["smooth", "z"] > 5
    assert abs(table.loc["noise", "moran_i"]) < 0.1
    assert list(table.columns) == ["moran_i", "expected_i", "z", "p_norm", "z_sim", "p_sim", "n"]
    again = cp.moran_table(gdf, ["noise"], w, permutations=199, seed=3)
    assert again.loc["noise", "p_sim"] == table.loc["noise", "p_sim"]  # seeded

    flat = gdf.assign(flat=2.0)
    with pytest.raises(ValueError, match=r"column 'flat': expected values that vary .* \(no variance\)"):
        cp.moran_table(flat, ["smooth", "flat"], w)
    with pytest.raises(ValueError, match="w: expected spatial weights for 399 features, found 400"):
        cp.moran_table(gdf.iloc[1:], ["smooth"], w)


def test_local_moran_quadrants(grid20):
    gdf, w, W = grid20
    rng = np.random.default_rng(11)
    n = len(gdf)
    y = np.linalg.solve(np.eye(n) - 0.8 * W, rng.normal(size=n))
    lisa = cp.local_moran(gdf.assign(y=y), "y", w, permutations=199, alpha=0.05, seed=5)
    assert list(lisa.index) == list(gdf.index)
    z = y - y.mean()
    lag = W @ z
    expected = np.select([(z > 0) & (lag > 0), (z < 0) & (lag > 0), (z < 0) & (lag < 0)], ["HH", "LH", "LL"], "HL")
    assert list(lisa["quadrant"]) == list(expected)
    # I_i = z_i * sum_j w_ij z_j / (sum_k z_k^2 / (n - 1)), the esda scaling
    np.testing.assert_allclose(lisa["local_i"], z * lag / ((z @ z) / (n - 1)), rtol=1e-10)
    sig = lisa["p_sim"] < 0.05
    assert (lisa.loc[~sig, "cluster"] == "not significant").all()
    assert (lisa.loc[sig, "cluster"].astype(str) == lisa.loc[sig, "quadrant"].astype(str)).all()
    assert sig.sum() > 40 and {"HH", "LL"} <= set(lisa.loc[sig, "cluster"])
    np.testing.assert_allclose(lisa["p_two_sided"], np.minimum(1.0, 2.0 * lisa["p_sim"]))
    strict = cp.local_moran(gdf.assign(y=y), "y", w, permutations=199, alpha=0.05, seed=5, two_sided=True)
    np.testing.assert_array_equal(strict["p_sim"], lisa["p_sim"])  # seeded
    sig2 = strict["p_two_sided"] < 0.05
    assert (strict.loc[~sig2, "cluster"] == "not significant").all() and sig2.sum() < sig.sum()


# --------------------------------------------------------------------------------------
# spatial regression on planted processes
# --------------------------------------------------------------------------------------

BETA = -0.5


def anselin_rule(lm: pd.DataFrame, alpha: float = 0.05) -> str:
    """The decision rule written out again, independently of the library."""
    lag, err = lm.loc["LM_lag", "p"] < alpha, lm.loc["LM_error", "p"] < alpha
    if not lag and not err:
        return "OLS"
    if lag and not err:
        return "ML_Lag"
    if err and not lag:
        return "ML_Error"
    rlag, rerr = lm.loc["robust_LM_lag", "p"] < alpha, lm.loc["robust_LM_error", "p"] < alpha
    if rlag and not rerr:
        return "ML_Lag"
    if rerr and not rlag:
        return "ML_Error"
    return "ML_Lag" if lm.loc["robust_LM_lag", "statistic"] > lm.loc["robust_LM_error", "statistic"] else "ML_Error"


def test_spatial_regression_planted_error_model(grid20):
    gdf, w, W = grid20
    n = len(gdf)
    rng = np.random.default_rng(1)
    x = rng.normal(size=n)  # population change
    u = np.linalg.solve(np.eye(n) - 0.7 * W, rng.normal(size=n))  # u = (I - lambda W)^-1 e
    data = gdf.assign(pop_change=x, ndvi_trend=1.0 + BETA * x + u)
    res = cp.spatial_regression(data, "ndvi_trend", ["pop_change"], w)

    assert res.model == anselin_rule(res.lm_tests)
    assert res.model == "ML_Error"
    row = res.coefficients.loc["pop_change"]
    assert row["ci_low"] < BETA < row["ci_high"]
    assert row["ci_high"] - row["ci_low"] < 0.3  # a CI that could miss
    assert res.spatial_parameter is not None and res.spatial_parameter["name"] == "lambda"
    assert res.spatial_parameter["ci_low"] < 0.7 < res.spatial_parameter["ci_high"]
    assert res.ols_residual_moran["p"] < 0.05 and res.ols_residual_moran["I"] > 0.2
    assert list(res.coefficients.index) == ["CONSTANT", "pop_change", "lambda"]
    assert list(res.coefficients.columns) == ["estimate", "std_err", "statistic", "p", "ci_low", "ci_high"]
    # the interval is estimate +- 1.96 std err (normal, 95 %)
    assert row["ci_high"] == pytest.approx(row["estimate"] + 1.959964 * row["std_err"], rel=1e-6)
    assert res.fit["ml_method"] == "full" and res.fit["n"] == n


def test_spatial_regression_planted_lag_model(grid20):
    gdf, w, W = grid20
    n = len(gdf)
    rng = np.random.default_rng(2)
    x = rng.normal(size=n)
    # y = rho W y + 1 + beta x + e  ->  y = (I - rho W)^-1 (1 + beta x + e)
    y = np.linalg.solve(np.eye(n) - 0.6 * W, 1.0 + BETA * x + rng.normal(size=n))
    res = cp.spatial_regression(gdf.assign(x=x, y=y), "y", ["x"], w)

    assert res.model == anselin_rule(res.lm_tests) == "ML_Lag"
    assert res.spatial_parameter is not None and res.spatial_parameter["name"] == "rho"
    assert res.spatial_parameter["ci_low"] < 0.6 < res.spatial_parameter["ci_high"]
    row = res.coefficients.loc["x"]
    assert row["ci_low"] < BETA < row["ci_high"]


def test_spatial_regression_no_spatial_process_keeps_ols(grid20):
    gdf, w, _ = grid20
    rng = np.random.default_rng(4)
    x = rng.normal(size=len(gdf))
    res = cp.spatial_regression(gdf.assign(x=x, y=1.0 + BETA * x + rng.normal(size=len(gdf))), "y", ["x"], w)
    assert res.model == anselin_rule(res.lm_tests) == "OLS"
    assert res.spatial_parameter is None
    row = res.coefficients.loc["x"]
    assert row["ci_low"] < BETA < row["ci_high"]
    assert res.coefficients.equals(res.ols_coefficients)


@pytest.mark.parametrize(
    ("p", "robust_p", "robust_stat", "expected"),
    [
        ((0.5, 0.2), (0.5, 0.5), (0.1, 0.2), "OLS"),
        ((0.01, 0.2), (0.5, 0.5), (0.1, 0.2), "ML_Lag"),
        ((0.2, 0.01), (0.5, 0.5), (0.1, 0.2), "ML_Error"),
        ((0.001, 0.001), (0.01, 0.3), (9.0, 1.0), "ML_Lag"),
        ((0.001, 0.001), (0.3, 0.01), (1.0, 9.0), "ML_Error"),
        ((0.001, 0.001), (0.01, 0.02), (9.0, 7.0), "ML_Lag"),  # both robust: the larger statistic
        ((0.001, 0.001), (0.2, 0.1), (1.0, 2.5), "ML_Error"),  # neither robust: the larger statistic
    ],
)
def test_choose_spatial_model_rule(p, robust_p, robust_stat, expected):
    lm = pd.DataFrame(
        {"statistic": [7.0, 7.0, *robust_stat, 9.0], "df": [1, 1, 1, 1, 2], "p": [*p, *robust_p, 0.001]},
        index=["LM_lag", "LM_error", "robust_LM_lag", "robust_LM_error", "LM_SARMA"],
    )
    model, reason = cp.choose_spatial_model(lm)
    assert model == expected == anselin_rule(lm)
    assert reason


def test_spatial_regression_bad_input(grid20):
    gdf, w, _ = grid20
    data = gdf.assign(x=np.arange(len(gdf), dtype=float), y=np.ones(len(gdf)))
    with pytest.raises(ValueError, match=r"column 'y': expected values that vary"):
        cp.spatial_regression(data, "y", ["x"], w)
    with pytest.raises(ValueError, match=r"column 'z': expected in the table"):
        cp.spatial_regression(data, "x", ["z"], w)
    with pytest.raises(ValueError, match="X: expected linearly independent columns"):
        cp.spatial_regression(data.assign(x2=2 * data["x"], y=np.sin(data["x"])), "y", ["x", "x2"], w)


# --------------------------------------------------------------------------------------
# GWR
# --------------------------------------------------------------------------------------


def test_gwr_recovers_smooth_coefficient_surface():
    gdf = lattice(15)  # 225 features
    c = np.column_stack([gdf.centroid.x, gdf.centroid.y])
    rng = np.random.default_rng(3)
    x = rng.normal(size=len(gdf))
    beta = 0.5 + c[:, 0] / c[:, 0].max()  # 0.53 in the west to 1.5 in the east
    data = gdf.assign(x=x, y=1.0 + beta * x + 0.2 * rng.normal(size=len(gdf)))
    res = cp.gwr(data, "y", ["x"])

    assert 3 <= res.bandwidth <= len(gdf) and res.bandwidth == res.summary["bandwidth"]
    assert list(res.local.index) == list(gdf.index)
    r = np.corrcoef(res.local["x_coef"], beta)[0, 1]
    assert r > 0.8
    assert res.summary["r2"] > 0.9 and np.isfinite(res.summary["aicc"])
    # da Silva & Fotheringham: alpha / (ENP / k), k = 2 (constant and x)
    assert res.summary["adjusted_alpha"] == pytest.approx(0.05 * 2 / res.summary["effective_parameters"])
    assert res.summary["critical_t"] > 1.96
    sig = res.local["x_significant"]
    assert sig.all() == (res.local["x_t"].abs() > res.summary["critical_t"]).all()
    assert (res.local.loc[~sig, "x_t_filtered"] == 0).all()
    np.testing.assert_allclose(res.local["x_t"], res.local["x_coef"] / res.local["x_se"], rtol=1e-8)


def test_gwr_needs_projected_crs():
    gdf = lattice(4, cell=0.01, crs="EPSG:4326")
    data = gdf.assign(x=np.arange(16.0), y=np.arange(16.0) ** 0.5)
    with pytest.raises(ValueError, match=r"gwr: expected features in a projected CRS .* geographic CRS EPSG:4326"):
        cp.gwr(data, "y", ["x"])
    with pytest.raises(ValueError, match="gwr: expected features in a projected CRS .* found no CRS"):
        cp.gwr(data.set_crs(None, allow_override=True), "y", ["x"])

"""Validation sampling design (Olofsson et al. 2014) and reading labels back."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401  (the .rio accessor)
import shapely

from karstflow.classify import SampleError
from karstflow.grid import RegionGrid
from karstflow.io import read_raster, write_raster
from karstflow.runtime import call_script
from karstflow.sampling import (
    allocate_samples,
    kml_description,
    labelled_codes,
    olofsson_sample_size,
    sampling_design,
    strata_mismatch,
    stratified_sample,
    stratum_sizes,
    validation_design,
)

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"

# Olofsson et al. (2014) section 5 example: strata deforestation, forest gain, stable
# forest, stable non-forest; mapped pixels and anticipated user's accuracies; S(O) = 0.01.
PIXELS = pd.Series({1: 200_000, 2: 150_000, 3: 3_200_000, 4: 6_450_000})
USERS = {1: 0.7, 2: 0.6, 3: 0.9, 4: 0.95}


def test_sample_size_of_the_published_example():
    # sum W_i S_i = 0.02*0.4583 + 0.015*0.4899 + 0.32*0.3 + 0.645*0.2179 = 0.25309 -> n = 640.5 -> 641
    w = PIXELS / PIXELS.sum()
    assert olofsson_sample_size(w, pd.Series(USERS), 0.01) == 641


def test_allocation_floor_then_proportional_by_hand():
    w = PIXELS / PIXELS.sum()
    alloc = allocate_samples(641, w, PIXELS, min_per_class=75)
    # 641 - 2 x 75 = 491 shared by the stable classes: 491 * 0.32 / 0.965 = 162.8, 491 * 0.645 / 0.965 = 328.2
    assert alloc.tolist() == [75, 75, 163, 328]


def test_allocation_never_exceeds_the_pixels_of_a_class():
    alloc = allocate_samples(100, pd.Series({1: 0.5, 2: 0.49, 3: 0.01}), pd.Series({1: 5000, 2: 4900, 3: 12}), 30)
    assert alloc[3] == 12 and alloc.sum() == 100


def test_design_and_sample_at_pixel_centres():
    grid = RegionGrid.from_bounds("EPSG:32650", 10, (0, 0, 300, 200))
    lc = np.full(grid.shape, 1, np.uint8)
    lc[:, 20:] = 2
    lc[0, :3] = 3
    lc[-1, -1] = 255
    da = grid.data_array(lc)
    counts = pd.Series({c: int((lc == c).sum()) for c in (1, 2, 3)})
    design = sampling_design(counts, {1: "a", 2: "b", 3: "c"}, target_se=0.05, users_accuracy=0.8, min_per_class=5)
    # every S_i = sqrt(0.8 * 0.2) = 0.4 -> n = (0.4 / 0.05)^2 = 64; class c has 3 px (< floor 5): all 3;
    # 61 left for 397 and 199 px: 40.63 and 20.37 -> 41 and 20 (largest remainder)
    n = 64
    assert (design["n_eq13"] == n).all() and design["n_samples"].tolist() == [41, 20, 3]
    s1 = stratified_sample(da, design, {1: "a", 2: "b", 3: "c"}, seed=4)
    s2 = stratified_sample(da, design, {1: "a", 2: "b", 3: "c"}, seed=4)
    assert s1.equals(s2) and len(s1) == 64
    col = ((s1.geometry.x - 5) / 10).round().astype(int)
    row = ((200 - 5 - s1.geometry.y) / 10).round().astype(int)
    assert np.array_equal(lc[row, col], s1["map_code"].to_numpy())
    assert ((s1.geometry.x - 5) % 10 == 0).all() and s1["reference_code"].isna().all()
    assert s1["map_code"].value_counts().to_dict() == {1: 41, 2: 20, 3: 3}


def test_labels_read_from_the_field_or_a_kml_description():
    legend = {1: "a", 2: "b"}
    frame = gpd.GeoDataFrame(
        {
            "sample_id": [1, 2, 3, 4],
            "reference_code": ["2", None, "", None],
            "description": [kml_description(legend)] * 2
            + [kml_description(legend) + "1", kml_description(legend) + " 2"],
        },
        geometry=[shapely.Point(0, 0)] * 4,
    )
    codes = labelled_codes(frame, legend)
    assert codes.tolist()[0] == 2 and pd.isna(codes.iloc[1]) and codes.tolist()[2:] == [1, 2]


def test_labels_outside_the_legend_name_the_file_and_samples():
    frame = pd.DataFrame({"sample_id": [5, 6, 7], "reference_code": [1, 12, 13]})
    with pytest.raises(SampleError, match=r"labelled.kml: class code\(s\) \[12, 13\].*outside the legend.*ids 6, 7"):
        labelled_codes(frame, {1: "a", 2: "b"}, source="labelled.kml")
    with pytest.raises(SampleError, match="no sample is labelled"):
        labelled_codes(pd.DataFrame({"reference_code": [None, None]}), {1: "a"})


def test_sample_records_its_design_and_strata():
    grid = RegionGrid.from_bounds("EPSG:32650", 10, (0, 0, 300, 200))
    lc = np.full(grid.shape, 1, np.uint8)
    lc[:, 20:] = 2
    design = sampling_design(
        pd.Series({1: 400, 2: 200}), {1: "a", 2: "b"}, target_se=0.05, users_accuracy=0.8, min_per_class=5
    )
    assert (design["design"] == "map-stratified").all()
    sample = stratified_sample(grid.data_array(lc), design, {1: "a", 2: "b"}, seed=1)
    assert (sample["design"] == "map-stratified").all()
    assert sample["stratum_pixels"].tolist() == [400 if c == 1 else 200 for c in sample["map_code"]]
    assert kml_description({1: "a"}) == "design: map-stratified. Legend: 1 a. reference_code: "


def test_validation_design_from_column_kml_config_or_unknown():
    pts = [shapely.Point(0, 0)] * 3
    gpkg = gpd.GeoDataFrame({"design": ["map-stratified"] * 3, "reference_code": [1, 2, None]}, geometry=pts)
    assert validation_design(gpkg) == ("map-stratified", "column design")
    assert validation_design(gpkg, "map-stratified") == ("map-stratified", "column design")
    kml = gpd.GeoDataFrame({"description": [kml_description({1: "a"}) + "1"] * 3}, geometry=pts)
    assert validation_design(kml) == ("map-stratified", "KML description")
    field = gpd.GeoDataFrame({"reference_code": [1, 2, 1]}, geometry=pts)
    assert validation_design(field, "simple-random") == ("simple-random", "config landcover.validation.design")
    assert validation_design(field) == ("unknown", "not declared")
    with pytest.raises(
        SampleError,
        match=r"f.gpkg: its column design says the sample is 'map-stratified' but "
        r"config key landcover.validation.design says 'purposive'",
    ):
        validation_design(gpkg, "purposive", source="f.gpkg")
    mixed = gpkg.assign(design=["map-stratified", "simple-random", "map-stratified"])
    with pytest.raises(SampleError, match=r"one sampling design for every point, found \['map-stratified', 'simple"):
        validation_design(mixed)
    # only the rows asked for (the labelled ones) count
    assert validation_design(mixed, rows=[True, False, True])[0] == "map-stratified"
    with pytest.raises(SampleError, match=r"holds the design 'stratified'; expected one of \['map-stratified'"):
        validation_design(gpkg.assign(design="stratified"))
    with pytest.raises(SampleError, match="config key landcover.validation.design must be one of"):
        validation_design(field, "random")


def test_strata_mismatch_names_what_changed():
    frame = pd.DataFrame({"map_code": [1, 1, 2], "stratum_pixels": [90, 90, 10]})
    assert strata_mismatch(frame, np.array([1, 1, 2]), {1: 90, 2: 10}) is None
    why = strata_mismatch(frame, np.array([1, 2, 2]), {1: 89, 2: 11})
    assert "1 of 3 point(s) lie on a map class other than the stratum" in why
    assert "(1: 90 -> 89, 2: 10 -> 11)" in why and "the Stehman 2014 estimator" in why
    assert strata_mismatch(pd.DataFrame({"reference_code": [1]}), np.array([1]), {1: 1}) is None


def test_stratum_sizes_from_every_row():
    frame = pd.DataFrame(
        {
            "sample_id": [1, 2, 3],
            "map_code": [1, 1, 2],
            "stratum_pixels": [90, 90, 10],
            "reference_code": [1, None, None],
        }
    )
    assert stratum_sizes(frame) == {1: 90, 2: 10}  # stratum 2 has no label yet: still population
    assert stratum_sizes(frame.drop(columns="stratum_pixels")) is None
    with pytest.raises(
        SampleError, match=r"f.gpkg: a stratum must have one stratum_pixels value, found \{1: \[80, 90\]\}"
    ):
        stratum_sizes(frame.assign(stratum_pixels=[80, 90, 10]), source="f.gpkg")
    with pytest.raises(
        SampleError, match=r"1 point\(s\) lack a stratum map_code or a positive whole stratum_pixels \(ids \[3\]"
    ):
        stratum_sizes(frame.assign(stratum_pixels=[90, 90, 0]))


@pytest.fixture
def two_class_region(tmp_path):
    """Issue 13's two-class map (A 90 %, 5 % of it really B; B 10 %, 20 % really A) and its truth."""
    grid = RegionGrid.from_bounds("EPSG:32650", 10, (0, 0, 1000, 1000))  # 100 x 100 px
    rng = np.random.default_rng(0)
    flat = np.ones(grid.shape[0] * grid.shape[1], np.uint8)
    flat[rng.permutation(flat.size)[:1000]] = 2  # map B: 1,000 px
    truth = flat.copy()
    in_a, in_b = np.flatnonzero(flat == 1), np.flatnonzero(flat == 2)
    truth[rng.choice(in_a, 450, replace=False)] = 2  # 5 % of map A is B
    truth[rng.choice(in_b, 200, replace=False)] = 1  # 20 % of map B is A
    assert (truth == 2).mean() == 0.125
    lc_path = tmp_path / "landcover.tif"
    write_raster(grid.data_array(flat.reshape(grid.shape)), lc_path, dtype="uint8", nodata=255)
    return grid, lc_path, truth.reshape(grid.shape), flat.reshape(grid.shape)


ACCURACY_PARAMS = {"classes": {1: "A", 2: "B"}, "kappa_min": -1.0, "alpha": 0.05, "label_column": "reference_code"}


def _accuracy(tmp_path, inputs, name, **params):
    out = tmp_path / name
    call_script(
        SCRIPTS / "landcover_accuracy.py",
        input=inputs,
        output={"accuracy": out / "accuracy.json", "matrix": out / "m.csv", "summary": out / "landcover.json"},
        params={**ACCURACY_PARAMS, **params},
        wildcards={"region": "two"},
        log=out / "log.txt",
    )
    return json.loads((out / "accuracy.json").read_text()), json.loads((out / "landcover.json").read_text())


def test_labelled_map_stratified_sample_gives_unbiased_area_reference_split_does_not(tmp_path, two_class_region):
    grid, lc_path, truth, mapped = two_class_region
    out = tmp_path / "design"
    call_script(
        SCRIPTS / "landcover_sampling_design.py",
        input={"landcover": lc_path},
        output={
            "gpkg": out / "validation_sample.gpkg",
            "kml": out / "validation_sample.kml",
            "design": out / "sampling_design.csv",
        },
        params={
            "classes": {1: "A", 2: "B"},
            "sampling": {"target_overall_se": 0.02, "users_accuracy": 0.85, "min_per_class": 50, "seed": 42},
        },
        wildcards={"region": "two"},
    )
    sample = gpd.read_file(out / "validation_sample.gpkg")
    assert (sample["design"] == "map-stratified").all()
    assert gpd.read_file(out / "validation_sample.kml")["description"].str.startswith("design: map-stratified").all()
    # a perfect labeller; no design configured: the file's column says map-stratified
    t = read_raster(lc_path, masked=False).rio.transform()
    rows = ((sample.geometry.y - t.f) / t.e).astype(int)
    cols = ((sample.geometry.x - t.c) / t.a).astype(int)
    sample["reference_code"] = truth[rows, cols].astype(int)
    sample.to_file(tmp_path / "labelled.gpkg")
    acc, summary = _accuracy(
        tmp_path,
        {"landcover": lc_path, "samples": tmp_path / "none.csv", "validation": tmp_path / "labelled.gpkg"},
        "stratified",
    )
    assert acc["design"] == acc["validation_design"] == summary["design"] == "map-stratified"
    assert acc["probability_design"] is True and acc["disagreement_basis"] == "area_weighted"
    share, se = acc["area_proportion"][1], acc["area_proportion_se"][1]
    # eq. 9 restated from the sample: W_A n_AB / n_A + W_B n_BB / n_B
    n = pd.crosstab(sample["map_code"], sample["reference_code"])
    assert share == pytest.approx(0.9 * n.loc[1, 2] / n.loc[1].sum() + 0.1 * n.loc[2, 2] / n.loc[2].sum())
    assert abs(share - 0.125) <= se  # the true B share, within one standard error
    assert acc["area_estimate"][1] == pytest.approx(share * 100.0)  # 10,000 px of 100 m2 = 100 ha
    assert isinstance(summary["area_adjusted_overall_accuracy"], float)

    # the same map validated by a held-out split of reference samples, 50 per reference class
    rng = np.random.default_rng(1)
    picks = np.concatenate([rng.choice(np.flatnonzero(truth.ravel() == c), 50, replace=False) for c in (1, 2)])
    held = pd.DataFrame({"class_code": truth.ravel()[picks], "map_code": mapped.ravel()[picks], "is_validation": True})
    held.to_csv(tmp_path / "samples.csv", index=False)
    ref, ref_summary = _accuracy(tmp_path, {"landcover": lc_path, "samples": tmp_path / "samples.csv"}, "split")
    assert ref["design"] == "reference-split" and ref["probability_design"] is False
    assert (
        ref["area_estimates"] == "not evaluated" and "stratified by reference class" in ref["area_not_evaluated_reason"]
    )
    for key in (
        "area_proportion",
        "area_estimate",
        "area_adjusted_overall_accuracy",
        "quantity_disagreement",
        "allocation_disagreement",
    ):
        assert ref[key] == "not evaluated", key
    assert ref_summary["quantity_disagreement"] == "not evaluated"
    assert isinstance(ref["kappa"], float) and ref["mapped_area_ha"] == {"A": 90.0, "B": 10.0}
    assert "not evaluated" in (tmp_path / "split" / "log.txt").read_text()

    assert acc["area_estimator"] == summary["area_estimator"] == "olofsson-2014"
    assert "strata_differ_from_map" not in acc

    # the loop: naming the labelled file retrains the forest, so it assesses another map. The
    # retrained map corrects 300 of the 450 B pixels mapped A and errs on 250 A pixels mapped A
    # before (now B); the sample's strata are the first map's classes: Stehman (2014).
    rng = np.random.default_rng(7)
    flat, true = mapped.ravel().copy(), truth.ravel()
    flat[rng.choice(np.flatnonzero((flat == 1) & (true == 2)), 300, replace=False)] = 2
    flat[rng.choice(np.flatnonzero((flat == 1) & (true == 1)), 250, replace=False)] = 2
    retrained = flat.reshape(mapped.shape)
    lc2_path = tmp_path / "landcover_retrained.tif"
    write_raster(grid.data_array(retrained), lc2_path, dtype="uint8", nodata=255)
    loop, loop_summary = _accuracy(
        tmp_path,
        {"landcover": lc2_path, "samples": tmp_path / "none.csv", "validation": tmp_path / "labelled.gpkg"},
        "loop",
    )
    assert loop["design"] == "map-stratified" and loop["area_estimator"] == loop_summary["area_estimator"]
    assert loop["area_estimator"] == "stehman-2014" and "area_estimates" not in loop
    assert "lie on a map class other than the stratum" in loop["strata_differ_from_map"]
    assert loop["area_strata"] == [1, 2] and loop["area_stratum_size"] == [90.0, 10.0]  # ha, the first map's
    assert loop["area_stratum_samples"] == sample["map_code"].value_counts().sort_index().tolist()
    share, se = loop["area_proportion"][1], loop["area_proportion_se"][1]
    # eqs. 3 / 14 by hand: the first map's weights 0.9 / 0.1 and the B share of each stratum
    b_share = sample.groupby("map_code")["reference_code"].apply(lambda r: (r == 2).mean())
    assert share == pytest.approx(0.9 * b_share[1] + 0.1 * b_share[2], abs=1e-12)
    assert abs(share - 0.125) <= 2 * se  # the true B share
    assert loop["area_estimate"][1] == pytest.approx(share * 100.0)
    # accuracies of the retrained map from the first map's strata: eq. 12 and the ratio of eq. 27 by hand
    now = retrained[rows, cols]
    units = pd.DataFrame({"h": sample["map_code"], "ok": now == sample["reference_code"], "b": now == 2})
    units["ok_b"] = units["ok"] & units["b"]
    ybar = units.groupby("h").mean()
    w = pd.Series({1: 0.9, 2: 0.1})
    assert loop["area_adjusted_overall_accuracy"] == pytest.approx((w * ybar["ok"]).sum(), abs=1e-12)
    ua_b = (w * ybar["ok_b"]).sum() / (w * ybar["b"]).sum()
    assert loop["area_adjusted_users_accuracy"][1] == pytest.approx(ua_b, abs=1e-12)
    assert loop["mapped_area_ha"] == {"A": 84.5, "B": 15.5}
    assert loop["disagreement_basis"] == "area_weighted" and isinstance(loop_summary["quantity_disagreement"], float)

    # a file whose strata lost their sizes cannot be re-weighted: not evaluated, saying why
    sample.drop(columns="stratum_pixels").to_file(tmp_path / "no_sizes.gpkg")
    bare, _ = _accuracy(
        tmp_path,
        {"landcover": lc2_path, "samples": tmp_path / "none.csv", "validation": tmp_path / "no_sizes.gpkg"},
        "bare",
    )
    assert bare["area_estimates"] == "not evaluated" and "no stratum_pixels column" in bare["area_not_evaluated_reason"]
    # and one stratum with two sizes stops the run, naming the file
    moved = sample.copy()
    moved.loc[moved.index[:3], "map_code"] = 3 - moved.loc[moved.index[:3], "map_code"]
    moved.to_file(tmp_path / "moved.gpkg")
    with pytest.raises(SampleError, match=r"moved.gpkg: a stratum must have one stratum_pixels value"):
        _accuracy(
            tmp_path,
            {"landcover": lc_path, "samples": tmp_path / "none.csv", "validation": tmp_path / "moved.gpkg"},
            "moved",
        )


def test_undeclared_design_is_not_evaluated_config_declares_it(tmp_path, two_class_region):
    grid, lc_path, truth, mapped = two_class_region
    rng = np.random.default_rng(3)
    picks = rng.choice(truth.size, 200, replace=False)  # a simple random sample of the map
    r, c = np.divmod(picks, truth.shape[1])
    x, y = 5.0 + 10 * c, 1000.0 - 5.0 - 10 * r
    field = gpd.GeoDataFrame(
        {"sample_id": np.arange(1, 201), "reference_code": truth.ravel()[picks].astype(int)},
        geometry=gpd.points_from_xy(x, y),
        crs=grid.crs,
    )
    field.to_file(tmp_path / "field.gpkg")
    inputs = {"landcover": lc_path, "samples": tmp_path / "none.csv", "validation": tmp_path / "field.gpkg"}
    unknown, _ = _accuracy(tmp_path, inputs, "unknown", validation_file="field.gpkg")
    assert unknown["design"] == "unknown" and unknown["validation_design_origin"] == "not declared"
    assert unknown["area_estimates"] == "not evaluated"
    assert (
        "column design of field.gpkg or with config key landcover.validation.design"
        in (unknown["area_not_evaluated_reason"])
    )
    srs, _ = _accuracy(tmp_path, inputs, "srs", design="simple-random")
    assert srs["design"] == "simple-random" and srs["validation_design_origin"] == "config landcover.validation.design"
    # post-stratified estimator: sum_i W_i n_iB / n_i+ with W = (0.9, 0.1)
    n = pd.crosstab(mapped.ravel()[picks], truth.ravel()[picks])
    expected = 0.9 * n.loc[1, 2] / n.loc[1].sum() + 0.1 * n.loc[2, 2] / n.loc[2].sum()
    assert srs["area_proportion"][1] == pytest.approx(expected)

"""End-to-end: land cover, accuracy, sampling design and abandonment on the tiny county demo.

The session's demo run (conftest ``demo_run``) builds the stage; the tests reuse it,
copying the run directory where they change the config or the inputs.

Recovery tolerance on the demo (test_planted_abandonment_is_recovered): with the demo's
*true* land cover the stage must recover every parcel exactly (the fractions and the
threshold are exact: any difference is a bug). With the *classified* map, parcels can
only be misjudged where cultivated land and the abandonment classes are confused; the
map has to pass the Kappa gate (>= 0.8, i.e. up to ~20 % of pixels wrong beyond chance),
and on this demo it reaches about 0.95 with errors mostly among the natural classes,
which all count as abandoned. We allow 5 % of the parcels (20 of 400) to be misjudged and
the abandonment rates to be within 0.03 (absolute) of the planted ones: 0.03 is one
standard error of a rate near 0.3 estimated from ~230 parcels, i.e. the recovered rate
must be as good as a careful field survey of half the parcels would be. A wrong fraction
formula (e.g. the centroid pixel, or counts over the wrong classes) misses it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rioxarray  # noqa: F401  (the .rio accessor)
from sklearn.metrics import cohen_kappa_score

from karstflow.abandonment import parcel_abandonment
from karstflow.demo import LANDCOVER_CLASSES
from karstflow.grid import RegionGrid
from karstflow.io import read_raster
from karstflow.sampling import strata_mismatch

pytestmark = pytest.mark.e2e

REGION = "demo-county"
TARGETS = [
    f"results/{REGION}/abandonment/abandonment.json",
    f"results/{REGION}/landcover/landcover.json",
    f"results/{REGION}/landcover/validation_sample.gpkg",
    f"results/{REGION}/landcover/validation_sample.kml",
]


@pytest.fixture(scope="module")
def county_run(demo_run, workflow_runner, tmp_path_factory):
    """A copy of the session's demo run (conftest; other workers copy it meanwhile) with the
    sampling design the default target does not ask for (one small job); the tests that
    change anything work in clones of it."""
    workdir = clone(demo_run, tmp_path_factory.mktemp("county-run") / "run")
    workflow_runner.run(workdir, *TARGETS)
    return workdir


def clone(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    return dest


def edit_config(workdir: Path, edit) -> None:
    import yaml

    path = workdir / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    edit(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_landcover_map_and_accuracy(county_run):
    base = county_run / "results" / REGION
    grid = RegionGrid.from_dict(json.loads((base / "grid.json").read_text()))
    lc = read_raster(base / "landcover" / "landcover.tif", masked=False)
    assert grid.matches(lc) and lc.dtype == np.uint8
    assert set(np.unique(lc.values)) <= set(LANDCOVER_CLASSES) | {255}
    with rasterio.open(base / "landcover" / "landcover.tif") as f:
        assert f.nodata == 255 and f.colormap(1)[2][:3] == (20, 100, 40)
    accuracy = json.loads((base / "landcover" / "accuracy.json").read_text())
    samples = pd.read_csv(base / "landcover" / "samples.csv")
    val = samples[samples["is_validation"]]
    assert not set(val["sample_id"]) & set(samples.loc[~samples["is_validation"], "sample_id"])
    # Kappa restates the held-out pairs (scikit-learn, independent code) and passes the gate
    assert accuracy["kappa"] == pytest.approx(cohen_kappa_score(val["class_code"], val["map_code"]))
    assert accuracy["kappa"] >= 0.8 and accuracy["kappa_ci"][0] < accuracy["kappa"] < accuracy["kappa_ci"][1]
    for key in (
        "users_accuracy",
        "producers_accuracy",
        "quantity_disagreement",
        "allocation_disagreement",
        "area_estimate",
        "area_ci",
        "area_adjusted_overall_accuracy",
        "area_adjusted_users_accuracy",
    ):
        assert key in accuracy
    # the held-out split is stratified by reference class: no area figures from it (issue 13)
    assert accuracy["design"] == accuracy["validation_design"] == "reference-split"
    assert (val["design"] == "reference-split").all()
    assert (
        accuracy["area_estimates"]
        == accuracy["area_estimate"]
        == accuracy["quantity_disagreement"]
        == ("not evaluated")
    )
    assert "stratified by reference class" in accuracy["area_not_evaluated_reason"]
    assert isinstance(accuracy["allocation_disagreement_sample"], float)
    matrix = pd.read_csv(base / "landcover" / "confusion_matrix.csv", index_col=0)
    assert matrix.to_numpy().tolist() == accuracy["matrix"]
    # rows are map classes: row totals are the validation samples per mapped class
    per_map = val["map_code"].map(LANDCOVER_CLASSES).value_counts()
    assert matrix.sum(axis=1).to_dict() == {k: per_map.get(k, 0) for k in matrix.index}
    pixel_area_ha = grid.pixel_area_m2 / 1e4
    counts = np.bincount(lc.values.ravel(), minlength=256)
    assert accuracy["mapped_area_ha"]["cultivated"] == pytest.approx(counts[1] * pixel_area_ha)
    summary = json.loads((base / "landcover" / "landcover.json").read_text())
    assert summary["kappa"] == accuracy["kappa"]


def test_planted_abandonment_is_recovered(county_run):
    base = county_run / "results" / REGION
    planted = json.loads((county_run / "resources" / "demo" / REGION / "PLANTED.json").read_text())["abandonment"]
    parcels = gpd.read_file(base / "abandonment" / "parcels.gpkg")
    summary = json.loads((base / "abandonment" / "abandonment.json").read_text())
    # exact with the true land cover
    truth = read_raster(county_run / "resources" / "demo" / REGION / "landcover.tif", masked=False)
    exact = parcel_abandonment(
        parcels[["parcel_id", "abandoned_true", "geometry"]],
        truth,
        LANDCOVER_CLASSES,
        abandonment_codes=[2, 3, 4, 5, 6],
        threshold=0.5,
        min_classified_fraction=0.5,
    )
    assert (exact["abandoned"] == exact["abandoned_true"]).all()
    # within the justified tolerance with the classified map
    agreement = float((parcels["abandoned"] == parcels["abandoned_true"]).mean())
    print(
        f"\ndemo recovery: parcel agreement {agreement:.3f}; rate by count {summary['abandonment_rate_by_count']:.4f} "
        f"(planted {planted['rate_by_count']:.4f}); by area {summary['abandonment_rate_by_area']:.4f} "
        f"(planted {planted['rate_by_area']:.4f})"
    )
    assert summary["parcels"] == planted["n_parcels"] == len(parcels)
    assert agreement >= 0.95
    assert summary["abandonment_rate_by_count"] == pytest.approx(planted["rate_by_count"], abs=0.03)
    assert summary["abandonment_rate_by_area"] == pytest.approx(planted["rate_by_area"], abs=0.03)
    assert summary["abandoned_area_ha"] == pytest.approx(parcels.loc[parcels["abandoned"] == 1, "area_ha"].sum())
    years = summary["by_reclaim_year"]
    assert sum(y["parcels"] for y in years.values()) == len(parcels)
    region_summary = json.loads((base / "summary.json").read_text()) if (base / "summary.json").exists() else None
    assert region_summary is None or region_summary["abandonment"]["parcels"] == len(parcels)


def test_sampling_design_exports_points_to_label(county_run):
    base = county_run / "results" / REGION / "landcover"
    design = pd.read_csv(base / "sampling_design.csv")
    sample = gpd.read_file(base / "validation_sample.gpkg")
    kml = gpd.read_file(base / "validation_sample.kml")
    assert len(sample) == len(kml) == design["n_samples"].sum()
    assert sample.groupby("map_code").size().to_dict() == dict(
        zip(design["class_code"], design["n_samples"], strict=True)
    )
    assert kml.crs.to_epsg() == 4326 and "reference_code:" in kml["description"].iloc[0]
    # the design is recorded with every point (issue 13)
    assert (sample["design"] == "map-stratified").all() and (design["design"] == "map-stratified").all()
    assert kml["description"].str.startswith("design: map-stratified").all()
    assert (
        sample["stratum_pixels"].tolist()
        == sample["map_code"].map(dict(zip(design["class_code"], design["mapped_pixels"], strict=True))).tolist()
    )
    lc = read_raster(county_run / "results" / REGION / "landcover" / "landcover.tif", masked=False)
    t = lc.rio.transform()
    rows = ((sample.geometry.y - t.f) / t.e).astype(int)
    cols = ((sample.geometry.x - t.c) / t.a).astype(int)
    assert np.array_equal(lc.values[rows, cols], sample["map_code"].to_numpy())


def test_labelled_sample_is_read_back_into_the_assessment(county_run, workflow_runner, tmp_path):
    workdir = clone(county_run, tmp_path / "labelled")
    truth = read_raster(workdir / "resources" / "demo" / REGION / "landcover.tif", masked=False)
    sample = gpd.read_file(workdir / "results" / REGION / "landcover" / "validation_sample.gpkg")
    t = truth.rio.transform()
    rows = ((sample.geometry.y - t.f) / t.e).astype(int)
    cols = ((sample.geometry.x - t.c) / t.a).astype(int)
    sample["reference_code"] = pd.array(truth.values[rows, cols].astype(int), dtype="Int64")  # a perfect labeller
    sample.loc[sample.index[:10], "reference_code"] = pd.NA  # not labelled yet
    sample.to_file(workdir / "labelled.gpkg")
    edit_config(workdir, lambda c: c["regions"][REGION].setdefault("inputs", {}).update(validation="labelled.gpkg"))
    workflow_runner.run(workdir, f"results/{REGION}/landcover/accuracy.json")
    accuracy = json.loads((workdir / "results" / REGION / "landcover" / "accuracy.json").read_text())
    # the design comes from the file's own column, no config needed
    assert accuracy["validation_design"] == accuracy["design"] == "map-stratified"
    assert accuracy["validation_design_origin"] == "column design" and accuracy["unlabelled_points_skipped"] == 10
    assert accuracy["n"] == len(sample) - 10
    labelled = sample.iloc[10:]
    lc = read_raster(workdir / "results" / REGION / "landcover" / "landcover.tif", masked=False)
    mapped = lc.values[rows[10:], cols[10:]]
    assert accuracy["kappa"] == pytest.approx(cohen_kappa_score(labelled["reference_code"].astype(int), mapped))
    # with a validation file every reference sample trains, so the map may differ from the one
    # the sample was drawn from: its strata are then not this map's classes and the Stehman (2014)
    # estimator gives the area figures (issue 13: the loop works in the first round)
    counts = np.bincount(lc.values[lc.values != 255].ravel(), minlength=256)
    changed = strata_mismatch(labelled, mapped, {c: int(counts[c]) for c in LANDCOVER_CLASSES})
    assert "area_estimates" not in accuracy and accuracy["disagreement_basis"] == "area_weighted"
    assert accuracy["area_estimator"] == ("stehman-2014" if changed else "olofsson-2014")
    if changed:
        assert accuracy["strata_differ_from_map"] == changed
        # eqs. 3 / 14 by hand: sum_h (N_h / N) x share of reference k among stratum h's labelled points
        sizes = sample.groupby("map_code")["stratum_pixels"].first()
        share = (
            pd.crosstab(labelled["map_code"], labelled["reference_code"], normalize="index")
            .mul(sizes / sizes.sum(), axis=0)
            .sum()
        )
        for code, value in share.items():
            idx = accuracy["class_names"].index(LANDCOVER_CLASSES[code])
            assert accuracy["area_proportion"][idx] == pytest.approx(value)
    # the sample drawn from this map, labelled in place: strata match, unbiased area estimates
    workflow_runner.run(workdir, f"results/{REGION}/landcover/validation_sample.gpkg")
    again = gpd.read_file(workdir / "results" / REGION / "landcover" / "validation_sample.gpkg")
    r2 = ((again.geometry.y - t.f) / t.e).astype(int)
    c2 = ((again.geometry.x - t.c) / t.a).astype(int)
    again["reference_code"] = pd.array(truth.values[r2, c2].astype(int), dtype="Int64")
    again.to_file(workdir / "labelled.gpkg")
    workflow_runner.run(workdir, f"results/{REGION}/landcover/accuracy.json")
    accuracy = json.loads((workdir / "results" / REGION / "landcover" / "accuracy.json").read_text())
    assert accuracy["design"] == "map-stratified" and accuracy["disagreement_basis"] == "area_weighted"
    assert "area_estimates" not in accuracy
    # eq. 9 restated: sum over strata of W_h n_hk / n_h, W_h = stratum pixels / all pixels
    w = again.groupby("map_code")["stratum_pixels"].first() / counts.sum()
    share = pd.crosstab(again["map_code"], again["reference_code"], normalize="index").mul(w, axis=0).sum()
    names = accuracy["class_names"]
    for code, value in share.items():
        assert accuracy["area_proportion"][names.index(LANDCOVER_CLASSES[code])] == pytest.approx(value)
    sample = again
    # a label outside the legend stops the assessment, naming the file and the sample
    sample.loc[sample.index[20], "reference_code"] = 12
    sample.to_file(workdir / "labelled.gpkg")
    proc = workflow_runner.run(workdir, f"results/{REGION}/landcover/accuracy.json", check=False)
    assert proc.returncode != 0
    log = (workdir / "logs" / REGION / "landcover_accuracy.log").read_text()
    assert "labelled.gpkg (harmonised as" in log and "class code(s) [12]" in log
    assert f"ids {sample['sample_id'].iloc[20]}" in log
    assert not (workdir / "results" / REGION / "landcover" / "accuracy.json").exists()


def test_kappa_below_the_minimum_stops_the_run(county_run, workflow_runner, tmp_path):
    workdir = clone(county_run, tmp_path / "gate")
    edit_config(workdir, lambda c: c.setdefault("landcover", {}).update(validation={"kappa_min": 0.999}))
    assert workflow_runner.plan(workdir, *TARGETS) == {"landcover_accuracy": 1, "abandonment_parcels": 1}
    proc = workflow_runner.run(workdir, f"results/{REGION}/abandonment/abandonment.json", check=False)
    assert proc.returncode != 0
    log = (workdir / "logs" / REGION / "landcover_accuracy.log").read_text()
    assert "below the minimum 0.999 (config key landcover.validation.kappa_min)" in log
    assert "map \\ reference" in log  # the confusion matrix is in the log
    assert not (workdir / "results" / REGION / "landcover" / "accuracy.json").exists()

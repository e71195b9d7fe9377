"""End-to-end: the driver and model stages on the tiny county demo (Snakemake in a copy).

The stages run on the demo's planted labels (the region input abandonment_labels: the
generator's abandoned_true column mapped to abandoned), so this module does not wait for
imagery and classification; the default run (tests/test_workflow.py) takes
the classified labels. Shorter bootstrap and null simulations keep it quick.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from karstflow.drivers import DRIVER_COLUMNS
from karstflow.model import hosmer_lemeshow

pytestmark = pytest.mark.e2e

REGION = "demo-county"
TARGET = f"results/{REGION}/model/model.json"
STUDY_RULES = [
    "x1_elevation_m > 130 and x10_area_ha < 0.2",
    "x6_population_density_per_km2 < 400 and x10_area_ha < 0.2",
    "x5_farmland_distance_m > 40 and x10_area_ha < 0.2",
    "x1_elevation_m > 110 and x5_farmland_distance_m > 70",
]


def _config(config):
    config["regions"] = {REGION: config["regions"][REGION]}
    config["regions"][REGION]["inputs"]["abandonment_labels"] = {
        "path": f"resources/demo/{REGION}/parcels.gpkg",
        "columns": {"abandoned": "abandoned_true"},
    }
    config["model"] = {"rule_search": {"n_bootstrap": 40, "n_null": 19}}


@pytest.fixture(scope="module")
def stage_run(workflow_runner, tmp_path_factory):
    workdir = workflow_runner.copy(tmp_path_factory.mktemp("model-stage"), _config)
    workflow_runner.run(workdir, TARGET)
    return workdir


def test_driver_table_holds_the_planted_drivers(stage_run):
    base = stage_run / "results" / REGION
    table = pd.read_csv(base / "drivers" / "parcel_drivers.csv")
    truth = pd.read_csv(stage_run / "resources" / "demo" / REGION / "parcels_truth.csv")
    assert list(table.columns) == [
        "parcel_id",
        "abandoned",
        *DRIVER_COLUMNS,
        "x4_off_network",
        "x5_off_network",
        "village_id",
    ]
    np.testing.assert_array_equal(table["parcel_id"], truth["parcel_id"])
    np.testing.assert_array_equal(table["abandoned"], truth["abandoned_true"])
    for col in DRIVER_COLUMNS:
        np.testing.assert_allclose(table[col], truth[col], rtol=1e-12, err_msg=col)
    summary = json.loads((base / "drivers" / "drivers.json").read_text())
    assert summary["parcels"] == len(truth) and summary["labels"] == "input"


def test_model_outputs_follow_the_contract(stage_run):
    base = stage_run / "results" / REGION / "model"
    coef = pd.read_csv(base / "logit_coefficients.csv")
    assert list(coef.columns) == ["term", "B", "SE", "Wald", "df", "p", "exp_B", "ci_low", "ci_high", "B_std"]
    assert len(coef) == 9 + 1 + 4 + 1  # nine 1-df drivers, aspect joint + its 4 classes, constant
    one = coef[coef["df"] == 1]
    np.testing.assert_allclose(one["Wald"], (one["B"] / one["SE"]) ** 2, rtol=1e-9)
    np.testing.assert_allclose(one["exp_B"], np.exp(one["B"]), rtol=1e-9)
    assert coef.set_index("term").loc["x3_aspect_class", "df"] == 4
    fit = json.loads((base / "model_fit.json").read_text())
    pred = pd.read_csv(base / "predicted.csv")
    stat, df, p = hosmer_lemeshow(pred["abandoned"], pred["p_abandoned"], 10, method="spss")
    assert fit["hosmer_lemeshow"] == {
        "statistic": pytest.approx(stat),
        "df": df,
        "p": pytest.approx(p),
        "groups": 10,
        "grouping": "spss",  # model.report_style spss (the default)
        "adequate_fit_at_0.05": p > 0.05,
    }
    # planted (survey) labels: taken as true, no misclassification correction; the
    # side-by-side table still lists the naive coefficients
    assert fit["label_error"] == {"method": "none", "labels": "input"}
    corrected = pd.read_csv(base / "logit_coefficients_corrected.csv").set_index("term")
    naive = coef.dropna(subset=["B"]).set_index("term")["B"]
    np.testing.assert_allclose(corrected.loc[naive.index, "B_naive"], naive, rtol=1e-12)
    assert corrected["B_corrected"].isna().all()
    assert fit["n"] == len(pred) and fit["events"] == int(pred["abandoned"].sum())
    for key in ("log_likelihood", "mcfadden_r2", "nagelkerke_r2", "auc", "classification_table"):
        assert key in fit
    vif = pd.read_csv(base / "vif.csv")
    assert list(vif["predictor"]) == list(DRIVER_COLUMNS) and (vif["vif"] >= 1).all()
    rules = json.loads((base / "convenience_rules.json").read_text())
    assert rules["source"] == "fitted" and isinstance(rules["rules"], list)
    assert rules["search"]["criterion"] == "interaction" and rules["search"]["n_bootstrap"] == 40
    for rule in rules["rules"]:
        assert set(rule) >= {"rule", "variables", "support", "rate", "lift", "p", "p_holm", "bootstrap_frequency"}
    for name in ("coefficients", "calibration", "roc", "rule_heatmaps"):
        png = base / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((base / "model.json").read_text())
    assert summary["auc"] == pytest.approx(fit["auc"]) and summary["rules"] == len(rules["rules"])
    for rule in ("drivers_parcels", "model_fit", "model_rules", "model_figures", "model_summary"):
        assert (stage_run / "logs" / REGION / f"{rule}.log").exists()
        assert (stage_run / "logs" / "benchmarks" / REGION / f"{rule}.tsv").exists()


def _override(tmp_path, name: str, text: str) -> list[str]:
    """Command-line arguments adding a YAML config file (typed values, unlike --config)."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return ["--configfile", "config/config.yaml", str(path)]


def test_parameter_changes_rerun_only_their_stage(stage_run, workflow_runner, tmp_path):
    assert workflow_runner.plan(stage_run, TARGET) == {}
    rest = {"model_rules": 1, "model_figures": 1, "model_summary": 1}
    alpha = _override(tmp_path, "alpha", "model:\n  alpha: 0.01\n  rule_search: {n_bootstrap: 40, n_null: 19}\n")
    assert workflow_runner.plan(stage_run, TARGET, *alpha) == rest
    access = _override(tmp_path, "access", "drivers: {max_access_m: 50}\n")
    assert workflow_runner.plan(stage_run, TARGET, *access) == {"drivers_parcels": 1, "model_fit": 1, **rest}


def test_rules_from_the_config_replace_the_search(stage_run, workflow_runner, tmp_path):
    workdir = tmp_path / "wd"
    shutil.copytree(stage_run, workdir, symlinks=True)
    rules_yaml = "[" + ", ".join(f"'{r}'" for r in STUDY_RULES) + "]"
    rules_file = f"results/{REGION}/model/convenience_rules.json"
    workflow_runner.run(workdir, rules_file, *_override(tmp_path, "rules", f"model:\n  rules: {rules_yaml}\n"))
    doc = json.loads((workdir / "results" / REGION / "model" / "convenience_rules.json").read_text())
    assert doc["source"] == "config" and [r["rule"] for r in doc["rules"]] == STUDY_RULES
    table = pd.read_csv(workdir / "results" / REGION / "drivers" / "parcel_drivers.csv")
    first = table.eval(STUDY_RULES[0])
    assert doc["rules"][0]["support"] == int(first.sum())
    assert doc["rules"][0]["rate"] == pytest.approx(table.loc[first, "abandoned"].mean())
    # a rule naming an unknown column stops the run at start-up, naming the key
    bad = _override(tmp_path, "bad", "model:\n  rules: ['slope > 3 and x10_area_ha < 0.2']\n")
    proc = workflow_runner.run(workdir, rules_file, *bad, "--dry-run", check=False)
    assert proc.returncode != 0
    assert (
        "config key model.rules[0]: rule 'slope > 3 and x10_area_ha < 0.2': unknown column(s) ['slope']"
        in proc.stdout + proc.stderr
    )


def test_parcels_without_a_village_fail_clearly_and_leave_nothing(stage_run, workflow_runner, tmp_path):
    import geopandas as gpd

    workdir = tmp_path / "wd"
    shutil.copytree(stage_run, workdir, symlinks=True)
    villages_path = workdir / "resources" / "demo" / REGION / "villages.gpkg"
    villages = gpd.read_file(villages_path)
    villages.iloc[1:].to_file(villages_path, driver="GPKG")  # the first village is gone
    proc = workflow_runner.run(workdir, TARGET, check=False)
    assert proc.returncode != 0
    log = (workdir / "logs" / REGION / "drivers_parcels.log").read_text()
    assert "villages:" in log and "lie outside every village polygon" in log and "parcel_id" in log
    assert not (workdir / "results" / REGION / "drivers" / "parcel_drivers.csv").exists()

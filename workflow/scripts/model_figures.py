"""Entry script of rule model_figures: coefficient plot, calibration, ROC and rule heatmaps."""

import logging

import pandas as pd

from karstflow.io import read_json
from karstflow.model import (
    calibration_figure,
    coefficient_figure,
    read_driver_table,
    roc_figure,
    rule_heatmap_figure,
)
from karstflow.plotting import save_figure
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.model_figures")


def main(input, output, params, wildcards, threads=1) -> None:
    inp, out = input, output
    fit = read_json(inp.fit)
    pred = pd.read_csv(inp.predicted)
    save_figure(
        coefficient_figure(pd.read_csv(inp.coefficients), ci_level=fit["ci_level"]),
        out.coefficients,
    )
    save_figure(calibration_figure(pd.read_csv(inp.risk_groups), fit["hosmer_lemeshow"]), out.calibration)
    save_figure(roc_figure(pred["abandoned"].to_numpy(), pred["p_abandoned"].to_numpy()), out.roc)
    drivers = read_driver_table(pd.read_csv(inp.drivers), source=inp.drivers)
    save_figure(rule_heatmap_figure(drivers, read_json(inp.rules)), out.rule_heatmaps)
    log.info("model figures written")


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

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
    fit = read_json(input.fit)
    pred = pd.read_csv(input.predicted)
    save_figure(
        coefficient_figure(pd.read_csv(input.coefficients), ci_level=fit["ci_level"]),
        output.coefficients,
    )
    save_figure(calibration_figure(pd.read_csv(input.risk_groups), fit["hosmer_lemeshow"]), output.calibration)
    save_figure(roc_figure(pred["abandoned"].to_numpy(), pred["p_abandoned"].to_numpy()), output.roc)
    drivers = read_driver_table(pd.read_csv(input.drivers), source=input.drivers)
    save_figure(rule_heatmap_figure(drivers, read_json(input.rules)), output.rule_heatmaps)
    log.info("model figures written")


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

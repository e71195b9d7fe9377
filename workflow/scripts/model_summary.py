"""Entry script of rule model_summary: the headline figures of the driver and model stages."""

import logging

import pandas as pd

from karstflow.io import read_json, write_json
from karstflow.model import model_summary
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.model_summary")


def main(input, output, params, wildcards, threads=1) -> None:
    summary = model_summary(
        read_json(input.fit),
        read_json(input.rules),
        pd.read_csv(input.coefficients),
        read_json(input.drivers_summary),
        figures={name: str(getattr(input, f"figure_{name}")) for name in params.figures},
    )
    write_json(summary, output.summary)
    log.info("model summary: %d rules, AUC %.3f", summary["rules"], summary["auc"])


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

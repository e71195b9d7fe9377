"""Entry script of rule model_summary: the headline figures of the driver and model stages."""

import pandas as pd

from karstflow.io import read_json, write_json
from karstflow.model import model_summary
from karstflow.runtime import configure_logging

log = configure_logging(snakemake.log[0])
inp = snakemake.input
summary = model_summary(
    read_json(inp.fit), read_json(inp.rules), pd.read_csv(inp.coefficients), read_json(inp.drivers_summary),
    figures={name: str(getattr(inp, f"figure_{name}")) for name in snakemake.params.figures},
)
write_json(summary, snakemake.output.summary)
log.info("model summary: %d rules, AUC %.3f", summary["rules"], summary["auc"])

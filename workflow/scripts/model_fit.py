"""Entry script of rule model_fit: the abandonment logit, its fit, VIFs and risk groups."""

import logging

import pandas as pd

from karstflow.io import write_csv, write_json
from karstflow.model import (
    ModelInputError,
    fit_abandonment_model,
    read_driver_table,
    reduce_collinearity,
)
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.model_fit")


def main(input, output, params, wildcards, threads=1) -> None:
    m = params.model
    source = input.drivers

    try:
        drivers = read_driver_table(pd.read_csv(source), source=source)
        categorical = ["x3_aspect_class"]
        kept, vif = reduce_collinearity(
            drivers,
            m["predictors"],
            threshold=m["collinearity"]["threshold"],
            action=m["collinearity"]["action"],
            categorical=categorical,
            reference_class=m["aspect_reference"],
        )
        model = fit_abandonment_model(
            drivers,
            predictors=kept,
            categorical=categorical,
            reference_class=m["aspect_reference"],
            interaction_terms=m["interaction_terms"],
            ci_level=m["ci_level"],
            hl_groups=m["hosmer_lemeshow_groups"],
            cutoff=m["classification_cutoff"],
            maxiter=m["maxiter"],
            source=source,
        )
    except ModelInputError as err:
        log.error("%s", err)
        raise

    fit = dict(model.fit)
    fit["parcels_not_evaluated"] = int(drivers.attrs.get("not_evaluated", 0))
    fit["collinearity"] = {
        "threshold": m["collinearity"]["threshold"],
        "action": m["collinearity"]["action"],
        "dropped": vif.loc[vif["dropped"] == 1, "predictor"].tolist(),
        "max_gvif_per_df": float(vif["gvif_per_df"].max()),
    }
    write_csv(model.coefficients, output.coefficients, index=False)
    write_csv(vif, output.vif, index=False)
    write_csv(model.risk_groups, output.risk_groups, index=False)
    pred = pd.DataFrame(
        {
            "parcel_id": drivers["parcel_id"].to_numpy(),
            "abandoned": drivers["abandoned"].to_numpy(),
            "p_abandoned": model.predicted.to_numpy(),
        }
    )
    write_csv(pred, output.predicted, index=False)
    write_json(fit, output.fit)
    hl = fit["hosmer_lemeshow"]
    log.info(
        "logit on %d parcels (%d abandoned): Nagelkerke R2 %.3f, AUC %.3f, Hosmer-Lemeshow %.2f (df %d, p %.3f)",
        fit["n"],
        fit["events"],
        fit["nagelkerke_r2"],
        fit["auc"],
        hl["statistic"],
        hl["df"],
        hl["p"],
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

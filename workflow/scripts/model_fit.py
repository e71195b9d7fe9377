"""Entry script of rule model_fit: the abandonment logit, its fit, VIFs and risk groups, and the
logit corrected for misclassified labels (karstflow.label_error) beside the naive one."""

import logging

import pandas as pd

from karstflow.io import read_json, read_vector, write_csv, write_json
from karstflow.label_error import (
    CORRECTED_COLUMNS,
    LabelErrorInputError,
    corrected_logit,
    label_error_from_config,
    label_error_from_validation,
)
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
    except ModelInputError as err:
        log.error("%s", err)
        raise
    try:
        method, labels, error = _label_rates(drivers, m["label_error"], input, params.id_column)
    except LabelErrorInputError as err:
        log.error("%s", err)
        raise
    try:
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
            hl_method="spss" if m["report_style"] == "spss" else "quantile",
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
    try:
        fit["label_error"], corrected = _corrected(
            model, drivers, method, labels, error, m["label_error"], m["ci_level"]
        )
    except LabelErrorInputError as err:
        log.error("%s", err)
        raise
    write_csv(corrected, output.corrected, index=False)
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


def _label_rates(drivers, cfg, input, id_col):
    """(method, labels, LabelError or None) from config key model.label_error.

    method auto: the validation sample (the labelled parcels with a checked label in
    ``truth_column``) when the labels are classified and one exists, else the configured
    rates, else none. Survey labels (drivers.json labels "input") are taken as true.
    """
    method = cfg["method"]
    labels = read_json(input.drivers_summary).get("labels", "classified")
    truth = None
    if method in ("auto", "validation"):
        parcels = read_vector(input.labels)
        col = cfg["truth_column"]
        if col in parcels.columns and id_col in parcels.columns:
            truth = drivers["parcel_id"].map(parcels.set_index(id_col)[col])
            truth = truth if truth.notna().any() else None
        if method == "validation" and truth is None:
            raise LabelErrorInputError(
                f"config key model.label_error.method is 'validation' but {input.labels} has no checked labels in "
                f"column {col!r} (id column {id_col!r}); found columns {list(parcels.columns)}"
            )
    if method == "auto":
        if labels == "input":
            method = "none"
        elif truth is not None:
            method = "validation"
        elif cfg.get("sensitivity") is not None:
            method = "config"
        else:
            method = "none"
    if method == "validation":
        src = f"{input.labels}:{cfg['truth_column']}"
        return method, labels, label_error_from_validation(drivers["abandoned"], truth, source=src)
    if method == "config":
        return method, labels, label_error_from_config(cfg)
    return method, labels, None


def _corrected(model, drivers, method, labels, error, cfg, ci_level):
    """The record for model_fit.json and the side-by-side table (corrected columns empty without a correction)."""
    if error is None:
        log.info(
            "label error: no correction (config key model.label_error.method %r, labels %s)", cfg["method"], labels
        )
        empty = pd.DataFrame({"term": list(model.design.columns)}).reindex(columns=list(CORRECTED_COLUMNS))
        empty["B_naive"] = model.result.params.to_numpy()
        empty["SE_naive"] = model.result.bse.to_numpy()
        return {"method": "none", "labels": labels}, empty
    table, info = corrected_logit(
        drivers["abandoned"],
        model.design,
        error,
        n_bootstrap=cfg["n_bootstrap"],
        seed=cfg["seed"],
        ci_level=ci_level,
        naive=model.result,
    )
    log.info(
        "label error (%s): sensitivity %.3f, specificity %.3f; corrected logit beside the naive one",
        method,
        error.sensitivity,
        error.specificity,
    )
    return {"method": method, "labels": labels, **info}, table


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

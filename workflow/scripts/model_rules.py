"""Entry script of rule model_rules: the cultivation-convenience rules (searched or configured)."""

import logging

import pandas as pd

from karstflow.conditions import RuleError
from karstflow.convenience import evaluate_rules, find_interaction_rules
from karstflow.io import read_json, write_csv, write_json
from karstflow.model import design_matrix, read_driver_table, significant_from_table
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.model_rules")


def main(input, output, params, wildcards, threads=1) -> None:
    drivers = read_driver_table(pd.read_csv(input.drivers), source=input.drivers)
    fit = read_json(input.fit)
    coefficients = pd.read_csv(input.coefficients)

    if params.rules is not None:
        try:
            rules = evaluate_rules(drivers, params.rules)
        except RuleError as err:
            log.error("config key model.rules: %s", err)
            raise
        doc = {"source": "config", "rules": rules, "search": None}
        table = pd.DataFrame(rules)
        log.info("%d rules from the config (model.rules); no search", len(rules))
    else:
        s = dict(params.rule_search)
        significant = significant_from_table(coefficients, fit["predictors"], params.alpha)
        log.info("significant drivers at %.3g: %s", params.alpha, ", ".join(significant) or "none")
        categorical = [c for c in ["x3_aspect_class"] if c in fit["predictors"]]
        base, _ = design_matrix(
            drivers, fit["predictors"], categorical=categorical, reference_class=params.aspect_reference
        )
        search = find_interaction_rules(
            drivers,
            significant,
            criterion=s["criterion"],
            base_design=base,
            categorical=categorical,
            quantiles=s["quantiles"],
            significant_digits=s["significant_digits"],
            min_support=s["min_support"],
            alpha=params.alpha,
            n_bootstrap=s["n_bootstrap"],
            n_null=s["n_null"],
            min_bootstrap_frequency=s["min_bootstrap_frequency"],
            min_lift=s["min_lift"],
            max_rules=s["max_rules"],
            seed=s["seed"],
        )
        doc = {"source": "fitted", "rules": search.rules, "search": search.settings}
        table = search.pairs.assign(variables=search.pairs["variables"].map(lambda v: " ".join(v)))
        if len(significant) < 2:
            log.warning("fewer than two significant drivers: no pair to search, no rules")
        for rule in search.rules:
            log.info(
                "rule: %s (support %d, rate %.2f, lift %.2f, p_holm %.2g, bootstrap %.2f)",
                rule["rule"],
                rule["support"],
                rule["rate"],
                rule["lift"],
                rule["p_holm"],
                rule["bootstrap_frequency"],
            )
        if not search.rules:
            log.warning(
                "no rule passed the tests; convenience_rules.json holds no rules (the reserve "
                "stage then reports convenience as not evaluated)"
            )
    write_csv(table, output.search, index=False)
    write_json(doc, output.rules)


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

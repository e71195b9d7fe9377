# Helpers and input functions of the rules in model.smk.

from karstflow.conditions import RuleError, rule_variables


def check_rule_keys():
    """Rules in the config are expressions over the driver columns: checked at start-up."""
    expressions = [config["model"][key] or [] for key in ("rules", "interaction_terms")]
    if not any(expressions):
        return
    # only then: karstflow.drivers brings geopandas, networkx and scipy (0.7 s at start-up)
    from karstflow.drivers import DRIVER_COLUMNS

    for key in ("rules", "interaction_terms"):
        for i, expression in enumerate(config["model"][key] or []):
            try:
                rule_variables(expression, DRIVER_COLUMNS)
            except RuleError as err:
                raise WorkflowError(f"config key model.{key}[{i}]: {err}")


check_rule_keys()


MODEL_FIGURES = {
    "coefficients": "results/{region}/model/figures/coefficients.png",
    "calibration": "results/{region}/model/figures/calibration.png",
    "roc": "results/{region}/model/figures/roc.png",
    "rule_heatmaps": "results/{region}/model/figures/rule_heatmaps.png",
}

# Helpers and input functions of the rules in capacity.smk.

CAPACITY_FIGURES = {"swap_map": "results/{region}/capacity/figures/swap_plan.png"}

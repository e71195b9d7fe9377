"""Entry script of rule capacity_plan: grain capacity lost and activated, and the swap plan."""

import logging

import numpy as np
import pandas as pd

from karstflow.capacity import (
    CapacityInputError,
    capacity_summary,
    grain_capacity_kg,
    nearest_grade,
    polygon_grades,
)
from karstflow.io import read_vector, write_csv, write_json, write_vector
from karstflow.runtime import run_script
from karstflow.swap import plan_swap, swap_costs

log = logging.getLogger("karstflow.scripts.capacity_plan")


def main(input, output, params, wildcards, threads=1) -> None:
    p = params.capacity
    constants = {
        "D": p["D"],
        "mu_per_ha": p["mu_per_ha"],
        "kg_per_mu_per_grade": p["kg_per_mu_per_grade"],
    }
    swap = p["swap"]
    grade_column = p["grade_column"]

    grades = read_vector(input.quality_grades)
    parcels = read_vector(input.parcels)
    for column in ("parcel_id", "abandoned"):
        if column not in parcels.columns:
            raise CapacityInputError(f"{input.parcels}: expected a column {column!r}, found {list(parcels.columns)}")
    abandoned = parcels["abandoned"].to_numpy() == 1
    parcels["grade"] = polygon_grades(parcels, grades, grade_column, name=input.quality_grades)
    parcels["area_ha"] = parcels.geometry.area / 1e4
    lost = parcels[abandoned]
    if lost["grade"].isna().any():
        bad = lost.loc[lost["grade"].isna(), "parcel_id"].tolist()
        raise CapacityInputError(
            f"{input.quality_grades}: {len(bad)} abandoned parcel(s) of {input.parcels} overlap no "
            "grade polygon, so their "
            f"capacity is undefined: parcel_id {bad[:10]}"
        )

    # Cultivated land: the existing farmland patches and the reclaimed parcels still in use.
    farmland = read_vector(input.farmland)
    cultivated = pd.concat([farmland[["geometry"]], parcels.loc[~abandoned, ["geometry"]]], ignore_index=True)
    cultivated = cultivated.set_crs(farmland.crs, allow_override=True)
    cultivated_grade = polygon_grades(cultivated, grades, grade_column, name=input.quality_grades)
    if np.isnan(cultivated_grade).any():
        log.warning(
            "capacity: %d cultivated patch(es) overlap no grade polygon; they give no grade",
            int(np.isnan(cultivated_grade).sum()),
        )

    candidates = read_vector(input.candidates)
    reclaimable = candidates[candidates["reclaimable"] == 1].reset_index(drop=True)
    if reclaimable.empty:
        log.warning(
            "capacity: no reclaimable forest in %s (%d candidates, none passes every factor); "
            "nothing can make up "
            "the capacity lost; writing the capacity figures with nothing activated",
            input.candidates,
            len(candidates),
        )
    near = nearest_grade(reclaimable, cultivated, cultivated_grade)
    if len(reclaimable) and near["grade"].isna().any():
        raise CapacityInputError(
            f"{input.farmland}: no cultivated land with a {grade_column} to give reclaimable forest its grade"
        )
    reclaimable["grade"] = near["grade"].to_numpy()
    reclaimable["nearest_cultivated_m"] = near["distance_m"].to_numpy()
    reclaimable["capacity_t"] = (
        np.asarray(grain_capacity_kg(reclaimable["grade"], reclaimable["area_ha"], **constants)) / 1000
    )
    reclaimable["cost"] = swap_costs(reclaimable, swap["cost"], forest_type_weights=swap["forest_type_weights"])

    lost_kg = float(np.sum(grain_capacity_kg(lost["grade"], lost["area_ha"], **constants)))
    plan = plan_swap(
        reclaimable["capacity_t"].to_numpy() * 1000,
        reclaimable["cost"].to_numpy(),
        lost_kg,
        milp_max_candidates=swap["milp_max_candidates"],
        time_limit_s=swap["time_limit_s"],
        mip_rel_gap=swap["mip_rel_gap"],
    )

    keep = [
        "forest_id",
        "forest_type",
        "township",
        "area_ha",
        "carbon_mg_ha",
        "grade",
        "nearest_cultivated_m",
        "capacity_t",
        "cost",
    ]
    planned = reclaimable.loc[plan.selected, [c for c in keep if c in reclaimable.columns] + ["geometry"]]
    planned = planned.rename(columns={"grade": f"{grade_column}_nearest"})
    write_vector(planned, output.plan, layer="swap_plan")

    table = capacity_summary(lost, reclaimable, plan.selected, **constants)
    write_csv(table, output.table, index=False)

    def by_type(account):
        rows = table[(table["account"] == account) & (table["forest_type"] != "all")]
        return {r.forest_type: float(r.capacity_t) for r in rows.itertuples()}

    headline = {
        "lost_t": lost_kg / 1000,
        "lost_area_ha": float(lost["area_ha"].sum()),
        "lost_parcels": len(lost),
        "lost_weighted_grade": float(table.loc[(table["account"] == "lost"), "weighted_grade"].iloc[0]),
        "activated_t": float(reclaimable["capacity_t"].sum()),
        "activated_t_by_forest_type": by_type("activated"),
        "reclaimable_area_ha": float(reclaimable["area_ha"].sum()),
        "planned_t": plan.planned_kg / 1000,
        "planned_t_by_forest_type": by_type("planned"),
        "planned_area_ha": float(planned["area_ha"].sum()),
        "planned_patches": int(plan.selected.sum()),
        "covered": plan.covered,
        "shortfall_t": plan.shortfall_kg / 1000,
        "cost": plan.cost,
        "cost_kind": swap["cost"],
        "cost_unit": {"area": "ha", "carbon": "Mg C", "forest_type": "weighted ha"}[swap["cost"]],
        "solver": plan.solver,
        "solver_status": plan.status,
        "lower_bound": plan.lower_bound,
        "mip_gap": plan.mip_gap,
        "greedy_cost": plan.greedy_cost,
        "greedy_gap": plan.greedy_gap,
        "greedy_gap_bound": plan.greedy_gap_bound,
        "grade_column": grade_column,
        "constants": constants,
    }
    if reclaimable.empty:
        headline["note"] = "no reclaimable forest: nothing activated, nothing planned"
    write_json(headline, output.summary)
    # the solve time is a wall-clock figure: it goes to the log (and the rule's benchmark
    # file), never into results, which two runs must write byte for byte alike
    log.info(
        "capacity: lost %.1f t, activated %.1f t, planned %.1f t on %.1f ha (%s, %s, solved in %.2f s)",
        headline["lost_t"],
        headline["activated_t"],
        headline["planned_t"],
        headline["planned_area_ha"],
        plan.solver,
        plan.status,
        plan.seconds,
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

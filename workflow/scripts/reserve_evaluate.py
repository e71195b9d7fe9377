"""Entry script of rule reserve_evaluate: limiting-factor evaluation of the forest land."""

import logging

from karstflow.drivers import compute_drivers, read_driver_layers
from karstflow.io import read_json, read_raster, read_vector, write_csv, write_json, write_vector
from karstflow.reserve import (
    ReserveInputError,
    ReserveLayers,
    criteria_from_config,
    dominant_zone,
    evaluate_reserve,
    reserve_headline,
    reserve_summary,
    rules_from_json,
)
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.reserve_evaluate")


def main(input, output, params, wildcards, threads=1) -> None:
    given = set(input.keys())
    criteria, skip = criteria_from_config(params.reserve)

    forest = read_vector(input.forest)
    for column in ("forest_id", "forest_type"):
        if column not in forest.columns:
            raise ReserveInputError(f"{input.forest}: expected a column {column!r}, found {list(forest.columns)}")
    if "township" not in forest.columns:
        forest["township"] = dominant_zone(
            forest.geometry, read_vector(input.townships), "township", name=input.townships
        )
        log.info("reserve: township of each forest polygon from %s (largest overlap)", input.townships)

    def vector(name):
        return read_vector(input[name]) if name in given else None

    def raster(name):
        return read_raster(input[name]) if name in given else None

    rules = drivers = None
    if "convenience_rules" in given:
        rules = rules_from_json(read_json(input.convenience_rules), input.convenience_rules)
        if rules:
            # the driver stage's function and settings, so a rule reads forest as it read parcels
            drivers = compute_drivers(
                forest,
                **read_driver_layers(input),
                id_column="forest_id",
                **params.drivers,
            )

    layers = ReserveLayers(
        redline=vector("redline"),
        slope_deg=raster("slope"),
        accumulated_temperature=raster("accumulated_temperature"),
        precipitation=raster("precipitation"),
        irrigation=vector("irrigation"),
        soil=vector("soil"),
        rules=rules,
        drivers=drivers,
        names={
            **{k: str(input[k]) for k in given},
            "slope_deg": str(input.slope) if "slope" in given else "slope raster",
        },
    )
    evaluation = evaluate_reserve(forest, layers, criteria, skip=skip)
    candidates = evaluation.candidates
    write_vector(candidates, output.candidates, layer="reclaimable_forest")
    write_csv(reserve_summary(candidates), output.summary_table, index=False)
    headline = reserve_headline(evaluation)
    headline["criteria"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(criteria).items()}
    write_json(headline, output.summary)
    log.info(
        "reserve: %d of %d forest polygons reclaimable, %.1f of %.1f ha",
        headline["reclaimable"],
        headline["candidates"],
        headline["reclaimable_area_ha"],
        headline["candidate_area_ha"],
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

"""Entry script of rule abandonment_parcels: class fractions per parcel and the abandonment
rates."""

import logging

from karstflow.abandonment import (
    ParcelError,
    abandonment_summary,
    parcel_abandonment,
    prepare_parcels,
)
from karstflow.grid import RegionGrid
from karstflow.io import read_json, read_raster, read_vector, write_json, write_vector
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.abandonment_parcels")


def main(input, output, params, wildcards, threads=1) -> None:
    legend = {int(k): v for k, v in params.classes.items()}
    a = params.abandonment
    grid = RegionGrid.from_dict(read_json(input.grid))
    landcover = read_raster(input.landcover, masked=False)
    accuracy = read_json(input.accuracy)

    try:
        parcels, report = prepare_parcels(
            read_vector(input.parcels),
            grid.bounds,
            grid.crs,
            id_column=a["id_column"],
            source=input.parcels,
        )
    except ParcelError as err:
        log.error("%s", err)
        raise
    judged = parcel_abandonment(
        parcels,
        landcover,
        legend,
        abandonment_codes=a["classes"],
        threshold=a["threshold"],
        min_classified_fraction=a["min_classified_fraction"],
        method=a["method"],
    )
    summary = abandonment_summary(judged, year_column=a["year_column"])
    summary.update(
        threshold=a["threshold"],
        abandonment_classes=[legend[c] for c in a["classes"]],
        fraction_method=a["method"],
        repaired_parcel_ids=report["repaired_ids"],
        parcels_partly_outside_region=len(report["partly_outside_ids"]),
        landcover_kappa=accuracy.get("kappa"),
    )
    not_evaluated = judged.loc[judged["abandoned"].isna(), a["id_column"]].tolist()
    if not_evaluated:
        log.warning(
            "%d parcel(s) have less than %.0f%% of their area classified and are not evaluated: ids %s",
            len(not_evaluated),
            100 * a["min_classified_fraction"],
            ", ".join(map(str, not_evaluated[:20])),
        )
        summary["not_evaluated_parcel_ids"] = not_evaluated
    write_vector(judged, output.parcels)
    write_json(summary, output.summary)
    log.info(
        "%d parcels, %d abandoned (%.1f%% by count, %.1f%% by area)",
        summary["parcels"],
        summary["abandoned_parcels"],
        100 * (summary["abandonment_rate_by_count"] or 0),
        100 * (summary["abandonment_rate_by_area"] or 0),
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

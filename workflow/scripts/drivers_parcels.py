"""Entry script of rule drivers_parcels: drivers x1..x10 and the outcome of every parcel."""

import logging

import numpy as np
import pandas as pd

from karstflow.drivers import (
    DRIVER_COLUMNS,
    DriverInputError,
    compute_drivers,
    drivers_summary,
    read_driver_layers,
)
from karstflow.io import read_vector, write_csv, write_json
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.drivers_parcels")


def main(input, output, params, wildcards, threads=1) -> None:
    settings = dict(params.drivers)
    # labels "input": the region's abandonment_labels (canonical parcel_id, abandoned);
    # "classified": the abandonment stage's parcels (ids in abandonment.id_column)
    labels = params.labels
    id_column = "parcel_id" if labels == "input" else params.id_column
    outcome = "abandoned"

    parcels = read_vector(input.parcels)
    if outcome not in parcels.columns:
        raise DriverInputError(
            f"{input.parcels}: expected the outcome column {outcome!r} (0 used, 1 abandoned), found "
            f"{list(parcels.columns)}"
        )
    try:
        drivers = compute_drivers(
            parcels,
            **read_driver_layers(input),
            id_column=id_column,
            **settings,
        )
    except DriverInputError as err:
        log.error("%s", err)
        raise

    # The outcome: 0/1, empty where the abandonment stage could not evaluate the parcel.
    abandoned = pd.to_numeric(parcels[outcome], errors="coerce").to_numpy()
    table = pd.DataFrame(
        {
            "parcel_id": drivers[id_column].to_numpy(),
            "abandoned": pd.array(np.where(np.isnan(abandoned), pd.NA, abandoned), dtype="Int64"),
        }
    )
    for col in (*DRIVER_COLUMNS, "x4_off_network", "x5_off_network", "village_id"):
        table[col] = drivers[col].to_numpy()
    write_csv(table, output.drivers, index=False)
    summary = drivers_summary(table, labels=labels)
    write_json(summary, output.summary)
    log.info(
        "drivers of %d parcels (%d with an outcome) written",
        len(table),
        summary["parcels_with_outcome"],
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821

"""Entry script of rule climate_annual: the annual climate cube (mean temperature, sums of
precipitation, solar radiation and ETo) from the months, and its summary."""

import logging

import numpy as np

from karstflow import climate
from karstflow.io import read_cube, write_json, write_netcdf
from karstflow.runtime import run_script

log = logging.getLogger("karstflow.scripts.climate_annual")


def main(input, output, params, wildcards, threads=1) -> None:
    monthly = read_cube(input.monthly)
    annual = climate.annual_from_monthly(monthly, [int(y) for y in params.years])
    write_netcdf(annual, output.annual)
    summary = {
        "origin": monthly.attrs.get("origin", ""),
        "years": [int(annual["year"].values[0]), int(annual["year"].values[-1])],
        "variables": {},
    }
    for name, da in annual.data_vars.items():
        per_year = da.mean(dim=("y", "x")).values
        summary["variables"][name] = {
            "units": da.attrs.get("units", ""),
            "aggregation": da.attrs.get("aggregation", ""),
            "regional_mean_per_year": {
                str(int(y)): float(v) for y, v in zip(annual["year"].values, per_year, strict=True)
            },
            "regional_mean": float(np.nanmean(per_year)),
        }
    write_json(summary, output.summary)
    log.info(
        "annual climate %d-%d: %s",
        summary["years"][0],
        summary["years"][1],
        {k: round(v["regional_mean"], 2) for k, v in summary["variables"].items()},
    )


if "snakemake" in globals():
    run_script(main, snakemake)  # noqa: F821
